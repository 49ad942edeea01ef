#!/usr/bin/env python3
"""Single-op parity fixtures for the ops added after the first tensor
families: Resize and Upsample (every mode, coordinate transformation,
nearest rounding, scales or sizes, axes, aspect-ratio policy, antialias,
crop and extrapolation), TopK, ScatterElements and ScatterND (every
reduction), GatherND (batch_dims), CumSum, DepthToSpace, SpaceToDepth,
Hardmax, LpNormalization, IsNaN, IsInf, the trigonometric and hyperbolic
functions, OneHot, NonZero and Trilu, NonMaxSuppression, RoiAlign,
GridSample, AffineGrid, LSTM, GRU, RNN, NegativeLogLikelihoodLoss,
SoftmaxCrossEntropyLoss, Unique and Col2Im, over the opset versions that
change them; torch-exported LSTM, GRU, roi_align and nms modules; and If
nodes whose condition is a constant (faultsweep inlines the branch).

Writes tests/fixtures/ops/m_NAME.{onnx,input.npy,expected.npy} and their
entries in manifest.json (the other entries are kept). Same conventions as
make_op_fixtures_tensor.py: one float32 input `x`, one float32 output `y`,
index tensors as initializers, integer and boolean results cast to float32
at the end, reference outputs from onnxruntime on CPU with graph
optimizations disabled.

    python3 scripts/make_op_fixtures_more.py
    python3 scripts/make_op_fixtures_more.py if   # one group only (GROUPS)
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ops"
PREFIX = "m_"
RNG = np.random.default_rng(20261207)
FIXTURES = []


def ir_version(opset):
    # The newest IR that onnxruntime accepts for each opset range.
    return 8 if opset <= 17 else 9 if opset <= 20 else 10


def fixture(name, opset, shape, nodes, inits=(), desc="", x=None):
    """Registers a graph over input x (float32, `shape`) producing y."""
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in inits]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version(opset)
    )
    if x is None:
        x = RNG.standard_normal(shape).astype(np.float32)
    FIXTURES.append((f"{PREFIX}{name}", opset, model, np.asarray(x, np.float32), desc))


def node(op, inputs, outputs=("y",), **attrs):
    return helper.make_node(op, list(inputs), list(outputs), **attrs)


def to_float(src="r", dst="y"):
    return node("Cast", [src], [dst], to=TensorProto.FLOAT)


def i64(*v):
    return np.array(v, dtype=np.int64)


def f32(*v):
    return np.array(v, dtype=np.float32)


EMPTY = np.zeros((0,), np.float32)
# A fixture whose output size onnxruntime rounds in float32, unlike ONNX
# shape inference: its output shape is left undeclared.
FLOAT32_SIZES = "output size rounded in float32 (onnxruntime), not float64"


def resize_fixtures():
    s = [1, 2, 4, 5]
    up, down = f32(1, 1, 2, 1.5), f32(1, 1, 0.6, 0.5)
    coords = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]
    # Every mode with every coordinate transformation, enlarging and
    # shrinking, by scales (opset 13: roi and scales optional inputs).
    for mode in ["nearest", "linear", "cubic"]:
        for ct in coords:
            for tag, sc in [("up", up), ("down", down)]:
                fixture(f"resize_{mode}_{ct}_{tag}", 13, s,
                        [node("Resize", ["x", "", "sc"], mode=mode,
                              coordinate_transformation_mode=ct)], [("sc", sc)])
        fixture(f"resize_{mode}_half_pixel_symmetric", 19, s,
                [node("Resize", ["x", "", "sc"], mode=mode,
                      coordinate_transformation_mode="half_pixel_symmetric")],
                [("sc", f32(1, 1, 1.7, 0.7))])
        fixture(f"resize_{mode}_tf_crop_and_resize", 13, s,
                [node("Resize", ["x", "roi", "", "sz"], mode=mode,
                      coordinate_transformation_mode="tf_crop_and_resize",
                      extrapolation_value=-3.5)],
                [("roi", f32(0, 0, -0.2, 0.3, 1, 1, 0.8, 1.4)), ("sz", i64(1, 2, 6, 7))])
    fixture("resize_nearest_tf_half_pixel_for_nn", 11, s,
            [node("Resize", ["x", "roi", "sc"], mode="nearest",
                  coordinate_transformation_mode="tf_half_pixel_for_nn")],
            [("roi", EMPTY), ("sc", f32(1, 1, 1.5, 0.6))])
    # Gone from the spec in opset 13; onnxruntime still runs it. (A fixed
    # input: fixtures added later draw nothing from RNG, so the others stay.)
    fixture("resize_nearest_tf_half_pixel_for_nn_opset13", 13, s,
            [node("Resize", ["x", "", "sc"], mode="nearest",
                  coordinate_transformation_mode="tf_half_pixel_for_nn")],
            [("sc", f32(1, 1, 2.5, 0.4))], x=np.arange(40).reshape(s) / 7)
    # Nearest rounding at ties: shrinking by 2 with half_pixel and enlarging
    # by 2 with asymmetric both land exactly half way.
    for nm in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]:
        fixture(f"resize_nearest_{nm}_ties", 13, [1, 2, 8, 6],
                [node("Resize", ["x", "", "sc"], mode="nearest", nearest_mode=nm)],
                [("sc", f32(1, 1, 0.5, 0.5))])
        fixture(f"resize_nearest_{nm}_asymmetric", 11, s,
                [node("Resize", ["x", "roi", "sc"], mode="nearest", nearest_mode=nm,
                      coordinate_transformation_mode="asymmetric")],
                [("roi", EMPTY), ("sc", f32(1, 1, 2, 2.5))])
    # Sizes instead of scales; opset 11 needs roi and an empty scales.
    fixture("resize_linear_sizes_opset11", 11, s,
            [node("Resize", ["x", "roi", "sc", "sz"], mode="linear")],
            [("roi", EMPTY), ("sc", EMPTY), ("sz", i64(1, 2, 7, 3))])
    # torchvision segmentation heads: bilinear, align_corners=False, sizes.
    fixture("resize_torchvision_bilinear", 13, [1, 3, 5, 5],
            [node("Resize", ["x", "", "", "sz"], mode="linear",
                  coordinate_transformation_mode="pytorch_half_pixel")],
            [("sz", i64(1, 3, 17, 17))])
    fixture("resize_align_corners_to_one", 13, s,
            [node("Resize", ["x", "", "", "sz"], mode="linear",
                  coordinate_transformation_mode="align_corners")],
            [("sz", i64(1, 2, 1, 3))])
    fixture("resize_pytorch_half_pixel_to_one", 13, s,
            [node("Resize", ["x", "", "", "sz"], mode="linear",
                  coordinate_transformation_mode="pytorch_half_pixel")],
            [("sz", i64(1, 2, 1, 3))])
    # tf2onnx CenterNet: nearest upsampling, asymmetric, floor.
    fixture("resize_tf_nearest_floor", 13, s,
            [node("Resize", ["x", "", "sc"], mode="nearest", nearest_mode="floor",
                  coordinate_transformation_mode="asymmetric")],
            [("sc", f32(1, 1, 2, 2))])
    # Cubic parameters.
    fixture("resize_cubic_a_exclude_outside", 13, s,
            [node("Resize", ["x", "", "sc"], mode="cubic", cubic_coeff_a=-0.5,
                  exclude_outside=1)], [("sc", f32(1, 1, 1.5, 0.8))])
    fixture("resize_cubic_exclude_outside_down", 13, [1, 1, 9, 8],
            [node("Resize", ["x", "", "sc"], mode="cubic", exclude_outside=1)],
            [("sc", f32(1, 1, 0.5, 0.375))])
    # Opset 18: axes, keep_aspect_ratio_policy, antialias.
    fixture("resize_axes_scales", 18, s,
            [node("Resize", ["x", "", "sc"], mode="linear", axes=[3, 2])],
            [("sc", f32(1.5, 0.75))])
    fixture("resize_axes_sizes_neg", 18, s,
            [node("Resize", ["x", "", "", "sz"], mode="nearest", axes=[-1])],
            [("sz", i64(9))])
    for pol in ["not_larger", "not_smaller"]:
        fixture(f"resize_keep_aspect_{pol}", 18, s,
                [node("Resize", ["x", "", "", "sz"], mode="linear", axes=[2, 3],
                      keep_aspect_ratio_policy=pol)], [("sz", i64(7, 8))])
    fixture("resize_axes_crop", 18, s,
            [node("Resize", ["x", "roi", "", "sz"], mode="linear", axes=[2],
                  coordinate_transformation_mode="tf_crop_and_resize")],
            [("roi", f32(0.25, 0.9)), ("sz", i64(5))])
    for mode in ["linear", "cubic"]:
        fixture(f"resize_antialias_{mode}_down", 18, [1, 2, 9, 10],
                [node("Resize", ["x", "", "sc"], mode=mode, antialias=1)],
                [("sc", f32(1, 1, 0.5, 0.3))])
        fixture(f"resize_antialias_{mode}_sizes", 18, [1, 2, 9, 10],
                [node("Resize", ["x", "", "", "sz"], mode=mode, antialias=1, axes=[2, 3])],
                [("sz", i64(4, 6))])
    # A 5-D input (trilinear) and a 3-D one resizing the outer axis.
    fixture("resize_linear_5d", 13, [1, 2, 3, 4, 3],
            [node("Resize", ["x", "", "sc"], mode="linear")], [("sc", f32(1, 1, 1.5, 0.5, 2))])
    fixture("resize_nearest_3d_outer", 13, [3, 4, 2],
            [node("Resize", ["x", "", "sc"], mode="nearest")], [("sc", f32(2, 0.5, 1))])
    # Output sizes from scales: onnxruntime multiplies in float32, where
    # 10 * 0.7f rounds to 7 (ONNX shape inference, in float64, says 6).
    fixture("resize_scale_floor_float32", 13, [1, 1, 10, 3],
            [node("Resize", ["x", "", "sc"], mode="linear")], [("sc", f32(1, 1, 0.7, 1))],
            desc=FLOAT32_SIZES)
    # Opset 10: scales input only, asymmetric.
    for mode in ["nearest", "linear"]:
        fixture(f"resize_opset10_{mode}_up", 10, s,
                [node("Resize", ["x", "sc"], mode=mode)], [("sc", f32(1, 1, 2, 3))])
        fixture(f"resize_opset10_{mode}_down", 10, [1, 2, 8, 9],
                [node("Resize", ["x", "sc"], mode=mode)], [("sc", f32(1, 1, 0.5, 0.4))])
        fixture(f"upsample_opset7_{mode}", 7, s,
                [node("Upsample", ["x"], mode=mode, scales=[1.0, 1.0, 2.0, 1.5])])
        fixture(f"upsample_opset9_{mode}", 9, s,
                [node("Upsample", ["x", "sc"], mode=mode)], [("sc", f32(1, 1, 3, 2))])


def index_fixtures():
    ties = (np.round(RNG.standard_normal((3, 6)) * 1.5) / 2).astype(np.float32)
    # TopK: values and indices side by side.
    def topk(name, opset, shape, attrs, inits, axis=-1, x=None):
        ins = ["x"] + (["k"] if inits else [])
        fixture(name, opset, shape, [
            node("TopK", ins, ["v", "i"], **attrs),
            to_float("i", "fi"),
            node("Concat", ["v", "fi"], axis=axis),
        ], inits, x=x)
    topk("topk_opset7_attr", 7, [3, 6], {"k": 3}, [])
    topk("topk_opset10_axis0", 10, [4, 5], {"axis": 0}, [("k", i64(2))], axis=0)
    topk("topk_largest_ties", 11, [3, 6], {}, [("k", i64(4))], x=ties)
    topk("topk_smallest_ties", 11, [3, 6], {"largest": 0}, [("k", i64(4))], x=ties)
    topk("topk_smallest_axis_neg", 11, [2, 5, 3], {"largest": 0, "axis": -2}, [("k", i64(3))], axis=-2)
    topk("topk_k_all", 11, [3, 6], {"sorted": 1}, [("k", i64(6))])
    fixture("topk_k_zero", 11, [3, 6], [
        node("TopK", ["x", "k"], ["v", "i"]), node("Shape", ["i"], ["s"]), to_float("s")],
        [("k", i64(0))])

    # ScatterElements over the opsets and reductions; duplicates only where
    # the reduction defines them.
    data_idx = np.array([[1, -1, 0], [0, 2, -4], [3, 3, 1]], dtype=np.int64)
    upd = RNG.standard_normal((3, 3)).astype(np.float32)
    fixture("scatterelements_opset11_axis1", 11, [3, 4],
            [node("ScatterElements", ["x", "i", "u"], axis=1)],
            [("i", np.array([[1, -1, 0], [0, 2, 3], [3, -2, 1]], np.int64)), ("u", upd)])
    fixture("scatterelements_opset13_axis0", 13, [4, 3],
            [node("ScatterElements", ["x", "i", "u"])],
            [("i", np.array([[1, 0, 3], [-1, 2, 2]], np.int64)), ("u", upd[:2])])
    for red, opset in [("add", 16), ("mul", 16), ("max", 18), ("min", 18), ("none", 18)]:
        idx = data_idx if red != "none" else np.array([[1, -1, 0], [0, 2, 3], [3, -2, 1]])
        fixture(f"scatterelements_{red}", opset, [3, 4],
                [node("ScatterElements", ["x", "i", "u"], axis=-1, reduction=red)],
                [("i", idx.astype(np.int64)), ("u", upd)])
    fixture("scatterelements_3d_int32", 13, [2, 3, 4],
            [node("ScatterElements", ["x", "i", "u"], axis=1)],
            [("i", np.array([[[2, 0]], [[-1, 1]]], np.int32)),
             ("u", RNG.standard_normal((2, 1, 2)).astype(np.float32))])

    # ScatterND: whole elements, slices, negative indices, reductions.
    fixture("scatternd_elements", 11, [3, 4],
            [node("ScatterND", ["x", "i", "u"])],
            [("i", np.array([[0, 1], [2, -1], [-3, 3]], np.int64)), ("u", f32(10, 20, 30))])
    fixture("scatternd_slices", 13, [4, 2, 3],
            [node("ScatterND", ["x", "i", "u"])],
            [("i", np.array([[[1]], [[-1]]], np.int64)),
             ("u", RNG.standard_normal((2, 1, 2, 3)).astype(np.float32))])
    dup = np.array([[0, 1], [2, 0], [0, 1], [-1, -1]], np.int64)
    for red, opset in [("add", 16), ("mul", 16), ("max", 18), ("min", 18)]:
        fixture(f"scatternd_{red}", opset, [3, 4],
                [node("ScatterND", ["x", "i", "u"], reduction=red)],
                [("i", dup), ("u", f32(1.5, -2, 0.5, 3))])

    # GatherND with and without batch_dims.
    fixture("gathernd_elements", 11, [3, 4],
            [node("GatherND", ["x", "i"])],
            [("i", np.array([[0, 1], [2, -1], [-3, 3]], np.int64))])
    fixture("gathernd_slices", 12, [4, 2, 3],
            [node("GatherND", ["x", "i"])],
            [("i", np.array([[[1], [-1]], [[0], [2]]], np.int64))])
    fixture("gathernd_batch1", 12, [2, 3, 4],
            [node("GatherND", ["x", "i"], batch_dims=1)],
            [("i", np.array([[[1, 3], [0, 0]], [[2, -1], [-3, 1]]], np.int64))])
    fixture("gathernd_batch2", 13, [2, 3, 4, 2],
            [node("GatherND", ["x", "i"], batch_dims=2)],
            [("i", RNG.integers(-4, 4, (2, 3, 2, 1)).astype(np.int64))])

    # NonZero, OneHot, Trilu.
    fixture("nonzero_opset9", 9, [3, 4], [
        node("Greater", ["x", "z"], ["g"]), node("NonZero", ["g"], ["r"]), to_float()],
        [("z", np.float32(0.2))])
    fixture("nonzero_opset13_float", 13, [2, 3, 2], [
        node("Relu", ["x"], ["p"]), node("NonZero", ["p"], ["r"]), to_float()])
    onehot_x = np.array([[0, 2.4, -1, 5], [3, -4.2, 1, 7]], np.float32)
    fixture("onehot_opset9", 9, [2, 4], [
        node("Cast", ["x"], ["xi"], to=TensorProto.INT64),
        node("OneHot", ["xi", "d", "v"], ["y"])],
        [("d", np.float32(5)), ("v", f32(-1, 2))], x=np.abs(onehot_x))
    fixture("onehot_opset11_negative_axis0", 11, [2, 4], [
        node("Cast", ["x"], ["xi"], to=TensorProto.INT64),
        node("OneHot", ["xi", "d", "v"], ["y"], axis=0)],
        [("d", i64(5)), ("v", f32(0.5, 3))], x=onehot_x)
    fixture("onehot_int_values_axis1", 11, [2, 4], [
        node("Cast", ["x"], ["xi"], to=TensorProto.INT64),
        node("OneHot", ["xi", "d", "v"], ["r"], axis=1), to_float()],
        [("d", i64(6)), ("v", i64(0, 7))], x=onehot_x)
    for upper in [0, 1]:
        for k in [None, -1, 2]:
            tag = "none" if k is None else f"k{k}".replace("-", "m")
            ins = ["x"] if k is None else ["x", "k"]
            fixture(f"trilu_{'upper' if upper else 'lower'}_{tag}", 14, [2, 4, 5],
                    [node("Trilu", ins, upper=upper)], [] if k is None else [("k", i64(k)[0])])
    fixture("trilu_k_beyond", 14, [3, 4], [node("Trilu", ["x", "k"])], [("k", i64(-9)[0])])


def more_fixtures():
    # CumSum over the flags, an int32 axis and integer data.
    for opset in [11, 14]:
        for exc in [0, 1]:
            for rev in [0, 1]:
                fixture(f"cumsum_opset{opset}_e{exc}_r{rev}", opset, [3, 4, 2],
                        [node("CumSum", ["x", "a"], exclusive=exc, reverse=rev)],
                        [("a", np.array(-2 if rev else 1, np.int32))])
    fixture("cumsum_int", 14, [3, 4], [
        node("Mul", ["x", "ten"], ["t"]), node("Cast", ["t"], ["ti"], to=TensorProto.INT64),
        node("CumSum", ["ti", "a"], ["r"], exclusive=1), to_float()],
        [("ten", np.float32(10)), ("a", i64(0)[0])])

    # DepthToSpace / SpaceToDepth.
    fixture("depthtospace_opset7", 7, [1, 8, 2, 3], [node("DepthToSpace", ["x"], blocksize=2)])
    fixture("depthtospace_crd", 11, [2, 8, 2, 3], [node("DepthToSpace", ["x"], blocksize=2, mode="CRD")])
    fixture("depthtospace_dcr", 13, [2, 9, 2, 2], [node("DepthToSpace", ["x"], blocksize=3, mode="DCR")])
    fixture("spacetodepth_opset7", 7, [1, 2, 4, 6], [node("SpaceToDepth", ["x"], blocksize=2)])
    fixture("spacetodepth_opset13", 13, [2, 3, 6, 3], [node("SpaceToDepth", ["x"], blocksize=3)])

    # Hardmax: 2-D coercion before 13, an axis after; ties pick the first.
    ties = np.array([[[1, 3, 3], [0, 0, 0]], [[2, 5, 5], [4, 1, 4]]], np.float32)
    fixture("hardmax_opset7", 7, [2, 3, 4], [node("Hardmax", ["x"])])
    fixture("hardmax_opset11_axis2", 11, [2, 3, 4], [node("Hardmax", ["x"], axis=2)])
    fixture("hardmax_opset13", 13, [2, 2, 3], [node("Hardmax", ["x"])], x=ties)
    fixture("hardmax_opset13_axis1", 13, [2, 2, 3], [node("Hardmax", ["x"], axis=1)], x=ties)

    # LpNormalization, with an all-zero row.
    zrow = RNG.standard_normal((3, 5)).astype(np.float32)
    zrow[1] = 0
    fixture("lpnorm_p2", 7, [3, 5], [node("LpNormalization", ["x"])], x=zrow)
    fixture("lpnorm_p1_axis0", 7, [3, 5], [node("LpNormalization", ["x"], axis=0, p=1)])
    fixture("lpnorm_opset22_axis1", 22, [2, 3, 4], [node("LpNormalization", ["x"], axis=1, p=2)])

    # IsNaN, IsInf on special values.
    special = np.array([[0, np.nan, np.inf, -np.inf], [1e-40, -3e38, np.nan, 2]], np.float32)
    for opset in [9, 13, 20]:
        fixture(f"isnan_opset{opset}", opset, [2, 4], [node("IsNaN", ["x"], ["r"]), to_float()], x=special)
    for pos, neg, opset in [(1, 1, 10), (1, 0, 10), (0, 1, 20), (0, 0, 20)]:
        fixture(f"isinf_p{pos}_n{neg}_opset{opset}", opset, [2, 4], [
            node("IsInf", ["x"], ["r"], detect_positive=pos, detect_negative=neg), to_float()],
            x=special)

    # Trigonometric and hyperbolic functions, on their domains.
    unit = RNG.uniform(-0.95, 0.95, (3, 4)).astype(np.float32)
    wide = RNG.uniform(-3, 3, (3, 4)).astype(np.float32)
    above1 = RNG.uniform(1, 4, (3, 4)).astype(np.float32)
    for op, first, x in [("Tan", 7, unit * 1.5), ("Asin", 7, unit), ("Acos", 7, unit),
                         ("Atan", 7, wide), ("Sinh", 9, wide), ("Cosh", 9, wide),
                         ("Asinh", 9, wide), ("Acosh", 9, above1), ("Atanh", 9, unit)]:
        for opset in [first, 22]:
            fixture(f"{op.lower()}_opset{opset}", opset, [3, 4], [node(op, ["x"])], x=x)


def resize_onnxruntime_fixtures():
    """Where onnxruntime's Resize decides what the spec leaves open. Added
    after the others, so their inputs stay as they were."""
    s = [1, 2, 5, 6]
    # tf_crop_and_resize by scales: the output size ignores the crop.
    fixture("resize_linear_crop_scales", 13, s,
            [node("Resize", ["x", "roi", "sc"], mode="linear",
                  coordinate_transformation_mode="tf_crop_and_resize")],
            [("roi", f32(0, 0, 0.1, -0.1, 1, 1, 0.9, 1.2)), ("sc", f32(1, 1, 1.3, 2.7))])
    # Coordinates in float32: (1 + 0.5) / 0.6f - 0.5 is 2 (1.9999999 in
    # float64), so floor reads element 2.
    fixture("resize_nearest_floor_float32_coordinates", 13, [1, 1, 5, 2],
            [node("Resize", ["x", "", "sc"], mode="nearest", nearest_mode="floor")],
            [("sc", f32(1, 1, 0.6, 1))], x=np.arange(10).reshape(1, 1, 5, 2))
    # Where NaN and Inf spread (onnxruntime's zero-weight neighbours) is
    # checked by the unit tests of src/graph/ops/resize.rs: the parity and
    # cut tests compare values, and NaN never equals itself.


def attention_fixtures():
    """Attention (23, 24, 25), RMSNormalization, RotaryEmbedding, and the
    small ops added with them: Swish, ThresholdedRelu, Round, CumProd,
    BitShift, LpPool, Compress, CenterCropPad. Added after the others, so
    their inputs stay as they were. Q (or the op's first input) is x; the
    other inputs are initializers."""
    def rnd(*shape):
        return RNG.standard_normal(shape).astype(np.float32)

    def attn(name, opset, shape, inits, attrs, ins=("x", "k", "v"), outputs=("y",)):
        fixture(name, opset, shape, [node("Attention", ins, outputs, **attrs)], inits)

    kv = [("k", rnd(2, 2, 5, 4)), ("v", rnd(2, 2, 5, 3))]
    attn("attention_4d", 23, [2, 2, 3, 4], kv, {})
    attn("attention_4d_scale_softcap", 23, [2, 2, 3, 4], kv, {"scale": 0.3, "softcap": 1.5})
    bool_mask = RNG.random((3, 5)) > 0.3
    bool_mask[:, 0] = True
    attn("attention_4d_bool_mask_causal", 23, [2, 2, 3, 4], kv + [("m", bool_mask)],
         {"is_causal": 1}, ins=("x", "k", "v", "m"))
    attn("attention_4d_float_mask", 23, [2, 2, 3, 4], kv + [("m", rnd(2, 1, 3, 5))], {},
         ins=("x", "k", "v", "m"))
    gqa = [("k", rnd(2, 3, 8)), ("v", rnd(2, 3, 6))]
    attn("attention_3d_gqa_causal", 23, [2, 3, 16], gqa,
         {"q_num_heads": 4, "kv_num_heads": 2, "is_causal": 1})
    attn("attention_3d_mqa", 23, [2, 3, 16], [("k", rnd(2, 4, 4)), ("v", rnd(2, 4, 5))],
         {"q_num_heads": 4, "kv_num_heads": 1})
    past = kv + [("m", rnd(3, 7)), ("pk", rnd(2, 2, 2, 4)), ("pv", rnd(2, 2, 2, 3))]
    # onnxruntime computes no past without the present outputs.
    attn("attention_past_causal", 23, [2, 2, 3, 4], past, {"is_causal": 1},
         ins=("x", "k", "v", "m", "pk", "pv"), outputs=("y", "pk_out", "pv_out"))
    attn("attention_present_key", 23, [2, 2, 3, 4], past, {},
         ins=("x", "k", "v", "m", "pk", "pv"), outputs=("o", "y", "pv_out"))
    for mode in [0, 1, 2, 3]:
        attn(f"attention_qk_output_mode{mode}", 23, [2, 2, 3, 4], kv + [("m", rnd(3, 5))],
             {"qk_matmul_output_mode": mode, "softcap": 2.0}, ins=("x", "k", "v", "m"),
             outputs=("o", "", "", "y"))
    attn("attention_softmax_precision", 23, [2, 2, 3, 4], kv, {"softmax_precision": 11})
    attn("attention_24_nonpad_causal", 24, [2, 2, 3, 4], kv + [("n", i64(4, 5))],
         {"is_causal": 1}, ins=("x", "k", "v", "", "", "", "n"))
    # onnxruntime does not know Attention 25's window attributes: the
    # conformance cases test them.

    # RMSNormalization.
    fixture("rmsnorm_last", 23, [2, 3, 4], [node("RMSNormalization", ["x", "s"])], [("s", rnd(4))])
    fixture("rmsnorm_axis1_eps", 23, [2, 3, 4], [node("RMSNormalization", ["x", "s"], axis=1, epsilon=0.5)],
            [("s", rnd(3, 4))])
    fixture("rmsnorm_axis0_broadcast_scale", 23, [2, 3, 4],
            [node("RMSNormalization", ["x", "s"], axis=-3)], [("s", rnd(1, 4))])

    # RotaryEmbedding.
    angles = RNG.uniform(0, 6.28, (6, 4)).astype(np.float32)
    caches = [("c", np.cos(angles)), ("s", np.sin(angles)), ("p", i64(0, 2, 5, 1, 1, 3).reshape(2, 3))]
    fixture("rotary_4d", 23, [2, 2, 3, 8], [node("RotaryEmbedding", ["x", "c", "s", "p"])], caches)
    fixture("rotary_4d_interleaved", 23, [2, 2, 3, 8],
            [node("RotaryEmbedding", ["x", "c", "s", "p"], interleaved=1)], caches)
    half = [("c", np.cos(angles[:, :2])), ("s", np.sin(angles[:, :2])), caches[2]]
    fixture("rotary_3d_partial", 23, [2, 3, 16],
            [node("RotaryEmbedding", ["x", "c", "s", "p"], num_heads=2, rotary_embedding_dim=4)], half)
    direct = [("c", np.cos(angles[:6].reshape(2, 3, 4))), ("s", np.sin(angles[:6].reshape(2, 3, 4)))]
    fixture("rotary_no_positions_interleaved", 23, [2, 2, 3, 8],
            [node("RotaryEmbedding", ["x", "c", "s"], interleaved=1)], direct)

    # Swish, ThresholdedRelu, Round.
    fixture("swish", 24, [3, 4], [node("Swish", ["x"])])
    fixture("swish_alpha", 24, [3, 4], [node("Swish", ["x"], alpha=0.4)])
    fixture("thresholdedrelu", 10, [3, 4], [node("ThresholdedRelu", ["x"])], x=rnd(3, 4) * 2)
    fixture("thresholdedrelu_alpha_opset22", 22, [3, 4], [node("ThresholdedRelu", ["x"], alpha=0.3)])
    halves = np.array([[-2.5, -1.5, -0.5, 0.5], [1.5, 2.5, 3.5, -0.49], [0.51, 7.2, -7.7, 0]], np.float32)
    fixture("round_half_even", 11, [3, 4], [node("Round", ["x"])], x=halves)
    fixture("round_opset22", 22, [3, 4], [node("Round", ["x"])], x=rnd(3, 4) * 5)

    # CumProd.
    a1 = ("a", i64(1)[0])
    fixture("cumprod", 26, [3, 4], [node("CumProd", ["x", "a"])], [a1])
    fixture("cumprod_exclusive_reverse", 26, [3, 4],
            [node("CumProd", ["x", "a"], exclusive=1, reverse=1)], [("a", i64(-2)[0])])

    # BitShift on uint8 (onnxruntime runs version 11's unsigned types).
    small = np.array([[1, 2, 3, 200], [7, 16, 255, 0]], np.float32)
    for d in ["LEFT", "RIGHT"]:
        fixture(f"bitshift_{d.lower()}", 11, [2, 4], [
            node("Cast", ["x"], ["u"], to=TensorProto.UINT8),
            node("BitShift", ["u", "b"], ["r"], direction=d), to_float()],
            [("b", np.array([0, 1, 2, 3], np.uint8))], x=small)

    # LpPool.
    fixture("lppool_p2", 11, [1, 2, 5, 5], [node("LpPool", ["x"], kernel_shape=[2, 2])])
    fixture("lppool_p1_strides_pads", 11, [1, 2, 6, 5],
            [node("LpPool", ["x"], kernel_shape=[3, 2], p=1, strides=[2, 2], pads=[1, 0, 1, 1])])
    fixture("lppool_p3_1d_same_upper", 11, [2, 3, 7],
            [node("LpPool", ["x"], kernel_shape=[3], p=3, auto_pad="SAME_UPPER", strides=[2])])
    fixture("lppool_opset18_dilations_ceil", 18, [1, 2, 7, 7],
            [node("LpPool", ["x"], kernel_shape=[2, 2], dilations=[2, 2], strides=[2, 2], ceil_mode=1)])

    # Compress.
    fixture("compress_axis0", 11, [4, 3], [node("Compress", ["x", "c"], axis=0)],
            [("c", np.array([True, False, True, True]))])
    fixture("compress_flat_short", 11, [2, 3], [node("Compress", ["x", "c"])],
            [("c", np.array([False, True, True, False, True]))])
    fixture("compress_axis_neg", 9, [2, 4], [node("Compress", ["x", "c"], axis=-1)],
            [("c", np.array([True, False, False, True]))])

    # CenterCropPad.
    fixture("centercroppad_crop_pad", 18, [5, 4, 3], [node("CenterCropPad", ["x", "s"])],
            [("s", i64(3, 7, 3))])
    fixture("centercroppad_axes", 18, [2, 7, 4], [node("CenterCropPad", ["x", "s"], axes=[-2, 2])],
            [("s", i64(4, 5))])
def detection_fixtures():
    """NonMaxSuppression, RoiAlign, GridSample and AffineGrid over their
    attributes and opset versions."""
    # NonMaxSuppression: x holds the boxes; the selected (batch, class,
    # box) rows as float.
    corners = RNG.uniform(0, 10, (2, 8, 2)).astype(np.float32)
    boxes = np.concatenate([corners, corners + RNG.uniform(1, 6, (2, 8, 2))], -1)
    boxes[:, ::3] = boxes[:, ::3][..., [2, 3, 0, 1]]  # some flipped diagonals
    scores = RNG.uniform(0, 1, (2, 3, 8)).astype(np.float32)
    scores[0, 1, 2:4] = scores[0, 1, 5]  # ties: lower index first
    nms_cases = [
        ("nonmaxsuppression_opset10_all", 10, {}, ["m"], [("m", i64(8))]),
        ("nonmaxsuppression_iou_score", 11, {}, ["m", "iou", "sc"],
         [("m", i64(3)), ("iou", f32(0.3)), ("sc", f32(0.25))]),
        ("nonmaxsuppression_iou_only", 22, {}, ["m", "iou"], [("m", i64(5)), ("iou", f32(0.1))]),
        ("nonmaxsuppression_center", 11, {"center_point_box": 1}, ["m", "iou", "sc"],
         [("m", i64(4)), ("iou", f32(0.2)), ("sc", f32(0.1))]),
    ]
    for name, opset, attrs, ins, inits in nms_cases:
        fixture(name, opset, [2, 8, 4], [
            node("NonMaxSuppression", ["x", "s"] + ins, ["r"], **attrs), to_float()],
            [("s", scores)] + inits, x=boxes)
    # Without max_output_boxes_per_class nothing is selected: a [0, 3] shape.
    fixture("nonmaxsuppression_no_max", 11, [2, 8, 4], [
        node("NonMaxSuppression", ["x", "s"], ["i"]), node("Shape", ["i"], ["r"]), to_float()],
        [("s", scores)], x=boxes)

    # RoiAlign: rois partly outside the image, bins of fractional sizes.
    rois = f32(0.5, 1.0, 6.2, 5.3, 2.0, 0.0, 3.1, 7.9, -2.0, 3.0, 9.5, 12.0,
               4.0, 4.0, 4.2, 4.1).reshape(4, 4)
    bidx = i64(0, 1, 1, 0)
    roi_cases = [
        ("roialign_opset10_avg", 10, {"output_height": 3, "output_width": 2,
                                       "sampling_ratio": 2, "spatial_scale": 0.5}),
        ("roialign_opset10_max", 10, {"mode": "max", "output_height": 2, "output_width": 3}),
        ("roialign_half_pixel_avg", 16, {"output_height": 3, "output_width": 3}),
        ("roialign_output_half_pixel_max", 16,
         {"coordinate_transformation_mode": "output_half_pixel", "mode": "max",
          "output_height": 2, "output_width": 2, "sampling_ratio": 3}),
        ("roialign_half_pixel_max_scaled", 21,
         {"mode": "max", "output_height": 4, "output_width": 3, "spatial_scale": 0.75}),
    ]
    for name, opset, attrs in roi_cases:
        fixture(name, opset, [2, 3, 8, 9],
                [node("RoiAlign", ["x", "rois", "b"], **attrs)],
                [("rois", rois), ("b", bidx)])

    # GridSample: every mode, padding and align_corners, with grid points
    # beyond the image.
    grid = RNG.uniform(-1.4, 1.4, (2, 3, 4, 2)).astype(np.float32)
    grid[0, 0, :2] = [[-1, -1], [1, 1]]
    for opset, modes in [(16, ["bilinear", "nearest", "bicubic"]), (20, ["linear", "nearest", "cubic"])]:
        for mode in modes:
            for pad in ["zeros", "border", "reflection"]:
                for ac in [0, 1]:
                    if opset == 20 and ac == 1 and mode != "cubic":
                        continue
                    fixture(f"gridsample_opset{opset}_{mode}_{pad}_ac{ac}", opset, [2, 2, 4, 5],
                            [node("GridSample", ["x", "g"], mode=mode, padding_mode=pad,
                                  align_corners=ac)], [("g", grid)])
    grid5 = RNG.uniform(-1.3, 1.3, (1, 2, 3, 2, 3)).astype(np.float32)
    for mode in ["linear", "nearest"]:
        for pad, ac in [("zeros", 0), ("border", 1), ("reflection", 0)]:
            fixture(f"gridsample_opset22_5d_{mode}_{pad}_ac{ac}", 22, [1, 2, 3, 4, 5],
                    [node("GridSample", ["x", "g"], mode=mode, padding_mode=pad,
                          align_corners=ac)], [("g", grid5)])

    # AffineGrid: 2-D and 3-D, both align_corners.
    for ac in [0, 1]:
        fixture(f"affinegrid_2d_ac{ac}", 20, [2, 2, 3],
                [node("AffineGrid", ["x", "size"], align_corners=ac)],
                [("size", i64(2, 3, 4, 5))])
        fixture(f"affinegrid_3d_ac{ac}", 20, [1, 3, 4],
                [node("AffineGrid", ["x", "size"], align_corners=ac)],
                [("size", i64(1, 1, 2, 3, 4))])


def recurrent_fixtures():
    """LSTM, GRU and RNN: directions, biases, initial states, sequence
    lengths, peepholes, clip, activations; Y, Y_h or Y_c. onnxruntime
    refuses layout 1 (batch first): the conformance cases check it."""
    seq, batch, inp, hid = 5, 3, 4, 6

    def w(*shape):
        return (RNG.standard_normal(shape) * 0.5).astype(np.float32)

    lens = np.array([5, 2, 4], np.int32)

    def rnn_case(op, name, opset, gates, attrs, extras=(), out=0, layout=0, scale=None):
        dirs = 2 if attrs.get("direction") == "bidirectional" else 1
        inits = [("W", w(dirs, gates * hid, inp)), ("R", w(dirs, gates * hid, hid))]
        ins = ["x", "W", "R"]
        state = [batch, dirs, hid] if layout else [dirs, batch, hid]
        for e in ["B", "sl", "h0", "c0", "P"]:
            if e in extras:
                v = {"B": lambda: w(dirs, 2 * gates * hid), "sl": lambda: lens,
                     "h0": lambda: w(*state), "c0": lambda: w(*state),
                     "P": lambda: w(dirs, 3 * hid)}[e]()
                if scale and e in scale:
                    v = (v * scale[e]).astype(np.float32)
                inits.append((e, v))
                ins.append(e)
            else:
                ins.append("")
        order = {"LSTM": ["B", "sl", "h0", "c0", "P"], "GRU": ["B", "sl", "h0"],
                 "RNN": ["B", "sl", "h0"]}[op]
        ins = ins[:3 + len(order)]
        while ins[-1] == "":
            ins.pop()
        outs = ["r0", "r1", "r2"][:3 if op == "LSTM" else 2]
        outs[out] = "y"
        shape = [batch, seq, inp] if layout else [seq, batch, inp]
        fixture(name, opset, shape,
                [node(op, ins, outs, hidden_size=hid, **({"layout": layout} if layout else {}),
                      **attrs)], inits)

    rnn_case("LSTM", "lstm_opset7_forward", 7, 4, {})
    rnn_case("LSTM", "lstm_bidirectional_all_inputs", 14, 4, {"direction": "bidirectional"},
             ["B", "sl", "h0", "c0", "P"])
    rnn_case("LSTM", "lstm_reverse_seq_lens_y_h", 14, 4, {"direction": "reverse"},
             ["B", "sl", "h0"], out=1)
    rnn_case("LSTM", "lstm_bidirectional_y_c", 14, 4, {"direction": "bidirectional"},
             ["B", "sl", "h0", "c0"], out=2)
    rnn_case("LSTM", "lstm_clip_input_forget", 22, 4, {"clip": 0.7, "input_forget": 1},
             ["B", "P"])
    rnn_case("LSTM", "lstm_activations", 14, 4,
             {"activations": ["HardSigmoid", "LeakyRelu", "Softsign"],
              "activation_alpha": [0.3, 0.05], "activation_beta": [0.4]}, ["B"])
    # clip bounds the gates' inputs, not the cell: a large initial cell
    # shows which.
    rnn_case("LSTM", "lstm_clip_large_cell", 14, 4, {"clip": 0.3}, ["B", "h0", "c0"], out=2,
             scale={"c0": 8.0})
    rnn_case("GRU", "gru_opset7_forward", 7, 3, {})
    rnn_case("GRU", "gru_linear_before_reset_bidirectional", 14, 3,
             {"direction": "bidirectional", "linear_before_reset": 1}, ["B", "sl", "h0"])
    rnn_case("GRU", "gru_reverse_seq_lens_y_h", 14, 3, {"direction": "reverse"},
             ["B", "sl"], out=1)
    rnn_case("GRU", "gru_clip", 22, 3, {"clip": 0.5}, ["B", "h0"])
    rnn_case("GRU", "gru_activations", 14, 3,
             {"activations": ["HardSigmoid", "ScaledTanh"],
              "activation_alpha": [0.25, 1.5], "activation_beta": [0.45, 0.8]}, ["B"])
    rnn_case("RNN", "rnn_opset7_forward", 7, 1, {})
    rnn_case("RNN", "rnn_bidirectional_relu_seq_lens", 14, 1,
             {"direction": "bidirectional", "activations": ["Relu", "Tanh"]}, ["B", "sl", "h0"])
    rnn_case("RNN", "rnn_reverse_y_h", 22, 1, {"direction": "reverse"},
             ["B", "sl", "h0"], out=1)
    rnn_case("RNN", "rnn_clip_affine", 14, 1,
             {"clip": 0.8, "activations": ["Affine"], "activation_alpha": [0.7],
              "activation_beta": [0.1]}, ["B"])
    rnn_case("RNN", "rnn_elu_softplus_bidirectional", 14, 1,
             {"direction": "bidirectional", "activations": ["Elu", "Softplus"],
              "activation_alpha": [0.6]}, ["B"])


def loss_fixtures():
    """NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: reductions,
    weights, ignore_index, extra dimensions, the log_prob output."""
    target = np.array([[1, 3], [0, 2], [3, 3]], np.int64)
    target_ii = np.array([[1, -1], [0, 2], [-1, 3]], np.int64)
    weight = f32(0.5, 1.5, 2.0, 0.25)
    for op, short, first in [("NegativeLogLikelihoodLoss", "nll", 13),
                             ("SoftmaxCrossEntropyLoss", "sce", 13)]:
        for red in ["none", "sum", "mean"]:
            fixture(f"{short}_{red}", first, [3, 4, 2],
                    [node(op, ["x", "t"], reduction=red)], [("t", target)])
            fixture(f"{short}_{red}_weight_ii", 22 if op[0] == "N" else first, [3, 4, 2],
                    [node(op, ["x", "t", "w"], reduction=red, ignore_index=-1)],
                    [("t", target_ii), ("w", weight)])
        fixture(f"{short}_2d_ii_mean", 12, [5, 3],
                [node(op, ["x", "t"], ignore_index=1)], [("t", i64(0, 1, 2, 1, 2))])
    fixture("sce_log_prob_output", 13, [3, 4, 2],
            [node("SoftmaxCrossEntropyLoss", ["x", "t", "w"], ["l", "y"], reduction="sum")],
            [("t", target), ("w", weight)])


def torch_fixtures():
    """torch.nn.LSTM and GRU (hidden 8), torchvision's roi_align and nms,
    each in a tiny module exported by torch.onnx (dynamo, opset 18), which
    emits the ONNX LSTM, GRU, RoiAlign and NonMaxSuppression ops."""
    import torch
    import torchvision

    torch.manual_seed(20261207)

    class Recurrent(torch.nn.Module):
        def __init__(self, cell, **kw):
            super().__init__()
            self.cell = cell(4, 8, **kw)

        def forward(self, x):
            return self.cell(x)[0]

    class Roi(torch.nn.Module):
        def forward(self, x):
            boxes = torch.tensor([[0, 0.5, 1.0, 4.0, 5.0], [1, 2.0, 1.0, 7.0, 6.5],
                                  [0, -1.0, 3.0, 9.0, 8.5]])
            return torchvision.ops.roi_align(x, boxes, (3, 3), spatial_scale=0.5,
                                             sampling_ratio=2, aligned=True)

    class Nms(torch.nn.Module):
        def forward(self, x):
            boxes = torch.cat([x[:, :2], x[:, :2] + x[:, 2:4] + 0.1], 1)
            return torchvision.ops.nms(boxes, x[:, 4], 0.4).float()

    cases = [
        ("torch_lstm_bidirectional", Recurrent(torch.nn.LSTM, batch_first=True, bidirectional=True),
         RNG.standard_normal((2, 5, 4))),
        ("torch_lstm", Recurrent(torch.nn.LSTM), RNG.standard_normal((5, 2, 4))),
        ("torch_gru_bidirectional", Recurrent(torch.nn.GRU, batch_first=True, bidirectional=True),
         RNG.standard_normal((2, 5, 4))),
        ("torch_gru", Recurrent(torch.nn.GRU), RNG.standard_normal((5, 2, 4))),
        ("torch_roi_align", Roi(), RNG.standard_normal((2, 3, 8, 8))),
        ("torch_nms", Nms(), RNG.uniform(0, 1, (10, 5))),
    ]
    for name, module, x in cases:
        x = np.asarray(x, np.float32)
        program = torch.onnx.export(module.eval(), (torch.from_numpy(x),), input_names=["x"],
                                    output_names=["y"], opset_version=18, dynamo=True,
                                    verbose=False)
        model = program.model_proto
        # The exporter records source paths and lines: not part of the model.
        for n in model.graph.node:
            del n.metadata_props[:]
        for v in list(model.graph.value_info) + list(model.graph.initializer):
            del v.metadata_props[:]
        del model.metadata_props[:]
        FIXTURES.append((f"{PREFIX}{name}", 18, model, x, "exported by torch.onnx (dynamo)"))


def unique_col2im_fixtures():
    """Unique (flattened or along an axis, sorted or in order of first
    occurrence; every output) and Col2Im (2-D and 3-D, strides, pads,
    dilations)."""
    dup = np.round(RNG.standard_normal((4, 5)) * 1.2).astype(np.float32)
    dup[2] = dup[0]
    dup[:, 3] = dup[:, 1]
    for sorted_ in [0, 1]:
        for axis in [None, 0, -1]:
            attrs = {"sorted": sorted_} | ({} if axis is None else {"axis": axis})
            tag = "flat" if axis is None else f"axis{axis}".replace("-", "m")
            for k, out in enumerate(["y", "first", "inverse", "counts"]):
                outs = ["u0", "u1", "u2", "u3"]
                outs[k] = "r"
                last = [node("Identity", ["r"], ["y"])] if k == 0 else [to_float()]
                fixture(f"unique_{tag}_sorted{sorted_}_{out}", 11, [4, 5],
                        [node("Unique", ["x"], outs, **attrs)] + last, x=dup)
    col2im_cases = [
        ("col2im_2d", [1, 12, 4], (3, 4), (2, 3), {}),
        ("col2im_2d_strides_pads", [2, 4, 9], (5, 6), (2, 2),
         {"strides": [2, 2], "pads": [1, 0, 0, 1]}),
        ("col2im_2d_dilations", [1, 8, 3], (5, 5), (2, 2),
         {"dilations": [2, 3], "strides": [1, 2]}),
        ("col2im_3d", [1, 8, 24], (3, 4, 3), (2, 2, 2), {"pads": [0, 1, 0, 0, 0, 1]}),
    ]
    for name, shape, image, block, attrs in col2im_cases:
        fixture(name, 18, shape, [node("Col2Im", ["x", "im", "bl"], **attrs)],
                [("im", i64(*image)), ("bl", i64(*block))])


def graph(name, nodes, outputs, inits=()):
    """A subgraph (an If branch) of `nodes` with float32 `outputs`."""
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in inits]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    return helper.make_graph(nodes, name, [], outs, initializer=inits)


def if_fixtures():
    """If with a constant condition, an initializer or a Constant node:
    branches that read the enclosing graph's values, hold initializers of
    their own, nest another constant If (reading the outer branch's
    values), and make two outputs; the branch not taken would give other
    values."""
    w = RNG.standard_normal((3,)).astype(np.float32)
    then_ = graph("then", [node("Mul", ["x", "w"], ["t"]), node("Add", ["t", "b"], ["o"])],
                  ["o"], [("b", f32(0.5))])
    else_ = graph("else", [node("Relu", ["x"], ["o2"])], ["o2"])
    fixture("if_const_init_then", 17, [2, 3],
            [node("If", ["c"], ["y"], then_branch=then_, else_branch=else_)],
            [("c", np.array(True)), ("w", w)])
    cond = helper.make_tensor("cv", TensorProto.BOOL, [], [False])
    inner_then = graph("inner_then", [node("Mul", ["s", "k"], ["p"])], ["p"], [("k", f32(3.0))])
    inner_else = graph("inner_else", [node("Neg", ["s"], ["q"])], ["q"])
    inner_cond = helper.make_tensor("iv", TensorProto.BOOL, [1], [True])
    else_nested = graph("else_nested", [
        node("Sigmoid", ["x"], ["s"]),
        node("Constant", [], ["ic"], value=inner_cond),
        node("If", ["ic"], ["r"], then_branch=inner_then, else_branch=inner_else),
    ], ["r"])
    fixture("if_const_node_else_nested", 17, [2, 3], [
        node("Constant", [], ["c"], value=cond),
        node("If", ["c"], ["y"], then_branch=else_, else_branch=else_nested),
    ])
    two = graph("two", [node("Abs", ["x"], ["a"]), node("Exp", ["x"], ["e"])], ["a", "e"])
    other = graph("other", [node("Neg", ["x"], ["n"]), node("Sin", ["x"], ["m"])], ["n", "m"])
    fixture("if_const_two_outputs", 22, [4], [
        node("If", ["c"], ["u", "v"], then_branch=two, else_branch=other),
        node("Add", ["u", "v"], ["y"]),
    ], [("c", np.array(True))])


def maxunpool_fixtures():
    """MaxPool then MaxUnpool: back to the inferred shape (4 x 4 input) and
    to the pooled input's own shape (5 x 5, output_shape from Shape), where
    the indices address the output_shape as onnxruntime reads them."""
    window = dict(kernel_shape=[2, 2], strides=[2, 2])
    for name, shape, with_shape in [("maxunpool_inferred", [2, 2, 4, 4], False),
                                    ("maxunpool_output_shape", [2, 2, 5, 5], True)]:
        unpool_in = ["p", "i", "s"] if with_shape else ["p", "i"]
        fixture(name, 22, shape, [
            node("MaxPool", ["x"], ["p", "i"], **window),
            node("Shape", ["x"], ["s"]),
            node("MaxUnpool", unpool_in, **window),
        ])


def quant_fixtures():
    """Quantized chains over a float input: QuantizeLinear and back per
    tensor, per axis and in blocks (uint8, int8, int16); DynamicQuantizeLinear;
    QLinearMatMul and QLinearConv between a quantized input and int8
    weights (per channel); MatMulInteger and ConvInteger cast to float."""
    def q(src, dst, scale, zero):
        return node("QuantizeLinear", [src, scale, zero], [dst])

    per_axis = f32(0.02, 0.05, 0.1)
    fixture("quant_per_tensor_uint8", 21, [2, 3, 4], [
        q("x", "q", "s", "z"), node("DequantizeLinear", ["q", "s", "z"]),
    ], [("s", f32(0.03)), ("z", np.array(128, np.uint8))])
    fixture("quant_per_axis_int8", 21, [2, 3, 4], [
        node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1),
        node("DequantizeLinear", ["q", "s", "z"], axis=1),
    ], [("s", per_axis), ("z", np.array([0, -3, 5], np.int8))])
    blocks = (RNG.random((2, 2, 4)) * 0.05 + 0.01).astype(np.float32)
    fixture("quant_blocked_int16", 21, [2, 3, 4], [
        node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1, block_size=2),
        node("DequantizeLinear", ["q", "s", "z"], axis=1, block_size=2),
    ], [("s", blocks * 1e-3), ("z", np.zeros((2, 2, 4), np.int16))])
    fixture("quant_dynamic", 11, [3, 5], [
        node("DynamicQuantizeLinear", ["x"], ["q", "qs", "qz"]),
        node("DequantizeLinear", ["q", "qs", "qz"]),
    ])
    wq = RNG.integers(-100, 100, (4, 6)).astype(np.int8)
    fixture("qlinear_matmul_int8", 21, [3, 4], [
        q("x", "q", "s", "z"),
        node("QLinearMatMul", ["q", "s", "z", "w", "ws", "wz", "ys", "yz"], ["r"]),
        node("DequantizeLinear", ["r", "ys", "yz"]),
    ], [("s", f32(0.02)), ("z", np.array(3, np.int8)), ("w", wq), ("ws", f32(0.01)),
        ("wz", np.array(0, np.int8)), ("ys", f32(0.05)), ("yz", np.array(-2, np.int8))])
    wc = RNG.integers(0, 255, (3, 2, 3, 3)).astype(np.uint8)
    fixture("qlinear_conv_per_channel", 10, [1, 2, 5, 5], [
        q("x", "q", "s", "z"),
        node("QLinearConv", ["q", "s", "z", "w", "ws", "wz", "ys", "yz", "b"], ["r"],
             pads=[1, 1, 1, 1], strides=[2, 1]),
        node("DequantizeLinear", ["r", "ys", "yz"]),
    ], [("s", f32(0.02)), ("z", np.array(120, np.uint8)), ("w", wc),
        ("ws", f32(0.003, 0.004, 0.002)), ("wz", np.array(127, np.uint8)),
        ("ys", f32(0.05)), ("yz", np.array(100, np.uint8)), ("b", np.array([5, -7, 30], np.int32))])
    fixture("matmul_integer", 10, [2, 4], [
        q("x", "q", "s", "z"),
        node("MatMulInteger", ["q", "w", "z", "wz"], ["r"]), to_float(),
    ], [("s", f32(0.02)), ("z", np.array(128, np.uint8)),
        ("w", RNG.integers(0, 255, (4, 3)).astype(np.uint8)), ("wz", np.array(7, np.uint8))])
    fixture("conv_integer", 10, [1, 2, 4, 4], [
        q("x", "q", "s", "z"),
        node("ConvInteger", ["q", "w", "z"], ["r"], pads=[1, 0, 1, 0]), to_float(),
    ], [("s", f32(0.02)), ("z", np.array(128, np.uint8)),
        ("w", RNG.integers(0, 255, (2, 2, 2, 2)).astype(np.uint8))])


def signal_fixtures():
    """DFT (forward, one-sided, inverse, a dft_length that pads or cuts,
    opsets 17 and 20) and STFT (with a Hann window, complex frames)."""
    fixture("dft_forward_axis1_opset17", 17, [2, 12, 3, 1], [node("DFT", ["x"], axis=1)])
    fixture("dft_onesided_length16", 20, [2, 12, 1],
            [node("DFT", ["x", "n", "a"], onesided=1)], [("n", np.array(16)), ("a", np.array(-2))])
    fixture("dft_inverse_complex_cut", 20, [3, 10, 2],
            [node("DFT", ["x", "n", "a"], inverse=1)], [("n", np.array(8)), ("a", np.array(1))])
    hann = (np.sin(np.pi * np.arange(16) / 16) ** 2).astype(np.float32)
    # onesided set: ONNX shape inference reads a missing one as 0 (its
    # default is 1, which onnxruntime and faultsweep use).
    fixture("stft_hann", 17, [2, 64, 1], [node("STFT", ["x", "st", "w", "len"], onesided=1)],
            [("st", np.array(8)), ("w", hann), ("len", np.array(16))])
    fixture("stft_complex_twosided", 17, [1, 40, 2],
            [node("STFT", ["x", "st", "", "len"], onesided=0)],
            [("st", np.array(5)), ("len", np.array(10))])


def mel_fixtures():
    """MelWeightMatrix (folded at load time: its inputs are constants),
    added to the input so that the fixture has one."""
    fixture("melweightmatrix", 17, [33, 10], [
        node("MelWeightMatrix", ["nb", "dl", "sr", "lo", "hi"], ["m"]),
        node("Add", ["m", "x"]),
    ], [("nb", np.array(10, np.int32)), ("dl", np.array(64, np.int32)),
        ("sr", np.array(16000, np.int32)), ("lo", np.array(20.0, np.float32)),
        ("hi", np.array(7000.0, np.float32))])


def tfidf_fixtures():
    """TfIdfVectorizer over tokens cast from the float input: unigrams to
    trigrams with skips, each mode, with and without weights."""
    tokens = RNG.integers(0, 6, (2, 14)).astype(np.float32)
    pool = dict(pool_int64s=[1, 2, 4, 1, 2, 2, 5, 3, 0, 1, 2, 4], ngram_counts=[0, 3, 9],
                ngram_indexes=[0, 1, 2, 3, 4, 5, 6, 7])
    for mode, extra in [("TF", {}), ("IDF", {"weights": [0.5, 1, 2, 1, 3, 1, 0.25, 4]}),
                        ("TFIDF", {"weights": [0.5, 1, 2, 1, 3, 1, 0.25, 4]})]:
        fixture(f"tfidf_{mode.lower()}", 9, [2, 14], [
            node("Cast", ["x"], ["t"], to=TensorProto.INT64),
            node("TfIdfVectorizer", ["t"], ["y"], mode=mode, min_gram_length=1,
                 max_gram_length=3, max_skip_count=2, **pool, **extra),
        ], x=tokens)


def deform_fixtures():
    """DeformConv with groups, offset groups, strides, dilations, pads,
    a mask and a bias; offsets up to 2.5 pixels reach outside the image."""
    fixture("deformconv_groups_mask", 22, [2, 4, 7, 6], [
        node("DeformConv", ["x", "w", "off", "b", "m"], kernel_shape=[3, 2], group=2,
             offset_group=2, strides=[2, 1], dilations=[1, 2], pads=[1, 0, 1, 1]),
    ], [("w", RNG.standard_normal((6, 2, 3, 2)).astype(np.float32)),
        ("off", (RNG.random((2, 2 * 6 * 2, 4, 5)) * 5 - 2.5).astype(np.float32)),
        ("b", RNG.standard_normal(6).astype(np.float32)),
        ("m", RNG.random((2, 2 * 6, 4, 5)).astype(np.float32))])
    fixture("deformconv_plain", 19, [1, 3, 5, 5], [
        node("DeformConv", ["x", "w", "off"], kernel_shape=[2, 2]),
    ], [("w", RNG.standard_normal((2, 3, 2, 2)).astype(np.float32)),
        ("off", (RNG.random((1, 8, 4, 4)) - 0.5).astype(np.float32))])


def build():
    resize_fixtures()
    index_fixtures()
    more_fixtures()
    resize_onnxruntime_fixtures()
    attention_fixtures()
    detection_fixtures()
    recurrent_fixtures()
    loss_fixtures()
    torch_fixtures()
    unique_col2im_fixtures()
    if_fixtures()
    maxunpool_fixtures()
    quant_fixtures()
    signal_fixtures()
    deform_fixtures()
    mel_fixtures()
    tfidf_fixtures()


# Groups that may be written alone (`make_op_fixtures_more.py NAME`),
# leaving the other fixtures as they are.
GROUPS = {"if": if_fixtures, "maxunpool": maxunpool_fixtures, "quant": quant_fixtures,
          "signal": signal_fixtures, "deform": deform_fixtures,
          "mel": mel_fixtures, "tfidf": tfidf_fixtures}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    only = GROUPS[sys.argv[1]] if len(sys.argv) > 1 else None
    if only is None:
        for old in OUT.glob(f"{PREFIX}*"):
            old.unlink()
        build()
    else:
        only()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    path = OUT / "manifest.json"
    written = {f[0] for f in FIXTURES}
    stale = (lambda n: n in written) if only else (lambda n: n.startswith(PREFIX))
    manifest = [e for e in json.loads(path.read_text()) if not stale(e["name"])] \
        if path.exists() else []
    for name, opset, model, x, desc in FIXTURES:
        try:
            sess = ort.InferenceSession(
                model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
            )
            (y,) = sess.run(["y"], {"x": x})
        except Exception as e:
            raise SystemExit(f"{name}: {e}")
        declared = list(np.shape(y))
        if desc == FLOAT32_SIZES:
            declared = [f"d{i}" for i in range(len(declared))]
        model.graph.output[0].CopyFrom(
            helper.make_tensor_value_info("y", TensorProto.FLOAT, declared)
        )
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as e:
            raise SystemExit(f"{name}: {e}")
        (OUT / f"{name}.onnx").write_bytes(model.SerializeToString())
        np.save(OUT / f"{name}.input.npy", x)
        np.save(OUT / f"{name}.expected.npy", np.asarray(y))
        ops = sorted({n.op_type for n in model.graph.node})
        manifest.append({"name": name, "opset": opset, "ops": ops,
                         "input_shape": list(x.shape), "output_shape": list(np.shape(y)),
                         "description": desc})
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(FIXTURES)} fixtures {PREFIX}* in {OUT}")


if __name__ == "__main__":
    main()
