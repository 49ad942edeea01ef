//! What the engine runs for a fault list: one run per injection and sample
//! of its scope, with the faults resolved against a model's nodes. The list
//! is read in windows of about `data.window` runs, so memory holds one
//! window, whatever the list's length.

use std::collections::{BTreeMap, HashMap};
use std::iter::Peekable;
use std::ops::Range;
use std::sync::Arc;

use super::Plan;
use crate::error::{Error, Result};
use crate::faults::{self, Fault, Samples, Sites, Target};
use crate::graph::Graph;
use crate::inject::{Injection, NodeFault};

/// One engine run: an injection of the fault list on one sample of its
/// scope (a transient fault has one sample; a permanent one holds for every
/// sample of its batch or of the data set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The injection (fault list's `injection` id).
    pub injection: u64,
    /// Position of the sample in the data set.
    pub sample: usize,
}

/// Consecutive injections of the fault list and their runs, ordered by
/// sample, then first faulted node, then injection: the engine batches the
/// runs of one sample together and forks them from one golden row, so
/// neighbours in this order share the most work. A run's id is its position
/// in the whole campaign: the windows' runs one after the other.
pub struct Window {
    /// Id of the first run.
    pub first: usize,
    /// The runs, in the order the engine takes them.
    pub runs: Vec<Run>,
    rows: HashMap<u64, Vec<Fault>>,
}

impl Window {
    /// The ids of the window's runs.
    pub fn ids(&self) -> Range<usize> {
        self.first..self.first + self.runs.len()
    }

    /// Run `id` (an id of [`Window::ids`]).
    pub fn run(&self, id: usize) -> Run {
        self.runs[id - self.first]
    }

    /// The fault list's rows of run `id`.
    pub fn faults(&self, id: usize) -> &[Fault] {
        &self.rows[&self.run(id).injection]
    }

    /// The window's ids in pieces of `step` (the last may be shorter).
    pub fn chunks(&self, step: usize) -> impl Iterator<Item = Range<usize>> {
        let (ids, step) = (self.ids(), step.max(1));
        ids.clone()
            .step_by(step)
            .map(move |s| s..s.saturating_add(step).min(ids.end))
    }
}

/// The windows of the plan's fault list, read as they are consumed.
pub fn windows(plan: &Plan) -> Result<impl Iterator<Item = Result<Window>> + '_> {
    let samples = plan.data.len() as u64;
    let size = plan.campaign.spec.data.window.max(1);
    let mut injections = injections(plan)?.peekable();
    let mut first = 0;
    let own = plan.shard.as_ref().map(|p| p.samples.clone());
    Ok(std::iter::from_fn(move || {
        injections.peek()?;
        let mut window = window(&mut injections, samples, size, first);
        // A shard keeps its samples' runs of each window of the single run.
        if let (Ok(w), Some(own)) = (&mut window, &own) {
            w.runs.retain(|r| own.contains(&(r.sample as u64)));
        }
        Some(window.inspect(|w| first = w.ids().end))
    }))
}

/// The next injections, up to `size` runs or a little more (an injection's
/// runs stay in one window), from run id `first` on.
fn window(
    injections: &mut Peekable<impl Iterator<Item = Result<Vec<Fault>>>>,
    samples: u64,
    size: usize,
    first: usize,
) -> Result<Window> {
    let (mut keys, mut rows) = (Vec::new(), HashMap::new());
    while keys.len() < size {
        let Some(faults) = injections.next().transpose()? else {
            break;
        };
        let injection = faults[0].injection;
        let node = faults
            .iter()
            .map(|f| f.node)
            .min()
            .expect("one fault or more");
        keys.extend(scope(&faults, samples).map(|s| (s, node, injection)));
        rows.insert(injection, faults);
    }
    keys.sort_unstable();
    let runs = keys
        .into_iter()
        .map(|(sample, _, injection)| Run {
            injection,
            sample: sample as usize,
        })
        .collect();
    Ok(Window { first, runs, rows })
}

/// The samples an injection runs on in this plan: its scope, within the
/// shard's samples when the plan is a shard's.
pub(super) fn own_scope(plan: &Plan, faults: &[Fault]) -> Range<u64> {
    let all = scope(faults, plan.data.len() as u64);
    match &plan.shard {
        Some(part) => all.start.max(part.samples.start)..all.end.min(part.samples.end),
        None => all,
    }
}

/// The samples an injection runs on, of the `n` in the data set.
pub(super) fn scope(faults: &[Fault], n: u64) -> Range<u64> {
    match faults[0].sample {
        Samples::One(s) => s..s + 1,
        Samples::Range { start, end } => start..end.min(n),
        Samples::All => 0..n,
    }
}

