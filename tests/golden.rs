//! Data sets, the golden run and the layer-split cache.

use std::path::PathBuf;

use faultsweep::cache::{Reader, Store};
use faultsweep::data::{DataSpec, Dataset, Subset};
use faultsweep::golden::GoldenRun;
use faultsweep::{load, split};

use crate::common::{repo, store_at};

fn demo_data(first: usize, batch_size: usize) -> DataSpec {
    DataSpec {
        path: repo("data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz"),
        labels: Some(repo("data/fashion-mnist/t10k-1000-labels-idx1-ubyte.gz")),
        array: None,
        subset: Subset::First(first),
        correct_only: false,
        batch_size,
        window: faultsweep::data::default_window(),
        preprocess: Default::default(),
    }
}

#[test]
fn idx_and_npy_give_the_same_inputs() {
    let idx = Dataset::open(&demo_data(100, 100)).unwrap();
    let npy_spec = DataSpec {
        path: repo("data/fashion-mnist/t10k-1000-images.npy"),
        labels: Some(repo("data/fashion-mnist/t10k-1000-labels.npy")),
        array: None,
        ..demo_data(100, 100)
    };
    let npy = Dataset::open(&npy_spec).unwrap();
    let (a, b) = (idx.batch(0..100).unwrap(), npy.batch(0..100).unwrap());
    assert_eq!(a.inputs[0].size(), vec![100, 1, 28, 28]);
    let diff = (&a.inputs[0] - &b.inputs[0]).abs().max().double_value(&[]);
    assert!(diff < 1e-6, "IDX and npy differ by {diff}");
    assert_eq!(
        a.samples.iter().map(|s| s.label).collect::<Vec<_>>(),
        b.samples.iter().map(|s| s.label).collect::<Vec<_>>()
    );
    let whole = tch::Tensor::read_npy(repo("data/fashion-mnist/t10k-1000-images.npy")).unwrap();
    assert!(
        b.inputs[0].equal(&whole.narrow(0, 0, 100)),
        "the row reader differs from a whole-file read"
    );
}

/// The golden pass of `graph` over `data` without a cache.
fn uncached(graph: &faultsweep::graph::Graph, data: &Dataset) -> faultsweep::golden::Golden {
    let run = GoldenRun {
        graph,
        data,
        cuts: vec![],
        reads: None,
        store: None,
        top_k: 5,
    };
    run.run().unwrap()
}

#[test]
fn golden_top1_is_the_forward_argmax() {
    let graph = load::load(repo("models/fashion_cnn.onnx")).unwrap();
    let data = Dataset::open(&demo_data(200, 64)).unwrap();
    let g = uncached(&graph, &data);
    let batch = data.batch(0..200).unwrap();
    let logits = graph.forward(&batch.inputs).unwrap().remove(0);
    let argmax = Vec::<i64>::try_from(logits.argmax(1, false)).unwrap();
    let top1: Vec<i64> = g.rows.iter().map(|r| r.top[0].0).collect();
    assert_eq!(top1, argmax);
}

fn store_in(dir: &std::path::Path) -> Store {
    store_at(dir, 3, None)
}

/// Golden run of the demo model over `first` samples caching `cuts`.
fn golden(store: &Store, first: usize, cuts: Vec<usize>) -> faultsweep::golden::Golden {
    let graph = load::load(repo("models/fashion_cnn.onnx")).unwrap();
    let data = Dataset::open(&demo_data(first, 48)).unwrap();
    GoldenRun {
        graph: &graph,
        data: &data,
        cuts,
        reads: None,
        store: Some(store),
        top_k: 5,
    }
    .run()
    .unwrap()
}

