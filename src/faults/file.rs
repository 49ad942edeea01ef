//! The binary fault-list file (bincode 1.x, kept behind this one module).
//! In/out: a [`FaultList`], whole or a row at a time ([`Reader`],
//! [`Writer`]), so a campaign of millions of faults never holds its list.
//! Layout: an 8-byte magic `FSFAULTS`, the format version (u32, little
//! endian), the row count (u64, little endian), then bincode's encoding of
//! the list (fixed-width integers, little endian): the metadata, the row
//! count again, the rows. A mismatch names the field that differs.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bincode::Options;

use super::{Fault, FaultList, Meta};
use crate::error::{Error, Result};

/// The first 8 bytes of a fault-list file.
pub const MAGIC: &[u8; 8] = b"FSFAULTS";
/// Bump when [`FaultList`] or anything inside it changes shape.
pub const VERSION: u32 = 1;
const HEADER: u64 = 8 + 4 + 8;

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
}

/// Reads a list's rows one at a time from `source` (a file, or bytes).
pub struct Reader<R> {
    /// What the list was generated from.
    pub meta: Meta,
    /// Rows in the list.
    pub rows: u64,
    read: u64,
    source: R,
    path: PathBuf,
}

impl Reader<BufReader<File>> {
    /// Opens the list file at `path` and reads its header and metadata.
    pub fn open(path: &Path) -> Result<Self> {
        // A FIFO or device would block or never end (exit 9).
        let file = crate::files::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => bad(path, e.to_string()),
            _ => Error::io(path, e),
        })?;
        Reader::new(BufReader::new(file), path)
    }
}

