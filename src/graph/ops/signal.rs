//! Fourier transforms: DFT and STFT. ONNX holds a complex value as a last
//! axis of two (real, imaginary), a real one as a last axis of one; the
//! kernels view it as a libtorch complex tensor, transform it, and view the
//! result back, computed in float64 and rounded to the input's type.
//! Specs: <https://onnx.ai/onnx/operators/onnx__DFT.html>,
//! <https://onnx.ai/onnx/operators/onnx__STFT.html>.

use tch::{Kind, Tensor};

use super::{fail, input, one, opt_input, to_i64s, Inputs, KResult, OpDef};
use crate::graph::{is_float, Node, Op};

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::DFT,
        attrs: &["axis", "inverse", "onesided"],
        kernel: dft,
    },
    OpDef {
        op: Op::STFT,
        attrs: &["onesided"],
        kernel: stft,
    },
];

/// One integer of a scalar input.
fn scalar(t: &Tensor, what: &str) -> KResult<i64> {
    match to_i64s(t)?.as_slice() {
        [v] => Ok(*v),
        v => fail(format!("{what} {v:?} should be one integer")),
    }
}

/// `x` (`[..., 1]` real or `[..., 2]` complex, floating-point) as a complex
/// tensor without the last axis, in float64 (the reference's precision:
/// an inverse transform's near-zero parts differ beyond the conformance
/// tolerance in float32).
fn complex(x: &Tensor) -> KResult<Tensor> {
    let size = x.size();
    if !is_float(x.kind()) || !matches!(size.last(), Some(1 | 2)) || size.len() < 2 {
        return fail(format!(
            "input {size:?} of {:?} should be floating-point with a last axis of 1 (real) or 2 (complex)",
            x.kind()
        ));
    }
    let x = x.f_to_kind(Kind::Double)?;
    if size.last() == Some(&2) {
        return Ok(x.f_contiguous()?.f_view_as_complex()?);
    }
    let re = x.f_squeeze_dim(-1)?;
    Ok(Tensor::f_complex(&re, &re.f_zeros_like()?)?)
}

/// A complex result as ONNX holds it, `[..., 2]`, of type `kind`.
fn real_pairs(c: &Tensor, kind: Kind) -> KResult<Tensor> {
    Ok(c.f_view_as_real()?.f_to_kind(kind)?)
}

/// DFT along `axis` (an input from opset 20, default -2; an attribute
/// before, default 1) over `dft_length` points (the axis's length by
/// default, zero-padded or cut), inverse scaled by 1/n. `onesided` keeps
/// the first n/2 + 1 frequencies of a forward transform; inverse, it takes
/// them and returns the real signal (length 2 (m - 1) by default).
fn dft(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let rank = x.dim() as i64;
    let a = match node.opset >= 20 {
        true => opt_input(inputs, 2)
            .map(|t| scalar(t, "axis"))
            .transpose()?
            .unwrap_or(-2),
        false => node.attrs.int("axis", 1)?,
    };
    let a = if a < 0 { a + rank } else { a };
    if a < 0 || a > rank - 2 {
        return fail(format!(
            "axis {a} is not a signal axis of input {:?} (its last axis holds the complex parts)",
            x.size()
        ));
    }
    let c = complex(x)?;
    let inverse = node.attrs.int("inverse", 0)? != 0;
    let onesided = node.attrs.int("onesided", 0)? != 0;
    let len = c.size()[a as usize];
    let n = match opt_input(inputs, 1) {
        Some(t) => scalar(t, "dft_length")?,
        None if onesided && inverse => 2 * (len - 1),
        None => len,
    };
    if n < 1 {
        return fail(format!("dft_length {n} should be positive"));
    }
    match (inverse, onesided) {
        (true, true) => one(c
            .f_fft_irfft(n, a, "backward")?
            .f_unsqueeze(-1)?
            .f_to_kind(x.kind())?),
        (true, false) => one(real_pairs(&c.f_fft_ifft(n, a, "backward")?, x.kind())?),
        (false, sided) => {
            let mut y = c.f_fft_fft(n, a, "backward")?;
            if sided {
                y = y.f_narrow(a, 0, n / 2 + 1)?;
            }
            one(real_pairs(&y, x.kind())?)
        }
    }
}

/// STFT: the DFT of each frame of `frame_length` samples (by default the
/// window's length, else the whole signal), every `frame_step`, times the window if given;
/// `onesided` (the default) keeps the first n/2 + 1 frequencies. Output
/// `[batch, frames, frequencies, 2]`.
fn stft(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let step = scalar(input(inputs, 1)?, "frame_step")?;
    let window = opt_input(inputs, 2);
    let c = complex(x)?;
    let size = c.size();
    let length = match (opt_input(inputs, 3), window) {
        (Some(t), _) => scalar(t, "frame_length")?,
        (None, Some(w)) => w.numel() as i64,
        (None, None) => size.get(1).copied().unwrap_or(0),
    };
    if size.len() != 2 || step < 1 || length < 1 || length > size[1] {
        return fail(format!(
            "signal {:?} should be [batch, length, 1 or 2] of at least frame_length {length}, frame_step {step} positive",
            x.size()
        ));
    }
    let mut frames = c.f_unfold(1, length, step)?;
    if let Some(w) = window {
        if w.size() != [length] {
            return fail(format!("window {:?} should be [{length}]", w.size()));
        }
        frames = frames.f_mul(&w.f_to_kind(Kind::Double)?)?;
    }
    let mut y = frames.f_fft_fft(length, 2, "backward")?;
    if node.attrs.int("onesided", 1)? != 0 {
        y = y.f_narrow(2, 0, length / 2 + 1)?;
    }
    one(real_pairs(&y, x.kind())?)
}
