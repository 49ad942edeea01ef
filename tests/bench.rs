//! `faultsweep bench`: the benchmark library on the demo model (a small
//! list, every way, the agreement check, the table's structure) and the
//! command in child-process mode. No timing is asserted.

use std::path::{Path, PathBuf};
use std::process::Command;

use faultsweep::bench::{self, BenchArgs, Isolation, Way};
use faultsweep::campaign::RunArgs;
use faultsweep::data::Subset;

use crate::common::{edit_scenario, root};

/// The demo neuron scenario cut down to `n` injections on 50 samples in
/// batches of 16 (its paths are relative to the repository root, where
/// tests run).
fn small_scenario(dir: &Path, n: usize) -> PathBuf {
    let path = crate::common::small_scenario(dir, n);
    edit_scenario(&path, path.clone(), |s| {
        s.data.batch_size = 16;
        s.data.subset = Subset::First(50);
    })
}

#[test]
fn every_way_runs_and_the_engine_agrees_with_full_forward() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 100);
    let args = BenchArgs {
        repeat: 1,
        ..BenchArgs::new(RunArgs {
            cache_dir: Some(dir.path().join("cache")),
            ..RunArgs::default()
        })
    };
    let report = bench::run(&scenario, &args).unwrap();
    assert_eq!(report.injections, 100);
    assert_eq!(report.samples, 50);
    assert_eq!(report.chunk, 16 * 8, "the campaign's chunk by default");
    // How many cuts the plan stores depends on costs measured under the
    // machine's load (on a campaign this small, often none).
    let g = &report.golden;
    assert!(g.cuts <= report.cuts && (g.cuts > 0) == (g.cache_disk_bytes > 0));
    assert_eq!(report.golden.cuts_reused, 0);
    let ways: Vec<Way> = report.ways.iter().map(|w| w.way).collect();
    assert_eq!(ways, Way::ALL.to_vec());
    for w in &report.ways {
        assert_eq!(w.secs.len(), 1);
        assert!(w.median_secs > 0.0 && w.injections_per_sec > 0.0);
        assert!(
            w.median_cpu_secs > 0.0,
            "the CPU clock is readable on Linux"
        );
        assert!(w.peak_rss_bytes > 0, "VmHWM is readable on Linux");
        assert!(
            w.recomputed_cuts <= report.cuts,
            "recomputes only cuts it reads"
        );
    }
    assert!(report.speedup.is_some() && report.overhead.is_some());
    assert!(report.overhead_nodrop.is_some());
    assert!(report.speedup_cpu.is_some() && report.overhead_nodrop_cpu.is_some());
    let a = report
        .agreement
        .as_ref()
        .expect("engine and full forward ran");
    assert_eq!(a.checked, 100);
    assert!(a.differing.is_empty(), "{:?}", a.differing);
    assert_eq!(a.exact + a.within_rounding, 100);
    assert_eq!(report.outcomes.values().sum::<usize>(), 100);
    assert!(report.dropped_early <= report.outcomes.get("masked").copied().unwrap_or(0));
    let (whole, after_pool) = (
        report.whole_row_share.unwrap(),
        report.after_pool_share.unwrap(),
    );
    assert!(
        whole > 0.0 && whole <= 1.0 && after_pool <= whole,
        "{whole} {after_pool}"
    );

    let table = report.table();
    let lines: Vec<&str> = table.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("way "))
        .expect("a header line");
    for col in ["wall s", "cpu s", "injections/s", "peak MB", "x engine"] {
        assert!(lines[header].contains(col), "{table}");
    }
    for (k, way) in Way::ALL.iter().enumerate() {
        let row = lines[header + 1 + k];
        assert!(row.starts_with(way.name()), "{table}");
        assert_eq!(row.split_whitespace().count(), 6, "{row}");
    }
    for needle in [
        "golden pass",
        "speedup (full forward / engine):",
        "overhead (engine / suffix bound):",
        "cuts recomputed instead of read (of ",
        "engine rows ran whole for ",
        "agreement with full forward: 100 injections:",
        " 0 differ\n",
    ] {
        assert!(table.contains(needle), "{needle:?} in\n{table}");
    }

    // A second run reuses the filled cache and measures only what is asked.
    let again = bench::run(
        &scenario,
        &BenchArgs {
            ways: vec![Way::SuffixBound],
            isolation: Isolation::InProcess,
            ..args
        },
    )
    .unwrap();
    assert_eq!(again.golden.cuts_reused, again.golden.cuts);
    assert_eq!(again.ways.len(), 1);
    assert!(again.agreement.is_none() && again.speedup.is_none());
}

#[test]
fn the_command_runs_each_way_in_its_own_process_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 60);
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_faultsweep"))
        .current_dir(root())
        .args(["--threads", "1", "bench"])
        .arg(&scenario)
        // The children run the parent's overrides: 40 of the 60.
        .args([
            "--injections",
            "40",
            "--repeat",
            "1",
            "--ways",
            "engine,full-forward",
            "--out",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("one process per way and repeat"),
        "{stdout}"
    );
    assert!(stdout.contains("40 injections: "), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["isolated"], true);
    assert_eq!(report["threads"], 1);
    assert_eq!(report["ways"].as_array().unwrap().len(), 2);
    assert_eq!(report["ways"][0]["way"], "engine");
    assert_eq!(report["ways"][1]["way"], "full-forward");
    assert_eq!(report["agreement"]["checked"], 40);
    assert_eq!(
        report["agreement"]["differing"].as_array().unwrap().len(),
        0
    );
    assert!(report["speedup"].as_f64().unwrap() > 0.0);
    assert!(report["overhead"].is_null(), "no suffix bound was run");
}

/// The cache's whole-run ways: each runs with its phases timed, every run
/// gives the same rows, and mixing them with engine ways is refused.
#[test]
fn the_cache_ways_time_whole_runs_with_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 120);
    let o = Command::new(env!("CARGO_BIN_EXE_faultsweep"))
        .args(["bench", scenario.to_str().unwrap()])
        .args([
            "--ways",
            "no-cache,cache-cold,cache-warm",
            "--repeat",
            "1",
            "--json",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: bench::campaigns::CampaignReport = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report.identical);
    let ways: Vec<Way> = report.ways.iter().map(|w| w.way).collect();
    assert_eq!(ways, bench::campaigns::WAYS);
    for w in &report.ways {
        assert!(w.median_secs > 0.0 && w.peak_mb > 0, "{w:?}");
        let names: Vec<&str> = w.phases.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(names[0], "golden pass", "{w:?}");
        assert_eq!(names.len(), 5, "{w:?}");
    }
    assert!(report.cache_bytes > 0);

    let mixed = Command::new(env!("CARGO_BIN_EXE_faultsweep"))
        .args([
            "bench",
            scenario.to_str().unwrap(),
            "--ways",
            "engine,cache-warm",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(mixed.status.code(), Some(2), "{mixed:?}");
}
