//! The speed benchmark (`faultsweep bench`, `cargo bench --bench engine`):
//! one fault list of a scenario run several ways in one invocation, timed
//! side by side, and the engine's outcomes checked against the plain full
//! forward pass.
//!
//! The ways:
//!
//! - [`Way::Engine`]: the campaign's path (`faultsweep run`): cached
//!   frontiers, batches of one sample forking from its golden row, fault
//!   dropping, the list cut into the campaign's chunks.
//! - [`Way::EngineNoDrop`]: the same without fault dropping (every row runs
//!   to the output).
//! - [`Way::SuffixBound`]: the compute that delayed start alone cannot avoid:
//!   for the same chunks and per-cut batches of faulty rows, read the cached
//!   frontier and run the suffix, fault-free, with nothing else (no golden
//!   rows, no fault writes, no per-node checks, no dropping). A row starts
//!   at the first cut the engine reads for it: after a faulted neuron, but
//!   before a node with a faulted weight, which delayed start must run.
//! - [`Way::FullForward`]: PyTorchFI's strategy: every injection runs the
//!   whole model from the input, in batches of the same size, with no cache
//!   and no early exit (the engine in `Mode::FromInput`, fed from the
//!   preprocessed inputs held in memory, so image decoding is not timed).
//!
//! Each way is timed around the injection phase only; the golden pass and
//! the cache fill are timed apart. Peak memory is the resident high-water
//! mark (VmHWM) of the phase: in a child process of the same binary per way
//! and repeat ([`Isolation::Child`], what the CLI does), or in this process
//! after resetting the mark ([`Isolation::InProcess`], where memory the
//! allocator kept from an earlier phase still counts).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use self::memory::{peak_rss_bytes, reset_peak_rss};
use crate::cache::{Reader, Store};
use crate::campaign::{self, Plan, RunArgs};
use crate::error::{Error, Result};
use crate::faults;
use crate::golden::GoldenRun;
use crate::graph::{Graph, Op};
use crate::inject::{
    agreement, on_workers, Agreement, BoxKernels, CachedFrontiers, Engine, Frontiers, Injection,
    InjectionResult, InputFrontiers, Mode, Options, SiteValues,
};
use crate::split;

pub mod campaigns;
pub mod memory;

/// One way of running the fault list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Way {
    Engine,
    #[serde(rename = "engine-nodrop")]
    EngineNoDrop,
    SuffixBound,
    FullForward,
    /// Whole `run` commands (see [`campaigns`]): the cache off, cold, warm.
    NoCache,
    CacheCold,
    CacheWarm,
}

impl Way {
    pub const ALL: [Way; 4] = [
        Way::Engine,
        Way::EngineNoDrop,
        Way::SuffixBound,
        Way::FullForward,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Way::Engine => "engine",
            Way::EngineNoDrop => "engine-nodrop",
            Way::SuffixBound => "suffix-bound",
            Way::FullForward => "full-forward",
            Way::NoCache => "no-cache",
            Way::CacheCold => "cache-cold",
            Way::CacheWarm => "cache-warm",
        }
    }

    pub fn parse(s: &str) -> Option<Way> {
        (Way::ALL.into_iter().chain(campaigns::WAYS)).find(|w| w.name() == s)
    }
}

/// Where each way runs.
#[derive(Debug, Clone)]
pub enum Isolation {
    /// In this process; the memory high-water mark is reset before each way.
    InProcess,
    /// In a child process `exe bench SCENARIO --only WAY ...` per way and
    /// repeat (`exe` is the faultsweep binary), so each way's peak memory is
    /// its own.
    Child { exe: PathBuf },
}

/// What to benchmark and how.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// Overrides of the scenario (model, data, faults, cache_dir,
    /// batch_size, seed). Without `cache_dir` the cache is filled in a fresh
    /// temporary folder, so the fill is measured.
    pub run: RunArgs,
    /// Runs of every way; times are medians, ratios medians of the ratios
    /// of the same repeat. The order of the ways rotates between repeats.
    pub repeat: usize,
    pub ways: Vec<Way>,
    /// Injections per engine call (the campaign's chunk); `None`: the
    /// campaign's, `batch_size * 8`; `Some(0)`: the whole list at once.
    pub chunk: Option<usize>,
    pub isolation: Isolation,
    /// `--threads` given to child processes.
    pub threads: Option<i32>,
}

