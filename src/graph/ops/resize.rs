//! Resize and its predecessor Upsample.
//! Specs: <https://onnx.ai/onnx/operators/onnx__Resize.html>,
//! <https://onnx.ai/onnx/operators/onnx__Upsample.html>.
//!
//! Interpolation is separable: each resized axis is resized in turn, as the
//! ONNX reference implementation does. For one axis, every output position
//! maps to a coordinate in the input (`coordinate_transformation_mode`),
//! picks `n` neighbours there (1 for nearest, 2 for linear, 4 for cubic,
//! more under `antialias` when shrinking) and sums them with weights.
//! Nearest is a pure selection (exact, any dtype); linear and cubic weigh
//! in float64 and round once to the input's type at the end.
//!
//! Where the spec leaves room, onnxruntime's CPU kernel decides: input
//! coordinates and output sizes from scales (`floor(in * scale)`) are
//! computed in float32, Resize-10 and Upsample round nearest coordinates
//! down when enlarging and up when shrinking an axis, and the neighbours
//! that carry a zero weight (which decide where a NaN or Inf spreads) are
//! onnxruntime's, except that an axis left as it is is not resized at all
//! (onnxruntime's 2-D kernels still weigh it, so an Inf there can turn NaN
//! beside it).

use tch::{Device, Kind, Tensor};

