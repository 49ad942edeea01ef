//! Ops that pick elements by index.
//! Specs: <https://onnx.ai/onnx/operators/onnx__Gather.html>,
//! <https://onnx.ai/onnx/operators/onnx__GatherElements.html>,
//! <https://onnx.ai/onnx/operators/onnx__Slice.html>,
//! <https://onnx.ai/onnx/operators/onnx__GatherND.html>,
//! <https://onnx.ai/onnx/operators/onnx__ScatterElements.html>,
//! <https://onnx.ai/onnx/operators/onnx__ScatterND.html>,
//! <https://onnx.ai/onnx/operators/onnx__TopK.html>,
//! <https://onnx.ai/onnx/operators/onnx__NonZero.html>,
//! <https://onnx.ai/onnx/operators/onnx__OneHot.html>,
//! <https://onnx.ai/onnx/operators/onnx__Trilu.html>,
//! <https://onnx.ai/onnx/operators/onnx__Unique.html>,
//! <https://onnx.ai/onnx/operators/onnx__Scatter.html>,
//! <https://onnx.ai/onnx/operators/onnx__ReverseSequence.html>,
//! <https://onnx.ai/onnx/operators/onnx__TensorScatter.html>.
//!
//! Indices are checked here, before torch sees them: an index out of range
//! is a reported error naming the node, never a libtorch abort.

use tch::{Kind, Tensor};

use super::shape::{data_axis, list_arg, norm_axes};
use super::{fail, input, one, opt_input, to_f64, to_i64s, Inputs, KResult, OpDef};
use crate::graph::Node;
use crate::graph::Op;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::Unique,
        attrs: &["axis", "sorted"],
        kernel: unique,
    },
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
    OpDef {
        op: Op::GatherND,
        attrs: &["batch_dims"],
        kernel: gather_nd,
    },
    OpDef {
        op: Op::ScatterElements,
        attrs: &["axis", "reduction"],
        kernel: scatter_elements,
    },
    OpDef {
        op: Op::ScatterND,
        attrs: &["reduction"],
        kernel: scatter_nd,
    },
    OpDef {
        op: Op::TopK,
        attrs: &["axis", "k", "largest", "sorted"],
        kernel: top_k,
    },
    OpDef {
        op: Op::NonZero,
        attrs: &[],
        kernel: non_zero,
    },
    OpDef {
        op: Op::OneHot,
        attrs: &["axis"],
        kernel: one_hot,
    },
    OpDef {
        op: Op::Trilu,
        attrs: &["upper"],
        kernel: trilu,
    },
    OpDef {
        op: Op::Compress,
        attrs: &["axis"],
        kernel: compress,
    },
    OpDef {
        op: Op::Scatter,
        attrs: &["axis"],
        kernel: scatter,
    },
    OpDef {
        op: Op::ReverseSequence,
        attrs: &["batch_axis", "time_axis"],
        kernel: reverse_sequence,
    },
    OpDef {
        op: Op::TensorScatter,
        attrs: &["mode", "axis"],
        kernel: tensor_scatter,
    },
];

/// Unique: the distinct elements (or slices along `axis`) of X, sorted
/// ascending (lexicographically for slices) or, with `sorted` 0, in the
/// order they first occur; with the index of each one's first occurrence,
/// each input element's (slice's) position in Y, and the counts, all int64.
fn unique(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let sorted = node.attrs.int("sorted", 1)? != 0;
    let (y, inverse, counts, n) = match node.attrs.has("axis") {
        true => {
            let a = data_axis(node.attrs.int("axis", 0)?, x.dim())?;
            let (y, inverse, counts) = x.f_unique_dim(a, true, true, true)?;
            (y, inverse, counts, x.size()[a as usize])
        }
        false => {
            let flat = x.f_flatten(0, -1)?;
            let (y, inverse, counts) = flat.f_internal_unique2(true, true, true)?;
            (y, inverse.f_flatten(0, -1)?, counts, flat.numel() as i64)
        }
    };
    let k = counts.size()[0];
    let dev = x.device();
    let positions = Tensor::arange(n, (Kind::Int64, dev));
    let first = Tensor::full([k], n, (Kind::Int64, dev))
        .f_index_reduce(0, &inverse, &positions, "amin", true)?;
    if sorted {
        return Ok(vec![y, first, inverse, counts]);
    }
    // In order of first occurrence: Y's entries permuted, and each input's
    // position renumbered.
    let order = first.f_argsort(0, false)?;
    let renumber = Tensor::zeros([k], (Kind::Int64, dev)).f_scatter(
        0,
        &order,
        &Tensor::arange(k, (Kind::Int64, dev)),
    )?;
    let axis = match node.attrs.has("axis") {
        true => data_axis(node.attrs.int("axis", 0)?, x.dim())?,
        false => 0,
    };
    Ok(vec![
        y.f_index_select(axis, &order)?,
        first.f_index_select(0, &order)?,
        renumber.f_index_select(0, &inverse)?,
        counts.f_index_select(0, &order)?,
    ])
}

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

