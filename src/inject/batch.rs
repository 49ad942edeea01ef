//! One batch through the suffix: its golden rows start from their cached
//! frontiers, its faulty rows fork from them at their start cuts (as whole
//! rows, or as regional boxes, `region`), take their faults, and leave as
//! masked once [`finished`]; what is left runs to the outputs.

use std::collections::{BTreeMap, BTreeSet};

use super::bounds::Bounds;
use super::region::{self, ConvBox, KernelCheck, Kernels, RegionalRow, Step};
use super::rows::{RowState, RowView, Rows};
use super::weights::{self, Patch};
use super::{corrupt_flat, FaultSite, Frontiers, Injection, InjectionResult, NodeFault, Options};
use crate::classify::OutputDiff;
use crate::error::{Error, Result};
use crate::graph::{Env, Graph, Node};
use tch::Tensor;

/// What a batch runs with, on whichever thread runs it: that thread's
/// handle to the model, and the engine's frontiers, options and bounds.
pub(super) struct Context<'a> {
    pub graph: &'a Graph,
    pub frontiers: &'a dyn Frontiers,
    pub options: Options,
    pub bounds: &'a Bounds,
}

impl Context<'_> {
    /// An injection on a model that computes its rows together: its sample
    /// alone, the plain way, from the model input.
    fn alone(&self, inj: &Injection) -> Result<InjectionResult> {
        let graph = self.graph;
        let ids = crate::split::frontier(graph, 0)?;
        let rows = self.frontiers.rows(graph, 0, &[inj.sample])?;
        let inputs = (graph.input_values.iter())
            .map(|id| match ids.iter().position(|i| i == id) {
                Some(k) => Ok(rows[k].shallow_clone()),
                None => Err(Error::Usage(format!(
                    "model input '{}' is never read",
                    graph.values[*id].name
                ))),
            })
            .collect::<Result<Vec<Tensor>>>()?;
        super::plain_run(graph, &inputs, inj)
    }

    /// A batch; on a libtorch error, each injection alone so the error is
    /// recorded against the one that caused it. A model that computes its
    /// rows together runs each injection alone.
    pub(super) fn run_batch_or_each(&self, batch: &[&Injection]) -> Result<Vec<InjectionResult>> {
        if self.graph.layout.couples_rows() {
            return batch.iter().map(|inj| self.alone(inj)).collect();
        }
        match self.run_batch(batch) {
            Ok(r) => Ok(r),
            Err(Error::Op { .. }) if batch.len() > 1 => {
                let mut out = Vec::new();
                for inj in batch {
                    out.extend(self.run_batch_or_each(&[inj])?);
                }
                Ok(out)
            }
            Err(e @ Error::Op { .. }) => {
                let inj = batch[0];
                let cut = self.options.mode.join_cut(inj, self.graph);
                let front = self.frontiers.rows(self.graph, cut, &[inj.sample])?;
                let golden = crate::split::resume(self.graph, cut, &front)?
                    .remove(0)
                    .flatten(1, -1)
                    .get(0);
                Ok(vec![InjectionResult {
                    id: inj.id,
                    sample: inj.sample,
                    sites: vec![],
                    golden,
                    output: None,
                    diff: OutputDiff::default(),
                    masked_after: None,
                    first_nonfinite: None,
                    detected: false,
                    whole_from: Some(cut),
                    error: Some(e.to_string()),
                }])
            }
            Err(e) => Err(e),
        }
    }

    /// Which rows join the batch at which cut.
    fn joins(&self, batch: &[&Injection]) -> BTreeMap<usize, Join> {
        let mut joins: BTreeMap<usize, Join> = BTreeMap::new();
        let mut first_read: BTreeMap<usize, usize> = BTreeMap::new();
        for (job, inj) in batch.iter().enumerate() {
            let read = first_read.entry(inj.sample).or_insert(usize::MAX);
            *read = (*read).min(self.options.mode.read_cut(inj, self.graph));
            let join = joins
                .entry(self.options.mode.join_cut(inj, self.graph))
                .or_default();
            join.jobs.push((job, inj.sample));
        }
        for (sample, cut) in first_read {
            joins.entry(cut).or_default().samples.push(sample);
        }
        joins
    }

    fn run_batch(&self, batch: &[&Injection]) -> Result<Vec<InjectionResult>> {
        let graph = self.graph;
        let joins = self.joins(batch);
        let first = *joins.keys().next().expect("a batch has rows");
        let mut run = BatchRun {
            ctx: self,
            batch,
            weighted: weights::weighted_nodes(batch),
            misaligned: graph.layout.any_misaligned(),
            rows: Rows::default(),
            regional: Vec::new(),
            checks: Vec::new(),
            kernels: Kernels::new(self.options.box_kernels),
            state: batch.iter().map(|i| RowState::new(i)).collect(),
            pending: Vec::new(),
            joins,
        };
        let mut env = Env::new(graph);
        run.join(first, &mut env)?;
        if first > 0 {
            // Faults on the node just before the first cut land on the
            // cached frontier.
            run.after(&graph.nodes[first - 1], &mut env)?;
        }
        if let Some(node) = graph.nodes.get(first) {
            run.prepare(node, &mut env)?;
        }
        graph.run_then(first..graph.nodes.len(), &mut env, |node, env| {
            run.join(node.index + 1, env)?;
            run.after(node, env)?;
            match graph.nodes.get(node.index + 1) {
                Some(next) => run.prepare(next, env),
                None => Ok(()),
            }
        })?;
        // Boxes still open after the last node join for the output.
        let boxed: Vec<usize> = run.regional.iter().map(|r| r.job).collect();
        run.join_regional(&boxed, graph.nodes.len(), &mut env)?;
        let outputs = graph.outputs_of(&env)?;
        let last = graph.nodes.last().expect("a graph has nodes");
        let output = outputs[graph.judged]
            .f_flatten(1, -1)
            .map_err(|e| graph.op_error(last, e.to_string()))?;
        let BatchRun {
            rows, mut state, ..
        } = run;
        for (r, job) in rows.faulty() {
            let golden = rows
                .golden_row(batch[job].sample)
                .expect("golden rows stay");
            let diff = OutputDiff::of(&outputs, r as i64, golden as i64, graph.judged, &graph.task);
            state[job].output = Some(output.get(r as i64));
            state[job].diff = diff;
        }
        Ok(batch
            .iter()
            .zip(state)
            .map(|(inj, s)| InjectionResult {
                id: inj.id,
                sample: inj.sample,
                sites: s
                    .sites
                    .into_iter()
                    .map(|v| v.expect("every fault site is reached"))
                    .collect(),
                golden: output.get(rows.golden_row(inj.sample).expect("golden rows stay") as i64),
                output: s.output,
                diff: s.diff,
                masked_after: s.masked_after,
                first_nonfinite: s.first_nonfinite,
                detected: s.detected,
                whole_from: s.whole_from,
                error: None,
            })
            .collect())
    }
}

