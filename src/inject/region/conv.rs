//! A Conv over a box: the outputs a row's box reaches, computed for all
//! rows whose boxes have the same lengths in one call on their stacked
//! windows (by the Rust depthwise kernel where it suits, else the kernel
//! every Conv runs).

use super::geometry::{conv_reach, fill_window, widen};
use super::trust::box_key;
use super::*;

impl RegionalRow {
    /// A Conv over the outputs its input's box reaches.
    pub(super) fn conv(
        &self,
        graph: &Graph,
        node: &Node,
        env: &Env,
        kernels: &Kernels,
    ) -> Result<Outcome> {
        let Some((x_id, w, _)) = conv_inputs(graph, node) else {
            return Ok(Outcome::Join);
        };
        let (Some(delta), Some(x)) = (self.deltas.get(&x_id), env.get(graph, x_id)) else {
            return Ok(Outcome::Join);
        };
        if cpu_bytes(x).is_none() {
            return Ok(Outcome::Join);
        }
        let fail = |e: String| graph.op_error(node, e);
        let shape = ConvShape::of(node, x, w).map_err(|e| fail(e.0))?;
        // Only depthwise and 1x1 convolutions compute each output as the same
        // sum in a box as in the full tensor; dense kernels block their sums
        // by the tensor's size, so a box would differ in the last bits.
        let depthwise = shape.group == x.size()[1] && w.size()[1] == 1;
        let pointwise = shape.group == 1
            && shape
                .extent
                .iter()
                .chain(&shape.strides)
                .chain(&shape.dilations)
                .all(|&k| k == 1)
            && shape.pads.iter().all(|&p| p == (0, 0));
        if !(depthwise || pointwise) {
            return Ok(Outcome::Join);
        }
        let lens = &x.size()[2..];
        let Some((mut out_span, mut reach, out_lens)) = conv_reach(&shape, lens, &delta.span)
        else {
            return Ok(Outcome::Golden);
        };
        if pointwise {
            // Float32 outputs are chains whose bits do not depend on the
            // positions computed beside them; libtorch's may.
            if x.kind() != tch::Kind::Float {
                widen(&mut out_span, &out_lens);
            }
            reach.clone_from(&out_span);
        }
        if out_span.iter().any(|&(a, _)| a < 0) || share(&out_span, &out_lens) > MAX_SHARE {
            return Ok(Outcome::Join);
        }
        let key = box_key(x, w, &shape, &reach, &out_span);
        let unverified = match kernels.known(&key) {
            Some(false) => return Ok(Outcome::Join),
            Some(true) => None,
            None => Some(key),
        };
        Ok(Outcome::Conv(ConvBox {
            out_span,
            reach,
            unverified,
        }))
    }
}

/// A Conv box of one row: its output over `out_span`, computed from its
/// input over `reach` (zero beyond the input's edges).
pub(in crate::inject) struct ConvBox {
    out_span: Span,
    reach: Span,
    /// The box's kernel key ([`box_key`]) while it is not yet known to be
    /// exact: the call then computes the golden box too, to check.
    unverified: Option<Vec<i64>>,
}

impl ConvBox {
    /// The window's lengths: boxes of equal lengths are computed together.
    pub fn lens(&self) -> Vec<i64> {
        self.reach.iter().map(|(a, b)| b - a).collect()
    }
}

/// A Conv box kernel on trial: the golden row's box, computed in the same
/// call as the rows' boxes, to compare with the golden row's output once the
/// node has run ([`verify_kernel`]).
pub(in crate::inject) struct KernelCheck {
    pub(super) key: Vec<i64>,
    pub sample: usize,
    pub(super) out_span: Span,
    pub(super) golden_box: Tensor,
    /// The node's input (the batch value), to recompute the rows over the
    /// whole value should the check fail.
    pub(super) x: Tensor,
    /// The regional rows whose boxes used the kernel, each with its own
    /// golden row in `x` (rows of several samples may share a kernel).
    pub(super) jobs: Vec<(usize, usize)>,
}

