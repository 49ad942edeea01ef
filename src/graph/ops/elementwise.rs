//! Element-wise arithmetic, comparison, logic and casts, with numpy-style
//! broadcasting (ONNX and torch share the rules).
//! Specs: <https://onnx.ai/onnx/operators/onnx__Add.html> and siblings
//! (Sub, Mul, Div, Mod, Pow, Sqrt, ..., Equal, Where, Cast, CastLike; the
//! trigonometric and hyperbolic functions Tan, Asin, ..., Atanh; IsNaN, IsInf;
//! BitwiseAnd, BitwiseOr, BitwiseXor, BitwiseNot; Shrink).
//!
//! ONNX requires both operands of a binary op to have the same type, so
//! torch's type promotion never kicks in for valid models; where torch would
//! still change the type (integer division, Pow with an integer base) the
//! kernel restores the ONNX result type explicitly.

use tch::{Kind, TchError, Tensor};

use super::{fail, input, one, Inputs, KResult, OpDef};
use crate::graph::is_float;
use crate::graph::Node;
use crate::graph::Op;

type Unary = fn(&Tensor) -> Result<Tensor, TchError>;
type Binary = fn(&Tensor, &Tensor) -> Result<Tensor, TchError>;

/// An op without attributes.
const fn plain(op: Op, kernel: super::Kernel) -> OpDef {
    OpDef {
        op,
        attrs: &[],
        kernel,
    }
}

pub const OPS: &[OpDef] = &[
    plain(Op::Add, add),
    plain(Op::Sub, sub),
    plain(Op::Mul, mul),
    plain(Op::Div, div),
    OpDef {
        op: Op::Mod,
        attrs: &["fmod"],
        kernel: modulo,
    },
    plain(Op::Pow, pow),
    plain(Op::Sqrt, sqrt),
    plain(Op::Neg, neg),
    plain(Op::Abs, abs),
    plain(Op::Exp, exp),
    plain(Op::Log, log),
    plain(Op::Reciprocal, reciprocal),
    plain(Op::Erf, erf),
    plain(Op::Floor, floor),
    plain(Op::Ceil, ceil),
    plain(Op::Sign, sign),
    plain(Op::Sin, sin),
    plain(Op::Cos, cos),
    plain(Op::Tan, tan),
    plain(Op::Asin, asin),
    plain(Op::Acos, acos),
    plain(Op::Atan, atan),
    plain(Op::Sinh, sinh),
    plain(Op::Cosh, cosh),
    plain(Op::Asinh, asinh),
    plain(Op::Acosh, acosh),
    plain(Op::Atanh, atanh),
    plain(Op::IsNaN, is_nan),
    plain(Op::Round, round),
    OpDef {
        op: Op::BitShift,
        attrs: &["direction"],
        kernel: bit_shift,
    },
    plain(Op::BitwiseAnd, bitwise_and),
    plain(Op::BitwiseOr, bitwise_or),
    plain(Op::BitwiseXor, bitwise_xor),
    plain(Op::BitwiseNot, bitwise_not),
    OpDef {
        op: Op::Shrink,
        attrs: &["bias", "lambd"],
        kernel: shrink,
    },
    OpDef {
        op: Op::IsInf,
        attrs: &["detect_positive", "detect_negative"],
        kernel: is_inf,
    },
    plain(Op::Max, max),
    plain(Op::Min, min),
    plain(Op::Sum, sum),
    plain(Op::Mean, mean),
    plain(Op::Equal, equal),
    plain(Op::Less, less),
    plain(Op::LessOrEqual, less_or_equal),
    plain(Op::Greater, greater),
    plain(Op::GreaterOrEqual, greater_or_equal),
    plain(Op::Not, not),
    plain(Op::And, and),
    plain(Op::Or, or),
    plain(Op::Xor, xor),
    plain(Op::Where, where_),
    OpDef {
        op: Op::Cast,
        // `saturate` and `round_mode` only apply to float8 targets, which
        // `to` rejects.
        attrs: &["to", "saturate", "round_mode"],
        kernel: cast,
    },
    OpDef {
        op: Op::CastLike,
        attrs: &["saturate", "round_mode"],
        kernel: cast_like,
    },
];

fn unary(inputs: &Inputs, f: Unary) -> KResult<Vec<Tensor>> {
    one(f(input(inputs, 0)?)?)
}

fn binary(inputs: &Inputs, f: Binary) -> KResult<Vec<Tensor>> {
    one(f(input(inputs, 0)?, input(inputs, 1)?)?)
}

/// Folds a variadic op (Max, Min, Sum, Mean) over its inputs, broadcasting.
fn fold(inputs: &Inputs, f: Binary) -> KResult<Tensor> {
    let mut acc = input(inputs, 0)?.shallow_clone();
    for i in 1..inputs.len() {
        acc = f(&acc, input(inputs, i)?)?;
    }
    Ok(acc)
}

