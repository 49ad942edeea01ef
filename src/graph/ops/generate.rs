//! Ops whose output is made from a shape or a size, not from values:
//! EyeLike, the window functions of signal processing and MelWeightMatrix.
//! Specs: <https://onnx.ai/onnx/operators/onnx__EyeLike.html>,
//! <https://onnx.ai/onnx/operators/onnx__HannWindow.html>,
//! <https://onnx.ai/onnx/operators/onnx__HammingWindow.html>,
//! <https://onnx.ai/onnx/operators/onnx__BlackmanWindow.html>,
//! <https://onnx.ai/onnx/operators/onnx__MelWeightMatrix.html>.

use std::f64::consts::PI;

use tch::{Kind, Tensor};

use super::{fail, input, one, to_i64s, Inputs, KResult, OpDef};
use crate::graph::Node;
use crate::graph::Op;

/// The attributes of the window ops.
const WINDOW_ATTRS: &[&str] = &["periodic", "output_datatype"];

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::EyeLike,
        attrs: &["dtype", "k"],
        kernel: eye_like,
    },
    OpDef {
        op: Op::HannWindow,
        attrs: WINDOW_ATTRS,
        kernel: hann_window,
    },
    OpDef {
        op: Op::HammingWindow,
        attrs: WINDOW_ATTRS,
        kernel: hamming_window,
    },
    OpDef {
        op: Op::BlackmanWindow,
        attrs: WINDOW_ATTRS,
        kernel: blackman_window,
    },
    OpDef {
        op: Op::MelWeightMatrix,
        attrs: &["output_datatype"],
        kernel: mel_weight_matrix,
    },
];

/// The element type an ONNX data type attribute names, `default` when the
/// attribute is absent.
fn kind_attr(node: &Node, name: &str, default: Kind) -> KResult<Kind> {
    if !node.attrs.has(name) {
        return Ok(default);
    }
    let code = node.attrs.int(name, 0)?;
    i32::try_from(code)
        .ok()
        .and_then(crate::graph::onnx_kind)
        .map(|(kind, _)| kind)
        .ok_or_else(|| super::KernelError(format!("{name} {code} is not a type faultsweep holds")))
}

/// EyeLike: a matrix of the input's shape (rank 2) with ones on the
/// diagonal `k` places above the main one (below for a negative `k`) and
/// zeros elsewhere, of type `dtype` (by default the input's).
fn eye_like(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let [rows, cols] = x.size()[..] else {
        return fail(format!("input of shape {:?} should have rank 2", x.size()));
    };
    let kind = kind_attr(node, "dtype", x.kind())?;
    let k = node.attrs.int("k", 0)?;
    let options = (Kind::Int64, x.device());
    let r = Tensor::f_arange(rows, options)?.f_unsqueeze(1)?;
    let c = Tensor::f_arange(cols, options)?.f_unsqueeze(0)?;
    one(c.f_sub(&r)?.f_eq(k)?.f_to_kind(kind)?)
}

/// The window length (input 0, a scalar) and the positions `n` over the
/// denominator: the length itself when `periodic` (the default), one less
/// when symmetric.
fn window_positions(node: &Node, inputs: &Inputs) -> KResult<(Tensor, f64)> {
    let size = match to_i64s(input(inputs, 0)?)?.as_slice() {
        [s] if *s >= 0 => *s,
        other => return fail(format!("size {other:?} should be one non-negative integer")),
    };
    let periodic = node.attrs.int("periodic", 1)? != 0;
    let n = Tensor::f_arange(size, (Kind::Double, tch::Device::Cpu))?;
    let denominator = if periodic { size } else { size - 1 } as f64;
    Ok((n, denominator))
}

/// A window computed in double from `n / denominator` by `f`, in the type
/// `output_datatype` names (float by default).
fn window(node: &Node, inputs: &Inputs, f: fn(&Tensor) -> KResult<Tensor>) -> KResult<Vec<Tensor>> {
    let kind = kind_attr(node, "output_datatype", Kind::Float)?;
    let (n, denominator) = window_positions(node, inputs)?;
    one(f(&n.f_div_scalar(denominator)?)?.f_to_kind(kind)?)
}