impl BenchArgs {
    pub fn new(run: RunArgs) -> Self {
        BenchArgs {
            run,
            repeat: 3,
            ways: Way::ALL.to_vec(),
            chunk: None,
            isolation: Isolation::InProcess,
            threads: None,
        }
    }
}

/// The golden pass and the cache.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GoldenTimes {
    /// The fault-free pass over the data set, no cache.
    pub plain_secs: f64,
    /// The same pass filling the cuts the plan stores (or reusing them).
    pub fill_secs: f64,
    pub cuts: usize,
    /// Cuts already in the cache (nothing written for them).
    pub cuts_reused: usize,
    pub cache_disk_bytes: u64,
    pub cache_raw_bytes: u64,
}

/// One way, over the repeats.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WayReport {
    pub way: Way,
    /// Wall time of each repeat, in run order.
    pub secs: Vec<f64>,
    pub median_secs: f64,
    /// CPU time of the process over the same phase, each repeat: on a
    /// shared virtual machine it leaves out the time other guests took
    /// (steal), so its ratios drift less than the wall times'.
    pub cpu_secs: Vec<f64>,
    pub median_cpu_secs: f64,
    pub injections_per_sec: f64,
    /// The largest peak resident size over the repeats.
    pub peak_rss_bytes: u64,
    /// Cuts recomputed instead of read (the most over the repeats; the
    /// choice is timed in each run).
    pub recomputed_cuts: usize,
}

/// Engine against full forward, per injection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgreementCounts {
    pub checked: usize,
    pub exact: usize,
    pub within_rounding: usize,
    pub differing: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub scenario: PathBuf,
    pub model: PathBuf,
    pub data: PathBuf,
    pub samples: usize,
    pub injections: usize,
    /// Distinct start cuts of the injections.
    pub cuts: usize,
    pub batch_size: usize,
    pub chunk: usize,
    pub seed: u64,
    /// Batches run at once, one libtorch thread each (`--threads`).
    pub threads: i32,
    pub cores: usize,
    pub repeat: usize,
    pub isolated: bool,
    /// /proc/loadavg (1, 5, 15 minutes) before and after.
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
    pub golden: GoldenTimes,
    pub ways: Vec<WayReport>,
    /// Full forward over engine: median of the per-repeat ratios.
    pub speedup: Option<f64>,
    /// Engine over suffix bound (below 1: dropping beats the bound).
    pub overhead: Option<f64>,
    /// Engine without dropping over suffix bound.
    pub overhead_nodrop: Option<f64>,
    /// The same three ratios of CPU times.
    pub speedup_cpu: Option<f64>,
    pub overhead_cpu: Option<f64>,
    pub overhead_nodrop_cpu: Option<f64>,
    pub agreement: Option<AgreementCounts>,
    /// Engine outcomes.
    pub outcomes: BTreeMap<String, usize>,
    /// Engine rows finished as masked before the output.
    pub dropped_early: usize,
    /// The multiply-adds the engine ran on whole rows, per injection, as a
    /// share of the model's: from the node where its row joined the batch
    /// to the output (or to where it was dropped as masked). Full forward
    /// runs all of them, so the speedup cannot pass its inverse much.
    #[serde(default)]
    pub whole_row_share: Option<f64>,
    /// The part of it from rows that joined at a node reading a global
    /// pool's output: the pool's mean changed, so every position after a
    /// squeeze-and-excitation block differs, and no exact engine can run
    /// those rows as boxes.
    #[serde(default)]
    pub after_pool_share: Option<f64>,
}

impl Report {
    pub fn way(&self, way: Way) -> Option<&WayReport> {
        self.ways.iter().find(|w| w.way == way)
    }

