#!/usr/bin/env bash
# The dependency checks of CI (deny.toml): licences, bans and sources always;
# security advisories where the RustSec database can be fetched (it is a git
# clone from GitHub, outside the crate registry: without it the advisory
# check is reported as skipped, not failed). Installs cargo-deny from
# crates.io when missing (`cargo install --locked`; about 18 minutes of wall
# time with CARGO_BUILD_JOBS=1 on a loaded 2-core machine, 4 of CPU).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! cargo deny --version >/dev/null 2>&1; then
    echo "deny.sh: installing cargo-deny (cargo install cargo-deny --locked)" >&2
    cargo install cargo-deny --locked
fi

# The root's tree has no target-lexicon: its exception (for python/) is
# not a warning here.
cargo deny check -A license-exception-not-encountered licenses bans sources
# The Python extension (python/, a workspace of its own: PyO3 and its
# dependencies) against the same policy (deny.toml, found in the parent folder).
cargo deny --manifest-path python/Cargo.toml check licenses bans sources

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if cargo deny check advisories >"$log" 2>&1; then
    cat "$log"
elif grep -q "failed to fetch advisory database" "$log"; then
    echo "deny.sh: advisories skipped: the RustSec database could not be fetched" >&2
else
    cat "$log"
    exit 1
fi
