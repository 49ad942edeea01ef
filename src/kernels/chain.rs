//! Matrix products in which every output is one chain of fused multiply-adds:
//! from its initial value (zero or a bias) over the shared axis in order.
//!
//! The engine batches rows of different samples and faults, on any number
//! of threads, and compares them bitwise; libtorch's products (MKL, oneDNN)
//! block their sums by the batch size, the thread count and the CPU, so a
//! sample's last bits change with the rows beside it. Here an output's bits
//! depend on its inputs alone: a fused multiply-add is correctly rounded on
//! every CPU, and the AVX-512, AVX2 and scalar code below run the same
//! chain, only more outputs at once. Input: dense row-major slices; output:
//! the product written into a slice (see [`product`]). The tensor-level
//! Gemm, MatMul and Conv built on it are in `graph::ops` (`chain.rs`,
//! `conv.rs`).

use super::cpu;
use super::threads::{on_threads, Out};

/// Which code computes the chains on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Tiles of 8 rows by 32 columns, with AVX-512F.
    Avx512,
    /// Tiles of 4 rows by 16 columns, with AVX2 and FMA.
    Avx2,
    /// Tiles of 1 row by 8 columns, on any CPU.
    Scalar,
}

impl Isa {
    /// The widest this CPU runs, capped at AVX2 by `FAULTSWEEP_AVX512=off`.
    pub fn detect() -> Isa {
        if cpu::avx512() {
            Isa::Avx512
        } else if cpu::avx2_fma() {
            Isa::Avx2
        } else {
            Isa::Scalar
        }
    }

    /// Whether this CPU runs the code (whatever `FAULTSWEEP_AVX512` says).
    pub fn runs_here(self) -> bool {
        match self {
            Isa::Avx512 => cpu::avx512f_detected(),
            Isa::Avx2 => cpu::avx2_fma(),
            Isa::Scalar => true,
        }
    }
}

/// `y = init + a · b` for `a` `[m, k]`, `b` `[k, n]` and `y` `[m, n]`, all
/// row-major and dense. Runs on libtorch's intra-op thread count.
pub fn product(a: &[f32], b: &[f32], init: Init, y: &mut [f32], [m, k, n]: [usize; 3]) {
    product_on(Isa::detect(), a, b, init, y, [m, k, n]);
}

/// As [`product`], with the given code (for tests: every one gives the same
/// bits). Panics if this CPU does not run `isa`.
pub fn product_on(
    isa: Isa,
    a: &[f32],
    b: &[f32],
    init: Init,
    y: &mut [f32],
    [m, k, n]: [usize; 3],
) {
    assert!(isa.runs_here(), "{isa:?} on a CPU without it");
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
    let out = Out::new(y);
    // Threads take column panels: each reads its part of `b` once for all
    // rows, and writes its own columns.
    let panels = n.div_ceil(PANEL);
    let work = |range: std::ops::Range<usize>| {
        let cols = range.start * PANEL..n.min(range.end * PANEL);
        // SAFETY: the CPU runs `isa` (asserted above); each thread writes
        // the columns of its own panels of `y`, which holds `m * n` values
        // (asserted above) and is not read until the threads are done.
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => simd::avx512(&p, out, cols),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => simd::avx2(&p, out, cols),
                _ => scalar(&p, out, cols),
            }
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
    /// Zero.
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

/// The same chains compiled for wider registers, on x86-64 only.
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{panel, Out, Problem};

    /// [`panel`] in tiles of 8 rows by 32 columns, with AVX-512.
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512F, and `panel`'s promises hold.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512(p: &Problem, y: Out, cols: std::ops::Range<usize>) {
        // SAFETY: passed on from the caller.
        unsafe { panel::<8, 32>(p, y, cols) }
    }

    /// [`panel`] in tiles of 4 rows by 16 columns, with AVX2 and FMA.
    ///
    /// # Safety
    ///
    /// The CPU has AVX2 and FMA, and `panel`'s promises hold.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2(p: &Problem, y: Out, cols: std::ops::Range<usize>) {
        // SAFETY: passed on from the caller.
        unsafe { panel::<4, 16>(p, y, cols) }
    }
}

/// [`panel`] in tiles of 1 row by 8 columns, on any CPU.
///
/// # Safety
///
/// As for [`panel`].
unsafe fn scalar(p: &Problem, y: Out, cols: std::ops::Range<usize>) {
    // SAFETY: passed on from the caller.
    unsafe { panel::<1, 8>(p, y, cols) }
}

/// Columns `cols` of `y`, in tiles of `R` rows by `W` columns, each tile's
/// outputs held in registers over the whole shared axis.
///
/// # Safety
///
/// `y` points to `p.m * p.n` values, of which no other thread touches
/// columns `cols` meanwhile; `cols.end <= p.n`.
#[inline(always)]
unsafe fn panel<const R: usize, const W: usize>(p: &Problem, y: Out, cols: std::ops::Range<usize>) {
    let mut j = cols.start;
    while j < cols.end {
        let width = W.min(cols.end - j);
        let mut i = 0;
        while i + R <= p.m {
            // SAFETY: rows `i..i + R` and columns `j..j + width` lie in `y`
            // and in `cols` (this function's promises).
            unsafe { tile::<R, W>(p, y, i, j, width) };
            i += R;
        }
        while i < p.m {
            // SAFETY: as above, for row `i`.
            unsafe { tile::<1, W>(p, y, i, j, width) };
            i += 1;
        }
        j += width;
    }
}

/// Rows `i..i + R`, columns `j..j + width` (`width <= W`) of `y`.
///
/// # Safety
///
/// `y` points to `p.m * p.n` values; rows `i..i + R` and columns
/// `j..j + width` lie in it, and no other thread touches them meanwhile.
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
            // SAFETY: `p.a` holds `p.m * p.k` values (asserted in
            // `product_on`), and `i + r < p.m`, `kk < p.k`.
            let a = unsafe { *p.a.get_unchecked((i + r) * p.k + kk) };
            for (acc, b) in row.iter_mut().zip(&b_row) {
                *acc = a.mul_add(*b, *acc);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        // SAFETY: row `i + r`, columns `j..j + width` of `y`: inside it and
        // this thread's alone (this function's promises); `row` is a local
        // array of `W >= width` values.
        unsafe {
            let to = y.0.add((i + r) * p.n + j);
            std::ptr::copy_nonoverlapping(row.as_ptr(), to, width);
        }
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
        let isas: Vec<Isa> = [Isa::Scalar, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|isa| isa.runs_here())
            .collect();
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
