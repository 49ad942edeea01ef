//! Threads: libtorch's intra-op thread count, set for a scope and put back
//! ([`Threads`]), and the split of a kernel's work over that many threads
//! (`on_threads`) with the output they write (`Out`).
//!
//! What libtorch's thread count is: `at::set_num_threads` (which
//! `tch::set_num_threads` calls), with the OpenMP backend of the libtorch
//! wheels, sets the *calling thread's* OpenMP thread count (an OpenMP
//! per-thread setting), MKL's thread count, and a process-wide value that a
//! thread adopts on its first parallel libtorch op; `tch::get_num_threads`
//! reads the calling thread's. So a count set on one thread does not change
//! the parallel ops another thread is running, but does change the count a
//! new thread starts with. The kernels here (and MKL, with `MKL_DYNAMIC`
//! false) read it at each call.

use std::ops::Range;

use rayon::prelude::*;

/// libtorch's intra-op thread count set to a value for as long as this
/// guard lives; dropping it (also on unwinding) sets back the count the
/// calling thread had before. Drop it on the thread that made it.
#[must_use = "the count is put back when the guard drops"]
pub struct Threads {
    before: i32,
}

impl Threads {
    /// Sets libtorch's thread count to `n` (at least 1) until the guard drops.
    pub fn set(n: i32) -> Threads {
        let before = tch::get_num_threads();
        tch::set_num_threads(n.max(1));
        Threads { before }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        tch::set_num_threads(self.before);
    }
}

/// `f` run with libtorch's thread count set to `n`, then put back (also
/// when `f` panics).
pub fn with_threads<T>(n: i32, f: impl FnOnce() -> T) -> T {
    let _guard = Threads::set(n);
    f()
}

/// An output's storage, written by several threads at disjoint elements.
#[derive(Clone, Copy)]
pub(super) struct Out(pub *mut f32);

// SAFETY: `Out` is a pointer into a tensor that its creator keeps alive
// until the threads have joined, and each thread writes elements no other
// thread reads or writes (stated at every `on_threads` call).
unsafe impl Send for Out {}
// SAFETY: as for `Send`: shared, it is only a pointer to disjoint parts.
unsafe impl Sync for Out {}

impl Out {
    /// The storage of an output just created, seen as `values`.
    pub fn new(values: &mut [f32]) -> Self {
        Out(values.as_mut_ptr())
    }
}

/// `work` on `0..count` cut into one contiguous range per libtorch intra-op
/// thread (on this thread alone when there is one).
pub(super) fn on_threads(count: usize, work: impl Fn(Range<usize>) + Sync) {
    let threads = (tch::get_num_threads().max(1) as usize).min(count);
    if threads <= 1 {
        return work(0..count);
    }
    let per_thread = count.div_ceil(threads);
    (0..threads)
        .into_par_iter()
        .for_each(|t| work(t * per_thread..count.min((t + 1) * per_thread)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_comes_back_after_a_panic() {
        let before = tch::get_num_threads();
        let other = if before == 1 { 2 } else { 1 };
        let caught = std::panic::catch_unwind(|| {
            with_threads(other, || {
                assert_eq!(tch::get_num_threads(), other);
                panic!("inside");
            })
        });
        assert!(caught.is_err());
        assert_eq!(tch::get_num_threads(), before);
    }
}
