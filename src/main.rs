//! The `palisade` binary: parses the command line and hands over to `cli`.

mod cli;

use clap::Parser as _;
// `--features system-alloc` leaves the system allocator in place, so heap profilers
// that hook malloc (valgrind's massif) can attribute memory.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("palisade: error: {}", error_chain(&e));
            std::process::exit(1);
        }
    }
}

/// The error and its causes on one line, each cause once: library errors often repeat
/// their source's text in their own message.
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
