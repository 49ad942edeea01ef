//! Outputs agree with onnxruntime on every committed fixture.

use crate::common::{check_parity, model_fixtures, read_npy};

#[test]
fn every_fixture_matches_onnxruntime() {
    let fixtures = model_fixtures();
    assert!(
        !fixtures.is_empty(),
        "no fixtures found under tests/fixtures"
    );
    let mut failures = Vec::new();
    for f in &fixtures {
        let result = faultsweep::load::load(&f.model)
            .and_then(|g| g.forward(&[read_npy(&f.input)]))
            .map_err(|e| e.to_string())
            .and_then(|out| check_parity(&out[0], &read_npy(&f.expected)));
        match result {
            Ok(rel) => eprintln!("ok   {:<40} rel {rel:.2e}", f.name),
            Err(e) => failures.push(format!("{}: {e}", f.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures fail:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}

/// The real pretrained MobileNetV2 of ../shared, when present, against
/// onnxruntime's logits for the photos (committed reference).
#[test]
fn mobilenet_v2_matches_reference_logits_on_the_photos() {
    let Some(model) = crate::common::shared("models/mobilenet_v2.onnx") else {
        eprintln!("skipped: ../shared/models/mobilenet_v2.onnx is absent");
        return;
    };
    let dir = crate::common::fixtures();
    let graph = faultsweep::load::load(model).unwrap();
    let out = graph
        .forward(&[read_npy(&dir.join("mobilenet_photos.input.npy"))])
        .unwrap();
    let rel = check_parity(
        &out[0],
        &read_npy(&dir.join("mobilenet_photos.expected.npy")),
    )
    .unwrap();
    eprintln!("mobilenet_v2 on the photos: rel {rel:.2e}");
}
