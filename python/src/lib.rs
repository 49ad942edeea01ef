//! `faultsweep._core`: the Rust side of the Python package.
//!
//! Four entry points, each a thin wrapper over the library; the Python
//! package (`python/faultsweep/`) builds scenarios, models and data files and
//! reads the results folder:
//!
//! - [`run`]: `campaign::run_with_models`, the same function `faultsweep run`
//!   calls, so the results folder is the command's byte for byte; progress
//!   goes to a Python callable, custom fault models are Python callables.
//! - [`Runs`]: the campaign's injections one at a time with their faulty
//!   outputs (`campaign::Model::results`), from a thread of its own.
//! - [`main`]: the `faultsweep` command itself (the binary's `cli` module,
//!   compiled into the extension), for the console script the wheel installs.
//! - [`FaultsweepError`]: every library error, with its message and the exit
//!   code the command would give.

use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};

use clap::Parser;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use faultsweep::cache::Store;
use faultsweep::campaign::{self, Model, RunArgs};
use faultsweep::faults::{FaultFn, Models, Site};
use faultsweep::inject::Options;

// The command line of the `faultsweep` binary, compiled here too: the
// console script of the wheel runs it in the process that loaded torch.
// Items only the binary's main reaches are not dead code there.
#[allow(dead_code)]
#[path = "../../src/cli/mod.rs"]
mod cli;

pyo3::create_exception!(
    _core,
    FaultsweepError,
    PyException,
    "A faultsweep error: its message is the command's, `exit_code` the command's exit code."
);

/// The library's error as a Python exception with its exit code.
fn to_py(e: faultsweep::Error) -> PyErr {
    let code = e.exit_code();
    let kind = kind_name(&e);
    Python::attach(|py| {
        let err = FaultsweepError::new_err(e.to_string());
        let value = err.value(py);
        let _ = value.setattr("exit_code", code);
        let _ = value.setattr("kind", kind);
        err
    })
}

/// The error's kind, for the Python exception classes.
fn kind_name(e: &faultsweep::Error) -> &'static str {
    match e.exit_code() {
        2 => "usage",
        3 => "model",
        4 => "data",
        5 => "op",
        6 => "io",
        7 => "cache",
        8 => "scenario",
        9 => "fault_list",
        10 => "verify",
        11 => "report",
        _ => "other",
    }
}

/// A JSON value as the Python object `json.loads` would give.
fn json_to_py(py: Python<'_>, v: &serde_json::Value) -> PyResult<Py<PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None(),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.into_pyobject(py)?.into_any().unbind(),
            (None, Some(i), _) => i.into_pyobject(py)?.into_any().unbind(),
            (_, _, f) => f.unwrap_or(f64::NAN).into_pyobject(py)?.into_any().unbind(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any().unbind(),
        Value::Array(a) => {
            let items: Vec<Py<PyAny>> = a
                .iter()
                .map(|x| json_to_py(py, x))
                .collect::<PyResult<_>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any().unbind()
        }
    })
}

/// A fault row as a dict (the fault list's fields), `sample` and
/// `fault_model` written as in the CSV rows (`12` or `0..32` or `*`;
/// `bit_flip`, `custom:NAME`), `model` as in the scenario.
fn fault_dict(py: Python<'_>, fault: &faultsweep::faults::Fault) -> PyResult<Py<PyAny>> {
    use faultsweep::faults::Samples;
    let mut v = serde_json::to_value(fault).map_err(|e| PyException::new_err(e.to_string()))?;
    if let Some(map) = v.as_object_mut() {
        let sample = match fault.sample {
            Samples::One(n) => serde_json::Value::from(n),
            other => serde_json::Value::from(other.to_string()),
        };
        map.insert("sample".into(), sample);
        map.insert("fault_model".into(), fault.model.name().into());
    }
    json_to_py(py, &v)
}

/// A custom fault model written in Python: `f(value, site) -> value`.
/// The first exception it raises is kept and raised after the run (the
/// value stays unchanged meanwhile).
struct PyFaultFn {
    f: Py<PyAny>,
    failed: Arc<Mutex<Option<PyErr>>>,
}

impl FaultFn for PyFaultFn {
    fn apply(&self, original: f32, site: &Site<'_>) -> f32 {
        Python::attach(|py| {
            let call = || -> PyResult<f32> {
                let d = fault_dict(py, site.fault)?;
                d.bind(py).set_item("int8_scale", site.int8_scale)?;
                self.f.call1(py, (original, d))?.extract::<f32>(py)
            };
            match call() {
                Ok(v) => v,
                Err(e) => {
                    let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
                    failed.get_or_insert(e);
                    original
                }
            }
        })
    }
}

