//! Every CSV faultsweep writes goes through the `csv` crate: RFC 4180
//! quoting (a field holding a comma, quote, CR or LF is quoted, quotes
//! doubled), `\n` after each row. In: rows of fields. Out: [`CsvSink`]
//! streams rows to a file and hashes what reached it (`injections.csv`);
//! [`CsvTable`] builds a small table in memory for an atomic write
//! (`summary.csv`, `golden.csv`, `ranges.csv`).

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::error::{Error, Result};

/// The writer every table uses; rows may differ in length (the caller owns
/// the columns).
fn writer<W: Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new().flexible(true).from_writer(out)
}

/// A CSV file written row by row and flushed after every batch; it hashes
/// what it writes, so a caller can record a checksum per flushed piece.
pub struct CsvSink {
    path: PathBuf,
    out: csv::Writer<Hashed>,
}

/// The file under the CSV writer, hashing the bytes that pass into it.
struct Hashed {
    file: BufWriter<File>,
    /// Reset by [`CsvSink::take_hash`], which only sees `&Hashed`.
    written: RefCell<blake3::Hasher>,
}

impl Write for Hashed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written.get_mut().update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl CsvSink {
    /// Creates (or truncates) `path` and writes the header row.
    pub fn create(path: &Path, header: &[&str]) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut sink = CsvSink::over(path, file);
        sink.row(header.iter().map(|s| s.to_string()))?;
        sink.flush()?;
        sink.take_hash();
        Ok(sink)
    }

    /// Appends to an existing file (a resumed campaign).
    pub fn append(path: &Path) -> Result<Self> {
        let file = File::options()
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(CsvSink::over(path, file))
    }

    fn over(path: &Path, file: File) -> CsvSink {
        CsvSink {
            path: path.to_path_buf(),
            out: writer(Hashed {
                file: BufWriter::new(file),
                written: RefCell::new(blake3::Hasher::new()),
            }),
        }
    }

    /// Writes one row (buffered until the next flush).
    pub fn row(&mut self, fields: impl IntoIterator<Item = String>) -> Result<()> {
        self.out
            .write_record(fields)
            .map_err(|e| csv_error(&self.path, e))
    }

    /// The blake3 of the rows flushed since the last call (call it after
    /// [`flush`](Self::flush) or [`sync`](Self::sync)).
    pub fn take_hash(&mut self) -> String {
        let mut written = self.out.get_ref().written.borrow_mut();
        let hash = written.finalize().to_hex().to_string();
        written.reset();
        hash
    }

    /// Flushes and syncs the file to disk.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        let file = self.out.get_ref().file.get_ref();
        file.sync_data().map_err(|e| Error::io(&self.path, e))
    }

    /// Flushes the rows written so far to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}

/// A csv error on `path` as an I/O error (the only kind a writer with
/// flexible rows can meet).
fn csv_error(path: &Path, e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => Error::io(path, e),
        other => Error::io(path, io::Error::other(format!("{other:?}"))),
    }
}

/// Rows encoded as the CSV lines [`CsvSink`] writes, one at a time, with
/// one writer and buffer for all.
pub struct CsvLines {
    out: csv::Writer<Shared>,
    buffer: Rc<RefCell<Vec<u8>>>,
}

/// The buffer under a [`CsvLines`] writer.
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Default for CsvLines {
    fn default() -> Self {
        let buffer = Rc::new(RefCell::new(Vec::new()));
        CsvLines {
            out: writer(Shared(Rc::clone(&buffer))),
            buffer,
        }
    }
}

impl CsvLines {
    /// The row's line, with its newline.
    pub fn encode(&mut self, fields: &[String]) -> std::cell::Ref<'_, Vec<u8>> {
        self.buffer.borrow_mut().clear();
        // Writing to memory with flexible rows cannot fail.
        let _ = self.out.write_record(fields);
        let _ = self.out.flush();
        self.buffer.borrow()
    }

    /// The row's line, without its newline.
    pub fn line(&mut self, fields: &[String]) -> String {
        let bytes = self.encode(fields);
        String::from_utf8_lossy(&bytes[..bytes.len() - 1]).into_owned()
    }
}

/// A CSV table built in memory, for a file written whole.
pub struct CsvTable {
    out: csv::Writer<Vec<u8>>,
}

impl Default for CsvTable {
    fn default() -> Self {
        CsvTable::new()
    }
}

impl CsvTable {
    /// An empty table.
    pub fn new() -> CsvTable {
        CsvTable {
            out: writer(Vec::new()),
        }
    }

    /// Appends one row.
    pub fn row<I, T>(&mut self, fields: I)
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        // Writing to memory with flexible rows cannot fail.
        self.out
            .write_record(fields)
            .expect("a CSV row written to memory");
    }

    /// The table's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.out
            .into_inner()
            .map_err(|e| e.into_error())
            .expect("a CSV table flushed to memory")
    }

    /// The table as text.
    pub fn into_string(self) -> String {
        String::from_utf8(self.into_bytes()).expect("CSV built from strings")
    }
}
