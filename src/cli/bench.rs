//! `faultsweep bench`: a scenario's fault list run by the engine, without
//! dropping, as the suffix bound and as full forward passes; the table of
//! times, rates, peak memory and ratios (docs/performance.md).

use std::path::PathBuf;

use clap::Args;

use super::run::Overrides;
use faultsweep::bench::{self, BenchArgs, Isolation, Way};
use faultsweep::campaign::RunArgs;
use faultsweep::error::{Error, Result};

#[derive(Debug, Args)]
pub struct BenchCmd {
    /// The scenario (YAML) whose fault list is run.
    pub scenario: PathBuf,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Runs of every way (times are medians; the order rotates).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Injections per engine call (default: the campaign's, 8 batches; 0:
    /// the whole list at once).
    #[arg(long)]
    pub chunk: Option<usize>,
    /// Ways to run, comma-separated: engine, engine-nodrop, suffix-bound,
    /// full-forward (default: these four), or the whole-run ways of the
    /// cache: no-cache, cache-cold, cache-warm.
    #[arg(long, value_delimiter = ',', value_parser = parse_way)]
    pub ways: Vec<Way>,
    /// Run every way in this process instead of one child process per way
    /// and repeat (peak memory then includes what earlier ways left).
    #[arg(long)]
    pub in_process: bool,
    /// Print the report as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only this way, once, and print one JSON line (what the parent
    /// process runs in each child).
    #[arg(long, value_parser = parse_way)]
    pub only: Option<Way>,
    /// With --only: save the injection results here (bincode).
    #[arg(long, hide = true, requires = "only")]
    pub results_file: Option<PathBuf>,
}

fn parse_way(s: &str) -> std::result::Result<Way, String> {
    Way::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Way::ALL.iter().map(|w| w.name()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

pub fn run(cmd: BenchCmd, threads: Option<i32>, workers: usize) -> Result<()> {
    cmd.overrides.check_utf8(None)?;
    let run = RunArgs {
        workers,
        ..RunArgs::from(cmd.overrides)
    };
    if let Some(way) = cmd.only {
        let m = bench::run_one(
            &cmd.scenario,
            &run,
            way,
            cmd.chunk,
            cmd.results_file.as_deref(),
        )?;
        outln!("{}", serde_json::to_string(&m).expect("measure serializes"));
        return Ok(());
    }
    let isolation = if cmd.in_process {
        Isolation::InProcess
    } else {
        Isolation::Child {
            exe: std::env::current_exe().map_err(|e| Error::io("faultsweep", e))?,
        }
    };
    let whole: Vec<bool> = (cmd.ways.iter())
        .map(|w| bench::campaigns::WAYS.contains(w))
        .collect();
    if whole.iter().any(|&w| w) {
        if whole.iter().any(|&w| !w) || cmd.only.is_some() {
            return Err(Error::Usage(
                "bench: no-cache, cache-cold and cache-warm run apart from the engine ways (and without --only)".into(),
            ));
        }
        let exe = std::env::current_exe().map_err(|e| Error::io("faultsweep", e))?;
        let args = BenchArgs {
            repeat: cmd.repeat,
            threads,
            ..BenchArgs::new(run)
        };
        let report = bench::campaigns::run(&cmd.scenario, &args, &exe)?;
        let json = serde_json::to_string_pretty(&report).expect("report serializes");
        if let Some(out) = &cmd.out {
            faultsweep::output::write_atomic(out, format!("{json}\n").as_bytes())?;
        }
        match cmd.json {
            true => outln!("{json}"),
            false => out!("{}", report.table()),
        }
        return match report.identical {
            true => Ok(()),
            false => Err(Error::Verify("the ways' injections.csv differ".into())),
        };
    }
    let args = BenchArgs {
        repeat: cmd.repeat,
        ways: if cmd.ways.is_empty() {
            Way::ALL.to_vec()
        } else {
            cmd.ways
        },
        chunk: cmd.chunk,
        isolation,
        threads,
        ..BenchArgs::new(run)
    };
    let report = bench::run(&cmd.scenario, &args)?;
    let json = serde_json::to_string_pretty(&report).expect("report serializes");
    if let Some(out) = &cmd.out {
        faultsweep::output::write_atomic(out, format!("{json}\n").as_bytes())?;
    }
    if cmd.json {
        outln!("{json}");
    } else {
        out!("{}", report.table());
    }
    match &report.agreement {
        Some(a) if !a.differing.is_empty() => Err(Error::Verify(a.differing.join("\n"))),
        _ => Ok(()),
    }
}
