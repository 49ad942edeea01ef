//! Weight faults without the prefix: a faulty weight changes its node's
//! output in the faulty row only. A Conv recomputes just the filters that
//! hold a faulty weight, a Gemm just the output columns; any other op
//! recomputes the node for that row. The difference the fault makes is
//! added to the node's output before the rest of the model runs.

use std::collections::BTreeSet;
use std::sync::Arc;

use tch::Tensor;

use super::rows::{RowState, Rows};
use super::{corrupt_flat, FaultSite, Injection, SiteValues};
use crate::error::Result;
use crate::graph::{ops, Env, Graph, Node, Weights};

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
    // An input whose first axis is not the rows has none to pick: the node
    // reruns on the whole batch and each row's difference is read out.
    let whole = (node.inputs.iter().flatten()).any(|&id| graph.layout.is_misaligned(id));
    if whole {
        return whole_patches(graph, node, env, batch, &groups, state, source);
    }
    if per_channel && node.op.weights().is_some_and(Weights::per_channel) {
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
        if let Some(patches) = channel_patches(graph, node, &ins, batch, &groups, &at, state)? {
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

/// The patches of `groups` from reruns of `node` on the whole batch, with
/// the faulty weights and without: each job's part of the difference, at
/// the row it reads (`source`).
fn whole_patches(
    graph: &Graph,
    node: &Node,
    env: &Env,
    batch: &[&Injection],
    groups: &[(Vec<WeightFault>, Vec<usize>)],
    state: &mut [RowState],
    source: impl Fn(usize) -> i64,
) -> Result<Vec<Patch>> {
    let out = node.outputs[0];
    if !graph.layout.has_rows(out) {
        let msg = "a weight fault here changes an output whose rows lie on no one axis";
        return Err(graph.op_error(node, msg));
    }
    let golden: Vec<Option<Tensor>> = (node.inputs.iter())
        .map(|id| {
            id.and_then(|id| env.get(graph, id))
                .map(Tensor::shallow_clone)
        })
        .collect();
    let run = |ins: &[Option<Tensor>]| Ok(graph.apply(node, &as_refs(ins))?.swap_remove(0));
    let fault_free = run(&golden)?;
    let mut patches = Vec::new();
    for (faults, jobs) in groups {
        let mut faulty: Vec<Option<Tensor>> = golden.iter().map(shallow).collect();
        record(&mut faulty, faults, batch, jobs, state).map_err(|m| graph.op_error(node, m))?;
        let delta = difference(graph, node, run(&faulty)?, fault_free.shallow_clone())?;
        let delta = delta.contiguous();
        for &job in jobs {
            let row = (graph.layout.row(out, &delta, source(job)))
                .map_err(|e| graph.op_error(node, e.to_string()))?;
            patches.extend(patch(job, node, None, row));
        }
    }
    Ok(patches)
}

/// The patches of a Conv or Gemm whose faults all lie in weights split by
/// output channel (see [`Split`]): every faulted channel of every group
/// recomputed in one call with the faulty weights and one with the
/// fault-free ones, on the rows `ins` hold (group `g`'s rows at `at[g]`).
/// `None` when a fault lies elsewhere.
fn channel_patches(
    graph: &Graph,
    node: &Node,
    ins: &[Option<Tensor>],
    batch: &[&Injection],
    groups: &[(Vec<WeightFault>, Vec<usize>)],
    at: &[Vec<i64>],
    state: &mut [RowState],
) -> Result<Option<Vec<Patch>>> {
    let err = |e: tch::TchError| graph.op_error(node, e.to_string());
    let Some(split) = Split::of(node, &as_refs(ins)) else {
        return Ok(None);
    };
    let Some(channels) = groups
        .iter()
        .map(|(faults, _)| split.channels(ins, faults))
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    // One part per (group, channel), in this order along each split axis.
    let parts: Vec<(usize, i64)> = channels
        .iter()
        .enumerate()
        .flat_map(|(g, channels)| channels.iter().map(move |&c| (g, c)))
        .collect();
    let chosen: Vec<i64> = parts.iter().map(|&(_, c)| c).collect();
    let golden = split.pick(ins, &chosen).map_err(err)?;
    // The faulted inputs' picks copied once, each fault written at its place.
    let mut faulty: Vec<Option<Tensor>> = golden.iter().map(shallow).collect();
    let faulted: BTreeSet<usize> = groups
        .iter()
        .flat_map(|(f, _)| f.iter().map(|f| f.1))
        .collect();
    for input in faulted {
        if let Some(t) = faulty.get_mut(input).and_then(Option::as_mut) {
            *t = t.copy();
        }
    }
    for (g, (faults, jobs)) in groups.iter().enumerate() {
        for &(k, input, index) in faults {
            let (Some(t), Some(original)) = (&faulty[input], &ins[input]) else {
                continue;
            };
            let (c, at) = split.locate(original, input, index).expect("a split input");
            let part = parts
                .iter()
                .position(|&p| p == (g, c))
                .expect("its channel's part");
            let corrupt = &batch[jobs[0]].faults[k].corrupt;
            let site = corrupt_flat(t, split.in_pick(t, input, at, part as i64), corrupt)
                .map_err(|m| graph.op_error(node, m))?;
            for &job in jobs {
                state[job].sites[k] = Some(site);
            }
        }
    }
    // Both calls have one shape, so each channel's sums run alike in both:
    // a fault that changes nothing leaves a difference of zero.
    let run = |ins: Vec<Option<Tensor>>| {
        let ins = as_refs(&ins);
        match node.op.weights() {
            Some(Weights::Filters) => graph.guarded(node, || {
                ops::conv_filters(node, &ins, &chosen, split.outputs)
            }),
            _ => Ok(graph.apply(node, &ins)?.swap_remove(0)),
        }
    };
    let delta = difference(graph, node, run(faulty)?, run(golden)?)?;
    // Which channels of which rows changed, in one call: `[rows, parts]`.
    let changed = delta
        .f_reshape([delta.size()[0], parts.len() as i64, -1])
        .and_then(|d| d.f_ne(0.0))
        .and_then(|d| d.f_any_dim(2, false))
        .and_then(|d| Vec::<bool>::try_from(d.f_flatten(0, -1)?))
        .map_err(err)?;
    let mut patches = Vec::new();
    for (i, &(g, c)) in parts.iter().enumerate() {
        for (&job, &row) in groups[g].1.iter().zip(&at[g]) {
            if changed[row as usize * parts.len() + i] {
                let delta = delta.f_get(row).and_then(|d| d.f_get(i as i64));
                patches.push(Patch {
                    job,
                    node: node.index,
                    channel: Some(c),
                    delta: delta.map_err(err)?,
                });
            }
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

/// How a node's inputs split by output channel: a Conv's filters and bias
/// (axis 0), a Gemm's columns of `B` and of `C` (when `C` has one per
/// column). A fault there changes that channel of the output only.
struct Split {
    /// Per input, the axis holding one slice per output channel (`None`:
    /// read by every channel).
    axes: Vec<Option<i64>>,
    outputs: i64,
}

impl Split {
    fn of(node: &Node, ins: &[Option<&Tensor>]) -> Option<Self> {
        let w = ins.get(1).copied().flatten()?;
        let split = match node.op.weights()? {
            Weights::Filters => Split {
                axes: vec![None, Some(0), Some(0)],
                outputs: w.size()[0],
            },
            Weights::Columns if w.dim() == 2 && node.attrs.int("transA", 0).ok()? == 0 => {
                let axis = if node.attrs.int("transB", 0).ok()? != 0 {
                    0
                } else {
                    1
                };
                let outputs = w.size()[axis];
                let c = ins.get(2).copied().flatten();
                // A C of one value per row, or one for all, reaches every column.
                let c_axis = c
                    .filter(|c| outputs > 1 && c.size().last() == Some(&outputs))
                    .map(|c| c.dim() as i64 - 1);
                Split {
                    axes: vec![None, Some(axis as i64), c_axis],
                    outputs,
                }
            }
            _ => return None,
        };
        Some(split)
    }

    /// The output channel of element `index` of `t`, input `input`, and the
    /// element's index in that channel's slice.
    fn locate(&self, t: &Tensor, input: usize, index: i64) -> Option<(i64, i64)> {
        let axis = self.axes.get(input).copied().flatten()? as usize;
        let size = t.size();
        let inner: i64 = size[axis + 1..].iter().product();
        let channel = index / inner % size[axis];
        Some((
            channel,
            index / (inner * size[axis]) * inner + index % inner,
        ))
    }

    /// The channels holding `faults`; `None` when one lies elsewhere.
    fn channels(&self, ins: &[Option<Tensor>], faults: &[WeightFault]) -> Option<BTreeSet<i64>> {
        faults
            .iter()
            .map(|&(_, input, index)| {
                let t = ins.get(input)?.as_ref()?;
                Some(self.locate(t, input, index)?.0)
            })
            .collect()
    }

    /// The inputs with each split one narrowed to `channels`, in order.
    fn pick(
        &self,
        ins: &[Option<Tensor>],
        channels: &[i64],
    ) -> std::result::Result<Vec<Option<Tensor>>, tch::TchError> {
        ins.iter()
            .zip(self.axes.iter().chain(std::iter::repeat(&None)))
            .map(|(t, axis)| match (t, axis) {
                (Some(t), Some(axis)) => {
                    let index = Tensor::from_slice(channels).to_device(t.device());
                    Ok(Some(t.f_index_select(*axis, &index)?))
                }
                (t, _) => Ok(shallow(t)),
            })
            .collect()
    }

    /// Where the element at `at` of one channel's slice of input `input`
    /// lies in `picked`, that input's pick, as its `i`-th channel.
    fn in_pick(&self, picked: &Tensor, input: usize, at: i64, i: i64) -> i64 {
        let axis = self.axes[input].expect("a split input") as usize;
        let size = picked.size();
        let inner: i64 = size[axis + 1..].iter().product();
        at / inner * size[axis] * inner + i * inner + at % inner
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
        let mut dst = graph.layout.row(node.outputs[0], out, row).map_err(err)?;
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
