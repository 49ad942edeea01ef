//! The whole campaign (`faultsweep run`): scenario -> golden run and cache ->
//! fault list -> engine -> results directory.
//!
//! Neuron and weight faults, any fault model and number format, several
//! faults per inference, transient or permanent: a permanent fault runs once
//! per sample of its scope ([`runs`]). Hardened models (Ranger, Clipper, a
//! second model file) run the same fault list and report their outcomes in
//! the same rows.

mod report;
mod results;
mod runs;
mod verify;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use report::{check, summary_files, Checked, Provenance};
pub use results::Tally;
pub use runs::{injections, int8_scales, rows_of, runs, Resolver, Run};

use crate::cache::{Reader, Store};
use crate::classify::Outcome;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::faults::{self, FaultList};
use crate::golden::{self, Golden, GoldenRun};
use crate::graph::{Graph, Guard, GuardKind};
use crate::inject::{
    CachedFrontiers, ComputedFrontiers, Engine, Frontiers, InjectionResult, Options,
};
use crate::report::{CsvSink, Summary};
use crate::scenario::{self, Campaign, Scenario};
use report::write_provenance;
use results::{resume_rows, Layout};

/// Command-line overrides of a scenario.
#[derive(Debug, Default, Clone)]
pub struct RunArgs {
    pub model: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub faults: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub batch_size: Option<usize>,
    /// Use this seed instead of the scenario's.
    pub seed: Option<u64>,
    /// Rerun this many injections (seeded choice) as plain full forward passes.
    pub verify: usize,
    /// Continue the campaign in `out`, keeping its finished rows.
    pub resume: bool,
}

/// What a finished run reports.
pub struct RunReport {
    pub out: PathBuf,
    pub summary: Summary,
    pub golden_accuracy: Option<f64>,
    pub verified: Option<VerifyReport>,
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub checked: usize,
    pub exact: usize,
    pub within_rounding: usize,
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
    pub campaign: Campaign,
    pub graph: Graph,
    pub data: Dataset,
    pub faults: FaultList,
}

pub fn plan(scenario_path: &Path, args: &RunArgs) -> Result<Plan> {
    plan_scenario(Scenario::load(scenario_path)?, args)
}

/// As [`plan`], for a scenario built in code (see `examples/library.rs`).
pub fn plan_scenario(mut sc: Scenario, args: &RunArgs) -> Result<Plan> {
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
    let mut graph = crate::load::load(&sc.spec.model.path)?;
    let data = Dataset::open(&sc.spec.data)?;
    let campaign = sc.validate(&graph, Some(data.total_len() as u64))?;
    graph.monitors = campaign.monitor.iter().copied().collect();
    let faults = match &args.faults {
        Some(path) => faults::load(path, Some(&campaign.sites), Some(campaign.samples))?,
        None => faults::generate(&campaign),
    };
    Ok(Plan {
        campaign,
        graph,
        data,
        faults,
    })
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
    let plan = plan(scenario_path, args)?;
    let spec = &plan.campaign.spec;
    let out = args
        .out
        .clone()
        .or_else(|| spec.outputs.dir.clone())
        .unwrap_or_else(|| {
            PathBuf::from("results").join(spec.name.as_deref().unwrap_or("campaign"))
        });
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    scenario::save(spec, &out.join("scenario.yml"))?;
    faults::save(&plan.faults, &out.join("faults.bin"))?;

    let store = Store::new(&spec.cache, args.cache_dir.as_deref());
    let plain = Model::prepare(&plan, &plan.graph, None, &store, models)?;
    golden::write_golden_csv(&out.join("golden.csv"), &plain.golden.rows)?;
    golden::write_ranges_csv(&out.join("ranges.csv"), &plain.golden.ranges)?;
    let scales = int8_scales(&plain.golden);
    let hardened_graphs = hardened_models(&plan, &plain.golden)?;
    let hardened: Vec<Model> = hardened_graphs
        .iter()
        .map(|(_, g)| Model::prepare(&plan, g, Some(&scales), &store, models))
        .collect::<Result<_>>()?;
    let names: Vec<String> = hardened_graphs.iter().map(|(n, _)| n.clone()).collect();
    let layout = Layout {
        hardened: &names,
        top_k: i64::from(spec.outputs.top_k),
        save_outputs: spec.outputs.save_outputs,
    };

    let options = Options {
        batch_size: spec.data.batch_size,
        drop_masked: true,
        regional_rows: true,
        stop_at_nonfinite: spec.outputs.early_due,
        from_input: false,
    };
    let runs = runs(&plan);
    let step = options.batch_size.max(1) * 8;
    let chunks: Vec<Range<usize>> = (0..runs.len())
        .step_by(step)
        .map(|s| s..(s + step).min(runs.len()))
        .collect();
    let rows_of = rows_of(&plan);
    let path = out.join("injections.csv");
    let (mut sink, done, mut tally) = if args.resume && path.exists() {
        let (done, tally) = resume_rows(&path, &chunks, &runs, &rows_of, &plan)?;
        (CsvSink::append(&path)?, done, tally)
    } else {
        let header = layout.header();
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        (CsvSink::create(&path, &header)?, 0, Tally::default())
    };
    // Only the results --verify rechecks stay in memory.
    let first = chunks.get(done).map_or(runs.len(), |c| c.start);
    let to_verify = verify::pick(plan.campaign.seed, first..runs.len(), args.verify);
    let mut results: Vec<BTreeMap<usize, InjectionResult>> =
        (0..=hardened.len()).map(|_| BTreeMap::new()).collect();
    let mut finished = chunks[..done].iter().map(Range::len).sum();
    let plain_engine = plain.engine(options);
    // A hardened model may remove a NaN later on, so its rows run to the end.
    let to_end = Options {
        stop_at_nonfinite: false,
        ..options
    };
    let hardened_engines: Vec<(&Model, Engine)> =
        hardened.iter().map(|m| (m, m.engine(to_end))).collect();
    for chunk in &chunks[done..] {
        let plain_results = plain.run(&plain_engine, chunk.clone())?;
        let mut hardened_results: Vec<std::vec::IntoIter<InjectionResult>> = hardened_engines
            .iter()
            .map(|(m, engine)| Ok(m.run(engine, chunk.clone())?.into_iter()))
            .collect::<Result<_>>()?;
        for r in plain_results {
            let others: Vec<InjectionResult> = hardened_results
                .iter_mut()
                .map(|h| h.next().expect("one result per run"))
                .collect();
            let faults = &rows_of[&runs[r.id].injection];
            layout.record(&plan, faults, &r, &others, &mut sink)?;
            let outcomes: Vec<(&str, Outcome)> = names
                .iter()
                .zip(&others)
                .map(|(n, o)| (n.as_str(), o.outcome()))
                .collect();
            tally.add(&plan, faults, r.outcome(), &outcomes);
            if to_verify.contains(&r.id) {
                for (kept, result) in results.iter_mut().zip(std::iter::once(r).chain(others)) {
                    kept.insert(result.id, result);
                }
            }
        }
        sink.flush()?;
        finished += chunk.len();
        progress(finished, runs.len());
    }
    let Tally { summary, cells } = tally;
    let provenance = Provenance::of(&plan)?;
    for (name, text) in summary_files(&plan, &provenance, &summary, &cells) {
        crate::report::write_atomic(&out.join(name), text.as_bytes())?;
    }
    write_provenance(&out, &provenance)?;
    let verified = (args.verify > 0)
        .then(|| {
            let models = std::iter::once(&plain).chain(&hardened);
            let mut report = VerifyReport::default();
            for (model, kept) in models.zip(&results) {
                report.merge(verify::verify(&plan, model, kept)?);
            }
            Ok(report)
        })
        .transpose()?;
    Ok(RunReport {
        out,
        summary,
        golden_accuracy: plain.golden.accuracy(),
        verified,
    })
}

