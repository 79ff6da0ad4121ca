//! `palisade eval`: detection quality on labelled corpora, palisade beside the
//! runbook's grep patterns.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The corpus folder (default: $PALISADE_CORPUS, else ../shared/corpus).
    #[arg(long, env = "PALISADE_CORPUS")]
    pub corpus: Option<PathBuf>,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Include every missed case in the output.
    #[arg(long)]
    pub misses: bool,
}

pub fn run(args: EvalArgs, config_path: Option<&Path>) -> Result<i32> {
    let config = super::load_config(config_path)?;
    let corpus = args
        .corpus
        .unwrap_or_else(|| PathBuf::from("../shared/corpus"));
    let report = palisade::eval::evaluate(&corpus, &config, args.misses)
        .with_context(|| format!("evaluating on {}", corpus.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(0)
}
