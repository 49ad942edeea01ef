//! Pooling in 1, 2 and 3 spatial dimensions.
//! Specs: <https://onnx.ai/onnx/operators/onnx__MaxPool.html>,
//! <https://onnx.ai/onnx/operators/onnx__AveragePool.html>,
//! <https://onnx.ai/onnx/operators/onnx__GlobalAveragePool.html>.

use tch::Tensor;

use super::conv::{pad_asymmetric, per_axis, spatial_pads};
use super::{fail, input, one, Inputs, KResult, OpDef};
use crate::graph::Node;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: "MaxPool",
        attrs: &[
            "auto_pad",
            "ceil_mode",
            "dilations",
            "kernel_shape",
            "pads",
            "storage_order",
            "strides",
        ],
        kernel: max_pool,
    },
    OpDef {
        op: "AveragePool",
        attrs: &[
            "auto_pad",
            "ceil_mode",
            "count_include_pad",
            "dilations",
            "kernel_shape",
            "pads",
            "strides",
        ],
        kernel: avg_pool,
    },
    OpDef {
        op: "GlobalAveragePool",
        attrs: &[],
        kernel: global_avg_pool,
    },
    OpDef {
        op: "GlobalMaxPool",
        attrs: &[],
        kernel: global_max_pool,
    },
];

struct Window {
    kernel: Vec<i64>,
    strides: Vec<i64>,
    dilations: Vec<i64>,
    pads: Vec<(i64, i64)>,
    ceil: bool,
}

fn window(node: &Node, x: &Tensor) -> KResult<Window> {
    let size = x.size();
    if !(3..=5).contains(&size.len()) {
        return fail(format!("input shape {size:?} must have rank 3, 4 or 5"));
    }
    let d = size.len() - 2;
    let kernel = node
        .attrs
        .ints("kernel_shape")?
        .ok_or_else(|| super::KernelError("kernel_shape is required".into()))?;
    if kernel.len() != d {
        return fail(format!("kernel_shape {kernel:?} should have {d} values"));
    }
    let strides = per_axis(node, "strides", d, 1)?;
    let dilations = per_axis(node, "dilations", d, 1)?;
    let extent: Vec<i64> = kernel
        .iter()
        .zip(&dilations)
        .map(|(k, dl)| (k - 1) * dl + 1)
        .collect();
    let pads = spatial_pads(node, &size[2..], &extent, &strides)?;
    let ceil = node.attrs.int("ceil_mode", 0)? != 0;
    Ok(Window {
        kernel,
        strides,
        dilations,
        pads,
        ceil,
    })
}

fn max_pool(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    if node.attrs.int("storage_order", 0)? != 0 {
        return fail("storage_order 1 (column-major indices) is not supported");
    }
    if node.outputs.len() > 1 {
        return fail("the Indices output of MaxPool is not supported");
    }
    let w = window(node, x)?;
    let (x, padding) = pad_asymmetric(x, &w.pads, f64::NEG_INFINITY)?;
    let (k, s, p, dl) = (
        w.kernel.as_slice(),
        w.strides.as_slice(),
        padding.as_slice(),
        w.dilations.as_slice(),
    );
    one(match k.len() {
        1 => x.f_max_pool1d(k, s, p, dl, w.ceil)?,
        2 => x.f_max_pool2d(k, s, p, dl, w.ceil)?,
        _ => x.f_max_pool3d(k, s, p, dl, w.ceil)?,
    })
}

fn avg_pool(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let w = window(node, x)?;
    if w.dilations.iter().any(|&d| d != 1) {
        return fail("dilations other than 1 are not supported for AveragePool");
    }
    let include = node.attrs.int("count_include_pad", 0)? != 0;
    if w.pads.iter().any(|(b, e)| b != e) {
        return fail(format!(
            "asymmetric pads {:?} are not supported for AveragePool",
            w.pads
        ));
    }
    let p: Vec<i64> = w.pads.iter().map(|p| p.0).collect();
    let (k, s, p) = (w.kernel.as_slice(), w.strides.as_slice(), p.as_slice());
    one(match k.len() {
        1 => x.f_avg_pool1d(k, s, p, w.ceil, include)?,
        2 => x.f_avg_pool2d(k, s, p, w.ceil, include, None)?,
        _ => x.f_avg_pool3d(k, s, p, w.ceil, include, None)?,
    })
}

fn spatial_dims(x: &Tensor) -> KResult<Vec<i64>> {
    let r = x.dim() as i64;
    if r < 3 {
        return fail(format!("input shape {:?} has no spatial axes", x.size()));
    }
    Ok((2..r).collect())
}

fn global_avg_pool(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    one(x.f_mean_dim(spatial_dims(x)?.as_slice(), true, None)?)
}

fn global_max_pool(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    one(x.f_amax(spatial_dims(x)?.as_slice(), true)?)
}
