#!/usr/bin/env python3
"""Train the Fashion-MNIST demo CNN and write the demo data subset.

Makes:
  models/fashion_cnn.onnx    small LeNet-style CNN (ONNX opset 17, TorchScript exporter)
  models/fashion_cnn.json    metadata incl. accuracy measured with onnxruntime
  models/README.md
  data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz   first 1000 official test images (IDX)
  data/fashion-mnist/t10k-1000-labels-idx1-ubyte.gz   their labels (IDX)
  data/fashion-mnist/t10k-1000-images.npy             float32 1000x1x28x28, pixel/255
  data/fashion-mnist/t10k-1000-labels.npy             int64 1000
  data/fashion-mnist/README.md

Input data: the official Fashion-MNIST files (60k train / 10k test), by default
from the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).

Run from the repository root:
  python3 scripts/make_demo_model.py [--data-dir /usr/share/datasets/fashion-mnist]

Seeded and deterministic on CPU (torch.set_num_threads(2)); takes ~1-3 minutes
on 2 cores.
"""

import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 20240601
EPOCHS = 5
BATCH = 128
CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
# Fashion-MNIST training-set pixel statistics (of pixel/255).
MEAN = 0.2860
STD = 0.3530
SUBSET = 1000

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 0x08, (path, zero, dtype)
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims).copy()


def write_idx(path, arr):
    """Write a uint8 array as gzipped IDX (deterministic: gzip mtime=0, no file name)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
            f.write(header)
            f.write(arr.tobytes())


class FashionCNN(nn.Module):
    """LeNet-size CNN. Input: N x 1 x 28 x 28, pixel/255; normalization is inside."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 1, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 1, 1, 1))
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),   # 16x14x14
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),  # 32x7x7
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(128, 10),
        )

    def forward(self, x):
        x = (x - self.mean) / self.std
        return self.classifier(self.features(x))


