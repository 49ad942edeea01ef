//! One cache entry on disk: the frontier of one cut for every sample of a data
//! set, in chunks of samples, each chunk a zstd frame. Layout and guarantees
//! are in cache/README.md. Writes go to a temporary file renamed into place
//! when complete, so a reader never sees half an entry; every chunk, the
//! index and the header carry a CRC32 checked on read.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::chunks::ChunkCache;
use crate::error::{Error, Result};

pub const MAGIC: &[u8; 8] = b"FSWCACHE";
pub const END_MAGIC: &[u8; 8] = b"FSWCEND\0";
pub const VERSION: u32 = 2;
const FOOTER: usize = 8 + 8 + 4 + 4 + 8;
const INDEX_ENTRY: usize = 8 + 8 + 8 + 4;

/// What an entry holds; stored as JSON after the magic and version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The cache key the entry is stored under.
    pub key: String,
    /// The model file the entry was computed from.
    pub model: String,
    /// The data set file the entry was computed from.
    pub data: String,
    /// The cut whose frontier the entry holds.
    pub cut: usize,
    /// The frontier values, in order.
    pub values: Vec<ValueLayout>,
    /// Number of samples stored.
    pub samples: usize,
    /// Samples per compressed chunk.
    pub chunk_samples: usize,
    /// The zstd level chunks are compressed at.
    pub zstd_level: i32,
}

/// One frontier value: its name, element kind and per-sample shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueLayout {
    /// The value's name in the graph.
    pub name: String,
    /// Its element kind, as named by [`ValueLayout::kind_name`].
    pub kind: String,
    /// Its per-sample shape.
    pub shape: Vec<i64>,
}

impl ValueLayout {
    /// The element kind, or `None` for a name this version does not know.
    pub fn kind(&self) -> Option<Kind> {
        Some(match self.kind.as_str() {
            "f32" => Kind::Float,
            "f64" => Kind::Double,
            "f16" => Kind::Half,
            "bf16" => Kind::BFloat16,
            "i64" => Kind::Int64,
            "i32" => Kind::Int,
            "u8" => Kind::Uint8,
            "i8" => Kind::Int8,
            "bool" => Kind::Bool,
            _ => return None,
        })
    }

    /// The stored name of `kind`, or `None` for a kind the cache cannot store.
    pub fn kind_name(kind: Kind) -> Option<&'static str> {
        Some(match kind {
            Kind::Float => "f32",
            Kind::Double => "f64",
            Kind::Half => "f16",
            Kind::BFloat16 => "bf16",
            Kind::Int64 => "i64",
            Kind::Int => "i32",
            Kind::Uint8 => "u8",
            Kind::Int8 => "i8",
            Kind::Bool => "bool",
            _ => return None,
        })
    }

    /// Bytes of one element.
    pub fn width(&self) -> usize {
        self.kind().map_or(1, |k| k.elt_size_in_bytes())
    }

    /// Bytes of one sample of this value.
    pub fn sample_bytes(&self) -> usize {
        let elem = self.kind().map_or(0, |k| k.elt_size_in_bytes());
        self.shape.iter().product::<i64>() as usize * elem
    }
}

