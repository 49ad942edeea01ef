//! The whole campaign (`faultsweep run`): scenario -> golden run and cache ->
//! fault list -> engine -> results directory.
//!
//! Neuron and weight faults, any fault model and number format, several
//! faults per inference, transient or permanent: a permanent fault runs once
//! per sample of its scope (`runs`). Hardened models (Ranger, Clipper, a
//! second model file) run the same fault list and report their outcomes in
//! the same rows.
//!
//! Invariants of a results folder: one process writes it at a time (a lock
//! on `DIR/.lock`); its scenario names every path absolutely, so it resumes
//! and reports from any directory; `provenance.json` exists before the first
//! row, and a resume refuses inputs whose hashes differ from it; a row
//! counts as finished only when its chunk's line in `injections.sums`
//! matches it.

mod detections;
mod merge;
mod parquet;
mod provenance;
mod results;
mod rows;
mod runs;
mod shard;
mod verify;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use merge::merge;
pub use provenance::{check, recorded, summary_files, Checked, Provenance};
pub use results::Tally;
pub use rows::rows_name;
pub use runs::{
    all_injections, injections, int8_scales, run_count, windows, Resolver, Run, Window,
};
pub use shard::{Part, Shard};

use crate::cache::Store;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::faults::{self, Fault};
use crate::golden::{self, Golden, GoldenRun, NodeRange};
use crate::graph::{Graph, Guard, GuardKind};
use crate::inject::{
    BoxKernels, CachedFrontiers, ComputedFrontiers, Engine, Frontiers, Injection, InjectionResult,
    Mode, Options, PartFrontiers,
};
use crate::phases::{timed, Phase};
use crate::report::Summary;
use crate::scenario::{self, Campaign, Scenario};
use provenance::write_provenance;
use results::Layout;
use rows::Rows;

/// Command-line overrides of a scenario.
#[derive(Debug, Default, Clone)]
pub struct RunArgs {
    /// The model file, instead of the scenario's.
    pub model: Option<PathBuf>,
    /// The data set, instead of the scenario's.
    pub data: Option<PathBuf>,
    /// A fault list (binary or CSV) to run instead of generating one.
    pub faults: Option<PathBuf>,
    /// Results folder: replaces the scenario's `outputs.dir`, so the
    /// effective scenario records it.
    pub out: Option<PathBuf>,
    /// Cache root (overrides `$FAULTSWEEP_CACHE` and the default `cache/`).
    pub cache_dir: Option<PathBuf>,
    /// Rows per engine batch, instead of the scenario's.
    pub batch_size: Option<usize>,
    /// Use this seed instead of the scenario's.
    pub seed: Option<u64>,
    /// Injections per sweep point instead of the scenario's.
    pub injections: Option<u64>,
    /// Turn the cache off.
    pub no_cache: bool,
    /// Rerun this many injections (seeded choice) as plain full forward passes.
    pub verify: usize,
    /// Continue the campaign in `out`, keeping its finished rows.
    pub resume: bool,
    /// Batches of injections run at once, each on its own thread (0: one).
    pub workers: usize,
    /// Run only this shard's part of the campaign.
    pub shard: Option<Shard>,
}

/// What a finished run reports.
pub struct RunReport {
    /// The results folder.
    pub out: PathBuf,
    /// The outcome summaries.
    pub summary: Summary,
    /// Top-1 accuracy of the fault-free pass over the labelled samples.
    pub golden_accuracy: Option<f64>,
    /// With `data.correct_only`: the samples kept and those of the subset
    /// ([`Plan::correct`]).
    pub correct: Option<(usize, usize)>,
    /// The `--verify` check of the engine against full forward passes.
    pub verified: Option<VerifyReport>,
}

/// What `--verify` found: engine rows against full forward passes.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Runs checked.
    pub checked: usize,
    /// Runs whose outputs were bitwise equal.
    pub exact: usize,
    /// Runs equal within rounding (no outcome changed).
    pub within_rounding: usize,
    /// The runs that differ, described.
    pub differing: Vec<String>,
}

