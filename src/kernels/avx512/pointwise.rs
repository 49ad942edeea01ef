//! 1x1 convolutions of float32 tensors, in Rust with AVX-512.
//!
//! A 1x1 convolution is a matrix product per sample. libtorch runs it either
//! in oneDNN, which reorders both tensors between the plain layout and its
//! blocked one on every call, or as a product per sample in MKL. This
//! kernel reads and writes the plain layout, at 80 to 100 G multiply-adds/s
//! on one core of an AMD EPYC (Zen 4) (`cargo bench --bench engine`), and computes
//! every output as one chain of fused multiply-adds from the bias over the
//! input channels in order. An output's bits so depend on nothing but its
//! inputs: not on the batch, the sample's place in it or the positions
//! computed with it, so a regional row's box gets the bits of the whole map.
//! Without AVX-512, [`crate::kernels::chain`] computes the same chains.

use std::arch::x86_64::*;

use tch::{Device, Kind, Tensor};

use crate::kernels::cpu::avx512 as available;
use crate::kernels::threads::{on_threads, Out};
use crate::kernels::views::{float_cpu, floats, floats_mut};

/// Output channels per tile: one broadcast each per input channel.
const ROWS: usize = 8;
/// Positions per tile: two 16-float registers.
const COLS: usize = 32;

