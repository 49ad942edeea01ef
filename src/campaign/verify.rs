//! `--verify N`: injections of the campaign rerun the plain way.

use std::collections::HashMap;

use super::{Plan, VerifyReport};
use crate::error::Result;
use crate::faults;
use crate::graph::Graph;
use crate::inject::{agreement, plain_run, Agreement, Injection, InjectionResult};

/// Reruns `n` injections chosen with the campaign seed the plain way
/// ([`plain_run`]: the whole model from the input, no engine shortcut).
pub fn verify(
    plan: &Plan,
    graph: &Graph,
    injections: &[Injection],
    results: &HashMap<usize, InjectionResult>,
    n: usize,
) -> Result<VerifyReport> {
    let mut stream = faults::rng::Stream::new(plan.campaign.seed, 0x5645_5249_4659);
    // Among the injections this process ran (a resumed run did not rerun the rest).
    let ran: Vec<&Injection> = injections
        .iter()
        .filter(|i| results.contains_key(&i.id))
        .collect();
    let mut picked: Vec<usize> = (0..n.min(ran.len()))
        .map(|_| stream.below(ran.len() as u64) as usize)
        .collect();
    picked.sort_unstable();
    picked.dedup();
    let chosen: Vec<Injection> = picked.iter().map(|&i| ran[i].clone()).collect();
    let reference: Vec<InjectionResult> = chosen
        .iter()
        .map(|inj| {
            let input = plan.data.batch(inj.sample..inj.sample + 1)?.input;
            plain_run(graph, &input, inj)
        })
        .collect::<Result<_>>()?;
    let mut report = VerifyReport {
        checked: chosen.len(),
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
