//! The resume contract and locks: `run --resume DIR` from any working
//! directory, at any resume point and any byte a crash left, gives the
//! uninterrupted campaign byte for byte; it refuses inputs other than the
//! recorded ones; one process writes a results folder at a time; processes
//! filling one cache entry at once all succeed.
//!
//! Inputs: the demo model and data, campaigns cut down to seconds. No Python.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{edit_scenario, root, small_scenario};

/// 100 samples, `n` injections, batches of 16 (chunks of 128 runs) in
/// windows of 300 runs.
fn scenario(dir: &Path, n: usize) -> PathBuf {
    let path = small_scenario(dir, n);
    edit_scenario(&path, path.clone(), |s| {
        s.data.batch_size = 16;
        s.data.window = 300;
    })
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `faultsweep ARGS` run in `cwd`, without FAULTSWEEP_CACHE: the cache is
/// the one the campaign recorded.
fn command(args: &[&str], cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_faultsweep"));
    c.args(args).current_dir(cwd).env_remove("FAULTSWEEP_CACHE");
    c
}

fn output(args: &[&str], cwd: &Path) -> Output {
    command(args, cwd).output().expect("runs")
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The uninterrupted campaign in `DIR/whole`, run from the repository root
/// with its cache in `DIR/cache`.
fn whole(dir: &Path, n: usize) -> PathBuf {
    let sc = scenario(dir, n);
    let out = dir.join("whole");
    let cache = dir.join("cache");
    ok(&output(
        &["run", s(&sc), "--out", s(&out), "--cache-dir", s(&cache)],
        &root(),
    ));
    out
}

const RESULTS: [&str; 4] = [
    "injections.csv",
    "summary.csv",
    "summary.json",
    "summary.md",
];

/// A copy of the finished campaign `whole` as a crash might leave it:
/// `injections.csv` cut to `bytes`, no summaries.
fn cut_copy(whole: &Path, to: &Path, bytes: usize) {
    std::fs::create_dir_all(to).unwrap();
    for f in [
        "scenario.yml",
        "faults.bin",
        "provenance.json",
        "injections.sums",
    ] {
        if whole.join(f).exists() {
            std::fs::copy(whole.join(f), to.join(f)).unwrap();
        }
    }
    let rows = std::fs::read(whole.join("injections.csv")).unwrap();
    std::fs::write(to.join("injections.csv"), &rows[..bytes]).unwrap();
}

/// Resumes `dir` from `cwd` (not the repository) and checks it equals
/// `whole` byte for byte.
fn resume_equals(dir: &Path, whole: &Path, cwd: &Path, what: &str) {
    let r = output(&["run", "--resume", s(dir)], cwd);
    assert!(
        r.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    for f in RESULTS {
        assert!(
            std::fs::read(dir.join(f)).unwrap() == std::fs::read(whole.join(f)).unwrap(),
            "{what}: {f} differs from the uninterrupted run's"
        );
    }
}

fn line_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        (0..bytes.len())
            .filter(|&i| bytes[i] == b'\n')
            .map(|i| i + 1),
    );
    starts
}

/// Resume points at every chunk and window boundary and one row either
/// side, in every window and through the last, resumed from another
/// working directory: each gives the uninterrupted campaign, and the
/// results folder needs nothing from the working directory (no `./cache`
/// appears there).
#[test]
fn every_resume_point_gives_the_uninterrupted_campaign_from_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let whole = whole(dir.path(), 1000);
    let rows = std::fs::read(whole.join("injections.csv")).unwrap();
    let starts = line_starts(&rows);
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    // Windows of 300 runs: [0, 300), [300, 600), [600, 900), [900, 1000);
    // chunks of 128 within each.
    let mut points: Vec<usize> = vec![0, 1, 127, 128, 950, 999, 1000];
    for at in [300usize, 428, 600, 856, 900] {
        points.extend([at - 1, at, at + 1]);
    }
    points.sort_unstable();
    points.dedup();
    for runs in points.into_iter().filter(|&r| r <= 1000) {
        let to = dir.path().join(format!("at{runs}"));
        cut_copy(&whole, &to, starts[runs + 1]);
        resume_equals(&to, &whole, &elsewhere, &format!("resumed at run {runs}"));
    }
    assert!(
        !elsewhere.join("cache").exists(),
        "a cache in the working directory"
    );
    assert!(!elsewhere.join("results").exists());
    let report = output(&["report", s(&whole)], &elsewhere);
    ok(&report);
}

