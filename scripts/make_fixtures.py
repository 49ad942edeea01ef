#!/usr/bin/env python3
"""Generate the ONNX parity fixtures in tests/fixtures/models/.

For every fixture NAME it writes NAME.onnx, NAME.input.npy (float32) and
NAME.expected.npy (float32, computed by onnxruntime on CPU with all graph
optimizations disabled), plus manifest.json (one entry per fixture).

Groups:
  arch   shrunk torchvision architectures (same module classes as the full
         models, so the same ONNX op set), 4 export variants each:
         <arch>_ts17 (TorchScript exporter, opset 17, constant folding),
         <arch>_ts17_nofold (same, do_constant_folding=False),
         <arch>_dyn18 / <arch>_dyn20 (dynamo exporter, opset 18 / 20)
  light  the light_*.onnx models shipped in the onnx wheel (placeholder weights)
  op     hand-made single-op / tiny graphs (onnx.helper) pinning attribute semantics
  transformer  a tiny transformer block exported by the dynamo exporter at
         opsets 23 and 24 (transformer_block_dyn23/24: one ONNX Attention node)

Run from the repository root (takes a few minutes on 2 cores):
  python3 scripts/make_fixtures.py                 # everything
  python3 scripts/make_fixtures.py --groups op     # only some groups (arch,light,op,dyn);
                                                   # manifest entries of other groups are kept
Deterministic: seeded torch / numpy; re-running gives the same files for the
same package versions (scripts/requirements-dev.txt).
"""

import argparse
import glob
import io
import json
import math
import os
import shutil
import sys
import traceback
import warnings
from functools import partial

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "models")
SEED = 1234

warnings.filterwarnings("ignore")
torch.set_num_threads(2)

MANIFEST = {}
FAILURES = []


# --------------------------------------------------------------------------- helpers

def op_types(model):
    """Sorted op types of a model (incl. subgraphs and local functions); 'domain::Op' if not default."""
    ops = set()

    def walk(graph):
        for n in graph.node:
            dom = n.domain
            ops.add(n.op_type if dom in ("", "ai.onnx") else f"{dom}::{n.op_type}")
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                for g in a.graphs:
                    walk(g)

    walk(model.graph)
    for f in model.functions:
        for n in f.node:
            ops.add(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}")
    return sorted(ops)


def default_opset(model):
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return None


