//! Following container logs: which containers, reading them live, and the disk
//! fallback.
//!
//! [`DockerSource::start`] runs a discovery thread that lists containers every
//! `poll_seconds`, starts one follower thread per running container that a
//! [`ContainerSelector`] picks, and starts it again when the container restarts (the
//! follow stream ends when the container stops). A recreated container has a new id
//! and so a fresh [`ContainerLog`]. Followers send [`DockerLine`]s over a channel and
//! publish their [`DockerCheckpoint`] after each batch.
//!
//! When the Engine API is down, [`read_json_file_dir`] reads the json-file logs under
//! the configured root directly (CRI files too, see [`read_log_file`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;

use super::FrameDecoder;
use super::api::{ApiError, DockerApi};
use super::join::{EntryError, parse_api_payload, parse_cri_line, parse_json_file_line};
use super::{ContainerLog, ContainerSelector, DockerCheckpoint, DockerLine, DockerSourceConfig};

/// What went wrong reading container logs.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("cannot read container log {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// A container as the list endpoint (or its config on disk) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub running: bool,
}

/// The compose label naming a container's service.
pub const COMPOSE_SERVICE_LABEL: &str = "com.docker.compose.service";

impl ContainerSelector {
    /// Whether this selector picks `c`. A selector with no criterion picks nothing.
    pub fn matches(&self, c: &ContainerInfo) -> bool {
        let mut any = false;
        if let Some(name) = &self.name {
            any = true;
            if name.trim_start_matches('/') != c.name {
                return false;
            }
        }
        if let Some(label) = &self.label {
            any = true;
            let (k, v) = label
                .split_once('=')
                .map_or((label.as_str(), None), |(k, v)| (k, Some(v)));
            match (c.labels.get(k), v) {
                (None, _) => return false,
                (Some(have), Some(want)) if have != want => return false,
                _ => {}
            }
        }
        if let Some(service) = &self.service {
            any = true;
            if c.labels.get(COMPOSE_SERVICE_LABEL) != Some(service) {
                return false;
            }
        }
        any
    }
}

/// Lists every container (running or not) the Engine knows.
pub fn list_containers(api: &DockerApi) -> Result<Vec<ContainerInfo>, ApiError> {
    let list = api.get_json("/containers/json?all=1")?;
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    Ok(items.iter().map(container_info).collect())
}

fn container_info(v: &Value) -> ContainerInfo {
    let name = v["Names"][0]
        .as_str()
        .or_else(|| v["Name"].as_str())
        .unwrap_or("");
    let labels = v["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    ContainerInfo {
        id: v["Id"].as_str().unwrap_or("").to_owned(),
        name: name.trim_start_matches('/').to_owned(),
        labels,
        running: v["State"].as_str() == Some("running"),
    }
}

/// Whether the container runs with a TTY (its logs are then not multiplexed).
pub fn has_tty(api: &DockerApi, id: &str) -> Result<bool, ApiError> {
    let v = api.get_json(&format!("/containers/{id}/json"))?;
    Ok(v["Config"]["Tty"].as_bool().unwrap_or(false))
}

/// Reads a container's logs from `log`'s checkpoint on, handing batches of lines to
/// `sink` with the checkpoint that holds once the batch is processed. With `follow`, waits for new output until the container stops or `stop`
/// is set, emitting held messages after `quiet` without output; without, reads what
/// is there and flushes.
pub fn read_container(
    api: &DockerApi,
    log: &mut ContainerLog,
    follow: bool,
    quiet: Duration,
    stop: &AtomicBool,
    sink: &mut dyn FnMut(Vec<DockerLine>, &DockerCheckpoint),
) -> Result<(), FollowError> {
    let id = log.checkpoint().container_id.clone();
    let tty = has_tty(api, &id)?;
    let path = logs_path(&id, follow, log.since_param());
    let api = api.clone().with_timeout(follow.then_some(quiet));
    let mut body = api.open("GET", &path, None)?;
    let mut decoder = FrameDecoder::new(tty);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if stop.load(Ordering::Relaxed) {
            // Keep held pieces and stack-trace heads in the joiner (and so in the
            // checkpoint): their rest may still come after a restart.
            return Ok(());
        }
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if is_timeout(&e) => {
                flush_into(log, sink);
                continue;
            }
            Err(source) => {
                return Err(FollowError::Io {
                    path: path.into(),
                    source,
                });
            }
        };
        decoder.extend(&buf[..n]);
        let out = decode_frames(&mut decoder, log);
        if !out.is_empty() {
            sink(out, log.checkpoint());
        }
    }
    // The stream ended: the container stopped, nothing more can attach.
    flush_into(log, sink);
    Ok(())
}