/// The rows that join a batch at one cut.
#[derive(Default)]
struct Join {
    /// Samples whose golden row starts here, from the cached frontier.
    samples: Vec<usize>,
    /// (job, sample) of the faulty rows forked here from their golden row.
    jobs: Vec<(usize, usize)>,
}

/// One batch on its way through the suffix.
struct BatchRun<'e, 'b> {
    ctx: &'e Context<'e>,
    batch: &'b [&'b Injection],
    /// Nodes with a weight fault in some row.
    weighted: BTreeSet<usize>,
    /// Whether the model has values whose first axis is not the rows (read
    /// once: most models have none).
    misaligned: bool,
    rows: Rows,
    /// Faulty rows running as boxes beside their golden rows, not yet in
    /// `rows`.
    regional: Vec<RegionalRow>,
    /// Conv box kernels on trial at the node about to run.
    checks: Vec<KernelCheck>,
    /// Box kernels checked in this batch.
    kernels: Kernels,
    state: Vec<RowState>,
    /// Weight-fault patches for nodes about to run.
    pending: Vec<Patch>,
    /// Rows still to join, by cut.
    joins: BTreeMap<usize, Join>,
}

impl BatchRun<'_, '_> {
    /// At `cut`, with its frontier in `env`: the rows that start there join.
    fn join(&mut self, cut: usize, env: &mut Env) -> Result<()> {
        let Some(mut join) = self.joins.remove(&cut) else {
            return Ok(());
        };
        let (mode, batch, regional) = (self.ctx.options.mode, self.batch, &mut self.regional);
        let graph = self.ctx.graph;
        let state = &mut self.state;
        join.jobs.retain(|&(job, sample)| {
            let boxed = mode.runs_regionally(batch[job], graph);
            match boxed {
                true => regional.push(RegionalRow::new(job, sample)),
                false => state[job].whole_from = Some(cut),
            }
            !boxed
        });
        let graph = self.ctx.graph;
        let ids = crate::split::frontier(graph, cut)?;
        let cached = match join.samples.is_empty() {
            true => Vec::new(),
            false => self.ctx.frontiers.rows(graph, cut, &join.samples)?,
        };
        self.rows
            .join(env, &ids, &join.samples, &cached, &join.jobs)
            .map_err(|e| Error::Cut {
                cut,
                msg: crate::error::torch_message(&e),
            })
    }

