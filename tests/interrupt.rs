//! Interrupted campaigns: a results or cache directory that fills up, and
//! `kill -9` during the injections. Each must stop with a clear error (exit
//! 6, naming the file), leave nothing half-written that a later run takes as
//! valid, and resume (`run --resume DIR`) to the uninterrupted result, byte
//! for byte.
//!
//! A full disk is simulated without root by RLIMIT_FSIZE (the largest file a
//! process may write) with SIGXFSZ ignored, so a write past it fails with
//! EFBIG as one fails with ENOSPC on a full disk; as root, a small tmpfs is
//! filled for real (skipped, with a note, where `mount` is not allowed).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::common::{csv_rows, edit_scenario, small_scenario};

/// The small demo campaign: `n` injections on 100 samples, in batches of 16,
/// so that injections.csv grows in chunks of 128 injections, read from the
/// fault list in windows of 200.
fn scenario(dir: &Path, n: usize) -> PathBuf {
    let path = small_scenario(dir, n);
    edit_scenario(&path, path.clone(), |s| {
        s.data.batch_size = 16;
        s.data.window = 200;
        // Entries that do not depend on costs measured under the machine's load.
        s.cache.store_every_cut = true;
    })
}

/// `faultsweep ARGS` with its cache root in `cache`; with `fsize`, no file it
/// writes may grow past `fsize` bytes (rounded down to KiB).
fn command(args: &[&str], cache: &Path, fsize: Option<u64>) -> Command {
    let bin = env!("CARGO_BIN_EXE_faultsweep");
    let mut c = match fsize {
        None => Command::new(bin),
        Some(bytes) => {
            // An ignored signal stays ignored across exec; bash counts KiB.
            let mut c = Command::new("bash");
            c.arg("-c")
                .arg(format!(
                    "trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"",
                    bytes / 1024
                ))
                .arg(bin);
            c
        }
    };
    c.args(args)
        .current_dir(crate::common::root())
        .env("FAULTSWEEP_CACHE", cache);
    c
}

fn output(args: &[&str], cache: &Path, fsize: Option<u64>) -> Output {
    command(args, cache, fsize).output().expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run_ok(args: &[&str], cache: &Path) {
    let o = output(args, cache, None);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The uninterrupted campaign in `dir/whole`.
fn reference(dir: &Path, scenario: &Path, cache: &Path) -> PathBuf {
    let whole = dir.join("whole");
    run_ok(&["run", s(scenario), "--out", s(&whole)], cache);
    whole
}

/// The files a finished campaign must reproduce exactly.
fn assert_same_results(got: &Path, want: &Path) {
    for f in ["injections.csv", "summary.csv", "summary.json"] {
        assert!(
            std::fs::read(got.join(f)).ok() == std::fs::read(want.join(f)).ok(),
            "{} differs from the uninterrupted run's",
            got.join(f).display()
        );
    }
}

/// No temporary file is left behind in `dir`.
fn assert_no_temporaries(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".tmp"),
            "{name} left behind in {}",
            dir.display()
        );
    }
}