/// HannWindow: sin²(π n / N).
fn hann_window(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    window(node, inputs, |t| {
        Ok(t.f_mul_scalar(PI)?.f_sin()?.f_square()?)
    })
}

/// HammingWindow: α - β cos(2π n / N), with ONNX's α = 25/46 and
/// β = 1 - α (not the rounded 0.54 and 0.46 of torch's default).
fn hamming_window(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    const ALPHA: f64 = 25.0 / 46.0;
    window(node, inputs, |t| {
        let c = t.f_mul_scalar(2.0 * PI)?.f_cos()?;
        Ok(c.f_mul_scalar(-(1.0 - ALPHA))?.f_add_scalar(ALPHA)?)
    })
}

/// BlackmanWindow: 0.42 - 0.5 cos(2π n / N) + 0.08 cos(4π n / N).
fn blackman_window(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    window(node, inputs, |t| {
        let c2 = t.f_mul_scalar(2.0 * PI)?.f_cos()?.f_mul_scalar(-0.5)?;
        let c4 = t.f_mul_scalar(4.0 * PI)?.f_cos()?.f_mul_scalar(0.08)?;
        Ok(c2.f_add(&c4)?.f_add_scalar(0.42)?)
    })
}

/// One number of a scalar input, as f64.
fn number(inputs: &Inputs, i: usize, what: &str) -> KResult<f64> {
    let t = input(inputs, i)?;
    if t.numel() != 1 {
        return fail(format!("{what} of shape {:?} should be a scalar", t.size()));
    }
    Ok(t.f_to_kind(Kind::Double)?.f_double_value(&[])?)
}