    /// Before `node` runs, with its inputs in `env`: computes the regional
    /// rows' boxes of its outputs (or joins those rows to the batch), then
    /// the patches of its weight faults.
    fn prepare(&mut self, node: &Node, env: &mut Env) -> Result<()> {
        let graph = self.ctx.graph;
        let mut joining = Vec::new();
        let mut convs: BTreeMap<Vec<i64>, Vec<(usize, usize, ConvBox)>> = BTreeMap::new();
        for (i, r) in self.regional.iter_mut().enumerate() {
            let golden = self.rows.golden_row(r.sample).expect("golden rows stay");
            match r.step(graph, node, env, golden, &self.kernels)? {
                Step::Boxes(outputs) => r.set_pending(outputs),
                Step::Conv(conv) => convs
                    .entry(conv.lens())
                    .or_default()
                    .push((i, golden, conv)),
                Step::Join => joining.push(r.job),
            }
        }
        for group in convs.into_values() {
            let (index, rows): (Vec<usize>, Vec<_>) = group
                .into_iter()
                .map(|(i, golden, conv)| (i, (&self.regional[i], golden, conv)))
                .unzip();
            let (deltas, checks) = region::conv_boxes(graph, node, env, &rows)?;
            self.checks.extend(checks);
            for (i, delta) in index.into_iter().zip(deltas) {
                self.regional[i].set_pending(vec![(node.outputs[0], delta)]);
            }
        }
        self.join_regional(&joining, node.index, env)?;
        if self.weighted.contains(&node.index) {
            let per_channel = !self.ctx.options.mode.from_input();
            let patches = weights::patches(
                graph,
                node,
                env,
                self.batch,
                &self.rows,
                &mut self.state,
                per_channel,
            )?;
            self.pending.extend(patches);
            if self.ctx.options.mode.drops_masked() && per_channel {
                self.mask_unchanged(node);
            }
        }
        Ok(())
    }

    /// Rows about to join after `node` whose faults all lie in its weights
    /// and change none of its outputs (no patch) are masked there: they
    /// would join as copies of golden only to be dropped.
    fn mask_unchanged(&mut self, node: &Node) {
        let Some(join) = self.joins.get_mut(&(node.index + 1)) else {
            return;
        };
        let patched: BTreeSet<usize> = self
            .pending
            .iter()
            .filter(|p| p.node == node.index)
            .map(|p| p.job)
            .collect();
        let (batch, state) = (self.batch, &mut self.state);
        join.jobs.retain(|&(job, _)| {
            let neuron_here =
                |f: &NodeFault| f.node == node.index && matches!(f.site, FaultSite::Neuron { .. });
            let differs = patched.contains(&job) || batch[job].faults.iter().any(neuron_here);
            let unchanged = finished(batch[job], node.index, differs);
            if unchanged {
                state[job].masked_after = Some(node.index);
            }
            !unchanged
        });
    }

