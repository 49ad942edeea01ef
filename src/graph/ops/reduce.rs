//! Reductions over axes, and ArgMax/ArgMin.
//! Specs: <https://onnx.ai/onnx/operators/onnx__ReduceMean.html> and siblings,
//! <https://onnx.ai/onnx/operators/onnx__ArgMax.html>,
//! <https://onnx.ai/onnx/operators/onnx__CumSum.html>.
//!
//! `axes` is an attribute before opset 18 (ReduceSum: before 13) and an
//! optional input after. No axes means all axes, unless
//! `noop_with_empty_axes` asks for the identity. `keepdims` defaults to 1.

use tch::{Kind, Tensor};

use super::shape::{list_arg, norm_axes};
use super::{axis, fail, input, one, to_i64s, Inputs, KResult, OpDef};
use crate::graph::Node;
use crate::graph::Op;

const REDUCE_ATTRS: &[&str] = &["axes", "keepdims", "noop_with_empty_axes"];
const ARG_ATTRS: &[&str] = &["axis", "keepdims", "select_last_index"];

/// A reduction op with the shared attributes.
const fn reduction(op: Op, kernel: super::Kernel) -> OpDef {
    OpDef {
        op,
        attrs: REDUCE_ATTRS,
        kernel,
    }
}

pub const OPS: &[OpDef] = &[
    reduction(Op::ReduceMean, reduce_mean),
    reduction(Op::ReduceSum, reduce_sum),
    reduction(Op::ReduceMax, reduce_max),
    reduction(Op::ReduceMin, reduce_min),
    reduction(Op::ReduceProd, reduce_prod),
    reduction(Op::ReduceL1, reduce_l1),
    reduction(Op::ReduceL2, reduce_l2),
    reduction(Op::ReduceSumSquare, reduce_sum_square),
    reduction(Op::ReduceLogSum, reduce_log_sum),
    reduction(Op::ReduceLogSumExp, reduce_log_sum_exp),
    OpDef {
        op: Op::ArgMax,
        attrs: ARG_ATTRS,
        kernel: arg_max,
    },
    OpDef {
        op: Op::ArgMin,
        attrs: ARG_ATTRS,
        kernel: arg_min,
    },
    OpDef {
        op: Op::CumSum,
        attrs: &["exclusive", "reverse"],
        kernel: cum_sum,
    },
    OpDef {
        op: Op::CumProd,
        attrs: &["exclusive", "reverse"],
        kernel: cum_prod,
    },
];

/// A reducer gets the input, the normalised axes (never empty unless the
/// input is a scalar) and keepdims.
type Reducer = fn(&Tensor, &[i64], bool) -> KResult<Tensor>;

fn reduce(node: &Node, inputs: &Inputs, f: Reducer) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let since = if node.op == Op::ReduceSum { 13 } else { 18 };
    let axes = list_arg(node, inputs, "axes", 1, since)?.unwrap_or_default();
    let keep = node.attrs.int("keepdims", 1)? != 0;
    let axes = if !axes.is_empty() {
        norm_axes(&axes, x.dim())?
    } else if node.attrs.int("noop_with_empty_axes", 0)? != 0 {
        return one(x.shallow_clone());
    } else {
        // Spelled out: torch reads an empty list as "all axes" only for some ops.
        (0..x.dim() as i64).collect()
    };
    one(f(x, &axes, keep)?)
}

/// Sum keeping the input type (torch would widen integers to int64).
fn sum_of(x: &Tensor, axes: &[i64], keep: bool) -> KResult<Tensor> {
    Ok(x.f_sum_dim_intlist(axes, keep, x.kind())?)
}

fn reduce_sum(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    reduce(node, inputs, sum_of)
}

fn reduce_mean(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    reduce(node, inputs, |x, axes, keep| {
        Ok(x.f_mean_dim(axes, keep, None::<Kind>)?)
    })
}

fn reduce_max(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    reduce(node, inputs, |x, axes, keep| match x.numel() {
        0 => empty_extreme(x, axes, keep, false),
        _ => Ok(x.f_amax(axes, keep)?),
    })
}

fn reduce_min(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    reduce(node, inputs, |x, axes, keep| match x.numel() {
        0 => empty_extreme(x, axes, keep, true),
        _ => Ok(x.f_amin(axes, keep)?),
    })
}

/// ReduceMax (ReduceMin with `min`) of an empty input, which torch refuses:
/// every output element reduces an empty set (or the output is empty), and
/// the spec gives the identity, -inf (+inf for the minimum), the type's
/// lowest (highest) value for integers, false (true) for bool.
fn empty_extreme(x: &Tensor, axes: &[i64], keep: bool, min: bool) -> KResult<Tensor> {
    use tch::Scalar;
    let shape = x.f_sum_dim_intlist(axes, keep, Kind::Float)?.size();
    let value = match (x.kind(), min) {
        (Kind::Bool, m) => Scalar::int(i64::from(m)),
        (Kind::Uint8, m) => Scalar::int(if m { 255 } else { 0 }),
        (Kind::Int8, m) => Scalar::int(if m { 127 } else { -128 }),
        (Kind::Int16, m) => Scalar::int(i64::from(if m { i16::MAX } else { i16::MIN })),
        (Kind::Int, m) => Scalar::int(i64::from(if m { i32::MAX } else { i32::MIN })),
        (Kind::Int64, m) => Scalar::int(if m { i64::MAX } else { i64::MIN }),
        (_, m) => Scalar::float(if m { f64::INFINITY } else { f64::NEG_INFINITY }),
    };
    Ok(Tensor::f_full(&shape, value, (x.kind(), x.device()))?)
}