/// Row-major strides of `dims`.
fn strides(dims: &[i64]) -> Vec<i64> {
    let mut st = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        st[i] = st[i + 1] * dims[i + 1];
    }
    st
}

/// `indices` (last axis: one index per leading dimension of `dims`) as
/// offsets into those dimensions flattened, each index checked and
/// negative ones counted from the end.
fn flat_offsets(indices: &Tensor, dims: &[i64]) -> KResult<Tensor> {
    let k = dims.len() as i64;
    let st = strides(dims);
    let lead = indices.size()[..indices.dim() - 1].to_vec();
    let mut offset = Tensor::zeros(lead.as_slice(), (Kind::Int64, indices.device()));
    for j in 0..k {
        let column = indices.f_select(-1, j)?;
        let idx = checked_indices(&column, dims[j as usize])?;
        offset = offset.f_add(&idx.f_mul_scalar(st[j as usize])?)?;
    }
    Ok(offset)
}

/// GatherND: each index tuple of the last axis of `indices` (after
/// `batch_dims` leading axes shared with `data`) picks a slice of `data`.
fn gather_nd(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, indices) = (input(inputs, 0)?, input(inputs, 1)?);
    let b = node.attrs.int("batch_dims", 0)?;
    let (ds, is) = (x.size(), indices.size());
    let (r, q) = (ds.len() as i64, is.len() as i64);
    if q < 1 || r < 1 {
        return fail(format!(
            "data {ds:?} and indices {is:?} need rank at least 1"
        ));
    }
    let k = is[q as usize - 1];
    if b < 0 || b >= q.min(r) || k < 1 || b + k > r {
        return fail(format!(
            "indices {is:?} with batch_dims {b} do not index data {ds:?}"
        ));
    }
    let b = b as usize;
    if ds[..b] != is[..b] {
        return fail(format!(
            "the first {b} dimensions of data {ds:?} and indices {is:?} differ"
        ));
    }
    let batch: i64 = ds[..b].iter().product();
    let indexed = &ds[b..b + k as usize];
    let rest = &ds[b + k as usize..];
    let per_batch: i64 = indexed.iter().product();
    let idx = indices.f_to_kind(Kind::Int64)?;
    let offsets = flat_offsets(&idx, indexed)?.f_reshape([batch, -1])?;
    let base = Tensor::arange(batch, (Kind::Int64, x.device()))
        .f_mul_scalar(per_batch)?
        .f_unsqueeze(1)?;
    let rows = offsets.f_add(&base)?.f_flatten(0, -1)?;
    let mut data_shape = vec![batch * per_batch];
    data_shape.extend(rest);
    let picked = x
        .f_reshape(data_shape.as_slice())?
        .f_index_select(0, &rows)?;
    let mut shape = is[..q as usize - 1].to_vec();
    shape.extend(rest);
    one(picked.f_reshape(shape.as_slice())?)
}

/// The reduction attribute of the scatter ops, as `index_reduce` names it
/// (`None` for a plain copy); add and mul exist from opset 16, max and min
/// from 18.
fn scatter_reduction(node: &Node) -> KResult<Option<&'static str>> {
    let r = node.attrs.string("reduction", "none")?;
    let (name, since) = match r.as_str() {
        "none" => return Ok(None),
        "add" => ("sum", 16),
        "mul" => ("prod", 16),
        "max" => ("amax", 18),
        "min" => ("amin", 18),
        other => {
            return fail(format!(
                "reduction '{other}' is not one of none, add, mul, max, min"
            ))
        }
    };
    if node.opset < since {
        return fail(format!("reduction '{r}' exists from opset {since} on"));
    }
    Ok(Some(name))
}

