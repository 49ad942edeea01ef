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
    assert_fails(
        g,
        x(&[2, 3]),
        "training_mode true with ratio 0.5 is not supported",
    );
    // Training with ratio 0 drops nothing: the input itself.
    let g = one_node(
        "Dropout",
        22,
        vec![],
        vec![Tensor::from(0f32), Tensor::from(true)],
        2,
    );
    let input = Tensor::randn([2, 3], (tch::Kind::Float, tch::Device::Cpu));
    assert!(g.forward(&[input.copy()]).unwrap()[0].equal(&input));
}

/// The ops of the conformance round reject what they cannot compute,
/// naming the node.
#[test]
fn conformance_round_ops_reject_bad_arguments() {
    let and = one_node("BitwiseAnd", 18, vec![], vec![x(&[2])], 1);
    assert_fails(and, x(&[2]), "bitwise ops take integer input, got Float");
    assert_fails(
        one_node("Det", 22, vec![], vec![], 1),
        x(&[2, 3]),
        "should be floating-point square matrices",
    );
    assert_fails(
        one_node("EyeLike", 22, vec![], vec![], 1),
        x(&[2, 2, 2]),
        "should have rank 2",
    );
    let axes = vec![("batch_axis", Attr::Int(0)), ("time_axis", Attr::Int(1))];
    let reverse = one_node("ReverseSequence", 10, axes, vec![ints(&[5, 1])], 1);
    assert_fails(
        reverse,
        x(&[2, 3]),
        "sequence_lens [5, 1] should hold 2 lengths from 0 to 3",
    );
    let cache = one_node(
        "TensorScatter",
        24,
        vec![],
        vec![x(&[2, 2, 5]), ints(&[3, 0])],
        1,
    );
    assert_fails(
        cache,
        x(&[2, 4, 5]),
        "write index 3 of batch entry 0 leaves no room",
    );
    let wide = one_node("TensorScatter", 24, vec![], vec![x(&[2, 5, 5])], 1);
    assert_fails(wide, x(&[2, 4, 5]), "where it may be shorter");
    let index = Tensor::from_slice(&[0i64]).reshape([1, 1]);
    let scatter = one_node("Scatter", 11, vec![], vec![index, x(&[1, 1])], 1);
    assert_fails(scatter, x(&[2, 2]), "deprecated from opset 11");
    let window = vec![
        ("kernel_shape", Attr::Ints(vec![2, 2])),
        ("strides", Attr::Ints(vec![2, 2])),
    ];
    let far = Tensor::from_slice(&[4i64]).reshape([1, 1, 1, 1]);
    let unpool = one_node("MaxUnpool", 22, window.clone(), vec![far], 1);
    assert_fails(
        unpool,
        x(&[1, 1, 1, 1]),
        "indices from 4 to 4 fall outside the 4",
    );
    let near = Tensor::from_slice(&[3i64]).reshape([1, 1, 1, 1]);
    let other = one_node("MaxUnpool", 22, window, vec![near, ints(&[2, 1, 2, 2])], 1);
    assert_fails(other, x(&[1, 1, 1, 1]), "keep the rank, batch and channels");
    let glu = one_node("SwiGLU", 28, vec![], vec![x(&[3, 2])], 1);
    assert_fails(glu, x(&[2, 3]), "should have one shape and type");
    let crd = vec![
        ("blocksize", Attr::Int(2)),
        ("mode", Attr::Str("CRD".into())),
    ];
    let old = one_node("SpaceToDepth", 13, crd, vec![], 1);
    assert_fails(old, x(&[1, 1, 2, 2]), "CRD from opset 28");
    let last = one_node("DFT", 17, vec![("axis", Attr::Int(2))], vec![], 1);
    assert_fails(last, x(&[1, 4, 2]), "axis 2 is not a signal axis");
    let dft = one_node("DFT", 17, vec![], vec![], 1);
    assert_fails(dft, x(&[2, 3, 3]), "last axis of 1 (real) or 2 (complex)");
    let stft = one_node("STFT", 17, vec![], vec![ints(&[0])], 1);
    assert_fails(stft, x(&[1, 8, 1]), "frame_step 0 positive");
    let deform = one_node(
        "DeformConv",
        22,
        vec![],
        vec![x(&[2, 3, 2, 2]), x(&[1, 6, 3, 3])],
        1,
    );
    assert_fails(
        deform,
        x(&[1, 3, 4, 4]),
        "offset [1, 6, 3, 3] should be [1, 8, 3, 3]",
    );
    let strings = one_node(
        "TfIdfVectorizer",
        9,
        vec![
            ("mode", Attr::Str("TF".into())),
            ("min_gram_length", Attr::Int(1)),
            ("max_gram_length", Attr::Int(1)),
            ("pool_strings", Attr::Strings(vec!["a".into()])),
        ],
        vec![],
        1,
    );
    assert_fails(strings, x(&[3]), "of int32 or int64");
    let window = one_node("HannWindow", 17, vec![], vec![], 1);
    assert_fails(window, x(&[2]), "should be one non-negative integer");
}

