//! The per-injection rows of a results folder as they are written and read
//! back: `injections.csv`, or its Parquet parts in `injections/`
//! (`outputs.injections: parquet`), and `injections.sums`, a line per chunk
//! of runs with the blake3 of the chunk's rows as CSV. Both forms give the
//! same CSV lines back, so resume, merge and `report` read either.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::parquet::{self, PartLines, PartWriter};
use super::results::{finished, read_sums, Finished, Sum, SumsFile, Tally, SUMS};
use super::Plan;
use crate::error::{Error, Result};
use crate::report::{CsvLines, CsvSink};
use crate::scenario::RowsFormat;

/// Where a results folder's rows are in `format`.
pub fn rows_path(dir: &Path, format: RowsFormat) -> PathBuf {
    match format {
        RowsFormat::Csv => dir.join("injections.csv"),
        RowsFormat::Parquet => dir.join(parquet::FOLDER),
    }
}

/// Where a results folder's rows are, in the form it holds.
pub fn existing_rows(dir: &Path) -> PathBuf {
    match dir.join(parquet::FOLDER).is_dir() {
        true => rows_path(dir, RowsFormat::Parquet),
        false => rows_path(dir, RowsFormat::Csv),
    }
}

/// How the rows of the results folder `dir` are named to the user.
pub fn rows_name(dir: &Path) -> &'static str {
    match dir.join(parquet::FOLDER).is_dir() {
        true => "injections/*.parquet",
        false => "injections.csv",
    }
}

/// The rows being written, and their sums file.
pub struct Rows {
    sink: Sink,
    sums: SumsFile,
    path: PathBuf,
}

enum Sink {
    Csv(Box<CsvSink>),
    Parquet(Box<PartSink>),
}

/// The Parquet parts being written, the CSV length and hash of the rows
/// since the last sum, and the sums of the chunks not yet in a written
/// part.
struct PartSink {
    parts: PartWriter,
    csv: CsvLines,
    bytes: u64,
    hash: blake3::Hasher,
    pending: Vec<Sum>,
}

impl PartSink {
    fn row(&mut self, fields: &[String]) -> Result<()> {
        let line = self.csv.encode(fields);
        self.hash.update(&line);
        self.bytes += line.len() as u64;
        drop(line);
        self.parts.row(fields)
    }

    /// Records a chunk's sum; at a window's end writes the window's rows as
    /// a part, then the sums of its chunks.
    fn flushed(&mut self, runs: usize, window_end: bool, sums: &mut SumsFile) -> Result<()> {
        self.pending.push(Sum {
            runs,
            bytes: self.bytes,
            blake3: self.hash.finalize().to_hex().to_string(),
        });
        self.hash.reset();
        if !window_end {
            return Ok(());
        }
        self.parts.write_part()?;
        let last = self.pending.len();
        for (i, sum) in self.pending.drain(..).enumerate() {
            sums.record(sum, i + 1 == last)?;
        }
        Ok(())
    }
}

impl Rows {
    /// New rows in the results folder `dir` (`injections.csv` with its
    /// header on disk, or the parts folder) and a new sums file.
    pub fn create(dir: &Path, format: RowsFormat, header: &[String]) -> Result<Rows> {
        Rows::start(dir, format, header, &[], 0)
    }

    /// The rows in `dir`, with `sums` kept, the next part numbered `part`.
    fn start(
        dir: &Path,
        format: RowsFormat,
        header: &[String],
        sums: &[Sum],
        part: usize,
    ) -> Result<Rows> {
        let path = rows_path(dir, format);
        let sink = match format {
            RowsFormat::Csv if sums.is_empty() => {
                let header: Vec<&str> = header.iter().map(String::as_str).collect();
                let mut sink = CsvSink::create(&path, &header)?;
                sink.sync()?;
                Sink::Csv(Box::new(sink))
            }
            RowsFormat::Csv => Sink::Csv(Box::new(CsvSink::append(&path)?)),
            RowsFormat::Parquet => Sink::Parquet(Box::new(PartSink {
                parts: PartWriter::new(&path, header, part)?,
                bytes: match sums.last() {
                    Some(sum) => sum.bytes,
                    None => CsvLines::default().encode(header).len() as u64,
                },
                csv: CsvLines::default(),
                hash: blake3::Hasher::new(),
                pending: Vec::new(),
            })),
        };
        Ok(Rows {
            sink,
            sums: SumsFile::start(&dir.join(SUMS), sums)?,
            path,
        })
    }