/// A crash leaves `injections.csv` cut at any byte, and its sums file
/// with any number of lines (torn too): every such state of the last
/// window resumes to the uninterrupted campaign; so does a kill before the
/// first row (an empty file, or half a header).
#[test]
fn a_cut_at_any_byte_of_the_last_window_resumes_to_the_uninterrupted_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let whole = whole(dir.path(), 400);
    let rows = std::fs::read(whole.join("injections.csv")).unwrap();
    let starts = line_starts(&rows);
    // The last window holds runs 300 to 400: rows 301 to 401 of the file.
    let from = starts[301] - 40;
    let sums = std::fs::read(whole.join("injections.sums")).unwrap_or_default();
    // About 30 positions, spread over lines and the bytes within them.
    let step = (rows.len() - from) / 29 + 1;
    let mut cuts: Vec<usize> = (from..rows.len()).step_by(step).collect();
    cuts.extend([0, 5, starts[1], rows.len() - 1]);
    for (i, bytes) in cuts.into_iter().enumerate() {
        let to = dir.path().join(format!("b{bytes}"));
        cut_copy(&whole, &to, bytes);
        // Every other case with the sums file torn too.
        if i % 2 == 1 && !sums.is_empty() {
            std::fs::write(to.join("injections.sums"), &sums[..sums.len() - 1 - i % 30]).unwrap();
        }
        resume_equals(&to, &whole, &root(), &format!("cut at byte {bytes}"));
    }
}

/// An outcome edited in the rows a resume would keep is noticed (their
/// chunk no longer matches its sum) and run again; `report` names the file.
#[test]
fn edited_rows_are_run_again_on_resume_and_named_by_report() {
    let dir = tempfile::tempdir().unwrap();
    let whole = whole(dir.path(), 400);
    let rows = String::from_utf8(std::fs::read(whole.join("injections.csv")).unwrap()).unwrap();
    let edited = rows.replacen(",masked,", ",sde,", 1);
    assert_ne!(edited, rows);
    let starts = line_starts(edited.as_bytes());
    let to = dir.path().join("edited");
    cut_copy(&whole, &to, 0);
    std::fs::write(to.join("injections.csv"), &edited.as_bytes()[..starts[350]]).unwrap();
    let r = output(&["run", "--resume", s(&to)], &root());
    ok(&r);
    assert!(
        std::fs::read(to.join("injections.csv")).unwrap() == rows.as_bytes(),
        "the edited row was kept"
    );
    assert!(String::from_utf8_lossy(&r.stderr).contains("injections.sums"));
    std::fs::write(whole.join("injections.csv"), &edited).unwrap();
    let report = output(&["report", s(&whole)], &root());
    assert_eq!(report.status.code(), Some(11));
    assert!(String::from_utf8_lossy(&report.stderr).contains("injections.csv changed"));
}

/// A resume refuses a model or data set other than the campaign's (exit
/// 11, naming the file), and a changed scenario or fault list.
#[test]
fn resume_refuses_inputs_other_than_the_recorded_ones() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.onnx");
    std::fs::copy(root().join("models/fashion_cnn.onnx"), &model).unwrap();
    let sc = scenario(dir.path(), 400);
    let labels = dir.path().join("labels.npy");
    std::fs::copy(
        root().join("data/fashion-mnist/t10k-1000-labels.npy"),
        &labels,
    )
    .unwrap();
    edit_scenario(&sc, sc.clone(), |spec| {
        spec.model.path = model.clone();
        spec.data.labels = Some(labels.clone());
    });
    let out = dir.path().join("run");
    let cache = dir.path().join("cache");
    ok(&output(
        &["run", s(&sc), "--out", s(&out), "--cache-dir", s(&cache)],
        &root(),
    ));
    let rows = std::fs::read(out.join("injections.csv")).unwrap();
    // Other weights: the middle of the file is the first Gemm's weight.
    let mut bytes = std::fs::read(&model).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&model, &bytes).unwrap();
    let r = output(&["report", s(&out)], &root());
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(11), "{err}");
    assert!(err.contains(&format!("{}: blake3", s(&model))), "{err}");
    std::fs::write(out.join("injections.csv"), &rows[..rows.len() / 2]).unwrap();
    let r = output(&["run", "--resume", s(&out)], &root());
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(11), "{err}");
    assert!(
        err.contains(s(&model)) && err.contains("provenance.json"),
        "{err}"
    );
    bytes[at] ^= 0x10;
    std::fs::write(&model, &bytes).unwrap();
    // Another label for the first sample (int64, after the .npy header).
    let mut label_bytes = std::fs::read(&labels).unwrap();
    let first = 10 + u16::from_le_bytes([label_bytes[8], label_bytes[9]]) as usize;
    label_bytes[first] ^= 1;
    std::fs::write(&labels, &label_bytes).unwrap();
    let r = output(&["run", "--resume", s(&out)], &root());
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(11), "{err}");
    assert!(
        err.contains(s(&labels)) && err.contains("provenance.json"),
        "{err}"
    );
    label_bytes[first] ^= 1;
    std::fs::write(&labels, &label_bytes).unwrap();
    // A changed scenario.
    let saved = out.join("scenario.yml");
    let text = std::fs::read_to_string(&saved).unwrap();
    std::fs::write(&saved, text.replace("top_k: 5", "top_k: 3")).unwrap();
    let r = output(&["run", "--resume", s(&out)], &root());
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(11), "{err}");
    assert!(err.contains(s(&saved)), "{err}");
    std::fs::write(&saved, text).unwrap();
    ok(&output(&["run", "--resume", s(&out)], &root()));
    assert_eq!(std::fs::read(out.join("injections.csv")).unwrap(), rows);
}

