//! The cache as a user meets it: a campaign run without a cache, with a cold
//! cache and with a warm one gives the same rows; a warm rerun runs no
//! golden pass and writes nothing; the cut plan stores the cuts it chose,
//! within a budget, and `cache plan` shows it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use faultsweep::cache::{Reader, Store};
use faultsweep::data::Dataset;
use faultsweep::golden::GoldenRun;
use faultsweep::load;

use crate::common::{edit_scenario, faultsweep, root, run_campaign, small_scenario, store_at};

/// The files of a cache folder with their inodes (a rewrite renames a new
/// file into place) and bytes.
fn snapshot(cache: &Path) -> BTreeMap<PathBuf, (u64, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let ino = std::fs::metadata(&p).unwrap().ino();
            (p.clone(), (ino, std::fs::read(p).unwrap()))
        })
        .collect()
}

fn rows(out: &Path) -> Vec<u8> {
    std::fs::read(out.join("injections.csv")).unwrap()
}

fn run_ok(scenario: &Path, out: &Path, extra: &[&str], cache: &Path) {
    let o = run_campaign(scenario, out, extra, cache);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn no_cache_cold_and_warm_give_the_same_rows_and_warm_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cached = small_scenario(dir.path(), 600);
    let uncached = edit_scenario(&cached, dir.path().join("uncached.yml"), |s| {
        s.cache.enabled = false;
    });
    let cache = dir.path().join("cache");
    let out = |name: &str| dir.path().join(name);

    run_ok(&uncached, &out("none"), &[], &cache);
    assert!(!cache.exists(), "a run without a cache wrote one");
    run_ok(&cached, &out("cold"), &[], &cache);
    let filled = snapshot(&cache);
    assert!(filled.keys().any(|p| p.extension().unwrap() == "costs"));
    assert!(filled.keys().any(|p| p.extension().unwrap() == "golden"));
    run_ok(&cached, &out("warm"), &[], &cache);
    assert_eq!(rows(&out("none")), rows(&out("cold")));
    assert_eq!(rows(&out("none")), rows(&out("warm")));

    // Another seed reads other cuts first: still no pass, nothing written.
    run_ok(&cached, &out("warm7"), &["--seed", "7"], &cache);
    run_ok(
        &uncached,
        &out("none7"),
        &["--seed", "7"],
        &cache.join("unused"),
    );
    assert_eq!(rows(&out("none7")), rows(&out("warm7")));
    let after = snapshot(&cache);
    assert_eq!(
        filled.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (path, file) in &filled {
        assert!(&after[path] == file, "{} was written again", path.display());
    }
    for name in ["golden.csv", "ranges.csv"] {
        let a = std::fs::read(out("none").join(name)).unwrap();
        assert_eq!(a, std::fs::read(out("warm7").join(name)).unwrap(), "{name}");
    }
}

/// The golden run of the demo model over its 1,000 samples with every cut
/// read `per_sample` times a sample.
fn planned(store: &Store, per_sample: u64) -> faultsweep::golden::Golden {
    let graph = load::load(root().join("models/fashion_cnn.onnx")).unwrap();
    let spec = faultsweep::data::DataSpec {
        path: root().join("data/fashion-mnist/t10k-1000-images.npy"),
        labels: None,
        array: None,
        subset: faultsweep::data::Subset::All,
        correct_only: false,
        batch_size: 64,
        window: faultsweep::data::default_window(),
        preprocess: Default::default(),
    };
    let data = Dataset::open(&spec).unwrap();
    let cuts: Vec<usize> = (1..graph.nodes.len()).collect();
    let reads = cuts.iter().map(|&c| (c, per_sample * 1000)).collect();
    GoldenRun {
        graph: &graph,
        data: &data,
        cuts,
        reads: Some(reads),
        store: Some(store),
        top_k: 5,
    }
    .run()
    .unwrap()
}

#[test]
fn the_plan_stores_what_it_chose_and_recomputes_from_stored_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path(), 1, None);
    let g = planned(&store, 1);
    let stored = g.plan.stored();
    let entries: Vec<usize> = g.entries.iter().map(|e| e.0).collect();
    assert_eq!(entries, stored.iter().copied().collect::<Vec<_>>());
    assert_eq!(g.entries.len() + g.recomputed.len(), g.plan.cuts.len());
    for (cut, root) in &g.recomputed {
        assert!(root < cut && (*root == 0 || stored.contains(root)));
        let before = stored.range(..cut).next_back().copied().unwrap_or(0);
        assert_eq!(
            *root, before,
            "cut {cut} recomputes from the nearest stored cut"
        );
    }
    // The costs are kept: a second run measures nothing and runs no pass.
    let again = planned(&store, 1);
    assert!(again.results_reused);
    assert_eq!(again.costs, g.costs);
    assert_eq!(again.plan.stored(), stored);
}