/// Defines kernels that apply one tch method to input 0.
macro_rules! unary_kernels {
    ($($name:ident => $method:ident),* $(,)?) => {$(
        fn $name(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
            unary(inputs, Tensor::$method)
        }
    )*};
}

/// Defines kernels that apply one tch method to inputs 0 and 1.
macro_rules! binary_kernels {
    ($($name:ident => $method:ident),* $(,)?) => {$(
        fn $name(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
            binary(inputs, Tensor::$method)
        }
    )*};
}

unary_kernels! {
    sqrt => f_sqrt,
    neg => f_neg,
    abs => f_abs,
    exp => f_exp,
    log => f_log,
    reciprocal => f_reciprocal,
    erf => f_erf,
    floor => f_floor,
    ceil => f_ceil,
    sign => f_sign,
    sin => f_sin,
    cos => f_cos,
    tan => f_tan,
    asin => f_asin,
    acos => f_acos,
    atan => f_atan,
    sinh => f_sinh,
    cosh => f_cosh,
    asinh => f_asinh,
    acosh => f_acosh,
    atanh => f_atanh,
    is_nan => f_isnan,
    not => f_logical_not,
}

binary_kernels! {
    add => f_add,
    sub => f_sub,
    mul => f_mul,
    equal => f_eq_tensor,
    less => f_lt_tensor,
    less_or_equal => f_le_tensor,
    greater => f_gt_tensor,
    greater_or_equal => f_ge_tensor,
    and => f_logical_and,
    or => f_logical_or,
    xor => f_logical_xor,
}

/// Div: integer division truncates toward zero (as onnxruntime computes it);
/// torch's plain `div` would return floats for integer operands.
fn div(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
    if is_float(a.kind()) {
        one(a.f_div(b)?)
    } else {
        one(a.f_div_tensor_mode(b, "trunc")?)
    }
}

/// Mod: `fmod` 0 takes the divisor's sign (torch `remainder`, integers only),
/// `fmod` 1 the dividend's (C `fmod`).
/// Mod: fmod 0 is `A - floor(A / B) * B`, with the sign of B, a zero
/// result included (for floating-point inputs from opset 28; versions 10
/// and 13 constrain fmod 0 to integers); fmod 1 is C's fmod, with the sign
/// of A.
fn modulo(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
    match node.attrs.int("fmod", 0)? {
        0 if is_float(a.kind()) && node.opset < 28 => {
            fail("fmod 0 is invalid for floating-point inputs before opset 28")
        }
        0 if is_float(a.kind()) => {
            // libtorch's remainder leaves a zero result with A's sign.
            let r = a.f_remainder_tensor(b)?;
            let signed_zero = r.f_zeros_like()?.f_copysign(b)?;
            one(signed_zero.f_where_self(&r.f_eq(0.0)?, &r)?)
        }
        0 => one(a.f_remainder_tensor(b)?),
        1 => one(a.f_fmod_tensor(b)?),
        other => fail(format!("fmod {other} is not 0 or 1")),
    }
}

/// Pow: the result has the base's type, whatever the exponent's.
fn pow(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, y) = (input(inputs, 0)?, input(inputs, 1)?);
    one(x.f_pow(y)?.f_to_kind(x.kind())?)
}

fn max(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(fold(inputs, Tensor::f_maximum)?)
}

fn min(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(fold(inputs, Tensor::f_minimum)?)
}

fn sum(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(fold(inputs, Tensor::f_add)?)
}

fn mean(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let n = inputs.len() as f64;
    one(fold(inputs, Tensor::f_add)?.f_div_scalar(n)?)
}

/// Where(condition, X, Y): X where the condition holds, else Y.
fn where_(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let cond = input(inputs, 0)?.f_to_kind(Kind::Bool)?;
    let (x, y) = (input(inputs, 1)?, input(inputs, 2)?);
    one(x.f_where_self(&cond, y)?)
}

fn cast(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let to = node.attrs.int("to", 0)?;
    let kind = i32::try_from(to)
        .ok()
        .and_then(crate::graph::onnx_kind)
        .map(|(kind, _)| kind)
        .ok_or_else(|| super::KernelError(format!("cast to data type {to} is not supported")))?;
    one(x.f_to_kind(kind)?)
}

fn cast_like(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, like) = (input(inputs, 0)?, input(inputs, 1)?);
    one(x.f_to_kind(like.kind())?)
}

