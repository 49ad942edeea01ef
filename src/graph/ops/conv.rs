//! Convolution and transposed convolution in 1, 2 and 3 spatial dimensions,
//! Col2Im (the blocks of an unfolded image summed back into it) and the
//! stateful causal convolution of sequence models.
//! Specs: <https://onnx.ai/onnx/operators/onnx__Conv.html>,
//! <https://onnx.ai/onnx/operators/onnx__ConvTranspose.html>,
//! <https://onnx.ai/onnx/operators/onnx__Col2Im.html>,
//! <https://onnx.ai/onnx/operators/onnx__CausalConvWithState.html>.

use tch::{Device, Kind, Tensor};

use super::{chain, fail, input, one, opt_input, Inputs, KResult, OpDef};
use crate::graph::Node;
use crate::graph::Op;
use crate::kernels::views::{float_cpu, floats, floats_mut};
use crate::kernels::{depthwise, pointwise};

/// The attributes of the convolutions (Conv, ConvInteger, QLinearConv).
pub(super) const CONV_ATTRS: &[&str] = &[
    "auto_pad",
    "dilations",
    "group",
    "kernel_shape",
    "pads",
    "strides",
];

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::Col2Im,
        attrs: &["dilations", "pads", "strides"],
        kernel: col2im,
    },
    OpDef {
        op: Op::Conv,
        attrs: CONV_ATTRS,
        kernel: conv,
    },
    OpDef {
        op: Op::ConvTranspose,
        attrs: &[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "output_padding",
            "output_shape",
            "pads",
            "strides",
        ],
        kernel: conv_transpose,
    },
    OpDef {
        op: Op::CausalConvWithState,
        attrs: &["activation"],
        kernel: causal_conv_with_state,
    },
];

/// Col2Im: sums the blocks of `input` `[N, C * prod(block_shape), L]` back
/// into an image `[N, C, image_shape...]`, block `l` (in row-major order
/// over the sliding positions) at `l * strides`, its elements `dilations`
/// apart, on the image padded by `pads` (begins, then ends), which are
/// then cut off. Any number of spatial axes.
fn col2im(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, image, block) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
    let (image, block) = (super::to_i64s(image)?, super::to_i64s(block)?);
    let n = image.len();
    if n == 0 || block.len() != n {
        return fail(format!(
            "image_shape {image:?} and block_shape {block:?} need the same non-zero length"
        ));
    }
    let per = |name: &str, default: i64, len: usize| -> KResult<Vec<i64>> {
        let v = node.attrs.ints(name)?.unwrap_or_else(|| vec![default; len]);
        if v.len() != len {
            return fail(format!(
                "attribute '{name}' {v:?} needs {len} values for {n} spatial axes"
            ));
        }
        Ok(v)
    };
    let (dil, pads, strides) = (
        per("dilations", 1, n)?,
        per("pads", 0, 2 * n)?,
        per("strides", 1, n)?,
    );
    if dil.iter().chain(&strides).any(|&v| v < 1) || pads.iter().any(|&p| p < 0) {
        return fail(format!(
            "dilations {dil:?} and strides {strides:?} must be at least 1, pads {pads:?} at least 0"
        ));
    }
    if image.iter().any(|&d| d < 1) || block.iter().any(|&d| d < 1) {
        return fail(format!(
            "image_shape {image:?} and block_shape {block:?} must be positive"
        ));
    }
    let xs = x.size();
    let kernel = (block.iter()).try_fold(1i64, |a, &b| a.checked_mul(b));
    let kernel = kernel.unwrap_or(i64::MAX);
    if xs.len() != 3 || xs[1] % kernel != 0 {
        return fail(format!(
            "input must be [N, C * {kernel}, L] for block_shape {block:?}, got shape {xs:?}"
        ));
    }
    let padded: Option<Vec<i64>> = (0..n)
        .map(|i| image[i].checked_add(pads[i])?.checked_add(pads[n + i]))
        .collect();
    let total = (padded.iter().flatten()).try_fold(1i64, |a, &b| a.checked_mul(b));
    let elems = total.and_then(|t| t.checked_mul(xs[0].max(1) * (xs[1] / kernel).max(1)));
    let (Some(padded), Some(total), Some(1..=0x8000_0000)) = (padded, total, elems) else {
        return fail(format!(
            "an image of shape {image:?} padded by {pads:?} is too large"
        ));
    };
    let mut blocks = Vec::with_capacity(n);
    for i in 0..n {
        let extent = dil[i].saturating_mul(block[i] - 1).saturating_add(1);
        if padded[i] < extent {
            return fail(format!(
                "block {block:?} with dilations {dil:?} is larger than the padded image {padded:?}"
            ));
        }
        blocks.push((padded[i] - extent) / strides[i] + 1);
    }
    let l: i64 = blocks.iter().product();
    if xs[2] != l {
        return fail(format!(
            "input has {} blocks, the image {image:?} with block_shape {block:?} holds {l}",
            xs[2]
        ));
    }
    // The padded image position of element k of block j, row-major.
    let row_major = |mut flat: i64, dims: &[i64]| -> Vec<i64> {
        let mut out = vec![0; dims.len()];
        for i in (0..dims.len()).rev() {
            out[i] = flat % dims[i];
            flat /= dims[i];
        }
        out
    };
    let mut index = Vec::with_capacity((kernel * l) as usize);
    for k in 0..kernel {
        let kk = row_major(k, &block);
        for j in 0..l {
            let jj = row_major(j, &blocks);
            let mut flat = 0;
            for i in 0..n {
                flat = flat * padded[i] + jj[i] * strides[i] + kk[i] * dil[i];
            }
            index.push(flat);
        }
    }
    let c = xs[1] / kernel;
    let index = Tensor::from_slice(&index).f_to(x.device())?;
    let src = x.f_reshape([xs[0], c, kernel * l])?;
    let y =
        Tensor::zeros([xs[0], c, total], (x.kind(), x.device())).f_index_add(2, &index, &src)?;
    let mut shape = vec![xs[0], c];
    shape.extend(&padded);
    let mut y = y.f_reshape(shape.as_slice())?;
    for i in 0..n {
        y = y.f_narrow(2 + i as i64, pads[i], image[i])?;
    }
    one(y)
}