#[test]
fn cached_frontiers_are_bitwise_the_prefix_and_resume_to_the_full_pass() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let graph = load::load(repo("models/fashion_cnn.onnx")).unwrap();
    let n = graph.nodes.len();
    let cuts: Vec<usize> = (0..=n).collect();
    let g = golden(&store, 130, cuts.clone());
    assert_eq!(g.entries.len(), cuts.len());
    let data = Dataset::open(&demo_data(130, 48)).unwrap();
    let x = data.batch(0..130).unwrap().inputs.remove(0);
    let full = graph.forward(&[x.shallow_clone()]).unwrap();
    for (cut, path) in &g.entries {
        let entry = Reader::open(path).unwrap();
        let cached = entry.read(0, 130).unwrap();
        let direct = split::prefix(&graph, &[x.shallow_clone()], *cut).unwrap();
        for (a, b) in cached.iter().zip(&direct) {
            assert!(
                a.equal(b),
                "cut {cut}: cached frontier differs from the prefix"
            );
        }
        let out = split::resume(&graph, *cut, &cached).unwrap();
        assert!(
            out[0].equal(&full[0]),
            "cut {cut}: resuming from the cache differs from the full pass"
        );
        // Ranges crossing chunk boundaries read the same rows.
        for (s, e) in [(0, 1), (5, 77), (129, 130), (31, 130)] {
            let part = entry.read(s, e).unwrap();
            for (p, whole) in part.iter().zip(&cached) {
                assert!(
                    p.equal(&whole.narrow(0, s as i64, (e - s) as i64)),
                    "cut {cut}: rows {s}..{e}"
                );
            }
        }
    }
}

#[test]
fn a_second_run_reuses_and_any_change_misses() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let first = golden(&store, 64, vec![3, 6]);
    assert!(first.reused.is_empty());
    let again = golden(&store, 64, vec![3, 6]);
    assert_eq!(again.reused, vec![3, 6]);
    assert_eq!(again.entries, first.entries);
    // Other samples, another cut, or other preprocessing: other keys.
    let other = golden(&store, 65, vec![3, 6, 9]);
    assert!(other.reused.is_empty());
    let graph = load::load(repo("models/fashion_cnn.onnx")).unwrap();
    let mut spec = demo_data(64, 48);
    spec.preprocess.scale = Some(254.0);
    let data = Dataset::open(&spec).unwrap();
    let scaled = GoldenRun {
        graph: &graph,
        data: &data,
        cuts: vec![3],
        reads: None,
        store: Some(&store),
        top_k: 5,
    }
    .run()
    .unwrap();
    assert!(scaled.reused.is_empty());
    assert_eq!(store.entries().unwrap().len(), 2 + 3 + 1);
}

#[test]
fn corrupt_or_truncated_entries_are_detected_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let g = golden(&store, 100, vec![4]);
    let path = g.entries[0].1.clone();
    let good = std::fs::read(&path).unwrap();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    std::fs::write(&path, &flipped).unwrap();
    let err = Reader::open(&path).and_then(|r| r.verify()).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string())
            && err.to_string().contains("checksum"),
        "{err}"
    );
    let rebuilt = golden(&store, 100, vec![4]);
    assert!(
        rebuilt.reused.is_empty(),
        "a corrupt entry must not be reused"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        good,
        "the rebuilt entry is the original"
    );
    for len in [0, 10, good.len() / 3, good.len() - 1] {
        std::fs::write(&path, &good[..len]).unwrap();
        assert!(
            Reader::open(&path).and_then(|r| r.verify()).is_err(),
            "truncated to {len} bytes"
        );
    }
}

/// A rerun whose cuts are all cached reads the golden results (top-k, NaN
/// flags, ranges) from the cache too and runs no pass; they equal a pass
/// without any cache. A damaged results file is rebuilt.
#[test]
fn a_rerun_reads_the_golden_results_and_runs_no_pass() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let first = golden(&store, 64, vec![3, 6]);
    assert!(!first.results_reused);
    let again = golden(&store, 64, vec![3, 6]);
    assert!(again.results_reused);
    let graph = load::load(repo("models/fashion_cnn.onnx")).unwrap();
    let data = Dataset::open(&demo_data(64, 48)).unwrap();
    let plain = uncached(&graph, &data);
    let rows = |g: &faultsweep::golden::Golden| {
        let rows = g
            .rows
            .iter()
            .map(|r| (r.sample.id, r.top.clone(), r.correct, r.nonfinite));
        rows.collect::<Vec<_>>()
    };
    assert_eq!(rows(&again), rows(&plain));
    assert_eq!(again.ranges, plain.ranges);
    // A cut not cached yet needs the pass.
    assert!(!golden(&store, 64, vec![3, 6, 9]).results_reused);
    let results: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "golden"))
        .collect();
    assert_eq!(results.len(), 1, "{results:?}");
    let mut bytes = std::fs::read(&results[0]).unwrap();
    bytes[3] ^= 1;
    std::fs::write(&results[0], bytes).unwrap();
    assert!(!golden(&store, 64, vec![3, 6]).results_reused);
    assert!(golden(&store, 64, vec![3, 6]).results_reused);
}