#[test]
fn a_budget_bounds_the_stored_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = |budget| store_at(&dir.path().join(format!("{budget:?}")), 1, budget);
    // Read often, every cut is worth storing.
    let free = planned(&store(None), 1000);
    let all: u64 = free.plan.disk_bytes(&free.costs);
    assert!(free.plan.stored().len() > 1, "{:?}", free.plan.stored());
    let budget = all / 3;
    let tight = planned(&store(Some(budget * 1000)), 1000);
    assert!(tight.plan.disk_bytes(&tight.costs) <= budget);
    assert!(tight.plan.stored().len() < free.plan.stored().len());
    let on_disk: u64 = (tight.entries.iter())
        .map(|(_, p)| Reader::open(p).unwrap().sizes().0)
        .sum();
    // Chunk headers and index aside, the entries hold what was planned.
    assert!(
        on_disk <= budget * 1000 * 11 / 10,
        "{on_disk} > {budget} x 1000"
    );
}

#[test]
fn cache_plan_shows_every_cut_and_keeps_its_costs() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path();
    let args = [
        "cache",
        "plan",
        "models/fashion_cnn.onnx",
        "data/fashion-mnist/t10k-1000-images.npy",
        "--first",
        "50",
    ];
    let o = faultsweep(&args, cache);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let graph = load::load(root().join("models/fashion_cnn.onnx")).unwrap();
    for cut in 1..graph.nodes.len() {
        let row = format!("\n{cut:>4}  {}", graph.nodes[cut - 1].name);
        assert!(text.contains(&row), "no row for cut {cut}:\n{text}");
    }
    assert!(text.contains("stored"), "{text}");
    assert!(text.contains(" cuts stored: "), "{text}");
    let costs: Vec<PathBuf> = (std::fs::read_dir(cache).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "costs"))
        .collect();
    assert_eq!(costs.len(), 1, "{costs:?}");
    let kept = std::fs::read(&costs[0]).unwrap();
    let again = faultsweep(&args, cache);
    assert!(again.status.success());
    assert_eq!(std::fs::read(&costs[0]).unwrap(), kept, "measured again");
}

/// A cache shared by machines that take other vector paths (here: oneDNN
/// limited to AVX2) gives each its own entries rather than another's bits.
#[test]
fn the_cpus_vector_paths_are_part_of_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path();
    let golden = |isa: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_faultsweep"))
            .args([
                "golden",
                "models/fashion_cnn.onnx",
                "data/fashion-mnist/t10k-1000-images.npy",
            ])
            .args(["--first", "20", "--cuts", "3"])
            .current_dir(root())
            .env("FAULTSWEEP_CACHE", cache)
            .env("ONEDNN_MAX_CPU_ISA", isa)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let count = |ext: &str| {
        std::fs::read_dir(cache)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == ext)
            })
            .count()
    };
    golden("");
    let before = snapshot(cache);
    golden("AVX2");
    assert_eq!(
        count("golden"),
        2 * before
            .keys()
            .filter(|p| p.extension().unwrap() == "golden")
            .count()
    );
    assert_eq!(count("fsc"), 2);
    let after = snapshot(cache);
    assert!(
        before.iter().all(|(p, v)| after.get(p) == Some(v)),
        "an entry was rewritten"
    );
}
