//! The scenario parser and validator on arbitrary text: any input must give
//! a campaign or an `Error`, never a panic or a hang. A valid scenario is
//! resolved against the bundled demo model (fault sites computed once), its
//! effective scenario must parse back to itself (`scenario.yml` replays a
//! campaign), and a small campaign's fault list is generated.
#![no_main]

use std::path::Path;

use faultsweep::faults::{Models, PerInjection, Sites};
use faultsweep::scenario::{self, Scenario};
use libfuzzer_sys::fuzz_target;

/// Most fault-list rows generated per input (bigger lists are valid, just slow).
const MAX_ROWS: f64 = 20_000.0;

thread_local! {
    static SITES: Sites = {
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/fashion_cnn.onnx");
        let graph = faultsweep::load::load(&model).expect("the demo model loads");
        Sites::from_graph(&graph).expect("the demo model has sites")
    };
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.yml");
    let Ok(sc) = Scenario::parse(text, path) else {
        return;
    };
    // The demo data set holds 1,000 samples.
    let Ok(campaign) = SITES.with(|s| sc.validate_sites(s.clone(), Some(1000), &Models::default()))
    else {
        return;
    };
    let yaml = scenario::to_yaml(&campaign.spec);
    let again = Scenario::parse(&yaml, path)
        .unwrap_or_else(|e| panic!("the effective scenario does not parse: {e}\n{yaml}"));
    assert_eq!(
        scenario::to_yaml(&again.spec),
        yaml,
        "the effective scenario does not read back to itself"
    );
    let rows: f64 = campaign
        .points
        .iter()
        .map(|p| {
            let per = match p.per_injection {
                PerInjection::Fixed(k) => f64::from(k),
                PerInjection::Uniform(_, hi) => f64::from(hi),
                PerInjection::Poisson(m) => 10.0 * m.max(1.0),
                PerInjection::Probability => p
                    .candidates
                    .iter()
                    .zip(&p.probabilities)
                    .map(|(c, q)| 1.0 + 10.0 * q * c.elements() as f64)
                    .sum(),
                PerInjection::InferenceProbability => p.candidates.len() as f64,
            };
            p.budget.injections() as f64 * per
        })
        .sum();
    if rows <= MAX_ROWS {
        let list = faultsweep::faults::generate(&campaign);
        let bytes = faultsweep::faults::file::encode(&list);
        faultsweep::faults::file::decode(&bytes, path).expect("a generated list reads back");
    }
});