    /// The table `faultsweep bench` prints.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let load = |l: [f64; 3]| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]);
        let _ = writeln!(s, "bench {}", self.scenario.display());
        let _ = writeln!(
            s,
            "model {}, data {} ({} samples), {} injections over {} cuts, batch {}, chunk {}, seed {}",
            self.model.display(),
            self.data.display(),
            self.samples,
            self.injections,
            self.cuts,
            self.batch_size,
            self.chunk,
            self.seed
        );
        let _ = writeln!(
            s,
            "threads {}, {} cores, {} repeats ({}), load {} before, {} after",
            self.threads,
            self.cores,
            self.repeat,
            if self.isolated {
                "one process per way and repeat"
            } else {
                "in one process"
            },
            load(self.load_before),
            load(self.load_after)
        );
        let g = &self.golden;
        let _ = writeln!(
            s,
            "golden pass {:.3} s without cache, {:.3} s with the cache ({} cuts, {} reused); cache {:.1} MB on disk, {:.1} MB raw",
            g.plain_secs,
            g.fill_secs,
            g.cuts,
            g.cuts_reused,
            g.cache_disk_bytes as f64 / 1e6,
            g.cache_raw_bytes as f64 / 1e6
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<14} {:>10} {:>10} {:>12} {:>10} {:>12}",
            "way", "wall s", "cpu s", "injections/s", "peak MB", "x engine"
        );
        let engine = self.way(Way::Engine).map(|w| w.median_secs);
        for w in &self.ways {
            let _ = writeln!(
                s,
                "{:<14} {:>10.3} {:>10.3} {:>12.1} {:>10.1} {:>12}",
                w.way.name(),
                w.median_secs,
                w.median_cpu_secs,
                w.injections_per_sec,
                w.peak_rss_bytes as f64 / 1e6,
                engine.map_or("-".into(), |e| format!("{:.2}", w.median_secs / e))
            );
        }
        let recomputed: Vec<String> = self
            .ways
            .iter()
            .filter(|w| w.way != Way::FullForward)
            .map(|w| format!("{} {}", w.way.name(), w.recomputed_cuts))
            .collect();
        let _ = writeln!(
            s,
            "cuts recomputed instead of read (of {}): {}",
            g.cuts,
            recomputed.join(", ")
        );
        let _ = writeln!(s);
        let ratio = |wall: Option<f64>, cpu: Option<f64>| {
            let x = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.2}x"));
            format!("{} wall, {} cpu", x(wall), x(cpu))
        };
        let _ = writeln!(
            s,
            "speedup (full forward / engine): {}",
            ratio(self.speedup, self.speedup_cpu)
        );
        let _ = writeln!(
            s,
            "overhead (engine / suffix bound): {}; without dropping: {}",
            ratio(self.overhead, self.overhead_cpu),
            ratio(self.overhead_nodrop, self.overhead_nodrop_cpu)
        );
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !outcomes.is_empty() {
            let _ = writeln!(
                s,
                "engine outcomes: {}; {} masked rows dropped before the output",
                outcomes.join(", "),
                self.dropped_early
            );
        }
        if let (Some(share), Some(pool)) = (self.whole_row_share, self.after_pool_share) {
            let _ = writeln!(
                s,
                "engine rows ran whole for {:.1}% of the model's multiply-adds per injection (full forward: 100%, so at most {:.2}x); {:.1}% after a global pool whose mean the fault changed",
                100.0 * share,
                1.0 / share,
                100.0 * pool
            );
        }
        if let Some(a) = &self.agreement {
            let _ = writeln!(
                s,
                "agreement with full forward: {} injections: {} identical, {} differ only within rounding noise, {} differ",
                a.checked,
                a.exact,
                a.within_rounding,
                a.differing.len()
            );
            for d in a.differing.iter().take(20) {
                let _ = writeln!(s, "  {d}");
            }
        }
        s
    }
}

/// A prepared benchmark: the plan, the golden pass, the cache entries and
/// the engine's injections.
pub struct Setup {
    pub plan: Plan,
    pub injections: Vec<Injection>,
    /// Cache entry of every cut the list needs.
    pub entries: Vec<(usize, PathBuf)>,
    /// The cuts the cut plan recomputes, each with its source cut.
    pub recomputed: BTreeMap<usize, usize>,
    pub golden: GoldenTimes,
    pub cache_dir: PathBuf,
    /// Opens the entries, sharing one chunk cache as a campaign does.
    store: Store,
    /// Batches run at once (see [`Options::workers`]).
    pub workers: usize,
    _temp: Option<tempfile::TempDir>,
}

