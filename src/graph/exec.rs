//! The executor: runs a range of nodes over an [`Env`] of live values, freeing
//! each value after its last reader so memory follows the live set, not the
//! graph size. Running `0..k` and then `k..n` on the same environment is the
//! same computation as running `0..n`: that is what cuts rely on.

use std::collections::HashMap;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

use tch::Tensor;

use super::{Graph, Node, Source, ValueId};
use crate::error::{Error, Result};

/// The live non-constant values of one run, indexed by [`ValueId`].
pub struct Env {
    slots: Vec<Option<Tensor>>,
    /// The batch's row count, which shape values are computed for.
    rows: Option<i64>,
    /// Shape values computed for `rows` (see [`super::Layout`]).
    shapes: HashMap<ValueId, Tensor>,
}

impl Env {
    /// An environment with no live values for `graph`.
    pub fn new(graph: &Graph) -> Self {
        Env {
            slots: (0..graph.values.len()).map(|_| None).collect(),
            rows: None,
            shapes: HashMap::new(),
        }
    }

    /// Sets the batch's row count (after rows joined or left): shape values
    /// computed for another count are recomputed when next read.
    pub fn set_rows(&mut self, rows: i64) {
        if self.rows != Some(rows) {
            self.rows = Some(rows);
            self.shapes.clear();
        }
    }

    /// Sets the value of `id` for this run.
    pub fn set(&mut self, id: ValueId, t: Tensor) {
        self.slots[id] = Some(t);
    }

    /// The tensor of `id`: a live value of this run or a graph constant (a
    /// constant set in the env, such as a faulty weight, overrides the graph's).
    pub fn get<'a>(&'a self, graph: &'a Graph, id: ValueId) -> Option<&'a Tensor> {
        (self.slots[id].as_ref())
            .or_else(|| self.shapes.get(&id))
            .or(graph.constant(id))
    }

    /// A live value of this run, to change in place (constants are not).
    pub fn get_mut(&mut self, id: ValueId) -> Option<&mut Tensor> {
        self.slots[id].as_mut()
    }

    /// Takes the value of `id` out of the run, freeing its slot.
    pub fn take(&mut self, id: ValueId) -> Option<Tensor> {
        self.slots[id].take().or_else(|| self.shapes.remove(&id))
    }

    /// Bytes held by the live values of the run.
    pub fn live_bytes(&self) -> u64 {
        let bytes = |t: &Tensor| (t.numel() * t.kind().elt_size_in_bytes()) as u64;
        self.slots.iter().flatten().map(bytes).sum()
    }

    /// Every live (non-constant) value of the run.
    pub fn live_mut(&mut self) -> impl Iterator<Item = (ValueId, &mut Tensor)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(id, t)| t.as_mut().map(|t| (id, t)))
    }
}

/// Runs a kernel, turning its error or (as a last line of defence) its
/// panic into a message.
pub fn catch_kernel<T>(
    kernel: impl FnOnce() -> std::result::Result<T, super::ops::KernelError>,
) -> std::result::Result<T, String> {
    match catch_unwind(AssertUnwindSafe(kernel)) {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(e.0),
        Err(_) => Err("the kernel panicked".to_string()),
    }
}

impl Graph {
    /// Runs the whole graph on `inputs` (one tensor per declared input) and
    /// returns the graph outputs.
    pub fn forward(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let mut env = self.start(inputs)?;
        self.run(0..self.nodes.len(), &mut env)?;
        self.outputs_of(&env)
    }

    /// Checks `inputs` against the declared inputs and puts them in a new env.
    pub fn start(&self, inputs: &[Tensor]) -> Result<Env> {
        self.check_inputs(inputs)?;
        let mut env = Env::new(self);
        for (&id, t) in self.input_values.iter().zip(inputs) {
            env.set(id, t.shallow_clone());
        }
        if let Some(rows) = inputs.first().and_then(|t| t.size().first().copied()) {
            env.set_rows(rows);
        }
        Ok(env)
    }

    /// The graph outputs, once every node has run.
    pub fn outputs_of(&self, env: &Env) -> Result<Vec<Tensor>> {
        self.outputs
            .iter()
            .map(|&id| {
                env.get(self, id)
                    .map(Tensor::shallow_clone)
                    .ok_or_else(|| Error::InvalidModel {
                        path: self.path.clone(),
                        msg: format!("output '{}' was not computed", self.values[id].name),
                    })
            })
            .collect()
    }

