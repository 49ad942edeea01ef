//! Ops that move, view, create or reshape data without arithmetic.
//! Specs: <https://onnx.ai/onnx/operators/> (Flatten, Reshape, Transpose,
//! Squeeze, Unsqueeze, Concat, Split, Shape, Size, ConstantOfShape, Expand,
//! Tile, Range, Pad, Identity, Dropout, DepthToSpace, SpaceToDepth).
//!
//! Several ops moved an argument from an attribute to an input in some opset
//! (axes of Squeeze/Unsqueeze and the reductions, Split sizes, Pad pads);
//! [`list_arg`] reads it from the right place for the node's opset.
//! Shape-like outputs are int64 tensors on the device of the data, so they
//! combine with constants after `Graph::to_device`.

use tch::{Device, Kind, Tensor};

use super::{axis, fail, input, one, opt_input, to_f64, to_i64s, Inputs, KResult, OpDef};
use crate::graph::Node;
use crate::graph::Op;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::Flatten,
        attrs: &["axis"],
        kernel: flatten,
    },
    OpDef {
        op: Op::Reshape,
        attrs: &["allowzero"],
        kernel: reshape,
    },
    OpDef {
        op: Op::Transpose,
        attrs: &["perm"],
        kernel: transpose,
    },
    OpDef {
        op: Op::Squeeze,
        attrs: &["axes"],
        kernel: squeeze,
    },
    OpDef {
        op: Op::Unsqueeze,
        attrs: &["axes"],
        kernel: unsqueeze,
    },
    OpDef {
        op: Op::Concat,
        attrs: &["axis"],
        kernel: concat,
    },
    OpDef {
        op: Op::Split,
        attrs: &["axis", "split", "num_outputs"],
        kernel: split,
    },
    OpDef {
        op: Op::Shape,
        attrs: &["start", "end"],
        kernel: shape,
    },
    OpDef {
        op: Op::Size,
        attrs: &[],
        kernel: size,
    },
    OpDef {
        op: Op::ConstantOfShape,
        attrs: &["value"],
        kernel: constant_of_shape,
    },
    OpDef {
        op: Op::Expand,
        attrs: &[],
        kernel: expand,
    },
    OpDef {
        op: Op::Tile,
        attrs: &[],
        kernel: tile,
    },
    OpDef {
        op: Op::Range,
        attrs: &["stash_type"],
        kernel: range,
    },
    OpDef {
        op: Op::Pad,
        attrs: &["mode", "pads", "value"],
        kernel: pad,
    },
    OpDef {
        op: Op::Identity,
        attrs: &[],
        kernel: identity,
    },
    OpDef {
        op: Op::Dropout,
        attrs: &["ratio", "seed", "is_test"],
        kernel: dropout,
    },
    OpDef {
        op: Op::DepthToSpace,
        attrs: &["blocksize", "mode"],
        kernel: depth_to_space,
    },
    OpDef {
        op: Op::SpaceToDepth,
        attrs: &["blocksize", "mode"],
        kernel: space_to_depth,
    },
    OpDef {
        op: Op::CenterCropPad,
        attrs: &["axes"],
        kernel: center_crop_pad,
    },
];

/// An int list argument that is the attribute `name` before opset `since`
/// and input `index` from `since` on; `None` when absent. Finding it in the
/// other place is an error, so a misplaced argument is never ignored.
pub(super) fn list_arg(
    node: &Node,
    inputs: &Inputs,
    name: &str,
    index: usize,
    since: i64,
) -> KResult<Option<Vec<i64>>> {
    if node.opset < since {
        if opt_input(inputs, index).is_some() {
            return fail(format!(
                "'{name}' is an attribute before opset {since}, not input {index}"
            ));
        }
        node.attrs.ints(name)
    } else {
        if node.attrs.has(name) {
            return fail(format!(
                "'{name}' is input {index} from opset {since}, not an attribute"
            ));
        }
        opt_input(inputs, index).map(to_i64s).transpose()
    }
}