impl Setup {
    /// Plans the campaign and runs its golden pass, filling (or reusing) the
    /// cache. With `time_plain`, also times a golden pass without cache.
    pub fn new(scenario: &Path, args: &RunArgs, time_plain: bool) -> Result<Setup> {
        let models = faults::Models::default();
        let plan = campaign::plan(scenario, args, &models)?;
        let (cache_dir, temp) = match &args.cache_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = crate::temps::bench_dir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let store = Store::new(&plan.campaign.spec.cache, Some(&cache_dir));
        // The cuts do not depend on the int8 scales: resolve once to learn them.
        let cuts = campaign::Resolver::new(&plan.graph, &HashMap::new(), &models)?.cuts(&plan)?;
        let run = |reads: BTreeMap<usize, u64>, store: Option<&Store>| {
            GoldenRun {
                graph: &plan.graph,
                data: &plan.data,
                cuts: reads.keys().copied().collect(),
                reads: Some(reads),
                store,
                top_k: 5,
            }
            .run()
        };
        let plain_secs = if time_plain {
            let t = Instant::now();
            run(BTreeMap::new(), None)?;
            t.elapsed().as_secs_f64()
        } else {
            0.0
        };
        let t = Instant::now();
        let golden = run(cuts, Some(&store))?;
        let fill_secs = t.elapsed().as_secs_f64();
        let scales = campaign::int8_scales(&golden.ranges);
        let injections = campaign::all_injections(&plan, &plan.graph, &scales, &models)?;
        let (mut disk, mut raw) = (0, 0);
        for (_, path) in &golden.entries {
            let (d, r) = Reader::open(path)?.sizes();
            disk += d;
            raw += r;
        }
        Ok(Setup {
            workers: args.workers,
            golden: GoldenTimes {
                plain_secs,
                fill_secs,
                cuts: golden.entries.len(),
                cuts_reused: golden.reused.len(),
                cache_disk_bytes: disk,
                cache_raw_bytes: raw,
            },
            entries: golden.entries,
            recomputed: golden.recomputed,
            plan,
            injections,
            cache_dir,
            store,
            _temp: temp,
        })
    }

    /// Injections per engine call for `chunk` (see [`BenchArgs::chunk`]).
    pub fn chunk(&self, chunk: Option<usize>) -> usize {
        let batch = self.plan.campaign.spec.data.batch_size.max(1);
        match chunk {
            None => batch * 8,
            Some(0) => self.injections.len().max(1),
            Some(c) => c,
        }
    }

    /// The cached frontiers as the campaign reads them, each cut read or
    /// recomputed (timed here, so within the way's time).
    fn cached(&self) -> Result<CachedFrontiers<'_>> {
        let entries = self
            .entries
            .iter()
            .map(|(c, p)| Ok((*c, self.store.reader(p)?)))
            .collect::<Result<_>>()?;
        let (graph, data) = (&self.plan.graph, &self.plan.data);
        CachedFrontiers::choose(graph, entries, &self.recomputed, data)
    }

    /// The engine's results for the whole list, `chunk` injections a call
    /// in groups of chunks, as the campaign runs them.
    fn run_chunks(&self, engine: &Engine, chunk: usize) -> Result<Vec<InjectionResult>> {
        let lists: Vec<&[Injection]> = self.injections.chunks(chunk).collect();
        let mut results = Vec::with_capacity(self.injections.len());
        for group in lists.chunks(engine.options.lists_at_once()) {
            results.extend(engine.run_lists(group)?.into_iter().flatten());
        }
        Ok(results)
    }

    /// Runs the whole list one way. Returns the wall time, the phase's peak
    /// resident size, and the results (none for the suffix bound).
    pub fn run_way(&self, way: Way, chunk: Option<usize>) -> Result<WayRun> {
        let graph = &self.plan.graph;
        let batch_size = self.plan.campaign.spec.data.batch_size.max(1);
        let chunk = self.chunk(chunk);
        // Data loading is not part of any way: the inputs are in memory first.
        let inputs = match way {
            Way::FullForward => Some(InputFrontiers::load(&self.plan.data)?),
            _ => None,
        };
        reset_peak_rss();
        let cpu_before = cpu_secs();
        let started = Instant::now();
        let mut results = Vec::new();
        let mut recomputed_cuts = 0;
        match way {
            Way::Engine | Way::EngineNoDrop => {
                let cached = self.cached()?;
                recomputed_cuts = cached.recomputed().len();
                let engine = Engine::new(
                    graph,
                    &cached,
                    Options {
                        batch_size,
                        mode: match way {
                            Way::Engine => Mode::Regional,
                            _ => Mode::FromCut,
                        },
                        workers: self.workers,
                        box_kernels: BoxKernels::Checked,
                    },
                );
                results = self.run_chunks(&engine, chunk)?;
            }
            Way::FullForward => {
                let engine = Engine::new(
                    graph,
                    inputs.as_ref().expect("loaded above"),
                    Options {
                        batch_size,
                        mode: Mode::FromInput,
                        workers: self.workers,
                        box_kernels: BoxKernels::Checked,
                    },
                );
                results = self.run_chunks(&engine, chunk)?;
            }
            Way::SuffixBound => {
                let cached = self.cached()?;
                recomputed_cuts = cached.recomputed().len();
                for part in self.injections.chunks(chunk) {
                    suffix_bound(graph, &cached, part, batch_size, self.workers)?;
                }
            }
            Way::NoCache | Way::CacheCold | Way::CacheWarm => {
                return Err(Error::Usage(format!(
                    "{} times whole runs: see bench::campaigns",
                    way.name()
                )))
            }
        }
        Ok(WayRun {
            secs: started.elapsed().as_secs_f64(),
            cpu_secs: cpu_secs() - cpu_before,
            peak_rss_bytes: peak_rss_bytes(),
            recomputed_cuts,
            results,
        })
    }
}

