"""Torchvision's MobileNetV2 (../shared/models/mobilenet_v2.onnx) quantized
to INT8 by onnxruntime, as a user would, and converted to float16.

Writes target/bench-models/:
  mobilenet_v2_qdq.onnx   quantize_static, QDQ: QuantizeLinear and
                          DequantizeLinear around the float ops, int8
                          activations, per-channel int8 weights
  mobilenet_v2_qop.onnx   quantize_static, QOperator: QLinearConv and
                          QLinearMatMul (the standard ONNX ops; the other
                          ops stay float between QuantizeLinear and
                          DequantizeLinear, since onnxruntime's QOperator
                          forms of Add, Gemm and GlobalAveragePool are its
                          own com.microsoft ops), int8
  mobilenet_v2_fp16.onnx  every tensor float16 (onnxconverter-common)

Calibration: crops 100 to 199 of data/bench/crops200.npy (random crops of
the shared photos: `cargo run --release --example make_crops --
data/bench/crops200.npy`); the campaigns in docs/models.md use crops 0 to 49.

Run: python3 scripts/make_quantized_mobilenet.py [--model M] [--crops C]
"""

import argparse
import os

import numpy as np
import onnx
from onnxconverter_common import float16
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Reader(CalibrationDataReader):
    def __init__(self, name, crops):
        self.name, self.crops = name, iter(crops)

    def get_next(self):
        c = next(self.crops, None)
        return None if c is None else {self.name: c[None]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "..", "shared", "models", "mobilenet_v2.onnx"))
    ap.add_argument("--crops", default=os.path.join(ROOT, "data", "bench", "crops200.npy"))
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench-models"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    crops = np.load(args.crops)[100:200]
    name = onnx.load(args.model).graph.input[0].name
    for form, ops in [(QuantFormat.QDQ, None), (QuantFormat.QOperator, ["Conv", "MatMul"])]:
        out = os.path.join(args.out, f"mobilenet_v2_{'qdq' if form == QuantFormat.QDQ else 'qop'}.onnx")
        quantize_static(args.model, out, Reader(name, crops), quant_format=form, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=ops)
        print("wrote", out)
    half = float16.convert_float_to_float16(onnx.load(args.model), keep_io_types=False)
    out = os.path.join(args.out, "mobilenet_v2_fp16.onnx")
    onnx.save(half, out)
    print("wrote", out)


if __name__ == "__main__":
    main()
