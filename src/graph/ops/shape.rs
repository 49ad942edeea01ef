//! Ops that move, view or pick data without arithmetic.
//! Specs: <https://onnx.ai/onnx/operators/onnx__Flatten.html>,
//! <https://onnx.ai/onnx/operators/onnx__Reshape.html> and siblings.

use tch::Tensor;

use super::{axis, fail, input, one, to_i64s, Inputs, KResult, OpDef};
use crate::graph::Node;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: "Flatten",
        attrs: &["axis"],
        kernel: flatten,
    },
    OpDef {
        op: "Reshape",
        attrs: &["allowzero"],
        kernel: reshape,
    },
    OpDef {
        op: "Identity",
        attrs: &[],
        kernel: identity,
    },
    OpDef {
        op: "Dropout",
        attrs: &["ratio", "seed", "is_test"],
        kernel: identity,
    },
];

fn identity(_: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    one(input(inputs, 0)?.shallow_clone())
}

/// Flatten to 2-D: dimensions before `axis` form the rows.
fn flatten(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let size = x.size();
    let a = node.attrs.int("axis", 1)?;
    let a = if a == size.len() as i64 {
        a
    } else {
        axis(a, size.len())?
    } as usize;
    let rows: i64 = size[..a].iter().product();
    let cols: i64 = size[a..].iter().product();
    one(x.f_reshape([rows, cols])?)
}

/// Reshape: 0 copies the input dimension (unless allowzero), -1 is inferred.
fn reshape(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let mut shape = to_i64s(input(inputs, 1)?)?;
    if node.attrs.int("allowzero", 0)? == 0 {
        let size = x.size();
        for (i, d) in shape.iter_mut().enumerate() {
            if *d == 0 {
                *d = *size.get(i).ok_or_else(|| {
                    super::KernelError(format!(
                        "shape entry {i} is 0 but the input has rank {}",
                        size.len()
                    ))
                })?;
            }
        }
    }
    if shape.iter().filter(|&&d| d == -1).count() > 1 {
        return fail(format!("shape {shape:?} has more than one -1"));
    }
    one(x.f_reshape(shape.as_slice())?)
}
