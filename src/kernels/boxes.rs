//! Depthwise 2-D convolution of small boxes, in Rust.
//!
//! libtorch sends a depthwise convolution to oneDNN, whose layout reorders
//! and set-up cost about 200 µs a call however small the tensor: most of a
//! regional row's depthwise box. oneDNN's CPU kernel computes each output
//! as one chain of fused multiply-adds, starting from the bias and taking
//! the taps in order, row by row, skipping taps in the padding; done the
//! same way here, a box comes out bit for bit as the full tensor's kernel
//! computes it (tested against libtorch, and checked at run time by the
//! regional rows' kernel check like every box kernel).
//!
//! Input: windows of a map with their padding, and which part of each
//! holds the input; output: a new tensor, or `None` to leave the boxes to
//! libtorch. Safe code throughout, compiled with fused multiply-add where
//! the CPU has it (on x86-64, after a run-time check).

use tch::{Kind, Tensor};

use super::views::floats;

/// Per axis (height, width), the window positions that hold the input; the
/// rest is padding, whose taps the kernel skips.
pub type Inside = [(usize, usize); 2];

/// A depthwise convolution's weight `[C, 1, kh, kw]`, bias `[C]` and
/// geometry, without padding (a window carries its padding).
pub struct Depthwise<'a> {
    /// `[C, 1, kh, kw]`.
    pub weight: &'a Tensor,
    /// `[C]`, if any.
    pub bias: Option<&'a Tensor>,
    /// Per axis (height, width).
    pub strides: [usize; 2],
    /// Per axis (height, width).
    pub dilations: [usize; 2],
}

impl Depthwise<'_> {
    /// Convolves each window of `windows` (`[n, C, h, w]`, float32,
    /// contiguous), of which `inside[i]` holds window i's input. `None` when
    /// the tensors or the machine do not suit (not float32, not contiguous,
    /// a channel multiplier, no fused multiply-add): the caller then runs
    /// libtorch's kernel.
    pub fn convolve(&self, windows: &Tensor, inside: &[Inside]) -> Option<Tensor> {
        let (size, wsize) = (windows.size(), self.weight.size());
        let kinds = [Some(windows), Some(self.weight), self.bias];
        if size.len() != 4
            || wsize.len() != 4
            || wsize[0] != size[1]
            || wsize[1] != 1
            || inside.len() as i64 != size[0]
            || kinds.iter().flatten().any(|t| t.kind() != Kind::Float)
        {
            return None;
        }
        let dims = |v: &[i64]| -> Vec<usize> { v.iter().map(|&d| d as usize).collect() };
        let (size, kernel) = (dims(&size), dims(&wsize[2..]));
        let out: Vec<usize> = (0..2)
            .map(|i| {
                let extent = (kernel[i] - 1) * self.dilations[i] + 1;
                size[2 + i]
                    .checked_sub(extent)
                    .map(|d| d / self.strides[i] + 1)
            })
            .collect::<Option<_>>()?;
        let args = Args {
            x: floats(windows)?,
            w: floats(self.weight)?,
            b: match self.bias {
                Some(b) => Some(floats(b)?),
                None => None,
            },
            channels: size[1],
            lens: [size[2], size[3]],
            kernel: [kernel[0], kernel[1]],
            strides: self.strides,
            dilations: self.dilations,
            out: [out[0], out[1]],
            inside,
        };
        let y = run(&args)?;
        let shape = [size[0] as i64, size[1] as i64, out[0] as i64, out[1] as i64];
        Tensor::from_slice(&y).f_view(shape).ok()
    }
}

struct Args<'a> {
    x: &'a [f32],
    w: &'a [f32],
    b: Option<&'a [f32]>,
    channels: usize,
    lens: [usize; 2],
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
    out: [usize; 2],
    inside: &'a [Inside],
}

/// Whether this machine runs the kernel: on x86-64 it needs AVX2 and
/// fused multiply-add (elsewhere `mul_add` is the target's own).
pub fn available() -> bool {
    cfg!(not(target_arch = "x86_64")) || super::cpu::avx2_fma()
}

/// The kernel, compiled with fused multiply-add, a hardware instruction
/// (not a slow library call), where the CPU has it.
#[cfg(target_arch = "x86_64")]
fn run(args: &Args) -> Option<Vec<f32>> {
    /// [`kernel`] compiled for AVX2 and FMA.
    ///
    /// # Safety
    ///
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn compiled(args: &Args) -> Vec<f32> {
        kernel(args)
    }
    // SAFETY: `available` checked the CPU has the features `compiled` uses.
    available().then(|| unsafe { compiled(args) })
}

