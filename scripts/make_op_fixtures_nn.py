#!/usr/bin/env python3
"""Single-op parity fixtures for the conv / pool / norm kernels.

Writes tests/fixtures/ops/nn_NAME.{onnx,input.npy,expected.npy}: one float
graph input, weights as initializers, the expected output computed by
onnxruntime on CPU with graph optimizations disabled (or, where onnxruntime
refuses a valid model, by onnx.reference.ReferenceEvaluator; the run lists
those). The cases cover what the
shared fixtures under tests/fixtures/models do not: asymmetric pads with
ceil_mode, pads over half the kernel, dilated AveragePool, even LRN sizes,
GroupNormalization, ConvTranspose, old opsets.

It also writes nn_err_*.onnx models without input/expected files (so the
parity test skips them) that tests/ops_nn.rs loads to check error paths.

Usage: python3 scripts/make_op_fixtures_nn.py   (seeded, reproducible)
"""

import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "ops")
RNG = np.random.default_rng(20240611)


def ir_version(opset):
    # The newest IR that onnxruntime accepts for each opset range.
    return 8 if opset <= 17 else 9 if opset <= 20 else 10


def model(op, shape, attrs, weights=(), opset=17, outputs=1, input_shape=True):
    """One `op` node reading input `x` then `weights` (initializers)."""
    names = ["x"] + [f"w{i}" if w is not None else "" for i, w in enumerate(weights)]
    outs = ["y"] + [f"y{i}" for i in range(1, outputs)]
    node = helper.make_node(op, names, outs, name=f"{op.lower()}_node", **attrs)
    inits = [
        numpy_helper.from_array(w.astype(np.float32), f"w{i}")
        for i, w in enumerate(weights)
        if w is not None
    ]
    x = helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, list(shape) if input_shape else None
    )
    ys = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs]
    graph = helper.make_graph([node], f"nn_{op}", [x], ys, inits)
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        ir_version=ir_version(opset),
        producer_name="make_op_fixtures_nn",
    )


