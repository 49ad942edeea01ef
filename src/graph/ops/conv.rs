//! Convolution and transposed convolution in 1, 2 and 3 spatial dimensions.
//! Specs: <https://onnx.ai/onnx/operators/onnx__Conv.html>,
//! <https://onnx.ai/onnx/operators/onnx__ConvTranspose.html>.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use tch::Tensor;

use super::{depthwise, fail, input, one, opt_input, pointwise, Inputs, KResult, OpDef};
use crate::graph::Node;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: "Conv",
        attrs: &[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "pads",
            "strides",
        ],
        kernel: conv,
    },
    OpDef {
        op: "ConvTranspose",
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
];

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
    let outputs = w.size()[0];
    one(convolve(
        node,
        x,
        w,
        b,
        node.attrs.int("group", 1)?,
        outputs,
    )?)
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
        return convolve(node, x, w, b, 1, outputs);
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
    convolve(node, &x, w, b, m, outputs)
}

/// The geometry of a Conv node on an input: per spatial axis its strides,
/// dilations, padding (begin, end) and dilated kernel extent, and its groups.
#[derive(Debug, Clone)]
pub struct ConvShape {
    pub strides: Vec<i64>,
    pub dilations: Vec<i64>,
    pub pads: Vec<(i64, i64)>,
    pub extent: Vec<i64>,
    pub group: i64,
}