    /// Runs nodes `range` (topological indices) on `env`.
    pub fn run(&self, range: Range<usize>, env: &mut Env) -> Result<()> {
        self.run_observed(range, env, |_, _| {})
    }

    /// As [`Graph::run`], calling `observe` with each node and its outputs.
    pub fn run_observed(
        &self,
        range: Range<usize>,
        env: &mut Env,
        mut observe: impl FnMut(&Node, &[Tensor]),
    ) -> Result<()> {
        for node in &self.nodes[range] {
            let outputs = self.run_node(node, env)?;
            observe(node, &outputs);
            self.store(node, outputs, env);
        }
        Ok(())
    }

    /// As [`Graph::run`], calling `after` once each node's outputs are in the
    /// env and its dead inputs freed: the env then holds exactly the
    /// frontier of the cut after the node, which `after` may change (inject
    /// faults, drop batch rows).
    pub fn run_then(
        &self,
        range: Range<usize>,
        env: &mut Env,
        mut after: impl FnMut(&Node, &mut Env) -> Result<()>,
    ) -> Result<()> {
        for node in &self.nodes[range] {
            let outputs = self.run_node(node, env)?;
            self.store(node, outputs, env);
            after(node, env)?;
        }
        Ok(())
    }

    /// Keeps the outputs that are read later and frees inputs read for the
    /// last time.
    fn store(&self, node: &Node, outputs: Vec<Tensor>, env: &mut Env) {
        for (&id, t) in node.outputs.iter().zip(outputs) {
            if self.layout.is_derived(id) {
                env.shapes.insert(id, t);
            } else if self.values[id].last_use != node.index {
                env.set(id, t);
            }
        }
        for id in node.inputs.iter().flatten() {
            if self.values[*id].last_use == node.index {
                env.take(*id);
            }
        }
    }

    /// Computes the shape value `id` for the env's rows into the env, with
    /// the shape values it derives from. A Shape or Size node whose
    /// per-sample input is gone reads a stand-in of the shape it saw.
    fn shape_value(&self, id: ValueId, env: &mut Env) -> Result<()> {
        if env.get(self, id).is_some() {
            return Ok(());
        }
        let Source::Node { node, .. } = self.values[id].source else {
            return Ok(());
        };
        let node = &self.nodes[node];
        let fail = |msg: String| self.op_error(node, msg);
        let outputs = if self.layout.reads_a_sample(node) {
            let x = self.layout.stand_in(node, env.rows).ok_or_else(|| {
                fail("the shape of its input is not known yet (Graph::learn_layout runs the model on a sample)".into())
            })?;
            self.apply(node, &[Some(&x)])?
        } else {
            for &input in node.inputs.iter().flatten() {
                if self.layout.is_derived(input) {
                    self.shape_value(input, env)?;
                }
            }
            let ins: Vec<Option<&Tensor>> = node
                .inputs
                .iter()
                .map(|i| i.and_then(|i| env.get(self, i)))
                .collect();
            self.apply(node, &ins)?
        };
        for (&out, t) in node.outputs.iter().zip(outputs) {
            env.shapes.insert(out, t);
        }
        Ok(())
    }

    /// Runs the model on `sample` (a few rows per input) alone and twice over,
    /// unless done, to learn how its values follow the row count (see
    /// [`super::Layout`]): shape values must be computed for any row count,
    /// and a run resumed from a cut never ran the Shape nodes before it. A
    /// model whose batch is fixed learns nothing: its rows never change.
    pub fn learn_layout(&self, sample: &[Tensor]) -> Result<()> {
        if self.layout.is_learned() || self.check_inputs(sample).is_err() {
            return Ok(());
        }
        let rows = sample.first().and_then(|t| t.size().first().copied());
        let twice: Vec<Tensor> = sample.iter().map(|t| Tensor::cat(&[t, t], 0)).collect();
        let first = self.value_shapes(sample, |_, _| {})?;
        // Where the batch merged with another axis, the two copies' values
        // tell which of the two is the major one.
        let mut orders = vec![None; self.values.len()];
        let mut second = None;
        if let Some(rows) = rows.filter(|_| self.check_inputs(&twice).is_ok()) {
            let shapes = self.value_shapes(&twice, |id, t| {
                if let Some(before) = &first[id] {
                    orders[id] = super::layout::merged_order(before, rows, t);
                }
            })?;
            second = Some((2 * rows, shapes));
        }
        let runs = std::iter::once((rows.unwrap_or(1), first))
            .chain(second)
            .collect();
        let frontiers = (0..=self.nodes.len())
            .map(|cut| crate::split::frontier(self, cut))
            .collect::<Result<Vec<_>>>()?;
        self.layout.learn(runs, orders, &self.values, &frontiers);
        Ok(())
    }