def run(m, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


WRITTEN, SKIPPED, REFERENCE = [], [], []


def lrn_spec(x, size, alpha=1e-4, beta=0.75, bias=1.0):
    """LRN as the spec writes it: the square sum over channels
    [c - floor((size-1)/2), c + ceil((size-1)/2)]. onnxruntime refuses even
    sizes and onnx.reference's LRN loops over the batch axis instead of the
    channels, so neither can serve as the reference there."""
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    sq = np.pad(x.astype(np.float64) ** 2, [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    square_sum = sum(sq[:, i : i + x.shape[1]] for i in range(size))
    return (x / (bias + alpha / size * square_sum) ** beta).astype(np.float32)


def fixture(name, op, shape, attrs=None, weights=(), opset=17, numpy_ref=None):
    m = model(op, shape, attrs or {}, weights, opset)
    x = RNG.standard_normal(shape).astype(np.float32)
    try:
        y = run(m, x)
        if numpy_ref is not None:  # self-check of the numpy formula
            assert np.allclose(numpy_ref(x), y, rtol=1e-5, atol=1e-6), name
    except Exception as e:
        if numpy_ref is not None:
            y = numpy_ref(x)
            REFERENCE.append(f"nn_{name} (numpy, spec formula): {str(e).splitlines()[0][:80]}")
            return save(name, m, x, y)
        # onnxruntime refuses some valid models (even LRN sizes, 5-D LRN,
        # SAME Conv with dilations): use the ONNX reference implementation.
        try:
            y = ReferenceEvaluator(m).run(None, {"x": x})[0]
            REFERENCE.append(f"nn_{name} (onnx.reference): {str(e).splitlines()[0][:80]}")
        except Exception as e2:
            SKIPPED.append(f"nn_{name}: {str(e2).splitlines()[0][:160]}")
            return
    save(name, m, x, y)


def save(name, m, x, y):
    base = os.path.join(OUT, f"nn_{name}")
    onnx.save(m, base + ".onnx")
    np.save(base + ".input.npy", x)
    np.save(base + ".expected.npy", y.astype(np.float32))
    WRITTEN.append(name)


def indices_fixture(name, shape, attrs, opset=17):
    """MaxPool whose graph output is its Indices (int64), so the parity test,
    which checks the first graph output, checks the indices."""
    node = helper.make_node("MaxPool", ["x"], ["y", "ind"], name="maxpool_node", **attrs)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    ind = helper.make_tensor_value_info("ind", TensorProto.INT64, None)
    graph = helper.make_graph([node], "nn_maxpool_indices", [x], [ind])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                          ir_version=ir_version(opset), producer_name="make_op_fixtures_nn")
    xv = RNG.standard_normal(shape).astype(np.float32)
    save(name, m, xv, run(m, xv))


def error_model(name, op, shape, attrs=None, weights=(), opset=17, outputs=1, input_shape=True):
    m = model(op, shape, attrs or {}, weights, opset, outputs, input_shape)
    onnx.save(m, os.path.join(OUT, f"nn_err_{name}.onnx"))


def w(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def pools():
    mp, ap = "MaxPool", "AveragePool"
    fixture("maxpool2d_asym_ceil", mp, (1, 2, 7, 8),
            dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 1, 0], ceil_mode=1))
    fixture("maxpool2d_bigpad", mp, (1, 2, 6, 6),
            dict(kernel_shape=[3, 3], pads=[2, 2, 2, 2]))
    fixture("maxpool1d_ceil_drop", mp, (1, 3, 6),
            dict(kernel_shape=[3], strides=[2], pads=[2, 2], ceil_mode=1))
    fixture("maxpool2d_dilation_ceil", mp, (1, 2, 9, 8),
            dict(kernel_shape=[2, 3], dilations=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1))
    fixture("maxpool2d_same_upper_ceil", mp, (1, 2, 7, 9),
            dict(kernel_shape=[2, 3], strides=[3, 2], auto_pad="SAME_UPPER", ceil_mode=1))
    fixture("maxpool3d_asym", mp, (1, 2, 5, 6, 7),
            dict(kernel_shape=[2, 3, 3], strides=[1, 2, 2], pads=[1, 0, 2, 0, 1, 1], ceil_mode=1))
    fixture("maxpool2d_valid_stride", mp, (1, 2, 8, 9),
            dict(kernel_shape=[3, 2], strides=[2, 3], auto_pad="VALID"))
    fixture("maxpool2d_opset8", mp, (1, 2, 7, 7),
            dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), opset=8)
    fixture("maxpool2d_opset22", mp, (1, 2, 7, 7),
            dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 1, 0], ceil_mode=1), opset=22)
    indices_fixture("maxpool2d_indices", (2, 3, 6, 7), dict(kernel_shape=[3, 2], strides=[2, 2]))
    indices_fixture("maxpool2d_indices_asym_ceil", (2, 3, 7, 8),
                    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 1, 0], ceil_mode=1))
    indices_fixture("maxpool2d_indices_colmajor", (2, 2, 6, 7),
                    dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 1, 1, 1], storage_order=1))
    indices_fixture("maxpool3d_indices_dilation", (1, 2, 5, 6, 7),
                    dict(kernel_shape=[2, 2, 2], dilations=[2, 1, 2], pads=[1, 0, 0, 0, 1, 1]))
    indices_fixture("maxpool1d_indices_bigpad", (2, 3, 9),
                    dict(kernel_shape=[3], pads=[2, 2], strides=[2]))
    for cip in (0, 1):
        fixture(f"avgpool2d_asym_ceil_cip{cip}", ap, (1, 2, 7, 8),
                dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 2, 0], ceil_mode=1,
                     count_include_pad=cip))
        fixture(f"avgpool2d_bigpad_cip{cip}", ap, (1, 2, 6, 5),
                dict(kernel_shape=[3, 3], pads=[2, 2, 2, 1], count_include_pad=cip))
        fixture(f"avgpool1d_ceil_drop_cip{cip}", ap, (1, 3, 6),
                dict(kernel_shape=[3], strides=[2], pads=[2, 2], ceil_mode=1, count_include_pad=cip))
        fixture(f"avgpool2d_dilation_cip{cip}", ap, (1, 2, 9, 8),
                dict(kernel_shape=[3, 2], dilations=[2, 3], pads=[1, 1, 1, 1], count_include_pad=cip),
                opset=19)
        fixture(f"avgpool2d_dilation_ceil_cip{cip}", ap, (1, 2, 9, 8),
                dict(kernel_shape=[2, 2], dilations=[2, 2], strides=[2, 2], pads=[1, 0, 1, 1],
                     ceil_mode=1, count_include_pad=cip), opset=19)
        fixture(f"avgpool2d_same_lower_cip{cip}", ap, (1, 2, 7, 8),
                dict(kernel_shape=[3, 2], strides=[2, 2], auto_pad="SAME_LOWER", count_include_pad=cip))
        fixture(f"avgpool3d_asym_cip{cip}", ap, (1, 2, 5, 6, 7),
                dict(kernel_shape=[2, 3, 3], strides=[1, 2, 2], pads=[1, 0, 2, 0, 1, 1], ceil_mode=1,
                     count_include_pad=cip))
    fixture("avgpool2d_opset7", ap, (1, 2, 7, 7),
            dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1), opset=7)
    fixture("globalmaxpool2d_opset7", "GlobalMaxPool", (2, 3, 5, 4), opset=7)