/// The kernel, as the target compiles `mul_add`.
#[cfg(not(target_arch = "x86_64"))]
fn run(args: &Args) -> Option<Vec<f32>> {
    Some(kernel(args))
}

/// Position by position, over all channels at once (so the loop over the
/// channels, innermost, vectorizes): each output starts from the bias and
/// adds the products of its taps inside the input in order, one fused
/// multiply-add each.
#[inline(always)]
fn kernel(a: &Args) -> Vec<f32> {
    let c = a.channels;
    let [h, w] = a.lens;
    let [kh, kw] = a.kernel;
    let [oh, ow] = a.out;
    let [sy, sx] = a.strides;
    let [dy, dx] = a.dilations;
    let x = channels_last(a.x, c, h * w);
    let taps = channels_last(a.w, c, kh * kw);
    let bias = a.b.map_or_else(|| vec![0.0; c], <[f32]>::to_vec);
    let mut acc = vec![0f32; c];
    // Every element is written below; zeroing it first would cost a pass
    // (or, with some allocators, fresh pages from the kernel).
    let mut y = Vec::with_capacity(a.inside.len() * c * oh * ow);
    for (n, &[(y0, y1), (x0, x1)]) in a.inside.iter().enumerate() {
        for (oy, ox) in (0..oh).flat_map(|oy| (0..ow).map(move |ox| (oy, ox))) {
            acc.copy_from_slice(&bias);
            for ky in 0..kh {
                let iy = oy * sy + ky * dy;
                if !(y0..y1).contains(&iy) {
                    continue;
                }
                for kx in 0..kw {
                    let ix = ox * sx + kx * dx;
                    if !(x0..x1).contains(&ix) {
                        continue;
                    }
                    let at = (n * h + iy) * w + ix;
                    let (v, t) = (&x[at * c..(at + 1) * c], &taps[(ky * kw + kx) * c..]);
                    for ((o, &v), &t) in acc.iter_mut().zip(v).zip(t) {
                        *o = v.mul_add(t, *o);
                    }
                }
            }
            y.extend_from_slice(&acc);
        }
    }
    // Positions by channels per window, as `[n, C, oh, ow]`.
    channels_first(&y, c, oh * ow)
}

/// `[n, C, positions]` values as `[n, positions, C]`.
fn channels_last(v: &[f32], c: usize, positions: usize) -> Vec<f32> {
    transposed(v, c, positions)
}

/// `[n, positions, C]` values as `[n, C, positions]`.
fn channels_first(v: &[f32], c: usize, positions: usize) -> Vec<f32> {
    transposed(v, positions, c)
}

