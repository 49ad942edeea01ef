//! Shards and merge: `run --shard I/N` on N folders, `merge` into one that
//! equals a single run byte for byte (plain, permanent, swept, hardened
//! campaigns, and a fault list from a file); incomplete, duplicated and
//! mixed sets are refused naming the shard; a killed shard resumes alone;
//! the Kubernetes manifest's command lines run as documented.

use std::path::{Path, PathBuf};

use faultsweep::data::Subset;
use serde::Deserialize;

use crate::common::{edit_scenario, faultsweep, root};

/// The files a merge writes exactly as a single run does.
const SAME: [&str; 9] = [
    "injections.sums",
    "golden.csv",
    "ranges.csv",
    "faults.bin",
    "summary.csv",
    "summary.md",
    "summary.json",
    "heatmap.svg",
    "cma.svg",
];

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `scenario` whole and as `n` shards (plus `extra` arguments), merges
/// the shards and checks the merged folder against the single run.
fn merged_equals_single(dir: &Path, scenario: &Path, n: u32, extra: &[&str]) -> Vec<PathBuf> {
    let cache = dir.join("cache");
    let single = dir.join("single");
    let mut args = vec!["run", arg(scenario), "--out", arg(&single), "--quiet"];
    args.extend(extra);
    ok(&faultsweep(&args, &cache));
    let shards: Vec<PathBuf> = (1..=n).map(|i| dir.join(format!("shard{i}"))).collect();
    for (i, out) in shards.iter().enumerate() {
        let shard = format!("{}/{n}", i + 1);
        let mut args = vec![
            "run",
            arg(scenario),
            "--shard",
            &shard,
            "--out",
            arg(out),
            "--quiet",
        ];
        args.extend(extra);
        // The even shards on nodes with their own cache.
        let cache = match i % 2 {
            0 => cache.clone(),
            _ => dir.join(format!("cache{i}")),
        };
        ok(&faultsweep(&args, &cache));
    }
    let merged = dir.join("merged");
    // In any order.
    let mut args = vec!["merge", arg(&merged)];
    args.extend(shards.iter().rev().map(|p| arg(p)));
    ok(&faultsweep(&args, &cache));
    // The rows as CSV, or as Parquet parts.
    let parts: Vec<String> = match std::fs::read_dir(single.join("injections")) {
        Ok(dir) => dir
            .map(|e| format!("injections/{}", e.unwrap().file_name().to_string_lossy()))
            .collect(),
        Err(_) => vec!["injections.csv".into()],
    };
    assert!(!parts.is_empty());
    for f in SAME.iter().map(|f| f.to_string()).chain(parts) {
        assert!(
            std::fs::read(single.join(&f)).unwrap() == std::fs::read(merged.join(&f)).unwrap(),
            "{f} differs from the single run's"
        );
    }
    // Every shard holds rows, and its fault-free pass covered its own
    // samples only: together the single run's, each once.
    let lines = |p: PathBuf| -> Vec<String> {
        let text = std::fs::read_to_string(p).unwrap();
        text.lines().skip(1).map(String::from).collect()
    };
    let mut golden = Vec::new();
    for s in &shards {
        assert!(std::fs::metadata(s.join("injections.sums")).unwrap().len() > 0);
        let own = lines(s.join("golden.csv"));
        assert!(!own.is_empty() && own.len() < lines(single.join("golden.csv")).len());
        golden.extend(own);
    }
    assert_eq!(golden, lines(single.join("golden.csv")));
    ok(&faultsweep(&["report", arg(&merged)], &cache));
    shards
}

fn demo(name: &str) -> PathBuf {
    root().join("scenarios").join(name)
}

#[test]
fn shards_of_a_plain_campaign_merge_into_the_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let sc = edit_scenario(
        &demo("fashion_neurons.yml"),
        dir.path().join("plain.yml"),
        |s| {
            s.counts.injections = Some(400);
            s.data.subset = Subset::First(200);
            s.data.window = 150;
        },
    );
    merged_equals_single(dir.path(), &sc, 4, &[]);
}

