//! `palisade scan`: the pipeline over files already written (replay, backtest, "what
//! would have fired"), with the same verdicts as `watch` on the same lines.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use palisade::config::{Config, ParserConfig, SourceConfig};
use palisade::detect::sigma::RuleSet;
use palisade::detect::{Detection, DetectionState, Level};
use palisade::pipeline::Pipeline;
use palisade::sources::Line;
use palisade::sources::file::{self, ReadOptions};
use palisade::store::{Batch, Store};

use super::output::DetectionPrinter;
use super::{EXIT_DETECTIONS, Format};

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or globs to scan (`.gz` is read transparently; `-` is stdin). Without
    /// paths, every source in the configuration is scanned.
    pub paths: Vec<String>,
    /// Format of the files given on the command line.
    #[arg(short, long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    /// nginx `log_format`: `combined`, `main`, or the format string from nginx.conf.
    #[arg(
        long = "nginx-format",
        value_name = "LOG_FORMAT",
        default_value = "combined"
    )]
    pub nginx_format: String,
    /// Time zone for timestamps written without an offset (IANA name).
    #[arg(long)]
    pub timezone: Option<String>,
    /// Proxy whose X-Forwarded-For is believed (CIDR; repeatable).
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Extra folder of Sigma rules (repeatable).
    #[arg(long = "rules", value_name = "DIR")]
    pub rule_dirs: Vec<PathBuf>,
    /// One JSON object per detection on stdout.
    #[arg(long)]
    pub json: bool,
    /// Only report detections at or above this level.
    #[arg(long, value_parser = parse_level, default_value = "informational")]
    pub min_level: Level,
    /// Exit with code 3 when a detection at or above this level is found.
    #[arg(long, value_parser = parse_level)]
    pub fail_on: Option<Level>,
    /// Record detections in this SQLite store (default: the configured store when a
    /// config file is given, otherwise none).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Do not write to any store.
    #[arg(long, conflicts_with = "store")]
    pub no_store: bool,
    /// Cut lines longer than this many bytes (and count them).
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_line_bytes: usize,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

pub fn parse_level(s: &str) -> Result<Level, String> {
    Level::parse(s).ok_or_else(|| {
        format!("unknown level {s:?}; use informational, low, medium, high or critical")
    })
}

/// What one scan did, for the closing summary.
#[derive(Debug, Default, serde::Serialize)]
pub struct ScanSummary {
    pub lines: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub detections: u64,
    pub max_level: Option<Level>,
}

pub fn run(args: ScanArgs, config_path: Option<&Path>, color: bool) -> Result<i32> {
    let mut config = super::load_config(config_path)?;
    config
        .network
        .trusted_proxies
        .extend(args.trusted_proxies.iter().copied());
    config.rules.dirs.extend(args.rule_dirs.iter().cloned());
    let sources = resolve_sources(&args, &config)?;
    let store_path = match (&args.store, args.no_store, config_path) {
        (_, true, _) => None,
        (Some(p), _, _) => Some(p.clone()),
        (None, false, Some(_)) => Some(config.store.path.clone()),
        (None, false, None) => None,
    };
    let summary = scan_sources(&config, &sources, &args, store_path.as_deref(), color)?;
    let failed = args
        .fail_on
        .is_some_and(|lvl| summary.max_level.is_some_and(|m| m >= lvl));
    Ok(if failed { EXIT_DETECTIONS } else { 0 })
}

/// One file to read with the source settings that apply to it.
pub struct ScanInput {
    pub path: PathBuf,
    pub source: SourceConfig,
}