impl VerifyReport {
    fn merge(&mut self, other: VerifyReport) {
        self.checked += other.checked;
        self.exact += other.exact;
        self.within_rounding += other.within_rounding;
        self.differing.extend(other.differing);
    }
}

/// The plan of a campaign, resolved from a scenario and its overrides.
pub struct Plan {
    /// The validated scenario.
    pub campaign: Campaign,
    /// The loaded model.
    pub graph: Graph,
    /// The data set the faults' samples index.
    pub data: Dataset,
    /// Where the fault list comes from.
    pub faults: FaultSource,
    /// With `data.correct_only`: the samples kept (those the fault-free
    /// model classifies correctly, now `data`) and the samples of the
    /// subset they were chosen from.
    pub correct: Option<(usize, usize)>,
    /// The shard this plan runs (`run --shard I/N`), if any: only its
    /// samples' runs.
    pub shard: Option<Part>,
    /// The boxes of `detection.annotations`, in input pixels, per sample id.
    pub truth: Option<crate::data::annotations::Truth>,
}

/// Where the plan's fault list comes from. It is read a row at a time on
/// every pass ([`Plan::fault_rows`]), never held whole.
pub struct FaultSource {
    /// What the list was generated from (empty for imported CSV).
    pub meta: faults::Meta,
    /// The list file (binary or CSV); `None`: generated from the scenario.
    pub file: Option<PathBuf>,
}

