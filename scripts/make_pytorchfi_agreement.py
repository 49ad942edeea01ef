#!/usr/bin/env python3
"""The PyTorchFI agreement fixture (tests/fixtures/pytorchfi/): a small CNN
whose BatchNormalization layers stay in the ONNX graph, inputs, a seeded list
of single-bit neuron faults over its Conv layers in faultsweep's CSV format,
and PyTorchFI 0.6.0's outcome for each fault. tests/pytorchfi.rs replays the
list with faultsweep (no Python) and compares the outcomes.

Outputs (all small):
- model.onnx: Conv-BN-ReLU x3 (a MaxPool after the first), GlobalAveragePool,
  Gemm; trained a few hundred steps on a synthetic 10-class task so its top-1
  margins are not rounding noise; exported with BatchNormalization kept
  (PyTorchFI hooks the Conv module's output, which is the ONNX Conv node's
  output only when BN is not folded into the Conv);
- inputs.npy (N x 3 x 16 x 16 float32), labels.npy (int64);
- faults.csv: the first ten columns of faultsweep's fault list only (as
  another tool writes it: no `node` column, so faultsweep resolves the layer
  names with the model); `sample` is PyTorchFI's batch element, `coord` its
  (C, H, W), `bit` counts from the LSB (bit 31 is the sign);
- outcomes.csv: fault_id, original_value, faulty_value (the Conv output element
  before and after the flip, shortest float32 repr), golden_top1, faulty_top1,
  outcome, output_change (max |faulty - golden| over the sample's outputs),
  output_scale (max |golden|), outcome_batch1; outcomes as faultsweep defines
  them (due: NaN/Inf in the output; masked: output equal to golden; benign:
  same top-1; sde: top-1 differs), from PyTorchFI's faulty output against the
  same batch's golden output, the whole batch of inputs at once;
  outcome_batch1 is PyTorchFI's outcome with the sample alone in its batch
  (libtorch then rounds differently: how far PyTorchFI agrees with itself);
- agreement.yml: the scenario the test runs (paths relative to the repository
  root; all 10 output scores saved per row).

Invariants checked here: the graph has 3 Conv and 3 BatchNormalization nodes,
each Conv feeding a BatchNormalization; PyTorchFI's layer k is the k-th Conv
node (matched by weights); onnxruntime agrees with torch on the golden output.

Usage: /work/venv/bin/python scripts/make_pytorchfi_agreement.py
(torch 2.13.0, onnx, onnxruntime, pytorchfi 0.6.0: scripts/requirements-dev.txt)
"""
import csv
import os

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
from onnx import numpy_helper
from pytorchfi.core import fault_injection

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
REL = "tests/fixtures/pytorchfi"
OUT = os.path.join(ROOT, REL)
SHAPE = (3, 16, 16)
CLASSES = 10
SAMPLES = 16
FAULTS = 1000

