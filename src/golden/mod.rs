//! Step 3, golden: one fault-free pass over the data set. Per sample it keeps
//! the top-k classes and scores, the label and correctness, and whether the
//! output holds NaN or Inf; per node it profiles the value range; at the
//! requested cuts worth storing it writes the frontier to the cache.
//!
//! Which cuts are worth storing is the cache's cut plan ([`CutPlan`]): a cut
//! is stored when reading it is faster than recomputing it from an earlier
//! stored cut or the input, by costs measured once per model and data set
//! on this machine (`costs`) and kept in the cache. Cuts whose entry is
//! already cached are read, never recomputed, and when every stored cut and
//! the results themselves (top-k, NaN flags and ranges, a few bytes a
//! sample, keyed like the frontiers) are cached, no pass runs at all.

mod costs;
mod files;

pub use costs::frontier_rows;

pub use files::{write_golden_csv, write_ranges_csv};

use std::collections::BTreeMap;
use std::path::PathBuf;

use tch::{Kind, Tensor};

use crate::cache::{self, Costs, CutPlan, Store, ValueLayout, Writer};
use crate::data::{Dataset, Sample};
use crate::error::{Error, Result};
use crate::graph::{is_float, Env, Graph};
use crate::split;

/// The fault-free result for one sample.
#[derive(Debug, Clone)]
pub struct GoldenRow {
    /// The sample (position, source, label).
    pub sample: Sample,
    /// (class, score) pairs, best first.
    pub top: Vec<(i64, f32)>,
    /// Top-1 equals the label (`None` without a label).
    pub correct: Option<bool>,
    /// The output holds NaN or Inf.
    pub nonfinite: bool,
}

/// Min and max over the data set of one node's first output.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRange {
    /// Node index in topological order.
    pub index: usize,
    /// Node name.
    pub node: String,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// The result of a golden run: per-sample outputs, per-node ranges, and the cache entries it filled or reused.
pub struct Golden {
    /// One row per sample, in data-set order.
    pub rows: Vec<GoldenRow>,
    /// The range of every node with a float output.
    pub ranges: Vec<NodeRange>,
    /// The cache entry of each stored cut.
    pub entries: Vec<(usize, PathBuf)>,
    /// The requested cuts not stored, each with the stored cut (or 0, the
    /// input) it is recomputed from.
    pub recomputed: BTreeMap<usize, usize>,
    /// The cut plan with its measured costs (empty without a cache).
    pub plan: CutPlan,
    /// Measured read and recompute costs of the cuts.
    pub costs: Costs,
    /// Cuts whose entry was already cached.
    pub reused: Vec<usize>,
    /// The rows and ranges came from the cache: no pass ran.
    pub results_reused: bool,
}

impl Golden {
    /// Top-1 accuracy over the samples with a label.
    pub fn accuracy(&self) -> Option<f64> {
        let judged: Vec<bool> = self.rows.iter().filter_map(|r| r.correct).collect();
        (!judged.is_empty())
            .then(|| judged.iter().filter(|&&c| c).count() as f64 / judged.len() as f64)
    }
}

/// Options of a golden run.
pub struct GoldenRun<'a> {
    /// The model.
    pub graph: &'a Graph,
    /// The data set.
    pub data: &'a Dataset,
    /// Cuts whose frontiers go to the cache.
    pub cuts: Vec<usize>,
    /// The injections that read each cut: the cut plan then stores only
    /// the cuts worth it (see `cache::plan`). `None`: every cut is stored.
    pub reads: Option<BTreeMap<usize, u64>>,
    /// The cache (`None`: no frontier is stored).
    pub store: Option<&'a Store>,
    /// Classes kept per row, best first.
    pub top_k: usize,
}

/// A cut being filled in this pass.
struct Fill {
    cut: usize,
    key: String,
    ids: Vec<usize>,
    writer: Option<Writer>,
    /// Held until the entry is in place: another process filling the same
    /// entry waits, then reuses it.
    _lock: crate::lock::Lock,
}

