#!/usr/bin/env bash
# The README's second command: fetches libtorch if missing and runs the whole
# test suite (release profile, shared with scripts/demo.sh so libtorch's
# bindings are built once), then lists the tests that skipped something
# this machine lacks (../shared, root, a benchmark model). Extra arguments
# go to `cargo test` (a filter, or `-- --nocapture`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-libtorch.sh
# One test at a time: tests that run libtorch side by side make its OpenMP
# threads spin against each other on two cores (slower, and MKL may then
# split work differently between runs).
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-1}"
# tests/common.rs `skip` appends a line per skipped test here.
skipped="${CARGO_TARGET_DIR:-target}/tmp/skipped.txt"
rm -f "$skipped"
status=0
cargo test --release "$@" || status=$?
if [[ -s "$skipped" ]]; then
  echo "$(sort -u "$skipped" | wc -l) tests skipped a part this machine cannot run:"
  sort -u "$skipped" | sed 's/^/  /'
fi
exit "$status"
