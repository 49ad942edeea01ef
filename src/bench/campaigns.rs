//! The cache's benchmark: whole `faultsweep run` commands timed as a user
//! waits for them (start-up, golden pass, injections, results), one child
//! process each, three ways side by side:
//!
//! - `no-cache`: the scenario with the cache off (`--no-cache`);
//! - `cache-cold`: an empty cache folder, filled by the run;
//! - `cache-warm`: a cache filled beforehand (untimed) by a run of the same
//!   scenario with another seed, as a rerun finds it.
//!
//! Every run must give the same `injections.csv`, byte for byte. Ratios are
//! the medians of the per-repeat ratios to the no-cache run of the same
//! repeat (the ways' order rotates between repeats).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{load_avg, median, BenchArgs, Way};
use crate::error::{Error, Result};

/// One way over the repeats.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignWay {
    pub way: Way,
    /// Wall time of each repeat.
    pub secs: Vec<f64>,
    pub median_secs: f64,
    /// Median over repeats of this way's time over no-cache's.
    pub ratio: Option<f64>,
    /// The largest peak resident size over the repeats.
    pub peak_mb: u64,
    /// Median seconds per phase (as `run --timings` prints them).
    pub phases: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignReport {
    pub scenario: PathBuf,
    pub repeat: usize,
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
    pub ways: Vec<CampaignWay>,
    /// The cold run's cache on disk, and per sample of the data set.
    pub cache_bytes: u64,
    pub cache_bytes_per_sample: Option<u64>,
    /// Every run gave the same rows (their `injections.sums`).
    pub identical: bool,
}

/// The ways this module runs.
pub const WAYS: [Way; 3] = [Way::NoCache, Way::CacheCold, Way::CacheWarm];

