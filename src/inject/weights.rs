//! Weight faults without the prefix: a faulty weight changes its node's
//! output in the faulty row only. A Conv recomputes just the filters that
//! hold a faulty weight (one-filter convolutions over the filter's group);
//! any other op recomputes the node for that row. The difference the fault
//! makes is added to the node's output before the rest of the model runs.

use std::collections::BTreeSet;
use std::sync::Arc;

use tch::Tensor;

use super::rows::{RowState, Rows};
use super::{corrupt_flat, FaultSite, Injection, SiteValues};
use crate::error::Result;
use crate::graph::{ops, Env, Graph, Node};

/// What a weight fault adds to part of one faulty row of a node's output.
pub(super) struct Patch {
    pub job: usize,
    pub node: usize,
    /// The output channel changed, or `None` for the whole row.
    pub channel: Option<i64>,
    pub delta: Tensor,
}

/// The patches for the weight faults at `node` of the running rows, from the
/// node's inputs in `env` (the frontier of the cut before `node`). Records
/// the faults' site values in `state`. Without `per_channel`, every patch
/// reruns the whole node with the faulty weight (the plain reference).
pub(super) fn patches(
    graph: &Graph,
    node: &Node,
    env: &Env,
    batch: &[&Injection],
    rows: &Rows,
    state: &mut [RowState],
    per_channel: bool,
) -> Result<Vec<Patch>> {
    let mut patches = Vec::new();
    for (faults, jobs) in groups(node, batch) {
        let batch_rows: Vec<i64> = jobs
            .iter()
            .map(|&job| {
                let row = rows.source_row(job, batch[job].sample);
                row.expect("a row with a fault to come is running or about to join") as i64
            })
            .collect();
        let golden_ins = row_inputs(graph, node, env, &batch_rows, rows.len())?;
        let channels = filters(node, &as_refs(&golden_ins), &faults).filter(|_| per_channel);
        let outputs = golden_ins
            .get(1)
            .and_then(Option::as_ref)
            .map(|w| w.size()[0]);
        let parts: Vec<Option<i64>> = match &channels {
            Some(c) => c.iter().copied().map(Some).collect(),
            None => vec![None],
        };
        for channel in parts {
            // The inputs of this part (the node's, or one filter's and its
            // bias), and its faults at indices into those inputs.
            let (golden, faults) = match channel {
                Some(c) => filter_part(&golden_ins, &faults, c)
                    .map_err(|e| graph.op_error(node, e.to_string()))?,
                None => (golden_ins.iter().map(shallow).collect(), faults.clone()),
            };
            let mut faulty: Vec<Option<Tensor>> = golden.iter().map(shallow).collect();
            let inj = batch[jobs[0]];
            for (k, site) in
                corrupt_inputs(&mut faulty, &faults, inj).map_err(|m| graph.op_error(node, m))?
            {
                for &job in &jobs {
                    state[job].sites[k] = Some(site);
                }
            }
            // The fault's effect is the difference between this computation
            // with the faulty and with the fault-free weight: one kernel, so
            // no rounding of its own. Added to the node's real output, it
            // leaves every element the fault does not reach bitwise golden.
            let run = |ins: &[Option<Tensor>]| {
                let ins = as_refs(ins);
                match (channel, outputs) {
                    (Some(c), Some(n)) => {
                        graph.guarded(node, || ops::conv_filter(node, &ins, c, n))
                    }
                    _ => Ok(graph.apply(node, &ins)?.swap_remove(0)),
                }
            };
            let delta = (run(&faulty)?, run(&golden)?);
            let delta = delta
                .0
                .f_sub(&delta.1)
                .map_err(|e| graph.op_error(node, e.to_string()))?;
            for (i, &job) in jobs.iter().enumerate() {
                let delta = delta.get(i as i64);
                if bool::try_from(delta.any()).unwrap_or(true) {
                    patches.push(Patch {
                        job,
                        node: node.index,
                        channel,
                        delta,
                    });
                }
            }
        }
    }
    Ok(patches)
}

/// A weight fault of one row: (index among the injection's faults, input, element).
type WeightFault = (usize, usize, i64);

/// The rows with weight faults at `node` (running, or joining right after
/// it), grouped by identical faults (a permanent fault runs on many
/// samples): each group needs one faulty weight and one node run.
fn groups(node: &Node, batch: &[&Injection]) -> Vec<(Vec<WeightFault>, Vec<usize>)> {
    let mut groups: Vec<(Vec<WeightFault>, Vec<usize>)> = Vec::new();
    for job in 0..batch.len() {
        let faults: Vec<WeightFault> = batch[job]
            .faults
            .iter()
            .enumerate()
            .filter(|(_, f)| f.node == node.index)
            .filter_map(|(k, f)| match f.site {
                FaultSite::Weight { input, index } => Some((k, input, index)),
                FaultSite::Neuron { .. } => None,
            })
            .collect();
        if faults.is_empty() {
            continue;
        }
        let same = |(faults_b, jobs): &&mut (Vec<WeightFault>, Vec<usize>)| {
            let other = batch[jobs[0]];
            faults_b.len() == faults.len()
                && faults.iter().zip(faults_b.iter()).all(|(a, b)| {
                    a.1 == b.1
                        && a.2 == b.2
                        && Arc::ptr_eq(&batch[job].faults[a.0].corrupt, &other.faults[b.0].corrupt)
                })
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some((_, jobs)) => jobs.push(job),
            None => groups.push((faults, vec![job])),
        }
    }
    groups
}

