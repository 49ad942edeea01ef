//! Matrix products in which every output is one chain of fused multiply-adds:
//! from its initial value (zero or a bias) over the shared axis in order.
//!
//! The engine batches rows of different samples and faults, on any number
//! of threads, and compares them bitwise; libtorch's products (MKL, oneDNN)
//! block their sums by the batch size, the thread count and the CPU, so a
//! sample's last bits change with the rows beside it. Here an output's bits
//! depend on its inputs alone: a fused multiply-add is correctly rounded on
//! every CPU, and the AVX-512, AVX2 and scalar code below run the same
//! chain, only more outputs at once. Gemm, MatMul and every Conv that the
//! AVX-512 kernels ([`super::pointwise`], [`super::depthwise`]) do not take
//! run here.

use tch::{Device, Kind, Tensor};

use super::avx512::{float_cpu, floats, floats_mut, on_threads, Out};
use super::{fail, KResult};

/// Which code computes the chains on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Scalar,
}

impl Isa {
    /// The widest this CPU runs, capped at AVX2 by `FAULTSWEEP_AVX512=off`.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if super::avx512::available() {
                return Isa::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    }
}

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
    if b.dim() == 1 {
        y = y.f_squeeze_dim(-1)?;
    }
    if a.dim() == 1 {
        y = y.f_squeeze_dim(-2)?;
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
    let y = Tensor::f_empty([m, n], options)?;
    let (a, b) = (a.f_contiguous()?, b.f_contiguous()?);
    // SAFETY: contiguous float32 CPU tensors of the sizes given, not empty;
    // `y` was just created and is written by this call alone.
    unsafe {
        let dims = [m, k, n].map(|d| d as usize);
        product(floats(&a), floats(&b), Init::Zero, floats_mut(&y), dims);
    }
    Ok(y)
}

/// `y = init + a · b` for `a` `[m, k]`, `b` `[k, n]` and `y` `[m, n]`, all
/// row-major and dense. Runs on libtorch's intra-op thread count.
pub fn product(a: &[f32], b: &[f32], init: Init, y: &mut [f32], [m, k, n]: [usize; 3]) {
    product_on(Isa::detect(), a, b, init, y, [m, k, n]);
}

/// As [`product`], with the given code (for tests: every one gives the same
/// bits).
pub fn product_on(
    isa: Isa,
    a: &[f32],
    b: &[f32],
    init: Init,
    y: &mut [f32],
    [m, k, n]: [usize; 3],
) {
    assert!(a.len() == m * k && b.len() == k * n && y.len() == m * n);
    assert!(match init {
        Init::Zero => true,
        Init::Row(v) => v.len() == m,
    });
    let p = Problem {
        a,
        b,
        init,
        m,
        k,
        n,
    };
    let out = Out(y.as_mut_ptr());
    // Threads take column panels: each reads its part of `b` once for all
    // rows, and writes its own columns.
    let panels = n.div_ceil(PANEL);
    // SAFETY: each thread writes the columns of its own panels of `y`,
    // which holds `m * n` values (checked above).
    let work = |range: std::ops::Range<usize>| unsafe {
        let cols = range.start * PANEL..n.min(range.end * PANEL);
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => avx512(&p, out, cols),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => avx2(&p, out, cols),
            _ => scalar(&p, out, cols),
        }
    };
    // A small product costs less than handing it to another thread.
    match m * k * n < THREADED_MACS {
        true => work(0..panels),
        false => on_threads(panels, work),
    }
}

/// Multiply-adds from which a product is worth splitting over threads.
const THREADED_MACS: usize = 1 << 18;

/// Columns of `b` a thread's panel holds (a multiple of every tile width).
const PANEL: usize = 256;

/// The value each chain starts from.
#[derive(Debug, Clone, Copy)]
pub enum Init<'a> {
    Zero,
    /// One value per row of `y` (a convolution's bias).
    Row(&'a [f32]),
}

