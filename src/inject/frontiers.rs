//! Where the engine gets the fault-free frontier of a cut for some samples:
//! from the cache (the fast path), or by running the prefix from the input
//! (no cache, and the reference for `--verify`).
//!
//! Reading is not always the fast path: a large early frontier costs more
//! to decompress and copy than its short prefix costs to run, and on a small
//! model any read costs more than a convolution or two. So the cached
//! frontiers decide per cut, by timing both on the first sample
//! ([`CachedFrontiers::choose`]): each cut is read from its entry, or
//! recomputed from an earlier frontier (or the model input), whichever is
//! faster. A cut is only recomputed where that gives the cached bits
//! exactly, so the choice never changes an outcome.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use tch::Tensor;

use crate::cache::Reader;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::phases::{timed, Phase};
use crate::split;

/// Recompute a cut only when that measured at most this share of reading
/// it, so timing noise does not flip close calls.
const RECOMPUTE_SHARE: f64 = 0.8;

/// A source of golden frontiers: the values live at a cut, per sample.
pub trait Frontiers: Sync {
    /// The frontier of `cut` for `samples` (positions in the data set,
    /// ascending): one tensor per frontier value, one row per sample.
    fn rows(&self, graph: &Graph, cut: usize, samples: &[usize]) -> Result<Vec<Tensor>>;
}

/// Frontiers from cache entries, one per cut, some of them recomputed
/// instead (see the module's doc).
pub struct CachedFrontiers<'a> {
    entries: HashMap<usize, Reader>,
    /// The model inputs, the root of cuts recomputed from cut 0.
    data: Option<&'a Dataset>,
    /// Recomputed cuts, each with the cut it runs from: one read from its
    /// entry, or cut 0 from the data set.
    sources: BTreeMap<usize, usize>,
}

impl<'a> CachedFrontiers<'a> {
    /// Every cut read from its entry.
    pub fn read(entries: HashMap<usize, Reader>) -> Self {
        CachedFrontiers {
            entries,
            data: None,
            sources: BTreeMap::new(),
        }
    }

    /// The cuts of `sources` recomputed from the cut they map to (an entry,
    /// or 0 for the model input), the others read. Every source must lie
    /// before its cut; the caller vouches for the bits (see
    /// [`CachedFrontiers::choose`]).
    pub fn new(
        entries: HashMap<usize, Reader>,
        data: &'a Dataset,
        sources: BTreeMap<usize, usize>,
    ) -> Result<Self> {
        for (&cut, &from) in &sources {
            let backwards = from > cut || (from == cut && cut > 0);
            if backwards || !(from == 0 || entries.contains_key(&from)) {
                return Err(Error::Cut {
                    cut,
                    msg: format!("cannot recompute it from cut {from}"),
                });
            }
        }
        Ok(CachedFrontiers {
            entries,
            data: Some(data),
            sources,
        })
    }

    /// Each cut with an entry read or recomputed, whichever is faster for
    /// the first sample of `data`: recomputed when that takes at most
    /// `RECOMPUTE_SHARE` of the read. The cuts of `planned` have no
    /// entry: each is recomputed from the cut it maps to (the cache's cut
    /// plan found those bits the stored ones).
    pub fn choose(
        graph: &Graph,
        entries: HashMap<usize, Reader>,
        planned: &BTreeMap<usize, usize>,
        data: &'a Dataset,
    ) -> Result<Self> {
        let chosen = Self::choose_by(graph, entries, data, |read, recompute| {
            recompute <= RECOMPUTE_SHARE * read
        })?;
        let mut sources = chosen.sources;
        sources.extend(planned);
        Self::new(chosen.entries, data, sources)
    }

