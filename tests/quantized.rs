//! Quantized and half-precision models (tests/fixtures/quantized, made by
//! scripts/make_quantized_fixtures.py with onnxruntime's quantizer): every
//! op against onnxruntime, faults in the native int8 words against
//! onnxruntime running the same faulty words, and campaigns in the native
//! formats that `--verify` finds equal to the full forward pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use faultsweep::campaign::Resolver;
use faultsweep::faults::{Fault, FaultModel, Models, NumFormat, Samples, Scope, Target};
use faultsweep::graph::{Graph, Op};
use faultsweep::inject::{plain_run, Injection};
use tch::{Kind, Tensor};

use crate::common::{column, run_campaign, run_verified};

fn dir() -> PathBuf {
    crate::common::fixtures().join("quantized")
}

fn load(name: &str) -> Graph {
    faultsweep::load::load(dir().join(format!("{name}.onnx"))).unwrap()
}

/// The fixtures' inputs, in the model's input type.
fn inputs(graph: &Graph) -> Tensor {
    let x = Tensor::read_npy(dir().join("inputs.npy")).unwrap();
    x.to_kind(graph.inputs[0].kind)
}

/// onnxruntime's value of every node output of model `name`.
fn ort_values(name: &str) -> HashMap<String, Tensor> {
    Tensor::read_npz(dir().join(format!("{name}.values.npz")))
        .unwrap()
        .into_iter()
        .collect()
}

/// Each node of `name`, run on onnxruntime's values of its inputs, against
/// onnxruntime's value of its output: integer results bit for bit, but the
/// QLinear ops' within one unit (the spec leaves their requantization
/// multiplier to float arithmetic); float results bit for bit where the op
/// is elementwise (DequantizeLinear, Relu), else within `float_tol`
/// relative. Returns the elements the QLinear ops differ in, and of how many.
fn op_by_op(name: &str, float_tol: f64) -> (i64, i64) {
    let graph = load(name);
    let ort = ort_values(name);
    let x = inputs(&graph);
    let value = |id: usize| -> Tensor {
        let v = &graph.values[id];
        match graph.constant(id) {
            Some(t) => t.shallow_clone(),
            None if graph.input_values.contains(&id) => x.shallow_clone(),
            None => ort[&v.name].shallow_clone(),
        }
    };
    let (mut differ, mut total) = (0, 0);
    for node in &graph.nodes {
        let ins: Vec<Option<Tensor>> = node.inputs.iter().map(|i| i.map(value)).collect();
        let refs: Vec<Option<&Tensor>> = ins.iter().map(Option::as_ref).collect();
        let outs = graph.apply(node, &refs).unwrap();
        for (&id, got) in node.outputs.iter().zip(&outs) {
            let want = &ort[&graph.values[id].name];
            let what = format!("{name}: node '{}' ({})", node.name, node.op);
            assert_eq!(got.kind(), want.kind(), "{what}");
            assert_eq!(got.size(), want.size(), "{what}");
            let delta = (got.to_kind(Kind::Double) - want.to_kind(Kind::Double)).abs();
            let worst = delta.max().double_value(&[]);
            match node.op {
                Op::QLinearConv | Op::QLinearMatMul => {
                    assert!(worst <= 1.0, "{what}: differs by {worst}");
                    differ += delta.gt(0.0).sum(Kind::Int64).int64_value(&[]);
                    total += got.numel() as i64;
                }
                _ if !faultsweep::graph::is_float(got.kind())
                    || matches!(node.op, Op::DequantizeLinear | Op::Relu) =>
                {
                    assert!(got.equal(want), "{what}: not bitwise equal (by {worst})");
                }
                _ => {
                    let scale = want.to_kind(Kind::Double).abs().max().double_value(&[]);
                    assert!(
                        worst <= float_tol * scale.max(1e-30),
                        "{what}: differs by {worst} of {scale}"
                    );
                }
            }
        }
    }
    eprintln!("{name}: the QLinear ops differ from onnxruntime in {differ} of {total} elements, by one unit");
    (differ, total)
}

