//! Normalisation layers, in inference mode.
//! Specs: <https://onnx.ai/onnx/operators/onnx__BatchNormalization.html>,
//! <https://onnx.ai/onnx/operators/onnx__InstanceNormalization.html>,
//! <https://onnx.ai/onnx/operators/onnx__LayerNormalization.html>,
//! <https://onnx.ai/onnx/operators/onnx__GroupNormalization.html>,
//! <https://onnx.ai/onnx/operators/onnx__LRN.html>,
//! <https://onnx.ai/onnx/operators/onnx__LpNormalization.html>,
//! <https://onnx.ai/onnx/operators/onnx__MeanVarianceNormalization.html>.

use tch::{Kind, Tensor};

use super::{axis, fail, input, one, opt_input, Inputs, KResult, OpDef};
use crate::graph::Node;
use crate::graph::Op;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::BatchNormalization,
        attrs: &["epsilon", "momentum", "training_mode", "spatial"],
        kernel: batch_norm,
    },
    OpDef {
        op: Op::InstanceNormalization,
        attrs: &["epsilon"],
        kernel: instance_norm,
    },
    OpDef {
        op: Op::LayerNormalization,
        attrs: &["axis", "epsilon", "stash_type"],
        kernel: layer_norm,
    },
    OpDef {
        op: Op::GroupNormalization,
        attrs: &["epsilon", "num_groups", "stash_type"],
        kernel: group_norm,
    },
    OpDef {
        op: Op::LRN,
        attrs: &["alpha", "beta", "bias", "size"],
        kernel: lrn,
    },
    OpDef {
        op: Op::MeanVarianceNormalization,
        attrs: &["axes"],
        kernel: mean_variance_norm,
    },
    OpDef {
        op: Op::LpNormalization,
        attrs: &["axis", "p"],
        kernel: lp_norm,
    },
];

fn epsilon(node: &Node) -> KResult<f64> {
    Ok(f64::from(node.attrs.float("epsilon", 1e-5)?))
}

/// Fails unless `x` has at least `min` axes (batch, channels, ...).
fn need_rank(x: &Tensor, min: usize) -> KResult<()> {
    if x.dim() < min {
        return fail(format!(
            "input shape {:?} should have rank {min} or more",
            x.size()
        ));
    }
    Ok(())
}

/// Only the first output is computed; the others of these ops are training
/// statistics or optional extras.
fn single_output(node: &Node, what: &str) -> KResult<()> {
    if node.outputs.len() > 1 {
        return fail(format!(
            "only output Y is supported, the node asks for {} outputs ({what})",
            node.outputs.len()
        ));
    }
    Ok(())
}

fn batch_norm(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    if node.attrs.int("training_mode", 0)? != 0 {
        return fail("training_mode 1 is not supported (inference only)");
    }
    single_output(node, "running statistics are training outputs")?;
    let x = input(inputs, 0)?;
    need_rank(x, 2)?;
    let (scale, bias, mean, var) = (
        input(inputs, 1)?,
        input(inputs, 2)?,
        input(inputs, 3)?,
        input(inputs, 4)?,
    );
    let eps = epsilon(node)?;
    // momentum only updates running statistics in training; it does not
    // change inference results.
    if node.attrs.int("spatial", 1)? == 0 {
        // Opsets 7-8, spatial 0: statistics per activation, shaped like one
        // sample (C, D1, ...), so they broadcast against (N, C, D1, ...).
        let y = x
            .f_sub(mean)?
            .f_div(&var.f_add_scalar(eps)?.f_sqrt()?)?
            .f_mul(scale)?
            .f_add(bias)?;
        return one(y);
    }
    one(x.f_batch_norm(
        Some(scale),
        Some(bias),
        Some(mean),
        Some(var),
        false,
        0.0,
        eps,
        false,
    )?)
}

fn instance_norm(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, scale, bias) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
    need_rank(x, 3)?;
    one(x.f_instance_norm(
        Some(scale),
        Some(bias),
        None::<&Tensor>,
        None::<&Tensor>,
        true,
        0.0,
        epsilon(node)?,
        false,
    )?)
}

/// The computation type named by `stash_type` (an ONNX TensorProto type).
fn stash_kind(node: &Node) -> KResult<Kind> {
    match node.attrs.int("stash_type", 1)? {
        1 => Ok(Kind::Float),
        10 => Ok(Kind::Half),
        11 => Ok(Kind::Double),
        16 => Ok(Kind::BFloat16),
        t => fail(format!("stash_type {t} is not a floating-point type")),
    }
}