/// One timed run of one way.
pub struct WayRun {
    pub secs: f64,
    pub cpu_secs: f64,
    pub peak_rss_bytes: u64,
    pub recomputed_cuts: usize,
    pub results: Vec<InjectionResult>,
}

/// The suffix passes of `injections`, fault-free: read the cached frontier
/// rows at each injection's first read cut and resume to the output, in
/// batches of `batch_size` rows from one cut, sorted by sample. A weight
/// fault's row so includes its node, which the engine recomputes only for
/// the faulted filters.
fn suffix_bound(
    graph: &Graph,
    frontiers: &dyn Frontiers,
    injections: &[Injection],
    batch_size: usize,
    workers: usize,
) -> Result<()> {
    let mut groups: BTreeMap<usize, Vec<&Injection>> = BTreeMap::new();
    for inj in injections {
        groups.entry(inj.read_cut(graph)).or_default().push(inj);
    }
    let mut batches: Vec<(usize, &[&Injection])> = Vec::new();
    for (cut, group) in &mut groups {
        group.sort_by_key(|i| (i.sample, i.id));
        batches.extend(group.chunks(batch_size).map(|batch| (*cut, batch)));
    }
    on_workers(graph, workers, &batches, |graph, &(cut, batch)| {
        let mut samples: Vec<usize> = batch.iter().map(|i| i.sample).collect();
        samples.dedup();
        let rows = frontiers.rows(graph, cut, &samples)?;
        let layout: Vec<i64> = batch
            .iter()
            .map(|i| samples.binary_search(&i.sample).expect("listed") as i64)
            .collect();
        let layout = Tensor::from_slice(&layout);
        let values: Vec<Tensor> = rows.iter().map(|t| t.index_select(0, &layout)).collect();
        split::resume(graph, cut, &values).map(drop)
    })?;
    Ok(())
}

/// CPU seconds this process has used, all threads (0 where unavailable).
fn cpu_secs() -> f64 {
    crate::kernels::clock::process_cpu_secs()
}

