"""The Python API on the bundled demo model (models/fashion_cnn.onnx) and
a small PyTorch CNN, against the command's results folder."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import faultsweep as fs

from conftest import DEMO_LABELS, DEMO_IMAGES, DEMO_MODEL, DEMO_SCENARIO, ROOT, command


def small_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)),
        torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 7 * 7, 10),
    )


def test_three_lines_on_the_demo_model(demo_data, tmp_path):
    x, y = demo_data
    c = fs.Campaign(str(DEMO_MODEL), (x, y), targets={"layers": {"ops": ["Conv"]}},
                    fault={"bits": "all"}, counts={"injections": 300}, seed=7)
    r = c.run(tmp_path / "out")
    s = r.summary("layer")
    assert isinstance(s, pd.DataFrame)
    assert list(s["layer"]) == ["/features/features.0/Conv", "/features/features.4/Conv"]
    for col in ("n", "sde", "sde_rate", "sde_low", "sde_high", "due_rate", "masked_rate"):
        assert col in s.columns, col
    assert (s["sde_low"] <= s["sde_rate"]).all() and (s["sde_rate"] <= s["sde_high"]).all()
    inj = r.injections
    assert len(inj) == 300 == s["n"].sum()
    assert set(inj["outcome"]) <= {"masked", "benign", "sde", "due"}
    assert (inj["sample_id"] < 64).all()
    by_bit = r.summary("bit")
    assert len(by_bit) == 32
    fig = r.heatmap()
    assert fig.axes and fig.axes[0].get_title().startswith("SDE")
    assert "injections" in r.headline
    assert "/features/features.4/Conv" in r._repr_html_()


def test_same_campaign_from_python_and_the_command_is_byte_identical(tmp_path, monkeypatch):
    """The demo scenario from Python (its file, an override as keyword) and
    from the command (the file, the override as a flag), both from the
    repository root (the scenario's paths are relative): the same
    injections.csv, summary.csv, golden.csv and faults.bin, byte for byte."""
    monkeypatch.chdir(ROOT)
    py_out, cli_out = tmp_path / "python", tmp_path / "command"
    cache = tmp_path / "cache"
    c = fs.Campaign(scenario=DEMO_SCENARIO, counts={"injections": 400}, cache_dir=cache)
    c.run(py_out, progress=False)
    subprocess.run(
        [*command(), "run", str(DEMO_SCENARIO), "--injections", "400", "--out", str(cli_out),
         "--cache-dir", str(cache), "--quiet"],
        check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
    )
    for name in ("injections.csv", "summary.csv", "golden.csv"):
        assert (py_out / name).read_bytes() == (cli_out / name).read_bytes(), name
    # faults.bin records the scenario file it came from (Python's is the
    # merged scenario in its cache): the rows are the same.
    for out in (py_out, cli_out):
        subprocess.run([*command(), "faults", "convert", str(out / "faults.bin"),
                        str(out / "faults.csv")], check=True, stdout=subprocess.DEVNULL)
    assert (py_out / "faults.csv").read_bytes() == (cli_out / "faults.csv").read_bytes()


def test_the_command_reports_and_resumes_a_python_campaign(demo_data, tmp_path):
    x, y = demo_data
    out = tmp_path / "out"
    fs.Campaign(str(DEMO_MODEL), (x, y), counts={"injections": 100}, seed=3).run(out)
    installed = Path(sys.executable).parent / "faultsweep"
    report = subprocess.run([str(installed), "report", str(out)], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    assert "identical" in report.stdout
    # A finished campaign resumes to itself.
    again = subprocess.run([str(installed), "run", "--resume", str(out), "--quiet"],
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr


def test_a_torch_module_is_exported_and_its_modules_named(tmp_path):
    model = small_cnn().eval()
    x = torch.rand(32, 1, 28, 28)
    y = torch.randint(0, 10, (32,))
    c = fs.Campaign(model, x, labels=y, counts={"injections": 200}, seed=1,
                    targets={"layers": {"ops": ["Conv", "Gemm"]}, "layer_choice": "uniform"})
    assert c.modules["/0/0.0/Conv"] == "0.0"
    assert c.modules["/1/1.0/Conv"] == "1.0"
    assert c.modules["/3/Gemm"] == "3"
    r = c.run(tmp_path / "out")
    s = r.summary("layer")
    assert list(s["module"]) == ["0.0", "1.0", "3"]
    assert set(r.injections["module"]) == {"0.0", "1.0", "3"}
    # The export is cached by content: the same model is not exported again.
    models = list((fs.cache_root() / "models").glob("*.onnx"))
    fs.Campaign(model, x, labels=y, counts={"injections": 10})
    assert list((fs.cache_root() / "models").glob("*.onnx")) == models
    # The golden run agrees with PyTorch on the same inputs.
    golden = pd.read_csv(r.dir / "golden.csv")
    with torch.no_grad():
        top1 = model(x).argmax(1).numpy()
    assert (golden["top1_class"].to_numpy() == top1).all()


def test_datasets_and_loaders_give_the_same_data():
    x = torch.rand(16, 1, 28, 28)
    y = torch.randint(0, 10, (16,))
    ds = torch.utils.data.TensorDataset(x, y)
    keys = [
        fs.Campaign(str(DEMO_MODEL), data, counts={"injections": 5}).spec["data"]
        for data in ((x, y), ds, torch.utils.data.DataLoader(ds, batch_size=5),
                     {"path": x, "labels": y})
    ]
    assert keys[0] == keys[1] == keys[2] == keys[3]
    assert keys[0]["path"].endswith(".npy") and keys[0]["labels"].endswith(".npy")


def test_scenario_keys_as_keywords_dicts_or_files_are_the_same(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    a = fs.Campaign(scenario=DEMO_SCENARIO, counts={"injections": 50})
    spec = dict(a.spec)
    b = fs.Campaign(scenario=spec)
    f = tmp_path / "s.yml"
    f.write_text(a.scenario_yaml)
    c = fs.Campaign(scenario=f)
    assert a.scenario_yaml == b.scenario_yaml
    assert c.runs_total == a.runs_total == 50


def test_validation_errors_are_python_exceptions_with_the_commands_message(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(fs.ScenarioError) as e:
        fs.Campaign(str(DEMO_MODEL), str(DEMO_IMAGES), counts={"injections": 10},
                    fault={"bitz": "all"})
    assert "bitz" in str(e.value) and e.value.exit_code == 8
    bad = tmp_path / "bad.yml"
    bad.write_text(DEMO_SCENARIO.read_text().replace("bits: all", "bits: {list: [40]}"))
    with pytest.raises(fs.ScenarioError) as e:
        fs.Campaign(scenario=bad)
    cli = subprocess.run([*command(), "run", str(bad), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 8
    assert str(e.value) in cli.stderr
    # file:line:column, the key, the reason
    assert str(e.value).startswith(f"{bad}:20:3: `fault.bits`: bit 40 does not exist")
    with pytest.raises(TypeError):
        fs.Campaign(str(DEMO_MODEL), str(DEMO_IMAGES), count={"injections": 1})


def test_python_fault_models(demo_data, tmp_path):
    x, y = demo_data
    seen = []

    def negate(value, site):
        seen.append(site["layer"])
        assert site["fault_model"] == "custom:negate" and isinstance(site["sample"], int)
        assert isinstance(site["coord"], list) and site["int8_scale"] > 0
        return -value

    c = fs.Campaign(str(DEMO_MODEL), (x, y), fault={"model": negate},
                    targets={"layers": {"ops": ["Conv"]}}, counts={"injections": 100}, seed=5)
    r = c.run(tmp_path / "out")
    inj = r.injections
    assert set(inj["fault_model"]) == {"custom:negate"}
    assert len(seen) >= 100
    orig = inj["original_value"].astype(float)
    faulty = inj["faulty_value"].astype(float)
    assert np.allclose(faulty, -orig)
    # The command cannot run it again, and says where it can run.
    installed = Path(sys.executable).parent / "faultsweep"
    cli = subprocess.run([str(installed), "run", "--resume", str(r.dir)], capture_output=True,
                         text=True)
    assert cli.returncode == 8 and "custom fault model 'negate' is not registered" in cli.stderr
    assert "resumes from Python (faultsweep.resume(DIR" in cli.stderr
    # `report` reads it.
    report = subprocess.run([str(installed), "report", str(r.dir)], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    # Python resumes it (finished: nothing left to run) with the model registered.
    again = fs.resume(r.dir, fault_models={"negate": negate})
    assert again.injections.equals(r.injections)


def test_a_python_fault_model_that_raises_stops_the_run(demo_data, tmp_path):
    x, y = demo_data

    def broken(value, site):
        raise RuntimeError("no")

    c = fs.Campaign(str(DEMO_MODEL), (x, y), fault={"model": broken}, counts={"injections": 10})
    with pytest.raises(RuntimeError, match="no"):
        c.run(tmp_path / "out")


def test_runs_iterates_injections_with_faulty_outputs(demo_data, tmp_path):
    x, y = demo_data
    c = fs.Campaign(str(DEMO_MODEL), (x, y), counts={"injections": 120}, seed=11)
    runs = list(c.runs())
    assert len(runs) == 120
    r = c.run(tmp_path / "out")
    by_id = dict(zip(r.injections["fault_id"], r.injections["outcome"]))
    for run in runs:
        assert isinstance(run.output, torch.Tensor) and run.output.shape == (10,)
        assert by_id[run.faults[0]["fault_id"]] == run.outcome
        assert run.faults[0]["sample"] == run.sample
        if run.outcome == "masked":
            assert torch.equal(run.output, run.golden)
        if run.outcome == "sde":
            assert run.output.argmax() != run.golden.argmax()
    # Stopping early is fine.
    first = next(iter(c.runs()))
    assert first.outcome in {"masked", "benign", "sde", "due"}


def test_parquet_injections(demo_data, tmp_path):
    pytest.importorskip("pyarrow")
    x, y = demo_data
    c = fs.Campaign(str(DEMO_MODEL), (x, y), counts={"injections": 50},
                    outputs={"injections": "parquet"})
    r = c.run(tmp_path / "out")
    assert len(r.injections) == 50
    assert not (r.dir / "injections.csv").exists()


def test_an_interrupted_run_resumes_from_python_to_the_same_bytes(tmp_path, monkeypatch):
    """A run stopped by an exception in its progress callback (as Ctrl-C
    stops it) resumes with fs.resume to the uninterrupted run's rows."""
    monkeypatch.chdir(ROOT)
    c = fs.Campaign(scenario=DEMO_SCENARIO, counts={"injections": 2000})
    whole = c.run(tmp_path / "whole", progress=False)

    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        c.run(tmp_path / "cut", progress=stop)
    cut = tmp_path / "cut"
    assert not (cut / "summary.csv").exists()
    rows = (cut / "injections.csv").read_text().count("\n") - 1
    assert 0 < rows < 2000
    resumed = fs.resume(cut, progress=False)
    for name in ("injections.csv", "summary.csv"):
        assert (resumed.dir / name).read_bytes() == (whole.dir / name).read_bytes(), name


def test_runs_with_a_python_fault_model(demo_data):
    x, y = demo_data

    def zero(value, site):
        return 0.0

    c = fs.Campaign(str(DEMO_MODEL), (x, y), fault={"model": zero}, counts={"injections": 40},
                    seed=4)
    runs = list(c.runs())
    assert len(runs) == 40
    assert {r.faults[0]["fault_model"] for r in runs} == {"custom:zero"}


def test_the_progress_bar_reports_to_stderr(demo_data, tmp_path, capsys):
    pytest.importorskip("tqdm")
    x, y = demo_data
    fs.Campaign(str(DEMO_MODEL), (x, y), counts={"injections": 600}).run(tmp_path / "o",
                                                                          progress=True)
    err = capsys.readouterr().err
    assert "faultsweep" in err and "600" in err
