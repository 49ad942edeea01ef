//! The `faultsweep` binary: parse the command line, run, map errors to the
//! documented exit codes (README, "Exit codes").

use clap::Parser;

fn main() {
    // MKL reads this when libtorch first calls it: keep its thread count
    // fixed whatever the load, so that results repeat bit for bit.
    if std::env::var_os("MKL_DYNAMIC").is_none() {
        std::env::set_var("MKL_DYNAMIC", "FALSE");
    }
    faultsweep::memory::keep_freed_memory();
    let cli = faultsweep::cli::Cli::parse();
    if let Err(e) = faultsweep::cli::run(cli) {
        eprintln!("faultsweep: error: {e}");
        std::process::exit(e.exit_code());
    }
}
