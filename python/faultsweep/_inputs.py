"""Models and data from Python objects to the files a scenario names.

A `torch.nn.Module` is exported to ONNX (TorchScript exporter, opset 17,
batch axis dynamic) with an example input taken from the data; arrays,
tensors, datasets and data loaders are written as `.npy`. Both are cached
by content (a blake2b hash of what they are made of) under the package's
cache folder, so a second campaign on the same model and data writes
nothing, and faultsweep's own layer-split cache (keyed by file contents)
finds its entries again.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def cache_root() -> Path:
    """Where exported models and data files go: `$FAULTSWEEP_PYTHON_CACHE`,
    else `$XDG_CACHE_HOME/faultsweep` (`~/.cache/faultsweep`)."""
    env = os.environ.get("FAULTSWEEP_PYTHON_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(xdg) / "faultsweep"


def _write_atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


# ---------------------------------------------------------------- data


def _to_numpy(x: Any) -> np.ndarray:
    import torch

    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _collect(data: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs and labels of a Dataset or DataLoader (items `x` or `(x, y)`)."""
    import torch

    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    batched = isinstance(data, torch.utils.data.DataLoader)
    for item in data:
        if isinstance(item, (tuple, list)):
            x, y = item[0], (item[1] if len(item) > 1 else None)
        else:
            x, y = item, None
        x = _to_numpy(x)
        xs.append(x if batched else x[None])
        if y is not None:
            y = _to_numpy(y).astype(np.int64)
            ys.append(y.reshape(-1) if batched else y.reshape(1))
    if not xs:
        raise ValueError("data: the dataset is empty")
    labels = np.concatenate(ys) if ys and len(ys) == len(xs) else None
    return np.concatenate(xs), labels


def _save_array(a: np.ndarray, kind: str) -> Path:
    a = np.ascontiguousarray(a)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(memoryview(a).cast("B"))
    path = cache_root() / "data" / f"{kind}-{h.hexdigest()}.npy"
    if not path.exists():
        _write_atomic(path, lambda p: np.save(open(p, "wb"), a))
    return path


def data_keys(data: Any, labels: Any = None) -> tuple[dict, np.ndarray | None]:
    """The scenario's `data` keys for `data` (and `labels`), and one
    example batch of inputs (for exporting a PyTorch model), or `None` when
    the data is a file the model reads as it is."""
    import torch

    if data is None:
        return {}, None
    if isinstance(data, dict):
        # The scenario's data keys; `path` (and `labels`) may be Python
        # objects, converted as when given alone.
        keys = dict(data)
        if keys.get("path") is None:
            return keys, None
        converted, example = data_keys(keys.pop("path"), keys.pop("labels", labels))
        keys.update(converted)
        return keys, example
    if _is_path(data):
        keys: dict = {"path": os.path.abspath(data)}
        npz_array = str(data).endswith(".npz") and isinstance(labels, str) and not os.path.exists(labels)
        if npz_array:
            keys["labels"] = labels  # an array of the .npz, by name
        elif labels is not None:
            keys["labels"] = os.path.abspath(labels) if _is_path(labels) else str(
                _save_array(_to_numpy(labels).astype(np.int64).reshape(-1), "labels")
            )
        # A float .npy reaches the model as it is: its first samples can be
        # the export's example input.
        example = None
        if str(data).endswith(".npy"):
            a = np.load(data, mmap_mode="r")
            if np.issubdtype(a.dtype, np.floating) and a.ndim >= 2:
                example = np.array(a[:2], dtype=np.float32)
        return keys, example
    if isinstance(data, (tuple, list)) and len(data) == 2 and labels is None:
        data, labels = data
    if isinstance(data, (torch.utils.data.Dataset, torch.utils.data.DataLoader)):
        x, y = _collect(data)
        labels = y if labels is None else labels
    else:
        x = _to_numpy(data)
    if x.dtype == np.float64:
        x = x.astype(np.float32)
    # Float arrays reach the model as they are (preprocess.scale defaults
    # to 1 for them); uint8 arrays are divided by 255, as images are.
    keys = {"path": str(_save_array(x, "inputs"))}
    if labels is not None:
        if _is_path(labels):
            keys["labels"] = os.path.abspath(labels)
        else:
            y = _to_numpy(labels).astype(np.int64).reshape(-1)
            if len(y) != len(x):
                raise ValueError(f"data: {len(x)} samples but {len(y)} labels")
            keys["labels"] = str(_save_array(y, "labels"))
    return keys, x[: min(len(x), 2)]


# ---------------------------------------------------------------- models


def _module_hash(model: Any, example: np.ndarray, opset: int) -> str:
    import torch

    h = hashlib.blake2b(digest_size=16)
    h.update(f"{torch.__version__} opset {opset} {type(model).__qualname__}\n".encode())
    h.update(repr(model).encode())
    h.update(f"{example.dtype.str}{tuple(example.shape[1:])}".encode())
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name} {t.dtype} {tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def module_paths(onnx_path: Path, model: Any) -> dict[str, str]:
    """ONNX node name -> PyTorch module path, from the TorchScript
    exporter's scoped node names. A scope names a child by its attribute
    (`conv`), or, inside a Sequential or ModuleList, by its parent's scope
    and its index (`conv.0.0`): `/features/features.3/conv/conv.0/conv.0.0/Conv`
    was made inside module `features.3.conv.0.0`."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    out = {}
    for node in graph.node:
        parts = [p for p in node.name.split("/") if p][:-1]
        module, full, scope = model, "", ""
        for part in parts:
            for name, child in module.named_children():
                candidates = {name, f"{scope}.{name}" if scope else name}
                if part in candidates:
                    module, scope = child, part
                    full = f"{full}.{name}" if full else name
                    break
            else:
                break
        if full:
            out[node.name] = full
    return out


def export(model: Any, example: np.ndarray | None, opset: int = 17) -> tuple[Path, dict]:
    """Exports `model` to ONNX with `example` (a batch of inputs) unless a
    model of the same contents was exported before; returns the file and
    the node-to-module map."""
    import torch

    if example is None:
        raise ValueError(
            "model: a torch.nn.Module needs data given as an array, tensor, Dataset or "
            "DataLoader (its first samples are the export's example input), or an "
            "example_input=; with data from a file, give the model as an ONNX file"
        )
    example = np.asarray(example)
    key = _module_hash(model, example, opset)
    path = cache_root() / "models" / f"{key}.onnx"
    modules_path = path.with_suffix(".modules.json")
    if not (path.exists() and modules_path.exists()):
        was_training = model.training
        model.eval()
        try:
            x = torch.from_numpy(np.ascontiguousarray(example))
            param = next(model.parameters(), None)
            if param is not None:
                x = x.to(param.device)

            def write(p: Path) -> None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(
                        model,
                        (x,),
                        str(p),
                        dynamo=False,
                        opset_version=opset,
                        input_names=["input"],
                        output_names=["output"],
                        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                    )

            _write_atomic(path, write)
        finally:
            model.train(was_training)
        mapping = module_paths(path, model)
        _write_atomic(modules_path, lambda p: Path(p).write_text(json.dumps(mapping, indent=1)))
    return path, json.loads(modules_path.read_text())