impl Plan {
    /// Whether a fault of the list is injected in the int8 format, whose
    /// scale comes from the golden range.
    fn has_int8_faults(&self) -> Result<bool> {
        for fault in self.fault_rows()? {
            if fault?.dtype == faults::NumFormat::Int8 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The samples of the fault-free pass and the cache entries: a shard's
    /// own, else the whole subset; and the position of the first.
    pub fn own_data(&self) -> (&Dataset, usize) {
        match &self.shard {
            Some(part) => (&part.data, part.samples.start as usize),
            None => (&self.data, 0),
        }
    }

    /// The rows of the fault list, each checked against the model when
    /// read from a file.
    pub fn fault_rows(&self) -> Result<faults::Rows<'_>> {
        match &self.faults.file {
            None => Ok(Box::new(faults::stream(&self.campaign).map(Ok))),
            Some(path) => {
                let sites = Some(&self.campaign.sites);
                Ok(faults::rows(path, sites, Some(self.campaign.samples))?.1)
            }
        }
    }
}

/// The plan of the scenario at `scenario_path`; a `custom` fault model must
/// be registered in `models`.
pub fn plan(scenario_path: &Path, args: &RunArgs, models: &faults::Models) -> Result<Plan> {
    plan_scenario(Scenario::load(scenario_path)?, args, models)
}

/// As [`plan`], for a scenario built in code (see `examples/library.rs`).
pub fn plan_scenario(sc: Scenario, args: &RunArgs, models: &faults::Models) -> Result<Plan> {
    plan_with(sc, args, Some(models))
}

/// As [`plan`] for a campaign that is only read (`report`), whatever
/// custom models it names.
fn plan_recorded(scenario_path: &Path, args: &RunArgs) -> Result<Plan> {
    plan_with(Scenario::load(scenario_path)?, args, None)
}

fn plan_with(mut sc: Scenario, args: &RunArgs, models: Option<&faults::Models>) -> Result<Plan> {
    if let Some(m) = &args.model {
        sc.spec.model.path = m.clone();
    }
    if let Some(d) = &args.data {
        sc.spec.data.path = d.clone();
    }
    sc.spec.seed = args.seed.or(sc.spec.seed);
    if let Some(b) = args.batch_size {
        sc.spec.data.batch_size = b;
    }
    if let Some(n) = args.injections {
        sc.spec.counts.injections = Some(n);
    }
    if args.no_cache {
        sc.spec.cache.enabled = false;
    }
    // The effective scenario records the folder the results go to.
    if let Some(out) = &args.out {
        sc.spec.outputs.dir = Some(out.clone());
    }
    absolute_paths(&mut sc.spec)?;
    let mut graph = crate::load::load_with(&sc.spec.model.path, &sc.spec.model.edits())
        .map_err(|e| at_edit_key(&sc, e))?;
    reshape_input(&sc, &mut graph)?;
    let mut data = Dataset::open_for(&sc.spec.data, &graph.inputs, |m| sc.error("data.subset", m))?;
    // Before cuts are chosen: where the rows align decides where runs resume.
    if !data.is_empty() {
        graph.learn_layout(&data.batch(0..1)?.inputs)?;
    }
    let len = Some(data.total_len() as u64);
    let correct = match sc.spec.data.correct_only {
        true => Some(keep_correct(&sc, &mut graph, &mut data, args)?),
        false => None,
    };
    let kept = correct.map(|(kept, _)| kept as u64);
    let campaign = sc.validate_kept(&graph, len, kept, models)?;
    graph.monitors = campaign.monitor.iter().copied().collect();
    graph.judged = campaign.judged;
    graph.task = std::sync::Arc::new(campaign.task.clone());
    check_task(&sc, &graph, &data)?;
    // Only a whole campaign (or a merge, which reads them itself) writes
    // `detections/`: a shard and `report` leave the annotations unread.
    let truth = match models.is_some() && args.shard.is_none() {
        true => detections::ground_truth(&sc, &graph, &data)?,
        false => None,
    };
    let faults = match &args.faults {
        // With the scenario's model, so a CSV list from another tool (no
        // `node` column) opens: its rows are resolved when read.
        Some(path) => FaultSource {
            meta: faults::rows(path, Some(&campaign.sites), Some(campaign.samples))?.0,
            file: Some(path.clone()),
        },
        None => FaultSource {
            meta: faults::generated_meta(&campaign),
            file: None,
        },
    };
    let mut plan = Plan {
        campaign,
        graph,
        data,
        faults,
        correct,
        shard: None,
        truth,
    };
    if let Some(shard) = args.shard {
        plan.shard = Some(shard::part(&plan, shard)?);
    }
    Ok(plan)
}

/// A `model.outputs` or `model.free_batch` that does not fit the model, as
/// an error at that key of the scenario (exit 8, with its line).
fn at_edit_key(sc: &Scenario, e: Error) -> Error {
    match e {
        Error::ModelEdit { path, key, msg } => sc.error(key, format!("{msg} ({})", path.display())),
        e => e,
    }
}

/// `model.input_shape`: the first input's declared shape replaced.
fn reshape_input(sc: &Scenario, graph: &mut Graph) -> Result<()> {
    let Some(shape) = &sc.spec.model.input_shape else {
        return Ok(());
    };
    if let Some(d) = shape.iter().flatten().find(|&&d| d < 1) {
        return Err(sc.error(
            "model.input_shape",
            format!("{d} is not a dimension (at least 1, or ~ for any)"),
        ));
    }
    let Some(input) = graph.inputs.first_mut() else {
        return Err(sc.error("model.input_shape", "the model has no input"));
    };
    input.dims = Some(shape.clone());
    Ok(())
}

/// The task reads the outputs of the first sample (so a decoder given the
/// wrong output, or an output of the wrong shape, fails here, naming the
/// scenario key, not in every injection).
fn check_task(sc: &Scenario, graph: &Graph, data: &Dataset) -> Result<()> {
    if *graph.task == crate::classify::Task::Classification || data.is_empty() {
        return Ok(());
    }
    let outputs = graph.forward(&data.batch(0..1)?.inputs)?;
    match graph.task.judge(&outputs, 0, 0) {
        Ok(_) => Ok(()),
        Err(e) => Err(sc.error(
            "task",
            format!("the model's outputs on the first sample: {e}"),
        )),
    }
}

/// `data.correct_only` (PyTorchFI's practice): narrows `data` to the
/// samples of its subset that the fault-free model classifies correctly
/// (top-1 of the judged output equals the label), renumbered in order; the
/// samples kept and those of the subset. The fault-free results come from
/// the cache when it holds them (a few bytes a sample; no frontier is
/// stored), so `--resume` and `report` find the same samples cheaply.
fn keep_correct(
    sc: &Scenario,
    graph: &mut Graph,
    data: &mut Dataset,
    args: &RunArgs,
) -> Result<(usize, usize)> {
    let key = "data.correct_only";
    // The task's own check says why.
    sc.task(graph, 0)?;
    if !data.has_labels() {
        return Err(sc.error(
            key,
            "needs labels (`data.labels`, or an image folder with class folders): it keeps the samples whose fault-free top-1 class is their label",
        ));
    }
    graph.judged = sc.judged(graph)?;
    let store = Store::new(&sc.spec.cache, args.cache_dir.as_deref());
    let run = GoldenRun {
        graph,
        data,
        cuts: vec![],
        reads: None,
        store: sc.spec.cache.enabled.then_some(&store),
        top_k: 5,
    };
    let golden = timed(Phase::Golden, || run.run())?;
    let keep: Vec<usize> = (golden.rows.iter().enumerate())
        .filter(|(_, r)| r.correct == Some(true))
        .map(|(i, _)| i)
        .collect();
    let subset = data.len();
    if keep.is_empty() {
        return Err(sc.error(
            key,
            format!("the fault-free model classifies none of the {subset} samples of the subset correctly: no sample is left to inject into"),
        ));
    }
    data.retain(&keep);
    Ok((keep.len(), subset))
}

/// The results folder and the cache, both absolute and recorded in the
/// effective scenario (validation filled the folder in: `--out`, else the
/// scenario's, else results/NAME).
fn record_folders(plan: &mut Plan, args: &RunArgs) -> Result<(PathBuf, Store)> {
    let spec = &mut plan.campaign.spec;
    let out = spec.outputs.dir.clone().unwrap_or_default();
    let out = std::path::absolute(&out).map_err(|e| Error::io(&out, e))?;
    spec.outputs.dir = Some(out.clone());
    let mut store = Store::new(&spec.cache, args.cache_dir.as_deref());
    store.root = std::path::absolute(&store.root).map_err(|e| Error::io(&store.root, e))?;
    spec.cache.dir = Some(store.root.clone());
    Ok((out, store))
}

/// Makes the scenario's paths absolute, so the saved scenario resumes,
/// replays and reports from any working directory.
fn absolute_paths(spec: &mut scenario::ScenarioSpec) -> Result<()> {
    let abs = |p: &mut PathBuf| -> Result<()> {
        *p = std::path::absolute(&*p).map_err(|e| Error::io(&*p, e))?;
        Ok(())
    };
    abs(&mut spec.model.path)?;
    abs(&mut spec.data.path)?;
    // The labels of a .npz data set may name an array in it, not a file.
    let npz = spec.data.path.extension().is_some_and(|e| e == "npz");
    let labels = (spec.data.labels.as_mut()).filter(|l| !npz || l.exists());
    let optional = [
        labels,
        spec.mitigations.hardened_model.as_mut(),
        spec.outputs.dir.as_mut(),
        spec.cache.dir.as_mut(),
        (spec.detection.as_mut()).and_then(|d| d.annotations.as_mut()),
    ];
    for p in optional.into_iter().flatten() {
        abs(p)?;
    }
    Ok(())
}

/// Runs the campaign; `progress` hears (injections done, total) after
/// every chunk.
pub fn run(
    scenario_path: &Path,
    args: &RunArgs,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunReport> {
    run_with_models(scenario_path, args, &faults::Models::default(), progress)
}

/// As [`run`], with custom fault models (`custom:NAME` in scenarios and
/// fault lists) registered in `models`.
pub fn run_with_models(
    scenario_path: &Path,
    args: &RunArgs,
    models: &faults::Models,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunReport> {
    let mut plan = plan(scenario_path, args, models)?;
    let (out, store) = record_folders(&mut plan, args)?;
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    // Held until this function returns or the process ends in any way.
    let _lock = crate::lock::try_lock(&out.join(LOCK), "the results folder")?;
    let total;
    // A resumed run keeps the recorded scenario and checks its inputs
    // against the record; without one (killed before writing it) no row
    // is trusted.
    let recorded = match args.resume {
        true => {
            save_faults(&mut plan, &out.join("faults.bin"))?;
            total = run_count(&plan)?;
            provenance::check_inputs(&out, &plan, total)?
        }
        false => {
            refuse_campaign_folder(&out)?;
            // The fault list first: a folder with a scenario can resume.
            save_faults(&mut plan, &out.join("faults.bin"))?;
            scenario::save(&plan.campaign.spec, &out.join("scenario.yml"))?;
            total = run_count(&plan)?;
            false
        }
    };
    if !recorded {
        write_provenance(&out, &Provenance::of(&plan, total)?)?;
    }
    let spec = &plan.campaign.spec;
    let whole = whole_ranges(&plan, &store)?;
    let whole_scales = whole.as_deref().map(int8_scales);
    let plain = Model::prepare(&plan, &plan.graph, whole_scales.as_ref(), &store, models)?;
    golden::write_golden_csv(&out.join("golden.csv"), &plain.golden.rows)?;
    // A shard's own ranges: the merge combines them.
    golden::write_ranges_csv(&out.join("ranges.csv"), &plain.golden.ranges)?;
    let ranges = whole.as_deref().unwrap_or(&plain.golden.ranges);
    let scales = int8_scales(ranges);
    let hardened_graphs = hardened_models(&plan, ranges)?;
    let hardened: Vec<Model> = hardened_graphs
        .iter()
        .map(|(_, g)| Model::prepare(&plan, g, Some(&scales), &store, models))
        .collect::<Result<_>>()?;
    let names: Vec<String> = hardened_graphs.iter().map(|(n, _)| n.clone()).collect();
    let layout = Layout {
        hardened: &names,
        top_k: i64::from(spec.outputs.top_k),
        save_outputs: spec.outputs.save_outputs,
        task: &plan.graph.task,
    };

    let options = Options {
        batch_size: spec.data.batch_size,
        mode: Mode::Regional,
        workers: args.workers,
        box_kernels: BoxKernels::Checked,
    };
    let step = options.batch_size.max(1) * 8;
    let (format, header) = (spec.outputs.injections, layout.header());
    let (mut rows, done, mut tally) = match recorded {
        true => Rows::resume(&out, format, &plan, step, &header)?,
        false => (Rows::create(&out, format, &header)?, 0, Tally::new(&plan)),
    };
    // Only the runs --verify rechecks stay in memory.
    let to_verify = verify::pick(plan.campaign.seed, done..total, args.verify);
    let mut kept: Vec<verify::Kept> = (0..=hardened.len()).map(|_| BTreeMap::new()).collect();
    let plain_engine = plain.engine(options);
    let hardened_engines: Vec<(&Model, Engine)> =
        hardened.iter().map(|m| (m, m.engine(options))).collect();
    for window in windows(&plan)? {
        let window = window?;
        let chunks: Vec<Range<usize>> = window.chunks(step).filter(|c| c.start >= done).collect();
        for chunks in chunks.chunks(options.lists_at_once()) {
            let plain_results = plain.run(&plain_engine, &window, chunks)?;
            // Each hardened model's results, in run order across the chunks.
            let mut hardened_results: Vec<_> = hardened_engines
                .iter()
                .map(|(m, engine)| Ok(m.run(engine, &window, chunks)?.into_iter().flatten()))
                .collect::<Result<_>>()?;
            for (chunk, plain_results) in chunks.iter().zip(plain_results) {
                for r in plain_results {
                    let others: Vec<InjectionResult> = hardened_results
                        .iter_mut()
                        .map(|h| h.next().expect("one result per run"))
                        .collect();
                    let faults = window.faults(r.id);
                    let facts = layout.facts(&plan, &r, &others, &names);
                    timed(Phase::Writing, || {
                        layout.record(&plan, faults, (&r, &others), &facts, &mut rows)
                    })?;
                    tally.add(&plan, faults, &facts);
                    if to_verify.contains(&r.id) {
                        let models = std::iter::once(&plain).chain(&hardened);
                        let results = std::iter::once(r).chain(others);
                        for ((model, kept), result) in models.zip(&mut kept).zip(results) {
                            let injection = model.injections.injection(&window, result.id)?;
                            kept.insert(result.id, (injection, result));
                        }
                    }
                }
                let window_end = chunk.end == window.ids().end;
                timed(Phase::Writing, || rows.flushed(chunk.end, window_end))?;
                progress(chunk.end, total);
            }
        }
    }
    let (summary, cells) = tally.finish(&plan);
    let provenance = Provenance::of(&plan, total)?;
    for (name, text) in summary_files(&plan, &provenance, &summary, &cells) {
        crate::output::write_atomic(&out.join(name), text.as_bytes())?;
    }
    write_provenance(&out, &provenance)?;
    // A shard's SDE runs are its own: a merge does not combine pictures.
    if plan.shard.is_none() {
        timed(Phase::Writing, || {
            detections::write(&plan, plain.graph, &plain.injections, &out, args.workers)
        })?;
    }
    let verified = (args.verify > 0)
        .then(|| {
            let models = std::iter::once(&plain).chain(&hardened);
            let mut report = VerifyReport::default();
            for (model, kept) in models.zip(&kept) {
                report.merge(verify::verify(&plan, model.graph, kept, args.workers)?);
            }
            Ok(report)
        })
        .transpose()?;
    Ok(RunReport {
        out,
        summary,
        golden_accuracy: plain.golden.accuracy(),
        correct: plan.correct,
        verified,
    })
}

/// The lock file of a results folder: one process writes a campaign at a
/// time (see `crate::lock`).
pub const LOCK: &str = ".lock";

/// A fresh run never writes over a campaign (its scenario, written after
/// its fault list, or rows): an unfinished one is resumed, a finished one
/// kept. A fault list alone is a run killed before it recorded anything.
fn refuse_campaign_folder(out: &Path) -> Result<()> {
    let Some(found) = ["scenario.yml", "injections.csv", parquet::FOLDER]
        .into_iter()
        .find(|f| out.join(f).exists())
    else {
        return Ok(());
    };
    Err(Error::Data {
        path: out.to_path_buf(),
        msg: format!(
            "holds a campaign ({found}); `faultsweep run --resume {}` finishes it if it is unfinished, or give another folder with --out (or remove this one)",
            out.display()
        ),
    })
}

/// Writes the plan's fault list to `path` (the results folder's copy) and
/// reads it from there on. A resumed run reads the copy it wrote.
fn save_faults(plan: &mut Plan, path: &Path) -> Result<()> {
    let same = |f: &Path| match (f.canonicalize(), path.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !plan.faults.file.as_deref().is_some_and(same) {
        // Grouped by injection, so a list out of order fails here, named.
        let rows = injections(plan)?.flat_map(|faults| match faults {
            Ok(faults) => faults.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        });
        faults::file::write_rows(path, &plan.faults.meta, rows)?;
    }
    plan.faults.file = Some(path.to_path_buf());
    Ok(())
}

/// A model the fault list runs on, with its golden run and cached frontiers:
/// the library's entry to a campaign ([`Model::results`]).
pub struct Model<'a> {
    /// The model's graph.
    pub graph: &'a Graph,
    /// Its golden run (outputs, ranges, cached cuts).
    pub golden: Golden,
    /// Resolves the plan's runs into the engine's injections.
    pub injections: Resolver<'a>,
    plan: &'a Plan,
    frontiers: Box<dyn Frontiers + 'a>,
}

/// One run's faults (rows of the fault list) and result.
pub type Ran = (Vec<Fault>, InjectionResult);

impl<'a> Model<'a> {
    /// Golden run and cache fill for the cuts the faults need. The int8
    /// scales come from the plan's model (`scales`), or from this golden run.
    pub fn prepare(
        plan: &'a Plan,
        graph: &'a Graph,
        scales: Option<&HashMap<String, f32>>,
        store: &Store,
        models: &faults::Models,
    ) -> Result<Model<'a>> {
        let spec = &plan.campaign.spec;
        // The cuts do not depend on the scales: resolve without them first.
        let cuts = Resolver::new(graph, &HashMap::new(), models)?.cuts(plan)?;
        let (data, first) = plan.own_data();
        let run = GoldenRun {
            graph,
            data,
            cuts: cuts.keys().copied().collect(),
            reads: Some(cuts),
            store: spec.cache.enabled.then_some(store),
            top_k: 5,
        };
        let golden = timed(Phase::Golden, || run.run())?;
        let own;
        let scales = match scales {
            Some(s) => s,
            None => {
                own = int8_scales(&golden.ranges);
                &own
            }
        };
        let injections = Resolver::new(graph, scales, models)?;
        let frontiers: Box<dyn Frontiers> = if spec.cache.enabled {
            let entries = golden
                .entries
                .iter()
                .map(|(c, p)| Ok((*c, store.reader(p)?)))
                .collect::<Result<_>>()?;
            let planned = &golden.recomputed;
            Box::new(CachedFrontiers::choose(graph, entries, planned, data)?)
        } else {
            Box::new(ComputedFrontiers { data })
        };
        let frontiers = match &plan.shard {
            Some(_) => Box::new(PartFrontiers {
                part: frontiers,
                first,
                len: data.len(),
            }),
            None => frontiers,
        };
        Ok(Model {
            graph,
            golden,
            injections,
            plan,
            frontiers,
        })
    }

    /// Every run's faults and result, in run order, computed a few batches
    /// at a time as the iterator is consumed (PyTorchALFI's iterator over
    /// faulty models). Stop at the first error.
    pub fn results(&self, options: Options) -> Result<impl Iterator<Item = Result<Ran>> + '_> {
        let step = options.batch_size.max(1) * 8;
        let engine = self.engine(options);
        let mut windows = windows(self.plan)?;
        let mut current: Option<(Window, std::vec::IntoIter<Range<usize>>)> = None;
        let mut ready: VecDeque<Result<Ran>> = VecDeque::new();
        Ok(std::iter::from_fn(move || loop {
            if let Some(ran) = ready.pop_front() {
                return Some(ran);
            }
            let next = current.as_mut().map(|(w, chunks)| {
                let group: Vec<Range<usize>> = chunks.take(options.lists_at_once()).collect();
                (&*w, group)
            });
            let Some((window, group)) = next.filter(|(_, group)| !group.is_empty()) else {
                let window = match windows.next()? {
                    Ok(w) => w,
                    Err(e) => return Some(Err(e)),
                };
                let chunks: Vec<Range<usize>> = window.chunks(step).collect();
                current = Some((window, chunks.into_iter()));
                continue;
            };
            match self.run(&engine, window, &group) {
                Ok(results) => ready.extend(
                    results
                        .into_iter()
                        .flatten()
                        .map(|r| Ok((window.faults(r.id).to_vec(), r))),
                ),
                Err(e) => ready.push_back(Err(e)),
            }
        }))
    }

    fn engine(&self, options: Options) -> Engine<'_> {
        Engine::new(self.graph, self.frontiers.as_ref(), options)
    }

