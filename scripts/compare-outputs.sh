#!/usr/bin/env bash
# Behaviour-preserving changes (refactors, dependency moves) must leave every
# campaign's results byte for byte as they were. This script runs every
# scenario in scenarios/ whose model and data are present and compares two
# such runs:
#
#   scripts/compare-outputs.sh run DIR [BINARY]   # results of each scenario in DIR/NAME
#   scripts/compare-outputs.sh diff OLD NEW        # exit 0 when every file is identical
#
# Typical use: `run /tmp/before` on the old commit, `run /tmp/after` on the
# new one, then `diff /tmp/before /tmp/after`, both runs from the same
# checkout path: fault lists, summaries and heatmaps record the model's and
# data's absolute paths. Compared: every file of a results folder except
# provenance.json and scenario.yml (they hold times and the results path). `FAULTSWEEP_COMPARE_INJECTIONS=N` caps each scenario's
# injections (`--injections N`) for a quicker check. Scenarios whose inputs
# are missing (../shared, data/bench) are listed as skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { sed -n '6,7p' "$0" >&2; exit 2; }

# The model and data paths a scenario names, relative to the repository root.
inputs_of() {
    awk '/^(model|data):/{section=1; next} /^[^ #]/{section=0} section && /^  path:/{print $2}' "$1"
}

run_all() {
    local out=$1 binary=${2:-target/release/faultsweep}
    [[ -x $binary ]] || { echo "no binary at $binary (cargo build --release)" >&2; exit 2; }
    mkdir -p "$out"
    local cap=()
    [[ -n ${FAULTSWEEP_COMPARE_INJECTIONS:-} ]] && cap=(--injections "$FAULTSWEEP_COMPARE_INJECTIONS")
    for scenario in scenarios/*.yml; do
        local name missing=""
        name=$(basename "$scenario" .yml)
        for path in $(inputs_of "$scenario"); do
            [[ -e $path ]] || missing=$path
        done
        if [[ -n $missing ]]; then
            echo "skipped $name (no $missing)"
            continue
        fi
        rm -rf "${out:?}/$name"
        local start=$SECONDS
        "$binary" run "$scenario" --out "$out/$name" --cache-dir "$out/.cache" "${cap[@]}" --quiet >/dev/null
        echo "ran $name in $((SECONDS - start)) s"
    done
}

diff_all() {
    local old=$1 new=$2 differ=0 compared=0
    for folder in "$old"/*/; do
        local name
        name=$(basename "$folder")
        if [[ ! -d $new/$name ]]; then
            echo "missing in $new: $name"
            differ=1
            continue
        fi
        for file in "$folder"* "$new/$name"/*; do
            local base
            base=$(basename "$file")
            case $base in provenance.json | scenario.yml) continue ;; esac
            [[ $file == "$new/$name/"* && -e $folder$base ]] && continue
            compared=$((compared + 1))
            if ! cmp -s "$folder$base" "$new/$name/$base"; then
                echo "differs: $name/$base"
                differ=1
            fi
        done
    done
    for folder in "$new"/*/; do
        [[ -d $old/$(basename "$folder") ]] || { echo "missing in $old: $(basename "$folder")"; differ=1; }
    done
    if ((differ)); then
        echo "outputs differ"
        exit 1
    fi
    echo "identical: $compared files in $(find "$old" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | wc -l) results folders"
}

case ${1:-} in
    run) [[ $# -ge 2 ]] || usage; run_all "$2" "${3:-}" ;;
    diff) [[ $# -eq 3 ]] || usage; diff_all "$2" "$3" ;;
    *) usage ;;
esac
