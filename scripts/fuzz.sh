#!/usr/bin/env bash
# Runs one cargo-fuzz target for a while (CONTRIBUTING.md, "Fuzzing").
#
#   scripts/fuzz.sh TARGET [SECONDS] [-- LIBFUZZER_FLAGS...]
#
# TARGET is `loader` (ONNX bytes -> graph), `scenario` (YAML text ->
# validated campaign against the demo model), or a data reader: `npy`,
# `idx` (raw or gzipped) or `images` (an image folder); SECONDS defaults
# to 600.
# Installs cargo-fuzz if missing. Works on the stable toolchain:
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags (AddressSanitizer).
# One fuzzing process (one core). The committed seeds are in
# fuzz/seeds/TARGET; new interesting inputs go to fuzz/corpus/TARGET
# (git-ignored), crashes to fuzz/artifacts/TARGET. `scripts/fuzz.sh TARGET
# cmin` merges seeds and corpus back into a minimal fuzz/seeds/TARGET.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target="${1:?usage: scripts/fuzz.sh loader|scenario|npy|idx|images [SECONDS|cmin] [-- LIBFUZZER_FLAGS...]}"
shift
seconds=600
if [[ $# -gt 0 && "$1" != "--" ]]; then
    seconds="$1"
    shift
fi
[[ "${1:-}" == "--" ]] && shift
case "$target" in
    loader | scenario | npy | idx | images) ;;
    *) echo "unknown target '$target' (loader, scenario, npy, idx, images)" >&2; exit 2 ;;
esac
scripts/setup-libtorch.sh
if ! command -v cargo-fuzz >/dev/null; then
    cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
# libtorch allocates outside ASan's view; leaks at exit are not findings.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
cd fuzz
mkdir -p "corpus/$target" "seeds/$target"
if [[ "$seconds" == cmin ]]; then
    # Minimise the seeds plus everything found since into fuzz/seeds/TARGET.
    rm -rf "seeds/$target.new"
    mkdir -p "seeds/$target.new"
    cargo fuzz run "$target" "seeds/$target.new" "seeds/$target" "corpus/$target" -- -merge=1 "$@"
    rm -rf "seeds/$target"
    mv "seeds/$target.new" "seeds/$target"
    exit 0
fi
dict=()
[[ -f "$target.dict" ]] && dict=(-dict="$target.dict")
# Writable corpus first (libFuzzer adds new inputs there), then the seeds.
cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 "${dict[@]}" "$@"
