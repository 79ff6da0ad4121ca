//! `palisade watch`: the daemon. Follows the configured sources, runs the pipeline,
//! stores detections together with the checkpoints of the lines behind them, prints
//! alerts and serves Prometheus metrics on loopback.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use palisade::detect::sigma::RuleSet;
use palisade::detect::{Detection, DetectionState};
use palisade::pipeline::Pipeline;
use palisade::respond::Responder;
use palisade::respond::alert::{Alert, outbox::Outbox};
use palisade::respond::decision::DecisionKind;
use palisade::respond::intel::settings::Intel;
use palisade::serve::{Metrics, ServerOptions};
use palisade::sources::Line;
use palisade::sources::file::{TailNotice, TailOptions, TailSpec, Tailer};
use palisade::store::{Batch, CounterDelta, Store};

use super::output::DetectionPrinter;
use super::watch_docker::DockerFeed;

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// One JSON object per detection on stdout (state `fired`, later `closed`).
    #[arg(long)]
    pub json: bool,
    /// Serve metrics on this address instead of the configured one.
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Do not serve metrics.
    #[arg(long)]
    pub no_metrics: bool,
    /// Stop after this long (for tests and trials), e.g. `30s`.
    #[arg(long, value_parser = parse_duration_arg)]
    pub duration: Option<Duration>,
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    palisade::config::parse_duration(s).ok_or_else(|| format!("not a duration: {s:?} (try 30s)"))
}

pub fn run(args: WatchArgs, config_path: Option<&Path>, color: bool) -> Result<i32> {
    let Some(path) = config_path else {
        bail!("watch needs a configuration with sources: palisade -c palisade.toml watch");
    };
    let config = super::load_config(Some(path))?;
    if config.sources.is_empty() && config.docker.is_none() {
        bail!(
            "{}: no [[sources]] and no [docker] to watch",
            path.display()
        );
    }
    let metrics = Arc::new(Metrics::default());
    let server = if config.metrics.enabled && !args.no_metrics {
        let mut opts = ServerOptions::from_config(&config.metrics, Some(config.store.path.clone()));
        if let Some(listen) = &args.metrics_listen {
            opts.listen = listen.clone();
        }
        let listen = opts.listen.clone();
        let server = palisade::serve::spawn_with(opts, metrics.clone())
            .with_context(|| format!("serving metrics on {listen}"))?;
        tracing::info!(address = %server.local_addr(), "Serving metrics");
        Some(server)
    } else {
        None
    };
    let rules = Arc::new(RuleSet::load(&config.rules).context("loading rules")?);
    let mut pipeline = Pipeline::new(&config, rules, Some(metrics.clone()))?;
    let _lock = lock_store(&config.store.path)?;
    let mut store = Store::open(&config.store.path)
        .with_context(|| format!("opening store {}", config.store.path.display()))?;
    let checkpoints = store.load_checkpoints().context("loading checkpoints")?;
    let specs = config.sources.iter().map(TailSpec::from_config).collect();
    let mut tailer = Tailer::new(specs, checkpoints, TailOptions::from_config(&config.watch));
    let mut docker = match &config.docker {
        Some(cfg) => Some(DockerFeed::start(&config, cfg, &store)?),
        None => None,
    };
    let mut response = Response::start(&config)?;
    // Failures from before a manual unban are not counted again when the log is
    // replayed from the checkpoint (field case 19).
    pipeline.set_forgiven(response.responder.unbans());
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // SIGINT, and with the `termination` feature SIGTERM and SIGHUP too: systemd and
    // `docker stop` send SIGTERM, and a daemon must close its episodes and write its
    // checkpoints on it exactly as on Ctrl-C.
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the SIGINT/SIGTERM handler")?;
    tracing::info!(sources = config.sources.len(), "Watching");
    // One line on stderr (results go to stdout) so that a person who started the
    // daemon by hand sees it is running and where its metrics are.
    let served = server.as_ref().map_or_else(
        || "metrics off".to_owned(),
        |s| format!("metrics on http://{}/metrics", s.local_addr()),
    );
    eprintln!(
        "palisade: watching {} source(s), store {}, {served}; Ctrl-C or SIGTERM stops",
        config.sources.len(),
        config.store.path.display()
    );

    let mut printer = DetectionPrinter::new(args.json, color);
    let mut lines: Vec<Line> = Vec::new();
    let mut out: Vec<Detection> = Vec::new();
    let mut pending: Vec<Detection> = Vec::new();
    let mut counters: Vec<CounterDelta> = Vec::new();
    let mut store_trouble = StoreTrouble::default();
    let started = Instant::now();
    while !stop.load(Ordering::SeqCst) && args.duration.is_none_or(|d| started.elapsed() < d) {
        let tick = Instant::now();
        for notice in tailer.poll(&mut lines) {
            log_notice(&notice, &pipeline);
        }
        let now = jiff::Timestamp::now();
        for line in lines.drain(..) {
            let Some(idx) = pipeline.source_index(&line.source) else {
                continue;
            };
            pipeline.process_line(idx, &line, &mut out);
            if let (Some(m), Some(t)) = (pipeline.source_metrics(idx), pipeline.clock()) {
                m.set_lag(t, now);
            }
        }
        let mut docker_backlog = false;
        if let Some(feed) = &mut docker {
            docker_backlog = feed.poll(&mut pipeline, &config, &mut out);
            feed.posture(&mut out);
        }
        // Alerts and responses go out at once, whether or not the store is writable:
        // a full disk must not switch off the defence.
        for d in &out {
            metrics.observe_detection(d);
            response.on_detection(d, &metrics);
            if d.state == DetectionState::Fired || args.json {
                printer.print(d);
            }
        }
        printer.flush();
        pending.append(&mut out);
        counters.append(&mut pipeline.drain_counters());
        // Checkpoints advance only together with the detections from those lines.
        let checkpoints = tailer.checkpoints();
        let batch = Batch {
            detections: &pending,
            checkpoints: &checkpoints,
            counters: &counters,
        };
        match store.commit(&batch) {
            Ok(()) => {
                store_trouble.recovered();
                counters.clear();
                pending.clear();
                if let Some(feed) = &mut docker {
                    feed.committed();
                }
            }
            Err(e) => {
                metrics.inc_store_errors();
                store_trouble.failed(&e, &mut pending);
            }
        }
        response.tick(&metrics);
        let elapsed = tick.elapsed();
        if elapsed < config.watch.poll_interval && !tailer.has_backlog() && !docker_backlog {
            std::thread::sleep(config.watch.poll_interval - elapsed);
        }
    }
    if let Some(feed) = &mut docker {
        feed.stop(&mut pipeline, &config, &mut out);
    }
    pipeline.finish(&mut out);
    for d in &out {
        metrics.observe_detection(d);
        if args.json {
            printer.print(d);
        }
    }
    printer.flush();
    pending.append(&mut out);
    counters.append(&mut pipeline.drain_counters());
    let checkpoints = tailer.checkpoints();
    let batch = Batch {
        detections: &pending,
        checkpoints: &checkpoints,
        counters: &counters,
    };
    store
        .commit(&batch)
        .context("storing detections at shutdown")?;
    if let Some(feed) = &mut docker {
        feed.committed();
    }
    response.shutdown();
    tracing::info!("Stopped");
    Ok(0)
}

