//! Outcomes as the plain full forward pass sees them, on models whose output
//! is not one `[N, classes]` tensor: `masked` only when every output is
//! bitwise golden, `due` only with NaN or Inf in an output, `benign` and
//! `sde` by the judged output (`outputs.judge`, the first by default).

use std::path::Path;

use crate::common::{column, fixture_scenario, root, run_campaign, run_verified};

/// A scenario over a fixture of `tests/fixtures/outputs`.
fn scenario(dir: &Path, model: &str, body: &str) -> std::path::PathBuf {
    fixture_scenario(dir, &root().join("tests/fixtures/outputs"), model, 11, body)
}

#[test]
fn an_output_map_is_judged_element_wise() {
    // Low-bit flips keep every value finite: never `due`; any change of
    // the [N, 2, 5] map is `sde`.
    let dir = tempfile::tempdir().unwrap();
    let body = "targets:\n  layers:\n    names: [conv]\nfault:\n  bits: {range: [0, 20]}\ncounts:\n  injections: 80\n";
    let path = scenario(dir.path(), "map_output", body);
    let rows = run_verified(
        &path,
        &dir.path().join("out"),
        &dir.path().join("cache"),
        40,
    );
    let outcomes = column(&rows, "outcome");
    assert!(
        outcomes.iter().all(|o| o == "masked" || o == "sde"),
        "{outcomes:?}"
    );
    assert!(outcomes.iter().any(|o| o == "sde"), "{outcomes:?}");
}

#[test]
fn masked_needs_every_output_and_the_judged_one_tells_benign_from_sde() {
    let dir = tempfile::tempdir().unwrap();
    let body = "targets:\n  layers:\n    names: [sigmoid]\nfault:\n  model: constant\n  value: 1000.0\ncounts:\n  injections: 8\n";
    for (judge, want) in [("", "benign"), ("outputs:\n  judge: z\n", "sde")] {
        let path = scenario(dir.path(), "two_outputs", &format!("{body}{judge}"));
        let out = dir.path().join(format!("out{}", judge.len()));
        let rows = run_verified(&path, &out, &dir.path().join("cache"), 8);
        assert!(
            column(&rows, "outcome").iter().all(|o| o == want),
            "{rows:?}"
        );
        assert!(
            column(&rows, "outputs_changed").iter().all(|o| o == "z"),
            "{rows:?}"
        );
    }
}

/// `model.outputs` naming no output, and `model.free_batch` on a model
/// whose input fixes no batch, are errors at their scenario keys.
#[test]
fn model_edits_that_do_not_fit_the_model_are_scenario_errors() {
    let dir = tempfile::tempdir().unwrap();
    let body = "counts:\n  injections: 8\n";
    for (edit, want) in [
        ("  outputs: [logits]\n", "model.outputs"),
        ("  free_batch: true\n", "model.free_batch"),
    ] {
        let path = scenario(dir.path(), "two_outputs", body);
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replacen("data:\n", &format!("{edit}data:\n"), 1);
        std::fs::write(&path, text).unwrap();
        let out = dir.path().join(format!("out{}", want.len()));
        let run = run_campaign(&path, &out, &[], &dir.path().join("cache"));
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(8), "{err}");
        let at = format!("{}:5", path.display());
        assert!(err.contains(want) && err.contains(&at), "{err}");
        assert!(err.contains("two_outputs.onnx"), "names the model: {err}");
    }
}

#[test]
fn an_unknown_judged_output_is_a_scenario_error() {
    let dir = tempfile::tempdir().unwrap();
    let body = "counts:\n  injections: 8\noutputs:\n  judge: logits\n";
    let path = scenario(dir.path(), "two_outputs", body);
    let run = run_campaign(
        &path,
        &dir.path().join("out"),
        &[],
        &dir.path().join("cache"),
    );
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(8), "{err}");
    assert!(
        err.contains("outputs.judge")
            && err.contains("'logits' is not an output of the model (y, z)"),
        "{err}"
    );
}
