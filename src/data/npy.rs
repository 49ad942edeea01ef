//! NumPy .npy arrays, read row by row with seeks so a pass over a large array
//! never holds it whole. f32, f64, u8, i8, i32 and i64, either byte order
//! (big-endian ones are swapped as read), C order. Every command reads
//! .npy files here. Invariant: an opened array's rows all lie inside the
//! file (the header's promise is checked against the file's size with
//! checked arithmetic before anything is allocated).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use super::open_file;
use crate::error::{Error, Result};

pub struct Npy {
    path: PathBuf,
    /// The decompressed copy of a compressed .npz member, kept while in use.
    _spill: Option<tempfile::NamedTempFile>,
    pub kind: Kind,
    elem: usize,
    /// Full shape; dimension 0 is the sample axis.
    pub shape: Vec<i64>,
    /// Bytes per row (sample).
    row: usize,
    /// Big-endian elements, swapped as they are read.
    swap: bool,
    data_offset: u64,
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

impl Npy {
    pub fn open(path: &Path) -> Result<Self> {
        let len = open_file(path)?
            .metadata()
            .map_err(|e| Error::io(path, e))?
            .len();
        Self::open_at(path, 0, len)
    }

    /// The array stored in `path` at byte `base`, `len` bytes long (a whole
    /// .npy file, or an uncompressed member of a .npz archive).
    fn open_at(path: &Path, base: u64, len: u64) -> Result<Self> {
        let mut f = open_file(path)?;
        f.seek(SeekFrom::Start(base))
            .map_err(|e| Error::io(path, e))?;
        let mut pre = [0u8; 8];
        f.read_exact(&mut pre)
            .map_err(|_| bad(path, "not a .npy file (too short)"))?;
        if &pre[..6] != b"\x93NUMPY" {
            return Err(bad(path, "not a .npy file (bad magic)"));
        }
        let header_len = if pre[6] == 1 {
            let mut b = [0u8; 2];
            f.read_exact(&mut b)
                .map_err(|_| bad(path, "truncated .npy header"))?;
            u64::from(u16::from_le_bytes(b))
        } else {
            let mut b = [0u8; 4];
            f.read_exact(&mut b)
                .map_err(|_| bad(path, "truncated .npy header"))?;
            u64::from(u32::from_le_bytes(b))
        };
        // The length is the file's word: check it before allocating.
        if header_len > len {
            return Err(bad(
                path,
                format!("truncated .npy header: {header_len} bytes announced, the file has {len}"),
            ));
        }
        let mut header = vec![0u8; header_len as usize];
        f.read_exact(&mut header)
            .map_err(|_| bad(path, "truncated .npy header"))?;
        let header = String::from_utf8_lossy(&header);
        let data_offset = f.stream_position().map_err(|e| Error::io(path, e))?;
        let (kind, elem, swap) = dtype(path, &header)?;
        let shape = shape(path, &header)?;
        let row = checked_bytes(&shape[1..], elem)
            .ok_or_else(|| bad(path, format!("shape {shape:?} is too large")))?;
        let want = (row as u64)
            .checked_mul(shape[0] as u64)
            .and_then(|n| n.checked_add(data_offset))
            .ok_or_else(|| bad(path, format!("shape {shape:?} is too large")))?;
        let have = base
            .checked_add(len)
            .ok_or_else(|| bad(path, "the array's extent overflows"))?;
        if have < want {
            return Err(bad(
                path,
                format!("truncated: {have} bytes, the header promises {want}"),
            ));
        }
        Ok(Npy {
            path: path.to_path_buf(),
            _spill: None,
            kind,
            elem,
            shape,
            row,
            swap,
            data_offset,
        })
    }

    /// Array `name` (default: the first) of the .npz archive `path`. Members
    /// stored uncompressed (np.savez) are read in place; compressed ones
    /// (np.savez_compressed) are decompressed once to a temporary file.
    pub fn open_npz(path: &Path, name: Option<&str>) -> Result<Self> {
        let file = open_file(path)?;
        let mut zip = zip::ZipArchive::new(file)
            .map_err(|e| bad(path, format!("not a .npz archive: {e}")))?;
        let member = match name {
            Some(n) => format!("{}.npy", n.trim_end_matches(".npy")),
            None => zip
                .file_names()
                .filter(|n| n.ends_with(".npy"))
                .min()
                .map(str::to_string)
                .ok_or_else(|| bad(path, "the archive holds no .npy array"))?,
        };
        let mut entry = zip.by_name(&member).map_err(|_| {
            bad(
                path,
                format!(
                    "no array '{}' in the archive",
                    member.trim_end_matches(".npy")
                ),
            )
        })?;
        if entry.compression() == zip::CompressionMethod::Stored {
            let (start, size) = (entry.data_start(), entry.size());
            return Self::open_at(path, start, size);
        }
        let mut spill =
            tempfile::NamedTempFile::new().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        // No more than the member declares: a member that inflates past it
        // (a zip bomb) is refused, not spilled until the disk is full.
        let declared = entry.size();
        let copied = std::io::copy(&mut (&mut entry).take(declared + 1), &mut spill)
            .map_err(|e| bad(path, format!("{member}: {e}")))?;
        if copied > declared {
            return Err(bad(
                path,
                format!("{member} inflates past the {declared} bytes its header declares"),
            ));
        }
        let mut npy = Self::open(spill.path())?;
        npy._spill = Some(spill);
        Ok(npy)
    }