use super::shape::norm_axes;
use super::{fail, input, one, opt_input, to_i64s, Inputs, KResult, OpDef};
use crate::graph::Node;
use crate::graph::Op;
use crate::kernels::views::{floats, floats_mut};

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::Resize,
        attrs: &[
            "mode",
            "coordinate_transformation_mode",
            "nearest_mode",
            "cubic_coeff_a",
            "exclude_outside",
            "extrapolation_value",
            "antialias",
            "axes",
            "keep_aspect_ratio_policy",
        ],
        kernel: resize,
    },
    OpDef {
        op: Op::Upsample,
        attrs: &["mode", "scales"],
        kernel: upsample,
    },
];

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Coord {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
    TfCropAndResize,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Nearest {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
    /// Resize-10 and Upsample: floor when enlarging, ceil when shrinking.
    Simple,
}

/// How the kernel interpolates, from the node's attributes.
struct Interp {
    mode: Mode,
    coord: Coord,
    nearest: Nearest,
    cubic_a: f64,
    exclude_outside: bool,
    extrapolation: f64,
    antialias: bool,
}

/// One axis to resize.
struct AxisPlan {
    axis: i64,
    out: i64,
    scale: f64,
    roi: (f64, f64),
}

fn parse_mode(mode: &str, cubic: bool) -> KResult<Mode> {
    match mode {
        "nearest" => Ok(Mode::Nearest),
        "linear" => Ok(Mode::Linear),
        "cubic" if cubic => Ok(Mode::Cubic),
        other => fail(format!(
            "mode '{other}' is not one of nearest, linear{}",
            if cubic { ", cubic" } else { "" }
        )),
    }
}

fn parse_coord(name: &str, opset: i64) -> KResult<Coord> {
    Ok(match name {
        "half_pixel" => Coord::HalfPixel,
        "half_pixel_symmetric" if opset >= 19 => Coord::HalfPixelSymmetric,
        "pytorch_half_pixel" => Coord::PytorchHalfPixel,
        "align_corners" => Coord::AlignCorners,
        "asymmetric" => Coord::Asymmetric,
        // Dropped from the spec in opset 13; onnxruntime still runs it (with
        // a deprecation warning), and so does faultsweep: the same formula.
        "tf_half_pixel_for_nn" => Coord::TfHalfPixelForNn,
        "tf_crop_and_resize" => Coord::TfCropAndResize,
        other => {
            return fail(format!(
                "coordinate_transformation_mode '{other}' is not defined in opset {opset}"
            ))
        }
    })
}

fn parse_nearest(name: &str) -> KResult<Nearest> {
    Ok(match name {
        "round_prefer_floor" => Nearest::RoundPreferFloor,
        "round_prefer_ceil" => Nearest::RoundPreferCeil,
        "floor" => Nearest::Floor,
        "ceil" => Nearest::Ceil,
        other => {
            return fail(format!(
                "nearest_mode '{other}' is not one of round_prefer_floor, round_prefer_ceil, floor, ceil"
            ))
        }
    })
}

/// A float tensor (scales, roi) as a vector.
fn to_f64s(t: &Tensor) -> KResult<Vec<f64>> {
    let t = t.f_to_kind(Kind::Double)?.f_flatten(0, -1)?;
    Ok(Vec::<f64>::try_from(&t)?)
}

/// Resize-10 and Upsample semantics: asymmetric coordinates, nearest or
/// linear, sizes from scales over every axis.
fn resize_v10(x: &Tensor, scales: &[f64], mode: &str) -> KResult<Tensor> {
    let interp = Interp {
        mode: parse_mode(mode, false)?,
        coord: Coord::Asymmetric,
        nearest: Nearest::Simple,
        cubic_a: -0.75,
        exclude_outside: false,
        extrapolation: 0.0,
        antialias: false,
    };
    let size = x.size();
    if scales.len() != size.len() {
        return fail(format!(
            "{} scales for an input of rank {}",
            scales.len(),
            size.len()
        ));
    }
    let plans = scales
        .iter()
        .enumerate()
        .map(|(a, &s)| scale_plan(a as i64, size[a], s, (0.0, 1.0)))
        .collect::<KResult<Vec<_>>>()?;
    run(x, &plans, &interp)
}

/// The plan of an axis resized by `scale`: `floor(in * scale)` outputs,
/// in float32 as onnxruntime computes it. The spec's text scales a
/// tf_crop_and_resize crop's extent too, but ONNX shape inference, the
/// reference implementation and onnxruntime all size the output from the
/// whole axis, and so does faultsweep.
fn scale_plan(axis: i64, len: i64, scale: f64, roi: (f64, f64)) -> KResult<AxisPlan> {
    if !(scale > 0.0 && scale.is_finite()) {
        return fail(format!("scale {scale} of axis {axis} is not positive"));
    }
    let out = (len as f32 * scale as f32).floor();
    if !(0.0..=(1u64 << 40) as f32).contains(&out) {
        return fail(format!(
            "axis {axis} of size {len} scaled by {scale} gives {out} elements"
        ));
    }
    Ok(AxisPlan {
        axis,
        out: out as i64,
        scale,
        roi,
    })
}

fn upsample(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let scales = if node.opset < 9 {
        if opt_input(inputs, 1).is_some() {
            return fail("'scales' is an attribute before opset 9, not input 1");
        }
        match node.attrs.floats("scales")? {
            Some(s) => s.iter().map(|&v| v as f64).collect(),
            None => return fail("attribute 'scales' is required"),
        }
    } else {
        if node.attrs.has("scales") {
            return fail("'scales' is input 1 from opset 9, not an attribute");
        }
        to_f64s(input(inputs, 1)?)?
    };
    if let Some(s) = scales.iter().find(|&&s| s < 1.0) {
        return fail(format!("Upsample scale {s} is less than 1"));
    }
    let mode = node.attrs.string("mode", "nearest")?;
    one(resize_v10(x, &scales, &mode)?)
}

fn resize(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let mode = node.attrs.string("mode", "nearest")?;
    if node.opset < 11 {
        let scales = to_f64s(input(inputs, 1)?)?;
        return one(resize_v10(x, &scales, &mode)?);
    }
    let opset = node.opset;
    let coord = parse_coord(
        &node
            .attrs
            .string("coordinate_transformation_mode", "half_pixel")?,
        opset,
    )?;
    let interp = Interp {
        mode: parse_mode(&mode, true)?,
        coord,
        nearest: parse_nearest(&node.attrs.string("nearest_mode", "round_prefer_floor")?)?,
        cubic_a: node.attrs.float("cubic_coeff_a", -0.75)? as f64,
        exclude_outside: node.attrs.int("exclude_outside", 0)? != 0,
        extrapolation: node.attrs.float("extrapolation_value", 0.0)? as f64,
        antialias: node.attrs.int("antialias", 0)? != 0,
    };
    if interp.antialias && interp.mode == Mode::Nearest {
        return fail("antialias applies to linear and cubic modes, not nearest");
    }
    let size = x.size();
    let rank = size.len();
    let axes = match node.attrs.ints("axes")? {
        Some(a) => norm_axes(&a, rank)?,
        None => (0..rank as i64).collect(),
    };
    let k = axes.len();
    let nonempty = |i: usize| opt_input(inputs, i).filter(|t| t.numel() > 0);
    let roi = match nonempty(1) {
        Some(t) if coord == Coord::TfCropAndResize => {
            let r = to_f64s(t)?;
            if r.len() != 2 * k {
                return fail(format!(
                    "roi has {} values, expected 2 x {k} (starts, then ends)",
                    r.len()
                ));
            }
            r
        }
        None if coord == Coord::TfCropAndResize => {
            return fail("tf_crop_and_resize needs the roi input")
        }
        _ => [vec![0.0; k], vec![1.0; k]].concat(),
    };
    let policy = node.attrs.string("keep_aspect_ratio_policy", "stretch")?;
    let plans: Vec<AxisPlan> = match (nonempty(2), nonempty(3)) {
        (Some(_), Some(_)) => return fail("only one of scales and sizes may be given"),
        (None, None) => return fail("one of scales and sizes is required"),
        (Some(s), None) => {
            let scales = to_f64s(s)?;
            if scales.len() != k {
                return fail(format!("{} scales for {k} axes", scales.len()));
            }
            (0..k)
                .map(|i| {
                    let a = axes[i];
                    scale_plan(a, size[a as usize], scales[i], (roi[i], roi[k + i]))
                })
                .collect::<KResult<_>>()?
        }
        (None, Some(s)) => {
            let sizes = to_i64s(s)?;
            if sizes.len() != k {
                return fail(format!("{} sizes for {k} axes", sizes.len()));
            }
            if let Some(bad) = sizes.iter().find(|&&v| v < 0) {
                return fail(format!("size {bad} is negative"));
            }
            let ratio = |i: usize| sizes[i] as f32 / size[axes[i] as usize] as f32;
            let common = match policy.as_str() {
                "stretch" => None,
                "not_larger" => Some((0..k).map(ratio).fold(f32::INFINITY, f32::min)),
                "not_smaller" => Some((0..k).map(ratio).fold(f32::NEG_INFINITY, f32::max)),
                other => {
                    return fail(format!(
                        "keep_aspect_ratio_policy '{other}' is not one of stretch, not_larger, not_smaller"
                    ))
                }
            };
            (0..k)
                .map(|i| {
                    let len = size[axes[i] as usize];
                    let (out, scale) = match common {
                        None => (sizes[i], ratio(i)),
                        // round_int: half up.
                        Some(s) => ((s * len as f32 + 0.5).floor() as i64, s),
                    };
                    AxisPlan {
                        axis: axes[i],
                        out,
                        scale: scale as f64,
                        roi: (roi[i], roi[k + i]),
                    }
                })
                .collect()
        }
    };
    if policy != "stretch" && nonempty(3).is_none() {
        return fail("keep_aspect_ratio_policy applies to sizes, not scales");
    }
    one(run(x, &plans, &interp)?)
}

/// Resizes `x` along each planned axis in turn.
fn run(x: &Tensor, plans: &[AxisPlan], interp: &Interp) -> KResult<Tensor> {
    let size = x.size();
    let identity = |plan: &AxisPlan| {
        (plan.scale - 1.0).abs() < 1e-9
            && plan.out == size[plan.axis as usize]
            && plan.roi.0.abs() < 1e-9
            && (plan.roi.1 - 1.0).abs() < 1e-9
    };
    if plans.iter().all(identity) {
        return Ok(x.shallow_clone());
    }
    // onnxruntime weighs the last two axes (three for 5-D linear) even when
    // one of them keeps its size, so a NaN or Inf there spreads through the
    // zero weights of its neighbours; the other axes are left alone.
    let rank = size.len() as i64;
    let weighed = match interp.mode {
        Mode::Nearest => 0,
        Mode::Linear if rank == 5 => 3,
        _ => 2,
    };
    let planned = plans
        .iter()
        .filter(|plan| !identity(plan) || plan.axis >= rank - weighed);
    if interp.mode == Mode::Nearest {
        let mut y = x.shallow_clone();
        for plan in planned {
            let len = y.size()[plan.axis as usize];
            y = Taps::of(plan, len, interp)?.select(&y, plan.axis, interp)?;
        }
        return Ok(y);
    }
    let x = x.f_contiguous()?;
    let mut grid = match floats(&x) {
        Some(v) => Grid::of(v, size.clone()),
        None => Grid {
            values: Vec::<f64>::try_from(x.f_to_kind(Kind::Double)?.f_flatten(0, -1)?)?,
            shape: size.clone(),
        },
    };
    for plan in planned {
        let len = grid.shape[plan.axis as usize];
        grid = Taps::of(plan, len, interp)?.weigh(&grid, plan.axis as usize, interp);
    }
    grid.into_tensor(x.kind())
}

/// The input coordinate of output position `o` along an axis of `len`
/// elements resized to `out` by `scale`, in float32 arithmetic as
/// onnxruntime computes it (float64 would land on the other side of a
/// whole number now and then: 1.5 / 0.6f is 2.5 in float32, 2.4999999 in
/// float64, and nearest or cubic would read other elements).
fn original(coord: Coord, o: i64, len: i64, plan: &AxisPlan) -> f64 {
    let (scale, out, roi) = (plan.scale, plan.out, plan.roi);
    let (o, scale, len_f, out_f) = (o as f32, scale as f32, len as f32, out as f32);
    let (start, end) = (roi.0 as f32, roi.1 as f32);
    let x = match coord {
        Coord::HalfPixel => (o + 0.5) / scale - 0.5,
        Coord::HalfPixelSymmetric => {
            let adjustment = out_f / (scale * len_f);
            let offset = len_f / 2.0 * (1.0 - adjustment);
            offset + (o + 0.5) / scale - 0.5
        }
        Coord::PytorchHalfPixel if out > 1 => (o + 0.5) / scale - 0.5,
        Coord::PytorchHalfPixel => 0.0,
        // The output length floored, as onnxruntime and PyTorch divide by
        // (ONNX's reference divides by `len * scale` unfloored).
        Coord::AlignCorners if out > 1 => o * (len_f - 1.0) / (out_f - 1.0),
        Coord::AlignCorners => 0.0,
        Coord::Asymmetric => o / scale,
        Coord::TfHalfPixelForNn => (o + 0.5) / scale,
        Coord::TfCropAndResize if out > 1 => {
            start * (len_f - 1.0) + o * (end - start) * (len_f - 1.0) / (out_f - 1.0)
        }
        Coord::TfCropAndResize => {
            return 0.5 * (roi.0 + roi.1) * (len - 1) as f64;
        }
    };
    x as f64
}

fn nearest_index(rule: Nearest, x: f64, scale: f64) -> f64 {
    let frac = x - x.floor();
    match rule {
        Nearest::RoundPreferFloor if frac == 0.5 => x.floor(),
        Nearest::RoundPreferCeil if frac == 0.5 => x.ceil(),
        Nearest::RoundPreferFloor | Nearest::RoundPreferCeil => x.round(),
        Nearest::Floor => x.floor(),
        Nearest::Ceil => x.ceil(),
        Nearest::Simple if scale < 1.0 => x.ceil(),
        Nearest::Simple => x.floor(),
    }
}

/// The cubic convolution kernel of parameter `a` at distance `x`.
fn cubic(a: f64, x: f64) -> f64 {
    let x = x.abs();
    if x <= 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

/// The weights of the taps `first, first + 1, ...` (clamped to the axis
/// later) around coordinate `x` on an axis of `len` elements. The weights
/// are the spec's; which neighbours carry a zero weight (and so whether a
/// NaN or Inf there reaches the output) is onnxruntime's choice: linear
/// clamps `x` to the axis and reads `floor(x)` and the next element (the
/// same one twice, half each, at the last); cubic reads `floor(x) - 1` to
/// `floor(x) + 2`. Antialiasing follows the reference implementation
/// (taps left of `x` preferred, ratio in (0, 1]).
fn taps(interp: &Interp, x: f64, scale: f64, len: i64) -> (i64, Vec<f64>) {
    let shrink = if interp.antialias {
        scale.min(1.0)
    } else {
        1.0
    };
    match interp.mode {
        Mode::Nearest => (0, vec![]),
        Mode::Linear if shrink < 1.0 => {
            let (base, ratio) = left_of(x);
            let start = (-1.0 / shrink).floor() as i64 + 1;
            let w: Vec<f64> = (start..2 - start)
                .map(|i| (1.0 - ((i as f64 - ratio) * shrink).abs()).clamp(0.0, 1.0))
                .collect();
            let sum: f64 = w.iter().sum();
            (base + start, w.iter().map(|v| v / sum).collect())
        }
        Mode::Linear => {
            let xc = x.clamp(0.0, (len - 1) as f64);
            let first = xc.floor();
            if first as i64 >= len - 1 {
                return (len - 1, vec![0.5, 0.5]);
            }
            let ratio = xc - first;
            (first as i64, vec![1.0 - ratio, ratio])
        }
        Mode::Cubic if shrink < 1.0 => {
            let (base, ratio) = left_of(x);
            let start = (-2.0 / shrink).floor() as i64 + 1;
            let w: Vec<f64> = (start..2 - start)
                .map(|i| cubic(interp.cubic_a, shrink * (i as f64 - ratio)))
                .collect();
            let sum: f64 = w.iter().sum();
            (base + start, w.iter().map(|v| v / sum).collect())
        }
        Mode::Cubic => {
            let first = x.floor();
            let ratio = x - first;
            let a = interp.cubic_a;
            let w = vec![
                cubic(a, ratio + 1.0),
                cubic(a, ratio),
                cubic(a, 1.0 - ratio),
                cubic(a, 2.0 - ratio),
            ];
            (first as i64 - 1, w)
        }
    }
}

/// The tap strictly left of `x` (x - 1 when x is whole) and x's distance
/// from it, in (0, 1].
fn left_of(x: f64) -> (i64, f64) {
    let left = x.ceil() - 1.0;
    (left as i64, x - left)
}

/// A weighted resize's values in float64 between its axes, row-major.
struct Grid {
    values: Vec<f64>,
    shape: Vec<i64>,
}

impl Grid {
    fn of(values: &[f32], shape: Vec<i64>) -> Grid {
        let values = values.iter().map(|&v| f64::from(v)).collect();
        Grid { values, shape }
    }

    /// The values rounded once to `kind`.
    fn into_tensor(self, kind: Kind) -> KResult<Tensor> {
        if kind != Kind::Float {
            let t = Tensor::f_from_slice(&self.values)?.f_reshape(self.shape.as_slice())?;
            return Ok(t.f_to_kind(kind)?);
        }
        let mut t = Tensor::f_empty(self.shape.as_slice(), (Kind::Float, Device::Cpu))?;
        let out = floats_mut(&mut t).expect("a new CPU tensor is contiguous");
        out.iter_mut()
            .zip(&self.values)
            .for_each(|(o, &v)| *o = v as f32);
        Ok(t)
    }
}

/// Where each output position of one axis reads: `n` input indices and
/// their weights per position (weighted modes), or one index (nearest).
struct Taps {
    n: usize,
    index: Vec<i64>,
    weights: Vec<f64>,
    /// Positions outside the crop (`tf_crop_and_resize`), which take the
    /// extrapolation value.
    outside: Vec<bool>,
}

impl Taps {
    fn of(plan: &AxisPlan, len: i64, interp: &Interp) -> KResult<Taps> {
        let out = plan.out;
        if len == 0 && out > 0 {
            return fail(format!(
                "cannot resize axis {} of size 0 to {out}",
                plan.axis
            ));
        }
        let mut all = Taps {
            n: 1,
            index: Vec::new(),
            weights: Vec::new(),
            outside: vec![false; out as usize],
        };
        for o in 0..out {
            let x = original(interp.coord, o, len, plan);
            if interp.coord == Coord::TfCropAndResize && !(0.0..=(len - 1) as f64).contains(&x) {
                all.outside[o as usize] = true;
            }
            if interp.mode == Mode::Nearest {
                let i = nearest_index(interp.nearest, x, plan.scale);
                all.index.push((i.max(0.0) as i64).min(len - 1));
                continue;
            }
            let (first, mut w) = taps(interp, x, plan.scale, len);
            all.n = w.len();
            if interp.exclude_outside {
                for (j, v) in w.iter_mut().enumerate() {
                    let i = first + j as i64;
                    if i < 0 || i >= len {
                        *v = 0.0;
                    }
                }
                let sum: f64 = w.iter().sum();
                let sum = if sum == 0.0 { 1.0 } else { sum };
                w.iter_mut().for_each(|v| *v /= sum);
            }
            for j in 0..all.n as i64 {
                all.index.push((first + j).clamp(0, len - 1));
            }
            all.weights.extend(w);
        }
        Ok(all)
    }

    /// Nearest: the picked elements along `axis`, any dtype.
    fn select(&self, y: &Tensor, axis: i64, interp: &Interp) -> KResult<Tensor> {
        let picked = y.f_index_select(axis, &Tensor::from_slice(&self.index))?;
        if !self.outside.iter().any(|&o| o) {
            return Ok(picked);
        }
        let mut m_shape = vec![1; picked.dim()];
        m_shape[axis as usize] = self.outside.len() as i64;
        let mask = Tensor::from_slice(&self.outside).f_reshape(m_shape.as_slice())?;
        let fill = Tensor::from(interp.extrapolation).f_to_kind(picked.kind())?;
        Ok(fill.f_where_self(&mask, &picked)?)
    }

    /// Linear and cubic: each output position the sum, in float64 and in
    /// tap order, of its taps times their weights.
    fn weigh(&self, grid: &Grid, axis: usize, interp: &Interp) -> Grid {
        let dims = |r: &[i64]| r.iter().product::<i64>() as usize;
        let (outer, inner) = (dims(&grid.shape[..axis]), dims(&grid.shape[axis + 1..]));
        let (len, out, n) = (grid.shape[axis] as usize, self.outside.len(), self.n);
        let mut values = vec![0.0; outer * out * inner];
        for o in 0..outer {
            let src = &grid.values[o * len * inner..(o + 1) * len * inner];
            for p in 0..out {
                let dst = &mut values[(o * out + p) * inner..(o * out + p + 1) * inner];
                if self.outside[p] {
                    dst.fill(interp.extrapolation);
                    continue;
                }
                for j in 0..n {
                    let (i, w) = (self.index[p * n + j] as usize, self.weights[p * n + j]);
                    let tap = &src[i * inner..(i + 1) * inner];
                    dst.iter_mut().zip(tap).for_each(|(d, &v)| *d += v * w);
                }
            }
        }
        let mut shape = grid.shape.clone();
        shape[axis] = out as i64;
        Grid { values, shape }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where NaN (N), +Inf (I) and -Inf (J) land in the output; '.' finite.
    fn pattern(y: &Tensor) -> String {
        Vec::<f32>::try_from(&y.flatten(0, -1))
            .unwrap()
            .iter()
            .map(|v| match v {
                v if v.is_nan() => 'N',
                v if *v == f32::INFINITY => 'I',
                v if *v == f32::NEG_INFINITY => 'J',
                _ => '.',
            })
            .collect()
    }

    fn resized(x: &[f32], shape: &[i64], scales: &[f64], mode: Mode, coord: Coord) -> String {
        let x = Tensor::from_slice(x).reshape(shape);
        let plans: Vec<AxisPlan> = scales
            .iter()
            .enumerate()
            .map(|(a, &s)| scale_plan(a as i64, shape[a], s, (0.0, 1.0)).unwrap())
            .collect();
        let interp = Interp {
            mode,
            coord,
            nearest: Nearest::RoundPreferFloor,
            cubic_a: -0.75,
            exclude_outside: false,
            extrapolation: 0.0,
            antialias: false,
        };
        pattern(&run(&x, &plans, &interp).unwrap())
    }

    /// NaN and Inf spread as onnxruntime 1.31 spreads them: its zero-weight
    /// neighbours (an Inf times 0 is NaN), and its weighing of the last two
    /// axes even where one keeps its size. The patterns are onnxruntime's
    /// (CPU, float32, opset 13).
    #[test]
    fn nan_and_inf_spread_as_in_onnxruntime() {
        use Coord::*;
        use Mode::*;
        let inf = f32::INFINITY;
        let row = [0.0, 1.0, inf, 3.0, 4.0, 5.0];
        let cases = [
            (Linear, HalfPixel, 2.0, "...IIII....."),
            (Linear, HalfPixel, 0.5, ".I."),
            (Linear, Asymmetric, 2.0, "..NIII......"),
            (Linear, Asymmetric, 0.5, ".I."),
            (Linear, AlignCorners, 2.0, "...IIII....."),
            (Cubic, HalfPixel, 2.0, ".NNNNNNNN..."),
            (Cubic, HalfPixel, 0.5, "NN."),
            (Cubic, Asymmetric, 2.0, "NNNNNNNN...."),
            (Cubic, AlignCorners, 2.0, "NNNNNNNNN..."),
            (Cubic, AlignCorners, 1.0, "..I..."),
        ];
        for (mode, coord, scale, want) in cases {
            let got = resized(&row, &[1, 1, 1, 6], &[1.0, 1.0, 1.0, scale], mode, coord);
            assert_eq!(got, want, "{mode:?} {coord:?} scale {scale}");
        }
        // The last axis keeps its size but is weighed all the same.
        let grid = [0.0, inf, 2.0, 3.0, 4.0, 5.0];
        let scales = [1.0, 1.0, 2.0, 1.0];
        let linear = resized(&grid, &[1, 1, 2, 3], &scales, Linear, HalfPixel);
        assert_eq!(linear, "NI.NI.NI....");
        let cubic = resized(&grid, &[1, 1, 2, 3], &scales, Cubic, HalfPixel);
        assert_eq!(cubic, "NNNNNNNNNNJN");
        let three_d = resized(&grid, &[1, 2, 3], &[1.0, 2.0, 1.0], Linear, HalfPixel);
        assert_eq!(three_d, "NI.NI.NI....");
    }
}
