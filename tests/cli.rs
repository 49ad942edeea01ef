//! The `faultsweep` binary: command names, outputs and exit codes are a
//! contract (docs/commands.md, including "Exit codes").

use std::process::Command;

use tch::{Kind, Tensor};

use crate::common::faultsweep_uncached as faultsweep;
use crate::common::fixtures;

fn good_model() -> String {
    fixtures().join("errors/good.onnx").display().to_string()
}

#[test]
fn inspect_json_lists_nodes_targets_and_frontiers() {
    let out = faultsweep(&["inspect", &good_model(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = info["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["name"], "mm");
    assert_eq!(nodes[0]["op"], "MatMul");
    assert_eq!(nodes[0]["weights"], serde_json::json!(["w"]));
    assert_eq!(nodes[0]["params"], 16);
    assert_eq!(nodes[0]["macs"], 16);
    assert_eq!(nodes[0]["injectable"], true);
    assert_eq!(nodes[0]["outputs"][0]["shape"], serde_json::json!([4]));
    let cuts = info["cuts"].as_array().unwrap();
    assert_eq!(cuts.len(), 3);
    assert_eq!(cuts[0]["values"], serde_json::json!(["x"]));
    assert_eq!(cuts[1]["values"], serde_json::json!(["h"]));
    assert_eq!(cuts[2]["values"], serde_json::json!(["y"]));
    assert_eq!(cuts[1]["elements"], 4);
}

#[test]
fn inspect_table_has_the_documented_columns() {
    let out = faultsweep(&["inspect", &good_model()]);
    let text = String::from_utf8(out.stdout).unwrap();
    for column in [
        "index",
        "name",
        "op",
        "output/sample",
        "params",
        "MACs",
        "target",
        "weights",
        "frontier",
    ] {
        assert!(text.contains(column), "missing column {column}:\n{text}");
    }
}

/// The node table's columns line up under their headers whatever the
/// length of the node names (MobileNetV2's run to 46 characters), and no
/// line ends in spaces.
#[test]
fn inspect_table_stays_aligned_with_long_names() {
    let mut models = vec![fixtures().join("models/mobilenet_v2_ts17.onnx")];
    if let Some([real]) = crate::common::shared(["models/mobilenet_v2.onnx"]) {
        models.push(real);
    }
    for model in models {
        let model = model.to_str().unwrap();
        let json = faultsweep(&["inspect", model, "--json"]);
        let info: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        let nodes = info["nodes"].as_array().unwrap();
        let longest = nodes.iter().map(|n| n["name"].as_str().unwrap().len());
        assert!(longest.max().unwrap() > 40, "{model}: no long name to test");
        let text = String::from_utf8(faultsweep(&["inspect", model]).stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.iter().all(|l| l.trim_end() == *l),
            "{model}: trailing spaces"
        );
        let head = lines.iter().position(|l| l.starts_with("index")).unwrap();
        let header = lines[head];
        let start = |col: &str| header.find(&format!(" {col} ")).unwrap() + 1;
        let end = |col: &str| header.find(&format!(" {col} ")).unwrap() + 1 + col.len();
        for (n, row) in nodes.iter().zip(&lines[head + 1..]) {
            let at = |from: usize| row.get(from..).unwrap_or_default();
            let until = |to: usize| row.get(..to).unwrap_or_default();
            assert!(
                at(start("name")).starts_with(n["name"].as_str().unwrap()),
                "{row}"
            );
            assert!(
                at(start("op")).starts_with(&format!("{} ", n["op"].as_str().unwrap())),
                "{header}\n{row}"
            );
            assert!(
                until(end("params")).ends_with(&format!(" {}", n["params"])),
                "{header}\n{row}"
            );
            assert!(
                until(end("MACs")).ends_with(&format!(" {}", n["macs"])),
                "{header}\n{row}"
            );
            let target = if n["injectable"] == true {
                "neuron"
            } else {
                "-"
            };
            assert!(at(start("target")).starts_with(target), "{header}\n{row}");
        }
    }
}

#[test]
fn infer_writes_the_model_output_and_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output, labels) = (
        dir.path().join("x.npy"),
        dir.path().join("y.npy"),
        dir.path().join("l.npy"),
    );
    let x = Tensor::arange(12, (Kind::Float, tch::Device::Cpu)).reshape([3, 4]) - 5.0;
    x.write_npy(&input).unwrap();
    Tensor::from_slice(&[3i64, 0, 3])
        .write_npy(&labels)
        .unwrap();
    let out = faultsweep(&[
        "infer",
        &good_model(),
        input.to_str().unwrap(),
        "--out",
        output.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let y = Tensor::read_npy(&output).unwrap();
    // MatMul with a ones matrix then Relu: every column holds max(row sum, 0).
    let want = x
        .sum_dim_intlist([1i64].as_slice(), true, Kind::Float)
        .relu()
        .expand([3, 4], false);
    assert!(y.equal(&want), "{y} vs {want}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("top-1 accuracy") && text.contains("/3)"),
        "{text}"
    );
}

/// Only `infer` runs on a chosen device; every other command runs on the
/// CPU and refuses `--device` rather than ignore it.
#[test]
fn only_infer_takes_a_device() {
    let model = good_model();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.npy");
    Tensor::ones([2, 4], (Kind::Float, tch::Device::Cpu))
        .write_npy(&input)
        .unwrap();
    let out = dir.path().join("y.npy");
    let (input, out) = (input.to_str().unwrap(), out.to_str().unwrap());
    let ok = faultsweep(&["infer", &model, input, "--out", out, "--device", "cpu"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for args in [
        vec!["--device", "cpu", "inspect", &model],
        vec!["inspect", &model, "--device", "cpu"],
        vec!["golden", &model, input, "--device", "cpu"],
        vec!["run", "scenarios/fashion_neurons.yml", "--device", "cpu"],
        vec![
            "faults", "gen", "s.yml", "--out", "f.bin", "--device", "cpu",
        ],
        vec!["bench", "s.yml", "--device", "cpu"],
        vec!["cache", "ls", "--device", "cpu"],
        vec!["report", "somewhere", "--device", "cpu"],
    ] {
        let r = faultsweep(&args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("'--device'"), "{args:?}: {err}");
    }
}

#[test]
fn errors_map_to_documented_exit_codes() {
    let model = fixtures().join("errors/unsupported_op.onnx");
    let out = faultsweep(&["inspect", model.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("Frobnicate") && err.contains("frob"), "{err}");

    let out = faultsweep(&[
        "infer",
        &good_model(),
        &good_model(),
        "--out",
        "/tmp/never.npy",
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "a model file is not a .npy batch"
    );

    let out = faultsweep(&["inspect", "/nonexistent.onnx"]);
    assert_eq!(out.status.code(), Some(6));

    let out = faultsweep(&["frobnicate"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "usage errors exit with clap's 2"
    );
}

fn demo_golden(cache: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_faultsweep"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "golden",
            "models/fashion_cnn.onnx",
            "data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz",
        ])
        .args([
            "--labels",
            "data/fashion-mnist/t10k-1000-labels-idx1-ubyte.gz",
        ])
        .args(extra)
        .env("FAULTSWEEP_CACHE", cache);
    c
}

#[test]
fn golden_and_cache_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, out) = (dir.path().join("c"), dir.path().join("r"));
    let run = demo_golden(
        &cache,
        &[
            "--first",
            "200",
            "--cuts",
            "3,9",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let text = String::from_utf8(run.stdout).unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        text.contains("top-1 accuracy")
            && text.contains("cut 3: written")
            && text.contains("cut 9: written"),
        "{text}"
    );
    let golden = std::fs::read_to_string(out.join("golden.csv")).unwrap();
    assert_eq!(golden.lines().count(), 201);
    assert!(golden.starts_with("sample_id,source,label,correct,nonfinite,top1_class,top1_score"));
    assert!(std::fs::read_to_string(out.join("ranges.csv"))
        .unwrap()
        .starts_with("index,node,min,max\n0,"));

    // The environment variable chose the root; --cache-dir overrides it.
    let ls = faultsweep(&["cache", "ls", "--cache-dir", cache.to_str().unwrap()]);
    let listing = String::from_utf8(ls.stdout).unwrap();
    assert_eq!(listing.lines().count(), 3, "{listing}");
    let key = listing
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let info = faultsweep(&[
        "cache",
        "info",
        &key[..8],
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    let header: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(header["samples"], 200);
    assert!(
        faultsweep(&["cache", "verify", "--cache-dir", cache.to_str().unwrap()])
            .status
            .success()
    );

    // Corrupt one entry: verify names it and fails with code 7.
    let victim = cache.join(format!("{key}.fsc"));
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&victim, bytes).unwrap();
    let verify = faultsweep(&["cache", "verify", "--cache-dir", cache.to_str().unwrap()]);
    assert_eq!(verify.status.code(), Some(7));
    assert!(String::from_utf8(verify.stdout)
        .unwrap()
        .contains(&victim.display().to_string()));

    // A prefix of both keys removes nothing and names them.
    let files = std::fs::read_dir(&cache).unwrap().count();
    for cmd in ["rm", "info"] {
        let o = faultsweep(&["cache", cmd, "", "--cache-dir", cache.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "cache {cmd}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(&key),
            "cache {cmd}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        files,
        "cache rm removed entries"
    );

    let rm = faultsweep(&[
        "cache",
        "rm",
        "--all",
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    assert!(rm.status.success());
    assert!(std::fs::read_dir(&cache).unwrap().next().is_none());
    assert_eq!(
        faultsweep(&["cache", "rm", "--cache-dir", cache.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_killed_golden_run_leaves_no_entry_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    for delay_ms in [150, 400, 800] {
        let mut child = demo_golden(dir.path(), &["--cuts", "2,3,5,6", "--batch-size", "50"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Whatever finished is intact; nothing unfinished looks like an entry.
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "fsc") {
                faultsweep::cache::Reader::open(&p)
                    .and_then(|r| r.verify())
                    .unwrap();
            }
        }
    }
    let rerun = demo_golden(dir.path(), &["--cuts", "2,3,5,6", "--batch-size", "50"])
        .output()
        .unwrap();
    assert!(rerun.status.success());
    let ok = faultsweep(&[
        "cache",
        "verify",
        "--cache-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(ok.status.success());
    assert_eq!(String::from_utf8(ok.stdout).unwrap().lines().count(), 4);
}

#[test]
fn a_scenario_and_resume_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = faultsweep(&[
        "run",
        "scenarios/fashion_neurons.yml",
        "--resume",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

/// A results folder that is missing or a regular file is named as such
/// (it was "the campaign stopped before it saved its scenario").
#[test]
fn a_results_folder_that_is_missing_or_a_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let missing = dir.path().join("missing");
    for (path, words) in [(&missing, "does not exist"), (&file, "is not a folder")] {
        let path = path.to_str().unwrap();
        for args in [vec!["run", "--resume", path], vec!["report", path]] {
            let o = faultsweep(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(4), "{args:?}: {err}");
            assert!(err.contains(path) && err.contains(words), "{args:?}: {err}");
            assert!(!err.contains("stopped before"), "{err}");
        }
    }
    assert!(!missing.exists());
}

/// `--out` through a symlink writes the link's target and keeps the link;
/// a FIFO (or device) is refused and left as it is, never replaced by a
/// regular file.
#[test]
fn outputs_write_through_symlinks_and_refuse_special_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    let input = d("x.npy");
    Tensor::ones([2, 4], (Kind::Float, tch::Device::Cpu))
        .write_npy(&input)
        .unwrap();
    std::os::unix::fs::symlink("real.npy", d("link.npy")).unwrap();
    let mkfifo = std::process::Command::new("mkfifo")
        .arg(d("fifo"))
        .status()
        .unwrap();
    assert!(mkfifo.success());
    let infer = |out: &std::path::Path| {
        let (model, x) = (good_model(), input.to_str().unwrap().to_string());
        faultsweep(&["infer", &model, &x, "--out", out.to_str().unwrap()])
    };
    let o = infer(&d("link.npy"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let link = std::fs::symlink_metadata(d("link.npy")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
    let y = Tensor::read_npy(d("real.npy")).unwrap();
    assert_eq!(y.size(), [2, 4]);
    // faults gen renamed its temporary file over the link.
    std::os::unix::fs::symlink("real.csv", d("list.csv")).unwrap();
    let scenario = crate::common::small_scenario(dir.path(), 5);
    let args = ["faults", "gen", scenario.to_str().unwrap(), "--out"];
    let o = crate::common::faultsweep(
        &[&args[..], &[d("list.csv").to_str().unwrap()]].concat(),
        dir.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let link = std::fs::symlink_metadata(d("list.csv")).unwrap();
    assert!(
        link.file_type().is_symlink(),
        "faults gen replaced the link"
    );
    assert!(
        std::fs::read_to_string(d("real.csv"))
            .unwrap()
            .lines()
            .count()
            > 5
    );
    // A reader held open, so a writer that (wrongly) opens the FIFO does
    // not block forever: O_NONBLOCK (Linux value), no libc here.
    let _reader = std::os::unix::fs::OpenOptionsExt::custom_flags(
        std::fs::OpenOptions::new().read(true),
        0o4000,
    )
    .open(d("fifo"))
    .unwrap();
    let o = infer(&d("fifo"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(6), "{err}");
    assert!(
        err.contains("fifo") && err.contains("special file"),
        "{err}"
    );
    let fifo = std::fs::symlink_metadata(d("fifo")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}
