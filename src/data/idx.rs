//! IDX files (MNIST, Fashion-MNIST), raw or gzipped: big-endian header with a
//! type code and dimensions, then row-major data. Reads stream: a full pass
//! keeps one decoder open and never holds the whole file. Invariant: the
//! header's promise (at most 4 dimensions, their product in checked
//! arithmetic) is checked against the bytes the file holds (for gzip, the
//! bytes it decompresses to, counted as they stream) before anything is
//! allocated from it.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use flate2::read::GzDecoder;
use tch::Tensor;

use crate::error::{Error, Result};

/// Header of an IDX file: element type code and dimensions.
pub struct Header {
    pub type_code: u8,
    pub dims: Vec<usize>,
}

/// Most dimensions read: N x C x H x W.
const MAX_DIMS: u8 = 4;

fn open(path: &Path) -> Result<Box<dyn Read + Send>> {
    let file = super::open_file(path)?;
    let reader = BufReader::new(file);
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(GzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn read_header(path: &Path, r: &mut dyn Read) -> Result<Header> {
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)
        .map_err(|e| bad(path, format!("not an IDX file: {e}")))?;
    if magic[0] != 0 || magic[1] != 0 || magic[3] == 0 {
        return Err(bad(path, format!("not an IDX file (magic {magic:02x?})")));
    }
    if magic[3] > MAX_DIMS {
        return Err(bad(
            path,
            format!(
                "{} dimensions; an IDX data set has at most {MAX_DIMS} (N x C x H x W)",
                magic[3]
            ),
        ));
    }
    let mut dims = Vec::new();
    for _ in 0..magic[3] {
        let mut d = [0u8; 4];
        r.read_exact(&mut d)
            .map_err(|e| bad(path, format!("truncated IDX header: {e}")))?;
        dims.push(u32::from_be_bytes(d) as usize);
    }
    Ok(Header {
        type_code: magic[2],
        dims,
    })
}

/// An IDX image file of unsigned bytes, N x H x W (or N x D).
pub struct IdxImages {
    path: PathBuf,
    count: usize,
    /// Shape of one sample as a model input: 1 x H x W.
    sample: Vec<i64>,
    /// An open decoder and the index of the next record it will yield.
    cursor: Mutex<Option<(usize, Box<dyn Read + Send>)>>,
}

impl IdxImages {
    pub fn open(path: &Path) -> Result<Self> {
        let mut r = open(path)?;
        let h = read_header(path, &mut r)?;
        if h.type_code != 0x08 || h.dims.len() < 2 {
            return Err(bad(
                path,
                format!(
                    "expected unsigned-byte images N x H x W, got type 0x{:02x} dims {:?}",
                    h.type_code, h.dims
                ),
            ));
        }
        let mut sample: Vec<i64> = h.dims[1..].iter().map(|&d| d as i64).collect();
        if sample.len() == 2 {
            sample.insert(0, 1); // one gray channel
        }
        let record = h.dims[1..]
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n > 0 && i64::try_from(n).is_ok())
            .ok_or_else(|| {
                let msg = format!("dimensions {:?}: a record of 0 bytes, or too many", h.dims);
                bad(path, msg)
            })?;
        holds(path, &mut r, h.dims[0], record)?;
        Ok(IdxImages {
            path: path.to_path_buf(),
            count: h.dims[0],
            sample,
            cursor: Mutex::new(None),
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Reads the records `indices` (ascending) as a u8 tensor N x 1 x H x W.
    pub fn read(&self, indices: &[usize]) -> Result<Tensor> {
        let record: usize = self.sample.iter().product::<i64>() as usize;
        let mut out = vec![0u8; record * indices.len()];
        let mut guard = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        for (k, &i) in indices.iter().enumerate() {
            if i >= self.count {
                return Err(bad(
                    &self.path,
                    format!("sample {i} is beyond the {} records", self.count),
                ));
            }
            let reopen = !matches!(&*guard, Some((next, _)) if *next <= i);
            if reopen {
                let mut r = open(&self.path)?;
                read_header(&self.path, &mut r)?;
                *guard = Some((0, r));
            }
            let (next, r) = guard.as_mut().expect("cursor was just set");
            let skip = ((i - *next) * record) as u64;
            let skipped = std::io::copy(&mut r.by_ref().take(skip), &mut std::io::sink())
                .map_err(|e| Error::io(&self.path, e))?;
            if skipped != skip {
                return Err(bad(&self.path, format!("truncated: record {i} is missing")));
            }
            r.read_exact(&mut out[k * record..(k + 1) * record])
                .map_err(|e| bad(&self.path, format!("truncated: record {i}: {e}")))?;
            *next = i + 1;
        }
        let mut shape = vec![indices.len() as i64];
        shape.extend(&self.sample);
        Ok(Tensor::from_slice(&out).reshape(shape))
    }
}

/// Reads a whole IDX label file (unsigned bytes, N).
pub fn read_labels(path: &Path) -> Result<Vec<i64>> {
    let mut r = open(path)?;
    let h = read_header(path, &mut r)?;
    if h.type_code != 0x08 || h.dims.len() != 1 {
        return Err(bad(
            path,
            format!(
                "expected an unsigned-byte label vector, got type 0x{:02x} dims {:?}",
                h.type_code, h.dims
            ),
        ));
    }
    // Read as the bytes come: the header's count allocates nothing.
    let mut bytes = Vec::new();
    r.take(h.dims[0] as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(path, format!("labels: {e}")))?;
    if bytes.len() < h.dims[0] {
        return Err(bad(
            path,
            format!(
                "truncated: the header promises {} labels, the file holds {}",
                h.dims[0],
                bytes.len()
            ),
        ));
    }
    Ok(bytes.into_iter().map(i64::from).collect())
}

/// Checks that `r`, just past the header, holds `count` records of
/// `record` bytes: counts them as they stream (at most the promised
/// bytes, into a sink).
fn holds(path: &Path, r: &mut dyn Read, count: usize, record: usize) -> Result<()> {
    let want = (count as u64).checked_mul(record as u64).ok_or_else(|| {
        bad(
            path,
            format!("{count} records of {record} bytes is too large"),
        )
    })?;
    let have = std::io::copy(&mut r.take(want), &mut std::io::sink())
        .map_err(|e| bad(path, format!("unreadable data: {e}")))?;
    if have < want {
        return Err(bad(
            path,
            format!(
                "truncated: the header promises {count} records of {record} bytes, the file holds {have} bytes of data"
            ),
        ));
    }
    Ok(())
}
