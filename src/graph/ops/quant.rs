//! Quantization and the integer ops of quantized models, over the integer
//! types libtorch holds (uint8, int8, int16, int32; not uint16, the 4- and
//! 2-bit types or float8, which faultsweep refuses by name), and BitCast.
//! Specs: <https://onnx.ai/onnx/operators/onnx__QuantizeLinear.html>,
//! <https://onnx.ai/onnx/operators/onnx__DequantizeLinear.html>,
//! <https://onnx.ai/onnx/operators/onnx__DynamicQuantizeLinear.html>,
//! <https://onnx.ai/onnx/operators/onnx__MatMulInteger.html>,
//! <https://onnx.ai/onnx/operators/onnx__ConvInteger.html>,
//! <https://onnx.ai/onnx/operators/onnx__QLinearMatMul.html>,
//! <https://onnx.ai/onnx/operators/onnx__QLinearConv.html>,
//! <https://onnx.ai/onnx/operators/onnx__BitCast.html>.
//!
//! Integer products are summed in float32 when no partial sum can reach
//! 2^24 (the inner dimension times the largest operands' magnitudes), else
//! in float64 (exact below 2^53): either way exact, so the result is the
//! integer one in any order of summation; rounding is to the nearest even,
//! as the spec's `rint`.

use tch::{Kind, Tensor};

use super::conv::CONV_ATTRS;
use super::{axis, fail, input, one, opt_input, Inputs, KResult, KernelError, OpDef};
use crate::graph::{is_float, Node, Op};

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::QuantizeLinear,
        attrs: &[
            "axis",
            "block_size",
            "output_dtype",
            "saturate",
            "precision",
        ],
        kernel: quantize_linear,
    },
    OpDef {
        op: Op::DequantizeLinear,
        attrs: &["axis", "block_size", "output_dtype"],
        kernel: dequantize_linear,
    },
    OpDef {
        op: Op::DynamicQuantizeLinear,
        attrs: &[],
        kernel: dynamic_quantize_linear,
    },
    OpDef {
        op: Op::MatMulInteger,
        attrs: &[],
        kernel: matmul_integer,
    },
    OpDef {
        op: Op::ConvInteger,
        attrs: CONV_ATTRS,
        kernel: conv_integer,
    },
    OpDef {
        op: Op::QLinearMatMul,
        attrs: &[],
        kernel: qlinear_matmul,
    },
    OpDef {
        op: Op::QLinearConv,
        attrs: CONV_ATTRS,
        kernel: qlinear_conv,
    },
    OpDef {
        op: Op::BitCast,
        attrs: &["to"],
        kernel: bit_cast,
    },
];

/// The range of a quantized type faultsweep holds.
fn range_of(kind: Kind) -> KResult<(f64, f64)> {
    Ok(match kind {
        Kind::Uint8 => (0.0, 255.0),
        Kind::Int8 => (-128.0, 127.0),
        Kind::Int16 => (-32768.0, 32767.0),
        k => return fail(format!("quantized type {k:?} is not uint8, int8 or int16")),
    })
}

/// The element type an ONNX data type attribute names.
fn kind_named(name: &str, code: i64) -> KResult<Kind> {
    i32::try_from(code)
        .ok()
        .and_then(crate::graph::onnx_kind)
        .map(|(kind, _)| kind)
        .ok_or_else(|| KernelError(format!("{name} {code} is not a type faultsweep holds")))
}

/// A scale or zero point `p` shaped to broadcast over `x` of shape `size`:
/// a scalar per tensor, a vector along `axis` per axis, or, with a
/// `block_size`, one value per block of that many elements along `axis`.
fn per_element(p: &Tensor, size: &[i64], node: &Node) -> KResult<Tensor> {
    let ps = p.size();
    let block = node.attrs.int("block_size", 0)?;
    if p.numel() == 1 && ps.len() <= 1 && block == 0 {
        return Ok(p.f_reshape([] as [i64; 0])?);
    }
    let a = axis(node.attrs.int("axis", 1)?, size.len())? as usize;
    if ps.len() == 1 && block == 0 && ps[0] == size[a] {
        let mut shape = vec![1; size.len()];
        shape[a] = size[a];
        return Ok(p.f_reshape(shape.as_slice())?);
    }
    let blocked = block > 0
        && ps.len() == size.len()
        && (0..size.len()).all(|d| d == a || ps[d] == size[d])
        && ps[a] == (size[a] + block - 1) / block;
    if !blocked {
        return fail(format!(
            "scale or zero point of shape {ps:?} fits input {size:?} neither per tensor, per axis {a} nor in blocks of {block}"
        ));
    }
    Ok(p.f_repeat_interleave_self_int(block, a as i64, None)?
        .f_narrow(a as i64, 0, size[a])?)
}

