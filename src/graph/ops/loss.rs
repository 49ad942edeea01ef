//! Loss ops.
//! Specs: <https://onnx.ai/onnx/operators/onnx__NegativeLogLikelihoodLoss.html>,
//! <https://onnx.ai/onnx/operators/onnx__SoftmaxCrossEntropyLoss.html>.
//!
//! Both pick, per sample and position, the input at the target class
//! (`input[n, target[n, d...], d...]`), negated and scaled by the class's
//! weight (1 without weights); a target equal to `ignore_index` counts
//! neither its loss nor its weight. `mean` divides the sum of the losses by
//! the sum of the weights counted. Targets are checked before libtorch sees
//! them.

use tch::{Kind, Tensor};

use super::{fail, input, one, opt_input, Inputs, KResult, OpDef};
use crate::graph::Node;
use crate::graph::Op;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::NegativeLogLikelihoodLoss,
        attrs: &["reduction", "ignore_index"],
        kernel: nll_loss,
    },
    OpDef {
        op: Op::SoftmaxCrossEntropyLoss,
        attrs: &["reduction", "ignore_index"],
        kernel: softmax_cross_entropy_loss,
    },
];

/// The negative log-likelihood of `x` `[N, C, d...]` at `target`
/// `[N, d...]`, reduced as the node's `reduction` says.
fn nll(node: &Node, x: &Tensor, target: &Tensor, weight: Option<&Tensor>) -> KResult<Tensor> {
    let (xs, ts) = (x.size(), target.size());
    if xs.len() < 2 {
        return fail(format!("input must be [N, C, d...], got shape {xs:?}"));
    }
    let mut want = vec![xs[0]];
    want.extend(&xs[2..]);
    if ts != want {
        return fail(format!(
            "target must be {want:?} for input {xs:?}, got shape {ts:?}"
        ));
    }
    if !matches!(target.kind(), Kind::Int64 | Kind::Int) {
        return fail(format!(
            "target must be int32 or int64, got {:?}",
            target.kind()
        ));
    }
    let c = xs[1];
    if let Some(w) = weight {
        if w.size() != [c] {
            return fail(format!(
                "weight must be [{c}] for {c} classes, got shape {:?}",
                w.size()
            ));
        }
    }
    let reduction = node.attrs.string("reduction", "mean")?;
    if !["none", "sum", "mean"].contains(&reduction.as_str()) {
        return fail(format!("reduction '{reduction}' is not none, sum or mean"));
    }
    let t = target.f_to_kind(Kind::Int64)?;
    let keep = match node.attrs.has("ignore_index") {
        true => t.f_ne(node.attrs.int("ignore_index", 0)?)?,
        false => t.f_ones_like()?.f_to_kind(Kind::Bool)?,
    };
    let t = t.f_where_self(&keep, &t.f_zeros_like()?)?;
    if t.numel() > 0 {
        let (lo, hi) = (t.f_min()?.int64_value(&[]), t.f_max()?.int64_value(&[]));
        if lo < 0 || hi >= c {
            let bad = if lo < 0 { lo } else { hi };
            return fail(format!(
                "target {bad} is out of range for {c} classes (and not ignore_index)"
            ));
        }
    }
    let picked = x.f_gather(1, &t.f_unsqueeze(1)?, false)?.f_squeeze_dim(1)?;
    let w = match weight {
        Some(w) => w
            .f_to_kind(x.kind())?
            .f_index_select(0, &t.f_flatten(0, -1)?)?
            .f_reshape(ts.as_slice())?,
        None => picked.f_ones_like()?,
    };
    let w = w.f_mul(&keep.f_to_kind(x.kind())?)?;
    let loss = picked.f_neg()?.f_mul(&w)?;
    Ok(match reduction.as_str() {
        "none" => loss,
        "sum" => loss.f_sum(x.kind())?,
        _ => loss.f_sum(x.kind())?.f_div(&w.f_sum(x.kind())?)?,
    })
}

/// NegativeLogLikelihoodLoss: inputs are log-probabilities.
fn nll_loss(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, target) = (input(inputs, 0)?, input(inputs, 1)?);
    one(nll(node, x, target, opt_input(inputs, 2))?)
}

/// SoftmaxCrossEntropyLoss: the log-likelihood of the log-softmax of the
/// scores over axis 1; its second output is that log-softmax.
fn softmax_cross_entropy_loss(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, target) = (input(inputs, 0)?, input(inputs, 1)?);
    if x.dim() < 2 {
        return fail(format!(
            "scores must be [N, C, d...], got shape {:?}",
            x.size()
        ));
    }
    let log_prob = x.f_log_softmax(1, x.kind())?;
    let loss = nll(node, &log_prob, target, opt_input(inputs, 2))?;
    Ok(vec![loss, log_prob])
}
