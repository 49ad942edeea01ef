//! `faultsweep faults gen|convert|show`: fault lists from scenarios, between
//! binary and CSV, and summarized.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::data::DataSpec;
use crate::error::Result;
use crate::faults::{self, summary, FaultList, Sites};
use crate::load;
use crate::scenario::{self, Scenario};

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
    let mut sc = Scenario::load(path)?;
    if let Some(m) = model {
        sc.spec.model.path = m;
    }
    if let Some(d) = data {
        sc.spec.data.path = d;
    }
    sc.spec.seed = seed.or(sc.spec.seed);
    let graph = load::load(&sc.spec.model.path)?;
    let campaign = sc.validate(&graph, data_len(&sc.spec.data))?;
    let list = faults::generate(&campaign);
    faults::save(&list, out)?;
    if let Some(e) = effective {
        scenario::save(&campaign.spec, e)?;
    }
    report(&list, out);
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

/// The number of samples in the data set when it can be read cheaply from a
/// header (IDX, raw or gzipped; .npy). The engine's data loader replaces this.
fn data_len(spec: &DataSpec) -> Option<u64> {
    let mut head = [0u8; 256];
    let n = read_head(&spec.path, &mut head).ok()?;
    let head = &head[..n];
    if head.starts_with(b"\x93NUMPY") {
        let text = String::from_utf8_lossy(head);
        let shape = text.split("'shape': (").nth(1)?;
        return shape.split([',', ')']).next()?.trim().parse().ok();
    }
    // IDX: two zero bytes, a type byte, the rank, then big-endian dimensions.
    match head {
        [0, 0, _, rank, a, b, c, d, ..] if *rank >= 1 => {
            Some(u64::from(u32::from_be_bytes([*a, *b, *c, *d])))
        }
        _ => None,
    }
}

fn read_head(path: &Path, buf: &mut [u8]) -> std::io::Result<usize> {
    let f = std::fs::File::open(path)?;
    let mut r: Box<dyn Read> = match path.extension().is_some_and(|e| e == "gz") {
        true => Box::new(flate2::read::GzDecoder::new(f)),
        false => Box::new(f),
    };
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
