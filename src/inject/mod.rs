//! Step 5, inject: run faulty inferences, resuming from cached frontiers.
//!
//! Injections run in batches of one sample (or a few): each sample's
//! fault-free golden row starts from its cached frontier at the earliest cut
//! the batch needs, and each faulty row joins at its start cut (the cut
//! right after its first faulted node) as a copy of its golden row, so no
//! row runs a node before its fault and one golden row serves the whole
//! batch. Results depend on the batch a row runs in (libtorch picks kernels
//! by batch size), so every comparison is made against the golden row of the
//! same batch, never against another run. A batch depends on nothing else:
//! not on the batches before it, nor on the thread that runs it, so
//! batches run on several threads at once (`workers`).
//!
//! Fault dropping: after every node, a faulty row whose live values (the
//! frontier of the next cut) are bitwise those of its golden row is finished
//! as masked and leaves the batch. A row holding NaN or Inf runs on to the
//! output (a later ReLU or Clip may remove an Inf): its outcome is the
//! output's, and the first node that held it is recorded.

mod batches;
mod blocks;
mod bounds;
mod depthwise;
mod frontiers;
mod region;
mod rows;
mod verify;
mod weights;
mod workers;

pub use frontiers::{CachedFrontiers, ComputedFrontiers, Frontiers, InputFrontiers};
pub use region::distrust_box_kernels;
pub use verify::{agreement, plain_run, Agreement};
pub use workers::on_workers;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use tch::{Kind, Tensor};

use crate::classify::{Outcome, OutputDiff};
use crate::error::{Error, Result};
use crate::graph::{Env, Graph, Node};
use crate::phases::{timed, Phase};
use bounds::Bounds;
use region::{ConvBox, KernelCheck, Kernels, RegionalRow, Step};
use rows::{RowState, RowView, Rows};
use weights::Patch;

/// Maps an original value to its faulty one.
pub type Corrupt = Arc<dyn Fn(f32) -> f32 + Send + Sync>;

/// Where in a node a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultSite {
    /// Flat index into one sample's first output of the node (a neuron).
    Neuron { index: i64 },
    /// Flat index into the node's input `input`, a weight (initializer).
    Weight { input: usize, index: i64 },
}

/// One fault of an injection.
#[derive(Clone)]
pub struct Fault {
    /// Topological index of the node.
    pub node: usize,
    pub site: FaultSite,
    pub corrupt: Corrupt,
}

impl Fault {
    pub fn neuron(node: usize, index: i64, corrupt: Corrupt) -> Self {
        Fault {
            node,
            site: FaultSite::Neuron { index },
            corrupt,
        }
    }

    pub fn weight(node: usize, input: usize, index: i64, corrupt: Corrupt) -> Self {
        Fault {
            node,
            site: FaultSite::Weight { input, index },
            corrupt,
        }
    }
}

/// Faults applied together to one inference of one sample.
#[derive(Clone)]
pub struct Injection {
    /// Unique among the injections given to one [`Engine::run`].
    pub id: usize,
    /// Position of the sample in the data set (as the cache stores it).
    pub sample: usize,
    pub faults: Vec<Fault>,
}

impl Injection {
    /// The cut the injection resumes from: right after its first faulted node.
    pub fn start_cut(&self) -> usize {
        self.faults.iter().map(|f| f.node + 1).min().unwrap_or(0)
    }

    /// The cuts whose cached frontiers the injection reads: its start cut,
    /// and the cut before a weight-faulted first node (that node's input).
    pub fn cuts(&self) -> Vec<usize> {
        let start = self.start_cut();
        let mut cuts = vec![start];
        if self
            .faults
            .iter()
            .any(|f| f.node + 1 == start && matches!(f.site, FaultSite::Weight { .. }))
        {
            cuts.push(start - 1);
        }
        cuts
    }

    /// The first cut whose frontier the injection reads: its start cut, or
    /// the input of a weight-faulted first node.
    pub fn read_cut(&self) -> usize {
        self.cuts().into_iter().min().unwrap_or(0)
    }
}

/// The value at a fault site before and after the fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SiteValues {
    pub original: f32,
    pub faulty: f32,
}