/// The quantized ops count the multiply-adds of the float ops they stand
/// for, so `inspect` (and bench's whole-row share) sees the same model.
#[test]
fn quantized_models_count_the_float_models_multiply_adds() {
    let macs = |name: &str| faultsweep::inspect::inspect(&load(name)).unwrap().macs;
    let float = macs("cnn");
    assert!(float > 0);
    for name in ["cnn_qop", "cnn_qdq", "cnn_dynamic"] {
        assert_eq!(macs(name), float, "{name}");
    }
}

#[test]
fn qdq_ops_equal_onnxruntime() {
    op_by_op("cnn_qdq", 1e-5);
}

#[test]
fn qoperator_ops_equal_onnxruntime_within_one_unit_in_qlinear_ops() {
    let (differ, total) = op_by_op("cnn_qop", 1e-5);
    assert!(total > 0 && differ * 100 <= total, "{differ} of {total}");
    let (differ, total) = op_by_op("cnn_qop_u8", 1e-5);
    assert!(total > 0 && differ * 100 <= total, "{differ} of {total}");
}

#[test]
fn dynamic_quantization_ops_equal_onnxruntime() {
    op_by_op("cnn_dynamic", 1e-5);
}

#[test]
fn half_precision_ops_stay_near_onnxruntime() {
    // onnxruntime's CPU kernels compute fp16 Conv and MatMul in float32
    // and round once; libtorch's may round partial sums too.
    op_by_op("cnn_fp16", 4e-3);
}

/// A bit flip of the fixtures' fault list (faults.json) as a fault row.
fn flip_row(graph: &Graph, f: &serde_json::Value) -> (usize, Fault) {
    let sites = faultsweep::faults::Sites::from_graph(graph).unwrap();
    let index = f["index"].as_u64().unwrap();
    let (layer, tensor, sample) = match f["target"].as_str().unwrap() {
        // A weight is named by the node that reads it: in a QDQ model, the
        // Conv that reads the DequantizeLinear's (folded) output.
        "weight" => {
            let init = f["initializer"].as_str().unwrap();
            let layer = sites
                .layers
                .iter()
                .find(|l| {
                    l.weights.iter().any(|w| {
                        w.name == init
                            || w.name
                                .starts_with(&init.replace("_quantized", "_DequantizeLinear"))
                    })
                })
                .unwrap_or_else(|| panic!("no layer reads {init}"));
            let w = layer
                .weights
                .iter()
                .find(|w| {
                    w.name == init
                        || w.name
                            .starts_with(&init.replace("_quantized", "_DequantizeLinear"))
                })
                .unwrap();
            (layer, w, 0)
        }
        _ => {
            let layer = sites.find(f["layer"].as_str().unwrap()).unwrap();
            (
                layer,
                layer.neuron.as_ref().unwrap(),
                f["sample"].as_u64().unwrap(),
            )
        }
    };
    // The flat index as a coordinate of the tensor.
    let mut coord = vec![0u32; tensor.shape.len()];
    let mut rest = index;
    for (c, &d) in coord.iter_mut().zip(&tensor.shape).rev() {
        *c = (rest % d) as u32;
        rest /= d;
    }
    let target = if f["target"] == "weight" {
        Target::Weight
    } else {
        Target::Neuron
    };
    let row = Fault {
        fault_id: 0,
        injection: 0,
        sample: Samples::One(sample),
        target,
        node: layer.node as u32,
        layer: layer.name.clone(),
        tensor: tensor.name.clone(),
        coord,
        model: FaultModel::BitFlip,
        dtype: NumFormat::NativeInt8,
        bits: vec![f["bit"].as_u64().unwrap() as u8],
        scope: Scope::Transient,
        sweep: 0,
        draw: 0,
    };
    (sample as usize, row)
}