/// While a process holds a results folder's lock, another `run --resume`
/// fails at once (exit 4) naming the holder; once it is released (the
/// holder exits in any way) the resume runs.
#[test]
fn a_results_folder_has_one_writer_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let whole = whole(dir.path(), 400);
    let to = dir.path().join("r");
    let rows = std::fs::read(whole.join("injections.csv")).unwrap();
    cut_copy(&whole, &to, rows.len() / 3);
    let lock = std::fs::File::create(to.join(".lock")).unwrap();
    lock.try_lock().unwrap();
    std::fs::write(to.join(".lock"), "host testhost pid 4242\n").unwrap();
    let r = output(&["run", "--resume", s(&to)], &root());
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(4), "{err}");
    assert!(err.contains("testhost pid 4242"), "{err}");
    drop(lock);
    // Two resumes at once: one runs, the other is refused or finds it
    // done; the folder ends whole.
    let spawn = || {
        command(&["run", "--resume", s(&to)], &root())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for o in [&a, &b] {
        let code = o.status.code();
        assert!(code == Some(0) || code == Some(4), "{o:?}");
    }
    assert!(a.status.success() || b.status.success());
    for f in RESULTS {
        assert!(
            std::fs::read(to.join(f)).unwrap() == std::fs::read(whole.join(f)).unwrap(),
            "{f}"
        );
    }
    ok(&output(&["report", s(&to)], &root()));
}

/// Four runs at once over a cache whose entry and golden results are
/// corrupt (the whole demo data set, so checking the entry takes long
/// enough for the runs to meet): one rebuilds them, the others wait and
/// reuse them; all succeed with the uninterrupted rows.
#[test]
fn concurrent_runs_rebuild_a_corrupt_cache_entry_once() {
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("scenarios/fashion_neurons.yml");
    let sc = edit_scenario(&from, dir.path().join("s.yml"), |s| {
        s.counts.injections = Some(200);
    });
    let cache = dir.path().join("cache");
    let run = |out: &Path| {
        command(
            &["run", s(&sc), "--out", s(out), "--cache-dir", s(&cache)],
            &root(),
        )
    };
    // The entries of every cut the campaign reads, whatever its cut plan.
    let data = root().join("data/fashion-mnist");
    let golden = output(
        &[
            "golden",
            s(&root().join("models/fashion_cnn.onnx")),
            s(&data.join("t10k-1000-images-idx3-ubyte.gz")),
            "--labels",
            s(&data.join("t10k-1000-labels-idx1-ubyte.gz")),
            "--cuts",
            "3,6,10",
            "--cache-dir",
            s(&cache),
        ],
        &root(),
    );
    ok(&golden);
    let whole = dir.path().join("whole");
    ok(&run(&whole).output().unwrap());
    let rows = std::fs::read(whole.join("injections.csv")).unwrap();
    // While this process holds the entries' locks, a run waits for them.
    let locks: Vec<std::fs::File> = (std::fs::read_dir(&cache).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "fsc"))
        .map(|p| {
            let key = p.file_stem().unwrap().to_string_lossy().into_owned();
            let lock = std::fs::File::create(cache.join(format!(".{key}.lock"))).unwrap();
            lock.lock().unwrap();
            lock
        })
        .collect();
    assert!(!locks.is_empty());
    let out = dir.path().join("waits");
    let mut child = run(&out).stdout(Stdio::null()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run did not wait for the entry being filled"
    );
    drop(locks);
    assert!(child.wait().unwrap().success());
    assert!(std::fs::read(out.join("injections.csv")).unwrap() == rows);
    for round in 0..3 {
        for e in std::fs::read_dir(&cache).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "fsc" || x == "golden") {
                let mut bytes = std::fs::read(&p).unwrap();
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0xff;
                std::fs::write(&p, bytes).unwrap();
            }
        }
        let outs: Vec<PathBuf> = (0..4)
            .map(|i| dir.path().join(format!("r{round}_{i}")))
            .collect();
        let children: Vec<_> = (outs.iter())
            .map(|out| {
                (run(out).stdout(Stdio::null()).stderr(Stdio::piped()))
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (child, out) in children.into_iter().zip(&outs) {
            let o = child.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "round {round}, {}: {}",
                out.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(std::fs::read(out.join("injections.csv")).unwrap() == rows);
        }
    }
}

