//! The `faultsweep` binary: parse the command line, run, map errors to the
//! documented exit codes (docs/commands.md, "Exit codes"). The command
//! line ([`cli`]: clap, progress bars) lives here, not in the library.

use clap::Parser;

mod cli;

/// jemalloc serves every allocation of the process, libtorch's too. The
/// engine allocates and frees tensors of tens of megabytes at every node,
/// in sizes that change as rows join and leave its batches; glibc's heap
/// fragmented to about three times the memory in use, and each fresh page
/// costs a fault. jemalloc's size classes keep the heap near its use.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options (read at its start; `MALLOC_CONF` in the environment
/// overrides them): freed pages are never returned to the kernel, whose
/// faults cost 3 to 5 µs a page here; resident memory stays at its peak,
/// which it reaches anyway.
#[cfg(not(target_env = "msvc"))]
#[export_name = "malloc_conf"]
pub static MALLOC_CONF: &[u8; 36] = b"dirty_decay_ms:-1,muzzy_decay_ms:-1\0";

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
    let cli = cli::Cli::parse();
    if let Err(e) = cli::run(cli) {
        if !matches!(e, faultsweep::Error::StdoutClosed) {
            eprintln!("faultsweep: error: {e}");
        }
        std::process::exit(e.exit_code());
    }
}
