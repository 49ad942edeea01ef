//! Shared test helpers, each defined once: the repository's paths, the
//! binary, scenarios made by editing a parsed one, fixture discovery, .npy
//! I/O, the parity measure, one-node graphs, cache stores, and the record
//! of skipped tests.
//!
//! Nothing here changes process-wide state (environment, working
//! directory): tests run side by side, in one process or one each.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faultsweep::cache::{CacheSpec, Store};
use faultsweep::data::Subset;
use faultsweep::graph::{Attr, Attrs, Graph, InputSpec, Node, Source, Value};
use faultsweep::scenario::{Scenario, ScenarioSpec};
use tch::Tensor;

/// The repository root: the working directory of the binary in tests, from
/// which the example scenarios' relative paths start.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `p` under the repository root.
pub fn repo(p: &str) -> PathBuf {
    root().join(p)
}

/// `faultsweep ARGS`, run from the repository root with its cache root in
/// `cache` (FAULTSWEEP_CACHE, which `--cache-dir` overrides).
pub fn faultsweep(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultsweep"))
        .args(args)
        .current_dir(root())
        .env("FAULTSWEEP_CACHE", cache)
        .output()
        .expect("runs")
}

/// `faultsweep ARGS` for commands that use no cache, or name it with
/// `--cache-dir`: from the repository root, the environment as it is.
pub fn faultsweep_uncached(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultsweep"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the binary runs")
}

/// The scenario file `from` parsed, changed by `edit` and written to `to`
/// (returned). Its relative paths stay relative to the repository root.
pub fn edit_scenario(from: &Path, to: PathBuf, edit: impl FnOnce(&mut ScenarioSpec)) -> PathBuf {
    let mut spec = Scenario::load(&root().join(from))
        .unwrap_or_else(|e| panic!("{e}"))
        .spec;
    edit(&mut spec);
    std::fs::write(&to, faultsweep::scenario::to_yaml(&spec)).unwrap();
    to
}

/// The demo neuron scenario cut down to `n` injections on 100 samples,
/// written to `dir/small.yml`.
pub fn small_scenario(dir: &Path, n: usize) -> PathBuf {
    let from = repo("scenarios/fashion_neurons.yml");
    edit_scenario(&from, dir.join("small.yml"), |s| {
        s.counts.injections = Some(n as u64);
        s.data.subset = Subset::First(100);
    })
}

/// `faultsweep run SCENARIO --out OUT`, then the `extra` arguments.
pub fn run_campaign(scenario: &Path, out: &Path, extra: &[&str], cache: &Path) -> Output {
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    faultsweep(&args, cache)
}

/// Runs `scenario` into `out` with `--verify N`; asserts it succeeds and
/// that no verified outcome differs; returns injections.csv's rows.
pub fn run_verified(scenario: &Path, out: &Path, cache: &Path, verify: usize) -> Vec<Vec<String>> {
    let verify = verify.to_string();
    let run = run_campaign(scenario, out, &["--verify", &verify], cache);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "{}: {stdout}\n{stderr}",
        scenario.display()
    );
    assert!(
        stdout.contains(", 0 differ"),
        "{}: {stdout}",
        scenario.display()
    );
    csv_rows(&out.join("injections.csv"))
}

/// A scenario over the fixture `folder/MODEL.onnx` and its input
/// `MODEL.input.npy`, with `body` after the data path, written to
/// `dir/MODEL.yml`.
pub fn fixture_scenario(dir: &Path, folder: &Path, model: &str, seed: u64, body: &str) -> PathBuf {
    let text = format!(
        "name: {model}\nseed: {seed}\nmodel:\n  path: {}\ndata:\n  path: {}\n{body}",
        folder.join(format!("{model}.onnx")).display(),
        folder.join(format!("{model}.input.npy")).display(),
    );
    let path = dir.join(format!("{model}.yml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The values of column `name` over CSV rows (header first).
pub fn column(rows: &[Vec<String>], name: &str) -> Vec<String> {
    let col = rows[0].iter().position(|h| h == name).expect(name);
    rows[1..].iter().map(|r| r[col].clone()).collect()
}

pub fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap();
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

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

/// Every fixture under `tests/fixtures/{models,ops}`, sorted by name (the
/// tests of one fixture each: [`crate::model_fixtures!`]).
pub fn model_fixtures() -> Vec<Fixture> {
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
                if with("input.npy").exists() {
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

/// The model fixture `name` (under `models/` or `ops/`).
pub fn fixture(name: &str) -> Fixture {
    let with = |dir: &str, ext: &str| fixtures().join(dir).join(format!("{name}.{ext}"));
    let dir = ["models", "ops"]
        .into_iter()
        .find(|d| with(d, "onnx").exists())
        .unwrap_or_else(|| panic!("no fixture {name} under tests/fixtures/{{models,ops}}"));
    Fixture {
        name: name.to_string(),
        model: with(dir, "onnx"),
        input: with(dir, "input.npy"),
        expected: with(dir, "expected.npy"),
    }
}

pub fn read_npy(path: &Path) -> Tensor {
    Tensor::read_npy(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether `a` and `b` hold the same values, NaN where the other has NaN
/// counting as the same (`Tensor::equal` finds NaN unequal to itself).
pub fn same_values(a: &Tensor, b: &Tensor) -> bool {
    if a.size() != b.size() || a.kind() != b.kind() {
        return false;
    }
    if !a.is_floating_point() {
        return a.equal(b);
    }
    let both_nan = a.isnan().logical_and(&b.isnan());
    bool::try_from(a.eq_tensor(b).logical_or(&both_nan).all()).unwrap_or(false)
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
    if want.numel() == 0 {
        return Ok(0.0);
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

/// The files `rels` of the read-only ../shared folder (beside the
/// repository), when they all exist; otherwise the running test is marked
/// skipped ([`skip`]) and the caller leaves out what needs them.
pub fn shared<const N: usize>(rels: [&str; N]) -> Option<[PathBuf; N]> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    let paths = rels.map(|rel| root.join(rel));
    let missing: Vec<&str> = (rels.iter().zip(&paths))
        .filter(|(_, p)| !p.exists())
        .map(|(rel, _)| *rel)
        .collect();
    if missing.is_empty() {
        return Some(paths);
    }
    skip(&format!(
        "../shared/{} is absent",
        missing.join(", ../shared/")
    ));
    None
}

/// Where [`skip`] records skipped tests, one line each (scripts/test.sh
/// empties it before a run and counts it after).
pub fn skipped_file() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped.txt")
}

/// Marks the running test as skipped (in whole or in part) for `why`, so a
/// test that cannot run here does not pass silently: the line goes
/// straight to stderr (the test harness captures `eprintln!`, not this)
/// and to [`skipped_file`], since the harness has no runtime skip.
pub fn skip(why: &str) {
    use std::io::Write;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let line = format!("skipped: {test}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(skipped_file());
    // One write of one short line: lines of tests running at once stay whole.
    let _ = file.and_then(|mut f| f.write_all(line.as_bytes()));
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
        words: Default::default(),
        opset,
        nodes: vec![Node {
            index: 0,
            name: NODE.into(),
            op: op.parse().unwrap(),
            inputs,
            outputs: (first_out..first_out + outputs).collect(),
            attrs,
            opset,
        }],
        values,
        inputs: vec![InputSpec {
            name: "x".into(),
            kind: tch::Kind::Float,
            dims: None,
        }],
        input_values: vec![0],
        outputs: vec![first_out],
        guards: Default::default(),
        monitors: Default::default(),
        task: Default::default(),
        layout: Default::default(),
        judged: 0,
    }
}
