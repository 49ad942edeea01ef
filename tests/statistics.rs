//! The KPIs of the summaries, each checked on a small campaign of the demo
//! model against a count by hand from `injections.csv`: the top-5 rate,
//! accuracy and agreement under faults, the paired comparison of hardened
//! models (difference, Newcombe interval, McNemar), the convergence curve,
//! the FIT table and the confidence level.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use faultsweep::data::Subset;
use faultsweep::scenario::FitSpec;

use crate::common::{csv_rows, edit_scenario, faultsweep, root, run_campaign};

type Row = BTreeMap<String, String>;

/// A CSV file's rows as maps from column name to value.
fn rows_of(path: &Path) -> Vec<Row> {
    let rows = csv_rows(path);
    rows[1..]
        .iter()
        .map(|r| rows[0].iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

/// Runs `scenario` into `dir/NAME` and returns that folder.
fn run(dir: &Path, scenario: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let r = run_campaign(scenario, &out, &[], &dir.join("cache"));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    out
}

/// The one row of summary.csv in `grouping` labelled `group` (and, for
/// comparisons, `versus`).
fn summary_row<'a>(rows: &'a [Row], grouping: &str, group: &str, versus: &str) -> &'a Row {
    rows.iter()
        .find(|r| r["grouping"] == grouping && r["group"] == group && r["versus"] == versus)
        .unwrap_or_else(|| panic!("no row {grouping} {group} {versus}"))
}

fn num(row: &Row, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column}: {:?}", row[column]))
}

const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson interval, as any textbook gives it.
fn wilson(k: f64, n: f64, z: f64) -> (f64, f64) {
    let p = k / n;
    let centre = p + z * z / (2.0 * n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    let denom = 1.0 + z * z / n;
    ((centre - half) / denom, (centre + half) / denom)
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 2e-6, "{what}: {got} != {want}");
}

/// Mean, population standard deviation, minimum and maximum.
fn spread(shares: &[f64]) -> [f64; 4] {
    let n = shares.len() as f64;
    let mean = shares.iter().sum::<f64>() / n;
    let var = shares.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n;
    let min = shares.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = shares.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    [mean, var.sqrt(), min, max]
}

fn check_spread(row: &Row, kind: &str, shares: &[f64]) {
    for (c, want) in ["mean", "std", "min", "max"].iter().zip(spread(shares)) {
        close(
            num(row, &format!("{kind}_{c}")),
            want,
            &format!("{kind}_{c}"),
        );
    }
}

/// Twice the binomial(b + c, 1/2) tail at min(b, c), by summing terms.
fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let (m, k) = (b + c, b.min(c));
    let mut term = 0.5f64.powi(m as i32);
    let mut tail = 0.0;
    for i in 0..=k {
        tail += term;
        term *= (m - i) as f64 / (i + 1) as f64;
    }
    (2.0 * tail).min(1.0)
}

