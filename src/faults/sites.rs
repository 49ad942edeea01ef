//! Fault sites (pipeline step 4): where a fault can strike in a loaded model.
//! In: a [`Graph`]. Out: [`Sites`], per node its neuron tensor (the first
//! output, per sample, when it is a float tensor with a batch dimension, or
//! the integer output of a quantized op) and its weight tensors (float
//! initializers read by Conv, Gemm and MatMul, input 2 of Conv and Gemm the
//! bias; integer initializers read by the quantized ops), with shapes and
//! types; and [`Candidate`]s, the eligible element boxes of one layer for
//! one target.

use std::fmt;

use serde::{Deserialize, Serialize};
use tch::Kind;

use crate::error::Result;
use crate::graph::Graph;
use crate::inspect;

/// What a fault strikes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// An element of a node's output (an activation), per sample.
    #[default]
    Neuron,
    /// An element of an initializer read by Conv, Gemm or MatMul.
    Weight,
}

impl Target {
    /// The target's name in scenarios and fault lists.
    pub fn name(self) -> &'static str {
        match self {
            Target::Neuron => "neuron",
            Target::Weight => "weight",
        }
    }

    /// Parses a target's name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "neuron" => Some(Target::Neuron),
            "weight" => Some(Target::Weight),
            _ => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A tensor a fault can strike and its shape (per sample for neurons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSite {
    /// The tensor's value name in the graph.
    pub name: String,
    /// Its shape (per sample for neurons).
    pub shape: Vec<u64>,
    /// Input 2 of a Conv or Gemm, or the int32 bias of a quantized op.
    pub bias: bool,
    /// The element type of the tensor the node reads or writes.
    pub kind: Kind,
    /// The type of the words a native fault changes: `kind`, or the integer
    /// type of the initializer a DequantizeLinear made the weight from.
    pub word: Kind,
}

impl TensorSite {
    /// Number of elements.
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// One node of the model with its fault sites.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Index of the node in topological order.
    pub node: usize,
    /// The node's name.
    pub name: String,
    /// The node's op, as named in ONNX.
    pub op: String,
    /// The node's output, when faults may strike it.
    pub neuron: Option<TensorSite>,
    /// The weights the node reads (biases included).
    pub weights: Vec<TensorSite>,
}

impl Layer {
    /// The tensors of `target`, without biases unless `bias`.
    pub fn tensors(&self, target: Target, bias: bool) -> Vec<&TensorSite> {
        match target {
            Target::Neuron => self.neuron.iter().collect(),
            Target::Weight => self.weights.iter().filter(|w| bias || !w.bias).collect(),
        }
    }

    /// The tensor named `name` for `target` (biases included).
    pub fn tensor(&self, target: Target, name: &str) -> Option<&TensorSite> {
        self.tensors(target, true)
            .into_iter()
            .find(|t| t.name == name)
    }
}

/// Every node of a model with its fault sites, in topological order.
#[derive(Debug, Clone)]
pub struct Sites {
    /// The model file the sites were found in.
    pub model: std::path::PathBuf,
    /// Every node with its fault sites.
    pub layers: Vec<Layer>,
}

impl Sites {
    /// Shapes come from [`inspect::inspect`] (one pass on zeros).
    pub fn from_graph(graph: &Graph) -> Result<Sites> {
        let info = inspect::inspect(graph)?;
        let layers = graph
            .nodes
            .iter()
            .zip(&info.nodes)
            .map(|(node, ni)| {
                let neuron = ni
                    .outputs
                    .first()
                    .filter(|o| o.per_sample)
                    .map(|o| TensorSite {
                        name: o.name.clone(),
                        shape: o.shape.iter().map(|&d| d.max(0) as u64).collect(),
                        bias: false,
                        kind: o.kind,
                        word: o.kind,
                    });
                Layer {
                    node: node.index,
                    name: node.name.clone(),
                    op: node.op.to_string(),
                    neuron,
                    weights: weight_sites(graph, node),
                }
            })
            .collect();
        Ok(Sites {
            model: graph.path.clone(),
            layers,
        })
    }

    /// The layer with node name `name`.
    pub fn find(&self, name: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.name == name)
    }
}