/// IsInf: true at +Inf (unless `detect_positive` is 0) and at -Inf (unless
/// `detect_negative` is 0).
fn is_inf(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let pos = node.attrs.int("detect_positive", 1)? != 0;
    let neg = node.attrs.int("detect_negative", 1)? != 0;
    let y = match (pos, neg) {
        (true, true) => x.f_isinf()?,
        (true, false) => x.f_isposinf()?,
        (false, true) => x.f_isneginf()?,
        (false, false) => x.f_isinf()?.f_zeros_like()?,
    };
    one(y)
}

/// Round: to the nearest integer, halves to even.
fn round(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    if !is_float(x.kind()) {
        return fail(format!(
            "Round takes floating-point input, got {:?}",
            x.kind()
        ));
    }
    one(x.f_round()?)
}

/// BitShift: shifts X by Y bits; right shifts of signed types extend the
/// sign, left shifts wrap; a shift below 0 or of the type's width or more
/// gives the sign fill alone (-1 for a right shift of a negative X, else 0),
/// as opset 28 defines it.
fn bit_shift(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, y) = (input(inputs, 0)?, input(inputs, 1)?);
    let (bits, signed) = match x.kind() {
        Kind::Uint8 => (8, false),
        Kind::Int8 => (8, true),
        Kind::Int16 => (16, true),
        Kind::Int => (32, true),
        Kind::Int64 => (64, true),
        k => return fail(format!("BitShift takes integer input, got {k:?}")),
    };
    if y.kind() != x.kind() {
        return fail(format!(
            "X is {:?} and Y {:?}: they should be of one type",
            x.kind(),
            y.kind()
        ));
    }
    let y64 = y.f_to_kind(Kind::Int64)?;
    let outside = y64.f_lt(0)?.f_logical_or(&y64.f_ge(bits)?)?;
    let amount = y64.f_clamp(0, bits - 1)?.f_to_kind(x.kind())?;
    let (shifted, fill) = match node.attrs.string("direction", "")?.as_str() {
        "LEFT" => (x.f_bitwise_left_shift(&amount)?, x.f_zeros_like()?),
        "RIGHT" => {
            let fill = match signed {
                true => x.f_lt(0)?.f_to_kind(x.kind())?.f_neg()?,
                false => x.f_zeros_like()?,
            };
            (x.f_bitwise_right_shift(&amount)?, fill)
        }
        other => return fail(format!("direction '{other}' is not LEFT or RIGHT")),
    };
    one(fill.f_where_self(&outside, &shifted)?)
}

/// The integer types the bitwise ops take; libtorch would also take bool,
/// which ONNX does not, and fail on floats with its own message.
fn bitwise_operand(t: &Tensor) -> KResult<&Tensor> {
    match t.kind() {
        Kind::Uint8 | Kind::Int8 | Kind::Int16 | Kind::Int | Kind::Int64 => Ok(t),
        k => fail(format!("bitwise ops take integer input, got {k:?}")),
    }
}

/// A bitwise binary op: both operands integers of one type, broadcast.
fn bitwise(inputs: &Inputs, f: Binary) -> KResult<Vec<Tensor>> {
    let (a, b) = (bitwise_operand(input(inputs, 0)?)?, input(inputs, 1)?);
    if a.kind() != b.kind() {
        return fail(format!(
            "A is {:?} and B {:?}: they should be of one type",
            a.kind(),
            b.kind()
        ));
    }
    one(f(a, b)?)
}

fn bitwise_and(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    bitwise(inputs, Tensor::f_bitwise_and_tensor)
}

fn bitwise_or(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    bitwise(inputs, Tensor::f_bitwise_or_tensor)
}

fn bitwise_xor(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    bitwise(inputs, Tensor::f_bitwise_xor_tensor)
}

/// BitwiseNot: every bit flipped (two's complement for signed types).
fn bitwise_not(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(bitwise_operand(input(inputs, 0)?)?.f_bitwise_not()?)
}

/// Shrink: x + bias below -lambd, x - bias above lambd, 0 between; the
/// result keeps X's type (integers are computed in double and cast back,
/// as the spec's reference does; floats in their own type).
fn shrink(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let bias = f64::from(node.attrs.float("bias", 0.0)?);
    let lambd = f64::from(node.attrs.float("lambd", 0.5)?);
    if x.kind() == Kind::Bool {
        return fail("Shrink takes numeric input, got Bool");
    }
    let xd = match is_float(x.kind()) {
        true => x.shallow_clone(),
        false => x.f_to_kind(Kind::Double)?,
    };
    let zero = xd.f_zeros_like()?;
    let above = (xd.f_sub_scalar(bias)?).f_where_self(&xd.f_gt(lambd)?, &zero)?;
    let y = (xd.f_add_scalar(bias)?).f_where_self(&xd.f_lt(-lambd)?, &above)?;
    one(y.f_to_kind(x.kind())?)
}