fn resolve_sources(args: &ScanArgs, config: &Config) -> Result<Vec<ScanInput>> {
    let mut inputs = Vec::new();
    if args.paths.is_empty() {
        if config.sources.is_empty() {
            bail!("nothing to scan: give files on the command line or sources in a config (-c)");
        }
        for source in &config.sources {
            for path in expand(&source.path)? {
                inputs.push(ScanInput {
                    path,
                    source: source.clone(),
                });
            }
        }
        return Ok(inputs);
    }
    for pattern in &args.paths {
        for path in expand(pattern)? {
            let source = SourceConfig {
                name: path.to_string_lossy().into_owned(),
                path: path.to_string_lossy().into_owned(),
                parser: args.format.parser(&args.nginx_format),
                timezone: args.timezone.clone(),
                max_line_bytes: args.max_line_bytes,
                multiline: false,
            };
            inputs.push(ScanInput { path, source });
        }
    }
    Ok(inputs)
}

fn expand(pattern: &str) -> Result<Vec<PathBuf>> {
    if pattern == "-" {
        return Ok(vec![PathBuf::from("-")]);
    }
    let paths = file::expand_paths(pattern).with_context(|| format!("reading {pattern}"))?;
    if paths.is_empty() {
        bail!("{pattern}: no such file (check the path or glob)");
    }
    Ok(paths)
}

