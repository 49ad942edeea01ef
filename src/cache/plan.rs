//! Which cuts to store: a cost model measured on this machine, and the plan
//! it gives.
//!
//! A run reads, for each sample, the frontier of the earliest cut its
//! faults need. That cut is either read from its entry (decompress and copy
//! its bytes) or recomputed from an earlier stored cut or the model input
//! (read that, run the nodes between). Early cuts of an image model hold
//! large activations that a few cheap nodes produce; late cuts hold small
//! frontiers behind a long prefix. The plan picks the stored cuts that
//! minimize the expected time to reach the cuts a campaign reads, each
//! weighted by how many samples read it, plus the time to write the stored
//! ones: a cut pays for its writing in the run that writes it, so a first
//! run is not slower than one without a cache. With a budget, each stored
//! byte also costs a price, raised until the stored cuts fit (checkpoints,
//! with recomputation between them). The measurements ([`Costs`], per sample:
//! every node's time, each cut's bytes, read and write times) are kept
//! beside the entries, so a rerun plans without measuring again.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// What one cut costs per sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutCost {
    /// Frontier bytes, raw and compressed.
    pub raw_bytes: u64,
    /// Bytes compressed, as stored on disk.
    pub disk_bytes: u64,
    /// Seconds to read the frontier back into tensors.
    pub read_secs: f64,
    /// Seconds to compress it for writing.
    pub write_secs: f64,
    /// Computed for one sample alone, the frontier has the bits the batched
    /// golden pass gives it; a cut without is never recomputed.
    pub same_alone: bool,
}

impl CutCost {
    /// A cut that could not be measured: it is always stored.
    pub fn unknown() -> Self {
        CutCost {
            raw_bytes: 0,
            disk_bytes: 0,
            read_secs: 0.0,
            write_secs: 0.0,
            same_alone: false,
        }
    }
}

/// The measured costs of a model on a data set, per sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    /// Seconds to load and preprocess one sample.
    pub input_secs: f64,
    /// Seconds each node takes on one sample alone.
    pub node_secs: Vec<f64>,
    /// What each cut costs, by cut.
    pub cuts: BTreeMap<usize, CutCost>,
}

/// How the plan reaches one cut.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Read from its entry; otherwise recomputed from `root`.
    pub stored: bool,
    /// The stored cut it runs from (the cut itself when stored), or 0 for
    /// the model input.
    pub root: usize,
    /// Seconds per sample to reach it this way.
    pub secs: f64,
    /// Seconds per sample to recompute it from the nearest stored cut
    /// before it (or the input).
    pub recompute_secs: f64,
}

/// Each requested cut's choice.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CutPlan {
    /// The choice of each cut, by cut.
    pub cuts: BTreeMap<usize, Choice>,
}

impl CutPlan {
    /// Every cut of `cuts` stored.
    pub fn every(cuts: &[usize]) -> Self {
        let stored = cuts.iter().copied().collect();
        Self::with(&Costs::default(), cuts, &stored)
    }

    /// The choice of every cut of `cuts` when exactly `stored` are read.
    pub fn with(costs: &Costs, cuts: &[usize], stored: &BTreeSet<usize>) -> Self {
        costs.choices(cuts.iter().copied(), stored)
    }

    /// The cuts read from their entries.
    pub fn stored(&self) -> BTreeSet<usize> {
        (self.cuts.iter())
            .filter(|(_, c)| c.stored)
            .map(|(&cut, _)| cut)
            .collect()
    }

    /// Stored bytes per sample on disk.
    pub fn disk_bytes(&self, costs: &Costs) -> u64 {
        (self.stored().iter())
            .filter_map(|c| costs.cuts.get(c))
            .map(|c| c.disk_bytes)
            .sum()
    }
}

impl Costs {
    /// Whether every cut of `cuts` is measured (and the nodes are).
    pub fn covers(&self, cuts: &[usize], nodes: usize) -> bool {
        self.node_secs.len() == nodes && cuts.iter().all(|c| self.cuts.contains_key(c))
    }

    /// Whether `cut` must be stored: unmeasured, or recomputed alone it
    /// would not give the stored bits.
    pub fn must_store(&self, cut: usize) -> bool {
        self.cuts.get(&cut).is_none_or(|c| !c.same_alone)
    }

    /// Seconds to run nodes `from..to` on one sample.
    fn compute(&self, from: usize, to: usize) -> f64 {
        let end = to.min(self.node_secs.len());
        self.node_secs
            .get(from..end)
            .map_or(0.0, |s| s.iter().sum())
    }

    /// Seconds to reach `cut` from the stored cut `root` (`None`: from the
    /// model input); `None` where recomputing would not give the stored
    /// bits.
    fn reach(&self, root: Option<usize>, cut: usize) -> Option<f64> {
        let read = |c: usize| self.cuts.get(&c).map_or(0.0, |c| c.read_secs);
        if root == Some(cut) {
            return Some(read(cut));
        }
        if self.must_store(cut) {
            return None;
        }
        let (base, from) = match root {
            None => (self.input_secs, 0),
            Some(r) => (read(r), r),
        };
        Some(base + self.compute(from, cut))
    }

