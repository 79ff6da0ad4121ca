//! The `palisade` binary: parses the command line and hands over to `cli`.

mod cli;

use clap::Parser as _;
use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("palisade: error: {e:#}");
            std::process::exit(1);
        }
    }
}
