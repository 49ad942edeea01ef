//! Step 5, inject: run faulty inferences, resuming from cached frontiers.
//!
//! Injections are grouped by their start cut (the cut right after the first
//! faulted node) and run in batches: each batch row is one faulty variant of
//! a sample's cached frontier, and one fault-free golden row per distinct
//! sample travels in the same batch. Results depend on the batch a row runs
//! in (libtorch picks kernels by batch size), so every comparison is made
//! against the golden row of the same batch, never against another run.
//!
//! Fault dropping: after every node, a faulty row whose live values (the
//! frontier of the next cut) are bitwise those of its golden row is finished
//! as masked and leaves the batch; with `stop_at_nonfinite`, a row holding
//! NaN or Inf leaves as well.

mod frontiers;
mod verify;

pub use frontiers::{CachedFrontiers, ComputedFrontiers, Frontiers};
pub use verify::{agreement, Agreement};

use std::collections::BTreeMap;
use std::sync::Arc;

use tch::Tensor;

use crate::error::{Error, Result};
use crate::graph::{is_float, Env, Graph, Node};

/// Maps an original value to its faulty one.
pub type Corrupt = Arc<dyn Fn(f32) -> f32 + Send + Sync>;

/// A fault in one element of a node's first output (a neuron).
#[derive(Clone)]
pub struct NeuronFault {
    /// Topological index of the node.
    pub node: usize,
    /// Flat index into one sample's output of the node.
    pub index: i64,
    pub corrupt: Corrupt,
}

/// Faults applied together to one inference of one sample.
#[derive(Clone)]
pub struct Injection {
    pub id: usize,
    /// Position of the sample in the data set (as the cache stores it).
    pub sample: usize,
    pub faults: Vec<NeuronFault>,
}

impl Injection {
    /// The cut the injection resumes from: right after its first faulted node.
    pub fn start_cut(&self) -> usize {
        self.faults.iter().map(|f| f.node + 1).min().unwrap_or(0)
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
    /// The golden output row of the same batch.
    pub golden: Tensor,
    /// The faulty output row; `None` when the row was dropped as masked, or
    /// dropped at a NaN/Inf, before the end.
    pub output: Option<Tensor>,
    /// Node after which the row was found identical to golden and dropped.
    pub masked_after: Option<usize>,
    /// First node whose output held NaN or Inf in this row.
    pub first_nonfinite: Option<usize>,
    /// A libtorch error while running this injection.
    pub error: Option<String>,
}

impl InjectionResult {
    pub fn outcome(&self) -> crate::classify::Outcome {
        use crate::classify::{classify, Outcome};
        match (&self.error, &self.output, self.masked_after) {
            (Some(_), _, _) => Outcome::Due,
            (None, _, Some(_)) => Outcome::Masked,
            (None, Some(out), None) => classify(&self.golden, out),
            (None, None, None) => Outcome::Due,
        }
    }
}

/// How the engine runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Faulty rows per batch.
    pub batch_size: usize,
    /// Drop rows identical to golden after each node.
    pub drop_masked: bool,
    /// Drop rows as soon as they hold NaN or Inf.
    pub stop_at_nonfinite: bool,
    /// Start every injection from the model input instead of its cut: the
    /// plain full forward pass that `--verify` compares against.
    pub from_input: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: 32,
            drop_masked: true,
            stop_at_nonfinite: false,
            from_input: false,
        }
    }
}

pub struct Engine<'a> {
    pub graph: &'a Graph,
    pub frontiers: &'a dyn Frontiers,
    pub options: Options,
}

fn op_error(graph: &Graph, node: &Node, msg: impl Into<String>) -> Error {
    Error::Op {
        path: graph.path.clone(),
        node: node.name.clone(),
        op: node.op.clone(),
        opset: node.opset,
        msg: msg.into(),
    }
}