/// Values the conformance cases check only on one example each.
#[test]
fn conformance_round_ops_compute_the_spec() {
    // MaxUnpool: each value at its index, zeros elsewhere; the indices
    // address output_shape's 3 x 3 (as onnxruntime), not the inferred 2 x 2.
    let window = vec![
        ("kernel_shape", Attr::Ints(vec![2, 2])),
        ("strides", Attr::Ints(vec![2, 2])),
    ];
    let at = Tensor::from_slice(&[3i64]).reshape([1, 1, 1, 1]);
    let unpool = one_node("MaxUnpool", 22, window, vec![at, ints(&[1, 1, 3, 3])], 1);
    let y = unpool.forward(&[x(&[1, 1, 1, 1]) * 7.0]).unwrap().remove(0);
    let want = [0f32, 0.0, 0.0, 7.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    assert_eq!(Vec::<f32>::try_from(y.flatten(0, -1)).unwrap(), want);
    // TensorScatter circular: steps past the end wrap to the start.
    let update = Tensor::from_slice(&[1f32, 2.0, 3.0]).reshape([1, 3, 1]);
    let cache = one_node(
        "TensorScatter",
        24,
        vec![("mode", Attr::Str("circular".into()))],
        vec![update, ints(&[3])],
        1,
    );
    let y = cache.forward(&[x(&[1, 4, 1]) * 0.0]).unwrap().remove(0);
    assert_eq!(
        Vec::<f32>::try_from(y.flatten(0, -1)).unwrap(),
        [2.0, 3.0, 0.0, 1.0]
    );
    // Shrink: lambd bounds the zero band, bias shifts the rest.
    let shrink = one_node(
        "Shrink",
        9,
        vec![("lambd", Attr::Float(1.0)), ("bias", Attr::Float(0.5))],
        vec![],
        1,
    );
    let v = Tensor::from_slice(&[-2f32, -1.0, 0.5, 1.0, 3.0]);
    let y = shrink.forward(&[v]).unwrap().remove(0);
    assert_eq!(Vec::<f32>::try_from(y).unwrap(), [-1.5, 0.0, 0.0, 0.0, 2.5]);
    // MeanVarianceNormalization over the last axis.
    let mvn = one_node(
        "MeanVarianceNormalization",
        13,
        vec![("axes", Attr::Ints(vec![-1]))],
        vec![],
        1,
    );
    let v = Tensor::from_slice(&[1f32, 3.0, 10.0, 10.0]).reshape([2, 2]);
    let y = mvn.forward(&[v]).unwrap().remove(0);
    let want = [-1f32, 1.0, 0.0, 0.0];
    let got = Vec::<f32>::try_from(y.flatten(0, -1)).unwrap();
    assert!(
        got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6),
        "{got:?}"
    );
}

fn floats(v: &[f32]) -> Tensor {
    Tensor::from_slice(v)
}

fn str_attr(name: &'static str, v: &str) -> (&'static str, Attr) {
    (name, Attr::Str(v.into()))
}

/// Resize at `opset` over x with an empty roi, then `scales`.
fn resize(opset: i64, attrs: Vec<(&str, Attr)>, scales: &[f32]) -> Graph {
    one_node("Resize", opset, attrs, vec![floats(&[]), floats(scales)], 1)
}

