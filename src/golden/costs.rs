//! Measures the cache's cost model ([`Costs`]) of a model on a data set:
//! the time to load a sample, each node's time per sample in a batch (alone
//! for nodes after the last cut), and for each cut its frontier's bytes
//! (raw and compressed) and read and write times on the first sample. A cut's frontier computed for the sample alone is also compared
//! with the same sample's row of a batched pass, so the plan recomputes a
//! cut only where that gives the stored bits.

use std::time::Instant;

use tch::Tensor;

use crate::cache::{sample_cost, Costs, CutCost};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::graph::{Env, Graph};
use crate::kernels::threads::with_threads;
use crate::split;

/// Samples in the batch whose node times stand for the engine's
/// recomputations, which run the samples of a batch of injections at once.
const TIMED_ROWS: usize = 4;

/// `known` with the input and node times (when it lacks them) and every
/// cut of `cuts` (sorted) it lacks measured, except cuts whose frontier
/// is not per-sample.
pub fn measure(
    graph: &Graph,
    data: &Dataset,
    cuts: &[usize],
    level: i32,
    batch: usize,
    known: Costs,
) -> Result<Costs> {
    // The engine reads and recomputes with one libtorch thread per worker;
    // two threads would also time their synchronisation.
    with_threads(1, || {
        measure_on_one_thread(graph, data, cuts, level, batch, known)
    })
}

fn measure_on_one_thread(
    graph: &Graph,
    data: &Dataset,
    cuts: &[usize],
    level: i32,
    batch: usize,
    mut known: Costs,
) -> Result<Costs> {
    if data.is_empty() {
        return Ok(known);
    }
    let new: Vec<usize> = (cuts.iter().copied())
        .filter(|c| !known.cuts.contains_key(c))
        .collect();
    let (input_secs, one) = fastest(2, || Ok(data.batch(0..1)?.inputs))?;
    if known.node_secs.len() != graph.nodes.len() {
        known.input_secs = input_secs;
        // A model that cannot run one sample alone (a fixed batch) has
        // every cut stored.
        let Ok(secs) = node_secs(graph, &one) else {
            known.node_secs = vec![0.0; graph.nodes.len()];
            known
                .cuts
                .extend(new.iter().map(|&c| (c, CutCost::unknown())));
            return Ok(known);
        };
        known.node_secs = secs;
    }
    if new.is_empty() {
        return Ok(known);
    }
    let rows = batch.clamp(1, data.len()).min(TIMED_ROWS);
    let inputs = data.batch(0..rows)?.inputs;
    // Batched node times: the fastest of two passes, the walk over the cuts
    // below being the second.
    let mut secs = vec![f64::INFINITY; graph.nodes.len()];
    let last = new.last().copied().unwrap_or(0);
    let batched_env = graph.start(&inputs).map_err(|e| data.explain(e));
    let timed = run_timed(graph, 0..last, &mut batched_env?, rows, &mut secs).is_ok();
    let mut alone = graph.start(&one).map_err(|e| data.explain(e))?;
    let mut batched = graph.start(&inputs)?;
    let mut at = 0;
    for cut in new {
        graph.run(at..cut, &mut alone)?;
        if run_timed(graph, at..cut, &mut batched, rows, &mut secs).is_err() {
            // The pass itself will say why; stored, nothing is assumed.
            known.cuts.insert(cut, CutCost::unknown());
            break;
        }
        at = cut;
        // A cut with a value that is not per-sample stays unmeasured: the
        // plan stores it, and filling it then says why it cannot be.
        let Ok(values) = frontier_rows(graph, &alone, cut, 1) else {
            continue;
        };
        let first: Vec<Tensor> = frontier_rows(graph, &batched, cut, rows)?
            .iter()
            .map(|t| t.narrow(0, 0, 1))
            .collect();
        let same_alone = values.iter().zip(&first).all(|(a, b)| a.equal(b));
        let cost = sample_cost(&values, level)?;
        known.cuts.insert(
            cut,
            CutCost {
                raw_bytes: cost.raw_bytes,
                disk_bytes: cost.disk_bytes,
                read_secs: cost.read_secs,
                write_secs: cost.write_secs,
                same_alone,
            },
        );
    }
    if timed {
        for (known, secs) in known.node_secs.iter_mut().zip(secs) {
            if secs.is_finite() {
                *known = secs;
            }
        }
    }
    Ok(known)
}

/// Runs `nodes` on `env` (`rows` samples), keeping in `secs` each node's
/// fastest seconds per sample so far: the engine recomputes frontiers in
/// batches, where a sample costs less than alone.
fn run_timed(
    graph: &Graph,
    nodes: std::ops::Range<usize>,
    env: &mut Env,
    rows: usize,
    secs: &mut [f64],
) -> Result<()> {
    let mut last = Instant::now();
    graph.run_then(nodes, env, |node, _| {
        let now = Instant::now();
        let per_sample = (now - last).as_secs_f64() / rows as f64;
        secs[node.index] = secs[node.index].min(per_sample);
        last = now;
        Ok(())
    })
}

/// Each node's seconds on `inputs` (one sample): the faster of two passes.
fn node_secs(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<f64>> {
    let mut best = vec![f64::INFINITY; graph.nodes.len()];
    for _ in 0..2 {
        let mut env = graph.start(inputs)?;
        let mut last = Instant::now();
        graph.run_then(0..graph.nodes.len(), &mut env, |node, _| {
            let now = Instant::now();
            best[node.index] = best[node.index].min((now - last).as_secs_f64());
            last = now;
            Ok(())
        })?;
    }
    Ok(best)
}

/// The frontier of `cut` in `env`, which must hold `rows` rows per value
/// (a value of another first dimension cannot be cached per sample).
pub fn frontier_rows(graph: &Graph, env: &Env, cut: usize, rows: usize) -> Result<Vec<Tensor>> {
    split::frontier(graph, cut)?
        .into_iter()
        .map(|id| {
            let t = env.get(graph, id).ok_or_else(|| Error::Cut {
                cut,
                msg: "frontier value not live".into(),
            })?;
            if t.dim() == 0 || t.size()[0] != rows as i64 {
                return Err(Error::Cut {
                    cut,
                    msg: format!(
                        "value '{}' (shape {:?}) is not per-sample, so this cut cannot be cached; choose another cut",
                        graph.values[id].name,
                        t.size()
                    ),
                });
            }
            Ok(t.shallow_clone())
        })
        .collect()
}

/// The fastest of `tries` runs of `f` in seconds, and its last result.
fn fastest<T>(tries: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut best = f64::INFINITY;
    let mut value = None;
    for _ in 0..tries.max(1) {
        let started = Instant::now();
        value = Some(f()?);
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok((best, value.expect("at least one try")))
}
