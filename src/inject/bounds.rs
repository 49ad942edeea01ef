//! Static bounds on the magnitude of values, so the engine can skip the
//! NaN/Inf scan of a row after nodes that cannot produce one.
//!
//! A Clip with finite limits bounds its output whatever its (non-NaN)
//! input; a Conv or Gemm with constant weights turns a bound on its input
//! into one on its output (`max |y| <= max |x| * max over outputs of the
//! sum of |w| + max |b|`), and so on through Add and the ops that select,
//! move or average values. Where a row is still finite, no fault of it
//! lands on a node a bound rests on, and the bound is far below the
//! largest float, the node's output is finite: scanning it would find
//! nothing. MobileNetV2's depthwise and projection convolutions read
//! ReLU6 outputs, so most of their scans go. Which rule an op follows is
//! declared with the op ([`BoundRule`]).

use std::collections::BTreeSet;

use tch::{Kind, Tensor};

use crate::graph::{BoundRule, Graph, Node, ValueId, Weights};

/// A value whose bound stays below this holds no Inf in f32 or f64: far
/// below `f32::MAX`, so the rounding of sums cannot cross it.
const LIMIT: f64 = 1e30;

/// An upper bound on `|x|` over a value's elements, for rows whose faults
/// avoid `nodes` (the nodes whose outputs and weights the bound rests on).
#[derive(Debug, Clone)]
struct Bound {
    max_abs: f64,
    nodes: BTreeSet<usize>,
}

/// A bound per value of a graph, where one is known.
pub(super) struct Bounds {
    by_value: Vec<Option<Bound>>,
}

impl Bounds {
    pub fn of(graph: &Graph) -> Self {
        let mut by_value: Vec<Option<Bound>> = vec![None; graph.values.len()];
        for node in &graph.nodes {
            if let Some(bound) = node_bound(graph, node, &by_value) {
                for &out in &node.outputs {
                    by_value[out] = Some(bound.clone());
                }
            }
        }
        Bounds { by_value }
    }

    /// Whether value `id` (of `kind`) stays finite in a finite row whose
    /// faults lie on the nodes where `faulted` holds.
    pub fn stays_finite(&self, id: ValueId, kind: Kind, faulted: impl Fn(usize) -> bool) -> bool {
        matches!(kind, Kind::Float | Kind::Double)
            && self.by_value[id]
                .as_ref()
                .is_some_and(|b| b.max_abs < LIMIT && !b.nodes.iter().any(|&n| faulted(n)))
    }
}

/// The bound of `node`'s outputs from those of its inputs.
fn node_bound(graph: &Graph, node: &Node, known: &[Option<Bound>]) -> Option<Bound> {
    let input = |k: usize| -> Option<Bound> {
        let id = node.inputs.get(k).copied().flatten()?;
        match graph.constant(id) {
            Some(c) => Some(Bound {
                max_abs: max_abs(c)?,
                nodes: BTreeSet::new(),
            }),
            None => known[id].clone(),
        }
    };
    let constant = |k: usize| {
        node.inputs
            .get(k)
            .copied()
            .flatten()
            .and_then(|id| graph.constant(id))
    };
    let own = |max_abs: f64, mut nodes: BTreeSet<usize>| {
        nodes.insert(node.index);
        Some(Bound { max_abs, nodes })
    };
    match node.op.traits().bound {
        BoundRule::Unknown => None,
        BoundRule::Limits => {
            let (lo, hi) = clip_limits(graph, node)?;
            own(lo.abs().max(hi.abs()), BTreeSet::new())
        }
        BoundRule::Fixed(max_abs) => own(max_abs, BTreeSet::new()),
        BoundRule::Input => {
            let x = input(0)?;
            own(x.max_abs, x.nodes)
        }
        BoundRule::LargestInput => {
            let parts: Vec<Bound> = (0..node.inputs.len()).map(input).collect::<Option<_>>()?;
            let max = parts.iter().map(|b| b.max_abs).fold(0.0, f64::max);
            let all = parts.into_iter().reduce(|a, b| join(a, b, max))?;
            own(max, all.nodes)
        }
        BoundRule::SumOfInputs => {
            let (a, b) = (input(0)?, input(1)?);
            let sum = a.max_abs + b.max_abs;
            own(sum, join(a, b, sum).nodes)
        }
        BoundRule::Weighted => match node.op.weights()? {
            Weights::Filters => {
                let x = input(0)?;
                let gain = row_sums_max(constant(1)?, 0)?;
                let bias = constant(2).map_or(Some(0.0), max_abs)?;
                own(x.max_abs * gain + bias, x.nodes)
            }
            Weights::Columns => {
                let (alpha, beta) = (
                    node.attrs.float("alpha", 1.0).ok()?,
                    node.attrs.float("beta", 1.0).ok()?,
                );
                if node.attrs.int("transA", 0).ok()? != 0 {
                    return None;
                }
                let trans_b = node.attrs.int("transB", 0).ok()? != 0;
                let x = input(0)?;
                // Output column j sums |B[k, j]| over k: B's rows when transposed.
                let gain = row_sums_max(constant(1)?, if trans_b { 0 } else { 1 })?;
                let c = constant(2).map_or(Some(0.0), max_abs)?;
                own(
                    f64::from(alpha).abs() * x.max_abs * gain + f64::from(beta).abs() * c,
                    x.nodes,
                )
            }
            Weights::Matrix => None,
        },
    }
}