    pub fn len(&self) -> usize {
        self.shape[0] as usize
    }

    /// Rows `indices` (ascending) as a tensor of the array's kind.
    pub fn read(&self, indices: &[usize]) -> Result<Tensor> {
        let row = self.row;
        let mut f = open_file(&self.path)?;
        let total = row
            .checked_mul(indices.len())
            .ok_or_else(|| bad(&self.path, format!("{} rows are too many", indices.len())))?;
        let mut out = vec![0u8; total];
        for (k, &i) in indices.iter().enumerate() {
            if i >= self.len() {
                return Err(bad(
                    &self.path,
                    format!("sample {i} is beyond the {} rows", self.len()),
                ));
            }
            // Below the size checked at open: `i < len`, `len * row` fits.
            let at = (i as u64)
                .checked_mul(row as u64)
                .and_then(|o| o.checked_add(self.data_offset))
                .ok_or_else(|| bad(&self.path, format!("sample {i}'s offset overflows")))?;
            f.seek(SeekFrom::Start(at))
                .map_err(|e| Error::io(&self.path, e))?;
            // k * row < (k + 1) * row <= total: no overflow.
            f.read_exact(&mut out[k * row..(k + 1) * row])
                .map_err(|e| Error::io(&self.path, e))?;
        }
        if self.swap {
            out.chunks_exact_mut(self.elem).for_each(<[u8]>::reverse);
        }
        let mut shape = vec![indices.len() as i64];
        shape.extend(&self.shape[1..]);
        Tensor::f_from_data_size(&out, &shape, self.kind)
            .map_err(|e| bad(&self.path, e.to_string()))
    }

    /// The whole array, as stored (its rows lie inside the file, so this
    /// allocates at most the file's size).
    pub fn read_all(&self) -> Result<Tensor> {
        let all: Vec<usize> = (0..self.len()).collect();
        self.read(&all)
    }

    /// The whole array as integers (for label files).
    pub fn read_labels(&self) -> Result<Vec<i64>> {
        if self.shape.len() != 1
            || !matches!(
                self.kind,
                Kind::Uint8 | Kind::Int8 | Kind::Int | Kind::Int64
            )
        {
            return Err(bad(
                &self.path,
                format!(
                    "labels must be a 1-D integer array, got {:?} {:?}",
                    self.kind, self.shape
                ),
            ));
        }
        let t = self.read_all()?.to_kind(Kind::Int64);
        Vec::<i64>::try_from(&t).map_err(|e| bad(&self.path, e.to_string()))
    }
}

/// A field of the header dict (`'descr': '<f4'` -> `<f4`).
fn field(header: &str, key: &str) -> Option<String> {
    let at = header.find(&format!("'{key}':"))? + key.len() + 3;
    let rest = header[at..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}'])?
    };
    Some(rest[..end].trim().trim_matches('\'').to_string())
}

/// Kind, element size and whether elements are big-endian.
fn dtype(path: &Path, header: &str) -> Result<(Kind, usize, bool)> {
    if field(header, "fortran_order").as_deref() != Some("False") {
        return Err(bad(path, "Fortran-ordered arrays are not supported"));
    }
    let descr = field(header, "descr").ok_or_else(|| bad(path, "no descr in .npy header"))?;
    let order = descr.get(..1).unwrap_or_default();
    let code = descr.get(1..).unwrap_or_default();
    let (kind, elem) = match code {
        "f4" => (Kind::Float, 4),
        "f8" => (Kind::Double, 8),
        "u1" => (Kind::Uint8, 1),
        "i1" => (Kind::Int8, 1),
        "i4" => (Kind::Int, 4),
        "i8" => (Kind::Int64, 8),
        "i2" => (Kind::Int16, 2),
        "f2" => (Kind::Half, 2),
        "b1" => (Kind::Bool, 1),
        _ => {
            return Err(bad(
                path,
                format!("dtype {descr} is not supported (f2, f4, f8, u1, i1, i2, i4, i8, b1)"),
            ))
        }
    };
    // `=` is the writer's native order; NumPy writes `<` or `>` instead
    // for multi-byte kinds, and `|` for single bytes.
    match order {
        "<" | "|" | "=" => Ok((kind, elem, false)),
        ">" => Ok((kind, elem, elem > 1)),
        _ => Err(bad(path, format!("dtype {descr}: unknown byte order"))),
    }
}

/// The shape: at least one dimension (the samples), none negative.
fn shape(path: &Path, header: &str) -> Result<Vec<i64>> {
    let text = field(header, "shape").ok_or_else(|| bad(path, "no shape in .npy header"))?;
    let shape = text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .ok()
                .filter(|&d| d >= 0)
                .ok_or_else(|| bad(path, format!("bad shape {text}")))
        })
        .collect::<Result<Vec<_>>>()?;
    if shape.is_empty() {
        return Err(bad(path, "a scalar array has no samples"));
    }
    Ok(shape)
}

/// Bytes of `dims` elements of `elem` bytes, when that fits the address
/// space and a tensor's i64 sizes.
fn checked_bytes(dims: &[i64], elem: usize) -> Option<usize> {
    let n = dims
        .iter()
        .try_fold(elem as i64, |acc, &d| acc.checked_mul(d))?;
    usize::try_from(n).ok()
}
