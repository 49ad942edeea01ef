//! `faultsweep run`: a whole campaign on the demo model, its results
//! directory, replay, and verification against the full forward pass.

use std::path::{Path, PathBuf};

use faultsweep::data::Subset;
use faultsweep::scenario::{ModelName, ScopeSpec};

use crate::common::{
    csv_rows, edit_scenario, faultsweep, root, run_campaign, run_verified, small_scenario,
};

/// `faultsweep faults gen SCENARIO --out OUT`, which must succeed.
fn faults_gen(scenario: &Path, out: &Path, cache: &Path) {
    let args = [
        "faults",
        "gen",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let r = faultsweep(&args, cache);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn a_campaign_writes_its_results_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 300);
    let out = dir.path().join("results");
    let run = run_campaign(
        &scenario,
        &out,
        &["--verify", "60"],
        &dir.path().join("cache"),
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("300 injections: SDE") && stdout.contains("0 differ\n"),
        "{stdout}"
    );
    for f in [
        "scenario.yml",
        "faults.bin",
        "golden.csv",
        "ranges.csv",
        "injections.csv",
        "summary.csv",
        "summary.md",
        "summary.json",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let rows = csv_rows(&out.join("injections.csv"));
    let header = rows[0].join(",");
    assert!(
        header.starts_with("fault_id,sample,target,layer,tensor,coord,fault_model,dtype,bit,value"),
        "{header}"
    );
    assert!(
        header.contains(
            "sample_id,label,golden_top1,faulty_top1,outcome,top5_hit,original_value,faulty_value"
        ),
        "{header}"
    );
    assert_eq!(rows.len(), 301);
    // The summary is re-derived from the rows.
    let outcome_col = rows[0].iter().position(|c| c == "outcome").unwrap();
    let count = |o: &str| rows[1..].iter().filter(|r| r[outcome_col] == o).count() as u64;
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for o in ["masked", "benign", "sde", "due"] {
        assert_eq!(summary["overall"][o].as_u64().unwrap(), count(o), "{o}");
    }
    assert!(count("masked") > 0 && count("benign") + count("sde") > 0);
    let tables = summary["tables"].as_array().unwrap();
    let by_layer = tables.iter().find(|t| t["grouping"] == "layer").unwrap();
    assert_eq!(
        by_layer["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["n"].as_u64().unwrap())
            .sum::<u64>(),
        300
    );

    // Replaying the effective scenario gives the same rows.
    let again = dir.path().join("again");
    let replay = run_campaign(
        &out.join("scenario.yml"),
        &again,
        &[],
        &dir.path().join("cache"),
    );
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert_eq!(
        std::fs::read(out.join("injections.csv")).unwrap(),
        std::fs::read(again.join("injections.csv")).unwrap()
    );

    // So does replaying the fault list as CSV, and without any cache.
    let csv = dir.path().join("faults.csv");
    assert!(faultsweep(
        &[
            "faults",
            "convert",
            out.join("faults.bin").to_str().unwrap(),
            csv.to_str().unwrap()
        ],
        dir.path()
    )
    .status
    .success());
    let from_csv = dir.path().join("from_csv");
    let r = run_campaign(
        &scenario,
        &from_csv,
        &["--faults", csv.to_str().unwrap()],
        &dir.path().join("cache"),
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let outcomes = |p: &Path| {
        csv_rows(p)
            .into_iter()
            .map(|r| r[outcome_col].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        outcomes(&out.join("injections.csv")),
        outcomes(&from_csv.join("injections.csv"))
    );
}

/// The weight scenario with `scope`, `n` injections on 30 samples.
fn weight_scenario(dir: &Path, scope: ScopeSpec, n: usize) -> PathBuf {
    let from = root().join("scenarios/fashion_weights.yml");
    edit_scenario(&from, dir.join(format!("weights_{n}.yml")), |s| {
        s.counts.injections = Some(n as u64);
        s.data.subset = Subset::First(30);
        s.fault.scope = scope;
    })
}

#[test]
fn permanent_weight_faults_run_on_every_sample_of_their_scope_and_verify() {
    for (scope, samples_each) in [
        (ScopeSpec::Campaign, 30),
        (ScopeSpec::Batch(10), 10),
        (ScopeSpec::Transient, 1),
    ] {
        let scope_name = format!("{scope:?}");
        let dir = tempfile::tempdir().unwrap();
        let scenario = weight_scenario(dir.path(), scope, 40);
        let out = dir.path().join("results");
        let rows = run_verified(&scenario, &out, &dir.path().join("cache"), 80);
        let header = &rows[0];
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        assert_eq!(rows.len() - 1, 40 * samples_each, "{scope_name}");
        // Each injection of the list appears once per sample of its scope.
        let mut per_injection: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for r in &rows[1..] {
            assert_eq!(r[col("target")], "weight");
            per_injection
                .entry(&r[col("injection")])
                .or_default()
                .push(&r[col("sample_id")]);
        }
        assert_eq!(per_injection.len(), 40, "{scope_name}");
        for samples in per_injection.values() {
            let distinct: std::collections::BTreeSet<_> = samples.iter().collect();
            assert_eq!(distinct.len(), samples_each, "{scope_name}: {samples:?}");
        }
        // The faulty weight is read back as the model sees it.
        for r in &rows[1..] {
            let (orig, faulty): (f32, f32) = (
                r[col("original_value")].parse().unwrap(),
                r[col("faulty_value")].parse().unwrap(),
            );
            let bit: u32 = r[col("bit")].parse().unwrap();
            assert_eq!(orig.to_bits() ^ (1 << bit), faulty.to_bits(), "{r:?}");
        }
    }
}

#[test]
fn a_range_subset_at_the_end_of_the_data_set_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("scenarios/fashion_neurons.yml");
    let scenario = edit_scenario(&from, dir.path().join("range.yml"), |s| {
        s.data.subset = Subset::Range {
            start: 900,
            end: 1000,
        };
        s.counts.injections = Some(50);
    });
    let out = dir.path().join("list.csv");
    faults_gen(&scenario, &out, dir.path());
    let samples: Vec<u64> = csv_rows(&out)[1..]
        .iter()
        .map(|r| r[1].parse().unwrap())
        .collect();
    assert!(
        samples.iter().all(|&s| s < 100),
        "faults name positions in the subset: {samples:?}"
    );
}

/// A killed run leaves finished rows and perhaps half a line: cutting a
/// finished run's injections.csv anywhere and resuming must give back the
/// uninterrupted result, with no injection missing or repeated.
#[test]
fn an_interrupted_campaign_resumes_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let from = root().join("scenarios/fashion_neurons.yml");
    // Windows of 200 runs, in chunks of 128: [0, 128), [128, 200), [200, 328) ...
    let scenario = edit_scenario(&from, dir.path().join("s.yml"), |s| {
        s.counts.injections = Some(500);
        s.data.batch_size = 16;
        s.data.window = 200;
    });
    let whole = dir.path().join("whole");
    assert!(run_campaign(&scenario, &whole, &[], &cache)
        .status
        .success());
    let full = std::fs::read(whole.join("injections.csv")).unwrap();
    let summary = std::fs::read_to_string(whole.join("summary.json")).unwrap();
    let line_starts: Vec<usize> = full
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    // No rows; in the first chunk of 128 injections; at a chunk boundary;
    // at the end of the first window; in the second window; half a line in
    // the last chunk.
    for cut in [
        line_starts[0],
        line_starts[40] + 7,
        line_starts[128],
        line_starts[200],
        line_starts[260] + 3,
        full.len() - 9,
    ] {
        let run = dir.path().join(format!("cut{cut}"));
        std::fs::create_dir_all(&run).unwrap();
        for f in ["scenario.yml", "faults.bin"] {
            std::fs::copy(whole.join(f), run.join(f)).unwrap();
        }
        std::fs::write(run.join("injections.csv"), &full[..cut]).unwrap();
        let r = faultsweep(&["run", "--resume", run.to_str().unwrap()], &cache);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        assert!(
            std::fs::read(run.join("injections.csv")).unwrap() == full,
            "cut at byte {cut}: injections.csv differs after resuming"
        );
        assert_eq!(
            std::fs::read_to_string(run.join("summary.json")).unwrap(),
            summary,
            "cut at byte {cut}"
        );
    }
}

/// `scenario` with `data.window` set to `window`, written beside it.
fn with_window(scenario: &Path, window: usize) -> PathBuf {
    let path = scenario.with_file_name(format!("window{window}.yml"));
    edit_scenario(scenario, path, |s| s.data.window = window)
}

/// A campaign reads its fault list in windows of `data.window` runs, each
/// ordered by sample: the window changes the order of the rows, not the
/// rows, and `--verify` reruns runs of every window.
#[test]
fn windows_change_the_order_of_the_rows_not_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let scenario = small_scenario(dir.path(), 600);
    let one = run_verified(&scenario, &dir.path().join("one"), &cache, 30);
    let windowed = with_window(&scenario, 97);
    let many = run_verified(&windowed, &dir.path().join("many"), &cache, 60);
    assert_eq!(one[0], many[0]);
    let sorted = |rows: &[Vec<String>]| {
        let mut rows = rows[1..].to_vec();
        rows.sort();
        rows
    };
    assert_ne!(one, many, "windows of 97 runs reorder 600");
    assert_eq!(sorted(&one), sorted(&many));
    let summary = |name: &str| std::fs::read_to_string(dir.path().join(name).join("summary.csv"));
    assert_eq!(summary("one").unwrap(), summary("many").unwrap());
}

/// One thread and two write the same campaign byte for byte, each with a
/// cache of its own: the golden outputs and ranges, the plain model's and
/// the hardened models' outcomes and values (Ranger and Clipper run their
/// own engines over the same chunks), and the summaries.
#[test]
fn one_thread_and_two_give_the_same_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("scenarios/fashion_ranger.yml");
    let scenario = edit_scenario(&from, dir.path().join("ranger.yml"), |s| {
        s.counts.injections = Some(600);
    });
    let read = |threads: &str| {
        let out = dir.path().join(threads);
        let cache = dir.path().join(format!("cache{threads}"));
        let run = run_campaign(&scenario, &out, &["--threads", threads], &cache);
        assert!(run.status.success(), "{run:?}");
        let files = ["injections.csv", "summary.csv", "golden.csv", "ranges.csv"];
        files.map(|f| std::fs::read(out.join(f)).unwrap())
    };
    let (one, two) = (read("1"), read("2"));
    assert!(one[0].len() > 600 * 10, "a row per injection");
    assert!(one == two, "--threads 1 and 2 wrote different results");
}