def run_ort(path, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    assert len(inputs) == 1, [i.name for i in inputs]
    outs = sess.run(None, {inputs[0].name: x})
    return outs[0]


def record(name, source, exporter, constant_folding, x, group, extra=None):
    path = os.path.join(OUT, name + ".onnx")
    model = onnx.load(path)
    assert not any(t.data_location == TensorProto.EXTERNAL for t in model.graph.initializer), name
    y = run_ort(path, x).astype(np.float32)
    np.save(os.path.join(OUT, name + ".input.npy"), x.astype(np.float32))
    np.save(os.path.join(OUT, name + ".expected.npy"), y)
    entry = {
        "name": name,
        "group": group,
        "source": source,
        "exporter": exporter,
        "opset": default_opset(model),
        "ir_version": model.ir_version,
        "constant_folding": constant_folding,
        "ops": op_types(model),
        "input_shape": list(x.shape),
        "output_shape": list(y.shape),
        "bytes": os.path.getsize(path),
    }
    other = [f"{o.domain}:{o.version}" for o in model.opset_import if o.domain not in ("", "ai.onnx")]
    if other:
        entry["other_opsets"] = other
    if extra:
        entry.update(extra)
    MANIFEST[name] = entry
    print(f"  {name:40s} opset {entry['opset']:>2} {entry['bytes']:>8d} B  ops={len(entry['ops'])}", flush=True)
    return y


# --------------------------------------------------------------------------- shrunk torchvision architectures

from torchvision.models import (  # noqa: E402
    AlexNet, ConvNeXt, DenseNet, EfficientNet, GoogLeNet, MNASNet, MobileNetV2, ResNet,
    ShuffleNetV2, SqueezeNet, VGG, VisionTransformer,
)
from torchvision.models.convnext import CNBlockConfig  # noqa: E402
from torchvision.models.efficientnet import MBConvConfig  # noqa: E402
from torchvision.models.googlenet import BasicConv2d, Inception, InceptionAux  # noqa: E402
from torchvision.models.mobilenetv3 import mobilenet_v3_small  # noqa: E402
from torchvision.models.regnet import BlockParams, RegNet  # noqa: E402
from torchvision.models.resnet import BasicBlock, Bottleneck  # noqa: E402
from torchvision.models.squeezenet import Fire  # noqa: E402
from torchvision.models.vgg import make_layers  # noqa: E402
from torchvision.ops.misc import Conv2dNormActivation  # noqa: E402


class SmallResNet(ResNet):
    """torchvision ResNet with all widths divided by `div` (stem, layers and fc)."""

    def __init__(self, block, layers, div, num_classes=10):
        self._div = div
        self._first_layer = True
        super().__init__(block, layers, num_classes=num_classes)
        w = 64 // div
        self.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.fc = nn.Linear(512 // div * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if self._first_layer:
            self.inplanes = 64 // self._div
            self._first_layer = False
        return super()._make_layer(block, planes // self._div, blocks, stride, dilate)


class SmallBasicConv2d(BasicConv2d):
    """GoogLeNet's BasicConv2d with channels divided by 16, rounded up (except the RGB input).
    All Inception branch outputs are multiples of 16, so the Concat sums stay consistent."""

    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__(in_channels if in_channels == 3 else -(-in_channels // 16), -(-out_channels // 16), **kwargs)


class SmallAlexNet(AlexNet):
    """AlexNet op sequence (incl. AdaptiveAvgPool2d((6,6)), Dropout, Linear) with reduced channels
    and a 5x5/stride-2 first conv so that a 110x110 input gives the 6x6 feature map."""

    def __init__(self, num_classes=10, dropout=0.5):
        super().__init__(num_classes=num_classes, dropout=dropout)
        c = [4, 12, 24, 16, 16]
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], kernel_size=5, stride=2, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c[0], c[1], kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c[1], c[2], kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        h = 32
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(c[4] * 6 * 6, h), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(h, h), nn.ReLU(inplace=True),
            nn.Linear(h, num_classes),
        )


def build_resnet18():
    return SmallResNet(BasicBlock, [1, 1, 1, 1], div=16), (2, 3, 32, 32), \
        "torchvision ResNet(BasicBlock, [1,1,1,1]) (resnet18 structure), widths /16, 10 classes"


def build_resnet50():
    return SmallResNet(Bottleneck, [1, 1, 1, 1], div=16), (2, 3, 32, 32), \
        "torchvision ResNet(Bottleneck, [1,1,1,1]) (resnet50 structure), widths /16, 10 classes"


def build_vgg11_bn():
    cfg = [8, "M", 16, "M", 16, 16, "M", 16, 16]
    m = VGG(make_layers(cfg, batch_norm=True), num_classes=10, init_weights=True)
    h = 32
    m.classifier = nn.Sequential(
        nn.Linear(16 * 7 * 7, h), nn.ReLU(True), nn.Dropout(p=0.5),
        nn.Linear(h, h), nn.ReLU(True), nn.Dropout(p=0.5),
        nn.Linear(h, 10),
    )
    return m, (2, 3, 56, 56), \
        "torchvision VGG(make_layers([8,M,16,M,16,16,M,16,16], batch_norm=True)) (vgg11_bn structure, 3 pools), " \
        "classifier 784-32-32-10"


def build_alexnet():
    return SmallAlexNet(), (2, 3, 110, 110), \
        "torchvision AlexNet subclass: same op sequence, channels 4/12/24/16/16, conv1 5x5 s2, classifier 576-32-32-10"


def build_squeezenet1_1():
    m = SqueezeNet(version="1_1", num_classes=10)
    m.features = nn.Sequential(
        nn.Conv2d(3, 8, kernel_size=3, stride=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(8, 2, 8, 8), Fire(16, 2, 8, 8),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(16, 4, 16, 16), Fire(32, 4, 16, 16),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(32, 6, 24, 24), Fire(48, 6, 24, 24), Fire(48, 8, 32, 32), Fire(64, 8, 32, 32),
    )
    m.classifier = nn.Sequential(
        nn.Dropout(p=0.5), nn.Conv2d(64, 10, kernel_size=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)),
    )
    return m, (2, 3, 32, 32), "torchvision SqueezeNet 1_1 structure, all channels /8, 10 classes"


def build_googlenet():
    m = GoogLeNet(num_classes=10, aux_logits=False, transform_input=True, init_weights=False,
                  blocks=[SmallBasicConv2d, partial(Inception, conv_block=SmallBasicConv2d), InceptionAux])
    m.fc = nn.Linear(1024 // 16, 10)
    return m, (2, 3, 32, 32), \
        "torchvision GoogLeNet(aux_logits=False, transform_input=True), all channels /16 (via blocks=), 10 classes"


def build_densenet121():
    return DenseNet(growth_rate=4, block_config=(2, 2, 2, 2), num_init_features=8, bn_size=4, num_classes=10), \
        (2, 3, 32, 32), "torchvision DenseNet(growth_rate=4, block_config=(2,2,2,2), num_init_features=8), 10 classes"


def build_mobilenet_v2():
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 32, 1, 2], [6, 48, 1, 1], [6, 64, 1, 2], [6, 64, 1, 1]]
    m = MobileNetV2(num_classes=10, width_mult=0.25, inverted_residual_setting=setting)
    cin = m.features[-1][0].in_channels
    m.features[-1] = Conv2dNormActivation(cin, 64, kernel_size=1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6)
    m.classifier[1] = nn.Linear(64, 10)
    m.last_channel = 64
    return m, (2, 3, 32, 32), \
        "torchvision MobileNetV2(width_mult=0.25), fewer repeats and channels (t,c,n,s settings 16/24/32/32/48/64/64), last conv 1280->64, 10 classes"


def build_mobilenet_v3_small():
    m = mobilenet_v3_small(width_mult=0.1, num_classes=10)
    m.classifier[0] = nn.Linear(m.classifier[0].in_features, 32)
    m.classifier[3] = nn.Linear(32, 10)
    return m, (2, 3, 32, 32), "torchvision mobilenet_v3_small(width_mult=0.1, num_classes=10), classifier hidden 1024->32"


def build_efficientnet_b0():
    wm, dm = 0.125, 0.1
    setting = [
        MBConvConfig(1, 3, 1, 32, 16, 1, wm, dm),
        MBConvConfig(6, 3, 2, 16, 24, 2, wm, dm),
        MBConvConfig(6, 5, 2, 24, 40, 2, wm, dm),
        MBConvConfig(6, 3, 2, 40, 80, 3, wm, dm),
        MBConvConfig(6, 5, 1, 80, 112, 3, wm, dm),
        MBConvConfig(6, 5, 2, 112, 192, 4, wm, dm),
        MBConvConfig(6, 3, 1, 192, 320, 1, wm, dm),
    ]
    setting[1].num_layers = 2  # keep one stride-1 residual MBConv (with StochasticDepth + Add)
    m = EfficientNet(setting, dropout=0.2, stochastic_depth_prob=0.2, num_classes=10, last_channel=64)
    return m, (2, 3, 32, 32), \
        "torchvision EfficientNet with efficientnet_b0 MBConvConfig settings, width_mult 0.125, 1-2 layers per stage, last_channel 64"


def build_shufflenet_v2_x1_0():
    return ShuffleNetV2([2, 2, 2], [8, 16, 32, 64, 128], num_classes=10), (2, 3, 32, 32), \
        "torchvision ShuffleNetV2(stages_repeats=[2,2,2], stages_out_channels=[8,16,32,64,128]), 10 classes"


def build_regnet_y_400mf():
    from torchvision.models.regnet import ResBottleneckBlock, SimpleStemIN
    bp = BlockParams(depths=[1, 1, 2, 1], widths=[8, 16, 24, 32], group_widths=[8, 8, 8, 8],
                     bottleneck_multipliers=[1.0] * 4, strides=[2, 2, 2, 2], se_ratio=0.25)
    m = RegNet(bp, num_classes=10, stem_width=8, stem_type=SimpleStemIN, block_type=ResBottleneckBlock,
               norm_layer=partial(nn.BatchNorm2d, eps=1e-05, momentum=0.1), activation=nn.ReLU)
    return m, (2, 3, 32, 32), \
        "torchvision RegNet (regnet_y_400mf structure: SE, group width 8), depths [1,1,2,1], widths [8,16,24,32]"


def build_mnasnet0_5():
    from torchvision.models.mnasnet import _BN_MOMENTUM, _get_depths, _stack
    m = MNASNet(alpha=0.1, num_classes=10)
    d = _get_depths(0.1)
    # same stacks as MNASNet.__init__ (in, out, kernel, stride, expansion), fewer repeats (orig 3,3,3,2,4,1)
    for i, (a, b, k, st, e, r) in enumerate([(1, 2, 3, 2, 3, 2), (2, 3, 5, 2, 3, 1), (3, 4, 5, 2, 6, 1),
                                              (4, 5, 3, 1, 6, 2), (5, 6, 5, 2, 6, 1), (6, 7, 3, 1, 6, 1)]):
        assert isinstance(m.layers[8 + i], nn.Sequential)
        m.layers[8 + i] = _stack(d[a], d[b], k, st, e, r, _BN_MOMENTUM)
    convs = [i for i, l in enumerate(m.layers) if isinstance(l, nn.Conv2d)]
    last = convs[-1]
    cin = m.layers[last].in_channels
    m.layers[last] = nn.Conv2d(cin, 64, 1, padding=0, stride=1, bias=False)
    m.layers[last + 1] = nn.BatchNorm2d(64, momentum=m.layers[last + 1].momentum)
    m.classifier[1] = nn.Linear(64, 10)
    return m, (2, 3, 32, 32), "torchvision MNASNet(alpha=0.1) (mnasnet0_5 structure), stack repeats 2/1/1/2/1/1, final conv 1280->64, 10 classes"


def build_convnext_tiny():
    setting = [CNBlockConfig(8, 16, 1), CNBlockConfig(16, 24, 1), CNBlockConfig(24, 32, 2), CNBlockConfig(32, None, 1)]
    m = ConvNeXt(setting, stochastic_depth_prob=0.1, layer_scale=1e-6, num_classes=10)
    return m, (2, 3, 32, 32), "torchvision ConvNeXt (convnext_tiny structure), CNBlockConfig dims 8/16/24/32, depths 1/1/2/1"


def build_vit_b_16():
    m = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                          num_classes=10)
    return m, (2, 3, 32, 32), \
        "torchvision VisionTransformer (vit_b_16 structure) image 32, patch 8, 2 layers, 2 heads, hidden 32, mlp 64"


ARCHS = [
    ("resnet18", build_resnet18), ("resnet50", build_resnet50), ("vgg11_bn", build_vgg11_bn),
    ("alexnet", build_alexnet), ("squeezenet1_1", build_squeezenet1_1), ("googlenet", build_googlenet),
    ("densenet121", build_densenet121), ("mobilenet_v2", build_mobilenet_v2),
    ("mobilenet_v3_small", build_mobilenet_v3_small), ("efficientnet_b0", build_efficientnet_b0),
    ("shufflenet_v2_x1_0", build_shufflenet_v2_x1_0), ("regnet_y_400mf", build_regnet_y_400mf),
    ("mnasnet0_5", build_mnasnet0_5), ("convnext_tiny", build_convnext_tiny), ("vit_b_16", build_vit_b_16),
]


def randomize(model):
    """Make normalization layers non-trivial and replace constant-initialized parameters by random ones."""
    with torch.no_grad():
        handled = set()
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)):
                if m.weight is not None:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0.0, 0.2)
                    handled.update([id(m.weight), id(m.bias)])
        for name, p in model.named_parameters():
            if id(p) in handled:
                continue
            if name.endswith("layer_scale"):
                p.uniform_(0.3, 1.0)
            elif p.numel() == 1 or float(p.std()) == 0.0:
                p.normal_(0.0, 0.1)
    model.eval()
    return model


STRIPPED_METADATA = ("pkg.torch.onnx.stack_trace", "pkg.torch.onnx.fx_node", "pkg.torch.onnx.class_hierarchy",
                     "pkg.torch.onnx.name_scopes")


def strip_stack_traces(path):
    """Drop the dynamo exporter's per-node Python stack traces (machine-specific paths), FX node dumps,
    class hierarchies and name scopes (most of the file size); the other node metadata_props
    ("namespace", "pkg.onnxscript.rewriter.rule_name") are kept. Semantics are unchanged."""
    m = onnx.load(path)

    def walk(graph):
        for n in graph.node:
            keep = [p for p in n.metadata_props if p.key not in STRIPPED_METADATA]
            del n.metadata_props[:]
            n.metadata_props.extend(keep)
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                for g in a.graphs:
                    walk(g)

    walk(m.graph)
    onnx.save(m, path)