/// Picks a parser for a file from its first lines when the format is `auto`.
fn sniff(input: &ScanInput, config: &Config) -> Result<ParserConfig> {
    if input.source.parser != ParserConfig::Auto || input.path.as_os_str() == "-" {
        return Ok(input.source.parser.clone());
    }
    let mut head: Vec<Line> = Vec::new();
    let opts = ReadOptions {
        max_line_bytes: input.source.max_line_bytes,
        ..Default::default()
    };
    let name: Arc<str> = Arc::from("sniff");
    file::read_lines(&name, &input.path, &opts, |line| {
        if !line.text.trim().is_empty() {
            head.push(line.clone());
        }
        if head.len() >= 50 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .with_context(|| format!("reading {}", input.path.display()))?;
    Ok(palisade::parse::sniff(&head, &config.network).unwrap_or(ParserConfig::Auto))
}

pub fn scan_sources(
    config: &Config,
    inputs: &[ScanInput],
    args: &ScanArgs,
    store_path: Option<&Path>,
    color: bool,
) -> Result<ScanSummary> {
    let rules = Arc::new(RuleSet::load(&config.rules).context("loading rules")?);
    let mut pipeline = Pipeline::new(
        &Config {
            sources: vec![],
            ..config.clone()
        },
        rules,
        None,
    )?;
    let mut store = match store_path {
        Some(p) => Some(Store::open(p).with_context(|| format!("opening store {}", p.display()))?),
        None => None,
    };
    let mut printer = DetectionPrinter::new(args.json, color);
    let progress = progress_bar(inputs, args.no_progress);
    let progress_counter = progress
        .as_ref()
        .map(|_| Arc::new(std::sync::atomic::AtomicU64::new(0)));
    let started = Instant::now();
    let mut summary = ScanSummary::default();
    let mut out: Vec<Detection> = Vec::new();
    let mut closed: Vec<Detection> = Vec::new();

    let mut unreadable: Vec<String> = Vec::new();
    for input in inputs {
        let mut source = input.source.clone();
        source.parser = match sniff(input, config) {
            Ok(p) => p,
            Err(e) => {
                // One unreadable file must not cost the results of the others.
                tracing::error!("{e:#}; skipping this file");
                unreadable.push(input.path.display().to_string());
                continue;
            }
        };
        let idx = pipeline.add_source(&source, config)?;
        let name = pipeline.source_name(idx).clone();
        let opts = ReadOptions {
            max_line_bytes: source.max_line_bytes,
            progress: progress_counter.clone(),
        };
        let mut n: u64 = 0;
        let stats = file::read_lines(&name, &input.path, &opts, |line| {
            pipeline.process_line(idx, line, &mut out);
            n += 1;
            if n.is_multiple_of(8192) {
                pipeline.advance_to_clock(&mut out);
                if let (Some(pb), Some(c)) = (&progress, &progress_counter) {
                    pb.set_position(c.load(std::sync::atomic::Ordering::Relaxed));
                }
            }
            if out.len() > 256 {
                emit(&mut out, &mut closed, args, &mut printer, &mut summary);
            }
            ControlFlow::Continue(())
        })
        .with_context(|| format!("reading {}", input.path.display()));
        pipeline.flush_source(idx, &mut out);
        let stats = match stats {
            Ok(stats) => stats,
            Err(e) => {
                tracing::error!("{e:#}; the lines read before the error were processed");
                unreadable.push(input.path.display().to_string());
                continue;
            }
        };
        summary.lines += stats.lines;
        summary.bytes += stats.bytes;
        if let Some(s) = &mut store {
            emit(&mut out, &mut closed, args, &mut printer, &mut summary);
            let counters = pipeline.drain_counters();
            let batch = Batch {
                detections: &closed,
                checkpoints: &[],
                counters: &counters,
            };
            s.commit(&batch).context("storing detections")?;
            closed.clear();
        }
    }
    pipeline.finish(&mut out);
    emit(&mut out, &mut closed, args, &mut printer, &mut summary);
    if let Some(s) = &mut store {
        let counters = pipeline.drain_counters();
        let batch = Batch {
            detections: &closed,
            checkpoints: &[],
            counters: &counters,
        };
        s.commit(&batch).context("storing detections")?;
    }
    printer.flush();
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    summary.seconds = started.elapsed().as_secs_f64();
    report_summary(&summary, &pipeline);
    if !unreadable.is_empty() {
        anyhow::bail!(
            "could not read {} of {} inputs: {} (the others were scanned; see above)",
            unreadable.len(),
            inputs.len(),
            unreadable.join(", ")
        );
    }
    Ok(summary)
}

/// Prints the closed detections (final counts) and keeps them for the store.
fn emit(
    out: &mut Vec<Detection>,
    closed: &mut Vec<Detection>,
    args: &ScanArgs,
    printer: &mut DetectionPrinter,
    summary: &mut ScanSummary,
) {
    for d in out.drain(..) {
        if d.state != DetectionState::Closed || d.rule.level < args.min_level {
            continue;
        }
        summary.detections += 1;
        summary.max_level = summary.max_level.max(Some(d.rule.level));
        printer.print(&d);
        closed.push(d);
    }
}

fn progress_bar(inputs: &[ScanInput], disabled: bool) -> Option<ProgressBar> {
    if disabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let total: u64 = inputs
        .iter()
        .filter_map(|i| std::fs::metadata(&i.path).ok())
        .map(|m| m.len())
        .sum();
    let pb = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{spinner} scanning [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    )
    .map(|s| s.progress_chars("=> "));
    if let Ok(style) = style {
        pb.set_style(style);
    }
    Some(pb)
}

fn report_summary(summary: &ScanSummary, pipeline: &Pipeline) {
    let rate = summary.lines as f64 / summary.seconds.max(1e-9);
    let mut text = format!(
        "scanned {} lines ({:.1} MB) in {:.2} s ({:.0} lines/s): {} detections",
        summary.lines,
        summary.bytes as f64 / 1e6,
        summary.seconds,
        rate,
        summary.detections
    );
    for (name, s) in pipeline.source_stats() {
        text.push_str(&format!(
            "\n  {name}: {} lines, {} events, {} unparsed, {} truncated, {} allowlisted",
            s.lines, s.events, s.failed, s.truncated, s.allowlisted
        ));
        for (reason, n) in &s.failed_by_reason {
            text.push_str(&format!(" [{reason}: {n}]"));
        }
    }
    let evicted: u64 = pipeline
        .engine()
        .stats()
        .rules
        .iter()
        .map(|r| r.evicted_keys)
        .sum();
    if evicted > 0 {
        text.push_str(&format!(
            "\n  {evicted} keys evicted from windows (memory ceiling)"
        ));
    }
    // On stderr in both modes: with `--json` stdout carries only the detections, and
    // the counts (lines, unparsed, truncated) are what tells a user the scan read
    // everything; at the default log level a tracing line would not be shown.
    eprintln!("{text}");
}
