//! Shared test helpers: fixture discovery, .npy I/O, the parity measure and
//! one-node graphs.

use std::path::{Path, PathBuf};

use faultsweep::cache::{CacheSpec, Store};
use faultsweep::graph::{Attr, Attrs, Graph, InputSpec, Node, Source, Value};
use tch::Tensor;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A model fixture: `NAME.onnx` with `NAME.input.npy` and `NAME.expected.npy`
/// (onnxruntime's output) beside it.
pub struct Fixture {
    pub name: String,
    pub model: PathBuf,
    pub input: PathBuf,
    pub expected: PathBuf,
}

/// Every fixture under `tests/fixtures/{models,ops}`, sorted by name. The
/// environment variable FIXTURE keeps only names containing its value.
pub fn model_fixtures() -> Vec<Fixture> {
    let filter = std::env::var("FIXTURE").unwrap_or_default();
    let mut out = Vec::new();
    for dir in ["models", "ops"] {
        let Ok(entries) = std::fs::read_dir(fixtures().join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "onnx") {
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                let with = |ext: &str| path.with_file_name(format!("{name}.{ext}"));
                if name.contains(&filter) && with("input.npy").exists() {
                    out.push(Fixture {
                        input: with("input.npy"),
                        expected: with("expected.npy"),
                        model: path,
                        name,
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub fn read_npy(path: &Path) -> Tensor {
    Tensor::read_npy(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The parity measure of the foundation issue: max |a - b| <= 1e-4 max |b|
/// over the whole output, and the same arg-max along the last axis.
pub fn check_parity(got: &Tensor, want: &Tensor) -> Result<f64, String> {
    if got.size() != want.size() {
        return Err(format!(
            "shape {:?}, expected {:?}",
            got.size(),
            want.size()
        ));
    }
    let got = got.to_kind(tch::Kind::Double);
    let want = want.to_kind(tch::Kind::Double);
    let scale = want.abs().max().double_value(&[]).max(f64::MIN_POSITIVE);
    let err = (&got - &want).abs().max().double_value(&[]);
    let rel = err / scale;
    if rel.is_nan() || rel > 1e-4 {
        return Err(format!("max |a - b| / max |b| = {rel:.3e} > 1e-4"));
    }
    if want.dim() >= 1 && want.numel() > 1 && got.argmax(-1, false) != want.argmax(-1, false) {
        return Err("top-1 differs".into());
    }
    Ok(rel)
}

/// A cache store at `root` (whatever $FAULTSWEEP_CACHE says), with its
/// own chunk cache.
pub fn store_at(root: &Path, zstd_level: i32, budget_bytes: Option<u64>) -> Store {
    let spec = CacheSpec {
        zstd_level,
        budget_bytes,
        ..CacheSpec::default()
    };
    Store::new(&spec, Some(root))
}

/// A file of the read-only ../shared folder, when it exists.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(rel);
    p.exists().then_some(p)
}

pub const NODE: &str = "node_under_test";

/// A one-node graph: input 0 is the graph input `x`, the following inputs
/// are constants; `outputs` outputs, the first of them the graph output.
pub fn one_node(
    op: &str,
    opset: i64,
    attrs: Vec<(&str, Attr)>,
    constants: Vec<Tensor>,
    outputs: usize,
) -> Graph {
    let value = |name: String, source| Value {
        name,
        source,
        last_use: usize::MAX,
    };
    let mut values = vec![value("x".into(), Source::Input(0))];
    for (i, c) in constants.into_iter().enumerate() {
        values.push(value(format!("c{i}"), Source::Constant(c)));
    }
    let inputs = (0..values.len()).map(Some).collect();
    let first_out = values.len();
    for slot in 0..outputs {
        values.push(value(format!("y{slot}"), Source::Node { node: 0, slot }));
    }
    let attrs = Attrs(attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
    Graph {
        path: "in-memory.onnx".into(),
        opset,
        nodes: vec![Node {
            index: 0,
            name: NODE.into(),
            op: op.into(),
            inputs,
            outputs: (first_out..first_out + outputs).collect(),
            attrs,
            opset,
        }],
        values,
        inputs: vec![InputSpec {
            name: "x".into(),
            dims: None,
        }],
        input_values: vec![0],
        outputs: vec![first_out],
        guards: Default::default(),
        monitors: Default::default(),
        judged: 0,
    }
}