/// Runs the three ways `args.repeat` times with the binary `exe`.
pub fn run(scenario: &Path, args: &BenchArgs, exe: &Path) -> Result<CampaignReport> {
    let load_before = load_avg();
    let plan = crate::campaign::plan(scenario, &args.run, &crate::faults::Models::default())?;
    let (seed, samples) = (plan.campaign.seed, plan.data.len());
    drop(plan);
    let temp = crate::temps::bench_dir()?;
    let dir = temp.path();
    let run = |way: Way, tag: &str, seed_shift: u64| -> Result<Timed> {
        let cache = match way {
            Way::CacheWarm => dir.join("warm-cache"),
            _ => dir.join(format!("cache-{tag}")),
        };
        let out = dir.join(format!("out-{tag}"));
        let mut c = Command::new(exe);
        if let Some(t) = args.threads {
            c.args(["--threads", &t.to_string()]);
        }
        c.arg("run").arg(scenario).arg("--out").arg(&out);
        c.args(["--quiet", "--timings"])
            .arg("--cache-dir")
            .arg(&cache);
        forward_overrides(&mut c, args, seed + seed_shift);
        if way == Way::NoCache {
            c.arg("--no-cache");
        }
        let started = Instant::now();
        let o = c.output().map_err(|e| Error::io(exe, e))?;
        let secs = started.elapsed().as_secs_f64();
        if !o.status.success() {
            return Err(Error::Usage(format!(
                "bench: {way:?} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            )));
        }
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        // The sums hash every chunk of rows, in either form of the rows.
        let sums = out.join("injections.sums");
        let rows = std::fs::read(&sums).map_err(|e| Error::io(&sums, e))?;
        let cache_bytes = folder_bytes(&cache);
        std::fs::remove_dir_all(&out).map_err(|e| Error::io(&out, e))?;
        if way == Way::CacheCold {
            std::fs::remove_dir_all(&cache).map_err(|e| Error::io(&cache, e))?;
        }
        Ok(Timed {
            secs,
            peak_mb: peak_mb(&text),
            phases: phases(&text),
            rows,
            cache_bytes,
        })
    };
    run(Way::CacheWarm, "fill", 1)?;
    let mut runs: Vec<Vec<Timed>> = WAYS.iter().map(|_| Vec::new()).collect();
    for r in 0..args.repeat.max(1) {
        for k in 0..WAYS.len() {
            let w = (k + r) % WAYS.len();
            runs[w].push(run(WAYS[w], &format!("{r}-{w}"), 0)?);
        }
    }
    let first = &runs[0][0].rows;
    let identical = runs.iter().flatten().all(|t| &t.rows == first);
    let cache_bytes = runs[1][0].cache_bytes;
    let ways = WAYS
        .iter()
        .zip(&runs)
        .map(|(&way, timed)| CampaignWay {
            way,
            secs: timed.iter().map(|t| t.secs).collect(),
            median_secs: median(timed.iter().map(|t| t.secs).collect()),
            ratio: Some(median(
                timed
                    .iter()
                    .zip(&runs[0])
                    .map(|(t, none)| t.secs / none.secs)
                    .collect(),
            )),
            peak_mb: timed.iter().map(|t| t.peak_mb).max().unwrap_or(0),
            phases: median_phases(timed),
        })
        .collect();
    Ok(CampaignReport {
        scenario: scenario.to_path_buf(),
        repeat: args.repeat.max(1),
        load_before,
        load_after: load_avg(),
        ways,
        cache_bytes,
        cache_bytes_per_sample: Some(cache_bytes / samples.max(1) as u64),
        identical,
    })
}

/// One run's wall time, peak memory, phases and rows' sums.
struct Timed {
    secs: f64,
    peak_mb: u64,
    phases: Vec<(String, f64)>,
    rows: Vec<u8>,
    cache_bytes: u64,
}

/// The scenario overrides of `args` as `run` flags, with `seed` (the warm
/// cache is filled with another).
fn forward_overrides(c: &mut Command, args: &BenchArgs, seed: u64) {
    let run = &args.run;
    for (flag, path) in [
        ("--model", &run.model),
        ("--data", &run.data),
        ("--faults", &run.faults),
    ] {
        if let Some(p) = path {
            c.arg(flag).arg(p);
        }
    }
    if let Some(b) = run.batch_size {
        c.args(["--batch-size", &b.to_string()]);
    }
    if let Some(n) = run.injections {
        c.args(["--injections", &n.to_string()]);
    }
    c.args(["--seed", &seed.to_string()]);
}

/// "peak memory N MB" in `run`'s output.
fn peak_mb(text: &str) -> u64 {
    text.split("peak memory ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The phases of `run --timings`: "time: W s wall; NAME S s, NAME S s (...)".
fn phases(text: &str) -> Vec<(String, f64)> {
    let Some(line) = text.lines().find(|l| l.starts_with("time: ")) else {
        return Vec::new();
    };
    let list = line.split("; ").nth(1).unwrap_or("");
    let list = list.split(" (").next().unwrap_or("");
    list.split(", ")
        .filter_map(|part| {
            let (name, secs) = part.strip_suffix(" s")?.rsplit_once(' ')?;
            Some((name.to_string(), secs.parse().ok()?))
        })
        .collect()
}

fn median_phases(timed: &[Timed]) -> Vec<(String, f64)> {
    let Some(first) = timed.first() else {
        return Vec::new();
    };
    (first.phases.iter().enumerate())
        .map(|(i, (name, _))| {
            let secs = timed.iter().filter_map(|t| t.phases.get(i)).map(|p| p.1);
            (name.clone(), median(secs.collect()))
        })
        .collect()
}

/// Bytes of the files in `dir` (0 when it does not exist).
fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

impl CampaignReport {
    /// The table `faultsweep bench --ways no-cache,cache-cold,cache-warm`
    /// prints.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let load = |l: [f64; 3]| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]);
        let _ = writeln!(
            s,
            "bench {} (whole runs, {} repeats)",
            self.scenario.display(),
            self.repeat
        );
        let _ = writeln!(
            s,
            "load {} before, {} after",
            load(self.load_before),
            load(self.load_after)
        );
        let _ = writeln!(
            s,
            "{:<11} {:>9} {:>11} {:>8}  phases (median s)",
            "way", "wall s", "x no-cache", "peak MB"
        );
        for w in &self.ways {
            let phases: Vec<String> = (w.phases.iter())
                .map(|(n, secs)| format!("{n} {secs:.2}"))
                .collect();
            let _ = writeln!(
                s,
                "{:<11} {:>9.2} {:>11} {:>8}  {}",
                w.way.name(),
                w.median_secs,
                w.ratio.map_or("-".into(), |r| format!("{r:.2}")),
                w.peak_mb,
                phases.join(", ")
            );
        }
        let per_sample = self.cache_bytes_per_sample.map_or(String::new(), |b| {
            format!(", {:.2} MB a sample", b as f64 / 1e6)
        });
        let _ = writeln!(
            s,
            "cache after the cold run: {:.1} MB{per_sample}",
            self.cache_bytes as f64 / 1e6
        );
        let _ = writeln!(
            s,
            "rows (their injections.sums): {}",
            match self.identical {
                true => "identical in every run",
                false => "DIFFERS between runs",
            }
        );
        s
    }
}
