#!/usr/bin/env python3
"""Exports a full-size torchvision model with random weights (dynamic
batch, TorchScript exporter, opset 17) and a few random inputs, for
checking campaigns on models too large to commit: `lraspp` and `deeplab`
(segmentation, 21 classes, output `out` [N, 21, H, W]) and `swin_t`
(ImageNet classifier, 28M parameters). Writes NAME.onnx, NAME_data.npy
(6 samples) and NAME.yml (200 single-bit neuron faults, every target)
to the folder given (the segmentation models' with `task: segmentation`;
scenarios/lraspp_segmentation.yml reads `target/real`).

    python3 scripts/make_real_exports.py lraspp 96 target/real
    python3 scripts/make_real_exports.py lraspp 96 /tmp/real
    target/release/faultsweep run /tmp/real/lraspp.yml --verify 200
"""

import sys
from pathlib import Path

import numpy as np
import torch
import torchvision

name, size, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
segmentation = torchvision.models.segmentation
models = {
    "lraspp": lambda: segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21),
    "deeplab": lambda: segmentation.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21),
    "swin_t": lambda: torchvision.models.swin_t(weights=None),
}
model = models[name]().eval()


class FirstOutput(torch.nn.Module):
    """The segmentation models return a dict; its `out` is the map."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        y = self.inner(x)
        return y["out"] if isinstance(y, dict) else y


torch.onnx.export(
    FirstOutput(model), (torch.randn(2, 3, size, size),), out / f"{name}.onnx",
    input_names=["input"], output_names=["out"], dynamo=False, opset_version=17,
    dynamic_axes={"input": {0: "batch"}, "out": {0: "batch"}},
)
data = np.random.default_rng(0).standard_normal((6, 3, size, size)).astype(np.float32)
np.save(out / f"{name}_data.npy", data)
task = "task: segmentation\n" if name in ("lraspp", "deeplab") else ""
(out / f"{name}.yml").write_text(
    f"name: {name}\nseed: 2\nmodel:\n  path: {out / name}.onnx\n{task}data:\n  path: {out / name}_data.npy\n"
    "  batch_size: 2\ntargets:\n  target: neuron\nfault:\n  model: bit_flip\n  dtype: fp32\n"
    "  bits: all\ncounts:\n  injections: 200\n"
)
print("wrote", out / f"{name}.onnx")
