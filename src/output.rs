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

/// Writes a tensor as a float32 .npy file (format 1.0, C order),
/// atomically.
pub fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    let bytes = npy_bytes(&t.to_kind(tch::Kind::Float)).map_err(|msg| Error::Data {
        path: path.to_path_buf(),
        msg,
    })?;
    write_atomic(path, &bytes)
}

/// Writes named tensors as a .npz archive (uncompressed members, as
/// `np.savez` writes), each in its own type (bfloat16, which NumPy lacks, as
/// float32), atomically.
pub fn write_npz(path: &Path, arrays: &[(String, Tensor)]) -> Result<()> {
    let bad = |msg: String| Error::Data {
        path: path.to_path_buf(),
        msg,
    };
    let members = (arrays.iter())
        .map(|(name, t)| Ok((format!("{name}.npy"), npy_bytes(t).map_err(bad)?)))
        .collect::<Result<Vec<_>>>()?;
    write_via_temp(path, |out| {
        let io = |e: zip::result::ZipError| Error::io(path, std::io::Error::other(e));
        let mut zip = zip::ZipWriter::new(out);
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(zip::DateTime::default());
        for (name, bytes) in &members {
            zip.start_file(name.as_str(), stored).map_err(io)?;
            zip.write_all(bytes).map_err(|e| Error::io(path, e))?;
        }
        zip.finish().map_err(io)?;
        Ok(())
    })
}

/// A tensor as the bytes of a .npy file (format 1.0, C order, little
/// endian) of its own type.
fn npy_bytes(t: &Tensor) -> std::result::Result<Vec<u8>, String> {
    use tch::Kind;
    let t = match t.kind() {
        Kind::BFloat16 => t.to_kind(Kind::Float),
        _ => t.shallow_clone(),
    };
    let t = t.contiguous().to_device(tch::Device::Cpu);
    let flat = t.flatten(0, -1);
    let err = |e: tch::TchError| e.to_string();
    let (descr, data): (&str, Vec<u8>) = match t.kind() {
        Kind::Float => (
            "<f4",
            le(Vec::<f32>::try_from(&flat).map_err(err)?, f32::to_le_bytes),
        ),
        Kind::Double => (
            "<f8",
            le(Vec::<f64>::try_from(&flat).map_err(err)?, f64::to_le_bytes),
        ),
        Kind::Int64 => (
            "<i8",
            le(Vec::<i64>::try_from(&flat).map_err(err)?, i64::to_le_bytes),
        ),
        Kind::Int => (
            "<i4",
            le(Vec::<i32>::try_from(&flat).map_err(err)?, i32::to_le_bytes),
        ),
        Kind::Int16 => (
            "<i2",
            le(Vec::<i16>::try_from(&flat).map_err(err)?, i16::to_le_bytes),
        ),
        Kind::Int8 => (
            "|i1",
            le(Vec::<i8>::try_from(&flat).map_err(err)?, i8::to_le_bytes),
        ),
        Kind::Uint8 => ("|u1", Vec::<u8>::try_from(&flat).map_err(err)?),
        Kind::Bool => (
            "|b1",
            Vec::<u8>::try_from(&flat.to_kind(Kind::Uint8)).map_err(err)?,
        ),
        Kind::Half => (
            "<f2",
            le(
                Vec::<i16>::try_from(&flat.view_dtype(Kind::Int16)).map_err(err)?,
                i16::to_le_bytes,
            ),
        ),
        other => return Err(format!("no .npy type for {other:?} values")),
    };
    let shape: Vec<String> = t.size().iter().map(i64::to_string).collect();
    let shape = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic, version and length take 10 bytes; the data starts 64-aligned.
    let pad = 63 - (10 + header.len()) % 64;
    header.extend(std::iter::repeat_n(' ', pad));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(data);
    Ok(bytes)
}

/// Values as their little-endian bytes.
fn le<T, const N: usize>(values: Vec<T>, bytes: fn(T) -> [u8; N]) -> Vec<u8> {
    values.into_iter().flat_map(bytes).collect()
}