#[test]
fn the_budget_evicts_least_recently_used_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_in(dir.path());
    let mut made = Vec::new();
    for cut in [9, 10, 11] {
        made.push(golden(&store, 50, vec![cut]).entries[0].1.clone());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Reading the oldest makes it the most recently used.
    golden(&store, 50, vec![9]);
    let total: u64 = made
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    store.budget_bytes = Some(total - 1);
    assert_eq!(store.evict(&[]).unwrap(), vec![made[1].clone()]);
    store.budget_bytes = Some(1);
    assert_eq!(
        store.evict(&[made[0].clone()]).unwrap(),
        vec![made[2].clone()]
    );
    let left: Vec<PathBuf> = store.entries().unwrap().into_iter().map(|e| e.0).collect();
    assert_eq!(left, vec![made[0].clone()]);
}

/// A folder where an entry file should be is named as such (reading it said
/// "Is a directory" or "No such device", which does not tell what is wrong).
#[test]
fn a_folder_in_place_of_an_entry_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let made = golden(&store, 10, vec![3]).entries;
    let entry = made[0].1.clone();
    std::fs::remove_file(&entry).unwrap();
    std::fs::create_dir(&entry).unwrap();
    let msg = Reader::open(&entry).err().unwrap().to_string();
    assert!(
        msg.contains(&entry.display().to_string())
            && msg.contains("a folder is where a cache entry should be"),
        "{msg}"
    );
    let ls = std::process::Command::new(env!("CARGO_BIN_EXE_faultsweep"))
        .args(["cache", "ls", "--cache-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let listing = String::from_utf8(ls.stdout).unwrap();
    let line = listing.lines().find(|l| l.contains("a folder is")).unwrap();
    assert_eq!(
        line.matches(&*entry.display().to_string()).count(),
        1,
        "{line}"
    );
}

#[test]
fn two_processes_filling_one_entry_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_faultsweep"))
            .args([
                "golden",
                "models/fashion_cnn.onnx",
                "data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz",
                "--first",
                "300",
                "--cuts",
                "2,5",
            ])
            .arg("--cache-dir")
            .arg(dir.path())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (run(), run());
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let store = store_in(dir.path());
    let entries = store.entries().unwrap();
    assert_eq!(entries.len(), 2, "no stray temporary files or duplicates");
    for (p, r) in entries {
        r.and_then(|r| r.verify())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

/// The ImageNet recipe on ../shared/images gives MobileNetV2 the inputs of the
/// committed reference (PIL-resized) closely enough to agree on the photos
/// whose class is unambiguous.
#[test]
fn imagenet_preprocessing_of_the_photos() {
    let Some([images, model]) = crate::common::shared(["images", "models/mobilenet_v2.onnx"])
    else {
        return;
    };
    let spec = DataSpec {
        path: images,
        labels: None,
        array: None,
        subset: Subset::All,
        correct_only: false,
        batch_size: 5,
        window: faultsweep::data::default_window(),
        preprocess: faultsweep::data::Preprocess {
            resize: Some(256),
            center_crop: Some(224),
            scale: None,
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
            channels: faultsweep::data::Channels::Rgb,
            ..Default::default()
        },
    };
    let data = Dataset::open(&spec).unwrap();
    let names: Vec<String> = (0..data.len())
        .map(|i| {
            data.sample(i)
                .source
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "astronaut.png",
            "chelsea.png",
            "coffee.png",
            "grace_hopper.jpg",
            "rocket.jpg"
        ]
    );
    let x = data.batch(0..5).unwrap().inputs.remove(0);
    let reference =
        crate::common::read_npy(&crate::common::fixtures().join("mobilenet_photos.input.npy"));
    let mean_diff = (&x - &reference)
        .abs()
        .mean(tch::Kind::Float)
        .double_value(&[]);
    eprintln!("mean |ours - PIL| = {mean_diff:.4}");
    assert!(
        mean_diff < 0.05,
        "mean |ours - PIL| = {mean_diff} (normalised units)"
    );
    let graph = load::load(model).unwrap();
    let top1 = Vec::<i64>::try_from(graph.forward(&[x]).unwrap()[0].argmax(1, false)).unwrap();
    assert_eq!(
        (top1[1], top1[2], top1[3]),
        (285, 967, 457),
        "chelsea, coffee, grace_hopper"
    );
}

/// ImageNet class folders are named by class index: MobileNetV2 gets the
/// photos whose class is unambiguous right (`golden` printed 0.00% when the
/// folders' name order gave the labels).
#[test]
fn numbered_class_folders_label_imagenet_photos() {
    let Some([images, model]) = crate::common::shared(["images", "models/mobilenet_v2.onnx"])
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (class, photo) in [
        ("285", "chelsea.png"),
        ("967", "coffee.png"),
        ("457", "grace_hopper.jpg"),
    ] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        std::fs::copy(images.join(photo), dir.path().join(class).join(photo)).unwrap();
    }
    let golden = std::process::Command::new(env!("CARGO_BIN_EXE_faultsweep"))
        .arg("golden")
        .args([model.as_path(), dir.path()])
        .args([
            "--resize",
            "256",
            "--center-crop",
            "224",
            "--channels",
            "rgb",
        ])
        .args(["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&golden.stdout);
    assert!(
        golden.status.success(),
        "{}",
        String::from_utf8_lossy(&golden.stderr)
    );
    assert!(stdout.contains("top-1 accuracy 100.00%"), "{stdout}");
}

#[test]
fn npz_archives_stored_and_compressed_match_idx() {
    let idx = Dataset::open(&demo_data(20, 20))
        .unwrap()
        .batch(0..20)
        .unwrap();
    for file in ["demo20.npz", "demo20_compressed.npz"] {
        let spec = DataSpec {
            path: crate::common::fixtures().join("data").join(file),
            labels: Some(PathBuf::from("labels")),
            array: Some("images".into()),
            ..demo_data(20, 20)
        };
        let b = Dataset::open(&spec).unwrap().batch(0..20).unwrap();
        assert!(
            b.inputs[0].equal(&idx.inputs[0]),
            "{file}: inputs differ from IDX"
        );
        assert_eq!(
            b.samples.iter().map(|s| s.label).collect::<Vec<_>>(),
            idx.samples.iter().map(|s| s.label).collect::<Vec<_>>(),
            "{file}"
        );
    }
    let missing = DataSpec {
        array: Some("nope".into()),
        path: crate::common::fixtures().join("data/demo20.npz"),
        ..demo_data(20, 20)
    };
    let e = Dataset::open(&missing).err().expect("unknown array");
    assert!(e.to_string().contains("no array 'nope'"), "{e}");
}

#[test]
fn subsets_select_the_documented_samples() {
    let ids = |subset: Subset| {
        let spec = DataSpec {
            subset,
            ..demo_data(0, 10)
        };
        let d = Dataset::open(&spec).unwrap();
        (0..d.len()).map(|i| d.sample(i).id).collect::<Vec<_>>()
    };
    assert_eq!(ids(Subset::First(3)), [0, 1, 2]);
    assert_eq!(ids(Subset::Range { start: 10, end: 13 }), [10, 11, 12]);
    let random = ids(Subset::Random { count: 5, seed: 7 });
    assert_eq!(random, ids(Subset::Random { count: 5, seed: 7 }), "seeded");
    assert_ne!(random, ids(Subset::Random { count: 5, seed: 8 }));
    assert!(random.windows(2).all(|w| w[0] < w[1]) && random.iter().all(|&i| i < 1000));
    assert_eq!(ids(Subset::All).len(), 1000);
    let too_many = DataSpec {
        subset: Subset::First(1001),
        ..demo_data(0, 10)
    };
    assert!(Dataset::open(&too_many)
        .err()
        .unwrap()
        .to_string()
        .contains("subset: asks for 1001 samples but the data set has 1000"));
    let d = Dataset::open(&demo_data(3, 10)).unwrap();
    let s = d.sample(2);
    assert!(
        s.source.ends_with("t10k-1000-images-idx3-ubyte.gz#2") && s.label == Some(1),
        "{s:?}"
    );
}

#[test]
fn broken_data_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let idx = std::fs::read(repo("data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz")).unwrap();
    let cut = dir.path().join("short-idx3-ubyte.gz");
    std::fs::write(&cut, &idx[..idx.len() / 2]).unwrap();
    let spec = DataSpec {
        path: cut.clone(),
        labels: None,
        ..demo_data(1000, 100)
    };
    let err = Dataset::open(&spec)
        .and_then(|d| d.batches(100).collect::<Result<Vec<_>, _>>())
        .err()
        .expect("truncated");
    assert!(
        err.to_string().contains(&cut.display().to_string()),
        "{err}"
    );
    let npy = dir.path().join("bad.npy");
    std::fs::write(&npy, b"\x93NUMPY\x01\x00garbage").unwrap();
    let err = Dataset::open(&DataSpec {
        path: npy.clone(),
        labels: None,
        ..demo_data(1, 1)
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("bad.npy"), "{err}");
    let images = dir.path().join("imgs");
    std::fs::create_dir(&images).unwrap();
    std::fs::write(images.join("broken.png"), b"not a png").unwrap();
    let d = Dataset::open(&DataSpec {
        path: images,
        labels: None,
        ..demo_data(1, 1)
    })
    .unwrap();
    let err = d.batch(0..1).err().unwrap();
    assert!(
        err.to_string().contains("broken.png") && err.to_string().contains("cannot decode"),
        "{err}"
    );
    let labels = DataSpec {
        labels: Some(repo("data/fashion-mnist/t10k-1000-labels.npy")),
        path: crate::common::fixtures().join("data/demo20.npz"),
        ..demo_data(20, 20)
    };
    assert!(Dataset::open(&labels)
        .err()
        .unwrap()
        .to_string()
        .contains("1000 labels for 20 samples"));
}

/// Golden run of `graph` over the samples in `input` (an .npy file),
/// caching at `cuts`; checks that every cached value has one row per sample
/// and that resuming each batch of the golden run from each cut's entry is
/// bitwise the full pass of that batch (libtorch's kernels may give a sample
/// other bits in a batch of another size).
fn check_cache_at(graph: &faultsweep::graph::Graph, input: PathBuf, cuts: Vec<usize>) {
    let batch = 2;
    let spec = DataSpec {
        path: input,
        labels: None,
        array: None,
        subset: Subset::All,
        correct_only: false,
        batch_size: batch,
        window: faultsweep::data::default_window(),
        preprocess: Default::default(),
    };
    let data = Dataset::open(&spec).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let g = GoldenRun {
        graph,
        data: &data,
        cuts: cuts.clone(),
        reads: None,
        store: Some(&store),
        top_k: 1,
    }
    .run()
    .unwrap();
    assert_eq!(
        g.entries.iter().map(|e| e.0).collect::<Vec<_>>(),
        cuts,
        "one entry per cut"
    );
    for (cut, path) in &g.entries {
        let reader = Reader::open(path).unwrap();
        let names = split::frontier(graph, *cut).unwrap();
        for (t, id) in reader.read(0, data.len()).unwrap().iter().zip(names) {
            assert_eq!(
                t.size().first().copied(),
                Some(data.len() as i64),
                "cut {cut}: value '{}' has no sample rows",
                graph.values[id].name
            );
        }
        for start in (0..data.len()).step_by(batch) {
            let end = data.len().min(start + batch);
            let x = data.batch(start..end).unwrap().inputs.remove(0);
            let full = graph.forward(&[x]).unwrap();
            let cached = reader.read(start, end).unwrap();
            let out = split::resume(graph, *cut, &cached).unwrap();
            assert!(
                out[0].equal(&full[0]),
                "cut {cut}, samples {start}..{end}: resume differs from the full pass"
            );
        }
    }
}

#[test]
fn nodes_of_constants_are_folded_so_every_cut_caches_per_sample_values() {
    // Weights computed from constants (a bias shared through Identity, a
    // weight from ConstantOfShape) once crossed cuts as if per sample, and
    // the cache fill failed there (the full torchvision ResNet-18 export).
    let model = repo("tests/fixtures/models/conv_shared_bias.onnx");
    let graph = load::load(&model).unwrap();
    let ops: Vec<&str> = graph.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(
        ops,
        [
            "Conv",
            "Relu",
            "Conv",
            "Add",
            "GlobalAveragePool",
            "Flatten"
        ]
    );
    for (i, n) in graph.nodes.iter().enumerate() {
        assert_eq!(n.index, i, "node '{}' has index {}", n.name, n.index);
    }
    let input = repo("tests/fixtures/models/conv_shared_bias.input.npy");
    let x = crate::common::read_npy(&input);
    let out = graph.forward(&[x]).unwrap();
    let want =
        crate::common::read_npy(&repo("tests/fixtures/models/conv_shared_bias.expected.npy"));
    crate::common::check_parity(&out[0], &want).unwrap();
    check_cache_at(&graph, input, (0..=graph.nodes.len()).collect());
}

#[test]
fn no_fixture_keeps_a_node_of_constants() {
    // The light_* models make every weight with ConstantOfShape: those nodes
    // are evaluated at load time, so what is left reads the input. Every
    // fixture is checked (loading is quick), its failures all named.
    let mut light = 0;
    let mut failures = Vec::new();
    for f in crate::common::model_fixtures() {
        let graph = load::load(&f.model).unwrap();
        for n in &graph.nodes {
            // Only in a model of constants (an op test) the nodes making the
            // outputs stay.
            let makes_output = n.outputs.iter().any(|o| graph.outputs.contains(o));
            if !(makes_output || n.inputs.iter().flatten().any(|&id| graph.is_computed(id))) {
                failures.push(format!(
                    "{}: node '{}' ({}) reads only constants",
                    f.name, n.name, n.op
                ));
            }
        }
        light += usize::from(f.name.starts_with("light_"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(light > 0, "no light_* fixture was checked");
}

#[test]
fn folding_errors_name_the_node_and_an_empty_graph_is_refused() {
    let path = |name: &str| repo(&format!("tests/fixtures/models/{name}.onnx"));
    let err = |name: &str| {
        let e = load::load(path(name)).unwrap_err();
        assert_eq!(e.exit_code(), 3, "{name}: {e}");
        e.to_string()
    };
    let e = err("fold_error_reshape");
    assert!(
        e.contains("fold_error_reshape.onnx")
            && e.contains("node 'reshape_w' (op Reshape")
            && e.contains("evaluated at load time"),
        "{e}"
    );
    let e = err("fold_nothing_computed");
    assert!(
        e.contains("computes nothing") && e.contains("no node is left"),
        "{e}"
    );
    // Outputs made of constants only keep the nodes that make them (the
    // Identity before is folded): the model still computes something.
    let graph = load::load(path("fold_constant_output")).unwrap();
    let names: Vec<&str> = graph.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["neg_x", "relu_w"]);
    let x = tch::Tensor::ones([2, 4], (tch::Kind::Float, tch::Device::Cpu));
    let y = graph.forward(&[x]).unwrap();
    assert_eq!(
        Vec::<f32>::try_from(&y[0]).unwrap(),
        [0., 1., 2., 3., 4., 5.]
    );
}

#[test]
fn the_full_resnet18_export_caches_at_every_conv_cut() {
    // Made by scripts/make_bench_resnet18.py (torch, not committed: 45 MB).
    // Its 16 Identity nodes pass deduplicated Conv biases on; unfolded, they
    // crossed the cuts as per-sample values and the cache fill failed.
    let model = repo("target/bench-models/resnet18.onnx");
    if !model.exists() {
        crate::common::skip(&format!("{} is absent", model.display()));
        return;
    }
    let graph = load::load(&model).unwrap();
    assert!(graph.nodes.iter().all(|n| n.op.name() != "Identity"));
    let cuts: Vec<usize> = graph
        .nodes
        .iter()
        .filter(|n| n.op.name() == "Conv")
        .map(|n| n.index + 1)
        .collect();
    assert_eq!(cuts.len(), 20, "ResNet-18 has 20 Conv nodes");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.npy");
    tch::manual_seed(0);
    tch::Tensor::randn([3, 3, 224, 224], (tch::Kind::Float, tch::Device::Cpu))
        .write_npy(&input)
        .unwrap();
    check_cache_at(&graph, input, cuts);
}

/// A PID that no process has (a child that has exited and been reaped).
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A killed fill leaves `.KEY.fsc.PID.N.tmp`: `cache ls` and `cache verify`
/// show it with its size, `cache rm --stale` and the next fill remove it;
/// the temporary of a running process stays.
#[test]
fn stale_cache_temporaries_are_shown_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    golden(&store, 10, vec![3]);
    let key = "0123456789abcdef0123456789abcdef";
    let stale = || {
        let p = dir.path().join(format!(".{key}.fsc.{}.7.tmp", dead_pid()));
        std::fs::write(&p, vec![0u8; 1234]).unwrap();
        p
    };
    let (dead, live) = (
        stale(),
        dir.path()
            .join(format!(".{key}.fsc.{}.9.tmp", std::process::id())),
    );
    std::fs::write(&live, b"partial").unwrap();
    let cli = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_faultsweep"))
            .args(args)
            .arg("--cache-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    for listing in [cli(&["cache", "ls"]), cli(&["cache", "verify"])] {
        let line = |p: &std::path::Path| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            listing
                .lines()
                .find(|l| l.contains(&name))
                .map(str::to_string)
        };
        let d = line(&dead).unwrap_or_else(|| panic!("{listing}"));
        assert!(
            d.starts_with("stale") && d.contains("1234 bytes") && d.contains("rm --stale"),
            "{d}"
        );
        let l = line(&live).unwrap_or_else(|| panic!("{listing}"));
        assert!(l.contains("7 bytes") && l.contains("running"), "{l}");
    }
    let removed = cli(&["cache", "rm", "--stale"]);
    assert!(removed.contains(&dead.display().to_string()), "{removed}");
    assert!(!dead.exists() && live.exists());
    let dead = stale();
    golden(&store, 10, vec![3]);
    assert!(!dead.exists(), "the next fill removes a stale temporary");
    assert!(
        live.exists(),
        "a running process's temporary is never removed"
    );
}

/// A killed bench left its folder under the system temporary folder: the
/// next bench removes those of processes that are gone, not others.
#[test]
fn bench_folders_of_dead_processes_are_removed() {
    let tmp = std::env::temp_dir();
    let dead = tmp.join(format!("faultsweep-bench-{}-test", dead_pid()));
    let live = tmp.join(format!("faultsweep-bench-{}-test", std::process::id()));
    for d in [&dead, &live] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("entry"), b"x").unwrap();
    }
    let fresh = faultsweep::temps::bench_dir().unwrap();
    let name = fresh
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(&format!("faultsweep-bench-{}-", std::process::id())),
        "{name}"
    );
    assert!(!dead.exists(), "{} left", dead.display());
    assert!(live.exists());
    std::fs::remove_dir_all(&live).unwrap();
}
