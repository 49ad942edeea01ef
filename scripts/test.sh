#!/usr/bin/env bash
# The README's second command: fetches libtorch if missing and runs the whole
# test suite (release profile, shared with scripts/demo.sh so libtorch's
# bindings are built once).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-libtorch.sh
# One test at a time: tests that run libtorch side by side make its OpenMP
# threads spin against each other on two cores (slower, and MKL may then
# split work differently between runs).
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-1}"
cargo test --release "$@"
