//! Fault sites (pipeline step 4): where a fault can strike in a loaded model.
//! In: a [`Graph`]. Out: [`Sites`], per node its neuron tensor (the first
//! output, per sample, when it is a float tensor with a batch dimension) and
//! its weight tensors (float initializers read by Conv, Gemm and MatMul;
//! input 2 of Conv and Gemm is the bias), with shapes; and [`Candidate`]s,
//! the eligible element boxes of one layer for one target.

use std::fmt;

use serde::{Deserialize, Serialize};

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
    pub fn name(self) -> &'static str {
        match self {
            Target::Neuron => "neuron",
            Target::Weight => "weight",
        }
    }

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
    pub name: String,
    pub shape: Vec<u64>,
    /// Input 2 of a Conv or Gemm.
    pub bias: bool,
}

impl TensorSite {
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// One node of the model with its fault sites.
#[derive(Debug, Clone)]
pub struct Layer {
    pub node: usize,
    pub name: String,
    pub op: String,
    pub neuron: Option<TensorSite>,
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
    pub model: std::path::PathBuf,
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

fn weight_sites(graph: &Graph, node: &crate::graph::Node) -> Vec<TensorSite> {
    let Some(weights) = node.op.weights() else {
        return vec![];
    };
    node.inputs
        .iter()
        .enumerate()
        .filter_map(|(pos, id)| {
            let id = (*id)?;
            let t = graph.constant(id)?;
            t.is_floating_point().then(|| TensorSite {
                name: graph.values[id].name.clone(),
                shape: t.size().iter().map(|&d| d.max(0) as u64).collect(),
                bias: weights.bias_input() == Some(pos),
            })
        })
        .collect()
}

/// A box `start..end` (per dimension, end exclusive) inside one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub tensor: String,
    pub shape: Vec<u64>,
    pub start: Vec<u64>,
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
    pub node: usize,
    pub layer: String,
    pub op: String,
    pub target: Target,
    pub regions: Vec<Region>,
    /// Cumulative element counts of `regions`.
    cum: Vec<u64>,
}

impl Candidate {
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