/// The plan's fault list an injection at a time. Rows of one injection
/// must follow each other, and injections come in increasing order (as
/// generated lists are): a list is read once per pass, never held whole.
pub fn injections(plan: &Plan) -> Result<impl Iterator<Item = Result<Vec<Fault>>> + '_> {
    let mut rows = plan.fault_rows()?.peekable();
    let mut last: Option<u64> = None;
    let path = plan
        .faults
        .file
        .clone()
        .unwrap_or_else(|| plan.campaign.scenario.clone());
    Ok(std::iter::from_fn(move || {
        let first = match rows.next()? {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        if let Some(last) = last.filter(|&l| first.injection <= l) {
            return Some(Err(out_of_order(&path, &first, last)));
        }
        last = Some(first.injection);
        let mut faults = vec![first];
        while let Some(next) = rows.next_if(|f| matches!(f, Ok(f) if Some(f.injection) == last)) {
            faults.push(next.expect("matched Ok"));
        }
        Some(Ok(faults))
    }))
}

fn out_of_order(path: &std::path::Path, f: &Fault, last: u64) -> Error {
    Error::FaultList {
        path: path.to_path_buf(),
        line: None,
        msg: format!(
            "fault {} (injection {}) follows injection {}: rows must be ordered by injection, with the rows of one injection together (sort the list by injection, then fault_id)",
            f.fault_id, f.injection, last
        ),
    }
}

/// How many runs the plan's list holds (one pass over it).
pub fn run_count(plan: &Plan) -> Result<usize> {
    if let Some(part) = &plan.shard {
        return Ok(part.runs);
    }
    let mut runs = 0;
    for faults in injections(plan)? {
        runs += own_scope(plan, &faults?).count();
    }
    Ok(runs)
}

/// The int8 scale of each layer from its golden range (shared by every
/// model the list runs on, so all see the same faulty values).
pub fn int8_scales(ranges: &[crate::golden::NodeRange]) -> HashMap<String, f32> {
    ranges
        .iter()
        .map(|r| {
            (
                r.node.clone(),
                faults::int8_scale(r.min as f32, r.max as f32),
            )
        })
        .collect()
}

/// Resolves runs into the engine's injections on `graph` (the plan's
/// model or a hardened variant: faults are found by layer and tensor name),
/// a few at a time. Custom fault models come from `models`.
pub struct Resolver<'a> {
    graph: &'a Graph,
    sites: Sites,
    scales: HashMap<String, f32>,
    models: faults::Models,
}

impl<'a> Resolver<'a> {
    /// A resolver for `graph`, with the int8 scales of its tensors and the custom fault models.
    pub fn new(
        graph: &'a Graph,
        scales: &HashMap<String, f32>,
        models: &faults::Models,
    ) -> Result<Self> {
        Ok(Resolver {
            graph,
            sites: Sites::from_graph(graph)?,
            scales: scales.clone(),
            models: models.clone(),
        })
    }

    /// The injections of runs `ids` of `window`.
    pub fn injections(&self, window: &Window, ids: Range<usize>) -> Result<Vec<Injection>> {
        ids.map(|id| self.injection(window, id)).collect()
    }

    /// The injection of run `id` of `window`.
    pub fn injection(&self, window: &Window, id: usize) -> Result<Injection> {
        Ok(Injection {
            id,
            sample: window.run(id).sample,
            faults: self.node_faults(window.faults(id))?,
        })
    }

    /// The engine's form of fault list rows (one injection's).
    pub fn node_faults(&self, rows: &[Fault]) -> Result<Vec<NodeFault>> {
        rows.iter()
            .map(|f| {
                let scale = self.scales.get(&f.layer).copied().unwrap_or(1.0 / 127.0);
                engine_fault(self.graph, &self.sites, f, scale, &self.models)
            })
            .collect()
    }

