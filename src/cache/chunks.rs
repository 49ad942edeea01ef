//! Decompressed chunks kept in memory for the readers of one [`Store`]
//! (least recently used first out, at most [`CHUNK_CACHE_BYTES`] together).
//! Input: chunks as readers decompress them, keyed by (reader, chunk).
//! Output: the same bytes when asked again. Invariants: the bytes held
//! never exceed the budget; a reader's chunks leave when the reader is
//! dropped. The cache belongs to whoever made it (a store, or one reader
//! opened on its own), not to the process: two campaigns in one process
//! neither share nor evict each other's chunks.
//!
//! [`Store`]: super::Store

use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;

/// Bytes of decompressed chunks kept for the readers of one store together.
/// Injections read a few samples at a time in no fixed order and come back
/// to the same chunks batch after batch; without it a chunk of many samples
/// is decompressed again for each.
pub const CHUNK_CACHE_BYTES: usize = 128 << 20;

/// A handle to one chunk cache; clones share it.
#[derive(Clone, Default)]
pub struct ChunkCache(Arc<Mutex<Chunks>>);

/// The chunks, unbounded in count, bounded here in bytes.
struct Chunks {
    used: usize,
    /// The id the next reader gets: keys stay apart between readers.
    next_reader: u64,
    lru: LruCache<(u64, usize), Arc<Vec<u8>>>,
}

impl Default for Chunks {
    fn default() -> Self {
        Chunks {
            used: 0,
            next_reader: 0,
            lru: LruCache::unbounded(),
        }
    }
}

impl ChunkCache {
    fn lock(&self) -> MutexGuard<'_, Chunks> {
        // A panic while holding it leaves the counts consistent (each
        // method updates them with the map), so the cache stays usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new reader's id, under which its chunks are kept.
    pub(super) fn reader(&self) -> u64 {
        let mut c = self.lock();
        c.next_reader += 1;
        c.next_reader
    }

    pub(super) fn get(&self, key: (u64, usize)) -> Option<Arc<Vec<u8>>> {
        self.lock().lru.get(&key).cloned()
    }

    /// Keeps `raw`, dropping the least recently used chunks beyond the
    /// budget (a chunk larger than the whole budget is not kept).
    pub(super) fn put(&self, key: (u64, usize), raw: Arc<Vec<u8>>) {
        if raw.len() > CHUNK_CACHE_BYTES {
            return;
        }
        let mut c = self.lock();
        c.used += raw.len();
        if let Some((_, old)) = c.lru.push(key, raw) {
            c.used -= old.len();
        }
        while c.used > CHUNK_CACHE_BYTES {
            let (_, old) = c.lru.pop_lru().expect("the cache holds what it counts");
            c.used -= old.len();
        }
    }

    /// Forgets the chunks `0..chunks` of reader `reader`.
    pub(super) fn forget(&self, reader: u64, chunks: usize) {
        let mut c = self.lock();
        for i in 0..chunks {
            if let Some(old) = c.lru.pop(&(reader, i)) {
                c.used -= old.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_drops_the_least_recently_used_chunk() {
        let cache = ChunkCache::default();
        let third = || Arc::new(vec![0u8; CHUNK_CACHE_BYTES / 3]);
        let r = cache.reader();
        for i in 0..3 {
            cache.put((r, i), third());
        }
        assert!(cache.get((r, 0)).is_some(), "touched: now the most recent");
        cache.put((r, 3), third());
        assert!(cache.get((r, 1)).is_none(), "the least recently used left");
        assert!(cache.get((r, 0)).is_some() && cache.get((r, 3)).is_some());
        cache.forget(r, 4);
        assert_eq!(cache.lock().used, 0);
        assert_eq!(cache.lock().lru.len(), 0);
    }

    #[test]
    fn a_chunk_over_the_budget_is_not_kept() {
        let cache = ChunkCache::default();
        cache.put((1, 0), Arc::new(vec![0u8; CHUNK_CACHE_BYTES + 1]));
        assert!(cache.get((1, 0)).is_none());
    }
}