fn load_avg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut v = text
        .split_whitespace()
        .map(|x| x.parse::<f64>().unwrap_or(f64::NAN));
    [(); 3].map(|_| v.next().unwrap_or(f64::NAN))
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs the benchmark: the golden pass and cache fill, then every way
/// `repeat` times (rotating their order), then the agreement check of the
/// first repeat's engine and full-forward results. A differing outcome is
/// reported in [`Report::agreement`], not as an error.
pub fn run(scenario: &Path, args: &BenchArgs) -> Result<Report> {
    let load_before = load_avg();
    let setup = Setup::new(scenario, &args.run, true)?;
    let mut child_args = args.run.clone();
    child_args.cache_dir = Some(setup.cache_dir.clone());
    child_args.seed = Some(setup.plan.campaign.seed);
    let n = setup.injections.len();
    let repeat = args.repeat.max(1);
    let mut ways: Vec<Way> = args.ways.clone();
    ways.sort();
    ways.dedup();
    let mut secs: HashMap<Way, Vec<f64>> = HashMap::new();
    let mut peaks: HashMap<Way, u64> = HashMap::new();
    let mut recomputed: HashMap<Way, usize> = HashMap::new();
    let mut cpu: HashMap<Way, Vec<f64>> = HashMap::new();
    let mut per_repeat: Vec<HashMap<Way, (f64, f64)>> = Vec::new();
    let mut kept: HashMap<Way, Vec<InjectionResult>> = HashMap::new();
    for r in 0..repeat {
        let mut this = HashMap::new();
        for k in 0..ways.len() {
            let way = ways[(k + r) % ways.len()];
            let keep = r == 0 && matches!(way, Way::Engine | Way::FullForward);
            let run = match &args.isolation {
                Isolation::InProcess => setup.run_way(way, args.chunk)?,
                Isolation::Child { exe } => run_child(exe, scenario, &child_args, args, way, keep)?,
            };
            secs.entry(way).or_default().push(run.secs);
            cpu.entry(way).or_default().push(run.cpu_secs);
            let peak = peaks.entry(way).or_default();
            *peak = (*peak).max(run.peak_rss_bytes);
            let cuts = recomputed.entry(way).or_default();
            *cuts = (*cuts).max(run.recomputed_cuts);
            this.insert(way, (run.secs, run.cpu_secs));
            if keep {
                kept.insert(way, run.results);
            }
        }
        per_repeat.push(this);
    }
    let ratio_of = |a: Way, b: Way, time: fn(&(f64, f64)) -> f64| {
        let v: Vec<f64> = per_repeat
            .iter()
            .filter_map(|m| Some(time(m.get(&a)?) / time(m.get(&b)?)))
            .collect();
        (!v.is_empty()).then(|| median(v))
    };
    let ratio = |a, b| ratio_of(a, b, |t| t.0);
    let ratio_cpu = |a, b| ratio_of(a, b, |t| t.1);
    let mut outcomes = BTreeMap::new();
    let mut dropped_early = 0;
    if let Some(engine) = kept.get(&Way::Engine) {
        for r in engine {
            *outcomes.entry(r.outcome().name().to_string()).or_default() += 1;
            dropped_early += usize::from(r.masked_after.is_some());
        }
    }
    let graph = &setup.plan.graph;
    let whole = |after_pool| {
        let results = kept.get(&Way::Engine)?;
        whole_row_share(graph, results, after_pool)
    };
    let (whole_row_share, after_pool_share) = (whole(false), whole(true));
    let agreement = match (kept.get(&Way::Engine), kept.get(&Way::FullForward)) {
        (Some(e), Some(f)) => Some(compare(e, f)),
        _ => None,
    };
    let ways = ways
        .iter()
        .map(|&way| {
            let s = secs.remove(&way).unwrap_or_default();
            let c = cpu.remove(&way).unwrap_or_default();
            let m = median(s.clone());
            WayReport {
                way,
                secs: s,
                median_secs: m,
                median_cpu_secs: median(c.clone()),
                cpu_secs: c,
                injections_per_sec: n as f64 / m,
                peak_rss_bytes: peaks.get(&way).copied().unwrap_or(0),
                recomputed_cuts: recomputed.get(&way).copied().unwrap_or(0),
            }
        })
        .collect();
    let mut cuts: Vec<usize> = (setup.injections.iter())
        .map(|i| i.start_cut(graph))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let spec = &setup.plan.campaign.spec;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Ok(Report {
        scenario: scenario.to_path_buf(),
        model: spec.model.path.clone(),
        data: spec.data.path.clone(),
        samples: setup.plan.data.len(),
        injections: n,
        cuts: cuts.len(),
        batch_size: spec.data.batch_size,
        chunk: setup.chunk(args.chunk),
        seed: setup.plan.campaign.seed,
        threads: match args.isolation {
            Isolation::InProcess => args.run.workers.max(1) as i32,
            Isolation::Child { .. } => args.threads.unwrap_or(cores as i32),
        },
        cores,
        repeat,
        isolated: matches!(args.isolation, Isolation::Child { .. }),
        load_before,
        load_after: load_avg(),
        golden: setup.golden.clone(),
        ways,
        speedup: ratio(Way::FullForward, Way::Engine),
        overhead: ratio(Way::Engine, Way::SuffixBound),
        overhead_nodrop: ratio(Way::EngineNoDrop, Way::SuffixBound),
        speedup_cpu: ratio_cpu(Way::FullForward, Way::Engine),
        overhead_cpu: ratio_cpu(Way::Engine, Way::SuffixBound),
        overhead_nodrop_cpu: ratio_cpu(Way::EngineNoDrop, Way::SuffixBound),
        agreement,
        outcomes,
        dropped_early,
        whole_row_share,
        after_pool_share,
    })
}

/// [`Report::whole_row_share`] of the engine's `results` (with
/// `after_pool`, [`Report::after_pool_share`]); `None` for a model without
/// multiply-adds.
fn whole_row_share(graph: &Graph, results: &[InjectionResult], after_pool: bool) -> Option<f64> {
    let macs: Vec<i64> = (crate::inspect::inspect(graph).ok()?.nodes.iter())
        .map(|n| n.macs)
        .collect();
    let total: i64 = macs.iter().sum();
    if total == 0 || results.is_empty() {
        return None;
    }
    let whole: i64 = (results.iter())
        .filter(|r| !after_pool || r.whole_from.is_some_and(|k| reads_a_pool(graph, k)))
        .filter_map(|r| {
            let last = r.masked_after.unwrap_or(macs.len() - 1);
            Some(macs.get(r.whole_from?..=last)?.iter().sum::<i64>())
        })
        .sum();
    Some(whole as f64 / (total as f64 * results.len() as f64))
}