fn corrupt(path: &Path, msg: impl Into<String>) -> Error {
    Error::CacheCorrupt {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// An entry file `KEY.fsc` must hold entry KEY: another entry copied under
/// its name (another cut's, with other shapes) is corrupt, not a hit.
fn check_name(path: &Path, header: &Header) -> Result<()> {
    let named = path.extension().is_some_and(|e| e == "fsc");
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    if named && stem != header.key {
        return Err(corrupt(
            path,
            format!(
                "the file is named for key {stem} but holds entry {} (cut {}): a file copied under another name",
                header.key, header.cut
            ),
        ));
    }
    Ok(())
}

/// Streams batches of frontier tensors into a new entry.
pub struct Writer {
    header: Header,
    final_path: PathBuf,
    temp_path: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    index: Vec<u8>,
    /// Raw bytes per value for the samples of the chunk being filled.
    pending: Vec<Vec<u8>>,
    pending_samples: usize,
    written: usize,
}

/// A failed write of entry `path`, named by the entry (what the user knows)
/// and by the temporary file being written (what is on disk).
fn write_error(path: &Path, temp: &Path, e: std::io::Error) -> Error {
    let msg = format!("{e} (while writing its temporary file {})", temp.display());
    Error::io(path, std::io::Error::new(e.kind(), msg))
}

impl Writer {
    /// Starts a new entry at `path` by writing a temporary file beside it.
    pub fn create(path: &Path, header: Header) -> Result<Self> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let temp_path = dir.join(format!(
            ".{}.{}.{}.tmp",
            path.file_name().unwrap_or_default().to_string_lossy(),
            crate::temps::tag(),
            rand::random::<u32>()
        ));
        let file = File::create(&temp_path).map_err(|e| write_error(path, &temp_path, e))?;
        let mut out = BufWriter::new(file);
        let json = serde_json::to_vec(&header).expect("header serializes");
        let mut head = Vec::with_capacity(16 + json.len());
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&(json.len() as u32).to_le_bytes());
        head.extend_from_slice(&json);
        out.write_all(&head)
            .map_err(|e| write_error(path, &temp_path, e))?;
        let pending = vec![Vec::new(); header.values.len()];
        Ok(Writer {
            offset: head.len() as u64,
            header,
            final_path: path.to_path_buf(),
            temp_path,
            out,
            index: Vec::new(),
            pending,
            pending_samples: 0,
            written: 0,
        })
    }

    /// Appends a batch: one tensor per frontier value, each N x (shape).
    pub fn push(&mut self, values: &[Tensor]) -> Result<()> {
        let n = values.first().map_or(0, |t| t.size()[0]) as usize;
        for (i, (t, layout)) in values.iter().zip(&self.header.values).enumerate() {
            let t = t.to_device(tch::Device::Cpu).contiguous();
            let mut want = vec![n as i64];
            want.extend(&layout.shape);
            if t.size() != want || ValueLayout::kind_name(t.kind()) != Some(&layout.kind) {
                return Err(Error::Cut {
                    cut: self.header.cut,
                    msg: format!(
                        "value '{}' is {:?} {:?}, the entry holds {} {:?}",
                        layout.name,
                        t.kind(),
                        t.size(),
                        layout.kind,
                        want
                    ),
                });
            }
            let bytes = layout.sample_bytes() * n;
            let start = self.pending[i].len();
            self.pending[i].resize(start + bytes, 0);
            t.f_copy_data_u8(&mut self.pending[i][start..], t.numel())
                .map_err(|e| Error::Cut {
                    cut: self.header.cut,
                    msg: e.to_string(),
                })?;
        }
        self.pending_samples += n;
        while self.pending_samples >= self.header.chunk_samples {
            self.flush_chunk(self.header.chunk_samples)?;
        }
        Ok(())
    }

    fn failed(&self, e: std::io::Error) -> Error {
        write_error(&self.final_path, &self.temp_path, e)
    }

    /// Compresses the first `samples` pending samples into one chunk.
    fn flush_chunk(&mut self, samples: usize) -> Result<()> {
        let mut raw = Vec::new();
        for (buf, layout) in self.pending.iter_mut().zip(&self.header.values) {
            let take = layout.sample_bytes() * samples;
            to_planes(&buf[..take], layout.width(), &mut raw);
            buf.drain(..take);
        }
        let frame = compress(&raw, self.header.zstd_level).map_err(|e| self.failed(e))?;
        self.out.write_all(&frame).map_err(|e| self.failed(e))?;
        self.index.extend_from_slice(&self.offset.to_le_bytes());
        self.index
            .extend_from_slice(&(frame.len() as u64).to_le_bytes());
        self.index
            .extend_from_slice(&(raw.len() as u64).to_le_bytes());
        self.index
            .extend_from_slice(&crc32fast::hash(&frame).to_le_bytes());
        self.offset += frame.len() as u64;
        self.pending_samples -= samples;
        self.written += samples;
        Ok(())
    }

    /// Writes the index and footer, syncs, and renames the entry into place.
    pub fn finish(mut self) -> Result<PathBuf> {
        if self.pending_samples > 0 {
            self.flush_chunk(self.pending_samples)?;
        }
        if self.written != self.header.samples {
            return Err(Error::Cut {
                cut: self.header.cut,
                msg: format!(
                    "{} samples written, the entry announces {}",
                    self.written, self.header.samples
                ),
            });
        }
        let head_crc = {
            let json = serde_json::to_vec(&self.header).expect("header serializes");
            crc32fast::hash(&json)
        };
        let mut footer = Vec::with_capacity(FOOTER);
        footer.extend_from_slice(&self.offset.to_le_bytes());
        footer.extend_from_slice(&((self.index.len() / INDEX_ENTRY) as u64).to_le_bytes());
        footer.extend_from_slice(&crc32fast::hash(&self.index).to_le_bytes());
        footer.extend_from_slice(&head_crc.to_le_bytes());
        footer.extend_from_slice(END_MAGIC);
        let io = |e| write_error(&self.final_path, &self.temp_path, e);
        self.out.write_all(&self.index).map_err(io)?;
        self.out.write_all(&footer).map_err(io)?;
        // Not synced: a torn entry after a power loss fails its CRCs and is
        // rebuilt, and syncing every entry made a first run wait on the disk.
        self.out.flush().map_err(io)?;
        std::fs::rename(&self.temp_path, &self.final_path)
            .map_err(|e| Error::io(&self.final_path, e))?;
        Ok(self.final_path.clone())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Unfinished (error or panic): leave nothing a later run could trust.
        let _ = std::fs::remove_file(&self.temp_path);
    }
}

