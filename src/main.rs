//! The `faultsweep` binary: parse the command line, run, map errors to the
//! documented exit codes (README, "Exit codes").

use clap::Parser;

fn main() {
    let cli = faultsweep::cli::Cli::parse();
    if let Err(e) = faultsweep::cli::run(cli) {
        eprintln!("faultsweep: error: {e}");
        std::process::exit(e.exit_code());
    }
}
