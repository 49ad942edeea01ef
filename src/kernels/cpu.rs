//! What this CPU runs: the run-time checks that every `#[target_feature]`
//! function of [`super`] relies on before it is called.

use std::sync::LazyLock;

/// The environment variable that turns the AVX-512 kernels off when set to
/// `off`: the machine then runs the code a CPU without AVX-512 runs.
pub const SWITCH: &str = "FAULTSWEEP_AVX512";

/// Whether this CPU runs AVX-512F, and `FAULTSWEEP_AVX512` allows it.
pub fn avx512() -> bool {
    static AVAILABLE: LazyLock<bool> = LazyLock::new(|| {
        let allowed = std::env::var(SWITCH).map_or(true, |v| v != "off");
        allowed && avx512f_detected()
    });
    *AVAILABLE
}

/// Whether this CPU has AVX-512F, whatever `FAULTSWEEP_AVX512` says.
pub fn avx512f_detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// Whether this CPU has AVX2 and FMA (always false off x86-64).
pub fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}
