"""Malformed ONNX models for the loader's error tests.

Writes tests/fixtures/errors/*.onnx, each broken in one way that the loader
must report (file, node, op, opset) instead of panicking. Deterministic.
Run: python3 scripts/make_error_fixtures.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "errors")


def model(nodes, inits=(), opset=17, inputs=None, outputs=None):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def save(name, m):
    with open(os.path.join(OUT, name + ".onnx"), "wb") as f:
        f.write(m.SerializeToString())


def main():
    os.makedirs(OUT, exist_ok=True)
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    # A good two-node model the tests also truncate and corrupt.
    save("good", model([helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
                        helper.make_node("Relu", ["h"], ["y"], name="relu")], [w]))
    save("unsupported_op", model([helper.make_node("Frobnicate", ["x"], ["y"], name="frob")]))
    save("custom_domain", model([helper.make_node("Relu", ["x"], ["y"], name="r", domain="com.example")]))
    save("unknown_attribute", model([helper.make_node("Relu", ["x"], ["y"], name="relu", flavour=3)]))
    save("missing_initializer", model([helper.make_node("MatMul", ["x", "w_missing"], ["y"], name="mm")]))
    save("cycle", model([helper.make_node("Add", ["x", "b"], ["a"], name="first"),
                         helper.make_node("Relu", ["a"], ["b"], name="second"),
                         helper.make_node("Relu", ["a"], ["y"], name="out")]))
    save("undefined_output", model([helper.make_node("Relu", ["x"], ["h"], name="relu")]))
    save("old_opset", model([helper.make_node("Relu", ["x"], ["y"], name="relu")], opset=5))
    save("bad_conv_pads", model(
        [helper.make_node("Conv", ["x", "k"], ["y"], name="conv", pads=[1, 1, 1])],
        [numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "k")],
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 5, 5])]))
    short = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    short.raw_data = short.raw_data[:10]
    save("short_initializer", model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [short]))
    # Found while writing the loader's fuzz target: external data must stay inside the
    # model's folder (an absolute /dev/zero was read until memory ran out),
    # and a shape whose byte size overflows is an error, not a wrap-around.
    for name, location in [("external_absolute", "/dev/zero"), ("external_escapes", "../errors/good.onnx")]:
        ext = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
        ext.ClearField("raw_data")
        ext.data_location = TensorProto.EXTERNAL
        for k, v in [("location", location), ("length", "64")]:
            e = ext.external_data.add()
            e.key, e.value = k, v
        save(name, model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [ext]))
    # The same weights as `good`, stored beside the model (loads).
    ext = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    with open(os.path.join(OUT, "external_ok.weights"), "wb") as f:
        f.write(b"header.." + ext.raw_data + b"trailer")
    ext.ClearField("raw_data")
    ext.data_location = TensorProto.EXTERNAL
    for k, v in [("location", "external_ok.weights"), ("offset", "8"), ("length", "64")]:
        e = ext.external_data.add()
        e.key, e.value = k, v
    save("external_ok", model([helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
                               helper.make_node("Relu", ["h"], ["y"], name="relu")], [ext]))
    huge = TensorProto(name="w", data_type=TensorProto.DOUBLE, dims=[2**61 + 1], raw_data=bytes(8))
    save("huge_initializer", model([helper.make_node("Relu", ["w"], ["y"], name="relu")], [huge]))
    # Valid protobuf, but a TensorProto rather than a ModelProto.
    with open(os.path.join(OUT, "not_a_model.onnx"), "wb") as f:
        f.write(w.SerializeToString())


if __name__ == "__main__":
    main()
