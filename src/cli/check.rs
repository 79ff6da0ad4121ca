//! `palisade check containers`: the container posture checks of
//! `posture::containers`, as text or JSON, with an exit code for scripts. With a
//! configuration the findings are also stored as detections, so `status` lists them.

use std::path::Path;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use palisade::detect::{Detection, Level};
use palisade::posture::containers::{self, CheckOptions, Finding};
use palisade::store::{Batch, Store};

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Check running containers for what widens the path to the host: privileged
    /// mode, the Docker socket, added capabilities, host namespaces, root, writable
    /// root filesystems, ports on every interface, image vulnerabilities (trivy).
    Containers(ContainersArgs),
}

#[derive(Debug, Args)]
pub struct ContainersArgs {
    /// JSON on stdout (an array of findings).
    #[arg(long)]
    pub json: bool,
    /// Only this container (name or id); repeat for more. Default: all running.
    #[arg(long = "container", value_name = "NAME")]
    pub containers: Vec<String>,
    /// Skip the image vulnerability scan (trivy).
    #[arg(long)]
    pub no_images: bool,
    /// Exit with code 3 when a finding at or above this level exists.
    #[arg(long, value_name = "LEVEL", default_value = "high", value_parser = parse_level)]
    pub fail_on: Level,
}

fn parse_level(s: &str) -> Result<Level, String> {
    Level::parse(s)
        .ok_or_else(|| format!("not a level: {s:?} (informational, low, medium, high, critical)"))
}

pub fn run(cmd: CheckCommand, config_path: Option<&Path>, _color: bool) -> Result<i32> {
    match cmd {
        CheckCommand::Containers(args) => containers_cmd(args, config_path),
    }
}

fn containers_cmd(args: ContainersArgs, config_path: Option<&Path>) -> Result<i32> {
    let config = super::load_config(config_path)?;
    let api = super::docker_api(&config)?;
    let opts = CheckOptions {
        containers: args.containers.clone(),
        skip_images: args.no_images,
        trivy: None,
    };
    let findings = containers::check(&api, &opts).context("checking containers")?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&containers::to_json(&findings))?
        );
    } else {
        print!("{}", containers::render_text(&findings));
    }
    if config_path.is_some() {
        store_findings(&config.store.path, &findings)?;
    }
    let failing = findings.iter().any(|f| f.level >= args.fail_on);
    Ok(if failing { super::EXIT_DETECTIONS } else { 0 })
}

/// Stores the findings as detections (the same ones `watch` would raise).
fn store_findings(path: &Path, findings: &[Finding]) -> Result<()> {
    let now = jiff::Timestamp::now();
    let detections: Vec<Detection> = findings.iter().map(|f| f.to_detection(now)).collect();
    let mut store =
        Store::open(path).with_context(|| format!("opening store {}", path.display()))?;
    let batch = Batch {
        detections: &detections,
        checkpoints: &[],
        counters: &[],
    };
    store
        .commit(&batch)
        .with_context(|| format!("storing findings in {}", path.display()))
}
