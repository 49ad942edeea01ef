//! Ops that pick elements by index.
//! Specs: <https://onnx.ai/onnx/operators/onnx__Gather.html>,
//! <https://onnx.ai/onnx/operators/onnx__GatherElements.html>,
//! <https://onnx.ai/onnx/operators/onnx__Slice.html>.
//!
//! Indices are checked here, before torch sees them: an index out of range
//! is a reported error naming the node, never a libtorch abort.

use tch::{Kind, Tensor};

use super::shape::{data_axis, list_arg, norm_axes};
use super::{fail, input, one, Inputs, KResult, OpDef};
use crate::graph::Node;
use crate::graph::Op;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::Gather,
        attrs: &["axis"],
        kernel: gather,
    },
    OpDef {
        op: Op::GatherElements,
        attrs: &["axis"],
        kernel: gather_elements,
    },
    OpDef {
        op: Op::Slice,
        attrs: &["starts", "ends", "axes"],
        kernel: slice,
    },
];

/// `indices` as int64 with negative entries counted from the end of an axis
/// of size `n`; fails if any lies outside [-n, n).
fn checked_indices(indices: &Tensor, n: i64) -> KResult<Tensor> {
    let idx = indices.f_to_kind(Kind::Int64)?;
    if idx.numel() == 0 {
        return Ok(idx);
    }
    let lo = idx.f_min()?.f_int64_value(&[])?;
    let hi = idx.f_max()?.f_int64_value(&[])?;
    if lo < -n || hi >= n {
        let bad = if lo < -n { lo } else { hi };
        return fail(format!(
            "index {bad} is out of range for an axis of size {n}"
        ));
    }
    // In [-n, n), the remainder by n maps negatives to n + i.
    Ok(idx.f_remainder(n)?)
}

/// Gather: output shape is data[..axis] ++ indices ++ data[axis + 1..].
fn gather(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, indices) = (input(inputs, 0)?, input(inputs, 1)?);
    let size = x.size();
    let a = data_axis(node.attrs.int("axis", 0)?, size.len())? as usize;
    let idx = checked_indices(indices, size[a])?;
    let picked = x.f_index_select(a as i64, &idx.f_flatten(0, -1)?)?;
    let mut shape = size[..a].to_vec();
    shape.extend(idx.size());
    shape.extend(&size[a + 1..]);
    one(picked.f_reshape(shape.as_slice())?)
}

/// GatherElements: out[i][j][k] = data[index[i][j][k]][j][k] along `axis`.
fn gather_elements(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, indices) = (input(inputs, 0)?, input(inputs, 1)?);
    if x.dim() != indices.dim() || x.dim() == 0 {
        return fail(format!(
            "data {:?} and indices {:?} need the same non-zero rank",
            x.size(),
            indices.size()
        ));
    }
    let a = data_axis(node.attrs.int("axis", 0)?, x.dim())?;
    let idx = checked_indices(indices, x.size()[a as usize])?;
    one(x.f_gather(a, &idx, false)?)
}

/// Slice: per listed axis, elements start, start + step, ... before end.
/// starts/ends/axes are attributes before opset 10, inputs (with steps)
/// after. Negative starts/ends count from the end; both clamp to the axis
/// (to [0, n] for positive steps, [-1, n - 1] for negative ones), so
/// INT64_MAX or INT64_MIN mean "to the end".
fn slice(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let size = x.size();
    let arg = |name, index| list_arg(node, inputs, name, index, 10);
    let (Some(starts), Some(ends)) = (arg("starts", 1)?, arg("ends", 2)?) else {
        return fail("starts and ends are required");
    };
    let k = starts.len();
    let axes = arg("axes", 3)?.unwrap_or_else(|| (0..k as i64).collect());
    let steps = list_arg(node, inputs, "steps", 4, 10)?.unwrap_or_else(|| vec![1; k]);
    if ends.len() != k || axes.len() != k || steps.len() != k {
        return fail(format!(
            "starts {starts:?}, ends {ends:?}, axes {axes:?}, steps {steps:?} differ in length"
        ));
    }
    let axes = norm_axes(&axes, size.len())?;
    let mut y = x.shallow_clone();
    for i in 0..k {
        y = slice_axis(
            &y,
            axes[i],
            size[axes[i] as usize],
            starts[i],
            ends[i],
            steps[i],
        )?;
    }
    one(y)
}

fn slice_axis(x: &Tensor, a: i64, n: i64, start: i64, end: i64, step: i64) -> KResult<Tensor> {
    let from_end = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
    let (start, end) = (from_end(start), from_end(end));
    if step > 0 {
        let (s, e) = (start.clamp(0, n), end.clamp(0, n));
        return Ok(x.f_slice(a, s, e.max(s), step)?);
    }
    if step == 0 {
        return fail(format!("step 0 on axis {a}"));
    }
    // max then min rather than clamp: for n == 0 the range [0, -1] is empty.
    let s = start.max(0).min(n - 1);
    let e = end.max(-1).min(n - 1);
    let count = if s > e {
        (s - e - 1) / step.saturating_neg() + 1
    } else {
        0
    };
    let index: Vec<i64> = (0..count).map(|j| s + j * step).collect();
    let index = Tensor::from_slice(&index).f_to(x.device())?;
    Ok(x.f_index_select(a, &index)?)
}
