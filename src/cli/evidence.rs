//! `palisade evidence`: collect a container's logs and configuration for a time window
//! into an owner-only folder with a SHA-256 manifest, and check such a folder later.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use jiff::Timestamp;

use palisade::incident::evidence::{self, Manifest};

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Write logs.jsonl, inspect.json and manifest.json (sizes and SHA-256) into a
    /// new owner-only folder.
    Collect(CollectArgs),
    /// Re-hash the files of an evidence folder against its manifest.json; exit code 1
    /// names the files that changed.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Container name or id.
    #[arg(long)]
    pub container: String,
    /// Start of the window: RFC 3339 (`2026-12-04T10:00:00Z`) or a duration back from
    /// now (`2h`).
    #[arg(long, value_parser = parse_instant)]
    pub since: Timestamp,
    /// End of the window, same forms (default: now).
    #[arg(long, value_parser = parse_instant)]
    pub until: Option<Timestamp>,
    /// Folder to create; must not hold evidence already.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An evidence folder written by `evidence collect`.
    pub dir: PathBuf,
}

/// An instant: RFC 3339, or a duration meaning that long ago.
fn parse_instant(s: &str) -> Result<Timestamp, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let ago = palisade::config::parse_duration(s)
        .ok_or_else(|| format!("not a time: {s:?} (RFC 3339 like 2026-12-04T10:00:00Z, or 2h)"))?;
    let ago = jiff::SignedDuration::try_from(ago).map_err(|e| e.to_string())?;
    Timestamp::now().checked_sub(ago).map_err(|e| e.to_string())
}

pub fn run(cmd: EvidenceCommand, config_path: Option<&Path>) -> Result<i32> {
    match cmd {
        EvidenceCommand::Collect(args) => collect(args, config_path),
        EvidenceCommand::Verify(args) => verify(&args.dir),
    }
}

fn collect(args: CollectArgs, config_path: Option<&Path>) -> Result<i32> {
    let config = super::load_config(config_path)?;
    let until = args.until.unwrap_or_else(Timestamp::now);
    if until < args.since {
        bail!("--until {until} is before --since {}", args.since);
    }
    let api = super::docker_api(&config)?;
    let m = evidence::collect_container(&api, &args.out, &args.container, args.since, until)
        .with_context(|| format!("collecting evidence of {}", args.container))?;
    println!(
        "collected {} log entries of {} ({}) into {}",
        m.log_entries,
        m.container,
        short(&m.container_id),
        args.out.display()
    );
    for f in &m.files {
        println!(
            "  {:<14} {:>10} bytes  sha256 {}",
            f.name, f.bytes, f.sha256
        );
    }
    Ok(0)
}

fn verify(dir: &Path) -> Result<i32> {
    let path = dir.join("manifest.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not an evidence manifest", path.display()))?;
    let changed =
        evidence::verify(dir, &manifest).with_context(|| format!("verifying {}", dir.display()))?;
    if !changed.is_empty() {
        bail!(
            "evidence in {} was altered: {} no longer match manifest.json",
            dir.display(),
            changed.join(", ")
        );
    }
    println!(
        "evidence OK: {} files of {} match manifest.json",
        manifest.files.len(),
        manifest.container
    );
    Ok(0)
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_rfc3339_or_durations_ago() {
        let t = parse_instant("2026-12-04T10:00:00Z").unwrap();
        assert_eq!(t.to_string(), "2026-12-04T10:00:00Z");
        let ago = parse_instant("2h").unwrap();
        let diff = Timestamp::now().as_second() - ago.as_second();
        assert!((7199..=7201).contains(&diff), "{diff}");
        assert!(parse_instant("yesterday").is_err());
    }
}