fn logs_path(id: &str, follow: bool, since: Option<String>) -> String {
    let mut path = format!("/containers/{id}/logs?stdout=1&stderr=1&timestamps=1");
    if follow {
        path.push_str("&follow=1");
    }
    if let Some(since) = since {
        path.push_str(&format!("&since={since}"));
    }
    path
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn decode_frames(decoder: &mut FrameDecoder, log: &mut ContainerLog) -> Vec<DockerLine> {
    let mut out = Vec::new();
    while let Some((stream, payload)) = decoder.next_frame() {
        match parse_api_payload(stream, payload) {
            Ok(entry) => log.feed(entry, &mut out),
            Err(e) => warn_entry(&log.checkpoint().container_id, &e),
        }
    }
    decoder.compact();
    out
}

fn flush_into(log: &mut ContainerLog, sink: &mut dyn FnMut(Vec<DockerLine>, &DockerCheckpoint)) {
    if log.is_idle() {
        return;
    }
    let mut out = Vec::new();
    log.flush(&mut out);
    sink(out, log.checkpoint());
}

fn warn_entry(container: &str, e: &EntryError) {
    // A container printing garbage must not flood our own log: the first ten, then
    // one in a thousand.
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let n = SEEN.fetch_add(1, Ordering::Relaxed);
    if n < 10 || n.is_multiple_of(1000) {
        tracing::warn!(container, error = %e, skipped_so_far = n + 1, "Skipped a container log entry that does not parse");
    }
}

/// Live Docker source: discovery plus one follower per container.
pub struct DockerSource {
    /// Lines from every followed container.
    pub lines: Receiver<DockerLine>,
    checkpoints: Arc<Mutex<HashMap<String, DockerCheckpoint>>>,
    stop: Arc<AtomicBool>,
    discovery: Option<JoinHandle<()>>,
}

impl DockerSource {
    /// Starts following the containers `cfg` selects, resuming from `checkpoints`
    /// (by container id). Fails at once if the Engine does not answer.
    pub fn start(
        cfg: &DockerSourceConfig,
        checkpoints: HashMap<String, DockerCheckpoint>,
    ) -> Result<DockerSource, ApiError> {
        let api = DockerApi::new(&cfg.socket).with_timeout(Some(Duration::from_secs(30)));
        api.ping()?;
        let (tx, rx) = crossbeam_channel::bounded(10_000);
        let checkpoints = Arc::new(Mutex::new(checkpoints));
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = Discovery {
            api,
            cfg: cfg.clone(),
            tx,
            checkpoints: checkpoints.clone(),
            stop: stop.clone(),
            active: Arc::new(Mutex::new(HashSet::new())),
            drained: HashSet::new(),
        };
        let discovery = std::thread::Builder::new()
            .name("docker-discovery".into())
            .spawn(move || ctx.run())
            .map_err(|source| ApiError::Io {
                method: "spawn".into(),
                path: "docker-discovery".into(),
                source,
            })?;
        Ok(DockerSource {
            lines: rx,
            checkpoints,
            stop,
            discovery: Some(discovery),
        })
    }

    /// Every container's checkpoint as of the lines already received from
    /// [`DockerSource::lines`] (followers publish after sending each batch).
    pub fn checkpoints(&self) -> HashMap<String, DockerCheckpoint> {
        self.checkpoints
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// Stops discovery and followers (followers notice within `flush_after_ms`).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.discovery.take() {
            let _ = h.join();
        }
    }
}

