//! Pooling in 1, 2 and 3 spatial dimensions.
//! Specs: <https://onnx.ai/onnx/operators/onnx__MaxPool.html>,
//! <https://onnx.ai/onnx/operators/onnx__AveragePool.html>,
//! <https://onnx.ai/onnx/operators/onnx__GlobalAveragePool.html>,
//! <https://onnx.ai/onnx/operators/onnx__GlobalMaxPool.html>,
//! <https://onnx.ai/onnx/operators/onnx__MaxUnpool.html>.
//!
//! The output length per axis follows onnxruntime: `floor` (or `ceil` with
//! `ceil_mode`) of `(in + pads - extent) / stride + 1`, where in ceil mode a
//! last window that would start in the end padding is dropped. libtorch uses
//! the same rule for symmetric pads, so those go to its pooling kernels
//! directly. Other cases (asymmetric pads, pads over half the kernel, which
//! libtorch refuses, dilated average pooling) pad explicitly and pool without
//! padding, so the result is exact rather than approximated.

use tch::{Kind, Tensor};

use super::conv::{per_axis, spatial_pads};
use super::{fail, input, one, Inputs, KResult, KernelError, OpDef};
use crate::graph::Node;
use crate::graph::Op;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::MaxPool,
        attrs: &[
            "auto_pad",
            "ceil_mode",
            "dilations",
            "kernel_shape",
            "pads",
            "storage_order",
            "strides",
        ],
        kernel: max_pool,
    },
    OpDef {
        op: Op::AveragePool,
        attrs: &[
            "auto_pad",
            "ceil_mode",
            "count_include_pad",
            "dilations",
            "kernel_shape",
            "pads",
            "strides",
        ],
        kernel: avg_pool,
    },
    OpDef {
        op: Op::MaxUnpool,
        attrs: &["kernel_shape", "pads", "strides"],
        kernel: max_unpool,
    },
    OpDef {
        op: Op::GlobalAveragePool,
        attrs: &[],
        kernel: global_avg_pool,
    },
    OpDef {
        op: Op::GlobalMaxPool,
        attrs: &[],
        kernel: global_max_pool,
    },
    OpDef {
        op: Op::LpPool,
        attrs: &[
            "auto_pad",
            "ceil_mode",
            "dilations",
            "kernel_shape",
            "p",
            "pads",
            "strides",
        ],
        kernel: lp_pool,
    },
];

/// The pooling window of a node applied to one input shape.
struct Window {
    kernel: Vec<i64>,
    strides: Vec<i64>,
    dilations: Vec<i64>,
    /// Begin and end padding per spatial axis.
    pads: Vec<(i64, i64)>,
    ceil: bool,
    /// Input spatial lengths.
    input: Vec<i64>,
    /// Output spatial lengths, as onnxruntime computes them.
    out: Vec<i64>,
}

impl Window {
    /// Dilated window extent along spatial axis `i`.
    fn extent(&self, i: usize) -> i64 {
        (self.kernel[i] - 1) * self.dilations[i] + 1
    }

    /// Whether libtorch's pooling computes this window as ONNX does: pads are
    /// symmetric and at most half the kernel (libtorch rejects more).
    fn torch_native(&self) -> bool {
        self.pads
            .iter()
            .zip(&self.kernel)
            .all(|(&(b, e), &k)| b == e && 2 * b <= k)
    }

    /// Explicit padding `(begin, end)` per axis so that pooling the padded
    /// tensor without padding (and without ceil mode) yields at least `out`
    /// windows: the end gets extra room for ceil mode's partial last window.
    fn explicit_pads(&self) -> Vec<(i64, i64)> {
        (0..self.kernel.len())
            .map(|i| {
                let (b, e) = self.pads[i];
                let need = (self.out[i] - 1) * self.strides[i] + self.extent(i);
                let extra = (need - (self.input[i] + b + e)).max(0);
                (b, e + extra)
            })
            .collect()
    }
}