fn join(a: Bound, b: Bound, max_abs: f64) -> Bound {
    let mut nodes = a.nodes;
    nodes.extend(b.nodes);
    Bound { max_abs, nodes }
}

/// A Clip's limits, when both are finite constants.
fn clip_limits(graph: &Graph, node: &Node) -> Option<(f64, f64)> {
    let constants: Vec<Option<&Tensor>> = node
        .inputs
        .iter()
        .map(|id| id.and_then(|id| graph.constant(id)))
        .collect();
    match crate::graph::ops::clip_limits(node, &constants).ok()? {
        (Some(lo), Some(hi)) if lo.is_finite() && hi.is_finite() => Some((lo, hi)),
        _ => None,
    }
}

/// The largest `|x|` of a float constant.
fn max_abs(t: &Tensor) -> Option<f64> {
    if !crate::graph::is_float(t.kind()) {
        return None;
    }
    let m = t.f_abs().ok()?.f_max().ok()?.f_double_value(&[]).ok()?;
    m.is_finite().then_some(m)
}

/// The largest sum of `|w|` over the slices of `w` along `axis` (each
/// output channel of a Conv weight, each output column of a Gemm weight).
fn row_sums_max(w: &Tensor, axis: i64) -> Option<f64> {
    if !crate::graph::is_float(w.kind()) || w.dim() < 2 {
        return None;
    }
    let rows = w.f_transpose(0, axis).ok()?.f_flatten(1, -1).ok()?;
    let sums = rows
        .f_abs()
        .ok()?
        .f_sum_dim_intlist(1, false, Kind::Double)
        .ok()?;
    let m = sums.f_max().ok()?.f_double_value(&[]).ok()?;
    m.is_finite().then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Op;
    use crate::inject::tests::fixture;

    /// Every bound holds on real inputs, and MobileNetV2's layers after
    /// its first convolution (which reads the unbounded input) all have one:
    /// the ReLU6 limits carry through Conv, Add, pooling and Gemm.
    #[test]
    fn bounds_hold_on_the_fixtures() {
        for name in ["mobilenet_v2_ts17", "mobilenet_v2_dyn20"] {
            let (graph, input) = fixture(name);
            let bounds = Bounds::of(&graph);
            let mut env = graph.start(&[input]).unwrap();
            graph
                .run_then(0..graph.nodes.len(), &mut env, |node, env| {
                    for &id in &node.outputs {
                        let (Some(b), Some(t)) = (&bounds.by_value[id], env.get(&graph, id)) else {
                            continue;
                        };
                        let seen = t.abs().max().double_value(&[]);
                        let at = format!("{name}: node {} {}", node.index, node.op);
                        assert!(seen <= b.max_abs, "{at}: {seen} > {}", b.max_abs);
                    }
                    Ok(())
                })
                .unwrap();
            let first_conv = graph.nodes.iter().position(|n| n.op == Op::Conv).unwrap();
            for node in &graph.nodes[first_conv + 1..] {
                if matches!(node.op, Op::Conv | Op::Gemm) {
                    let bound = bounds.by_value[node.outputs[0]].as_ref();
                    assert!(
                        bound.is_some_and(|b| b.max_abs < LIMIT),
                        "{name}: node {} {} has no bound",
                        node.index,
                        node.op
                    );
                }
            }
        }
    }
}