/// The models of a `{name: callable}` dict, registered as `custom:NAME`, and
/// the slot where the first exception of any of them lands.
fn custom_models(
    models: Option<&Bound<'_, PyDict>>,
) -> PyResult<(Models, Arc<Mutex<Option<PyErr>>>)> {
    let failed = Arc::new(Mutex::new(None));
    let mut registered = Models::default();
    if let Some(models) = models {
        for (name, f) in models.iter() {
            let name: String = name.extract()?;
            let f = PyFaultFn {
                f: f.unbind(),
                failed: failed.clone(),
            };
            registered.register(name, Arc::new(f));
        }
    }
    Ok((registered, failed))
}

/// Raised from the progress callback to stop a run on Ctrl-C.
struct Interrupted(PyErr);

/// Runs the campaign of the scenario file `scenario` (as `faultsweep run
/// SCENARIO --out OUT`), or resumes the one in `out` (`--resume OUT`).
/// `progress(done, total)` hears after every chunk; `models` maps custom
/// fault model names to Python callables. Returns what the command prints.
#[pyfunction]
#[pyo3(signature = (scenario, out=None, resume=false, workers=None, progress=None, models=None, cache_dir=None, verify=0))]
#[allow(clippy::too_many_arguments)]
fn run(
    py: Python<'_>,
    scenario: Option<PathBuf>,
    out: Option<PathBuf>,
    resume: bool,
    workers: Option<usize>,
    progress: Option<Py<PyAny>>,
    models: Option<&Bound<'_, PyDict>>,
    cache_dir: Option<PathBuf>,
    verify: usize,
) -> PyResult<Py<PyAny>> {
    let (models, failed) = custom_models(models)?;
    let workers =
        workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let mut args = RunArgs {
        out: out.clone(),
        resume,
        workers,
        cache_dir,
        verify,
        ..RunArgs::default()
    };
    let scenario = match (resume, &out, scenario) {
        (true, Some(dir), _) => {
            args.faults = Some(dir.join("faults.bin"));
            args.shard = campaign::recorded(dir)
                .map_err(to_py)?
                .and_then(|p| p.shard);
            dir.join("scenario.yml")
        }
        (false, _, Some(s)) => s,
        _ => {
            return Err(PyException::new_err(
                "run: a scenario, or resume=True with the results folder",
            ))
        }
    };
    let started = std::time::Instant::now();
    let outcome = py.detach(|| {
        panic::catch_unwind(AssertUnwindSafe(|| {
            campaign::run_with_models(&scenario, &args, &models, &mut |done, total| {
                Python::attach(|py| {
                    let checked = py.check_signals().and_then(|()| match &progress {
                        Some(p) => p.call1(py, (done, total)).map(drop),
                        None => Ok(()),
                    });
                    if let Err(e) = checked {
                        panic::resume_unwind(Box::new(Interrupted(e)));
                    }
                })
            })
        }))
    });
    let report = match outcome {
        Ok(r) => r,
        Err(payload) => match payload.downcast::<Interrupted>() {
            Ok(i) => return Err(i.0),
            Err(other) => panic::resume_unwind(other),
        },
    };
    if let Some(e) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    let report = report.map_err(to_py)?;
    let secs = started.elapsed().as_secs_f64();
    let d = PyDict::new(py);
    d.set_item("out", report.out.to_string_lossy().to_string())?;
    d.set_item("headline", report.summary.headline())?;
    d.set_item("injections", report.summary.overall().counts.n)?;
    d.set_item("seconds", secs)?;
    d.set_item("golden_accuracy", report.golden_accuracy)?;
    d.set_item("correct", report.correct)?;
    if let Some(v) = report.verified {
        d.set_item(
            "verified",
            (v.checked, v.exact, v.within_rounding, v.differing.clone()),
        )?;
        if !v.differing.is_empty() {
            return Err(to_py(faultsweep::Error::Verify(v.differing.join("\n"))));
        }
    }
    Ok(d.into_any().unbind())
}

/// Validates the scenario file against its model and data (what `run`
/// does before it writes anything) and returns the campaign's number of
/// runs (injections times the samples each is active for).
#[pyfunction]
#[pyo3(signature = (scenario, models=None, cache_dir=None))]
fn check(
    py: Python<'_>,
    scenario: PathBuf,
    models: Option<&Bound<'_, PyDict>>,
    cache_dir: Option<PathBuf>,
) -> PyResult<usize> {
    let (models, _) = custom_models(models)?;
    let args = RunArgs {
        cache_dir,
        ..RunArgs::default()
    };
    py.detach(|| {
        let plan = campaign::plan(&scenario, &args, &models)?;
        campaign::run_count(&plan)
    })
    .map_err(to_py)
}

