//! `--verify N`: injections of the campaign rerun the plain way.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use super::{Model, Plan, VerifyReport};
use crate::error::Result;
use crate::faults;
use crate::inject::{agreement, plain_run, Agreement, InjectionResult};

/// The ids of `n` runs among `ids` (those this process runs: a resumed run
/// does not rerun the rest), chosen with the campaign seed.
pub fn pick(plan: &Plan, ids: Range<usize>, n: usize) -> BTreeSet<usize> {
    let mut stream = faults::rng::Stream::new(plan.campaign.seed, 0x5645_5249_4659);
    let len = ids.len();
    (0..n.min(len))
        .map(|_| ids.start + stream.below(len as u64) as usize)
        .collect()
}

/// Reruns the injections of `results` the plain way ([`plain_run`]: the
/// whole model from the input, no engine shortcut) and compares.
pub fn verify(
    plan: &Plan,
    model: &Model,
    results: &BTreeMap<usize, InjectionResult>,
) -> Result<VerifyReport> {
    let graph = model.graph;
    let reference: Vec<InjectionResult> = results
        .keys()
        .map(|&id| {
            let inj = model.injections.injection(id)?;
            let input = plan.data.batch(inj.sample..inj.sample + 1)?.input;
            plain_run(graph, &input, &inj)
        })
        .collect::<Result<_>>()?;
    let mut report = VerifyReport {
        checked: results.len(),
        ..Default::default()
    };
    for r in &reference {
        let engine = &results[&r.id];
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
