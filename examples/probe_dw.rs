use std::time::Instant;
use tch::{Device, Kind, Tensor};

struct Geo {
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    p: usize,
}

#[inline(always)]
fn block<const B: usize>(
    scratch: &[f32],
    taps: &[f32],
    offs: &[usize],
    bias: f32,
    base: usize,
    out: &mut [f32],
) {
    let mut acc = [bias; B];
    for (&t, &off) in taps.iter().zip(offs) {
        let s = &scratch[base + off..][..B];
        for i in 0..B {
            acc[i] = s[i].mul_add(t, acc[i]);
        }
    }
    out[..B].copy_from_slice(&acc);
}

/// Copies a plane into its stride phases.
#[inline(always)]
fn fill(
    src: &[f32],
    h: usize,
    w: usize,
    p: usize,
    s: usize,
    hq: usize,
    wq: usize,
    plane_len: usize,
    scratch: &mut [f32],
) {
    for py in 0..s {
        for px in 0..s {
            let plane = &mut scratch[(py * s + px) * plane_len..][..hq * wq];
            for r in 0..hq {
                let Some(sr) = (r * s + py).checked_sub(p).filter(|&sr| sr < h) else {
                    continue;
                };
                let srow = &src[sr * w..][..w];
                let prow = &mut plane[r * wq..][..wq];
                if s == 1 {
                    prow[p..p + w].copy_from_slice(srow);
                } else {
                    for (q, v) in prow.iter_mut().enumerate() {
                        if let Some(sc) = (q * s + px).checked_sub(p).filter(|&sc| sc < w) {
                            *v = srow[sc];
                        }
                    }
                }
            }
        }
    }
}

#[inline(always)]
fn dw(x: &[f32], n: usize, c: usize, g: &Geo, wt: &[f32], b: &[f32]) -> Vec<f32> {
    const B: usize = 64;
    let (k, s, p) = (g.k, g.s, g.p);
    let (hp, wp) = (g.h + 2 * p, g.w + 2 * p);
    let (oh, ow) = ((hp - k) / s + 1, (wp - k) / s + 1);
    let (hq, wq) = (hp.div_ceil(s), wp.div_ceil(s));
    let n_flat = (oh - 1) * wq + ow;
    let plane_len = hq * wq;
    let offs: Vec<usize> = (0..k * k)
        .map(|t| {
            let (ky, kx) = (t / k, t % k);
            ((ky % s) * s + kx % s) * plane_len + (ky / s) * wq + kx / s
        })
        .collect();
    let mut scratch = vec![0f32; s * s * plane_len + n_flat.div_ceil(B) * B + 16];
    let mut row = vec![0f32; n_flat.div_ceil(B) * B];
    let mut y = vec![0f32; n * c * oh * ow];
    for sc in 0..n * c {
        let ch = sc % c;
        fill(
            &x[sc * g.h * g.w..][..g.h * g.w],
            g.h,
            g.w,
            p,
            s,
            hq,
            wq,
            plane_len,
            &mut scratch,
        );
        let taps = &wt[ch * k * k..][..k * k];
        let mut o = 0;
        while o < n_flat {
            block::<B>(&scratch, taps, &offs, b[ch], o, &mut row[o..]);
            o += B;
        }
        let yo = &mut y[sc * oh * ow..][..oh * ow];
        for r in 0..oh {
            yo[r * ow..][..ow].copy_from_slice(&row[r * wq..][..ow]);
        }
    }
    y
}

#[target_feature(enable = "avx2,fma")]
unsafe fn dw_avx2(x: &[f32], n: usize, c: usize, g: &Geo, wt: &[f32], b: &[f32]) -> Vec<f32> {
    dw(x, n, c, g, wt, b)
}
#[target_feature(enable = "avx512f,fma")]
unsafe fn dw_512(x: &[f32], n: usize, c: usize, g: &Geo, wt: &[f32], b: &[f32]) -> Vec<f32> {
    dw(x, n, c, g, wt, b)
}

fn main() {
    tch::set_num_threads(1);
    let opts = (Kind::Float, Device::Cpu);
    for (n, c, hw, s) in [
        (32i64, 32i64, 112i64, 1usize),
        (32, 96, 112, 2),
        (32, 144, 56, 1),
        (32, 192, 28, 1),
        (32, 384, 14, 1),
        (32, 576, 14, 2),
        (32, 960, 7, 1),
        (4, 576, 14, 1),
        (4, 960, 7, 1),
        (1, 384, 14, 1),
        (1, 576, 14, 2),
    ] {
        let x = Tensor::randn([n, c, hw, hw], opts).clamp(0.0, 6.0);
        let w = Tensor::randn([c, 1, 3, 3], opts);
        let b = Tensor::randn([c], opts);
        let reps = (20_000_000 / (n * c * hw * hw)).max(5) as usize;
        let xv: Vec<f32> = Vec::try_from(x.flatten(0, -1)).unwrap();
        let wv: Vec<f32> = Vec::try_from(w.flatten(0, -1)).unwrap();
        let bv: Vec<f32> = Vec::try_from(&b).unwrap();
        let g = Geo {
            h: hw as usize,
            w: hw as usize,
            k: 3,
            s,
            p: 1,
        };
        let (mut lt, mut a2, mut a5) = (f64::MAX, f64::MAX, f64::MAX);
        let mut want = Tensor::zeros([1], opts);
        let (mut y, mut y5) = (vec![], vec![]);
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..reps {
                want = x.convolution(
                    &w,
                    Some(&b),
                    [s as i64; 2],
                    [1, 1],
                    [1, 1],
                    false,
                    [0, 0],
                    c,
                );
            }
            lt = lt.min(t.elapsed().as_secs_f64() / reps as f64);
            let t = Instant::now();
            for _ in 0..reps {
                y = unsafe { dw_avx2(&xv, n as usize, c as usize, &g, &wv, &bv) };
            }
            a2 = a2.min(t.elapsed().as_secs_f64() / reps as f64);
            let t = Instant::now();
            for _ in 0..reps {
                y5 = unsafe { dw_512(&xv, n as usize, c as usize, &g, &wv, &bv) };
            }
            a5 = a5.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        let wantv: Vec<f32> = Vec::try_from(want.flatten(0, -1)).unwrap();
        let same = wantv.len() == y.len()
            && wantv
                .iter()
                .zip(&y)
                .all(|(a, b)| a.to_bits() == b.to_bits())
            && y == y5;
        let macs = wantv.len() as f64 * 9.0;
        println!("n{n} c{c} {hw}x{hw} s{s}: libtorch {:.1} us ({:.1} GMAC/s) | avx2 {:.1} us ({:.1}) | avx512 {:.1} us | same {same}", lt * 1e6, macs / lt / 1e9, a2 * 1e6, macs / a2 / 1e9, a5 * 1e6);
    }
}