    /// The plan for the cuts of `reads`, each weighted by the samples that
    /// read it (see the module's doc). With `budget` (bytes per sample on
    /// disk), the stored cuts fit it unless cuts that cannot be recomputed
    /// alone exceed it.
    pub fn plan(&self, reads: &BTreeMap<usize, f64>, budget: Option<u64>) -> CutPlan {
        let cuts: Vec<usize> = reads.keys().copied().collect();
        let mut stored = self.cheapest(reads, &cuts, 0.0);
        if let Some(budget) = budget {
            let bytes = |s: &BTreeSet<usize>| -> u64 {
                s.iter()
                    .filter_map(|c| self.cuts.get(c))
                    .map(|c| c.disk_bytes)
                    .sum()
            };
            // The price of a byte, in seconds, found by bisection.
            let (mut low, mut high) = (0.0, 1.0);
            if bytes(&stored) > budget {
                for _ in 0..60 {
                    let price = (low + high) / 2.0;
                    let trial = self.cheapest(reads, &cuts, price);
                    match bytes(&trial) > budget {
                        true => low = price,
                        false => (high, stored) = (price, trial),
                    }
                }
                if bytes(&stored) > budget {
                    stored = self.cheapest(reads, &cuts, high);
                }
            }
        }
        self.choices(reads.keys().copied(), &stored)
    }

    /// The stored cuts that minimize the expected time to reach every cut
    /// of `cuts` (sorted), plus writing the stored ones, plus
    /// `price` seconds a stored byte: a shortest path over "the last stored
    /// cut so far", O(cuts²).
    fn cheapest(
        &self,
        reads: &BTreeMap<usize, f64>,
        cuts: &[usize],
        price: f64,
    ) -> BTreeSet<usize> {
        let n = cuts.len();
        let own = |j: usize| -> f64 {
            let c = self.cuts.get(&cuts[j]);
            reads[&cuts[j]] * c.map_or(0.0, |c| c.read_secs)
                + c.map_or(0.0, |c| c.write_secs + price * c.disk_bytes as f64)
        };
        // best[j]: cost of cuts[..=j] with cuts[j] the last stored one;
        // index n stands for the input (nothing stored yet).
        let mut best = vec![f64::INFINITY; n + 1];
        let mut from = vec![n; n + 1];
        best[n] = 0.0;
        let mut end = (f64::INFINITY, n);
        for p in std::iter::once(n).chain(0..n) {
            if !best[p].is_finite() {
                continue;
            }
            let (root, first) = match p == n {
                true => (None, 0),
                false => (Some(cuts[p]), p + 1),
            };
            let mut between = 0.0;
            let mut open = true;
            for j in first..n {
                let cost = best[p] + between + own(j);
                if cost < best[j] {
                    (best[j], from[j]) = (cost, p);
                }
                match self.reach(root, cuts[j]) {
                    Some(secs) => between += reads[&cuts[j]] * secs,
                    None => {
                        open = false;
                        break;
                    }
                }
            }
            if open && best[p] + between < end.0 {
                end = (best[p] + between, p);
            }
        }
        let mut stored = BTreeSet::new();
        let mut at = end.1;
        while at != n {
            stored.insert(cuts[at]);
            at = from[at];
        }
        stored
    }