def norms():
    for name, shape, attrs in [
        ("lrn_size4", (1, 7, 3, 4), dict(size=4, alpha=0.01, beta=0.6, bias=1.5)),
        ("lrn_size2", (2, 5, 3, 2), dict(size=2, alpha=0.02, beta=0.75, bias=2.0)),
        ("lrn_size3", (2, 6, 3, 2), dict(size=3, alpha=0.3, beta=0.9, bias=0.5)),
    ]:
        fixture(name, "LRN", shape, attrs, numpy_ref=lambda x, a=attrs: lrn_spec(x, **a))
    fixture("groupnorm_opset18", "GroupNormalization", (2, 6, 4, 5),
            dict(num_groups=3, epsilon=1e-3), (w(3), w(3)), opset=18)
    fixture("groupnorm_opset21", "GroupNormalization", (2, 6, 4, 5),
            dict(num_groups=2), (w(6), w(6)), opset=21)
    fixture("layernorm_axis_neg2", "LayerNormalization", (2, 3, 4, 5),
            dict(axis=-2, epsilon=1e-3), (w(4, 5), w(4, 5)))
    fixture("layernorm_axis0", "LayerNormalization", (2, 3, 4),
            dict(axis=0), (w(2, 3, 4), None))
    fixture("instancenorm3d", "InstanceNormalization", (2, 3, 3, 4, 2),
            dict(epsilon=1e-2), (w(3), w(3)))
    var = lambda *s: np.abs(w(*s)) + 0.5  # noqa: E731
    fixture("batchnorm_opset7", "BatchNormalization", (2, 3, 4, 4),
            dict(epsilon=1e-3), (w(3), w(3), w(3), var(3)), opset=7)
    fixture("batchnorm_opset7_spatial0", "BatchNormalization", (2, 3, 4, 4),
            dict(spatial=0), (w(3, 4, 4), w(3, 4, 4), w(3, 4, 4), var(3, 4, 4)), opset=7)
    fixture("batchnorm_opset9", "BatchNormalization", (2, 3, 5),
            dict(momentum=0.5), (w(3), w(3), w(3), var(3)), opset=9)
    fixture("batchnorm_opset15", "BatchNormalization", (2, 3, 2, 2, 3),
            dict(training_mode=0), (w(3), w(3), w(3), var(3)), opset=15)


def convs():
    fixture("conv1d_asym_pads", "Conv", (1, 3, 11),
            dict(pads=[2, 0], strides=[2]), (w(4, 3, 3), w(4)))
    fixture("conv2d_same_lower_stride_dil", "Conv", (1, 2, 9, 10),
            dict(auto_pad="SAME_LOWER", strides=[2, 3], dilations=[2, 1]), (w(3, 2, 3, 3), w(3)))
    fixture("conv2d_group_asym", "Conv", (1, 4, 7, 6),
            dict(group=2, pads=[1, 0, 0, 2]), (w(6, 2, 3, 2), None))
    fixture("conv3d_dilation_asym", "Conv", (1, 2, 6, 7, 5),
            dict(dilations=[1, 2, 1], pads=[0, 1, 1, 1, 0, 0]), (w(2, 2, 2, 2, 3), w(2)))
    fixture("conv2d_opset7", "Conv", (1, 3, 6, 6),
            dict(pads=[1, 1, 1, 1], strides=[2, 2]), (w(2, 3, 3, 3), w(2)), opset=7)
    ct = "ConvTranspose"
    fixture("convtranspose2d_basic", ct, (1, 3, 4, 5), {}, (w(3, 2, 3, 3), w(2)))
    fixture("convtranspose2d_stride_pads", ct, (1, 3, 4, 5),
            dict(strides=[2, 2], pads=[1, 0, 0, 1]), (w(3, 2, 3, 3), w(2)))
    fixture("convtranspose2d_output_padding", ct, (1, 2, 4, 4),
            dict(strides=[3, 2], output_padding=[2, 1], pads=[1, 1, 1, 1]), (w(2, 3, 3, 3), w(3)))
    fixture("convtranspose2d_output_shape", ct, (1, 2, 4, 5),
            dict(strides=[2, 2], output_shape=[8, 9]), (w(2, 2, 3, 3), w(2)))
    fixture("convtranspose2d_output_shape_upper", ct, (1, 2, 4, 5),
            dict(strides=[2, 2], output_shape=[8, 10], auto_pad="SAME_UPPER"), (w(2, 2, 3, 4), None))
    fixture("convtranspose2d_same_upper", ct, (1, 2, 4, 5),
            dict(strides=[2, 2], auto_pad="SAME_UPPER"), (w(2, 2, 3, 3), w(2)))
    fixture("convtranspose2d_same_lower", ct, (1, 2, 4, 5),
            dict(strides=[2, 2], auto_pad="SAME_LOWER"), (w(2, 2, 3, 3), w(2)))
    fixture("convtranspose2d_valid", ct, (1, 2, 4, 5),
            dict(strides=[2, 1], auto_pad="VALID"), (w(2, 2, 3, 2), w(2)))
    fixture("convtranspose2d_group_dilation", ct, (1, 4, 5, 4),
            dict(group=2, dilations=[2, 1], strides=[1, 2]), (w(4, 3, 3, 3), w(6)))
    fixture("convtranspose1d", ct, (2, 3, 7),
            dict(strides=[3], pads=[1, 2], output_padding=[1]), (w(3, 2, 4), w(2)))
    fixture("convtranspose3d", ct, (1, 2, 3, 4, 3),
            dict(strides=[2, 1, 2], pads=[1, 0, 0, 0, 1, 1]), (w(2, 2, 2, 3, 3), w(2)))