struct Chunk {
    offset: usize,
    len: usize,
    raw_len: usize,
    crc: u32,
}

/// A finished entry, open for positioned reads.
pub struct Reader {
    /// The entry's file.
    pub path: PathBuf,
    /// What the entry holds.
    pub header: Header,
    /// Read with positioned reads, not mapped: mapped pages read once
    /// would count in the process's resident size for as long as the
    /// entry is open, growing it with the data set.
    file: File,
    len: u64,
    chunks: Vec<Chunk>,
    /// The chunk cache this reader shares (its store's, or its own) and
    /// its id there.
    cache: ChunkCache,
    uid: u64,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.cache.forget(self.uid, self.chunks.len());
    }
}

/// `n` bytes of `file` at `at`; a short file is a corrupt entry.
fn read_at(file: &File, path: &Path, at: usize, n: usize) -> Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; n];
    match file.read_exact_at(&mut buf, at as u64) {
        Ok(()) => Ok(buf),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(corrupt(
            path,
            format!("truncated: no {n} bytes at offset {at}"),
        )),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Reader {
    /// Opens and checks the header, index and footer (not the chunks: see
    /// [`Reader::verify`]), with a chunk cache of its own: readers that
    /// should share one are opened by their store ([`super::Store::reader`]).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, ChunkCache::default())
    }

    /// [`Reader::open`], keeping decompressed chunks in `cache`.
    pub(super) fn open_with(path: &Path, cache: ChunkCache) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            // Reading one fails with whatever the file system says (EISDIR,
            // ENODEV), which does not tell what is wrong.
            let what = if meta.is_dir() {
                "a folder"
            } else {
                "a special file"
            };
            let msg = format!("{what} is where a cache entry should be; remove it");
            return Err(Error::io(path, std::io::Error::other(msg)));
        }
        let len = meta.len() as usize;
        let read = |at: usize, n: usize| read_at(&file, path, at, n);
        if len < 16 + FOOTER || &read(0, 8)?[..] != MAGIC {
            return Err(corrupt(
                path,
                "not a faultsweep cache entry (bad magic or too short)",
            ));
        }
        let head = read(8, 8)?;
        let version = u32_at(&head, 0);
        if version != VERSION {
            return Err(corrupt(
                path,
                format!("format version {version}, this faultsweep reads {VERSION}"),
            ));
        }
        let head_len = u32_at(&head, 4) as usize;
        let foot = len - FOOTER;
        let footer = read(foot, FOOTER)?;
        if 16 + head_len > foot || &footer[24..] != END_MAGIC {
            return Err(corrupt(path, "truncated (no footer)"));
        }
        let json = read(16, head_len)?;
        if crc32fast::hash(&json) != u32_at(&footer, 20) {
            return Err(corrupt(path, "header checksum mismatch"));
        }
        let json = &json[..];
        let header: Header =
            serde_json::from_slice(json).map_err(|e| corrupt(path, format!("header: {e}")))?;
        check_name(path, &header)?;
        let index_at = u64_at(&footer, 0) as usize;
        let count = u64_at(&footer, 8) as usize;
        let index_end = count
            .checked_mul(INDEX_ENTRY)
            .and_then(|n| n.checked_add(index_at));
        if index_end != Some(foot) {
            return Err(corrupt(path, "index does not end at the footer"));
        }
        let index = read(index_at, foot - index_at)?;
        if crc32fast::hash(&index) != u32_at(&footer, 16) {
            return Err(corrupt(path, "index checksum mismatch"));
        }
        let chunks: Vec<Chunk> = index
            .chunks_exact(INDEX_ENTRY)
            .map(|e| Chunk {
                offset: u64_at(e, 0) as usize,
                len: u64_at(e, 8) as usize,
                raw_len: u64_at(e, 16) as usize,
                crc: u32_at(e, 24),
            })
            .collect();
        if chunks
            .iter()
            .any(|c| c.offset.checked_add(c.len).is_none_or(|end| end > index_at))
        {
            return Err(corrupt(path, "a chunk lies outside the data area"));
        }
        if header.chunk_samples == 0
            || chunks.len() != header.samples.div_ceil(header.chunk_samples)
        {
            return Err(corrupt(path, "chunk count does not match the sample count"));
        }
        Ok(Reader {
            path: path.to_path_buf(),
            header,
            file,
            len: len as u64,
            chunks,
            uid: cache.reader(),
            cache,
        })
    }

    /// Chunk `i` decompressed, from the chunk cache when it is there.
    fn chunk(&self, i: usize) -> Result<Arc<Vec<u8>>> {
        if let Some(raw) = self.cache.get((self.uid, i)) {
            return Ok(raw);
        }
        let raw = Arc::new(self.chunk_raw(i)?);
        self.cache.put((self.uid, i), raw.clone());
        Ok(raw)
    }

    fn chunk_raw(&self, i: usize) -> Result<Vec<u8>> {
        let frame = self.frame(i)?;
        decompress(&frame, self.chunks[i].raw_len, &self.header.values)
            .map_err(|e| corrupt(&self.path, format!("chunk {i}: {e}")))
    }

    /// Samples in `start..end` (positions in the entry): one tensor per
    /// frontier value, N x (shape). Chunks decompress in parallel.
    pub fn read(&self, start: usize, end: usize) -> Result<Vec<Tensor>> {
        let h = &self.header;
        if start >= end || end > h.samples {
            return Err(Error::Cut {
                cut: h.cut,
                msg: format!(
                    "samples {start}..{end} are outside the entry's {}",
                    h.samples
                ),
            });
        }
        let (first, last) = (start / h.chunk_samples, (end - 1) / h.chunk_samples);
        let raws: Vec<Arc<Vec<u8>>> = (first..=last)
            .into_par_iter()
            .map(|i| self.chunk(i))
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(h.values.len());
        for (v, layout) in h.values.iter().enumerate() {
            let per = layout.sample_bytes();
            let mut bytes = Vec::with_capacity(per * (end - start));
            for (k, raw) in raws.iter().enumerate() {
                let chunk = first + k;
                let base = chunk * h.chunk_samples;
                let n_in_chunk = h.chunk_samples.min(h.samples - base);
                let value_off: usize = h.values[..v]
                    .iter()
                    .map(|l| l.sample_bytes() * n_in_chunk)
                    .sum();
                let (s, e) = (start.max(base) - base, end.min(base + n_in_chunk) - base);
                bytes.extend_from_slice(&raw[value_off + s * per..value_off + e * per]);
            }
            let mut shape = vec![(end - start) as i64];
            shape.extend(&layout.shape);
            let kind = layout
                .kind()
                .ok_or_else(|| corrupt(&self.path, format!("unknown kind {}", layout.kind)))?;
            out.push(
                Tensor::f_from_data_size(&bytes, &shape, kind)
                    .map_err(|e| corrupt(&self.path, e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// The samples at `positions` (any order, repeats allowed): one tensor
    /// per frontier value, N x (shape), row k holding sample `positions[k]`.
    /// Each chunk involved is decompressed once (in parallel), and every
    /// sample's bytes are copied once into the value's buffer.
    pub fn read_rows(&self, positions: &[usize]) -> Result<Vec<Tensor>> {
        let h = &self.header;
        if let Some(&bad) = positions.iter().find(|&&p| p >= h.samples) {
            return Err(Error::Cut {
                cut: h.cut,
                msg: format!("sample {bad} is outside the entry's {}", h.samples),
            });
        }
        let mut wanted: Vec<usize> = positions.iter().map(|p| p / h.chunk_samples).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let raws: HashMap<usize, Arc<Vec<u8>>> = wanted
            .into_par_iter()
            .map(|i| self.chunk(i).map(|raw| (i, raw)))
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(h.values.len());
        for (v, layout) in h.values.iter().enumerate() {
            let per = layout.sample_bytes();
            let mut bytes = Vec::with_capacity(per * positions.len());
            for &p in positions {
                let chunk = p / h.chunk_samples;
                let base = chunk * h.chunk_samples;
                let n_in_chunk = h.chunk_samples.min(h.samples - base);
                let value_off: usize = h.values[..v]
                    .iter()
                    .map(|l| l.sample_bytes() * n_in_chunk)
                    .sum();
                let at = value_off + (p - base) * per;
                bytes.extend_from_slice(&raws[&chunk][at..at + per]);
            }
            let mut shape = vec![positions.len() as i64];
            shape.extend(&layout.shape);
            let kind = layout
                .kind()
                .ok_or_else(|| corrupt(&self.path, format!("unknown kind {}", layout.kind)))?;
            out.push(
                Tensor::f_from_data_size(&bytes, &shape, kind)
                    .map_err(|e| corrupt(&self.path, e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// Checks every chunk's CRC32 without decompressing it: what opening an
    /// entry for a campaign costs (a damaged byte on disk fails here; zstd's
    /// own checksum is checked again as each chunk is read).
    pub fn check_frames(&self) -> Result<()> {
        (0..self.chunks.len())
            .into_par_iter()
            .try_for_each(|i| self.frame(i).map(|_| ()))
    }

    /// Chunk `i`'s compressed frame, its CRC32 checked.
    fn frame(&self, i: usize) -> Result<Vec<u8>> {
        let c = &self.chunks[i];
        let frame = read_at(&self.file, &self.path, c.offset, c.len)?;
        if crc32fast::hash(&frame) != c.crc {
            return Err(corrupt(&self.path, format!("chunk {i}: checksum mismatch")));
        }
        Ok(frame)
    }

    /// Decompresses and checks every chunk.
    pub fn verify(&self) -> Result<()> {
        (0..self.chunks.len())
            .into_par_iter()
            .try_for_each(|i| self.chunk_raw(i).map(|_| ()))
    }

    /// Bytes on disk and raw (decompressed) bytes of all chunks.
    pub fn sizes(&self) -> (u64, u64) {
        (self.len, self.chunks.iter().map(|c| c.raw_len as u64).sum())
    }
}

/// One chunk's zstd frame (with zstd's checksum) from its byte planes.
fn compress(planes: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    let mut enc = zstd::Encoder::new(Vec::new(), level)?;
    enc.include_checksum(true)?;
    enc.write_all(planes)?;
    enc.finish()
}

/// The inverse of [`compress`] and of the byte planes: a chunk of `values`
/// (value after value, each its samples' row-major elements), checked to
/// hold `raw_len` bytes of whole samples.
fn decompress(
    frame: &[u8],
    raw_len: usize,
    values: &[ValueLayout],
) -> std::result::Result<Vec<u8>, String> {
    let planes = zstd::bulk::decompress(frame, raw_len).map_err(|e| e.to_string())?;
    let sample_bytes: usize = values.iter().map(|v| v.sample_bytes()).sum();
    if planes.len() != raw_len || !raw_len.is_multiple_of(sample_bytes.max(1)) {
        return Err(format!("{} bytes, expected {raw_len}", planes.len()));
    }
    let samples = raw_len / sample_bytes.max(1);
    let mut raw = vec![0; raw_len];
    let mut at = 0;
    for layout in values {
        let len = layout.sample_bytes() * samples;
        from_planes(
            &planes[at..at + len],
            layout.width(),
            &mut raw[at..at + len],
        );
        at += len;
    }
    Ok(raw)
}

/// What storing one sample's frontier costs.
pub struct SampleCost {
    /// Bytes raw and compressed.
    pub raw_bytes: u64,
    /// Bytes compressed, as stored on disk.
    pub disk_bytes: u64,
    /// Seconds to read it back into tensors: decompress, undo the byte
    /// planes, build the tensors (the fastest of three tries).
    pub read_secs: f64,
    /// Seconds to copy it out of its tensors, make the byte planes and
    /// compress them.
    pub write_secs: f64,
}

/// What storing one sample's frontier `values` at zstd `level` costs.
pub fn sample_cost(values: &[Tensor], level: i32) -> Result<SampleCost> {
    let started = std::time::Instant::now();
    let mut layouts = Vec::with_capacity(values.len());
    let mut planes = Vec::new();
    for (i, t) in values.iter().enumerate() {
        let t = t.to_device(tch::Device::Cpu).contiguous();
        let kind = ValueLayout::kind_name(t.kind())
            .ok_or_else(|| Error::Usage(format!("kind {:?} cannot be cached", t.kind())))?;
        let layout = ValueLayout {
            name: i.to_string(),
            kind: kind.into(),
            shape: t.size()[1..].to_vec(),
        };
        let mut bytes = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, t.numel())
            .map_err(|e| Error::Usage(e.to_string()))?;
        to_planes(&bytes, layout.width(), &mut planes);
        layouts.push(layout);
    }
    let frame = compress(&planes, level).map_err(|e| Error::Usage(e.to_string()))?;
    let write_secs = started.elapsed().as_secs_f64();
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let raw = decompress(&frame, planes.len(), &layouts).map_err(Error::Usage)?;
        let mut at = 0;
        for layout in &layouts {
            let len = layout.sample_bytes();
            let mut shape = vec![1];
            shape.extend(&layout.shape);
            let kind = layout.kind().expect("a kind this function named");
            let _row = Tensor::f_from_data_size(&raw[at..at + len], &shape, kind)
                .map_err(|e| Error::Usage(e.to_string()))?;
            at += len;
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(SampleCost {
        raw_bytes: planes.len() as u64,
        disk_bytes: frame.len() as u64,
        read_secs: best,
        write_secs,
    })
}

/// Appends `bytes` (elements of `width` bytes) to `out` as byte planes: the
/// first byte of every element, then the second, and so on. An activation's
/// sign and exponent bytes vary little from one value to the next, so zstd
/// finds runs in their planes that it cannot find in interleaved floats.
fn to_planes(bytes: &[u8], width: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + bytes.len(), 0);
    let count = bytes.len() / width.max(1);
    let planes = &mut out[start..];
    for (e, element) in bytes.chunks_exact(width.max(1)).enumerate() {
        for (b, &byte) in element.iter().enumerate() {
            planes[b * count + e] = byte;
        }
    }
}

/// The inverse of [`to_planes`]: `planes` back into elements in `out`.
fn from_planes(planes: &[u8], width: usize, out: &mut [u8]) {
    let count = planes.len() / width.max(1);
    for (e, element) in out.chunks_exact_mut(width.max(1)).enumerate() {
        for (b, byte) in element.iter_mut().enumerate() {
            *byte = planes[b * count + e];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_round_trip_for_every_width() {
        let bytes: Vec<u8> = (0..96u32).map(|i| (i * 37 % 251) as u8).collect();
        for width in [1, 2, 4, 8] {
            let mut planes = Vec::new();
            to_planes(&bytes, width, &mut planes);
            assert_eq!(planes.len(), bytes.len());
            if width > 1 {
                assert_ne!(planes, bytes, "width {width}");
                assert_eq!(planes[1], bytes[width], "the second element's first byte");
            }
            let mut back = vec![0; bytes.len()];
            from_planes(&planes, width, &mut back);
            assert_eq!(back, bytes, "width {width}");
        }
    }
}