/// The library's iterator over a campaign's results goes window by window
/// too: every run once, in run order, with its own faults.
#[test]
fn the_library_iterates_every_run_with_its_faults() {
    use faultsweep::campaign::{self, Model, RunArgs};
    let dir = tempfile::tempdir().unwrap();
    let scenario = with_window(&small_scenario(dir.path(), 300), 37);
    let models = faultsweep::faults::Models::default();
    let plan = campaign::plan(&scenario, &RunArgs::default(), &models).unwrap();
    let store = faultsweep::cache::Store::new(&plan.campaign.spec.cache, Some(dir.path()));
    let model = Model::prepare(&plan, &plan.graph, None, &store, &models).unwrap();
    let options = faultsweep::inject::Options::default();
    let mut injections = std::collections::BTreeSet::new();
    let mut n = 0;
    for (id, ran) in model.results(options).unwrap().enumerate() {
        let (faults, result) = ran.unwrap();
        assert_eq!(result.id, id);
        let sample = faults[0].sample;
        assert_eq!(
            sample,
            faultsweep::faults::Samples::One(result.sample as u64)
        );
        assert!(
            injections.insert(faults[0].injection),
            "injection run twice"
        );
        assert_eq!(result.sites.len(), faults.len());
        n += 1;
    }
    assert_eq!(n, 300);
    assert_eq!(campaign::run_count(&plan).unwrap(), 300);
}