/// Output length along one axis (onnxruntime's `ComputeOutputSize`).
fn out_len(input: i64, pads: (i64, i64), extent: i64, stride: i64, ceil: bool) -> i64 {
    let span = input + pads.0 + pads.1 - extent;
    if span < 0 {
        return 0;
    }
    let mut out = if ceil {
        (span + stride - 1) / stride + 1
    } else {
        span / stride + 1
    };
    // Ceil mode never starts a window in the end padding.
    if ceil && (out - 1) * stride >= input + pads.0 {
        out -= 1;
    }
    out
}

fn window(node: &Node, x: &Tensor) -> KResult<Window> {
    let size = x.size();
    if !(3..=5).contains(&size.len()) {
        return fail(format!("input shape {size:?} must have rank 3, 4 or 5"));
    }
    let d = size.len() - 2;
    let input = size[2..].to_vec();
    let kernel = node
        .attrs
        .ints("kernel_shape")?
        .ok_or_else(|| KernelError("kernel_shape is required".into()))?;
    if kernel.len() != d || kernel.iter().any(|&k| k < 1) {
        return fail(format!(
            "kernel_shape {kernel:?} should be {d} positive values for input shape {size:?}"
        ));
    }
    let strides = per_axis(node, "strides", d, 1)?;
    let dilations = per_axis(node, "dilations", d, 1)?;
    let extent: Vec<i64> = (0..d).map(|i| (kernel[i] - 1) * dilations[i] + 1).collect();
    let pads = spatial_pads(node, &input, &extent, &strides)?;
    let ceil = node.attrs.int("ceil_mode", 0)? != 0;
    let same = node.attrs.string("auto_pad", "NOTSET")?.starts_with("SAME");
    if same && dilations.iter().any(|&dl| dl != 1) {
        // onnxruntime (and onnx.reference's MaxPool) size the SAME padding
        // with the undilated kernel, the spec with the dilated one: the
        // output shape depends on whom one believes.
        return fail(format!(
            "auto_pad SAME_* with dilations {dilations:?} is not supported \
             (onnxruntime and the ONNX spec disagree on its output shape)"
        ));
    }
    let out: Vec<i64> = (0..d)
        .map(|i| {
            if same {
                // SAME always gives ceil(in / stride), whatever ceil_mode says.
                (input[i] + strides[i] - 1) / strides[i]
            } else {
                out_len(input[i], pads[i], extent[i], strides[i], ceil)
            }
        })
        .collect();
    if out.iter().any(|&o| o < 1) {
        return fail(format!(
            "input shape {size:?} is smaller than the window {extent:?} with pads {pads:?}"
        ));
    }
    Ok(Window {
        kernel,
        strides,
        dilations,
        pads,
        ceil,
        input,
        out,
    })
}

/// Pads the spatial axes of `x` by `pads` with `value`.
fn pad(x: &Tensor, pads: &[(i64, i64)], value: f64) -> KResult<Tensor> {
    if pads.iter().all(|&p| p == (0, 0)) {
        return Ok(x.shallow_clone());
    }
    // torch lists pads from the last axis backwards.
    let flat: Vec<i64> = pads.iter().rev().flat_map(|&(b, e)| [b, e]).collect();
    Ok(x.f_pad(flat.as_slice(), "constant", value)?)
}

/// Narrows the spatial axes of `t` to `out`; libtorch may produce more
/// windows than ONNX when the input was padded for ceil mode.
fn fit(t: Tensor, out: &[i64]) -> KResult<Tensor> {
    let mut t = t;
    for (i, &o) in out.iter().enumerate() {
        let axis = (i + 2) as i64;
        let have = t.size()[i + 2];
        if have < o {
            return fail(format!(
                "pooling produced {have} windows on axis {axis}, expected {o}"
            ));
        }
        if have > o {
            t = t.f_narrow(axis, 0, o)?;
        }
    }
    Ok(t)
}