def export_arch(arch, builder, idx, variants):
    torch.manual_seed(SEED + idx)
    model, shape, source = builder()
    randomize(model)
    nparams = sum(p.numel() for p in model.parameters())
    rng = np.random.RandomState(SEED + idx)
    x = rng.standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    print(f"{arch}: {nparams} parameters, input {shape}", flush=True)
    for var in variants:
        name = f"{arch}_{var}"
        path = os.path.join(OUT, name + ".onnx")
        for p in glob.glob(os.path.join(OUT, name + ".*")):
            os.remove(p)
        extra = {"parameters": nparams}
        try:
            if var.startswith("ts17"):
                fold = var == "ts17"
                torch.onnx.export(model, (torch.from_numpy(x),), path, opset_version=17, dynamo=False,
                                  do_constant_folding=fold, input_names=["input"], output_names=["logits"],
                                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
                exporter, dyn_batch = "torchscript", True
            else:
                opset = int(var[3:])
                fold = True  # dynamo exporter runs its optimizer (constant folding) by default
                dyn_batch = True
                try:
                    prog = torch.onnx.export(model, (torch.from_numpy(x),), dynamo=True, opset_version=opset,
                                             input_names=["input"], output_names=["logits"],
                                             dynamic_shapes=({0: torch.export.Dim.DYNAMIC},),
                                             external_data=False)
                except Exception as e:  # noqa: BLE001
                    print(f"  {name}: dynamic batch failed ({type(e).__name__}), retrying with fixed batch")
                    extra["dynamic_batch_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
                    dyn_batch = False
                    prog = torch.onnx.export(model, (torch.from_numpy(x),), dynamo=True, opset_version=opset,
                                             input_names=["input"], output_names=["logits"], external_data=False)
                prog.save(path, external_data=False)
                strip_stack_traces(path)
                exporter = "dynamo"
            extra["dynamic_batch"] = dyn_batch
            y = record(name, source, exporter, fold, x, "arch", extra)
            diff = float(np.abs(y - ref).max())
            MANIFEST[name]["max_abs_diff_vs_torch"] = diff
            if not np.allclose(y, ref, rtol=1e-3, atol=1e-4):
                print(f"  WARNING {name}: onnxruntime differs from torch by {diff}")
            if os.path.exists(path + ".data") or glob.glob(os.path.join(OUT, "*.data")):
                raise RuntimeError("external data file written")
        except Exception as e:  # noqa: BLE001
            msg = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:500] if str(e).strip() else ''}"
            print(f"  FAILED {name}: {msg}", flush=True)
            traceback.print_exc(limit=3)
            FAILURES.append({"name": name, "error": msg})
            for p in glob.glob(os.path.join(OUT, name + ".*")):
                os.remove(p)
            MANIFEST.pop(name, None)


# --------------------------------------------------------------------------- transformer block (Attention)

class TinyTransformerBlock(nn.Module):
    """A pre-norm transformer block: LayerNorm, causal multi-head
    F.scaled_dot_product_attention (which the dynamo exporter writes as one
    ONNX Attention node from opset 23), a GELU MLP, residuals."""

    def __init__(self, d=16, heads=4, hidden=32):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).chunk(3, -1)
        heads = lambda z: z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        a = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.norm2(x))


def make_transformer():
    torch.manual_seed(SEED)
    model = TinyTransformerBlock().eval()
    x = np.random.RandomState(SEED).standard_normal((2, 5, 16)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    source = "pre-norm transformer block, causal scaled_dot_product_attention, 4 heads of 4, GELU MLP"
    for opset in (23, 24):
        name = f"transformer_block_dyn{opset}"
        path = os.path.join(OUT, name + ".onnx")
        prog = torch.onnx.export(model, (torch.from_numpy(x),), dynamo=True, opset_version=opset,
                                 input_names=["input"], output_names=["output"], external_data=False)
        prog.save(path, external_data=False)
        strip_stack_traces(path)
        assert "Attention" in op_types(onnx.load(path)), f"{name}: no Attention node"
        y = record(name, source, "dynamo", True, x, "transformer", {"dynamic_batch": False})
        MANIFEST[name]["max_abs_diff_vs_torch"] = float(np.abs(y - ref).max())


# --------------------------------------------------------------------------- light models from the onnx wheel

def make_light(max_total=25 * 1024 * 1024):
    d = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    files = sorted(glob.glob(os.path.join(d, "light_*.onnx")))
    for i, f in enumerate(files):
        base = os.path.basename(f)[:-5]  # light_<name>
        name = base
        if os.path.getsize(f) > 3 * 1024 * 1024 and dir_size() + os.path.getsize(f) > max_total:
            FAILURES.append({"name": name, "error": f"skipped: {os.path.getsize(f)} bytes"})
            continue
        shutil.copyfile(f, os.path.join(OUT, name + ".onnx"))
        m = onnx.load(f)
        inits = {t.name for t in m.graph.initializer}
        data_inputs = [v for v in m.graph.input if v.name not in inits]
        assert len(data_inputs) == 1, (name, [v.name for v in data_inputs])
        shape = [d.dim_value for d in data_inputs[0].type.tensor_type.shape.dim]
        rng = np.random.RandomState(SEED + 100 + i)
        x = rng.standard_normal(shape).astype(np.float32)
        record(name, f"onnx {onnx.__version__} wheel: onnx/backend/test/data/light/{os.path.basename(f)} "
               "(placeholder weights from ConstantOfShape)", "onnx wheel light", None, x, "light",
               {"input_name": data_inputs[0].name})


def dir_size():
    total = 0
    for dp, _, fs in os.walk(os.path.join(ROOT, "tests", "fixtures")):
        total += sum(os.path.getsize(os.path.join(dp, f)) for f in fs)
    return total


# --------------------------------------------------------------------------- hand-made op fixtures

OP_RNG = np.random.RandomState(SEED + 1000)
OP_DESC = {}


def rnd(*shape, scale=1.0):
    return (OP_RNG.standard_normal(shape) * scale).astype(np.float32)


def i64(v):
    return np.array(v, dtype=np.int64)


def f32(v):
    return np.array(v, dtype=np.float32)


def op(name, *args, **kwargs):
    try:
        _op(name, *args, **kwargs)
    except Exception as e:  # noqa: BLE001
        msg = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:500] if str(e).strip() else ''}"
        print(f"  FAILED {name}: {msg}", flush=True)
        FAILURES.append({"name": name, "error": msg})
        for p in glob.glob(os.path.join(OUT, name + ".*")):
            os.remove(p)
        MANIFEST.pop(name, None)


def _op(name, desc, in_shape, nodes, inits=None, opset=17, x=None, out="y"):
    """Build a tiny graph with float input 'x' and output `out`, random/explicit initializers."""
    inits = inits or {}
    init_tensors = [numpy_helper.from_array(v, k) for k, v in inits.items()]
    if x is None:
        x = rnd(*in_shape)

    def build(out_shape):
        g = helper.make_graph(
            nodes, name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)],
            init_tensors,
        )
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="faultsweep make_fixtures.py")
        m.ir_version = 8 if opset <= 17 else (9 if opset <= 20 else 10)
        return m

    path = os.path.join(OUT, name + ".onnx")
    m = build(None)
    onnx.save(m, path)
    y = run_ort(path, x)
    m = build(list(y.shape))
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)
    extra = {"description": desc}
    try:
        from onnx.reference import ReferenceEvaluator
        r = ReferenceEvaluator(m).run(None, {"x": x})[0]
        extra["max_abs_diff_vs_onnx_reference"] = float(np.abs(r.astype(np.float32) - y).max()) if r.shape == y.shape else "shape mismatch"
    except Exception as e:  # noqa: BLE001
        extra["max_abs_diff_vs_onnx_reference"] = f"reference evaluator failed: {type(e).__name__}"
    record(name, "hand-made (onnx.helper): " + desc, "onnx.helper", None, x, "op", extra)
    d = extra["max_abs_diff_vs_onnx_reference"]
    if not isinstance(d, float) or d > 1e-4:
        print(f"    NOTE {name}: onnx ReferenceEvaluator vs onnxruntime: {d}")


N = helper.make_node