impl<R: Read> Reader<R> {
    /// Reads the header and metadata; `path` names the file in errors.
    pub fn new(mut source: R, path: &Path) -> Result<Self> {
        let bad = |msg: String| bad(path, msg);
        let mut header = Vec::with_capacity(HEADER as usize);
        (&mut source)
            .take(HEADER)
            .read_to_end(&mut header)
            .map_err(|e| Error::io(path, e))?;
        if header.len() < HEADER as usize {
            return Err(bad(format!(
                "header: {} bytes, a fault list starts with {HEADER}",
                header.len()
            )));
        }
        if &header[..8] != MAGIC {
            return Err(bad(format!(
                "magic: expected {:?}, found {:?} (not a faultsweep fault list; CSV files end in .csv)",
                String::from_utf8_lossy(MAGIC),
                String::from_utf8_lossy(&header[..8])
            )));
        }
        let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(bad(format!(
                "format version: file has {version}, this build reads {VERSION}"
            )));
        }
        let rows = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
        let payload = |e: bincode::Error| bad(format!("payload: {e}"));
        let meta: Meta = options().deserialize_from(&mut source).map_err(payload)?;
        let held: u64 = options().deserialize_from(&mut source).map_err(payload)?;
        if held != rows {
            return Err(bad(format!(
                "row count: header says {rows}, payload holds {held}"
            )));
        }
        Ok(Reader {
            meta,
            rows,
            read: 0,
            source,
            path: path.to_path_buf(),
        })
    }

    fn row(&mut self) -> Result<Fault> {
        self.read += 1;
        options()
            // No row is near this long: a corrupt length fails here
            // instead of allocating it.
            .with_limit(1 << 20)
            .deserialize_from(&mut self.source)
            .map_err(|e| bad(&self.path, format!("payload, row {}: {e}", self.read - 1)))
    }

    /// After the last row: the file must end there.
    fn end(&mut self) -> Result<()> {
        let mut extra = [0u8; 1];
        match self.source.read(&mut extra) {
            Ok(0) => Ok(()),
            Ok(_) => Err(bad(
                &self.path,
                format!("payload: bytes follow the last of {} rows", self.rows),
            )),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Fault>;

    fn next(&mut self) -> Option<Result<Fault>> {
        if self.read == self.rows {
            // Checked once: `read` moves past `rows` after it.
            self.read += 1;
            return self.end().err().map(Err);
        }
        (self.read < self.rows).then(|| self.row())
    }
}

fn bad(path: &Path, msg: String) -> Error {
    Error::FaultList {
        path: path.to_path_buf(),
        line: None,
        msg,
    }
}

/// Writes a list a row at a time; the row counts are filled in by
/// [`Writer::finish`].
pub struct Writer<W: Write + Seek> {
    out: W,
    rows: u64,
    /// Where bincode's row count sits (after the metadata).
    count_at: u64,
}

impl<W: Write + Seek> Writer<W> {
    /// Starts a list with `meta`; rows follow with [`Writer::push`].
    pub fn new(mut out: W, meta: &Meta) -> std::io::Result<Self> {
        out.write_all(MAGIC)?;
        out.write_all(&VERSION.to_le_bytes())?;
        out.write_all(&0u64.to_le_bytes())?;
        options()
            .serialize_into(&mut out, meta)
            .map_err(std::io::Error::other)?;
        let count_at = out.stream_position()?;
        out.write_all(&0u64.to_le_bytes())?;
        Ok(Writer {
            out,
            rows: 0,
            count_at,
        })
    }

    /// Appends one row.
    pub fn push(&mut self, fault: &Fault) -> std::io::Result<()> {
        self.rows += 1;
        options()
            .serialize_into(&mut self.out, fault)
            .map_err(std::io::Error::other)
    }

    /// Writes the row counts; returns the output and the count.
    pub fn finish(mut self) -> std::io::Result<(W, u64)> {
        let count = self.rows.to_le_bytes();
        self.out.seek(SeekFrom::Start(12))?;
        self.out.write_all(&count)?;
        self.out.seek(SeekFrom::Start(self.count_at))?;
        self.out.write_all(&count)?;
        self.out.seek(SeekFrom::End(0))?;
        Ok((self.out, self.rows))
    }
}

/// Writes the rows of `faults` to `path` atomically: a failed write (a full
/// disk, a bad row) leaves no partial file behind. Returns the row count.
pub fn write_rows(
    path: &Path,
    meta: &Meta,
    faults: impl Iterator<Item = Result<Fault>>,
) -> Result<u64> {
    crate::output::write_via_temp(path, |out| {
        let io = |e| Error::io(path, e);
        let mut w = Writer::new(out, meta).map_err(io)?;
        for f in faults {
            w.push(&f?).map_err(io)?;
        }
        Ok(w.finish().map_err(io)?.1)
    })
}

/// The file's bytes.
pub fn encode(list: &FaultList) -> Vec<u8> {
    let mut w = Writer::new(std::io::Cursor::new(Vec::new()), &list.meta)
        .expect("writing into memory cannot fail");
    for f in &list.faults {
        w.push(f).expect("writing into memory cannot fail");
    }
    w.finish()
        .expect("writing into memory cannot fail")
        .0
        .into_inner()
}

/// A list from the file's bytes; `path` names the file in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<FaultList> {
    let mut reader = Reader::new(bytes, path)?;
    let faults = reader.by_ref().collect::<Result<_>>()?;
    Ok(FaultList {
        meta: reader.meta,
        faults,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{
        FaultModel, NumFormat, PointInfo, SampleSize, Samples, Scope, StratumInfo, Target,
    };

    /// A list with every variant of every field, so that a change of shape
    /// anywhere changes its bytes.
    fn every_variant() -> FaultList {
        let models = [
            FaultModel::BitFlip,
            FaultModel::StuckAt0,
            FaultModel::StuckAt1,
            FaultModel::RandomValue {
                min: -1.5,
                max: 2.0,
            },
            FaultModel::Zero,
            FaultModel::Constant(3.25),
            FaultModel::Custom("mine".into()),
        ];
        let samples = [
            Samples::One(12),
            Samples::Range { start: 0, end: 32 },
            Samples::All,
        ];
        let scopes = [
            Scope::Transient,
            Scope::Batch,
            Scope::Epoch,
            Scope::Campaign,
        ];
        let faults = models
            .into_iter()
            .enumerate()
            .map(|(i, model)| Fault {
                fault_id: i as u64,
                injection: i as u64 / 2,
                sample: samples[i % samples.len()],
                target: [Target::Neuron, Target::Weight][i % 2],
                node: 7 * i as u32,
                layer: format!("conv{i}"),
                tensor: format!("t,\"{i}\""),
                coord: vec![0, i as u32, 3],
                model,
                // The formats of format 1's fixture; later ones append
                // variants, which leaves these bytes as they were.
                dtype: NumFormat::ALL[i % 4],
                bits: (0..i as u8).rev().collect(),
                scope: scopes[i % scopes.len()],
                sweep: i as u32 % 3,
                draw: 0x0123_4567_89ab_cdef ^ i as u64,
            })
            .collect();
        FaultList {
            meta: Meta {
                seed: Some(42),
                scenario: Some("scenarios/x.yml".into()),
                model: None,
                samples: Some(100),
                points: vec![PointInfo {
                    id: 0,
                    label: "bits=30 dtype=fp16".into(),
                }],
                strata: vec![StratumInfo {
                    sweep: 0,
                    layer: "conv1".into(),
                    target: Target::Weight,
                    bit: Some(30),
                    size: SampleSize {
                        population: 1 << 70,
                        n: 384,
                        margin: 0.05,
                        confidence: 0.95,
                        p: 0.5,
                    },
                }],
            },
            faults,
        }
    }

    /// faults.bin is bincode 1.3.3's encoding (pinned with `=`, see
    /// Cargo.toml): these bytes must not change without a [`VERSION`] bump
    /// and a reader for the old lists. `FAULTSWEEP_BLESS=1` rewrites the
    /// fixture (only together with such a bump).
    #[test]
    fn format_v1_bytes_are_fixed() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/faults/list_v1.bin");
        let list = every_variant();
        let bytes = encode(&list);
        if std::env::var_os("FAULTSWEEP_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let golden = std::fs::read(&path).expect("the golden fault list");
        assert_eq!(VERSION, 1);
        assert!(bytes == golden, "faults.bin encoding changed");
        assert_eq!(decode(&golden, &path).unwrap(), list);
    }

    #[test]
    fn every_format_round_trips() {
        let mut list = every_variant();
        let formats = NumFormat::ALL.iter().cycle();
        for (f, &format) in list.faults.iter_mut().zip(formats) {
            f.dtype = format;
        }
        assert_eq!(decode(&encode(&list), Path::new("x.bin")).unwrap(), list);
    }
}
