//! The graph IR: nodes in topological order reading and writing named values,
//! constants (initializers and folded `Constant` nodes) as tensors, and the
//! executor that runs any node range over an environment of live values.
//! Each node's op is an [`Op`], which declares what the rest of the program
//! may assume of it ([`Op::traits`]).

mod attrs;
mod exec;
mod layout;
mod op;
pub mod ops;
mod opset_history;
pub mod opsets;

pub use attrs::{Attr, Attrs};
pub use exec::{catch_kernel, Env};
pub use layout::Layout;
pub use op::{BoundRule, OnABox, Op, Traits, Weights, Window};

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use tch::Tensor;

/// Whether tensors of `kind` hold floating-point values (fault targets).
pub fn is_float(kind: tch::Kind) -> bool {
    matches!(
        kind,
        tch::Kind::Float | tch::Kind::Double | tch::Kind::Half | tch::Kind::BFloat16
    )
}

/// Whether `kind` is an integer type of quantized models' words (int8,
/// uint8, int32), which native faults strike.
pub fn is_word(kind: tch::Kind) -> bool {
    matches!(kind, tch::Kind::Int8 | tch::Kind::Uint8 | tch::Kind::Int)
}

/// tch kind and element size of an ONNX `TensorProto.DataType` (the
/// loader's tensors and Cast's `to`).
pub fn onnx_kind(data_type: i32) -> Option<(tch::Kind, usize)> {
    use tch::Kind;
    Some(match data_type {
        1 => (Kind::Float, 4),
        2 => (Kind::Uint8, 1),
        3 => (Kind::Int8, 1),
        5 => (Kind::Int16, 2),
        6 => (Kind::Int, 4),
        7 => (Kind::Int64, 8),
        9 => (Kind::Bool, 1),
        10 => (Kind::Half, 2),
        11 => (Kind::Double, 8),
        16 => (Kind::BFloat16, 2),
        _ => return None,
    })
}

/// A tensor type by its ONNX name (`float32`, `int64`, ...).
pub fn kind_name(kind: tch::Kind) -> String {
    use tch::Kind::*;
    match kind {
        Float => "float32".into(),
        Double => "float64".into(),
        Half => "float16".into(),
        BFloat16 => "bfloat16".into(),
        Uint8 => "uint8".into(),
        Int8 => "int8".into(),
        Int16 => "int16".into(),
        Int => "int32".into(),
        Int64 => "int64".into(),
        Bool => "bool".into(),
        other => format!("{other:?}"),
    }
}

/// Index of a value in [`Graph::values`].
pub type ValueId = usize;

/// Where a value comes from.
#[derive(Debug)]
pub enum Source {
    /// The i-th graph input.
    Input(usize),
    /// An initializer or a folded `Constant` node.
    Constant(Tensor),
    /// Output `slot` of node `node`.
    Node {
        /// Index of the producing node.
        node: usize,
        /// Which of its outputs.
        slot: usize,
    },
}

/// A clone shares a constant's storage (see [`Graph`]).
impl Clone for Source {
    fn clone(&self) -> Self {
        match self {
            Source::Input(i) => Source::Input(*i),
            Source::Constant(t) => Source::Constant(t.shallow_clone()),
            Source::Node { node, slot } => Source::Node {
                node: *node,
                slot: *slot,
            },
        }
    }
}

/// A named value of the graph: an input, a constant or a node output.
#[derive(Debug, Clone)]
pub struct Value {
    /// The ONNX value name.
    pub name: String,
    /// Where the value comes from.
    pub source: Source,
    /// Index of the last node that reads this value; `usize::MAX` for graph
    /// outputs, which stay alive to the end.
    pub last_use: usize,
}

/// One declared graph input: its name, element type and dimensions
/// (`None` for a symbolic dimension such as a dynamic batch).
#[derive(Debug, Clone)]
pub struct InputSpec {
    /// The input's ONNX name.
    pub name: String,
    /// Its element type (float32 when the file declares none).
    pub kind: tch::Kind,
    /// Its dimensions; `None` when the file declares no shape.
    pub dims: Option<Vec<Option<i64>>>,
}

/// One node of the graph, in topological order.
#[derive(Debug, Clone)]
pub struct Node {
    /// Position in topological order.
    pub index: usize,
    /// The ONNX node name, or `op#index` when the file leaves it empty.
    pub name: String,
    /// What the node computes.
    pub op: Op,
    /// `None` for an omitted optional input (empty name in ONNX).
    pub inputs: Vec<Option<ValueId>>,
    /// The values the node produces, one per output slot.
    pub outputs: Vec<ValueId>,
    /// The node's ONNX attributes.
    pub attrs: Attrs,
    /// The model's default-domain opset version.
    pub opset: i64,
}

