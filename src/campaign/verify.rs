//! `--verify N`: injections of the campaign rerun the plain way.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use super::{Plan, VerifyReport};
use crate::error::Result;
use crate::faults;
use crate::graph::Graph;
use crate::inject::{agreement, on_workers, plain_run, Agreement, Injection, InjectionResult};

/// The runs kept for rechecking, by id: the injection and the engine's
/// result.
pub type Kept = BTreeMap<usize, (Injection, InjectionResult)>;

/// The ids of `n` distinct runs among `ids` (those this process runs: a
/// resumed run does not rerun the rest), chosen with the campaign's `seed`;
/// all of them when there are no more than `n`.
pub fn pick(seed: u64, ids: Range<usize>, n: usize) -> BTreeSet<usize> {
    if n >= ids.len() {
        return ids.collect();
    }
    let mut stream = faults::rng::Stream::new(seed, 0x5645_5249_4659);
    let mut picked = BTreeSet::new();
    while picked.len() < n {
        picked.insert(ids.start + stream.below(ids.len() as u64) as usize);
    }
    picked
}

/// Reruns the `kept` injections on `graph` the plain way ([`plain_run`]:
/// the whole model from the input, no engine shortcut), `workers` at once,
/// and compares.
pub fn verify(plan: &Plan, graph: &Graph, kept: &Kept, workers: usize) -> Result<VerifyReport> {
    let injections: Vec<&Injection> = kept.values().map(|(inj, _)| inj).collect();
    let data = &plan.data;
    let reference = on_workers(graph, workers, &injections, |graph, inj| {
        let inputs = data.batch(inj.sample..inj.sample + 1)?.inputs;
        plain_run(graph, &inputs, inj)
    })?;
    let mut report = VerifyReport {
        checked: kept.len(),
        ..Default::default()
    };
    for r in &reference {
        let engine = &kept[&r.id].1;
        match agreement(engine, r) {
            Agreement::Exact => report.exact += 1,
            Agreement::WithinRounding => report.within_rounding += 1,
            Agreement::Differs => report.differing.push(format!(
                "{}: injection {} (sample {}): engine {}, full forward {}",
                graph.path.display(),
                r.id,
                r.sample,
                engine.outcome().name(),
                r.outcome().name()
            )),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::pick;

    /// `--verify N` reruns N different injections (a draw with repeats
    /// gave 99 for 100 on the demo), the same ones for the same seed.
    #[test]
    fn picks_n_distinct_runs_or_all() {
        let picked = pick(7, 1000..3000, 100);
        assert_eq!(picked.len(), 100);
        assert!(picked.iter().all(|id| (1000..3000).contains(id)));
        assert_eq!(picked, pick(7, 1000..3000, 100));
        assert_ne!(picked, pick(8, 1000..3000, 100));
        assert_eq!(pick(7, 5..9, 10), (5..9).collect());
        assert_eq!(pick(7, 5..9, 4).len(), 4);
        assert!(pick(7, 5..5, 3).is_empty());
    }
}
