#!/usr/bin/env bash
# The README's first command: fetches libtorch if missing, builds faultsweep,
# and runs it on the bundled demo model and data (Fashion-MNIST CNN, 1,000
# official test images). Until the campaign engine lands this is the
# fault-free golden run (accuracy, cache filling, golden.csv); it becomes the
# demo campaign then.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-libtorch.sh
cargo build --release --quiet
bin=target/release/faultsweep
model=models/fashion_cnn.onnx
"$bin" inspect "$model" | sed -n '1,20p'
"$bin" golden "$model" data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz \
  --labels data/fashion-mnist/t10k-1000-labels-idx1-ubyte.gz \
  --cuts 3,6,9 --out results/demo-golden