impl Drop for DockerSource {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Discovery {
    api: DockerApi,
    cfg: DockerSourceConfig,
    tx: Sender<DockerLine>,
    checkpoints: Arc<Mutex<HashMap<String, DockerCheckpoint>>>,
    stop: Arc<AtomicBool>,
    active: Arc<Mutex<HashSet<String>>>,
    /// Stopped containers already read to their end.
    drained: HashSet<String>,
}

impl Discovery {
    fn run(mut self) {
        let poll = Duration::from_secs(self.cfg.poll_seconds.max(1));
        let mut followers = Vec::new();
        while !self.stop.load(Ordering::Relaxed) {
            match list_containers(&self.api) {
                Ok(list) => followers.extend(self.start_new(list)),
                Err(e) => tracing::warn!(error = %e, "Cannot list containers; retrying"),
            }
            followers.retain(|h: &JoinHandle<()>| !h.is_finished());
            sleep_unless(&self.stop, poll);
        }
        for h in followers {
            let _ = h.join();
        }
    }

    /// Follows running containers not yet followed; reads stopped ones once (what
    /// they wrote while palisade was not looking), again only after they ran.
    fn start_new(&mut self, list: Vec<ContainerInfo>) -> Vec<JoinHandle<()>> {
        let mut started = Vec::new();
        for c in list {
            if !self.cfg.containers.iter().any(|s| s.matches(&c)) {
                continue;
            }
            if c.running {
                self.drained.remove(&c.id);
            } else if !self.drained.insert(c.id.clone()) {
                continue;
            }
            if !self.active.lock().is_ok_and(|mut a| a.insert(c.id.clone())) {
                continue;
            }
            tracing::info!(container = %c.name, id = %c.id, follow = c.running, "Reading container logs");
            let follow = c.running;
            started.push(self.spawn_follower(c, follow));
        }
        started
    }

    fn spawn_follower(&self, c: ContainerInfo, follow: bool) -> JoinHandle<()> {
        let saved = self
            .checkpoints
            .lock()
            .ok()
            .and_then(|m| m.get(&c.id).cloned());
        let mut log = match saved {
            Some(ckpt) => ContainerLog::resume(ckpt),
            None => ContainerLog::new(&c.id, &c.name),
        };
        let (api, tx, stop) = (self.api.clone(), self.tx.clone(), self.stop.clone());
        let (ckpts, active) = (self.checkpoints.clone(), self.active.clone());
        let quiet = Duration::from_millis(self.cfg.flush_after_ms.max(10));
        std::thread::spawn(move || {
            // Publish after sending: a stored checkpoint never runs ahead of the
            // lines the consumer has been given.
            let mut sink = |batch: Vec<DockerLine>, ckpt: &DockerCheckpoint| {
                for line in batch {
                    let _ = tx.send(line);
                }
                if let Ok(mut m) = ckpts.lock() {
                    m.insert(ckpt.container_id.clone(), ckpt.clone());
                }
            };
            let result = read_container(&api, &mut log, follow, quiet, &stop, &mut sink);
            if let Err(e) = result {
                tracing::warn!(container = %c.name, error = %e, "Stopped following container");
            }
            if let Ok(mut a) = active.lock() {
                a.remove(&c.id);
            }
        })
    }
}

fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(100);
    let mut left = total;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let d = left.min(step);
        std::thread::sleep(d);
        left -= d;
    }
}

/// Reads one log file in json-file or CRI format (detected per line: JSON lines start
/// with `{`) into `log`, flushing at the end.
pub fn read_log_file(
    path: &Path,
    log: &mut ContainerLog,
    out: &mut Vec<DockerLine>,
) -> Result<(), FollowError> {
    let io_err = |source| FollowError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut reader = BufReader::new(file);
    let mut raw = String::new();
    let id = log.checkpoint().container_id.clone();
    loop {
        raw.clear();
        if reader.read_line(&mut raw).map_err(io_err)? == 0 {
            break;
        }
        feed_file_line(&raw, &id, log, out);
    }
    log.flush(out);
    Ok(())
}

