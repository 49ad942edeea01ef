//! Where the engine gets the fault-free frontier of a cut for some samples:
//! from the cache (the fast path), or by running the prefix from the input
//! (no cache, and the reference for `--verify`).

use std::collections::HashMap;

use tch::Tensor;

use crate::cache::Reader;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::split;

pub trait Frontiers {
    /// The frontier of `cut` for `samples` (positions in the data set,
    /// ascending): one tensor per frontier value, one row per sample.
    fn rows(&self, graph: &Graph, cut: usize, samples: &[usize]) -> Result<Vec<Tensor>>;
}

/// Frontiers read from cache entries, one per cut.
pub struct CachedFrontiers {
    pub entries: HashMap<usize, Reader>,
}

impl Frontiers for CachedFrontiers {
    fn rows(&self, _graph: &Graph, cut: usize, samples: &[usize]) -> Result<Vec<Tensor>> {
        let entry = self.entries.get(&cut).ok_or_else(|| Error::Cut {
            cut,
            msg: "no cache entry for this cut".into(),
        })?;
        entry.read_rows(samples)
    }
}

/// Frontiers computed from the data set by running the prefix.
pub struct ComputedFrontiers<'a> {
    pub data: &'a Dataset,
}

impl Frontiers for ComputedFrontiers<'_> {
    fn rows(&self, graph: &Graph, cut: usize, samples: &[usize]) -> Result<Vec<Tensor>> {
        let inputs: Vec<Tensor> = samples
            .iter()
            .map(|&s| self.data.batch(s..s + 1).map(|b| b.input))
            .collect::<Result<_>>()?;
        split::prefix(graph, &[Tensor::cat(&inputs, 0)], cut)
    }
}
