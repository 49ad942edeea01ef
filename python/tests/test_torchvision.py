"""A torchvision model (MobileNetV2, as torchvision builds it, seeded
weights: no download) on the shared photos, given to faultsweep as a
torch.nn.Module and a tensor. Skipped where the photos
($FAULTSWEEP_IMAGES, else ../shared/images beside the checkout) or
torchvision are missing."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import faultsweep as fs

from conftest import ROOT

IMAGES = Path(os.environ.get("FAULTSWEEP_IMAGES", ROOT.parent / "shared" / "images"))


def photos(size=224):
    from PIL import Image

    files = sorted(p for p in IMAGES.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    out = []
    for f in files:
        im = Image.open(f).convert("RGB")
        w, h = im.size
        s = size / min(w, h)
        im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
        w, h = im.size
        left, top = (w - size) // 2, (h - size) // 2
        im = im.crop((left, top, left + size, top + size))
        a = (np.asarray(im, dtype=np.float32) / 255 - mean) / std
        out.append(a.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(out))


@pytest.mark.skipif(not IMAGES.is_dir(), reason=f"no photos in {IMAGES}")
def test_mobilenet_v2_on_the_photos(tmp_path):
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = tv.models.mobilenet_v2(weights=None).eval()
    x = photos()
    c = fs.Campaign(model, x, targets={"layers": {"ops": ["Conv"]}}, fault={"bits": "all"},
                    counts={"injections": 150}, seed=2)
    # Layers keep their ONNX names; the module column names PyTorch's.
    assert c.modules["/features/features.3/conv/conv.0/conv.0.0/Conv"] == "features.3.conv.0.0"
    r = c.run(tmp_path / "out")
    s = r.summary("layer")
    assert s["n"].sum() == 150
    assert s["module"].str.startswith("features.").all()
    assert len(r.injections) == 150
    with torch.no_grad():
        top1 = model(x).argmax(1).numpy()
    import pandas as pd

    golden = pd.read_csv(r.dir / "golden.csv")
    assert (golden["top1_class"].to_numpy() == top1).all()
