"""Shared fixtures: the repository's demo model and data, a private cache
for exported models and data, and the command to compare with."""

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = ROOT / "models" / "fashion_cnn.onnx"
DEMO_IMAGES = ROOT / "data" / "fashion-mnist" / "t10k-1000-images.npy"
DEMO_LABELS = ROOT / "data" / "fashion-mnist" / "t10k-1000-labels.npy"
DEMO_SCENARIO = ROOT / "scenarios" / "fashion_neurons.yml"


@pytest.fixture(scope="session", autouse=True)
def private_caches(tmp_path_factory):
    """Exported models, data files and the layer-split cache in a folder of
    the session; results folders under a working directory of its own."""
    base = tmp_path_factory.mktemp("faultsweep")
    os.environ["FAULTSWEEP_PYTHON_CACHE"] = str(base / "pycache")
    os.environ["FAULTSWEEP_CACHE"] = str(base / "cache")
    work = base / "work"
    work.mkdir()
    old = os.getcwd()
    os.chdir(work)
    yield base
    os.chdir(old)


@pytest.fixture(scope="session")
def demo_data():
    x = np.load(DEMO_IMAGES)[:64]
    y = np.load(DEMO_LABELS)[:64]
    return x, y


def command() -> list[str]:
    """The `faultsweep` command to compare with: $FAULTSWEEP_BIN, else the
    repository's release build, else the command the wheel installed."""
    env = os.environ.get("FAULTSWEEP_BIN")
    if env:
        return [env]
    built = ROOT / "target" / "release" / "faultsweep"
    if built.exists():
        return [str(built)]
    installed = shutil.which("faultsweep", path=os.path.dirname(sys.executable))
    return [installed or "faultsweep"]