/// Feeds one raw line of a json-file or CRI log (format detected per line).
fn feed_file_line(raw: &str, id: &str, log: &mut ContainerLog, out: &mut Vec<DockerLine>) {
    let line = raw.trim_end_matches(['\n', '\r']);
    if line.is_empty() {
        return;
    }
    let parsed = if line.starts_with('{') {
        parse_json_file_line(line)
    } else {
        parse_cri_line(line)
    };
    match parsed {
        Ok(entry) => log.feed(entry, out),
        Err(e) => warn_entry(id, &e),
    }
}

/// The json-file fallback: for every container under `root`
/// (`<root>/<id>/<id>-json.log`, name and labels from `config.v2.json`) that `cfg`
/// selects, reads its log from its checkpoint on. Returns the lines and the new
/// checkpoints.
pub fn read_json_file_dir(
    cfg: &DockerSourceConfig,
    checkpoints: &HashMap<String, DockerCheckpoint>,
) -> Result<(Vec<DockerLine>, Vec<DockerCheckpoint>), FollowError> {
    let root = &cfg.json_file_root;
    let dir = std::fs::read_dir(root).map_err(|source| FollowError::Io {
        path: root.clone(),
        source,
    })?;
    let mut lines = Vec::new();
    let mut ckpts = Vec::new();
    for item in dir.flatten() {
        let id = item.file_name().to_string_lossy().into_owned();
        let Some(info) = container_on_disk(&item.path(), &id) else {
            continue;
        };
        if !cfg.containers.iter().any(|s| s.matches(&info)) {
            continue;
        }
        let file = item.path().join(format!("{id}-json.log"));
        let mut log = match checkpoints.get(&id) {
            Some(c) => ContainerLog::resume(c.clone()),
            None => ContainerLog::new(&id, &info.name),
        }
        .with_path(&file.to_string_lossy());
        read_log_file(&file, &mut log, &mut lines)?;
        ckpts.push(log.checkpoint().clone());
    }
    Ok((lines, ckpts))
}

/// Most bytes read from one log file per [`DiskFollower::poll`], so one busy file
/// does not starve the others (the rest comes next call).
const DISK_READ_CAP: u64 = 8 * 1024 * 1024;

/// Follows the json-file (or CRI) logs under `json_file_root` while the Engine API is
/// down: each [`DiskFollower::poll`] reads the complete entries appended since the
/// last one, keeping a byte offset per file. A container's rotated
/// `<id>-json.log.1` is read first when the container is first seen, and to its end
/// when a rotation is noticed. Resume across restarts goes through the
/// [`DockerCheckpoint`]s (time + count), exactly as with the API.
pub struct DiskFollower {
    cfg: DockerSourceConfig,
    /// Checkpoints loaded at start, kept for containers not (yet) on disk.
    saved: HashMap<String, DockerCheckpoint>,
    /// Followed containers by id.
    files: HashMap<String, DiskLog>,
    last_discovery: Option<Instant>,
}

/// One container's log file as the disk follower reads it.
struct DiskLog {
    info: ContainerInfo,
    log: ContainerLog,
    path: PathBuf,
    /// Inode of the file `offset` points into, to notice a rotation.
    inode: Option<u64>,
    offset: u64,
    last_data: Instant,
}

impl DiskFollower {
    /// Follows the containers `cfg` selects under `cfg.json_file_root`, resuming from
    /// `checkpoints` (by container id).
    pub fn new(
        cfg: &DockerSourceConfig,
        checkpoints: HashMap<String, DockerCheckpoint>,
    ) -> DiskFollower {
        DiskFollower {
            cfg: cfg.clone(),
            saved: checkpoints,
            files: HashMap::new(),
            last_discovery: None,
        }
    }

    /// Reads the whole entries appended since the last call into `out`; messages the
    /// joiner holds go out once their file was quiet for `flush_after_ms`. Returns
    /// true when a file has more waiting than one call reads.
    pub fn poll(&mut self, out: &mut Vec<DockerLine>) -> Result<bool, FollowError> {
        self.discover(out)?;
        let quiet = Duration::from_millis(self.cfg.flush_after_ms.max(10));
        let mut more = false;
        for d in self.files.values_mut() {
            match d.read_new(out) {
                Ok(m) => more |= m,
                Err(source) => {
                    return Err(FollowError::Io {
                        path: d.path.clone(),
                        source,
                    });
                }
            }
            if !d.log.is_idle() && d.last_data.elapsed() >= quiet {
                d.log.flush(out);
            }
        }
        Ok(more)
    }

