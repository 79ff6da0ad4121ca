//! The Docker side of `palisade watch`: follows the `[docker]` containers through
//! `sources::docker::DockerSource`, routes each message to a pipeline source of its
//! own (one per container, a second for stderr when `stderr_parser` is set), keeps
//! the container checkpoints in a file next to the store, and runs the container
//! posture checks at start and every `watch.posture_interval`.
//!
//! When the Engine API does not answer at start, one warning says so and the feed
//! reads the json-file (or CRI) logs under `json_file_root` instead, following the
//! files with the same selectors, parsers and checkpoint file (no posture checks
//! then: they need the API).
//!
//! Checkpoints are saved only after the store committed the detections of the lines
//! they cover, so a crash repeats at most one tick and loses nothing; a clean stop
//! repeats nothing.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use palisade::config::{Config, SourceConfig};
use palisade::detect::Detection;
use palisade::pipeline::Pipeline;
use palisade::posture::containers::{self, CheckOptions};
use palisade::sources::docker::api::DockerApi;
use palisade::sources::docker::follow::{DiskFollower, DockerSource, list_containers};
use palisade::sources::docker::{
    ContainerSelector, DockerCheckpoint, DockerLine, DockerSourceConfig, Stream, load_checkpoints,
    save_checkpoints,
};
use palisade::store::{DetectionFilter, Store};

/// Most messages taken from the channel per tick, so file sources keep their turn.
const MAX_PER_TICK: usize = 50_000;

/// Where the container checkpoints of a store live: `<store>.docker.json`.
pub fn checkpoint_path(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".docker.json");
    store.with_file_name(name)
}

/// Where container logs come from.
enum Logs {
    /// The Engine API (live follow streams).
    Api(DockerSource),
    /// The json-file logs on disk, while the API is unreachable.
    Disk(DiskFollower),
}

/// Live container logs and posture checks for the daemon.
pub struct DockerFeed {
    logs: Logs,
    api: DockerApi,
    cfg: DockerSourceConfig,
    ckpt_path: PathBuf,
    /// `(container, stream)` → pipeline source index.
    routes: HashMap<(Arc<str>, Stream), usize>,
    /// Containers seen that no selector's name picks and no label or service
    /// matched when last listed.
    unrouted: HashSet<Arc<str>>,
    /// Checkpoints covering every line handed to the pipeline, to save after the
    /// next successful store commit.
    pending: Option<HashMap<String, DockerCheckpoint>>,
    posture_every: Duration,
    last_posture: Option<Instant>,
    /// `(container, check)` already raised (by this run, or stored in the last day),
    /// so a re-check or a restart only adds news.
    reported: HashSet<(String, String)>,
}

impl DockerFeed {
    /// Starts following the configured containers from their saved checkpoints.
    pub fn start(config: &Config, cfg: &DockerSourceConfig, store: &Store) -> Result<DockerFeed> {
        let ckpt_path = checkpoint_path(&config.store.path);
        let ckpts = load_checkpoints(&ckpt_path)
            .with_context(|| format!("loading container checkpoints {}", ckpt_path.display()))?;
        let logs = match DockerSource::start(cfg, ckpts.clone()) {
            Ok(source) => Logs::Api(source),
            Err(e) => {
                tracing::warn!(error = %e, "Docker API at {} unreachable: reading json-file logs under {}", cfg.socket.display(), cfg.json_file_root.display());
                Logs::Disk(DiskFollower::new(cfg, ckpts))
            }
        };
        let api = DockerApi::new(&cfg.socket).with_timeout(Some(Duration::from_secs(60)));
        tracing::info!(selectors = cfg.containers.len(), checkpoints = %ckpt_path.display(), "Following containers");
        Ok(DockerFeed {
            logs,
            api,
            cfg: cfg.clone(),
            ckpt_path,
            routes: HashMap::new(),
            unrouted: HashSet::new(),
            pending: None,
            posture_every: config.watch.posture_interval,
            last_posture: None,
            reported: recent_posture(store),
        })
    }

    /// Runs every message received so far through the pipeline. Returns true when
    /// more are waiting (the caller should not sleep).
    pub fn poll(
        &mut self,
        pipeline: &mut Pipeline,
        config: &Config,
        out: &mut Vec<Detection>,
    ) -> bool {
        let (touched, backlog) = match &self.logs {
            Logs::Api(_) => self.poll_api(pipeline, config, out),
            Logs::Disk(_) => self.poll_disk(pipeline, config, out),
        };
        let now = jiff::Timestamp::now();
        for idx in touched {
            pipeline.flush_source(idx, out);
            if let (Some(m), Some(t)) = (pipeline.source_metrics(idx), pipeline.clock()) {
                m.set_lag(t, now);
            }
        }
        backlog
    }

