#!/usr/bin/env bash
# The cost of sharding on one machine: a campaign run whole, then as 1, 2
# and 4 shards run at the same time (each with --threads 1, as on a cluster
# node's share) and merged. Prints each way's wall time, its CPU time
# (user + system, summed over the shards and the merge) and their ratio to
# the single run's, and checks that each merge equals the single run.
#   scripts/bench-shards.sh [SCENARIO] [INJECTIONS]
# Default: scenarios/fashion_neurons.yml with 1,000,000 injections on the 1000
# test images. Run it on an idle machine; the cache is cold for every way.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-scenarios/fashion_neurons.yml}
injections=${2:-1000000}
bin=$PWD/target/release/faultsweep
work=$(mktemp -d /tmp/fs-shards.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Wall and CPU seconds of a command, appended to $work/times.
timed() {
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -f "%U %S" -a -o "$work/cpu" "$@" >/dev/null
    end=$(date +%s.%N)
    echo "$start $end" >> "$work/wall"
}
measure() { # name, then the commands run at once (one per argument)
    local name=$1; shift
    rm -f "$work/cpu" "$work/wall"
    local t0 t1
    t0=$(date +%s.%N)
    for cmd in "$@"; do timed sh -c "$cmd" & done
    wait
    t1=$(date +%s.%N)
    local cpu
    cpu=$(awk '{s += $1 + $2} END {printf "%.1f", s}' "$work/cpu")
    echo "$name $(echo "$t1 - $t0" | bc) $cpu"
}
run() { echo "$bin --threads 1 run $scenario --injections $injections --quiet --cache-dir $work/cache-$1 --out $work/$1"; }
: > "$work/table"
measure single "$(run single)" >> "$work/table"
for n in 1 2 4; do
    cmds=()
    for i in $(seq "$n"); do
        cmds+=("$(run "s$n-$i") --shard $i/$n" )
    done
    # Each shard its own cache, as nodes without a shared one.
    line=$(measure "shards-$n" "${cmds[@]}")
    rm -f "$work/cpu" "$work/wall"
    shards=$(for i in $(seq "$n"); do printf '%s ' "$work/s$n-$i"; done)
    timed sh -c "$bin merge $work/m$n $shards"
    merge_cpu=$(awk '{printf "%.1f", $1 + $2}' "$work/cpu")
    merge_wall=$(awk '{printf "%.1f", $2 - $1}' "$work/wall")
    read -r name wall cpu <<< "$line"
    echo "$name $wall $(echo "$cpu + $merge_cpu" | bc) $merge_wall" >> "$work/table"
    for f in injections.csv summary.csv summary.json heatmap.svg golden.csv; do
        cmp -s "$work/single/$f" "$work/m$n/$f" || { echo "merge of $n shards: $f differs" >&2; exit 1; }
    done
done
read -r _ single_wall single_cpu < "$work/table"
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $scenario, $injections injections"
printf '%-10s %10s %10s %10s %12s\n' way "wall s" "cpu s" "cpu ratio" "merge wall s"
while read -r name wall cpu merge; do
    printf '%-10s %10.1f %10.1f %10.3f %12s\n' "$name" "$wall" "$cpu" "$(echo "$cpu / $single_cpu" | bc -l)" "${merge:--}"
done < "$work/table"
echo "every merge equals the single run (injections.csv, summaries, heatmap, golden.csv)"