    /// Every container's checkpoint as of the lines handed out so far.
    pub fn checkpoints(&self) -> HashMap<String, DockerCheckpoint> {
        let mut all = self.saved.clone();
        for (id, d) in &self.files {
            all.insert(id.clone(), d.log.checkpoint().clone());
        }
        all
    }

    /// A followed container by name, as its `config.v2.json` describes it.
    pub fn container(&self, name: &str) -> Option<&ContainerInfo> {
        self.files
            .values()
            .map(|d| &d.info)
            .find(|i| i.name == name)
    }

    /// Picks up selected containers not yet followed, every `poll_seconds`.
    fn discover(&mut self, out: &mut Vec<DockerLine>) -> Result<(), FollowError> {
        let every = Duration::from_secs(self.cfg.poll_seconds.max(1));
        if self.last_discovery.is_some_and(|t| t.elapsed() < every) {
            return Ok(());
        }
        self.last_discovery = Some(Instant::now());
        let root = &self.cfg.json_file_root;
        let dir = std::fs::read_dir(root).map_err(|source| FollowError::Io {
            path: root.clone(),
            source,
        })?;
        for item in dir.flatten() {
            let id = item.file_name().to_string_lossy().into_owned();
            if self.files.contains_key(&id) {
                continue;
            }
            let Some(info) = container_on_disk(&item.path(), &id) else {
                continue;
            };
            if !self.cfg.containers.iter().any(|s| s.matches(&info)) {
                continue;
            }
            let path = item.path().join(format!("{id}-json.log"));
            let log = match self.saved.get(&id) {
                Some(c) => ContainerLog::resume(c.clone()),
                None => ContainerLog::new(&id, &info.name),
            }
            .with_path(&path.to_string_lossy());
            tracing::info!(container = %info.name, path = %path.display(), "Reading container log file");
            let mut d = DiskLog {
                info,
                log,
                path,
                inode: None,
                offset: 0,
                last_data: Instant::now(),
            };
            // What was written before the last rotation may be newer than the
            // checkpoint; the resume filter skips what it covers.
            d.read_rotated(None, out);
            self.files.insert(id, d);
        }
        Ok(())
    }
}

impl DiskLog {
    /// Reads the rest of the rotated file from `offset`, if it is the one `inode`
    /// names (any rotated file when `inode` is `None`: the first look).
    fn read_rotated(&mut self, inode: Option<u64>, out: &mut Vec<DockerLine>) {
        let mut name = self.path.clone().into_os_string();
        name.push(".1");
        let rotated = PathBuf::from(name);
        let Ok(meta) = std::fs::metadata(&rotated) else {
            return;
        };
        let start = match inode {
            None => 0,
            Some(i) if meta.ino() == i => self.offset,
            Some(_) => return,
        };
        let id = self.info.id.clone();
        if let Err(e) = read_lines_from(&rotated, start, u64::MAX, &id, &mut self.log, out) {
            tracing::warn!(path = %rotated.display(), error = %e, "Cannot read rotated container log");
        }
    }

    /// Reads the complete lines appended since the last call; true = more waiting.
    fn read_new(&mut self, out: &mut Vec<DockerLine>) -> io::Result<bool> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        match self.inode {
            Some(old) if old != meta.ino() => {
                self.read_rotated(Some(old), out);
                self.offset = 0;
            }
            // Truncated in place (copytruncate): start over.
            _ if meta.len() < self.offset => self.offset = 0,
            _ => {}
        }
        self.inode = Some(meta.ino());
        if meta.len() == self.offset {
            return Ok(false);
        }
        let id = self.info.id.clone();
        let before = out.len();
        let (end, more) = read_lines_from(
            &self.path,
            self.offset,
            DISK_READ_CAP,
            &id,
            &mut self.log,
            out,
        )?;
        if end != self.offset || out.len() != before {
            self.last_data = Instant::now();
        }
        self.offset = end;
        Ok(more)
    }
}