/// Faults in int8 weights (QDQ and QOperator) and in a QLinearConv's int8
/// output change the output as onnxruntime's run of the same faulty words
/// does: the faulty outputs differ from onnxruntime's by no more than the
/// fault-free outputs do, and from the fault-free ones by more.
#[test]
fn native_int8_faults_match_onnxruntime_running_the_faulty_words() {
    let text = std::fs::read_to_string(dir().join("faults.json")).unwrap();
    let faults: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(faults.len() >= 6);
    for f in &faults {
        let name = f["model"].as_str().unwrap();
        let graph = load(name);
        let x = inputs(&graph);
        let (sample, row) = flip_row(&graph, f);
        let resolver = Resolver::new(&graph, &HashMap::new(), &Models::default()).unwrap();
        let injection = Injection {
            id: 0,
            sample,
            faults: resolver.node_faults(&[row]).unwrap(),
        };
        let input = x.narrow(0, sample as i64, 1);
        let result = plain_run(&graph, &[input], &injection).unwrap();
        let ort = Tensor::read_npy(dir().join(f["output"].as_str().unwrap())).unwrap();
        let ort_golden = &ort_values(name)[graph.values[graph.outputs[0]].name.as_str()];
        let (ort_faulty, ort_golden) = (ort.get(sample as i64), ort_golden.get(sample as i64));
        let ours = result.output.expect("the row ran to the end");
        let off = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
        let noise = off(&result.golden, &ort_golden);
        let agreement = off(&ours, &ort_faulty);
        let effect = off(&ort_faulty, &ort_golden);
        eprintln!("{name} {f}: effect {effect:.4}, ours against onnxruntime {agreement:.2e} (fault-free {noise:.2e})");
        assert!(
            effect > 4.0 * noise.max(1e-6),
            "{name} {f}: the fault moved the output by {effect} only"
        );
        assert!(
            agreement <= noise.max(1e-6) * 2.0 + 1e-6,
            "{name} {f}: {agreement} against {noise} fault-free"
        );
        // The words of int8 tensors are recorded; a QDQ weight is the
        // float its Conv reads.
        let site = result.sites[0];
        let word = |v: f64| v.fract() == 0.0 && (-128.0..=127.0).contains(&v);
        let words = word(site.original) && word(site.faulty);
        assert_eq!(words, name != "cnn_qdq", "{name}: {site:?}");
    }
}

