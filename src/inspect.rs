//! `faultsweep inspect`: what a model holds and where it can be cut. Shapes
//! come from a first pass on zeros (batch 1, or the model's fixed batch);
//! values whose leading dimension is the batch are per-sample and injectable.

use serde::Serialize;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::graph::{is_float, is_word, Graph, Node, Op, ValueId, Weights};
use crate::split;

/// A model's summary: its inputs, outputs, nodes and cuts.
#[derive(Debug, Serialize)]
pub struct ModelInfo {
    /// The model file.
    pub path: String,
    /// The model's default-domain opset version.
    pub opset: i64,
    /// The batch size of the shape pass (1, or the model's fixed batch).
    pub batch: i64,
    /// The graph inputs.
    pub inputs: Vec<ValueShape>,
    /// The graph outputs.
    pub outputs: Vec<ValueShape>,
    /// Every node, in topological order.
    pub nodes: Vec<NodeInfo>,
    /// Every cut, with the values crossing it.
    pub cuts: Vec<CutInfo>,
    /// Elements of all constant inputs.
    pub params: i64,
    /// Multiply-accumulates per sample, over all nodes.
    pub macs: i64,
}

/// A value's name and shape.
#[derive(Debug, Serialize)]
pub struct ValueShape {
    /// The value's name in the graph.
    pub name: String,
    /// Shape of one sample (batch dimension removed) or the whole shape when
    /// the value is not per-sample.
    pub shape: Vec<i64>,
    /// Whether the leading dimension is the batch.
    pub per_sample: bool,
    /// The element type.
    #[serde(skip)]
    pub kind: Kind,
}

/// One node's summary.
#[derive(Debug, Serialize)]
pub struct NodeInfo {
    /// Position in topological order.
    pub index: usize,
    /// The node's name.
    pub name: String,
    /// The node's op, as named in ONNX.
    pub op: String,
    /// The node's outputs.
    pub outputs: Vec<ValueShape>,
    /// Elements of the constant inputs (weights, biases, shapes...).
    pub params: i64,
    /// Multiply-accumulates per sample (Conv, Gemm, MatMul and their
    /// quantized forms).
    pub macs: i64,
    /// Whether the first output is a per-sample float tensor (a neuron target).
    pub injectable: bool,
    /// Float initializers a weight fault can target (Conv, Gemm, MatMul).
    pub weights: Vec<String>,
}

/// A cut: where the model can be split, after its first `cut` nodes.
#[derive(Debug, Serialize)]
pub struct CutInfo {
    /// Number of nodes run before the cut.
    pub cut: usize,
    /// Names of the values crossing the cut.
    pub values: Vec<String>,
    /// Elements per sample crossing the cut.
    pub elements: i64,
}

/// Most bytes of one zero input `inspect` allocates: far above any image
/// or sequence model's input, far below what makes libtorch abort.
pub const MAX_INPUT_BYTES: i64 = 1 << 32;

/// A zero batch matching the declared inputs, with `batch` for a symbolic
/// leading dimension.
pub fn sample_inputs(graph: &Graph, batch: i64) -> Result<Vec<Tensor>> {
    graph
        .inputs
        .iter()
        .map(|spec| {
            let bad = |msg: String| Error::Input {
                path: graph.path.clone(),
                input: spec.name.clone(),
                msg,
            };
            let shape = declared_shape(spec, batch).map_err(bad)?;
            Tensor::f_zeros(shape.as_slice(), (spec.kind, tch::Device::Cpu))
                .map_err(|e| bad(format!("a zero input of shape {shape:?}: {e}")))
        })
        .collect()
}

/// The declared shape of `spec` with `batch` for a symbolic leading
/// dimension, when its float32 bytes are at most [`MAX_INPUT_BYTES`].
fn declared_shape(
    spec: &crate::graph::InputSpec,
    batch: i64,
) -> std::result::Result<Vec<i64>, String> {
    let dims = spec
        .dims
        .as_ref()
        .ok_or("the model declares no shape for it")?;
    let mut shape = Vec::with_capacity(dims.len());
    for (i, d) in dims.iter().enumerate() {
        match (d, i) {
            (Some(d), _) => shape.push(*d),
            (None, 0) => shape.push(batch),
            (None, _) => {
                return Err("a symbolic dimension other than the batch needs a real input".into())
            }
        }
    }
    let bytes = shape.iter().try_fold(4i64, |acc, &d| acc.checked_mul(d));
    match bytes {
        Some(b) if b <= MAX_INPUT_BYTES => Ok(shape),
        _ => Err(format!(
            "the declared shape {shape:?} needs {} bytes of float32 for one batch, more than the {MAX_INPUT_BYTES} a zero input may take",
            bytes.map_or("over 2^63".to_string(), |b| b.to_string())
        )),
    }
}