    /// Takes what the API followers sent; returns the sources touched and whether
    /// more is waiting.
    fn poll_api(
        &mut self,
        pipeline: &mut Pipeline,
        config: &Config,
        out: &mut Vec<Detection>,
    ) -> (Vec<usize>, bool) {
        let Logs::Api(source) = &self.logs else {
            return (Vec::new(), false);
        };
        let lines = source.lines.clone();
        // Followers publish a checkpoint after sending its lines, so every line this
        // snapshot covers is already in the channel.
        let snapshot = source.checkpoints();
        let mut touched = Vec::new();
        let mut backlog = true;
        for _ in 0..MAX_PER_TICK {
            let Ok(dl) = lines.try_recv() else {
                self.pending = Some(snapshot);
                backlog = false;
                break;
            };
            if let Some(idx) = self.process(pipeline, config, &dl, out)
                && !touched.contains(&idx)
            {
                touched.push(idx);
            }
        }
        // Stopped early: the snapshot may cover lines still queued, so the older one
        // stays pending. Messages come whole (the joiner put stack traces together),
        // so nothing a parser holds back waits for a later line.
        (touched, backlog)
    }

    /// Reads what the log files gained; returns the sources touched and whether
    /// more is waiting.
    fn poll_disk(
        &mut self,
        pipeline: &mut Pipeline,
        config: &Config,
        out: &mut Vec<Detection>,
    ) -> (Vec<usize>, bool) {
        let Logs::Disk(disk) = &mut self.logs else {
            return (Vec::new(), false);
        };
        let mut lines = Vec::new();
        let backlog = match disk.poll(&mut lines) {
            Ok(more) => more,
            Err(e) => {
                warn_disk_error(&e);
                false
            }
        };
        // Every line read is processed below, so these cover them all.
        let snapshot = disk.checkpoints();
        let mut touched = Vec::new();
        for dl in &lines {
            if let Some(idx) = self.process(pipeline, config, dl, out)
                && !touched.contains(&idx)
            {
                touched.push(idx);
            }
        }
        // Pieces held without a whole message need no save: a restart reads them
        // again from the older checkpoint, losing and repeating nothing.
        if !lines.is_empty() {
            self.pending = Some(snapshot);
        }
        (touched, backlog)
    }

    fn process(
        &mut self,
        pipeline: &mut Pipeline,
        config: &Config,
        dl: &DockerLine,
        out: &mut Vec<Detection>,
    ) -> Option<usize> {
        let idx = self.route(pipeline, config, dl)?;
        pipeline.process_line_at(idx, &dl.line, dl.time, out);
        Some(idx)
    }

    /// The pipeline source for a message, added the first time its container speaks.
    fn route(
        &mut self,
        pipeline: &mut Pipeline,
        config: &Config,
        dl: &DockerLine,
    ) -> Option<usize> {
        if let Some(&idx) = self.routes.get(&(dl.container.clone(), dl.stream)) {
            return Some(idx);
        }
        if self.unrouted.contains(&dl.container) {
            return None;
        }
        let Some(sel) = self.selector_for(&dl.container) else {
            self.unrouted.insert(dl.container.clone());
            return None;
        };
        match add_sources(pipeline, config, &dl.container, &sel) {
            Ok((out_idx, err_idx)) => {
                self.routes
                    .insert((dl.container.clone(), Stream::Stdout), out_idx);
                self.routes
                    .insert((dl.container.clone(), Stream::Stderr), err_idx);
                tracing::info!(container = %dl.container, "Reading container logs");
                self.routes.get(&(dl.container.clone(), dl.stream)).copied()
            }
            Err(e) => {
                tracing::error!(container = %dl.container, error = %e, "Cannot parse this container's logs");
                self.unrouted.insert(dl.container.clone());
                None
            }
        }
    }

