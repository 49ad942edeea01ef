//! Step 7, report: per-injection rows streamed to CSV and files written
//! atomically ([`crate::output`]); summaries of the outcome rates per layer, bit (per number
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

pub use crate::output::{write_atomic, write_via_temp};
pub use stats::{wilson, Counts, Group, Rate};
pub use summary::{Grouping, Key, Summary};

pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
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
