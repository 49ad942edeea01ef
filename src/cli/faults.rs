//! `faultsweep faults gen|convert|show`: fault lists from scenarios, between
//! binary and CSV, and summarized.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use faultsweep::campaign::{self, RunArgs};
use faultsweep::error::Result;
use faultsweep::faults::{self, summary, Sites};
use faultsweep::load;
use faultsweep::scenario;

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
            let sites = sites(model.as_deref())?;
            let (meta, rows) = faults::rows(&input, sites.as_ref(), None)?;
            let written = faults::save_rows(&output, &meta, rows)?;
            outln!("wrote {written} faults to {}", output.display());
            Ok(())
        }
        FaultsCmd::Show { file, model } => {
            let sites = sites(model.as_deref())?;
            let (meta, rows) = faults::rows(&file, sites.as_ref(), None)?;
            out!("{}", summary::summary(&meta, rows)?);
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
    // The command line registers no custom fault model.
    let plan = campaign::plan(path, &args, &faults::Models::default())?;
    // Written as generated: a list of millions is never held whole.
    let mut injections = 0;
    // Injections per sweep point, for the clean inferences of `per: inference`.
    let mut per_point: std::collections::BTreeMap<u32, u64> = Default::default();
    let rows = plan.fault_rows()?.inspect(|f| {
        if let Ok(f) = f {
            if f.injection + 1 != injections {
                *per_point.entry(f.sweep).or_default() += 1;
            }
            injections = f.injection + 1;
        }
    });
    let written = faults::save_rows(out, &plan.faults.meta, rows)?;
    if let Some(e) = effective {
        scenario::save(&plan.campaign.spec, e)?;
    }
    let meta = &plan.faults.meta;
    let mut s = String::new();
    summary::strata(&mut s, meta);
    outln!(
        "wrote {written} faults ({injections} injections, {} sweep points) to {}; seed {}",
        meta.points.len(),
        out.display(),
        meta.seed.unwrap_or_default()
    );
    if let Some((kept, subset)) = plan.correct {
        outln!("data.correct_only: {kept} of {subset} samples kept (classified correctly without faults); faults name positions 0..{kept}");
    }
    for p in &plan.campaign.points {
        if let Some(n) = p.inferences() {
            let faulted = per_point.get(&p.id).copied().unwrap_or(0);
            outln!(
                "sweep point {} ({}): {n} inferences drawn (per: inference), {faulted} faulted, {} clean",
                p.id,
                p.label,
                n - faulted
            );
        }
    }
    out!("{s}");
    Ok(())
}

/// The sites of `model` when given, to check a list's rows against.
fn sites(model: Option<&Path>) -> Result<Option<Sites>> {
    model
        .map(|m| Sites::from_graph(&load::load(m)?))
        .transpose()
}