#[derive(Debug)]
pub struct InjectionResult {
    pub id: usize,
    pub sample: usize,
    /// One per fault, in the injection's order.
    pub sites: Vec<SiteValues>,
    /// The judged output's golden row (flattened) of the same batch.
    pub golden: Tensor,
    /// The judged output's faulty row (flattened); `None` when the row was
    /// dropped as masked before the end.
    pub output: Option<Tensor>,
    /// How every output of the row differs from golden (empty when dropped).
    pub diff: OutputDiff,
    /// Node after which the row was found identical to golden and dropped.
    pub masked_after: Option<usize>,
    /// First node whose output held NaN or Inf in this row.
    pub first_nonfinite: Option<usize>,
    /// A monitored node ([`Graph::monitors`]) saw NaN or Inf in this row
    /// (recorded, never an outcome by itself).
    pub detected: bool,
    /// A libtorch error while running this injection.
    pub error: Option<String>,
}

impl InjectionResult {
    pub fn outcome(&self) -> Outcome {
        match (&self.error, &self.output, self.masked_after) {
            (Some(_), _, _) => Outcome::Due,
            (None, _, Some(_)) => Outcome::Masked,
            (None, Some(out), None) => self.diff.outcome(&self.golden, out),
            (None, None, None) => Outcome::Due,
        }
    }
}

/// How the engine runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The most faulty rows per batch (see `batches` for fewer).
    pub batch_size: usize,
    /// Skip work that golden already did: drop rows identical to golden
    /// after each node.
    pub drop_masked: bool,
    /// With `drop_masked`: run a row whose single neuron fault still changes
    /// only a small box of positions over that box alone (see `region`).
    pub regional_rows: bool,
    /// Start every injection from the model input instead of its cut, and
    /// run a weight-faulted node whole with the faulty weight instead of
    /// recomputing single filters: the plain full forward pass that
    /// `--verify` compares against.
    pub from_input: bool,
    /// Batches run at once, each on its own thread (see `workers`).
    pub workers: usize,
}

impl Options {
    /// Lists (a campaign's chunks) to give [`Engine::run_lists`] at once:
    /// enough batches that no worker waits long for the others at the end.
    pub fn lists_at_once(&self) -> usize {
        2 * self.workers.max(1)
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: 32,
            drop_masked: true,
            regional_rows: true,
            from_input: false,
            workers: 1,
        }
    }
}

pub struct Engine<'a> {
    pub graph: &'a Graph,
    pub frontiers: &'a dyn Frontiers,
    pub options: Options,
    /// Worked out once: every batch of every call reads them.
    bounds: Arc<Bounds>,
    /// One row's bytes at each node from the cut they were measured from
    /// (see `batches`), kept for later calls that start no earlier.
    row_bytes: Mutex<Option<(usize, Arc<Vec<u64>>)>>,
}

impl<'a> Engine<'a> {
    pub fn new(graph: &'a Graph, frontiers: &'a dyn Frontiers, options: Options) -> Self {
        Engine {
            graph,
            frontiers,
            options,
            bounds: Arc::new(Bounds::of(graph)),
            row_bytes: Mutex::default(),
        }
    }

    /// Runs every injection; results come back in the order given.
    ///
    /// Batches hold the injections of one sample (or a few), ordered by
    /// start cut: the sample's golden row starts at the earliest cut any of
    /// them reads, and each faulty row forks from it at its own start cut,
    /// so one golden row serves the whole batch and no row runs a node
    /// before its fault. A batch holds at most `batch_size` of them, fewer
    /// where its whole rows would outgrow the cache (see `batches`).
    pub fn run(&self, injections: &[Injection]) -> Result<Vec<InjectionResult>> {
        Ok(self.run_lists(&[injections])?.remove(0))
    }

