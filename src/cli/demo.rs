//! `palisade demo`: writes the bundled sample of the reference stack and scans it, so a
//! fresh clone shows real detections with nothing else set up.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::Format;
use super::scan::{self, ScanArgs};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the sample logs, its config and its store.
    #[arg(long, default_value = "sample")]
    pub dir: PathBuf,
    /// Seed for the generator (the same seed writes the same bytes).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Benign access-log lines to generate around the attacks.
    #[arg(long, default_value_t = 20_000)]
    pub lines: usize,
    /// One JSON object per detection on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DemoArgs, color: bool) -> Result<i32> {
    let summary = palisade::sample::generate(&args.dir, args.seed, args.lines)
        .with_context(|| format!("writing the sample into {}", args.dir.display()))?;
    eprintln!(
        "wrote the sample into {}: nginx access {} lines, error {} lines, backend {} lines, security.log {} lines",
        args.dir.display(),
        summary.access_lines,
        summary.error_lines,
        summary.backend_lines,
        summary.security_lines
    );
    eprintln!("attackers hidden in it:");
    for (ip, what) in &summary.attackers {
        eprintln!("  {ip:<16} {what}");
    }
    eprintln!();
    let config_path = args.dir.join("palisade.toml");
    let db = args.dir.join("palisade.db");
    let _ = std::fs::remove_file(&db);
    let scan_args = ScanArgs {
        paths: vec![],
        format: Format::Auto,
        nginx_format: "combined".into(),
        timezone: None,
        trusted_proxies: vec![],
        rule_dirs: vec![],
        json: args.json,
        min_level: palisade::detect::Level::Informational,
        fail_on: None,
        store: None,
        no_store: false,
        max_line_bytes: 64 * 1024,
        no_progress: true,
    };
    let code = scan::run(scan_args, Some(&config_path), color)?;
    eprintln!(
        "\nnext: `palisade -c {} status --at 2026-11-20T14:00:00Z --window 6h` for the runbook's quick assessment",
        config_path.display()
    );
    Ok(code)
}
