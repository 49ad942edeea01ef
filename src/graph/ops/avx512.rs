//! What the Rust AVX-512 kernels ([`super::pointwise`], [`super::depthwise`])
//! share: the CPU check, the float32 views of their tensors, the output
//! handed to threads, and the split of their work over libtorch's intra-op
//! threads.

use std::ops::Range;
use std::sync::LazyLock;

use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

/// The environment variable that turns the AVX-512 kernels off when set to
/// `off`: the machine then runs the code a CPU without AVX-512 runs.
pub const SWITCH: &str = "FAULTSWEEP_AVX512";

/// Whether this CPU runs the kernels, and `FAULTSWEEP_AVX512` allows it.
pub fn available() -> bool {
    static AVAILABLE: LazyLock<bool> = LazyLock::new(|| {
        let allowed = std::env::var(SWITCH).map_or(true, |v| v != "off");
        #[cfg(target_arch = "x86_64")]
        return allowed && std::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        return false;
    });
    *AVAILABLE
}

/// Whether every tensor given is float32 on the CPU.
pub(super) fn float_cpu(tensors: &[Option<&Tensor>]) -> bool {
    tensors
        .iter()
        .flatten()
        .all(|t| t.kind() == Kind::Float && t.device() == Device::Cpu)
}

/// The values of a tensor as a slice.
///
/// SAFETY: `t` is a contiguous float32 CPU tensor, which outlives the
/// slice and nothing writes while it is read.
pub(super) unsafe fn floats(t: &Tensor) -> &[f32] {
    std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel())
}

/// The values of a tensor as a mutable slice.
///
/// SAFETY: `t` is a contiguous float32 CPU tensor that outlives the slice,
/// and nothing else reads or writes it meanwhile.
#[allow(clippy::mut_from_ref)]
pub(super) unsafe fn floats_mut(t: &Tensor) -> &mut [f32] {
    std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, t.numel())
}

/// An output's storage, written by several threads at disjoint elements.
#[derive(Clone, Copy)]
pub(super) struct Out(pub *mut f32);
// SAFETY: each thread writes its own elements (see `on_threads`' callers).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The storage of a float32 tensor just created for the output.
    pub fn of(y: &Tensor) -> Self {
        Out(y.data_ptr() as *mut f32)
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
