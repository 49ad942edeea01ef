//! faultsweep: fault injection for neural networks.
//!
//! The pipeline, one module per step:
//! load -> split -> golden (+cache) -> faults -> inject -> classify -> report.
//! ONNX models load into a graph IR ([`graph`]) that runs on libtorch and
//! can be cut at any node ([`split`]); the golden run fills the layer-split
//! [`cache`]; scenarios become seeded fault lists ([`faults`]); the
//! [`inject`] engine resumes from cached frontiers and [`classify`] names
//! the outcomes. A YAML [`scenario`] resolves against a model into a
//! campaign whose seeded fault list is generated, saved and exchanged as CSV.

pub mod error;
// opening input files: regular files only
pub mod files;
// 1. load: ONNX file -> graph IR
pub mod graph;
pub mod load;
// 2. split: cuts and frontiers
pub mod split;
// 3. golden run over a data set, filling the layer-split cache
pub mod cache;
pub mod data;
pub mod golden;
// 4. faults: what to run (scenario) and the seeded fault list
pub mod faults;
pub mod scenario;
// 5. inject: batched resume from cached frontiers, fault dropping
pub mod inject;
// 6. classify: outcomes
pub mod classify;
// 7. report: per-injection rows and summaries with confidence intervals
pub mod report;
// every file the user names, written atomically
pub mod output;
// temporaries tagged with their writer's PID, and the stale ones
pub mod temps;
// the whole campaign, step by step
pub mod campaign;
// model summaries for `faultsweep inspect`
pub mod inspect;
// time per phase, reported by `faultsweep run --timings`
pub mod phases;
// advisory locks on results folders and cache entries
pub mod lock;
// The benchmark harness (`faultsweep bench`, benches/, tests/bench.rs):
// the engine against full forward passes, and peak memory. Not part of the
// supported API; the binary's `cli` feature turns it on.
#[cfg(feature = "bench")]
#[doc(hidden)]
pub mod bench;

pub use error::{Error, Result};