#[test]
fn resize_modes_and_arguments_are_checked() {
    let up = [1.0, 1.0, 2.0, 2.0];
    let mode = resize(13, vec![str_attr("mode", "bicubic")], &up);
    assert_fails(mode, x(&[1, 1, 2, 2]), "mode 'bicubic' is not one of");

    let cubic10 = one_node(
        "Resize",
        10,
        vec![str_attr("mode", "cubic")],
        vec![floats(&up)],
        1,
    );
    assert_fails(cubic10, x(&[1, 1, 2, 2]), "mode 'cubic' is not one of");

    let coord = resize(
        13,
        vec![str_attr("coordinate_transformation_mode", "corner")],
        &up,
    );
    assert_fails(coord, x(&[1, 1, 2, 2]), "'corner' is not defined");

    // half_pixel_symmetric is new in opset 19.
    let symmetric = resize(
        18,
        vec![str_attr(
            "coordinate_transformation_mode",
            "half_pixel_symmetric",
        )],
        &up,
    );
    assert_fails(symmetric, x(&[1, 1, 2, 2]), "not defined in opset 18");

    let nearest = resize(13, vec![str_attr("nearest_mode", "round")], &up);
    assert_fails(nearest, x(&[1, 1, 2, 2]), "nearest_mode 'round'");

    let antialias = resize(18, vec![("antialias", Attr::Int(1))], &up);
    assert_fails(antialias, x(&[1, 1, 2, 2]), "antialias applies to linear");

    let short = resize(13, vec![], &[2.0, 2.0]);
    assert_fails(short, x(&[1, 1, 2, 2]), "2 scales for 4 axes");

    let negative = resize(13, vec![], &[1.0, 1.0, -2.0, 2.0]);
    assert_fails(negative, x(&[1, 1, 2, 2]), "is not positive");

    let neither = resize(13, vec![], &[]);
    assert_fails(
        neither,
        x(&[1, 1, 2, 2]),
        "one of scales and sizes is required",
    );

    let both = one_node(
        "Resize",
        13,
        vec![],
        vec![floats(&[]), floats(&up), ints(&[1, 1, 4, 4])],
        1,
    );
    assert_fails(both, x(&[1, 1, 2, 2]), "only one of scales and sizes");

    let crop = resize(
        13,
        vec![str_attr(
            "coordinate_transformation_mode",
            "tf_crop_and_resize",
        )],
        &up,
    );
    assert_fails(crop, x(&[1, 1, 2, 2]), "needs the roi input");

    let policy = one_node(
        "Resize",
        18,
        vec![str_attr("keep_aspect_ratio_policy", "fit")],
        vec![floats(&[]), floats(&[]), ints(&[1, 1, 4, 4])],
        1,
    );
    assert_fails(policy, x(&[1, 1, 2, 2]), "keep_aspect_ratio_policy 'fit'");

    let axes = resize(18, vec![("axes", Attr::Ints(vec![2, 4]))], &[2.0, 2.0]);
    assert_fails(axes, x(&[1, 1, 2, 2]), "axis 4 out of range");

    let upsample = one_node("Upsample", 9, vec![], vec![floats(&[1.0, 0.5])], 1);
    assert_fails(upsample, x(&[2, 4]), "scale 0.5 is less than 1");

    let attr = one_node("Upsample", 7, vec![str_attr("mode", "nearest")], vec![], 1);
    assert_fails(attr, x(&[2, 4]), "attribute 'scales' is required");
}

#[test]
fn scatter_and_gather_nd_indices_out_of_range_are_reported() {
    let idx = |v: &[i64], shape: &[i64]| Tensor::from_slice(v).reshape(shape);
    let elements = one_node(
        "ScatterElements",
        18,
        vec![("axis", Attr::Int(1))],
        vec![idx(&[0, 3], &[1, 2]), x(&[1, 2])],
        1,
    );
    assert_fails(
        elements,
        x(&[2, 3]),
        "index 3 is out of range for an axis of size 3",
    );

    let negative = one_node(
        "ScatterElements",
        18,
        vec![],
        vec![idx(&[-3], &[1, 1]), x(&[1, 1])],
        1,
    );
    assert_fails(negative, x(&[2, 3]), "index -3 is out of range");

    let shapes = one_node(
        "ScatterElements",
        18,
        vec![],
        vec![idx(&[0, 1], &[1, 2]), x(&[1, 3])],
        1,
    );
    assert_fails(shapes, x(&[2, 3]), "the same shape");

    let nd = one_node(
        "ScatterND",
        18,
        vec![],
        vec![idx(&[1, 5], &[1, 2]), x(&[1])],
        1,
    );
    assert_fails(
        nd,
        x(&[2, 3]),
        "index 5 is out of range for an axis of size 3",
    );

    let updates = one_node(
        "ScatterND",
        18,
        vec![],
        vec![idx(&[1], &[1, 1]), x(&[1, 2])],
        1,
    );
    assert_fails(updates, x(&[2, 3]), "should have shape [1, 3]");

    let gather = one_node("GatherND", 13, vec![], vec![idx(&[0, -4], &[1, 2])], 1);
    assert_fails(gather, x(&[2, 3]), "index -4 is out of range");

    let batch = one_node(
        "GatherND",
        13,
        vec![("batch_dims", Attr::Int(2))],
        vec![idx(&[0, 1], &[1, 2])],
        1,
    );
    assert_fails(batch, x(&[2, 3]), "batch_dims 2");

    let onehot = one_node(
        "OneHot",
        11,
        vec![("axis", Attr::Int(3))],
        vec![Tensor::from(4i64), floats(&[0.0, 1.0])],
        1,
    );
    assert_fails(
        onehot,
        x(&[2, 3]),
        "axis 3 out of range for an output of rank 3",
    );

    let depth = one_node(
        "OneHot",
        11,
        vec![],
        vec![Tensor::from(0i64), floats(&[0.0, 1.0])],
        1,
    );
    assert_fails(depth, x(&[2]), "depth 0 is not a positive count");
}

