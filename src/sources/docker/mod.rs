//! Docker source: the logs of containers, read through the Engine API or from disk.
//!
//! - [`api`]: a small blocking client for the Engine API over its unix socket, shared
//!   with `posture::containers`, `respond::isolate` and `incident::evidence`.
//! - [`join`]: pure functions that turn raw entries (json-file lines, CRI lines, API
//!   frames) into whole messages: 16 KiB pieces re-joined, stack traces attached, per
//!   container and stream.
//! - [`follow`]: picking containers (name, label, compose service), following their
//!   logs live, picking up started/restarted/recreated containers, and the json-file
//!   fallback when the API is unreachable.
//!
//! Every message leaves as a [`DockerLine`]: a [`Line`] for the parsers plus the
//! entry's own time and stream. [`ContainerLog`] holds one container's read position
//! and joiner state; its [`DockerCheckpoint`] makes a restart lose and repeat nothing.

pub mod api;
pub mod follow;
pub mod join;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::ParserConfig;
use crate::sources::Line;

pub use join::{Entry, Joiner, Message, Stream};

/// One whole message from a container, ready for parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerLine {
    /// `source` = container name, `path` = `docker://<id>` (or the json-file path),
    /// `offset` = the count of messages read from this container before this one.
    pub line: Line,
    /// The time Docker recorded for the message's first piece.
    pub time: Timestamp,
    pub stream: Stream,
    /// The container's name (without the leading `/`); the same as `line.source`.
    pub container: Arc<str>,
}

/// Where reading of one container stands: the raw entries consumed (time of the last
/// one and how many at that exact time) plus what the joiner still holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerCheckpoint {
    pub container_id: String,
    pub container: String,
    /// Time of the last raw entry consumed; `None` before the first.
    pub time: Option<Timestamp>,
    /// Raw entries consumed that carry exactly `time`.
    pub count: u64,
    /// Messages emitted so far (the next [`Line::offset`]).
    pub emitted: u64,
    /// Pieces and held messages not yet emitted.
    pub joiner: JoinerState,
}

/// The serialised [`Joiner`] inside a checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JoinerState(pub Joiner);

impl PartialEq for JoinerState {
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(&self.0).ok() == serde_json::to_value(&other.0).ok()
    }
}

/// One container's log as it is being read: resume filter, joiner, counters.
#[derive(Debug, Clone)]
pub struct ContainerLog {
    ckpt: DockerCheckpoint,
    /// Raw entries at `ckpt.time` still to skip after a resume.
    skip: u64,
    /// Still replaying what the checkpoint covers (Docker resends from `since`).
    replaying: bool,
    source: Arc<str>,
    path: Arc<str>,
    messages: Vec<Message>,
}

impl ContainerLog {
    /// A container read from its first entry.
    pub fn new(container_id: &str, container: &str) -> ContainerLog {
        ContainerLog::resume(DockerCheckpoint {
            container_id: container_id.to_owned(),
            container: container.to_owned(),
            time: None,
            count: 0,
            emitted: 0,
            joiner: JoinerState(Joiner::new()),
        })
    }

    /// A container read on from a checkpoint: entries up to and including the
    /// checkpointed ones are skipped when they come again.
    pub fn resume(ckpt: DockerCheckpoint) -> ContainerLog {
        let source: Arc<str> = ckpt.container.as_str().into();
        let path: Arc<str> = format!("docker://{}", ckpt.container_id).into();
        ContainerLog {
            skip: ckpt.count,
            replaying: ckpt.time.is_some(),
            ckpt,
            source,
            path,
            messages: Vec::new(),
        }
    }

    /// Reports lines under another path (e.g. the json-file on disk).
    pub fn with_path(mut self, path: &str) -> ContainerLog {
        self.path = path.into();
        self
    }

    /// The state to store; valid once every line handed out so far is processed.
    pub fn checkpoint(&self) -> &DockerCheckpoint {
        &self.ckpt
    }

    /// The `since` query value for the logs API: the checkpoint's time as
    /// `seconds.nanoseconds` (Docker includes entries at exactly that time).
    pub fn since_param(&self) -> Option<String> {
        let t = self.ckpt.time?;
        Some(format!(
            "{}.{:09}",
            t.as_second(),
            t.subsec_nanosecond().max(0)
        ))
    }