/// Whether node `k` reads the output of a global pool.
fn reads_a_pool(graph: &Graph, k: usize) -> bool {
    let Some(node) = graph.nodes.get(k) else {
        return false;
    };
    node.inputs.iter().flatten().any(|id| {
        (graph.nodes.iter()).any(|n| {
            n.outputs.contains(id) && matches!(n.op, Op::GlobalAveragePool | Op::GlobalMaxPool)
        })
    })
}

/// Checks every injection's engine outcome against its full-forward outcome.
pub fn compare(engine: &[InjectionResult], full: &[InjectionResult]) -> AgreementCounts {
    let by_id: HashMap<usize, &InjectionResult> = full.iter().map(|r| (r.id, r)).collect();
    let mut counts = AgreementCounts::default();
    for e in engine {
        counts.checked += 1;
        let Some(f) = by_id.get(&e.id) else {
            counts
                .differing
                .push(format!("injection {}: no full-forward result", e.id));
            continue;
        };
        match agreement(e, f) {
            Agreement::Exact => counts.exact += 1,
            Agreement::WithinRounding => counts.within_rounding += 1,
            Agreement::Differs => counts.differing.push(format!(
                "injection {} (sample {}): engine {}, full forward {}",
                e.id,
                e.sample,
                e.outcome().name(),
                f.outcome().name()
            )),
        }
    }
    counts
}

/// What a child process reports on its standard output (one JSON line).
#[derive(Debug, Serialize, Deserialize)]
pub struct ChildMeasure {
    pub way: Way,
    pub secs: f64,
    pub cpu_secs: f64,
    pub peak_rss_bytes: u64,
    pub recomputed_cuts: usize,
}

/// An injection result as a child process hands it back (bincode).
#[derive(Serialize, Deserialize)]
struct SavedResult {
    id: usize,
    sample: usize,
    sites: Vec<(f64, f64)>,
    golden: Vec<f32>,
    output: Option<Vec<f32>>,
    diff: crate::classify::OutputDiff,
    masked_after: Option<usize>,
    first_nonfinite: Option<usize>,
    detected: bool,
    whole_from: Option<usize>,
    error: Option<String>,
}

fn floats(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_kind(Kind::Float).flatten(0, -1)).unwrap_or_default()
}

impl From<&InjectionResult> for SavedResult {
    fn from(r: &InjectionResult) -> Self {
        SavedResult {
            id: r.id,
            sample: r.sample,
            sites: r.sites.iter().map(|s| (s.original, s.faulty)).collect(),
            golden: floats(&r.golden),
            output: r.output.as_ref().map(floats),
            diff: r.diff.clone(),
            masked_after: r.masked_after,
            first_nonfinite: r.first_nonfinite,
            detected: r.detected,
            whole_from: r.whole_from,
            error: r.error.clone(),
        }
    }
}

impl From<SavedResult> for InjectionResult {
    fn from(s: SavedResult) -> Self {
        InjectionResult {
            id: s.id,
            sample: s.sample,
            sites: s
                .sites
                .into_iter()
                .map(|(original, faulty)| SiteValues { original, faulty })
                .collect(),
            golden: Tensor::from_slice(&s.golden),
            output: s.output.map(|o| Tensor::from_slice(&o)),
            diff: s.diff,
            masked_after: s.masked_after,
            first_nonfinite: s.first_nonfinite,
            detected: s.detected,
            whole_from: s.whole_from,
            error: s.error,
        }
    }
}