#[test]
fn shards_of_a_detection_campaign_merge_with_its_detections() {
    let dir = tempfile::tempdir().unwrap();
    let body = "task: detection\ndetection:\n  score: 0.3\n  nms: 0.5\nfault:\n  bits: {range: [23, 30]}\ncounts:\n  injections: 200\n";
    let tasks = root().join("tests/fixtures/tasks");
    let sc = crate::common::fixture_scenario(dir.path(), &tasks, "decoded", 5, body);
    merged_equals_single(dir.path(), &sc, 2, &[]);
    let (single, merged) = (dir.path().join("single"), dir.path().join("merged"));
    let sde = std::fs::read_to_string(single.join("detections/sde.json")).unwrap();
    assert!(sde.contains("\"run\""), "no SDE run to merge: {sde}");
    for f in ["golden.json", "sde.json", "summary.json"] {
        let f = format!("detections/{f}");
        assert!(
            std::fs::read(single.join(&f)).unwrap() == std::fs::read(merged.join(&f)).unwrap(),
            "{f} differs from the single run's"
        );
    }
}

#[test]
fn shards_of_a_parquet_campaign_merge_into_the_single_run_part_for_part() {
    let dir = tempfile::tempdir().unwrap();
    let sc = edit_scenario(
        &demo("fashion_neurons.yml"),
        dir.path().join("parquet.yml"),
        |s| {
            s.counts.injections = Some(400);
            s.data.subset = Subset::First(200);
            s.data.window = 150;
            s.outputs.injections = faultsweep::scenario::RowsFormat::Parquet;
        },
    );
    let shards = merged_equals_single(dir.path(), &sc, 3, &[]);
    assert!(shards[0].join("injections/part-00000.parquet").exists());
}

#[test]
fn shards_of_a_permanent_campaign_merge_into_the_single_run() {
    // Each permanent fault runs on every sample: its runs are split over
    // the shards, and its interval is clustered over all of them.
    let dir = tempfile::tempdir().unwrap();
    let sc = edit_scenario(
        &demo("fashion_weights.yml"),
        dir.path().join("perm.yml"),
        |s| {
            s.counts.injections = Some(12);
            s.data.subset = Subset::First(60);
            s.data.batch_size = 16;
        },
    );
    merged_equals_single(dir.path(), &sc, 3, &[]);
}

#[test]
fn shards_of_a_swept_hardened_campaign_merge_into_the_single_run() {
    // Four formats (int8 scales from the golden ranges) and Ranger (golden
    // ranges over the whole data set) on every shard.
    let dir = tempfile::tempdir().unwrap();
    let sc = edit_scenario(
        &demo("fashion_sweep.yml"),
        dir.path().join("sweep.yml"),
        |s| {
            s.counts.injections = Some(40);
            s.data.subset = Subset::First(120);
        },
    );
    merged_equals_single(dir.path(), &sc, 2, &[]);
}

#[test]
fn shards_of_a_campaign_from_a_fault_list_merge_into_the_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let sc = edit_scenario(
        &demo("fashion_ranger.yml"),
        dir.path().join("list.yml"),
        |s| {
            s.counts.injections = Some(300);
            s.data.subset = Subset::First(100);
            s.outputs.save_outputs = false;
        },
    );
    let list = dir.path().join("list.bin");
    ok(&faultsweep(
        &["faults", "gen", arg(&sc), "--out", arg(&list)],
        &cache,
    ));
    merged_equals_single(dir.path(), &sc, 3, &["--faults", arg(&list)]);
}