/// `v` rounded half to even, plus `zero_point`, saturated to `kind`'s range
/// (NaN to its low end, as the reference's integer conversion leaves it).
fn saturate(v: &Tensor, zero_point: Option<&Tensor>, kind: Kind) -> KResult<Tensor> {
    let (lo, hi) = range_of(kind)?;
    let mut q = v.f_to_kind(Kind::Double)?.f_round()?;
    if let Some(z) = zero_point {
        q = q.f_add(&z.f_to_kind(Kind::Double)?)?;
    }
    let q = q.f_nan_to_num(Some(lo), None, None)?.f_clamp(lo, hi)?;
    Ok(q.f_to_kind(kind)?)
}

/// QuantizeLinear: saturate(round(x / y_scale) + y_zero_point), the
/// division in `precision` (by default y_scale's type), the result of
/// `output_dtype`, else y_zero_point's type, else uint8.
fn quantize_linear(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, scale, zero) = (input(inputs, 0)?, input(inputs, 1)?, opt_input(inputs, 2));
    let size = x.size();
    let kind = match (zero, node.attrs.int("output_dtype", 0)?) {
        (Some(z), 0) => z.kind(),
        (Some(z), t) if kind_named("output_dtype", t)? == z.kind() => z.kind(),
        (Some(z), t) => {
            return fail(format!(
                "output_dtype {t} and y_zero_point's type {:?} differ",
                z.kind()
            ))
        }
        (None, 0) => Kind::Uint8,
        (None, t) => kind_named("output_dtype", t)?,
    };
    let precision = match node.attrs.int("precision", 0)? {
        0 => scale.kind(),
        t => kind_named("precision", t)?,
    };
    let s = per_element(scale, &size, node)?.f_to_kind(precision)?;
    let z = zero.map(|z| per_element(z, &size, node)).transpose()?;
    one(saturate(
        &x.f_to_kind(precision)?.f_div(&s)?,
        z.as_ref(),
        kind,
    )?)
}

/// DequantizeLinear: (x - x_zero_point) * x_scale, in float32 (float64
/// for a float64 result), of `output_dtype` or else x_scale's type.
fn dequantize_linear(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, scale, zero) = (input(inputs, 0)?, input(inputs, 1)?, opt_input(inputs, 2));
    if is_float(x.kind()) || x.kind() == Kind::Bool {
        return fail(format!(
            "x of {:?} is not a quantized integer type",
            x.kind()
        ));
    }
    let size = x.size();
    let kind = match node.attrs.int("output_dtype", 0)? {
        0 => scale.kind(),
        t => kind_named("output_dtype", t)?,
    };
    let work = if kind == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    };
    let mut v = x.f_to_kind(work)?;
    if let Some(z) = zero {
        v = v.f_sub(&per_element(z, &size, node)?.f_to_kind(work)?)?;
    }
    let s = per_element(scale, &size, node)?.f_to_kind(work)?;
    one(v.f_mul(&s)?.f_to_kind(kind)?)
}

/// The words, scales and zero points behind a DequantizeLinear of integer
/// constants to float32 (a QDQ model's weight), each scale and zero point
/// spread to the words' shape; `None` when its inputs do not fit.
pub fn words_of(node: &Node, inputs: &Inputs) -> Option<crate::graph::Words> {
    let (x, scale) = (input(inputs, 0).ok()?, input(inputs, 1).ok()?);
    if !matches!(x.kind(), Kind::Int8 | Kind::Uint8 | Kind::Int) || scale.kind() != Kind::Float {
        return None;
    }
    let size = x.size();
    let spread = |p: &Tensor| -> Option<Tensor> {
        let p = per_element(p, &size, node).ok()?;
        p.f_to_kind(Kind::Float)
            .ok()?
            .f_expand(size.as_slice(), false)
            .ok()?
            .f_contiguous()
            .ok()
    };
    let zero = match opt_input(inputs, 2) {
        Some(z) => spread(z)?,
        None => Tensor::f_zeros(size.as_slice(), (Kind::Float, x.device())).ok()?,
    };
    Some(crate::graph::Words {
        words: x.shallow_clone(),
        scale: spread(scale)?,
        zero,
    })
}