/// The weights of `node` ([`crate::graph::Node::is_weight`]); an int32
/// word of a quantized op is its bias.
fn weight_sites(graph: &Graph, node: &crate::graph::Node) -> Vec<TensorSite> {
    let bias_input = node.op.weights().and_then(|w| w.bias_input());
    node.inputs
        .iter()
        .enumerate()
        .filter_map(|(pos, id)| {
            let id = (*id)?;
            let t = graph.constant(id)?;
            let kind = t.kind();
            node.is_weight(pos, kind).then(|| TensorSite {
                name: graph.values[id].name.clone(),
                shape: t.size().iter().map(|&d| d.max(0) as u64).collect(),
                bias: bias_input == Some(pos) || (node.op.weights().is_none() && kind == Kind::Int),
                kind,
                word: graph.words.get(&id).map_or(kind, |w| w.words.kind()),
            })
        })
        .collect()
}

/// A box `start..end` (per dimension, end exclusive) inside one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// The tensor's value name.
    pub tensor: String,
    /// The tensor's full shape.
    pub shape: Vec<u64>,
    /// First index of the box, per dimension.
    pub start: Vec<u64>,
    /// End of the box (exclusive), per dimension.
    pub end: Vec<u64>,
}

impl Region {
    /// The whole tensor.
    pub fn whole(t: &TensorSite) -> Region {
        Region {
            tensor: t.name.clone(),
            shape: t.shape.clone(),
            start: vec![0; t.shape.len()],
            end: t.shape.clone(),
        }
    }

    /// Number of elements in the box.
    pub fn elements(&self) -> u64 {
        self.start
            .iter()
            .zip(&self.end)
            .map(|(s, e)| e.saturating_sub(*s))
            .product()
    }

    /// The `i`-th element of the box in row-major order.
    pub fn coord(&self, mut i: u64) -> Vec<u32> {
        let mut c = vec![0u32; self.start.len()];
        for d in (0..c.len()).rev() {
            let extent = self.end[d] - self.start[d];
            c[d] = (self.start[d] + i % extent) as u32;
            i /= extent;
        }
        c
    }
}

/// One layer and target with the element boxes a fault may strike.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Index of the layer's node.
    pub node: usize,
    /// The layer's name.
    pub layer: String,
    /// The layer's op, as named in ONNX.
    pub op: String,
    /// What the faults strike: outputs or weights.
    pub target: Target,
    /// The boxes faults may strike, in order.
    pub regions: Vec<Region>,
    /// Cumulative element counts of `regions`.
    cum: Vec<u64>,
}

impl Candidate {
    /// The candidate for `layer` and `target` over `regions`.
    pub fn new(layer: &Layer, target: Target, regions: Vec<Region>) -> Candidate {
        let cum = regions
            .iter()
            .scan(0u64, |acc, r| {
                *acc = acc.saturating_add(r.elements());
                Some(*acc)
            })
            .collect();
        Candidate {
            node: layer.node,
            layer: layer.name.clone(),
            op: layer.op.clone(),
            target,
            regions,
            cum,
        }
    }

    /// Eligible elements over all regions.
    pub fn elements(&self) -> u64 {
        self.cum.last().copied().unwrap_or(0)
    }

    /// The `i`-th eligible element: its tensor name and coordinate.
    pub fn element(&self, i: u64) -> (&str, Vec<u32>) {
        let r = self
            .cum
            .partition_point(|&c| c <= i)
            .min(self.regions.len() - 1);
        let before = if r == 0 { 0 } else { self.cum[r - 1] };
        let region = &self.regions[r];
        (&region.tensor, region.coord(i - before))
    }
}