    /// The selector picking `container`: by name, else by its labels as listed now.
    fn selector_for(&self, container: &str) -> Option<ContainerSelector> {
        let by_name = self
            .cfg
            .containers
            .iter()
            .find(|s| s.name.as_deref().map(|n| n.trim_start_matches('/')) == Some(container));
        if let Some(s) = by_name {
            return Some(s.clone());
        }
        if let Logs::Disk(disk) = &self.logs {
            let info = disk.container(container)?;
            return self
                .cfg
                .containers
                .iter()
                .find(|s| s.matches(info))
                .cloned();
        }
        let listed = match list_containers(&self.api) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(container, error = %e, "Cannot list containers to pick a parser");
                return None;
            }
        };
        let info = listed.iter().find(|c| c.name == container)?;
        self.cfg
            .containers
            .iter()
            .find(|s| s.matches(info))
            .cloned()
    }

    /// Call after the store committed everything `poll` produced: saves checkpoints.
    pub fn committed(&mut self) {
        let Some(ckpts) = self.pending.take() else {
            return;
        };
        if let Err(e) = save_checkpoints(&self.ckpt_path, &ckpts) {
            tracing::warn!(path = %self.ckpt_path.display(), error = %e, "Cannot save container checkpoints; a restart may read some lines again");
            self.pending = Some(ckpts);
        }
    }

    /// Stops following and runs what is left through the pipeline; the checkpoints
    /// then cover every line read, for [`DockerFeed::committed`].
    pub fn stop(&mut self, pipeline: &mut Pipeline, config: &Config, out: &mut Vec<Detection>) {
        let source = match &mut self.logs {
            Logs::Api(source) => source,
            // Nothing runs in the background: the last poll's checkpoints are pending.
            // Held pieces stay in the joiner (and so in the checkpoint).
            Logs::Disk(_) => return,
        };
        // Followers blocked on a full channel could never notice the stop, so a
        // helper drains it until the last sender is gone.
        let rx = source.lines.clone();
        let drainer = std::thread::spawn(move || rx.iter().collect::<Vec<DockerLine>>());
        source.stop();
        let rest = drainer.join().unwrap_or_default();
        let snapshot = source.checkpoints();
        for dl in &rest {
            if let Some(idx) = self.process(pipeline, config, dl, out) {
                pipeline.flush_source(idx, out);
            }
        }
        self.pending = Some(snapshot);
    }

    /// Runs the posture checks when they are due; new findings become detections.
    pub fn posture(&mut self, out: &mut Vec<Detection>) {
        let due = match self.last_posture {
            None => true,
            Some(_) if self.posture_every.is_zero() => false,
            Some(at) => at.elapsed() >= self.posture_every,
        };
        // Posture checks ask the API: nothing to check while reading from disk.
        if !due || matches!(self.logs, Logs::Disk(_)) {
            return;
        }
        self.last_posture = Some(Instant::now());
        let ids = match self.followed_running() {
            Ok(ids) if ids.is_empty() => return,
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot list containers for the posture checks");
                return;
            }
        };
        let opts = CheckOptions {
            containers: ids,
            skip_images: true,
            trivy: None,
        };
        let findings = match containers::check(&self.api, &opts) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "Container posture checks failed");
                return;
            }
        };
        let now = jiff::Timestamp::now();
        for f in findings {
            if self
                .reported
                .insert((f.container.clone(), f.check.to_owned()))
            {
                out.push(f.to_detection(now));
            }
        }
    }

    /// Ids of the running containers a selector picks.
    fn followed_running(&self) -> Result<Vec<String>> {
        let listed = list_containers(&self.api)?;
        Ok(listed
            .into_iter()
            .filter(|c| c.running && self.cfg.containers.iter().any(|s| s.matches(c)))
            .map(|c| c.id)
            .collect())
    }
}

/// Warns about an unreadable log directory or file: the first ten times, then one
/// in a hundred (a missing root would otherwise warn every tick).
fn warn_disk_error(e: &palisade::sources::docker::follow::FollowError) {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let n = SEEN.fetch_add(1, Ordering::Relaxed);
    if n < 10 || n.is_multiple_of(100) {
        tracing::warn!(error = %e, failures_so_far = n + 1, "Cannot read container log files; retrying");
    }
}

/// Posture findings stored in the last 24 hours, as `(container, check)`.
fn recent_posture(store: &Store) -> HashSet<(String, String)> {
    let since = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(24))
        .ok();
    let filter = DetectionFilter {
        since,
        limit: Some(100_000),
        ..DetectionFilter::default()
    };
    let stored = match store.detections(&filter) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read earlier posture findings; they may be raised again");
            return HashSet::new();
        }
    };
    stored
        .into_iter()
        .filter_map(|d| {
            let check = d.rule_id.strip_prefix(POSTURE_PREFIX)?.to_owned();
            let (_, container) = d.key.into_iter().find(|(k, _)| k == "container.name")?;
            Some((container, check))
        })
        .collect()
}

/// Rule id prefix of posture findings turned detections (`Finding::to_detection`).
const POSTURE_PREFIX: &str = "palisade-posture-";

/// Adds the pipeline sources of one container: returns the indexes for stdout and
/// stderr (the same one unless `stderr_parser` is set).
fn add_sources(
    pipeline: &mut Pipeline,
    config: &Config,
    container: &str,
    sel: &ContainerSelector,
) -> Result<(usize, usize)> {
    let add = |pipeline: &mut Pipeline, name: String, parser: &palisade::config::ParserConfig| {
        // A file source may already carry the container's name; keep both apart.
        let name = if pipeline.source_index(&name).is_some() {
            format!("docker:{name}")
        } else {
            name
        };
        let source = SourceConfig {
            path: format!("docker://{container}"),
            name,
            parser: parser.clone(),
            // The docker joiner already put stack traces together per stream.
            multiline: false,
            ..SourceConfig::default()
        };
        pipeline.add_source(&source, config)
    };
    let out = add(pipeline, container.to_owned(), &sel.parser)?;
    let err = match &sel.stderr_parser {
        Some(p) => add(pipeline, format!("{container}/stderr"), p)?,
        None => out,
    };
    Ok((out, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_live_next_to_the_store() {
        assert_eq!(
            checkpoint_path(Path::new("/var/lib/palisade/palisade.db")),
            Path::new("/var/lib/palisade/palisade.db.docker.json")
        );
    }
}