/// Writes the rows `updates` of `data` (along axis 0) at `rows`, combined
/// with what is there by `reduction`.
fn scatter_rows(
    data: &Tensor,
    rows: &Tensor,
    updates: &Tensor,
    reduction: Option<&str>,
) -> KResult<Tensor> {
    let updates = updates.f_to_kind(data.kind())?;
    Ok(match reduction {
        None => data.f_index_copy(0, rows, &updates)?,
        Some("sum") => data.f_index_add(0, rows, &updates)?,
        Some(r) => data.f_index_reduce(0, rows, &updates, r, true)?,
    })
}

/// ScatterElements: output[..., indices[i][j], ...] = updates[i][j] along
/// `axis`, every other coordinate that of the update.
fn scatter_elements(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, indices, updates) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
    let reduction = scatter_reduction(node)?;
    let (ds, is) = (x.size(), indices.size());
    if ds.len() != is.len() || ds.is_empty() || is != updates.size() {
        return fail(format!(
            "data {ds:?}, indices {is:?} and updates {:?} need the same non-zero rank, indices and updates the same shape",
            updates.size()
        ));
    }
    let a = data_axis(node.attrs.int("axis", 0)?, ds.len())? as usize;
    if let Some(d) = (0..ds.len()).find(|&d| d != a && is[d] > ds[d]) {
        return fail(format!(
            "indices {is:?} exceed data {ds:?} in dimension {d}"
        ));
    }
    let idx = checked_indices(indices, ds[a])?;
    // The flat offset of every update: its own coordinates, but the index
    // along the axis.
    let st = strides(&ds);
    let dev = x.device();
    let mut offset = idx.f_mul_scalar(st[a])?;
    for (d, &n) in is.iter().enumerate() {
        if d == a {
            continue;
        }
        let mut shape = vec![1; is.len()];
        shape[d] = n;
        let coord = Tensor::arange(n, (Kind::Int64, dev))
            .f_mul_scalar(st[d])?
            .f_reshape(shape.as_slice())?;
        offset = offset.f_add(&coord)?;
    }
    let flat = scatter_rows(
        &x.f_flatten(0, -1)?,
        &offset.f_flatten(0, -1)?,
        &updates.f_flatten(0, -1)?,
        reduction,
    )?;
    one(flat.f_reshape(ds.as_slice())?)
}

/// Scatter (opsets 9 and 10): ScatterElements under its first name, which
/// opset 11 deprecated.
fn scatter(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    if node.opset >= 11 {
        return fail("Scatter is deprecated from opset 11: use ScatterElements");
    }
    scatter_elements(node, inputs)
}

/// ScatterND: each index tuple of the last axis of `indices` names a slice
/// of `data` that the matching slice of `updates` replaces (or combines with).
fn scatter_nd(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, indices, updates) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
    let reduction = scatter_reduction(node)?;
    let (ds, is, us) = (x.size(), indices.size(), updates.size());
    let q = is.len();
    let k = is.last().copied().unwrap_or(0);
    if q < 1 || ds.is_empty() || k < 1 || k as usize > ds.len() {
        return fail(format!(
            "indices {is:?} do not index data {ds:?} (last dimension from 1 to the data's rank)"
        ));
    }
    let k = k as usize;
    let mut want = is[..q - 1].to_vec();
    want.extend(&ds[k..]);
    if us != want {
        return fail(format!(
            "updates {us:?} should have shape {want:?} for data {ds:?} and indices {is:?}"
        ));
    }
    let idx = indices.f_to_kind(Kind::Int64)?;
    let rows = flat_offsets(&idx, &ds[..k])?.f_flatten(0, -1)?;
    let lead: i64 = ds[..k].iter().product();
    let mut data_shape = vec![lead];
    data_shape.extend(&ds[k..]);
    let mut upd_shape = vec![rows.size()[0]];
    upd_shape.extend(&ds[k..]);
    let y = scatter_rows(
        &x.f_reshape(data_shape.as_slice())?,
        &rows,
        &updates.f_reshape(upd_shape.as_slice())?,
        reduction,
    )?;
    one(y.f_reshape(ds.as_slice())?)
}