/// A `data.correct_only` campaign cut mid-way resumes to the uninterrupted
/// one (the resume replans the same kept samples), and `report` agrees.
#[test]
fn a_correct_only_campaign_resumes_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), 600);
    edit_scenario(&sc, sc.clone(), |s| s.data.correct_only = true);
    let whole = dir.path().join("whole");
    let cache = dir.path().join("cache");
    ok(&output(
        &["run", s(&sc), "--out", s(&whole), "--cache-dir", s(&cache)],
        &root(),
    ));
    let text = std::fs::read_to_string(whole.join("scenario.yml")).unwrap();
    assert!(text.contains("correct_only: true"), "{text}");
    let rows = std::fs::read(whole.join("injections.csv")).unwrap();
    let starts = line_starts(&rows);
    let to = dir.path().join("cut");
    cut_copy(&whole, &to, starts[starts.len() / 2]);
    resume_equals(&to, &whole, &root(), "correct_only cut half-way");
    ok(&output(&["report", s(&to)], &root()));
}

/// `outputs.injections: parquet`: the parts read back as the CSV run's
/// rows (the same sums and summaries), and every state a crash can leave
/// (the first k parts, with the sums of the last part written or not yet,
/// a part's temporary file) resumes to the uninterrupted campaign, part
/// for part.
#[test]
fn a_parquet_campaign_reads_as_its_csv_and_resumes_from_any_part() {
    let dir = tempfile::tempdir().unwrap();
    let csv = whole(dir.path(), 1000);
    let sc = dir.path().join("parquet.yml");
    edit_scenario(&scenario(dir.path(), 1000), sc.clone(), |s| {
        s.outputs.injections = faultsweep::scenario::RowsFormat::Parquet;
    });
    let whole = dir.path().join("whole-parquet");
    let cache = dir.path().join("cache");
    ok(&output(
        &["run", s(&sc), "--out", s(&whole), "--cache-dir", s(&cache)],
        &root(),
    ));
    assert!(!whole.join("injections.csv").exists());
    let part = |dir: &Path, k: usize| dir.join(format!("injections/part-{k:05}.parquet"));
    // Windows of 300 runs: four parts.
    assert!(part(&whole, 3).exists() && !part(&whole, 4).exists());
    for f in [
        "injections.sums",
        "summary.csv",
        "summary.md",
        "summary.json",
    ] {
        assert!(
            std::fs::read(csv.join(f)).unwrap() == std::fs::read(whole.join(f)).unwrap(),
            "{f} differs from the CSV campaign's"
        );
    }
    let sums = std::fs::read_to_string(whole.join("injections.sums")).unwrap();
    let sums: Vec<&str> = sums.lines().collect();
    // Chunks of 128 runs within windows of 300: 3 chunks per window, then 1.
    let chunks_before = [0, 3, 6, 9, 10];
    for parts in 0..4 {
        for sums_written in [true, false] {
            let to = dir.path().join(format!("p{parts}{sums_written}"));
            std::fs::create_dir_all(to.join("injections")).unwrap();
            for f in ["scenario.yml", "faults.bin", "provenance.json"] {
                std::fs::copy(whole.join(f), to.join(f)).unwrap();
            }
            for k in 0..parts {
                std::fs::copy(part(&whole, k), part(&to, k)).unwrap();
            }
            // Killed while writing the next part, or after writing it but
            // before its sums.
            let next = part(&to, parts);
            match sums_written {
                true => std::fs::write(
                    to.join(format!("injections/.part-{parts:05}.parquet.1.tmp")),
                    b"PAR1",
                )
                .unwrap(),
                false => drop(std::fs::copy(part(&whole, parts), &next).unwrap()),
            }
            let kept = sums[..chunks_before[parts]]
                .iter()
                .map(|l| format!("{l}\n"));
            std::fs::write(to.join("injections.sums"), kept.collect::<String>()).unwrap();
            let r = output(&["run", "--resume", s(&to)], &root());
            ok(&r);
            for k in 0..4 {
                assert!(
                    std::fs::read(part(&to, k)).unwrap() == std::fs::read(part(&whole, k)).unwrap(),
                    "resumed after {parts} parts: part {k} differs"
                );
            }
            for f in RESULTS.iter().skip(1).chain(&["injections.sums"]) {
                assert!(
                    std::fs::read(to.join(f)).unwrap() == std::fs::read(whole.join(f)).unwrap(),
                    "resumed after {parts} parts: {f} differs"
                );
            }
        }
    }
    ok(&output(&["report", s(&whole)], &root()));
}