/// The `pads` attribute as (begin, end) per spatial axis (zeros if absent).
fn explicit_pads(node: &Node, d: usize) -> KResult<Vec<(i64, i64)>> {
    let pads = node.attrs.ints("pads")?.unwrap_or_else(|| vec![0; 2 * d]);
    if pads.len() != 2 * d || pads.iter().any(|&p| p < 0) {
        return fail(format!(
            "pads {pads:?} should be {} non-negative values",
            2 * d
        ));
    }
    Ok((0..d).map(|i| (pads[i], pads[i + d])).collect())
}

/// Begin and end padding per spatial axis, from `pads` or `auto_pad`.
/// `kernel` is the dilated extent of the window per axis.
pub fn spatial_pads(
    node: &Node,
    spatial: &[i64],
    kernel: &[i64],
    strides: &[i64],
) -> KResult<Vec<(i64, i64)>> {
    let d = spatial.len();
    match node.attrs.string("auto_pad", "NOTSET")?.as_str() {
        "NOTSET" => explicit_pads(node, d),
        "VALID" => Ok(vec![(0, 0); d]),
        mode @ ("SAME_UPPER" | "SAME_LOWER") => Ok((0..d)
            .map(|i| {
                let out = (spatial[i] + strides[i] - 1) / strides[i];
                let total = ((out - 1) * strides[i] + kernel[i] - spatial[i]).max(0);
                let small = total / 2;
                if mode == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                }
            })
            .collect()),
        other => fail(format!(
            "auto_pad '{other}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID"
        )),
    }
}

/// An int-list attribute with one value per spatial axis, or `default` for each.
pub fn per_axis(node: &Node, name: &str, d: usize, default: i64) -> KResult<Vec<i64>> {
    let v = node.attrs.ints(name)?.unwrap_or_else(|| vec![default; d]);
    if v.len() != d || v.iter().any(|&x| x < 1) {
        return fail(format!("{name} {v:?} should be {d} positive values"));
    }
    Ok(v)
}

