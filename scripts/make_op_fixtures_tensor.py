#!/usr/bin/env python3
"""Single-op parity fixtures for the tensor op families (activation,
elementwise, linear, reduce, shape, index) that the model fixtures do not
cover: attribute forms of old opsets, rarely exported attributes, integer
paths and edge cases (negative indices, clamped slices, reflect padding...).

Writes tests/fixtures/ops/t_NAME.{onnx,input.npy,expected.npy} plus
manifest.json. Each graph has one float32 input `x` and one output `y`;
index, shape and axes tensors are initializers. Integer and boolean results
are cast to float32 at the end, integer operands are derived from `x` inside
the graph. Reference outputs come from onnxruntime on CPU with graph
optimizations disabled.

    python3 scripts/make_op_fixtures_tensor.py
"""

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ops"
RNG = np.random.default_rng(20240517)
FIXTURES = []


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
        graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8
    )
    if x is None:
        x = RNG.standard_normal(shape).astype(np.float32)
    FIXTURES.append((f"t_{name}", opset, model, x.astype(np.float32), desc))


def node(op, inputs, outputs=("y",), **attrs):
    return helper.make_node(op, list(inputs), list(outputs), **attrs)


def to_float(src="r"):
    """Casts an integer/bool result `src` to the float output y."""
    return node("Cast", [src], to=TensorProto.FLOAT)


def ints_from_x(dst="xi", scale=10.0):
    """An int64 tensor derived from x: trunc(x * scale)."""
    return [
        node("Mul", ["x", "xi_scale"], ["xi_f"]),
        node("Cast", ["xi_f"], [dst], to=TensorProto.INT64),
    ], [("xi_scale", np.float32(scale))]


def i64(*v):
    return np.array(v, dtype=np.int64)


