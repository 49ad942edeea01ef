//! Reductions over axes.
//! Spec: <https://onnx.ai/onnx/operators/onnx__ReduceMean.html> and siblings.

use super::OpDef;

pub const OPS: &[OpDef] = &[];