/// Pads `x`'s trailing spatial axes by `pads` with `value` when any pad is
/// asymmetric; returns the tensor and the symmetric padding left to pass on.
pub fn pad_asymmetric(x: &Tensor, pads: &[(i64, i64)], value: f64) -> KResult<(Tensor, Vec<i64>)> {
    if pads.iter().all(|(b, e)| b == e) {
        return Ok((x.shallow_clone(), pads.iter().map(|p| p.0).collect()));
    }
    // torch lists pads from the last axis backwards.
    let flat: Vec<i64> = pads.iter().rev().flat_map(|&(b, e)| [b, e]).collect();
    Ok((
        x.f_pad(flat.as_slice(), "constant", value)?,
        vec![0; pads.len()],
    ))
}

/// Checks the input and weight ranks and `kernel_shape` against the weight;
/// returns the weight's spatial kernel.
fn weight_kernel(node: &Node, x: &Tensor, w: &Tensor) -> KResult<Vec<i64>> {
    let (xs, ws) = (x.size(), w.size());
    if !(3..=5).contains(&xs.len()) || ws.len() != xs.len() {
        return fail(format!(
            "input {xs:?} and weight {ws:?} must both have rank 3, 4 or 5"
        ));
    }
    let kernel = ws[2..].to_vec();
    if let Some(k) = node.attrs.ints("kernel_shape")? {
        if k != kernel {
            return fail(format!(
                "kernel_shape {k:?} disagrees with the weight shape {ws:?}"
            ));
        }
    }
    Ok(kernel)
}

/// Dilated kernel extent per axis.
fn extents(kernel: &[i64], dilations: &[i64]) -> Vec<i64> {
    kernel
        .iter()
        .zip(dilations)
        .map(|(k, dl)| (k - 1) * dl + 1)
        .collect()
}

fn conv(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, w, b) = (input(inputs, 0)?, input(inputs, 1)?, opt_input(inputs, 2));
    one(convolve(node, x, w, b, node.attrs.int("group", 1)?)?)
}

/// Output channels `channels` (of `outputs`) of a Conv node alone: what a
/// fault in the weights of those filters changes. `inputs` hold the node's
/// input, then the filters `[m, C / group, k...]` and biases `[m]` of the
/// channels, in their order. Each filter reads the input channels of its
/// own group, so grouped filters run as a convolution of `m` groups.
/// Shape `[N, m, spatial...]`.
pub fn conv_filters(
    node: &Node,
    inputs: &Inputs,
    channels: &[i64],
    outputs: i64,
) -> KResult<Tensor> {
    let (x, w, b) = (input(inputs, 0)?, input(inputs, 1)?, opt_input(inputs, 2));
    let group = node.attrs.int("group", 1)?;
    let (m, c_in) = (channels.len() as i64, w.size()[1]);
    let known = channels.iter().all(|c| (0..outputs).contains(c));
    if group < 1 || outputs % group != 0 || !known || w.size()[0] != m {
        return fail(format!(
            "filters {channels:?} of {outputs} outputs in {group} groups, weight {:?}",
            w.size()
        ));
    }
    if group == 1 {
        return convolve(node, x, w, b, 1);
    }
    let per_group = outputs / group;
    let picked: Vec<i64> = channels
        .iter()
        .flat_map(|c| {
            let first = c / per_group * c_in;
            first..first + c_in
        })
        .collect();
    let x = x.f_index_select(1, &Tensor::from_slice(&picked).to_device(x.device()))?;
    convolve(node, &x, w, b, m)
}

/// The geometry of a Conv node on an input: per spatial axis its strides,
/// dilations, padding (begin, end) and dilated kernel extent, and its groups.
#[derive(Debug, Clone)]
pub struct ConvShape {
    /// Stride per spatial axis.
    pub strides: Vec<i64>,
    /// Dilation per spatial axis.
    pub dilations: Vec<i64>,
    /// Padding (begin, end) per spatial axis.
    pub pads: Vec<(i64, i64)>,
    /// Dilated kernel extent per spatial axis.
    pub extent: Vec<i64>,
    /// Number of groups.
    pub group: i64,
}