/// torch's prod takes one axis at a time: go from the last axis down so the
/// remaining indices stay valid when dimensions are dropped.
fn reduce_prod(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    reduce(node, inputs, |x, axes, keep| {
        let mut sorted = axes.to_vec();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let mut y = x.shallow_clone();
        for a in sorted {
            y = y.f_prod_dim_int(a, keep, x.kind())?;
        }
        Ok(y)
    })
}

fn reduce_l1(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    reduce(node, inputs, |x, axes, keep| {
        sum_of(&x.f_abs()?, axes, keep)
    })
}

fn reduce_sum_square(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    reduce(node, inputs, |x, axes, keep| {
        sum_of(&x.f_square()?, axes, keep)
    })
}

fn reduce_l2(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    reduce(node, inputs, |x, axes, keep| {
        let y = sum_of(&x.f_square()?, axes, keep)?.f_sqrt()?;
        Ok(y.f_to_kind(x.kind())?)
    })
}

fn reduce_log_sum(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    reduce(node, inputs, |x, axes, keep| {
        Ok(sum_of(x, axes, keep)?.f_log()?)
    })
}

fn reduce_log_sum_exp(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    reduce(node, inputs, |x, axes, keep| Ok(x.f_logsumexp(axes, keep)?))
}

type ArgFn = fn(&Tensor, i64, bool) -> Result<Tensor, tch::TchError>;

/// ArgMax/ArgMin along `axis` (default 0). torch returns the first extreme
/// index; for `select_last_index` the axis is flipped and the index mirrored.
fn arg_extreme(node: &Node, inputs: &Inputs, f: ArgFn) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let a = axis(node.attrs.int("axis", 0)?, x.dim())?;
    let keep = node.attrs.int("keepdims", 1)? != 0;
    if node.attrs.int("select_last_index", 0)? == 0 {
        return one(f(x, a, keep)?);
    }
    let n = x.size().get(a as usize).copied().unwrap_or(1);
    let flipped = f(&x.f_flip([a])?, a, keep)?;
    one(flipped.f_neg()?.f_add_scalar(n - 1)?)
}

fn arg_max(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    arg_extreme(node, inputs, |x, a, k| x.f_argmax(a, k))
}

fn arg_min(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    arg_extreme(node, inputs, |x, a, k| x.f_argmin(a, k))
}

/// CumSum along the axis given as a scalar input, in the input's type;
/// `exclusive` leaves each element out of its own sum, `reverse` sums from
/// the end.
fn cum_sum(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    cumulative(node, inputs, false)
}

/// CumProd (opset 26): as CumSum with products; `exclusive` starts at 1.
fn cum_prod(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    cumulative(node, inputs, true)
}

fn cumulative(node: &Node, inputs: &Inputs, product: bool) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let a = to_i64s(input(inputs, 1)?)?;
    if a.len() != 1 {
        return fail(format!("axis should be a scalar, got {a:?}"));
    }
    let a = super::shape::data_axis(a[0], x.dim())?;
    let reverse = node.attrs.int("reverse", 0)? != 0;
    let exclusive = node.attrs.int("exclusive", 0)? != 0;
    let x = if reverse {
        x.f_flip([a])?
    } else {
        x.shallow_clone()
    };
    let n = x.size()[a as usize];
    let mut y = match product {
        true => x.f_cumprod(a, x.kind())?,
        false => x.f_cumsum(a, x.kind())?,
    };
    if exclusive && n > 0 {
        let first = x.f_narrow(a, 0, 1)?;
        let start = match product {
            true => first.f_ones_like()?,
            false => first.f_zeros_like()?,
        };
        y = Tensor::f_cat(&[start, y.f_narrow(a, 0, n - 1)?], a)?;
    }
    if reverse {
        y = y.f_flip([a])?;
    }
    one(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty reduction gives each type's identity; an empty axis that
    /// is kept makes an empty output.
    #[test]
    fn empty_sets_reduce_to_the_identity() {
        let cpu = tch::Device::Cpu;
        for (kind, max, min) in [
            (Kind::Int8, -128, 127),
            (Kind::Uint8, 0, 255),
            (Kind::Int, i64::from(i32::MIN), i64::from(i32::MAX)),
            (Kind::Int64, i64::MIN, i64::MAX),
        ] {
            let x = Tensor::zeros([2, 0], (kind, cpu));
            let hi = empty_extreme(&x, &[1], false, false).unwrap();
            let lo = empty_extreme(&x, &[1], false, true).unwrap();
            assert_eq!((hi.size(), hi.kind()), (vec![2], kind));
            assert_eq!(hi.int64_value(&[0]), max, "{kind:?}");
            assert_eq!(lo.int64_value(&[1]), min, "{kind:?}");
        }
        let x = Tensor::zeros([2, 0], (Kind::Float, cpu));
        assert_eq!(empty_extreme(&x, &[0], true, true).unwrap().size(), [1, 0]);
    }
}