/// TopK: the k largest (or smallest) elements along `axis` and their int64
/// indices, sorted; equal values keep the lower index first. `k` is an
/// attribute before opset 10, a one-element input from 10 on; `largest` and
/// `sorted` exist from 11 (unsorted output may be in any order, so it is
/// sorted too).
fn top_k(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let k = if node.opset < 10 {
        if node.attrs.has("k") {
            node.attrs.int("k", 0)?
        } else {
            return fail("attribute 'k' is required");
        }
    } else {
        if node.attrs.has("k") {
            return fail("'k' is input 1 from opset 10, not an attribute");
        }
        let k = to_i64s(input(inputs, 1)?)?;
        if k.len() != 1 {
            return fail(format!("k should hold one value, got {k:?}"));
        }
        k[0]
    };
    let size = x.size();
    let a = data_axis(node.attrs.int("axis", -1)?, size.len())?;
    let n = size[a as usize];
    if k < 0 || k > n {
        return fail(format!("k {k} is out of range for an axis of size {n}"));
    }
    let largest = node.attrs.int("largest", 1)? != 0;
    let (values, indices) = x.f_sort_stable(true, a, largest)?;
    Ok(vec![values.f_narrow(a, 0, k)?, indices.f_narrow(a, 0, k)?])
}

/// NonZero: the int64 indices of the non-zero elements, one row per
/// dimension, in row-major order.
fn non_zero(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    if x.dim() == 0 {
        let n = i64::from(x.f_ne(0)?.f_int64_value(&[])? != 0);
        return one(Tensor::zeros([1, n], (Kind::Int64, x.device())));
    }
    one(x.f_nonzero()?.f_transpose(0, 1)?.f_contiguous()?)
}

/// OneHot: a new axis of `depth` positions, `values[1]` at each index and
/// `values[0]` elsewhere. Negative indices count from the end of the depth;
/// indices outside [-depth, depth) give rows of `values[0]` only.
fn one_hot(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (indices, depth, values) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
    let depth = to_f64(depth)?;
    if !(depth >= 1.0 && depth < (1u64 << 40) as f64) {
        return fail(format!("depth {depth} is not a positive count"));
    }
    let depth = depth as i64;
    if values.numel() != 2 {
        return fail(format!(
            "values should hold [off_value, on_value], got shape {:?}",
            values.size()
        ));
    }
    let rank = indices.dim() as i64 + 1;
    let a = node.attrs.int("axis", -1)?;
    let a = if a < 0 { a + rank } else { a };
    if a < 0 || a >= rank {
        return fail(format!(
            "axis {} out of range for an output of rank {rank}",
            node.attrs.int("axis", -1)?
        ));
    }
    let idx = indices.f_to_kind(Kind::Int64)?;
    let idx = idx.f_where_self(&idx.f_ge(0)?, &idx.f_add_scalar(depth)?)?;
    let mut shape = vec![1; rank as usize];
    shape[a as usize] = depth;
    let positions =
        Tensor::arange(depth, (Kind::Int64, indices.device())).f_reshape(shape.as_slice())?;
    let hot = idx.f_unsqueeze(a)?.f_eq_tensor(&positions)?;
    let values = values.f_flatten(0, -1)?;
    let (off, on) = (values.f_get(0)?, values.f_get(1)?);
    one(on.f_where_self(&hot, &off)?)
}

/// Trilu: the upper (or lower) triangle of the last two dimensions from
/// diagonal `k` (optional scalar input, default 0), zeros elsewhere.
fn trilu(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    if x.dim() < 2 {
        return fail(format!(
            "input of shape {:?} needs rank at least 2",
            x.size()
        ));
    }
    let k = match opt_input(inputs, 1) {
        Some(t) => {
            let v = to_i64s(t)?;
            if v.len() != 1 {
                return fail(format!("k should hold one value, got {v:?}"));
            }
            v[0]
        }
        None => 0,
    };
    // Beyond the matrix both ways the result is all or nothing; clamping
    // keeps libtorch's diagonal arithmetic away from overflow.
    let size = x.size();
    let bound = size[size.len() - 1] + size[size.len() - 2] + 1;
    let k = k.clamp(-bound, bound);
    if node.attrs.int("upper", 1)? != 0 {
        one(x.f_triu(k)?)
    } else {
        one(x.f_tril(k)?)
    }
}

/// Compress: the slices along `axis` (of the flattened input without one)
/// where the condition is true; a shorter condition leaves out the rest.
fn compress(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let cond = input(inputs, 1)?;
    if cond.dim() != 1 {
        return fail(format!(
            "condition of shape {:?} should be 1-D",
            cond.size()
        ));
    }
    let (x, a) = match node.attrs.has("axis") {
        true => (
            x.shallow_clone(),
            data_axis(node.attrs.int("axis", 0)?, x.dim())?,
        ),
        false => (x.f_flatten(0, -1)?, 0),
    };
    let len = x.size()[a as usize];
    let keep = cond.f_to_kind(Kind::Bool)?.f_nonzero()?.f_flatten(0, -1)?;
    let past = to_i64s(&keep)?.into_iter().find(|&i| i >= len);
    if let Some(i) = past {
        return fail(format!(
            "condition is true at {i}, past the {len} slices of axis {a}"
        ));
    }
    one(x.f_index_select(a, &keep)?)
}

