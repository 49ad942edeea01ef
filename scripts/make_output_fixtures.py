"""Models whose outputs are not one [N, classes] tensor, for the outcome tests.

Writes tests/fixtures/outputs/:
- two_outputs.onnx: x [N, 6] -> y = Relu(x W1) [N, 4] and z = Sigmoid(x W2)
  [N, 3], two graph outputs (y first).
- map_output.onnx: x [N, 4, 5] -> Relu(Conv1d 4->2, kernel 3, pad 1) [N, 2, 5].
- their inputs (8 samples each) as .npy, and onnxruntime's outputs for them.
Deterministic. Run: python3 scripts/make_output_fixtures.py
"""
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "outputs")


def save(name, nodes, inits, inputs, outputs, x):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(m)
    path = os.path.join(OUT, name + ".onnx")
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
    np.save(os.path.join(OUT, name + ".input.npy"), x)
    got = ort.InferenceSession(path).run(None, {"x": x})
    for out, value in zip(outputs, got):
        np.save(os.path.join(OUT, f"{name}.{out.name}.expected.npy"), value)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)
    save(
        "two_outputs",
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm_y"),
            helper.make_node("Relu", ["h"], ["y"], name="relu"),
            helper.make_node("MatMul", ["x", "w2"], ["g"], name="mm_z"),
            helper.make_node("Sigmoid", ["g"], ["z"], name="sigmoid"),
        ],
        [numpy_helper.from_array(f32(6, 4), "w1"), numpy_helper.from_array(f32(6, 3), "w2")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3]),
        ],
        f32(8, 6),
    )
    save(
        "map_output",
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1]),
            helper.make_node("Relu", ["c"], ["y"], name="relu"),
        ],
        [numpy_helper.from_array(f32(2, 4, 3), "w"), numpy_helper.from_array(f32(2), "b")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 5])],
        f32(8, 4, 5),
    )


if __name__ == "__main__":
    main()