/// Feeds the complete lines of `path` from byte `start` (at most `cap` bytes) into
/// `log`. Returns the offset after the last complete line and whether the cap cut
/// the read short.
fn read_lines_from(
    path: &Path,
    start: u64,
    cap: u64,
    id: &str,
    log: &mut ContainerLog,
    out: &mut Vec<DockerLine>,
) -> io::Result<(u64, bool)> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    file.take(cap).read_to_end(&mut buf)?;
    let full = buf.len() as u64 == cap;
    let whole = match buf.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        // One line longer than the cap would stall the file forever: take it.
        None if full => buf.len(),
        None => return Ok((start, false)),
    };
    for raw in buf[..whole].split(|&b| b == b'\n') {
        feed_file_line(&String::from_utf8_lossy(raw), id, log, out);
    }
    Ok((start + whole as u64, full))
}

fn container_on_disk(dir: &Path, id: &str) -> Option<ContainerInfo> {
    let text = std::fs::read_to_string(dir.join("config.v2.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let mut info = container_info(&v);
    info.id = id.to_owned();
    if let Some(labels) = v["Config"]["Labels"].as_object() {
        info.labels = labels
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
            .collect();
    }
    info.running = v["State"]["Running"].as_bool().unwrap_or(false);
    Some(info)
}

/// Host path of a file inside a running container (`/proc/<pid>/root/<path>`), for
/// `[[docker.files]]` such as `/app/logs/security.log`.
pub fn container_file_path(
    api: &DockerApi,
    container: &str,
    path: &str,
) -> Result<PathBuf, ApiError> {
    let v = api.get_json(&format!(
        "/containers/{}/json",
        super::api::encode_query(container)
    ))?;
    let pid = v["State"]["Pid"].as_u64().unwrap_or(0);
    Ok(PathBuf::from(format!("/proc/{pid}/root")).join(path.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, labels: &[(&str, &str)]) -> ContainerInfo {
        ContainerInfo {
            id: "x".into(),
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            running: true,
        }
    }

    #[test]
    fn selectors_pick_by_name_label_and_compose_service() {
        let by_name = ContainerSelector {
            name: Some("prompt-nginx".into()),
            ..Default::default()
        };
        let by_label = ContainerSelector {
            label: Some("tier=web".into()),
            ..Default::default()
        };
        let by_key = ContainerSelector {
            label: Some("tier".into()),
            ..Default::default()
        };
        let by_service = ContainerSelector {
            service: Some("backend".into()),
            ..Default::default()
        };
        let nginx = info("prompt-nginx", &[("tier", "web")]);
        let backend = info(
            "prompt-backend",
            &[(COMPOSE_SERVICE_LABEL, "backend"), ("tier", "api")],
        );
        assert!(by_name.matches(&nginx) && !by_name.matches(&backend));
        assert!(by_label.matches(&nginx) && !by_label.matches(&backend));
        assert!(by_key.matches(&nginx) && by_key.matches(&backend));
        assert!(by_service.matches(&backend) && !by_service.matches(&nginx));
        assert!(
            !ContainerSelector::default().matches(&nginx),
            "empty selector picks nothing"
        );
    }

    #[test]
    fn source_without_engine_fails_naming_the_socket() {
        let cfg = DockerSourceConfig {
            socket: "/nonexistent/docker.sock".into(),
            ..Default::default()
        };
        let Err(e) = DockerSource::start(&cfg, HashMap::new()) else {
            panic!("started without an engine");
        };
        assert!(e.to_string().contains("/nonexistent/docker.sock"), "{e}");
    }

    #[test]
    fn json_file_fallback_reads_selected_container_and_resumes() {
        // Field case 43 through the on-disk json-file format.
        let root = tempfile::tempdir().unwrap();
        let id = "a".repeat(64);
        let dir = root.path().join(&id);
        std::fs::create_dir(&dir).unwrap();
        let config = serde_json::json!({"Name": "/prompt-backend", "Config": {"Labels": {}},
            "State": {"Running": true}});
        std::fs::write(dir.join("config.v2.json"), config.to_string()).unwrap();
        let log = [
            r#"{"log":"Error: invalid token for user carol\n","stream":"stderr","time":"2024-10-09T10:00:00.001Z"}"#,
            r#"{"log":"GET /health 200 1ms\n","stream":"stdout","time":"2024-10-09T10:00:00.002Z"}"#,
            r#"{"log":"    at verify (/app/auth.js:10:5)\n","stream":"stderr","time":"2024-10-09T10:00:00.003Z"}"#,
            r#"{"log":"    at login (/app/routes.js:44:9)\n","stream":"stderr","time":"2024-10-09T10:00:00.004Z"}"#,
        ];
        let file = dir.join(format!("{id}-json.log"));
        std::fs::write(&file, log.join("\n") + "\n").unwrap();
        let cfg = DockerSourceConfig {
            json_file_root: root.path().into(),
            containers: vec![ContainerSelector {
                name: Some("prompt-backend".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let (lines, ckpts) = read_json_file_dir(&cfg, &HashMap::new()).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(&*lines[0].container, "prompt-backend");
        assert!(
            lines
                .iter()
                .any(|l| l.line.text.ends_with("(/app/routes.js:44:9)"))
        );

        let more =
            r#"{"log":"GET /health 200 2ms\n","stream":"stdout","time":"2024-10-09T10:00:01Z"}"#;
        std::fs::write(&file, log.join("\n") + "\n" + more + "\n").unwrap();
        let saved: HashMap<_, _> = ckpts
            .into_iter()
            .map(|c| (c.container_id.clone(), c))
            .collect();
        let (lines, _) = read_json_file_dir(&cfg, &saved).unwrap();
        let texts: Vec<&str> = lines.iter().map(|l| l.line.text.as_str()).collect();
        assert_eq!(texts, vec!["GET /health 200 2ms"]);
    }

    #[test]
    fn disk_follower_reads_appends_and_the_rest_of_a_rotated_file_once() {
        let root = tempfile::tempdir().unwrap();
        let id = "b".repeat(64);
        let dir = root.path().join(&id);
        std::fs::create_dir(&dir).unwrap();
        let config = serde_json::json!({"Name": "/prompt-nginx", "State": {"Running": true}});
        std::fs::write(dir.join("config.v2.json"), config.to_string()).unwrap();
        let entry = |n: u32| {
            format!(
                "{{\"log\":\"line {n}\\n\",\"stream\":\"stdout\",\"time\":\"2024-10-09T10:00:{n:02}Z\"}}\n"
            )
        };
        let file = dir.join(format!("{id}-json.log"));
        std::fs::write(&file, entry(1)).unwrap();
        let cfg = DockerSourceConfig {
            json_file_root: root.path().into(),
            containers: vec![ContainerSelector {
                name: Some("prompt-nginx".into()),
                ..Default::default()
            }],
            flush_after_ms: 10,
            ..Default::default()
        };
        let mut disk = DiskFollower::new(&cfg, HashMap::new());
        let texts = |disk: &mut DiskFollower| {
            // The joiner holds the last message until the file was quiet a while.
            let mut out = Vec::new();
            disk.poll(&mut out).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            disk.poll(&mut out).unwrap();
            out.into_iter().map(|l| l.line.text).collect::<Vec<_>>()
        };
        assert_eq!(texts(&mut disk), ["line 1"]);
        assert_eq!(
            disk.container("prompt-nginx").map(|c| c.id.as_str()),
            Some(id.as_str())
        );

        // Appended, then rotated before the next poll: the old file's tail and the
        // new file's start both come, nothing twice.
        std::fs::write(&file, entry(1) + &entry(2)).unwrap();
        let mut rotated = file.clone().into_os_string();
        rotated.push(".1");
        std::fs::rename(&file, &rotated).unwrap();
        std::fs::write(&file, entry(3)).unwrap();
        assert_eq!(texts(&mut disk), ["line 2", "line 3"]);
        assert!(texts(&mut disk).is_empty());

        // A restart from the checkpoints reads both files and repeats nothing.
        std::fs::write(&file, entry(3) + &entry(4)).unwrap();
        let mut again = DiskFollower::new(&cfg, disk.checkpoints());
        assert_eq!(texts(&mut again), ["line 4"]);
    }
}
