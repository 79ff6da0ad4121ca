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
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
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
    let report = palisade::report::status::status(&store, now).context("reading the store")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text(color));
    }
    Ok(0)
}
