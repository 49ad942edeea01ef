//! `faultsweep run`: a whole campaign from a scenario.

use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use faultsweep::campaign::{self, RunArgs};
use faultsweep::error::{Error, Result};

/// What `run` and `bench` take from the command line instead of the
/// scenario's settings.
#[derive(Debug, Args)]
pub struct Overrides {
    /// Replay this fault list (binary, or CSV) instead of generating one; a
    /// CSV list needs only its first ten columns (layer names are resolved
    /// with the model).
    #[arg(long)]
    pub faults: Option<PathBuf>,
    /// Use this model instead of the scenario's.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Use this data set instead of the scenario's.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Cache root (overrides $FAULTSWEEP_CACHE and the scenario; `bench`
    /// defaults to a fresh temporary folder, so the cache fill is measured).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Samples per batch in the golden pass and the most faulty rows per
    /// batch in the injections (default: the scenario's data.batch_size).
    #[arg(long, value_parser = super::positive)]
    pub batch_size: Option<usize>,
    /// Use this seed instead of the scenario's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Injections per sweep point instead of the scenario's
    /// `counts.injections`.
    #[arg(long)]
    pub injections: Option<u64>,
    /// Run without the cache (every prefix recomputed from the input).
    #[arg(long)]
    pub no_cache: bool,
}

impl Overrides {
    /// The paths the effective scenario records (YAML, so UTF-8 text) are
    /// UTF-8; another is refused naming it (exit 2), not a panic later.
    pub fn check_utf8(&self, out: Option<&std::path::Path>) -> Result<()> {
        let flags = [
            ("--model", self.model.as_deref()),
            ("--data", self.data.as_deref()),
            ("--out", out),
        ];
        for (flag, path) in flags {
            if let Some(p) = path.filter(|p| p.to_str().is_none()) {
                return Err(Error::Usage(format!(
                    "{flag} {}: the path is not UTF-8, and the results' scenario.yml could not record it; rename it or link to it from a UTF-8 path",
                    p.to_string_lossy()
                )));
            }
        }
        Ok(())
    }
}

impl From<Overrides> for RunArgs {
    fn from(o: Overrides) -> Self {
        RunArgs {
            model: o.model,
            data: o.data,
            faults: o.faults,
            cache_dir: o.cache_dir,
            batch_size: o.batch_size,
            seed: o.seed,
            injections: o.injections,
            no_cache: o.no_cache,
            ..RunArgs::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct RunCmd {
    /// The scenario (YAML); a results folder's scenario.yml replays its campaign.
    #[arg(required_unless_present = "resume")]
    pub scenario: Option<PathBuf>,
    /// Finish the interrupted campaign in DIR: its finished rows are kept,
    /// the rest runs with the same scenario and fault list.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["scenario", "faults", "out", "model", "data", "batch_size", "seed", "injections", "no_cache"])]
    pub resume: Option<PathBuf>,
    /// Results folder (default: the scenario's outputs.dir, else
    /// results/NAME); one that holds a campaign is refused (--resume DIR
    /// finishes it).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// After the campaign, rerun N seeded random injections as plain full
    /// forward passes and fail if an outcome differs.
    #[arg(long, default_value_t = 0)]
    pub verify: usize,
    /// No progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
    /// Print where the time went: golden pass, reading and recomputing
    /// frontiers, injections, writing results.
    #[arg(long)]
    pub timings: bool,
    /// Run shard I of N (from 1): the runs on a range of samples holding
    /// about 1/N of the work, into a complete results folder; `faultsweep
    /// merge` joins the N folders. With --resume, the recorded shard.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<faultsweep::campaign::Shard>,
}

/// A results folder given on the command line (`report DIR`, `run --resume
/// DIR`) must exist and be a folder; checked before anything inside it is
/// read, so the error says what is wrong with the folder itself (exit 4).
fn results_folder(dir: &std::path::Path) -> Result<()> {
    let msg = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => "is not a folder: give the results folder of a `faultsweep run`",
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "does not exist: give the results folder of a `faultsweep run`"
        }
        Err(e) => return Err(Error::io(dir, e)),
    };
    Err(Error::Data {
        path: dir.to_path_buf(),
        msg: msg.into(),
    })
}

pub fn run(cmd: RunCmd, workers: usize) -> Result<()> {
    cmd.overrides.check_utf8(cmd.out.as_deref())?;
    if let Some(dir) = &cmd.resume {
        results_folder(dir)?;
        // A campaign stopped (a full disk, a kill) before it saved its plan
        // has nothing to resume; say so instead of a bare "not found".
        for f in ["scenario.yml", "faults.bin"] {
            let path = dir.join(f);
            if !path.is_file() {
                return Err(Error::io(
                    &path,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "missing: the campaign stopped before it saved its scenario and fault list, so there is nothing to resume; run the scenario again",
                    ),
                ));
            }
        }
    }
    let mut args = RunArgs {
        shard: cmd.shard,
        resume: cmd.resume.is_some(),
        verify: cmd.verify,
        out: cmd.out,
        workers,
        ..RunArgs::from(cmd.overrides)
    };
    let scenario = match &cmd.resume {
        Some(dir) => {
            args.faults = Some(dir.join("faults.bin"));
            args.out = Some(dir.clone());
            args.shard = resumed_shard(dir, cmd.shard)?;
            dir.join("scenario.yml")
        }
        None => cmd.scenario.clone().expect("clap requires a scenario"),
    };
    let started = std::time::Instant::now();
    let bar = if cmd.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} injections, {per_sec}, ETA {eta}")
            .expect("the template is valid"),
    );
    let report = campaign::run(&scenario, &args, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    if let Some((kept, subset)) = report.correct {
        outln!("data.correct_only: {kept} of {subset} samples kept (classified correctly without faults)");
    }
    if let Some(acc) = report.golden_accuracy {
        outln!("golden top-1 accuracy {:.2}%", 100.0 * acc);
    }
    let n = report.summary.overall().counts.n;
    let secs = started.elapsed().as_secs_f64();
    outln!("{}", report.summary.headline());
    outln!(
        "{n} injections in {secs:.1} s ({:.0} injections/s, golden pass included; peak memory {} MB)",
        n as f64 / secs,
        faultsweep::bench::memory::peak_rss_bytes() >> 20
    );
    outln!(
        "results in {}/ ({}, summary.md/.csv/.json, heatmap.svg, cma.svg, golden.csv)",
        report.out.display(),
        campaign::rows_name(&report.out)
    );
    if cmd.timings {
        print_timings(secs)?;
    }
    if let Some(v) = report.verified {
        outln!(
            "verify: {} injections rerun as full forward passes: {} identical, {} differ only within rounding noise, {} differ",
            v.checked,
            v.exact,
            v.within_rounding,
            v.differing.len()
        );
        if !v.differing.is_empty() {
            return Err(Error::Verify(v.differing.join("\n")));
        }
    }
    Ok(())
}

