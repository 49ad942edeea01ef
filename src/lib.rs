//! faultsweep: fault injection for neural networks.
//!
//! The pipeline, one module per step:
//! load -> split -> golden (+cache) -> faults -> inject -> classify -> report.
//! This crate has the first steps so far: ONNX models load into a graph IR
//! ([`graph`]) that runs on libtorch, and can be cut at any node ([`split`]).
//! A YAML [`scenario`] resolves against a model into a campaign whose seeded
//! fault list ([`faults`]) is generated, saved and exchanged as CSV.

pub mod error;
// 1. load: ONNX file -> graph IR
pub mod graph;
pub mod load;
// 2. split: cuts and frontiers
pub mod split;
// 3. golden run over a data set, filling the layer-split cache
pub mod cache;
pub mod data;
// 4. faults: what to run (scenario) and the seeded fault list
pub mod faults;
pub mod scenario;
// model summaries for `faultsweep inspect`
pub mod inspect;
// command-line front end
pub mod cli;

pub use error::{Error, Result};