fn log_notice(notice: &TailNotice, pipeline: &Pipeline) {
    let metrics = |source: &str| {
        pipeline
            .source_index(source)
            .and_then(|i| pipeline.source_metrics(i))
    };
    match notice {
        TailNotice::Truncated { source, .. } | TailNotice::Rewritten { source, .. } => {
            if let Some(m) = metrics(source) {
                m.inc_log_truncations();
            }
            tracing::warn!("{notice}");
        }
        TailNotice::Rotated { source, .. } => {
            if let Some(m) = metrics(source) {
                m.inc_log_rotations();
            }
            tracing::info!("{notice}");
        }
        TailNotice::Error { .. } | TailNotice::CrOnlyEndings { .. } => tracing::warn!("{notice}"),
        _ => tracing::info!("{notice}"),
    }
}

/// The response side of the daemon: policy decisions, bans and alert delivery.
struct Response {
    responder: Responder,
    intel: Intel,
    outbox: Option<Outbox>,
    runtime: tokio::runtime::Runtime,
    max_samples: usize,
    last_expiry: Instant,
}

impl Response {
    fn start(config: &palisade::config::Config) -> Result<Response> {
        let mut responder = Responder::from_config(
            &config.respond,
            &config.store.path,
            &config.network.allowlist,
            &config.network.trusted_proxies,
        )
        .context("starting the responder")?;
        let restored = responder.reconcile_on_start().context("restoring bans")?;
        tracing::info!(?restored, "Bans reconciled with the firewall");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("palisade-alerts")
            .build()
            .context("starting the alert runtime")?;
        let outbox = if config.alerts.is_empty() {
            None
        } else {
            let sinks = config
                .alerts
                .build_sinks()
                .context("configuring alert sinks")?;
            let cfg = config
                .alerts
                .outbox()
                .context("configuring the alert outbox")?;
            let _guard = runtime.enter();
            Some(Outbox::open(&config.store.path, sinks, cfg).context("opening the alert outbox")?)
        };
        let intel = Intel::from_config(&config.intel).context("setting up threat intelligence")?;
        Ok(Response {
            responder,
            intel,
            outbox,
            runtime,
            max_samples: config.alerts.max_samples.unwrap_or(5),
            last_expiry: Instant::now(),
        })
    }