    /// Walks the cuts in order, timing for the first sample the read of
    /// each cut and the run from the previous cut's cheapest frontier. A cut
    /// is recomputed (from that frontier's root) when `recompute(read secs,
    /// recompute secs)` says so and the result equals the cached row bit
    /// for bit. The reads decompress the entries' first chunks, which the
    /// engine would decompress anyway. A recompute that fails is not taken
    /// (the cut is read); a read that fails is an error.
    pub fn choose_by(
        graph: &Graph,
        entries: HashMap<usize, Reader>,
        data: &'a Dataset,
        recompute: impl Fn(f64, f64) -> bool,
    ) -> Result<Self> {
        let mut sources = BTreeMap::new();
        let mut cuts: Vec<usize> = entries.keys().copied().collect();
        cuts.sort_unstable();
        let mut best = match data.is_empty() {
            true => None,
            false => clocked(|| input_rows(graph, data, &[0]))
                .ok()
                .map(|(secs, values)| Cheapest::new(0, 0, secs, values)),
        };
        for cut in cuts {
            let (secs, values) = read_secs(&entries[&cut])?;
            let mut choice = Cheapest::new(cut, cut, secs, values);
            let trial = best.filter(|p| p.cut < cut).and_then(|p| {
                Some((
                    clocked(|| split::between(graph, p.cut, cut, &p.values)).ok()?,
                    p,
                ))
            });
            if let Some(((step, values), prev)) = trial {
                let secs = prev.secs + step;
                if recompute(choice.secs, secs) && same_bits(&values, &choice.values) {
                    sources.insert(cut, prev.root);
                    choice = Cheapest::new(cut, prev.root, secs, values);
                }
            }
            best = Some(choice);
        }
        Self::new(entries, data, sources)
    }

    /// The recomputed cuts, each with the cut it runs from.
    pub fn recomputed(&self) -> &BTreeMap<usize, usize> {
        &self.sources
    }

    fn read_entry(&self, cut: usize, samples: &[usize]) -> Result<Vec<Tensor>> {
        let entry = self.entries.get(&cut).ok_or_else(|| Error::Cut {
            cut,
            msg: "no cache entry for this cut".into(),
        })?;
        timed(Phase::Reading, || entry.read_rows(samples))
    }
}

impl Frontiers for CachedFrontiers<'_> {
    /// A recomputed cut runs all `samples` as one batch, as the no-cache
    /// way does: the kernels the engine relies on give a row the same bits
    /// in any batch.
    fn rows(&self, graph: &Graph, cut: usize, samples: &[usize]) -> Result<Vec<Tensor>> {
        let (Some(&from), Some(data)) = (self.sources.get(&cut), self.data) else {
            return self.read_entry(cut, samples);
        };
        if !self.entries.contains_key(&from) {
            return ComputedFrontiers { data }.rows(graph, cut, samples);
        }
        let start = self.read_entry(from, samples)?;
        timed(Phase::Recomputing, || {
            split::between(graph, from, cut, &start)
        })
    }
}

/// The cheapest known way to the frontier of a cut.
struct Cheapest {
    cut: usize,
    /// Where that way starts: the cut read, or 0 for the model input.
    root: usize,
    secs: f64,
    /// The first sample's frontier, as that way gives it.
    values: Vec<Tensor>,
}

impl Cheapest {
    fn new(cut: usize, root: usize, secs: f64, values: Vec<Tensor>) -> Self {
        Cheapest {
            cut,
            root,
            secs,
            values,
        }
    }
}

/// Seconds per sample to read `entry`, and the first sample's row: the
/// first read of a chunk decompresses it for all the samples it holds.
fn read_secs(entry: &Reader) -> Result<(f64, Vec<Tensor>)> {
    let (secs, values) = clocked(|| entry.read_rows(&[0]))?;
    let sharing = entry.header.chunk_samples.min(entry.header.samples).max(1);
    Ok((secs / sharing as f64, values))
}

/// The seconds `f` takes, and its result.
fn clocked<T>(f: impl FnOnce() -> Result<T>) -> Result<(f64, T)> {
    let t = Instant::now();
    let value = f()?;
    Ok((t.elapsed().as_secs_f64(), value))
}

fn same_bits(a: &[Tensor], b: &[Tensor]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equal(y))
}

