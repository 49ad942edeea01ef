//! Normalisation layers (inference mode).
//! Spec: <https://onnx.ai/onnx/operators/onnx__BatchNormalization.html>.

use tch::Tensor;

use super::{fail, input, one, Inputs, KResult, OpDef};
use crate::graph::Node;

pub const OPS: &[OpDef] = &[OpDef {
    op: "BatchNormalization",
    attrs: &["epsilon", "momentum", "training_mode", "spatial"],
    kernel: batch_norm,
}];

fn batch_norm(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    if node.attrs.int("training_mode", 0)? != 0 {
        return fail("training_mode 1 is not supported (inference only)");
    }
    if node.attrs.int("spatial", 1)? != 1 {
        return fail("spatial 0 is not supported");
    }
    let x = input(inputs, 0)?;
    let (scale, bias, mean, var) = (
        input(inputs, 1)?,
        input(inputs, 2)?,
        input(inputs, 3)?,
        input(inputs, 4)?,
    );
    let eps = f64::from(node.attrs.float("epsilon", 1e-5)?);
    // momentum only matters in training; it does not change inference results.
    one(x.f_batch_norm(
        Some(scale),
        Some(bias),
        Some(mean),
        Some(var),
        false,
        0.0,
        eps,
        false,
    )?)
}