#[test]
fn scatter_reductions_are_checked_against_the_opset() {
    let idx = Tensor::from_slice(&[0i64]).reshape([1, 1]);
    let upd = || x(&[1, 1]);
    let unknown = one_node(
        "ScatterElements",
        18,
        vec![str_attr("reduction", "mean")],
        vec![idx.shallow_clone(), upd()],
        1,
    );
    assert_fails(unknown, x(&[2, 3]), "reduction 'mean' is not one of");

    let early = one_node(
        "ScatterND",
        16,
        vec![str_attr("reduction", "max")],
        vec![idx.shallow_clone(), x(&[1, 3])],
        1,
    );
    assert_fails(early, x(&[2, 3]), "reduction 'max' exists from opset 18");

    let add = one_node(
        "ScatterElements",
        13,
        vec![str_attr("reduction", "add")],
        vec![idx, upd()],
        1,
    );
    assert_fails(add, x(&[2, 3]), "reduction 'add' exists from opset 16");
}

#[test]
fn other_new_ops_reject_bad_arguments() {
    let topk = one_node("TopK", 11, vec![], vec![ints(&[4])], 2);
    assert_fails(
        topk,
        x(&[2, 3]),
        "k 4 is out of range for an axis of size 3",
    );

    let attr = one_node("TopK", 11, vec![("k", Attr::Int(1))], vec![ints(&[1])], 2);
    assert_fails(attr, x(&[2, 3]), "'k' is input 1 from opset 10");

    let cumsum = one_node("CumSum", 14, vec![], vec![Tensor::from(2i64)], 1);
    assert_fails(cumsum, x(&[2, 3]), "axis 2 out of range for rank 2");

    let d2s_mode = one_node(
        "DepthToSpace",
        13,
        vec![("blocksize", Attr::Int(2)), str_attr("mode", "RDC")],
        vec![],
        1,
    );
    assert_fails(d2s_mode, x(&[1, 4, 2, 2]), "mode 'RDC' is not DCR or CRD");

    let crd_early = one_node(
        "DepthToSpace",
        1,
        vec![("blocksize", Attr::Int(2)), str_attr("mode", "CRD")],
        vec![],
        1,
    );
    assert_fails(crd_early, x(&[1, 4, 2, 2]), "CRD from opset 11");

    let channels = one_node(
        "DepthToSpace",
        13,
        vec![("blocksize", Attr::Int(2))],
        vec![],
        1,
    );
    assert_fails(channels, x(&[1, 6, 2, 2]), "6 channels are not a multiple");

    let no_block = one_node("SpaceToDepth", 13, vec![], vec![], 1);
    assert_fails(
        no_block,
        x(&[1, 1, 2, 2]),
        "blocksize 0 should be at least 1",
    );

    let rank = one_node(
        "SpaceToDepth",
        13,
        vec![("blocksize", Attr::Int(2))],
        vec![],
        1,
    );
    assert_fails(rank, x(&[4, 4]), "should have rank 4");

    let spatial = one_node(
        "SpaceToDepth",
        13,
        vec![("blocksize", Attr::Int(2))],
        vec![],
        1,
    );
    assert_fails(
        spatial,
        x(&[1, 1, 3, 2]),
        "is not a multiple of blocksize 2",
    );

    let lp = one_node("LpNormalization", 22, vec![("p", Attr::Int(3))], vec![], 1);
    assert_fails(lp, x(&[2, 3]), "p 3 is not 1 or 2");

    // The 2-D coercion of opsets before 13 would take an axis equal to the
    // rank (Flatten's range); these ops' axis is in [-r, r - 1].
    for op in ["Hardmax", "Softmax", "LogSoftmax"] {
        let node = one_node(op, 11, vec![("axis", Attr::Int(2))], vec![], 1);
        assert_fails(node, x(&[2, 3]), "axis 2 out of range for rank 2");
    }

    let trilu = one_node("Trilu", 14, vec![], vec![], 1);
    assert_fails(trilu, x(&[3]), "needs rank at least 2");
}