    /// [`Engine::run`] for each list, each list's batches made from it
    /// alone, and the batches of all lists on the workers at once (so none
    /// waits for the others at the end of each list).
    pub fn run_lists(&self, lists: &[&[Injection]]) -> Result<Vec<Vec<InjectionResult>>> {
        for inj in lists.iter().copied().flatten() {
            self.check(inj)?;
        }
        let orders: Vec<Vec<&Injection>> = lists
            .iter()
            .map(|list| {
                let mut order: Vec<&Injection> = list.iter().collect();
                order.sort_by_key(|i| (i.sample, self.join_cut(i), i.id));
                order
            })
            .collect();
        let row_bytes = self.row_bytes(&orders);
        let batches: Vec<(usize, &[&Injection])> = orders
            .iter()
            .enumerate()
            .flat_map(|(list, order)| {
                self.batches(order, row_bytes.as_ref().map(|b| b.as_slice()))
                    .into_iter()
                    .map(move |batch| (list, batch))
            })
            .collect();
        let (frontiers, options, bounds) = (self.frontiers, self.options, &self.bounds);
        let done = on_workers(
            self.graph,
            options.workers,
            &batches,
            |graph, (_, batch)| {
                let bounds = Arc::clone(bounds);
                let engine = Engine {
                    graph,
                    frontiers,
                    options,
                    bounds,
                    row_bytes: Mutex::default(),
                };
                timed(Phase::Injections, || engine.run_batch_or_each(batch))
            },
        )?;
        let mut results: Vec<Vec<InjectionResult>> = lists.iter().map(|_| Vec::new()).collect();
        for ((list, _), batch) in batches.iter().zip(done) {
            results[*list].extend(batch);
        }
        for (list, results) in lists.iter().zip(&mut results) {
            let at: BTreeMap<usize, usize> = list
                .iter()
                .enumerate()
                .map(|(i, inj)| (inj.id, i))
                .collect();
            results.sort_by_key(|r| at[&r.id]);
        }
        Ok(results)
    }

    /// One row's bytes at each node (see `batches`) from the earliest cut
    /// of `orders` on, measured once per engine unless a later call starts
    /// earlier. `None` from the input, where every batch holds `batch_size`
    /// rows as a plain batched forward pass does, and where the row fails:
    /// it fails in its batches too, which record the error per injection.
    fn row_bytes(&self, orders: &[Vec<&Injection>]) -> Option<Arc<Vec<u64>>> {
        let first = orders.iter().flatten().min_by_key(|i| self.read_cut(i));
        let inj = first.filter(|_| !self.options.from_input)?;
        let cut = self.read_cut(inj);
        let mut known = self
            .row_bytes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*known {
            Some((from, bytes)) if *from <= cut => Some(Arc::clone(bytes)),
            _ => {
                let measured = batches::row_bytes(self.graph, self.frontiers, cut, inj.sample);
                let bytes = Arc::new(measured.ok()?);
                *known = Some((cut, Arc::clone(&bytes)));
                Some(bytes)
            }
        }
    }

