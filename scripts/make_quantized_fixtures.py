"""Quantized and half-precision fixtures: a small CNN, quantized by
onnxruntime as a user would, with onnxruntime's values as the oracle.

Writes tests/fixtures/quantized/:
  cnn.onnx              float32 CNN (Conv-Relu, depthwise Conv-Relu, 1x1
                        Conv-Relu, GlobalAveragePool, MatMul + Add), opset 17
  cnn_qdq.onnx          quantize_static, QDQ, int8 activations and weights,
                        per-channel weights
  cnn_qop.onnx          quantize_static, QOperator (QLinearConv,
                        QLinearMatMul), int8
  cnn_qop_u8.onnx       the same with uint8 activations
  cnn_dynamic.onnx      quantize_dynamic: DynamicQuantizeLinear,
                        ConvInteger, MatMulInteger
  cnn_fp16.onnx         every tensor float16 (onnxconverter-common)
  inputs.npy            float32 [8, 3, 16, 16], the test inputs
  NAME.values.npz       onnxruntime's value of every node output on the
                        inputs (graph optimizations off, so each node runs
                        as written), by value name
  faults.json           faults on the int8 models with onnxruntime's
                        outputs under them (NAME.fault_K.npy): a bit of an
                        int8 weight initializer, and a bit of a QLinearConv
                        output (the model cut at that value and the rest
                        run on the faulty word)

Calibration uses other random inputs of the same distribution.
Run: python3 scripts/make_quantized_fixtures.py (packages:
scripts/requirements-dev.txt).
"""

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import helper, numpy_helper
from onnxconverter_common import float16
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "quantized")


class Cnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.dw = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.pw = torch.nn.Conv2d(8, 16, 1)
        self.head = torch.nn.Parameter(torch.randn(16, 10) * 0.3)
        self.bias = torch.nn.Parameter(torch.randn(10) * 0.1)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.dw(x))
        x = torch.relu(self.pw(x))
        x = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return x @ self.head + self.bias


class Reader(CalibrationDataReader):
    def __init__(self, batches):
        self.batches = iter(batches)

    def get_next(self):
        b = next(self.batches, None)
        return None if b is None else {"input": b}


def all_values(path, inputs):
    """onnxruntime's value of every node output, each node run as written."""
    model = onnx.load(path)
    # Declared outputs must be new names: keep the real ones, add the rest.
    have = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in have:
                model.graph.output.append(helper.ValueInfoProto(name=name))
                have.add(name)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    feed_name = sess.get_inputs()[0].name
    values = sess.run(names, {feed_name: inputs})
    return dict(zip(names, values))


def run(model, inputs):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: inputs})[0]


def flip(word, bit, dtype):
    bits = np.array(word, dtype=dtype).view(np.uint8 if dtype != np.int32 else np.uint32)
    return (bits ^ (1 << bit)).view(dtype)


def weight_fault(name, init_name, index, bit, inputs):
    """Flips `bit` of element `index` of initializer `init_name`."""
    model = onnx.load(os.path.join(OUT, f"{name}.onnx"))
    for i, t in enumerate(model.graph.initializer):
        if t.name == init_name:
            w = numpy_helper.to_array(t).copy()
            flat = w.reshape(-1)
            flat[index] = flip(flat[index], bit, w.dtype.type)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(w, init_name))
    return run(model, inputs)