/// Applies `faults` (of `inj`) to private copies of the inputs they strike
/// in `ins`; returns each fault's index in `inj` and its site values.
fn corrupt_inputs(
    ins: &mut [Option<Tensor>],
    faults: &[WeightFault],
    inj: &Injection,
) -> std::result::Result<Vec<(usize, SiteValues)>, String> {
    let mut sites = Vec::new();
    for &(k, input, index) in faults {
        let w = ins
            .get_mut(input)
            .and_then(Option::as_mut)
            .ok_or_else(|| format!("no input {input} to fault"))?;
        if !faults.iter().take_while(|f| f.0 != k).any(|f| f.1 == input) {
            *w = w.copy(); // the first fault in this input: a private copy
        }
        sites.push((k, corrupt_flat(w, index, &inj.faults[k].corrupt)?));
    }
    Ok(sites)
}

fn shallow(t: &Option<Tensor>) -> Option<Tensor> {
    t.as_ref().map(Tensor::shallow_clone)
}

/// A Conv's inputs narrowed to the filter and bias of output `channel`
/// (views: only a faulted one is copied), and the faults of `faults` in that
/// channel, at their indices there.
fn filter_part(
    ins: &[Option<Tensor>],
    faults: &[WeightFault],
    channel: i64,
) -> std::result::Result<(Vec<Option<Tensor>>, Vec<WeightFault>), tch::TchError> {
    let local = match ins.get(1).and_then(Option::as_ref) {
        Some(w) => faults
            .iter()
            .filter_map(|&(k, input, index)| match in_filter(w, input, index) {
                Some((filter, at)) if filter == channel => Some((k, input, at)),
                _ => None,
            })
            .collect(),
        None => Vec::new(),
    };
    let mut part: Vec<Option<Tensor>> = ins.iter().map(shallow).collect();
    for t in part.iter_mut().skip(1).flatten() {
        *t = t.f_narrow(0, channel, 1)?;
    }
    Ok((part, local))
}

fn as_refs(ins: &[Option<Tensor>]) -> Vec<Option<&Tensor>> {
    ins.iter().map(Option::as_ref).collect()
}

/// The inputs of `node` for batch rows `batch_rows` of `n` rows.
fn row_inputs(
    graph: &Graph,
    node: &Node,
    env: &Env,
    batch_rows: &[i64],
    n: i64,
) -> Result<Vec<Option<Tensor>>> {
    let index = Tensor::from_slice(batch_rows);
    node.inputs
        .iter()
        .map(|id| {
            let Some(id) = *id else { return Ok(None) };
            let t = env.get(graph, id).ok_or_else(|| {
                graph.op_error(
                    node,
                    format!("input '{}' is not available", graph.values[id].name),
                )
            })?;
            let per_sample = graph.is_computed(id) && t.dim() > 0 && t.size()[0] == n;
            let t = if per_sample {
                t.f_index_select(0, &index.to_device(t.device()))
                    .map_err(|e| graph.op_error(node, e.to_string()))?
            } else {
                t.shallow_clone()
            };
            Ok(Some(t))
        })
        .collect()
}

/// The output channels to recompute when every fault of a Conv lies in its
/// filters (input 1) or bias (input 2); `None` when the whole node must run.
fn filters(
    node: &Node,
    ins: &[Option<&Tensor>],
    faults: &[(usize, usize, i64)],
) -> Option<BTreeSet<i64>> {
    if node.op != "Conv" {
        return None;
    }
    let w = ins.get(1).copied().flatten()?;
    faults
        .iter()
        .map(|&(_, input, index)| Some(in_filter(w, input, index)?.0))
        .collect::<Option<BTreeSet<i64>>>()
}

/// The output channel whose filter (input 1 of a Conv, weight `w`) or bias
/// (input 2) holds element `index`, and the element's index there.
fn in_filter(w: &Tensor, input: usize, index: i64) -> Option<(i64, i64)> {
    let per_filter = w.size().iter().skip(1).product::<i64>();
    match input {
        1 => Some((index / per_filter, index % per_filter)),
        2 => Some((index, 0)),
        _ => None,
    }
}

/// Splices the patches of `node` into its output; patches of dropped rows
/// (none: a row with a fault still to come is never dropped) are skipped.
pub(super) fn apply(
    graph: &Graph,
    node: &Node,
    env: &mut Env,
    rows: &Rows,
    pending: &mut Vec<Patch>,
) -> Result<()> {
    let (now, later): (Vec<Patch>, Vec<Patch>) = std::mem::take(pending)
        .into_iter()
        .partition(|p| p.node == node.index);
    *pending = later;
    let err = |e: tch::TchError| graph.op_error(node, e.to_string());
    for p in now {
        let Some(row) = rows.row_of(p.job).map(|r| r as i64) else {
            continue;
        };
        let out = env
            .get_mut(node.outputs[0])
            .ok_or_else(|| graph.op_error(node, "output not live"))?;
        if !out.is_contiguous() {
            *out = out.contiguous();
        }
        let mut dst = out.f_get(row).map_err(err)?;
        if let Some(c) = p.channel {
            dst = dst.f_get(c).map_err(err)?;
        }
        let delta = p.delta.f_reshape(dst.size()).map_err(err)?;
        let _ = dst.f_add_(&delta).map_err(err)?;
    }
    Ok(())
}

/// The nodes with a weight fault in some row of the batch.
pub(super) fn weighted_nodes(batch: &[&Injection]) -> BTreeSet<usize> {
    batch
        .iter()
        .flat_map(|i| &i.faults)
        .filter(|f| matches!(f.site, FaultSite::Weight { .. }))
        .map(|f| f.node)
        .collect()
}
