//! The AVX-512 kernels of float32 convolutions, compiled on x86-64 only
//! (declared under `cfg(target_arch = "x86_64")` in [`super`]; elsewhere
//! `portable.rs` stands in). Each public function is safe: it checks the
//! CPU ([`super::cpu::avx512`]) and its tensors, and returns `None` where
//! it does not apply, so that libtorch computes the op.

pub mod depthwise;
pub mod pointwise;
