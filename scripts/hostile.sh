#!/usr/bin/env bash
# A hostile run: feeds faultsweep malformed models, data sets, scenarios,
# cache states and outputs, kills campaigns and runs them concurrently, and
# tallies how each case ended:
#   clean     a documented exit code (2 to 11) with a message
#   ok        exit 0 where that is right (a rebuilt cache, a resumed run)
#   accepted  exit 0 where an error was expected
#   panic     a Rust panic, an abort or a signal
#   hang      still running after 60 s
#   lost      a resumed or concurrent campaign whose results differ from
#             the uninterrupted run's, or that cannot finish
# Cases other than clean and ok are printed. Exit status: 1 if any case is
# a panic, hang or lost.
#
#   scripts/hostile.sh [BINARY]     (default: target/release/faultsweep)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fs=$(realpath "${1:-target/release/faultsweep}")
repo=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export FAULTSWEEP_CACHE=$work/cache
declare -A tally=()
total=0

# check NAME EXPECT CMD...: runs CMD and files its ending (EXPECT: error,
# ok or any).
check() {
    local name=$1 expect=$2 kind
    shift 2
    timeout 60 "$@" >"$work/out" 2>"$work/err" </dev/null
    local rc=$?
    if [[ $rc == 124 ]]; then
        kind=hang
    elif [[ $rc == 101 || $rc -ge 128 ]] || grep -qE "panicked at|stack backtrace|terminate called" "$work/err"; then
        kind=panic
    elif [[ $rc == 0 ]]; then
        [[ $expect == error ]] && kind=accepted || kind=ok
    elif [[ $rc -ge 2 && $rc -le 11 && -s $work/err ]]; then
        [[ $expect == ok ]] && kind=failed || kind=clean
    else
        kind=other
    fi
    tally[$kind]=$((${tally[$kind]:-0} + 1))
    total=$((total + 1))
    if [[ $kind != clean && $kind != ok ]]; then
        echo "$kind (exit $rc): $name: $(head -c 300 "$work/err" | tr '\n' ' ')"
    fi
}

# lost NAME: files a case whose results were lost or differ.
lost() {
    tally[lost]=$((${tally[lost]:-0} + 1))
    total=$((total + 1))
    echo "lost: $1"
}

demo=$repo/models/fashion_cnn.onnx
npy=$repo/data/fashion-mnist/t10k-1000-images.npy
idx=$repo/data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz
m=$work/models d=$work/data
mkdir -p "$m" "$d"

# --- models: through inspect, infer and golden ---------------------------
head -c 0 /dev/null >"$m/empty.onnx"
head -c 4096 /dev/urandom >"$m/random.onnx"
size=$(stat -c %s "$demo")
for cut in 1 17 100 1000 $((size / 2)) $((size - 1)); do
    head -c "$cut" "$demo" >"$m/truncated_$cut.onnx"