    /// Decides what a fired detection leads to and carries it out.
    fn on_detection(&mut self, d: &Detection, metrics: &Metrics) {
        if d.state != DetectionState::Fired {
            return;
        }
        let score = d
            .key_value("source.ip")
            .and_then(|ip| ip.parse().ok())
            .filter(|_| self.intel.is_enabled())
            .and_then(|ip| self.intel.score(&self.runtime, ip));
        for decision in self.responder.on_detection_scored(d, score) {
            tracing::info!(decision = %decision, "Decision");
            let notify = match &decision.kind {
                DecisionKind::Ban(_) => {
                    if !decision.simulated {
                        metrics.inc_blocked_ips();
                    }
                    true
                }
                DecisionKind::Alert { .. } => true,
                _ => false,
            };
            if let (true, Some(outbox)) = (notify, &self.outbox) {
                let alert = Alert::from_detection(d, &decision.to_string(), self.max_samples);
                if let Err(e) = outbox.enqueue(&alert) {
                    tracing::error!(error = %e, "Cannot queue alert");
                }
            }
        }
    }

    /// Once a second: lifts bans whose time is up and mirrors the response side's
    /// counters into the metrics.
    fn tick(&mut self, metrics: &Metrics) {
        if self.last_expiry.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_expiry = Instant::now();
        metrics.set_active_bans(self.responder.stats().active_bans);
        if let Some(outbox) = &self.outbox {
            for (sink, c) in outbox.counters() {
                metrics.record_alert_delivery(&sink, c.sent, c.failed, c.queued, &c.errors);
            }
        }
        match self.responder.expire(jiff::Timestamp::now()) {
            Ok(lifted) if !lifted.is_empty() => {
                tracing::info!(count = lifted.len(), "Bans expired")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "Cannot expire bans"),
        }
    }

    fn shutdown(self) {
        if let Some(outbox) = self.outbox {
            self.runtime.block_on(outbox.shutdown());
        }
    }
}

/// What `watch` does while the store cannot be written: keeps the detections (up to a
/// ceiling, oldest dropped and counted beyond it), retries every tick, and says so
/// once every 10 seconds instead of on every tick.
#[derive(Default)]
struct StoreTrouble {
    since: Option<Instant>,
    last_log: Option<Instant>,
    failures: u64,
    dropped: u64,
}

/// Detections held in memory for the store while it fails.
const MAX_HELD_DETECTIONS: usize = 50_000;

impl StoreTrouble {
    fn failed(&mut self, e: &palisade::store::StoreError, pending: &mut Vec<Detection>) {
        self.since.get_or_insert_with(Instant::now);
        self.failures += 1;
        if pending.len() > MAX_HELD_DETECTIONS {
            let excess = pending.len() - MAX_HELD_DETECTIONS;
            pending.drain(..excess);
            self.dropped += excess as u64;
        }
        if self
            .last_log
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            self.last_log = Some(Instant::now());
            tracing::error!(
                error = %e,
                held = pending.len(),
                failed_attempts = self.failures,
                dropped = self.dropped,
                "Cannot store detections; alerts and bans continue, the store is retried every tick \
                 and files are re-read from the last stored checkpoint after a restart"
            );
        }
    }

    fn recovered(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::warn!(
                after_secs = since.elapsed().as_secs(),
                failed_attempts = self.failures,
                dropped = self.dropped,
                "Store writable again; held detections stored"
            );
            self.failures = 0;
            self.last_log = None;
        }
    }
}

/// One daemon per store: a second `watch` on the same database would alert twice and
/// fight over checkpoints. The lock is released when the process ends, even on a crash.
fn lock_store(store: &Path) -> Result<std::fs::File> {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("creating lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another palisade watch is using the store {} (lock {} is held); stop it first",
            store.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}