def neuron_fault(name, value, sample, index, bit, inputs):
    """Flips `bit` of element `index` of `value` (one sample's) and runs the
    rest of the model from there."""
    values = all_values(os.path.join(OUT, f"{name}.onnx"), inputs)
    word = values[value].copy()
    flat = word[sample].reshape(-1)
    flat[index] = flip(flat[index], bit, word.dtype.type)
    word[sample] = flat.reshape(word[sample].shape)
    model = onnx.load(os.path.join(OUT, f"{name}.onnx"))
    out = model.graph.output[0].name
    tail = os.path.join(OUT, f"{name}.tail.onnx")
    onnx.utils.extract_model(os.path.join(OUT, f"{name}.onnx"), tail, [value], [out])
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(tail, opts, providers=["CPUExecutionProvider"])
    result = sess.run(None, {value: word})[0]
    os.remove(tail)
    return result


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(7)
    net = Cnn().eval()
    rng = np.random.default_rng(7)
    inputs = rng.normal(0, 1, (8, 3, 16, 16)).astype(np.float32)
    calibration = [rng.normal(0, 1, (4, 3, 16, 16)).astype(np.float32) for _ in range(8)]
    np.save(os.path.join(OUT, "inputs.npy"), inputs)
    float_path = os.path.join(OUT, "cnn.onnx")
    torch.onnx.export(
        net, torch.from_numpy(inputs), float_path, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=17, dynamo=False,
    )
    common = dict(per_channel=True, op_types_to_quantize=["Conv", "MatMul"])
    quantize_static(float_path, os.path.join(OUT, "cnn_qdq.onnx"), Reader(calibration),
                    quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, **common)
    quantize_static(float_path, os.path.join(OUT, "cnn_qop.onnx"), Reader(calibration),
                    quant_format=QuantFormat.QOperator, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, **common)
    quantize_static(float_path, os.path.join(OUT, "cnn_qop_u8.onnx"), Reader(calibration),
                    quant_format=QuantFormat.QOperator, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, **common)
    quantize_dynamic(float_path, os.path.join(OUT, "cnn_dynamic.onnx"),
                     op_types_to_quantize=["Conv", "MatMul"], weight_type=QuantType.QUInt8)
    half = float16.convert_float_to_float16(onnx.load(float_path), keep_io_types=False)
    onnx.save(half, os.path.join(OUT, "cnn_fp16.onnx"))

    for name in ["cnn_qdq", "cnn_qop", "cnn_qop_u8", "cnn_dynamic", "cnn_fp16"]:
        feed = inputs.astype(np.float16) if name == "cnn_fp16" else inputs
        values = all_values(os.path.join(OUT, f"{name}.onnx"), feed)
        np.savez(os.path.join(OUT, f"{name}.values.npz"), **values)

    # Faults with onnxruntime's outputs under them.
    faults = []
    def weight_of(name, op):
        model = onnx.load(os.path.join(OUT, f"{name}.onnx"))
        inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        for node in model.graph.node:
            if node.op_type == op:
                for i in node.input:
                    if i in inits and inits[i].dtype == np.int8 and inits[i].ndim == 4:
                        return node, i, inits[i]
        raise SystemExit(f"{name}: no int8 weight read by {op}")
    golden = {name: run(onnx.load(os.path.join(OUT, f"{name}.onnx")), inputs) for name in ["cnn_qdq", "cnn_qop"]}

    def effective(out, name, sample):
        return not np.array_equal(out[sample], golden[name][sample])

    for name, op in [("cnn_qdq", "DequantizeLinear"), ("cnn_qop", "QLinearConv")]:
        node, init, w = weight_of(name, op)
        for bit in [7, 3]:
            # A fault whose effect reaches sample 0's output.
            while True:
                index = int(rng.integers(w.size))
                out = weight_fault(name, init, index, bit, inputs)
                if effective(out, name, 0):
                    break
            k = len(faults)
            np.save(os.path.join(OUT, f"{name}.fault_{k}.npy"), out)
            faults.append(dict(model=name, target="weight", initializer=init, reader=node.name,
                               index=index, bit=bit, output=f"{name}.fault_{k}.npy"))
    model = onnx.load(os.path.join(OUT, "cnn_qop.onnx"))
    conv = [n for n in model.graph.node if n.op_type == "QLinearConv"][1]
    shape = all_values(os.path.join(OUT, "cnn_qop.onnx"), inputs)[conv.output[0]].shape
    for bit in [6, 2]:
        while True:
            sample, index = int(rng.integers(8)), int(rng.integers(np.prod(shape[1:])))
            out = neuron_fault("cnn_qop", conv.output[0], sample, index, bit, inputs)
            if effective(out, "cnn_qop", sample):
                break
        k = len(faults)
        np.save(os.path.join(OUT, f"cnn_qop.fault_{k}.npy"), out)
        faults.append(dict(model="cnn_qop", target="neuron", layer=conv.name, value=conv.output[0],
                           sample=sample, index=index, bit=bit, output=f"cnn_qop.fault_{k}.npy"))
    with open(os.path.join(OUT, "faults.json"), "w") as f:
        json.dump(faults, f, indent=1)
    print(json.dumps(faults, indent=1))


if __name__ == "__main__":
    main()
