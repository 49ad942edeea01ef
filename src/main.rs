//! The `faultsweep` binary: parse the command line, run, map errors to the
//! documented exit codes (README, "Exit codes").

use clap::Parser;

fn main() {
    // MKL reads this when libtorch first calls it: keep its thread count
    // fixed whatever the load, so that results repeat bit for bit.
    if std::env::var_os("MKL_DYNAMIC").is_none() {
        std::env::set_var("MKL_DYNAMIC", "FALSE");
    }
    // oneDNN compiles a kernel per convolution shape and keeps 1,024; the
    // engine's regional rows convolve boxes of thousands of shapes, and
    // recompiling the ones it evicted cost 8% of a MobileNetV2 campaign.
    if std::env::var_os("ONEDNN_PRIMITIVE_CACHE_CAPACITY").is_none() {
        std::env::set_var("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16384");
    }
    faultsweep::memory::keep_freed_memory();
    let cli = faultsweep::cli::Cli::parse();
    if let Err(e) = faultsweep::cli::run(cli) {
        eprintln!("faultsweep: error: {e}");
        std::process::exit(e.exit_code());
    }
}