/// Seconds per phase; the injections' phases are summed over their threads.
fn print_timings(wall: f64) -> Result<()> {
    let phases = faultsweep::phases::seconds();
    let parts: Vec<String> = phases
        .iter()
        .map(|(p, secs)| format!("{} {secs:.2} s", p.name()))
        .collect();
    outln!(
        "time: {wall:.2} s wall; {} (injections summed over threads, reading and recomputing included)",
        parts.join(", ")
    );
    Ok(())
}

/// The shard a resumed folder runs: the one it recorded; `--shard` may
/// repeat it, not change it.
fn resumed_shard(
    dir: &std::path::Path,
    given: Option<faultsweep::campaign::Shard>,
) -> Result<Option<faultsweep::campaign::Shard>> {
    let recorded = campaign::recorded(dir)?.and_then(|p| p.shard);
    match (recorded, given) {
        (Some(r), Some(g)) if r != g => Err(Error::Usage(format!(
            "--shard {g}: {} holds shard {r}",
            dir.display()
        ))),
        (r, g) => Ok(r.or(g)),
    }
}

/// `faultsweep merge OUT DIR...`.
pub fn merge(out: &std::path::Path, dirs: &[std::path::PathBuf]) -> Result<()> {
    for dir in dirs {
        results_folder(dir)?;
    }
    let merged = campaign::merge(out, dirs)?;
    outln!("{}", merged.summary.headline());
    outln!(
        "{} shards merged into {}/: {} runs, as a single run writes them",
        dirs.len(),
        merged.out.display(),
        merged.runs
    );
    Ok(())
}

/// `faultsweep report DIR`.
pub fn report(dir: &std::path::Path) -> Result<()> {
    results_folder(dir)?;
    let checked = campaign::check(dir)?;
    let p = &checked.provenance;
    outln!(
        "{}: {} runs, seed {}, {}",
        dir.display(),
        checked.runs,
        p.seed,
        p.tool
    );
    outln!("model {} (blake3 {})", p.model, p.model_blake3);
    outln!("data {} (blake3 {})", p.data, p.data_blake3);
    outln!("{}", checked.summary.headline());
    outln!(
        "summaries re-derived from {}: identical; every file matches its recorded hash",
        campaign::rows_name(dir)
    );
    Ok(())
}