/// One injection run, as the thread of [`Runs`] sends it.
struct RunItem {
    faults: Vec<faultsweep::faults::Fault>,
    sample: usize,
    outcome: &'static str,
    golden: Vec<f32>,
    output: Option<Vec<f32>>,
    error: Option<String>,
}

fn floats(t: &tch::Tensor) -> Vec<f32> {
    let t = t
        .to_kind(tch::Kind::Float)
        .to_device(tch::Device::Cpu)
        .flatten(0, -1);
    Vec::<f32>::try_from(&t).unwrap_or_default()
}

/// The injections of a campaign one at a time, with the judged output of
/// each (faulty and golden, flattened float32): PyTorchALFI's iterator over
/// faulty models. The engine runs on a thread of its own, a few batches
/// ahead; nothing is written to a results folder.
#[pyclass]
struct Runs {
    rx: Mutex<mpsc::Receiver<Result<RunItem, faultsweep::Error>>>,
    failed: Arc<Mutex<Option<PyErr>>>,
}

#[pymethods]
impl Runs {
    #[new]
    #[pyo3(signature = (scenario, models=None, cache_dir=None, workers=None))]
    fn new(
        scenario: PathBuf,
        models: Option<&Bound<'_, PyDict>>,
        cache_dir: Option<PathBuf>,
        workers: Option<usize>,
    ) -> PyResult<Runs> {
        let (models, failed) = custom_models(models)?;
        let (tx, rx) = mpsc::sync_channel(256);
        std::thread::spawn(move || {
            let args = RunArgs {
                cache_dir: cache_dir.clone(),
                ..RunArgs::default()
            };
            let result = (|| -> faultsweep::Result<()> {
                let plan = campaign::plan(&scenario, &args, &models)?;
                let store = Store::new(&plan.campaign.spec.cache, cache_dir.as_deref());
                let model = Model::prepare(&plan, &plan.graph, None, &store, &models)?;
                let options = Options {
                    batch_size: plan.campaign.spec.data.batch_size,
                    workers: workers.unwrap_or(1).max(1),
                    ..Options::default()
                };
                for ran in model.results(options)? {
                    let (faults, r) = ran?;
                    let item = RunItem {
                        sample: r.sample,
                        outcome: r.outcome().name(),
                        golden: floats(&r.golden),
                        output: r.output.as_ref().map(floats),
                        error: r.error.clone(),
                        faults,
                    };
                    if tx.send(Ok(item)).is_err() {
                        break; // the iterator was dropped
                    }
                }
                Ok(())
            })();
            if let Err(e) = result {
                let _ = tx.send(Err(e));
            }
        });
        Ok(Runs {
            rx: Mutex::new(rx),
            failed,
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// `(faults, sample, outcome, golden bytes, output bytes or None, error)`.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let next = py.detach(|| {
            let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
            rx.recv()
        });
        if let Some(e) = self.failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        let item = match next {
            Err(_) => return Ok(None),
            Ok(Err(e)) => return Err(to_py(e)),
            Ok(Ok(item)) => item,
        };
        let faults: Vec<Py<PyAny>> = (item.faults.iter())
            .map(|f| fault_dict(py, f))
            .collect::<PyResult<_>>()?;
        let bytes = |v: &[f32]| -> Py<PyAny> {
            let raw: Vec<u8> = v.iter().flat_map(|x| x.to_ne_bytes()).collect();
            PyBytes::new(py, &raw).into_any().unbind()
        };
        let output = item.output.as_deref().map(bytes);
        let t = (
            PyList::new(py, faults)?,
            item.sample,
            item.outcome,
            bytes(&item.golden),
            output,
            item.error,
        );
        Ok(Some(t.into_pyobject(py)?.into_any().unbind()))
    }
}

/// The `faultsweep` command: `argv` as the binary gets it (program name
/// first). Returns the exit code.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| {
        let parsed = match cli::Cli::try_parse_from(argv) {
            Ok(c) => c,
            Err(e) => {
                let _ = e.print();
                return e.exit_code();
            }
        };
        match cli::run(parsed) {
            Ok(()) => 0,
            Err(e) => {
                if !matches!(e, faultsweep::Error::StdoutClosed) {
                    eprintln!("faultsweep: error: {e}");
                }
                e.exit_code()
            }
        }
    })
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(main, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_class::<Runs>()?;
    m.add("FaultsweepError", m.py().get_type::<FaultsweepError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