/// DynamicQuantizeLinear: x (float32) to uint8 over the range [min(0,
/// min x), max(0, max x)], with that scale and zero point, computed in
/// float32 as the spec's function.
fn dynamic_quantize_linear(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    if x.kind() != Kind::Float {
        return fail(format!("x of {:?} is not float32", x.kind()));
    }
    let (lo, hi) = match x.numel() {
        0 => (0.0f32, 0.0f32),
        _ => (
            x.f_min()?.f_double_value(&[])? as f32,
            x.f_max()?.f_double_value(&[])? as f32,
        ),
    };
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = if hi == lo { 1.0 } else { hi - lo } / 255.0f32;
    let zero = (0.0f32 - lo / scale).clamp(0.0, 255.0).round_ties_even();
    let y = saturate(
        &x.f_div_scalar(f64::from(scale))?,
        Some(&Tensor::from(f64::from(zero))),
        Kind::Uint8,
    )?;
    Ok(vec![
        y,
        Tensor::from(scale),
        Tensor::from(zero).f_to_kind(Kind::Uint8)?,
    ])
}

/// An 8-bit integer operand minus its zero point, in float32 (exact). A
/// vector zero point of a matrix operand applies per row (`rows`: A of
/// MatMul) or per column; any other shape broadcasts as it is.
fn shifted(t: &Tensor, zero: Option<&Tensor>, rows: bool) -> KResult<Tensor> {
    if !matches!(t.kind(), Kind::Uint8 | Kind::Int8) {
        return fail(format!("operand of {:?} is not uint8 or int8", t.kind()));
    }
    let v = t.f_to_kind(Kind::Float)?;
    let Some(z) = zero else {
        return Ok(v);
    };
    let z = z.f_to_kind(Kind::Float)?;
    let z = if rows && z.dim() == 1 && z.numel() > 1 {
        z.f_unsqueeze(-1)?
    } else {
        z
    };
    Ok(v.f_sub(&z)?)
}

/// The largest magnitude in `t` (0 when empty).
fn largest(t: &Tensor) -> KResult<f64> {
    Ok(match t.numel() {
        0 => 0.0,
        _ => t.f_abs()?.f_max()?.f_double_value(&[])?,
    })
}

/// The kind that sums `terms` products of elements of `a` and `b` (shifted
/// operands), and a bias of magnitude up to `bias`, exactly: float32 when
/// no partial sum can reach 2^24.
fn exact_kind(a: &Tensor, b: &Tensor, terms: i64, bias: f64) -> KResult<Kind> {
    let bound = largest(a)? * largest(b)? * terms as f64 + bias;
    Ok(if bound < f64::from(1 << 24) {
        Kind::Float
    } else {
        Kind::Double
    })
}

/// The exact integer product of shifted matrices (or batches of them).
fn integer_matmul(a: &Tensor, b: &Tensor) -> KResult<Tensor> {
    let kind = exact_kind(a, b, a.size().last().copied().unwrap_or(0), 0.0)?;
    Ok(a.f_to_kind(kind)?.f_matmul(&b.f_to_kind(kind)?)?)
}

/// MatMulInteger: (A - a_zero_point) (B - b_zero_point), int32.
fn matmul_integer(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let a = shifted(input(inputs, 0)?, opt_input(inputs, 2), true)?;
    let b = shifted(input(inputs, 1)?, opt_input(inputs, 3), false)?;
    one(integer_matmul(&a, &b)?.f_to_kind(Kind::Int)?)
}

/// A Conv filter operand minus its zero point: a scalar, or one per
/// output channel (axis 0).
fn shifted_filters(w: &Tensor, zero: Option<&Tensor>) -> KResult<Tensor> {
    match zero {
        Some(z) if z.dim() == 1 && z.numel() > 1 => {
            let mut shape = vec![1; w.dim()];
            shape[0] = z.numel() as i64;
            shifted(w, Some(&z.f_reshape(shape.as_slice())?), false)
        }
        z => shifted(w, z, false),
    }
}

