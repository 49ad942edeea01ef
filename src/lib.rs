//! faultsweep: fault injection for neural networks.
//!
//! The pipeline, one module per step:
//! load -> split -> golden (+cache) -> faults -> inject -> classify -> report.
//! ONNX models load into a graph IR ([`graph`]) that runs on libtorch and
//! can be cut at any node ([`split`]); the golden run over a [`data`] set
//! fills the layer-split [`cache`]; a YAML [`scenario`] resolves against a
//! model into a campaign whose seeded fault list ([`faults`]) is generated,
//! saved and exchanged as CSV; the [`inject`] engine resumes from cached
//! frontiers, [`classify`] names the outcomes and [`report`] sums them up.
//! [`campaign`] runs the whole pipeline into a results folder (what
//! `faultsweep run` does); `examples/library.rs` shows it from Rust.
//!
//! The command line (clap, progress bars) is the binary's, not the
//! library's: with `default-features = false` the library builds without it.

#![warn(missing_docs)]

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
// the whole campaign, step by step, into a results folder
pub mod campaign;

// model summaries for `faultsweep inspect`
pub mod inspect;
// errors and their exit codes
pub mod error;
// every file the user names, written atomically
pub mod output;
// temporaries tagged with their writer's PID, and the stale ones
pub mod temps;
// time per phase, reported by `faultsweep run --timings`
pub mod phases;
// opening input files: regular files only
mod files;
// advisory locks on results folders and cache entries
mod lock;
// the only unsafe code: exact float32 kernels, tensor views, threads, clock
pub mod kernels;

// The benchmark harness (`faultsweep bench`, benches/, tests/bench.rs):
// the engine against full forward passes, and peak memory. Not part of the
// supported API; the binary's `cli` feature turns it on.
#[cfg(feature = "bench")]
#[doc(hidden)]
pub mod bench;

pub use error::{Error, Result};
