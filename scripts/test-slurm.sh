#!/usr/bin/env bash
# End-to-end test of scripts/slurm on a real single-node Slurm: installs
# slurm-wlm and munge from Debian's packages when missing (root with apt),
# writes a minimal slurm.conf for this host, starts munged, slurmctld and
# slurmd, submits a demo campaign as an array of 4 shards and the merge,
# waits, compares the merged folder with a single run file by file, and
# stops what it started. Prints "SKIPPED: why" and exits 0 when Slurm cannot
# run on this machine. Takes about 1 to 3 minutes (package install
# included). Needs target/release/faultsweep (scripts/test.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=$root/target/release/faultsweep
skip() { echo "test-slurm: SKIPPED: $*"; exit 0; }
[ -x "$bin" ] || { echo "test-slurm: $bin is missing: run scripts/test.sh first" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "test-slurm: installing slurm-wlm and munge"
        install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null 2>&1; }
        install || { apt-get update -q >/dev/null 2>&1 && install; } \
            || skip "apt-get install slurm-wlm munge failed"
    else
        skip "slurm-wlm and munge are not installed (needs root and apt-get to install them)"
    fi
fi

work=$(mktemp -d /tmp/fs-slurm.XXXXXX)
conf=$work/slurm.conf
started=()
stop() {
    for pidfile in "${started[@]}"; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 1
    rm -rf "$work"
}
trap stop EXIT
logs() { tail -n 20 "$work"/*.log 2>/dev/null || true; }

# munge: the authentication every Slurm daemon and command uses.
if ! pgrep -x munged >/dev/null 2>&1; then
    [ -f /etc/munge/munge.key ] || mungekey --create >/dev/null 2>&1 || skip "cannot create a munge key"
    mkdir -p /run/munge && chown munge:munge /run/munge /etc/munge/munge.key 2>/dev/null || true
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid || skip "munged does not start"
    started+=(/run/munge/munged.pid)
fi

host=$(hostname -s 2>/dev/null || uname -n | cut -d. -f1)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
mkdir -p "$work/state" "$work/spool"
cat > "$conf" <<CONF
ClusterName=faultsweep-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmdSpoolDir=$work/spool
StateSaveLocation=$work/state
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$conf
slurmctld -f "$conf" || { logs; skip "slurmctld does not start"; }
started+=("$work/slurmctld.pid")
slurmd -f "$conf" || { logs; skip "slurmd does not start"; }
started+=("$work/slurmd.pid")
for _ in $(seq 60); do
    state=$(sinfo -h -o %t 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 1
done
[ "$state" = idle ] || { logs; skip "the Slurm node did not become idle (state: ${state:-none})"; }
echo "test-slurm: Slurm $(sinfo -V | awk '{print $2}') up on $host ($cpus CPUs)"

# The campaign: the demo CNN, 400 injections on 200 test images.
cat > "$work/scenario.yml" <<SCENARIO
name: slurm_demo
seed: 5
model:
  path: $root/models/fashion_cnn.onnx
data:
  path: $root/data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz
  labels: $root/data/fashion-mnist/t10k-1000-labels-idx1-ubyte.gz
  subset:
    first: 200
targets:
  layers:
    ops: [Conv, Gemm]
counts:
  injections: 400
SCENARIO
export FAULTSWEEP=$bin FAULTSWEEP_CACHE=$work/cache
"$bin" run "$work/scenario.yml" --out "$work/single" --quiet >/dev/null
read -r array merge < <(scripts/slurm/submit.sh "$work/scenario.yml" "$work/results" 4 --cpus-per-task=1)
echo "test-slurm: submitted array job $array (4 shards) and merge job $merge"
for _ in $(seq 600); do
    [ -z "$(squeue -h -j "$array,$merge" 2>/dev/null)" ] && break
    sleep 1
done
[ -z "$(squeue -h -j "$array,$merge" 2>/dev/null)" ] || { logs; echo "test-slurm: FAILED: the jobs did not finish in 10 minutes" >&2; exit 1; }
if [ ! -f "$work/results/merged/provenance.json" ]; then
    cat "$work"/results/*.out 2>/dev/null || true
    logs
    echo "test-slurm: FAILED: no merged results" >&2
    exit 1
fi
for i in 1 2 3 4; do
    [ -f "$work/results/shard-$i/provenance.json" ] || { echo "test-slurm: FAILED: shard $i missing" >&2; exit 1; }
done
for f in injections.csv injections.sums golden.csv ranges.csv faults.bin summary.csv summary.md summary.json heatmap.svg cma.svg; do
    cmp -s "$work/single/$f" "$work/results/merged/$f" || { echo "test-slurm: FAILED: $f of the merge differs from the single run's" >&2; exit 1; }
done
"$bin" report "$work/results/merged" >/dev/null
echo "test-slurm: passed: 4 shards run by Slurm and merged equal a single run, file by file"