impl Engine<'_> {
    /// Runs every injection; results come back in the order given.
    pub fn run(&self, injections: &[Injection]) -> Result<Vec<InjectionResult>> {
        for inj in injections {
            self.check(inj)?;
        }
        let mut groups: BTreeMap<usize, Vec<&Injection>> = BTreeMap::new();
        for inj in injections {
            let cut = if self.options.from_input {
                0
            } else {
                inj.start_cut()
            };
            groups.entry(cut).or_default().push(inj);
        }
        let mut results = Vec::with_capacity(injections.len());
        for (cut, mut group) in groups {
            group.sort_by_key(|i| (i.sample, i.id));
            for batch in group.chunks(self.options.batch_size.max(1)) {
                results.extend(self.run_batch_or_each(cut, batch)?);
            }
        }
        let order: BTreeMap<usize, usize> = injections
            .iter()
            .enumerate()
            .map(|(i, inj)| (inj.id, i))
            .collect();
        results.sort_by_key(|r| order[&r.id]);
        Ok(results)
    }

    fn check(&self, inj: &Injection) -> Result<()> {
        if inj.faults.is_empty() {
            return Err(Error::Usage(format!("injection {} has no fault", inj.id)));
        }
        for f in &inj.faults {
            let node =
                self.graph.nodes.get(f.node).ok_or_else(|| {
                    Error::Usage(format!("injection {}: no node {}", inj.id, f.node))
                })?;
            if self.graph.values[node.outputs[0]].last_use <= node.index {
                return Err(op_error(
                    self.graph,
                    node,
                    "its output is never read, so a fault there has no effect",
                ));
            }
        }
        Ok(())
    }

    /// A batch; on a libtorch error, each injection alone so the error is
    /// recorded against the one that caused it.
    fn run_batch_or_each(&self, cut: usize, batch: &[&Injection]) -> Result<Vec<InjectionResult>> {
        match self.run_batch(cut, batch) {
            Ok(r) => Ok(r),
            Err(Error::Op { .. }) if batch.len() > 1 => {
                let mut out = Vec::new();
                for inj in batch {
                    out.extend(self.run_batch_or_each(cut, &[inj])?);
                }
                Ok(out)
            }
            Err(e @ Error::Op { .. }) => {
                let inj = batch[0];
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
                    masked_after: None,
                    first_nonfinite: None,
                    error: Some(e.to_string()),
                }])
            }
            Err(e) => Err(e),
        }
    }

    fn run_batch(&self, cut: usize, batch: &[&Injection]) -> Result<Vec<InjectionResult>> {
        let graph = self.graph;
        let mut samples: Vec<usize> = batch.iter().map(|i| i.sample).collect();
        samples.dedup(); // batches are sorted by sample
        let mut rows = Rows::new(&samples, batch);
        let mut state: Vec<RowState> = batch
            .iter()
            .zip(&rows.golden_of)
            .map(|(i, &g)| RowState::new(i, g))
            .collect();
        let frontier = crate::split::frontier(graph, cut)?;
        let golden = self.frontiers.rows(graph, cut, &samples)?;
        let mut env = Env::new(graph);
        let layout = rows.layout();
        for (&id, t) in frontier.iter().zip(&golden) {
            env.set(
                id,
                t.f_index_select(0, &layout).map_err(|e| Error::Cut {
                    cut,
                    msg: e.to_string(),
                })?,
            );
        }
        if cut > 0 {
            // Faults on the node just before the cut land on the cached frontier.
            let before = &graph.nodes[cut - 1];
            self.inject(before, &mut env, batch, &rows, &mut state)?;
            self.check_rows(before, &mut env, batch, &mut rows, &mut state)?;
        }
        graph.run_then(cut..graph.nodes.len(), &mut env, |node, env| {
            self.inject(node, env, batch, &rows, &mut state)?;
            self.check_rows(node, env, batch, &mut rows, &mut state)
        })?;
        let output = graph.outputs_of(&env)?.remove(0);
        let output = output.f_flatten(1, -1).map_err(|e| {
            op_error(
                graph,
                graph.nodes.last().expect("a graph has nodes"),
                e.to_string(),
            )
        })?;
        let g = rows.golden_count();
        for (r, &job) in rows.faulty.iter().enumerate() {
            state[job].output = Some(output.get((g + r) as i64));
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
                golden: output.get(s.golden_row as i64),
                output: s.output,
                masked_after: s.masked_after,
                first_nonfinite: s.first_nonfinite,
                error: None,
            })
            .collect())
    }

    /// Applies the faults on `node`'s output to the rows still running.
    fn inject(
        &self,
        node: &Node,
        env: &mut Env,
        batch: &[&Injection],
        rows: &Rows,
        state: &mut [RowState],
    ) -> Result<()> {
        for (r, &job) in rows.faulty.iter().enumerate() {
            for (k, f) in batch[job]
                .faults
                .iter()
                .enumerate()
                .filter(|(_, f)| f.node == node.index)
            {
                let t = env
                    .get_mut(node.outputs[0])
                    .ok_or_else(|| op_error(self.graph, node, "output not live"))?;
                let row = (rows.golden_count() + r) as i64;
                state[job].sites[k] =
                    Some(corrupt_element(t, row, f).map_err(|m| op_error(self.graph, node, m))?);
            }
        }
        Ok(())
    }

    /// After `node`: notes NaN/Inf per row and drops rows that are finished.
    fn check_rows(
        &self,
        node: &Node,
        env: &mut Env,
        batch: &[&Injection],
        rows: &mut Rows,
        state: &mut [RowState],
    ) -> Result<()> {
        let graph = self.graph;
        let err = |e: tch::TchError| op_error(graph, node, e.to_string());
        let (g, f) = (rows.golden_count() as i64, rows.faulty.len() as i64);
        let Some(out) = env
            .get(graph, node.outputs[0])
            .filter(|t| is_float(t.kind()) && t.dim() > 0 && t.size()[0] == g + f)
        else {
            return Ok(()); // not per-sample (a shape computation): nothing to check
        };
        if f == 0 {
            return Ok(());
        }
        let bad = out
            .f_narrow(0, g, f)
            .and_then(|t| t.f_isfinite())
            .and_then(|t| t.f_flatten(1, -1))
            .and_then(|t| t.f_all_dim(1, false))
            .and_then(|t| t.f_logical_not())
            .map_err(err)?;
        let bad = Vec::<bool>::try_from(bad).map_err(err)?;
        let same = if self.options.drop_masked {
            self.same_as_golden(node, env, rows)?
        } else {
            vec![false; bad.len()]
        };
        let mut leave = vec![false; rows.faulty.len()];
        for (r, &job) in rows.faulty.iter().enumerate() {
            let settled = !batch[job].faults.iter().any(|f| f.node > node.index);
            if bad[r] {
                state[job].first_nonfinite.get_or_insert(node.index);
                leave[r] = settled && self.options.stop_at_nonfinite;
            }
            if same[r] && settled {
                state[job].masked_after = Some(node.index);
                leave[r] = true;
            }
        }
        if leave.contains(&true) {
            rows.drop_rows(&leave, env).map_err(err)?;
        }
        Ok(())
    }

    /// Per faulty row: every live per-sample value equals its golden row's.
    fn same_as_golden(&self, node: &Node, env: &mut Env, rows: &Rows) -> Result<Vec<bool>> {
        let err = |e: tch::TchError| op_error(self.graph, node, e.to_string());
        let g = rows.golden_count() as i64;
        let n = g + rows.faulty.len() as i64;
        let pairs =
            Tensor::from_slice(&rows.golden_of.iter().map(|&x| x as i64).collect::<Vec<_>>());
        let mut same = vec![true; rows.faulty.len()];
        for (_, t) in env.live_mut() {
            if t.dim() == 0 || t.size()[0] != n {
                continue;
            }
            let faulty = t.f_narrow(0, g, n - g).map_err(err)?;
            let golden = t
                .f_index_select(0, &pairs.to_device(t.device()))
                .map_err(err)?;
            let eq = faulty
                .f_eq_tensor(&golden)
                .and_then(|e| e.f_flatten(1, -1))
                .and_then(|e| e.f_all_dim(1, false))
                .map_err(err)?;
            for (s, e) in same.iter_mut().zip(Vec::<bool>::try_from(eq).map_err(err)?) {
                *s &= e;
            }
        }
        Ok(same)
    }
}