impl ConvShape {
    /// The geometry of `node` on input `x` with weight `w`.
    pub fn of(node: &Node, x: &Tensor, w: &Tensor) -> KResult<Self> {
        let kernel = weight_kernel(node, x, w)?;
        let d = kernel.len();
        let strides = per_axis(node, "strides", d, 1)?;
        let dilations = per_axis(node, "dilations", d, 1)?;
        let extent = extents(&kernel, &dilations);
        let pads = spatial_pads(node, &x.size()[2..], &extent, &strides)?;
        Ok(ConvShape {
            strides,
            dilations,
            pads,
            extent,
            group: node.attrs.int("group", 1)?,
        })
    }
}

/// The node's convolution of `x` in `group` groups.
pub(super) fn convolve(
    node: &Node,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    group: i64,
) -> KResult<Tensor> {
    let shape = ConvShape {
        group,
        ..ConvShape::of(node, x, w)?
    };
    convolve_as(&shape, x, w, b)
}

/// Convolves `x` with the geometry `shape` (the kernel every Conv runs, on
/// whole tensors and on regional boxes alike). Float32 on the CPU, every
/// output is one chain of fused multiply-adds from its bias over its input
/// channels and their taps in order, whatever the batch, the threads or
/// the CPU: in [`pointwise`] or [`depthwise`] where the CPU has AVX-512 and
/// they apply, else in `chain` (the same chains). Other kinds run in
/// libtorch.
pub fn convolve_as(
    shape: &ConvShape,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> KResult<Tensor> {
    let ConvShape {
        strides,
        dilations,
        pads,
        extent,
        group,
    } = shape;
    let pointwise = extent
        .iter()
        .chain(strides)
        .chain(dilations)
        .all(|&k| k == 1)
        && pads.iter().all(|&(a, b)| a == 0 && b == 0);
    if pointwise && *group == 1 {
        if let Some(y) = pointwise::convolve(x, w, b) {
            return Ok(y);
        }
    }
    if let Some(y) = depthwise::convolve(shape, x, w, b) {
        return Ok(y);
    }
    if let Some(y) = convolve_in_chains(shape, x, w, b)? {
        return Ok(y);
    }
    let (x, padding) = pad_asymmetric(x, pads, 0.0)?;
    Ok(x.f_convolution(
        w,
        b,
        strides.as_slice(),
        padding.as_slice(),
        dilations.as_slice(),
        false,
        vec![0; pads.len()].as_slice(),
        *group,
    )?)
}

/// A float32 CPU convolution as [`chain`] products, a sample and a group at
/// a time: the group's filters `[m, c * taps]` by the sample's patches
/// `[c * taps, positions]` (taps in the padding read zero). `None` for
/// other kinds and devices, and for shapes that libtorch should report on.
fn convolve_in_chains(
    shape: &ConvShape,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> KResult<Option<Tensor>> {
    let (size, w_size) = (x.size(), w.size());
    let (n, c, m, g) = (size[0], size[1], w_size[0], shape.group);
    let fits = g >= 1 && c % g == 0 && m % g == 0 && w_size[1] == c / g;
    if !fits || !float_cpu(&[Some(x), Some(w), b]) || b.is_some_and(|b| b.numel() as i64 != m) {
        return Ok(None);
    }
    let out: Vec<i64> = (0..size.len() - 2)
        .map(|i| {
            let padded = size[2 + i] + shape.pads[i].0 + shape.pads[i].1 - shape.extent[i];
            if padded < 0 {
                0
            } else {
                padded / shape.strides[i] + 1
            }
        })
        .collect();
    if n == 0 || m == 0 || out.contains(&0) {
        return Ok(None);
    }
    let positions: i64 = out.iter().product();
    let taps: i64 = w_size[2..].iter().product();
    let dims = [m / g, c / g * taps, positions].map(|d| d as usize);
    let w = w.f_contiguous()?;
    let b = b.map(Tensor::f_contiguous).transpose()?;
    let float32 = "contiguous float32 CPU tensors";
    let bias = b.as_ref().map(|b| floats(b).expect(float32));
    let mut y = Tensor::f_empty(
        [&[n, m], out.as_slice()].concat().as_slice(),
        (Kind::Float, Device::Cpu),
    )?;
    for sample in 0..n {
        let patches = patches(&x.f_narrow(0, sample, 1)?, shape, [g, dims[1] as i64])?;
        // Contiguous float32 CPU tensors of the sizes checked above; `y` was
        // just created, and each product writes its own part.
        {
            let (w, patches) = (floats(&w).expect(float32), floats(&patches).expect(float32));
            let y = floats_mut(&mut y).expect(float32);
            let y = &mut y[sample as usize * m as usize * dims[2]..][..m as usize * dims[2]];
            let [rows, depth, cols] = dims;
            for group in 0..g as usize {
                let init = match bias {
                    Some(b) => chain::Init::Row(&b[group * rows..][..rows]),
                    None => chain::Init::Zero,
                };
                chain::product(
                    &w[group * rows * depth..][..rows * depth],
                    &patches[group * depth * cols..][..depth * cols],
                    init,
                    &mut y[group * rows * cols..][..rows * cols],
                    dims,
                );
            }
        }
    }
    Ok(Some(y))
}

/// The patches of one sample `x` (`[1, c, spatial...]`) under `shape`, as
/// `[groups, depth, positions]` (`depth`: `c / groups` times the taps): per
/// group, a row per input channel and tap (taps in order), a column per
/// output position.
fn patches(x: &Tensor, shape: &ConvShape, [groups, depth]: [i64; 2]) -> KResult<Tensor> {
    let d = shape.extent.len() as i64;
    let flat: Vec<i64> = shape.pads.iter().rev().flat_map(|&(b, e)| [b, e]).collect();
    let mut p = x.f_constant_pad_nd(flat.as_slice())?;
    for i in 0..d as usize {
        // Each unfold appends the axis of the window's taps.
        p = p.f_unfold(2 + i as i64, shape.extent[i], shape.strides[i])?;
        if shape.dilations[i] > 1 {
            p = p.f_slice(-1, 0, None, shape.dilations[i])?;
        }
    }
    // [1, c, out..., taps...] -> [1, c, taps..., out...]
    let order: Vec<i64> = [0, 1]
        .into_iter()
        .chain(2 + d..2 + 2 * d)
        .chain(2..2 + d)
        .collect();
    Ok(p.f_permute(order.as_slice())?
        .f_reshape([groups, depth, -1])?
        .f_contiguous()?)
}

/// Begin and end cropping of the full transposed-convolution output per
/// axis. `full` is `stride * (in - 1) + output_padding + extent`, the
/// length before cropping. As onnxruntime does, an `output_shape` or a SAME
/// `auto_pad` fixes the output length and the cropping is derived from it:
/// an odd total crops one more at the end for SAME_UPPER, at the beginning
/// otherwise (the spec's rule, which onnxruntime follows).
fn transpose_pads(
    node: &Node,
    input: &[i64],
    strides: &[i64],
    full: &[i64],
) -> KResult<Vec<(i64, i64)>> {
    let d = input.len();
    let auto_pad = node.attrs.string("auto_pad", "NOTSET")?;
    let target: Option<Vec<i64>> = match node.attrs.ints("output_shape")? {
        // output_shape may list the spatial axes only or the whole shape.
        Some(s) if s.len() == d || s.len() == d + 2 => Some(s[s.len() - d..].to_vec()),
        Some(s) => return fail(format!("output_shape {s:?} should have {d} values")),
        None if auto_pad.starts_with("SAME") => {
            Some(input.iter().zip(strides).map(|(i, s)| i * s).collect())
        }
        None => None,
    };
    let Some(target) = target else {
        return match auto_pad.as_str() {
            "NOTSET" => explicit_pads(node, d),
            "VALID" => Ok(vec![(0, 0); d]),
            other => fail(format!(
                "auto_pad '{other}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID"
            )),
        };
    };
    let same = !node.attrs.has("output_shape");
    if let Some(i) = (0..d).find(|&i| same && target[i] > full[i]) {
        // For SAME, onnxruntime outputs the full length where the spec asks
        // for input * stride.
        return fail(format!(
            "output length {} on spatial axis {i} exceeds the {} the input produces (SAME auto_pad with a kernel shorter than the stride is not supported)",
            target[i], full[i]
        ));
    }
    // A longer output_shape makes the total negative: the spec's equations
    // (floor halves, as the reference computes them) then extend the
    // output with positions no input reaches.
    Ok((0..d)
        .map(|i| {
            let total = full[i] - target[i];
            let half = total.div_euclid(2);
            if auto_pad == "SAME_UPPER" {
                (half, total - half)
            } else {
                (total - half, half)
            }
        })
        .collect())
}

fn conv_transpose(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, w, b) = (input(inputs, 0)?, input(inputs, 1)?, opt_input(inputs, 2));
    let kernel = weight_kernel(node, x, w)?;
    let d = kernel.len();
    let input_len = &x.size()[2..];
    let strides = per_axis(node, "strides", d, 1)?;
    let dilations = per_axis(node, "dilations", d, 1)?;
    let group = node.attrs.int("group", 1)?;
    let extra = node.attrs.ints("output_padding")?.unwrap_or(vec![0; d]);
    if extra.len() != d || extra.iter().any(|&p| p < 0) {
        return fail(format!(
            "output_padding {extra:?} should be {d} non-negative values"
        ));
    }
    let extent = extents(&kernel, &dilations);
    let full: Vec<i64> = (0..d)
        .map(|i| strides[i] * (input_len[i] - 1) + extra[i] + extent[i])
        .collect();
    let pads = transpose_pads(node, input_len, &strides, &full)?;
    // libtorch restricts output_padding and symmetric padding; compute the
    // uncropped output without bias instead, extend it by output_padding with
    // zeros (no input reaches there), crop, then add the bias.
    let mut y = match float_cpu(&[Some(x), Some(w)]) {
        true => transposed_in_chains(x, w, &strides, &dilations, &extent, group)?,
        false => x.f_convolution(
            w,
            None::<Tensor>,
            strides.as_slice(),
            vec![0; d].as_slice(),
            dilations.as_slice(),
            true,
            vec![0; d].as_slice(),
            group,
        )?,
    };
    if extra.iter().any(|&e| e > 0) {
        let flat: Vec<i64> = extra.iter().rev().flat_map(|&e| [0, e]).collect();
        y = y.f_pad(flat.as_slice(), "constant", 0.0)?;
    }
    for (i, &(begin, end)) in pads.iter().enumerate() {
        let len = full[i] - begin - end;
        if len < 1 {
            return fail(format!(
                "pads ({begin}, {end}) leave no output on spatial axis {i} of length {}",
                full[i]
            ));
        }
        y = crop_or_extend(&y, i + 2, begin, end)?;
    }
    if let Some(b) = b {
        let mut shape = vec![1, -1];
        shape.extend(vec![1; d]);
        y = y.f_add(&b.f_reshape(shape.as_slice())?)?;
    }
    one(y)
}

/// `y` cropped by `begin` and `end` on `axis`, or extended by zeros
/// where they are negative (a longer `output_shape`).
fn crop_or_extend(y: &Tensor, axis: usize, begin: i64, end: i64) -> KResult<Tensor> {
    let rank = y.dim();
    let mut y = y.shallow_clone();
    if begin < 0 || end < 0 {
        // constant_pad_nd lists (begin, end) from the last axis back.
        let mut flat = vec![0; 2 * (rank - axis)];
        let at = 2 * (rank - 1 - axis);
        flat[at] = (-begin).max(0);
        flat[at + 1] = (-end).max(0);
        y = y.f_constant_pad_nd(flat.as_slice())?;
    }
    let len = y.size()[axis] - begin.max(0) - end.max(0);
    Ok(y.f_narrow(axis as i64, begin.max(0), len)?)
}

/// The uncropped transposed convolution of float32 `x` by `w` (`[c_in,
/// c_out / group, k...]`) as the convolution that gathers what it
/// scatters: over `x` with `stride - 1` zeros between its values and
/// `extent - 1` of padding, by the filters flipped and with their channel
/// axes swapped per group, so that it runs in [`convolve_as`]'s chains.
fn transposed_in_chains(
    x: &Tensor,
    w: &Tensor,
    strides: &[i64],
    dilations: &[i64],
    extent: &[i64],
    group: i64,
) -> KResult<Tensor> {
    let (size, w_size) = (x.size(), w.size());
    let (c_in, per_group) = (w_size[0], w_size[1]);
    if group < 1 || c_in % group != 0 || size[1] != c_in {
        return fail(format!(
            "weight {w_size:?} does not fit input {size:?} in {group} groups"
        ));
    }
    let d = strides.len();
    let mut spread = size.clone();
    for i in 0..d {
        spread[2 + i] = strides[i] * (size[2 + i] - 1) + 1;
    }
    let mut stuffed = Tensor::f_zeros(spread.as_slice(), (x.kind(), x.device()))?;
    let mut every = stuffed.shallow_clone();
    for (i, &s) in strides.iter().enumerate() {
        every = every.f_slice((2 + i) as i64, 0, None, s)?;
    }
    every.f_copy_(x)?;
    let mut filters = [vec![group, c_in / group, per_group], w_size[2..].to_vec()].concat();
    let swapped = w.f_reshape(filters.as_slice())?.f_transpose(1, 2)?;
    filters = [vec![group * per_group, c_in / group], w_size[2..].to_vec()].concat();
    let spatial: Vec<i64> = (2..2 + d as i64).collect();
    let w = swapped
        .f_reshape(filters.as_slice())?
        .f_flip(spatial.as_slice())?;
    stuffed = stuffed.f_contiguous()?;
    let shape = ConvShape {
        strides: vec![1; d],
        dilations: dilations.to_vec(),
        pads: extent.iter().map(|&e| (e - 1, e - 1)).collect(),
        extent: extent.to_vec(),
        group,
    };
    convolve_as(&shape, &stuffed, &w.f_contiguous()?, None)
}

/// CausalConvWithState: a depthwise 1-D convolution over `past_state`
/// (zeros without it; `k - 1` steps) followed by the input, so output step
/// `t` reads input steps `t - k + 1` to `t`; plus the bias, then SiLU with
/// `activation` silu or swish. The second output is the last `k - 1` steps
/// of that sequence, the state of the next call. Half-precision inputs
/// are computed in float32 and rounded back.
fn causal_conv_with_state(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, w, b, past) = (
        input(inputs, 0)?,
        input(inputs, 1)?,
        opt_input(inputs, 2),
        opt_input(inputs, 3),
    );
    let ([n, c, len], [wc, one_, k]) = (
        <[i64; 3]>::try_from(x.size()).unwrap_or([-1; 3]),
        <[i64; 3]>::try_from(w.size()).unwrap_or([-1; 3]),
    );
    if n < 0 || wc != c || one_ != 1 || k < 1 {
        return fail(format!(
            "input {:?} should be (batch, channels, length) and weight {:?} (channels, 1, k)",
            x.size(),
            w.size()
        ));
    }
    let silu = match node.attrs.string("activation", "none")?.as_str() {
        "none" => false,
        "silu" | "swish" => true,
        other => return fail(format!("activation '{other}' is not none, silu or swish")),
    };
    let work = match x.kind() {
        Kind::Half | Kind::BFloat16 => Kind::Float,
        kind => kind,
    };
    let state = match past {
        Some(p) if p.size() == [n, c, k - 1] => p.f_to_kind(work)?,
        Some(p) => {
            return fail(format!(
                "past_state {:?} should be {:?}",
                p.size(),
                [n, c, k - 1]
            ))
        }
        None => Tensor::f_zeros([n, c, k - 1], (work, x.device()))?,
    };
    let seq = Tensor::f_cat(&[state, x.f_to_kind(work)?], 2)?;
    let taps = w.f_to_kind(work)?.f_reshape([1, c, k])?;
    let mut y = match b {
        Some(b) if b.size() == [c] => b.f_to_kind(work)?.f_reshape([1, c, 1])?,
        Some(b) => return fail(format!("bias {:?} should be [{c}]", b.size())),
        None => Tensor::f_zeros([1, c, 1], (work, x.device()))?,
    };
    for j in 0..k {
        let tap = taps.f_narrow(2, j, 1)?;
        y = y.f_add(&seq.f_narrow(2, j, len)?.f_mul(&tap)?)?;
    }
    if silu {
        y = y.f_mul(&y.f_sigmoid()?)?;
    }
    let present = seq.f_narrow(2, len, k - 1)?;
    Ok(vec![y.f_to_kind(x.kind())?, present.f_to_kind(x.kind())?])
}
