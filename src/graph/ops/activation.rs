//! Activations and the softmax family.
//! Specs: <https://onnx.ai/onnx/operators/> (Relu, LeakyRelu, PRelu, Elu, Selu,
//! Celu, Sigmoid, HardSigmoid, HardSwish, Tanh, Softplus, Softsign, Mish,
//! Gelu, Softmax, LogSoftmax, Hardmax, Clip).
//!
//! Formulas with parameters are written out as the spec states them (rather
//! than through torch's fixed-parameter variants) so every attribute counts.

use tch::{Kind, Tensor};

use super::{axis, fail, input, one, opt_input, to_f64, Inputs, KResult, OpDef};
use crate::graph::Node;
use crate::graph::Op;

/// An op without attributes.
const fn plain(op: Op, kernel: super::Kernel) -> OpDef {
    OpDef {
        op,
        attrs: &[],
        kernel,
    }
}

pub const OPS: &[OpDef] = &[
    plain(Op::Relu, relu),
    OpDef {
        op: Op::LeakyRelu,
        attrs: &["alpha"],
        kernel: leaky_relu,
    },
    plain(Op::PRelu, prelu),
    OpDef {
        op: Op::Elu,
        attrs: &["alpha"],
        kernel: elu,
    },
    OpDef {
        op: Op::Selu,
        attrs: &["alpha", "gamma"],
        kernel: selu,
    },
    OpDef {
        op: Op::Celu,
        attrs: &["alpha"],
        kernel: celu,
    },
    plain(Op::Sigmoid, sigmoid),
    OpDef {
        op: Op::HardSigmoid,
        attrs: &["alpha", "beta"],
        kernel: hard_sigmoid,
    },
    plain(Op::HardSwish, hard_swish),
    plain(Op::Tanh, tanh),
    plain(Op::Softplus, softplus),
    plain(Op::Softsign, softsign),
    plain(Op::Mish, mish),
    OpDef {
        op: Op::Gelu,
        attrs: &["approximate"],
        kernel: gelu,
    },
    OpDef {
        op: Op::Softmax,
        attrs: &["axis"],
        kernel: softmax,
    },
    OpDef {
        op: Op::LogSoftmax,
        attrs: &["axis"],
        kernel: log_softmax,
    },
    OpDef {
        op: Op::Hardmax,
        attrs: &["axis"],
        kernel: hardmax,
    },
    OpDef {
        op: Op::Clip,
        attrs: &["min", "max"],
        kernel: clip,
    },
    OpDef {
        op: Op::Swish,
        attrs: &["alpha"],
        kernel: swish,
    },
    OpDef {
        op: Op::SwiGLU,
        attrs: &["alpha"],
        kernel: swiglu,
    },
    OpDef {
        op: Op::ThresholdedRelu,
        attrs: &["alpha"],
        kernel: thresholded_relu,
    },
];

fn relu(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(input(inputs, 0)?.f_relu()?)
}

fn sigmoid(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(input(inputs, 0)?.f_sigmoid()?)
}

fn tanh(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(input(inputs, 0)?.f_tanh()?)
}

fn mish(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(input(inputs, 0)?.f_mish()?)
}

/// Softplus: ln(exp(x) + 1). torch returns x itself above 20, which differs
/// from the exact value by less than exp(-20) relative.
fn softplus(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(input(inputs, 0)?.f_softplus()?)
}

/// Softsign: x / (1 + |x|).
fn softsign(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    one(x.f_div(&x.f_abs()?.f_add_scalar(1.0)?)?)
}

/// `neg` where x < 0, x elsewhere (the shape of every ReLU variant).
fn where_negative(x: &Tensor, neg: &Tensor) -> KResult<Tensor> {
    Ok(neg.f_where_self(&x.f_lt(0.0)?, x)?)
}

/// LeakyRelu: alpha * x for x < 0.
fn leaky_relu(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let alpha = f64::from(node.attrs.float("alpha", 0.01)?);
    one(where_negative(x, &x.f_mul_scalar(alpha)?)?)
}

/// PRelu: slope * x for x < 0, the slope broadcasting to x (unidirectionally).
fn prelu(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, slope) = (input(inputs, 0)?, input(inputs, 1)?);
    let neg = x.f_mul(slope)?;
    if neg.size() != x.size() {
        return fail(format!(
            "slope {:?} does not broadcast to the input {:?}",
            slope.size(),
            x.size()
        ));
    }
    one(where_negative(x, &neg)?)
}

/// scale * (x for x > 0, alpha * (exp(x / width) - 1) otherwise): Elu, Selu
/// and Celu are all this shape.
fn exp_linear(x: &Tensor, alpha: f64, scale: f64, width: f64) -> KResult<Tensor> {
    let neg = x.f_div_scalar(width)?.f_expm1()?.f_mul_scalar(alpha)?;
    let y = x.f_where_self(&x.f_gt(0.0)?, &neg)?;
    Ok(if scale == 1.0 {
        y
    } else {
        y.f_mul_scalar(scale)?
    })
}

fn elu(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let alpha = f64::from(node.attrs.float("alpha", 1.0)?);
    one(exp_linear(input(inputs, 0)?, alpha, 1.0, 1.0)?)
}

fn selu(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let alpha = f64::from(node.attrs.float("alpha", 1.673_263_2)?);
    let gamma = f64::from(node.attrs.float("gamma", 1.050_701)?);
    one(exp_linear(input(inputs, 0)?, alpha, gamma, 1.0)?)
}

/// Celu: max(0, x) + min(0, alpha * (exp(x / alpha) - 1)).
fn celu(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let alpha = f64::from(node.attrs.float("alpha", 1.0)?);
    if alpha == 0.0 {
        return fail("alpha 0 divides by zero");
    }
    one(exp_linear(input(inputs, 0)?, alpha, 1.0, alpha)?)
}