/// What is known of one injection while its batch runs.
struct RowState {
    sites: Vec<Option<SiteValues>>,
    golden_row: usize,
    output: Option<Tensor>,
    masked_after: Option<usize>,
    first_nonfinite: Option<usize>,
}

impl RowState {
    fn new(inj: &Injection, golden_row: usize) -> Self {
        RowState {
            sites: vec![None; inj.faults.len()],
            golden_row,
            output: None,
            masked_after: None,
            first_nonfinite: None,
        }
    }
}

/// The batch layout: one golden row per distinct sample first (they run to
/// the end: dropped rows report their golden output), then the faulty rows
/// still running.
struct Rows {
    golden_samples: usize,
    /// Index into the batch's injections of each running faulty row.
    faulty: Vec<usize>,
    /// Golden row of each running faulty row.
    golden_of: Vec<usize>,
}

impl Rows {
    fn new(samples: &[usize], batch: &[&Injection]) -> Self {
        let golden_of = batch
            .iter()
            .map(|i| samples.binary_search(&i.sample).expect("sample is listed"))
            .collect();
        Rows {
            golden_samples: samples.len(),
            faulty: (0..batch.len()).collect(),
            golden_of,
        }
    }

    fn golden_count(&self) -> usize {
        self.golden_samples
    }

