#!/usr/bin/env bash
# The README's first command: fetches libtorch if missing, builds faultsweep,
# and runs it on the bundled demo model and data (Fashion-MNIST CNN, 1,000
# official test images). Until the campaign engine lands this is a fault-free
# inference with its accuracy; it becomes the demo campaign then.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-libtorch.sh
cargo build --release --quiet
bin=target/release/faultsweep
"$bin" inspect models/fashion_cnn.onnx
mkdir -p results
"$bin" infer models/fashion_cnn.onnx data/fashion-mnist/t10k-1000-images.npy \
  --out results/demo-logits.npy --labels data/fashion-mnist/t10k-1000-labels.npy
