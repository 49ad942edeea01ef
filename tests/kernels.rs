//! The kernels whose bits the engine relies on give one sample the same
//! bits whatever else is in its batch and however many threads run it: the
//! engine batches rows of different samples and faults, in windows, on any
//! thread count, and compares and resumes them bitwise. Holds on any CPU
//! (with or without AVX-512, and with `FAULTSWEEP_AVX512=off`).

use faultsweep::graph::{ops, Attr, Attrs, Node};
use faultsweep::kernels::threads::with_threads;
use tch::{Device, Kind, Tensor};

/// A node of `op` with attributes `attrs`, for calling its kernel alone.
fn node(op: &str, attrs: &[(&str, Attr)]) -> Node {
    Node {
        index: 0,
        name: op.to_string(),
        op: op.parse().unwrap(),
        inputs: vec![],
        outputs: vec![],
        attrs: Attrs(
            attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        ),
        opset: 17,
    }
}

fn random(shape: &[i64], seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randn(shape, (Kind::Float, Device::Cpu))
}

/// The op's first output on `input` (batched on axis 0) and the constants.
fn run(node: &Node, input: &Tensor, constants: &[Tensor]) -> Tensor {
    let mut inputs = vec![Some(input)];
    inputs.extend(constants.iter().map(Some));
    let kernel = ops::lookup(node.op.name()).unwrap().kernel;
    kernel(node, &inputs).unwrap().remove(0)
}

/// Sample `row` of batches of many sizes, and at many places in them, on
/// one thread and two, against the sample alone on one thread.
fn assert_batch_invariant(what: &str, node: &Node, sample: &[i64], constants: &[Tensor]) {
    let mut shape = vec![256];
    shape.extend_from_slice(sample);
    let batch = random(&shape, 7);
    let alone = with_threads(1, || run(node, &batch.narrow(0, 0, 1), constants));
    for n in [1, 2, 3, 4, 5, 7, 8, 13, 16, 31, 32, 64, 97, 128, 255, 256] {
        for t in [1, 2] {
            for at in [0, n / 2, n - 1] {
                // Sample 0 at place `at`, the others the batch's own.
                let rows = batch.narrow(0, 0, n).copy();
                rows.get(at).copy_(&batch.get(0));
                let y = with_threads(t, || run(node, &rows, constants).narrow(0, at, 1));
                assert!(
                    y.equal(&alone),
                    "{what}: sample at {at} of {n} on {t} threads differs from it alone, by up to {}",
                    (&y - &alone).abs().max().double_value(&[])
                );
            }
        }
    }
}

fn ints(v: &[i64]) -> Attr {
    Attr::Ints(v.to_vec())
}

#[test]
fn gemm_gives_a_sample_the_same_bits_in_any_batch() {
    let w = random(&[1000, 160], 1);
    let b = random(&[1000], 2);
    let linear = node("Gemm", &[("transB", Attr::Int(1))]);
    assert_batch_invariant("Gemm transB", &linear, &[160], &[w, b]);
    let plain = node(
        "Gemm",
        &[("alpha", Attr::Float(0.5)), ("beta", Attr::Float(2.0))],
    );
    assert_batch_invariant(
        "Gemm",
        &plain,
        &[84],
        &[random(&[84, 10], 3), random(&[10], 4)],
    );
}

#[test]
fn matmul_gives_a_sample_the_same_bits_in_any_batch() {
    let matmul = node("MatMul", &[]);
    assert_batch_invariant("MatMul 2-D", &matmul, &[300], &[random(&[300, 70], 5)]);
    assert_batch_invariant("MatMul 3-D", &matmul, &[6, 48], &[random(&[48, 33], 6)]);
}

#[test]
fn every_conv_kind_gives_a_sample_the_same_bits_in_any_batch() {
    let conv = |attrs: &[(&str, Attr)]| node("Conv", attrs);
    let pads = ("pads", ints(&[1, 1, 1, 1]));
    let cases: Vec<(&str, Node, Vec<i64>, Vec<Tensor>)> = vec![
        (
            "3x3 stride 2 (a stem)",
            conv(&[pads.clone(), ("strides", ints(&[2, 2]))]),
            vec![3, 32, 32],
            vec![random(&[16, 3, 3, 3], 1), random(&[16], 2)],
        ),
        (
            "3x3",
            conv(std::slice::from_ref(&pads)),
            vec![16, 14, 14],
            vec![random(&[24, 16, 3, 3], 3), random(&[24], 4)],
        ),
        (
            "5x5 without bias",
            conv(&[]),
            vec![1, 28, 28],
            vec![random(&[6, 1, 5, 5], 5)],
        ),
        (
            "1x1 on 7x7",
            conv(&[]),
            vec![160, 7, 7],
            vec![random(&[320, 160, 1, 1], 6), random(&[320], 7)],
        ),
        (
            "1x1 on 28x28",
            conv(&[]),
            vec![32, 28, 28],
            vec![random(&[16, 32, 1, 1], 8), random(&[16], 9)],
        ),
        (
            "1x1 on 56x56",
            conv(&[]),
            vec![16, 56, 56],
            vec![random(&[24, 16, 1, 1], 10)],
        ),
        (
            "depthwise 3x3",
            conv(&[pads.clone(), ("group", Attr::Int(32))]),
            vec![32, 14, 14],
            vec![random(&[32, 1, 3, 3], 11), random(&[32], 12)],
        ),
        (
            "depthwise 3x3 stride 2",
            conv(&[
                pads.clone(),
                ("group", Attr::Int(32)),
                ("strides", ints(&[2, 2])),
            ]),
            vec![32, 14, 14],
            vec![random(&[32, 1, 3, 3], 13), random(&[32], 14)],
        ),
        (
            "grouped 3x3",
            conv(&[pads, ("group", Attr::Int(4))]),
            vec![16, 9, 9],
            vec![random(&[8, 4, 3, 3], 15), random(&[8], 16)],
        ),
    ];
    for (what, node, sample, constants) in cases {
        assert_batch_invariant(what, &node, &sample, &constants);
    }
}

#[test]
fn conv_transpose_gives_a_sample_the_same_bits_in_any_batch() {
    let up = node(
        "ConvTranspose",
        &[("strides", ints(&[2, 2])), ("pads", ints(&[1, 1, 1, 1]))],
    );
    let constants = [random(&[16, 8, 3, 3], 1), random(&[8], 2)];
    assert_batch_invariant("ConvTranspose stride 2", &up, &[16, 7, 7], &constants);
}

#[test]
fn pooling_normalization_and_softmax_give_a_sample_the_same_bits_in_any_batch() {
    let c = 96;
    let positive = random(&[c], 3).abs() + 0.1;
    let norm = node("BatchNormalization", &[]);
    let stats = vec![random(&[c], 1), random(&[c], 2), random(&[c], 4), positive];
    assert_batch_invariant("BatchNormalization", &norm, &[c, 7, 7], &stats);
    let global = node("GlobalAveragePool", &[]);
    assert_batch_invariant("GlobalAveragePool", &global, &[c, 7, 7], &[]);
    let average = node(
        "AveragePool",
        &[("kernel_shape", ints(&[3, 3])), ("strides", ints(&[2, 2]))],
    );
    assert_batch_invariant("AveragePool", &average, &[c, 9, 9], &[]);
    let softmax = node("Softmax", &[("axis", Attr::Int(1))]);
    assert_batch_invariant("Softmax", &softmax, &[1000], &[]);
    let mean = node("ReduceMean", &[("axes", ints(&[2, 3]))]);
    assert_batch_invariant("ReduceMean", &mean, &[c, 14, 14], &[]);
}
