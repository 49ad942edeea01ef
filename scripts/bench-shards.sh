#!/usr/bin/env bash
# The cost of sharding on one machine: a campaign run whole, then as 1, 2
# and 4 shards (each with --threads 1 and its own cold cache, as nodes
# without a shared cache), merged, each merge checked against the single
# run. For each way it prints the wall time with the shards run at the same
# time, the shards' summed CPU time (user + system) with the shards run one
# after another (the cost of sharding, without the shards' contention for
# the cores), its ratio to the single run's, and the merge's wall time.
#   scripts/bench-shards.sh [SCENARIO] [INJECTIONS]
# Default: scenarios/fashion_neurons.yml with 1,000,000 injections on the
# 1000 test images. Needs bc and GNU time; run it on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-scenarios/fashion_neurons.yml}
injections=${2:-1000000}
bin=$PWD/target/release/faultsweep
work=$(mktemp -d /tmp/fs-shards.XXXXXX)
trap 'rm -rf "$work"' EXIT
run() { # folder [--shard I/N]
    local out=$1; shift
    rm -rf "$work/$out" "$work/cache-$out"
    echo "$bin --threads 1 run $scenario --injections $injections --quiet --cache-dir $work/cache-$out --out $work/$out $*"
}
cpu() { # seconds of user + system CPU of a command
    /usr/bin/time -f "%U %S" -o "$work/cpu" sh -c "$1" >/dev/null
    awk '{printf "%.1f", $1 + $2}' "$work/cpu"
}
now() { date +%s.%N; }
single_cpu=$(cpu "$(run single)")
printf '%-9s %9s %13s %9s %12s\n' way "wall s" "shards cpu s" "cpu ratio" "merge wall s" > "$work/table"
printf '%-9s %9s %13s %9s %12s\n' single "-" "$single_cpu" 1.000 - >> "$work/table"
for n in 1 2 4; do
    # At the same time: the wall time.
    t0=$(now)
    for i in $(seq "$n"); do sh -c "$(run "s$i" --shard "$i/$n")" >/dev/null & done
    wait
    wall=$(echo "$(now) - $t0" | bc)
    # One after another: the CPU time.
    total=0
    for i in $(seq "$n"); do
        total=$(echo "$total + $(cpu "$(run "s$i" --shard "$i/$n")")" | bc)
    done
    shards=$(for i in $(seq "$n"); do printf '%s ' "$work/s$i"; done)
    rm -rf "$work/merged"
    t0=$(now)
    "$bin" merge "$work/merged" $shards >/dev/null
    merge=$(echo "$(now) - $t0" | bc)
    for f in injections.csv injections.sums summary.csv summary.json heatmap.svg golden.csv; do
        cmp -s "$work/single/$f" "$work/merged/$f" || { echo "merge of $n shards: $f differs" >&2; exit 1; }
    done
    printf '%-9s %9.1f %13.1f %9.3f %12.1f\n' "shards-$n" "$wall" "$total" "$(echo "$total / $single_cpu" | bc -l)" "$merge" >> "$work/table"
done
single_wall=$( { /usr/bin/time -f "%e" sh -c "$(run single)" >/dev/null; } 2>&1 | tail -1)
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $scenario, $injections injections; single run: $single_wall s wall"
cat "$work/table"
echo "every merge equals the single run (injections.csv, injections.sums, summaries, heatmap, golden.csv)"
