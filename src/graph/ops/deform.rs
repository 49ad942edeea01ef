//! Deformable convolution in two spatial dimensions: each tap of the
//! kernel reads the input at its place in the window moved by a learned
//! offset (bilinear between pixels, zero outside the image), weighed by an
//! optional mask, then the taps combine as a (grouped) convolution's.
//! Spec: <https://onnx.ai/onnx/operators/onnx__DeformConv.html>.

use tch::{Kind, Tensor};

use super::conv::per_axis;
use super::{fail, input, one, opt_input, Inputs, KResult, OpDef};
use crate::graph::{Node, Op};

pub const OPS: &[OpDef] = &[OpDef {
    op: Op::DeformConv,
    attrs: &[
        "dilations",
        "group",
        "kernel_shape",
        "offset_group",
        "pads",
        "strides",
    ],
    kernel: deform_conv,
}];

/// The geometry of one DeformConv node.
struct Geometry {
    /// Kernel height and width.
    k: [i64; 2],
    strides: Vec<i64>,
    dilations: Vec<i64>,
    /// Begin pads of the two axes.
    begin: [i64; 2],
    /// Output height and width.
    out: [i64; 2],
}

fn geometry(node: &Node, x: &[i64], w: &[i64]) -> KResult<Geometry> {
    let k = [w[2], w[3]];
    if let Some(ks) = node.attrs.ints("kernel_shape")? {
        if ks != k {
            return fail(format!(
                "kernel_shape {ks:?} differs from the weight's {k:?}"
            ));
        }
    }
    let strides = per_axis(node, "strides", 2, 1)?;
    let dilations = per_axis(node, "dilations", 2, 1)?;
    let pads = node.attrs.ints("pads")?.unwrap_or(vec![0; 4]);
    if pads.len() != 4 || pads.iter().any(|&p| p < 0) {
        return fail(format!("pads {pads:?} should be 4 non-negative values"));
    }
    let out = [0, 1].map(|i| {
        let extent = (k[i] - 1) * dilations[i] + 1;
        (x[i + 2] + pads[i] + pads[i + 2] - extent) / strides[i] + 1
    });
    if out.iter().any(|&o| o < 1) {
        return fail(format!(
            "input {x:?} is smaller than the kernel {k:?} with pads {pads:?}"
        ));
    }
    Ok(Geometry {
        k,
        strides,
        dilations,
        begin: [pads[0], pads[1]],
        out,
    })
}

