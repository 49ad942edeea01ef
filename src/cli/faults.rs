//! `faultsweep faults gen|convert|show`: fault lists from scenarios, between
//! binary and CSV, and summarized.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::campaign::{self, RunArgs};
use crate::error::Result;
use crate::faults::{self, summary, FaultList, Sites};
use crate::load;
use crate::scenario;

#[derive(Debug, Subcommand)]
pub enum FaultsCmd {
    /// Generate a scenario's fault list (binary, or CSV when OUT ends in .csv).
    Gen {
        scenario: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Use this model instead of the scenario's `model.path`.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Use this data set instead of the scenario's `data.path`.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Use this seed instead of the scenario's `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Also write the effective scenario (defaults and seed filled in).
        #[arg(long)]
        effective: Option<PathBuf>,
    },
    /// Convert a fault list between binary and CSV (by file extension).
    Convert {
        input: PathBuf,
        output: PathBuf,
        /// Check every row against this model (needed for CSV without a
        /// `node` column).
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Summarize a fault list per sweep point, layer, bit and fault model.
    Show {
        file: PathBuf,
        /// Check every row against this model.
        #[arg(long)]
        model: Option<PathBuf>,
    },
}

pub fn run(cmd: FaultsCmd) -> Result<()> {
    match cmd {
        FaultsCmd::Gen {
            scenario,
            out,
            model,
            data,
            seed,
            effective,
        } => gen(&scenario, &out, model, data, seed, effective.as_deref()),
        FaultsCmd::Convert {
            input,
            output,
            model,
        } => {
            let list = read(&input, model.as_deref())?;
            faults::save(&list, &output)?;
            println!("wrote {} faults to {}", list.faults.len(), output.display());
            Ok(())
        }
        FaultsCmd::Show { file, model } => {
            print!("{}", summary::summary(&read(&file, model.as_deref())?));
            Ok(())
        }
    }
}

fn gen(
    path: &Path,
    out: &Path,
    model: Option<PathBuf>,
    data: Option<PathBuf>,
    seed: Option<u64>,
    effective: Option<&Path>,
) -> Result<()> {
    let args = RunArgs {
        model,
        data,
        seed,
        ..RunArgs::default()
    };
    let plan = campaign::plan(path, &args)?;
    faults::save(&plan.faults, out)?;
    if let Some(e) = effective {
        scenario::save(&plan.campaign.spec, e)?;
    }
    report(&plan.faults, out);
    Ok(())
}

fn report(list: &FaultList, out: &Path) {
    let injections = list.faults.last().map_or(0, |f| f.injection + 1);
    println!(
        "wrote {} faults ({injections} injections, {} sweep points) to {}; seed {}",
        list.faults.len(),
        list.meta.points.len(),
        out.display(),
        list.meta.seed.unwrap_or_default()
    );
    let mut s = String::new();
    summary::strata(&mut s, list);
    print!("{s}");
}

/// A list, checked against `model` when given.
fn read(path: &Path, model: Option<&Path>) -> Result<FaultList> {
    let sites = match model {
        Some(m) => Some(Sites::from_graph(&load::load(m)?)?),
        None => None,
    };
    faults::load(path, sites.as_ref(), None)
}