/// As [`axis`], for ops that index the dimensions: a scalar has none
/// ([`axis`] lets axis 0 through for rank 0, where torch treats a scalar as
/// having one dimension).
pub(super) fn data_axis(a: i64, rank: usize) -> KResult<i64> {
    if rank == 0 {
        return fail(format!("axis {a} does not exist in a scalar"));
    }
    axis(a, rank)
}

/// Normalises possibly negative `axes` for rank `rank`, rejecting repeats.
pub(super) fn norm_axes(axes: &[i64], rank: usize) -> KResult<Vec<i64>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let a = data_axis(a, rank)?;
        if out.contains(&a) {
            return fail(format!("axis {a} appears twice in {axes:?}"));
        }
        out.push(a);
    }
    Ok(out)
}

/// An int64 vector as a 1-D tensor on `device`.
fn int_tensor(values: &[i64], device: Device) -> KResult<Tensor> {
    Ok(Tensor::from_slice(values).f_to(device)?)
}

fn identity(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(input(inputs, 0)?.shallow_clone())
}

/// Dropout is the identity in inference, and in training with ratio 0 (it
/// drops nothing); any other training run is rejected, not silently turned
/// into inference. The optional mask output keeps every
/// element: all true, of the input's type before opset 10 (as the ONNX
/// reference implementation; onnxruntime fills that old mask with zeros).
fn dropout(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    if node.attrs.int("is_test", 1)? == 0 {
        return fail("is_test 0 (training) is not supported");
    }
    if let Some(t) = opt_input(inputs, 2) {
        // Training with ratio 0 drops nothing: it is the identity too.
        let ratio = opt_input(inputs, 1).map(to_f64).transpose()?.unwrap_or(0.5);
        if to_f64(t)? != 0.0 && ratio != 0.0 {
            return fail(format!(
                "training_mode true with ratio {ratio} is not supported (inference, or ratio 0, only)"
            ));
        }
    }
    let mut out = vec![x.shallow_clone()];
    if node.outputs.len() > 1 {
        let kind = if node.opset < 10 {
            x.kind()
        } else {
            Kind::Bool
        };
        out.push(x.f_ones_like()?.f_to_kind(kind)?);
    }
    Ok(out)
}

/// Flatten to 2-D: dimensions before `axis` form the rows.
fn flatten(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(to_2d(input(inputs, 0)?, node.attrs.int("axis", 1)?)?)
}

/// `x` as a matrix whose rows are the dimensions before axis `a` (ONNX's
/// 2-D coercion, shared by Flatten and Softmax before opset 13). `a` may
/// equal the rank (a single column).
pub(super) fn to_2d(x: &Tensor, a: i64) -> KResult<Tensor> {
    let size = x.size();
    let a = if a == size.len() as i64 {
        a
    } else {
        axis(a, size.len())?
    } as usize;
    let rows: i64 = size[..a].iter().product();
    let cols: i64 = size[a..].iter().product();
    Ok(x.f_reshape([rows, cols])?)
}

/// Reshape: 0 copies the input dimension (unless allowzero), -1 is inferred.
fn reshape(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let mut shape = to_i64s(input(inputs, 1)?)?;
    if shape.iter().filter(|&&d| d == -1).count() > 1 {
        return fail(format!("shape {shape:?} has more than one -1"));
    }
    if let Some(d) = shape.iter().find(|&&d| d < -1) {
        return fail(format!("shape {shape:?} has the invalid entry {d}"));
    }
    if node.attrs.int("allowzero", 0)? == 0 {
        let size = x.size();
        for (i, d) in shape.iter_mut().enumerate() {
            if *d == 0 {
                *d = match size.get(i) {
                    Some(&s) => s,
                    None => {
                        return fail(format!(
                            "shape entry {i} is 0 but the input has rank {}",
                            size.len()
                        ))
                    }
                };
            }
        }
    } else if shape.contains(&0) && shape.contains(&-1) {
        return fail(format!(
            "shape {shape:?} has both 0 and -1 with allowzero 1"
        ));
    }
    one(x.f_reshape(shape.as_slice())?)
}

