//! Agreement between two runs of the same injection (the engine and the
//! plain full forward pass).
//!
//! A sample's values do not depend on its batch (see `graph/ops/chain.rs`),
//! so the two runs' outputs are the same bits and their outcomes agree
//! exactly. Should two runs' fault-free outputs of a sample ever differ in
//! the last bits, an outcome that differs only by an effect of that size
//! (`masked` against `benign`, a top-1 tie) is told apart as rounding,
//! measured in the same run, and reported as such.

use tch::Tensor;

use super::{corrupt_flat, FaultSite, Injection, InjectionResult};
use crate::classify::{top1, Outcome, OutputDiff};
use crate::error::Result;
use crate::graph::Graph;

/// How far the outcomes of two runs of one injection agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// Same outcome.
    Exact,
    /// Different outcomes, but the faulty output is within rounding noise of
    /// the boundary between them.
    WithinRounding,
    /// Different outcomes, beyond rounding noise.
    Differs,
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// Rounding noise between the two runs: how far their fault-free outputs of
/// the sample lie apart, and at least a few units in the last place of the
/// largest output.
fn noise(a: &InjectionResult, b: &InjectionResult) -> f64 {
    let scale = a.golden.abs().max().double_value(&[]);
    max_abs_diff(&a.golden, &b.golden).max(scale * f64::from(f32::EPSILON) * 8.0)
}

/// How far a run's outcome lies from the masked/benign and benign/sde
/// boundaries: (max |faulty - golden|, margin of the faulty top-1 over the
/// golden class in the faulty output).
fn distances(r: &InjectionResult) -> Option<(f64, f64)> {
    let out = r.output.as_ref()?;
    let golden_class = top1(&r.golden);
    let margin = out.max().double_value(&[]) - out.double_value(&[golden_class]);
    Some((max_abs_diff(out, &r.golden), margin))
}

/// How far the outcomes of runs `a` and `b` of one injection agree.
pub fn agreement(a: &InjectionResult, b: &InjectionResult) -> Agreement {
    use Outcome::*;
    let (oa, ob) = (a.outcome(), b.outcome());
    let (ta, tb) = (&a.diff.task, &b.diff.task);
    if oa == ob {
        // A task's measures agree too: exactly, or in their counts (boxes,
        // positions) with fractions and shifts within rounding.
        return match (ta, tb) {
            (Some(x), Some(y)) if x.measures != y.measures => {
                match x.measures.counts() == y.measures.counts() {
                    true => Agreement::WithinRounding,
                    false => Agreement::Differs,
                }
            }
            _ => Agreement::Exact,
        };
    }
    // A task's benign and sde are its own measures': never a rounding of
    // the top-1.
    let task = ta.is_some() || tb.is_some();
    let tol = noise(a, b);
    // The run that is not masked (dropped rows have no output) must have
    // moved its output by no more than the noise, or its new top-1 must beat
    // the golden class by no more than the noise.
    let near = |r: &InjectionResult, boundary: Outcome| match (boundary, distances(r)) {
        (Masked, Some((diff, _))) => diff <= tol,
        (Benign, Some((_, margin))) => margin <= tol,
        _ => false,
    };
    let ok = match (oa, ob) {
        (Masked, Benign) => near(b, Masked),
        (Benign, Masked) => near(a, Masked),
        (Benign, Sde) => !task && near(b, Benign),
        (Sde, Benign) => !task && near(a, Benign),
        _ => false,
    };
    if ok {
        Agreement::WithinRounding
    } else {
        Agreement::Differs
    }
}

/// The batch size a model's input fixes, when above 1: such a model runs
/// only on batches of that many rows.
fn fixed_batch(graph: &Graph) -> Option<i64> {
    let dims = graph.inputs.first()?.dims.as_ref()?;
    dims.first().copied().flatten().filter(|&n| n > 1)
}

/// `t`'s first row when its first dimension is the batch `n` (the
/// sample's row); otherwise all of `t` (a batch of one, or a value
/// without a batch dimension).
fn sample_row(t: &Tensor, batch: Option<i64>) -> Tensor {
    match batch {
        Some(n) if t.dim() > 0 && t.size()[0] == n => t.narrow(0, 0, 1),
        _ => t.shallow_clone(),
    }
}

