//! Temporaries tagged with the PID of the process that writes them (cache
//! entries being filled, `bench` folders), and which of them are stale.
//! In: a PID, or a folder of temporaries. Out: whether the writer still
//! runs; a fresh `faultsweep-bench-PID-*` folder after removing those of
//! processes that are gone. Invariant: a temporary of a running process is
//! never removed; where liveness cannot be known (no /proc, or a cache
//! temporary written on another host of a shared cache), nothing is.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Whether process `pid` still runs (a PID reused by another process counts
/// as running: its temporary is kept, never wrongly removed).
pub fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// `PID@HOST`, the tag of this process's cache temporaries: a cache may be
/// shared by several machines, and a PID says nothing about another's.
pub fn tag() -> String {
    format!("{}@{}", std::process::id(), host())
}

/// This machine's name, without the dots and slashes a file name part
/// cannot hold.
fn host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    name.trim().replace(['.', '/'], "_")
}

const BENCH_PREFIX: &str = "faultsweep-bench-";

/// A new folder under the system temporary folder for one `bench`,
/// `faultsweep-bench-PID-XXXXXX`, removed when dropped; first removes the
/// folders a killed bench left (their PID is gone).
pub fn bench_dir() -> Result<tempfile::TempDir> {
    let root = std::env::temp_dir();
    remove_stale_bench_dirs(&root);
    tempfile::Builder::new()
        .prefix(&format!("{BENCH_PREFIX}{}-", std::process::id()))
        .tempdir_in(&root)
        .map_err(|e| Error::io(&root, e))
}

/// Removes `root/faultsweep-bench-PID-*` of processes that are gone (older
/// names, without a PID, are left alone). Best effort: one that cannot be
/// removed is left for the next bench.
fn remove_stale_bench_dirs(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = (name.strip_prefix(BENCH_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .map(|(pid, _)| pid)
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !alive(p)) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A temporary file in a folder: its size and the process writing it.
#[derive(Debug, Clone, PartialEq)]
pub struct Temporary {
    /// The temporary file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The writer's PID when the name carries one.
    pub pid: Option<u32>,
    /// The writer's host when the name carries one (older names do not).
    pub host: Option<String>,
}

impl Temporary {
    /// Its writer is known, ran on this machine and is gone: nothing will
    /// finish or remove it.
    pub fn stale(&self) -> bool {
        let here = self.host.as_ref().is_none_or(|h| *h == host());
        here && self.pid.is_some_and(|p| !alive(p))
    }

    /// Who writes it, for listings: `process 42 (gone)`.
    pub fn writer(&self) -> String {
        let Some(pid) = self.pid else {
            return "writer unknown".into();
        };
        let on = self
            .host
            .as_ref()
            .map_or(String::new(), |h| format!(" on {h}"));
        let state = match (
            self.stale(),
            self.host.as_ref().is_none_or(|h| *h == host()),
        ) {
            (true, _) => "gone",
            (false, true) => "running",
            (false, false) => "another machine",
        };
        format!("process {pid}{on} ({state})")
    }
}

/// The temporaries in `dir`: files `.NAME.EXT.PID[@HOST][.N].tmp`, the tag
/// being the third part (names are keys without dots). None when `dir` is
/// absent.
pub fn temporaries(dir: &Path) -> Result<Vec<Temporary>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
            continue;
        };
        let Ok(meta) = e.metadata() else {
            continue; // removed meanwhile (its writer finished)
        };
        let tag = inner.split('.').nth(2).unwrap_or_default();
        let (pid, host) = match tag.split_once('@') {
            Some((pid, host)) => (pid, Some(host.to_string())),
            None => (tag, None),
        };
        found.push(Temporary {
            path: e.path(),
            bytes: meta.len(),
            pid: pid.parse().ok(),
            host,
        });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}