/// A scenario on fixture `model` with the given targets, fault and counts.
fn scenario(dir: &Path, model: &str, yaml_targets: &str, dtype: &str, bits: &str) -> PathBuf {
    let text = format!(
        "name: {model}\nseed: 3\nmodel:\n  path: {}\ndata:\n  path: {}\n  batch_size: 8\n{yaml_targets}\nfault:\n  model: bit_flip\n  dtype: {dtype}\n  bits: {bits}\ncounts:\n  injections: 300\noutputs:\n  summaries: [layer, bit, dtype]\n",
        self::dir().join(format!("{model}.onnx")).display(),
        self::dir().join("inputs.npy").display(),
    );
    let path = dir.join(format!("{model}.yml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The dtype column of a campaign's injections.
fn dtypes(rows: &[Vec<String>]) -> Vec<String> {
    let mut d = column(rows, "dtype");
    d.sort();
    d.dedup();
    d
}

/// Campaigns in the native formats of quantized and fp16 models, through
/// the cache, batching and dropping, give the outcomes of the full forward
/// pass (`--verify` on every run), and record their own format names.
#[test]
fn native_format_campaigns_equal_the_full_forward_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let cases = [
        (
            "cnn_qop",
            "targets:\n  layers:\n    ops: [QLinearConv, QLinearMatMul, QuantizeLinear]",
            "native_int8",
        ),
        (
            "cnn_qop",
            "targets:\n  target: weight\n  layers:\n    ops: [QLinearConv]",
            "native_int8",
        ),
        (
            "cnn_qop_u8",
            "targets:\n  layers:\n    ops: [QLinearConv]",
            "native_uint8",
        ),
        (
            "cnn_qdq",
            "targets:\n  layers:\n    ops: [QuantizeLinear]",
            "native_int8",
        ),
        (
            "cnn_qdq",
            "targets:\n  target: weight\n  layers:\n    ops: [Conv]",
            "native_int8",
        ),
        (
            "cnn_dynamic",
            "targets:\n  layers:\n    ops: [ConvInteger, MatMulInteger]",
            "native_int32",
        ),
        (
            "cnn_fp16",
            "targets:\n  layers:\n    ops: [Conv, MatMul]",
            "native_fp16",
        ),
    ];
    for (i, (model, targets, format)) in cases.iter().enumerate() {
        let sub = tmp.path().join(i.to_string());
        std::fs::create_dir_all(&sub).unwrap();
        let path = scenario(&sub, model, targets, "native", "all");
        let rows = run_verified(&path, &sub.join("out"), &cache, 300);
        assert_eq!(dtypes(&rows), [format.to_string()], "{model} {targets}");
        let masked = column(&rows, "outcome")
            .iter()
            .filter(|o| *o == "masked")
            .count();
        let seen = rows.len() - 1 - masked;
        eprintln!(
            "{model} {format}: {masked} masked, {seen} not, of {}",
            rows.len() - 1
        );
        assert!(
            seen > 0 && masked > 0,
            "{model} {targets}: {masked} masked, {seen} not"
        );
    }
}

/// Int32 accumulator words beyond float32's 24 bits go into Parquet parts
/// (float64 value columns) and read back as the CSV run's rows.
#[test]
fn int32_site_values_beyond_float32_fit_parquet_parts() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let targets = "targets:\n  layers:\n    ops: [ConvInteger]";
    let path = scenario(tmp.path(), "cnn_dynamic", targets, "native", "all");
    let csv = tmp.path().join("csv");
    let rows = run_verified(&path, &csv, &cache, 20);
    let exact = |v: &String| v.parse::<f64>().is_ok_and(|v| f64::from(v as f32) == v);
    assert!(
        column(&rows, "faulty_value").iter().any(|v| !exact(v)),
        "some word is not a float32"
    );
    let text = std::fs::read_to_string(&path).unwrap() + "  injections: parquet\n";
    std::fs::write(&path, text).unwrap();
    let parquet = tmp.path().join("parquet");
    let run = run_campaign(&path, &parquet, &[], &cache);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = crate::common::faultsweep(&["report", parquet.to_str().unwrap()], &cache);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let summary = |dir: &Path| std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    assert_eq!(summary(&csv), summary(&parquet));
}

/// An accumulator fault: bit 30 of an int32 ConvInteger output is recorded
/// and applied exactly, beyond float32's 24 bits.
#[test]
fn an_int32_accumulator_fault_is_exact_beyond_float32() {
    let graph = load("cnn_dynamic");
    let sites = faultsweep::faults::Sites::from_graph(&graph).unwrap();
    let layer = sites.layers.iter().find(|l| l.op == "ConvInteger").unwrap();
    let neuron = layer.neuron.as_ref().unwrap();
    assert_eq!(neuron.kind, Kind::Int);
    let row = Fault {
        fault_id: 0,
        injection: 0,
        sample: Samples::One(0),
        target: Target::Neuron,
        node: layer.node as u32,
        layer: layer.name.clone(),
        tensor: neuron.name.clone(),
        coord: vec![0; neuron.shape.len()],
        model: FaultModel::BitFlip,
        dtype: NumFormat::NativeInt32,
        bits: vec![30],
        scope: Scope::Transient,
        sweep: 0,
        draw: 0,
    };
    let resolver = Resolver::new(&graph, &HashMap::new(), &Models::default()).unwrap();
    let injection = Injection {
        id: 0,
        sample: 0,
        faults: resolver.node_faults(&[row]).unwrap(),
    };
    let x = inputs(&graph).narrow(0, 0, 1);
    let site = plain_run(&graph, &[x], &injection).unwrap().sites[0];
    let word = site.original as i64;
    assert_eq!(site.faulty as i64, word ^ (1 << 30), "{site:?}");
}

/// A format that does not fit the struck tensor is refused, naming it: an
/// emulation on an integer tensor, a native format of another type, and
/// `native` over tensors of several types.
#[test]
fn formats_that_do_not_fit_the_tensor_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let q = "targets:\n  layers:\n    names: ['/dw/Conv_quant']";
    let both = "targets:\n  layers:\n    ops: [QLinearConv, Relu]";
    let cases = [
        ("cnn_qop", q, "fp32", "all", "has no neuron sites in fp32"),
        (
            "cnn_qop_u8",
            q,
            "native_int8",
            "all",
            "has no neuron sites in native_int8",
        ),
        (
            "cnn_qop",
            both,
            "native",
            "all",
            "native formats differ among the selected tensors",
        ),
        (
            "cnn_qop",
            q,
            "native",
            "12",
            "bit 12 does not exist in native_int8",
        ),
    ];
    for (i, (model, targets, dtype, bits, want)) in cases.into_iter().enumerate() {
        let sub = tmp.path().join(i.to_string());
        std::fs::create_dir_all(&sub).unwrap();
        let path = scenario(&sub, model, targets, dtype, bits);
        let out = run_campaign(&path, &tmp.path().join("out"), &[], &cache);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(8), "{stderr}");
        assert!(stderr.contains(want), "want '{want}' in: {stderr}");
    }
    // A fault list row in an emulated format on an int8 tensor.
    let path = scenario(tmp.path(), "cnn_qop", q, "native", "all");
    let list = tmp.path().join("list.csv");
    std::fs::write(
        &list,
        "fault_id,sample,target,layer,tensor,coord,fault_model,dtype,bit,value\n\
         0,0,neuron,/dw/Conv_quant,/dw/Conv_output_0_quantized,\"0,0,0\",bit_flip,int8,3,-\n",
    )
    .unwrap();
    let out = run_campaign(
        &path,
        &tmp.path().join("out2"),
        &["--faults", list.to_str().unwrap()],
        &cache,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{stderr}");
    assert!(
        stderr.contains("list.csv:2")
            && stderr.contains(
                "int8 does not fit tensor '/dw/Conv_output_0_quantized', which holds int8"
            ),
        "{stderr}"
    );
}

