//! Files the user names (`--out` of `faults gen`, `infer`, `golden`, `bench`;
//! a campaign's summaries, heatmap and scenario): written whole or not at all.
//! In: a path and the bytes (or a writer callback). Out: the file, replaced
//! atomically by a temporary file `.NAME.PID.tmp` beside it, synced and
//! renamed. Invariants: a reader never sees half a file; a failed write
//! leaves the old file (or none) and no temporary; a symlink stays a link
//! (its final target is written); a folder or special file (device, FIFO,
//! socket) is refused, never replaced by a regular file; errors name the
//! path as the user gave it.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tch::Tensor;

use crate::error::{Error, Result};

/// Symlinks followed before giving up (the kernel's limit).
const MAX_LINKS: usize = 40;

/// Writes `bytes` to `path` atomically (see [`write_via_temp`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_via_temp(path, |out| {
        out.write_all(bytes).map_err(|e| Error::io(path, e))
    })
}

/// Writes `path` through a temporary file beside its destination, which
/// `write` fills and which is synced and renamed into place. When anything
/// fails (a full disk, a bad row), the temporary file is removed and the
/// destination is left as it was; errors name `path`.
pub fn write_via_temp<T>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T>,
) -> Result<T> {
    let dest = destination(path)?;
    let tmp = temp_name(&dest);
    let io = |e: std::io::Error| Error::io(path, e);
    let written = (|| {
        // Ours by the PID: one a killed process of the same PID left is stale.
        let _ = std::fs::remove_file(&tmp);
        // create_new: never through a link someone placed at the name.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io)?;
        if let Ok(m) = std::fs::metadata(&dest) {
            let _ = file.set_permissions(m.permissions());
        }
        let mut out = BufWriter::new(file);
        let value = write(&mut out)?;
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &dest).map_err(io)?;
        sync_dir(&dest)?;
        Ok(value)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Syncs the folder of `path`, so a rename into it survives a power loss.
pub fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Where writing `path` lands: `path`, or for a symlink its final target,
/// so the link itself is kept. A folder or special file is refused.
fn destination(path: &Path) -> Result<PathBuf> {
    let mut at = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let meta = match std::fs::symlink_metadata(&at) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(at),
            Err(e) => return Err(Error::io(path, e)),
            Ok(m) => m,
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = std::fs::read_link(&at).map_err(|e| Error::io(path, e))?;
            // A relative target is relative to the link's folder.
            at = at.parent().unwrap_or(Path::new("")).join(target);
        } else if kind.is_file() {
            return Ok(at);
        } else {
            let what = match kind.is_dir() {
                true => "a folder",
                false => "a special file (a device, FIFO or socket)",
            };
            return Err(refused(path, &at, what));
        }
    }
    Err(refused(path, &at, "a chain of too many symlinks"))
}

fn refused(path: &Path, at: &Path, what: &str) -> Error {
    let via = match at == path {
        true => String::new(),
        false => format!(" (the symlink's target {})", at.display()),
    };
    let msg = format!("is {what}{via}; outputs are written to regular files only");
    Error::io(path, std::io::Error::other(msg))
}

/// `.NAME.PID.tmp` beside `dest`: hidden, and the PID tells whose it is.
fn temp_name(dest: &Path) -> PathBuf {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    dest.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes a float32 tensor as a .npy file (format 1.0, C order), atomically.
pub fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    let t = t.to_kind(tch::Kind::Float).contiguous();
    let values = Vec::<f32>::try_from(t.flatten(0, -1)).map_err(|e| Error::Data {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    let shape: Vec<String> = t.size().iter().map(i64::to_string).collect();
    let shape = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic, version and length take 10 bytes; the data starts 64-aligned.
    let pad = 63 - (10 + header.len()) % 64;
    header.extend(std::iter::repeat_n(' ', pad));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    write_atomic(path, &bytes)
}