fn layer_norm(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let (scale, bias) = (input(inputs, 1)?, opt_input(inputs, 2));
    let size = x.size();
    let a = axis(node.attrs.int("axis", -1)?, size.len())? as usize;
    let normalized = &size[a..];
    let kind = stash_kind(node)?;
    // Scale and bias need only broadcast to the normalised shape; libtorch
    // wants them exactly that shape.
    let full = |t: &Tensor| -> KResult<Tensor> {
        if t.size() == normalized {
            return Ok(t.f_to_kind(kind)?);
        }
        if t.dim() > normalized.len() {
            return fail(format!(
                "scale/bias shape {:?} does not broadcast to the normalised shape {normalized:?}",
                t.size()
            ));
        }
        Ok(t.f_expand(normalized, false)?.f_to_kind(kind)?)
    };
    let (y, mean, inv_std) = x.f_to_kind(kind)?.f_native_layer_norm(
        normalized,
        Some(full(scale)?),
        bias.map(full).transpose()?,
        epsilon(node)?,
    )?;
    // Mean and InvStdDev keep the normalised axes with length 1.
    let stat: Vec<i64> = (0..size.len())
        .map(|i| if i < a { size[i] } else { 1 })
        .collect();
    let mut out = vec![y.f_to_kind(x.kind())?];
    if node.outputs.len() > 1 {
        out.push(mean.f_reshape(stat.as_slice())?);
    }
    if node.outputs.len() > 2 {
        out.push(inv_std.f_reshape(stat.as_slice())?);
    }
    Ok(out)
}

fn group_norm(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, scale, bias) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
    need_rank(x, 3)?;
    let groups = node.attrs.int("num_groups", 0)?;
    let channels = x.size()[1];
    if groups < 1 || channels % groups != 0 {
        return fail(format!(
            "num_groups {groups} should be positive and divide the {channels} channels"
        ));
    }
    let kind = stash_kind(node)?;
    // Opset 18 gives scale and bias per group, opset 21 per channel.
    let per_channel = |t: &Tensor| -> KResult<Tensor> {
        let t = t.f_to_kind(kind)?;
        if node.opset < 21 {
            Ok(t.f_repeat_interleave_self_int(channels / groups, 0, None)?)
        } else {
            Ok(t)
        }
    };
    let y = x.f_to_kind(kind)?.f_group_norm(
        groups,
        Some(per_channel(scale)?),
        Some(per_channel(bias)?),
        epsilon(node)?,
        false,
    )?;
    one(y.f_to_kind(x.kind())?)
}

fn lrn(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    need_rank(x, 2)?;
    let size = node.attrs.int("size", 0)?;
    if size < 1 {
        return fail(format!("size {size} should be a positive window length"));
    }
    let alpha = f64::from(node.attrs.float("alpha", 1e-4)?);
    let beta = f64::from(node.attrs.float("beta", 0.75)?);
    let bias = f64::from(node.attrs.float("bias", 1.0)?);
    let shape = x.size();
    let (n, c) = (shape[0], shape[1]);
    // ONNX's window over channels is [c - floor((size-1)/2), c + ceil((size-1)/2)],
    // not libtorch's local_response_norm window for even sizes: average the
    // squares over a (size, 1) window of the zero-padded channel axis, which
    // is ONNX's square sum divided by size.
    let before = (size - 1) / 2;
    let after = size - 1 - before;
    let sq = x.f_square()?.f_reshape([n, 1, c, -1])?.f_pad(
        [0, 0, before, after].as_slice(),
        "constant",
        0.0,
    )?;
    let mean = sq
        .f_avg_pool2d([size, 1], [1, 1], [0, 0], false, true, None)?
        .f_reshape(shape.as_slice())?;
    let div = mean
        .f_mul_scalar(alpha)?
        .f_add_scalar(bias)?
        .f_pow_tensor_scalar(beta)?;
    one(x.f_div(&div)?)
}

/// LpNormalization: x divided by its L1 or L2 norm along `axis`; where the
/// norm is 0 (all zeros) the output is 0, as onnxruntime gives.
fn lp_norm(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let a = axis(node.attrs.int("axis", -1)?, x.dim())?;
    let p = node.attrs.int("p", 2)?;
    let norm = match p {
        1 => x.f_abs()?.f_sum_dim_intlist(&[a][..], true, x.kind())?,
        2 => x
            .f_square()?
            .f_sum_dim_intlist(&[a][..], true, x.kind())?
            .f_sqrt()?,
        other => return fail(format!("p {other} is not 1 or 2")),
    };
    let y = x.f_div(&norm)?;
    one(y.f_where_self(&norm.f_ne(0)?, &y.f_zeros_like()?)?)
}

/// MeanVarianceNormalization: (X - E[X]) / (sqrt(E[(X - E[X])^2]) + 1e-9)
/// over `axes` (default 0, 2, 3), the epsilon the spec's function adds.
fn mean_variance_norm(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let axes = node.attrs.ints("axes")?.unwrap_or(vec![0, 2, 3]);
    let axes = super::shape::norm_axes(&axes, x.dim())?;
    let centred = x.f_sub(&x.f_mean_dim(axes.as_slice(), true, None::<Kind>)?)?;
    let var = centred
        .f_square()?
        .f_mean_dim(axes.as_slice(), true, None::<Kind>)?;
    one(centred.f_div(&var.f_sqrt()?.f_add_scalar(1e-9)?)?)
}