/// The integer convolution of `x` and `w` minus their zero points, with an
/// integer bias, exact in float32 or float64; padding adds zeros after the
/// shift.
fn integer_conv(
    node: &Node,
    x: (&Tensor, Option<&Tensor>),
    w: (&Tensor, Option<&Tensor>),
    bias: Option<&Tensor>,
) -> KResult<Tensor> {
    let xs = shifted(x.0, x.1, false)?;
    let ws = shifted_filters(w.0, w.1)?;
    // Each output sums C/group x taps products, and the bias.
    let terms = ws.size().iter().skip(1).product::<i64>();
    let b_max = bias.map(largest).transpose()?.unwrap_or(0.0);
    let kind = exact_kind(&xs, &ws, terms, b_max)?;
    let b = bias.map(|b| b.f_to_kind(kind)).transpose()?;
    let group = node.attrs.int("group", 1)?;
    super::conv::convolve(
        node,
        &xs.f_to_kind(kind)?,
        &ws.f_to_kind(kind)?,
        b.as_ref(),
        group,
    )
}

/// ConvInteger: Conv of (x - x_zero_point) and (w - w_zero_point), int32.
fn conv_integer(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = (input(inputs, 0)?, opt_input(inputs, 2));
    let w = (input(inputs, 1)?, opt_input(inputs, 3));
    one(integer_conv(node, x, w, None)?.f_to_kind(Kind::Int)?)
}

/// A QLinear op's integer result `acc` requantized: times the factor
/// a_scale * b_scale / y_scale, both in float32 as onnxruntime computes
/// them (the spec leaves this arithmetic open), then rounded and shifted
/// by `zero` into `kind`.
fn requantize(
    acc: &Tensor,
    factors: (&Tensor, &Tensor, &Tensor),
    zero: Option<&Tensor>,
    kind: Kind,
) -> KResult<Tensor> {
    let (a, b, y) = factors;
    let factor = a.f_mul(b)?.f_div(y)?.f_to_kind(Kind::Float)?;
    saturate(&acc.f_to_kind(Kind::Float)?.f_mul(&factor)?, zero, kind)
}

/// QLinearMatMul: the integer product of (a - a_zero_point) and (b -
/// b_zero_point), scaled by a_scale * b_scale / y_scale and quantized with
/// y_zero_point, of y_zero_point's type.
fn qlinear_matmul(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (a, b) = (input(inputs, 0)?, input(inputs, 3)?);
    let (a_scale, b_scale, y_scale) = (input(inputs, 1)?, input(inputs, 4)?, input(inputs, 6)?);
    let y_zero = opt_input(inputs, 7);
    let product = integer_matmul(
        &shifted(a, opt_input(inputs, 2), true)?,
        &shifted(b, opt_input(inputs, 5), false)?,
    )?;
    let a_scale = match a_scale.dim() == 1 && a_scale.numel() > 1 {
        true => a_scale.f_unsqueeze(-1)?,
        false => a_scale.shallow_clone(),
    };
    let kind = y_zero.map_or(a.kind(), Tensor::kind);
    one(requantize(
        &product,
        (&a_scale, b_scale, y_scale),
        y_zero,
        kind,
    )?)
}

/// QLinearConv: the integer convolution of (x - x_zero_point) and (w -
/// w_zero_point) plus the int32 bias B, scaled by x_scale * w_scale /
/// y_scale (w_scale per output channel or not) and quantized with
/// y_zero_point.
fn qlinear_conv(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = (input(inputs, 0)?, opt_input(inputs, 2));
    let w = (input(inputs, 3)?, opt_input(inputs, 5));
    let (x_scale, w_scale, y_scale) = (input(inputs, 1)?, input(inputs, 4)?, input(inputs, 6)?);
    let y_zero = opt_input(inputs, 7);
    let acc = integer_conv(node, x, w, opt_input(inputs, 8))?;
    let w_scale = match w_scale.numel() > 1 {
        true => {
            let mut shape = vec![1; acc.dim()];
            shape[1] = w_scale.numel() as i64;
            w_scale.f_reshape(shape.as_slice())?
        }
        false => w_scale.shallow_clone(),
    };
    let kind = y_zero.map_or(x.0.kind(), Tensor::kind);
    one(requantize(
        &acc,
        (x_scale, &w_scale, y_scale),
        y_zero,
        kind,
    )?)
}

