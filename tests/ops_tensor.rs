//! Error paths of the tensor op families (activation, elementwise, linear,
//! reduce, shape, index): invalid axes, indices, shapes and unsupported
//! modes give an error naming the node, never a panic or a wrong result.

use faultsweep::graph::{Attr, Graph};
use tch::Tensor;

use crate::common::{one_node, NODE};

fn ints(v: &[i64]) -> Tensor {
    Tensor::from_slice(v)
}

fn x(shape: &[i64]) -> Tensor {
    Tensor::ones(shape, (tch::Kind::Float, tch::Device::Cpu))
}

/// Runs `graph` on `input` and checks the error names the node and says
/// `what`.
fn assert_fails(graph: Graph, input: Tensor, what: &str) {
    let err = match graph.forward(&[input]) {
        Ok(out) => panic!(
            "expected an error about '{what}', got shape {:?}",
            out[0].size()
        ),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&format!("node '{NODE}'")),
        "error does not name the node: {err}"
    );
    assert!(!err.contains("panicked"), "the kernel panicked: {err}");
    assert!(err.contains(what), "error should mention '{what}': {err}");
}

#[test]
fn bad_axes_are_reported() {
    let concat = one_node(
        "Concat",
        17,
        vec![("axis", Attr::Int(2))],
        vec![x(&[2, 3])],
        1,
    );
    assert_fails(concat, x(&[2, 3]), "axis 2 out of range for rank 2");

    let softmax = one_node("Softmax", 17, vec![("axis", Attr::Int(-3))], vec![], 1);
    assert_fails(softmax, x(&[2, 3]), "axis -3 out of range");

    let reduce = one_node("ReduceMean", 18, vec![], vec![ints(&[0, 5])], 1);
    assert_fails(reduce, x(&[2, 3]), "axis 5 out of range");

    let twice = one_node("Unsqueeze", 13, vec![], vec![ints(&[1, -3])], 1);
    assert_fails(twice, x(&[2, 3]), "appears twice");

    let squeeze = one_node("Squeeze", 13, vec![], vec![ints(&[1])], 1);
    assert_fails(squeeze, x(&[2, 3]), "cannot squeeze axis 1 of size 3");

    let scalar = one_node("Split", 18, vec![("num_outputs", Attr::Int(1))], vec![], 1);
    assert_fails(scalar, Tensor::from(1f32), "does not exist in a scalar");

    let perm = one_node(
        "Transpose",
        17,
        vec![("perm", Attr::Ints(vec![0, 0]))],
        vec![],
        1,
    );
    assert_fails(perm, x(&[2, 3]), "appears twice");
}

#[test]
fn axes_in_the_wrong_place_for_the_opset_are_reported() {
    // From opset 13, Unsqueeze axes are an input; the attribute is an error.
    let attr = one_node(
        "Unsqueeze",
        13,
        vec![("axes", Attr::Ints(vec![0]))],
        vec![],
        1,
    );
    assert_fails(attr, x(&[2]), "not an attribute");
    // Before opset 18, ReduceMax axes are an attribute, not an input.
    let input = one_node("ReduceMax", 17, vec![], vec![ints(&[0])], 1);
    assert_fails(input, x(&[2]), "is an attribute before opset 18");
}

#[test]
fn gather_index_out_of_range_is_reported() {
    let high = one_node(
        "Gather",
        17,
        vec![("axis", Attr::Int(1))],
        vec![ints(&[0, 3])],
        1,
    );
    assert_fails(
        high,
        x(&[2, 3]),
        "index 3 is out of range for an axis of size 3",
    );

    let low = one_node("Gather", 17, vec![], vec![ints(&[-3])], 1);
    assert_fails(low, x(&[2, 3]), "index -3 is out of range");

    let elements = one_node(
        "GatherElements",
        17,
        vec![("axis", Attr::Int(0))],
        vec![Tensor::from_slice(&[0i64, 2, 1, 0]).reshape([2, 2])],
        1,
    );
    assert_fails(elements, x(&[2, 2]), "index 2 is out of range");
}

#[test]
fn reshape_with_two_inferred_dims_is_reported() {
    let g = one_node("Reshape", 17, vec![], vec![ints(&[-1, -1])], 1);
    assert_fails(g, x(&[2, 3]), "more than one -1");

    let zero_past_rank = one_node("Reshape", 17, vec![], vec![ints(&[1, 6, 0])], 1);
    assert_fails(zero_past_rank, x(&[2, 3]), "shape entry 2 is 0");

    let allowzero = one_node(
        "Reshape",
        18,
        vec![("allowzero", Attr::Int(1))],
        vec![ints(&[0, -1])],
        1,
    );
    assert_fails(allowzero, x(&[2, 3]), "both 0 and -1");
}

#[test]
fn split_sizes_must_add_up() {
    let g = one_node(
        "Split",
        13,
        vec![("axis", Attr::Int(1))],
        vec![ints(&[1, 1])],
        2,
    );
    assert_fails(g, x(&[2, 3]), "summing to 3");

    let uneven = one_node("Split", 13, vec![], vec![], 2);
    assert_fails(uneven, x(&[3, 2]), "does not split into 2 equal parts");

    let count = one_node("Split", 18, vec![("num_outputs", Attr::Int(3))], vec![], 2);
    assert_fails(count, x(&[4]), "num_outputs 3 does not match the 2 outputs");
}

#[test]
fn invalid_arguments_are_reported() {
    let step = one_node(
        "Slice",
        17,
        vec![],
        vec![ints(&[0]), ints(&[2]), ints(&[0]), ints(&[0])],
        1,
    );
    assert_fails(step, x(&[3]), "step 0");

    let expand = one_node("Expand", 17, vec![], vec![ints(&[4, 2])], 1);
    assert_fails(expand, x(&[2, 3]), "does not broadcast");

    let reflect = one_node(
        "Pad",
        17,
        vec![("mode", Attr::Str("reflect".into()))],
        vec![ints(&[0, 1, 0, 1])],
        1,
    );
    assert_fails(reflect, x(&[2, 1]), "cannot reflect-pad axis 1 of size 1");

    let mode = one_node(
        "Pad",
        17,
        vec![("mode", Attr::Str("mirror".into()))],
        vec![ints(&[0, 0])],
        1,
    );
    assert_fails(mode, x(&[2]), "mode 'mirror'");

    let cast = one_node("Cast", 17, vec![("to", Attr::Int(8))], vec![], 1);
    assert_fails(cast, x(&[2]), "cast to data type 8 is not supported");

    let gelu = one_node(
        "Gelu",
        20,
        vec![("approximate", Attr::Str("sigmoid".into()))],
        vec![],
        1,
    );
    assert_fails(gelu, x(&[2]), "approximate 'sigmoid'");

    let fmod = one_node("Mod", 17, vec![], vec![x(&[2])], 1);
    assert_fails(fmod, x(&[2]), "fmod 0 is invalid");
}

#[test]
fn zero_range_step_is_reported() {
    // Range reads start from the graph input and limit, delta from constants.
    let g = one_node(
        "Range",
        17,
        vec![],
        vec![Tensor::from(5f32), Tensor::from(0f32)],
        1,
    );
    assert_fails(g, Tensor::from(1f32), "delta is 0");
}

#[test]
fn dropout_in_training_mode_is_rejected() {
    let g = one_node(
        "Dropout",
        12,
        vec![],
        vec![Tensor::from(0.5f32), Tensor::from(true)],
        1,
    );
    assert_fails(g, x(&[2, 3]), "training_mode true is not supported");
}
