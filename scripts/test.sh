#!/usr/bin/env bash
# The README's second command: fetches libtorch if missing and runs the whole
# test suite (release profile, shared with scripts/demo.sh so libtorch's
# bindings are built once).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-libtorch.sh
cargo test --release "$@"