/// BitCast: the input's bits read as type `to`, of the same width. A bool
/// result must come from bytes 0 and 1, the only ones a bool holds.
fn bit_cast(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let kind = kind_named("to", node.attrs.int("to", 0)?)?;
    if kind.elt_size_in_bytes() != x.kind().elt_size_in_bytes() {
        return fail(format!(
            "{:?} and {kind:?} differ in width: BitCast keeps the bits",
            x.kind()
        ));
    }
    if kind == Kind::Bool && x.kind() != Kind::Bool {
        let bytes = x.f_view_dtype(Kind::Uint8)?;
        if bytes.f_gt(1)?.f_any()?.f_int64_value(&[])? != 0 {
            return fail("a byte other than 0 and 1 is not a bool");
        }
    }
    one(x.f_contiguous()?.f_view_dtype(kind)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;

    fn node(op: Op, attrs: Vec<(&str, Attr)>) -> Node {
        crate::graph::ops::test_node(op, attrs, 23)
    }

    fn run(n: &Node, inputs: &[&Tensor]) -> KResult<Tensor> {
        let inputs: Vec<Option<&Tensor>> = inputs.iter().map(|&t| Some(t)).collect();
        Ok((super::super::def(n.op).kernel)(n, &inputs)?.remove(0))
    }

    /// Rounding is half to even, saturation clamps, and the zero point's
    /// type is the result's.
    #[test]
    fn quantize_rounds_to_even_and_saturates() {
        let x = Tensor::from_slice(&[0.5f32, 1.5, 2.5, -300.0, 300.0, f32::NAN]);
        let q = node(Op::QuantizeLinear, vec![]);
        let y = run(&q, &[&x, &Tensor::from(1f32), &Tensor::from(0i8)]).unwrap();
        assert_eq!(y.kind(), Kind::Int8);
        assert_eq!(Vec::<i8>::try_from(y).unwrap(), [0, 2, 2, -128, 127, -128]);
        let y = run(&q, &[&x, &Tensor::from(1f32)]).unwrap();
        assert_eq!(Vec::<u8>::try_from(y).unwrap(), [0, 2, 2, 0, 255, 0]);
    }

    #[test]
    fn misuse_is_reported() {
        let x = Tensor::ones([2, 3], (Kind::Float, tch::Device::Cpu));
        let q = node(Op::QuantizeLinear, vec![("output_dtype", Attr::Int(4))]);
        // uint16 (4): libtorch has no such type.
        let e = run(&q, &[&x, &Tensor::from(1f32)]).unwrap_err();
        assert!(e.0.contains("output_dtype 4"), "{}", e.0);
        let scales = Tensor::from_slice(&[1f32, 2.0]);
        let e = run(&node(Op::QuantizeLinear, vec![]), &[&x, &scales]).unwrap_err();
        assert!(e.0.contains("neither per tensor, per axis 1"), "{}", e.0);
        let cast = node(Op::BitCast, vec![("to", Attr::Int(7))]);
        let e = run(&cast, &[&x]).unwrap_err();
        assert!(e.0.contains("differ in width"), "{}", e.0);
        let to_bool = node(Op::BitCast, vec![("to", Attr::Int(9))]);
        let e = run(&to_bool, &[&Tensor::from_slice(&[0u8, 2])]).unwrap_err();
        assert!(e.0.contains("not a bool"), "{}", e.0);
        let floats = node(Op::DequantizeLinear, vec![]);
        let e = run(&floats, &[&x, &Tensor::from(1f32)]).unwrap_err();
        assert!(e.0.contains("not a quantized integer type"), "{}", e.0);
        let e = run(&node(Op::MatMulInteger, vec![]), &[&x, &x]).unwrap_err();
        assert!(e.0.contains("not uint8 or int8"), "{}", e.0);
    }

    /// Blocks of two along axis 1: each scale covers two elements, the
    /// last block the one left over.
    #[test]
    fn blocked_scales_repeat_along_the_axis() {
        let x = Tensor::from_slice(&[1i8, 1, 1, 1, 1]).reshape([1, 5]);
        let s = Tensor::from_slice(&[1f32, 2.0, 4.0]).reshape([1, 3]);
        let d = node(
            Op::DequantizeLinear,
            vec![("axis", Attr::Int(1)), ("block_size", Attr::Int(2))],
        );
        let y = run(&d, &[&x, &s]).unwrap();
        let want = [1f32, 1.0, 2.0, 2.0, 4.0];
        assert_eq!(Vec::<f32>::try_from(y.flatten(0, -1)).unwrap(), want);
    }
}