    /// Makes the regional rows of `jobs` full batch rows at `cut` (its
    /// frontier in `env`): copies of their golden rows with their boxes
    /// written in.
    fn join_regional(&mut self, jobs: &[usize], cut: usize, env: &mut Env) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let (joining, staying) = std::mem::take(&mut self.regional)
            .into_iter()
            .partition::<Vec<_>, _>(|r| jobs.contains(&r.job));
        self.regional = staying;
        let ids = crate::split::frontier(self.ctx.graph, cut)?;
        let pairs: Vec<(usize, usize)> = joining.iter().map(|r| (r.job, r.sample)).collect();
        let cut_error = |e: tch::TchError| Error::Cut {
            cut,
            msg: crate::error::torch_message(&e),
        };
        self.rows
            .join(env, &ids, &[], &[], &pairs)
            .map_err(cut_error)?;
        for r in joining {
            let at = self.rows.row_of(r.job).expect("the row just joined");
            region::write_in(&r, env, at).map_err(cut_error)?;
            self.state[r.job].differs = r.deltas.keys().copied().collect();
            self.state[r.job].whole_from = Some(cut);
        }
        Ok(())
    }

    /// After `node` ran: the box kernels on trial, its weight and neuron
    /// faults, its guard again (a guard sits after the faulty output), then
    /// the row checks.
    fn after(&mut self, node: &Node, env: &mut Env) -> Result<()> {
        let graph = self.ctx.graph;
        for check in std::mem::take(&mut self.checks) {
            let golden = self
                .rows
                .golden_row(check.sample)
                .expect("golden rows stay");
            let (regional, kernels) = (&mut self.regional, &mut self.kernels);
            region::verify_kernel(graph, node, env, golden, check, regional, kernels)?;
        }
        self.inject_regional(node, env)?;
        weights::apply(graph, node, env, &self.rows, &mut self.pending)?;
        self.inject(node, env)?;
        guard_again(graph, node, env)?;
        self.check_rows(node, env)?;
        self.settle_regional(node, env)
    }

    /// Applies the faults on `node`'s output to the regional rows, each as a
    /// one-position box; a row whose fault does not fit one joins the batch
    /// (before the batch's own faults are applied).
    fn inject_regional(&mut self, node: &Node, env: &mut Env) -> Result<()> {
        let graph = self.ctx.graph;
        let mut joining = Vec::new();
        for r in &mut self.regional {
            let inj = self.batch[r.job];
            if inj.faults[0].node != node.index {
                continue;
            }
            let golden = self.rows.golden_row(r.sample).expect("golden rows stay");
            match r.inject(graph, node, env, golden, inj)? {
                Some(site) => self.state[r.job].sites[0] = Some(site),
                None => joining.push(r.job),
            }
        }
        self.join_regional(&joining, node.index + 1, env)
    }

    /// After `node` ran: the regional rows take in their boxes of its
    /// outputs, note NaN/Inf, and leave when masked (or stopped at NaN/Inf),
    /// as the batch rows do in [`BatchRun::check_rows`].
    fn settle_regional(&mut self, node: &Node, env: &mut Env) -> Result<()> {
        let graph = self.ctx.graph;
        let mut leave = BTreeSet::new();
        for r in &mut self.regional {
            let state = &mut self.state[r.job];
            let fault_node = self.batch[r.job].faults[0].node;
            let scan =
                region::may_turn_nonfinite(node, fault_node, state.first_nonfinite.is_some());
            let golden = self.rows.golden_row(r.sample).expect("golden rows stay");
            if r.settle(graph, node, env, golden, scan)? {
                state.first_nonfinite.get_or_insert(node.index);
                state.detected |= graph.monitors.contains(&node.index);
            }
            if finished(self.batch[r.job], node.index, !r.deltas.is_empty()) {
                state.masked_after = Some(node.index);
                leave.insert(r.job);
            }
        }
        self.regional.retain(|r| !leave.contains(&r.job));
        Ok(())
    }

    /// Applies the neuron faults on `node`'s output to the rows still running.
    fn inject(&mut self, node: &Node, env: &mut Env) -> Result<()> {
        let graph = self.ctx.graph;
        for (row, job) in self.rows.faulty() {
            for (k, f) in self.batch[job].faults.iter().enumerate() {
                let FaultSite::Neuron { index } = f.site else {
                    continue;
                };
                if f.node != node.index {
                    continue;
                }
                let t = env
                    .get_mut(node.outputs[0])
                    .ok_or_else(|| graph.op_error(node, "output not live"))?;
                if !t.is_contiguous() {
                    // A view of the row must alias the tensor for the write to land.
                    *t = t.contiguous();
                }
                let site = (graph.layout)
                    .row(node.outputs[0], t, row as i64)
                    .map_err(|e| e.to_string())
                    .and_then(|row| corrupt_flat(&row, index, &f.corrupt))
                    .map_err(|m| graph.op_error(node, m))?;
                self.state[job].sites[k] = Some(site);
            }
        }
        Ok(())
    }

    /// After `node`: compares its outputs row by row with the golden rows,
    /// notes NaN/Inf, and drops rows that are finished.
    fn check_rows(&mut self, node: &Node, env: &mut Env) -> Result<()> {
        let (graph, mode) = (self.ctx.graph, self.ctx.options.mode);
        let faulty: Vec<(usize, usize, usize)> = self
            .rows
            .faulty()
            .into_iter()
            .map(|(row, job)| {
                let golden = self.rows.golden_row(self.batch[job].sample);
                (row, job, golden.expect("a faulty row's golden row runs"))
            })
            .collect();
        if faulty.is_empty() {
            return Ok(());
        }
        for id in node.inputs.iter().flatten() {
            if env.get_mut(*id).is_none() {
                for s in &mut self.state {
                    s.differs.remove(id);
                }
            }
        }
        let n = self.rows.len();
        let mut bad = BTreeSet::new();
        for &id in &node.outputs {
            if self.misaligned && graph.layout.is_misaligned(id) {
                // No row of it can be compared: every faulty row may differ
                // until it is gone (see `Layout`).
                for &(_, job, _) in &faulty {
                    self.state[job].differs.insert(id);
                }
                continue;
            }
            let Some(t) = env.get_mut(id) else { continue };
            if t.dim() == 0 || t.size()[0] != n {
                continue; // not per-sample (a shape computation)
            }
            let view = RowView::new(t);
            for &(row, job, golden) in &faulty {
                let state = &mut self.state[job];
                // A finite row stays finite through ops that cannot
                // overflow and through bounded values (see `bounds`),
                // unless a fault lands on this node.
                let faults = &self.batch[job].faults;
                let faulted = |n: usize| faults.iter().any(|f| f.node == n);
                let may_turn = state.first_nonfinite.is_some()
                    || faulted(node.index)
                    || !(node.op.keeps_finite()
                        || self.ctx.bounds.stays_finite(id, t.kind(), faulted));
                if !mode.drops_masked() && !may_turn {
                    continue; // no masking to find, no NaN or Inf to scan for
                }
                if view.equal(row, golden) {
                    state.differs.remove(&id);
                } else {
                    state.differs.insert(id);
                    if may_turn && view.nonfinite(row) {
                        bad.insert(job);
                    }
                }
            }
        }
        let mut leave = BTreeSet::new();
        for &(_, job, _) in &faulty {
            let state = &mut self.state[job];
            if bad.contains(&job) {
                state.first_nonfinite.get_or_insert(node.index);
                state.detected |= graph.monitors.contains(&node.index);
            }
            let differs = !state.differs.is_empty();
            if mode.drops_masked() && finished(self.batch[job], node.index, differs) {
                state.masked_after = Some(node.index);
                leave.insert(job);
            }
        }
        if !leave.is_empty() {
            self.rows
                .drop_rows(&leave, env)
                .map_err(|e| graph.op_error(node, e.to_string()))?;
        }
        Ok(())
    }
}

/// Whether a faulty row is finished after `node`, as masked, and leaves
/// the batch: no fault of its injection lies beyond `node`, and nothing of
/// it differs from its golden row (`differs`: a live value, a box, a weight
/// patch or a neuron fault about to land).
fn finished(inj: &Injection, node: usize, differs: bool) -> bool {
    !differs && inj.faults.iter().all(|f| f.node <= node)
}

/// Applies `node`'s guard, if any, to its output once more, after the faults
/// landed there (the guard leaves the rows it already bounded unchanged).
pub(super) fn guard_again(graph: &Graph, node: &Node, env: &mut Env) -> Result<()> {
    if let (Some(guard), Some(t)) = (graph.guards.get(&node.index), env.get_mut(node.outputs[0])) {
        *t = guard
            .apply(t)
            .map_err(|e| graph.op_error(node, e.to_string()))?;
    }
    Ok(())
}
