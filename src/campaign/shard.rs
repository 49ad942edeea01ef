//! Shards: one campaign split over N processes or machines (`run --shard
//! I/N`), each writing a complete results folder for its part, merged
//! exactly afterwards ([`super::merge`]).
//!
//! A shard is a contiguous range of the data subset's samples: it runs every
//! run (injection x sample) on its samples, so a sample's runs never leave
//! its shard and its rows share batches as in a single run. The ranges are
//! cut so that shards get about equal work, estimated from the model alone
//! (a run costs the activations from its first faulty node to the output),
//! so every shard computes the same cut on any machine. Invariant: each
//! window of the single run's fault list holds, in order, shard 1's runs of
//! it, then shard 2's, and so on: the runs are sorted by sample in a window.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::runs::{injections, scope};
use super::Plan;
use crate::data::Dataset;
use crate::error::Result;

/// Shard `index` of `count` (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: u32,
    /// How many shards the campaign has.
    pub count: u32,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `I/N` with 1 <= I <= N.
    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let bad = || format!("{s:?} is not a shard: give I/N with 1 <= I <= N (e.g. 2/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// A shard's part of a campaign: its samples (positions in the subset).
pub struct Part {
    /// Which shard.
    pub shard: Shard,
    /// Its samples.
    pub samples: Range<u64>,
    /// Its runs (injection x sample).
    pub runs: usize,
    /// The data subset narrowed to its samples: its fault-free pass and
    /// cache entries cover these only.
    pub data: Dataset,
}

/// The sample ranges of all `count` shards, in order: contiguous, covering
/// the subset, each holding about 1/count of the estimated work.
pub fn ranges(plan: &Plan, count: u32) -> Result<Vec<Range<u64>>> {
    Ok(cut(&sample_work(plan)?.0, count))
}

/// Contiguous ranges of `work`'s samples, `count` of them, each holding
/// about 1/count of the sum.
fn cut(work: &[u64], count: u32) -> Vec<Range<u64>> {
    let total: u128 = work.iter().map(|&w| u128::from(w)).sum();
    let mut bounds = vec![0u64];
    let mut done = 0u128;
    let mut k = 1u128;
    for (s, &w) in work.iter().enumerate() {
        // The next bound falls before the first sample that would carry
        // the shards so far past their share.
        while k < u128::from(count) && done + u128::from(w) / 2 >= total * k / u128::from(count) {
            bounds.push(s as u64);
            k += 1;
        }
        done += u128::from(w);
    }
    while bounds.len() <= count as usize {
        bounds.push(work.len() as u64);
    }
    *bounds.last_mut().expect("count >= 1") = work.len() as u64;
    bounds.windows(2).map(|b| b[0]..b[1].max(b[0])).collect()
}

/// The part of `shard`.
pub fn part(plan: &Plan, shard: Shard) -> Result<Part> {
    let (work, runs) = sample_work(plan)?;
    let samples = cut(&work, shard.count)[shard.index as usize - 1].clone();
    let runs = runs[samples.start as usize..samples.end as usize]
        .iter()
        .sum();
    let data = plan.data.part(samples.start as usize..samples.end as usize);
    Ok(Part {
        shard,
        samples,
        runs,
        data,
    })
}

/// Each sample's estimated work (the sum over its runs of the activation
/// elements from the run's first faulty node to the output) and runs.
fn sample_work(plan: &Plan) -> Result<(Vec<u64>, Vec<usize>)> {
    let nodes = plan.graph.nodes.len();
    let mut cost = vec![1u64; nodes];
    for layer in &plan.campaign.sites.layers {
        if let (Some(site), Some(c)) = (&layer.neuron, cost.get_mut(layer.node)) {
            *c = site.elements().max(1);
        }
    }
    // suffix[n]: the cost of nodes n.. in topological order.
    let mut suffix = vec![0u64; nodes + 1];
    for n in (0..nodes).rev() {
        suffix[n] = suffix[n + 1].saturating_add(cost[n]);
    }
    let samples = plan.data.len() as u64;
    let mut work = vec![0u64; samples as usize];
    let mut runs = vec![0usize; samples as usize];
    for faults in injections(plan)? {
        let faults = faults?;
        let first = faults.iter().map(|f| f.node as usize).min().unwrap_or(0);
        let w = suffix[first.min(nodes)];
        for s in scope(&faults, samples) {
            work[s as usize] = work[s as usize].saturating_add(w);
            runs[s as usize] += 1;
        }
    }
    Ok((work, runs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cut_the_samples_by_work_not_by_count() {
        assert_eq!(cut(&[1; 100], 4), vec![0..25, 25..50, 50..75, 75..100]);
        // The first 10 samples carry as much work as the other 90.
        let mut work = vec![9u64; 10];
        work.extend([1u64; 90]);
        assert_eq!(cut(&work, 2), vec![0..10, 10..100]);
        // Every sample in one shard, none twice, in order, even with more
        // shards than samples.
        let ranges = cut(&[5, 0, 3], 5);
        assert_eq!(ranges.len(), 5);
        assert_eq!(ranges.first().unwrap().start, 0);
        assert_eq!(ranges.last().unwrap().end, 3);
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(cut(&[], 3), vec![0..0, 0..0, 0..0]);
    }

    #[test]
    fn a_shard_is_i_of_n() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(Shard { index: 1, count: 1 }.to_string(), "1/1");
        for bad in ["0/4", "5/4", "2", "a/b", "2/0", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
