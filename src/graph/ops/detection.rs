//! Ops of detection and spatial-transformer models.
//! Specs: <https://onnx.ai/onnx/operators/onnx__NonMaxSuppression.html>,
//! <https://onnx.ai/onnx/operators/onnx__RoiAlign.html>,
//! <https://onnx.ai/onnx/operators/onnx__GridSample.html>,
//! <https://onnx.ai/onnx/operators/onnx__AffineGrid.html>.
//!
//! NonMaxSuppression and RoiAlign follow the ONNX reference implementation
//! (itself onnxruntime's CPU kernel) step by step, in float32 for the box
//! arithmetic of NonMaxSuppression and float64 for RoiAlign's sampling.
//! GridSample and AffineGrid run libtorch's `grid_sampler` and
//! `affine_grid_generator`, which the ONNX definitions were written after.
//! Where the ONNX reference implementation and onnxruntime differ (cubic
//! sampling beyond the image under `border` padding: the reference clamps
//! the coordinate before it picks the 4 x 4 taps, onnxruntime and libtorch
//! clamp each tap), this follows onnxruntime.

use tch::{Kind, Tensor};

use super::{fail, input, one, opt_input, to_f64, to_i64s, Inputs, KResult, OpDef};
use crate::graph::Node;
use crate::graph::Op;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::NonMaxSuppression,
        attrs: &["center_point_box"],
        kernel: non_max_suppression,
    },
    OpDef {
        op: Op::RoiAlign,
        attrs: &[
            "coordinate_transformation_mode",
            "mode",
            "output_height",
            "output_width",
            "sampling_ratio",
            "spatial_scale",
        ],
        kernel: roi_align,
    },
    OpDef {
        op: Op::GridSample,
        attrs: &["mode", "padding_mode", "align_corners"],
        kernel: grid_sample,
    },
    OpDef {
        op: Op::AffineGrid,
        attrs: &["align_corners"],
        kernel: affine_grid,
    },
];

/// A tensor's values as float32, in row-major order.
fn f32s(t: &Tensor) -> KResult<Vec<f32>> {
    let t = t.f_to_kind(Kind::Float)?.f_contiguous()?.f_flatten(0, -1)?;
    Ok(Vec::<f32>::try_from(&t)?)
}

/// A tensor's values as float64, in row-major order.
fn f64s(t: &Tensor) -> KResult<Vec<f64>> {
    let t = t
        .f_to_kind(Kind::Double)?
        .f_contiguous()?
        .f_flatten(0, -1)?;
    Ok(Vec::<f64>::try_from(&t)?)
}

/// An optional scalar input; `None` when omitted or empty.
fn opt_scalar(inputs: &Inputs, i: usize, name: &str) -> KResult<Option<f64>> {
    match opt_input(inputs, i) {
        None => Ok(None),
        Some(t) if t.numel() == 0 => Ok(None),
        Some(t) if t.numel() == 1 => Ok(Some(to_f64(t)?)),
        Some(t) => fail(format!(
            "{name} (input {i}) must hold one value, got shape {:?}",
            t.size()
        )),
    }
}

/// The lower and upper of two values.
fn min_max(a: f32, b: f32) -> (f32, f32) {
    if a >= b {
        (b, a)
    } else {
        (a, b)
    }
}

/// Whether box `a` overlaps box `b` by more than `threshold` (intersection
/// over union), boxes as corners `[y1, x1, y2, x2]` (any diagonal) or as
/// centres `[xc, yc, w, h]`.
fn suppresses(a: &[f32], b: &[f32], center: bool, threshold: f32) -> bool {
    let (ax, ay, bx, by) = if center {
        let span = |c: f32, len: f32| (c - len / 2.0, c + len / 2.0);
        (
            span(a[0], a[2]),
            span(a[1], a[3]),
            span(b[0], b[2]),
            span(b[1], b[3]),
        )
    } else {
        (
            min_max(a[1], a[3]),
            min_max(a[0], a[2]),
            min_max(b[1], b[3]),
            min_max(b[0], b[2]),
        )
    };
    let (ix0, ix1) = (ax.0.max(bx.0), ax.1.min(bx.1));
    if ix1 <= ix0 {
        return false;
    }
    let (iy0, iy1) = (ay.0.max(by.0), ay.1.min(by.1));
    if iy1 <= iy0 {
        return false;
    }
    let inter = (ix1 - ix0) * (iy1 - iy0);
    if inter <= 0.0 {
        return false;
    }
    let area_a = (ax.1 - ax.0) * (ay.1 - ay.0);
    let area_b = (bx.1 - bx.0) * (by.1 - by.0);
    let union = area_a + area_b - inter;
    if area_a <= 0.0 || area_b <= 0.0 || union <= 0.0 {
        return false;
    }
    inter / union > threshold
}

