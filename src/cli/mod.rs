//! The command-line interface: clap commands that call the library. Command
//! names and their outputs are a contract (docs/commands.md).

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use tch::{Device, Tensor};

use faultsweep::error::{Error, Result};
use faultsweep::{inspect, load};

/// `println!` for command output, in a function returning [`Result`]: a
/// closed stdout (`| head -1`) ends the command quietly, not with a panic.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::out(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `print!` as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out(format_args!($($arg)*))?
    };
}

/// Writes command output; a closed stdout is [`Error::StdoutClosed`].
pub(crate) fn out(args: std::fmt::Arguments) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(args)
        .and_then(|()| stdout.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Error::StdoutClosed,
            _ => Error::io("standard output", e),
        })
}

#[derive(Debug, Parser)]
#[command(
    name = "faultsweep",
    version,
    about = "Fault injection for neural networks (ONNX on libtorch)"
)]
pub struct Cli {
    /// Threads to use (default: one per core): libtorch's intra-op threads
    /// in the golden pass, and batches of injections run at once, one
    /// thread each.
    #[arg(long, global = true, value_parser = clap::value_parser!(i32).range(1..=1024))]
    pub threads: Option<i32>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a model's nodes, shapes, parameters, MACs, targets and cuts.
    Inspect {
        model: PathBuf,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Run a model on an N x ... float32 .npy batch and write its output as .npy.
    Infer {
        model: PathBuf,
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Integer class labels (.npy, one per sample): print top-1 accuracy.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Device to run on: cpu, or cuda / cuda:N when a CUDA libtorch is
        /// present. Only `infer` takes it: the other commands run on the CPU,
        /// where faultsweep's exact kernels and the cache live.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Fault-free pass over a data set: golden.csv, ranges.csv, cached frontiers.
    Golden(golden::GoldenArgs),
    /// Manage the layer-split cache.
    Cache {
        #[command(subcommand)]
        command: cache::CacheCommand,
        /// Cache root (overrides $FAULTSWEEP_CACHE and the default `cache/`).
        #[arg(long, global = true)]
        cache_dir: Option<PathBuf>,
    },
    /// Run a fault-injection campaign from a scenario.
    Run(run::RunCmd),
    /// Fault lists: generate from a scenario, convert, summarize.
    Faults {
        #[command(subcommand)]
        cmd: faults::FaultsCmd,
    },
    /// Re-derive a finished campaign's summaries from injections.csv and
    /// check them and every file against its recorded provenance.
    Report {
        /// The results folder.
        dir: PathBuf,
    },
    /// Merge the results folders of a campaign's shards (`run --shard I/N`)
    /// into the folder a single run would have written.
    Merge {
        /// The merged results folder (must not hold a campaign).
        out: PathBuf,
        /// The shard folders, all N of them, in any order.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Time a scenario's fault list: engine, no dropping, suffix bound, full forward.
    Bench(bench::BenchCmd),
}

pub fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        tch::set_num_threads(n.max(1));
    }
    let workers = match cli.threads {
        Some(n) => n.max(1) as usize,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    match cli.command {
        Command::Inspect { model, json } => {
            let graph = load::load(&model)?;
            let info = inspect::inspect(&graph)?;
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&info).expect("model info serializes")
                );
            } else {
                out!("{}", render::model(&info));
            }
            Ok(())
        }
        Command::Golden(args) => golden::golden(args),
        Command::Run(cmd) => run::run(cmd, workers),
        Command::Report { dir } => run::report(&dir),
        Command::Merge { out, dirs } => run::merge(&out, &dirs),
        Command::Cache { command, cache_dir } => cache::cache(command, cache_dir),
        Command::Infer {
            model,
            input,
            out,
            labels,
            device,
        } => {
            let logits = infer(&model, &input, &out, parse_device(&device)?)?;
            if let Some(labels) = labels {
                accuracy(&logits, &labels)?;
            }
            Ok(())
        }
        Command::Faults { cmd } => faults::run(cmd),
        Command::Bench(cmd) => bench::run(cmd, cli.threads, workers),
    }
}

fn parse_device(s: &str) -> Result<Device> {
    let bad = |msg: String| Error::Input {
        path: PathBuf::from("--device"),
        input: s.to_string(),
        msg,
    };
    match s {
        "cpu" => Ok(Device::Cpu),
        _ if s == "cuda" || s.starts_with("cuda:") => {
            let index = s
                .strip_prefix("cuda:")
                .map_or(Ok(0), str::parse::<usize>)
                .map_err(|_| bad("bad device index".into()))?;
            if !tch::Cuda::is_available() {
                return Err(bad(
                    "CUDA is not available with this libtorch (set LIBTORCH to a CUDA build)"
                        .into(),
                ));
            }
            Ok(Device::Cuda(index))
        }
        _ => Err(bad("expected cpu, cuda or cuda:N".into())),
    }
}

/// Runs the model on `input` (a .npy batch, or a .npz with an array per
/// input name) and writes to `out` its first output as float32 (.npy) or
/// every output by name in its own type (.npz); returns the first output.
fn infer(model: &Path, input: &Path, out: &Path, device: Device) -> Result<Tensor> {
    let mut graph = load::load(model)?;
    graph.to_device(device);
    let xs = faultsweep::data::read_inputs(input, &graph.inputs)?;
    let xs: Vec<Tensor> = xs.iter().map(|x| x.to_device(device)).collect();
    let outputs: Vec<Tensor> = (graph.forward(&xs)?.iter())
        .map(|y| y.to_device(Device::Cpu))
        .collect();
    if out.to_string_lossy().to_ascii_lowercase().ends_with(".npz") {
        let named: Vec<(String, Tensor)> = (graph.outputs.iter())
            .zip(&outputs)
            .map(|(&id, y)| (graph.values[id].name.clone(), y.shallow_clone()))
            .collect();
        faultsweep::output::write_npz(out, &named)?;
        for (name, y) in &named {
            outln!(
                "wrote {} {name} {:?} {:?}",
                out.display(),
                y.kind(),
                y.size()
            );
        }
    } else {
        faultsweep::output::write_npy(out, &outputs[0])?;
        outln!("wrote {} {:?}", out.display(), outputs[0].size());
    }
    Ok(outputs[0].to_kind(tch::Kind::Float))
}

fn accuracy(logits: &Tensor, path: &Path) -> Result<()> {
    let labels = Tensor::from_slice(&faultsweep::data::read_labels(path)?);
    let n = logits.size().first().copied().unwrap_or(0);
    if logits.dim() != 2 || labels.size() != [n] {
        return Err(Error::Data {
            path: path.to_path_buf(),
            msg: format!(
                "{} labels for outputs of shape {:?}",
                labels.numel(),
                logits.size()
            ),
        });
    }
    let correct = logits
        .argmax(-1, false)
        .eq_tensor(&labels)
        .sum(tch::Kind::Int64)
        .int64_value(&[]);
    outln!(
        "top-1 accuracy {:.2}% ({correct}/{n})",
        100.0 * correct as f64 / n.max(1) as f64
    );
    Ok(())
}

mod bench;
mod cache;
mod faults;
mod golden;
mod render;
mod run;

/// Parses a count that must be at least 1 (sizes of batches, subsets).
pub(crate) fn positive(s: &str) -> std::result::Result<usize, String> {
    faultsweep::data::count(s.parse::<usize>().map_err(|e| e.to_string())?)
}