    /// `order` (sorted by sample, then join cut) cut into batches.
    fn batches<'i>(
        &self,
        order: &'i [&'i Injection],
        row_bytes: Option<&[u64]>,
    ) -> Vec<&'i [&'i Injection]> {
        let size = self.options.batch_size.max(1);
        let Some(row_bytes) = row_bytes else {
            return order.chunks(size).collect();
        };
        batches::split(order, size, row_bytes, |inj, new_sample| {
            let golden = new_sample.then(|| self.read_cut(inj));
            let own = (!self.runs_regionally(inj)).then(|| self.join_cut(inj));
            golden.into_iter().chain(own).collect()
        })
    }

    /// Whether the injection's row runs as a box beside its golden row
    /// (see `region`) rather than as a whole batch row, at first.
    fn runs_regionally(&self, inj: &Injection) -> bool {
        let options = self.options;
        options.drop_masked && options.regional_rows && !options.from_input && region::eligible(inj)
    }

    /// The cut where the injection's faulty row joins its batch.
    fn join_cut(&self, inj: &Injection) -> usize {
        if self.options.from_input {
            0
        } else {
            inj.start_cut()
        }
    }

    /// The first cut whose values the injection needs: its join cut, or the
    /// cut before a weight-faulted first node (that node's input).
    fn read_cut(&self, inj: &Injection) -> usize {
        if self.options.from_input {
            0
        } else {
            inj.read_cut()
        }
    }

    fn check(&self, inj: &Injection) -> Result<()> {
        let graph = self.graph;
        if inj.faults.is_empty() {
            return Err(Error::Usage(format!("injection {} has no fault", inj.id)));
        }
        for f in &inj.faults {
            let node = graph
                .nodes
                .get(f.node)
                .ok_or_else(|| Error::Usage(format!("injection {}: no node {}", inj.id, f.node)))?;
            if graph.values[node.outputs[0]].last_use <= node.index {
                return Err(graph.op_error(
                    node,
                    "its output is never read, so a fault there has no effect",
                ));
            }
            if let FaultSite::Weight { input, .. } = f.site {
                let weight = node.inputs.get(input).copied().flatten();
                if weight.is_none_or(|id| graph.is_computed(id)) {
                    return Err(graph.op_error(
                        node,
                        format!("injection {}: input {input} is not a weight", inj.id),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A batch; on a libtorch error, each injection alone so the error is
    /// recorded against the one that caused it.
    fn run_batch_or_each(&self, batch: &[&Injection]) -> Result<Vec<InjectionResult>> {
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
                let cut = self.join_cut(inj);
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
            *read = (*read).min(self.read_cut(inj));
            let join = joins.entry(self.join_cut(inj)).or_default();
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
            engine: self,
            batch,
            weighted: weights::weighted_nodes(batch),
            rows: Rows::default(),
            regional: Vec::new(),
            checks: Vec::new(),
            kernels: Kernels::default(),
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
            let diff = OutputDiff::of(&outputs, r as i64, golden as i64, graph.judged);
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
    engine: &'e Engine<'e>,
    batch: &'b [&'b Injection],
    /// Nodes with a weight fault in some row.
    weighted: BTreeSet<usize>,
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
        let (engine, batch, regional) = (self.engine, self.batch, &mut self.regional);
        join.jobs.retain(|&(job, sample)| {
            let boxed = engine.runs_regionally(batch[job]);
            if boxed {
                regional.push(RegionalRow::new(job, sample));
            }
            !boxed
        });
        let graph = self.engine.graph;
        let ids = crate::split::frontier(graph, cut)?;
        let cached = match join.samples.is_empty() {
            true => Vec::new(),
            false => self.engine.frontiers.rows(graph, cut, &join.samples)?,
        };
        self.rows
            .join(env, &ids, &join.samples, &cached, &join.jobs)
            .map_err(|e| Error::Cut {
                cut,
                msg: e.to_string(),
            })
    }

    /// Before `node` runs, with its inputs in `env`: computes the regional
    /// rows' boxes of its outputs (or joins those rows to the batch), then
    /// the patches of its weight faults.
    fn prepare(&mut self, node: &Node, env: &mut Env) -> Result<()> {
        let graph = self.engine.graph;
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
            let per_channel = !self.engine.options.from_input;
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
            if self.engine.options.drop_masked && per_channel {
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
            let here =
                |f: &Fault| f.node == node.index && matches!(f.site, FaultSite::Weight { .. });
            let unchanged = !patched.contains(&job) && batch[job].faults.iter().all(here);
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
        let ids = crate::split::frontier(self.engine.graph, cut)?;
        let pairs: Vec<(usize, usize)> = joining.iter().map(|r| (r.job, r.sample)).collect();
        let cut_error = |e: tch::TchError| Error::Cut {
            cut,
            msg: e.to_string(),
        };
        self.rows
            .join(env, &ids, &[], &[], &pairs)
            .map_err(cut_error)?;
        for r in joining {
            let at = self.rows.row_of(r.job).expect("the row just joined");
            region::write_in(&r, env, at).map_err(cut_error)?;
            self.state[r.job].differs = r.deltas.keys().copied().collect();
        }
        Ok(())
    }

    /// After `node` ran: the box kernels on trial, its weight and neuron
    /// faults, its guard again (a guard sits after the faulty output), then
    /// the row checks.
    fn after(&mut self, node: &Node, env: &mut Env) -> Result<()> {
        let graph = self.engine.graph;
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
        let graph = self.engine.graph;
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
        let graph = self.engine.graph;
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
            if r.deltas.is_empty() {
                state.masked_after = Some(node.index);
                leave.insert(r.job);
            }
        }
        self.regional.retain(|r| !leave.contains(&r.job));
        Ok(())
    }

    /// Applies the neuron faults on `node`'s output to the rows still running.
    fn inject(&mut self, node: &Node, env: &mut Env) -> Result<()> {
        let graph = self.engine.graph;
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
                let site = t
                    .f_get(row as i64)
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
        let (graph, options) = (self.engine.graph, self.engine.options);
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
                        || self.engine.bounds.stays_finite(id, t.kind(), faulted));
                if !options.drop_masked && !may_turn {
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
            let settled = !self.batch[job].faults.iter().any(|f| f.node > node.index);
            let state = &mut self.state[job];
            if bad.contains(&job) {
                state.first_nonfinite.get_or_insert(node.index);
                state.detected |= graph.monitors.contains(&node.index);
            }
            if options.drop_masked && settled && state.differs.is_empty() {
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

/// Applies `node`'s guard, if any, to its output once more, after the faults
/// landed there (the guard leaves the rows it already bounded unchanged).
fn guard_again(graph: &Graph, node: &Node, env: &mut Env) -> Result<()> {
    if let (Some(guard), Some(t)) = (graph.guards.get(&node.index), env.get_mut(node.outputs[0])) {
        *t = guard
            .apply(t)
            .map_err(|e| graph.op_error(node, e.to_string()))?;
    }
    Ok(())
}

/// Corrupts element `index` of the flat view of `t` (contiguous) in place.
fn corrupt_flat(
    t: &Tensor,
    index: i64,
    corrupt: &Corrupt,
) -> std::result::Result<SiteValues, String> {
    let elements = t.numel() as i64;
    if index < 0 || index >= elements {
        return Err(format!(
            "fault index {index} is outside the {elements} elements"
        ));
    }
    if t.kind() == Kind::Float && rows::cpu_bytes(t).is_some() {
        // A float32 CPU value is corrupted in place without tensor calls,
        // which cost more than the write on small models.
        // SAFETY: `t` is a contiguous CPU float tensor and `index` lies in
        // it (checked above); `corrupt_flat` writes in place by design.
        let cell = unsafe { (t.data_ptr() as *mut f32).add(index as usize) };
        let original = unsafe { cell.read() };
        let faulty = corrupt(original);
        unsafe { cell.write(faulty) };
        return Ok(SiteValues { original, faulty });
    }
    let mut cell = t
        .f_view([-1])
        .and_then(|r| r.f_get(index))
        .map_err(|e| e.to_string())?;
    let original = cell.f_double_value(&[]).map_err(|e| e.to_string())? as f32;
    let _ = cell
        .f_fill_(f64::from(corrupt(original)))
        .map_err(|e| e.to_string())?;
    // Read back in the tensor's own kind: the value the model really sees.
    let faulty = cell.f_double_value(&[]).map_err(|e| e.to_string())? as f32;
    Ok(SiteValues { original, faulty })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Op;

    /// A test fixture model (tests/fixtures/models) and its input.
    pub(super) fn fixture(name: &str) -> (Graph, Tensor) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models");
        let graph = crate::load::load(dir.join(format!("{name}.onnx"))).unwrap();
        let input = Tensor::read_npy(dir.join(format!("{name}.input.npy"))).unwrap();
        (graph, input)
    }

    /// One row's bytes cover each node's output from the first cut on, and
    /// the engine counts the rows that run whole: without dropping every
    /// faulty row closes batches at the budget, with dropping single neuron
    /// faults run as boxes and do not, and from the input none applies.
    #[test]
    fn batches_close_where_whole_rows_fill_the_budget() {
        let (graph, input) = fixture("mobilenet_v2_ts17");
        let frontiers = InputFrontiers::new(input.narrow(0, 0, 1));
        let conv = graph.nodes.iter().position(|n| n.op == Op::Conv).unwrap();
        let identity: Corrupt = Arc::new(|x| x);
        let injections: Vec<Injection> = (0..20)
            .map(|id| Injection {
                id,
                sample: 0,
                faults: vec![Fault::neuron(conv, id as i64, identity.clone())],
            })
            .collect();
        let order: Vec<&Injection> = injections.iter().collect();
        let engine = |drop_masked, from_input| {
            let options = Options {
                drop_masked,
                from_input,
                ..Options::default()
            };
            Engine::new(&graph, &frontiers, options)
        };

        let measured = engine(false, false)
            .row_bytes(std::slice::from_ref(&order))
            .unwrap();
        let mut env = graph.start(&[input.narrow(0, 0, 1)]).unwrap();
        graph
            .run_observed(0..graph.nodes.len(), &mut env, |node, outputs| {
                let out = (outputs[0].numel() * 4) as u64;
                let at = node.index;
                match at > conv {
                    true => assert!(measured[at] >= out, "node {at}: {}", measured[at]),
                    false => assert_eq!(measured[at], 0, "node {at} runs before the cut"),
                }
            })
            .unwrap();
        assert!(engine(false, true)
            .row_bytes(std::slice::from_ref(&order))
            .is_none());

        let full = vec![batches::BATCH_BYTES / 4; graph.nodes.len()];
        let lens = |drop_masked| -> Vec<usize> {
            let engine = engine(drop_masked, false);
            let batches = engine.batches(&order, Some(&full));
            batches.iter().map(|b| b.len()).collect()
        };
        let min = batches::MIN_ROWS;
        assert_eq!(lens(false), [min, min, 20 - 2 * min]);
        assert_eq!(lens(true), [20]);
    }
}
