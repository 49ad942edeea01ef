//! The one integration-test binary (one link of libtorch for all tests).

mod common;

mod cli;
mod cuts;
mod errors;
mod faults;
mod parity;
mod scenario;
