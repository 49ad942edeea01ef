//! Outputs agree with onnxruntime on every committed fixture, one test per
//! fixture (`parity::fixture::NAME`).

use crate::common::{check_parity, fixture, read_npy};

/// One fixture against onnxruntime's output.
fn every_fixture_matches_onnxruntime(name: &str) {
    let f = fixture(name);
    let result = faultsweep::load::load(&f.model)
        .and_then(|g| g.forward(&[read_npy(&f.input)]))
        .map_err(|e| e.to_string())
        .and_then(|out| check_parity(&out[0], &read_npy(&f.expected)));
    match result {
        Ok(rel) => eprintln!("ok   {:<40} rel {rel:.2e}", f.name),
        Err(e) => panic!("{}: {e}", f.name),
    }
}

#[allow(non_snake_case)]
mod fixture {
    macro_rules! tests {
        ($($name:ident)*) => {$(
            #[test]
            fn $name() {
                super::every_fixture_matches_onnxruntime(stringify!($name));
            }
        )*};
    }
    crate::model_fixtures!(tests);
}

/// The real pretrained MobileNetV2 of ../shared, when present, against
/// onnxruntime's logits for the photos (committed reference).
#[test]
fn mobilenet_v2_matches_reference_logits_on_the_photos() {
    let Some([model]) = crate::common::shared(["models/mobilenet_v2.onnx"]) else {
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