/// Adjacent multi-bit upsets in the int8 word: `simultaneous: 2` with
/// `adjacent: true` flips two neighbouring bits, every neighbouring pair
/// drawn; bits with no such pair are refused.
#[test]
fn adjacent_multi_bit_upsets_flip_neighbouring_bits_of_the_word() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let q = "targets:\n  layers:\n    ops: [QLinearConv]";
    let path = scenario(tmp.path(), "cnn_qop", q, "native", "all");
    let text = std::fs::read_to_string(&path).unwrap();
    let adjacent = text.replace(
        "  bits: all\n",
        "  bits: all\n  simultaneous: 2\n  adjacent: true\n",
    );
    std::fs::write(&path, adjacent).unwrap();
    let rows = run_verified(&path, &tmp.path().join("out"), &cache, 50);
    let (original, faulty) = (
        column(&rows, "original_value"),
        column(&rows, "faulty_value"),
    );
    let mut lows = std::collections::BTreeSet::new();
    for (i, bits) in column(&rows, "bit").iter().enumerate() {
        let bits: Vec<u8> = bits.split(',').map(|b| b.parse().unwrap()).collect();
        let r = &rows[i + 1];
        assert_eq!(bits.len(), 2, "{r:?}");
        assert_eq!(bits[0], bits[1] + 1, "descending neighbours: {r:?}");
        lows.insert(bits[1]);
        let (o, f): (f64, f64) = (original[i].parse().unwrap(), faulty[i].parse().unwrap());
        let mask = (3i16 << bits[1]) as u8;
        assert_eq!((o as i8 as u8) ^ mask, f as i8 as u8, "{r:?}");
    }
    assert_eq!(
        lows.into_iter().collect::<Vec<_>>(),
        (0..7).collect::<Vec<u8>>()
    );
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("bits: all", "bits: {list: [1, 3, 5]}");
    std::fs::write(&path, text).unwrap();
    let out = run_campaign(&path, &tmp.path().join("out2"), &[], &cache);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.contains("`fault.adjacent`: no 2 adjacent bits among [1, 3, 5]"),
        "{stderr}"
    );
}
