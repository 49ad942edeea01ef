"""Small .npz data sets for the data loader tests: the first 20 demo images
(uint8, N x 1 x 28 x 28) and their labels, stored (np.savez) and deflated
(np.savez_compressed). Run: python3 scripts/make_data_fixtures.py"""
import gzip
import os

import numpy as np

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "data")

with gzip.open(os.path.join(ROOT, "data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz")) as f:
    x = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 1, 28, 28)[:20]
with gzip.open(os.path.join(ROOT, "data/fashion-mnist/t10k-1000-labels-idx1-ubyte.gz")) as f:
    y = np.frombuffer(f.read()[8:], np.uint8)[:20].astype(np.int64)
os.makedirs(OUT, exist_ok=True)
np.savez(os.path.join(OUT, "demo20.npz"), images=x, labels=y)
np.savez_compressed(os.path.join(OUT, "demo20_compressed.npz"), images=x, labels=y)
