//! The extension finds libtorch in the installed torch package beside it
//! (`site-packages/torch/lib`) without LD_LIBRARY_PATH; `faultsweep`'s
//! `__init__` imports torch first anyway, which loads the same libraries.
fn main() {
    println!("cargo:rustc-link-arg-cdylib=-Wl,-rpath,$ORIGIN/../torch/lib");
}