/// ReverseSequence: for each batch entry `b` (along `batch_axis`), its first
/// `sequence_lens[b]` steps along `time_axis` reversed, the rest kept.
fn reverse_sequence(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, lens) = (input(inputs, 0)?, input(inputs, 1)?);
    let size = x.size();
    let (b_axis, t_axis) = (
        node.attrs.int("batch_axis", 1)?,
        node.attrs.int("time_axis", 0)?,
    );
    if size.len() < 2 || ![(0, 1), (1, 0)].contains(&(b_axis, t_axis)) {
        return fail(format!(
            "batch_axis {b_axis} and time_axis {t_axis} should be 0 and 1 in either order, over data of rank 2 or more (shape {size:?})"
        ));
    }
    let (batch, time) = (size[b_axis as usize], size[t_axis as usize]);
    let lens = to_i64s(lens)?;
    if lens.len() as i64 != batch || lens.iter().any(|&l| l < 0 || l > time) {
        return fail(format!(
            "sequence_lens {lens:?} should hold {batch} lengths from 0 to {time}"
        ));
    }
    // The source time step of every (batch, time) position.
    let source: Vec<i64> = (lens.iter())
        .flat_map(|&l| (0..time).map(move |t| if t < l { l - 1 - t } else { t }))
        .collect();
    let mut shape = vec![1; size.len()];
    let (bt, tt) = (b_axis as usize, t_axis as usize);
    shape[bt] = batch;
    shape[tt] = time;
    let mut index = Tensor::from_slice(&source)
        .f_to(x.device())?
        .f_reshape([batch, time])?;
    if bt > tt {
        index = index.f_transpose(0, 1)?;
    }
    let index = index
        .f_reshape(shape.as_slice())?
        .f_expand(size.as_slice(), false)?;
    one(x.f_gather(t_axis, &index, false)?)
}

/// TensorScatter: the cache `past_cache` with, for each batch entry `b`,
/// the `update` steps written along `axis` from `write_indices[b]` (0
/// without the input); in `circular` mode the positions wrap around the
/// cache length, in `linear` mode they must fit in it.
fn tensor_scatter(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (past, update) = (input(inputs, 0)?, input(inputs, 1)?);
    let (ps, us) = (past.size(), update.size());
    let a = data_axis(node.attrs.int("axis", -2)?, ps.len())? as usize;
    let fits = ps.len() == us.len()
        && (0..ps.len()).all(|d| {
            if d == a {
                us[d] <= ps[d]
            } else {
                us[d] == ps[d]
            }
        });
    if a == 0 || !fits {
        return fail(format!(
            "update {us:?} should match past_cache {ps:?} but along axis {a} (not 0, the batch), where it may be shorter"
        ));
    }
    let circular = match node.attrs.string("mode", "linear")?.as_str() {
        "linear" => false,
        "circular" => true,
        other => return fail(format!("mode '{other}' is not linear or circular")),
    };
    let (batch, max, len) = (ps[0], ps[a], us[a]);
    let starts = match opt_input(inputs, 2) {
        Some(t) => to_i64s(t)?,
        None => vec![0; batch as usize],
    };
    if starts.len() as i64 != batch {
        return fail(format!(
            "write_indices {starts:?} should hold {batch} values"
        ));
    }
    let mut rows = Vec::with_capacity(batch as usize);
    for (b, &start) in starts.iter().enumerate() {
        if start < 0 || (!circular && start + len > max) {
            return fail(format!(
                "write index {start} of batch entry {b} leaves no room for {len} steps in a cache of {max}"
            ));
        }
        let positions: Vec<i64> = (start..start + len)
            .map(|p| if circular { p % max } else { p })
            .collect();
        let positions = Tensor::from_slice(&positions).f_to(past.device())?;
        let (p, u) = (past.f_select(0, b as i64)?, update.f_select(0, b as i64)?);
        rows.push(p.f_index_copy(a as i64 - 1, &positions, &u)?);
    }
    match rows.is_empty() {
        true => one(past.shallow_clone()),
        false => one(Tensor::f_stack(&rows, 0)?),
    }
}
