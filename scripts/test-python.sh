#!/usr/bin/env bash
# The Python package's tests: a virtual environment with torch==2.13.* from
# PyPI (target/python/venv, kept between runs), the wheel built with maturin
# against that torch's libtorch (target/python/wheels; Cargo's build folder
# target/python/cargo, kept, so a rebuild compiles only what changed), the
# wheel installed, then pytest on python/tests. pytest's "no tests
# collected" fails the script. Extra arguments go to pytest.
#
# Where the Python that runs this script already has torch 2.13 (about
# 5 GB with its CUDA libraries from PyPI), the environment sees its
# packages (--system-site-packages) instead of downloading them again;
# FAULTSWEEP_FRESH_VENV=1 makes a self-contained one (in a folder of its own:
# FAULTSWEEP_VENV=DIR). PYTHON chooses the interpreter (default python3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
work=$root/target/python
venv=${FAULTSWEEP_VENV:-$work/venv}
python=${PYTHON:-python3}
started=$SECONDS

if [[ ! -x $venv/bin/python ]]; then
    flags=()
    if [[ -z ${FAULTSWEEP_FRESH_VENV:-} ]] &&
        "$python" -c 'import sys, torch; sys.exit(not torch.__version__.startswith("2.13."))' 2>/dev/null; then
        flags=(--system-site-packages)
    fi
    echo "test-python: creating $venv ${flags[*]:-}" >&2
    "$python" -m venv "${flags[@]}" "$venv"
fi
"$venv/bin/python" -m pip install --quiet -r python/requirements-test.txt

# tch finds libtorch through this Python's torch (python/.cargo/config.toml
# sets LIBTORCH_USE_PYTORCH=1; torch-sys runs `python` of VIRTUAL_ENV).
export VIRTUAL_ENV=$venv PATH=$venv/bin:$PATH
export CARGO_TARGET_DIR=$work/cargo
rm -rf "$work/wheels"
t0=$SECONDS
(cd python && maturin build --release --quiet --interpreter "$venv/bin/python" -o "$work/wheels")
echo "test-python: wheel built in $((SECONDS - t0)) s: $(ls "$work"/wheels/*.whl)" >&2
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps "$work"/wheels/*.whl
"$venv/bin/python" -m pip install --quiet "$(ls "$work"/wheels/*.whl)"

# From the repository root: the source folder python/faultsweep (no
# extension in it) must not shadow the installed package.
status=0
"$venv/bin/python" -m pytest -p no:cacheprovider --rootdir python python/tests -ra "$@" || status=$?
if [[ $status == 5 ]]; then
    echo "test-python: pytest collected no tests" >&2
fi
echo "test-python: $((SECONDS - started)) s in all" >&2
exit "$status"