/// Every cache entry, golden results and costs file in `cache` is whole, and no
/// temporary is left.
fn assert_cache_intact(cache: &Path) {
    assert_no_temporaries(cache);
    let store = faultsweep::cache::Store::new(&Default::default(), Some(cache));
    for e in std::fs::read_dir(cache).unwrap() {
        let p = e.unwrap().path();
        let ext = p.extension().unwrap_or_default().to_string_lossy();
        if ext == "lock" {
            continue; // an entry's lock (see Store::lock)
        }
        if ext == "golden" || ext == "costs" {
            let key = p.file_stem().unwrap().to_string_lossy();
            let read = store.read_small(&key, &ext).unwrap();
            assert!(read.is_some(), "{}", p.display());
            continue;
        }
        faultsweep::cache::Reader::open(&p)
            .and_then(|r| r.verify())
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// After a failure in the injections: exit 6 naming injections.csv with
/// `reason`; the rows written are a prefix of the uninterrupted run's; no
/// summary and no temporary file.
fn assert_failed_in_injections(o: &Output, out: &Path, reason: &str, full: &[u8]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(6), "{err}");
    let csv = out.join("injections.csv");
    assert!(
        err.contains(&csv.display().to_string()) && err.contains(reason),
        "{err}"
    );
    let partial = std::fs::read(&csv).unwrap();
    assert!(
        partial.len() < full.len() && full.starts_with(&partial),
        "injections.csv is not a prefix of the full rows"
    );
    for f in ["summary.csv", "summary.json", "summary.md", "heatmap.svg"] {
        assert!(!out.join(f).exists(), "{f} written for an unfinished run");
    }
    assert_no_temporaries(out);
}

#[test]
fn a_full_results_directory_fails_cleanly_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), 300);
    // The reference run fills the cache: below, only result files grow.
    let cache = dir.path().join("cache");
    let whole = reference(dir.path(), &sc, &cache);
    let full = std::fs::read(whole.join("injections.csv")).unwrap();
    let faults_len = std::fs::metadata(whole.join("faults.bin")).unwrap().len();
    // A limit that faults.bin, golden.csv and the rest fit in, and
    // injections.csv does not: the disk fills during the injections.
    let limit = (faults_len + full.len() as u64) / 2;
    assert!(
        limit > faults_len + 2048 && limit + 2048 < full.len() as u64,
        "faults.bin {faults_len} B, injections.csv {} B",
        full.len()
    );
    let out = dir.path().join("r");
    let o = output(&["run", s(&sc), "--out", s(&out)], &cache, Some(limit));
    assert_failed_in_injections(&o, &out, "File too large", &full);
    // Resuming while the disk is still full fails the same way.
    let o = output(&["run", "--resume", s(&out)], &cache, Some(limit));
    assert_failed_in_injections(&o, &out, "File too large", &full);
    // Space freed: the resumed campaign is the uninterrupted one.
    run_ok(&["run", "--resume", s(&out)], &cache);
    assert_same_results(&out, &whole);

    // The disk fills before the fault list is saved: no partial faults.bin
    // and nothing to resume (running the scenario again is a fresh run).
    let early = dir.path().join("early");
    let o = output(
        &["run", s(&sc), "--out", s(&early)],
        &cache,
        Some(faults_len / 2),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(6), "{err}");
    assert!(
        err.contains(&early.join("faults.bin").display().to_string()),
        "{err}"
    );
    assert!(!early.join("faults.bin").exists(), "a partial fault list");
    assert_no_temporaries(&early);
    let o = output(&["run", "--resume", s(&early)], &cache, None);
    assert_eq!(o.status.code(), Some(6));
    assert!(stderr(&o).contains("nothing to resume"), "{}", stderr(&o));
}

#[test]
fn a_full_cache_directory_fails_cleanly_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), 300);
    let whole = reference(dir.path(), &sc, &dir.path().join("reference-cache"));
    // Two of the demo's three cache entries are over 1 MiB (100 samples).
    let cache = dir.path().join("cache");
    let out = dir.path().join("r");
    let o = output(&["run", s(&sc), "--out", s(&out)], &cache, Some(1 << 20));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(6), "{err}");
    assert!(
        err.contains(&cache.display().to_string()) && err.contains("File too large"),
        "{err}"
    );
    // Named by the entry the user would look for, then the temporary file.
    let entry = err.find(".fsc:").expect("the error names the cache entry");
    assert!(err[entry..].contains(".tmp"), "{err}");
    assert_cache_intact(&cache);
    assert!(!out.join("injections.csv").exists());
    run_ok(&["run", "--resume", s(&out)], &cache);
    assert_same_results(&out, &whole);
    assert_cache_intact(&cache);
}

/// A tmpfs of a given size mounted on a folder, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// None (with the reason) when mounting is not allowed here.
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", s(at)])
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        match o.status.success() {
            true => Ok(Tmpfs(at.to_path_buf())),
            false => Err(stderr(&o).trim().to_string()),
        }
    }

    /// Frees space: the same files on a bigger filesystem.
    fn grow(&self, size: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,size={size}"), s(&self.0)])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_tmpfs_fails_cleanly_and_resumes_when_root() {
    let dir = tempfile::tempdir().unwrap();
    let results_fs = match Tmpfs::mount(&dir.path().join("results-fs"), "128k") {
        Ok(m) => m,
        Err(why) => {
            crate::common::skip(&format!(
                "the tmpfs full-disk test needs `mount -t tmpfs` (root): {why}"
            ));
            return;
        }
    };
    let sc = scenario(dir.path(), 300);
    let cache = dir.path().join("cache");
    let whole = reference(dir.path(), &sc, &cache);
    let full = std::fs::read(whole.join("injections.csv")).unwrap();

    // Results on a 128 KiB filesystem: full during injections.csv.
    let out = results_fs.0.join("r");
    let o = output(&["run", s(&sc), "--out", s(&out)], &cache, None);
    assert_failed_in_injections(&o, &out, "No space left on device", &full);
    results_fs.grow("4m");
    run_ok(&["run", "--resume", s(&out)], &cache);
    assert_same_results(&out, &whole);

    // The cache on a 2 MiB filesystem: the 3 MB entry does not fit.
    let cache_fs = Tmpfs::mount(&dir.path().join("cache-fs"), "2m").unwrap();
    let out = dir.path().join("r2");
    let o = output(&["run", s(&sc), "--out", s(&out)], &cache_fs.0, None);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(6), "{err}");
    assert!(
        err.contains(&cache_fs.0.display().to_string()) && err.contains("No space left"),
        "{err}"
    );
    assert_cache_intact(&cache_fs.0);
    cache_fs.grow("32m");
    run_ok(&["run", "--resume", s(&out)], &cache_fs.0);
    assert_same_results(&out, &whole);
    assert_cache_intact(&cache_fs.0);
}

