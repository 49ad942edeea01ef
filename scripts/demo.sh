#!/usr/bin/env bash
# The README's first command: fetches libtorch if missing, builds faultsweep,
# and runs a real fault-injection campaign on the bundled demo model and data:
# 2,000 transient single-bit flips in the activations of every Conv and Gemm
# layer of the Fashion-MNIST CNN (scenarios/fashion_neurons.yml), with 100 of
# them rerun as plain full forward passes to verify the outcomes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-libtorch.sh
cargo build --release --quiet
# Each demo starts afresh: run refuses to write over a campaign.
rm -rf results/demo
target/release/faultsweep run scenarios/fashion_neurons.yml --out results/demo --verify 100
echo
# The overall rates and the rates per layer (summary.md has per bit, op and format too).
awk '/^## /{show = ($2 == "overall" || $2 == "layer")} show' results/demo/summary.md
