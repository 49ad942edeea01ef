//! Agreement with PyTorchFI 0.6.0. In: `tests/fixtures/pytorchfi/`, written
//! by `scripts/make_pytorchfi_agreement.py` (a Conv-BN-ReLU CNN with
//! BatchNormalization kept, 16 inputs, 1000 single-bit neuron faults over its
//! Conv outputs as a ten-column CSV list, and PyTorchFI's outcome of each).
//! `faultsweep run` replays the list on the ONNX model, no Python involved.
//!
//! Invariants: every fault strikes the element PyTorchFI hooked (the Conv
//! node's output before BN: the original values agree to rounding), the
//! golden top-1 agree, the outcomes agree 100% with masked and benign merged,
//! and where they differ (masked against benign) the output moved by at most
//! 4 units in the last place of its largest score. Masked and benign may
//! differ because a low mantissa bit's change survives or vanishes in later
//! sums by rounding: faultsweep's fused-multiply-add chains round differently
//! from libtorch's conv, and libtorch rounds differently at another batch
//! size (PyTorchFI with each sample alone agrees with itself at batch 16 on
//! 98.2% of this list).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

/// A CSV file's rows keyed by `fault_id`, each a map column -> field.
fn by_fault(path: &Path) -> BTreeMap<u64, HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let mut rows = BTreeMap::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        let row: HashMap<String, String> = header
            .iter()
            .cloned()
            .zip(rec.iter().map(str::to_string))
            .collect();
        let id = row["fault_id"].parse().unwrap();
        assert!(rows.insert(id, row).is_none(), "fault {id} twice");
    }
    rows
}

/// Masked and benign merged: the output changed or not, top-1 kept.
fn merged(outcome: &str) -> &str {
    match outcome {
        "masked" | "benign" => "masked|benign",
        o => o,
    }
}

#[test]
fn replayed_pytorchfi_faults_agree_with_pytorchfi() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = root.join("tests/fixtures/pytorchfi");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_faultsweep"))
        .args(["run", "tests/fixtures/pytorchfi/agreement.yml", "--faults"])
        .arg(fixture.join("faults.csv"))
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .current_dir(root)
        .env("FAULTSWEEP_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let ours = by_fault(&out.join("injections.csv"));
    let theirs = by_fault(&fixture.join("outcomes.csv"));
    assert_eq!(theirs.len(), 1000);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );

    let mut confusion: BTreeMap<(String, String), usize> = BTreeMap::new();
    let (mut exact, mut merged_agree, mut alone) = (0, 0, 0);
    let mut differing = Vec::new();
    for (id, t) in &theirs {
        let o = &ours[id];
        // The same element: a wrong layer, tensor or coordinate order would
        // read an unrelated value.
        let (a, b) = (num(o, "original_value"), num(t, "original_value"));
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "fault {id}: faultsweep faults the value {a}, PyTorchFI {b}"
        );
        assert_eq!(
            o["golden_top1"], t["golden_top1"],
            "fault {id}: golden top-1"
        );
        let (ours, theirs) = (o["outcome"].as_str(), t["outcome"].as_str());
        *confusion
            .entry((theirs.to_string(), ours.to_string()))
            .or_default() += 1;
        merged_agree += usize::from(merged(ours) == merged(theirs));
        alone += usize::from(t["outcome_batch1"] == theirs);
        if ours == theirs {
            exact += 1;
            continue;
        }
        // A masked/benign disagreement must be rounding: the side that saw
        // a change saw the output move by a few units in the last place.
        let scale = num(t, "output_scale");
        let ulp = f32::from_bits(scale.to_bits() + 1) - scale;
        let change = match ours {
            "benign" => output_change(o),
            _ => num(t, "output_change"),
        };
        differing.push(format!(
            "fault {id} ({} bit {}, {} -> {}): PyTorchFI {theirs}, faultsweep {ours}, output moved {:.1} ulp",
            o["layer"],
            o["bit"],
            t["original_value"],
            t["faulty_value"],
            change / ulp
        ));
        assert!(
            change <= 4.0 * ulp,
            "fault {id}: PyTorchFI {theirs}, faultsweep {ours}, but the output moved by {change:e} (ulp {ulp:e})"
        );
    }
    let n = theirs.len();
    let pct = |k: usize| 100.0 * k as f64 / n as f64;
    let report = format!(
        "agreement with PyTorchFI over {n} faults: exact {exact} ({:.1}%), masked+benign merged {merged_agree} ({:.1}%); PyTorchFI with each sample alone vs the batch of 16: {alone} ({:.1}%)\n(PyTorchFI, faultsweep) -> count: {confusion:?}\n{}",
        pct(exact),
        pct(merged_agree),
        pct(alone),
        differing.join("\n")
    );
    println!("{report}");
    assert_eq!(merged_agree, n, "{report}");
    // Exact agreement is bounded by rounding, not by the fault's site: on
    // this list PyTorchFI agrees with itself across batch sizes on 98.2%,
    // and every disagreement is checked above to be within rounding. The
    // floor catches a drift.
    assert!(exact * 100 >= n * EXACT_FLOOR_PERCENT, "{report}");
    // The list reaches every outcome, so agreement is not trivially masked.
    for o in ["masked", "benign", "sde", "due"] {
        assert!(
            confusion.keys().any(|(t, _)| t == o),
            "no {o} in the fixture"
        );
    }
}

/// Least share of faults with exactly PyTorchFI's outcome (measured: 97.9%).
const EXACT_FLOOR_PERCENT: usize = 97;

fn num(row: &HashMap<String, String>, column: &str) -> f32 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column}: '{}' is not a number", row[column]))
}

/// max |faulty - golden| over the outputs faultsweep saved (`class:score`
/// lists of all 10 classes).
fn output_change(row: &HashMap<String, String>) -> f32 {
    let scores = |column: &str| -> BTreeMap<u32, f32> {
        row[column]
            .split_whitespace()
            .map(|p| {
                let (c, s) = p.split_once(':').unwrap();
                (c.parse().unwrap(), s.parse().unwrap())
            })
            .collect()
    };
    let (golden, faulty) = (scores("golden_top10"), scores("faulty_top10"));
    assert_eq!(golden.len(), 10, "all scores saved");
    golden
        .iter()
        .map(|(c, g)| (faulty[c] - g).abs())
        .fold(0.0, f32::max)
}