fn heads(q: i64, kv: i64) -> Vec<(&'static str, Attr)> {
    vec![
        ("q_num_heads", Attr::Int(q)),
        ("kv_num_heads", Attr::Int(kv)),
    ]
}

#[test]
fn attention_misuse_is_reported() {
    // 3-D inputs need the head counts.
    let no_heads = one_node(
        "Attention",
        23,
        vec![],
        vec![x(&[1, 2, 8]), x(&[1, 2, 8])],
        1,
    );
    assert_fails(no_heads, x(&[1, 2, 8]), "attribute q_num_heads is required");

    let gqa = one_node(
        "Attention",
        23,
        heads(3, 2),
        vec![x(&[1, 2, 8]), x(&[1, 2, 8])],
        1,
    );
    assert_fails(
        gqa,
        x(&[1, 2, 12]),
        "3 query heads are not a multiple of the 2",
    );

    let ranks = one_node(
        "Attention",
        23,
        vec![],
        vec![x(&[1, 2, 8]), x(&[1, 2, 8])],
        1,
    );
    assert_fails(ranks, x(&[1, 1, 2, 8]), "all be 3-D or all 4-D");

    let head_size = one_node(
        "Attention",
        23,
        vec![],
        vec![x(&[1, 1, 2, 4]), x(&[1, 1, 2, 4])],
        1,
    );
    assert_fails(
        head_size,
        x(&[1, 1, 2, 8]),
        "K's head size 4 differs from Q's 8",
    );

    // past_key without past_value (inputs K, V, attn_mask, past_key).
    let kv = || vec![x(&[1, 1, 2, 4]), x(&[1, 1, 2, 4])];
    let mut half_cache = kv();
    half_cache.extend([x(&[2, 4]), x(&[1, 1, 2, 4])]);
    let cache = one_node("Attention", 23, vec![], half_cache, 1);
    assert_fails(cache, x(&[1, 1, 2, 4]), "must be given together");

    let mut long = kv();
    long.push(x(&[2, 3]));
    let mask = one_node("Attention", 23, vec![], long, 1);
    assert_fails(mask, x(&[1, 1, 2, 4]), "more than the 2 keys");

    let mode = one_node(
        "Attention",
        23,
        vec![("qk_matmul_output_mode", Attr::Int(4))],
        kv(),
        1,
    );
    assert_fails(mode, x(&[1, 1, 2, 4]), "qk_matmul_output_mode 4");

    let window = one_node(
        "Attention",
        24,
        vec![("left_window_size", Attr::Int(1))],
        kv(),
        1,
    );
    assert_fails(window, x(&[1, 1, 2, 4]), "exists from Attention 25");

    let heads_4d = one_node("Attention", 25, heads(1, 1), kv(), 1);
    assert_fails(
        heads_4d,
        x(&[1, 1, 2, 4]),
        "must not be given with 4-D inputs",
    );

    let precision = one_node(
        "Attention",
        23,
        vec![("softmax_precision", Attr::Int(7))],
        kv(),
        1,
    );
    assert_fails(precision, x(&[1, 1, 2, 4]), "softmax_precision 7");
}