fn max_pool(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    // storage_order only affects the optional Indices output.
    let column_major = match node.attrs.int("storage_order", 0)? {
        0 => false,
        1 => true,
        o => return fail(format!("storage_order {o} should be 0 or 1")),
    };
    let w = window(node, x)?;
    let (padded, padding, begin, ceil) = if w.torch_native() {
        let p: Vec<i64> = w.pads.iter().map(|p| p.0).collect();
        (x.shallow_clone(), p, vec![0; w.kernel.len()], w.ceil)
    } else {
        let pads = w.explicit_pads();
        let begin = pads.iter().map(|p| p.0).collect();
        let padded = pad(x, &pads, f64::NEG_INFINITY)?;
        (padded, vec![0; w.kernel.len()], begin, false)
    };
    let (k, s, p, dl) = (
        w.kernel.as_slice(),
        w.strides.as_slice(),
        padding.as_slice(),
        w.dilations.as_slice(),
    );
    if node.outputs.len() < 2 {
        let y = match k.len() {
            1 => padded.f_max_pool1d(k, s, p, dl, ceil)?,
            2 => padded.f_max_pool2d(k, s, p, dl, ceil)?,
            _ => padded.f_max_pool3d(k, s, p, dl, ceil)?,
        };
        return one(fit(y, &w.out)?);
    }
    let (y, idx) = match k.len() {
        1 => padded.f_max_pool1d_with_indices(k, s, p, dl, ceil)?,
        2 => padded.f_max_pool2d_with_indices(k, s, p, dl, ceil)?,
        _ => padded.f_max_pool3d_with_indices(k, s, p, dl, ceil)?,
    };
    let plane = &padded.size()[2..];
    let idx = onnx_indices(&fit(idx, &w.out)?, plane, &begin, &w.input, column_major)?;
    Ok(vec![fit(y, &w.out)?, idx])
}

/// Converts libtorch's max-pool indices, flat within each (n, c) plane of
/// the pooled (possibly padded) tensor with spatial shape `plane`, to ONNX's:
/// flat over the whole unpadded input with spatial shape `input`, the plane
/// row-major, or column-major for `storage_order` 1.
fn onnx_indices(
    idx: &Tensor,
    plane: &[i64],
    begin: &[i64],
    input: &[i64],
    column_major: bool,
) -> KResult<Tensor> {
    let d = input.len();
    let mut flat = idx.shallow_clone();
    if plane != input || column_major {
        // Unravel to per-axis coordinates, unpad, ravel again.
        let mut coords = Vec::with_capacity(d);
        let mut rest = idx.shallow_clone();
        for i in (0..d).rev() {
            coords.push(rest.f_remainder(plane[i])?.f_sub_scalar(begin[i])?);
            rest = rest.f_floor_divide_scalar(plane[i])?;
        }
        coords.reverse();
        let order: Vec<usize> = if column_major {
            (0..d).rev().collect()
        } else {
            (0..d).collect()
        };
        flat = coords[order[0]].shallow_clone();
        for &i in &order[1..] {
            flat = flat.f_mul_scalar(input[i])?.f_add(&coords[i])?;
        }
    }
    // Offset each (n, c) plane by its start in the whole tensor.
    let size = idx.size();
    let mut shape = vec![size[0], size[1]];
    shape.extend(vec![1; d]);
    let planes = Tensor::f_arange(size[0] * size[1], (Kind::Int64, idx.device()))?
        .f_reshape(shape.as_slice())?
        .f_mul_scalar(input.iter().product::<i64>())?;
    Ok(flat.f_add(&planes)?)
}