/// A model the fault list runs on, with its golden run and cached frontiers:
/// the library's entry to a campaign ([`Model::results`]).
pub struct Model<'a> {
    pub graph: &'a Graph,
    pub golden: Golden,
    /// The runs of the plan ([`runs`]) as the engine's injections.
    pub injections: Resolver<'a>,
    frontiers: Box<dyn Frontiers + 'a>,
}

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
        let cuts = Resolver::new(plan, graph, &HashMap::new(), models)?.cuts()?;
        let golden = GoldenRun {
            graph,
            data: &plan.data,
            cuts,
            store: spec.cache.enabled.then_some(store),
            top_k: 5,
        }
        .run()?;
        let own;
        let scales = match scales {
            Some(s) => s,
            None => {
                own = int8_scales(&golden);
                &own
            }
        };
        let injections = Resolver::new(plan, graph, scales, models)?;
        let frontiers: Box<dyn Frontiers> = if spec.cache.enabled {
            let entries = golden
                .entries
                .iter()
                .map(|(c, p)| Ok((*c, Reader::open(p)?)))
                .collect::<Result<_>>()?;
            Box::new(CachedFrontiers::choose(graph, entries, &plan.data)?)
        } else {
            Box::new(ComputedFrontiers { data: &plan.data })
        };
        Ok(Model {
            graph,
            golden,
            injections,
            frontiers,
        })
    }

    /// Every injection's result, in order, computed a few batches at a time
    /// as the iterator is consumed (PyTorchALFI's iterator over faulty
    /// models).
    pub fn results(&self, options: Options) -> impl Iterator<Item = Result<InjectionResult>> + '_ {
        let step = options.batch_size.max(1) * 8;
        let n = self.injections.len();
        let engine = self.engine(options);
        (0..n)
            .step_by(step)
            .flat_map(move |s| match self.run(&engine, s..(s + step).min(n)) {
                Ok(results) => results.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            })
    }

    fn engine(&self, options: Options) -> Engine<'_> {
        Engine::new(self.graph, self.frontiers.as_ref(), options)
    }

    fn run(&self, engine: &Engine, chunk: Range<usize>) -> Result<Vec<InjectionResult>> {
        engine.run(&self.injections.injections(chunk)?)
    }
}

/// The hardened models of the scenario, by name: Ranger and Clipper (the
/// plan's model with guards from its golden ranges) and a second model file.
fn hardened_models(plan: &Plan, golden: &Golden) -> Result<Vec<(String, Graph)>> {
    let campaign = &plan.campaign;
    let mut models = Vec::new();
    let load = |path: &Path| -> Result<Graph> {
        // The same detectors, found by node name.
        let mut graph = crate::load::load(path)?;
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
        Ok(graph)
    };
    for (name, guard, kind) in [
        ("ranger", &campaign.ranger, GuardKind::Ranger),
        ("clipper", &campaign.clipper, GuardKind::Clipper),
    ] {
        let Some(guard) = guard else { continue };
        let mut graph = load(&plan.graph.path)?;
        for &node in &guard.nodes {
            let range = golden.ranges.iter().find(|r| r.index == node).ok_or_else(|| {
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
