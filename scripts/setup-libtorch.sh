#!/usr/bin/env bash
# Lays out a lean CPU libtorch for tch in .libtorch/ from the pinned PyPI wheels.
# Idempotent: a complete .libtorch/ is left alone (no download). A user's own
# LIBTORCH (for example a CUDA build) takes precedence and this script is a no-op.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/.libtorch"
stamp="$dest/.complete"

if [[ -n "${LIBTORCH:-}" ]]; then
  echo "setup-libtorch: LIBTORCH=$LIBTORCH is set; using it" >&2
  exit 0
fi
if [[ -f "$stamp" ]]; then
  exit 0
fi

# name==version  sha256
wheels=(
  "torch==2.13.0 60fcdcb2f3876e21146cb4524ef06397d727ca9ad5f020818547e25075fe3cb7"
  "nvidia-cuda-runtime==13.0.96 7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548"
  "nvidia-cuda-cupti==13.0.85 4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8"
)

python=$(command -v python3 || command -v python) || {
  echo "setup-libtorch: python3 with pip is needed to fetch the libtorch wheels" >&2
  exit 1
}
dl="$root/.libtorch-download"
mkdir -p "$dl"

for entry in "${wheels[@]}"; do
  spec=${entry%% *}
  sum=${entry##* }
  name=${spec%%==*}
  file=$(ls "$dl"/"${name//-/_}"-*.whl 2>/dev/null | head -n1 || true)
  if [[ -z "$file" ]] || ! echo "$sum  $file" | sha256sum --check --status; then
    echo "setup-libtorch: downloading $spec" >&2
    rm -f "$dl"/"${name//-/_}"-*.whl
    "$python" -m pip download --quiet --no-deps --only-binary=:all: \
      --python-version 3.11 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d "$dl" "$spec"
    file=$(ls "$dl"/"${name//-/_}"-*.whl | head -n1)
  fi
  echo "$sum  $file" | sha256sum --check --status || {
    echo "setup-libtorch: sha256 mismatch for $file (expected $sum)" >&2
    exit 1
  }
done

tmp="$dest.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/lib"
"$python" - "$dl" "$tmp" <<'PY'
import sys, zipfile, glob, os, shutil
dl, out = sys.argv[1], sys.argv[2]
keep_libs = ("libc10.so", "libtorch_cpu.so", "libgomp", "libshm.so", "libcudart.so.13", "libcupti.so.13")
for whl in sorted(glob.glob(os.path.join(dl, "*.whl"))):
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            n = info.filename
            if info.is_dir():
                continue
            if n.startswith("torch/include/"):
                target = os.path.join(out, n[len("torch/"):])
            elif "/lib/" in n and os.path.basename(n).startswith(keep_libs):
                target = os.path.join(out, "lib", os.path.basename(n))
            else:
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
PY
# libtorch.so in the wheel needs the CUDA libraries; the CPU library serves tch.
ln -sf libtorch_cpu.so "$tmp/lib/libtorch.so"
for l in "$tmp"/lib/libgomp*.so*; do
  [[ -e "$tmp/lib/libgomp.so.1" ]] || ln -sf "$(basename "$l")" "$tmp/lib/libgomp.so.1"
done
touch "$tmp/.complete"
rm -rf "$dest"
mv "$tmp" "$dest"
rm -rf "$dl"
echo "setup-libtorch: CPU libtorch ready in $dest" >&2