    /// The rows of an interrupted run in `dir`, cut to its finished chunks
    /// (whole parts, for Parquet); the id of the first run to redo, and the
    /// tally of those before it. Rerunning whole chunks keeps every batch as
    /// it was, so a resumed campaign equals an uninterrupted one.
    pub fn resume(
        dir: &Path,
        format: RowsFormat,
        plan: &Plan,
        step: usize,
        header: &[String],
    ) -> Result<(Rows, usize, Tally)> {
        let path = &rows_path(dir, format);
        if !path.exists() {
            return Ok((Rows::create(dir, format, header)?, 0, Tally::new(plan)));
        }
        let sums = read_sums(&dir.join(SUMS))?;
        let mut lines = Lines::open(path)?;
        let mut done = finished(&mut lines, plan, step, Some(&sums))?;
        let mut part = 0;
        if let Lines::Parquet(parts) = &lines {
            // Whole parts only: a chunk's rows in a part cut short run again.
            part = parts.part_ends.iter().filter(|&&e| e <= done.bytes).count();
            let kept = part.checked_sub(1).map_or(0, |p| parts.part_ends[p]);
            if kept != done.bytes && part > 0 {
                let n = sums.iter().take_while(|s| s.bytes <= kept).count();
                done = finished(&mut Lines::open(path)?, plan, step, Some(&sums[..n]))?;
            }
            for stale in &parquet::parts(path)?[part..] {
                std::fs::remove_file(stale).map_err(|e| Error::io(stale, e))?;
            }
        }
        if done.chunks == 0 {
            if path.is_dir() {
                std::fs::remove_dir_all(path).map_err(|e| Error::io(path, e))?;
            }
            return Ok((Rows::create(dir, format, header)?, 0, Tally::new(plan)));
        }
        if path.is_file() {
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(done.bytes))
                .map_err(|e| Error::io(path, e))?;
        }
        let rows = Rows::start(dir, format, header, &sums[..done.chunks], part)?;
        Ok((rows, done.runs, done.tally))
    }

    /// Writes one row (fields in header order).
    pub fn row(&mut self, fields: Vec<String>) -> Result<()> {
        match &mut self.sink {
            Sink::Csv(sink) => sink.row(fields),
            Sink::Parquet(sink) => sink.row(&fields),
        }
    }

    /// After a chunk's rows: records their sum. CSV: the rows are flushed,
    /// and at a window's end both files go to disk, the rows first.
    pub fn flushed(&mut self, runs: usize, window_end: bool) -> Result<()> {
        match &mut self.sink {
            Sink::Csv(sink) => {
                match window_end {
                    true => sink.sync()?,
                    false => sink.flush()?,
                }
                let bytes = std::fs::metadata(&self.path)
                    .map_err(|e| Error::io(&self.path, e))?
                    .len();
                let blake3 = sink.take_hash();
                let sum = Sum {
                    runs,
                    bytes,
                    blake3,
                };
                self.sums.record(sum, window_end)
            }
            Sink::Parquet(sink) => sink.flushed(runs, window_end, &mut self.sums),
        }
    }
}

/// The complete lines of rows as CSV (a last line without its newline is
/// left out) and how many bytes they take.
pub enum Lines {
    Csv {
        reader: BufReader<File>,
        bytes: u64,
        path: PathBuf,
    },
    Parquet(PartLines),
}

impl Lines {
    /// The lines of the rows at `path` (`injections.csv` or a parts folder).
    pub fn open(path: &Path) -> Result<Lines> {
        if path.is_dir() {
            return Ok(Lines::Parquet(PartLines::open(path)?));
        }
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Ok(Lines::Csv {
            reader: BufReader::new(file),
            bytes: 0,
            path: path.to_path_buf(),
        })
    }

    /// The next line, without its newline.
    pub fn next(&mut self) -> Result<Option<String>> {
        match self {
            Lines::Csv {
                reader,
                bytes,
                path,
            } => {
                let mut line = String::new();
                let n = reader
                    .read_line(&mut line)
                    .map_err(|e| Error::io(&*path, e))?;
                if !line.ends_with('\n') {
                    return Ok(None);
                }
                *bytes += n as u64;
                line.pop();
                Ok(Some(line))
            }
            Lines::Parquet(parts) => parts.next_line(),
        }
    }

    /// Where the rows are.
    pub fn path(&self) -> &Path {
        match self {
            Lines::Csv { path, .. } => path,
            Lines::Parquet(parts) => &parts.dir,
        }
    }

    /// The length of the lines given so far, as CSV.
    pub fn bytes(&self) -> u64 {
        match self {
            Lines::Csv { bytes, .. } => *bytes,
            Lines::Parquet(parts) => parts.bytes,
        }
    }
}

/// The finished rows of the results folder `dir`, in either form (see
/// [`finished`]).
pub fn finished_in(dir: &Path, plan: &Plan, step: usize) -> Result<Finished> {
    finished(&mut Lines::open(&existing_rows(dir))?, plan, step, None)
}