/// The peak memory `faultsweep run` reports, in MB.
fn peak_memory_mb(scenario: &Path, out: &Path, cache: &Path) -> u64 {
    let run = run_campaign(scenario, out, &[], cache);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mb = stdout
        .split("peak memory ")
        .nth(1)
        .and_then(|s| s.split(' ').next());
    mb.and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in: {stdout}"))
}

/// Peak memory does not grow with the number of injections: the fault list
/// streams through windows and the results stream to disk (before the
/// windows, a campaign took about 850 more bytes per injection: 68 MB more
/// here). The allowance is 24 MB: the allocator's fragmentation alone moves
/// the peak of the same run by up to 11 MB between runs (143 to 154 MB seen).
#[test]
fn peak_memory_is_flat_in_the_number_of_injections() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // Windows of 5,000 runs: both lists fill several.
    let peak = |n: usize| {
        let sub = dir.path().join(n.to_string());
        std::fs::create_dir_all(&sub).unwrap();
        let scenario = with_window(&small_scenario(&sub, n), 5000);
        peak_memory_mb(&scenario, &sub.join("out"), &cache)
    };
    peak(100); // fills the cache: the runs below read it alike
    let (few, many) = (peak(20_000), peak(100_000));
    eprintln!("peak memory: {few} MB for 20,000 injections, {many} MB for 100,000");
    assert!(
        many <= few + 24,
        "{few} MB for 20,000 injections, {many} MB for 100,000"
    );
}

/// Rows of a list must come grouped by injection, in increasing order (as
/// generated lists are), so a campaign reads its list one injection at a
/// time; a list out of order is an error naming the fault and the file.
#[test]
fn a_fault_list_out_of_order_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 5);
    let list = dir.path().join("list.csv");
    faults_gen(&scenario, &list, dir.path());
    let text = std::fs::read_to_string(&list).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(2, 4);
    std::fs::write(&list, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("out");
    let run = run_campaign(
        &scenario,
        &out,
        &["--faults", list.to_str().unwrap()],
        dir.path(),
    );
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(9), "{err}");
    assert!(
        err.contains(&list.display().to_string())
            && err.contains("fault 2 (injection 2) follows injection 3"),
        "{err}"
    );
    assert!(!out.join("faults.bin").exists(), "a partial fault list");
}