    /// Every value's shape in a run on `inputs`, each node output also
    /// given to `observe`.
    fn value_shapes(
        &self,
        inputs: &[Tensor],
        mut observe: impl FnMut(ValueId, &Tensor),
    ) -> Result<Vec<Option<Vec<i64>>>> {
        let mut shapes = vec![None; self.values.len()];
        for (&id, t) in self.input_values.iter().zip(inputs) {
            shapes[id] = Some(t.size());
        }
        let mut env = self.start(inputs)?;
        self.run_observed(0..self.nodes.len(), &mut env, |node, outputs| {
            for (&id, t) in node.outputs.iter().zip(outputs) {
                shapes[id] = Some(t.size());
                observe(id, t);
            }
        })?;
        Ok(shapes)
    }

    /// The error of `node` failing with `msg`.
    pub fn op_error(&self, node: &Node, msg: impl Into<String>) -> Error {
        Error::Op {
            path: self.path.clone(),
            node: node.name.clone(),
            op: node.op.to_string(),
            opset: node.opset,
            msg: msg.into(),
        }
    }

    fn run_node(&self, node: &Node, env: &mut Env) -> Result<Vec<Tensor>> {
        let fail = |msg: String| self.op_error(node, msg);
        for &id in node.inputs.iter().flatten() {
            if self.layout.is_derived(id) {
                self.shape_value(id, env)?;
            }
        }
        let mut ins = Vec::with_capacity(node.inputs.len());
        for id in &node.inputs {
            match id {
                None => ins.push(None),
                Some(id) => ins.push(Some(env.get(self, *id).ok_or_else(|| {
                    fail(format!(
                        "input '{}' is not available (is the range resumed from the right cut?)",
                        self.values[*id].name
                    ))
                })?)),
            }
        }
        let mut outputs = self.apply(node, &ins)?;
        if let (Some(guard), Some(out)) = (self.guards.get(&node.index), outputs.first_mut()) {
            *out = guard.apply(out).map_err(|e| fail(e.to_string()))?;
        }
        if outputs.len() < node.outputs.len() {
            return Err(fail(format!(
                "produced {} outputs, the node declares {}",
                outputs.len(),
                node.outputs.len()
            )));
        }
        Ok(outputs)
    }

    /// Runs `node`'s kernel on the given inputs (in place of its own).
    pub fn apply(&self, node: &Node, ins: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
        let def = super::ops::def(node.op);
        self.guarded(node, || (def.kernel)(node, ins))
    }

    /// Runs a kernel of `node`, turning its errors (and, as a last line of
    /// defence, panics) into an op error naming the node.
    pub fn guarded<T>(
        &self,
        node: &Node,
        kernel: impl FnOnce() -> std::result::Result<T, super::ops::KernelError>,
    ) -> Result<T> {
        catch_kernel(kernel).map_err(|msg| self.op_error(node, msg))
    }

    fn check_inputs(&self, inputs: &[Tensor]) -> Result<()> {
        if inputs.len() != self.inputs.len() {
            let names: Vec<_> = self.inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(Error::Input {
                path: self.path.clone(),
                input: names.join(", "),
                msg: format!(
                    "the model takes {} inputs, got {}",
                    self.inputs.len(),
                    inputs.len()
                ),
            });
        }
        for (spec, t) in self.inputs.iter().zip(inputs) {
            let bad = |msg: String| Error::Input {
                path: self.path.clone(),
                input: spec.name.clone(),
                msg,
            };
            if t.kind() != spec.kind {
                return Err(bad(format!(
                    "expected {} data, got {}",
                    super::kind_name(spec.kind),
                    super::kind_name(t.kind())
                )));
            }
            let Some(dims) = &spec.dims else { continue };
            let size = t.size();
            let shape_ok = size.len() == dims.len()
                && dims
                    .iter()
                    .zip(&size)
                    .all(|(d, s)| d.is_none_or(|d| d == *s));
            if !shape_ok {
                let want: Vec<String> = dims
                    .iter()
                    .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
                    .collect();
                return Err(bad(format!(
                    "expected shape [{}], got {size:?}",
                    want.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Whether `id` is produced by a node or is a graph input (not a constant).
    pub fn is_computed(&self, id: ValueId) -> bool {
        !matches!(self.values[id].source, Source::Constant(_))
    }
}