    /// Rows of the per-sample golden frontier that make up the batch.
    fn layout(&self) -> Tensor {
        let idx: Vec<i64> = (0..self.golden_count())
            .chain(self.golden_of.iter().copied())
            .map(|i| i as i64)
            .collect();
        Tensor::from_slice(&idx)
    }

    /// Removes the faulty rows marked in `leave` from every live per-sample value.
    fn drop_rows(
        &mut self,
        leave: &[bool],
        env: &mut Env,
    ) -> std::result::Result<(), tch::TchError> {
        let g = self.golden_count();
        let n = (g + self.faulty.len()) as i64;
        let keep: Vec<usize> = (0..leave.len()).filter(|&r| !leave[r]).collect();
        let index: Vec<i64> = (0..g)
            .chain(keep.iter().map(|&r| g + r))
            .map(|i| i as i64)
            .collect();
        let index = Tensor::from_slice(&index);
        for (_, t) in env.live_mut() {
            if t.dim() > 0 && t.size()[0] == n {
                *t = t.f_index_select(0, &index.to_device(t.device()))?;
            }
        }
        self.golden_of = keep.iter().map(|&r| self.golden_of[r]).collect();
        self.faulty = keep.iter().map(|&r| self.faulty[r]).collect();
        Ok(())
    }
}

/// Corrupts element `f.index` of batch row `row` of `t` in place.
fn corrupt_element(
    t: &mut Tensor,
    row: i64,
    f: &NeuronFault,
) -> std::result::Result<SiteValues, String> {
    let per_sample: i64 = t.size().iter().skip(1).product();
    if f.index < 0 || f.index >= per_sample {
        return Err(format!(
            "fault index {} is outside the {per_sample} elements of a sample",
            f.index
        ));
    }
    if !t.is_contiguous() {
        // A view of the flat row must alias the tensor for the write to land.
        *t = t.contiguous();
    }
    let mut cell = t
        .f_get(row)
        .and_then(|r| r.f_view([-1]))
        .and_then(|r| r.f_get(f.index))
        .map_err(|e| e.to_string())?;
    let original = cell.f_double_value(&[]).map_err(|e| e.to_string())? as f32;
    let _ = cell
        .f_fill_(f64::from((f.corrupt)(original)))
        .map_err(|e| e.to_string())?;
    // Read back in the tensor's own kind: the value the model really sees.
    let faulty = cell.f_double_value(&[]).map_err(|e| e.to_string())? as f32;
    Ok(SiteValues { original, faulty })
}