/// A custom fault model registered by a library user runs like a built-in:
/// one that zeroes the value gives the `zero` model's results.
#[test]
fn custom_fault_models_run_like_built_in_ones() {
    use faultsweep::campaign::{run, run_with_models, RunArgs};
    use faultsweep::faults::{FaultFn, Models, Site};
    struct Zeroed;
    impl FaultFn for Zeroed {
        fn apply(&self, _original: f32, _site: &Site<'_>) -> f32 {
            0.0
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let base = small_scenario(dir.path(), 120);
    let results = |model: ModelName, models: &Models| {
        let path = dir.path().join(format!("{model}.yml"));
        let path = edit_scenario(&base, path, |s| s.fault.model = model.clone());
        let out = dir.path().join(format!("out-{model}"));
        let args = RunArgs {
            out: Some(out.clone()),
            cache_dir: Some(dir.path().join("cache")),
            ..RunArgs::default()
        };
        let report = if models.has("zeroed") {
            run_with_models(&path, &args, models, &mut |_, _| {})
        } else {
            run(&path, &args, &mut |_, _| {})
        };
        report.unwrap_or_else(|e| panic!("{model}: {e}"));
        let rows = csv_rows(&out.join("injections.csv"));
        let (o, f) = (
            rows[0].iter().position(|c| c == "outcome").unwrap(),
            rows[0].iter().position(|c| c == "faulty_value").unwrap(),
        );
        rows[1..]
            .iter()
            .map(|r| (r[o].clone(), r[f].clone()))
            .collect::<Vec<_>>()
    };
    let mut models = Models::default();
    models.register("zeroed", std::sync::Arc::new(Zeroed));
    let custom = results(ModelName::Custom("zeroed".into()), &models);
    // `report` reads the campaign without running a fault: no registry needed.
    let out = dir.path().join("out-custom:zeroed");
    faultsweep::campaign::check(&out).unwrap_or_else(|e| panic!("report: {e}"));
    assert_eq!(custom, results(ModelName::Zero, &Models::default()));
    assert!(custom.iter().all(|(_, v)| v == "0e0"), "{custom:?}");
    let unregistered = edit_scenario(&base, dir.path().join("unregistered.yml"), |s| {
        s.fault.model = ModelName::Custom("nobody".into());
    });
    let e = run(
        &unregistered,
        &RunArgs {
            out: Some(dir.path().join("x")),
            ..RunArgs::default()
        },
        &mut |_, _| {},
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("'nobody' is not registered"), "{e}");
    assert_eq!(e.exit_code(), 8, "a scenario error: {e}");
}

#[test]
fn hardened_models_see_the_same_faults_in_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    // The same model file as the "hardened" one must give the same outcomes.
    let copy = dir.path().join("copy.onnx");
    std::fs::copy(root().join("models/fashion_cnn.onnx"), &copy).unwrap();
    let from = root().join("scenarios/fashion_ranger.yml");
    let scenario = edit_scenario(&from, dir.path().join("ranger.yml"), |s| {
        s.counts.injections = Some(400);
        s.mitigations.hardened_model = Some(copy.clone());
    });
    let out = dir.path().join("results");
    let rows = run_verified(&scenario, &out, &dir.path().join("cache"), 40);
    let col = |name: &str| {
        rows[0]
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let (plain, ranger, clipper, same) = (
        col("outcome"),
        col("ranger_outcome"),
        col("clipper_outcome"),
        col("hardened_outcome"),
    );
    let count = |c: usize, o: &str| rows[1..].iter().filter(|r| r[c] == o).count();
    assert!(count(plain, "sde") > 0, "the faults should cause SDEs");
    assert!(
        count(ranger, "sde") < count(plain, "sde"),
        "Ranger should remove SDEs"
    );
    assert!(
        count(clipper, "sde") < count(plain, "sde"),
        "Clipper should remove SDEs"
    );
    for r in &rows[1..] {
        // A plain row that is masked is masked under protection too.
        if r[plain] == "masked" {
            assert_eq!(r[ranger], "masked", "{r:?}");
        }
        if r[plain] != "due" {
            assert_eq!(r[same], r[plain], "the same model as hardened model: {r:?}");
        }
        assert_eq!(r[col("golden_top5")].split(' ').count(), 5);
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("## protection") && md.contains("| ranger |"),
        "{md}"
    );
}

/// -inf in a Conv output vanishes at the next ReLU: the outcome is the
/// output's (masked or benign), monitored or not, as the full forward pass
/// sees it (`--verify`); a monitored Conv records the hit as `detected`.
#[test]
fn a_monitored_node_that_sees_inf_is_recorded_beside_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let base = "name: mon\nseed: 3\nmodel:\n  path: models/fashion_cnn.onnx\ndata:\n  path: data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz\n  subset:\n    first: 50\ntargets:\n  target: neuron\n  layers:\n    ops: [Conv]\nfault:\n  model: constant\n  value: -.inf\ncounts:\n  injections: 60\n";
    for (name, extra, detected) in [
        ("plain", "", "false"),
        (
            "monitored",
            "outputs:\n  monitor:\n    ops: [Conv]\n",
            "true",
        ),
    ] {
        let scenario = dir.path().join(format!("{name}.yml"));
        std::fs::write(&scenario, format!("{base}{extra}")).unwrap();
        let out = dir.path().join(name);
        let rows = run_verified(&scenario, &out, &dir.path().join("cache"), 20);
        let col = |c: &str| rows[0].iter().position(|h| h == c).unwrap();
        for r in &rows[1..] {
            let outcome = &r[col("outcome")];
            assert!(outcome == "masked" || outcome == "benign", "{name}: {r:?}");
            assert_eq!(r[col("detected")], detected, "{name}: {r:?}");
            assert!(!r[col("first_nonfinite")].is_empty(), "{name}: {r:?}");
        }
        // The summaries' rates of what was seen inside.
        let json = std::fs::read_to_string(out.join("summary.json")).unwrap();
        let inside = &serde_json::from_str::<serde_json::Value>(&json).unwrap()["inside"];
        assert_eq!(inside["runs"], 60, "{inside}");
        assert_eq!(inside["nonfinite"]["count"], 60, "{inside}");
        let caught = if detected == "true" { 60 } else { 0 };
        assert_eq!(inside["detected"]["count"], caught, "{inside}");
        let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
        assert!(md.contains("| detected by a monitored node | 60 |"), "{md}");
    }
}

#[test]
fn report_re_derives_the_summaries_and_catches_any_change() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 200);
    let out = dir.path().join("results");
    let cache = dir.path().join("cache");
    let run = run_campaign(&scenario, &out, &[], &cache);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let p = &json["provenance"];
    assert!(p["tool"].as_str().unwrap().starts_with("faultsweep "));
    assert_eq!(p["seed"], 20240601);
    assert_eq!(p["model_blake3"].as_str().unwrap().len(), 64);
    assert_eq!(p["data_blake3"].as_str().unwrap().len(), 64);
    let report = faultsweep(&["report", out.to_str().unwrap()], &cache);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(String::from_utf8_lossy(&report.stdout).contains("identical"));
    // One outcome changed by hand: the summaries no longer follow from the rows.
    let path = out.join("injections.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text.replacen(",masked,", ",sde,", 1);
    assert_ne!(changed, text);
    std::fs::write(&path, changed).unwrap();
    let report = faultsweep(&["report", out.to_str().unwrap()], &cache);
    assert_eq!(report.status.code(), Some(11));
    let err = String::from_utf8_lossy(&report.stderr);
    assert!(
        err.contains("injections.csv changed") && err.contains("summary.csv differs"),
        "{err}"
    );
}

