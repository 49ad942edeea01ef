//! Convolution in 1, 2 and 3 spatial dimensions.
//! Spec: <https://onnx.ai/onnx/operators/onnx__Conv.html>

use tch::Tensor;

use super::{fail, input, one, opt_input, Inputs, KResult, OpDef};
use crate::graph::Node;

pub const OPS: &[OpDef] = &[OpDef {
    op: "Conv",
    attrs: &[
        "auto_pad",
        "dilations",
        "group",
        "kernel_shape",
        "pads",
        "strides",
    ],
    kernel: conv,
}];

/// Begin and end padding per spatial axis, from `pads` or `auto_pad`.
/// `kernel` is the dilated extent of the window per axis.
pub fn spatial_pads(
    node: &Node,
    spatial: &[i64],
    kernel: &[i64],
    strides: &[i64],
) -> KResult<Vec<(i64, i64)>> {
    let d = spatial.len();
    match node.attrs.string("auto_pad", "NOTSET")?.as_str() {
        "NOTSET" => {
            let pads = node.attrs.ints("pads")?.unwrap_or_else(|| vec![0; 2 * d]);
            if pads.len() != 2 * d || pads.iter().any(|&p| p < 0) {
                return fail(format!(
                    "pads {pads:?} should be {} non-negative values",
                    2 * d
                ));
            }
            Ok((0..d).map(|i| (pads[i], pads[i + d])).collect())
        }
        "VALID" => Ok(vec![(0, 0); d]),
        mode @ ("SAME_UPPER" | "SAME_LOWER") => Ok((0..d)
            .map(|i| {
                let out = (spatial[i] + strides[i] - 1) / strides[i];
                let total = ((out - 1) * strides[i] + kernel[i] - spatial[i]).max(0);
                let small = total / 2;
                if mode == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                }
            })
            .collect()),
        other => fail(format!(
            "auto_pad '{other}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID"
        )),
    }
}

/// An int-list attribute with one value per spatial axis, or `default` for each.
pub fn per_axis(node: &Node, name: &str, d: usize, default: i64) -> KResult<Vec<i64>> {
    let v = node.attrs.ints(name)?.unwrap_or_else(|| vec![default; d]);
    if v.len() != d || v.iter().any(|&x| x < 1) {
        return fail(format!("{name} {v:?} should be {d} positive values"));
    }
    Ok(v)
}

/// Pads `x`'s trailing spatial axes by `pads` with `value` when any pad is
/// asymmetric; returns the tensor and the symmetric padding left to pass on.
pub fn pad_asymmetric(x: &Tensor, pads: &[(i64, i64)], value: f64) -> KResult<(Tensor, Vec<i64>)> {
    if pads.iter().all(|(b, e)| b == e) {
        return Ok((x.shallow_clone(), pads.iter().map(|p| p.0).collect()));
    }
    // torch lists pads from the last axis backwards.
    let flat: Vec<i64> = pads.iter().rev().flat_map(|&(b, e)| [b, e]).collect();
    Ok((
        x.f_pad(flat.as_slice(), "constant", value)?,
        vec![0; pads.len()],
    ))
}

fn conv(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, w, b) = (input(inputs, 0)?, input(inputs, 1)?, opt_input(inputs, 2));
    let (xs, ws) = (x.size(), w.size());
    if !(3..=5).contains(&xs.len()) || ws.len() != xs.len() {
        return fail(format!(
            "input {xs:?} and weight {ws:?} must both have rank 3, 4 or 5"
        ));
    }
    let d = xs.len() - 2;
    let kernel = &ws[2..];
    if let Some(k) = node.attrs.ints("kernel_shape")? {
        if k != kernel {
            return fail(format!(
                "kernel_shape {k:?} disagrees with the weight shape {ws:?}"
            ));
        }
    }
    let strides = per_axis(node, "strides", d, 1)?;
    let dilations = per_axis(node, "dilations", d, 1)?;
    let group = node.attrs.int("group", 1)?;
    let extent: Vec<i64> = kernel
        .iter()
        .zip(&dilations)
        .map(|(k, dl)| (k - 1) * dl + 1)
        .collect();
    let pads = spatial_pads(node, &xs[2..], &extent, &strides)?;
    let (x, padding) = pad_asymmetric(x, &pads, 0.0)?;
    one(x.f_convolution(
        w,
        b,
        strides.as_slice(),
        padding.as_slice(),
        dilations.as_slice(),
        false,
        vec![0; d].as_slice(),
        group,
    )?)
}
