//! Where a campaign's time goes: seconds per phase, summed over the
//! threads that ran it, for `faultsweep run --timings` and the benchmarks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A phase of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The fault-free pass over the data set (with the cache fill).
    Golden,
    /// Cached frontiers read for the injections.
    Reading,
    /// Frontiers recomputed (cut plan, or no cache: from the input).
    Recomputing,
    /// The injections' batches, reading and recomputing included.
    Injections,
    /// Rows and summaries written.
    Writing,
}

impl Phase {
    /// Every phase, in the order they are reported.
    pub const ALL: [Phase; 5] = [
        Phase::Golden,
        Phase::Reading,
        Phase::Recomputing,
        Phase::Injections,
        Phase::Writing,
    ];

    /// The phase's name in `--timings`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Golden => "golden pass",
            Phase::Reading => "reading frontiers",
            Phase::Recomputing => "recomputing frontiers",
            Phase::Injections => "injections",
            Phase::Writing => "writing results",
        }
    }
}

static NANOS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

/// Runs `f`, adding its time to `phase`.
pub fn timed<T>(phase: Phase, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let value = f();
    let nanos = started.elapsed().as_nanos() as u64;
    NANOS[phase as usize].fetch_add(nanos, Ordering::Relaxed);
    value
}

/// Seconds per phase so far in this process.
pub fn seconds() -> Vec<(Phase, f64)> {
    Phase::ALL
        .iter()
        .map(|&p| (p, NANOS[p as usize].load(Ordering::Relaxed) as f64 * 1e-9))
        .collect()
}