#[test]
fn a_guard_on_the_faulted_node_bounds_the_fault_itself() {
    // Ranger on the Conv and Gemm outputs the faults strike: the guard sits
    // after the faulty value, in the engine and in the plain oracle alike.
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("scenarios/fashion_ranger.yml");
    let scenario = edit_scenario(&from, dir.path().join("guard.yml"), |s| {
        s.counts.injections = Some(300);
        let ranger = s
            .mitigations
            .ranger
            .as_mut()
            .expect("the scenario has Ranger");
        ranger.layers.ops = vec!["Conv".into(), "Gemm".into()];
    });
    let out = dir.path().join("results");
    let rows = run_verified(&scenario, &out, &dir.path().join("cache"), 60);
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let (plain, ranger, faulty) = (col("outcome"), col("ranger_outcome"), col("faulty_value"));
    for r in &rows[1..] {
        // A fault to infinity or a huge value is clamped right where it
        // lands (NaN passes a clamp: Ranger keeps it).
        let v: f32 = r[faulty].parse().unwrap();
        if v.abs() > 1e6 {
            assert_ne!(r[ranger], "due", "{r:?}");
        }
    }
    let sde = |c: usize| rows[1..].iter().filter(|r| r[c] == "sde").count();
    assert!(
        sde(ranger) < sde(plain),
        "{} vs {}",
        sde(ranger),
        sde(plain)
    );
}

