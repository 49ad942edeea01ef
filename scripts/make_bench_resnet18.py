#!/usr/bin/env python3
"""Exports torchvision's full-size ResNet-18 for the speed benchmark
(benches/engine.rs, scenarios/bench_resnet18.yml).

No pretrained weights can be fetched here, so the weights are torchvision's
initialisation with a fixed seed: the architecture, shapes and compute are
ResNet-18's, the outcome rates are not those of a trained model. The file
(45 MB) is not committed; the benchmark falls back to the shrunk fixture
tests/fixtures/models/resnet18_ts17.onnx when it is absent.

Usage: python3 scripts/make_bench_resnet18.py [OUT]   (default target/bench-models/resnet18.onnx)
Needs torch and torchvision (PyPI).
"""
import os
import sys

import torch
import torchvision

out = sys.argv[1] if len(sys.argv) > 1 else "target/bench-models/resnet18.onnx"
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
torch.manual_seed(0)
model = torchvision.models.resnet18(weights=None).eval()
torch.onnx.export(
    model,
    torch.randn(2, 3, 224, 224),
    out,
    input_names=["input"],
    output_names=["logits"],
    opset_version=17,
    dynamo=False,
    dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
)
print(f"wrote {out}")