/// NonMaxSuppression: per batch and class, boxes by decreasing score (ties:
/// lower index first) above `score_threshold` (when given), each kept unless
/// it overlaps a kept one by more than `iou_threshold`, at most
/// `max_output_boxes_per_class` (0 when omitted). Output: `[k, 3]` int64
/// rows of (batch, class, box).
fn non_max_suppression(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (boxes, scores) = (input(inputs, 0)?, input(inputs, 1)?);
    let (bs, ss) = (boxes.size(), scores.size());
    if bs.len() != 3 || bs[2] != 4 {
        return fail(format!(
            "boxes must be [batches, boxes, 4], got shape {bs:?}"
        ));
    }
    if ss.len() != 3 || ss[0] != bs[0] || ss[2] != bs[1] {
        return fail(format!(
            "scores must be [batches, classes, boxes] = [{}, C, {}], got shape {ss:?}",
            bs[0], bs[1]
        ));
    }
    let center = match node.attrs.int("center_point_box", 0)? {
        0 => false,
        1 => true,
        v => return fail(format!("center_point_box must be 0 or 1, got {v}")),
    };
    let max_out = match opt_input(inputs, 2) {
        Some(t) if t.numel() > 1 => {
            return fail(format!(
                "max_output_boxes_per_class must hold one value, got shape {:?}",
                t.size()
            ))
        }
        Some(t) if t.numel() == 1 => to_i64s(t)?[0].max(0),
        _ => 0,
    };
    let iou = opt_scalar(inputs, 3, "iou_threshold")?.unwrap_or(0.0) as f32;
    if !(0.0..=1.0).contains(&iou) {
        return fail(format!("iou_threshold must be in [0, 1], got {iou}"));
    }
    let score_threshold = opt_scalar(inputs, 4, "score_threshold")?.map(|v| v as f32);
    let (nb, nc, n) = (ss[0] as usize, ss[1] as usize, ss[2] as usize);
    let (bx, sc) = (f32s(boxes)?, f32s(scores)?);
    let mut rows: Vec<i64> = Vec::new();
    for b in 0..nb {
        let bbox = |i: usize| &bx[(b * n + i) * 4..(b * n + i) * 4 + 4];
        for c in 0..nc {
            let s = &sc[(b * nc + c) * n..(b * nc + c + 1) * n];
            let mut order: Vec<usize> = (0..n)
                .filter(|&i| score_threshold.is_none_or(|t| s[i] > t))
                .collect();
            // Decreasing score, then increasing index; NaN scores last.
            order.sort_by(|&i, &j| {
                s[j].partial_cmp(&s[i])
                    .unwrap_or_else(|| s[i].is_nan().cmp(&s[j].is_nan()))
                    .then(i.cmp(&j))
            });
            let mut kept: Vec<usize> = Vec::new();
            for i in order {
                if kept.len() as i64 >= max_out {
                    break;
                }
                if kept
                    .iter()
                    .all(|&k| !suppresses(bbox(k), bbox(i), center, iou))
                {
                    kept.push(i);
                    rows.extend([b as i64, c as i64, i as i64]);
                }
            }
        }
    }
    let k = rows.len() as i64 / 3;
    one(Tensor::from_slice(&rows)
        .f_reshape([k, 3])?
        .f_to(boxes.device())?)
}

