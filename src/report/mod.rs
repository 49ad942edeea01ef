//! Step 7, report: per-injection rows streamed to CSV and files written
//! atomically; summaries of the outcome rates per layer, bit (per number
//! format), op type, number format and overall, each with a 95% Wilson
//! interval clustered by injection ([`stats`], `summary`); the heatmaps
//! ([`heatmap`]).

pub mod heatmap;
pub mod stats;
mod summary;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub use stats::{wilson, Counts, Group, Rate};
pub use summary::{Grouping, Key, Summary};

pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes `bytes` to `path` atomically (see [`write_via_temp`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_via_temp(path, |out| {
        out.write_all(bytes).map_err(|e| Error::io(path, e))
    })
}

/// Writes `path` through a temporary file beside it, which `write` fills
/// and which is synced and renamed into place, so a reader never sees half
/// a file. When anything fails (a full disk, a bad row), the temporary file
/// is removed and `path` is left as it was; errors name `path`.
pub fn write_via_temp<T>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T>,
) -> Result<T> {
    let tmp = temp_name(path);
    let io = |e: std::io::Error| Error::io(path, e);
    let written = (|| {
        let mut out = BufWriter::new(File::create(&tmp).map_err(io)?);
        let value = write(&mut out)?;
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        sync_dir(path)?;
        Ok(value)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Syncs the folder of `path`, so a rename into it survives a power loss.
fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Where `path` is written before it is renamed into place.
fn temp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// A CSV file written row by row and flushed after every batch; it hashes
/// what it writes, so a caller can record a checksum per flushed piece.
pub struct CsvSink {
    path: PathBuf,
    out: BufWriter<File>,
    written: blake3::Hasher,
}

impl CsvSink {
    pub fn create(path: &Path, header: &[&str]) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut sink = CsvSink {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            written: blake3::Hasher::new(),
        };
        sink.row(header.iter().map(|s| s.to_string()))?;
        sink.flush()?;
        sink.written.reset();
        Ok(sink)
    }

    /// Appends to an existing file (a resumed campaign).
    pub fn append(path: &Path) -> Result<Self> {
        let file = File::options()
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(CsvSink {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            written: blake3::Hasher::new(),
        })
    }

    pub fn row(&mut self, fields: impl IntoIterator<Item = String>) -> Result<()> {
        let line: Vec<String> = fields.into_iter().map(|f| csv_field(&f)).collect();
        let line = line.join(",") + "\n";
        self.written.update(line.as_bytes());
        (self.out.write_all(line.as_bytes())).map_err(|e| Error::io(&self.path, e))
    }

    /// The blake3 of the rows written since the last call.
    pub fn take_hash(&mut self) -> String {
        let hash = self.written.finalize().to_hex().to_string();
        self.written.reset();
        hash
    }

    /// Flushes and syncs the file to disk.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        (self.out.get_ref().sync_data()).map_err(|e| Error::io(&self.path, e))
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}