fn avg_pool(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let w = window(node, x)?;
    let include = node.attrs.int("count_include_pad", 0)? != 0;
    let undilated = w.dilations.iter().all(|&d| d == 1);
    if w.torch_native() && undilated {
        let p: Vec<i64> = w.pads.iter().map(|p| p.0).collect();
        let (k, s, p) = (w.kernel.as_slice(), w.strides.as_slice(), p.as_slice());
        let y = match k.len() {
            1 => x.f_avg_pool1d(k, s, p, w.ceil, include)?,
            2 => x.f_avg_pool2d(k, s, p, w.ceil, include, None)?,
            _ => x.f_avg_pool3d(k, s, p, w.ceil, include, None)?,
        };
        return one(fit(y, &w.out)?);
    }
    // Exact general case: window sums of the zero-padded input divided by
    // window sums of a mask of the positions that count (the input, plus the
    // pads when count_include_pad; never the extra room for ceil mode).
    let pads = w.explicit_pads();
    let sums = window_sum(&pad(x, &pads, 0.0)?, &w)?;
    let mut shape = vec![1, 1];
    shape.extend(&w.input);
    let ones = Tensor::f_ones(shape.as_slice(), (x.kind(), x.device()))?;
    let mask = if include {
        let extra: Vec<(i64, i64)> = pads
            .iter()
            .zip(&w.pads)
            .map(|(&(_, e), &(_, e0))| (0, e - e0))
            .collect();
        pad(&pad(&ones, &w.pads, 1.0)?, &extra, 0.0)?
    } else {
        pad(&ones, &pads, 0.0)?
    };
    let counts = window_sum(&mask, &w)?;
    one(fit(sums.f_div(&counts)?, &w.out)?)
}

/// Sum (up to a constant factor shared by all calls with `w`) of every
/// window of `x`, which is already padded.
fn window_sum(x: &Tensor, w: &Window) -> KResult<Tensor> {
    let (k, s) = (w.kernel.as_slice(), w.strides.as_slice());
    let d = k.len();
    if w.dilations.iter().all(|&dl| dl == 1) {
        let zero = vec![0; d];
        let z = zero.as_slice();
        return Ok(match d {
            1 => x.f_avg_pool1d(k, s, z, false, true)?,
            2 => x.f_avg_pool2d(k, s, z, false, true, None)?,
            _ => x.f_avg_pool3d(k, s, z, false, true, None)?,
        });
    }
    // libtorch's average pooling has no dilation: convolve each channel
    // with a dilated kernel of ones instead.
    let size = x.size();
    let mut flat = vec![size[0] * size[1], 1];
    flat.extend(&size[2..]);
    let mut wshape = vec![1, 1];
    wshape.extend(k);
    let ones = Tensor::f_ones(wshape.as_slice(), (x.kind(), x.device()))?;
    let y = x.f_reshape(flat.as_slice())?.f_convolution(
        &ones,
        None::<Tensor>,
        s,
        vec![0; d].as_slice(),
        w.dilations.as_slice(),
        false,
        vec![0; d].as_slice(),
        1,
    )?;
    let mut out = vec![size[0], size[1]];
    out.extend(&y.size()[2..]);
    Ok(y.f_reshape(out.as_slice())?)
}

fn spatial_dims(x: &Tensor) -> KResult<Vec<i64>> {
    let r = x.dim() as i64;
    if r < 3 {
        return fail(format!("input shape {:?} has no spatial axes", x.size()));
    }
    Ok((2..r).collect())
}

fn global_avg_pool(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    one(x.f_mean_dim(spatial_dims(x)?.as_slice(), true, None::<Kind>)?)
}

fn global_max_pool(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    one(x.f_amax(spatial_dims(x)?.as_slice(), true)?)
}

