//! Matrix products.
//! Specs: <https://onnx.ai/onnx/operators/onnx__Gemm.html>,
//! <https://onnx.ai/onnx/operators/onnx__MatMul.html>,
//! <https://onnx.ai/onnx/operators/onnx__Einsum.html>,
//! <https://onnx.ai/onnx/operators/onnx__Det.html>.

use tch::Tensor;

use super::{chain, fail, input, one, opt_input, Inputs, KResult, OpDef};
use crate::graph::Node;
use crate::graph::Op;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::Gemm,
        attrs: &["alpha", "beta", "transA", "transB"],
        kernel: gemm,
    },
    OpDef {
        op: Op::MatMul,
        attrs: &[],
        kernel: matmul,
    },
    OpDef {
        op: Op::Einsum,
        attrs: &["equation"],
        kernel: einsum,
    },
    OpDef {
        op: Op::Det,
        attrs: &[],
        kernel: det,
    },
];

/// Y = alpha * A' B' + beta * C, with A' and B' optionally transposed.
fn gemm(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (a, b, c) = (input(inputs, 0)?, input(inputs, 1)?, opt_input(inputs, 2));
    if a.dim() != 2 || b.dim() != 2 {
        return fail(format!(
            "A {:?} and B {:?} must be matrices",
            a.size(),
            b.size()
        ));
    }
    let a = if node.attrs.int("transA", 0)? != 0 {
        a.f_transpose(0, 1)?
    } else {
        a.shallow_clone()
    };
    let b = if node.attrs.int("transB", 0)? != 0 {
        b.f_transpose(0, 1)?
    } else {
        b.shallow_clone()
    };
    let alpha = f64::from(node.attrs.float("alpha", 1.0)?);
    let beta = f64::from(node.attrs.float("beta", 1.0)?);
    let mut y = product(&a, &b)?;
    if alpha != 1.0 {
        y = y.f_mul_scalar(alpha)?;
    }
    if let Some(c) = c {
        let rows_cols = y.size();
        y = if beta == 1.0 {
            y.f_add(c)?
        } else {
            y.f_add(&c.f_mul_scalar(beta)?)?
        };
        // C broadcasts to (M, N) only one way; torch would also grow Y.
        if y.size() != rows_cols {
            return fail(format!(
                "C {:?} does not broadcast to {rows_cols:?}",
                c.size()
            ));
        }
    }
    one(y)
}

fn matmul(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(product(input(inputs, 0)?, input(inputs, 1)?)?)
}

/// `a · b`: float32 in [`chain`] (a row's bits do not depend on the rows
/// beside it), other kinds in libtorch.
fn product(a: &Tensor, b: &Tensor) -> KResult<Tensor> {
    match chain::matmul(a, b)? {
        Some(y) => Ok(y),
        None => Ok(a.f_matmul(b)?),
    }
}

/// Einsum: torch parses the same equation language; ONNX allows spaces.
fn einsum(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let equation: String = node
        .attrs
        .string("equation", "")?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let operands = (0..inputs.len())
        .map(|i| input(inputs, i))
        .collect::<KResult<Vec<_>>>()?;
    one(Tensor::f_einsum(&equation, &operands, None::<&[i64]>)?)
}

/// Det: the determinant of each square matrix of the last two axes.
/// float16 and bfloat16 are computed in float (libtorch's LU has no
/// half-precision CPU kernel) and rounded back.
fn det(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let size = x.size();
    let square = size.len() >= 2 && size[size.len() - 1] == size[size.len() - 2];
    if !square || !crate::graph::is_float(x.kind()) {
        return fail(format!(
            "input {size:?} of {:?} should be floating-point square matrices (rank 2 or more)",
            x.kind()
        ));
    }
    let work = match x.kind() {
        tch::Kind::Half | tch::Kind::BFloat16 => tch::Kind::Float,
        k => k,
    };
    one(Tensor::f_linalg_det(&x.f_to_kind(work)?)?.f_to_kind(x.kind())?)
}
