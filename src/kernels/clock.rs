//! The process's CPU time, for benchmarks: seconds of CPU used by all of
//! its threads so far (`CLOCK_PROCESS_CPUTIME_ID`), 0 where unavailable.

/// CPU seconds this process has used, all threads (0 where unavailable).
#[cfg(target_os = "linux")]
pub fn process_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec`, which `ts` is.
    match unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } {
        0 => ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9,
        _ => 0.0,
    }
}

/// CPU seconds this process has used: not read on this system.
#[cfg(not(target_os = "linux"))]
pub fn process_cpu_secs() -> f64 {
    0.0
}
