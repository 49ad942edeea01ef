"""Campaigns from Python: a scenario built from keywords, dicts or files,
run by the Rust engine into the same results folder as `faultsweep run`,
and read back as pandas DataFrames."""

from __future__ import annotations

import copy
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import yaml

from . import _core, _inputs

#: The scenario's top-level keys (scenarios/README.md), each also a keyword
#: of `Campaign`.
SCENARIO_KEYS = (
    "version",
    "name",
    "seed",
    "model",
    "data",
    "cache",
    "targets",
    "fault",
    "counts",
    "sweep",
    "outputs",
    "mitigations",
)

#: The columns of summary.csv that count (integers where a table has them).
COUNT_COLUMNS = ("n", "injections", "masked", "benign", "sde", "due", "sde_top5",
                 "plain_only", "hardened_only", "bits_held")

#: Summaries written when a scenario names none.
DEFAULT_SUMMARIES = ["layer", "bit", "op", "dtype"]

FaultModel = Callable[[float, dict], float]


class Error(_core.FaultsweepError):
    """Base class of faultsweep's errors (the same messages as the command;
    `exit_code` is the command's exit code)."""


class ScenarioError(Error, ValueError):
    """An invalid scenario (the command's exit code 8): the message names
    the file, the key and the line."""


_KINDS = {"scenario": ScenarioError}


def _raise(e: _core.FaultsweepError) -> None:
    cls = _KINDS.get(getattr(e, "kind", ""), Error)
    err = cls(str(e))
    err.exit_code = getattr(e, "exit_code", 1)
    err.kind = getattr(e, "kind", "other")
    raise err from None