def errors():
    error_model("conv_auto_pad", "Conv", (1, 2, 5, 5), dict(auto_pad="SAME"), (w(2, 2, 3, 3),))
    error_model("conv_rank2", "Conv", None, {}, (w(2, 2, 3, 3),), input_shape=False)
    error_model("conv_kernel_shape", "Conv", (1, 2, 5, 5), dict(kernel_shape=[2, 2]), (w(2, 2, 3, 3),))
    error_model("maxpool_storage_order", "MaxPool", (1, 2, 5, 5),
                dict(kernel_shape=[2, 2], storage_order=2))
    error_model("maxpool_no_kernel", "MaxPool", (1, 2, 5, 5), {})
    error_model("maxpool_rank2", "MaxPool", None, dict(kernel_shape=[2, 2]), input_shape=False)
    error_model("avgpool_kernel_too_big", "AveragePool", (1, 2, 3, 3), dict(kernel_shape=[5, 5]))
    error_model("batchnorm_training", "BatchNormalization", (1, 2, 3, 3),
                dict(training_mode=1), (w(2), w(2), w(2), w(2)), opset=15)
    error_model("layernorm_stash", "LayerNormalization", (2, 3), dict(stash_type=7), (w(3),))
    error_model("groupnorm_groups", "GroupNormalization", (1, 6, 2, 2),
                dict(num_groups=4), (w(6), w(6)), opset=21)
    # onnxruntime sizes SAME pads with the undilated kernel, the spec does not.
    error_model("maxpool_same_dilation", "MaxPool", (1, 2, 9, 8),
                dict(kernel_shape=[3, 3], dilations=[2, 1], strides=[2, 2], auto_pad="SAME_LOWER"))
    error_model("lrn_size0", "LRN", (1, 3, 2, 2), dict(size=0))
    # onnxruntime gives the full length (5, 11), the spec input * stride.
    error_model("convtranspose_same_small_kernel", "ConvTranspose", (1, 2, 3, 4),
                dict(strides=[2, 3], auto_pad="SAME_UPPER"), (w(2, 2, 1, 2),))
    # Not an error since the spec's negative total padding extends the
    # output (tests/ops_nn.rs checks the zeros); the name stays.
    error_model("convtranspose_output_shape_long", "ConvTranspose", (1, 2, 3, 4),
                dict(strides=[2, 2], output_shape=[9, 8]), (w(2, 2, 2, 2),))
    error_model("convtranspose_auto_pad", "ConvTranspose", (1, 2, 3, 3), dict(auto_pad="FULL"), (w(2, 2, 3, 3),))


def main():
    os.makedirs(OUT, exist_ok=True)
    pools()
    norms()
    convs()
    errors()
    print(f"wrote {len(WRITTEN)} fixtures to {os.path.normpath(OUT)}")
    for s in REFERENCE:
        print("expected not from onnxruntime (it fails):", s)
    for s in SKIPPED:
        print("skipped (onnxruntime fails):", s, file=sys.stderr)


if __name__ == "__main__":
    main()