    /// Feeds one raw entry; whole messages go to `out`. Entries already consumed
    /// before the checkpoint are dropped.
    pub fn feed(&mut self, entry: Entry, out: &mut Vec<DockerLine>) {
        if !self.advance(entry.time) {
            return;
        }
        let mut msgs = std::mem::take(&mut self.messages);
        self.ckpt.joiner.0.push(entry, &mut msgs);
        self.emit(&mut msgs, out);
        self.messages = msgs;
    }

    /// Emits whatever the joiner holds (end of input or the stream went quiet).
    pub fn flush(&mut self, out: &mut Vec<DockerLine>) {
        let mut msgs = std::mem::take(&mut self.messages);
        self.ckpt.joiner.0.flush(&mut msgs);
        self.emit(&mut msgs, out);
        self.messages = msgs;
    }

    /// Whether the joiner holds nothing back.
    pub fn is_idle(&self) -> bool {
        self.ckpt.joiner.0.is_idle()
    }

    /// Moves the raw position past an entry at `time`; false = seen before.
    ///
    /// Only the replay after a resume is filtered by time: stdout and stderr are
    /// stamped by separate copiers in dockerd, so live entries may come a few
    /// nanoseconds out of order and must not be dropped for it.
    fn advance(&mut self, time: Timestamp) -> bool {
        if self.replaying {
            let t = self.ckpt.time.unwrap_or(time);
            if time < t || (time == t && self.skip > 0) {
                self.skip = self.skip.saturating_sub(u64::from(time == t));
                return false;
            }
            self.replaying = false;
        }
        match self.ckpt.time {
            Some(t) if time == t => self.ckpt.count += 1,
            // An entry stamped a little earlier than the last one: consumed, and a
            // replay skips it anyway, so the position stays.
            Some(t) if time < t => {}
            _ => {
                self.ckpt.time = Some(time);
                self.ckpt.count = 1;
            }
        }
        true
    }

    fn emit(&mut self, msgs: &mut Vec<Message>, out: &mut Vec<DockerLine>) {
        for m in msgs.drain(..) {
            let invalid_utf8 = m.text.contains('\u{FFFD}');
            out.push(DockerLine {
                line: Line {
                    source: self.source.clone(),
                    path: self.path.clone(),
                    offset: self.ckpt.emitted,
                    text: m.text,
                    truncated: m.truncated,
                    invalid_utf8,
                },
                time: m.time,
                stream: m.stream,
                container: self.source.clone(),
            });
            self.ckpt.emitted += 1;
        }
    }
}

/// Writes every container's checkpoint to `path` crash-safely: a temporary file,
/// fsync, then rename, so a crash leaves the old or the new state, never half.
pub fn save_checkpoints(
    path: &Path,
    checkpoints: &HashMap<String, DockerCheckpoint>,
) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let sorted: BTreeMap<_, _> = checkpoints.iter().collect();
    file.write_all(&serde_json::to_vec(&sorted).map_err(io::Error::other)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Reads checkpoints written by [`save_checkpoints`]; none when the file is absent.
pub fn load_checkpoints(path: &Path) -> io::Result<HashMap<String, DockerCheckpoint>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("docker checkpoints {} are corrupt: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(e),
    }
}

/// Splits the logs API's byte stream into `(stream, payload)` frames.
///
/// Without a TTY the API multiplexes stdout and stderr: an 8-byte header (stream
/// byte, three zeros, big-endian length) before each payload. With a TTY it sends raw
/// bytes, one line per message, all on stdout. Bytes are buffered until a frame is
/// whole, so a read timeout in the middle of one loses nothing.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    tty: bool,
}

impl FrameDecoder {
    /// A decoder for a container with (`tty = true`) or without a TTY.
    pub fn new(tty: bool) -> FrameDecoder {
        FrameDecoder {
            tty,
            ..FrameDecoder::default()
        }
    }

    /// Adds bytes read from the response.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one is buffered.
    pub fn next_frame(&mut self) -> Option<(Stream, &[u8])> {
        let rest = &self.buf[self.start..];
        if self.tty {
            let end = memchr::memchr(b'\n', rest)? + 1;
            let at = self.start;
            self.start += end;
            return Some((Stream::Stdout, &self.buf[at..at + end]));
        }
        if rest.len() < 8 {
            return None;
        }
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        if rest.len() < 8 + len {
            return None;
        }
        let stream = if rest[0] == 2 {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        let at = self.start + 8;
        self.start = at + len;
        Some((stream, &self.buf[at..at + len]))
    }

    /// Compacts consumed bytes away (call after draining frames).
    pub fn compact(&mut self) {
        self.buf.drain(..self.start);
        self.start = 0;
    }
}

/// How palisade picks one container (or a group) and parses its logs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerSelector {
    /// Container name, e.g. `prompt-nginx` (without the leading `/`).
    pub name: Option<String>,
    /// A label, `key` or `key=value`; every container carrying it is read.
    pub label: Option<String>,
    /// A compose service (`com.docker.compose.service` label), e.g. `backend`.
    pub service: Option<String>,
    /// How to parse this container's messages.
    pub parser: ParserConfig,
    /// How to parse its stderr, when that differs (nginx writes its error log there);
    /// `parser` reads both streams when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_parser: Option<ParserConfig>,
}

