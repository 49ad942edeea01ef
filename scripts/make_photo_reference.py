#!/usr/bin/env python3
"""Reference outputs of the pretrained MobileNetV2 on the shared photos.

Makes:
  tests/fixtures/mobilenet_photos.input.npy     float32 5x3x224x224 (preprocessed photos)
  tests/fixtures/mobilenet_photos.expected.npy  float32 5x1000 logits (onnxruntime CPU,
                                                graph optimizations disabled)
  tests/fixtures/mobilenet_photos.json          file names (in batch order) and top-1 classes

Preprocessing (per ../shared/models/README.md): PIL RGB, resize the short side to
256 with PIL bilinear, center-crop 224, /255, normalize with ImageNet mean/std,
NCHW. Photos are taken in file-name order.

Run from the repository root:
  python3 scripts/make_photo_reference.py [--model ../shared/models/mobilenet_v2.onnx]
                                          [--images ../shared/images]
"""

import argparse
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Stable expectations from ../shared/images/README.md (rocket and astronaut are borderline).
EXPECTED_TOP1 = {"coffee.png": 967, "chelsea.png": 285, "grace_hopper.jpg": 457}


def preprocess(path):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if w <= h:
        nw, nh = 256, int(round(h * 256 / w))
    else:
        nw, nh = int(round(w * 256 / h)), 256
    img = img.resize((nw, nh), Image.BILINEAR)
    left = int(round((nw - 224) / 2.0))
    top = int(round((nh - 224) / 2.0))
    img = img.crop((left, top, left + 224, top + 224))
    x = np.asarray(img, dtype=np.float32) / 255.0  # HWC
    x = (x - MEAN) / STD
    return x.transpose(2, 0, 1).astype(np.float32)  # CHW


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "..", "shared", "models", "mobilenet_v2.onnx"))
    ap.add_argument("--images", default=os.path.join(ROOT, "..", "shared", "images"))
    args = ap.parse_args()

    names = sorted(f for f in os.listdir(args.images) if f.lower().endswith((".png", ".jpg", ".jpeg")))
    x = np.stack([preprocess(os.path.join(args.images, n)) for n in names]).astype(np.float32)

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0].name
    logits = sess.run(None, {inp: x})[0].astype(np.float32)
    top1 = [int(i) for i in logits.argmax(1)]
    e = np.exp(logits - logits.max(1, keepdims=True))
    prob = e / e.sum(1, keepdims=True)

    out = os.path.join(ROOT, "tests", "fixtures")
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "mobilenet_photos.input.npy"), x)
    np.save(os.path.join(out, "mobilenet_photos.expected.npy"), logits)
    meta = {
        "model": "../shared/models/mobilenet_v2.onnx",
        "files": names,
        "top1": top1,
        "top1_prob": [round(float(prob[i, t]), 4) for i, t in enumerate(top1)],
        "stable_top1": {n: EXPECTED_TOP1[n] for n in names if n in EXPECTED_TOP1},
        "input_shape": list(x.shape),
        "output_shape": list(logits.shape),
        "preprocessing": "PIL RGB; resize short side to 256 (bilinear); center-crop 224; /255; "
                         "(x - [0.485,0.456,0.406]) / [0.229,0.224,0.225]; NCHW",
        "onnxruntime": ort.__version__,
        "graph_optimization": "ORT_DISABLE_ALL",
    }
    with open(os.path.join(out, "mobilenet_photos.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")

    ok = True
    for n, t, p in zip(names, top1, meta["top1_prob"]):
        exp = EXPECTED_TOP1.get(n)
        flag = "" if exp is None else ("ok" if exp == t else f"MISMATCH (expected {exp})")
        ok &= exp is None or exp == t
        print(f"{n:20s} top-1 {t:4d} p={p:.3f} {flag}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
