//! The one integration-test binary (one link of libtorch for all tests).

mod common;

mod cuts;
mod ops_tensor;
mod parity;