#[test]
fn labels_outside_the_models_classes_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // An IDX label file for the 1,000 test images, every label 12.
    let labels = dir.path().join("labels-idx1-ubyte");
    let mut bytes = vec![0, 0, 8, 1];
    bytes.extend(1000u32.to_be_bytes());
    bytes.extend([12u8; 1000]);
    std::fs::write(&labels, bytes).unwrap();
    let small = small_scenario(dir.path(), 10);
    let scenario = edit_scenario(&small, dir.path().join("labels.yml"), |s| {
        s.data.labels = Some(labels.clone());
    });
    let out = dir.path().join("results");
    let run = run_campaign(&scenario, &out, &[], &dir.path().join("cache"));
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(4), "{err}");
    assert!(
        err.contains("has label 12, but the model has 10 classes"),
        "{err}"
    );
}

/// A list from another tool has only the first ten columns: `run` and
/// `bench` resolve its layer names with the scenario's model, and it gives
/// the results of the same list converted with `faults convert --model`
/// and of the generated list it was cut from.
#[test]
fn a_list_without_node_column_replays_with_the_scenarios_model() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let scenario = small_scenario(dir.path(), 80);
    let full = dir.path().join("full.csv");
    faults_gen(&scenario, &full, dir.path());
    let rows = csv_rows(&full);
    assert_eq!(rows[0][13], "node");
    let ten = dir.path().join("ten.csv");
    let mut w = csv::Writer::from_path(&ten).unwrap();
    for r in &rows {
        w.write_record(&r[..10]).unwrap();
    }
    w.flush().unwrap();
    drop(w);

    let from_ten = dir.path().join("from_ten");
    let r = run_campaign(
        &scenario,
        &from_ten,
        &["--faults", ten.to_str().unwrap()],
        &cache,
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));

    let bin = dir.path().join("ten.bin");
    let model = root().join("models/fashion_cnn.onnx");
    let args = [
        "faults",
        "convert",
        ten.to_str().unwrap(),
        bin.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
    ];
    let c = faultsweep(&args, dir.path());
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let from_bin = dir.path().join("from_bin");
    let r = run_campaign(
        &scenario,
        &from_bin,
        &["--faults", bin.to_str().unwrap()],
        &cache,
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    for f in ["faults.bin", "injections.csv", "summary.json"] {
        assert_eq!(
            std::fs::read(from_ten.join(f)).unwrap(),
            std::fs::read(from_bin.join(f)).unwrap(),
            "{f}"
        );
    }

    // The generated list differs only in its `draw` column, which bit
    // flips do not read: the same rows (nodes, values, outcomes) otherwise.
    let from_full = dir.path().join("from_full");
    let r = run_campaign(
        &scenario,
        &from_full,
        &["--faults", full.to_str().unwrap()],
        &cache,
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let got = csv_rows(&from_ten.join("injections.csv"));
    let want = csv_rows(&from_full.join("injections.csv"));
    let draw = got[0].iter().position(|c| c == "draw").unwrap();
    let but_draw = |r: &[String]| {
        let mut r = r.to_vec();
        r.remove(draw);
        r
    };
    assert_eq!(got.len(), 81);
    assert_eq!(want.len(), 81);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(but_draw(g), but_draw(w));
    }

    // `bench` resolves it too, and counts the same outcomes.
    let args = [
        "bench",
        scenario.to_str().unwrap(),
        "--faults",
        ten.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--ways",
        "engine",
        "--repeat",
        "1",
        "--in-process",
        "--json",
    ];
    let b = faultsweep(&args, dir.path());
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let report: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(from_ten.join("summary.json")).unwrap()).unwrap();
    for o in ["masked", "benign", "sde", "due"] {
        let bench = report["outcomes"][o].as_u64().unwrap_or(0);
        assert_eq!(bench, summary["overall"][o].as_u64().unwrap(), "{o}");
    }
}

/// The effective scenario records the folder the results are in: the
/// `--out` folder when one is given.
#[test]
fn the_effective_scenario_records_the_out_folder() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 20);
    let out = dir.path().join("elsewhere");
    let run = run_campaign(&scenario, &out, &[], &dir.path().join("cache"));
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let saved = faultsweep::scenario::Scenario::load(&out.join("scenario.yml")).unwrap();
    assert_eq!(saved.spec.outputs.dir.as_deref(), Some(out.as_path()));
}

