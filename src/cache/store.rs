//! The cache root: entries named by their key, lookup with corruption
//! handling, listing, eviction of least recently used entries, and the
//! temporaries of fills (`.KEY.fsc.PID@HOST.N.tmp`), whose stale ones (the
//! writer is gone) are listed and removed. A store also owns the in-memory
//! cache of decompressed chunks that the readers it opens share
//! ([`ChunkCache`]).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::chunks::ChunkCache;
use super::format::{Reader, VERSION};
use super::CacheSpec;
use crate::error::{Error, Result};
use crate::temps::Temporary;

/// Environment variable that overrides the cache root of scenarios.
pub const CACHE_ENV: &str = "FAULTSWEEP_CACHE";

/// A cache folder of layer-split entries, one file per cache key.
pub struct Store {
    /// The folder holding the entries.
    pub root: PathBuf,
    /// The zstd level new entries are compressed at.
    pub zstd_level: i32,
    /// Least recently used entries are evicted beyond this many bytes.
    pub budget_bytes: Option<u64>,
    /// Every cut read is stored (the scenario's `cache.store_every_cut`).
    pub every_cut: bool,
    /// Decompressed chunks of the entries opened through this store.
    chunks: ChunkCache,
}

/// Bump when the executor computes some op's bits otherwise, so a cache
/// filled by an older build is not mixed with rows computed by this one.
const KERNELS: u32 = 7;

/// The environment variables that change which vector code runs.
const PATH_SWITCHES: [&str; 4] = [
    crate::kernels::cpu::SWITCH,
    "ATEN_CPU_CAPABILITY",
    "MKL_ENABLE_INSTRUCTIONS",
    "ONEDNN_MAX_CPU_ISA",
];

