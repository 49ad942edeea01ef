//! Every piece of raw-pointer and foreign-function code in the crate, behind
//! safe functions: the float32 kernels that give libtorch's exact bits
//! faster than libtorch (1x1 and depthwise convolutions with AVX-512,
//! fused multiply-add chains for products, the regional boxes' depthwise
//! kernel), the byte views of tensors, libtorch's thread count and the
//! process's CPU clock. The rest of the crate calls only safe functions
//! from here; `unsafe` appears nowhere else.
//!
//! # Safety contract
//!
//! - **Storage is shared behind Rust's back.** A [`tch::Tensor`] is a handle;
//!   views, `shallow_clone` and in-place libtorch ops share its storage with
//!   other handles that the borrow checker does not see. So the views of
//!   [`views`] (slices into a tensor's storage) rely on one rule that the
//!   crate keeps: *a view is dropped before the storage it covers is
//!   written by any other handle* (an in-place libtorch op, or
//!   [`views::replace_float`]), and a tensor being written is not read on
//!   another thread meanwhile. Views are short-lived (within one function)
//!   for that reason. A view for writing ([`views::floats_mut`],
//!   [`views::cpu_bytes_mut`]) takes `&mut Tensor` and is taken only of a
//!   tensor its caller has just created, which no other handle shares.
//! - **Writes to a fresh output from several threads** go through
//!   `threads::Out`, a raw pointer into a tensor's storage; each thread
//!   writes elements no other thread touches (every caller states which),
//!   and the tensor is returned only after the threads have joined.
//! - **CPU features**: a function compiled with `#[target_feature]` runs
//!   only after the feature was detected at run time ([`cpu`]); the
//!   AVX-512 kernels exist only on x86-64 (module-level `cfg`), elsewhere
//!   a portable module declines every call and libtorch runs it.
//! - Inside this module a function whose caller must keep a promise is an
//!   `unsafe fn` with a `# Safety` section, and every `unsafe` block says
//!   in a `// SAFETY:` comment why that promise holds (enforced by the
//!   `[lints]` table of `Cargo.toml`).
//!
//! Exactness: every kernel here computes each output as one chain of fused
//! multiply-adds in a fixed order, so its bits depend on its inputs alone,
//! not on the batch, the box or the thread count (see each module).

pub mod boxes;
pub mod chain;
pub mod clock;
pub mod cpu;
pub mod threads;
pub mod views;

/// The AVX-512 kernels, on x86-64.
#[cfg(target_arch = "x86_64")]
mod avx512;
/// Off x86-64, the same functions declining every call.
#[cfg(not(target_arch = "x86_64"))]
#[path = "portable.rs"]
mod avx512;

pub use avx512::{depthwise, pointwise};
