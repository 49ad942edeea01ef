//! MatMul, Gemm and the convolutions that the AVX-512 kernels do not take,
//! on float32 CPU tensors, through [`crate::kernels::chain`]: every output
//! is one chain of fused multiply-adds from its initial value (zero or a
//! bias) over the shared axis in order, so its bits depend on its inputs
//! alone, not on the batch, the thread count or the CPU (libtorch's
//! products, MKL and oneDNN, block their sums by all three). Returns
//! `None` for other kinds or devices, which libtorch then runs.

use tch::{Device, Kind, Tensor};

pub use crate::kernels::chain::{product, Init};
use crate::kernels::views::{float_cpu, floats, floats_mut};

use super::{fail, KResult};

/// The matrix product of float32 CPU tensors `a` `[..., m, k]` and `b`
/// `[..., k, n]` (or a vector, as ONNX's MatMul and numpy's matmul),
/// batch axes broadcast; `None` for other kinds or devices.
pub fn matmul(a: &Tensor, b: &Tensor) -> KResult<Option<Tensor>> {
    if !float_cpu(&[Some(a), Some(b)]) || a.dim() == 0 || b.dim() == 0 {
        return Ok(None);
    }
    // A vector is a matrix of one row (a) or one column (b), dropped after.
    let a2 = if a.dim() == 1 {
        a.f_unsqueeze(0)?
    } else {
        a.shallow_clone()
    };
    let b2 = if b.dim() == 1 {
        b.f_unsqueeze(1)?
    } else {
        b.shallow_clone()
    };
    let (sa, sb) = (a2.size(), b2.size());
    let (m, k, n) = (sa[sa.len() - 2], sa[sa.len() - 1], sb[sb.len() - 1]);
    if sb[sb.len() - 2] != k {
        return fail(format!(
            "shapes {:?} and {:?} do not multiply",
            a.size(),
            b.size()
        ));
    }
    let batch = broadcast(&sa[..sa.len() - 2], &sb[..sb.len() - 2])?;
    let count: i64 = batch.iter().product();
    let mut y = if sb.len() == 2 {
        // One matrix b: a's batch is more rows of one product.
        let rows = a2.f_reshape([count * m, k])?;
        matrices(&rows, &b2)?.f_reshape([count, m, n])?
    } else {
        let expand = |t: &Tensor, tail: [i64; 2]| -> KResult<Tensor> {
            let shape = [batch.as_slice(), &tail].concat();
            Ok(t.f_expand(shape.as_slice(), false)?
                .f_reshape([count, tail[0], tail[1]])?)
        };
        let (a3, b3) = (expand(&a2, [m, k])?, expand(&b2, [k, n])?);
        let each = (0..count)
            .map(|i| matrices(&a3.get(i), &b3.get(i)))
            .collect::<KResult<Vec<_>>>()?;
        Tensor::f_stack(&each, 0)?
    };
    y = y.f_reshape([batch.as_slice(), &[m, n]].concat().as_slice())?;
    // The row axis first: with two vectors, the column axis is then last.
    if a.dim() == 1 {
        y = y.f_squeeze_dim(-2)?;
    }
    if b.dim() == 1 {
        y = y.f_squeeze_dim(-1)?;
    }
    Ok(Some(y))
}

/// The numpy broadcast of two batch shapes.
fn broadcast(a: &[i64], b: &[i64]) -> KResult<Vec<i64>> {
    let len = a.len().max(b.len());
    let at = |s: &[i64], i: usize| (i + s.len()).checked_sub(len).map_or(1, |j| s[j]);
    (0..len)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            _ => fail(format!("batch shapes {a:?} and {b:?} do not broadcast")),
        })
        .collect()
}

/// The product of float32 CPU matrices `a` `[m, k]` and `b` `[k, n]`.
fn matrices(a: &Tensor, b: &Tensor) -> KResult<Tensor> {
    let (m, k, n) = (a.size()[0], a.size()[1], b.size()[1]);
    let options = (Kind::Float, Device::Cpu);
    if m * k * n == 0 {
        return Ok(Tensor::f_zeros([m, n], options)?);
    }
    let mut y = Tensor::f_empty([m, n], options)?;
    let (a, b) = (a.f_contiguous()?, b.f_contiguous()?);
    let dims = [m, k, n].map(|d| d as usize);
    let float32 = "contiguous float32 CPU tensors";
    let (a, b) = (floats(&a).expect(float32), floats(&b).expect(float32));
    product(a, b, Init::Zero, floats_mut(&mut y).expect(float32), dims);
    Ok(y)
}