/// Each `[rows, cols]` block of `v` transposed, written in order (no
/// zeroing pass first).
fn transposed(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = Vec::with_capacity(v.len());
    for block in v.chunks_exact(rows * cols) {
        for col in 0..cols {
            t.extend((0..rows).map(|row| block[row * cols + col]));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(t: &Tensor) -> Vec<u32> {
        let v: Vec<f32> = Vec::try_from(t.flatten(0, -1)).expect("float32");
        // Any NaN as one: which NaN payload wins when two meet is the
        // instruction's choice, and both are NaN to every later op.
        v.iter()
            .map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() })
            .collect()
    }

    /// libtorch's depthwise convolution of `x` (random, with the special
    /// values bit flips make) against this kernel on `x` padded into windows.
    #[allow(clippy::too_many_arguments)]
    fn compare(n: i64, c: i64, hw: i64, k: i64, stride: i64, dilation: i64, pad: i64, bias: bool) {
        let opts = (Kind::Float, tch::Device::Cpu);
        let x = crate::graph::ops::with_special_values(&[n, c, hw, hw]);
        let w = Tensor::randn([c, 1, k, k], opts);
        let b = bias.then(|| Tensor::randn([c], opts));
        let want = x.convolution(
            &w,
            b.as_ref(),
            [stride, stride],
            [pad, pad],
            [dilation, dilation],
            false,
            [0, 0],
            c,
        );
        let padded = x.constant_pad_nd([pad, pad, pad, pad]);
        let (p, len) = (pad as usize, hw as usize);
        let inside = vec![[(p, p + len), (p, p + len)]; n as usize];
        let dw = Depthwise {
            weight: &w,
            bias: b.as_ref(),
            strides: [stride as usize; 2],
            dilations: [dilation as usize; 2],
        };
        let got = dw
            .convolve(&padded.contiguous(), &inside)
            .expect("float32 input");
        assert_eq!(got.size(), want.size());
        assert!(
            bits(&got) == bits(&want),
            "n {n} c {c} {hw}x{hw} k {k} stride {stride} dilation {dilation} pad {pad} bias {bias}"
        );
    }

    /// This kernel's 3x3, stride-1 convolution of `x` (`[n, C, h, w]`) with
    /// one position of zero padding on every side, whose taps it skips.
    fn same_padded(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
        let size: Vec<usize> = x.size().iter().map(|&d| d as usize).collect();
        let dw = Depthwise {
            weight: w,
            bias: Some(b),
            strides: [1; 2],
            dilations: [1; 2],
        };
        let padded = x.constant_pad_nd([1, 1, 1, 1]).contiguous();
        let inside = vec![[(1, size[2] + 1), (1, size[3] + 1)]; size[0]];
        dw.convolve(&padded, &inside).expect("float32 input")
    }

    /// Where a tap of an Inf or NaN weight (a weight fault) lies in the
    /// padding, the whole map's Rust kernel (`convolve_as`, on AVX-512)
    /// skips it as the box kernel does, though oneDNN gives NaN at some
    /// edges; so a box still holds the whole map's values.
    #[test]
    fn boxes_hold_the_whole_maps_values_with_faulty_weights() {
        if !available() || !crate::kernels::cpu::avx512() {
            return;
        }
        let opts = (Kind::Float, tch::Device::Cpu);
        let x = Tensor::randn([2, 8, 9, 9], opts);
        let w = Tensor::randn([8, 1, 3, 3], opts);
        let faulty = [
            (0, f64::INFINITY),
            (14, f64::NAN),
            (29, f64::NEG_INFINITY),
            (71, 3e38),
        ];
        for (i, v) in faulty {
            let _ = w.view([-1]).get(i).fill_(v);
        }
        let b = Tensor::randn([8], opts);
        let shape = crate::graph::ops::ConvShape {
            strides: vec![1; 2],
            dilations: vec![1; 2],
            pads: vec![(1, 1); 2],
            extent: vec![3; 2],
            group: 8,
        };
        let whole = crate::graph::ops::convolve_as(&shape, &x, &w, Some(&b)).unwrap();
        assert!(bits(&same_padded(&x, &w, &b)) == bits(&whole));
    }

    #[test]
    fn boxes_are_libtorchs_depthwise_convolution_bit_for_bit() {
        if !available() {
            return; // libtorch's kernel computes the boxes
        }
        for (n, c, hw, stride) in [
            (1, 96, 7, 1),
            (3, 576, 14, 1),
            (2, 960, 7, 2),
            (2, 32, 112, 1),
        ] {
            compare(n, c, hw, 3, stride, 1, 1, true);
        }
        compare(2, 40, 9, 3, 1, 1, 1, false);
        compare(2, 24, 12, 5, 2, 1, 2, true);
        compare(1, 16, 11, 3, 1, 2, 2, true);
    }

    #[test]
    fn taps_in_the_padding_are_skipped_as_libtorch_skips_them() {
        if !available() {
            return;
        }
        // On a zero input from a bias of -0, an output stays -0 while its
        // taps' weights are negative (0 * -w is -0) and turns +0 at the
        // first positive one: the top-left output's taps inside the input
        // (the lower right four) are negative, those in the padding positive.
        let opts = (Kind::Float, tch::Device::Cpu);
        let x = Tensor::zeros([1, 2, 4, 4], opts);
        let w = Tensor::from_slice(&[1f32, 1., 1., 1., -1., -1., 1., -1., -1.])
            .view([1, 1, 3, 3])
            .repeat([2, 1, 1, 1]);
        let b = Tensor::from_slice(&[-0f32, -0.]);
        let want = x.convolution(&w, Some(&b), [1, 1], [1, 1], [1, 1], false, [0, 0], 2);
        let got = same_padded(&x, &w, &b);
        assert_eq!(bits(&want)[0], (-0f32).to_bits(), "libtorch skips them");
        assert_eq!(bits(&got), bits(&want));
    }

    #[test]
    fn other_kinds_and_channel_multipliers_go_to_libtorch() {
        let opts = (Kind::Float, tch::Device::Cpu);
        let x = Tensor::randn([1, 4, 5, 5], opts);
        let inside = [[(0, 5), (0, 5)]];
        let dw = |weight: &Tensor| {
            Depthwise {
                weight,
                bias: None,
                strides: [1; 2],
                dilations: [1; 2],
            }
            .convolve(&x, &inside)
            .is_none()
        };
        assert!(
            dw(&Tensor::randn([8, 1, 3, 3], opts)),
            "two outputs per channel"
        );
        assert!(dw(&Tensor::randn(
            [4, 1, 3, 3],
            (Kind::Double, tch::Device::Cpu)
        )));
    }
}