/// The oracle: `inj` run the plain way, on its sample alone (`inputs`, one
/// row) through the whole model with the faulty weights in place of the
/// graph's and the neuron faults applied as their nodes run, against the
/// fault-free forward pass of the same row. No cache, batching, dropping,
/// channel recompute or golden row in a batch: none of the engine's tricks.
/// A model whose input fixes a batch of N > 1 gets the sample N times; its
/// first row carries the neuron faults (their indices lie in one sample)
/// and is the one read and scanned for NaN/Inf.
pub fn plain_run(graph: &Graph, inputs: &[Tensor], inj: &Injection) -> Result<InjectionResult> {
    plain_run_outputs(graph, inputs, inj).map(|(r, _)| r)
}

/// As [`plain_run`], with the faulty outputs' first rows (`[1, ...]`
/// each; none when the run failed).
pub fn plain_run_outputs(
    graph: &Graph,
    inputs: &[Tensor],
    inj: &Injection,
) -> Result<(InjectionResult, Option<Vec<Tensor>>)> {
    let rows = inputs.first().and_then(|t| t.size().first().copied());
    let batch = fixed_batch(graph).filter(|_| rows == Some(1));
    let inputs: Vec<Tensor> = inputs
        .iter()
        .map(|t| match batch {
            Some(n) => {
                let mut size = t.size();
                size[0] = n;
                t.expand(size.as_slice(), false).contiguous()
            }
            None => t.shallow_clone(),
        })
        .collect();
    let golden = graph.forward(&inputs)?;
    let judged = |outputs: &[Tensor]| outputs[graph.judged].flatten(1, -1).get(0);
    let mut env = graph.start(&inputs)?;
    let mut sites = vec![None; inj.faults.len()];
    for (k, f) in inj.faults.iter().enumerate() {
        if let FaultSite::Weight { input, index } = f.site {
            let node = &graph.nodes[f.node];
            let id = node.inputs[input].expect("checked by the engine");
            let weight = env.get(graph, id).expect("a weight is a constant").copy();
            sites[k] = Some(
                corrupt_flat(&weight, index, &f.corrupt).map_err(|m| graph.op_error(node, m))?,
            );
            env.set(id, weight);
        }
    }
    let (mut first_nonfinite, mut detected) = (None, false);
    let run = graph.run_then(0..graph.nodes.len(), &mut env, |node, env| {
        for (k, f) in inj.faults.iter().enumerate() {
            let FaultSite::Neuron { index } = f.site else {
                continue;
            };
            if f.node == node.index {
                let t = env
                    .get_mut(node.outputs[0])
                    .expect("a faulted output is read later");
                *t = t.contiguous();
                sites[k] =
                    Some(corrupt_flat(t, index, &f.corrupt).map_err(|m| graph.op_error(node, m))?);
            }
        }
        super::batch::guard_again(graph, node, env)?;
        let nonfinite = node
            .outputs
            .iter()
            .filter_map(|&id| env.get(graph, id))
            .any(|t| {
                crate::graph::is_float(t.kind())
                    && !bool::try_from(sample_row(t, batch).isfinite().all()).unwrap_or(true)
            });
        if nonfinite {
            first_nonfinite.get_or_insert(node.index);
            detected |= graph.monitors.contains(&node.index);
        }
        Ok(())
    });
    let mut rows = None;
    let (output, diff, error) = match run.and_then(|()| graph.outputs_of(&env)) {
        Ok(outputs) => {
            rows = Some(outputs.iter().map(|o| o.narrow(0, 0, 1)).collect());
            // The faulty and the golden first row side by side, as one batch.
            let pairs = outputs
                .iter()
                .zip(&golden)
                .map(|(o, g)| Tensor::cat(&[o.narrow(0, 0, 1), g.narrow(0, 0, 1)], 0))
                .collect::<Vec<_>>();
            let diff = OutputDiff::of(&pairs, 0, 1, graph.judged, &graph.task);
            (Some(judged(&outputs)), diff, None)
        }
        Err(e @ crate::Error::Op { .. }) => (None, OutputDiff::default(), Some(e.to_string())),
        Err(e) => return Err(e),
    };
    let result = InjectionResult {
        id: inj.id,
        sample: inj.sample,
        sites: sites.into_iter().flatten().collect(),
        golden: judged(&golden),
        output,
        diff,
        masked_after: None,
        first_nonfinite,
        detected,
        whole_from: Some(0),
        error,
    };
    Ok((result, rows))
}