done
mkdir "$m/folder.onnx"
mkfifo "$m/fifo.onnx"
cp "$demo" "$m/$(printf 'caf\xe9.onnx')"
models=("$m"/* "$repo"/tests/fixtures/errors/*.onnx /dev/null "$m/missing.onnx")
for model in "${models[@]}"; do
    check "inspect $model" any "$fs" inspect "$model"
    check "infer $model" any "$fs" infer "$model" "$npy" --out "$work/out.npy"
    check "golden $model" any "$fs" golden "$model" "$npy" --first 4
done

# --- data sets: through golden and infer ----------------------------------
bytes=$(stat -c %s "$npy")
for cut in 0 5 10 64 127 128 200 $((bytes / 2)) $((bytes - 1)); do
    head -c "$cut" "$npy" >"$d/cut_$cut.npy"
done
# Headers that promise what the bytes do not hold, or describe another layout.
npy_header() { # DESCR SHAPE FORTRAN -> a .npy header for a tiny body
    local dict="{'descr': '$1', 'fortran_order': $3, 'shape': $2, }"
    local pad=$((128 - 10 - ${#dict} - 1))
    printf '\x93NUMPY\x01\x00\x76\x00%s%*s\n' "$dict" "$pad" ""
}
{ npy_header '<f4' '(800000000, 1, 28, 28)' False; head -c 25000 /dev/zero; } >"$d/promises.npy"
{ npy_header '>f4' '(2, 1, 28, 28)' False; head -c 6272 /dev/zero; } >"$d/big_endian.npy"
{ npy_header '<f4' '(2, 1, 28, 28)' True; head -c 6272 /dev/zero; } >"$d/fortran.npy"
{ npy_header '|O' '(2,)' False; head -c 16 /dev/zero; } >"$d/objects.npy"
{ npy_header '<f4' '(0, 1, 28, 28)' False; } >"$d/no_samples.npy"
{ npy_header '<f4' '(18446744073709551615, 2)' False; } >"$d/overflow.npy"
{ npy_header '<c8' '(2, 1, 28, 28)' False; head -c 12544 /dev/zero; } >"$d/complex.npy"
gunzip -c "$idx" >"$d/raw.idx"
head -c 1000 "$d/raw.idx" >"$d/cut.idx"
printf '\x00\x00\x08\xff' >"$d/dims255.idx"
head -c 1020 /dev/zero >>"$d/dims255.idx"
{ printf '\x00\x00\x08\x03\xff\xff\xff\xff\x00\x00\x00\x1c\x00\x00\x00\x1c'; head -c 784000 /dev/zero; } >"$d/count.idx"
{ printf '\x00\x00\x08\x03\x00\x01\x86\xa0\x00\x01\x86\xa0\x00\x00\x00\x01'; head -c 1000 /dev/zero; } >"$d/dims.idx"
head -c 3000 "$idx" >"$d/cut.idx.gz"
head -c 4096 /dev/urandom >"$d/random.idx.gz"
mkdir -p "$d/empty_folder" "$d/fifo_folder/a" "$d/nested/c0/sub" "$d/mixed/a"
mkfifo "$d/fifo_folder/a/x.png"
head -c 100 /dev/urandom >"$d/mixed/a/broken.png"
for data in "$d"/* /dev/null "$d/missing.npy"; do
    check "golden on $data" any "$fs" golden "$demo" "$data" --first 8
    [[ $data == *.npy ]] && check "infer on $data" any "$fs" infer "$demo" "$data" --out "$work/out.npy"
done
for bad in "--first 0" "--batch-size 0" "--scale 0" "--std 0" "--threads 0" "--threads 100000" "--first 5000"; do
    # shellcheck disable=SC2086
    check "golden $bad" error "$fs" golden "$demo" "$npy" $bad
done
check "images given as labels" error "$fs" golden "$demo" "$npy" --labels "$idx"

# --- scenarios: faults gen and run ----------------------------------------
scenario() { # NAME EDIT -> a copy of fashion_neurons.yml with one line edited
    sed "$2" "$repo/scenarios/fashion_neurons.yml" >"$work/$1.yml"
    echo "$work/$1.yml"
}
for edit in \
    's|^name: .*|name: ../../escape|' 's|^name: .*|name: ""|' 's|^name: .*|name: .hidden|' \
    's|injections: 2000|injections: -1|' 's|injections: 2000|injections: 100000000000000|' \
    's|injections: 2000|injections: 0|' 's|bits: all|bits: [40]|' 's|ops: \[Conv, Gemm\]|ops: [Nope]|' \
    's|batch_size: 64|batch_size: 0|' 's|batch_size: 64|batch_size: 64\n  window: 0|' \
    's|seed: .*|seed: -5|' 's|model: bit_flip|model: nope|' 's|dtype: fp32|dtype: fp128|' \
    's|path: models/fashion_cnn.onnx|path: /dev/zero|' 's|^data:|daata:|' 's|^  path: data.*|  path: /nonexistent|' \
    's|^counts:|counts: [|' 's|^seed:|\tseed:|'; do
    sc=$(cd "$repo" && scenario edited "$edit")
    check "faults gen ($edit)" error "$fs" faults gen "$sc" --out "$work/f.csv"
    check "run ($edit)" error "$fs" run "$sc" --out "$work/run_edited" --quiet
    rm -rf "$work/run_edited"
done
# Without --out, results go to results/NAME under the working directory: a
# sandbox whose models/ and data/ are the repository's.
sandbox=$work/sandbox/a/b
mkdir -p "$sandbox"
ln -s "$repo/models" "$repo/data" "$sandbox/"
for name in ../../escape .hidden; do
    sc=$(cd "$repo" && scenario named "s|^name: .*|name: $name|")
    check "run named $name, no --out" error env -C "$sandbox" "$fs" run "$sc" --quiet
done
seeds=(fuzz/seeds/scenario/*)
for i in $(seq 0 37 $((${#seeds[@]} - 1))); do
    check "faults gen fuzz seed ${seeds[$i]}" any "$fs" faults gen "${seeds[$i]}" --out "$work/f.csv"
done

# --- cache: corruptions are found and rebuilt to the same results ---------
c=$work/c
"$fs" golden "$demo" "$npy" --cuts 3,6 --cache-dir "$c" --out "$work/golden_ref" >/dev/null 2>&1
entries=("$c"/*.fsc)
for round in 1 2 3 4 5 6 7 8; do
    rm -rf "$c" && "$fs" golden "$demo" "$npy" --cuts 3,6 --cache-dir "$c" >/dev/null 2>&1
    entries=("$c"/*.fsc)
    entry=${entries[0]}
    size=$(stat -c %s "$entry")
    case $round in
        1) truncate -s $((size / 2)) "$entry" ;;
        2) truncate -s 0 "$entry" ;;
        3) rm "$entry" && mkdir "$entry" ;;
        4) cp "${entries[1]}" "$entry" ;;
        *) printf '\xff' | dd of="$entry" bs=1 seek=$((size * (round - 4) / 5)) conv=notrunc 2>/dev/null ;;
    esac
    check "cache verify, corruption $round" error "$fs" cache verify --cache-dir "$c"
    if [[ $round == 3 ]]; then
        # A folder where an entry should be is named, never removed.
        check "golden over a folder in place of an entry" error "$fs" golden "$demo" "$npy" --cuts 3,6 --cache-dir "$c"
        continue
    fi
    check "golden over corruption $round" ok "$fs" golden "$demo" "$npy" --cuts 3,6 --cache-dir "$c" --out "$work/golden_$round"
    cmp -s "$work/golden_ref/golden.csv" "$work/golden_$round/golden.csv" || lost "golden.csv after corruption $round"
done

# --- outputs --------------------------------------------------------------
ln -s "$work/target.csv" "$work/link.csv"
# A private copy of /dev/full (as root): a tool that renames a file over it
# damages this copy, not the machine's.
if mknod "$work/full" c 1 7 2>/dev/null; then
    check "faults gen --out a device" error "$fs" faults gen scenarios/fashion_neurons.yml --out "$work/full"
    check "infer --out a device" error "$fs" infer "$demo" "$npy" --out "$work/full"
    [[ -c $work/full ]] || lost "an output replaced a device node"
fi
check "faults gen --out a symlink" ok "$fs" faults gen scenarios/fashion_neurons.yml --out "$work/link.csv"
[[ -L $work/link.csv && -s $work/target.csv ]] || lost "faults gen replaced the symlink"
check "faults gen --out a folder" error "$fs" faults gen scenarios/fashion_neurons.yml --out "$work"
check "faults gen --out a missing folder" error "$fs" faults gen scenarios/fashion_neurons.yml --out "$work/no/such/dir/f.csv"
check "report of a missing folder" error "$fs" report "$work/nowhere"
check "resume of a file" error "$fs" run --resume "$demo"

# --- interruptions: kill -9 and resume ------------------------------------
big=$(cd "$repo" && scenario big 's|injections: 2000|injections: 40000|')
"$fs" run "$big" --out "$work/ref" --quiet >/dev/null 2>&1
for round in $(seq 1 10); do
    rm -rf "$work/killed"
    (cd "$repo" && exec "$fs" run "$big" --out "$work/killed" --quiet >/dev/null 2>&1) &
    sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
    kill -9 $! 2>/dev/null
    wait $! 2>/dev/null
    if [[ -f $work/killed/scenario.yml ]]; then
        check "resume after kill $round" ok "$fs" run --resume "$work/killed" --quiet
        for f in injections.csv summary.csv summary.json; do
            cmp -s "$work/ref/$f" "$work/killed/$f" || lost "kill round $round: $f differs"
        done
    fi
done

# --- concurrency: two resumes of one folder at once -----------------------
for round in 1 2 3; do
    rm -rf "$work/twice"
    (cd "$repo" && exec "$fs" run "$big" --out "$work/twice" --quiet >/dev/null 2>&1) &
    sleep 0.3
    kill -9 $! 2>/dev/null
    wait $! 2>/dev/null
    [[ -f $work/twice/scenario.yml ]] || continue
    "$fs" run --resume "$work/twice" --quiet >/dev/null 2>"$work/one.err" &
    "$fs" run --resume "$work/twice" --quiet >/dev/null 2>"$work/two.err"
    second=$?
    wait $!
    first=$?
    check "report after two resumes at once, round $round" any "$fs" report "$work/twice"
    if [[ $first != 0 && $second != 0 ]]; then
        check "resume after the race, round $round" ok "$fs" run --resume "$work/twice" --quiet
    fi
    cmp -s "$work/ref/injections.csv" "$work/twice/injections.csv" || lost "two resumes at once, round $round: injections.csv differs"
done

for sibling in "$sandbox/../../escape" "$sandbox/results/.hidden"; do
    [[ -e $sibling ]] && lost "a scenario wrote outside results/: $sibling"
done

line="hostile run: $total cases"
for kind in clean ok accepted failed other panic hang lost; do
    line+=", $kind ${tally[$kind]:-0}"
done
echo "$line"
[[ ${tally[panic]:-0} == 0 && ${tally[hang]:-0} == 0 && ${tally[lost]:-0} == 0 ]]