/// LpPool: the p-norm of each window, (sum of |x|^p)^(1/p), the pads
/// counting as zeros.
fn lp_pool(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    if !crate::graph::is_float(x.kind()) {
        return fail(format!(
            "LpPool takes floating-point input, got {:?}",
            x.kind()
        ));
    }
    let p = node.attrs.int("p", 2)?;
    if p < 1 {
        return fail(format!("p {p} should be a positive integer"));
    }
    let w = window(node, x)?;
    let powered = x.f_abs()?.f_pow_tensor_scalar(p)?;
    let padded = pad(&powered, &w.explicit_pads(), 0.0)?;
    // Window sums: each channel convolved with a (dilated) kernel of ones.
    let size = padded.size();
    let d = w.kernel.len();
    let mut flat = vec![size[0] * size[1], 1];
    flat.extend(&size[2..]);
    let mut wshape = vec![1, 1];
    wshape.extend(&w.kernel);
    let ones = Tensor::f_ones(wshape.as_slice(), (x.kind(), x.device()))?;
    let sums = padded.f_reshape(flat.as_slice())?.f_convolution(
        &ones,
        None::<Tensor>,
        w.strides.as_slice(),
        vec![0; d].as_slice(),
        w.dilations.as_slice(),
        false,
        vec![0; d].as_slice(),
        1,
    )?;
    let mut out = vec![size[0], size[1]];
    out.extend(&sums.size()[2..]);
    let sums = fit(sums.f_reshape(out.as_slice())?, &w.out)?;
    one(sums.f_pow_tensor_scalar(1.0 / p as f64)?)
}

/// MaxUnpool: the values X put back at their MaxPool `indices` in zeros,
/// the indices flat over the whole output, batch and channels included.
/// The output has the shape MaxPool's input had, `(in - 1) * stride -
/// pads + kernel` per spatial axis, or `output_shape` (input 2). With an
/// `output_shape` the indices address that shape, as onnxruntime and
/// PyTorch have it (MaxPool then MaxUnpool to the pooled input's shape
/// puts each maximum back where it was); ONNX's reference implementation
/// scatters into the inferred shape and pads it (see tests/conformance.rs).
fn max_unpool(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, indices) = (input(inputs, 0)?, input(inputs, 1)?);
    let size = x.size();
    let d = size.len().saturating_sub(2);
    let kernel = node.attrs.ints("kernel_shape")?.unwrap_or_default();
    if !(1..=3).contains(&d) || kernel.len() != d || indices.size() != size {
        return fail(format!(
            "X {size:?} should have rank 3 to 5, kernel_shape {kernel:?} one value per spatial axis and indices {:?} X's shape",
            indices.size()
        ));
    }
    let shape = match super::opt_input(inputs, 2) {
        Some(t) => {
            let shape = super::to_i64s(t)?;
            if shape.len() != size.len() || shape[..2] != size[..2] || shape.iter().any(|&s| s < 0)
            {
                return fail(format!(
                    "output_shape {shape:?} should keep the rank, batch and channels of X {size:?}"
                ));
            }
            shape
        }
        None => unpooled_shape(node, &size, &kernel)?,
    };
    let total: i64 = shape.iter().product();
    let idx = indices.f_to_kind(Kind::Int64)?.f_flatten(0, -1)?;
    if idx.numel() > 0 {
        let (lo, hi) = (idx.f_min()?.int64_value(&[]), idx.f_max()?.int64_value(&[]));
        if lo < 0 || hi >= total {
            return fail(format!(
                "indices from {lo} to {hi} fall outside the {total} elements of the output {shape:?}"
            ));
        }
    }
    let y = Tensor::f_zeros([total], (x.kind(), x.device()))?.f_scatter(
        0,
        &idx,
        &x.f_flatten(0, -1)?,
    )?;
    one(y.f_reshape(shape.as_slice())?)
}

/// The shape MaxPool's input had: `(in - 1) * stride - pads + kernel` per
/// spatial axis of X (`size`).
fn unpooled_shape(node: &Node, size: &[i64], kernel: &[i64]) -> KResult<Vec<i64>> {
    let d = kernel.len();
    let strides = per_axis(node, "strides", d, 1)?;
    let pads = node.attrs.ints("pads")?.unwrap_or(vec![0; 2 * d]);
    if pads.len() != 2 * d {
        return fail(format!("pads {pads:?} should have {} values", 2 * d));
    }
    let mut shape = size[..2].to_vec();
    shape
        .extend((0..d).map(|i| (size[i + 2] - 1) * strides[i] - pads[i] - pads[i + d] + kernel[i]));
    if shape.iter().any(|&s| s < 0) {
        return fail(format!("pads {pads:?} leave the output no room: {shape:?}"));
    }
    Ok(shape)
}
