//! The `faultsweep` binary: command names, outputs and exit codes are a
//! contract (README, "Commands" and "Exit codes").

use std::process::{Command, Output};

use tch::{Kind, Tensor};

use crate::common::fixtures;

fn faultsweep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultsweep"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn good_model() -> String {
    fixtures().join("errors/good.onnx").display().to_string()
}

#[test]
fn inspect_json_lists_nodes_targets_and_frontiers() {
    let out = faultsweep(&["inspect", &good_model(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = info["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["name"], "mm");
    assert_eq!(nodes[0]["op"], "MatMul");
    assert_eq!(nodes[0]["weights"], serde_json::json!(["w"]));
    assert_eq!(nodes[0]["params"], 16);
    assert_eq!(nodes[0]["macs"], 16);
    assert_eq!(nodes[0]["injectable"], true);
    assert_eq!(nodes[0]["outputs"][0]["shape"], serde_json::json!([4]));
    let cuts = info["cuts"].as_array().unwrap();
    assert_eq!(cuts.len(), 3);
    assert_eq!(cuts[0]["values"], serde_json::json!(["x"]));
    assert_eq!(cuts[1]["values"], serde_json::json!(["h"]));
    assert_eq!(cuts[2]["values"], serde_json::json!(["y"]));
    assert_eq!(cuts[1]["elements"], 4);
}

#[test]
fn inspect_table_has_the_documented_columns() {
    let out = faultsweep(&["inspect", &good_model()]);
    let text = String::from_utf8(out.stdout).unwrap();
    for column in [
        "index",
        "name",
        "op",
        "output/sample",
        "params",
        "MACs",
        "target",
        "weights",
        "frontier",
    ] {
        assert!(text.contains(column), "missing column {column}:\n{text}");
    }
}

#[test]
fn infer_writes_the_model_output_and_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output, labels) = (
        dir.path().join("x.npy"),
        dir.path().join("y.npy"),
        dir.path().join("l.npy"),
    );
    let x = Tensor::arange(12, (Kind::Float, tch::Device::Cpu)).reshape([3, 4]) - 5.0;
    x.write_npy(&input).unwrap();
    Tensor::from_slice(&[3i64, 0, 3])
        .write_npy(&labels)
        .unwrap();
    let out = faultsweep(&[
        "infer",
        &good_model(),
        input.to_str().unwrap(),
        "--out",
        output.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let y = Tensor::read_npy(&output).unwrap();
    // MatMul with a ones matrix then Relu: every column holds max(row sum, 0).
    let want = x
        .sum_dim_intlist([1i64].as_slice(), true, Kind::Float)
        .relu()
        .expand([3, 4], false);
    assert!(y.equal(&want), "{y} vs {want}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("top-1 accuracy") && text.contains("/3)"),
        "{text}"
    );
}

#[test]
fn errors_map_to_documented_exit_codes() {
    let model = fixtures().join("errors/unsupported_op.onnx");
    let out = faultsweep(&["inspect", model.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("Frobnicate") && err.contains("frob"), "{err}");

    let out = faultsweep(&[
        "infer",
        &good_model(),
        &good_model(),
        "--out",
        "/tmp/never.npy",
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "a model file is not a .npy batch"
    );

    let out = faultsweep(&["inspect", "/nonexistent.onnx"]);
    assert_eq!(out.status.code(), Some(6));

    let out = faultsweep(&["frobnicate"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "usage errors exit with clap's 2"
    );
}
