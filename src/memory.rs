//! Peak resident memory of this process (Linux), for benchmarks and the
//! flat-memory checks: read VmHWM, and reset it between phases.

/// Peak resident set size in bytes since start or the last reset (0 where
/// /proc is unavailable).
pub fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Resets the peak to the current resident size (writes 5 to clear_refs).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Keeps freed memory in the process instead of returning it to the kernel,
/// for a program using this library with glibc's malloc (the `faultsweep`
/// binary allocates with jemalloc instead, configured alike in `main.rs`).
/// A batch allocates and frees activations of tens of megabytes at every
/// node; glibc serves those with fresh `mmap`s whose pages the kernel must
/// fault in and zero each time, which cost a fifth of the engine's time.
/// Resident memory then stays at its high-water mark, which it reaches
/// anyway. And all threads share one heap: with one per worker thread, each
/// kept its own freed blocks, and the heap of MobileNetV2's uniform
/// benchmark without dropping grew to 1.8 GB instead of 1.5 GB (fresh pages
/// cost 3 to 5 µs each), 1.12x the time (session 13); the engine's few,
/// large allocations do not contend for its lock. Call once at start, before
/// other threads allocate.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_MAX: i32 = -4;
        const M_ARENA_MAX: i32 = -8;
        // SAFETY: mallopt only sets glibc allocator parameters.
        unsafe {
            mallopt(M_MMAP_MAX, 0);
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
            mallopt(M_ARENA_MAX, 1);
        }
    }
}
