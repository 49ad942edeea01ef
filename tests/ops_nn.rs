//! Error paths of the conv / pool / norm kernels: unsupported or malformed
//! attributes and wrong-rank inputs give an error naming the node and the
//! reason, never a panic or a silently different result. The models are the
//! `nn_err_*` files written by scripts/make_op_fixtures_nn.py.

use faultsweep::graph::ops::lookup;
use faultsweep::graph::{Attr, Attrs, Node};
use faultsweep::Error;
use tch::{Device, Kind, Tensor};

use crate::common::fixtures;

/// Loads `nn_err_{name}.onnx` and runs it on a random input of `shape`;
/// returns the error, which must be an op error on the model's one node.
fn op_error(name: &str, shape: &[i64]) -> String {
    let path = fixtures().join(format!("ops/nn_err_{name}.onnx"));
    let graph = faultsweep::load::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let x = Tensor::randn(shape, (Kind::Float, Device::Cpu));
    match graph.forward(&[x]) {
        Ok(_) => panic!("{name}: ran without error"),
        Err(e @ Error::Op { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("_node'"), "{name}: node not named in {msg}");
            msg
        }
        Err(e) => panic!("{name}: expected an op error, got {e}"),
    }
}

/// Loads `nn_err_{name}.onnx`, whose attribute is invalid: a model error
/// (exit 3) at load time naming the node, op, opset and attribute.
fn model_error(name: &str, op: &str, attribute: &str) -> String {
    let path = fixtures().join(format!("ops/nn_err_{name}.onnx"));
    let e = faultsweep::load::load(&path).expect_err(name);
    let msg = e.to_string();
    assert_eq!(e.exit_code(), 3, "{name}: {msg}");
    let parts = [
        "_node'",
        &format!("op {op}"),
        "opset 17",
        &format!("'{attribute}'"),
    ];
    assert_mentions(&msg, &parts);
    msg
}

fn assert_mentions(msg: &str, words: &[&str]) {
    for w in words {
        assert!(msg.contains(w), "'{w}' missing from: {msg}");
    }
}

#[test]
fn conv_unknown_auto_pad_names_node_and_value() {
    let msg = model_error("conv_auto_pad", "Conv", "auto_pad");
    assert_mentions(&msg, &["conv_node", "'SAME'"]);
}

#[test]
fn conv_kernel_shape_must_match_weight() {
    let msg = op_error("conv_kernel_shape", &[1, 2, 5, 5]);
    assert_mentions(&msg, &["kernel_shape [2, 2]", "weight shape"]);
}

#[test]
fn wrong_rank_inputs_are_errors() {
    assert_mentions(&op_error("conv_rank2", &[2, 5]), &["rank 3, 4 or 5"]);
    assert_mentions(&op_error("maxpool_rank2", &[2, 5]), &["rank 3, 4 or 5"]);
}

#[test]
fn maxpool_rejects_unknown_storage_order() {
    // 0 and 1 are honoured (they order the Indices output, see the
    // nn_maxpool*_indices* fixtures); anything else is malformed.
    let msg = op_error("maxpool_storage_order", &[1, 2, 5, 5]);
    assert_mentions(&msg, &["maxpool_node", "storage_order 2"]);
}

#[test]
fn pool_window_errors() {
    let msg = model_error("maxpool_no_kernel", "MaxPool", "kernel_shape");
    assert_mentions(&msg, &["is required"]);
    assert_mentions(
        &op_error("avgpool_kernel_too_big", &[1, 2, 3, 3]),
        &["smaller than the window"],
    );
    assert_mentions(
        &op_error("maxpool_same_dilation", &[1, 2, 9, 8]),
        &["SAME", "dilations"],
    );
}