/// The Conv boxes of regional rows at `node` (each with its golden row; all
/// of the same lengths), in one call on their windows stacked along the
/// batch axis: a small box costs little more than the call, which the rows
/// then share. The golden box of each kernel not yet known to be exact
/// joins the call, and comes back as a check.
pub(in crate::inject) fn conv_boxes(
    graph: &Graph,
    node: &Node,
    env: &Env,
    rows: &[(&RegionalRow, usize, ConvBox)],
) -> Result<(Vec<Delta>, Vec<KernelCheck>)> {
    let fail = |e: String| graph.op_error(node, e);
    let (x_id, w, b) = conv_inputs(graph, node).expect("checked by step");
    let x = env.get(graph, x_id).expect("checked by step");
    // The rows' windows, then one golden window per kernel on trial.
    let mut windows: Vec<(usize, &Span, Option<&Delta>)> = Vec::new();
    let mut golden_windows = Vec::new();
    let mut checks: Vec<KernelCheck> = Vec::new();
    for (row, golden, conv) in rows {
        windows.push((*golden, &conv.reach, row.deltas.get(&x_id)));
        let Some(key) = &conv.unverified else {
            continue;
        };
        match checks.iter_mut().find(|c| &c.key == key) {
            Some(check) => check.jobs.push((row.job, *golden)),
            None => {
                golden_windows.push((*golden, &conv.reach, None));
                checks.push(KernelCheck {
                    key: key.clone(),
                    sample: row.sample,
                    out_span: conv.out_span.clone(),
                    golden_box: Tensor::new(),
                    x: x.shallow_clone(),
                    jobs: vec![(row.job, *golden)],
                });
            }
        }
    }
    windows.extend(golden_windows);
    let mut dims = vec![windows.len() as i64, x.size()[1]];
    dims.extend(rows[0].2.lens());
    let stacked = Tensor::f_zeros(dims.as_slice(), (x.kind(), x.device()));
    let mut stacked = stacked.map_err(|e| fail(e.to_string()))?;
    let dst = cpu_bytes_mut(&mut stacked).expect("a new CPU tensor is contiguous");
    let each = (dst.len() / windows.len()).max(1);
    let reaches: Vec<&Span> = windows.iter().map(|w| w.1).collect();
    for ((golden, reach, delta), dst) in windows.into_iter().zip(dst.chunks_mut(each)) {
        fill_window(x, golden, reach, delta, dst);
    }
    let shape = ConvShape::of(node, x, w).map_err(|e| fail(e.0))?;
    let y = match depthwise(&shape, x, w, b, &stacked, &reaches) {
        Some(y) => y,
        None => convolve_as(&unpadded(shape), &stacked, w, b).map_err(|e| fail(e.0))?,
    };
    let y = guard(graph, node, y)?;
    let box_of = |i: usize| y.f_narrow(0, i as i64, 1).map_err(|e| fail(e.to_string()));
    let mut out = Vec::with_capacity(rows.len());
    for (i, (_, _, conv)) in rows.iter().enumerate() {
        out.push(Delta::new(conv.out_span.clone(), box_of(i)?));
    }
    for (i, check) in checks.iter_mut().enumerate() {
        check.golden_box = box_of(rows.len() + i)?;
    }
    Ok((out, checks))
}

/// A depthwise 2-D convolution of `shape` over the windows `stacked`, read
/// from `x` over `reaches`, by the Rust kernel, if it suits.
pub(super) fn depthwise(
    shape: &ConvShape,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stacked: &Tensor,
    reaches: &[&Span],
) -> Option<Tensor> {
    let lens = x.size();
    let pair = |v: &[i64]| -> Option<[usize; 2]> {
        match v {
            &[a, b] => Some([usize::try_from(a).ok()?, usize::try_from(b).ok()?]),
            _ => None,
        }
    };
    if lens.len() != 4 || shape.group != lens[1] {
        return None;
    }
    // Per axis, the window positions within the input (not padding).
    let inside = |reach: &Span| -> Option<Inside> {
        let ranges: Vec<(usize, usize)> = reach
            .iter()
            .zip(&lens[2..])
            .map(|(&(a, b), &len)| ((-a).max(0) as usize, (b.min(len) - a) as usize))
            .collect();
        ranges.try_into().ok()
    };
    let inside: Vec<Inside> = reaches.iter().map(|r| inside(r)).collect::<Option<_>>()?;
    Depthwise {
        weight: w,
        bias: b,
        strides: pair(&shape.strides)?,
        dilations: pair(&shape.dilations)?,
    }
    .convolve(stacked, &inside)
}

/// A Conv's input, and its weight and bias when they are constants.
pub(super) fn conv_inputs<'g>(
    graph: &'g Graph,
    node: &Node,
) -> Option<(ValueId, &'g Tensor, Option<&'g Tensor>)> {
    let ins = &node.inputs;
    let x = (*ins.first()?)?;
    let w = graph.constant((*ins.get(1)?)?)?;
    let b = match ins.get(2).copied().flatten() {
        None => None,
        Some(id) => Some(graph.constant(id)?),
    };
    Some((x, w, b))
}

/// `shape` without padding: a box's window has its zero padding written in.
pub(super) fn unpadded(shape: ConvShape) -> ConvShape {
    ConvShape {
        pads: vec![(0, 0); shape.pads.len()],
        ..shape
    }
}