/// Transpose: `perm` defaults to reversing the axes.
fn transpose(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let rank = x.dim();
    let perm = match node.attrs.ints("perm")? {
        Some(p) => p,
        None => (0..rank as i64).rev().collect(),
    };
    if perm.len() != rank {
        return fail(format!(
            "perm {perm:?} has {} entries for rank {rank}",
            perm.len()
        ));
    }
    let perm = norm_axes(&perm, rank)?;
    one(x.f_permute(perm.as_slice())?)
}

/// Squeeze: `axes` (attribute before 13, input after) must all be size 1;
/// without axes every size-1 dimension goes.
fn squeeze(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let size = x.size();
    // An empty axes list means "all size-1 axes", as no axes does.
    let axes = match list_arg(node, inputs, "axes", 1, 13)? {
        Some(axes) if !axes.is_empty() => norm_axes(&axes, size.len())?,
        _ => (0..size.len() as i64)
            .filter(|&a| size[a as usize] == 1)
            .collect(),
    };
    if let Some(&a) = axes.iter().find(|&&a| size[a as usize] != 1) {
        return fail(format!(
            "cannot squeeze axis {a} of size {} (shape {size:?})",
            size[a as usize]
        ));
    }
    let kept: Vec<i64> = (0..size.len())
        .filter(|&i| !axes.contains(&(i as i64)))
        .map(|i| size[i])
        .collect();
    one(x.f_reshape(kept.as_slice())?)
}

/// Unsqueeze: `axes` (attribute before 13, input after) index the output.
fn unsqueeze(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let Some(axes) = list_arg(node, inputs, "axes", 1, 13)? else {
        return fail("axes are required");
    };
    let mut axes = norm_axes(&axes, x.dim() + axes.len())?;
    // Inserting in increasing order puts each new axis at its output index.
    axes.sort_unstable();
    let mut y = x.shallow_clone();
    for a in axes {
        y = y.f_unsqueeze(a)?;
    }
    one(y)
}

fn concat(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let parts = (0..inputs.len())
        .map(|i| input(inputs, i))
        .collect::<KResult<Vec<_>>>()?;
    let Some(first) = parts.first() else {
        return fail("Concat needs at least one input");
    };
    if !node.attrs.has("axis") {
        return fail("axis is required");
    }
    let a = data_axis(node.attrs.int("axis", 0)?, first.dim())?;
    one(Tensor::f_cat(&parts, a)?)
}

/// Split along `axis` into the node's outputs: by explicit sizes (attribute
/// `split` before 13, input after), into `num_outputs` parts of ceil(n / k)
/// with a smaller last one (opset 18), or else into equal parts.
fn split(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let a = data_axis(node.attrs.int("axis", 0)?, x.dim())?;
    let n = x.size()[a as usize];
    let outputs = node.outputs.len() as i64;
    let sizes = match list_arg(node, inputs, "split", 1, 13)? {
        Some(sizes) => {
            if node.attrs.has("num_outputs") {
                return fail("both split and num_outputs are given");
            }
            sizes
        }
        None if node.opset >= 18 => {
            if !node.attrs.has("num_outputs") {
                return fail("from opset 18, either the split input or num_outputs is required");
            }
            let k = node.attrs.int("num_outputs", 0)?;
            if k != outputs || k < 1 {
                return fail(format!(
                    "num_outputs {k} does not match the {outputs} outputs"
                ));
            }
            let chunk = (n + k - 1) / k;
            (0..k).map(|i| (n - i * chunk).clamp(0, chunk)).collect()
        }
        None => {
            if node.attrs.has("num_outputs") {
                return fail("num_outputs exists from opset 18 on");
            }
            if outputs == 0 || n % outputs != 0 {
                return fail(format!(
                    "axis size {n} does not split into {outputs} equal parts"
                ));
            }
            vec![n / outputs; outputs as usize]
        }
    };
    if sizes.len() as i64 != outputs
        || sizes.iter().any(|&s| s < 0)
        || sizes.iter().sum::<i64>() != n
    {
        return fail(format!(
            "split sizes {sizes:?} must be {outputs} non-negative values summing to {n}"
        ));
    }
    Ok(x.f_split_with_sizes(sizes.as_slice(), a)?)
}