#[test]
fn a_protected_campaigns_kpis_match_a_count_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("scenarios/fashion_ranger.yml");
    let sc = edit_scenario(&from, dir.path().join("ranger.yml"), |s| {
        s.counts.injections = Some(600);
        s.data.subset = Subset::First(200);
        s.outputs.save_outputs = false;
    });
    let out = run(dir.path(), &sc, "ranger");
    let rows = rows_of(&out.join("injections.csv"));
    let summary = rows_of(&out.join("summary.csv"));
    let n = rows.len() as f64;
    assert_eq!(n, 600.0, "one fault per injection");
    let count = |f: &dyn Fn(&Row) -> bool| rows.iter().filter(|r| f(r)).count() as f64;

    // Top-5: SDE rows whose golden class left the faulty top 5.
    let top5 = count(&|r| r["outcome"] == "sde" && r["top5_hit"] == "false");
    let overall = summary_row(&summary, "overall", "all", "");
    assert_eq!(num(overall, "sde_top5"), top5);
    let (low, high) = wilson(top5, n, Z95);
    close(num(overall, "sde_top5_rate"), top5 / n, "top5 rate");
    close(num(overall, "sde_top5_low"), low, "top5 low");
    close(num(overall, "sde_top5_high"), high, "top5 high");
    assert!(num(overall, "sde_top5") <= num(overall, "sde"));
    for layer in summary.iter().filter(|r| r["grouping"] == "layer") {
        let here = |r: &Row| r["layer"] == layer["group"];
        let want = count(&|r| here(r) && r["outcome"] == "sde" && r["top5_hit"] == "false");
        assert_eq!(num(layer, "sde_top5"), want, "{}", layer["group"]);
    }

    // Accuracy and agreement under faults, per protection; golden.
    let golden = count(&|r| r["label"] == r["golden_top1"]);
    close(
        num(
            summary_row(&summary, "accuracy", "golden", ""),
            "accuracy_mean",
        ),
        golden / n,
        "golden accuracy",
    );
    for (model, prefix) in [("none", ""), ("ranger", "ranger_"), ("clipper", "clipper_")] {
        let row = summary_row(&summary, "accuracy", model, "");
        let outcome = |r: &Row| r[&format!("{prefix}outcome")].clone();
        let top1 = |r: &Row| {
            r[&format!("{}top1", if prefix.is_empty() { "faulty_" } else { prefix })].clone()
        };
        let correct: Vec<f64> = rows
            .iter()
            .map(|r| f64::from(u8::from(outcome(r) != "due" && top1(r) == r["label"])))
            .collect();
        let agree: Vec<f64> = rows
            .iter()
            .map(|r| {
                f64::from(u8::from(
                    ["masked", "benign"].contains(&outcome(r).as_str()),
                ))
            })
            .collect();
        check_spread(row, "accuracy", &correct);
        check_spread(row, "agreement", &agree);
    }
    // faulty_correct says the same, row by row.
    for r in &rows {
        let correct = r["outcome"] != "due" && r["faulty_top1"] == r["label"];
        assert_eq!(r["faulty_correct"], correct.to_string());
    }

    // The paired comparison, overall and per layer, for SDE and DUE.
    for versus in ["ranger", "clipper"] {
        for event in ["sde", "due"] {
            let groups = std::iter::once("all".to_string()).chain(
                summary
                    .iter()
                    .filter(|r| r["grouping"] == "layer")
                    .map(|r| r["group"].clone()),
            );
            for group in groups {
                let mine: Vec<&Row> = rows
                    .iter()
                    .filter(|r| group == "all" || r["layer"] == group)
                    .collect();
                let m = mine.len() as f64;
                let plain = |r: &Row| r["outcome"] == event;
                let hard = |r: &Row| r[&format!("{versus}_outcome")] == event;
                let tally = |f: &dyn Fn(&Row) -> bool| mine.iter().filter(|r| f(r)).count() as u64;
                let (a, b, c) = (
                    tally(&|r| plain(r) && hard(r)),
                    tally(&|r| plain(r) && !hard(r)),
                    tally(&|r| !plain(r) && hard(r)),
                );
                let d = m as u64 - a - b - c;
                let row = summary_row(&summary, &format!("compare:{event}"), &group, versus);
                assert_eq!(num(row, "plain_only"), b as f64);
                assert_eq!(num(row, "hardened_only"), c as f64);
                let (p1, p2) = ((a + b) as f64 / m, (a + c) as f64 / m);
                close(num(row, "difference"), p2 - p1, "difference");
                // Newcombe's method 10 for p2 - p1.
                let (l1, u1) = wilson((a + b) as f64, m, Z95);
                let (l2, u2) = wilson((a + c) as f64, m, Z95);
                let [fa, fb, fc, fd] = [a, b, c, d].map(|x| x as f64);
                let margins = (fa + fb) * (fc + fd) * (fa + fc) * (fb + fd);
                let phi = if margins > 0.0 {
                    (fa * fd - fb * fc) / margins.sqrt()
                } else {
                    0.0
                };
                let below = ((p2 - l2).powi(2) - 2.0 * phi * (p2 - l2) * (u1 - p1)
                    + (u1 - p1).powi(2))
                .sqrt();
                let above = ((u2 - p2).powi(2) - 2.0 * phi * (u2 - p2) * (p1 - l1)
                    + (p1 - l1).powi(2))
                .sqrt();
                close(num(row, "difference_low"), p2 - p1 - below, "low");
                close(num(row, "difference_high"), p2 - p1 + above, "high");
                let p = num(row, "mcnemar_p");
                let want = mcnemar_exact(b, c);
                assert!((p - want).abs() <= 1e-6 * want.max(1e-300), "{p} != {want}");
                assert_eq!(row["test"], "exact");
            }
        }
    }
    // The mitigation removes SDEs here, and the test says so.
    let ranger = summary_row(&summary, "compare:sde", "all", "ranger");
    assert!(num(ranger, "difference_high") < 0.0 && num(ranger, "mcnemar_p") < 0.01);

    // The convergence curve: the SDE rate of the first m injections.
    let cma: Vec<&Row> = summary.iter().filter(|r| r["grouping"] == "cma").collect();
    assert!(cma.len() > 30, "{}", cma.len());
    for point in &cma {
        let m: u64 = point["group"].parse().unwrap();
        let first = |r: &Row| r["injection"].parse::<u64>().unwrap() < m;
        let sde = count(&|r| first(r) && r["outcome"] == "sde");
        assert_eq!(num(point, "n"), m as f64);
        assert_eq!(num(point, "sde"), sde);
        let (low, high) = wilson(sde, m as f64, Z95);
        close(num(point, "sde_low"), low, "cma low");
        close(num(point, "sde_high"), high, "cma high");
    }
    assert_eq!(cma.last().unwrap()["group"], "600");
    let svg = std::fs::read_to_string(out.join("cma.svg")).unwrap();
    assert!(svg.contains("<polyline") && svg.contains("600 injections: SDE"));
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for section in [
        "## accuracy",
        "## protection: differences",
        "## convergence (CMA)",
    ] {
        assert!(md.contains(section), "{section}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["overall"]["sde_top5"], top5 as u64);
    assert_eq!(json["cma"].as_array().unwrap().len(), cma.len());
    assert_eq!(json["comparisons"].as_array().unwrap().len(), 2 * 2 * 4);
    assert!(json["accuracy"]["ranger"]["agreement_mean"].is_f64());

    // `report` derives every file, cma.svg included, from the rows.
    let r = faultsweep(
        &["report", out.to_str().unwrap()],
        &dir.path().join("cache"),
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn a_permanent_campaigns_accuracy_is_spread_over_its_faults() {
    // 10 permanent weight faults, each on the same 50 samples.
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("scenarios/fashion_weights.yml");
    let sc = edit_scenario(&from, dir.path().join("weights.yml"), |s| {
        s.counts.injections = Some(10);
        s.data.subset = Subset::First(50);
    });
    let out = run(dir.path(), &sc, "weights");
    let rows = rows_of(&out.join("injections.csv"));
    let summary = rows_of(&out.join("summary.csv"));
    let mut per: BTreeMap<u64, (f64, f64, f64)> = BTreeMap::new();
    for r in &rows {
        let e = per.entry(r["injection"].parse().unwrap()).or_default();
        e.0 += 1.0;
        e.1 += f64::from(u8::from(r["faulty_correct"] == "true"));
        e.2 += f64::from(u8::from(
            r["outcome"] == "masked" || r["outcome"] == "benign",
        ));
    }
    assert_eq!(per.len(), 10);
    let accuracy: Vec<f64> = per.values().map(|(n, c, _)| c / n).collect();
    let agreement: Vec<f64> = per.values().map(|(n, _, a)| a / n).collect();
    let row = summary_row(&summary, "accuracy", "none", "");
    assert_eq!(row["injections"], "10");
    assert_eq!(row["n"], "500");
    check_spread(row, "accuracy", &accuracy);
    check_spread(row, "agreement", &agreement);
}

#[test]
fn the_fit_table_derates_the_raw_rate_by_each_bits_rate() {
    let dir = tempfile::tempdir().unwrap();
    let layer = "/features/features.0/Conv";
    let text = format!(
        "name: fit\nseed: 5\nmodel:\n  path: {}\ndata:\n  path: {}\n  subset:\n    first: 50\ntargets:\n  target: neuron\n  layers:\n    names: [{layer}]\nfault:\n  bits:\n    list: [30, 23, 3]\ncounts:\n  injections: 300\noutputs:\n  fit:\n    raw_per_bit: 0.0001\n",
        root().join("models/fashion_cnn.onnx").display(),
        root().join("data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz").display(),
    );
    let sc = dir.path().join("fit.yml");
    std::fs::write(&sc, text).unwrap();
    let out = run(dir.path(), &sc, "fit");
    // The elements held by default: the layer's output, per sample.
    let graph = faultsweep::load::load(root().join("models/fashion_cnn.onnx")).unwrap();
    let sites = faultsweep::faults::Sites::from_graph(&graph).unwrap();
    let elements = sites
        .find(layer)
        .unwrap()
        .neuron
        .as_ref()
        .unwrap()
        .elements() as f64;
    let rows = rows_of(&out.join("injections.csv"));
    let summary = rows_of(&out.join("summary.csv"));
    let mut total = [0.0; 2];
    for bit in ["3", "23", "30"] {
        let mine: Vec<&Row> = rows.iter().filter(|r| r["bit"] == bit).collect();
        let n = mine.len() as f64;
        let row = summary_row(&summary, "fit:neuron:fp32", bit, "");
        assert_eq!(num(row, "n"), n);
        assert_eq!(num(row, "bits_held"), elements);
        for (i, event) in ["sde", "due"].into_iter().enumerate() {
            let k = mine.iter().filter(|r| r["outcome"] == event).count() as f64;
            let fit = 1e-4 * elements * k / n;
            let (low, high) = wilson(k, n, Z95);
            let rel = |got: f64, want: f64| (got - want).abs() <= 1e-6 * want.abs().max(1e-12);
            assert!(
                rel(num(row, &format!("fit_{event}")), fit),
                "bit {bit} {event}"
            );
            assert!(rel(
                num(row, &format!("fit_{event}_low")),
                1e-4 * elements * low
            ));
            assert!(rel(
                num(row, &format!("fit_{event}_high")),
                1e-4 * elements * high
            ));
            total[i] += fit;
        }
    }
    let row = summary_row(&summary, "fit:neuron:fp32", "total", "");
    assert_eq!(num(row, "bits_held"), 3.0 * elements);
    assert!((num(row, "fit_sde") - total[0]).abs() <= 1e-6 * total[0].max(1e-12));
    // Bit 30 (the exponent's top) is the one that matters.
    assert!(
        num(
            summary_row(&summary, "fit:neuron:fp32", "30", ""),
            "fit_sde"
        ) > 0.0
    );

    // Elements given in the scenario replace the model's.
    let sc2 = edit_scenario(&sc, dir.path().join("fit2.yml"), |s| {
        s.outputs.fit = Some(FitSpec {
            raw_per_bit: 1e-4,
            elements: [(faultsweep::faults::Target::Neuron, 1000)].into(),
        });
    });
    let out2 = run(dir.path(), &sc2, "fit2");
    let summary2 = rows_of(&out2.join("summary.csv"));
    assert_eq!(
        summary_row(&summary2, "fit:neuron:fp32", "30", "")["bits_held"],
        "1000"
    );
    let md = std::fs::read_to_string(out2.join("summary.md")).unwrap();
    assert!(
        md.contains("## FIT") && md.contains("Elements: neuron 1000"),
        "{md}"
    );
}

#[test]
fn the_confidence_level_sets_every_interval() {
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("scenarios/fashion_neurons.yml");
    let sc = edit_scenario(&from, dir.path().join("c99.yml"), |s| {
        s.counts.injections = Some(300);
        s.data.subset = Subset::First(100);
        s.outputs.confidence = 0.99;
    });
    let out = run(dir.path(), &sc, "c99");
    let summary = rows_of(&out.join("summary.csv"));
    let overall = summary_row(&summary, "overall", "all", "");
    let z99 = 2.575_829_303_548_901;
    for event in ["sde", "due", "masked"] {
        let (low, high) = wilson(num(overall, event), 300.0, z99);
        close(num(overall, &format!("{event}_low")), low, event);
        close(num(overall, &format!("{event}_high")), high, event);
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("Rates with 99% Wilson intervals"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["confidence"], 0.99);
    let effective = std::fs::read_to_string(out.join("scenario.yml")).unwrap();
    assert!(effective.contains("confidence: 0.99"), "{effective}");

    // Out of (0, 1): a scenario error naming the key.
    for bad in [1.5, 0.0] {
        let sc = edit_scenario(&from, dir.path().join("bad.yml"), |s| {
            s.outputs.confidence = bad;
        });
        let r = run_campaign(&sc, &dir.path().join("bad"), &[], &dir.path().join("cache"));
        assert_eq!(r.status.code(), Some(8));
        assert!(String::from_utf8_lossy(&r.stderr).contains("outputs.confidence"));
    }
}

#[test]
fn injecttf2_semantics_give_rates_per_inference_drawn() {
    // Each inference: each targeted layer faulted with its probability; the
    // clean inferences count as masked in the `per_inference` table.
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("scenarios/fashion_injecttf2_inference.yml");
    let sc = edit_scenario(&from, dir.path().join("tf2.yml"), |s| {
        s.counts.injections = Some(2000);
    });
    let out = run(dir.path(), &sc, "tf2");
    let rows = rows_of(&out.join("injections.csv"));
    let summary = rows_of(&out.join("summary.csv"));
    // One outcome per faulted inference (its rows share it).
    let mut outcomes: BTreeMap<String, String> = BTreeMap::new();
    for r in &rows {
        outcomes.insert(r["injection"].clone(), r["outcome"].clone());
    }
    let faulted = outcomes.len() as f64;
    assert!(faulted > 20.0 && faulted < 400.0, "{faulted}");
    let row = summary_row(&summary, "per_inference", "all", "");
    assert_eq!(row["unit"], "drawn inferences");
    assert_eq!(num(row, "n"), 2000.0);
    assert_eq!(num(row, "injections"), 2000.0);
    for event in ["sde", "due"] {
        let k = outcomes.values().filter(|o| *o == event).count() as f64;
        assert_eq!(num(row, event), k);
        let (low, high) = wilson(k, 2000.0, Z95);
        close(num(row, &format!("{event}_rate")), k / 2000.0, event);
        close(num(row, &format!("{event}_low")), low, event);
        close(num(row, &format!("{event}_high")), high, event);
    }
    let clean = 2000.0 - faulted;
    let masked = outcomes.values().filter(|o| *o == "masked").count() as f64;
    assert_eq!(num(row, "masked"), masked + clean);
    // The overall table is per faulted inference.
    assert_eq!(
        num(summary_row(&summary, "overall", "all", ""), "n"),
        faulted
    );
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("## per_inference"));
}