/// max(0, min(1, alpha * x + beta)).
fn hard_sigmoid_of(x: &Tensor, alpha: f64, beta: f64) -> KResult<Tensor> {
    Ok(x.f_mul_scalar(alpha)?
        .f_add_scalar(beta)?
        .f_clamp(0.0, 1.0)?)
}

fn hard_sigmoid(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let alpha = f64::from(node.attrs.float("alpha", 0.2)?);
    let beta = f64::from(node.attrs.float("beta", 0.5)?);
    one(hard_sigmoid_of(input(inputs, 0)?, alpha, beta)?)
}

/// HardSwish: x * HardSigmoid(x) with alpha 1/6, beta 0.5, as the spec
/// defines it (torch's hardswish computes x * relu6(x + 3) / 6 instead).
fn hard_swish(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let alpha = f64::from(1.0f32 / 6.0);
    one(x.f_mul(&hard_sigmoid_of(x, alpha, 0.5)?)?)
}

/// Gelu (opset 20): exact with erf, or the tanh approximation.
fn gelu(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let approximate = node.attrs.string("approximate", "none")?;
    if approximate != "none" && approximate != "tanh" {
        return fail(format!(
            "approximate '{approximate}' is not 'none' or 'tanh'"
        ));
    }
    one(input(inputs, 0)?.f_gelu(&approximate)?)
}

/// Softmax-like ops. From opset 13 they work along `axis` (default -1).
/// Before, the input is coerced to 2-D at `axis` (default 1), the op runs on
/// each row of [prod(dims[..axis]), prod(dims[axis..])] and the result gets
/// the input shape back. The axis is in [-r, r - 1] in every opset (the
/// coercion alone would take r, as Flatten does).
fn along_axis(
    node: &Node,
    inputs: &Inputs,
    f: fn(&Tensor, i64, Option<Kind>) -> Result<Tensor, tch::TchError>,
) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let size = x.size();
    if node.opset >= 13 {
        let a = axis(node.attrs.int("axis", -1)?, size.len())?;
        return one(f(x, a, None)?);
    }
    let a = axis(node.attrs.int("axis", 1)?, size.len())?;
    let matrix = super::shape::to_2d(x, a)?;
    one(f(&matrix, 1, None)?.f_reshape(&size)?)
}

fn softmax(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    along_axis(node, inputs, |x, a, k| x.f_softmax(a, k))
}

fn log_softmax(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    along_axis(node, inputs, |x, a, k| x.f_log_softmax(a, k))
}

/// Clip: bounds are attributes before opset 11, optional scalar inputs from
/// 11 on. The result keeps the input type (torch would promote an integer
/// tensor clamped with float bounds).
/// Hardmax: 1 at the first maximum along the axis, 0 elsewhere (along the
/// rows of the 2-D coercion before opset 13, as Softmax).
fn hardmax(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    along_axis(node, inputs, |x, a, _| {
        let first = x.f_argmax(a, true)?;
        x.f_zeros_like()?.f_scatter_value(a, &first, 1.0)
    })
}

fn clip(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let y = match clip_limits(node, inputs)? {
        (Some(lo), Some(hi)) => x.f_clamp(lo, hi)?,
        (Some(lo), None) => x.f_clamp_min(lo)?,
        (None, Some(hi)) => x.f_clamp_max(hi)?,
        (None, None) => x.shallow_clone(),
    };
    one(y.f_to_kind(x.kind())?)
}

/// A Clip's lower and upper limits, where given: attributes before opset
/// 11, inputs 1 and 2 from it.
pub fn clip_limits(node: &Node, inputs: &Inputs) -> KResult<(Option<f64>, Option<f64>)> {
    if node.opset < 11 {
        let limit = |name| -> KResult<Option<f64>> {
            if node.attrs.has(name) {
                Ok(Some(f64::from(node.attrs.float(name, 0.0)?)))
            } else {
                Ok(None)
            }
        };
        Ok((limit("min")?, limit("max")?))
    } else {
        if node.attrs.has("min") || node.attrs.has("max") {
            return fail("min and max are inputs from opset 11, not attributes");
        }
        let lo = opt_input(inputs, 1).map(to_f64).transpose()?;
        let hi = opt_input(inputs, 2).map(to_f64).transpose()?;
        Ok((lo, hi))
    }
}

/// Swish (opset 24): x * sigmoid(alpha * x).
fn swish(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let alpha = f64::from(node.attrs.float("alpha", 1.0)?);
    one(x.f_mul(&x.f_mul_scalar(alpha)?.f_sigmoid()?)?)
}

/// SwiGLU: Swish_alpha(A) * B, of A and B of one shape and type (the
/// spec applies no broadcasting).
fn swiglu(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
    if a.size() != b.size() || a.kind() != b.kind() {
        return fail(format!(
            "A ({:?}, {:?}) and B ({:?}, {:?}) should have one shape and type",
            a.size(),
            a.kind(),
            b.size(),
            b.kind()
        ));
    }
    let alpha = f64::from(node.attrs.float("alpha", 1.0)?);
    one(a.f_mul(&a.f_mul_scalar(alpha)?.f_sigmoid()?)?.f_mul(b)?)
}

/// ThresholdedRelu: x where x > alpha, 0 elsewhere (NaN too, as the spec
/// and onnxruntime have it).
fn thresholded_relu(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let alpha = f64::from(node.attrs.float("alpha", 1.0)?);
    one(x.f_where_self(&x.f_gt(alpha)?, &x.f_zeros_like()?)?)
}
