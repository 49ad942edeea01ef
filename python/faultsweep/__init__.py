"""faultsweep: fault injection for neural networks, from Python.

    import faultsweep as fs
    c = fs.Campaign(model, data, targets={"layers": {"ops": ["Conv"]}},
                    fault={"bits": "all"}, counts={"injections": 10_000})
    r = c.run()            # progress bar in terminals and notebooks
    r.summary("layer")     # pandas DataFrame: rates with 95% intervals
    r.injections           # one row per injection
    r.heatmap()            # matplotlib figure

The engine is faultsweep's Rust library on the libtorch of the installed
torch (imported first, so its libraries are the ones loaded). The results
folder is the one `faultsweep run` writes: `faultsweep report DIR` and
`faultsweep run --resume DIR` work on it. See docs/python.md.
"""

import os

# As the command sets them before libtorch starts: MKL keeps its thread
# count whatever the load (results repeat bit for bit), and oneDNN keeps
# more compiled convolutions.
os.environ.setdefault("MKL_DYNAMIC", "FALSE")
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16384")

import torch  # noqa: E402,F401  (loads libtorch before the extension needs it)

from . import _core  # noqa: E402
from .campaign import (  # noqa: E402
    Campaign,
    Error,
    Result,
    Run,
    ScenarioError,
    SCENARIO_KEYS,
    resume,
)
from ._inputs import cache_root  # noqa: E402

__version__ = _core.__version__

__all__ = [
    "Campaign",
    "Error",
    "Result",
    "Run",
    "ScenarioError",
    "SCENARIO_KEYS",
    "cache_root",
    "resume",
]