    /// The choice of every cut of `cuts` when exactly `stored` are read.
    fn choices(&self, cuts: impl Iterator<Item = usize>, stored: &BTreeSet<usize>) -> CutPlan {
        let mut plan = CutPlan::default();
        for cut in cuts {
            let is_stored = stored.contains(&cut);
            let root = stored.range(..cut).next_back().copied();
            let recompute_secs = self.reach(root, cut).unwrap_or(f64::INFINITY);
            let secs = match is_stored {
                true => self.reach(Some(cut), cut).unwrap_or(0.0),
                false => recompute_secs,
            };
            plan.cuts.insert(
                cut,
                Choice {
                    stored: is_stored,
                    root: if is_stored { cut } else { root.unwrap_or(0) },
                    secs,
                    recompute_secs,
                },
            );
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(disk_bytes: u64, read_secs: f64) -> CutCost {
        CutCost {
            raw_bytes: disk_bytes,
            disk_bytes,
            read_secs,
            write_secs: 0.0,
            same_alone: true,
        }
    }

    /// Ten nodes of 1 ms; cut 2 is large (reading it costs 5 ms, more than
    /// its 2 ms prefix), cuts 6 and 9 are small and cheap to read.
    fn costs() -> Costs {
        Costs {
            input_secs: 0.0,
            node_secs: vec![1e-3; 10],
            cuts: [
                (2, cut(1000, 5e-3)),
                (6, cut(100, 0.5e-3)),
                (9, cut(10, 0.1e-3)),
            ]
            .into_iter()
            .collect(),
        }
    }

    fn reads(cuts: &[(usize, f64)]) -> BTreeMap<usize, f64> {
        cuts.iter().copied().collect()
    }

    #[test]
    fn stores_the_cuts_that_read_faster_than_they_recompute() {
        let plan = costs().plan(&reads(&[(2, 1.0), (6, 1.0), (9, 1.0)]), None);
        assert_eq!(plan.stored(), BTreeSet::from([6, 9]));
        let two = &plan.cuts[&2];
        assert_eq!((two.root, two.secs), (0, 2e-3));
        let six = &plan.cuts[&6];
        assert_eq!((six.root, six.secs), (6, 0.5e-3));
        assert!((six.recompute_secs - 6e-3).abs() < 1e-12);
        // Cut 9 recomputed from 6 would take 3.5 ms; reading takes 0.1 ms.
        assert!((plan.cuts[&9].recompute_secs - 3.5e-3).abs() < 1e-12);
    }

    #[test]
    fn writing_is_paid_by_the_reads_it_saves() {
        let mut c = costs();
        c.cuts.get_mut(&6).unwrap().write_secs = 30e-3;
        // Read by one sample, cut 6 saves 5.5 ms and costs 30 ms to write:
        // recomputed. Read by ten, it saves 55 ms: stored.
        let rare = c.plan(&reads(&[(6, 1.0), (9, 1.0)]), None);
        assert_eq!(rare.stored(), BTreeSet::from([9]));
        let often = c.plan(&reads(&[(6, 10.0), (9, 1.0)]), None);
        assert_eq!(often.stored(), BTreeSet::from([6, 9]));
    }

    #[test]
    fn cuts_that_differ_alone_or_are_unmeasured_are_stored() {
        let mut c = costs();
        c.cuts.get_mut(&2).unwrap().same_alone = false;
        let all = reads(&[(2, 1.0), (4, 1.0)]);
        assert_eq!(c.plan(&all, None).stored(), BTreeSet::from([2, 4]));
        // Even when the budget has no room for them.
        assert_eq!(c.plan(&all, Some(0)).stored(), BTreeSet::from([2, 4]));
    }

    #[test]
    fn a_budget_keeps_the_checkpoints_worth_most_per_byte() {
        let mut c = costs();
        c.cuts.insert(2, cut(1000, 0.1e-3));
        let all = reads(&[(2, 1.0), (6, 1.0), (9, 1.0)]);
        assert_eq!(c.plan(&all, None).stored(), BTreeSet::from([2, 6, 9]));
        // 110 bytes: cut 2 (1,000 bytes, saving 1.9 ms) goes.
        let plan = c.plan(&all, Some(110));
        assert_eq!(plan.stored(), BTreeSet::from([6, 9]));
        // 100 bytes: one of 6 and 9 goes. Without 6, it is recomputed from
        // the input (5.5 ms more for 100 bytes saved); without 9, from 6
        // (3.4 ms more for 10 bytes): 6 goes.
        let plan = c.plan(&all, Some(100));
        assert_eq!(plan.stored(), BTreeSet::from([9]));
        assert_eq!(plan.cuts[&6].root, 0);
        assert!(plan.disk_bytes(&c) <= 100);
    }

    /// The shortest path finds what trying every subset finds.
    #[test]
    fn the_plan_is_the_cheapest_subset() {
        let mut c = Costs {
            input_secs: 2e-3,
            node_secs: (0..12).map(|i| 1e-3 * (1 + i % 3) as f64).collect(),
            cuts: BTreeMap::new(),
        };
        let cuts = [1, 3, 4, 7, 8, 11];
        for (k, &cut) in cuts.iter().enumerate() {
            let mut cost = self::cut(100 * (k as u64 + 1), 1e-3 * (k % 4) as f64 + 0.5e-3);
            cost.write_secs = 2e-3;
            c.cuts.insert(cut, cost);
        }
        let reads: BTreeMap<usize, f64> = cuts
            .iter()
            .enumerate()
            .map(|(k, &c)| (c, 1.0 + (k % 3) as f64))
            .collect();
        let total = |stored: &BTreeSet<usize>| -> f64 {
            let plan = c.choices(cuts.iter().copied(), stored);
            let reach: f64 = plan.cuts.iter().map(|(k, ch)| reads[k] * ch.secs).sum();
            let write: f64 = stored.iter().map(|k| c.cuts[k].write_secs).sum();
            reach + write
        };
        let best = (0..1u32 << cuts.len())
            .map(|mask| {
                let s: BTreeSet<usize> = (0..cuts.len())
                    .filter(|k| mask >> k & 1 == 1)
                    .map(|k| cuts[k])
                    .collect();
                total(&s)
            })
            .fold(f64::INFINITY, f64::min);
        let planned = c.plan(&reads, None).stored();
        assert!((total(&planned) - best).abs() < 1e-12, "{planned:?}");
    }
}
