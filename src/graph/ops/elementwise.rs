//! Broadcasting binary arithmetic (numpy rules, as ONNX and torch share).
//! Specs: <https://onnx.ai/onnx/operators/onnx__Add.html> and siblings.

use tch::{TchError, Tensor};

use super::{input, one, Inputs, KResult, OpDef};
use crate::graph::Node;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: "Add",
        attrs: &[],
        kernel: add,
    },
    OpDef {
        op: "Sub",
        attrs: &[],
        kernel: sub,
    },
    OpDef {
        op: "Mul",
        attrs: &[],
        kernel: mul,
    },
    OpDef {
        op: "Div",
        attrs: &[],
        kernel: div,
    },
];

fn binary(
    inputs: &Inputs,
    f: fn(&Tensor, &Tensor) -> Result<Tensor, TchError>,
) -> KResult<Vec<Tensor>> {
    one(f(input(inputs, 0)?, input(inputs, 1)?)?)
}

fn add(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    binary(inputs, Tensor::f_add)
}

fn sub(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    binary(inputs, Tensor::f_sub)
}

fn mul(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    binary(inputs, Tensor::f_mul)
}

fn div(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    binary(inputs, Tensor::f_div)
}
