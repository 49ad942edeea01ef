//! faultsweep as a library: a campaign built in code, its injections
//! iterated one result at a time into a sink of our own (here, a count of
//! SDEs per bit), instead of `faultsweep run`'s results folder.
//!
//! cargo run --release --example library

use std::collections::BTreeMap;
use std::path::Path;

use faultsweep::cache::Store;
use faultsweep::campaign::{self, Model, RunArgs};
use faultsweep::classify::Outcome;
use faultsweep::faults::Models;
use faultsweep::inject::Options;
use faultsweep::scenario::{self, Scenario};

fn main() -> faultsweep::Result<()> {
    // Start from the demo scenario and change it in code: 500 single bit
    // flips in the first convolution's outputs.
    let path = Path::new("scenarios/fashion_neurons.yml");
    let mut sc = Scenario::load(path)?;
    sc.spec.counts.injections = Some(500);
    sc.spec.targets.layers.ops = vec![];
    sc.spec.targets.layers.names = vec!["/features/features.0/Conv".into()];
    sc.text = scenario::to_yaml(&sc.spec);
    let models = Models::default();
    let plan = campaign::plan_scenario(sc, &RunArgs::default(), &models)?;

    // Golden run and layer-split cache, then the engine, batch by batch.
    let store = Store::new(&plan.campaign.spec.cache, None);
    let model = Model::prepare(&plan, &plan.graph, None, &store, &models)?;
    let mut sde_by_bit: BTreeMap<u8, (usize, usize)> = BTreeMap::new();
    for ran in model.results(Options::default())? {
        let (faults, result) = ran?;
        let entry = sde_by_bit.entry(faults[0].bits[0]).or_default();
        entry.0 += usize::from(result.outcome() == Outcome::Sde);
        entry.1 += 1;
    }
    println!("bit  SDE / injections");
    for (bit, (sde, n)) in sde_by_bit.iter().rev() {
        println!("{bit:>3}  {sde} / {n}");
    }
    Ok(())
}