/// Shape, optionally sliced by `start` and `end` (opset 15), which clamp.
fn shape(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let size = x.size();
    let r = size.len() as i64;
    let clampd = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clampd(node.attrs.int("start", 0)?);
    let end = clampd(node.attrs.int("end", r)?);
    let dims = if start < end { &size[start..end] } else { &[] };
    one(int_tensor(dims, x.device())?)
}

fn size(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let n = x.numel() as i64;
    one(Tensor::from(n).f_to(x.device())?)
}

/// A tensor of the given shape filled with `value` (one element, float 0 by
/// default), of the value's type.
fn constant_of_shape(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let shape_t = input(inputs, 0)?;
    let shape = to_i64s(shape_t)?;
    if shape.iter().any(|&d| d < 0) {
        return fail(format!("shape {shape:?} has a negative dimension"));
    }
    let value = match node.attrs.tensor("value")? {
        Some(v) if v.numel() == 1 => v.f_reshape(&[] as &[i64])?,
        Some(v) => {
            return fail(format!(
                "value must hold one element, it has shape {:?}",
                v.size()
            ))
        }
        None => Tensor::from(0f32),
    };
    let y = value
        .f_to(shape_t.device())?
        .f_expand(shape.as_slice(), false)?;
    one(y.f_contiguous()?)
}

