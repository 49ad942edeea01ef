//! Malformed models give an error that names the file and the node, op or
//! value at fault, with the documented exit code; never a panic.

use std::path::PathBuf;

use faultsweep::{load, Error};
use tch::{Kind, Tensor};

use crate::common::fixtures;

fn broken(name: &str) -> PathBuf {
    fixtures().join("errors").join(format!("{name}.onnx"))
}

/// Loads `name`, runs it on a batch of 2 of its declared input shape, and
/// returns the error message and exit code.
fn error_of(name: &str) -> (String, i32) {
    let path = broken(name);
    let result =
        load::load(&path).and_then(|g| g.forward(&faultsweep::inspect::sample_inputs(&g, 2)?));
    let e = result.expect_err("a broken model must not run");
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "message does not name the file: {msg}"
    );
    (msg, e.exit_code())
}

fn assert_mentions(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message lacks '{p}': {msg}");
    }
}

#[test]
fn unsupported_op_names_node_op_and_opset() {
    let (msg, code) = error_of("unsupported_op");
    assert_mentions(&msg, &["'frob'", "Frobnicate", "opset 17"]);
    assert_eq!(code, 3);
}

#[test]
fn unknown_attribute_and_domain_are_rejected() {
    assert_mentions(
        &error_of("unknown_attribute").0,
        &["'relu'", "attribute 'flavour'"],
    );
    assert_mentions(&error_of("custom_domain").0, &["'r'", "com.example"]);
}

#[test]
fn dangling_values_and_cycles_are_named() {
    assert_mentions(&error_of("missing_initializer").0, &["'mm'", "w_missing"]);
    assert_mentions(&error_of("cycle").0, &["cycle", "'first'"]);
    assert_mentions(&error_of("undefined_output").0, &["output 'y'"]);
}

#[test]
fn bad_data_is_reported() {
    assert_mentions(
        &error_of("short_initializer").0,
        &["tensor 'w'", "10 bytes"],
    );
    assert_mentions(&error_of("old_opset").0, &["opset 5"]);
    assert_mentions(&error_of("not_a_model").0, &["not a readable ONNX model"]);
    // Found when the model loads: a model error, not an op failure.
    let (msg, code) = error_of("bad_conv_pads");
    assert_mentions(&msg, &["'conv'", "Conv", "opset 17", "'pads'"]);
    assert_eq!(code, 3);
}

/// Found while writing the loader's fuzz target (CONTRIBUTING.md, "Fuzzing"): external data is read
/// only from inside the model's folder and only the bytes the tensor needs
/// (an absolute `/dev/zero` used to be read until memory ran out), and a
/// shape whose byte size overflows is refused.
#[test]
fn external_data_stays_in_the_model_folder_and_sizes_cannot_overflow() {
    for name in ["external_absolute", "external_escapes"] {
        let (msg, code) = error_of(name);
        assert_mentions(
            &msg,
            &[
                "tensor 'w'",
                "must be a relative path inside the model's folder",
            ],
        );
        assert_eq!(code, 3);
    }
    let (msg, code) = error_of("huge_initializer");
    assert_mentions(&msg, &["tensor 'w'", "too many elements"]);
    assert_eq!(code, 3);
    // Weights stored beside the model, at an offset, load as the inline ones.
    let x = Tensor::arange(8, (Kind::Float, tch::Device::Cpu)).reshape([2, 4]) - 3.0;
    let run = |name: &str| {
        load::load(broken(name))
            .and_then(|g| g.forward(std::slice::from_ref(&x)))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    assert!(run("external_ok")[0].equal(&run("good")[0]));
}

#[test]
fn truncated_and_random_files_never_panic() {
    let good = std::fs::read(broken("good")).unwrap();
    let path = broken("good");
    for len in 0..good.len() {
        // Every prefix either fails cleanly or still decodes to a valid model.
        let _ = load::from_bytes(&good[..len], &path);
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..64)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        if let Err(e) = load::from_bytes(&bytes, &path) {
            assert!(e.to_string().starts_with(&path.display().to_string()));
        }
    }
    let e = load::from_bytes(&good[..good.len() / 2], &path).expect_err("half a model");
    assert!(
        matches!(e, Error::Decode { .. } | Error::InvalidModel { .. }),
        "{e}"
    );
}

#[test]
fn wrong_input_shape_and_count_are_named() {
    let g = load::load(broken("good")).unwrap();
    let e = g
        .forward(&[Tensor::ones([2, 5], (Kind::Float, tch::Device::Cpu))])
        .unwrap_err();
    assert_mentions(&e.to_string(), &["input 'x'", "[?, 4]", "[2, 5]"]);
    assert_eq!(e.exit_code(), 4);
    let e = g.forward(&[]).unwrap_err();
    assert_mentions(&e.to_string(), &["takes 1 inputs, got 0"]);
    let e = g
        .forward(&[Tensor::ones([2, 4], (Kind::Int64, tch::Device::Cpu))])
        .unwrap_err();
    assert_mentions(&e.to_string(), &["float32"]);
}

#[test]
fn missing_file_is_an_io_error() {
    let e = load::load("/nonexistent/model.onnx").unwrap_err();
    assert_eq!(e.exit_code(), 6);
    assert!(e.to_string().contains("/nonexistent/model.onnx"));
}
