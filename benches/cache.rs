//! Cache benchmark (issue 3): golden pass with and without cache writing,
//! cache size and compression ratio per cut, read-and-decompress throughput
//! against recomputing the prefix, and peak memory against the sample count.
//!
//! Run: `cargo bench --bench cache` (add `-- --quick` for a short run).
//! Uses the demo model and, when ../shared is present, MobileNetV2 on the
//! photos. Times are medians of several runs measured side by side.

use std::path::{Path, PathBuf};
use std::time::Instant;

use faultsweep::bench::memory::{peak_rss_bytes, reset_peak_rss};
use faultsweep::cache::{CacheSpec, Reader, Store};
use faultsweep::data::{Channels, DataSpec, Dataset, Preprocess, Subset};
use faultsweep::golden::GoldenRun;
use faultsweep::graph::Graph;
use faultsweep::{load, split};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(runs: usize, mut f: impl FnMut()) -> f64 {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

struct Case {
    name: &'static str,
    model: PathBuf,
    data: DataSpec,
    /// Cuts to measure: every Conv output here.
    cuts: Vec<usize>,
}

fn conv_cuts(graph: &Graph) -> Vec<usize> {
    graph
        .nodes
        .iter()
        .filter(|n| n.op.name() == "Conv")
        .map(|n| n.index + 1)
        .collect()
}

fn golden(graph: &Graph, data: &Dataset, cuts: Vec<usize>, store: Option<&Store>) {
    GoldenRun {
        graph,
        data,
        cuts,
        reads: None,
        store,
        top_k: 5,
    }
    .run()
    .expect("golden run");
}

fn bench(case: &Case, runs: usize, level: i32) {
    let graph = load::load(&case.model).expect("model");
    let data = Dataset::open(&case.data).expect("data");
    let n = data.len();
    println!("\n## {} ({} samples, zstd level {level})", case.name, n);
    let plain = time(runs, || golden(&graph, &data, vec![], None));
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = CacheSpec {
        zstd_level: level,
        ..CacheSpec::default()
    };
    let store = Store::new(&spec, Some(dir.path()));
    let filling = time(runs, || {
        let _ = std::fs::remove_dir_all(dir.path());
        golden(&graph, &data, case.cuts.clone(), Some(&store));
    });
    println!(
        "golden pass: {:.3} s plain, {:.3} s writing {} cuts ({:.2}x)",
        plain,
        filling,
        case.cuts.len(),
        filling / plain
    );
    let x = data.batch(0..n).expect("batch").inputs.remove(0);
    println!(
        "{:>4} {:>10} {:>10} {:>6} {:>10} {:>8} {:>11} {:>9}",
        "cut", "raw MB", "disk MB", "ratio", "read ms", "GB/s", "prefix ms", "read/pre"
    );
    let (mut raw_all, mut disk_all, mut read_all, mut prefix_all) = (0u64, 0u64, 0.0, 0.0);
    for entry in std::fs::read_dir(dir.path()).expect("cache dir") {
        let r = Reader::open(&entry.expect("entry").path()).expect("entry opens");
        let cut = r.header.cut;
        let (disk, raw) = r.sizes();
        // A fresh reader per run: its recent-chunk memory must not serve the read.
        let read = time(runs, || {
            Reader::open(&r.path)
                .expect("entry opens")
                .read(0, n)
                .expect("read");
        });
        let prefix = time(runs, || {
            split::prefix(&graph, &[x.shallow_clone()], cut).expect("prefix");
        });
        println!(
            "{cut:>4} {:>10.2} {:>10.2} {:>6.2} {:>10.2} {:>8.2} {:>11.2} {:>9.2}",
            raw as f64 / 1e6,
            disk as f64 / 1e6,
            raw as f64 / disk as f64,
            read * 1e3,
            raw as f64 / read / 1e9,
            prefix * 1e3,
            read / prefix
        );
        (raw_all, disk_all, read_all, prefix_all) = (
            raw_all + raw,
            disk_all + disk,
            read_all + read,
            prefix_all + prefix,
        );
    }
    println!(
        "all: {:.1} MB raw, {:.1} MB on disk, ratio {:.2}, read {:.2} GB/s; reading costs {:.2}x recomputing the prefixes",
        raw_all as f64 / 1e6,
        disk_all as f64 / 1e6,
        raw_all as f64 / disk_all as f64,
        raw_all as f64 / read_all / 1e9,
        read_all / prefix_all
    );
}

/// Peak memory of a cache-filling golden pass over `first` samples.
fn peak_for(case: &Case, first: usize) -> u64 {
    let graph = load::load(&case.model).expect("model");
    let data = Dataset::open(&DataSpec {
        subset: Subset::First(first),
        ..case.data.clone()
    })
    .expect("data");
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = CacheSpec {
        zstd_level: 3,
        ..CacheSpec::default()
    };
    let store = Store::new(&spec, Some(dir.path()));
    reset_peak_rss();
    golden(&graph, &data, case.cuts.clone(), Some(&store));
    peak_rss_bytes()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 1 } else { 5 };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo_model = root.join("models/fashion_cnn.onnx");
    let demo = Case {
        name: "demo Fashion-MNIST CNN",
        cuts: conv_cuts(&load::load(&demo_model).expect("demo model")),
        model: demo_model,
        data: DataSpec {
            path: root.join("data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz"),
            labels: None,
            array: None,
            subset: Subset::All,
            correct_only: false,
            batch_size: 100,
            window: faultsweep::data::default_window(),
            preprocess: Preprocess::default(),
        },
    };
    for level in [1, 3, 9] {
        bench(&demo, runs, level);
    }
    let small = peak_for(&demo, 250);
    let large = peak_for(&demo, 1000);
    println!(
        "\npeak memory of a cache-filling golden pass: {:.1} MB for 250 samples, {:.1} MB for 1000",
        small as f64 / 1e6,
        large as f64 / 1e6
    );
    let mobilenet = root.join("../shared/models/mobilenet_v2.onnx");
    if mobilenet.exists() {
        let case = Case {
            name: "MobileNetV2 on ../shared/images",
            cuts: conv_cuts(&load::load(&mobilenet).expect("mobilenet")),
            model: mobilenet,
            data: DataSpec {
                path: root.join("../shared/images"),
                labels: None,
                array: None,
                subset: Subset::All,
                correct_only: false,
                batch_size: 5,
                window: faultsweep::data::default_window(),
                preprocess: Preprocess {
                    resize: Some(256),
                    center_crop: Some(224),
                    scale: None,
                    mean: vec![0.485, 0.456, 0.406],
                    std: vec![0.229, 0.224, 0.225],
                    channels: Channels::Rgb,
                    ..Default::default()
                },
            },
        };
        for level in [1, 3] {
            bench(&case, runs.min(3), level);
        }
    } else {
        println!("\nMobileNetV2 skipped: ../shared/models/mobilenet_v2.onnx is absent");
    }
}
