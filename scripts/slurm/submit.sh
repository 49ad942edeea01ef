#!/bin/sh
# Submits a faultsweep campaign to Slurm as N shards and a merge:
#   scripts/slurm/submit.sh SCENARIO RESULTS N [sbatch options...]
# prints the two job ids. The merge runs only when every shard succeeded
# (afterok); results end in RESULTS/merged. Paths must be absolute and
# visible from every node.
set -eu
if [ $# -lt 3 ]; then
    echo "usage: $0 SCENARIO RESULTS N [sbatch options...]" >&2
    exit 2
fi
scenario=$1
results=$2
count=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$results"
array=$(sbatch --parsable --array="1-$count" --chdir="$results" "$@" "$here/shards.sbatch" "$scenario" "$results")
array=${array%%;*}
merge=$(sbatch --parsable --dependency="afterok:$array" --chdir="$results" "$@" "$here/merge.sbatch" "$results" "$count")
echo "$array $merge"
