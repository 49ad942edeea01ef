//! What the engine is given and gives back: an [`Injection`] (faults on one
//! inference of one sample, each a [`NodeFault`] at a node), and its
//! [`InjectionResult`] (the values at its fault sites, its outputs, how it
//! ended).

use std::sync::Arc;

use tch::Tensor;

use crate::classify::{Outcome, OutputDiff};
use crate::graph::Graph;

/// Maps an original value to its faulty one.
/// Values are f64 so that an int32 word is exact; a float's is its f32
/// value widened.
pub type Corrupt = Arc<dyn Fn(f64) -> f64 + Send + Sync>;

/// Where in a node a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultSite {
    /// Flat index into one sample's first output of the node (a neuron).
    Neuron {
        /// Flat index of the element.
        index: i64,
    },
    /// Flat index into the node's input `input`, a weight (initializer).
    Weight {
        /// Which input of the node.
        input: usize,
        /// Flat index of the element.
        index: i64,
    },
}

/// One fault of an injection as the engine applies it: a node (by index),
/// the element it strikes there, and what it does to the value. (A fault
/// list's row, [`crate::faults::Fault`], names its site; the campaign
/// resolves it into this.)
#[derive(Clone)]
pub struct NodeFault {
    /// Topological index of the node.
    pub node: usize,
    /// The element the fault strikes.
    pub site: FaultSite,
    /// What the fault does to the value.
    pub corrupt: Corrupt,
}

impl NodeFault {
    /// A fault on element `index` of the output of node `node`.
    pub fn neuron(node: usize, index: i64, corrupt: Corrupt) -> Self {
        NodeFault {
            node,
            site: FaultSite::Neuron { index },
            corrupt,
        }
    }

    /// A fault on element `index` of input `input` (a weight) of node `node`.
    pub fn weight(node: usize, input: usize, index: i64, corrupt: Corrupt) -> Self {
        NodeFault {
            node,
            site: FaultSite::Weight { input, index },
            corrupt,
        }
    }
}

/// Faults applied together to one inference of one sample.
#[derive(Clone)]
pub struct Injection {
    /// Unique among the injections given to one `Engine::run`.
    pub id: usize,
    /// Position of the sample in the data set (as the cache stores it).
    pub sample: usize,
    /// The faults, applied together.
    pub faults: Vec<NodeFault>,
}

impl Injection {
    /// The cut the injection resumes from: right after its first faulted
    /// node, or the last cut before it where every value is aligned with
    /// the batch's rows (see [`crate::graph::Layout`]).
    pub fn start_cut(&self, graph: &Graph) -> usize {
        graph.layout.resume_cut(self.fault_cut())
    }

    /// Right after the first faulted node.
    fn fault_cut(&self) -> usize {
        self.faults.iter().map(|f| f.node + 1).min().unwrap_or(0)
    }

    /// The cuts whose cached frontiers the injection reads: its start cut,
    /// and the cut before a weight-faulted first node (that node's input).
    pub fn cuts(&self, graph: &Graph) -> Vec<usize> {
        let start = self.fault_cut();
        let mut cuts = vec![start];
        if self
            .faults
            .iter()
            .any(|f| f.node + 1 == start && matches!(f.site, FaultSite::Weight { .. }))
        {
            cuts.push(start - 1);
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| graph.layout.resume_cut(c)).collect();
        cuts.dedup();
        cuts
    }

    /// The first cut whose frontier the injection reads: its start cut, or
    /// the input of a weight-faulted first node.
    pub fn read_cut(&self, graph: &Graph) -> usize {
        self.cuts(graph).into_iter().min().unwrap_or(0)
    }
}

/// The value at a fault site before and after the fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SiteValues {
    /// The value before the fault (exact in f64 for every element type
    /// faults strike).
    pub original: f64,
    /// The value after the fault, as the tensor holds it.
    pub faulty: f64,
}

impl SiteValues {
    /// A value as CSV writes it: the shortest exponent form of its f32 when
    /// that is exact (every float, small integers), else of the f64.
    pub fn text(v: f64) -> String {
        match f64::from(v as f32) == v {
            true => format!("{:e}", v as f32),
            false => format!("{v:e}"),
        }
    }
}

/// How one injection ended: its fault sites' values, its outputs, any error.
#[derive(Debug)]
pub struct InjectionResult {
    /// The injection's [`Injection::id`].
    pub id: usize,
    /// The injection's [`Injection::sample`].
    pub sample: usize,
    /// One per fault, in the injection's order.
    pub sites: Vec<SiteValues>,
    /// The judged output's golden row (flattened) of the same batch.
    pub golden: Tensor,
    /// The judged output's faulty row (flattened); `None` when the row was
    /// dropped as masked before the end.
    pub output: Option<Tensor>,
    /// How every output of the row differs from golden (empty when dropped).
    pub diff: OutputDiff,
    /// Node after which the row was found identical to golden and dropped.
    pub masked_after: Option<usize>,
    /// First node whose output held NaN or Inf in this row.
    pub first_nonfinite: Option<usize>,
    /// A monitored node (`Graph::monitors`) saw NaN or Inf in this row
    /// (recorded, never an outcome by itself).
    pub detected: bool,
    /// The node from which the row ran as a whole batch row (`None`: it ran
    /// as boxes to the end, or was dropped as masked while it did): what the
    /// engine computed of the model for it.
    pub whole_from: Option<usize>,
    /// A libtorch error while running this injection.
    pub error: Option<String>,
}

impl InjectionResult {
    /// The outcome: `due` on an error, `masked` when dropped, else by the outputs.
    pub fn outcome(&self) -> Outcome {
        match (&self.error, &self.output, self.masked_after) {
            (Some(_), _, _) => Outcome::Due,
            (None, _, Some(_)) => Outcome::Masked,
            (None, Some(out), None) => self.diff.outcome(&self.golden, out),
            (None, None, None) => Outcome::Due,
        }
    }
}
