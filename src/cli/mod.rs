//! The command line: one file per subcommand; this file holds the argument model and
//! the plumbing they share (config loading, logging, output style).

pub mod ban;
pub mod check;
pub mod config;
pub mod container;
pub mod demo;
pub mod eval;
pub mod evidence;
pub mod output;
pub mod rules;
pub mod scan;
pub mod status;
pub mod watch;
pub mod watch_docker;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use palisade::config::{Config, ParserConfig};

/// Exit code when `--fail-on` finds a detection at or above the level.
pub const EXIT_DETECTIONS: i32 = 3;

/// palisade watches a web stack's logs, catches attacks as they happen, answers them
/// and keeps a clean record.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML). Paths inside it are relative to its folder.
    #[arg(short, long, global = true, env = "PALISADE_CONFIG")]
    pub config: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace); logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors in the log output.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Colour on the terminal: auto (when stdout is a terminal), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the bundled sample of the reference stack and scan it: the quickest way
    /// to see palisade work.
    Demo(demo::DemoArgs),
    /// Run the detection pipeline over files already written (or stdin: `-`).
    Scan(scan::ScanArgs),
    /// Follow the configured sources live: detect, store, serve metrics.
    Watch(watch::WatchArgs),
    /// The quick assessment from the store: failed logins, top offenders, detections.
    Status(status::StatusArgs),
    /// List the rules, or test which rules a log line triggers and why.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Add, remove (unban) and list bans by hand.
    #[command(subcommand)]
    Ban(ban::BanCommand),
    /// Show the effective configuration or write a starting one.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Measure detection quality on labelled corpora, side by side with the runbook's
    /// grep patterns.
    Eval(eval::EvalArgs),
    /// Posture checks: `check containers` (privileged, Docker socket, root, ...).
    #[command(subcommand)]
    Check(check::CheckCommand),
    /// Pause, stop, isolate or restore a container by hand, with a recorded reason.
    #[command(subcommand)]
    Container(container::ContainerCommand),
    /// Collect a container's logs and configuration with SHA-256 hashes, or verify them.
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
}

/// Input formats selectable on the command line.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// Detect per file from its first lines.
    Auto,
    /// nginx access log (see --nginx-format).
    Nginx,
    /// nginx error.log.
    NginxError,
    /// JSON lines (default field mapping).
    Json,
    /// The reference backend's stdout (docker logs prompt-backend).
    Backend,
    /// The reference backend's security.log.
    SecurityLog,
    /// journalctl -o json.
    Journal,
}

impl Format {
    /// The parser configuration this format stands for.
    pub fn parser(self, log_format: &str) -> ParserConfig {
        match self {
            Format::Auto => ParserConfig::Auto,
            Format::Nginx => ParserConfig::Nginx {
                log_format: log_format.to_string(),
            },
            Format::NginxError => ParserConfig::NginxError,
            Format::Json => ParserConfig::Json {
                fields: Default::default(),
            },
            Format::Backend => ParserConfig::Backend,
            Format::SecurityLog => ParserConfig::SecurityLog,
            Format::Journal => ParserConfig::Journal,
        }
    }
}

/// Loads the configuration (or the defaults) and makes its relative paths absolute
/// against the config file's folder.
pub fn load_config(path: Option<&Path>) -> Result<Config> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let mut config = Config::load(path)?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for source in &mut config.sources {
        if source.path != "-" && Path::new(&source.path).is_relative() {
            source.path = base.join(&source.path).to_string_lossy().into_owned();
        }
    }
    if config.store.path.is_relative() {
        config.store.path = base.join(&config.store.path);
    }
    for dir in &mut config.rules.dirs {
        if dir.is_relative() {
            *dir = base.join(&*dir);
        }
    }
    Ok(config)
}

/// A client for the Docker Engine at the configured socket (`[docker] socket`, else
/// the default), checked to answer so commands fail early with the socket's name.
pub fn docker_api(config: &Config) -> Result<palisade::sources::docker::api::DockerApi> {
    use palisade::sources::docker::api::{DEFAULT_SOCKET, DockerApi};
    let socket = config
        .docker
        .as_ref()
        .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), |d| d.socket.clone());
    let api = DockerApi::new(&socket).with_timeout(Some(std::time::Duration::from_secs(60)));
    api.ping().with_context(|| {
        format!(
            "the Docker Engine at {} does not answer; set [docker] socket in the \
             configuration if it listens elsewhere",
            socket.display()
        )
    })?;
    Ok(api)
}

/// Whether to colour stdout.
pub fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

/// Sets up `tracing` on stderr.
pub fn init_logging(global: &GlobalArgs) -> Result<()> {
    use tracing_subscriber::EnvFilter;
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("PALISADE_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("palisade={level},{level}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match global.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    }
    .map_err(|e| anyhow::anyhow!(e))
    .context("setting up logging")
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    init_logging(&cli.global)?;
    let color = use_color(cli.global.color);
    let config_path = cli.global.config.as_deref();
    match cli.command {
        Command::Demo(args) => demo::run(args, color),
        Command::Scan(args) => scan::run(args, config_path, color),
        Command::Watch(args) => watch::run(args, config_path, color),
        Command::Status(args) => status::run(args, config_path, color),
        Command::Rules(cmd) => rules::run(cmd, config_path, color),
        Command::Config(cmd) => config::run(cmd, config_path),
        Command::Ban(cmd) => ban::run(cmd, config_path),
        Command::Eval(args) => eval::run(args, config_path),
        Command::Check(cmd) => check::run(cmd, config_path, color),
        Command::Container(cmd) => container::run(cmd, config_path),
        Command::Evidence(cmd) => evidence::run(cmd, config_path),
    }
}
