//! Pointwise activations.
//! Specs: <https://onnx.ai/onnx/operators/> (Relu, Clip, Sigmoid, ...).

use tch::Tensor;

use super::{input, one, opt_input, to_f64, Inputs, KResult, OpDef};
use crate::graph::Node;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: "Relu",
        attrs: &[],
        kernel: relu,
    },
    OpDef {
        op: "Clip",
        attrs: &["min", "max"],
        kernel: clip,
    },
    OpDef {
        op: "Sigmoid",
        attrs: &[],
        kernel: sigmoid,
    },
    OpDef {
        op: "Tanh",
        attrs: &[],
        kernel: tanh,
    },
];

fn relu(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(input(inputs, 0)?.f_relu()?)
}

fn sigmoid(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(input(inputs, 0)?.f_sigmoid()?)
}

fn tanh(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(input(inputs, 0)?.f_tanh()?)
}

/// Clip: bounds are attributes before opset 11, optional inputs from 11 on.
fn clip(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let (min, max) = if node.opset < 11 {
        let lo = node
            .attrs
            .has("min")
            .then(|| node.attrs.float("min", 0.0))
            .transpose()?;
        let hi = node
            .attrs
            .has("max")
            .then(|| node.attrs.float("max", 0.0))
            .transpose()?;
        (lo.map(f64::from), hi.map(f64::from))
    } else {
        let lo = opt_input(inputs, 1).map(to_f64).transpose()?;
        let hi = opt_input(inputs, 2).map(to_f64).transpose()?;
        (lo, hi)
    };
    one(match (min, max) {
        (Some(lo), Some(hi)) => x.f_clamp(lo, hi)?,
        (Some(lo), None) => x.f_clamp_min(lo)?,
        (None, Some(hi)) => x.f_clamp_max(hi)?,
        (None, None) => x.shallow_clone(),
    })
}