/// A log file inside a container (e.g. `/app/logs/security.log`), read through
/// `/proc/<pid>/root` of the container's main process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerFile {
    pub container: String,
    pub path: String,
    pub parser: ParserConfig,
}

/// The `[docker]` section: which containers to read and how to reach Docker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerSourceConfig {
    /// The Engine API socket.
    pub socket: PathBuf,
    /// Containers to follow.
    pub containers: Vec<ContainerSelector>,
    /// Files inside containers to follow.
    pub files: Vec<ContainerFile>,
    /// Where json-file logs live when the API cannot be reached.
    pub json_file_root: PathBuf,
    /// How often (seconds) to look for started, restarted or recreated containers.
    pub poll_seconds: u64,
    /// Emit a held message (possible stack-trace head) after this many milliseconds
    /// without output on its container.
    pub flush_after_ms: u64,
}

impl Default for DockerSourceConfig {
    fn default() -> Self {
        DockerSourceConfig {
            socket: PathBuf::from(api::DEFAULT_SOCKET),
            containers: Vec::new(),
            files: Vec::new(),
            json_file_root: PathBuf::from("/var/lib/docker/containers"),
            poll_seconds: 5,
            flush_after_ms: 1000,
        }
    }
}

/// The Docker part of the reference profile (TOML), for `config init --profile
/// reference`; parses into [`DockerSourceConfig`] under `[docker]`.
pub const DOCKER_PROFILE: &str = r#"# --- Docker -----------------------------------------------------------------------
# palisade reads container logs through the Docker Engine API (read access to the
# socket: run as root or in the `docker` group). If the API is down it falls back to
# the json-file logs under json_file_root (read-only, same checkpoints).
[docker]
socket = "/var/run/docker.sock"
json_file_root = "/var/lib/docker/containers"
poll_seconds = 5             # look for started / restarted / recreated containers
flush_after_ms = 1000        # a stack-trace head waits this long for its `at ...` frames

# nginx in front. Its `main` format is `combined` plus "$http_x_forwarded_for"; the
# header comes from the client (no real_ip, no proxy in front), so it is evidence only
# (see [network] trusted_proxies = [] in the main profile). The zones "api" and
# "login" of limit_req show up as error-log lines on stderr.
[[docker.containers]]
name = "prompt-nginx"
parser = { format = "nginx", log_format = "main" }

# The Node.js backend: JSON lines and `Security event:` records on stdout, errors with
# stack traces on stderr (joined per stream). Failed logins are POSTs to
# /api/auth/login.
[[docker.containers]]
name = "prompt-backend"
parser = { format = "backend" }

# Or pick containers by compose service instead of by name:
# [[docker.containers]]
# service = "backend"
# parser = { format = "backend" }