/// Writes results for the parent process.
pub fn save_results(results: &[InjectionResult], path: &Path) -> Result<()> {
    let saved: Vec<SavedResult> = results.iter().map(SavedResult::from).collect();
    let bytes = bincode::serialize(&saved).expect("results serialize");
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

fn load_results(path: &Path) -> Result<Vec<InjectionResult>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let saved: Vec<SavedResult> = bincode::deserialize(&bytes).map_err(|e| Error::Data {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    Ok(saved.into_iter().map(InjectionResult::from).collect())
}

/// Runs one way in `exe bench SCENARIO --only WAY`, with the same
/// overrides, the parent's cache and seed, and `keep`: its results.
fn run_child(
    exe: &Path,
    scenario: &Path,
    run: &RunArgs,
    args: &BenchArgs,
    way: Way,
    keep: bool,
) -> Result<WayRun> {
    let mut cmd = std::process::Command::new(exe);
    if let Some(t) = args.threads {
        cmd.arg("--threads").arg(t.to_string());
    }
    cmd.arg("bench").arg(scenario).arg("--only").arg(way.name());
    let paths = [
        ("--model", &run.model),
        ("--data", &run.data),
        ("--faults", &run.faults),
        ("--cache-dir", &run.cache_dir),
    ];
    for (flag, value) in paths {
        if let Some(v) = value {
            cmd.arg(flag).arg(v);
        }
    }
    if let Some(b) = run.batch_size {
        cmd.arg("--batch-size").arg(b.to_string());
    }
    if let Some(s) = run.seed {
        cmd.arg("--seed").arg(s.to_string());
    }
    if let Some(n) = run.injections {
        cmd.arg("--injections").arg(n.to_string());
    }
    if run.no_cache {
        cmd.arg("--no-cache");
    }
    if let Some(c) = args.chunk {
        cmd.arg("--chunk").arg(c.to_string());
    }
    let results_dir = crate::temps::bench_dir()?;
    let results_path = results_dir.path().join("results.bin");
    if keep {
        cmd.arg("--results-file").arg(&results_path);
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Error::io(exe, e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(Error::Usage(format!(
            "bench child `{}` for {} failed ({}): {stdout}",
            exe.display(),
            way.name(),
            out.status
        )));
    }
    let line = stdout.lines().last().unwrap_or_default();
    let m: ChildMeasure = serde_json::from_str(line).map_err(|e| {
        Error::Usage(format!(
            "bench child for {}: unreadable report {line:?}: {e}",
            way.name()
        ))
    })?;
    Ok(WayRun {
        secs: m.secs,
        cpu_secs: m.cpu_secs,
        peak_rss_bytes: m.peak_rss_bytes,
        recomputed_cuts: m.recomputed_cuts,
        results: if keep {
            load_results(&results_path)?
        } else {
            vec![]
        },
    })
}

/// The child side of [`Isolation::Child`]: one way, one run; prints a
/// [`ChildMeasure`] line and, with `results`, saves the results there.
pub fn run_one(
    scenario: &Path,
    run: &RunArgs,
    way: Way,
    chunk: Option<usize>,
    results: Option<&Path>,
) -> Result<ChildMeasure> {
    let setup = Setup::new(scenario, run, false)?;
    let r = setup.run_way(way, chunk)?;
    if let Some(path) = results {
        save_results(&r.results, path)?;
    }
    Ok(ChildMeasure {
        way,
        secs: r.secs,
        cpu_secs: r.cpu_secs,
        peak_rss_bytes: r.peak_rss_bytes,
        recomputed_cuts: r.recomputed_cuts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::OutputDiff;

    fn result(whole_from: Option<usize>, masked_after: Option<usize>) -> InjectionResult {
        InjectionResult {
            id: 0,
            sample: 0,
            sites: vec![],
            golden: Tensor::zeros([1], (Kind::Float, tch::Device::Cpu)),
            output: None,
            diff: OutputDiff::default(),
            masked_after,
            first_nonfinite: None,
            detected: false,
            whole_from,
            error: None,
        }
    }

    /// Whole rows from the input cost the whole model, boxes nothing, and
    /// a row that joins after a squeeze-and-excitation block's pool counts
    /// toward both shares.
    #[test]
    fn whole_row_shares_weigh_each_row_by_the_multiply_adds_it_ran() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/models/mobilenet_v3_small_ts17.onnx"
        );
        let graph = crate::load::load(path).unwrap();
        let share = |rows: &[InjectionResult], pool| whole_row_share(&graph, rows, pool).unwrap();
        assert_eq!(share(&[result(Some(0), None)], false), 1.0);
        assert_eq!(
            share(&[result(None, None), result(Some(0), None)], false),
            0.5
        );
        assert_eq!(share(&[result(Some(0), None)], true), 0.0);
        let after = (0..graph.nodes.len())
            .find(|&k| reads_a_pool(&graph, k))
            .unwrap();
        let joined = [result(Some(after), None)];
        let part = share(&joined, false);
        assert!(part > 0.0 && part < 1.0);
        assert_eq!(share(&joined, true), part);
        let dropped = share(&[result(Some(after), Some(after + 1))], false);
        assert!(dropped < part, "a row dropped as masked stops costing");
    }
}
