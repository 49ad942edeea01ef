//! Op kernels, one family per file, each following the ONNX operator spec
//! (<https://onnx.ai/onnx/operators/>). A kernel takes a node and its input
//! tensors and returns its outputs; it never panics on bad input, it returns a
//! [`KernelError`] that the executor wraps with the file, node and op.
//!
//! Every op lists the attributes it understands. The loader rejects a node
//! carrying any other attribute, so nothing that changes results is ignored.

use tch::Tensor;

use super::{Node, Op};

mod activation;
mod attention;
mod chain;
mod conv;
mod deform;
mod detection;
pub use activation::clip_limits;
pub use conv::{conv_filters, convolve_as, ConvShape};
pub use quant::words_of;
mod elementwise;
mod generate;
mod index;
mod linear;
mod loss;
mod norm;
mod pool;
mod quant;
mod recurrent;
mod reduce;
mod resize;
mod shape;
mod signal;
mod text;

/// A kernel's failure, without location; the executor adds file, node and op.
#[derive(Debug)]
pub struct KernelError(pub String);

impl From<tch::TchError> for KernelError {
    fn from(e: tch::TchError) -> Self {
        // libtorch messages carry a C++ backtrace after the first line.
        KernelError(crate::error::torch_message(&e))
    }
}

/// What a kernel returns: its value or the reason the op failed.
pub type KResult<T> = Result<T, KernelError>;

/// Inputs as the executor hands them over: `None` for an omitted optional input.
pub type Inputs<'a> = [Option<&'a Tensor>];

/// A kernel: computes a node's outputs from its attributes and inputs.
pub type Kernel = fn(&Node, &Inputs) -> KResult<Vec<Tensor>>;

/// An op's kernel and the attributes it honours (what the engine may
/// assume of the op is declared in [`Op::traits`]).
pub struct OpDef {
    /// The op this kernel runs.
    pub op: Op,
    /// The attributes the kernel reads; any other is rejected at load time.
    pub attrs: &'static [&'static str],
    /// The kernel.
    pub kernel: Kernel,
}

const FAMILIES: &[&[OpDef]] = &[
    detection::OPS,
    recurrent::OPS,
    loss::OPS,
    activation::OPS,
    conv::OPS,
    deform::OPS,
    elementwise::OPS,
    generate::OPS,
    index::OPS,
    linear::OPS,
    norm::OPS,
    pool::OPS,
    quant::OPS,
    reduce::OPS,
    resize::OPS,
    shape::OPS,
    signal::OPS,
    text::OPS,
    attention::OPS,
];

/// Every kernel.
pub(crate) fn all() -> impl Iterator<Item = &'static OpDef> {
    FAMILIES.iter().flat_map(|f| f.iter())
}

/// The kernel of `op` (every op has one: a test in `graph::op` checks).
pub fn def(op: Op) -> &'static OpDef {
    all().find(|d| d.op == op).expect("every op has a kernel")
}

/// The kernel of the op named `op` in the default ONNX domain, if supported.
pub fn lookup(op: &str) -> Option<&'static OpDef> {
    Op::parse(op).map(def)
}

/// Fails the op with `msg`.
pub fn fail<T>(msg: impl Into<String>) -> KResult<T> {
    Err(KernelError(msg.into()))
}

/// Required input `i`.
pub fn input<'a>(inputs: &Inputs<'a>, i: usize) -> KResult<&'a Tensor> {
    match inputs.get(i) {
        Some(Some(t)) => Ok(t),
        _ => fail(format!("required input {i} is missing")),
    }
}

/// Optional input `i`.
pub fn opt_input<'a>(inputs: &Inputs<'a>, i: usize) -> Option<&'a Tensor> {
    inputs.get(i).copied().flatten()
}

/// An int64 tensor (shape, axes, pads...) as a vector.
pub fn to_i64s(t: &Tensor) -> KResult<Vec<i64>> {
    let t = t.f_to_kind(tch::Kind::Int64)?.f_flatten(0, -1)?;
    Ok(Vec::<i64>::try_from(&t)?)
}

/// A scalar tensor as f64.
pub fn to_f64(t: &Tensor) -> KResult<f64> {
    if t.numel() != 1 {
        return fail(format!("expected a scalar, got shape {:?}", t.size()));
    }
    Ok(t.f_to_kind(tch::Kind::Double)?.f_double_value(&[])?)
}

/// Normalises a possibly negative `axis` for a tensor of rank `rank`.
pub fn axis(axis: i64, rank: usize) -> KResult<i64> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r.max(1) {
        return fail(format!("axis {axis} out of range for rank {rank}"));
    }
    Ok(a)
}

/// A single output.
pub fn one(t: Tensor) -> KResult<Vec<Tensor>> {
    Ok(vec![t])
}

/// A node of `op` with `attrs` at `opset` and no inputs or outputs, for
/// kernel tests that call a kernel directly.
#[cfg(test)]
pub(crate) fn test_node(op: Op, attrs: Vec<(&str, super::Attr)>, opset: i64) -> Node {
    Node {
        index: 0,
        name: "n".into(),
        op,
        inputs: vec![],
        outputs: vec![],
        attrs: super::Attrs(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect()),
        opset,
    }
}

/// Random float32 values of `size` with the special values bit flips make
/// (subnormals, signed zeros, huge values, NaN, Inf) at scattered places,
/// for kernel tests.
#[cfg(test)]
pub(crate) fn with_special_values(size: &[i64]) -> Tensor {
    let x = Tensor::randn(size, (tch::Kind::Float, tch::Device::Cpu));
    let specials = [
        1e-40,
        -3e-39,
        0.0,
        -0.0,
        3e38,
        -2e38,
        f64::NAN,
        f64::INFINITY,
    ];
    let flat = x.view([-1]);
    for (i, &v) in specials.iter().enumerate() {
        let _ = flat.get((i as i64 * 7919) % flat.size()[0]).fill_(v);
    }
    x
}