# The backend also writes /app/logs/security.log inside its container.
[[docker.files]]
container = "prompt-backend"
path = "/app/logs/security.log"
parser = { format = "security_log" }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(time: &str, stream: Stream, text: &str) -> Entry {
        Entry {
            time: time.parse().unwrap(),
            stream,
            text: text.into(),
            partial: false,
        }
    }

    fn feed_all(log: &mut ContainerLog, entries: &[Entry]) -> Vec<String> {
        let mut out = Vec::new();
        for e in entries {
            log.feed(e.clone(), &mut out);
        }
        out.into_iter().map(|l| l.line.text).collect()
    }

    #[test]
    fn resume_from_checkpoint_neither_loses_nor_repeats() {
        let t = "2024-01-01T00:00:01Z";
        let entries = [
            entry(t, Stream::Stdout, "a"),
            entry(t, Stream::Stdout, "b"),
            entry(t, Stream::Stderr, "Error: c"),
            entry("2024-01-01T00:00:02Z", Stream::Stderr, "  at f (x.js:1:1)"),
            entry("2024-01-01T00:00:02Z", Stream::Stdout, "d"),
        ];
        let mut whole = ContainerLog::new("id1", "web");
        let mut all = feed_all(&mut whole, &entries);
        let mut tail = Vec::new();
        whole.flush(&mut tail);
        all.extend(tail.into_iter().map(|l| l.line.text));

        for cut in 0..=entries.len() {
            let mut first = ContainerLog::new("id1", "web");
            let mut got = feed_all(&mut first, &entries[..cut]);
            let saved = serde_json::to_string(first.checkpoint()).unwrap();
            // The engine sends everything since the checkpoint's time again.
            let mut second = ContainerLog::resume(serde_json::from_str(&saved).unwrap());
            got.extend(feed_all(&mut second, &entries));
            let mut tail = Vec::new();
            second.flush(&mut tail);
            got.extend(tail.into_iter().map(|l| l.line.text));
            assert_eq!(got, all, "cut after {cut} entries");
        }
    }

    #[test]
    fn live_entry_stamped_slightly_earlier_is_not_dropped() {
        let mut log = ContainerLog::new("id", "c");
        let mut out = Vec::new();
        log.feed(
            entry("2024-01-01T00:00:00.000000002Z", Stream::Stdout, "a"),
            &mut out,
        );
        log.feed(
            entry("2024-01-01T00:00:00.000000001Z", Stream::Stderr, "b"),
            &mut out,
        );
        log.flush(&mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn checkpoints_survive_save_and_load() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("docker.json");
        assert!(load_checkpoints(&path).unwrap().is_empty());
        let mut log = ContainerLog::new("id1", "web");
        log.feed(
            entry("2024-01-01T00:00:01Z", Stream::Stderr, "Error: held"),
            &mut Vec::new(),
        );
        let saved = HashMap::from([("id1".to_owned(), log.checkpoint().clone())]);
        save_checkpoints(&path, &saved).unwrap();
        assert_eq!(load_checkpoints(&path).unwrap(), saved);
        std::fs::write(&path, b"{").unwrap();
        assert!(
            load_checkpoints(&path).is_err(),
            "corrupt file is an error, not a reset"
        );
    }

    #[test]
    fn since_param_keeps_nanoseconds() {
        let mut log = ContainerLog::new("id", "c");
        log.feed(
            entry("2024-04-03T10:00:00.000000002Z", Stream::Stdout, "x"),
            &mut Vec::new(),
        );
        assert_eq!(log.since_param().unwrap(), "1712138400.000000002");
    }

    #[test]
    fn line_offsets_count_messages_and_source_is_container_name() {
        let mut log = ContainerLog::new("abc", "prompt-nginx");
        let mut out = Vec::new();
        for (i, text) in ["one", "two", "three"].into_iter().enumerate() {
            let t = format!("2024-01-01T00:00:0{i}Z");
            log.feed(entry(&t, Stream::Stdout, text), &mut out);
        }
        log.flush(&mut out);
        let offs: Vec<u64> = out.iter().map(|l| l.line.offset).collect();
        assert_eq!(offs, vec![0, 1, 2]);
        assert_eq!(&*out[0].line.source, "prompt-nginx");
        assert_eq!(&*out[0].line.path, "docker://abc");
    }

    #[test]
    fn frame_decoder_handles_split_frames_and_streams() {
        let mut bytes = Vec::new();
        for (s, p) in [(1u8, &b"out\n"[..]), (2, b"err\n")] {
            bytes.extend([s, 0, 0, 0]);
            bytes.extend((p.len() as u32).to_be_bytes());
            bytes.extend(p);
        }
        let mut d = FrameDecoder::new(false);
        d.extend(&bytes[..5]);
        assert!(d.next_frame().is_none());
        d.extend(&bytes[5..]);
        assert_eq!(d.next_frame(), Some((Stream::Stdout, &b"out\n"[..])));
        assert_eq!(d.next_frame(), Some((Stream::Stderr, &b"err\n"[..])));
        assert_eq!(d.next_frame(), None);
    }

    #[test]
    fn docker_profile_parses_into_the_config_model() {
        #[derive(Deserialize)]
        struct Wrap {
            docker: DockerSourceConfig,
        }
        let w: Wrap = toml::from_str(DOCKER_PROFILE).expect("DOCKER_PROFILE is valid TOML");
        assert_eq!(w.docker.containers.len(), 2);
        assert_eq!(w.docker.containers[0].name.as_deref(), Some("prompt-nginx"));
        assert_eq!(w.docker.files[0].path, "/app/logs/security.log");
    }
}