    /// The results of each chunk of runs, all their batches on the
    /// engine's workers at once.
    fn run(
        &self,
        engine: &Engine,
        window: &Window,
        chunks: &[Range<usize>],
    ) -> Result<Vec<Vec<InjectionResult>>> {
        let lists: Vec<Vec<Injection>> = chunks
            .iter()
            .map(|c| self.injections.injections(window, c.clone()))
            .collect::<Result<_>>()?;
        let lists: Vec<&[Injection]> = lists.iter().map(Vec::as_slice).collect();
        engine.run_lists(&lists)
    }
}

/// The node ranges over the whole subset when `plan` is a shard whose
/// faults or mitigations depend on them (int8 faults, Ranger, Clipper): a
/// shard's own fault-free pass covers its samples only. They come from the
/// fault-free results over every sample, no frontier stored, and cached:
/// shards sharing a cache compute them once.
fn whole_ranges(plan: &Plan, store: &Store) -> Result<Option<Vec<NodeRange>>> {
    let campaign = &plan.campaign;
    let guarded = campaign.ranger.is_some() || campaign.clipper.is_some();
    if plan.shard.is_none() || !(guarded || plan.has_int8_faults()?) {
        return Ok(None);
    }
    let run = GoldenRun {
        graph: &plan.graph,
        data: &plan.data,
        cuts: vec![],
        reads: None,
        store: campaign.spec.cache.enabled.then_some(store),
        top_k: 5,
    };
    Ok(Some(timed(Phase::Golden, || run.run())?.ranges))
}