torch.manual_seed(0)
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
rng = np.random.default_rng(20240611)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.conv3 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.bn3 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, x):
        x = self.pool1(self.relu(self.bn1(self.conv1(x))))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.relu(self.bn3(self.conv3(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


# A synthetic task: each class a fixed random pattern, samples add noise.
prototypes = torch.from_numpy(rng.standard_normal((CLASSES, *SHAPE)).astype(np.float32))


def draw(n):
    y = torch.from_numpy(rng.integers(0, CLASSES, n))
    noise = torch.from_numpy(rng.standard_normal((n, *SHAPE)).astype(np.float32))
    return prototypes[y] + 1.5 * noise, y


model = Net()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
model.train()
for step in range(300):
    x, y = draw(64)
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
model.eval()

x, labels = draw(SAMPLES)
with torch.no_grad():
    golden = model(x)
print(f"final training loss {loss.item():.3f}, accuracy on the inputs "
      f"{(golden.argmax(1) == labels).float().mean().item():.2f}")

os.makedirs(OUT, exist_ok=True)
onnx_path = os.path.join(OUT, "model.onnx")
# The TorchScript exporter in PRESERVE mode without constant folding keeps
# BatchNormalization as its own node (EVAL mode fuses it into the Conv).
torch.onnx.export(
    model,
    (x[:1],),
    onnx_path,
    input_names=["x"],
    output_names=["y"],
    dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
    opset_version=17,
    training=torch.onnx.TrainingMode.PRESERVE,
    do_constant_folding=False,
    dynamo=False,
)
graph = onnx.load(onnx_path).graph
convs = [n for n in graph.node if n.op_type == "Conv"]
bns = [n for n in graph.node if n.op_type == "BatchNormalization"]
assert len(convs) == 3 and len(bns) == 3, [n.op_type for n in graph.node]
assert all(len(bn.output) == 1 for bn in bns), "BatchNormalization exported in training mode"
for conv, bn in zip(convs, bns):
    assert bn.input[0] == conv.output[0], f"{conv.name} does not feed {bn.name}"
inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
# PyTorchFI numbers the Conv2d modules in traversal order; match them to the
# ONNX Conv nodes by their weights rather than trusting the order.
modules = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
layers = []
for m in modules:
    w = m.weight.detach().numpy()
    found = [c for c in convs if np.array_equal(inits.get(c.input[1]), w)]
    assert len(found) == 1, "no unique Conv node holds this module's weight"
    layers.append((found[0].name, found[0].output[0]))
session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
ort_out = session.run(None, {"x": x.numpy()})[0]
assert np.allclose(ort_out, golden.numpy(), rtol=1e-4, atol=1e-5)
assert (ort_out.argmax(1) == golden.numpy().argmax(1)).all()
np.save(os.path.join(OUT, "inputs.npy"), x.numpy())
np.save(os.path.join(OUT, "labels.npy"), labels.numpy().astype(np.int64))


def flip(value, bit):
    """`value` (a float32 scalar tensor) with bit `bit` (0 = LSB) flipped."""
    word = np.array([value.item()], np.float32).view(np.uint32) ^ np.uint32(1 << bit)
    return torch.from_numpy(word.view(np.float32))[0]


class BitFlip(fault_injection):
    """PyTorchFI with a custom neuron function: flips `bits[i]` of fault i's
    element of the hooked layer's output and records (before, after)."""

    def flip_hook(self, module, inputs, output):
        layer = self.get_current_layer()
        for i, l in enumerate(self.corrupt_layer):
            if l == layer:
                self.assert_inj_bounds(index=i)
                idx = (self.corrupt_batch[i], self.corrupt_dim1[i],
                       self.corrupt_dim2[i], self.corrupt_dim3[i])
                before = output[idx].clone()
                output[idx] = flip(before, self.bits[i])
                self.seen.append((before.item(), output[idx].item()))
        self.updateLayer()


pfi = BitFlip(model, SAMPLES, input_shape=list(SHAPE), layer_types=[nn.Conv2d], use_cuda=False)
shapes = pfi.get_output_size()
assert len(shapes) == len(layers)
pfi1 = BitFlip(model, 1, input_shape=list(SHAPE), layer_types=[nn.Conv2d], use_cuda=False)
with torch.no_grad():
    golden1 = [model(x[b:b + 1])[0] for b in range(SAMPLES)]


def outcome(faulty, gold):
    if not torch.isfinite(faulty).all():
        return "due"
    if torch.equal(faulty, gold):
        return "masked"
    return "benign" if faulty.argmax() == gold.argmax() else "sde"


def f32(v):
    """The shortest text that reads back as the same float32 (Rust parses it)."""
    v = np.float32(v)
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0 or 1e-4 <= abs(v) < 1e6:
        return np.format_float_positional(v, unique=True, trim="-")
    return np.format_float_scientific(v, unique=True, trim="-")


faults, outcomes = [], []
for fid in range(FAULTS):
    layer = int(rng.integers(len(layers)))  # PyTorchFI's choice: layers uniform
    _, c, h, w = shapes[layer]
    b, ci, hi, wi = (int(rng.integers(n)) for n in (SAMPLES, c, h, w))
    bit = int(rng.integers(32))
    pfi.bits, pfi.seen = [bit], []
    faulty_model = pfi.declare_neuron_fi(
        function=pfi.flip_hook, layer_num=[layer], batch=[b], dim1=[ci], dim2=[hi], dim3=[wi]
    )
    with torch.no_grad():
        out = faulty_model(x)
    assert len(pfi.seen) == 1, "the hook ran once"
    before, after = pfi.seen[0]
    pfi1.bits, pfi1.seen = [bit], []
    alone = pfi1.declare_neuron_fi(
        function=pfi1.flip_hook, layer_num=[layer], batch=[0], dim1=[ci], dim2=[hi], dim3=[wi]
    )
    with torch.no_grad():
        out1 = alone(x[b:b + 1])[0]
    name, tensor = layers[layer]
    faults.append([fid, b, "neuron", name, tensor, f"{ci},{hi},{wi}", "bit_flip", "fp32", bit, "-"])
    outcomes.append([fid, f32(before), f32(after), int(golden[b].argmax()),
                     int(out[b].argmax()), outcome(out[b], golden[b]),
                     f32((out[b] - golden[b]).abs().max()), f32(golden[b].abs().max()),
                     outcome(out1, golden1[b])])

with open(os.path.join(OUT, "faults.csv"), "w", newline="") as f:
    wr = csv.writer(f, lineterminator="\n")
    wr.writerow(["fault_id", "sample", "target", "layer", "tensor", "coord",
                 "fault_model", "dtype", "bit", "value"])
    wr.writerows(faults)
with open(os.path.join(OUT, "outcomes.csv"), "w", newline="") as f:
    wr = csv.writer(f, lineterminator="\n")
    wr.writerow(["fault_id", "original_value", "faulty_value", "golden_top1",
                 "faulty_top1", "outcome", "output_change", "output_scale",
                 "outcome_batch1"])
    wr.writerows(outcomes)
with open(os.path.join(OUT, "agreement.yml"), "w") as f:
    f.write(f"""# Replays faults.csv (written by scripts/make_pytorchfi_agreement.py with
# PyTorchFI 0.6.0) on the same model; tests/pytorchfi.rs compares the outcomes
# with outcomes.csv. Paths are relative to the repository root.
name: pytorchfi_agreement
seed: 1
model:
  path: {REL}/model.onnx
data:
  path: {REL}/inputs.npy
  labels: {REL}/labels.npy
  batch_size: {SAMPLES}
targets:
  target: neuron
  layers:
    ops: [Conv]
fault:
  model: bit_flip
  dtype: fp32
  bits: all
counts:
  injections: {FAULTS}
outputs:
  top_k: 10
  save_outputs: true
""")
counts = {o: sum(r[5] == o for r in outcomes) for o in ("masked", "benign", "sde", "due")}
alone = sum(r[5] == r[8] for r in outcomes)
print(f"PyTorchFI alone in its batch vs in the batch of {SAMPLES}: {alone}/{FAULTS} outcomes equal")
print(f"wrote {OUT}: {FAULTS} faults over {[n for n, _ in layers]}, PyTorchFI outcomes {counts}")