struct Problem<'a> {
    a: &'a [f32],
    b: &'a [f32],
    init: Init<'a>,
    m: usize,
    k: usize,
    n: usize,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512(p: &Problem, y: Out, cols: std::ops::Range<usize>) {
    panel::<8, 32>(p, y, cols)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2(p: &Problem, y: Out, cols: std::ops::Range<usize>) {
    panel::<4, 16>(p, y, cols)
}

unsafe fn scalar(p: &Problem, y: Out, cols: std::ops::Range<usize>) {
    panel::<1, 8>(p, y, cols)
}

/// Columns `cols` of `y`, in tiles of `R` rows by `W` columns, each tile's
/// outputs held in registers over the whole shared axis.
#[inline(always)]
unsafe fn panel<const R: usize, const W: usize>(p: &Problem, y: Out, cols: std::ops::Range<usize>) {
    let mut j = cols.start;
    while j < cols.end {
        let width = W.min(cols.end - j);
        let mut i = 0;
        while i + R <= p.m {
            tile::<R, W>(p, y, i, j, width);
            i += R;
        }
        while i < p.m {
            tile::<1, W>(p, y, i, j, width);
            i += 1;
        }
        j += width;
    }
}

/// Rows `i..i + R`, columns `j..j + width` (`width <= W`) of `y`.
#[inline(always)]
unsafe fn tile<const R: usize, const W: usize>(
    p: &Problem,
    y: Out,
    i: usize,
    j: usize,
    width: usize,
) {
    let mut acc = [[0f32; W]; R];
    for (r, row) in acc.iter_mut().enumerate() {
        match p.init {
            Init::Zero => {}
            Init::Row(v) => *row = [v[i + r]; W],
        }
    }
    let mut b_row = [0f32; W];
    for kk in 0..p.k {
        let from = &p.b[kk * p.n + j..][..width];
        if width == W {
            b_row.copy_from_slice(from);
        } else {
            b_row[..width].copy_from_slice(from);
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let a = *p.a.get_unchecked((i + r) * p.k + kk);
            for (acc, b) in row.iter_mut().zip(&b_row) {
                *acc = a.mul_add(*b, *acc);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let to = y.0.add((i + r) * p.n + j);
        std::ptr::copy_nonoverlapping(row.as_ptr(), to, width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with a wide spread of magnitudes, so that any other order of
    /// the sums would round differently.
    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                let h = (i ^ seed).wrapping_mul(2_654_435_761).rotate_left(13);
                (h % 20_001) as f32 / 1000.0 - 10.0 + (h % 7) as f32 * 1e-4
            })
            .collect()
    }

    fn oracle(a: &[f32], b: &[f32], init: Init, [m, k, n]: [usize; 3]) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = match init {
                    Init::Zero => 0.0,
                    Init::Row(v) => v[i],
                };
                for kk in 0..k {
                    acc = a[i * k + kk].mul_add(b[kk * n + j], acc);
                }
                y[i * n + j] = acc;
            }
        }
        y
    }

    /// Every code path gives the chain's bits, on shapes that fill no tile
    /// or panel exactly, with bias per row, per column and none.
    #[test]
    fn every_code_path_computes_the_chain() {
        let mut isas = vec![Isa::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                isas.push(Isa::Avx2);
            }
            if std::is_x86_feature_detected!("avx512f") {
                isas.push(Isa::Avx512);
            }
        }
        for [m, k, n] in [
            [1, 1, 1],
            [3, 37, 5],
            [13, 70, 300],
            [9, 5, 33],
            [1, 160, 1000],
        ] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let rows = values(m, 3);
            for init in [Init::Zero, Init::Row(&rows)] {
                let want = oracle(&a, &b, init, [m, k, n]);
                for &isa in &isas {
                    let mut y = vec![f32::NAN; m * n];
                    product_on(isa, &a, &b, init, &mut y, [m, k, n]);
                    let same = y.iter().zip(&want).all(|(y, w)| y.to_bits() == w.to_bits());
                    assert!(same, "{isa:?} on {m}x{k}x{n}, {init:?}");
                }
            }
        }
    }
}