def evaluate_torch(model, x, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            correct += (model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item()
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.use_deterministic_algorithms(True)

    d = args.data_dir
    xtr = read_idx(os.path.join(d, "train-images-idx3-ubyte.gz"))
    ytr = read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"))
    xte = read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"))
    yte = read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz"))
    assert xtr.shape == (60000, 28, 28) and ytr.shape == (60000,)
    assert xte.shape == (10000, 28, 28) and yte.shape == (10000,)

    # ---- demo data subset -------------------------------------------------
    ddir = os.path.join(ROOT, "data", "fashion-mnist")
    os.makedirs(ddir, exist_ok=True)
    write_idx(os.path.join(ddir, "t10k-1000-images-idx3-ubyte.gz"), xte[:SUBSET])
    write_idx(os.path.join(ddir, "t10k-1000-labels-idx1-ubyte.gz"), yte[:SUBSET])
    sub_x = (xte[:SUBSET].astype(np.float32) / 255.0).reshape(SUBSET, 1, 28, 28)
    sub_y = yte[:SUBSET].astype(np.int64)
    np.save(os.path.join(ddir, "t10k-1000-images.npy"), sub_x)
    np.save(os.path.join(ddir, "t10k-1000-labels.npy"), sub_y)
    assert np.array_equal(read_idx(os.path.join(ddir, "t10k-1000-images-idx3-ubyte.gz")), xte[:SUBSET])
    assert np.array_equal(read_idx(os.path.join(ddir, "t10k-1000-labels-idx1-ubyte.gz")), yte[:SUBSET])

    # ---- training -----------------------------------------------------------
    Xtr = torch.from_numpy(xtr.astype(np.float32) / 255.0).unsqueeze(1)
    Ytr = torch.from_numpy(ytr.astype(np.int64))
    Xte = torch.from_numpy(xte.astype(np.float32) / 255.0).unsqueeze(1)
    Yte = torch.from_numpy(yte.astype(np.int64))

    model = FashionCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps_per_epoch = (len(Xtr) + BATCH - 1) // BATCH
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, epochs=EPOCHS, steps_per_epoch=steps_per_epoch)
    gen = torch.Generator().manual_seed(SEED)
    t0 = time.time()
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(Xtr), generator=gen)
        total = 0.0
        for i in range(0, len(Xtr), BATCH):
            idx = perm[i:i + BATCH]
            xb, yb = Xtr[idx], Ytr[idx]
            # light augmentation: random horizontal flip (clothes are left/right symmetric)
            flip = torch.rand(len(xb), generator=gen) < 0.5
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(xb)
        acc = evaluate_torch(model, Xte, Yte)
        print(f"epoch {epoch + 1}/{EPOCHS}: train loss {total / len(Xtr):.4f}, "
              f"test acc (torch) {acc:.4f}, {time.time() - t0:.0f}s", flush=True)
    train_time = time.time() - t0

    # ---- export -------------------------------------------------------------
    model.eval()
    mdir = os.path.join(ROOT, "models")
    os.makedirs(mdir, exist_ok=True)
    onnx_path = os.path.join(mdir, "fashion_cnn.onnx")
    torch.onnx.export(
        model, (torch.zeros(2, 1, 28, 28),), onnx_path,
        opset_version=17, dynamo=False,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )

    import onnx
    import onnxruntime as ort

    m = onnx.load(onnx_path)
    onnx.checker.check_model(m)
    ops = sorted({n.op_type for n in m.graph.node})
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    xte_f = xte.astype(np.float32).reshape(-1, 1, 28, 28) / 255.0
    preds = np.concatenate([
        sess.run(["logits"], {"input": xte_f[i:i + 500]})[0].argmax(1) for i in range(0, len(xte_f), 500)
    ])
    acc = float((preds == yte).mean())
    sub_acc = float((preds[:SUBSET] == sub_y).mean())
    # the .npy subset must give the same predictions as the full test set run
    sub_preds = sess.run(["logits"], {"input": sub_x})[0].argmax(1)
    assert np.array_equal(sub_preds, preds[:SUBSET])
    print(f"ONNX (onnxruntime) test accuracy: {acc:.4f} on 10000; subset accuracy {sub_acc:.4f} on {SUBSET}")
    print(f"ops: {ops}; training took {train_time:.0f}s")
    if acc < 0.88:
        print("ERROR: accuracy below 0.88", file=sys.stderr)
        sys.exit(1)

    n_params = sum(p.numel() for p in model.parameters())
    meta = {
        "test_accuracy": round(acc, 4),
        "test_samples": 10000,
        "subset_accuracy": round(sub_acc, 4),
        "subset_samples": SUBSET,
        "train_samples": 60000,
        "epochs": EPOCHS,
        "seed": SEED,
        "classes": CLASSES,
        "input": "N x 1 x 28 x 28 float32, pixel/255",
        "output": "N x 10 logits",
        "input_name": "input",
        "output_name": "logits",
        "parameters": n_params,
        "ops": ops,
        "torch": torch.__version__.split("+")[0],
        "opset": 17,
    }
    with open(os.path.join(mdir, "fashion_cnn.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")

    size = os.path.getsize(onnx_path)
    with open(os.path.join(mdir, "README.md"), "w") as f:
        f.write(MODELS_README.format(acc=acc * 100, sub_acc=sub_acc * 100, epochs=EPOCHS, seed=SEED,
                                     ops=", ".join(ops), params=n_params, size=size,
                                     torch=torch.__version__.split("+")[0], mean=MEAN, std=STD))
    with open(os.path.join(ddir, "README.md"), "w") as f:
        f.write(DATA_README.format(n=SUBSET))


MODELS_README = """# Models

## fashion_cnn.onnx

A small LeNet-size CNN trained on Fashion-MNIST; the demo model of faultsweep.

- Input `input`: N x 1 x 28 x 28 float32, grayscale pixel/255 (range [0, 1]).
  The mean/std normalization ((x - {mean}) / {std}) is inside the network.
- Output `logits`: N x 10 logits, classes in label order: T-shirt/top, Trouser,
  Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot
  (see `fashion_cnn.json`).
- Architecture (PyTorch): Sub/Div normalization -> Conv 3x3 (1->16, pad 1) ->
  BatchNorm -> ReLU -> MaxPool 2 -> Conv 3x3 (16->32, pad 1) -> BatchNorm -> ReLU
  -> MaxPool 2 -> Flatten -> Linear 1568->128 -> ReLU -> Dropout 0.3 -> Linear
  128->10; {params} parameters. In the exported graph BatchNorm is folded into
  the convolutions and Dropout disappears (eval mode).
- ONNX: opset 17, TorchScript exporter (`dynamo=False`), dynamic batch axis;
  ops: {ops}. {size} bytes.
- Accuracy, measured on the exported ONNX file with onnxruntime (CPU, graph
  optimizations disabled): **{acc:.2f}%** on the official 10,000-image
  Fashion-MNIST test set, {sub_acc:.2f}% on its first 1000 images
  (`data/fashion-mnist/t10k-1000-*`).
- Training: the official 60,000-image training set, {epochs} epochs, Adam with a
  one-cycle learning-rate schedule, batch 128, random horizontal flips, seed
  {seed}, torch {torch} on CPU (2 threads).
- Made with `python3 scripts/make_demo_model.py` (reads the official files from
  the Debian package `dataset-fashion-mnist`, `/usr/share/datasets/fashion-mnist`;
  pass `--data-dir` for another location). Package versions:
  `scripts/requirements-dev.txt`.

Licenses: the Fashion-MNIST data set is (c) Zalando SE, MIT license
(https://github.com/zalandoresearch/fashion-mnist). The model was trained by
this project's script and is distributed under the project's license.
"""

DATA_README = """# Fashion-MNIST demo subset

The first {n} images and labels of the official Fashion-MNIST test set
(`t10k-images-idx3-ubyte.gz` / `t10k-labels-idx1-ubyte.gz`, 10,000 items), in
their original order.

| file | content |
| --- | --- |
| `t10k-1000-images-idx3-ubyte.gz` | gzipped IDX, uint8, {n} x 28 x 28 (same format as the original) |
| `t10k-1000-labels-idx1-ubyte.gz` | gzipped IDX, uint8, {n} labels 0-9 |
| `t10k-1000-images.npy` | float32, {n} x 1 x 28 x 28, pixel/255 (the input of `models/fashion_cnn.onnx`) |
| `t10k-1000-labels.npy` | int64, {n} |

Classes (label order): T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal,
Shirt, Sneaker, Bag, Ankle boot.

Source: Fashion-MNIST by Zalando Research
(https://github.com/zalandoresearch/fashion-mnist), here read from the Debian
package `dataset-fashion-mnist` (`/usr/share/datasets/fashion-mnist`).
License: MIT, (c) 2017 Zalando SE.

Made with `python3 scripts/make_demo_model.py` (the gzip files are written
with mtime 0, so they are byte-for-byte reproducible).
"""

if __name__ == "__main__":
    main()