#[test]
fn rms_norm_rotary_and_linear_attention_misuse_is_reported() {
    let scale = one_node("RMSNormalization", 23, vec![], vec![x(&[3])], 1);
    assert_fails(
        scale,
        x(&[2, 4]),
        "does not broadcast to the normalised shape",
    );

    let stash = one_node(
        "RMSNormalization",
        23,
        vec![("stash_type", Attr::Int(7))],
        vec![x(&[4])],
        1,
    );
    assert_fails(
        stash,
        x(&[2, 4]),
        "stash_type 7 is not a floating-point type",
    );

    let rows = |n: i64| vec![x(&[n, 2]), x(&[n, 2])];
    let mut far = rows(3);
    far.push(ints(&[0, 3]).reshape([1, 2]));
    let position = one_node("RotaryEmbedding", 23, vec![], far, 1);
    assert_fails(
        position,
        x(&[1, 1, 2, 4]),
        "position id 3 is outside the 3 rows",
    );

    let mut odd = rows(3);
    odd.push(ints(&[0, 1]).reshape([1, 2]));
    let dim = one_node(
        "RotaryEmbedding",
        23,
        vec![("rotary_embedding_dim", Attr::Int(3))],
        odd,
        1,
    );
    assert_fails(
        dim,
        x(&[1, 1, 2, 4]),
        "rotary_embedding_dim 3 should be even",
    );

    let flat = one_node("RotaryEmbedding", 23, vec![], rows(3), 1);
    assert_fails(flat, x(&[1, 2, 8]), "attribute num_heads is required");

    let qkv = || vec![x(&[1, 2, 4]), x(&[1, 2, 4])];
    let gated = one_node(
        "LinearAttention",
        27,
        [
            heads(1, 1),
            vec![("update_rule", Attr::Str("gated".into()))],
        ]
        .concat(),
        qkv(),
        2,
    );
    assert_fails(
        gated,
        x(&[1, 2, 4]),
        "update_rule 'gated' requires the decay input",
    );

    let rule = one_node(
        "LinearAttention",
        27,
        [
            heads(1, 1),
            vec![("update_rule", Attr::Str("softmax".into()))],
        ]
        .concat(),
        qkv(),
        2,
    );
    assert_fails(rule, x(&[1, 2, 4]), "update_rule 'softmax' is not");

    let group = one_node("LinearAttention", 27, heads(3, 2), qkv(), 2);
    assert_fails(
        group,
        x(&[1, 2, 6]),
        "q_num_heads 3 is not a multiple of kv_num_heads 2",
    );
}

#[test]
fn small_op_misuse_is_reported() {
    let float_shift = one_node(
        "BitShift",
        11,
        vec![("direction", Attr::Str("LEFT".into()))],
        vec![x(&[2])],
        1,
    );
    assert_fails(float_shift, x(&[2]), "BitShift takes integer input");

    let cond = Tensor::from_slice(&[false, false, true]);
    let past = one_node("Compress", 11, vec![("axis", Attr::Int(1))], vec![cond], 1);
    assert_fails(
        past,
        x(&[3, 2]),
        "condition is true at 2, past the 2 slices",
    );

    let crop = one_node(
        "CenterCropPad",
        18,
        vec![("axes", Attr::Ints(vec![0]))],
        vec![ints(&[2, 2])],
        1,
    );
    assert_fails(crop, x(&[3, 3]), "should give one length per axis");

    let cumprod = one_node("CumProd", 26, vec![], vec![ints(&[2])], 1);
    assert_fails(cumprod, x(&[2, 3]), "axis 2 out of range");

    let lp = one_node(
        "LpPool",
        22,
        vec![("kernel_shape", Attr::Ints(vec![2])), ("p", Attr::Int(0))],
        vec![],
        1,
    );
    assert_fails(lp, x(&[1, 1, 4]), "p 0 should be a positive integer");
}

#[test]
fn mod_28_takes_floats_with_floor_division_and_the_divisor_sign() {
    let a = Tensor::from_slice(&[-3f32, 3.0, 0.0, -0.0, 5.0, 1.0]);
    let b = Tensor::from_slice(&[2f32, -2.0, -1.0, 1.0, f32::INFINITY, f32::NEG_INFINITY]);
    let g = one_node("Mod", 28, vec![], vec![b], 1);
    let y = g.forward(&[a]).unwrap().remove(0);
    let got = Vec::<f32>::try_from(&y).unwrap();
    let want = [1f32, -1.0, -0.0, 0.0, 5.0, f32::NEG_INFINITY];
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.to_bits(), w.to_bits(), "got {got:?}, want {want:?}");
    }
    // Before opset 28, fmod 0 takes integers only.
    let old = one_node("Mod", 27, vec![], vec![x(&[2])], 1);
    assert_fails(old, x(&[2]), "before opset 28");
}
