//! The one integration-test binary (one link of libtorch for all tests).

mod common;

mod cuts;
mod ops_nn;
mod parity;
