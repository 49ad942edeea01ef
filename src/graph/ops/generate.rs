//! Ops whose output is made from a shape or a size, not from values:
//! EyeLike and the window functions of signal processing.
//! Specs: <https://onnx.ai/onnx/operators/onnx__EyeLike.html>,
//! <https://onnx.ai/onnx/operators/onnx__HannWindow.html>,
//! <https://onnx.ai/onnx/operators/onnx__HammingWindow.html>,
//! <https://onnx.ai/onnx/operators/onnx__BlackmanWindow.html>.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Attr, Attrs};

    fn node(op: Op, attrs: Vec<(&str, Attr)>) -> Node {
        Node {
            index: 0,
            name: "n".into(),
            op,
            inputs: vec![],
            outputs: vec![],
            attrs: Attrs(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect()),
            opset: 17,
        }
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
}