/// What decides the last bits of libtorch's transcendental and reduction
/// kernels beside the model and data: the CPU's vendor (MKL takes other
/// paths on Intel and AMD), its vector extensions and the switches that
/// limit them. Part of every key, so a cache shared by the machines of a
/// mixed cluster hands no CPU another's bits; each kind fills its own.
pub fn cpu_paths() -> String {
    let mut s = String::new();
    #[cfg(target_arch = "x86_64")]
    {
        let id = std::arch::x86_64::__cpuid(0);
        let vendor: Vec<u8> = [id.ebx, id.edx, id.ecx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .collect();
        s += &String::from_utf8_lossy(&vendor);
        for (name, on) in [
            ("avx2", std::is_x86_feature_detected!("avx2")),
            ("fma", std::is_x86_feature_detected!("fma")),
            ("avx512f", std::is_x86_feature_detected!("avx512f")),
            ("avx512bw", std::is_x86_feature_detected!("avx512bw")),
        ] {
            if on {
                s += &format!(" {name}");
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    s.push_str(std::env::consts::ARCH);
    for var in PATH_SWITCHES {
        s += &format!(" {var}={}", std::env::var(var).unwrap_or_default());
    }
    s
}

/// The key of the entry for one cut: a hash of the model bytes' hash, the
/// data's hash (files, sample ids, preprocessing), the cut, its frontier
/// value names and the format version.
pub fn key(
    model_hash: &blake3::Hash,
    data_hash: &blake3::Hash,
    cut: usize,
    values: &[String],
) -> String {
    let mut h = blake3::Hasher::new();
    h.update(format!("faultsweep cache v{VERSION}\n").as_bytes());
    h.update(format!("kernels {KERNELS} {}\n", cpu_paths()).as_bytes());
    h.update(model_hash.as_bytes());
    h.update(data_hash.as_bytes());
    h.update(&(cut as u64).to_le_bytes());
    for v in values {
        h.update(v.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex()[..32].to_string()
}

/// Removes `path`; one that another process removed first is no error.
fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

impl Store {
    /// The root is, in order of precedence: `dir_override` (`--cache-dir`),
    /// $FAULTSWEEP_CACHE, the scenario's `cache.dir`, then `cache/`.
    pub fn new(spec: &CacheSpec, dir_override: Option<&Path>) -> Self {
        let root = dir_override
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(CACHE_ENV).map(PathBuf::from))
            .or_else(|| spec.dir.clone())
            .unwrap_or_else(|| PathBuf::from("cache"));
        Store {
            root,
            zstd_level: spec.zstd_level,
            budget_bytes: spec.budget_bytes,
            every_cut: spec.store_every_cut,
            chunks: ChunkCache::default(),
        }
    }

    /// Opens the entry file `path` (see [`Reader::open`]), its decompressed
    /// chunks kept in this store's chunk cache beside those of the other
    /// entries it opened.
    pub fn reader(&self, path: &Path) -> Result<Reader> {
        Reader::open_with(path, self.chunks.clone())
    }

    /// The file of entry `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(format!("{key}.fsc"))
    }

    /// The lock of entry `key`, held while it is filled: taken after the
    /// fill that holds it ends, when the entry is in place to reuse.
    pub fn lock(&self, key: &str) -> Result<crate::lock::Lock> {
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        crate::lock::lock(&self.root.join(format!(".{key}.lock")))
    }

    /// The entry `key` of cut `cut` if it exists and is intact. A corrupt
    /// entry (or one whose header names another key or cut) is reported on
    /// stderr, removed, and treated as missing so it is rebuilt.
    pub fn open(&self, key: &str, cut: usize) -> Result<Option<Reader>> {
        let path = self.path(key);
        if !path.exists() {
            return Ok(None);
        }
        let opened = self.reader(&path).and_then(|r| match r.header.cut == cut {
            true => r.check_frames().map(|_| r),
            false => Err(Error::CacheCorrupt {
                path: path.clone(),
                msg: format!("holds cut {}, not cut {cut}", r.header.cut),
            }),
        });
        match opened {
            Ok(r) => {
                // The modification time records use, for LRU eviction.
                let _ = std::fs::File::options()
                    .append(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(SystemTime::now()));
                Ok(Some(r))
            }
            Err(e @ Error::CacheCorrupt { .. }) => {
                eprintln!("faultsweep: warning: {e}; rebuilding it");
                remove_if_present(&path)?;
                Ok(None)
            }
            // Removed by another process that found it corrupt.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The small file `key.EXT` beside the entries (the golden results of a
    /// data set), if it exists and its checksum holds; a damaged one is
    /// reported on stderr, removed, and treated as missing.
    pub fn read_small(&self, key: &str, ext: &str) -> Result<Option<Vec<u8>>> {
        let path = self.root.join(format!("{key}.{ext}"));
        let mut bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let body = bytes.len().saturating_sub(4);
        let crc = bytes
            .get(body..)
            .and_then(|c| c.try_into().ok())
            .map(u32::from_le_bytes);
        if crc != Some(crc32fast::hash(&bytes[..body])) {
            eprintln!(
                "faultsweep: warning: {}: checksum mismatch; rebuilding it",
                path.display()
            );
            remove_if_present(&path)?;
            return Ok(None);
        }
        bytes.truncate(body);
        Ok(Some(bytes))
    }

    /// Writes `key.EXT` with a CRC32, atomically (a temporary file renamed).
    pub fn write_small(&self, key: &str, ext: &str, bytes: &[u8]) -> Result<()> {
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let path = self.root.join(format!("{key}.{ext}"));
        let temp = (self.root).join(format!(".{key}.{ext}.{}.tmp", crate::temps::tag()));
        let mut body = bytes.to_vec();
        body.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
        std::fs::write(&temp, &body)
            .and_then(|()| std::fs::rename(&temp, &path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                Error::io(&path, e)
            })
    }

    /// The temporary files under the root: entries and small files being
    /// written, or left by a process that was killed.
    pub fn temporaries(&self) -> Result<Vec<Temporary>> {
        crate::temps::temporaries(&self.root)
    }

    /// Removes the temporaries whose writer is gone (never one of a running
    /// process); returns them.
    pub fn remove_stale(&self) -> Result<Vec<Temporary>> {
        let mut removed = Vec::new();
        for t in self.temporaries()?.into_iter().filter(Temporary::stale) {
            match std::fs::remove_file(&t.path) {
                Ok(()) => removed.push(t),
                // Another process cleaning at the same time.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&t.path, e)),
            }
        }
        Ok(removed)
    }

    /// The small files (golden results, cost models, entries' locks) under
    /// the root.
    pub fn small_files(&self) -> Result<Vec<PathBuf>> {
        let mut files = self.files_ending("golden")?;
        files.extend(self.files_ending("costs")?);
        files.extend(self.files_ending("lock")?);
        Ok(files)
    }

    /// Every entry file under the root, opened (or the error that opening gave).
    pub fn entries(&self) -> Result<Vec<(PathBuf, Result<Reader>)>> {
        let paths = self.files_ending("fsc")?;
        Ok(paths
            .into_iter()
            .map(|p| (p.clone(), Reader::open(&p)))
            .collect())
    }

    /// The files under the root with extension `ext`, sorted (none when
    /// the root does not exist yet).
    fn files_ending(&self, ext: &str) -> Result<Vec<PathBuf>> {
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(&self.root) {
            Ok(d) => d
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
            Err(e) => return Err(Error::io(&self.root, e)),
        };
        paths.sort();
        Ok(paths)
    }

    /// Entries whose key starts with `prefix`.
    pub fn matching(&self, prefix: &str) -> Result<Vec<PathBuf>> {
        Ok(self
            .entries()?
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| {
                p.file_stem()
                    .is_some_and(|s| s.to_string_lossy().starts_with(prefix))
            })
            .collect())
    }

    /// Removes least recently used entries until the total fits the budget.
    /// Returns the removed paths.
    pub fn evict(&self, keep: &[PathBuf]) -> Result<Vec<PathBuf>> {
        let Some(budget) = self.budget_bytes else {
            return Ok(vec![]);
        };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = self
            .entries()?
            .into_iter()
            .filter_map(|(p, _)| {
                let m = std::fs::metadata(&p).ok()?;
                Some((m.modified().ok()?, m.len(), p))
            })
            .collect();
        files.sort();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        let mut removed = Vec::new();
        for (_, len, path) in files {
            if total <= budget {
                break;
            }
            if keep.contains(&path) {
                continue;
            }
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            total -= len;
            removed.push(path);
        }
        Ok(removed)
    }
}
