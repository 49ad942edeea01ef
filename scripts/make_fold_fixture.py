#!/usr/bin/env python3
"""Writes tests/fixtures/models/conv_shared_bias.onnx, a tiny model whose
weights are computed from constants, as exporters write them: a bias shared
by two Conv layers through Identity nodes (torch.onnx deduplicates equal
initializers so) and a weight made by ConstantOfShape. The loader folds such
nodes into constants. With the model: NAME.input.npy and onnxruntime's
output NAME.expected.npy, so the parity and cut tests pick it up.

Also writes three small models for the loader's rules (no input or expected
file, so the parity and cut tests leave them alone): fold_error_reshape.onnx
(a Reshape of constants to an impossible shape, which fails when folded: a
load error naming the node), fold_nothing_computed.onnx (no node but a
Constant: a load error) and fold_constant_output.onnx (the output is computed
from constants only: its node stays, the Identity before it is folded).

Usage: python3 scripts/make_fold_fixture.py   (needs numpy, onnx, onnxruntime)
"""
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

name = "conv_shared_bias"
out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "models")
rng = np.random.default_rng(0)

inits = [
    numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w1"),
    numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "bias"),
    numpy_helper.from_array(np.array([4, 4, 1, 1], dtype=np.int64), "w2_shape"),
]
nodes = [
    helper.make_node("Identity", ["bias"], ["b1"], name="bias_for_conv1"),
    helper.make_node("Identity", ["bias"], ["b2"], name="bias_for_conv2"),
    helper.make_node(
        "ConstantOfShape", ["w2_shape"], ["w2"], name="make_w2",
        value=numpy_helper.from_array(np.array([0.25], dtype=np.float32)),
    ),
    helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
    helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2"),
    helper.make_node("Add", ["c2", "r1"], ["s"], name="add"),
    helper.make_node("GlobalAveragePool", ["s"], ["p"], name="pool"),
    helper.make_node("Flatten", ["p"], ["y"], name="flatten"),
]
graph = helper.make_graph(
    nodes,
    name,
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    inits,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
path = os.path.join(out, f"{name}.onnx")
onnx.save(model, path)
x = rng.standard_normal((5, 3, 8, 8)).astype(np.float32)
y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
np.save(os.path.join(out, f"{name}.input.npy"), x)
np.save(os.path.join(out, f"{name}.expected.npy"), y)
print(f"wrote {path}, output {y.shape}")


def save_small(name, nodes, inits, outputs):
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = os.path.join(out, f"{name}.onnx")
    onnx.save(model, path)
    print(f"wrote {path}")


w = numpy_helper.from_array(np.arange(6, dtype=np.float32), "w")
save_small(
    "fold_error_reshape",
    [
        helper.make_node("Reshape", ["w", "shape"], ["w45"], name="reshape_w"),
        helper.make_node("Add", ["x", "w45"], ["y"], name="add"),
    ],
    [w, numpy_helper.from_array(np.array([4, 5], dtype=np.int64), "shape")],
    ["y"],
)
save_small(
    "fold_nothing_computed",
    [
        helper.make_node(
            "Constant", [], ["y"], name="const_y",
            value=numpy_helper.from_array(np.ones(4, dtype=np.float32)),
        ),
    ],
    [],
    ["y"],
)
save_small(
    "fold_constant_output",
    [
        helper.make_node("Neg", ["x"], ["unused"], name="neg_x"),
        helper.make_node("Identity", ["w"], ["w1"], name="identity_w"),
        helper.make_node("Relu", ["w1"], ["y"], name="relu_w"),
    ],
    [w],
    ["y"],
)