/// Summarises `graph` for `faultsweep inspect`, with a first pass on zeros.
pub fn inspect(graph: &Graph) -> Result<ModelInfo> {
    let inputs = sample_inputs(graph, 1)?;
    let batch = inputs
        .first()
        .and_then(|t| t.size().first().copied())
        .unwrap_or(1);
    let mut shapes: Vec<Option<(Vec<i64>, Kind)>> = vec![None; graph.values.len()];
    for (&id, t) in graph.input_values.iter().zip(&inputs) {
        shapes[id] = Some((t.size(), t.kind()));
    }
    // Where each value holds its rows (a no-op once a campaign learned it).
    graph.learn_layout(&inputs)?;
    let mut env = graph.start(&inputs)?;
    graph.run_observed(0..graph.nodes.len(), &mut env, |node, outs| {
        for (&id, t) in node.outputs.iter().zip(outs) {
            shapes[id] = Some((t.size(), t.kind()));
        }
    })?;
    let shape_of = |id: ValueId| value_shape(graph, id, shapes[id].as_ref(), batch);
    let nodes: Vec<NodeInfo> = graph
        .nodes
        .iter()
        .map(|n| node_info(graph, n, &shape_of))
        .collect();
    let cuts = (0..=graph.nodes.len())
        .map(|cut| {
            let ids = split::frontier(graph, cut)?;
            let elements = ids
                .iter()
                .map(|&id| shape_of(id).shape.iter().product::<i64>())
                .sum();
            let values = ids
                .iter()
                .map(|&id| graph.values[id].name.clone())
                .collect();
            Ok(CutInfo {
                cut,
                values,
                elements,
            })
        })
        .collect::<Result<_>>()?;
    Ok(ModelInfo {
        path: graph.path.display().to_string(),
        opset: graph.opset,
        batch,
        inputs: graph.input_values.iter().map(|&id| shape_of(id)).collect(),
        outputs: graph.outputs.iter().map(|&id| shape_of(id)).collect(),
        params: nodes.iter().map(|n| n.params).sum(),
        macs: nodes.iter().map(|n| n.macs).sum(),
        nodes,
        cuts,
    })
}

fn value_shape(
    graph: &Graph,
    id: ValueId,
    seen: Option<&(Vec<i64>, Kind)>,
    batch: i64,
) -> ValueShape {
    let name = graph.values[id].name.clone();
    let (size, kind) = match (seen, graph.constant(id)) {
        (Some((s, k)), _) => (s.clone(), *k),
        (None, Some(t)) => (t.size(), t.kind()),
        (None, None) => (vec![], Kind::Float),
    };
    // Integer values are indices and shapes, but for the words quantized
    // ops write.
    let words = graph
        .producer(id)
        .is_some_and(|n| graph.nodes[n].op.is_quantized() && graph.nodes[n].outputs[0] == id);
    let sample = (graph.is_computed(id) && (is_float(kind) || words && is_word(kind)))
        .then(|| graph.layout.sample_shape(id, &size, batch))
        .flatten();
    let per_sample = sample.is_some();
    let shape = sample.unwrap_or(size);
    ValueShape {
        name,
        shape,
        per_sample,
        kind,
    }
}

fn node_info(graph: &Graph, node: &Node, shape_of: &dyn Fn(ValueId) -> ValueShape) -> NodeInfo {
    let outputs: Vec<ValueShape> = node.outputs.iter().map(|&id| shape_of(id)).collect();
    let constants: Vec<(ValueId, &Tensor)> = node
        .inputs
        .iter()
        .flatten()
        .filter_map(|&id| graph.constant(id).map(|t| (id, t)))
        .collect();
    let params = constants.iter().map(|(_, t)| t.numel() as i64).sum();
    let weights = (node.inputs.iter().enumerate())
        .filter_map(|(pos, id)| Some((pos, (*id)?)))
        .filter(|&(pos, id)| {
            graph
                .constant(id)
                .is_some_and(|t| node.is_weight(pos, t.kind()))
        })
        .map(|(_, id)| graph.values[id].name.clone())
        .collect();
    let out_elems: i64 = outputs.first().map_or(0, |o| o.shape.iter().product());
    let macs = match multiplied(node) {
        Some((kind, w)) => kind.macs(node, &shape_of(w).shape, out_elems),
        None => 0,
    };
    let injectable = outputs.first().is_some_and(|o| o.per_sample);
    NodeInfo {
        index: node.index,
        name: node.name.clone(),
        op: node.op.to_string(),
        outputs,
        params,
        macs,
        injectable,
        weights,
    }
}

/// How `node` multiplies and adds, and the value it multiplies its input
/// by (the filters or the matrix): the float ops' weights, and the
/// quantized ops' (input 3 of the QLinear ops).
fn multiplied(node: &Node) -> Option<(Weights, ValueId)> {
    let (kind, input) = match node.op {
        Op::ConvInteger => (Weights::Filters, 1),
        Op::QLinearConv => (Weights::Filters, 3),
        Op::MatMulInteger => (Weights::Matrix, 1),
        Op::QLinearMatMul => (Weights::Matrix, 3),
        op => (op.weights()?, 1),
    };
    Some((kind, node.inputs.get(input).copied().flatten()?))
}
