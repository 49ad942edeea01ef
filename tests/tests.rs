//! The one integration-test binary (one link of libtorch for all tests).
//! Helpers shared by the modules are in `common`; the list of model
//! fixtures, from which each module that checks every fixture makes one
//! test per fixture, is in `fixture_list`.

mod common;
mod fixture_list;

mod bench;
mod cache_plan;
mod campaign;
mod cli;
mod conformance;
mod cuts;
mod errors;
mod faults;
mod golden;
mod inject;
mod inputs;
mod interrupt;
mod kernels;
mod layout;
mod ops_detection;
mod ops_nn;
mod ops_tensor;
mod outcomes;
mod parity;
mod pytorchfi;
mod quantized;
mod resume;
mod scenario;
mod shards;
mod statistics;
mod summaries;
mod tasks;