/// Where one sample point of RoiAlign reads: four flat positions and their
/// bilinear weights (all zero outside the image).
struct Tap {
    pos: [usize; 4],
    w: [f64; 4],
}

fn tap(y: f64, x: f64, h: usize, w: usize) -> Tap {
    if y < -1.0 || y > h as f64 || x < -1.0 || x > w as f64 {
        return Tap {
            pos: [0; 4],
            w: [0.0; 4],
        };
    }
    let (mut y, mut x) = (y.max(0.0), x.max(0.0));
    let (mut y0, mut x0) = (y as usize, x as usize);
    let (y1, x1);
    if y0 >= h - 1 {
        y0 = h - 1;
        y1 = y0;
        y = y0 as f64;
    } else {
        y1 = y0 + 1;
    }
    if x0 >= w - 1 {
        x0 = w - 1;
        x1 = x0;
        x = x0 as f64;
    } else {
        x1 = x0 + 1;
    }
    let (ly, lx) = (y - y0 as f64, x - x0 as f64);
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    Tap {
        pos: [y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1],
        w: [hy * hx, hy * lx, ly * hx, ly * lx],
    }
}

/// RoiAlign: each region of interest `[x1, y1, x2, y2]` (scaled by
/// `spatial_scale`) of image `batch_indices[r]` split into
/// `output_height x output_width` bins, each the average (or the maximum,
/// of the weighted neighbours, as onnxruntime) of `sampling_ratio^2`
/// bilinear samples (`ceil(bin size)` per axis when 0). Opset 10 has no
/// `coordinate_transformation_mode` and behaves as `output_half_pixel`;
/// from 16 its default is `half_pixel` (coordinates shifted by -0.5).
fn roi_align(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, rois, batch) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
    let xs = x.size();
    if xs.len() != 4 {
        return fail(format!("X must be [N, C, H, W], got shape {xs:?}"));
    }
    let rs = rois.size();
    if rs.len() != 2 || rs[1] != 4 {
        return fail(format!("rois must be [num_rois, 4], got shape {rs:?}"));
    }
    if batch.size() != [rs[0]] {
        return fail(format!(
            "batch_indices must be [{}], got shape {:?}",
            rs[0],
            batch.size()
        ));
    }
    if batch.kind() != Kind::Int64 {
        return fail(format!(
            "batch_indices must be int64, got {:?}",
            batch.kind()
        ));
    }
    let default_mode = if node.opset < 16 {
        "output_half_pixel"
    } else {
        "half_pixel"
    };
    let half_pixel = match node
        .attrs
        .string("coordinate_transformation_mode", default_mode)?
        .as_str()
    {
        "half_pixel" => true,
        "output_half_pixel" => false,
        m => {
            return fail(format!(
                "coordinate_transformation_mode '{m}' is not half_pixel or output_half_pixel"
            ))
        }
    };
    let max = match node.attrs.string("mode", "avg")?.as_str() {
        "avg" => false,
        "max" => true,
        m => return fail(format!("mode '{m}' is not avg or max")),
    };
    let oh = node.attrs.int("output_height", 1)?;
    let ow = node.attrs.int("output_width", 1)?;
    if oh < 1 || ow < 1 {
        return fail(format!(
            "output_height {oh} and output_width {ow} must be at least 1"
        ));
    }
    let ratio = node.attrs.int("sampling_ratio", 0)?;
    if ratio < 0 {
        return fail(format!("sampling_ratio must be at least 0, got {ratio}"));
    }
    let scale = node.attrs.float("spatial_scale", 1.0)? as f64;
    let (n, c, h, w) = (xs[0], xs[1] as usize, xs[2] as usize, xs[3] as usize);
    let idx = to_i64s(batch)?;
    if let Some(&bad) = idx.iter().find(|&&b| b < 0 || b >= n) {
        return fail(format!("batch index {bad} is out of range for {n} images"));
    }
    let r = rs[0] as usize;
    let (ohu, owu) = (oh as usize, ow as usize);
    let total = [c, ohu, owu].iter().try_fold(r, |a, &b| a.checked_mul(b));
    if total.is_none_or(|t| t > 1 << 28) {
        return fail(format!(
            "{r} regions x {c} channels x {oh} x {ow} bins is too large an output"
        ));
    }
    let mut out = vec![0f64; r * c * ohu * owu];
    if h > 0 && w > 0 {
        let data = f64s(x)?;
        let boxes = f64s(rois)?;
        let offset = if half_pixel { 0.5 } else { 0.0 };
        for (k, &b) in idx.iter().enumerate() {
            let roi = &boxes[k * 4..k * 4 + 4];
            let (x0, y0) = (roi[0] * scale - offset, roi[1] * scale - offset);
            let (x1, y1) = (roi[2] * scale - offset, roi[3] * scale - offset);
            let (mut rw, mut rh) = (x1 - x0, y1 - y0);
            if !half_pixel {
                rw = rw.max(1.0);
                rh = rh.max(1.0);
            }
            let (bin_h, bin_w) = (rh / oh as f64, rw / ow as f64);
            let grid = |len: f64| {
                if ratio > 0 {
                    ratio as usize
                } else {
                    let g = len.ceil();
                    // A NaN or negative extent samples nothing.
                    if g.is_finite() && g > 0.0 {
                        g.min(1e6) as usize
                    } else {
                        0
                    }
                }
            };
            let (gh, gw) = (grid(bin_h), grid(bin_w));
            let samples = (ohu * owu).checked_mul(gh).and_then(|v| v.checked_mul(gw));
            if samples.is_none_or(|v| v > 1 << 26) {
                return fail(format!(
                    "region {k} needs {gh} x {gw} samples in each of {oh} x {ow} bins: too many"
                ));
            }
            let count = (gh * gw).max(1) as f64;
            let mut taps = Vec::with_capacity(ohu * owu * gh * gw);
            for ph in 0..ohu {
                for pw in 0..owu {
                    for iy in 0..gh {
                        let yy = y0 + ph as f64 * bin_h + (iy as f64 + 0.5) * bin_h / gh as f64;
                        for ix in 0..gw {
                            let xx = x0 + pw as f64 * bin_w + (ix as f64 + 0.5) * bin_w / gw as f64;
                            taps.push(tap(yy, xx, h, w));
                        }
                    }
                }
            }
            for ch in 0..c {
                let plane = &data[(b as usize * c + ch) * h * w..][..h * w];
                let mut t = taps.iter();
                for bin in 0..ohu * owu {
                    let mut v = 0.0;
                    for s in 0..gh * gw {
                        let Some(p) = t.next() else { break };
                        let terms = [0, 1, 2, 3].map(|i| p.w[i] * plane[p.pos[i]]);
                        if max {
                            let m = terms.into_iter().fold(f64::NEG_INFINITY, f64::max);
                            v = if s == 0 { m } else { v.max(m) };
                        } else {
                            v += terms.iter().sum::<f64>();
                        }
                    }
                    if !max {
                        v /= count;
                    }
                    out[(k * c + ch) * ohu * owu + bin] = v;
                }
            }
        }
    }
    let y = Tensor::from_slice(&out)
        .f_reshape([r as i64, c as i64, oh, ow])?
        .f_to_kind(x.kind())?
        .f_to(x.device())?;
    one(y)
}

