#!/usr/bin/env bash
# The exactness tests (kernels, cuts, engine against the full forward pass,
# windows, threads, resume, quantized models against onnxruntime) as a CPU
# without AVX-512 runs them, whatever CPU this is: faultsweep's AVX-512
# kernels off, and libtorch, MKL and oneDNN
# limited to AVX2. About 3 minutes on 2 cores once built (scripts/test.sh,
# which runs them here and lists what they skipped, builds the same
# binaries).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export FAULTSWEEP_AVX512=off
export ATEN_CPU_CAPABILITY=avx2
export MKL_ENABLE_INSTRUCTIONS=AVX2
export ONEDNN_MAX_CPU_ISA=AVX2
exec scripts/test.sh -- graph::ops:: inject:: kernels:: cuts:: \
  campaign::windows_ campaign::one_thread_and_two interrupt:: quantized:: "$@"
