//! What the engine runs for a fault list: one run per injection and sample
//! of its scope, with the faults resolved against a model's nodes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use super::Plan;
use crate::error::{Error, Result};
use crate::faults::{self, Fault, Samples, Sites, Target};
use crate::graph::Graph;
use crate::inject::{Fault as EngineFault, Injection};

/// One engine run: an injection of the fault list on one sample of its
/// scope (a transient fault has one sample; a permanent one holds for every
/// sample of its batch or of the data set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub injection: u64,
    /// Position of the sample in the data set.
    pub sample: usize,
}

/// The runs of a fault list, ordered by sample, then first faulted node,
/// then injection: the engine batches the runs of one sample together and
/// forks them from one golden row, so neighbours in this order share the
/// most work. The engine's injection ids are positions in this list.
pub fn runs(plan: &Plan) -> Vec<Run> {
    let n = plan.data.len() as u64;
    let mut scope: BTreeMap<u64, (faults::Samples, u32)> = BTreeMap::new();
    for f in &plan.faults.faults {
        let entry = scope.entry(f.injection).or_insert((f.sample, f.node));
        entry.1 = entry.1.min(f.node);
    }
    let mut runs = Vec::new();
    for (injection, (samples, node)) in scope {
        let range = match samples {
            Samples::One(s) => s..s + 1,
            Samples::Range { start, end } => start..end.min(n),
            Samples::All => 0..n,
        };
        runs.extend(range.map(|s| (s, node, injection)));
    }
    runs.sort_unstable();
    runs.into_iter()
        .map(|(sample, _, injection)| Run {
            injection,
            sample: sample as usize,
        })
        .collect()
}

/// The int8 scale of each layer from its golden range (shared by every
/// model the list runs on, so all see the same faulty values).
pub fn int8_scales(golden: &crate::golden::Golden) -> HashMap<String, f32> {
    golden
        .ranges
        .iter()
        .map(|r| {
            (
                r.node.clone(),
                faults::int8_scale(r.min as f32, r.max as f32),
            )
        })
        .collect()
}

/// Resolves the runs of a plan into the engine's injections on `graph` (the
/// plan's model or a hardened variant: faults are found by layer and tensor
/// name), a few at a time, so memory holds the fault list but not an
/// injection per run. Ids are positions in [`runs`]. Custom fault models
/// come from `models`.
pub struct Resolver<'a> {
    graph: &'a Graph,
    sites: Sites,
    scales: HashMap<String, f32>,
    models: faults::Models,
    runs: Vec<Run>,
    rows: BTreeMap<u64, Vec<&'a Fault>>,
}

impl<'a> Resolver<'a> {
    pub fn new(
        plan: &'a Plan,
        graph: &'a Graph,
        scales: &HashMap<String, f32>,
        models: &faults::Models,
    ) -> Result<Self> {
        Ok(Resolver {
            graph,
            sites: Sites::from_graph(graph)?,
            scales: scales.clone(),
            models: models.clone(),
            runs: runs(plan),
            rows: rows_of(plan),
        })
    }

    /// Number of runs.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The injections of runs `ids`.
    pub fn injections(&self, ids: Range<usize>) -> Result<Vec<Injection>> {
        ids.map(|id| self.injection(id)).collect()
    }

    pub fn injection(&self, id: usize) -> Result<Injection> {
        let run = self.runs[id];
        Ok(Injection {
            id,
            sample: run.sample,
            faults: self.faults(&self.rows[&run.injection])?,
        })
    }

    fn faults(&self, rows: &[&Fault]) -> Result<Vec<EngineFault>> {
        rows.iter()
            .map(|f| {
                let scale = self.scales.get(&f.layer).copied().unwrap_or(1.0 / 127.0);
                engine_fault(self.graph, &self.sites, f, scale, &self.models)
            })
            .collect()
    }

    /// The cuts the injections read from the cache. Resolves every fault of
    /// the list, so one the model cannot take fails here, before any run.
    pub fn cuts(&self) -> Result<Vec<usize>> {
        let mut cuts = BTreeSet::new();
        for rows in self.rows.values() {
            let faults = self.faults(rows)?;
            cuts.extend(
                Injection {
                    id: 0,
                    sample: 0,
                    faults,
                }
                .cuts(),
            );
        }
        Ok(cuts.into_iter().collect())
    }
}

/// All the engine's injections of a plan on `graph` (see [`Resolver`]).
pub fn injections(
    plan: &Plan,
    graph: &Graph,
    scales: &HashMap<String, f32>,
    models: &faults::Models,
) -> Result<Vec<Injection>> {
    let resolver = Resolver::new(plan, graph, scales, models)?;
    resolver.injections(0..resolver.len())
}

/// The engine's form of a fault of the list, on `graph`.
fn engine_fault(
    graph: &Graph,
    sites: &Sites,
    f: &Fault,
    int8_scale: f32,
    models: &faults::Models,
) -> Result<EngineFault> {
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
    let (fault, models) = (f.clone(), models.clone());
    let corrupt: crate::inject::Corrupt = Arc::new(move |v| {
        let site = faults::Site {
            fault: &fault,
            int8_scale,
        };
        models
            .apply(v, &site)
            .expect("custom models were checked above")
    });
    Ok(match f.target {
        Target::Neuron => EngineFault::neuron(layer.node, index, corrupt),
        Target::Weight => {
            let input = graph.nodes[layer.node]
                .inputs
                .iter()
                .position(|id| id.is_some_and(|id| graph.values[id].name == f.tensor))
                .ok_or_else(|| bad(format!("'{}' is not an input of '{}'", f.tensor, f.layer)))?;
            EngineFault::weight(layer.node, input, index, corrupt)
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

/// The fault list's rows of each injection.
pub fn rows_of(plan: &Plan) -> BTreeMap<u64, Vec<&Fault>> {
    let mut rows: BTreeMap<u64, Vec<&Fault>> = BTreeMap::new();
    for f in &plan.faults.faults {
        rows.entry(f.injection).or_default().push(f);
    }
    rows
}
