//! Depthwise 3x3 and 5x5 convolutions with stride 1, in Rust with AVX-512.
//!
//! libtorch sends these to oneDNN, which reorders the input to its blocked
//! layout and the output back on every call. This kernel reads and writes
//! the plain layout, a channel's plane at a time, so the plane stays in
//! cache while its 9 or 25 taps read it; each vector of 16 outputs runs
//! over the plane's positions in order, across its rows, so 7x7 and 14x14
//! maps waste few lanes. Each output is computed as oneDNN computes it (and
//! [`crate::kernels::boxes`], the kernel of regional boxes): one chain of fused
//! multiply-adds from the bias over the taps in order, row by row, skipping
//! taps in the padding. So its bits are libtorch's (tested), and a box gets
//! the bits of the whole map.

use std::arch::x86_64::*;

use tch::{Device, Kind, Tensor};

use crate::graph::ops::ConvShape;
use crate::kernels::cpu::avx512 as available;
use crate::kernels::threads::{on_threads, Out};
use crate::kernels::views::{float_cpu, floats, floats_mut};

/// Output positions per vector.
const LANES: usize = 16;

/// Vectors of one plane computed at once: independent chains of
/// multiply-adds enough to hide each one's latency.
const VECTORS: usize = 4;

/// The depthwise convolution (one filter per channel) of `x` (`[n, C, h,
/// w]`) by `w` (`[C, 1, kh, kw]`) plus the bias `b` with the geometry
/// `shape`, or `None` where the kernel does not apply: not float32 on the
/// CPU, not depthwise, not 3x3 or 5x5, a stride above 1, an output row
/// not as long as the input's, or a CPU without AVX-512. Runs on
/// libtorch's intra-op thread count.
pub fn convolve(shape: &ConvShape, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Option<Tensor> {
    let (size, w_size) = (x.size(), w.size());
    if !available()
        || size.len() != 4
        || size.contains(&0)
        || w_size.len() != 4
        || shape.group != size[1]
        || w_size[0] != size[1]
        || w_size[1] != 1
        || b.is_some_and(|b| b.numel() as i64 != size[1])
        || !matches!(w_size[2] * w_size[3], 9 | 25)
        || shape.strides.iter().any(|&s| s != 1)
        || shape.dilations.iter().any(|&d| d < 1)
        || shape.pads.iter().any(|&(begin, end)| begin < 0 || end < 0)
        || !float_cpu(&[Some(x), Some(w), b])
    {
        return None;
    }
    let out = |i: usize| size[2 + i] + shape.pads[i].0 + shape.pads[i].1 - shape.extent[i] + 1;
    let (rows, cols) = (out(0), out(1));
    if rows < 1 || cols != size[3] {
        return None;
    }
    let plane = Plane::new(shape, [size[2], size[3]], [w_size[2], w_size[3]], rows);
    let (x, w, b) = (x.contiguous(), w.contiguous(), b.map(Tensor::contiguous));
    let mut y = Tensor::empty([size[0], size[1], rows, cols], (Kind::Float, Device::Cpu));
    let args = Args {
        plane,
        channels: size[1] as usize,
        y: Out::new(floats_mut(&mut y)?),
    };
    // All are contiguous float32 CPU tensors of the sizes checked above
    // (`y` was just created).
    let (x, w) = (floats(&x)?, floats(&w)?);
    let bias = match &b {
        Some(b) => Some(floats(b)?),
        None => None,
    };
    let planes = x.len() / args.plane.inputs;
    // SAFETY: `available` checked AVX-512F; `x` and `y` hold `planes`
    // whole planes, `w` 9 or 25 taps per channel (as the match says) and
    // `bias` one value per channel; each thread writes its own planes, and
    // `y` is not touched until the threads are done.
    match args.plane.offsets.len() {
        9 => on_threads(planes, |range| {
            // SAFETY: as said above, with 9 taps.
            unsafe { planes_of::<9>(&args, x, w, bias, range) }
        }),
        _ => on_threads(planes, |range| {
            // SAFETY: as said above, with 25 taps.
            unsafe { planes_of::<25>(&args, x, w, bias, range) }
        }),
    }
    Some(y)
}

/// Where each tap of a plane reads: with output rows as long as input rows,
/// tap k of output position o reads input position `o + offsets[k]`, when
/// lane `o % 16` of `masks[(o / 16) * taps + k]` says it lies inside the
/// input (else the tap is skipped).
struct Plane {
    inputs: usize,
    outputs: usize,
    offsets: Vec<isize>,
    masks: Vec<u16>,
}

impl Plane {
    fn new(shape: &ConvShape, len: [i64; 2], taps: [i64; 2], rows: i64) -> Self {
        let (cols, [dy, dx]) = (len[1], [shape.dilations[0], shape.dilations[1]]);
        let [(top, _), (left, _)] = [shape.pads[0], shape.pads[1]];
        let outputs = (rows * cols) as usize;
        let kernel: Vec<(i64, i64)> = (0..taps[0])
            .flat_map(|ky| (0..taps[1]).map(move |kx| (ky * dy - top, kx * dx - left)))
            .collect();
        let offsets = kernel
            .iter()
            .map(|&(y, x)| (y * cols + x) as isize)
            .collect();
        let inside = |o: usize, (y, x): (i64, i64)| {
            let (iy, ix) = (o as i64 / cols + y, o as i64 % cols + x);
            o < outputs && (0..len[0]).contains(&iy) && (0..cols).contains(&ix)
        };
        let masks = (0..outputs.div_ceil(LANES))
            .flat_map(|v| kernel.iter().map(move |&tap| (v, tap)))
            .map(|(v, tap)| {
                (0..LANES)
                    .filter(|&j| inside(v * LANES + j, tap))
                    .fold(0, |m, j| m | 1 << j)
            })
            .collect();
        Plane {
            inputs: (len[0] * len[1]) as usize,
            outputs,
            offsets,
            masks,
        }
    }

    fn vectors(&self) -> usize {
        self.outputs.div_ceil(LANES)
    }
}

struct Args {
    plane: Plane,
    channels: usize,
    y: Out,
}

/// Planes `range` (of all (sample, channel) planes of `x`), with `K` taps.
///
/// # Safety
///
/// The CPU has AVX-512F; `x` and `args.y` hold whole planes of
/// `args.plane` (at least `range.end`), `w` `K` taps per channel and `b`
/// one value per channel; no other thread touches the planes `range` of
/// `args.y` meanwhile.
#[target_feature(enable = "avx512f")]
unsafe fn planes_of<const K: usize>(
    args: &Args,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    range: std::ops::Range<usize>,
) {
    let plane = &args.plane;
    for p in range {
        let c = p % args.channels;
        let weights: [__m512; K] = std::array::from_fn(|k| _mm512_set1_ps(w[c * K + k]));
        let bias = _mm512_set1_ps(b.map_or(0.0, |b| b[c]));
        let x = x[p * plane.inputs..][..plane.inputs].as_ptr();
        let y = args.y.0.wrapping_add(p * plane.outputs);
        let mut v = 0;
        while v + VECTORS <= plane.vectors() {
            // SAFETY: `x` and `y` are plane `p`, which this call writes
            // alone, and the CPU has AVX-512F (this function's promises).
            unsafe { vectors::<K, VECTORS>(plane, x, &weights, bias, y, v) };
            v += VECTORS;
        }
        for v in v..plane.vectors() {
            // SAFETY: as above.
            unsafe { vectors::<K, 1>(plane, x, &weights, bias, y, v) };
        }
    }
}

/// Output vectors `first..first + V` of the plane read from `x`, written to
/// `y`, each from the bias then one fused multiply-add per tap inside the
/// input, in order. The masked loads touch only elements inside the plane.
///
/// # Safety
///
/// The CPU has AVX-512F; `x` points to an input plane and `y` to an output
/// plane of `plane`, which no other thread touches meanwhile; `weights`
/// holds the plane's taps (`K` is `plane.offsets.len()`) and `first + V`
/// is at most `plane.vectors()`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn vectors<const K: usize, const V: usize>(
    plane: &Plane,
    x: *const f32,
    weights: &[__m512; K],
    bias: __m512,
    y: *mut f32,
    first: usize,
) {
    let mut acc = [bias; V];
    for (k, weight) in weights.iter().enumerate() {
        // SAFETY: `k < K`, the plane's taps.
        let offset = unsafe { *plane.offsets.get_unchecked(k) };
        for (j, acc) in acc.iter_mut().enumerate() {
            let v = first + j;
            // SAFETY: `v < plane.vectors()`, and the plane has `K` masks
            // per vector.
            let mask = unsafe { *plane.masks.get_unchecked(v * K + k) };
            // SAFETY: the lanes of `mask` are the tap's input positions
            // inside the plane (see `Plane`); masked-off lanes are not
            // accessed.
            let input = unsafe {
                _mm512_maskz_loadu_ps(mask, x.wrapping_offset((v * LANES) as isize + offset))
            };
            *acc = _mm512_mask3_fmadd_ps(input, *weight, *acc, mask);
        }
    }
    for (j, acc) in acc.iter().enumerate() {
        let at = (first + j) * LANES;
        let lanes = (plane.outputs - at).min(LANES);
        // SAFETY: the mask's `lanes` positions from `at` lie in the plane.
        unsafe { _mm512_mask_storeu_ps(y.wrapping_add(at), ((1u32 << lanes) - 1) as u16, *acc) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::threads::with_threads;

    fn bits(t: &Tensor) -> Vec<u32> {
        let v = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
        // Any NaN as one: which payload wins when two meet is the
        // instruction's choice.
        v.iter()
            .map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() })
            .collect()
    }

    fn shape(k: i64, dilation: i64, pads: [(i64, i64); 2], group: i64) -> ConvShape {
        ConvShape {
            strides: vec![1; 2],
            dilations: vec![dilation; 2],
            pads: pads.to_vec(),
            extent: vec![(k - 1) * dilation + 1; 2],
            group,
        }
    }

    /// This kernel against libtorch's, bit for bit, with special values in
    /// the input. (Not in the weights: where a tap of an Inf or NaN weight
    /// lies in the padding, oneDNN gives NaN at some edges, and this kernel
    /// skips the tap as the regional boxes' kernel does; tested there.)
    fn compare(
        n: i64,
        c: i64,
        hw: [i64; 2],
        k: i64,
        dilation: i64,
        pads: [(i64, i64); 2],
        bias: bool,
    ) {
        let x = crate::graph::ops::with_special_values(&[n, c, hw[0], hw[1]]);
        let w = Tensor::randn([c, 1, k, k], (Kind::Float, Device::Cpu));
        let b = bias.then(|| Tensor::randn([c], (Kind::Float, Device::Cpu)));
        let padded = x.constant_pad_nd([pads[1].0, pads[1].1, pads[0].0, pads[0].1]);
        let want = padded.convolution(
            &w,
            b.as_ref(),
            [1, 1],
            [0, 0],
            [dilation; 2],
            false,
            [0, 0],
            c,
        );
        let case =
            format!("n {n} c {c} {hw:?} k {k} dilation {dilation} pads {pads:?} bias {bias}");
        let got = convolve(&shape(k, dilation, pads, c), &x, &w, b.as_ref()).expect(&case);
        assert_eq!(got.size(), want.size(), "{case}");
        assert!(bits(&got) == bits(&want), "{case}");
    }

    #[test]
    fn convolutions_are_libtorchs_bit_for_bit() {
        if !available() {
            return;
        }
        let same = [(1, 1), (1, 1)];
        compare(3, 576, [14, 14], 3, 1, same, true);
        compare(2, 960, [7, 7], 3, 1, same, false);
        compare(2, 32, [112, 112], 3, 1, same, true);
        compare(1, 5, [1, 1], 3, 1, same, true);
        compare(2, 24, [13, 11], 5, 1, [(2, 2), (2, 2)], true);
        compare(1, 16, [11, 40], 3, 2, [(2, 2), (2, 2)], true);
        // Output rows fewer than input rows (padding only at the top), and
        // a plane shorter than the kernel.
        compare(2, 8, [9, 6], 3, 1, [(1, 0), (1, 1)], true);
        compare(1, 4, [2, 3], 5, 1, [(2, 2), (2, 2)], false);
    }

    #[test]
    fn threads_split_planes_without_changing_bits() {
        if !available() {
            return;
        }
        let x = Tensor::randn([3, 40, 17, 17], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([40, 1, 3, 3], (Kind::Float, Device::Cpu));
        let by_threads = [1, 2].map(|t| {
            with_threads(t, || {
                bits(&convolve(&shape(3, 1, [(1, 1); 2], 40), &x, &w, None).unwrap())
            })
        });
        assert!(by_threads[0] == by_threads[1]);
    }

    #[test]
    fn other_convolutions_are_left_to_libtorch() {
        let x = Tensor::randn([1, 4, 9, 9], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([4, 1, 3, 3], (Kind::Float, Device::Cpu));
        let strided = ConvShape {
            strides: vec![2; 2],
            ..shape(3, 1, [(1, 1); 2], 4)
        };
        assert!(convolve(&strided, &x, &w, None).is_none(), "stride 2");
        let grouped = Tensor::randn([4, 2, 3, 3], (Kind::Float, Device::Cpu));
        assert!(convolve(&shape(3, 1, [(1, 1); 2], 2), &x, &grouped, None).is_none());
        let narrower = shape(3, 1, [(1, 1), (0, 0)], 4);
        assert!(
            convolve(&narrower, &x, &w, None).is_none(),
            "output rows shorter"
        );
        let wide = Tensor::randn([4, 1, 7, 7], (Kind::Float, Device::Cpu));
        assert!(
            convolve(&shape(7, 1, [(3, 3); 2], 4), &x, &wide, None).is_none(),
            "7x7"
        );
        let doubles = x.to_kind(Kind::Double);
        let w64 = w.to_kind(Kind::Double);
        assert!(convolve(&shape(3, 1, [(1, 1); 2], 4), &doubles, &w64, None).is_none());
        let empty = Tensor::zeros([1, 4, 0, 9], (Kind::Float, Device::Cpu));
        let padded = shape(3, 1, [(2, 2), (1, 1)], 4);
        assert!(convolve(&padded, &empty, &w, None).is_none(), "no rows");
    }
}