/// `align_corners` as a bool.
fn align_corners(node: &Node) -> KResult<bool> {
    match node.attrs.int("align_corners", 0)? {
        0 => Ok(false),
        1 => Ok(true),
        v => fail(format!("align_corners must be 0 or 1, got {v}")),
    }
}

/// GridSample: `Y[n, c, p] = X[n, c]` sampled at the normalized coordinates
/// `grid[n, p]` (x first), by nearest (ties to even), (bi/tri)linear or
/// bicubic interpolation, reading outside the image as zeros, the border or
/// its reflection. Opset 16 names the modes bilinear and bicubic and takes
/// 4-D inputs only; 20 names them linear and cubic and takes 5-D inputs
/// too (cubic stays 4-D here, as in onnxruntime).
fn grid_sample(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, grid) = (input(inputs, 0)?, input(inputs, 1)?);
    let (xs, gs) = (x.size(), grid.size());
    let spatial = xs.len().saturating_sub(2);
    let max_rank = if node.opset < 20 { 4 } else { 5 };
    if xs.len() < 4 || xs.len() > max_rank {
        return fail(format!(
            "X must be 4-D{} [N, C, spatial...], got shape {xs:?}",
            if max_rank == 5 { " or 5-D" } else { "" }
        ));
    }
    if gs.len() != xs.len() || gs[0] != xs[0] || gs[gs.len() - 1] != spatial as i64 {
        return fail(format!(
            "grid must be [{}, out spatial..., {spatial}] for X {xs:?}, got shape {gs:?}",
            xs[0]
        ));
    }
    let (linear, cubic) = if node.opset < 20 {
        ("bilinear", "bicubic")
    } else {
        ("linear", "cubic")
    };
    let mode_name = node.attrs.string("mode", linear)?;
    let mode = match mode_name.as_str() {
        m if m == linear => 0,
        "nearest" => 1,
        m if m == cubic => 2,
        m => {
            return fail(format!(
                "mode '{m}' is not {linear}, nearest or {cubic} at opset {}",
                node.opset
            ))
        }
    };
    if mode == 2 && spatial != 2 {
        return fail(format!(
            "mode {cubic} samples 4-D inputs only, got shape {xs:?}"
        ));
    }
    let padding = match node.attrs.string("padding_mode", "zeros")?.as_str() {
        "zeros" => 0,
        "border" => 1,
        "reflection" => 2,
        m => {
            return fail(format!(
                "padding_mode '{m}' is not zeros, border or reflection"
            ))
        }
    };
    let corners = align_corners(node)?;
    if !matches!(
        x.kind(),
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    ) {
        return fail(format!("X must be a float tensor, got {:?}", x.kind()));
    }
    if xs.iter().skip(2).any(|&d| d == 0) {
        let mut shape = vec![xs[0], xs[1]];
        shape.extend(&gs[1..gs.len() - 1]);
        return one(Tensor::zeros(shape.as_slice(), (x.kind(), x.device())));
    }
    let grid = grid.f_to_kind(x.kind())?;
    one(x.f_grid_sampler(&grid, mode, padding, corners)?)
}

