"""faultsweep: fault injection for neural networks (placeholder during build)."""
import os

os.environ.setdefault("MKL_DYNAMIC", "FALSE")
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16384")
import torch  # noqa: E402,F401  (loads libtorch before the extension)

from . import _core  # noqa: E402
