//! `palisade status`: the runbook's quick assessment, from the store.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use jiff::Timestamp;

use palisade::store::Store;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Store to read (default: the configured one, else ./palisade.db).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Assess as of this instant (RFC 3339) instead of now, e.g. for a replayed log.
    #[arg(long)]
    pub at: Option<Timestamp>,
    /// How far back to look, e.g. `1h` (the runbook's window), `24h`.
    #[arg(long, default_value = "1h", value_parser = parse_window)]
    pub window: std::time::Duration,
    /// How many offending addresses to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn parse_window(s: &str) -> Result<std::time::Duration, String> {
    palisade::config::parse_duration(s).ok_or_else(|| format!("not a duration: {s:?} (try 1h)"))
}

pub fn run(args: StatusArgs, config_path: Option<&Path>, color: bool) -> Result<i32> {
    let config = super::load_config(config_path)?;
    let path = args.store.unwrap_or(config.store.path);
    if !path.exists() {
        anyhow::bail!(
            "no store at {}: run `palisade scan` or `palisade watch` first, or pass --store",
            path.display()
        );
    }
    let store = Store::open(&path).with_context(|| format!("opening store {}", path.display()))?;
    let now = args.at.unwrap_or_else(Timestamp::now);
    let window = jiff::SignedDuration::try_from(args.window).context("window too long")?;
    let opts = palisade::report::status::StatusOptions {
        window,
        top_ips: args.top,
    };
    let report =
        palisade::report::status::status_with(&store, now, &opts).context("reading the store")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text(color));
    }
    Ok(0)
}
