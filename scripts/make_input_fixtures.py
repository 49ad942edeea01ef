#!/usr/bin/env python3
"""A model of two inputs of different types and two outputs, for `infer`
with .npz inputs and outputs: `tokens` (int64 token ids, [N, 4]) look up an
embedding, are summed over the positions and scaled by `scale` (float32,
[N, 1]) into `y` (float32, [N, 3]); `best` (int64, [N]) is its argmax.
Writes tests/fixtures/models/two_inputs.onnx, its inputs
(two_inputs.input.npz) and onnxruntime's outputs (two_inputs.expected.npz);
then a classifier of token ids and a float16 CNN, each with a data set.

    python3 scripts/make_input_fixtures.py
"""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "models"
rng = np.random.default_rng(7)
table = rng.standard_normal((10, 3)).astype(np.float32)
nodes = [
    helper.make_node("Gather", ["table", "tokens"], ["embedded"]),
    helper.make_node("ReduceSum", ["embedded", "axes"], ["summed"], keepdims=0),
    helper.make_node("Mul", ["summed", "scale"], ["y"]),
    helper.make_node("ArgMax", ["y"], ["best"], axis=1, keepdims=0),
]
graph = helper.make_graph(
    nodes,
    "two_inputs",
    [
        helper.make_tensor_value_info("tokens", TensorProto.INT64, ["N", 4]),
        helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["N", 1]),
    ],
    [
        helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]),
        helper.make_tensor_value_info("best", TensorProto.INT64, ["N"]),
    ],
    initializer=[
        numpy_helper.from_array(table, "table"),
        numpy_helper.from_array(np.array([1], np.int64), "axes"),
    ],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
onnx.checker.check_model(model)
path = OUT / "two_inputs.onnx"
onnx.save(model, path)
inputs = {
    "tokens": rng.integers(0, 10, (5, 4)).astype(np.int64),
    "scale": rng.uniform(0.5, 2.0, (5, 1)).astype(np.float32),
}
so = ort.SessionOptions()
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
y, best = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, inputs)
np.savez(OUT / "two_inputs.input.npz", **inputs)
np.savez(OUT / "two_inputs.expected.npz", y=y, best=best)
print("wrote", path)

# A classifier of token ids (int64, [N, 6]) for campaigns on index data:
# embedding, mean over positions, two Gemm layers. Its data set and
# onnxruntime's logits go to tests/fixtures/data.
DATA = OUT.parent / "data"
emb = rng.standard_normal((50, 8)).astype(np.float32)
w1 = rng.standard_normal((4, 8)).astype(np.float32)
w2 = rng.standard_normal((3, 4)).astype(np.float32)
nodes = [
    helper.make_node("Gather", ["embedding", "tokens"], ["embedded"], name="embed"),
    helper.make_node("ReduceMean", ["embedded"], ["pooled"], axes=[1], keepdims=0, name="pool"),
    helper.make_node("Gemm", ["pooled", "w1", "b1"], ["h"], transB=1, name="fc1"),
    helper.make_node("Relu", ["h"], ["a"], name="relu"),
    helper.make_node("Gemm", ["a", "w2", "b2"], ["logits"], transB=1, name="fc2"),
]
graph = helper.make_graph(
    nodes,
    "tokens_classifier",
    [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["N", 6])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
    initializer=[
        numpy_helper.from_array(emb, "embedding"),
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(np.full(4, 0.1, np.float32), "b1"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(np.zeros(3, np.float32), "b2"),
    ],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
onnx.checker.check_model(model)
path = OUT / "tokens_classifier.onnx"
onnx.save(model, path)
tokens = rng.integers(0, 50, (40, 6)).astype(np.int64)
(logits,) = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(
    None, {"tokens": tokens}
)
labels = logits.argmax(1).astype(np.int64)
labels[::5] = (labels[::5] + 1) % 3  # some wrong, so accuracy is not trivial
np.save(DATA / "tokens.npy", tokens)
np.save(DATA / "tokens_labels.npy", labels)
np.save(DATA / "tokens_logits.npy", logits)
print("wrote", path)

# A float16 model (float16 input, weights and output): Conv, Relu, global
# average pool, Gemm. Its data set is float32 (converted to the model's
# float16 as read) with onnxruntime's logits of the float16 inputs.
w = (rng.standard_normal((4, 1, 3, 3)) * 0.5).astype(np.float16)
g = rng.standard_normal((3, 4)).astype(np.float16)
nodes = [
    helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
    helper.make_node("Relu", ["c"], ["r"], name="relu"),
    helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
    helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
    helper.make_node("Gemm", ["f", "g"], ["logits"], transB=1, name="fc"),
]
graph = helper.make_graph(
    nodes,
    "half_cnn",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["N", 1, 8, 8])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT16, ["N", 3])],
    initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(g, "g")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
onnx.checker.check_model(model)
path = OUT / "half_cnn.onnx"
onnx.save(model, path)
x = rng.standard_normal((24, 1, 8, 8)).astype(np.float32)
(logits,) = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(
    None, {"x": x.astype(np.float16)}
)
np.save(DATA / "half.npy", x)
np.save(DATA / "half_logits.npy", logits.astype(np.float32))
print("wrote", path)