/// DeformConv: X `[N, C, H, W]`, W `[M, C / group, kH, kW]`, offset `[N,
/// offset_group * kH * kW * 2, oH, oW]` (per tap, the row then the column
/// offset), optional B `[M]` and mask `[N, offset_group * kH * kW, oH,
/// oW]`. Computed in float64 and rounded to X's type.
fn deform_conv(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, w, offset) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
    let (b, mask) = (opt_input(inputs, 3), opt_input(inputs, 4));
    let (xs, ws) = (x.size(), w.size());
    let group = node.attrs.int("group", 1)?;
    let og = node.attrs.int("offset_group", 1)?;
    let fits = xs.len() == 4
        && ws.len() == 4
        && group >= 1
        && og >= 1
        && ws[1] * group == xs[1]
        && ws[0] % group == 0
        && xs[1] % og == 0;
    if !fits {
        return fail(format!(
            "X {xs:?} and W {ws:?} should be 2-D images and filters whose channels group {group} and offset_group {og} divide"
        ));
    }
    let g = geometry(node, &xs, &ws)?;
    let (n, taps, len) = (xs[0], g.k[0] * g.k[1], g.out[0] * g.out[1]);
    let want = [n, og * taps * 2, g.out[0], g.out[1]];
    if offset.size() != want {
        return fail(format!("offset {:?} should be {want:?}", offset.size()));
    }
    let offset = offset
        .f_to_kind(Kind::Double)?
        .f_reshape([n, og, taps, 2, len])?;
    let mask = match mask {
        Some(m) if m.size() == [n, og * taps, g.out[0], g.out[1]] => {
            Some(m.f_to_kind(Kind::Double)?.f_reshape([n, og, taps, len])?)
        }
        Some(m) => {
            return fail(format!(
                "mask {:?} should be [{n}, {}, {}, {}]",
                m.size(),
                og * taps,
                g.out[0],
                g.out[1]
            ))
        }
        None => None,
    };
    let image = x
        .f_to_kind(Kind::Double)?
        .f_reshape([n, og, xs[1] / og, xs[2] * xs[3]])?;
    let mut columns = Vec::with_capacity(taps as usize);
    for t in 0..taps {
        let at = |axis: usize, row: bool| -> KResult<Tensor> {
            let (kpos, stride) = (if row { t / g.k[1] } else { t % g.k[1] }, g.strides[axis]);
            let base = Tensor::f_arange(g.out[axis], (Kind::Double, x.device()))?
                .f_mul_scalar(stride as f64)?
                .f_add_scalar((kpos * g.dilations[axis] - g.begin[axis]) as f64)?;
            let shape: [i64; 2] = if row { [g.out[0], 1] } else { [1, g.out[1]] };
            let grid = base
                .f_reshape(shape)?
                .f_expand([g.out[0], g.out[1]], false)?;
            Ok(grid
                .f_reshape([1, 1, len])?
                .f_add(&offset.f_select(2, t)?.f_select(2, axis as i64)?)?)
        };
        let mut sampled = bilinear(&image, &at(0, true)?, &at(1, false)?, [xs[2], xs[3]])?;
        if let Some(m) = &mask {
            sampled = sampled.f_mul(&m.f_select(2, t)?.f_unsqueeze(2)?)?;
        }
        columns.push(sampled.f_reshape([n, xs[1], len])?);
    }
    // [N, C, taps, L] -> per group [N, C/group * taps, L], channel-major as W.
    let columns = Tensor::f_stack(&columns, 2)?.f_reshape([n, group, ws[1] * taps, len])?;
    let filters = w
        .f_to_kind(Kind::Double)?
        .f_reshape([group, ws[0] / group, ws[1] * taps])?;
    let mut y = filters
        .f_unsqueeze(0)?
        .f_matmul(&columns)?
        .f_reshape([n, ws[0], g.out[0], g.out[1]])?;
    if let Some(b) = b {
        y = y.f_add(&b.f_to_kind(Kind::Double)?.f_reshape([1, ws[0], 1, 1])?)?;
    }
    one(y.f_to_kind(x.kind())?)
}

/// `image` (`[N, G, C/G, H*W]`) sampled at rows `py` and columns `px`
/// (`[N, G, L]`, in pixels) bilinearly, a corner outside the image adding
/// zero: `[N, G, C/G, L]`.
fn bilinear(image: &Tensor, py: &Tensor, px: &Tensor, [h, w]: [i64; 2]) -> KResult<Tensor> {
    let (y0, x0) = (py.f_floor()?, px.f_floor()?);
    let (ly, lx) = (py.f_sub(&y0)?, px.f_sub(&x0)?);
    let channels = image.size()[2];
    let mut acc = None::<Tensor>;
    for (dy, dx) in [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)] {
        let (yy, xx) = (y0.f_add_scalar(dy)?, x0.f_add_scalar(dx)?);
        let inside = yy
            .f_ge(0)?
            .f_logical_and(&yy.f_le((h - 1) as f64)?)?
            .f_logical_and(&xx.f_ge(0)?)?
            .f_logical_and(&xx.f_le((w - 1) as f64)?)?;
        let wy = if dy == 0.0 {
            ly.f_neg()?.f_add_scalar(1.0)?
        } else {
            ly.shallow_clone()
        };
        let wx = if dx == 0.0 {
            lx.f_neg()?.f_add_scalar(1.0)?
        } else {
            lx.shallow_clone()
        };
        let weight = wy.f_mul(&wx)?.f_mul(&inside.f_to_kind(Kind::Double)?)?;
        let index = yy
            .f_clamp(0.0, (h - 1) as f64)?
            .f_mul_scalar(w as f64)?
            .f_add(&xx.f_clamp(0.0, (w - 1) as f64)?)?
            .f_to_kind(Kind::Int64)?;
        let size = index.size();
        let index = index
            .f_unsqueeze(2)?
            .f_expand([size[0], size[1], channels, size[2]], false)?;
        let value = image
            .f_gather(3, &index, false)?
            .f_mul(&weight.f_unsqueeze(2)?)?;
        acc = Some(match acc {
            Some(a) => a.f_add(&value)?,
            None => value,
        });
    }
    acc.ok_or_else(|| super::KernelError("no corners".into()))
}
