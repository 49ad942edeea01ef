//! The command-line interface: clap commands that call the library. Command
//! names and their outputs are a contract (README, "Commands").

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tch::{Device, Tensor};

use crate::error::{Error, Result};
use crate::{inspect, load};

#[derive(Debug, Parser)]
#[command(
    name = "faultsweep",
    version,
    about = "Fault injection for neural networks (ONNX on libtorch)"
)]
pub struct Cli {
    /// Intra-op threads for libtorch (default: libtorch's choice).
    #[arg(long, global = true)]
    pub threads: Option<i32>,
    /// Device to run on: cpu, or cuda / cuda:N when a CUDA libtorch is present.
    #[arg(long, global = true, default_value = "cpu")]
    pub device: String,
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
    },
}

pub fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        tch::set_num_threads(n.max(1));
    }
    let device = parse_device(&cli.device)?;
    match cli.command {
        Command::Inspect { model, json } => {
            let graph = load::load(&model)?;
            let info = inspect::inspect(&graph)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&info).expect("model info serializes")
                );
            } else {
                print!("{}", render::model(&info));
            }
            Ok(())
        }
        Command::Infer { model, input, out } => infer(&model, &input, &out, device),
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

fn infer(model: &PathBuf, input: &PathBuf, out: &PathBuf, device: Device) -> Result<()> {
    let mut graph = load::load(model)?;
    graph.to_device(device);
    let x = Tensor::read_npy(input).map_err(|e| Error::Data {
        path: input.clone(),
        msg: format!(
            "not a readable .npy file: {}",
            e.to_string().lines().next().unwrap_or_default()
        ),
    })?;
    let outputs = graph.forward(&[x.to_device(device)])?;
    let y = outputs[0].to_device(Device::Cpu).to_kind(tch::Kind::Float);
    y.write_npy(out).map_err(|e| Error::Data {
        path: out.clone(),
        msg: e.to_string(),
    })?;
    eprintln!("wrote {} {:?}", out.display(), y.size());
    Ok(())
}

mod render;
