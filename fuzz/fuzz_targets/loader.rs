//! The ONNX loader on arbitrary bytes: any input must give a graph or an
//! `Error`, never a panic, a hang or a read outside the model's folder.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A folder that does not exist: external data must fail cleanly.
    let path = Path::new("/nonexistent/faultsweep-fuzz/model.onnx");
    if let Ok(graph) = faultsweep::load::from_bytes(data, path) {
        // Every cut's frontier (computed without running libtorch).
        for cut in 0..=graph.nodes.len() {
            faultsweep::split::frontier(&graph, cut).expect("every cut of a loaded graph is valid");
        }
    }
});