/// A loaded model. A clone shares the constants' storage (libtorch tensors
/// are handles): it is the model for another thread, since a tensor handle
/// may move between threads but not be shared by them.
#[derive(Debug, Clone)]
pub struct Graph {
    /// The file this graph was loaded from, named in every error.
    pub path: PathBuf,
    /// The model's default-domain opset version.
    pub opset: i64,
    /// The nodes, in topological order.
    pub nodes: Vec<Node>,
    /// Every value, indexed by [`ValueId`].
    pub values: Vec<Value>,
    /// The declared graph inputs.
    pub inputs: Vec<InputSpec>,
    /// Value ids of the graph inputs, in declaration order.
    pub input_values: Vec<ValueId>,
    /// Value ids of the graph outputs, in declaration order.
    pub outputs: Vec<ValueId>,
    /// Range supervision on node outputs, by node index: a hardened variant
    /// of the model (empty as loaded).
    pub guards: BTreeMap<usize, Guard>,
    /// Detectors: nodes whose outputs are checked for NaN/Inf; a hit is
    /// recorded beside the outcome (PyTorchALFI's monitors).
    pub monitors: BTreeSet<usize>,
    /// The output (index into `outputs`) that tells `benign` from `sde`.
    pub judged: usize,
    /// What the outputs mean and how a faulty row is judged (the scenario's
    /// `task:`; classification as loaded).
    pub task: std::sync::Arc<crate::classify::Task>,
    /// How values relate to the batch's rows (shape values, misaligned
    /// values).
    pub layout: Layout,
    /// The integer words behind constants folded from DequantizeLinear (a
    /// QDQ model's weights), by the constant's value id.
    pub words: BTreeMap<ValueId, Words>,
}

/// The integer initializer a dequantized constant was made of: a QDQ
/// model's weight is `DequantizeLinear(words, scale, zero point)`, folded
/// at load into the float32 constant its Conv reads. A fault in a word is
/// that word changed and dequantized again, as the node would.
#[derive(Debug)]
pub struct Words {
    /// The integer initializer (int8, uint8 or int32).
    pub words: Tensor,
    /// The scale of each word, float32, of the words' shape.
    pub scale: Tensor,
    /// The zero point of each word, float32, of the words' shape.
    pub zero: Tensor,
}

/// A clone shares the tensors' storage (see [`Graph`]).
impl Clone for Words {
    fn clone(&self) -> Self {
        Words {
            words: self.words.shallow_clone(),
            scale: self.scale.shallow_clone(),
            zero: self.zero.shallow_clone(),
        }
    }
}

impl Words {
    /// Word `index` (flat), and the float32 value a word `w` dequantizes
    /// to there: `(w - zero) * scale` in float32, as DequantizeLinear
    /// computes it.
    pub fn at(&self, index: i64) -> (f64, impl Fn(f64) -> f32 + Send + Sync + 'static) {
        let value = |t: &Tensor| t.reshape([-1]).double_value(&[index]);
        let (scale, zero) = (value(&self.scale) as f32, value(&self.zero) as f32);
        (value(&self.words), move |w: f64| (w as f32 - zero) * scale)
    }
}

/// Range supervision on a node's output (Ranger and Clipper, Chen et al.
/// 2021; Geissler et al. 2021), applied as the node runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guard {
    /// How out-of-range values are handled.
    pub kind: GuardKind,
    /// Lower bound of the accepted range.
    pub min: f32,
    /// Upper bound of the accepted range.
    pub max: f32,
}

/// How a [`Guard`] treats values outside its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardKind {
    /// Clamp to [min, max]; NaN stays NaN.
    Ranger,
    /// Set values outside [min, max], and NaN, to zero.
    Clipper,
}

impl Guard {
    /// Applies the guard to a node's output.
    pub fn apply(&self, t: &Tensor) -> std::result::Result<Tensor, tch::TchError> {
        let (min, max) = (f64::from(self.min), f64::from(self.max));
        match self.kind {
            GuardKind::Ranger => t.f_clamp(min, max),
            GuardKind::Clipper => {
                let outside = t
                    .f_lt(min)?
                    .f_logical_or(&t.f_gt(max)?)?
                    .f_logical_or(&t.f_isnan()?)?;
                t.f_masked_fill(&outside, 0.0)
            }
        }
    }
}

impl Node {
    /// Whether input `pos`, a constant of element type `kind`, is a weight
    /// faults may strike: a float input of Conv, Gemm or MatMul, or an
    /// integer word input of a quantized op ([`Op::word_inputs`]).
    pub fn is_weight(&self, pos: usize, kind: tch::Kind) -> bool {
        match self.op.weights() {
            Some(_) => is_float(kind),
            None => self.op.word_inputs().contains(&pos) && is_word(kind),
        }
    }
}

impl Graph {
    /// The constant tensor behind `id`, if it is one.
    pub fn constant(&self, id: ValueId) -> Option<&Tensor> {
        match &self.values[id].source {
            Source::Constant(t) => Some(t),
            _ => None,
        }
    }

    /// Node that produces `id`, if any.
    pub fn producer(&self, id: ValueId) -> Option<usize> {
        match self.values[id].source {
            Source::Node { node, .. } => Some(node),
            _ => None,
        }
    }

    /// Moves every constant to `device` (for CUDA runs).
    pub fn to_device(&mut self, device: tch::Device) {
        for v in &mut self.values {
            if let Source::Constant(t) = &mut v.source {
                *t = t.to_device(device);
            }
        }
    }
}