def _merge(base: dict, over: dict) -> dict:
    """`over` merged into a copy of `base`, maps key by key."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _load_scenario(scenario: Any) -> tuple[dict, Path | None]:
    if scenario is None:
        return {}, None
    if isinstance(scenario, dict):
        return copy.deepcopy(scenario), None
    path = Path(scenario)
    text = path.read_text()
    try:
        spec = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        spec = None
    if not isinstance(spec, dict):
        # Let the engine's parser name the line.
        return {}, path
    return spec, path


def _absolute(spec: dict) -> None:
    """Relative paths resolved against the working directory, as `run` does."""

    def fix(section: str, key: str) -> None:
        sec = spec.get(section)
        if isinstance(sec, dict) and isinstance(sec.get(key), str):
            sec[key] = os.path.abspath(sec[key])

    fix("model", "path")
    fix("data", "path")
    data = spec.get("data")
    if isinstance(data, dict) and isinstance(data.get("labels"), str):
        npz = str(data.get("path", "")).endswith(".npz")
        if not npz or os.path.exists(data["labels"]):
            data["labels"] = os.path.abspath(data["labels"])
    fix("mitigations", "hardened_model")
    fix("outputs", "dir")
    fix("cache", "dir")


def _progress(total_hint: int | None, enabled: Any):
    """A progress callback `(done, total)`: tqdm's bar in terminals and
    notebooks (tqdm.auto), none when `enabled` is False or stderr is not
    interactive and not a notebook; `enabled` may be a callable of its own."""
    if callable(enabled):
        return enabled, lambda: None
    if enabled is False:
        return None, lambda: None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None, lambda: None
    in_notebook = "ipykernel" in sys.modules
    if enabled is None and not (in_notebook or sys.stderr.isatty()):
        return None, lambda: None
    bar = tqdm(total=total_hint, unit="inj", desc="faultsweep", leave=False)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


class Campaign:
    """A fault-injection campaign.

    `model`: a `torch.nn.Module` (exported to ONNX, cached by content) or
    the path of an ONNX file. `data`: a numpy array or torch tensor of
    inputs (with `labels`, or a pair `(inputs, labels)`), a torch `Dataset`
    or `DataLoader`, or a path as in scenarios (IDX, `.npy`/`.npz`, an image
    folder), or a dict of the scenario's `data` keys whose `path` (and
    `labels`) may be any of these (`{"path": x, "labels": y, "batch_size":
    128}`). `scenario`: a scenario dict or YAML file to start from; every
    scenario key (`targets`, `fault`, `counts`, `outputs`, ...) may also be
    given as a keyword, merged into it map by map. A fault model may be a
    Python callable `(value, site) -> value`: as `fault={"model": f}`, or
    registered by name in `fault_models={"name": f}` and named in the
    scenario as `fault={"model": {"custom": "name"}}` (`custom:name` in the
    rows).
    """

    def __init__(
        self,
        model: Any = None,
        data: Any = None,
        *,
        labels: Any = None,
        scenario: Any = None,
        out: str | os.PathLike | None = None,
        fault_models: dict[str, FaultModel] | None = None,
        example_input: Any = None,
        cache_dir: str | os.PathLike | None = None,
        workers: int | None = None,
        **keys: Any,
    ) -> None:
        unknown = [k for k in keys if k not in SCENARIO_KEYS]
        if unknown:
            raise TypeError(
                f"Campaign: unknown keyword {unknown[0]!r} (scenario keys: {', '.join(SCENARIO_KEYS)})"
            )
        spec, self._file = _load_scenario(scenario)
        spec = _merge(spec, keys)
        self.fault_models: dict[str, FaultModel] = dict(fault_models or {})
        fault = spec.get("fault")
        if isinstance(fault, dict) and callable(fault.get("model")):
            f = fault["model"]
            name = getattr(f, "__name__", "python").replace("<", "").replace(">", "") or "python"
            self.fault_models.setdefault(name, f)
            fault["model"] = {"custom": name}

        data_keys, example = _inputs.data_keys(data, labels)
        if data_keys:
            spec["data"] = _merge(spec.get("data") or {}, data_keys)
        self.modules: dict[str, str] = {}
        self.torch_model = None
        if model is not None:
            import torch

            if isinstance(model, torch.nn.Module):
                ex = example if example_input is None else _inputs._to_numpy(example_input)
                path, self.modules = _inputs.export(model, ex)
                self.torch_model = model
            else:
                path = Path(model)
            spec["model"] = _merge(spec.get("model") or {}, {"path": str(os.path.abspath(path))})
        if "counts" not in spec:
            spec["counts"] = {"injections": 1000}
        spec.setdefault("name", "campaign")
        outputs = spec.setdefault("outputs", {})
        if isinstance(outputs, dict):
            outputs.setdefault("summaries", list(DEFAULT_SUMMARIES))
        _absolute(spec)
        self.spec = spec
        self.out = Path(out).absolute() if out is not None else None
        self.cache_dir = Path(cache_dir).absolute() if cache_dir is not None else None
        self.workers = workers
        # A scenario file given alone runs as it is: errors name its lines.
        plain_file = (
            self._file is not None
            and not keys
            and model is None
            and data is None
            and not self.fault_models
        )
        self.scenario_path = self._file.absolute() if plain_file else self._write_scenario()
        try:
            self.runs_total = _core.check(
                str(self.scenario_path), self.fault_models or None, _str(self.cache_dir)
            )
        except _core.FaultsweepError as e:
            _raise(e)

    def _write_scenario(self) -> Path:
        text = yaml.safe_dump(self.spec, sort_keys=False, default_flow_style=None)
        digest = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
        path = _inputs.cache_root() / "scenarios" / f"{self.spec.get('name', 'campaign')}-{digest}.yml"
        if not path.exists():
            _inputs._write_atomic(path, lambda p: Path(p).write_text(text))
        return path

    @property
    def scenario_yaml(self) -> str:
        """The scenario the campaign runs, as YAML (`faultsweep run` takes it)."""
        return self.scenario_path.read_text()

    def _default_out(self) -> Path:
        outputs = self.spec.get("outputs") or {}
        if isinstance(outputs, dict) and outputs.get("dir"):
            return Path(outputs["dir"])
        base = Path("results").absolute() / str(self.spec.get("name", "campaign"))
        out, i = base, 1
        while out.exists() and any(out.iterdir()):
            i += 1
            out = base.with_name(f"{base.name}-{i}")
        return out

    def run(self, out: str | os.PathLike | None = None, *, progress: Any = None,
            verify: int = 0) -> "Result":
        """Runs the campaign into a results folder (`out`, else the one given
        to the campaign, else the scenario's `outputs.dir`, else a fresh
        `results/NAME[-N]`), as `faultsweep run` does; shows a progress bar
        in terminals and notebooks (`progress=True` always, `False` never,
        or a callable `(done, total)` of your own: an exception it raises
        stops the run, and the folder resumes). Returns the `Result`."""
        out = Path(out).absolute() if out is not None else (self.out or self._default_out())
        update, close = _progress(self.runs_total, progress)
        try:
            info = _core.run(
                str(self.scenario_path),
                out=str(out),
                workers=self.workers,
                progress=update,
                models=self.fault_models or None,
                cache_dir=_str(self.cache_dir),
                verify=verify,
            )
        except _core.FaultsweepError as e:
            _raise(e)
        finally:
            close()
        return Result(Path(info["out"]), info=info, modules=self.modules)

    def runs(self) -> Iterator["Run"]:
        """The campaign's injections one at a time, each with its faults,
        outcome and the judged output (faulty and golden) as torch tensors,
        computed a few batches ahead (PyTorchALFI's faulty-model iterator).
        Nothing is written to a results folder."""
        import torch

        it = _core.Runs(
            str(self.scenario_path),
            models=self.fault_models or None,
            cache_dir=_str(self.cache_dir),
            workers=self.workers,
        )
        while True:
            try:
                item = next(it)
            except StopIteration:
                return
            except _core.FaultsweepError as e:
                _raise(e)
            faults, sample, outcome, golden, output, error = item
            g = torch.frombuffer(bytearray(golden), dtype=torch.float32)
            o = g.clone() if output is None else torch.frombuffer(bytearray(output), dtype=torch.float32)
            yield Run(faults=faults, sample=sample, outcome=outcome, output=o, golden=g, error=error)


def _str(p: Path | None) -> str | None:
    return None if p is None else str(p)


@dataclass
class Run:
    """One injection: its faults (rows of the fault list, as dicts), the
    sample it ran on, its outcome, and the judged output flattened (`output`
    faulty, `golden` fault-free; equal when the run was masked)."""

    faults: list[dict]
    sample: int
    outcome: str
    output: Any
    golden: Any
    error: str | None = None


def _wilson(k: np.ndarray, n: np.ndarray, z: float = 1.959963984540054):
    n = np.asarray(n, dtype=float)
    p = np.where(n > 0, k / np.maximum(n, 1), 0.0)
    denom = 1 + z * z / np.maximum(n, 1)
    centre = (p + z * z / (2 * np.maximum(n, 1))) / denom
    half = z * np.sqrt(p * (1 - p) / np.maximum(n, 1) + z * z / (4 * np.maximum(n, 1) ** 2)) / denom
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


@dataclass
class Result:
    """A results folder (the one `faultsweep run` writes), read with pandas."""

    dir: Path
    info: dict = field(default_factory=dict)
    modules: dict = field(default_factory=dict)
    _injections: Any = None

    @classmethod
    def open(cls, dir: str | os.PathLike, modules: dict | None = None) -> "Result":
        """A finished results folder, from Python or from the command."""
        return cls(Path(dir).absolute(), modules=modules or {})

    def __repr__(self) -> str:
        head = self.info.get("headline") or ""
        return f"<faultsweep.Result {self.dir} {head}>"

    def _repr_html_(self) -> str:
        """In a notebook: the headline and the table by layer."""
        import html

        text = f"<p><code>{html.escape(str(self.dir))}</code>: {html.escape(self.headline)}</p>"
        try:
            return text + self.summary("layer").to_html(index=False)
        except (KeyError, OSError):
            return text

    @property
    def headline(self) -> str:
        """The command's one-line summary (overall rates with intervals)."""
        if self.info.get("headline"):
            return self.info["headline"]
        return (self.dir / "summary.md").read_text().splitlines()[0]

    @property
    def injections(self):
        """One row per injection (`injections.csv`, or the Parquet parts of
        `outputs.injections: parquet`), read on first use; with a `module`
        column (the PyTorch module of each layer) when the model came from
        PyTorch."""
        if self._injections is None:
            import pandas as pd

            csv = self.dir / "injections.csv"
            if csv.exists():
                df = pd.read_csv(csv, dtype={"coord": str}, keep_default_na=False,
                                 na_values={"original_value": [""], "faulty_value": [""]})
            else:
                parts = sorted((self.dir / "injections").glob("*.parquet"))
                df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
            if self.modules and "layer" in df.columns:
                df.insert(df.columns.get_loc("layer") + 1, "module",
                          df["layer"].map(self.modules).fillna(""))
            self._injections = df
        return self._injections

    def summary(self, by: str = "layer"):
        """The summary by `by` (`layer`, `bit`, `op`, `dtype`, ... as in
        `outputs.summaries`, or `overall`): one row per group with its
        counts and rates, each with its 95% interval (`sde_rate`, `sde_low`,
        `sde_high`, ...), as `summary.csv`. A grouping the campaign did not
        summarise is computed from the injections (Wilson intervals, one
        row per injection)."""
        import pandas as pd

        table = pd.read_csv(self.dir / "summary.csv", keep_default_na=False, na_values=[""])
        rows = table[table["grouping"] == by]
        if rows.empty and by == "bit":
            # One table per number format: `bit:fp32`, `bit:int8`, ...
            rows = table[table["grouping"].str.startswith("bit:")].copy()
            if rows["grouping"].nunique() > 1:
                rows.insert(1, "dtype", rows["grouping"].str.removeprefix("bit:"))
        if rows.empty and by in self.injections.columns:
            return self._summary_from_rows(by)
        if rows.empty:
            groupings = sorted(set(table["grouping"]))
            raise KeyError(f"summary {by!r}: the campaign has {', '.join(groupings)}")
        rows = rows.drop(columns=["grouping"]).rename(columns={"group": by})
        rows = rows.dropna(axis=1, how="all").reset_index(drop=True)
        for col in COUNT_COLUMNS:
            if col in rows.columns and rows[col].notna().all():
                rows[col] = rows[col].astype("int64")
        if by == "layer" and self.modules:
            rows.insert(1, "module", rows["layer"].map(self.modules).fillna(""))
        if by == "bit":
            rows["bit"] = rows["bit"].astype(int)
        return rows

    def _summary_from_rows(self, by: str):
        import pandas as pd

        df = self.injections
        g = df.groupby(by, sort=False)["outcome"]
        out = pd.DataFrame({"n": g.size()})
        for o in ("masked", "benign", "sde", "due"):
            out[o] = g.apply(lambda s, o=o: int((s == o).sum()))
        for o in ("sde", "due", "masked"):
            out[f"{o}_rate"] = out[o] / out["n"]
            lo, hi = _wilson(out[o].to_numpy(), out["n"].to_numpy())
            out[f"{o}_low"], out[f"{o}_high"] = lo, hi
        return out.reset_index()

    def heatmap(self, rate: str = "sde", ax=None):
        """A matplotlib figure: the `rate` (`sde`, `due`, `masked`) of every
        layer (rows, in model order) and bit (columns, most significant
        first), as the command's heatmap.svg."""
        import matplotlib.pyplot as plt

        df = self.injections
        df = df[df["bit"].astype(str) != "-"]
        if df.empty:
            raise ValueError("heatmap: the campaign has no bit-level faults")
        bits = df["bit"].astype(str).str.split(",").str[0].astype(int)
        node = pd_numeric(df["node"])
        layers = (df.assign(_node=node).drop_duplicates("layer").sort_values("_node")["layer"].tolist())
        hit = (df["outcome"] == rate).astype(float)
        table = hit.groupby([df["layer"], bits]).mean().unstack()
        table = table.reindex(index=layers, columns=sorted(table.columns, reverse=True))
        labels = [
            f"{layer}  ({self.modules[layer]})" if layer in self.modules else layer for layer in layers
        ]
        if ax is None:
            fig, ax = plt.subplots(figsize=(min(3 + 0.3 * table.shape[1], 16), 1.5 + 0.35 * len(layers)))
        else:
            fig = ax.figure
        im = ax.imshow(table.to_numpy(dtype=float), aspect="auto", cmap="viridis", vmin=0,
                       vmax=max(1e-9, float(np.nanmax(table.to_numpy(dtype=float)))))
        ax.set_xticks(range(table.shape[1]), [str(b) for b in table.columns], fontsize=7)
        ax.set_yticks(range(len(layers)), labels, fontsize=7)
        ax.set_xlabel("bit")
        ax.set_title(f"{rate.upper()} rate by layer and bit")
        fig.colorbar(im, ax=ax, label=f"{rate} rate")
        fig.tight_layout()
        return fig


def pd_numeric(s):
    import pandas as pd

    return pd.to_numeric(s, errors="coerce")


def resume(dir: str | os.PathLike, *, fault_models: dict[str, FaultModel] | None = None,
           progress: Any = None, workers: int | None = None,
           modules: dict | None = None) -> Result:
    """Finishes the interrupted campaign in `dir` (`faultsweep run --resume
    DIR`), with the Python fault models it names registered again."""
    d = Path(dir).absolute()
    update, close = _progress(None, progress)
    try:
        info = _core.run(None, out=str(d), resume=True, workers=workers, progress=update,
                         models=fault_models or None)
    except _core.FaultsweepError as e:
        _raise(e)
    finally:
        close()
    return Result(Path(info["out"]), info=info, modules=modules or {})
