# %% [markdown]
# # PyTorchFI's tutorial with faultsweep: single-bit neuron faults in a CNN
#
# PyTorchFI's getting-started tutorial wraps a CNN, injects a single bit
# flip into one random neuron of one convolution per inference, and counts
# how often the top-1 class changes (silent data errors, SDE) per layer.
# The same experiment with faultsweep is a `Campaign`: the model stays a
# `torch.nn.Module`, the data a tensor, the results DataFrames.
#
# Run it from the repository root, with the wheel installed
# (`scripts/test-python.sh` builds one):
#
#     python examples/python/pytorchfi_tutorial.py [INJECTIONS]
#
# When `pytorchfi` is installed, the same faults (layer, channel, row,
# column, bit, input) are replayed with PyTorchFI's neuron hooks, one
# faulty model per fault as its tutorial declares them, and both times and
# SDE rates are printed side by side.

# %%
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

import faultsweep as fs

ROOT = Path(__file__).resolve().parents[2]
INJECTIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
torch.manual_seed(0)

# %% [markdown]
# ## A small CNN, trained for a few seconds on Fashion-MNIST
# The repository's 1,000-image demo subset: 800 images to train, the other
# 200 to inject into. No BatchNorm: PyTorchFI hooks a Conv2d module's
# output, which is then exactly the ONNX Conv node's output.

# %%
x_all = torch.from_numpy(np.load(ROOT / "data/fashion-mnist/t10k-1000-images.npy"))
y_all = torch.from_numpy(np.load(ROOT / "data/fashion-mnist/t10k-1000-labels.npy"))
x_train, y_train, x_test, y_test = x_all[:800], y_all[:800], x_all[800:], y_all[800:]


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        )
        self.classifier = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


model = CNN()
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
for epoch in range(8):
    for i in range(0, len(x_train), 50):
        loss = nn.functional.cross_entropy(model(x_train[i:i + 50]), y_train[i:i + 50])
        opt.zero_grad()
        loss.backward()
        opt.step()
model.eval()
with torch.no_grad():
    accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
print(f"test accuracy {accuracy:.1%} on {len(x_test)} images")

# %% [markdown]
# ## The campaign: one random bit of one random conv neuron per inference
# `layer_choice: uniform` picks the layer first, as PyTorchFI's
# `random_neuron_location` does; `bits: all` draws one of the 32 bits of
# the float32 value.

# %%
t0 = time.perf_counter()  # the export to ONNX and the validation count too
c = fs.Campaign(
    model, (x_test, y_test),
    targets={"layers": {"ops": ["Conv"]}, "layer_choice": "uniform"},
    fault={"model": "bit_flip", "bits": "all"},
    counts={"injections": INJECTIONS},
    seed=1,
)
r = c.run()
faultsweep_seconds = time.perf_counter() - t0
print(r.headline)
print(f"faultsweep: {INJECTIONS} injections in {faultsweep_seconds:.2f} s "
      f"(export, golden pass and cache included; results in {r.dir})")
per_layer = r.summary("layer")[["layer", "module", "n", "sde", "sde_rate", "sde_low", "sde_high"]]
print(per_layer.to_string(index=False))

# %% [markdown]
# The most vulnerable bits (the exponent's high bit, as expected):

# %%
by_bit = r.summary("bit").sort_values("sde_rate", ascending=False).head(5)
print(by_bit[["bit", "n", "sde_rate", "sde_low", "sde_high"]].to_string(index=False))
fig = r.heatmap()
fig.savefig(r.dir / "heatmap.png", dpi=120)

# %% [markdown]
# ## The same faults with PyTorchFI (when installed)
# Each row of `r.injections` names its layer (and module), its element
# `C,H,W`, its bit and its input. PyTorchFI replays it with a neuron hook
# that flips that bit, on a faulty model declared per fault, one input at a
# time, as its tutorial does.

# %%
try:
    from pytorchfi.core import fault_injection
except ImportError:
    fault_injection = None
    print("pytorchfi is not installed: `pip install pytorchfi` to compare")

if fault_injection is not None:

    def flip(value, bit):
        word = np.array([value.item()], np.float32).view(np.uint32) ^ np.uint32(1 << bit)
        return torch.from_numpy(word.view(np.float32))[0]

    class BitFlip(fault_injection):
        def flip_hook(self, module, inputs, output):
            for i, layer in enumerate(self.corrupt_layer):
                if layer == self.get_current_layer():
                    idx = (self.corrupt_batch[i], self.corrupt_dim1[i],
                           self.corrupt_dim2[i], self.corrupt_dim3[i])
                    output[idx] = flip(output[idx].clone(), self.bit)
            self.updateLayer()

    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    pfi = BitFlip(model, 1, input_shape=[1, 28, 28], layer_types=[nn.Conv2d], use_cuda=False)
    rows = r.injections
    with torch.no_grad():
        golden = model(x_test)
    outcomes = []
    t0 = time.perf_counter()
    for layer_module, coord, bit, sample in zip(rows["module"], rows["coord"], rows["bit"],
                                                rows["sample_id"]):
        ch, h, w = (int(v) for v in coord.split(","))
        pfi.bit = int(bit)
        faulty = pfi.declare_neuron_fi(function=pfi.flip_hook, layer_num=[convs.index(layer_module)],
                                       batch=[0], dim1=[ch], dim2=[h], dim3=[w])
        with torch.no_grad():
            out = faulty(x_test[sample:sample + 1])[0]
        g = golden[sample]
        if not torch.isfinite(out).all():
            outcomes.append("due")
        elif out.argmax() != g.argmax():
            outcomes.append("sde")
        else:
            outcomes.append("benign or masked")
    pytorchfi_seconds = time.perf_counter() - t0
    rows = rows.assign(pytorchfi=outcomes)
    same = ((rows["outcome"] == rows["pytorchfi"])
            | (rows["outcome"].isin(["benign", "masked"]) & (rows["pytorchfi"] == "benign or masked")))
    print(f"PyTorchFI:  {len(rows)} injections in {pytorchfi_seconds:.2f} s; "
          f"faultsweep {pytorchfi_seconds / faultsweep_seconds:.1f}x faster on the same faults")
    print(f"same outcome (SDE / DUE / neither) for {same.mean():.2%} of the faults")
    sde = rows.groupby("module", sort=False).agg(
        faultsweep_sde=("outcome", lambda s: (s == "sde").mean()),
        pytorchfi_sde=("pytorchfi", lambda s: (s == "sde").mean()),
        n=("outcome", "size"),
    )
    print(sde.to_string(float_format=lambda v: f"{v:.2%}"))