#[test]
fn a_killed_shard_resumes_alone_and_bad_sets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let sc = edit_scenario(
        &demo("fashion_neurons.yml"),
        dir.path().join("k.yml"),
        |s| {
            s.counts.injections = Some(300);
            s.data.subset = Subset::First(90);
            s.data.batch_size = 8;
        },
    );
    let shards = merged_equals_single(dir.path(), &sc, 3, &[]);
    let merged = dir.path().join("merged");

    // Shard 2 killed part way: its rows cut mid-line, its sums kept.
    let cut = dir.path().join("cut2");
    std::fs::create_dir_all(&cut).unwrap();
    for f in [
        "scenario.yml",
        "faults.bin",
        "provenance.json",
        "injections.sums",
    ] {
        std::fs::copy(shards[1].join(f), cut.join(f)).unwrap();
    }
    let rows = std::fs::read(shards[1].join("injections.csv")).unwrap();
    std::fs::write(cut.join("injections.csv"), &rows[..rows.len() / 2]).unwrap();
    // Unfinished: refused, named.
    let r = faultsweep(
        &[
            "merge",
            arg(&dir.path().join("m1")),
            arg(&shards[0]),
            arg(&cut),
            arg(&shards[2]),
        ],
        &cache,
    );
    assert_eq!(r.status.code(), Some(11));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("not finished"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    // Resumed alone (the shard is recorded), then merged: the same result.
    ok(&faultsweep(
        &["run", "--resume", arg(&cut), "--quiet"],
        &cache,
    ));
    let again = dir.path().join("again");
    ok(&faultsweep(
        &[
            "merge",
            arg(&again),
            arg(&shards[0]),
            arg(&cut),
            arg(&shards[2]),
        ],
        &cache,
    ));
    for f in SAME {
        assert!(
            std::fs::read(merged.join(f)).unwrap() == std::fs::read(again.join(f)).unwrap(),
            "{f}"
        );
    }
    // --shard may repeat the recorded shard, not change it.
    let r = faultsweep(&["run", "--resume", arg(&cut), "--shard", "1/3"], &cache);
    assert_eq!(r.status.code(), Some(2));

    // A missing shard, a duplicate, another campaign: named.
    let refused = |dirs: &[&Path], words: &str| {
        let mut args = vec![
            "merge".to_string(),
            arg(&dir.path().join("bad")).to_string(),
        ];
        args.extend(dirs.iter().map(|d| arg(d).to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = faultsweep(&args, &cache);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(11), "{err}");
        assert!(err.contains(words), "{err}");
        assert!(!dir.path().join("bad").join("injections.csv").exists());
    };
    refused(&[&shards[0], &shards[2]], "missing shards: 2/3");
    refused(
        &[&shards[0], &shards[1], &shards[1], &shards[2]],
        "is shard 2/3, and so is",
    );
    refused(&[&shards[0], &dir.path().join("single")], "is not a shard");
    let other = edit_scenario(&sc, dir.path().join("other.yml"), |s| s.seed = Some(99));
    let foreign = dir.path().join("foreign");
    ok(&faultsweep(
        &[
            "run",
            arg(&other),
            "--shard",
            "2/3",
            "--out",
            arg(&foreign),
            "--quiet",
        ],
        &cache,
    ));
    refused(&[&shards[0], &foreign, &shards[2]], "another campaign");
}

#[test]
fn the_kubernetes_manifest_runs_its_shards_and_merge_as_documented() {
    // The Indexed Job's and the merge Job's command lines, run here with
    // the index Kubernetes would set.
    let manifest =
        std::fs::read_to_string(root().join("examples/kubernetes/campaign.yaml")).unwrap();
    let scripts: Vec<String> = serde_norway::Deserializer::from_str(&manifest)
        .map(|doc| {
            let job = serde_norway::Value::deserialize(doc).unwrap();
            let container = &job["spec"]["template"]["spec"]["containers"][0];
            container["args"][0].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(scripts.len(), 2, "{scripts:?}");
    let dir = tempfile::tempdir().unwrap();
    let sc = edit_scenario(
        &demo("fashion_neurons.yml"),
        dir.path().join("scenario.yml"),
        |s| {
            s.counts.injections = Some(200);
            s.data.subset = Subset::First(100);
        },
    );
    let results = dir.path().join("results");
    let bin = env!("CARGO_BIN_EXE_faultsweep");
    let sh = |script: &str, index: Option<u32>| {
        let mut c = std::process::Command::new("sh");
        c.args(["-c", script])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    Path::new(bin).parent().unwrap().display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .env("SCENARIO", &sc)
            .env("RESULTS", &results)
            .env("SHARDS", "3")
            .env("FAULTSWEEP_CACHE", dir.path().join("cache"));
        if let Some(i) = index {
            c.env("JOB_COMPLETION_INDEX", i.to_string());
        }
        ok(&c.output().unwrap());
    };
    for i in 0..3 {
        sh(&scripts[0], Some(i));
    }
    sh(&scripts[1], None);
    let single = dir.path().join("single");
    ok(&faultsweep(
        &["run", arg(&sc), "--out", arg(&single), "--quiet"],
        &dir.path().join("cache"),
    ));
    for f in SAME {
        assert!(
            std::fs::read(single.join(f)).unwrap()
                == std::fs::read(results.join("merged").join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn shards_of_an_injecttf2_campaign_merge_with_its_clean_inferences() {
    let dir = tempfile::tempdir().unwrap();
    let sc = edit_scenario(
        &demo("fashion_injecttf2_inference.yml"),
        dir.path().join("tf2.yml"),
        |s| s.counts.injections = Some(600),
    );
    merged_equals_single(dir.path(), &sc, 2, &[]);
    let summary = std::fs::read_to_string(dir.path().join("merged/summary.csv")).unwrap();
    assert!(
        summary.contains("\nper_inference,all,drawn inferences,600,600,"),
        "{summary}"
    );
}
