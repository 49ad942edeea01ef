#!/usr/bin/env bash
# The full Fashion-MNIST test set (10,000 images and labels) for the cache
# benchmark (scenarios/bench_fashion_10k_bits.yml), and the training set
# (60,000) for its memory check (docs/cache.md), from Debian's package
# dataset-fashion-mnist: downloaded with apt-get (no root needed) and
# unpacked into data/bench/fashion-mnist/. The repository keeps only the
# first 1,000 images (data/fashion-mnist/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=data/bench/fashion-mnist
files=(t10k-images-idx3 t10k-labels-idx1 train-images-idx3 train-labels-idx1)
missing=0
for f in "${files[@]}"; do [[ -f $out/$f-ubyte.gz ]] || missing=1; done
[[ $missing == 0 ]] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download dataset-fashion-mnist >/dev/null 2>&1)
dpkg-deb -x "$work"/dataset-fashion-mnist_*.deb "$work/root"
mkdir -p "$out"
for f in "${files[@]}"; do
  cp "$work/root/usr/share/datasets/fashion-mnist/$f-ubyte.gz" "$out/"
done
echo "get-fashion-mnist: $out/t10k-images-idx3-ubyte.gz (10,000 images), train-images-idx3-ubyte.gz (60,000) and labels"
