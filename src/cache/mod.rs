//! The layer-split activation cache: per (model, data, preprocessing, cut),
//! the frontier tensors of every sample, zstd-compressed in chunks and read
//! with positioned reads, recently decompressed chunks kept in memory by
//! the store that opened them. Format: cache/README.md.

mod chunks;
mod format;
mod plan;
mod store;

use std::path::PathBuf;

pub use chunks::CHUNK_CACHE_BYTES;
pub use format::{sample_cost, Header, Reader, SampleCost, ValueLayout, Writer};
pub use plan::{Choice, Costs, CutCost, CutPlan};
pub use store::{key, Store, CACHE_ENV};

use serde::{Deserialize, Serialize};

/// The `cache` section of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    /// Cache root (default `cache/`; the FAULTSWEEP_CACHE environment
    /// variable and `--cache-dir` override it).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// zstd compression level.
    #[serde(default = "default_level")]
    pub zstd_level: i32,
    /// Evict least recently used entries beyond this many bytes.
    #[serde(default)]
    pub budget_bytes: Option<u64>,
    /// Whether to use the cache at all (false: recompute prefixes).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Store every cut the campaign reads, whatever the cut plan says
    /// (cache contents that do not depend on timings measured under load).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub store_every_cut: bool,
}

/// Level 1: on this project's benchmark (benches/cache.rs) higher levels
/// gain under 1% in size for activations and cost several times the write time.
fn default_level() -> i32 {
    1
}

fn default_enabled() -> bool {
    true
}

impl Default for CacheSpec {
    fn default() -> Self {
        CacheSpec {
            dir: None,
            zstd_level: default_level(),
            budget_bytes: None,
            enabled: default_enabled(),
            store_every_cut: false,
        }
    }
}