def build():
    s = [2, 3, 4, 5]
    # Activations with parameters.
    fixture("leakyrelu", 17, s, [node("LeakyRelu", ["x"], alpha=0.3)])
    fixture("leakyrelu_default", 17, s, [node("LeakyRelu", ["x"])])
    fixture("prelu_channel", 17, s, [node("PRelu", ["x", "slope"])],
            [("slope", RNG.standard_normal((3, 1, 1)).astype(np.float32))])
    fixture("prelu_scalar", 9, s, [node("PRelu", ["x", "slope"])],
            [("slope", np.array([0.25], dtype=np.float32))])
    fixture("elu", 17, s, [node("Elu", ["x"], alpha=0.7)])
    fixture("selu", 17, s, [node("Selu", ["x"])])
    fixture("selu_params", 17, s, [node("Selu", ["x"], alpha=1.2, gamma=0.9)])
    fixture("celu", 17, s, [node("Celu", ["x"], alpha=1.5)])
    fixture("softplus", 17, s, [node("Softplus", ["x"])])
    fixture("softsign", 17, s, [node("Softsign", ["x"])])
    fixture("mish", 18, s, [node("Mish", ["x"])])
    fixture("hardsigmoid_params", 17, s, [node("HardSigmoid", ["x"], alpha=0.3, beta=0.4)])
    fixture("hardswish_wide", 17, [64], [node("HardSwish", ["x"])],
            x=np.linspace(-5, 5, 64))
    fixture("clip_opset9_attr", 9, s, [node("Clip", ["x"], min=-0.5, max=0.8)])
    fixture("clip_opset9_min_only", 9, s, [node("Clip", ["x"], min=-0.2)])
    fixture("softmax_opset9_axis2", 9, s, [node("Softmax", ["x"], axis=2)])
    fixture("softmax_opset11_axis_neg", 11, s, [node("Softmax", ["x"], axis=-3)])
    fixture("logsoftmax_opset9", 9, s, [node("LogSoftmax", ["x"])])
    fixture("softmax_opset13_axis0", 13, s, [node("Softmax", ["x"], axis=0)])

    # Element-wise: variadic, comparisons, logic, integer paths.
    fixture("max3_broadcast", 17, [3, 4],
            [node("Max", ["x", "b", "c"])],
            [("b", RNG.standard_normal((4,)).astype(np.float32)),
             ("c", RNG.standard_normal((3, 1)).astype(np.float32))])
    fixture("min2", 17, [3, 4], [node("Min", ["x", "b"])],
            [("b", RNG.standard_normal((3, 4)).astype(np.float32))])
    fixture("mean3", 17, [3, 4], [node("Mean", ["x", "b", "c"])],
            [("b", RNG.standard_normal((3, 4)).astype(np.float32)),
             ("c", RNG.standard_normal((4,)).astype(np.float32))])
    fixture("sum1", 17, [3, 4], [node("Sum", ["x"])])
    fixture("compare_logic", 17, [3, 4], [
        node("Less", ["x", "b"], ["lt"]),
        node("Greater", ["x", "c"], ["gt"]),
        node("Not", ["gt"], ["ngt"]),
        node("And", ["lt", "ngt"], ["a"]),
        node("Or", ["a", "gt"], ["o"]),
        node("Xor", ["o", "lt"], ["r"]),
        to_float(),
    ], [("b", np.float32(0.3)), ("c", np.float32(-0.2))])
    fixture("less_greater_or_equal", 17, [3, 4], [
        node("LessOrEqual", ["x", "b"], ["le"]),
        node("GreaterOrEqual", ["x", "b"], ["ge"]),
        node("Cast", ["le"], ["lef"], to=TensorProto.FLOAT),
        node("Cast", ["ge"], ["gef"], to=TensorProto.FLOAT),
        node("Sub", ["lef", "gef"], ["y"]),
    ], [("b", np.float32(0.0))],
        x=np.array([[-1, 0, 1, 2], [0, 0, 3, -3], [0.5, 0, -0.5, 0]]))
    fixture("where_broadcast", 17, [3, 4], [
        node("Greater", ["x", "zero"], ["c"]),
        node("Where", ["c", "x", "alt"]),
    ], [("zero", np.float32(0)), ("alt", RNG.standard_normal((4,)).astype(np.float32))])
    nodes, inits = ints_from_x()
    fixture("div_int_trunc", 17, [3, 4], nodes + [
        node("Div", ["xi", "d"], ["r"]), to_float(),
    ], inits + [("d", i64(3))])
    fixture("mod_int", 17, [3, 4], nodes + [
        node("Mod", ["xi", "d"], ["r"]), to_float(),
    ], inits + [("d", i64(-3, 4, 5, 3))])
    fixture("mod_int_fmod", 17, [3, 4], nodes + [
        node("Mod", ["xi", "d"], ["r"], fmod=1), to_float(),
    ], inits + [("d", i64(-3, 4, 5, 3))])
    fixture("mod_float_fmod", 17, [3, 4], [node("Mod", ["x", "d"], fmod=1)],
            [("d", np.float32(0.7))])
    fixture("pow_int_exponent", 17, [3, 4], [node("Pow", ["x", "e"])],
            [("e", i64(3))])
    fixture("floor_ceil_sign", 17, [3, 4], [
        node("Floor", ["x"], ["f"]), node("Ceil", ["x"], ["c"]),
        node("Sign", ["x"], ["s"]), node("Add", ["f", "c"], ["fc"]),
        node("Add", ["fc", "s"], ["y"]),
    ])
    fixture("sin_cos", 17, [3, 4], [
        node("Sin", ["x"], ["s"]), node("Cos", ["x"], ["c"]), node("Mul", ["s", "c"]),
    ])
    fixture("castlike_int", 17, [3, 4], [
        node("Mul", ["x", "k"], ["xk"]),
        node("CastLike", ["xk", "like"], ["r"]), to_float(),
    ], [("k", np.float32(7)), ("like", i64(0))])
    fixture("cast_bool", 17, [3, 4], [
        node("Cast", ["x"], ["b"], to=TensorProto.BOOL),
        node("Cast", ["b"], ["y"], to=TensorProto.FLOAT),
    ], x=np.array([[0, 1, -2, 0], [0.5, 0, 0, 3], [0, 0, 0, -0.1]]))

    # Linear.
    fixture("einsum_bij_bjk", 12, [2, 3, 4], [node("Einsum", ["x", "w"], equation="bij, bjk -> bik")],
            [("w", RNG.standard_normal((2, 4, 5)).astype(np.float32))])
    fixture("einsum_transpose_sum", 12, [2, 3, 4], [node("Einsum", ["x"], equation="abc->ca")])
    fixture("matmul_1d", 17, [4], [node("MatMul", ["x", "w"])],
            [("w", RNG.standard_normal((3, 4, 5)).astype(np.float32))])

    # Reductions: attribute axes (old), input axes (new), keepdims, noop.
    fixture("reducesum_opset11_attr", 11, s, [node("ReduceSum", ["x"], axes=[1, -1], keepdims=0)])
    fixture("reducesum_opset13_input", 13, s, [node("ReduceSum", ["x", "axes"])], [("axes", i64(0, 2))])
    fixture("reducesum_opset13_noaxes", 13, s, [node("ReduceSum", ["x"], keepdims=0)])
    fixture("reducesum_opset13_noop", 13, s, [node("ReduceSum", ["x", "axes"], noop_with_empty_axes=1)],
            [("axes", np.zeros((0,), np.int64))])
    fixture("reducemax_opset17", 17, s, [node("ReduceMax", ["x"], axes=[1, 2])])
    fixture("reducemax_opset18", 18, s, [node("ReduceMax", ["x", "axes"], keepdims=0)], [("axes", i64(-1))])
    fixture("reducemin_opset18", 18, s, [node("ReduceMin", ["x", "axes"])], [("axes", i64(1, 3))])
    fixture("reduceprod_opset17", 17, s, [node("ReduceProd", ["x"], axes=[3, 1], keepdims=0)])
    fixture("reduceprod_opset18_all", 18, [2, 3], [node("ReduceProd", ["x"], keepdims=0)])
    fixture("reducel1_opset18", 18, s, [node("ReduceL1", ["x", "axes"])], [("axes", i64(2))])
    fixture("reducel2_opset17", 17, s, [node("ReduceL2", ["x"], axes=[2, 3], keepdims=0)])
    fixture("reducel2_opset18", 18, s, [node("ReduceL2", ["x", "axes"], keepdims=1)], [("axes", i64(-2, -1))])
    fixture("reducesumsquare_opset18", 18, s, [node("ReduceSumSquare", ["x", "axes"])], [("axes", i64(0))])
    fixture("reducelogsumexp_opset18", 18, s, [node("ReduceLogSumExp", ["x", "axes"], keepdims=0)], [("axes", i64(1))])
    fixture("reducelogsum_opset13", 13, s, [
        node("Abs", ["x"], ["a"]), node("ReduceLogSum", ["a"], axes=[3]),
    ])
    fixture("reducemean_opset13_neg", 13, s, [node("ReduceMean", ["x"], axes=[-3], keepdims=0)])
    fixture("argmax_keep", 17, s, [node("ArgMax", ["x"], ["r"], axis=1), to_float()])
    fixture("argmax_last_nokeep", 17, s, [
        node("ArgMax", ["x"], ["r"], axis=-1, keepdims=0), to_float()])
    ties = np.array([[1, 3, 3, 0], [2, 2, 2, 2], [0, 5, 1, 5]], dtype=np.float32)
    fixture("argmax_select_last", 17, [3, 4], [
        node("ArgMax", ["x"], ["r"], axis=1, select_last_index=1), to_float()], x=ties)
    fixture("argmin_select_last", 17, [3, 4], [
        node("ArgMin", ["x"], ["r"], axis=1, keepdims=0, select_last_index=1), to_float()], x=-ties)
    fixture("argmax_first_tie", 9, [3, 4], [node("ArgMax", ["x"], ["r"], axis=1), to_float()], x=ties)

    # Shape family.
    fixture("squeeze_opset11_attr", 11, [2, 1, 3, 1], [node("Squeeze", ["x"], axes=[-1, 1])])
    fixture("unsqueeze_opset11_attr", 11, [2, 3], [node("Unsqueeze", ["x"], axes=[0, -1, 2])])
    fixture("unsqueeze_opset13_neg", 13, [2, 3], [node("Unsqueeze", ["x", "axes"])], [("axes", i64(-1, 1))])
    fixture("split_opset11_attr", 11, [2, 6], [
        node("Split", ["x"], ["a", "y", "c"], axis=1, split=[1, 2, 3])])
    fixture("split_opset11_equal", 11, [6, 2], [node("Split", ["x"], ["a", "y"])])
    fixture("split_opset18_uneven", 18, [2, 7], [
        node("Split", ["x"], ["a", "b", "y"], axis=1, num_outputs=3)])
    fixture("split_opset13_input", 13, [2, 6], [
        node("Split", ["x", "sp"], ["a", "y"], axis=-1)], [("sp", i64(4, 2))])
    fixture("transpose_default_3d", 17, [2, 3, 4], [node("Transpose", ["x"])])
    fixture("reshape_allowzero_empty", 18, [2, 3], [
        node("Slice", ["x", "st", "en", "ax"], ["e"]),
        node("Reshape", ["e", "shp"], ["r"], allowzero=1),
        node("Shape", ["r"], ["s"]),
        node("Cast", ["s"], ["y"], to=TensorProto.FLOAT)],
        [("shp", i64(0, 4)), ("st", i64(1)), ("en", i64(1)), ("ax", i64(1))])
    fixture("reshape_neg1_first", 9, [2, 3, 4], [node("Reshape", ["x", "shp"])], [("shp", i64(-1, 6))])
    fixture("shape_negative_start", 15, s, [node("Shape", ["x"], ["r"], start=-3, end=100), to_float()])
    fixture("shape_empty_range", 15, s, [
        node("Shape", ["x"], ["r"], start=3, end=1),
        node("Size", ["r"], ["n"]), to_float("n")])
    fixture("size", 17, s, [node("Size", ["x"], ["r"]), to_float()])
    fixture("constantofshape_int", 17, [2, 3], [
        node("Shape", ["x"], ["s"]),
        node("ConstantOfShape", ["s"], ["c"], value=numpy_helper.from_array(i64(7))),
        node("Cast", ["c"], ["cf"], to=TensorProto.FLOAT),
        node("Add", ["x", "cf"]),
    ])
    fixture("constantofshape_default", 17, [2, 3], [
        node("Shape", ["x"], ["s"]), node("ConstantOfShape", ["s"], ["c"]), node("Sub", ["x", "c"]),
    ])
    fixture("expand_bidirectional", 17, [3, 1], [node("Expand", ["x", "shp"])], [("shp", i64(2, 1, 4))])
    fixture("expand_keep_bigger", 17, [2, 3, 4], [node("Expand", ["x", "shp"])], [("shp", i64(3, 1))])
    fixture("tile", 17, [2, 3], [node("Tile", ["x", "rep"])], [("rep", i64(2, 3))])
    fixture("range_float", 17, [3], [
        node("Range", ["start", "limit", "delta"], ["r"]), node("Add", ["r", "x"]),
    ], [("start", np.float32(0.5)), ("limit", np.float32(2.0)), ("delta", np.float32(0.5))])
    fixture("range_int_neg", 17, [4], [
        node("Range", ["start", "limit", "delta"], ["r"]), to_float("r"),
    ], [("start", i64(10)[0]), ("limit", i64(1)[0]), ("delta", i64(-3)[0])])
    fixture("pad_opset9_attr", 9, [2, 3, 4], [node("Pad", ["x"], pads=[0, 1, 2, 0, 0, 1], value=1.5)])
    fixture("pad_opset9_reflect", 9, [2, 3, 4], [node("Pad", ["x"], mode="reflect", pads=[0, 2, 3, 0, 1, 2])])
    fixture("pad_reflect_batch_axis", 17, [3, 2, 4], [node("Pad", ["x", "pads"], mode="reflect")],
            [("pads", i64(2, 0, 1, 1, 0, 3))])
    fixture("pad_edge_negative", 17, [3, 5], [node("Pad", ["x", "pads"], mode="edge")],
            [("pads", i64(-1, 2, 2, -2))])
    fixture("pad_constant_negative", 17, [3, 5], [node("Pad", ["x", "pads", "v"])],
            [("pads", i64(1, -2, -1, 3)), ("v", np.float32(-4.0))])
    fixture("pad_opset18_axes", 18, [2, 3, 4], [node("Pad", ["x", "pads", "", "axes"], mode="edge")],
            [("pads", i64(1, 2, 3, 0)), ("axes", i64(-1, 0))])
    fixture("pad_opset19_wrap", 19, [3, 4], [node("Pad", ["x", "pads"], mode="wrap")],
            [("pads", i64(1, 5, 2, 3))])
    fixture("dropout_opset12_training_false", 12, [3, 4], [
        node("Dropout", ["x", "ratio", "train"], ["y", "mask"])],
        [("ratio", np.float32(0.3)), ("train", np.array(False))])
    # The mask is declared but not read: before opset 10 onnxruntime fills
    # it with zeros, the ONNX reference implementation with ones.
    fixture("dropout_opset9_mask", 9, [3, 4], [
        node("Dropout", ["x"], ["d", "mask"], ratio=0.2),
        node("Neg", ["d"]),
    ])

    # Index family.
    fixture("gather_negative", 17, [5, 3], [node("Gather", ["x", "i"], axis=0)],
            [("i", i64(-1, 0, -5, 2))])
    fixture("gather_int32_2d", 17, [2, 5, 3], [node("Gather", ["x", "i"], axis=-2)],
            [("i", np.array([[4, -2], [0, 1]], dtype=np.int32))])
    fixture("gather_scalar_axis2", 17, [2, 3, 4], [node("Gather", ["x", "i"], axis=2)], [("i", i64(-1)[0])])
    fixture("gatherelements", 17, [3, 4], [node("GatherElements", ["x", "i"], axis=1)],
            [("i", np.array([[0, 3], [-1, 1], [2, 2]], dtype=np.int64))])
    fixture("slice_opset9_attr", 9, [4, 6], [node("Slice", ["x"], starts=[1, -4], ends=[1000, -1], axes=[0, 1])])
    fixture("slice_opset9_noaxes", 9, [4, 6], [node("Slice", ["x"], starts=[1, 0], ends=[3, 4])])
    big = np.iinfo(np.int64)
    fixture("slice_neg_step_int_extremes", 17, [4, 6], [node("Slice", ["x", "st", "en", "ax", "sp"])],
            [("st", i64(big.max, -1)), ("en", i64(big.min, 0)), ("ax", i64(0, 1)), ("sp", i64(-1, -2))])
    fixture("slice_neg_step_out_of_range", 17, [4, 6], [node("Slice", ["x", "st", "en", "ax", "sp"])],
            [("st", i64(100)), ("en", i64(-100)), ("ax", i64(1)), ("sp", i64(-1))])
    fixture("slice_step3_neg_axis", 17, [4, 10], [node("Slice", ["x", "st", "en", "ax", "sp"])],
            [("st", i64(-9)), ("en", i64(big.max)), ("ax", i64(-1)), ("sp", i64(3))])
    fixture("slice_empty", 17, [4, 6], [
        node("Slice", ["x", "st", "en", "ax"], ["r"]),
        node("Shape", ["r"], ["s"]), to_float("s")],
            [("st", i64(3)), ("en", i64(1)), ("ax", i64(1))])


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("t_*"):
        old.unlink()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    # Entries of other generators (make_op_fixtures_more.py: m_*) stay.
    path = OUT / "manifest.json"
    others = [e for e in json.loads(path.read_text()) if not e["name"].startswith("t_")] \
        if path.exists() else []
    manifest = []
    build()
    for name, opset, model, x, desc in FIXTURES:
        sess = ort.InferenceSession(
            model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        (y,) = sess.run(["y"], {"x": x})
        # The output shape is only known once onnxruntime has run the graph.
        model.graph.output[0].CopyFrom(
            helper.make_tensor_value_info("y", TensorProto.FLOAT, list(np.shape(y)))
        )
        onnx.checker.check_model(model, full_check=True)
        data = model.SerializeToString()
        (OUT / f"{name}.onnx").write_bytes(data)
        np.save(OUT / f"{name}.input.npy", x)
        np.save(OUT / f"{name}.expected.npy", np.asarray(y))
        ops = sorted({n.op_type for n in model.graph.node})
        manifest.append({"name": name, "opset": opset, "ops": ops,
                         "input_shape": list(x.shape), "output_shape": list(np.shape(y)),
                         "description": desc})
    path.write_text(json.dumps(manifest + others, indent=1) + "\n")
    print(f"{len(manifest)} fixtures in {OUT}")


if __name__ == "__main__":
    main()
