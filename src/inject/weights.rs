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
    let groups = groups(node, batch);
    let source = |job: usize| {
        let row = rows.source_row(job, batch[job].sample);
        row.expect("a row with a fault to come is running or about to join") as i64
    };
    if per_channel && node.op == "Conv" {
        // The distinct rows the faulty rows read (mostly one golden row),
        // and where each group's rows lie among them.
        let mut sources: Vec<i64> = Vec::new();
        let at: Vec<Vec<i64>> = groups
            .iter()
            .map(|(_, jobs)| {
                jobs.iter()
                    .map(|&job| position(&mut sources, source(job)))
                    .collect()
            })
            .collect();
        let ins = row_inputs(graph, node, env, &sources, rows.len())?;
        if let Some(patches) = filter_patches(graph, node, &ins, batch, &groups, &at, state)? {
            return Ok(patches);
        }
    }
    let mut patches = Vec::new();
    for (faults, jobs) in &groups {
        let batch_rows: Vec<i64> = jobs.iter().map(|&job| source(job)).collect();
        let golden = row_inputs(graph, node, env, &batch_rows, rows.len())?;
        let mut faulty: Vec<Option<Tensor>> = golden.iter().map(shallow).collect();
        record(&mut faulty, faults, batch, jobs, state).map_err(|m| graph.op_error(node, m))?;
        let run = |ins: &[Option<Tensor>]| Ok(graph.apply(node, &as_refs(ins))?.swap_remove(0));
        let delta = difference(graph, node, run(&faulty)?, run(&golden)?)?;
        for (i, &job) in jobs.iter().enumerate() {
            patches.extend(patch(job, node, None, delta.get(i as i64)));
        }
    }
    Ok(patches)
}

/// The patches of a Conv whose faults all lie in filters and biases: every
/// faulted filter of every group recomputed in one call with the faulty
/// weights and one with the fault-free ones, on the rows `ins` hold (group
/// `g`'s rows at `at[g]`). `None` when a fault lies elsewhere.
fn filter_patches(
    graph: &Graph,
    node: &Node,
    ins: &[Option<Tensor>],
    batch: &[&Injection],
    groups: &[(Vec<WeightFault>, Vec<usize>)],
    at: &[Vec<i64>],
    state: &mut [RowState],
) -> Result<Option<Vec<Patch>>> {
    let Some(channels) = groups
        .iter()
        .map(|(faults, _)| filters(node, &as_refs(ins), faults))
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let err = |e: tch::TchError| graph.op_error(node, e.to_string());
    // One part per (group, filter): the group's faults in that filter.
    let mut parts: Vec<(usize, i64)> = Vec::new();
    let mut faulty_parts: Vec<Vec<Option<Tensor>>> = Vec::new();
    for (g, ((faults, jobs), channels)) in groups.iter().zip(&channels).enumerate() {
        for &c in channels {
            let (mut part, local) = filter_part(ins, faults, c).map_err(err)?;
            record(&mut part, &local, batch, jobs, state).map_err(|m| graph.op_error(node, m))?;
            parts.push((g, c));
            faulty_parts.push(part);
        }
    }
    let chosen: Vec<i64> = parts.iter().map(|&(_, c)| c).collect();
    let outputs = ins[1].as_ref().expect("a Conv has a weight").size()[0];
    // Filter and bias of every part, stacked; input 0 is the node's input.
    let stacked = |input: usize| -> std::result::Result<Option<Tensor>, tch::TchError> {
        match &ins.get(input).and_then(Option::as_ref) {
            None => Ok(None),
            Some(_) => {
                let each: Vec<&Tensor> = faulty_parts
                    .iter()
                    .map(|p| p[input].as_ref().expect("narrowed from a present input"))
                    .collect();
                Ok(Some(Tensor::f_cat(&each, 0)?))
            }
        }
    };
    let golden = |input: usize| -> std::result::Result<Option<Tensor>, tch::TchError> {
        ins.get(input)
            .and_then(Option::as_ref)
            .map(|t| t.f_index_select(0, &Tensor::from_slice(&chosen).to_device(t.device())))
            .transpose()
    };
    // Both calls have one shape, so each filter's sums run alike in both:
    // a fault that changes nothing leaves a difference of zero.
    let run = |w: Option<Tensor>, b: Option<Tensor>| {
        let x = ins[0].as_ref();
        let ins = [x, w.as_ref(), b.as_ref()];
        graph.guarded(node, || ops::conv_filters(node, &ins, &chosen, outputs))
    };
    let faulty = run(stacked(1).map_err(err)?, stacked(2).map_err(err)?)?;
    let golden = run(golden(1).map_err(err)?, golden(2).map_err(err)?)?;
    let delta = difference(graph, node, faulty, golden)?;
    let mut patches = Vec::new();
    for (i, &(g, c)) in parts.iter().enumerate() {
        for (&job, &row) in groups[g].1.iter().zip(&at[g]) {
            let d = delta.f_get(row).and_then(|d| d.f_get(i as i64));
            patches.extend(patch(job, node, Some(c), d.map_err(err)?));
        }
    }
    Ok(Some(patches))
}

/// The fault's effect: its computation with the faulty weight less the same
/// computation with the fault-free one (one kernel, so no rounding of its
/// own). Added to the node's real output, it leaves every element the fault
/// does not reach bitwise golden.
fn difference(graph: &Graph, node: &Node, faulty: Tensor, golden: Tensor) -> Result<Tensor> {
    faulty
        .f_sub(&golden)
        .map_err(|e| graph.op_error(node, e.to_string()))
}

/// A patch of `job`, unless `delta` changes nothing.
fn patch(job: usize, node: &Node, channel: Option<i64>, delta: Tensor) -> Option<Patch> {
    bool::try_from(delta.any()).unwrap_or(true).then(|| Patch {
        job,
        node: node.index,
        channel,
        delta,
    })
}

/// Applies `faults` (of the group's first job) to private copies of the
/// inputs `ins` they strike, and records each fault's site values for every
/// job of the group.
fn record(
    ins: &mut [Option<Tensor>],
    faults: &[WeightFault],
    batch: &[&Injection],
    jobs: &[usize],
    state: &mut [RowState],
) -> std::result::Result<(), String> {
    for (k, site) in corrupt_inputs(ins, faults, batch[jobs[0]])? {
        for &job in jobs {
            state[job].sites[k] = Some(site);
        }
    }
    Ok(())
}

/// The index of `row` in `rows`, appended if missing.
fn position(rows: &mut Vec<i64>, row: i64) -> i64 {
    let at = rows.iter().position(|&r| r == row).unwrap_or_else(|| {
        rows.push(row);
        rows.len() - 1
    });
    at as i64
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