def make_ops():
    # ---- Conv
    op("op_conv1d_pads_stride", "Conv 1d, pads [1,1], stride 2, bias", (2, 3, 16),
       [N("Conv", ["x", "w", "b"], ["y"], pads=[1, 1], strides=[2])], {"w": rnd(4, 3, 3), "b": rnd(4)})
    op("op_conv1d_dilation_nobias", "Conv 1d, dilation 2, asymmetric pads [2,0], no bias", (2, 3, 16),
       [N("Conv", ["x", "w"], ["y"], pads=[2, 0], dilations=[2])], {"w": rnd(4, 3, 3)})
    op("op_conv2d_basic", "Conv 2d 3x3, no pads, bias", (2, 3, 8, 8),
       [N("Conv", ["x", "w", "b"], ["y"])], {"w": rnd(4, 3, 3, 3), "b": rnd(4)})
    op("op_conv2d_pads_asym", "Conv 2d 3x3, asymmetric pads [0,1,2,1] (h_begin,w_begin,h_end,w_end), bias",
       (2, 3, 8, 8), [N("Conv", ["x", "w", "b"], ["y"], pads=[0, 1, 2, 1], kernel_shape=[3, 3])],
       {"w": rnd(4, 3, 3, 3), "b": rnd(4)})
    op("op_conv2d_stride_dilation", "Conv 2d 3x3, strides [2,1], dilations [2,3], pads 2, no bias", (2, 3, 11, 12),
       [N("Conv", ["x", "w"], ["y"], pads=[2, 2, 2, 2], strides=[2, 1], dilations=[2, 3])], {"w": rnd(5, 3, 3, 3)})
    op("op_conv2d_nonsquare_kernel", "Conv 2d 2x5 kernel, stride 3, pads [1,2,0,2], bias", (2, 3, 9, 13),
       [N("Conv", ["x", "w", "b"], ["y"], pads=[1, 2, 0, 2], strides=[3, 3])], {"w": rnd(4, 3, 2, 5), "b": rnd(4)})
    op("op_conv2d_groups", "Conv 2d 3x3, group 2 (4 -> 6 channels), pads 1, bias", (2, 4, 8, 8),
       [N("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], group=2)], {"w": rnd(6, 2, 3, 3), "b": rnd(6)})
    op("op_conv2d_depthwise", "Conv 2d 3x3 depthwise (group = channels = 4), stride 2, pads 1, bias", (2, 4, 9, 9),
       [N("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], strides=[2, 2], group=4)], {"w": rnd(4, 1, 3, 3), "b": rnd(4)})
    op("op_conv2d_depthwise_mult2", "Conv 2d 3x3 depthwise with channel multiplier 2 (4 -> 8, group 4), no bias",
       (2, 4, 8, 8), [N("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], group=4)], {"w": rnd(8, 1, 3, 3)})
    op("op_conv2d_1x1_nobias", "Conv 2d 1x1, no bias", (2, 5, 6, 6),
       [N("Conv", ["x", "w"], ["y"])], {"w": rnd(3, 5, 1, 1)})
    op("op_conv2d_same_upper", "Conv 2d 4x4, stride 2, auto_pad SAME_UPPER (odd total padding -> extra at end)",
       (2, 3, 7, 8), [N("Conv", ["x", "w", "b"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])],
       {"w": rnd(4, 3, 4, 4), "b": rnd(4)})
    op("op_conv2d_same_lower", "Conv 2d 4x4, stride 2, auto_pad SAME_LOWER (odd total padding -> extra at begin)",
       (2, 3, 7, 8), [N("Conv", ["x", "w", "b"], ["y"], auto_pad="SAME_LOWER", strides=[2, 2])],
       {"w": rnd(4, 3, 4, 4), "b": rnd(4)})
    op("op_conv2d_same_upper_stride1", "Conv 2d 2x2, stride 1, auto_pad SAME_UPPER, no bias", (2, 3, 6, 6),
       [N("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER")], {"w": rnd(4, 3, 2, 2)})
    op("op_conv2d_valid", "Conv 2d 3x3, stride 2, auto_pad VALID", (2, 3, 8, 9),
       [N("Conv", ["x", "w", "b"], ["y"], auto_pad="VALID", strides=[2, 2])], {"w": rnd(4, 3, 3, 3), "b": rnd(4)})
    op("op_conv3d", "Conv 3d 3x3x3, asymmetric pads [1,0,1,0,1,1], strides [1,2,1], dilations [1,1,2], bias",
       (2, 2, 5, 6, 7), [N("Conv", ["x", "w", "b"], ["y"], pads=[1, 0, 1, 0, 1, 1], strides=[1, 2, 1], dilations=[1, 1, 2])],
       {"w": rnd(3, 2, 3, 3, 3), "b": rnd(3)})
    op("op_conv3d_same_upper_groups", "Conv 3d 2x2x2, auto_pad SAME_UPPER, group 2, no bias", (2, 4, 4, 5, 5),
       [N("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", group=2)], {"w": rnd(4, 2, 2, 2, 2)})

    # ---- MaxPool
    op("op_maxpool1d", "MaxPool 1d k3 s2 pads [1,1]", (2, 3, 10),
       [N("MaxPool", ["x"], ["y"], kernel_shape=[3], strides=[2], pads=[1, 1])])
    op("op_maxpool1d_ceil", "MaxPool 1d k3 s2 ceil_mode 1", (2, 3, 10),
       [N("MaxPool", ["x"], ["y"], kernel_shape=[3], strides=[2], ceil_mode=1)])
    op("op_maxpool2d_ceil0", "MaxPool 2d k3 s2 ceil_mode 0 on 8x8", (2, 3, 8, 8),
       [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=0)])
    op("op_maxpool2d_ceil1", "MaxPool 2d k3 s2 ceil_mode 1 on 8x8 (last window partially outside)", (2, 3, 8, 8),
       [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)])
    op("op_maxpool2d_pads_ceil1", "MaxPool 2d k3 s2 pads 1 ceil_mode 1 on 8x8", (2, 3, 8, 8),
       [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)])
    op("op_maxpool2d_pads_asym", "MaxPool 2d k3 s1 asymmetric pads [0,1,2,0]", (2, 3, 6, 6),
       [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], pads=[0, 1, 2, 0])])
    op("op_maxpool2d_dilation", "MaxPool 2d k2 s1 dilations [2,2]", (2, 3, 7, 7),
       [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2])])
    op("op_maxpool2d_same_upper", "MaxPool 2d k2 s2 auto_pad SAME_UPPER on 7x7", (2, 3, 7, 7),
       [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER")])
    op("op_maxpool2d_same_lower", "MaxPool 2d k2 s2 auto_pad SAME_LOWER on 7x7", (2, 3, 7, 7),
       [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_LOWER")])
    op("op_maxpool2d_negative", "MaxPool 2d k2 s2 pads 1 on all-negative input (padding must not win)", (2, 3, 5, 5),
       [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1])],
       x=-np.abs(rnd(2, 3, 5, 5)) - 1.0)
    op("op_maxpool3d", "MaxPool 3d k [2,3,2] s [2,1,2] pads [0,1,0,1,1,1] ceil_mode 1", (2, 2, 5, 6, 7),
       [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 3, 2], strides=[2, 1, 2], pads=[0, 1, 0, 1, 1, 1], ceil_mode=1)])
    op("op_maxpool3d_dilation", "MaxPool 3d k2 s1 dilations [1,2,2]", (2, 2, 4, 6, 6),
       [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2, 2], dilations=[1, 2, 2])])

    # ---- AveragePool
    for cip in (0, 1):
        op(f"op_avgpool1d_pads_cip{cip}", f"AveragePool 1d k3 s2 pads [1,1] count_include_pad {cip}", (2, 3, 10),
           [N("AveragePool", ["x"], ["y"], kernel_shape=[3], strides=[2], pads=[1, 1], count_include_pad=cip)])
        op(f"op_avgpool2d_pads_cip{cip}", f"AveragePool 2d k3 s2 pads 1 count_include_pad {cip}", (2, 3, 8, 8),
           [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=cip)])
        op(f"op_avgpool2d_ceil1_cip{cip}", f"AveragePool 2d k3 s2 ceil_mode 1 count_include_pad {cip} on 8x8",
           (2, 3, 8, 8),
           [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, count_include_pad=cip)])
        op(f"op_avgpool2d_pads_ceil1_cip{cip}",
           f"AveragePool 2d k3 s2 pads 1 ceil_mode 1 count_include_pad {cip} on 8x8", (2, 3, 8, 8),
           [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1,
              count_include_pad=cip)])
        op(f"op_avgpool2d_pads_asym_cip{cip}",
           f"AveragePool 2d k3 s1 asymmetric pads [0,1,2,0] count_include_pad {cip}", (2, 3, 6, 6),
           [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[0, 1, 2, 0], count_include_pad=cip)])
        op(f"op_avgpool3d_cip{cip}", f"AveragePool 3d k [2,3,3] s2 pads [0,1,1,1,1,0] ceil_mode 1 count_include_pad {cip}",
           (2, 2, 5, 6, 7),
           [N("AveragePool", ["x"], ["y"], kernel_shape=[2, 3, 3], strides=[2, 2, 2], pads=[0, 1, 1, 1, 1, 0],
              ceil_mode=1, count_include_pad=cip)])
    op("op_avgpool2d_k2s2", "AveragePool 2d k2 s2 (as exported for AdaptiveAvgPool with divisible sizes)", (2, 3, 8, 8),
       [N("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])])
    op("op_avgpool2d_same_upper", "AveragePool 2d k3 s2 auto_pad SAME_UPPER on 8x8", (2, 3, 8, 8),
       [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")])

    # ---- global pools
    for dims, shape in (("1d", (2, 3, 7)), ("2d", (2, 3, 5, 6)), ("3d", (2, 3, 3, 4, 5))):
        op(f"op_globalavgpool{dims}", f"GlobalAveragePool {dims}", shape, [N("GlobalAveragePool", ["x"], ["y"])])
        op(f"op_globalmaxpool{dims}", f"GlobalMaxPool {dims}", shape, [N("GlobalMaxPool", ["x"], ["y"])])

    # ---- normalization
    def bn_inits(c):
        return {"s": rnd(c) + 1.0, "bb": rnd(c), "mean": rnd(c), "var": np.abs(rnd(c)) + 0.5}
    op("op_batchnorm2d_eps", "BatchNormalization (inference) 2d, epsilon 0.01", (2, 4, 5, 5),
       [N("BatchNormalization", ["x", "s", "bb", "mean", "var"], ["y"], epsilon=1e-2)], bn_inits(4))
    op("op_batchnorm1d", "BatchNormalization (inference) on N x C x L, default epsilon", (2, 4, 7),
       [N("BatchNormalization", ["x", "s", "bb", "mean", "var"], ["y"])], bn_inits(4))
    op("op_batchnorm_nc", "BatchNormalization (inference) on N x C, epsilon 1e-3", (2, 6),
       [N("BatchNormalization", ["x", "s", "bb", "mean", "var"], ["y"], epsilon=1e-3)], bn_inits(6))
    op("op_batchnorm3d", "BatchNormalization (inference) 3d, epsilon 1e-5", (2, 3, 3, 4, 4),
       [N("BatchNormalization", ["x", "s", "bb", "mean", "var"], ["y"], epsilon=1e-5)], bn_inits(3))
    op("op_instancenorm2d", "InstanceNormalization 2d, epsilon 1e-3", (2, 3, 5, 6),
       [N("InstanceNormalization", ["x", "s", "bb"], ["y"], epsilon=1e-3)], {"s": rnd(3) + 1, "bb": rnd(3)})
    op("op_instancenorm1d", "InstanceNormalization 1d, default epsilon", (2, 3, 9),
       [N("InstanceNormalization", ["x", "s", "bb"], ["y"])], {"s": rnd(3) + 1, "bb": rnd(3)})
    op("op_layernorm_axis_last", "LayerNormalization axis=-1, epsilon 1e-5, scale+bias", (2, 3, 4, 5),
       [N("LayerNormalization", ["x", "s", "bb"], ["y"], axis=-1, epsilon=1e-5)], {"s": rnd(5) + 1, "bb": rnd(5)})
    op("op_layernorm_axis1", "LayerNormalization axis=1 (normalize over C,H,W), epsilon 1e-3", (2, 3, 4, 5),
       [N("LayerNormalization", ["x", "s", "bb"], ["y"], axis=1, epsilon=1e-3)],
       {"s": rnd(3, 4, 5) + 1, "bb": rnd(3, 4, 5)})
    op("op_layernorm_nobias", "LayerNormalization axis=-1, default epsilon, no bias input", (2, 6, 8),
       [N("LayerNormalization", ["x", "s"], ["y"], axis=-1)], {"s": rnd(8) + 1})
    op("op_lrn", "LRN size 3, alpha 0.1, beta 0.75, bias 2", (2, 6, 4, 4),
       [N("LRN", ["x"], ["y"], size=3, alpha=0.1, beta=0.75, bias=2.0)])
    op("op_lrn_size5_default", "LRN size 5 (even-size-window semantics irrelevant), default alpha/beta/bias, x*10",
       (2, 7, 3, 3), [N("LRN", ["x"], ["y"], size=5)], x=rnd(2, 7, 3, 3, scale=10.0))
    # (LRN with an even size is not generated: onnxruntime rejects it, "size_ % 2 == 1 was false")

    # ---- Gemm / MatMul
    op("op_gemm_basic", "Gemm A(2x5) B(5x4) + C(4)", (2, 5), [N("Gemm", ["x", "w", "c"], ["y"])],
       {"w": rnd(5, 4), "c": rnd(4)})
    op("op_gemm_transB", "Gemm transB=1 (B is 4x5), C(4) (torch Linear)", (2, 5),
       [N("Gemm", ["x", "w", "c"], ["y"], transB=1)], {"w": rnd(4, 5), "c": rnd(4)})
    op("op_gemm_transA", "Gemm transA=1: A input is 5x2 (K x M), B 5x4, C 1x4", (5, 2),
       [N("Gemm", ["x", "w", "c"], ["y"], transA=1)], {"w": rnd(5, 4), "c": rnd(1, 4)})
    op("op_gemm_alpha_beta", "Gemm alpha 0.5, beta 2.0, transA and transB, C full (2x4)", (5, 2),
       [N("Gemm", ["x", "w", "c"], ["y"], alpha=0.5, beta=2.0, transA=1, transB=1)], {"w": rnd(4, 5), "c": rnd(2, 4)})
    op("op_gemm_noC", "Gemm without C, alpha 1.5", (2, 5), [N("Gemm", ["x", "w"], ["y"], alpha=1.5)], {"w": rnd(5, 3)})
    op("op_gemm_c_scalar", "Gemm with scalar-like C of shape [1], beta 0.5", (2, 5),
       [N("Gemm", ["x", "w", "c"], ["y"], beta=0.5, transB=1)], {"w": rnd(3, 5), "c": rnd(1)})
    op("op_matmul_2d", "MatMul 2x5 @ 5x3", (2, 5), [N("MatMul", ["x", "w"], ["y"])], {"w": rnd(5, 3)})
    op("op_matmul_batched", "MatMul 2x3x4x5 @ 5x6 (broadcast weight)", (2, 3, 4, 5),
       [N("MatMul", ["x", "w"], ["y"])], {"w": rnd(5, 6)})
    op("op_matmul_batched_both", "MatMul 2x3x4x5 @ 3x5x2 (batch broadcast)", (2, 3, 4, 5),
       [N("MatMul", ["x", "w"], ["y"])], {"w": rnd(3, 5, 2)})
    op("op_matmul_self_transpose", "MatMul x @ Transpose(x, perm [0,2,1]) (attention-score shape pattern)", (2, 4, 6),
       [N("Transpose", ["x"], ["xt"], perm=[0, 2, 1]), N("MatMul", ["x", "xt"], ["y"])])

    # ---- Softmax
    op("op_softmax_axis_last", "Softmax axis=-1 (opset 17)", (2, 3, 4, 5), [N("Softmax", ["x"], ["y"], axis=-1)])
    op("op_softmax_axis1", "Softmax axis=1 on 4d (opset 17: over C only)", (2, 3, 4, 5),
       [N("Softmax", ["x"], ["y"], axis=1)])
    op("op_softmax_opset11_axis1", "Softmax opset 11 axis=1 on 4d: input coerced to 2d (N, C*H*W) -> over C,H,W",
       (2, 3, 4, 5), [N("Softmax", ["x"], ["y"], axis=1)], opset=11)
    op("op_softmax_opset9_default", "Softmax opset 9, default axis (1) on N x C x 1 x 1 (as in light_squeezenet)",
       (2, 6, 1, 1), [N("Softmax", ["x"], ["y"])], opset=9)
    op("op_logsoftmax", "LogSoftmax axis=-1", (2, 7), [N("LogSoftmax", ["x"], ["y"], axis=-1)])

    # ---- shape manipulation
    op("op_concat_axis1", "Concat axis=1 of input and a 2x2x3x3 initializer", (2, 3, 3, 3),
       [N("Concat", ["x", "c"], ["y"], axis=1)], {"c": rnd(2, 2, 3, 3)})
    op("op_concat_axis_neg", "Concat axis=-1 of input with itself and an initializer", (2, 3, 4),
       [N("Concat", ["x", "c", "x"], ["y"], axis=-1)], {"c": rnd(2, 3, 2)})
    op("op_split_sizes", "Split axis=1 sizes [1,3,2] (split input); output = 2nd part", (2, 6, 3),
       [N("Split", ["x", "sp"], ["a", "y", "c"], axis=1)], {"sp": i64([1, 3, 2])})
    op("op_split_equal_last", "Split axis=-1 into 3 equal parts (no split input); output = 3rd part", (2, 3, 9),
       [N("Split", ["x"], ["a", "b", "y"], axis=-1)])
    op("op_split_concat_reorder", "Split axis 1 into 2 + Concat in reverse order (shufflenet-like)", (2, 4, 3, 3),
       [N("Split", ["x"], ["a", "b"], axis=1), N("Concat", ["b", "a"], ["y"], axis=1)])
    op("op_split_opset18_num_outputs", "Split opset 18 with num_outputs=2 (uneven: 5 -> 3,2); output = 2nd part",
       (2, 5, 2), [N("Split", ["x"], ["a", "y"], axis=1, num_outputs=2)], opset=18)
    op("op_slice_basic", "Slice starts [1,0] ends [3,2] axes [1,2]", (2, 4, 5),
       [N("Slice", ["x", "st", "en", "ax"], ["y"])], {"st": i64([1, 0]), "en": i64([3, 2]), "ax": i64([1, 2])})
    op("op_slice_neg_step", "Slice reverse last axis: starts [-1] ends [INT64_MIN] axes [-1] steps [-1]", (2, 3, 5),
       [N("Slice", ["x", "st", "en", "ax", "sp"], ["y"])],
       {"st": i64([-1]), "en": i64([np.iinfo(np.int64).min]), "ax": i64([-1]), "sp": i64([-1])})
    op("op_slice_neg_step2", "Slice starts [4,-1] ends [0,-10] axes [2,1] steps [-2,-1]", (2, 4, 6),
       [N("Slice", ["x", "st", "en", "ax", "sp"], ["y"])],
       {"st": i64([4, -1]), "en": i64([0, -10]), "ax": i64([2, 1]), "sp": i64([-2, -1])})
    op("op_slice_step2_clamp", "Slice starts [1] ends [1000] (clamped) axes [1] steps [2]", (2, 7, 3),
       [N("Slice", ["x", "st", "en", "ax", "sp"], ["y"])],
       {"st": i64([1]), "en": i64([1000]), "ax": i64([1]), "sp": i64([2])})
    op("op_slice_noaxes", "Slice without axes/steps inputs: starts [0,1,-3] ends [2,-1,100]", (2, 4, 5),
       [N("Slice", ["x", "st", "en"], ["y"])], {"st": i64([0, 1, -3]), "en": i64([2, -1, 100])})
    op("op_gather_axis1", "Gather axis=1 with indices [2,0,-1] (negative index)", (2, 4, 3),
       [N("Gather", ["x", "idx"], ["y"], axis=1)], {"idx": i64([2, 0, -1])})
    op("op_gather_scalar", "Gather axis=1 with scalar index 0 (rank reduces; ViT class token)", (2, 5, 3),
       [N("Gather", ["x", "idx"], ["y"], axis=1)], {"idx": np.array(0, dtype=np.int64)})
    op("op_gather_2d_indices", "Gather axis=2 with 2x2 indices", (2, 3, 5),
       [N("Gather", ["x", "idx"], ["y"], axis=2)], {"idx": i64([[0, 4], [1, 1]])})
    op("op_transpose_perm", "Transpose perm [0,2,3,1]", (2, 3, 4, 5), [N("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])])
    op("op_transpose_default", "Transpose without perm (reverse dims)", (2, 3, 4), [N("Transpose", ["x"], ["y"])])
    op("op_reshape_zero_neg", "Reshape shape [0,-1] (0 copies the dim)", (2, 3, 4, 5),
       [N("Reshape", ["x", "s"], ["y"])], {"s": i64([0, -1])})
    op("op_reshape_zero_mid", "Reshape shape [0,3,-1,2]", (2, 3, 4, 5),
       [N("Reshape", ["x", "s"], ["y"])], {"s": i64([0, 3, -1, 2])})
    op("op_reshape_channel_shuffle", "Reshape [2,2,2,3,3] -> Transpose [0,2,1,3,4] -> Reshape [2,-1,3,3]",
       (2, 4, 3, 3), [N("Reshape", ["x", "s1"], ["a"]), N("Transpose", ["a"], ["b"], perm=[0, 2, 1, 3, 4]),
                      N("Reshape", ["b", "s2"], ["y"])], {"s1": i64([2, 2, 2, 3, 3]), "s2": i64([2, -1, 3, 3])})
    for ax in (0, 1, 2, -1):
        op(f"op_flatten_axis{ax if ax >= 0 else 'm1'}", f"Flatten axis={ax}", (2, 3, 4, 5),
           [N("Flatten", ["x"], ["y"], axis=ax)])
    op("op_squeeze_axes", "Squeeze axes [1,-1] (axes input)", (2, 1, 3, 1),
       [N("Squeeze", ["x", "ax"], ["y"])], {"ax": i64([1, -1])})
    op("op_squeeze_all", "Squeeze without axes (all size-1 dims)", (2, 1, 3, 1, 1), [N("Squeeze", ["x"], ["y"])])
    op("op_unsqueeze", "Unsqueeze axes [1,-1] (axes input)", (2, 3), [N("Unsqueeze", ["x", "ax"], ["y"])],
       {"ax": i64([1, -1])})
    op("op_pad_constant", "Pad constant value 1.5, pads [0,1,2,1, 0,0,1,3]", (2, 3, 4, 4),
       [N("Pad", ["x", "p", "v"], ["y"], mode="constant")], {"p": i64([0, 1, 2, 1, 0, 0, 1, 3]), "v": f32(1.5)})
    op("op_pad_constant_default_negative", "Pad constant (default value 0) with negative pads (crop) [0,0,-1,1,0,0,2,-1]",
       (2, 3, 4, 4), [N("Pad", ["x", "p"], ["y"])], {"p": i64([0, 0, -1, 1, 0, 0, 2, -1])})
    op("op_pad_reflect", "Pad reflect, pads [0,0,1,2,0,0,2,1]", (2, 3, 4, 5),
       [N("Pad", ["x", "p"], ["y"], mode="reflect")], {"p": i64([0, 0, 1, 2, 0, 0, 2, 1])})
    op("op_pad_edge", "Pad edge, pads [0,0,2,0,0,0,1,3]", (2, 3, 4, 5),
       [N("Pad", ["x", "p"], ["y"], mode="edge")], {"p": i64([0, 0, 2, 0, 0, 0, 1, 3])})
    op("op_clip_min_only", "Clip with min only (min=-0.5, max input omitted)", (2, 3, 4),
       [N("Clip", ["x", "mn"], ["y"])], {"mn": f32(-0.5)})
    op("op_clip_max_only", "Clip with max only (min input empty string, max=0.3)", (2, 3, 4),
       [N("Clip", ["x", "", "mx"], ["y"])], {"mx": f32(0.3)})
    op("op_clip_relu6", "Clip min 0 max 6 (ReLU6), input x*4", (2, 3, 4),
       [N("Clip", ["x", "mn", "mx"], ["y"])], {"mn": f32(0.0), "mx": f32(6.0)}, x=rnd(2, 3, 4, scale=4.0))
    op("op_clip_none", "Clip without min and max (identity)", (2, 3), [N("Clip", ["x"], ["y"])])
    op("op_reducemean_keep1", "ReduceMean axes [2,3] keepdims 1 (opset 17: axes attribute)", (2, 3, 4, 5),
       [N("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=1)])
    op("op_reducemean_keep0", "ReduceMean axes [-1] keepdims 0", (2, 3, 4, 5),
       [N("ReduceMean", ["x"], ["y"], axes=[-1], keepdims=0)])
    op("op_reducemean_all", "ReduceMean without axes (all), keepdims 0", (2, 3, 4),
       [N("ReduceMean", ["x"], ["y"], keepdims=0)])
    op("op_reducemean_opset18", "ReduceMean opset 18 (axes input [1]), keepdims 1", (2, 3, 4),
       [N("ReduceMean", ["x", "ax"], ["y"], keepdims=1)], {"ax": i64([1])}, opset=18)
    op("op_reducemean_opset18_noaxes_noop", "ReduceMean opset 18 without axes, noop_with_empty_axes=1 (identity)",
       (2, 3), [N("ReduceMean", ["x"], ["y"], keepdims=1, noop_with_empty_axes=1)], opset=18)

    # ---- element-wise
    op("op_add_broadcast", "Add x + c with c of shape [3,1,1]", (2, 3, 4, 5), [N("Add", ["x", "c"], ["y"])],
       {"c": rnd(3, 1, 1)})
    op("op_sub_broadcast", "Sub c - x with c of shape [5] (initializer first)", (2, 3, 4, 5),
       [N("Sub", ["c", "x"], ["y"])], {"c": rnd(5)})
    op("op_mul_broadcast", "Mul x * c with c of shape [2,1,4,1]", (2, 3, 4, 5), [N("Mul", ["x", "c"], ["y"])],
       {"c": rnd(2, 1, 4, 1)})
    op("op_div_broadcast", "Div x / c with c scalar 0.3", (2, 3, 4), [N("Div", ["x", "c"], ["y"])], {"c": f32(0.3)})
    op("op_sum3", "Sum of 3 inputs (x, x, broadcast initializer)", (2, 3, 4), [N("Sum", ["x", "x", "c"], ["y"])],
       {"c": rnd(3, 1)})
    op("op_pow_sqrt", "Pow(x, 2) then Sqrt (abs)", (2, 3, 4),
       [N("Pow", ["x", "e"], ["p"]), N("Sqrt", ["p"], ["y"])], {"e": f32(2.0)})
    op("op_relu", "Relu", (2, 3, 4), [N("Relu", ["x"], ["y"])])
    op("op_sigmoid", "Sigmoid, x*4", (2, 3, 4), [N("Sigmoid", ["x"], ["y"])], x=rnd(2, 3, 4, scale=4.0))
    op("op_hardsigmoid", "HardSigmoid default alpha 0.2 beta 0.5, x*4", (2, 3, 4),
       [N("HardSigmoid", ["x"], ["y"])], x=rnd(2, 3, 4, scale=4.0))
    op("op_hardsigmoid_torch", "HardSigmoid alpha 1/6 beta 0.5 (torch hardsigmoid), x*4", (2, 3, 4),
       [N("HardSigmoid", ["x"], ["y"], alpha=1.0 / 6, beta=0.5)], x=rnd(2, 3, 4, scale=4.0))
    op("op_hardswish", "HardSwish, x*4", (2, 3, 4), [N("HardSwish", ["x"], ["y"])], x=rnd(2, 3, 4, scale=4.0))
    op("op_erf", "Erf", (2, 3, 4), [N("Erf", ["x"], ["y"])])
    op("op_gelu_erf_pattern", "GELU as exported at opset 17: x * 0.5 * (1 + Erf(x / sqrt 2))", (2, 3, 4),
       [N("Div", ["x", "s2"], ["a"]), N("Erf", ["a"], ["b"]), N("Add", ["b", "one"], ["c"]),
        N("Mul", ["x", "c"], ["d"]), N("Mul", ["d", "half"], ["y"])],
       {"s2": f32(math.sqrt(2)), "one": f32(1.0), "half": f32(0.5)})
    op("op_gelu_opset20", "Gelu opset 20, approximate none", (2, 3, 4), [N("Gelu", ["x"], ["y"])], opset=20)
    op("op_gelu_opset20_tanh", "Gelu opset 20, approximate tanh", (2, 3, 4),
       [N("Gelu", ["x"], ["y"], approximate="tanh")], opset=20)
    op("op_silu_pattern", "SiLU as x * Sigmoid(x)", (2, 3, 4), [N("Sigmoid", ["x"], ["s"]), N("Mul", ["x", "s"], ["y"])])
    op("op_tanh", "Tanh", (2, 3, 4), [N("Tanh", ["x"], ["y"])])
    op("op_neg_abs_exp_log", "Log(Exp(Neg(Abs(x))) + 1)", (2, 3, 4),
       [N("Abs", ["x"], ["a"]), N("Neg", ["a"], ["b"]), N("Exp", ["b"], ["c"]), N("Add", ["c", "one"], ["d"]),
        N("Log", ["d"], ["y"])], {"one": f32(1.0)})
    op("op_reciprocal", "Reciprocal(Abs(x) + 1)", (2, 3, 4),
       [N("Abs", ["x"], ["a"]), N("Add", ["a", "one"], ["b"]), N("Reciprocal", ["b"], ["y"])], {"one": f32(1.0)})

    # ---- dynamic-shape patterns (as emitted by the TorchScript exporter with a dynamic batch)
    op("op_shape_gather_reshape", "Shape -> Gather(0) -> Unsqueeze -> Concat([n,-1]) -> Reshape (flatten by shape)",
       (2, 3, 4), [N("Shape", ["x"], ["s"]), N("Gather", ["s", "zero"], ["n"], axis=0),
                   N("Unsqueeze", ["n", "ax0"], ["n1"]), N("Concat", ["n1", "m1"], ["shp"], axis=0),
                   N("Reshape", ["x", "shp"], ["y"])],
       {"zero": np.array(0, dtype=np.int64), "ax0": i64([0]), "m1": i64([-1])})
    op("op_shape_slice_start_end", "Shape with start=1 end=-1 (opset 15+) of 2x4x4x4 -> [4,4] -> ConstantOfShape(1.0) -> Add",
       (2, 4, 4, 4), [N("Shape", ["x"], ["s"], start=1, end=-1), N("ConstantOfShape", ["s"], ["c"],
                   value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
                   N("Add", ["x", "c"], ["y"])])
    op("op_expand", "Expand class-token-like initializer [1,1,3] to [n,1,3] via Shape, then Concat with x", (2, 4, 3),
       [N("Shape", ["x"], ["s"]), N("Slice", ["s", "st", "en"], ["n"]), N("Concat", ["n", "rest"], ["shp"], axis=0),
        N("Expand", ["tok", "shp"], ["t"]), N("Concat", ["t", "x"], ["y"], axis=1)],
       {"st": i64([0]), "en": i64([1]), "rest": i64([1, 3]), "tok": rnd(1, 1, 3)})
    op("op_where_equal_cast", "Where(Equal(Cast(x>0 -> int64), 1), x, -x) (= abs)", (2, 3, 4),
       [N("Greater", ["x", "z"], ["g"]), N("Cast", ["g"], ["gi"], to=TensorProto.INT64),
        N("Equal", ["gi", "one"], ["e"]), N("Neg", ["x"], ["nx"]), N("Where", ["e", "x", "nx"], ["y"])],
       {"z": f32(0.0), "one": np.array(1, dtype=np.int64)})
    op("op_identity_dropout", "Identity -> Dropout (inference: identity; opset 17 with ratio input)", (2, 3, 4),
       [N("Identity", ["x"], ["a"]), N("Dropout", ["a", "r"], ["y"])], {"r": f32(0.5)})
    op("op_dropout_opset9", "Dropout opset 9 with ratio attribute (inference: identity), as in the light models",
       (2, 3, 4), [N("Dropout", ["x"], ["y"], ratio=0.5)], opset=9)
    op("op_mod_shape_int", "Shape [2,4,3] -> Mod(int64, 3, fmod 0) = [2,1,0] -> Cast float -> Add (ViT-like shape math)",
       (2, 4, 3), [N("Shape", ["x"], ["s"]), N("Mod", ["s", "three"], ["m"]), N("Cast", ["m"], ["mf"], to=TensorProto.FLOAT),
                   N("Add", ["x", "mf"], ["y"])], {"three": i64([3])})
    op("op_mod_int_negative", "Mod int64 fmod 0 with negative operands ([-7,7,-7,5] mod [3,-3,-3,5] = [2,-2,-1,0], "
       "sign of divisor) -> Cast -> Add", (2, 4),
       [N("Mod", ["a", "b"], ["m"]), N("Cast", ["m"], ["mf"], to=TensorProto.FLOAT), N("Add", ["x", "mf"], ["y"])],
       {"a": i64([-7, 7, -7, 5]), "b": i64([3, -3, -3, 5])})
    op("op_mod_fmod_float", "Mod float fmod=1 (C fmod, sign of dividend), divisor 0.7, x*3", (2, 3, 4),
       [N("Mod", ["x", "c"], ["y"], fmod=1)], {"c": f32(0.7)}, x=rnd(2, 3, 4, scale=3.0))
    op("op_constant_add", "Constant node (value tensor) + x", (2, 3),
       [N("Constant", [], ["c"], value=numpy_helper.from_array(rnd(3), "c")), N("Add", ["x", "c"], ["y"])])


# --------------------------------------------------------------------------- main

README = """# ONNX parity fixtures

Generated by `python3 scripts/make_fixtures.py` (package versions in
`scripts/requirements-dev.txt`). For every fixture `NAME`:

- `NAME.onnx`: the model (single file, weights embedded; one float input, one output);
- `NAME.input.npy`: float32 input (seeded random normal);
- `NAME.expected.npy`: float32 output computed by onnxruntime {ort} on CPU with
  graph optimizations disabled (`ORT_DISABLE_ALL`).

`manifest.json` lists every fixture with `name`, `group`, `source`, `exporter`,
`opset` (default domain), `constant_folding`, `ops` (sorted op types, `domain::Op`
if not in the default domain), `input_shape`, `output_shape`, `bytes` (of the
.onnx file) and some extra fields (`description`, `parameters`, `dynamic_batch`,
`max_abs_diff_vs_torch` for the architectures, `max_abs_diff_vs_onnx_reference`
= difference between onnxruntime and `onnx.reference.ReferenceEvaluator` for the
hand-made ones).

## Groups

### Shrunk torchvision architectures (`<arch>_<variant>`, {n_arch} files)

The 15 torchvision architectures resnet18, resnet50, vgg11_bn, alexnet,
squeezenet1_1, googlenet, densenet121, mobilenet_v2, mobilenet_v3_small,
efficientnet_b0, shufflenet_v2_x1_0, regnet_y_400mf, mnasnet0_5,
convnext_tiny, vit_b_16, built from the same torchvision module classes
(ResNet/BasicBlock/Bottleneck, VGG/make_layers, SqueezeNet/Fire,
GoogLeNet/Inception/BasicConv2d, DenseNet, MobileNetV2/V3, EfficientNet/MBConv,
ShuffleNetV2, RegNet/ResBottleneckBlock, MNASNet, ConvNeXt/CNBlock,
VisionTransformer) but with few channels / blocks so each file is small; the
exported op set is that of the full model. Random weights (torch.manual_seed),
eval mode, BatchNorm running stats and affine parameters and LayerNorm affine
parameters randomized (so they are not identity), constant-initialized
parameters (e.g. ViT class token and head, ConvNeXt layer scale) re-randomized.
The `source` field of each entry describes the shrinking. Batch 2 always.

Variants:
- `_ts17`: TorchScript exporter (`dynamo=False`), opset 17,
  `do_constant_folding=True`, dynamic batch axis, input `input`, output `logits`.
  BatchNorm after Conv is folded into the Conv by this exporter.
- `_ts17_nofold`: the same with `do_constant_folding=False`: BatchNormalization
  nodes stay in the graph (not folded into the preceding Conv), and constant
  subgraphs (Shape / Gather / Unsqueeze / Concat chains, weight transposes) are
  not pre-computed.
- `_dyn18`, `_dyn20`: dynamo exporter (`torch.onnx.export(..., dynamo=True,
  opset_version=18|20, dynamic_shapes=({{0: Dim.DYNAMIC}},))`, onnxscript
  optimizer on), saved as a single file (`external_data=False`). The exporter's
  bulky per-node `metadata_props` `pkg.torch.onnx.stack_trace` (contains
  machine-specific paths), `pkg.torch.onnx.fx_node`,
  `pkg.torch.onnx.class_hierarchy` and `pkg.torch.onnx.name_scopes` are removed
  (semantics unchanged); `namespace` and the input/output metadata are kept.
  `dynamic_batch` in the manifest says whether the batch axis is dynamic.

{arch_table}

### Light models from the onnx wheel (`light_<name>`)

`onnx/backend/test/data/light/light_*.onnx` from the onnx {onnx} wheel: the
real ONNX model zoo graphs (opset 9, IR version 3) with placeholder weights
(each weight is produced by a `ConstantOfShape` node from a shape initializer,
so all weights of a tensor are equal). Their outputs are constant (uniform
softmax 0.001 everywhere; light_densenet121: 0.46095 everywhere), so they test
loading, old-opset handling and shapes much more than numerics.
Full-size inputs (1 x 3 x 224 x 224, batch 1 as declared). Useful for old-opset
semantics (Softmax opset 9 coerces to 2-D, Dropout with `ratio` attribute, Sum,
LRN, BatchNormalization without training outputs, initializers listed as graph
inputs).

{light_table}

### Hand-made op fixtures (`op_*`)

Tiny graphs built with `onnx.helper` (opset 17 unless the name/description
says otherwise) with random initializers, pinning attribute semantics: Conv
1d/2d/3d (pads incl. asymmetric, strides, dilations, groups, depthwise,
auto_pad SAME_UPPER/SAME_LOWER/VALID, with/without bias), MaxPool /
AveragePool 1d/2d/3d (ceil_mode, pads, strides, dilations,
count_include_pad), global pools, BatchNormalization, InstanceNormalization,
LayerNormalization, LRN, Gemm (transA/transB/alpha/beta/C broadcasting),
MatMul, Softmax (opset 17 vs old coerced-2D semantics), shape ops (Concat,
Split, Slice with negative steps, Gather, Transpose, Reshape with 0/-1,
Flatten, Squeeze, Unsqueeze, Pad constant/reflect/edge, Shape, Expand,
ConstantOfShape), Clip with min/max only, ReduceMean (opset 17 attribute and
opset 18 input axes), element-wise ops and the exporters' GELU / SiLU /
dynamic-reshape patterns, Mod (int64 and fmod). The `description` field of
each manifest entry says what is pinned. Where a node has several outputs
(Split), only the one named `y` is a graph output.

Expected outputs come from onnxruntime. Each hand-made fixture was also run
through `onnx.reference.ReferenceEvaluator` (`max_abs_diff_vs_onnx_reference`);
where they disagree onnxruntime was checked by hand against the ONNX spec and
is right: LRN (the reference evaluator uses a different window), Softmax at
opset 9/11 (the reference evaluator ignores the coerce-to-2-D semantics),
MaxPool with asymmetric pads / SAME_LOWER and GlobalMaxPool 1d/3d (wrong output
shapes in the reference evaluator), Pad with negative pads (reference evaluator
fails). LRN with an even `size` is not included: onnxruntime rejects it.

## Regenerating

    python3 scripts/make_fixtures.py                # all groups
    python3 scripts/make_fixtures.py --groups op    # some groups: arch (TorchScript variants), dyn, light, op

Total size of `tests/fixtures/models`: {total_mb:.1f} MB ({count} fixtures).

## Failures / skipped

{failures}
"""


def write_manifest_and_readme():
    entries = [MANIFEST[k] for k in sorted(MANIFEST)]
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(entries, f, indent=1)
        f.write("\n")
    arch_rows = ["| fixture | exporter | opset | bytes | dynamic batch | ops |", "| --- | --- | --- | --- | --- | --- |"]
    light_rows = ["| fixture | opset | bytes | input | ops |", "| --- | --- | --- | --- | --- |"]
    for e in entries:
        if e["group"] == "arch":
            arch_rows.append(f"| {e['name']} | {e['exporter']} | {e['opset']} | {e['bytes']} | "
                             f"{e.get('dynamic_batch')} | {' '.join(e['ops'])} |")
        elif e["group"] == "light":
            light_rows.append(f"| {e['name']} | {e['opset']} | {e['bytes']} | {e['input_shape']} | {' '.join(e['ops'])} |")
    fail_path = os.path.join(OUT, "failures.json")
    old = []
    if os.path.exists(fail_path):
        with open(fail_path) as f:
            old = json.load(f)
    names_now = {f["name"] for f in FAILURES}
    fails = [f for f in old if f["name"] not in names_now and f["name"] not in MANIFEST] + FAILURES
    with open(fail_path, "w") as f:
        json.dump(fails, f, indent=1)
        f.write("\n")
    fail_txt = "\n".join(f"- `{f['name']}`: {f['error']}" for f in fails) or "None."
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write(README.format(ort=ort.__version__, onnx=onnx.__version__,
                              n_arch=sum(e["group"] == "arch" for e in entries),
                              arch_table="\n".join(arch_rows), light_table="\n".join(light_rows),
                              total_mb=total / 1e6, count=len(entries), failures=fail_txt))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", default="arch,light,op,transformer,dyn",
                    help="comma-separated subset of arch (TorchScript variants), light, op, "
                         "transformer (a transformer block with Attention), dyn (dynamo variants)")
    ap.add_argument("--archs", default="", help="comma-separated subset of architectures")
    args = ap.parse_args()
    groups = set(args.groups.split(","))
    os.makedirs(OUT, exist_ok=True)
    mpath = os.path.join(OUT, "manifest.json")
    if os.path.exists(mpath):
        with open(mpath) as f:
            for e in json.load(f):
                MANIFEST[e["name"]] = e
    archs = [(a, b) for a, b in ARCHS if not args.archs or a in args.archs.split(",")]
    try:
        if "arch" in groups:
            for i, (a, b) in enumerate(ARCHS):
                if (a, b) in archs:
                    export_arch(a, b, i, ["ts17", "ts17_nofold"])
            write_manifest_and_readme()
        if "light" in groups:
            make_light()
            write_manifest_and_readme()
        if "op" in groups:
            for p in glob.glob(os.path.join(OUT, "op_*")):
                os.remove(p)
            for k in [k for k in MANIFEST if k.startswith("op_")]:
                del MANIFEST[k]
            make_ops()
            write_manifest_and_readme()
        if "transformer" in groups:
            make_transformer()
            write_manifest_and_readme()
        if "dyn" in groups:
            for i, (a, b) in enumerate(ARCHS):
                if (a, b) in archs:
                    export_arch(a, b, i, ["dyn18", "dyn20"])
                    write_manifest_and_readme()
    finally:
        write_manifest_and_readme()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(MANIFEST)} fixtures, {total / 1e6:.2f} MB in {OUT}; {len(FAILURES)} failures")
    for f in FAILURES:
        print("  FAILED", f["name"], f["error"])


if __name__ == "__main__":
    main()