/// MelWeightMatrix: `[dft_length / 2 + 1, num_mel_bins]` triangular
/// filters, rising from 0 to 1 and falling back, between points spaced
/// evenly on the mel scale from `lower_edge_hertz` to `upper_edge_hertz`
/// and mapped to spectrogram bins. The mel step divides the range by
/// `num_mel_bins + 2`, as the spec's reference implementation does (and
/// its test case expects).
fn mel_weight_matrix(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let kind = kind_attr(node, "output_datatype", Kind::Float)?;
    let [bins, dft, rate] = [0, 1, 2].map(|i| number(inputs, i, "an integer input"));
    let (bins, dft, rate) = (bins? as i64, dft? as i64, rate?);
    let (low, high) = (
        number(inputs, 3, "lower_edge_hertz")?,
        number(inputs, 4, "upper_edge_hertz")?,
    );
    let rows = dft / 2 + 1;
    if bins < 1 || dft < 1 || rate <= 0.0 || !(0.0..high).contains(&low) {
        return fail(format!(
            "num_mel_bins {bins}, dft_length {dft}, sample_rate {rate} and edges {low}..{high} Hz should be positive and increasing"
        ));
    }
    let mel = |hz: f64| 2595.0 * (hz / 700.0).ln_1p() / 10f64.ln();
    let step = (mel(high) - mel(low)) / (bins + 2) as f64;
    let points: Vec<i64> = (0..bins + 2)
        .map(|i| {
            let hz = 700.0 * ((i as f64 * step + mel(low)) / 2595.0 * 10f64.ln()).exp_m1();
            (((dft + 1) as f64 * hz) / rate).floor() as i64
        })
        .collect();
    if points.iter().any(|&p| !(0..rows).contains(&p)) {
        return fail(format!(
            "the filters' bins {points:?} fall outside the {rows} spectrogram bins"
        ));
    }
    let mut w = vec![0f64; (rows * bins) as usize];
    for i in 0..bins as usize {
        let (lo, mid, hi) = (points[i], points[i + 1], points[i + 2]);
        let mut set = |j: i64, v: f64| w[j as usize * bins as usize + i] = v;
        match mid - lo {
            0 => set(mid, 1.0),
            up => (lo..=mid).for_each(|j| set(j, (j - lo) as f64 / up as f64)),
        }
        if hi > mid {
            (mid..hi).for_each(|j| set(j, (hi - j) as f64 / (hi - mid) as f64));
        }
    }
    one(Tensor::from_slice(&w)
        .f_reshape([rows, bins])?
        .f_to_kind(kind)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;

    fn node(op: Op, attrs: Vec<(&str, Attr)>) -> Node {
        crate::graph::ops::test_node(op, attrs, 17)
    }

    fn run(op: Op, attrs: Vec<(&str, Attr)>, size: i64) -> KResult<Vec<f64>> {
        let n = node(op, attrs);
        let s = Tensor::from(size);
        let y = (super::super::def(op).kernel)(&n, &[Some(&s)])?.remove(0);
        Ok(Vec::<f64>::try_from(y.to_kind(Kind::Double)).unwrap())
    }

    /// The symmetric windows are torch's (whose Hamming takes α and β as
    /// arguments); the periodic ones drop the symmetric window's last point
    /// of one more.
    #[test]
    fn windows_match_torch_and_their_periodic_form() {
        let opts = (Kind::Double, tch::Device::Cpu);
        let sym = vec![("periodic", Attr::Int(0))];
        let alpha = 25.0 / 46.0;
        for (op, reference) in [
            (Op::HannWindow, Tensor::hann_window_periodic(7, false, opts)),
            (
                Op::HammingWindow,
                Tensor::hamming_window_periodic_alpha_beta(7, false, alpha, 1.0 - alpha, opts),
            ),
            (
                Op::BlackmanWindow,
                Tensor::blackman_window_periodic(7, false, opts),
            ),
        ] {
            let want = Vec::<f64>::try_from(reference).unwrap();
            let got = run(op, sym.clone(), 7).unwrap();
            assert!(
                got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6),
                "{op}"
            );
            let periodic = run(op, vec![], 6).unwrap();
            assert!(
                periodic.iter().zip(&got).all(|(a, b)| (a - b).abs() < 1e-6),
                "{op}"
            );
        }
        assert!(run(Op::HannWindow, vec![], -1).is_err());
        let double = vec![("output_datatype", Attr::Int(11))];
        assert_eq!(run(Op::HannWindow, double, 0).unwrap(), Vec::<f64>::new());
    }

    #[test]
    fn eye_like_shifts_the_diagonal_and_needs_rank_2() {
        let x = Tensor::zeros([3, 4], (Kind::Int, tch::Device::Cpu));
        let n = node(Op::EyeLike, vec![("k", Attr::Int(-1))]);
        let y = eye_like(&n, &[Some(&x)]).unwrap().remove(0);
        assert_eq!(y.kind(), Kind::Int);
        let want = [0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0];
        assert_eq!(Vec::<i32>::try_from(y.flatten(0, -1)).unwrap(), want);
        let v = Tensor::zeros([3], (Kind::Float, tch::Device::Cpu));
        let e = eye_like(&n, &[Some(&v)]).unwrap_err();
        assert!(e.0.contains("rank 2"), "{}", e.0);
        let bad = node(Op::EyeLike, vec![("dtype", Attr::Int(8))]);
        assert!(eye_like(&bad, &[Some(&x)])
            .unwrap_err()
            .0
            .contains("dtype 8"));
    }

    /// Filters whose edges map past the spectrogram are an error, not an
    /// index out of bounds.
    #[test]
    fn mel_filters_beyond_the_spectrogram_are_refused() {
        let n = node(Op::MelWeightMatrix, vec![]);
        let ints = [4i32, 8, 100].map(Tensor::from);
        let (lo, hi) = (Tensor::from(0f32), Tensor::from(100f32));
        let ins = [&ints[0], &ints[1], &ints[2], &lo, &hi].map(Some);
        let e = mel_weight_matrix(&n, &ins).unwrap_err();
        assert!(
            e.0.contains("fall outside the 5 spectrogram bins"),
            "{}",
            e.0
        );
    }
}