impl GoldenRun<'_> {
    /// Runs the pass (or reuses its cached results) and fills the cache.
    pub fn run(&self) -> Result<Golden> {
        let (graph, data) = (self.graph, self.data);
        let mut cuts = self.cuts.clone();
        cuts.sort_unstable();
        cuts.dedup();
        let mut fills = Vec::new();
        let mut entries = Vec::new();
        let mut reused = Vec::new();
        let mut results_key = None;
        let mut recomputed = BTreeMap::new();
        let (mut plan, mut costs) = (CutPlan::default(), Costs::default());
        let mut saved = None;
        if let Some(store) = self.store {
            // A killed fill leaves its temporary; this fill removes it. Best
            // effort: one that cannot be removed must not stop the pass.
            let _ = store.remove_stale();
            let model_hash = model_hash(graph)?;
            let mut h = blake3::Hasher::new();
            data.hash_into(&mut h)?;
            let data_hash = h.finalize();
            let what = format!(
                "golden results: output {}, top {}",
                graph.judged, self.top_k
            );
            results_key = Some(cache::key(&model_hash, &data_hash, usize::MAX, &[what]));
            (plan, costs) = self.plan_with(store, &model_hash, &data_hash, &cuts)?;
            // With the results cached, a new cut would cost a whole pass:
            // a rerun reads what is stored and recomputes the rest, unless
            // a cut cannot be recomputed.
            saved = (store.read_small(results_key.as_ref().expect("just set"), RESULTS)?)
                .and_then(|bytes| self.saved(&bytes));
            let mut stored = std::collections::BTreeSet::new();
            for &cut in &cuts {
                let ids = split::frontier(graph, cut)?;
                let names: Vec<String> =
                    ids.iter().map(|&i| graph.values[i].name.clone()).collect();
                let key = cache::key(&model_hash, &data_hash, cut, &names);
                // Under the entry's lock: a fill by another process ends
                // first, and only the lock's holder removes a corrupt
                // entry. Cuts go in order, so processes lock in one order.
                let lock = store.lock(&key)?;
                if store.open(&key, cut)?.is_some() {
                    entries.push((cut, store.path(&key)));
                    reused.push(cut);
                } else if plan.cuts[&cut].stored && (saved.is_none() || costs.must_store(cut)) {
                    fills.push(Fill {
                        cut,
                        key,
                        ids,
                        writer: None,
                        _lock: lock,
                    });
                } else {
                    continue;
                }
                stored.insert(cut);
            }
            plan = CutPlan::with(&costs, &cuts, &stored);
            recomputed = (plan.cuts.iter())
                .filter(|(_, c)| !c.stored)
                .map(|(&cut, c)| (cut, c.root))
                .collect();
        }
        if let (Some((rows, ranges)), true) = (saved, fills.is_empty()) {
            entries.sort();
            return Ok(Golden {
                rows,
                ranges,
                entries,
                recomputed,
                plan,
                costs,
                reused,
                results_reused: true,
            });
        }
        let mut ranges: Vec<Option<(f64, f64)>> = vec![None; graph.nodes.len()];
        let mut rows = Vec::with_capacity(data.len());
        // A model that computes its rows together sees each sample alone.
        let size = match graph.layout.couples_rows() {
            true => 1,
            false => data.spec.batch_size,
        };
        for batch in data.batches(size) {
            let batch = batch?;
            let mut env = (graph.start(&batch.inputs)).map_err(|e| data.explain(e))?;
            let mut at = 0;
            for fill in &mut fills {
                self.run_profiled(&mut env, at..fill.cut, &mut ranges)?;
                at = fill.cut;
                let values = frontier_rows(graph, &env, fill.cut, batch.samples.len())?;
                if fill.writer.is_none() {
                    fill.writer = Some(self.writer(fill, &values)?);
                }
                fill.writer
                    .as_mut()
                    .expect("writer was just created")
                    .push(&values)?;
            }
            self.run_profiled(&mut env, at..graph.nodes.len(), &mut ranges)?;
            let outputs = graph.outputs_of(&env)?;
            rows.extend(golden_rows(
                &outputs[graph.judged],
                batch.samples,
                self.top_k,
            )?);
        }
        for fill in fills {
            if let Some(w) = fill.writer {
                entries.push((fill.cut, w.finish()?));
            }
        }
        if let Some(store) = self.store {
            let keep: Vec<PathBuf> = entries.iter().map(|e| e.1.clone()).collect();
            store.evict(&keep)?;
        }
        entries.sort();
        let ranges: Vec<NodeRange> = graph
            .nodes
            .iter()
            .zip(ranges)
            .filter_map(|(n, r)| {
                r.map(|(min, max)| NodeRange {
                    index: n.index,
                    node: n.name.clone(),
                    min,
                    max,
                })
            })
            .collect();
        if let (Some(store), Some(key)) = (self.store, &results_key) {
            let saved = Saved {
                rows: rows.iter().map(|r| (r.top.clone(), r.nonfinite)).collect(),
                ranges: ranges.iter().map(|r| (r.index, r.min, r.max)).collect(),
            };
            let bytes = bincode::serialize(&saved).expect("golden results serialize");
            store.write_small(key, RESULTS, &bytes)?;
        }
        Ok(Golden {
            rows,
            ranges,
            entries,
            recomputed,
            plan,
            costs,
            reused,
            results_reused: false,
        })
    }

    /// The golden rows and ranges from their saved form, or `None` if it
    /// does not fit this model and data set (then the pass runs again).
    fn saved(&self, bytes: &[u8]) -> Option<(Vec<GoldenRow>, Vec<NodeRange>)> {
        let saved: Saved = bincode::deserialize(bytes).ok()?;
        let nodes = &self.graph.nodes;
        if saved.rows.len() != self.data.len() || saved.ranges.iter().any(|r| r.0 >= nodes.len()) {
            return None;
        }
        let rows = (saved.rows.into_iter().enumerate())
            .map(|(i, (top, nonfinite))| {
                let sample = self.data.sample(i);
                let correct = sample.label.zip(top.first()).map(|(l, t)| l == t.0);
                GoldenRow {
                    sample,
                    top,
                    correct,
                    nonfinite,
                }
            })
            .collect();
        let ranges = (saved.ranges.into_iter())
            .map(|(index, min, max)| NodeRange {
                index,
                node: nodes[index].name.clone(),
                min,
                max,
            })
            .collect();
        Some((rows, ranges))
    }

    /// The cost model of the requested cuts (measured where the cache
    /// lacks it) and the cut plan it gives, without a golden pass.
    pub fn plan(&self, store: &Store) -> Result<(CutPlan, Costs)> {
        let mut h = blake3::Hasher::new();
        self.data.hash_into(&mut h)?;
        let mut cuts = self.cuts.clone();
        cuts.sort_unstable();
        cuts.dedup();
        self.plan_with(store, &model_hash(self.graph)?, &h.finalize(), &cuts)
    }

    fn plan_with(
        &self,
        store: &Store,
        model_hash: &blake3::Hash,
        data_hash: &blake3::Hash,
        cuts: &[usize],
    ) -> Result<(CutPlan, Costs)> {
        let Some(reads) = self.reads.as_ref().filter(|_| !store.every_cut) else {
            return Ok((CutPlan::every(cuts), Costs::default()));
        };
        let costs = self.costs(store, model_hash, data_hash, cuts)?;
        let samples = self.data.len().max(1);
        let per_sample = (cuts.iter())
            .map(|c| (*c, reads.get(c).map_or(0.0, |&n| n as f64 / samples as f64)))
            .collect();
        let budget = (store.budget_bytes).map(|b| b / samples as u64);
        Ok((costs.plan(&per_sample, budget), costs))
    }

    /// The cost model for `cuts`: kept in the cache, measured where it
    /// lacks a cut (and then kept).
    fn costs(
        &self,
        store: &Store,
        model_hash: &blake3::Hash,
        data_hash: &blake3::Hash,
        cuts: &[usize],
    ) -> Result<Costs> {
        let what = format!("cut costs, zstd level {}", store.zstd_level);
        let key = cache::key(model_hash, data_hash, usize::MAX, &[what]);
        let known: Costs = (store.read_small(&key, COSTS)?)
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        if known.covers(cuts, self.graph.nodes.len()) {
            return Ok(known);
        }
        let batch = self.data.spec.batch_size;
        let costs = costs::measure(self.graph, self.data, cuts, store.zstd_level, batch, known)?;
        let bytes = serde_json::to_vec(&costs).expect("costs serialize");
        store.write_small(&key, COSTS, &bytes)?;
        Ok(costs)
    }

    fn run_profiled(
        &self,
        env: &mut Env,
        nodes: std::ops::Range<usize>,
        ranges: &mut [Option<(f64, f64)>],
    ) -> Result<()> {
        self.graph.run_observed(nodes, env, |node, outs| {
            let Some(t) = outs.first().filter(|t| is_float(t.kind()) && t.numel() > 0) else {
                return;
            };
            let (lo, hi) = (t.min().double_value(&[]), t.max().double_value(&[]));
            let r = ranges[node.index].get_or_insert((lo, hi));
            *r = (r.0.min(lo), r.1.max(hi));
        })
    }

    fn writer(&self, fill: &Fill, values: &[Tensor]) -> Result<Writer> {
        let store = self.store.expect("fills exist only with a store");
        let layouts = fill
            .ids
            .iter()
            .zip(values)
            .map(|(&id, t)| {
                let kind = ValueLayout::kind_name(t.kind()).ok_or_else(|| Error::Cut {
                    cut: fill.cut,
                    msg: format!(
                        "value '{}' has kind {:?}, which the cache cannot store",
                        self.graph.values[id].name,
                        t.kind()
                    ),
                })?;
                Ok(ValueLayout {
                    name: self.graph.values[id].name.clone(),
                    kind: kind.into(),
                    shape: t.size()[1..].to_vec(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let header = cache::Header {
            key: fill.key.clone(),
            model: self.graph.path.display().to_string(),
            data: self.data.spec.path.display().to_string(),
            cut: fill.cut,
            values: layouts,
            samples: self.data.len(),
            chunk_samples: chunk_samples(values),
            zstd_level: store.zstd_level,
        };
        Writer::create(&store.path(&fill.key), header)
    }
}

/// The extension of the cached golden results beside the frontiers.
const RESULTS: &str = "golden";

/// The extension of the cached cost model.
const COSTS: &str = "costs";

/// Golden results as cached: per sample its top-k and NaN flag, per node
/// its range.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    rows: Vec<(Vec<(i64, f32)>, bool)>,
    ranges: Vec<(usize, f64, f64)>,
}

/// Samples per chunk: about 4 MiB of raw data, at least one sample.
fn chunk_samples(values: &[Tensor]) -> usize {
    let per_sample: i64 = values
        .iter()
        .map(|t| t.numel() as i64 / t.size()[0].max(1) * t.kind().elt_size_in_bytes() as i64)
        .sum();
    ((4 << 20) / per_sample.max(1)).clamp(1, 4096) as usize
}

fn golden_rows(output: &Tensor, samples: Vec<Sample>, k: usize) -> Result<Vec<GoldenRow>> {
    let out = output
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .flatten(1, -1);
    let k = k.min(out.size()[1] as usize).max(1);
    let (scores, classes) = out.topk(k as i64, 1, true, true);
    let nonfinite = out.isfinite().logical_not().any_dim(1, false);
    let classes_n = out.size()[1];
    if let Some(s) = samples
        .iter()
        .find(|s| s.label.is_some_and(|l| !(0..classes_n).contains(&l)))
    {
        return Err(Error::Data {
            path: s.source.clone().into(),
            msg: format!(
                "sample {} has label {}, but the model has {classes_n} classes (0..={})",
                s.id,
                s.label.unwrap_or_default(),
                classes_n - 1
            ),
        });
    }
    samples
        .into_iter()
        .enumerate()
        .map(|(i, sample)| {
            let i = i as i64;
            let cls = Vec::<i64>::try_from(classes.get(i)).map_err(|e| Error::Cut {
                cut: 0,
                msg: e.to_string(),
            })?;
            let sc = Vec::<f32>::try_from(scores.get(i)).map_err(|e| Error::Cut {
                cut: 0,
                msg: e.to_string(),
            })?;
            let correct = sample.label.map(|l| l == cls[0]);
            Ok(GoldenRow {
                nonfinite: nonfinite.get(i).int64_value(&[]) != 0,
                top: cls.into_iter().zip(sc).collect(),
                correct,
                sample,
            })
        })
        .collect()
}

/// The model file's hash, with the guards of a hardened variant.
fn model_hash(graph: &Graph) -> Result<blake3::Hash> {
    let file = hash_file(&graph.path)?;
    if graph.guards.is_empty() {
        return Ok(file);
    }
    let mut h = blake3::Hasher::new();
    h.update(file.as_bytes());
    h.update(format!("{:?}", graph.guards).as_bytes());
    Ok(h.finalize())
}

fn hash_file(path: &std::path::Path) -> Result<blake3::Hash> {
    let mut h = blake3::Hasher::new();
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, e))?;
    Ok(h.finalize())
}