#[test]
fn norm_errors() {
    assert_mentions(
        &op_error("batchnorm_training", &[1, 2, 3, 3]),
        &["training_mode"],
    );
    assert_mentions(&op_error("layernorm_stash", &[2, 3]), &["stash_type 7"]);
    assert_mentions(
        &op_error("groupnorm_groups", &[1, 6, 2, 2]),
        &["num_groups 4"],
    );
    assert_mentions(&op_error("lrn_size0", &[1, 3, 2, 2]), &["size 0"]);
}

#[test]
fn conv_transpose_errors() {
    let msg = model_error("convtranspose_auto_pad", "ConvTranspose", "auto_pad");
    assert_mentions(&msg, &["convtranspose_node", "'FULL'"]);
    let msg = op_error("convtranspose_same_small_kernel", &[1, 2, 3, 4]);
    assert_mentions(&msg, &["kernel shorter than the stride"]);
}

/// An output_shape longer than the input produces extends the output by
/// positions no input reaches (zeros without a bias), split by the spec's
/// equations: a total padding of -3 on axis 0 puts one such row before
/// and two after (ONNX's test_convtranspose_output_shape checks -1).
#[test]
fn conv_transpose_longer_output_shape_extends_with_zeros() {
    let path = fixtures().join("ops/nn_err_convtranspose_output_shape_long.onnx");
    let graph = faultsweep::load::load(&path).unwrap();
    let x = Tensor::rand([1, 2, 3, 4], (Kind::Float, Device::Cpu)) + 1.0;
    let y = graph.forward(&[x]).unwrap().remove(0);
    assert_eq!(y.size(), [1, 2, 9, 8]);
    let row_is_zero = |r: i64| y.select(2, r).abs().max().double_value(&[]) == 0.0;
    assert!(row_is_zero(0) && row_is_zero(7) && row_is_zero(8));
    assert!((1..7).all(|r| !row_is_zero(r)));
}

/// A node built by hand, to reach kernels with inputs no loader would pass.
fn node(op: &str, attrs: Vec<(&str, Attr)>) -> Node {
    Node {
        index: 0,
        name: "hand".into(),
        op: op.parse().unwrap(),
        inputs: vec![],
        outputs: vec![],
        attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect()),
        opset: 17,
    }
}

fn kernel_error(node: &Node, inputs: &[Option<&Tensor>]) -> String {
    let def = lookup(node.op.name()).expect("op is registered");
    match (def.kernel)(node, inputs) {
        Ok(_) => panic!("{}: ran without error", node.op),
        Err(e) => e.0,
    }
}

#[test]
fn kernels_report_missing_inputs_and_bad_attributes() {
    let x = Tensor::randn([1, 2, 4, 4], (Kind::Float, Device::Cpu));
    let msg = kernel_error(&node("Conv", vec![]), &[Some(&x)]);
    assert_mentions(&msg, &["required input 1 is missing"]);
    let pool = node(
        "AveragePool",
        vec![
            ("kernel_shape", Attr::Ints(vec![2, 2])),
            ("pads", Attr::Ints(vec![1, 1])),
        ],
    );
    assert_mentions(&kernel_error(&pool, &[Some(&x)]), &["pads [1, 1]"]);
    let pool = node(
        "MaxPool",
        vec![
            ("kernel_shape", Attr::Ints(vec![2, 2])),
            ("strides", Attr::Ints(vec![0, 1])),
        ],
    );
    assert_mentions(&kernel_error(&pool, &[Some(&x)]), &["strides [0, 1]"]);
    let ct = node("ConvTranspose", vec![("output_shape", Attr::Ints(vec![7]))]);
    let w = Tensor::randn([2, 3, 3, 3], (Kind::Float, Device::Cpu));
    assert_mentions(
        &kernel_error(&ct, &[Some(&x), Some(&w)]),
        &["output_shape [7]"],
    );
    // A weight whose channels do not match the input: libtorch's error, not a panic.
    let conv = node("Conv", vec![]);
    let w = Tensor::randn([4, 3, 3, 3], (Kind::Float, Device::Cpu));
    kernel_error(&conv, &[Some(&x), Some(&w)]);
}