impl ConvShape {
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

/// The node's convolution of `x`, or some filters of one with `outputs`
/// output channels.
fn convolve(
    node: &Node,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    group: i64,
    outputs: i64,
) -> KResult<Tensor> {
    let shape = ConvShape {
        group,
        ..ConvShape::of(node, x, w)?
    };
    let positions = x.size()[2..].iter().product();
    convolve_part(&shape, x, w, b, Whole { positions, outputs })
}

/// Convolves `x` with the geometry `shape` (the kernel every Conv runs).
pub fn convolve_as(
    shape: &ConvShape,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> KResult<Tensor> {
    convolve_part(shape, x, w, b, Whole::of(x, w))
}

/// The whole convolution a call computes part of (a box of its positions,
/// or some of its filters): its positions per sample and output channels.
/// The part runs the whole one's kernel, so that its sums run alike.
#[derive(Debug, Clone, Copy)]
pub struct Whole {
    pub positions: i64,
    pub outputs: i64,
}

impl Whole {
    /// The convolution of weight `w` over all of `x`.
    pub fn of(x: &Tensor, w: &Tensor) -> Self {
        Whole {
            positions: x.size()[2..].iter().product(),
            outputs: w.size()[0],
        }
    }

    /// Whether this convolution, if 1x1 over values of `kind`, runs in the
    /// Rust kernel ([`pointwise`]).
    pub fn pointwise_in_rust(&self, kind: tch::Kind) -> bool {
        kind == tch::Kind::Float && self.positions <= RUST_POSITIONS && super::avx512::available()
    }

    /// Whether a box of this convolution, if 1x1 over `inputs` channels of
    /// `kind`, sums as the whole does however few its positions: in the Rust
    /// kernel or oneDNN's (a matrix product over few positions runs other
    /// code).
    pub fn pointwise_alike_in_any_box(&self, kind: tch::Kind, inputs: i64) -> bool {
        self.pointwise_in_rust(kind) || self.pointwise_in_onednn(kind, inputs)
    }

    /// Whether this convolution, if 1x1 over `inputs` channels of `kind`,
    /// runs in oneDNN (else as a matrix product per sample).
    pub fn pointwise_in_onednn(&self, kind: tch::Kind, inputs: i64) -> bool {
        kind == tch::Kind::Float
            && self.positions <= ONEDNN_POSITIONS
            && self.outputs * inputs * self.positions >= ONEDNN_MACS
            && tch::utils::has_mkldnn()
    }
}

/// Where the Rust kernel does not run (see [`RUST_POSITIONS`]), a float 1x1
/// convolution over at most this many positions per sample, and of at least
/// [`ONEDNN_MACS`] multiply-adds a sample, runs in oneDNN, in
/// chunks of [`ONEDNN_CHUNK`] samples. On MobileNetV2's 7x7 and 14x14 maps
/// that is 1.1x to 1.7x faster than a matrix product per sample (AMD EPYC,
/// session 10, where MKL's products run its generic code); on 56x56 and
/// larger it is 2x to 3x slower.
const ONEDNN_POSITIONS: i64 = 14 * 14;

/// oneDNN picks its kernel by the batch size too, so every call gets this
/// many samples (the last chunk padded with zeros, unless fewer give the
/// same bits): a sample's values then do not depend on the batch it runs
/// in, nor on its place in a chunk.
/// Four samples a call cost 0.6x to 0.8x as much per sample as one at a
/// time on MobileNetV2's 7x7 and 14x14 layers (session 11).
const ONEDNN_CHUNK: i64 = 4;

/// Below this, a oneDNN call's set-up (about 40 µs) outweighs its gain.
const ONEDNN_MACS: i64 = 1 << 20;

/// A float 1x1 convolution over at most this many positions per sample runs
/// in [`pointwise`] where the CPU has AVX-512: 1.3x to 2.7x faster than a
/// matrix product per sample on MobileNetV2's 7x7 to 28x28 maps, 0.8x to
/// 1.6x as fast as oneDNN's calls without their reorders and chunking (AMD
/// EPYC, session 13); on 56x56 and larger maps it is no faster than the
/// product.
const RUST_POSITIONS: i64 = 28 * 28;

/// As [`convolve_as`], for part of the `whole` convolution. A 1x1
/// convolution runs in [`pointwise`], oneDNN or MKL (see `Whole`), a
/// depthwise one in [`depthwise`] where that applies, the rest in libtorch.
pub fn convolve_part(
    shape: &ConvShape,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    whole: Whole,
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
        if whole.pointwise_in_rust(x.kind()) {
            if let Some(y) = pointwise::convolve(x, w, b) {
                return Ok(y);
            }
        }
        return match whole.pointwise_in_onednn(x.kind(), w.size()[1]) {
            true => onednn_pointwise(x, w, b),
            false => pointwise_conv(x, w, b),
        };
    }
    if let Some(y) = depthwise::convolve(shape, x, w, b) {
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

/// A 1x1 convolution in oneDNN, [`ONEDNN_CHUNK`] samples a call. The last
/// call takes the rest alone where that gives each sample the bits of a full
/// chunk ([`short_calls_exact`]), else padded with zeros: padding cost a
/// fifth more work in MobileNetV2's engine, whose rows come a few at a time.
fn onednn_pointwise(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> KResult<Tensor> {
    let axes = x.dim() - 2;
    let (ones, zeros) = (vec![1; axes], vec![0; axes]);
    let call = |x: &Tensor| x.f_mkldnn_convolution(w, b, &zeros, &ones, &ones, 1);
    let x = x.f_contiguous()?;
    let short = x.size()[0] % ONEDNN_CHUNK != 0 && short_calls_exact(&x, w, b, &call)?;
    in_chunks(&x, &call, short)
}

/// `call` on [`ONEDNN_CHUNK`] samples of `x` at a time; the rest alone when
/// `short`, else padded to a full chunk.
fn in_chunks(x: &Tensor, call: &OnSamples, short: bool) -> KResult<Tensor> {
    let n = x.size()[0];
    let mut chunks = Vec::new();
    for start in (0..n).step_by(ONEDNN_CHUNK as usize) {
        let take = ONEDNN_CHUNK.min(n - start);
        let chunk = x.f_narrow(0, start, take)?;
        chunks.push(match take == ONEDNN_CHUNK || short {
            true => call(&chunk)?,
            false => call(&pad_batch(&chunk, ONEDNN_CHUNK)?)?.f_narrow(0, 0, take)?,
        });
    }
    Ok(Tensor::f_cat(&chunks, 0)?)
}

/// A convolution of a batch of samples.
type OnSamples<'a> = dyn Fn(&Tensor) -> Result<Tensor, tch::TchError> + 'a;

/// `x` with zero samples appended up to `n`.
fn pad_batch(x: &Tensor, n: i64) -> KResult<Tensor> {
    // The batch axis's pair comes last: torch lists pads from the last
    // axis back.
    let mut pads = vec![0; 2 * x.dim()];
    pads[2 * x.dim() - 1] = n - x.size()[0];
    Ok(x.f_constant_pad_nd(pads.as_slice())?)
}

/// Whether `call` (a 1x1 convolution in oneDNN by weight `w` and bias `b`)
/// gives a sample shaped as `x`'s the same bits in a call of fewer than
/// [`ONEDNN_CHUNK`] samples as in a full chunk. oneDNN picks its kernel, and
/// with it the order of its sums, by the shapes, so a made-up input tells,
/// once per shape.
fn short_calls_exact(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    call: &OnSamples,
) -> KResult<bool> {
    type Known = Mutex<HashMap<Vec<i64>, bool>>;
    static KNOWN: LazyLock<Known> = LazyLock::new(Default::default);
    let mut shape = x.size();
    shape[0] = ONEDNN_CHUNK;
    let key = [shape.clone(), w.size(), vec![i64::from(b.is_some())]].concat();
    let lock = || KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(&known) = lock().get(&key) {
        return Ok(known);
    }
    let values = Tensor::f_arange(shape.iter().product::<i64>(), (x.kind(), x.device()))?;
    let probe = values
        .f_mul_scalar(0.7)?
        .f_sin()?
        .f_view(shape.as_slice())?;
    let full = call(&probe)?;
    if full.f_isfinite()?.f_all()?.int64_value(&[]) == 0 {
        return Ok(false); // a faulty weight: padding is exact whatever the kernel
    }
    let mut exact = true;
    for take in 1..ONEDNN_CHUNK {
        exact &= call(&probe.f_narrow(0, 0, take)?)?.equal(&full.f_narrow(0, 0, take)?);
    }
    lock().insert(key, exact);
    Ok(exact)
}

/// A 1x1 convolution as one matrix product per sample. libtorch sends
/// these to oneDNN from 16 rows up, whose layout reorders made a batch of
/// 32 cost half again as much per row as a batch of 8; the product costs the
/// same per row at any batch size.
fn pointwise_conv(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> KResult<Tensor> {
    let size = x.size();
    let (n, c_out) = (size[0], w.size()[0]);
    let x = x.f_reshape([n, size[1], -1])?;
    let w = w
        .f_reshape([1, c_out, -1])?
        .f_expand([n, c_out, size[1]], false)?;
    let y = match b {
        // The bias starts the accumulation, as in libtorch's own kernel.
        Some(b) => b
            .f_reshape([1, c_out, 1])?
            .f_expand([n, c_out, x.size()[2]], false)?
            .f_baddbmm(&w, &x, 1.0, 1.0)?,
        None => w.f_bmm(&x)?,
    };
    let mut out = size;
    out[1] = c_out;
    Ok(y.f_reshape(out.as_slice())?)
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
    if let Some(i) = (0..d).find(|&i| target[i] > full[i]) {
        // onnxruntime and onnx.reference reject a longer output_shape; for
        // SAME, onnxruntime outputs the full length where the spec asks for
        // input * stride.
        return fail(format!(
            "output length {} on spatial axis {i} exceeds the {} the input produces{}",
            target[i],
            full[i],
            if node.attrs.has("output_shape") {
                ""
            } else {
                " (SAME auto_pad with a kernel shorter than the stride is not supported)"
            }
        ));
    }
    Ok((0..d)
        .map(|i| {
            let total = full[i] - target[i];
            if auto_pad == "SAME_UPPER" {
                (total / 2, total - total / 2)
            } else {
                (total - total / 2, total / 2)
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
    let mut y = x.f_convolution(
        w,
        None::<Tensor>,
        strides.as_slice(),
        vec![0; d].as_slice(),
        dilations.as_slice(),
        true,
        vec![0; d].as_slice(),
        group,
    )?;
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
        y = y.f_narrow((i + 2) as i64, begin, len)?;
    }
    if let Some(b) = b {
        let mut shape = vec![1, -1];
        shape.extend(vec![1; d]);
        y = y.f_add(&b.f_reshape(shape.as_slice())?)?;
    }
    one(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rest of a batch alone and padded to a full chunk give the same
    /// bits wherever the check says so; where it does not, padding is used.
    #[test]
    fn short_calls_match_padded_ones_where_checked() {
        let options = (tch::Kind::Float, tch::Device::Cpu);
        for (c_in, c_out, side, n) in [(64, 384, 14, 7), (160, 960, 7, 6), (96, 576, 14, 5)] {
            let x = Tensor::randn([n, c_in, side, side], options);
            let w = Tensor::randn([c_out, c_in, 1, 1], options);
            let b = Tensor::randn([c_out], options);
            let call = |x: &Tensor| x.f_mkldnn_convolution(&w, Some(&b), [0, 0], [1, 1], [1, 1], 1);
            let padded = in_chunks(&x, &call, false).unwrap();
            if short_calls_exact(&x, &w, Some(&b), &call).unwrap() {
                let short = in_chunks(&x, &call, true).unwrap();
                assert!(short.equal(&padded), "{c_in}->{c_out} at {side}x{side}");
            }
            let whole = x.convolution(&w, Some(&b), [1, 1], [0, 0], [1, 1], false, [0, 0], 1);
            let gap = (&padded - &whole).abs().max().double_value(&[]);
            assert!(gap < 1e-3, "{c_in}->{c_out}: {gap}");
        }
    }
}