/// The numpy broadcast of two shapes, if they are compatible.
fn broadcast_shapes(a: &[i64], b: &[i64]) -> Option<Vec<i64>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[i64], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Expand: broadcasts the input with `shape` both ways (a 1 in `shape`
/// keeps the input dimension, unlike torch's expand).
fn expand(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let shape = to_i64s(input(inputs, 1)?)?;
    let Some(out) = broadcast_shapes(&x.size(), &shape) else {
        return fail(format!(
            "input {:?} does not broadcast with shape {shape:?}",
            x.size()
        ));
    };
    one(x.f_expand(out.as_slice(), false)?.f_contiguous()?)
}

fn tile(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let repeats = to_i64s(input(inputs, 1)?)?;
    if repeats.len() != x.dim() || repeats.iter().any(|&r| r < 0) {
        return fail(format!(
            "repeats {repeats:?} should be {} non-negative values",
            x.dim()
        ));
    }
    one(x.f_repeat(repeats.as_slice())?)
}

/// Range: max(ceil((limit - start) / delta), 0) values start + i * delta,
/// of the type of `start`. Integer ranges are computed exactly in integers.
/// Range: `start + i * delta` for i below ceil((limit - start) / delta).
/// Floats are computed in double, but float16 and bfloat16 in the type
/// `stash_type` names (opset 27: float, the default, or double), then
/// cast to the inputs' type.
fn range(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (start, limit, delta) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
    let y = if start.is_floating_point() {
        let stash = match start.kind() {
            Kind::Half | Kind::BFloat16 => match node.attrs.int("stash_type", 1)? {
                1 => Kind::Float,
                11 => Kind::Double,
                other => {
                    return fail(format!(
                        "stash_type {other} is not 1 (float) or 11 (double)"
                    ))
                }
            },
            _ => Kind::Double,
        };
        range_float(
            to_f64(start)?,
            to_f64(limit)?,
            to_f64(delta)?,
            (stash, start.device()),
        )?
    } else {
        range_int(
            int_scalar(start)?,
            int_scalar(limit)?,
            int_scalar(delta)?,
            start.device(),
        )?
    };
    one(y.f_to_kind(start.kind())?)
}

fn range_float(start: f64, limit: f64, delta: f64, options: (Kind, Device)) -> KResult<Tensor> {
    if delta == 0.0 {
        return fail("delta is 0");
    }
    let n = ((limit - start) / delta).ceil().max(0.0);
    if !n.is_finite() || n > i64::MAX as f64 {
        return fail(format!("range {start}..{limit} step {delta} is unbounded"));
    }
    let steps = Tensor::f_arange(n as i64, options)?;
    Ok(steps.f_mul_scalar(delta)?.f_add_scalar(start)?)
}

fn range_int(start: i64, limit: i64, delta: i64, device: Device) -> KResult<Tensor> {
    if delta == 0 {
        return fail("delta is 0");
    }
    // ceil((limit - start) / delta) for either sign of delta, without overflow.
    let (s, l, d) = (i128::from(start), i128::from(limit), i128::from(delta));
    let n = ((l - s + d - d.signum()) / d).max(0);
    let Ok(n) = i64::try_from(n) else {
        return fail(format!("range {start}..{limit} step {delta} is too long"));
    };
    let steps = Tensor::f_arange(n, (Kind::Int64, device))?;
    Ok(steps.f_mul_scalar(delta)?.f_add_scalar(start)?)
}

/// A one-element integer tensor as i64.
fn int_scalar(t: &Tensor) -> KResult<i64> {
    match to_i64s(t)?.as_slice() {
        [v] => Ok(*v),
        _ => fail(format!("expected a scalar, got shape {:?}", t.size())),
    }
}

/// Pad: `pads` is [begin per axis..., end per axis...] (negative crops),
/// an attribute with a `value` attribute before opset 11, inputs after,
/// with an optional `axes` input from 18.
fn pad(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let rank = x.dim();
    let Some(pads) = list_arg(node, inputs, "pads", 1, 11)? else {
        return fail("pads are required");
    };
    let value = if node.opset < 11 {
        f64::from(node.attrs.float("value", 0.0)?)
    } else {
        if node.attrs.has("value") {
            return fail("'value' is input 2 from opset 11, not an attribute");
        }
        opt_input(inputs, 2).map(to_f64).transpose()?.unwrap_or(0.0)
    };
    let axes = match opt_input(inputs, 3) {
        Some(t) => norm_axes(&to_i64s(t)?, rank)?,
        None => (0..rank as i64).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return fail(format!(
            "pads {pads:?} should have {} values",
            2 * axes.len()
        ));
    }
    // Per input axis (begin, end).
    let mut per_axis = vec![(0, 0); rank];
    for (i, &a) in axes.iter().enumerate() {
        per_axis[a as usize] = (pads[i], pads[i + axes.len()]);
    }
    let mode = node.attrs.string("mode", "constant")?;
    match mode.as_str() {
        "constant" => {
            // torch lists (begin, end) pairs from the last axis backwards.
            let flat: Vec<i64> = per_axis.iter().rev().flat_map(|&(b, e)| [b, e]).collect();
            one(x.f_pad(flat.as_slice(), "constant", value)?)
        }
        "reflect" | "edge" | "wrap" => {
            let mut y = x.shallow_clone();
            for (a, &(b, e)) in per_axis.iter().enumerate() {
                if (b, e) != (0, 0) {
                    y = pad_by_index(&y, a as i64, b, e, &mode)?;
                }
            }
            one(y)
        }
        other => fail(format!(
            "mode '{other}' is not constant, reflect, edge or wrap"
        )),
    }
}

/// Pads (or crops) one axis by gathering source positions: output j reads
/// input j - begin, mapped into range by mirroring, clamping or wrapping.
fn pad_by_index(x: &Tensor, a: i64, begin: i64, end: i64, mode: &str) -> KResult<Tensor> {
    let n = x.size()[a as usize];
    let len = n + begin + end;
    if len < 0 {
        return fail(format!(
            "pads ({begin}, {end}) crop more than axis {a} holds"
        ));
    }
    if n == 0 && len > 0 {
        return fail(format!("cannot {mode}-pad the empty axis {a}"));
    }
    if mode == "reflect" && n < 2 && (begin > 0 || end > 0) {
        return fail(format!("cannot reflect-pad axis {a} of size {n}"));
    }
    let source = |j: i64| {
        let s = j - begin;
        if (0..n).contains(&s) {
            return s;
        }
        match mode {
            "edge" => s.clamp(0, n - 1),
            "wrap" => s.rem_euclid(n),
            _ => {
                // Mirror without repeating the edge: period 2 (n - 1).
                let p = 2 * (n - 1);
                let m = s.rem_euclid(p);
                if m < n {
                    m
                } else {
                    p - m
                }
            }
        }
    };
    let index: Vec<i64> = (0..len).map(source).collect();
    Ok(x.f_index_select(a, &int_tensor(&index, x.device())?)?)
}

/// The `[N, C, H, W]` shape of a DepthToSpace/SpaceToDepth input and its
/// positive blocksize.
fn blocks(node: &Node, x: &Tensor) -> KResult<([i64; 4], i64)> {
    let size = x.size();
    let Ok(dims) = <[i64; 4]>::try_from(size.as_slice()) else {
        return fail(format!("input of shape {size:?} should have rank 4"));
    };
    let b = node.attrs.int("blocksize", 0)?;
    if b < 1 {
        return fail(format!(
            "blocksize {b} should be at least 1 (the attribute is required)"
        ));
    }
    Ok((dims, b))
}

/// DepthToSpace: blocks of `blocksize x blocksize` channels become spatial
/// blocks; DCR (default) takes the block position from the outer channel
/// index, CRD (opset 11) from the inner.
fn depth_to_space(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let ([n, c, h, w], b) = blocks(node, x)?;
    if c % (b * b) != 0 {
        return fail(format!(
            "{c} channels are not a multiple of blocksize {b} squared"
        ));
    }
    let c2 = c / (b * b);
    let mode = node.attrs.string("mode", "DCR")?;
    let y = match mode.as_str() {
        "DCR" => x
            .f_reshape([n, b, b, c2, h, w])?
            .f_permute([0, 3, 4, 1, 5, 2])?,
        "CRD" if node.opset >= 11 => x
            .f_reshape([n, c2, b, b, h, w])?
            .f_permute([0, 1, 4, 2, 5, 3])?,
        other => {
            return fail(format!(
                "mode '{other}' is not DCR or CRD (CRD from opset 11)"
            ))
        }
    };
    one(y.f_reshape([n, c2, h * b, w * b])?)
}

/// SpaceToDepth: the inverse of DepthToSpace. DCR (the default) puts the
/// block position in the outer channel index, CRD (opset 28) in the inner;
/// before opset 28 there is no `mode` and the layout is DCR's.
fn space_to_depth(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let ([n, c, h, w], b) = blocks(node, x)?;
    if h % b != 0 || w % b != 0 {
        return fail(format!(
            "spatial size {h} x {w} is not a multiple of blocksize {b}"
        ));
    }
    let blocks = x.f_reshape([n, c, h / b, b, w / b, b])?;
    let y = match node.attrs.string("mode", "DCR")?.as_str() {
        "DCR" => blocks.f_permute([0, 3, 5, 1, 2, 4])?,
        "CRD" if node.opset >= 28 => blocks.f_permute([0, 1, 3, 5, 2, 4])?,
        other => {
            return fail(format!(
                "mode '{other}' is not DCR or CRD (CRD from opset 28)"
            ))
        }
    };
    one(y.f_reshape([n, c * b * b, h / b, w / b])?)
}

/// CenterCropPad: each of `axes` (all by default) cropped or zero-padded to
/// its length in `shape`, centred; an odd difference leaves the extra
/// element at the end.
fn center_crop_pad(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let shape = to_i64s(input(inputs, 1)?)?;
    let rank = x.dim();
    let axes = match node.attrs.ints("axes")? {
        Some(a) => norm_axes(&a, rank)?,
        None => (0..rank as i64).collect(),
    };
    if shape.len() != axes.len() {
        return fail(format!(
            "shape {shape:?} should give one length per axis of {axes:?}"
        ));
    }
    let mut y = x.shallow_clone();
    for (&a, &want) in axes.iter().zip(&shape) {
        if want < 0 {
            return fail(format!("shape {shape:?} has a negative length"));
        }
        let have = y.size()[a as usize];
        if want < have {
            y = y.f_narrow(a, (have - want) / 2, want)?;
        } else if want > have {
            let before = (want - have) / 2;
            let mut size = y.size();
            size[a as usize] = before;
            let head = Tensor::f_zeros(size.as_slice(), (y.kind(), y.device()))?;
            size[a as usize] = want - have - before;
            let tail = Tensor::f_zeros(size.as_slice(), (y.kind(), y.device()))?;
            y = Tensor::f_cat(&[head, y, tail], a)?;
        }
    }
    one(y)
}