/// `run` never writes over a campaign: not with `--out` naming its folder,
/// nor replaying its scenario.yml (which names the folder); the message
/// says how to finish it and where else to write (exit 4, a bad argument).
#[test]
fn a_folder_that_holds_a_campaign_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let scenario = small_scenario(dir.path(), 20);
    let out = dir.path().join("first");
    assert!(run_campaign(&scenario, &out, &[], &cache).status.success());
    let rows = std::fs::read(out.join("injections.csv")).unwrap();
    let replay = out.join("scenario.yml");
    for args in [
        vec![
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        vec!["run", replay.to_str().unwrap()],
    ] {
        let r = faultsweep(&args, &cache);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(4), "{args:?}: {err}");
        assert!(
            err.contains(&out.display().to_string())
                && err.contains("--resume")
                && err.contains("another folder"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(out.join("injections.csv")).unwrap(), rows);
    // Another folder is fine.
    let again = run_campaign(&replay, &dir.path().join("second"), &[], &cache);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// A model whose input fixes a batch of 2 (op_conv3d): `--verify` runs each
/// injection in a batch of that size, its sample repeated, and reads the
/// sample's row; neuron and weight faults agree with the engine.
#[test]
fn verify_feeds_a_model_with_a_fixed_batch_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("conv3d.yml");
    std::fs::write(
        &scenario,
        "seed: 5\n\
         model: {path: tests/fixtures/models/op_conv3d.onnx}\n\
         data: {path: tests/fixtures/models/op_conv3d.input.npy}\n\
         targets: {target: both}\n\
         counts: {injections: 60}\n",
    )
    .unwrap();
    let rows = run_verified(
        &scenario,
        &dir.path().join("out"),
        &dir.path().join("cache"),
        60,
    );
    assert_eq!(rows.len(), 61);
}

/// A subset that does not fit the data set is a scenario error naming
/// `data.subset` in plain words (it was exit 4 with `First(5000)` or
/// `Range { start: 40, end: 10 }`); `--first` beyond the data names the flag.
#[test]
fn a_subset_that_does_not_fit_names_the_key_or_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("scenarios/fashion_neurons.yml");
    for (subset, words) in [
        (
            Subset::First(5000),
            "asks for 5000 samples but the data set has 1000",
        ),
        (
            Subset::Range { start: 40, end: 10 },
            "range 40..10 is empty",
        ),
        (
            Subset::Random {
                count: 2000,
                seed: 1,
            },
            "asks for 2000 samples",
        ),
    ] {
        let name = format!("{subset:?}");
        let scenario = edit_scenario(&from, dir.path().join("subset.yml"), |s| {
            s.data.subset = subset;
        });
        let subset = name;
        let out = dir.path().join("list.csv");
        let args = [
            "faults",
            "gen",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        let r = faultsweep(&args, dir.path());
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(8), "{subset}: {err}");
        assert!(
            err.contains("`data.subset`") && err.contains(words),
            "{err}"
        );
        assert!(!err.contains("First(") && !err.contains("Range {"), "{err}");
    }
    let data = "data/fashion-mnist/t10k-1000-images.npy";
    let args = ["golden", "models/fashion_cnn.onnx", data, "--first", "5000"];
    let r = faultsweep(&args, dir.path());
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(4), "{err}");
    assert!(
        err.contains("--first 5000") && err.contains("has 1000"),
        "{err}"
    );
}

