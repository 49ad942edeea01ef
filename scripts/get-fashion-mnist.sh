#!/usr/bin/env bash
# The full Fashion-MNIST test set (10,000 images and labels) for the cache
# benchmark (scenarios/bench_fashion_10k_bits.yml), from Debian's package
# dataset-fashion-mnist: downloaded with apt-get (no root needed) and
# unpacked into data/bench/fashion-mnist/. The repository keeps only the
# first 1,000 images (data/fashion-mnist/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=data/bench/fashion-mnist
if [[ -f $out/t10k-images-idx3-ubyte.gz && -f $out/t10k-labels-idx1-ubyte.gz ]]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download dataset-fashion-mnist >/dev/null 2>&1)
dpkg-deb -x "$work"/dataset-fashion-mnist_*.deb "$work/root"
mkdir -p "$out"
cp "$work"/root/usr/share/datasets/fashion-mnist/t10k-{images-idx3,labels-idx1}-ubyte.gz "$out/"
echo "get-fashion-mnist: $out/t10k-images-idx3-ubyte.gz (10,000 images) and labels"