    /// The cuts the plan's injections read from the cache, each with the
    /// number of times the engine reads it. Resolves every fault of the
    /// list, so one the model cannot take fails here, before any run.
    ///
    /// The engine batches a sample's transient runs in order of their
    /// first cut, `data.batch_size` at a time, and each batch reads the
    /// sample's frontier once, at its first run's cut: a cut whose runs
    /// share a batch with earlier ones is not read. Runs on several samples
    /// (permanent faults) count every cut they read.
    pub fn cuts(&self, plan: &Plan) -> Result<BTreeMap<usize, u64>> {
        let mut reads = BTreeMap::new();
        let mut per_sample: HashMap<u64, BTreeMap<usize, u64>> = HashMap::new();
        for rows in injections(plan)? {
            let rows = rows?;
            // A fault the model cannot take is the list's error (exit 9).
            let faults = self.node_faults(&rows).map_err(|e| match e {
                Error::Usage(msg) => Error::FaultList {
                    path: plan
                        .faults
                        .file
                        .clone()
                        .unwrap_or_else(|| plan.campaign.scenario.clone()),
                    line: None,
                    msg,
                },
                e => e,
            })?;
            let injection = Injection {
                id: 0,
                sample: 0,
                faults,
            };
            let cuts = injection.cuts(self.graph);
            for &cut in &cuts {
                reads.entry(cut).or_insert(0);
            }
            match rows.first().map(|f| f.sample) {
                Some(Samples::One(s)) => {
                    let first = per_sample.entry(s).or_default();
                    *first.entry(injection.read_cut(self.graph)).or_insert(0) += 1;
                }
                _ => cuts.iter().for_each(|c| *reads.entry(*c).or_insert(0) += 1),
            }
        }
        let batch = plan.campaign.spec.data.batch_size.max(1) as u64;
        for runs in per_sample.values() {
            let mut before = 0;
            for (&cut, &n) in runs {
                // Batches that start among runs before..before + n.
                *reads.entry(cut).or_insert(0) +=
                    (before + n).div_ceil(batch) - before.div_ceil(batch);
                before += n;
            }
        }
        Ok(reads)
    }
}

/// All the engine's injections of a plan on `graph`, in memory (for
/// benchmarks and tests of small lists; campaigns go window by window).
pub fn all_injections(
    plan: &Plan,
    graph: &Graph,
    scales: &HashMap<String, f32>,
    models: &faults::Models,
) -> Result<Vec<Injection>> {
    let resolver = Resolver::new(graph, scales, models)?;
    let mut all = Vec::new();
    for window in windows(plan)? {
        let window = window?;
        all.extend(resolver.injections(&window, window.ids())?);
    }
    Ok(all)
}

/// The engine's form of a fault of the list, on `graph`.
fn engine_fault(
    graph: &Graph,
    sites: &Sites,
    f: &Fault,
    int8_scale: f32,
    models: &faults::Models,
) -> Result<NodeFault> {
    let bad = |msg: String| {
        Error::Usage(format!(
            "fault {} on {}: {msg}",
            f.fault_id,
            graph.path.display()
        ))
    };
    if let faults::FaultModel::Custom(name) = &f.model {
        if !models.has(name) {
            return Err(bad(format!("custom fault model '{name}' is not registered (library users register it in faults::Models)")));
        }
    }
    let layer = sites
        .find(&f.layer)
        .ok_or_else(|| bad(format!("the model has no layer '{}'", f.layer)))?;
    let site = layer.tensor(f.target, &f.tensor).ok_or_else(|| {
        bad(format!(
            "layer '{}' has no {} '{}'",
            f.layer, f.target, f.tensor
        ))
    })?;
    let index = flat_index(&f.coord, &site.shape).ok_or_else(|| {
        bad(format!(
            "coordinate {:?} is outside {:?}",
            f.coord, site.shape
        ))
    })?;
    faults::check_format(f.dtype, site).map_err(|e| bad(format!("layer '{}': {e}", f.layer)))?;
    let (fault, models) = (f.clone(), models.clone());
    let corrupt = move |v: f64| {
        let site = faults::Site {
            fault: &fault,
            int8_scale,
        };
        models
            .apply(v, &site)
            .expect("custom models were checked above")
    };
    Ok(match f.target {
        Target::Neuron => NodeFault::neuron(layer.node, index, Arc::new(corrupt)),
        Target::Weight => {
            let inputs = graph.nodes[layer.node].inputs.iter().enumerate();
            let found = inputs
                .filter_map(|(k, id)| Some((k, (*id)?)))
                .find(|&(_, id)| graph.values[id].name == f.tensor);
            let Some((input, id)) = found else {
                return Err(bad(format!(
                    "'{}' is not an input of '{}'",
                    f.tensor, f.layer
                )));
            };
            // A native fault in a dequantized weight changes its word.
            let corrupt: crate::inject::Corrupt = match graph.words.get(&id) {
                Some(words) if f.dtype.is_native() => {
                    let (word, dequantize) = words.at(index);
                    Arc::new(move |_| f64::from(dequantize(corrupt(word))))
                }
                _ => Arc::new(corrupt),
            };
            NodeFault::weight(layer.node, input, index, corrupt)
        }
    })
}

fn flat_index(coord: &[u32], shape: &[u64]) -> Option<i64> {
    if coord.len() != shape.len() || coord.iter().zip(shape).any(|(&c, &s)| u64::from(c) >= s) {
        return None;
    }
    Some(
        coord
            .iter()
            .zip(shape)
            .fold(0i64, |acc, (&c, &s)| acc * s as i64 + i64::from(c)),
    )
}