/// The 1x1 convolution of `x` (`[n, c_in, ...]`) by `w` (`[c_out, c_in,
/// 1, ...]`) plus the bias `b`, or `None` where the kernel does not apply
/// (not float32 on the CPU, or a CPU without AVX-512). Runs on libtorch's
/// intra-op thread count.
pub fn convolve(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Option<Tensor> {
    let (size, w_size) = (x.size(), w.size());
    if !available()
        || size.len() < 3
        || w_size.len() < 2
        || size[1] != w_size[1]
        || w.numel() as i64 != w_size[0] * w_size[1]
        || b.is_some_and(|b| b.numel() as i64 != w_size[0])
        || !float_cpu(&[Some(x), Some(w), b])
    {
        return None;
    }
    let dims = Dims {
        samples: size[0] as usize,
        inputs: size[1] as usize,
        outputs: w_size[0] as usize,
        positions: size[2..].iter().product::<i64>() as usize,
    };
    let (x, w, b) = (x.contiguous(), w.contiguous(), b.map(Tensor::contiguous));
    let mut shape = size;
    shape[1] = w_size[0];
    let mut y = Tensor::empty(shape.as_slice(), (Kind::Float, Device::Cpu));
    // All are contiguous float32 CPU tensors holding the element counts
    // `dims` gives (checked above); `y` was just created.
    let (x, w) = (floats(&x)?, floats(&w)?);
    let bias = match &b {
        Some(b) => Some(floats(b)?),
        None => None,
    };
    let (dims, out) = (&dims, Out::new(floats_mut(&mut y)?));
    // The positions of all samples form one axis, cut in stripes of
    // [`COLS`] (a stripe may span samples, so small maps waste no lanes).
    let stripes = (dims.samples * dims.positions).div_ceil(COLS);
    on_threads(stripes, |range| {
        // SAFETY: `available` checked AVX-512F; `x`, `w`, `bias` and `out`
        // hold the counts `dims` gives, and each thread writes the
        // positions of its own stripes; `y` is not touched until the
        // threads are done.
        unsafe { stripes_of(dims, x, w, bias, out, range) }
    });
    Some(y)
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    samples: usize,
    inputs: usize,
    outputs: usize,
    positions: usize,
}

/// The outputs of the stripes `range` of [`COLS`] positions (on the axis
/// of all samples' positions), every output channel of each.
///
/// # Safety
///
/// The CPU has AVX-512F; `x` holds `samples * inputs * positions` values,
/// `w` `outputs * inputs`, `b` (if any) `outputs`; `y` points to
/// `samples * outputs * positions` values, of which no other thread
/// touches those of these stripes meanwhile.
#[target_feature(enable = "avx512f")]
unsafe fn stripes_of(
    d: &Dims,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    y: Out,
    range: std::ops::Range<usize>,
) {
    let total = d.samples * d.positions;
    let mut packed = vec![0f32; d.inputs * COLS];
    for stripe in range {
        let start = stripe * COLS;
        let cols = COLS.min(total - start);
        for_runs(d, start, cols, |at, sample, position, len| {
            for ci in 0..d.inputs {
                let from = x
                    .as_ptr()
                    .wrapping_add((sample * d.inputs + ci) * d.positions + position);
                for half in 0..2 {
                    let (shift, mask) = half_run(at, len, half);
                    let to = packed[ci * COLS + 16 * half..].as_mut_ptr();
                    // SAFETY: the lanes of `mask` are the run's positions,
                    // inside sample `sample`'s plane of channel `ci` of `x`,
                    // and inside `packed` (16 from `to`); masked-off lanes
                    // are not accessed.
                    unsafe {
                        let v = _mm512_maskz_loadu_ps(mask, from.wrapping_offset(shift));
                        _mm512_mask_storeu_ps(to, mask, v);
                    }
                }
            }
        });
        for tile in 0..d.outputs.div_ceil(ROWS) {
            // A last tile short of channels repeats its last one (not stored).
            let channel = |r: usize| (tile * ROWS + r).min(d.outputs - 1);
            let filters: [&[f32]; ROWS] =
                std::array::from_fn(|r| &w[channel(r) * d.inputs..][..d.inputs]);
            let bias: [f32; ROWS] = std::array::from_fn(|r| b.map_or(0.0, |b| b[channel(r)]));
            // SAFETY: this function's CPU and `y` promises, passed on.
            let acc = unsafe { product(&packed, &filters, &bias, d.inputs) };
            // SAFETY: as above.
            unsafe { store(d, &acc, tile, start, cols, y) };
        }
    }
}

/// Calls `f(at, sample, position, len)` for each run of `len` positions
/// within one sample among the `cols` positions from `start` on the
/// all-samples axis; `at` is the run's place in the stripe.
#[inline(always)]
fn for_runs(d: &Dims, start: usize, cols: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
    let mut at = 0;
    while at < cols {
        let (sample, position) = ((start + at) / d.positions, (start + at) % d.positions);
        let len = (d.positions - position).min(cols - at);
        f(at, sample, position, len);
        at += len;
    }
}

/// One tile: [`ROWS`] outputs (of `filters`, each `[c_in]`) by [`COLS`]
/// positions, each from its bias then one fused multiply-add per input
/// channel, in order.
///
/// # Safety
///
/// The CPU has AVX-512F; `packed` holds `inputs * COLS` values and each
/// filter `inputs`.
#[target_feature(enable = "avx512f")]
unsafe fn product(
    packed: &[f32],
    filters: &[&[f32]; ROWS],
    bias: &[f32; ROWS],
    inputs: usize,
) -> [[__m512; 2]; ROWS] {
    let mut acc = bias.map(|b| [_mm512_set1_ps(b); 2]);
    let filters = filters.map(<[f32]>::as_ptr);
    for (ci, x) in packed.chunks_exact(COLS).take(inputs).enumerate() {
        // SAFETY: `x` is a chunk of `COLS` (32) values.
        let (x0, x1) = unsafe {
            (
                _mm512_loadu_ps(x.as_ptr()),
                _mm512_loadu_ps(x.as_ptr().add(16)),
            )
        };
        for (row, filter) in acc.iter_mut().zip(filters) {
            // SAFETY: `ci < inputs`, the length of every filter.
            let w = _mm512_set1_ps(unsafe { *filter.add(ci) });
            row[0] = _mm512_fmadd_ps(w, x0, row[0]);
            row[1] = _mm512_fmadd_ps(w, x1, row[1]);
        }
    }
    acc
}

/// Writes a tile's outputs for real channels and positions into `y`
/// (`[n, c_out, positions]`), straight from the registers.
///
/// # Safety
///
/// The CPU has AVX-512F; `y` holds `samples * outputs * positions` values,
/// of which no other thread touches those of this stripe (`cols` positions
/// from `start`) meanwhile.
#[target_feature(enable = "avx512f")]
unsafe fn store(
    d: &Dims,
    acc: &[[__m512; 2]; ROWS],
    tile: usize,
    start: usize,
    cols: usize,
    y: Out,
) {
    let rows = ROWS.min(d.outputs - tile * ROWS);
    for_runs(d, start, cols, |at, sample, position, len| {
        for (r, row) in acc.iter().enumerate().take(rows) {
            let to =
                y.0.wrapping_add((sample * d.outputs + tile * ROWS + r) * d.positions + position);
            for (half, values) in row.iter().enumerate() {
                let (shift, mask) = half_run(at, len, half);
                // SAFETY: the lanes of `mask` are the run's positions of a
                // real channel, inside `y` and in this stripe; masked-off
                // lanes are not accessed.
                unsafe { _mm512_mask_storeu_ps(to.wrapping_offset(shift), mask, *values) };
            }
        }
    });
}

/// For a run of `len` positions at `at` in a stripe: the offset that lines
/// register `half` of the stripe (its lanes `16 * half..`) up with the
/// run's first position in a tensor, and the mask of its lanes in the run.
/// Masked-off lanes are not touched, so the pointer so offset may lie
/// outside the tensor (hence wrapping arithmetic at the callers).
#[inline(always)]
fn half_run(at: usize, len: usize, half: usize) -> (isize, u16) {
    let first = 16 * half;
    let lanes = |n: usize| n.saturating_sub(first).min(16);
    let mask = ((1u32 << lanes(at + len)) - (1u32 << lanes(at))) as u16;
    (first as isize - at as isize, mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::threads::with_threads;

    /// Each output as the kernel promises: from the bias, one fused
    /// multiply-add per input channel in order.
    fn chain(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
        let size = x.size();
        let (n, ci, co) = (size[0], size[1], w.size()[0]);
        let p: i64 = size[2..].iter().product();
        let xs = Vec::<f32>::try_from(x.flatten(0, -1)).unwrap();
        let ws = Vec::<f32>::try_from(w.flatten(0, -1)).unwrap();
        let bs = b.map(|b| Vec::<f32>::try_from(b).unwrap());
        let mut y = vec![0f32; (n * co * p) as usize];
        for s in 0..n {
            for o in 0..co {
                for q in 0..p {
                    let mut acc = bs.as_ref().map_or(0.0, |b| b[o as usize]);
                    for i in 0..ci {
                        let v = xs[((s * ci + i) * p + q) as usize];
                        acc = ws[(o * ci + i) as usize].mul_add(v, acc);
                    }
                    y[((s * co + o) * p + q) as usize] = acc;
                }
            }
        }
        let mut out = size;
        out[1] = co;
        Tensor::from_slice(&y).view(out.as_slice())
    }

    /// The bit patterns of a float32 tensor's values (NaN included).
    fn bits(t: &Tensor) -> Vec<u32> {
        let values = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
        values.iter().map(|v| v.to_bits()).collect()
    }

    fn random(shape: &[i64], seed: i64) -> Tensor {
        tch::manual_seed(seed);
        Tensor::randn(shape, (Kind::Float, Device::Cpu))
    }

    #[test]
    fn every_output_is_one_chain_of_fused_multiply_adds() {
        if !available() {
            return;
        }
        // Channel counts and positions that fill no tile exactly, a stripe
        // that spans samples, a faulty input (Inf, NaN) and 1-D maps.
        let x = random(&[3, 37, 5, 7], 1);
        let _ = x.get(1).get(4).get(2).fill_(f64::INFINITY);
        let _ = x.get(2).get(0).get(0).fill_(f64::NAN);
        let (w, b) = (random(&[13, 37, 1, 1], 2), random(&[13], 3));
        for bias in [Some(&b), None] {
            let y = convolve(&x, &w, bias).unwrap();
            assert_eq!(
                bits(&y),
                bits(&chain(&x, &w, bias)),
                "bias {}",
                bias.is_some()
            );
        }
        let x1 = random(&[2, 20, 50], 4);
        let w1 = random(&[40, 20, 1], 5);
        assert!(convolve(&x1, &w1, None)
            .unwrap()
            .equal(&chain(&x1, &w1, None)));
    }

    #[test]
    fn a_sample_gets_the_same_bits_in_any_batch_box_or_thread_count() {
        if !available() {
            return;
        }
        let x = random(&[9, 64, 14, 14], 6);
        let (w, b) = (random(&[24, 64, 1, 1], 7), random(&[24], 8));
        let whole = with_threads(2, || convolve(&x, &w, Some(&b)).unwrap());
        let (alone, in_box) = with_threads(1, || {
            let alone = convolve(&x.narrow(0, 4, 1), &w, Some(&b)).unwrap();
            let boxed = x.narrow(2, 3, 2).narrow(3, 5, 3);
            (alone, convolve(&boxed, &w, Some(&b)).unwrap())
        });
        assert!(alone.equal(&whole.narrow(0, 4, 1)));
        assert!(in_box.equal(&whole.narrow(2, 3, 2).narrow(3, 5, 3)));
    }

    #[test]
    fn other_kinds_are_left_to_libtorch() {
        let x = random(&[1, 4, 3, 3], 9).to_kind(Kind::Double);
        let w = random(&[2, 4, 1, 1], 10).to_kind(Kind::Double);
        assert!(convolve(&x, &w, None).is_none());
    }
}
