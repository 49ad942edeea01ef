//! Cuts: the prefix to any cut followed by the suffix from it equals the full
//! forward pass bitwise, for every cut of every fixture model.

use crate::common::{model_fixtures, read_npy};
use faultsweep::split;

#[test]
fn prefix_then_suffix_is_the_full_pass_at_every_cut() {
    let mut checked = 0;
    for f in model_fixtures() {
        let Ok(graph) = faultsweep::load::load(&f.model) else {
            continue;
        };
        let x = read_npy(&f.input);
        let Ok(full) = graph.forward(&[x.shallow_clone()]) else {
            continue;
        };
        for cut in 0..=graph.nodes.len() {
            let front = split::prefix(&graph, &[x.shallow_clone()], cut).unwrap();
            let out = split::resume(&graph, cut, &front).unwrap();
            assert!(
                out.len() == full.len(),
                "{} cut {cut}: output count",
                f.name
            );
            for (a, b) in out.iter().zip(&full) {
                assert!(
                    a.equal(b),
                    "{} cut {cut}: output differs from the full pass",
                    f.name
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no model fixture could be checked");
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
            out[0].equal(&full[0]),
            "{}: cuts {a} -> {b} -> end differs",
            f.name
        );
    }
}