/// AffineGrid: the sampling grid `[N, H, W, 2]` (or `[N, D, H, W, 3]`) of
/// the affine maps `theta` `[N, 2, 3]` (`[N, 3, 4]`) over the normalized
/// coordinates of an image of `size` `[N, C, H, W]` (`[N, C, D, H, W]`).
fn affine_grid(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (theta, size) = (input(inputs, 0)?, input(inputs, 1)?);
    let size = to_i64s(size)?;
    let ts = theta.size();
    let spatial = size.len().saturating_sub(2);
    if !(spatial == 2 || spatial == 3) {
        return fail(format!(
            "size must be [N, C, H, W] or [N, C, D, H, W], got {size:?}"
        ));
    }
    let want = [size[0], spatial as i64, spatial as i64 + 1];
    if ts != want {
        return fail(format!(
            "theta must be {want:?} for size {size:?}, got shape {ts:?}"
        ));
    }
    if size.iter().any(|&d| d < 0) {
        return fail(format!("size {size:?} has a negative dimension"));
    }
    if !matches!(
        theta.kind(),
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    ) {
        return fail(format!(
            "theta must be a float tensor, got {:?}",
            theta.kind()
        ));
    }
    let elems = (size.iter().skip(2).chain([&size[0], &(spatial as i64)]))
        .try_fold(1i64, |a, &b| a.checked_mul(b));
    if elems.is_none_or(|e| e > 1 << 31) {
        return fail(format!("a grid for size {size:?} is too large"));
    }
    let corners = align_corners(node)?;
    one(Tensor::f_affine_grid_generator(
        theta,
        size.as_slice(),
        corners,
    )?)
}