/// The hardened models of the scenario, by name: Ranger and Clipper (the
/// plan's model with guards from its golden ranges) and a second model file.
fn hardened_models(plan: &Plan, ranges: &[NodeRange]) -> Result<Vec<(String, Graph)>> {
    let campaign = &plan.campaign;
    let mut models = Vec::new();
    let load = |path: &Path| -> Result<Graph> {
        // The same detectors, found by node name.
        let mut graph = crate::load::load_with(path, &campaign.spec.model.edits())?;
        if campaign.spec.model.input_shape.is_some() {
            if let (Some(a), Some(b)) = (graph.inputs.first_mut(), plan.graph.inputs.first()) {
                a.dims = b.dims.clone();
            }
        }
        let names: Vec<&str> = plan
            .graph
            .monitors
            .iter()
            .map(|&n| plan.graph.nodes[n].name.as_str())
            .collect();
        graph.monitors = graph
            .nodes
            .iter()
            .filter(|n| names.contains(&n.name.as_str()))
            .map(|n| n.index)
            .collect();
        graph.judged = plan.graph.judged;
        graph.task = plan.graph.task.clone();
        Ok(graph)
    };
    for (name, guard, kind) in [
        ("ranger", &campaign.ranger, GuardKind::Ranger),
        ("clipper", &campaign.clipper, GuardKind::Clipper),
    ] {
        let Some(guard) = guard else { continue };
        let mut graph = load(&plan.graph.path)?;
        for &node in &guard.nodes {
            let range = ranges.iter().find(|r| r.index == node).ok_or_else(|| {
                Error::Usage(format!(
                    "mitigations.{name}: node '{}' has no golden range (its output is not a float tensor)",
                    plan.graph.nodes[node].name
                ))
            })?;
            let margin = guard.margin * (range.max - range.min);
            graph.guards.insert(
                node,
                Guard {
                    kind,
                    min: (range.min - margin) as f32,
                    max: (range.max + margin) as f32,
                },
            );
        }
        models.push((name.to_string(), graph));
    }
    if let Some(path) = &campaign.hardened_model {
        models.push(("hardened".to_string(), load(path)?));
    }
    Ok(models)
}