/// The frontier of cut 0 (the model inputs) for `samples`.
fn input_rows(graph: &Graph, data: &Dataset, samples: &[usize]) -> Result<Vec<Tensor>> {
    timed(Phase::Recomputing, || {
        split::prefix(graph, &inputs(data, samples)?, 0)
    })
}

/// The preprocessed inputs of `samples`, one row each.
fn inputs(data: &Dataset, samples: &[usize]) -> Result<Vec<Tensor>> {
    let rows: Vec<Vec<Tensor>> = samples
        .iter()
        .map(|&s| data.batch(s..s + 1).map(|b| b.inputs))
        .collect::<Result<_>>()?;
    Ok(stack(&rows))
}

/// Per input, the rows of `batches` (each one tensor per input) in order.
fn stack(batches: &[Vec<Tensor>]) -> Vec<Tensor> {
    let inputs = batches.first().map_or(0, Vec::len);
    (0..inputs)
        .map(|i| Tensor::cat(&batches.iter().map(|b| &b[i]).collect::<Vec<_>>(), 0))
        .collect()
}

/// Frontiers computed from the data set by running the prefix.
pub struct ComputedFrontiers<'a> {
    /// The data set the prefix runs on.
    pub data: &'a Dataset,
}

impl Frontiers for ComputedFrontiers<'_> {
    fn rows(&self, graph: &Graph, cut: usize, samples: &[usize]) -> Result<Vec<Tensor>> {
        timed(Phase::Recomputing, || {
            split::prefix(graph, &inputs(self.data, samples)?, cut)
        })
    }
}

/// The frontiers of a contiguous part of the data set (a shard's samples,
/// from position `first`), asked for by positions in the whole.
pub struct PartFrontiers<'a> {
    /// Frontiers indexed from the part's first sample.
    pub part: Box<dyn Frontiers + 'a>,
    /// The whole data set's position of the part's first sample.
    pub first: usize,
    /// Samples in the part.
    pub len: usize,
}

impl Frontiers for PartFrontiers<'_> {
    fn rows(&self, graph: &Graph, cut: usize, samples: &[usize]) -> Result<Vec<Tensor>> {
        let local: Vec<usize> = samples
            .iter()
            .map(|&s| {
                s.checked_sub(self.first)
                    .filter(|&l| l < self.len)
                    .ok_or_else(|| Error::Cut {
                        cut,
                        msg: format!(
                            "sample {s} lies outside this part of the data set ({} to {})",
                            self.first,
                            self.first + self.len
                        ),
                    })
            })
            .collect::<Result<_>>()?;
        self.part.rows(graph, cut, &local)
    }
}

/// Model inputs held in memory (a data set's preprocessed once, or any
/// tensor of samples): the frontier of a cut is the prefix run on them.
pub struct InputFrontiers {
    /// One tensor per model input. Locked while rows are picked: a tensor
    /// may not be shared by threads.
    inputs: Mutex<Vec<Tensor>>,
}

impl InputFrontiers {
    /// Frontiers of the model inputs `inputs` (one tensor per input), one
    /// row per sample.
    pub fn new(inputs: Vec<Tensor>) -> Self {
        InputFrontiers {
            inputs: Mutex::new(inputs),
        }
    }

    /// Loads and preprocesses every sample of `data` into memory.
    pub fn load(data: &Dataset) -> Result<Self> {
        let parts: Vec<Vec<Tensor>> = data
            .batches(data.spec.batch_size)
            .map(|b| b.map(|b| b.inputs))
            .collect::<Result<_>>()?;
        Ok(InputFrontiers::new(stack(&parts)))
    }
}

impl Frontiers for InputFrontiers {
    fn rows(&self, graph: &Graph, cut: usize, samples: &[usize]) -> Result<Vec<Tensor>> {
        let idx: Vec<i64> = samples.iter().map(|&s| s as i64).collect();
        let idx = Tensor::from_slice(&idx);
        let x: Vec<Tensor> = (self.inputs.lock().unwrap_or_else(PoisonError::into_inner))
            .iter()
            .map(|t| t.index_select(0, &idx))
            .collect();
        split::prefix(graph, &x, cut)
    }
}