/// (device, inode, length) of a file, to see a run start writing it.
fn file_state(p: &Path) -> Option<(u64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.len()))
}

/// Waits until `child` starts writing `csv` (its injection phase: a fresh
/// run creates it, a resumed one rewrites it to its finished chunks, then
/// appends); false if the child exited first.
fn wait_for_injections(child: &mut Child, csv: &Path) -> bool {
    let before = file_state(csv);
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let now = file_state(csv);
        if now.is_some_and(|n| n.2 > 0) && now != before {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("no injection started within 120 s");
}

/// SIGKILL at seeded random moments of the injection phase, each time
/// resumed with `--resume`: the rows and summary equal an uninterrupted
/// run's, no injection missing or repeated. FAULTSWEEP_KILL_ROUNDS (default
/// 5) and FAULTSWEEP_KILL_SEED set the loop.
#[test]
fn kill_9_during_the_injections_then_resume_gives_the_uninterrupted_result() {
    let env = |k: &str, default: u64| {
        std::env::var(k)
            .ok()
            .map_or(default, |v| v.parse().expect("a number"))
    };
    let rounds = env("FAULTSWEEP_KILL_ROUNDS", 5);
    let seed = env("FAULTSWEEP_KILL_SEED", 6);
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), 500);
    let cache = dir.path().join("cache");
    let spawn = |args: &[&str]| {
        command(args, &cache, None)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // The uninterrupted run (it fills the cache), timed from its first
    // rows to its exit: the injection phase.
    let whole = dir.path().join("whole");
    let mut child = spawn(&["run", s(&sc), "--out", s(&whole)]);
    assert!(wait_for_injections(
        &mut child,
        &whole.join("injections.csv")
    ));
    let start = Instant::now();
    assert!(child.wait().unwrap().success());
    let phase = start.elapsed();
    let total_rows = csv_rows(&whole.join("injections.csv")).len();

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let out = dir.path().join("r");
    let csv = out.join("injections.csv");
    let mut killed_mid_run = 0;
    for round in 0..rounds {
        let mut child = match round {
            0 => spawn(&["run", s(&sc), "--out", s(&out)]),
            _ => spawn(&["run", "--resume", s(&out)]),
        };
        // The rows still to run, as a share of the whole phase.
        let done = match csv.exists() {
            true => std::fs::read(&csv).unwrap().split(|&b| b == b'\n').count() - 1,
            false => 0,
        };
        let left = 1.0 - done.min(total_rows) as f64 / total_rows as f64;
        if !wait_for_injections(&mut child, &csv) {
            break; // finished before its injections could be seen
        }
        let delay = phase.mul_f64(left * rng.random_range(0.05..0.9));
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
    }
    run_ok(&["run", "--resume", s(&out)], &cache);
    assert_same_results(&out, &whole);
    assert!(
        killed_mid_run > 0,
        "no kill landed during the injections (phase {phase:?})"
    );
    eprintln!("{killed_mid_run} of {rounds} kills landed during the injections (phase {phase:?})");
}

/// `infer --out` that cannot be written (a full disk, a missing folder):
/// exit 6 naming the file, and nothing left behind (it was exit 4 and a
/// 0-byte file).
#[test]
fn a_failed_infer_write_names_the_file_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.npy");
    tch::Tensor::ones([300, 4], (tch::Kind::Float, tch::Device::Cpu))
        .write_npy(&input)
        .unwrap();
    let model = crate::common::fixtures().join("errors/good.onnx");
    let out = dir.path().join("y.npy");
    let missing = dir.path().join("missing/y.npy");
    for (path, fsize) in [(&out, Some(1024)), (&missing, None)] {
        let args = ["infer", s(&model), s(&input), "--out", s(path)];
        let o = output(&args, dir.path(), fsize);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(6), "{err}");
        assert!(err.contains(s(path)), "{err}");
        assert!(!path.exists(), "{} left behind", path.display());
        assert_no_temporaries(dir.path());
    }
}
