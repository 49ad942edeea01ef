//! Cuts: the prefix to any cut followed by the suffix from it equals the full
//! forward pass bitwise, for every cut of every fixture model.
//!
//! Checking each cut with its own prefix and suffix costs one forward pass
//! per cut (minutes on the full-size light_* models), so every cut is checked
//! in one walk instead: a continuous run of the model and a chain of one-node
//! runs from frontier to frontier ([`split::between`]) go side by side, and
//! at each cut the chain's frontier must be exactly the values the
//! continuous run holds there, bitwise; the chain's end, resumed, must be
//! the full pass. Then [`split::prefix`] and [`split::resume`] themselves run
//! at every cut of small models and, in larger ones, at the first and last
//! cut and a seeded sample of six others, half of them inside branches
//! (where more than one value crosses) if there are. CUTS_ALL=1 runs them at
//! every cut. One test per fixture: `cuts::fixture::NAME`.

use std::collections::BTreeSet;

use rand::seq::IteratorRandom;
use rand::SeedableRng;
use tch::Tensor;

use crate::common::{fixture, model_fixtures, read_npy, same_values};
use faultsweep::graph::Graph;
use faultsweep::split;

/// Models with at most this many nodes get prefix and resume at every cut.
const SMALL: usize = 24;
/// Sampled cuts of a larger model, besides the first and the last: this many
/// among the cuts inside branches, the others up to twice as many.
const SAMPLE: usize = 3;

/// One fixture at every cut. A model that does not load or run is
/// `parity::fixture::NAME`'s failure, not this test's.
fn prefix_then_suffix_is_the_full_pass_at_every_cut(name: &str) {
    let all = std::env::var("CUTS_ALL").is_ok_and(|v| v == "1");
    let f = fixture(name);
    let Ok(graph) = faultsweep::load::load(&f.model) else {
        return;
    };
    let x = read_npy(&f.input);
    let Ok(full) = graph.forward(&[x.shallow_clone()]) else {
        return;
    };
    // Shape values of a resumed run are computed from what this learns.
    graph.learn_layout(&[x.shallow_clone()]).unwrap();
    let start = std::time::Instant::now();
    walk_every_cut(&graph, &x, &full, &f.name);
    let n = graph.nodes.len();
    let cuts = if all || n <= SMALL {
        (0..=n).collect()
    } else {
        sample_cuts(&graph, &f.name)
    };
    for &cut in &cuts {
        let front = split::prefix(&graph, &[x.shallow_clone()], cut).unwrap();
        let out = split::resume(&graph, cut, &front).unwrap();
        same_outputs(&out, &full, &format!("{} cut {cut}", f.name));
    }
    eprintln!(
        "{:<36} {n:>4} cuts walked, {:>3} by prefix and resume, {:.2} s",
        f.name,
        cuts.len(),
        start.elapsed().as_secs_f64()
    );
}

#[allow(non_snake_case)]
mod fixture {
    macro_rules! tests {
        ($($name:ident)*) => {$(
            #[test]
            fn $name() {
                super::prefix_then_suffix_is_the_full_pass_at_every_cut(stringify!($name));
            }
        )*};
    }
    crate::model_fixtures!(tests);
}

/// Runs the model once, node by node, and beside it the chain of one-node
/// runs from the frontier of each cut to that of the next; compares them at
/// every cut, and the chain's end, resumed, with the full pass `full`.
fn walk_every_cut(graph: &Graph, x: &Tensor, full: &[Tensor], name: &str) {
    let inputs: BTreeSet<usize> = graph.input_values.iter().copied().collect();
    let mut chain = split::prefix(graph, &[x.shallow_clone()], 0).unwrap();
    let mut env = graph.start(&[x.shallow_clone()]).unwrap();
    let n = graph.nodes.len();
    graph
        .run_then(0..n, &mut env, |node, env| {
            let cut = node.index + 1;
            chain = split::between(graph, cut - 1, cut, &chain).unwrap();
            let ids = split::frontier(graph, cut).unwrap();
            for (&id, t) in ids.iter().zip(&chain) {
                let want = env.get(graph, id).unwrap_or_else(|| {
                    panic!(
                        "{name} cut {cut}: '{}' crosses the cut but the full run has freed it",
                        graph.values[id].name
                    )
                });
                assert!(
                    same_values(t, want),
                    "{name} cut {cut}: '{}' differs from the full run",
                    graph.values[id].name
                );
            }
            // What the full run keeps alive there, but graph inputs nothing
            // reads (kept as given), is the frontier.
            let live: BTreeSet<usize> = env.live_mut().map(|(id, _)| id).collect();
            let ids: BTreeSet<usize> = ids.into_iter().collect();
            assert!(
                live.difference(&ids).all(|id| inputs.contains(id)),
                "{name} cut {cut}: the full run holds {live:?}, the frontier is {ids:?}"
            );
            Ok(())
        })
        .unwrap();
    let out = split::resume(graph, n, &chain).unwrap();
    same_outputs(&out, full, &format!("{name}: the chain of every cut"));
    same_outputs(&graph.outputs_of(&env).unwrap(), full, name);
}

/// The first and last cut and a seeded sample of the others, half of them
/// inside branches if the model has them.
fn sample_cuts(graph: &Graph, name: &str) -> Vec<usize> {
    let n = graph.nodes.len();
    let seed = name
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (branch, plain): (Vec<usize>, Vec<usize>) =
        (1..n).partition(|&c| split::frontier(graph, c).unwrap().len() > 1);
    let branch = branch.into_iter().choose_multiple(&mut rng, SAMPLE);
    // Without (enough) branches, more of the other cuts.
    let plain = plain
        .into_iter()
        .choose_multiple(&mut rng, 2 * SAMPLE - branch.len());
    let mut cuts = BTreeSet::from([0, n]);
    cuts.extend(branch.into_iter().chain(plain));
    cuts.into_iter().collect()
}

fn same_outputs(out: &[Tensor], full: &[Tensor], what: &str) {
    assert!(out.len() == full.len(), "{what}: output count");
    for (a, b) in out.iter().zip(full) {
        assert!(
            same_values(a, b),
            "{what}: output differs from the full pass"
        );
    }
}

#[test]
fn between_cuts_composes() {
    for f in model_fixtures().into_iter().take(8) {
        let Ok(graph) = faultsweep::load::load(&f.model) else {
            continue;
        };
        let x = read_npy(&f.input);
        let Ok(full) = graph.forward(&[x.shallow_clone()]) else {
            continue;
        };
        let n = graph.nodes.len();
        let (a, b) = (n / 3, 2 * n / 3);
        let front_a = split::prefix(&graph, &[x], a).unwrap();
        let front_b = split::between(&graph, a, b, &front_a).unwrap();
        let out = split::resume(&graph, b, &front_b).unwrap();
        assert!(
            same_values(&out[0], &full[0]),
            "{}: cuts {a} -> {b} -> end differs",
            f.name
        );
    }
}