/// The rows of a CSV file as maps from its header's columns.
fn csv_maps(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let rows = csv_rows(path);
    let header = &rows[0];
    rows[1..]
        .iter()
        .map(|r| header.iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

/// `data.correct_only` (PyTorchFI's practice): the campaign runs on the
/// samples of its subset the fault-free model classifies correctly, as a
/// plain run's golden.csv counts them; they are renumbered 0..M; `faults
/// gen` draws the same list as `run`; `report` replans to the same samples.
#[test]
fn correct_only_keeps_the_correctly_classified_samples() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let plain = small_scenario(dir.path(), 300);
    let out_plain = dir.path().join("plain");
    let run = run_campaign(&plain, &out_plain, &[], &cache);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let golden = csv_maps(&out_plain.join("golden.csv"));
    assert_eq!(golden.len(), 100);
    let correct: Vec<&str> = (golden.iter())
        .filter(|r| r["correct"] == "true")
        .map(|r| r["sample_id"].as_str())
        .collect();
    let m = correct.len();
    assert!(
        m > 50 && m < 100,
        "{m} of 100 correct: not a test of the filter"
    );

    let scenario = edit_scenario(&plain, dir.path().join("correct.yml"), |s| {
        s.data.correct_only = true;
    });
    let out = dir.path().join("correct");
    let run = run_campaign(&scenario, &out, &[], &cache);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains(&format!("data.correct_only: {m} of 100 samples kept")),
        "{stdout}"
    );
    assert!(stdout.contains("golden top-1 accuracy 100.00%"), "{stdout}");
    // golden.csv: the kept samples, in order.
    let kept = csv_maps(&out.join("golden.csv"));
    let ids: Vec<&str> = kept.iter().map(|r| r["sample_id"].as_str()).collect();
    assert_eq!(ids, correct);
    // Every row's sample is one the model gets right, named by its
    // position among the kept ones.
    let rows = csv_maps(&out.join("injections.csv"));
    assert_eq!(rows.len(), 300);
    for r in &rows {
        assert_eq!(r["label"], r["golden_top1"], "{r:?}");
        let pos: usize = r["sample"].parse().unwrap();
        assert!(pos < m, "{r:?}");
        assert_eq!(r["sample_id"], correct[pos], "{r:?}");
    }
    // The list says M samples, and `faults gen` draws the same one.
    let (meta, listed) = faultsweep::faults::rows(&out.join("faults.bin"), None, None).unwrap();
    assert_eq!(meta.samples, Some(m as u64));
    let listed: Vec<_> = listed.map(Result::unwrap).collect();
    // `faults gen` on `sc` into `name`: its output, and the list's rows.
    let gen = |sc: &Path, name: &str| {
        let list = dir.path().join(name);
        let r = faultsweep(
            &[
                "faults",
                "gen",
                sc.to_str().unwrap(),
                "--out",
                list.to_str().unwrap(),
            ],
            &cache,
        );
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let (meta, rows) = faultsweep::faults::rows(&list, None, None).unwrap();
        (r, meta, rows.map(Result::unwrap).collect::<Vec<_>>())
    };
    let (r, gen_meta, generated) = gen(&scenario, "gen.bin");
    assert!(
        String::from_utf8_lossy(&r.stdout).contains(&format!("{m} of 100 samples kept")),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
    assert_eq!(gen_meta.samples, Some(m as u64));
    assert_eq!(generated, listed);
    // `report` replans from the saved scenario: the same samples.
    let report = faultsweep(&["report", out.to_str().unwrap()], &cache);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(String::from_utf8_lossy(&report.stdout).contains("identical"));
    // Without a cache the same samples are kept.
    let uncached = edit_scenario(&scenario, dir.path().join("uncached.yml"), |s| {
        s.cache.enabled = false;
    });
    assert_eq!(gen(&uncached, "gen2.bin").2, listed);
}

/// `data.correct_only` without labels, or with no sample classified
/// correctly, is a scenario error naming the key (exit 8).
#[test]
fn correct_only_needs_labels_and_a_correct_sample() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let plain = small_scenario(dir.path(), 10);
    let unlabelled = edit_scenario(&plain, dir.path().join("nolabels.yml"), |s| {
        s.data.correct_only = true;
        s.data.labels = None;
    });
    // Every label of the subset one class off the model's top-1: no sample
    // is classified correctly.
    let spec = faultsweep::scenario::Scenario::load(&plain).unwrap().spec;
    let graph = faultsweep::load::load(root().join(&spec.model.path)).unwrap();
    let data_spec = faultsweep::data::DataSpec {
        path: root().join(&spec.data.path),
        labels: None,
        ..spec.data.clone()
    };
    let data = faultsweep::data::Dataset::open(&data_spec).unwrap();
    let golden = faultsweep::golden::GoldenRun {
        graph: &graph,
        data: &data,
        cuts: vec![],
        reads: None,
        store: None,
        top_k: 1,
    }
    .run()
    .unwrap();
    let mut wrong = vec![0i64; data.total_len()];
    for r in &golden.rows {
        wrong[r.sample.id] = (r.top[0].0 + 1) % 10;
    }
    let wrong_path = dir.path().join("wrong.npy");
    tch::Tensor::from_slice(&wrong)
        .write_npy(&wrong_path)
        .unwrap();
    let mislabelled = edit_scenario(&plain, dir.path().join("wrong.yml"), |s| {
        s.data.correct_only = true;
        s.data.labels = Some(wrong_path.clone());
    });
    for (scenario, why) in [
        (&unlabelled, "needs labels"),
        (&mislabelled, "classifies none of the 100 samples"),
    ] {
        for cmd in [&["faults", "gen"][..], &["run"][..]] {
            let out = dir.path().join("out");
            let mut args = cmd.to_vec();
            args.extend([scenario.to_str().unwrap(), "--out", out.to_str().unwrap()]);
            let r = faultsweep(&args, &cache);
            let err = String::from_utf8_lossy(&r.stderr);
            assert_eq!(r.status.code(), Some(8), "{args:?}: {err}");
            assert!(
                err.contains("`data.correct_only`") && err.contains(why),
                "{args:?}: {err}"
            );
        }
    }
}
