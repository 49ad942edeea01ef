//! Error paths of the detection, recurrent and loss op families
//! (NonMaxSuppression, RoiAlign, GridSample, AffineGrid, LSTM, GRU, RNN,
//! NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss): shapes, indices,
//! modes and attributes out of the spec give an error naming the node,
//! never a panic or a wrong result.

use faultsweep::graph::{Attr, Graph};
use tch::{Kind, Tensor};

use crate::common::{one_node, NODE};

fn x(shape: &[i64]) -> Tensor {
    Tensor::ones(shape, (Kind::Float, tch::Device::Cpu))
}

fn ints(v: &[i64]) -> Tensor {
    Tensor::from_slice(v)
}

fn floats(v: &[f32]) -> Tensor {
    Tensor::from_slice(v)
}

fn string(name: &'static str, v: &str) -> (&'static str, Attr) {
    (name, Attr::Str(v.into()))
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
fn non_max_suppression_checks_shapes_and_thresholds() {
    let nms = |attrs, constants| one_node("NonMaxSuppression", 11, attrs, constants, 1);
    let scores = x(&[1, 2, 3]);
    assert_fails(
        nms(vec![], vec![scores.copy()]),
        x(&[1, 3, 5]),
        "boxes must be [batches, boxes, 4]",
    );
    assert_fails(
        nms(vec![], vec![x(&[1, 2, 4])]),
        x(&[1, 3, 4]),
        "scores must be [batches, classes, boxes]",
    );
    assert_fails(
        nms(vec![], vec![scores.copy(), ints(&[2]), floats(&[1.5])]),
        x(&[1, 3, 4]),
        "iou_threshold must be in [0, 1]",
    );
    assert_fails(
        nms(vec![], vec![scores.copy(), ints(&[2, 3])]),
        x(&[1, 3, 4]),
        "max_output_boxes_per_class must hold one value",
    );
    assert_fails(
        nms(vec![("center_point_box", Attr::Int(2))], vec![scores]),
        x(&[1, 3, 4]),
        "center_point_box must be 0 or 1",
    );
}

#[test]
fn non_max_suppression_selects_int64_rows() {
    // Two overlapping boxes and a distant one; the first two tie on score.
    let boxes = floats(&[0., 0., 1., 1., 0., 0.1, 1., 1.1, 5., 5., 6., 6.]).view([1, 3, 4]);
    let scores = floats(&[0.9, 0.9, 0.3]).view([1, 1, 3]);
    let g = one_node(
        "NonMaxSuppression",
        11,
        vec![],
        vec![scores, ints(&[3]), floats(&[0.5])],
        1,
    );
    let out = g.forward(&[boxes]).unwrap();
    assert_eq!(out[0].kind(), Kind::Int64);
    assert_eq!(
        Vec::<i64>::try_from(&out[0].view([-1])).unwrap(),
        [0, 0, 0, 0, 0, 2]
    );
}

#[test]
fn roi_align_checks_rois_indices_and_modes() {
    let roi = |attrs, constants| one_node("RoiAlign", 16, attrs, constants, 1);
    let rois = floats(&[0., 0., 2., 2.]).view([1, 4]);
    assert_fails(
        roi(vec![], vec![rois.copy(), ints(&[2])]),
        x(&[2, 1, 4, 4]),
        "batch index 2 is out of range for 2 images",
    );
    assert_fails(
        roi(vec![], vec![floats(&[0., 0., 2.]).view([1, 3]), ints(&[0])]),
        x(&[1, 1, 4, 4]),
        "rois must be [num_rois, 4]",
    );
    assert_fails(
        roi(vec![], vec![rois.copy(), ints(&[0, 0])]),
        x(&[1, 1, 4, 4]),
        "batch_indices must be [1]",
    );
    assert_fails(
        roi(vec![string("mode", "min")], vec![rois.copy(), ints(&[0])]),
        x(&[1, 1, 4, 4]),
        "mode 'min' is not avg or max",
    );
    assert_fails(
        roi(
            vec![string("coordinate_transformation_mode", "align_corners")],
            vec![rois.copy(), ints(&[0])],
        ),
        x(&[1, 1, 4, 4]),
        "is not half_pixel or output_half_pixel",
    );
    assert_fails(
        roi(vec![], vec![rois, ints(&[0])]),
        x(&[1, 4, 4]),
        "X must be [N, C, H, W]",
    );
}

#[test]
fn grid_sample_checks_the_grid_and_the_modes_of_the_opset() {
    let grid = |shape: &[i64]| Tensor::zeros(shape, (Kind::Float, tch::Device::Cpu));
    let gs = |opset, attrs, g| one_node("GridSample", opset, attrs, vec![g], 1);
    assert_fails(
        gs(16, vec![], grid(&[1, 3, 3, 3])),
        x(&[1, 1, 4, 4]),
        "grid must be [1, out spatial..., 2]",
    );
    // The opset 16 names are not those of opset 20.
    assert_fails(
        gs(20, vec![string("mode", "bicubic")], grid(&[1, 3, 3, 2])),
        x(&[1, 1, 4, 4]),
        "mode 'bicubic' is not linear, nearest or cubic at opset 20",
    );
    assert_fails(
        gs(16, vec![string("mode", "linear")], grid(&[1, 3, 3, 2])),
        x(&[1, 1, 4, 4]),
        "mode 'linear' is not bilinear, nearest or bicubic at opset 16",
    );
    assert_fails(
        gs(16, vec![], grid(&[1, 2, 3, 3, 3])),
        x(&[1, 1, 2, 4, 4]),
        "X must be 4-D [N, C, spatial...]",
    );
    assert_fails(
        gs(20, vec![string("mode", "cubic")], grid(&[1, 2, 3, 3, 3])),
        x(&[1, 1, 2, 4, 4]),
        "mode cubic samples 4-D inputs only",
    );
    assert_fails(
        gs(
            20,
            vec![string("padding_mode", "wrap")],
            grid(&[1, 3, 3, 2]),
        ),
        x(&[1, 1, 4, 4]),
        "padding_mode 'wrap' is not zeros, border or reflection",
    );
}

#[test]
fn affine_grid_checks_theta_against_the_size() {
    let ag = |size: &[i64]| one_node("AffineGrid", 20, vec![], vec![ints(size)], 1);
    assert_fails(
        ag(&[2, 1, 4, 5]),
        x(&[1, 2, 3]),
        "theta must be [2, 2, 3] for size [2, 1, 4, 5]",
    );
    assert_fails(ag(&[1, 1, 4, 5]), x(&[1, 3, 4]), "theta must be [1, 2, 3]");
    assert_fails(ag(&[1, 4, 5]), x(&[1, 2, 3]), "size must be [N, C, H, W]");
}

/// An LSTM over X `[seq 3, batch 2, input 4]`, hidden 5.
fn lstm(attrs: Vec<(&str, Attr)>, w_rows: i64, extra: Vec<Tensor>) -> Graph {
    let mut constants = vec![x(&[1, w_rows, 4]), x(&[1, 20, 5])];
    constants.extend(extra);
    one_node("LSTM", 14, attrs, constants, 3)
}

#[test]
fn recurrent_ops_check_weights_directions_and_activations() {
    let seq = || x(&[3, 2, 4]);
    assert_fails(lstm(vec![], 16, vec![]), seq(), "W must be [1, 20, 4]");
    assert_fails(
        lstm(vec![string("direction", "sideways")], 20, vec![]),
        seq(),
        "direction 'sideways' is not forward, reverse or bidirectional",
    );
    assert_fails(
        lstm(
            vec![(
                "activations",
                Attr::Strings(vec!["Sigmoid".into(), "Tanh".into()]),
            )],
            20,
            vec![],
        ),
        seq(),
        "expected 3 (3 per direction)",
    );
    let unknown = ["Sigmoid", "Swish", "Tanh"].map(String::from).to_vec();
    assert_fails(
        lstm(vec![("activations", Attr::Strings(unknown))], 20, vec![]),
        seq(),
        "activation 'Swish' is not one ONNX defines",
    );
    assert_fails(
        lstm(vec![("hidden_size", Attr::Int(4))], 20, vec![]),
        seq(),
        "hidden_size 4 differs from R's 5",
    );
    let lens = Tensor::from_slice(&[3i32, 4]);
    assert_fails(
        lstm(vec![], 20, vec![x(&[1, 40]), lens]),
        seq(),
        "sequence length 4 is outside [0, 3]",
    );
    assert_fails(
        lstm(vec![("layout", Attr::Int(2))], 20, vec![]),
        seq(),
        "layout must be 0 or 1",
    );
    let gru = one_node("GRU", 14, vec![], vec![x(&[1, 15, 4]), x(&[1, 10, 5])], 2);
    assert_fails(gru, seq(), "R must be [1, 3 * hidden, hidden]");
    let rnn = one_node(
        "RNN",
        14,
        vec![("clip", Attr::Float(-1.0))],
        vec![x(&[1, 5, 4]), x(&[1, 5, 5])],
        2,
    );
    assert_fails(rnn, seq(), "clip must be positive");
}

#[test]
fn losses_check_targets_weights_and_reductions() {
    let nll = |attrs, constants| one_node("NegativeLogLikelihoodLoss", 22, attrs, constants, 1);
    assert_fails(
        nll(vec![], vec![ints(&[0, 3])]),
        x(&[2, 3]),
        "target 3 is out of range for 3 classes",
    );
    // A target equal to ignore_index is not checked against the classes.
    let ignored = nll(vec![("ignore_index", Attr::Int(-5))], vec![ints(&[0, -5])]);
    assert!(ignored.forward(&[x(&[2, 3])]).is_ok());
    assert_fails(
        nll(vec![("ignore_index", Attr::Int(-5))], vec![ints(&[0, -1])]),
        x(&[2, 3]),
        "target -1 is out of range",
    );
    assert_fails(
        nll(vec![], vec![ints(&[0, 1]), x(&[2])]),
        x(&[2, 3]),
        "weight must be [3] for 3 classes",
    );
    assert_fails(
        nll(vec![string("reduction", "max")], vec![ints(&[0, 1])]),
        x(&[2, 3]),
        "reduction 'max' is not none, sum or mean",
    );
    assert_fails(
        nll(vec![], vec![ints(&[0, 1, 2])]),
        x(&[2, 3]),
        "target must be [2] for input [2, 3]",
    );
    let sce = one_node(
        "SoftmaxCrossEntropyLoss",
        13,
        vec![],
        vec![floats(&[0., 1.])],
        2,
    );
    assert_fails(sce, x(&[2, 3]), "target must be int32 or int64");
}

#[test]
fn unique_and_col2im_check_their_arguments() {
    let unique = one_node("Unique", 11, vec![("axis", Attr::Int(2))], vec![], 4);
    assert_fails(unique, x(&[2, 3]), "axis 2 out of range for rank 2");
    let col2im = |constants, attrs| one_node("Col2Im", 18, attrs, constants, 1);
    assert_fails(
        col2im(vec![ints(&[3, 4]), ints(&[2, 3])], vec![]),
        x(&[1, 6, 5]),
        "input has 5 blocks, the image [3, 4] with block_shape [2, 3] holds 4",
    );
    assert_fails(
        col2im(vec![ints(&[3, 4]), ints(&[2, 3])], vec![]),
        x(&[1, 7, 4]),
        "input must be [N, C * 6, L]",
    );
    assert_fails(
        col2im(vec![ints(&[3, 4]), ints(&[2])], vec![]),
        x(&[1, 6, 4]),
        "need the same non-zero length",
    );
    assert_fails(
        col2im(
            vec![ints(&[3, 4]), ints(&[2, 3])],
            vec![("strides", Attr::Ints(vec![0, 1]))],
        ),
        x(&[1, 6, 4]),
        "must be at least 1",
    );
    assert_fails(
        col2im(vec![ints(&[3, 4]), ints(&[4, 3])], vec![]),
        x(&[1, 12, 4]),
        "is larger than the padded image",
    );
}

#[test]
fn unique_in_order_of_first_occurrence_keeps_int64_outputs() {
    let g = one_node("Unique", 11, vec![("sorted", Attr::Int(0))], vec![], 4);
    let out = g.forward(&[floats(&[2., 1., 2., 3., 1.])]).unwrap();
    let v = |t: &Tensor| Vec::<f64>::try_from(&t.to_kind(Kind::Double)).unwrap();
    assert_eq!(v(&out[0]), [2., 1., 3.]);
    for (t, want) in
        out[1..]
            .iter()
            .zip([vec![0., 1., 3.], vec![0., 1., 0., 2., 1.], vec![2., 2., 1.]])
    {
        assert_eq!(t.kind(), Kind::Int64);
        assert_eq!(v(t), want);
    }
}

#[test]
fn roi_align_refuses_outputs_too_large_to_hold() {
    let rois = floats(&[0., 0., 2., 2.]).view([1, 4]);
    let huge = one_node(
        "RoiAlign",
        16,
        vec![
            ("output_height", Attr::Int(1 << 20)),
            ("output_width", Attr::Int(1 << 20)),
        ],
        vec![rois.copy(), ints(&[0])],
        1,
    );
    assert_fails(huge, x(&[1, 1, 4, 4]), "too large an output");
    let samples = one_node(
        "RoiAlign",
        16,
        vec![("sampling_ratio", Attr::Int(1 << 20))],
        vec![rois, ints(&[0])],
        1,
    );
    assert_fails(samples, x(&[1, 1, 4, 4]), "too many");
}

#[test]
fn grids_and_images_too_large_to_hold_are_refused() {
    let ag = one_node(
        "AffineGrid",
        20,
        vec![],
        vec![ints(&[1, 1, 1 << 20, 1 << 20])],
        1,
    );
    assert_fails(ag, x(&[1, 2, 3]), "too large");
    let col2im = one_node(
        "Col2Im",
        18,
        vec![("pads", Attr::Ints(vec![0, 0, 1 << 40, 0]))],
        vec![ints(&[1, 1]), ints(&[1, 1])],
        1,
    );
    assert_fails(col2im, x(&[1, 1, 1]), "too large");
}

#[test]
fn a_recurrent_op_over_no_time_steps_gives_an_empty_y() {
    let h0 = Tensor::full([1, 2, 5], 0.5, (Kind::Float, tch::Device::Cpu));
    let g = lstm(
        vec![],
        20,
        vec![x(&[1, 40]), Tensor::from_slice(&[0i32, 0]), h0],
    );
    let out = g.forward(&[x(&[0, 2, 4])]).unwrap();
    assert_eq!(out[0].size(), [0, 1, 2, 5]);
}
