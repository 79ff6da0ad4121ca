//! Live following of files for `watch`.
//!
//! A [`Tailer`] is polled by the caller's loop (every `watch.poll_interval`); each
//! [`Tailer::poll`] does three things for every [`TailSpec`]:
//!
//! 1. **Discover**: expand the pattern and stat every match (following symlinks). A
//!    match whose device/inode is already followed is the same file, even under a new
//!    name. A match that is new is opened and started at its checkpoint (found by
//!    device/inode and fingerprint), at 0, or at its end (`start_at_end`, first poll
//!    only). A followed file no longer reachable by its pattern is *detached*: it was
//!    renamed away (rotation), deleted, or a symlink now points elsewhere.
//! 2. **Check** each attached file for content replaced under the same inode: size
//!    below the read position (copytruncate), a changed fingerprint of the first line,
//!    or changed bytes just before the read position (rewrite). The last lines handed
//!    out are then looked up in the new content: found → resume after them
//!    ([`TailNotice::Rewritten`], no line counted twice); not found → read from 0
//!    ([`TailNotice::Truncated`]).
//! 3. **Read** everything new through the open handle, oldest file first, so a rotated
//!    file is drained (including lines its writer appended after the rename) before
//!    its successor. A detached file is dropped after it stayed idle for
//!    `detached_idle_polls` polls.
//!
//! An unfinished last line (no terminator yet, or a trailing `\r` that may become
//! `\r\n`) is held back until completed, and [`Tailer::checkpoints`] never goes past
//! it, so a restart neither loses nor repeats a line.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::ops::ControlFlow;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::split::{RawLine, Splitter, push_lossy};
use super::{GZIP_MAGIC, fingerprint_file, matching_paths, path_text};
use crate::config::{SourceConfig, WatchConfig};
use crate::sources::{Checkpoint, Line};

/// Lines remembered per file to recognise them after an in-place rewrite.
const RECENT_LINES: usize = 4;
/// Bytes before the read position compared on every poll to notice a rewrite that
/// kept the first line.
const TAIL_SIG_BYTES: u64 = 128;
/// How much of a rewritten file is searched for the lines read last.
const REWRITE_SEARCH_BYTES: u64 = 16 * 1024 * 1024;
/// Lines a rewritten log may keep in front of the survivors (a header).
const HEADER_LINES: usize = 8;
/// Read size for following.
const TAIL_CHUNK: usize = 64 * 1024;

/// One configured source to follow.
#[derive(Debug, Clone)]
pub struct TailSpec {
    /// The source name carried by every [`Line`] and checkpoint.
    pub source: Arc<str>,
    /// A path or a glob (`/var/log/nginx/*.log`). `-` (stdin) cannot be followed here;
    /// read it with [`super::read_lines`].
    pub pattern: String,
    /// Lines longer than this are cut and flagged.
    pub max_line_bytes: usize,
}

impl TailSpec {
    /// The spec for a configured source.
    pub fn from_config(source: &SourceConfig) -> TailSpec {
        TailSpec {
            source: Arc::from(source.display_name()),
            pattern: source.path.clone(),
            max_line_bytes: source.max_line_bytes,
        }
    }
}

/// How a [`Tailer`] behaves.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Files found on the first poll without a checkpoint start at their end (after
    /// their last complete line). Files that appear later always start at 0: they are
    /// new, and everything in them is news.
    pub start_at_end: bool,
    /// Most bytes read from one file per poll, so a large backlog cannot fill memory;
    /// [`Tailer::has_backlog`] says when to poll again right away.
    pub max_bytes_per_poll: u64,
    /// Polls a rotated-away file is kept open without new data before it is dropped
    /// (its writer may take a while to reopen the new file).
    pub detached_idle_polls: u32,
}

impl Default for TailOptions {
    fn default() -> Self {
        TailOptions {
            start_at_end: false,
            max_bytes_per_poll: 8 * 1024 * 1024,
            detached_idle_polls: 25,
        }
    }
}

impl TailOptions {
    /// Options from the `[watch]` section.
    pub fn from_config(watch: &WatchConfig) -> TailOptions {
        TailOptions {
            start_at_end: watch.start_at_end,
            ..TailOptions::default()
        }
    }
}

/// Something that happened to a followed file: the caller logs it and counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailNotice {
    /// A file is now followed from `offset` (0, or its end with `start_at_end`).
    NewFile {
        source: Arc<str>,
        path: String,
        offset: u64,
    },
    /// A file was recognised from a checkpoint and is read on from `offset`.
    Resumed {
        source: Arc<str>,
        path: String,
        offset: u64,
    },
    /// The file at `path` was renamed away or the path (symlink) now names another
    /// file; the old one is read to its end first.
    Rotated { source: Arc<str>, path: String },
    /// Content shrank below the read position or was replaced (copytruncate); reading
    /// restarts at 0.
    Truncated {
        source: Arc<str>,
        path: String,
        old_offset: u64,
        size: u64,
    },
    /// Content was rewritten in place; reading resumes after the lines already read.
    Rewritten {
        source: Arc<str>,
        path: String,
        resumed_at: u64,
    },
    /// A followed file was deleted; what remained in it has been read.
    Gone { source: Arc<str>, path: String },
    /// A file uses lone `\r` line endings (reported once per file).
    CrOnlyEndings { source: Arc<str>, path: String },
    /// A file or pattern could not be read (reported once until it recovers).
    Error {
        source: Arc<str>,
        path: String,
        message: String,
    },
}

impl TailNotice {
    /// A short stable name, e.g. for a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            TailNotice::NewFile { .. } => "new_file",
            TailNotice::Resumed { .. } => "resumed",
            TailNotice::Rotated { .. } => "rotated",
            TailNotice::Truncated { .. } => "truncated",
            TailNotice::Rewritten { .. } => "rewritten",
            TailNotice::Gone { .. } => "gone",
            TailNotice::CrOnlyEndings { .. } => "cr_only_endings",
            TailNotice::Error { .. } => "error",
        }
    }
}

impl fmt::Display for TailNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TailNotice::NewFile {
                source,
                path,
                offset,
            } => {
                write!(f, "{source}: following {path} from byte {offset}")
            }
            TailNotice::Resumed {
                source,
                path,
                offset,
            } => {
                write!(f, "{source}: resuming {path} at checkpoint byte {offset}")
            }
            TailNotice::Rotated { source, path } => {
                write!(
                    f,
                    "{source}: {path} was rotated; reading the old file to its end"
                )
            }
            TailNotice::Truncated {
                source,
                path,
                old_offset,
                size,
            } => write!(
                f,
                "{source}: {path} was truncated ({size} bytes, read up to {old_offset}); \
                 reading it again from the start"
            ),
            TailNotice::Rewritten {
                source,
                path,
                resumed_at,
            } => write!(
                f,
                "{source}: {path} was rewritten in place; resuming after the lines already \
                 read, at byte {resumed_at}"
            ),
            TailNotice::Gone { source, path } => write!(f, "{source}: {path} was deleted"),
            TailNotice::CrOnlyEndings { source, path } => write!(
                f,
                "{source}: {path} uses old Mac (CR-only) line endings; lines are split on them"
            ),
            TailNotice::Error {
                source,
                path,
                message,
            } => {
                write!(f, "{source}: cannot follow {path}: {message}")
            }
        }
    }
}

/// Counters for one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceTailStats {
    /// Files followed right now.
    pub files: u64,
    /// Lines handed out.
    pub lines: u64,
    /// Bytes handed out (lines with their terminators).
    pub bytes: u64,
    /// Truncations (copytruncate) detected.
    pub truncations: u64,
    /// Rotations (rename, re-pointed symlink) detected.
    pub rotations: u64,
    /// In-place rewrites detected.
    pub rewrites: u64,
    /// Lines cut to `max_line_bytes`.
    pub lines_truncated: u64,
    /// Lines with invalid UTF-8.
    pub invalid_utf8_lines: u64,
    /// Errors reported.
    pub errors: u64,
}

/// Counters per source name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailStats {
    pub sources: BTreeMap<Arc<str>, SourceTailStats>,
}

type FileId = (u64, u64);

/// One open, followed file.
struct Follower {
    spec: usize,
    path: PathBuf,
    path_text: Arc<str>,
    file: File,
    id: FileId,
    fingerprint: Option<u64>,
    split: Splitter,
    /// Offset after the last line handed out.
    committed: u64,
    /// Hashes of the last lines handed out, oldest first.
    recent: VecDeque<u64>,
    /// Hash of the bytes in `[committed - TAIL_SIG_BYTES, committed)`.
    tail_sig: Option<u64>,
    detached: bool,
    idle_polls: u32,
    cr_reported: bool,
    backlog: bool,
}

/// Follows the files of several sources; see the module docs.
pub struct Tailer {
    specs: Vec<TailSpec>,
    opts: TailOptions,
    followers: Vec<Follower>,
    /// Checkpoints not yet matched to a file (only consulted until the first poll ends).
    pending: Vec<(String, Checkpoint)>,
    first_poll: bool,
    /// Files seen and deliberately not followed (gzip archives).
    ignored: HashSet<FileId>,
    /// Paths whose error was reported, so it is not repeated every poll.
    reported_errors: HashSet<String>,
    stats: BTreeMap<Arc<str>, SourceTailStats>,
    buf: Vec<u8>,
}

impl Tailer {
    /// A tailer for `specs`, resuming the files named in `checkpoints` (source name,
    /// checkpoint) where they were left. Nothing is read until [`Tailer::poll`].
    pub fn new(
        specs: Vec<TailSpec>,
        checkpoints: Vec<(String, Checkpoint)>,
        opts: TailOptions,
    ) -> Tailer {
        let stats = specs
            .iter()
            .map(|s| (s.source.clone(), SourceTailStats::default()))
            .collect();
        Tailer {
            specs,
            opts,
            followers: Vec::new(),
            pending: checkpoints,
            first_poll: true,
            ignored: HashSet::new(),
            reported_errors: HashSet::new(),
            stats,
            buf: vec![0; TAIL_CHUNK],
        }
    }

    /// Reads everything available from every followed file once, appending complete
    /// lines to `out` (per file in order; rotated files before their successors), and
    /// returns what happened to the files.
    pub fn poll(&mut self, out: &mut Vec<Line>) -> Vec<TailNotice> {
        let mut notices = Vec::new();
        for spec in 0..self.specs.len() {
            self.discover(spec, &mut notices);
        }
        if self.first_poll {
            self.resume_rotated_while_stopped(&mut notices);
            self.pending.clear();
            self.first_poll = false;
        }
        for i in 0..self.followers.len() {
            if !self.followers[i].detached {
                self.check_replaced(i, &mut notices);
            }
            self.read_follower(i, out, &mut notices);
        }
        self.drop_idle_detached(out);
        self.count_files();
        notices
    }

    /// Where every followed file stands: each line before `offset` has been returned
    /// by [`Tailer::poll`]. Store these together with the detections from those lines.
    pub fn checkpoints(&self) -> Vec<(String, Checkpoint)> {
        let followed = self.followers.iter().map(|f| {
            let cp = Checkpoint {
                fingerprint: f.fingerprint.unwrap_or(0),
                dev: f.id.0,
                inode: f.id.1,
                path: path_text(&f.path),
                offset: f.committed,
            };
            (self.specs[f.spec].source.to_string(), cp)
        });
        // Checkpoints of files not seen yet are kept until the first poll has looked.
        followed.chain(self.pending.iter().cloned()).collect()
    }

    /// Counters per source.
    pub fn stats(&self) -> TailStats {
        TailStats {
            sources: self.stats.clone(),
        }
    }

    /// True when some file had more data than one poll reads: poll again soon.
    pub fn has_backlog(&self) -> bool {
        self.followers.iter().any(|f| f.backlog)
    }

    fn stats_for(&mut self, spec: usize) -> &mut SourceTailStats {
        let source = self.specs[spec].source.clone();
        self.stats.entry(source).or_default()
    }

    fn count_files(&mut self) {
        for s in self.stats.values_mut() {
            s.files = 0;
        }
        for i in 0..self.followers.len() {
            let spec = self.followers[i].spec;
            self.stats_for(spec).files += 1;
        }
    }

    /// Reports an error once per path until that path works again.
    fn report_error(
        &mut self,
        spec: usize,
        path: &str,
        message: String,
        out: &mut Vec<TailNotice>,
    ) {
        if !self.reported_errors.insert(path.to_owned()) {
            return;
        }
        tracing::warn!(source = %self.specs[spec].source, path, %message, "Cannot follow file");
        self.stats_for(spec).errors += 1;
        out.push(TailNotice::Error {
            source: self.specs[spec].source.clone(),
            path: path.to_owned(),
            message,
        });
    }

    /// Step 1: match the pattern, attach known files, open new ones, detach lost ones.
    fn discover(&mut self, spec: usize, notices: &mut Vec<TailNotice>) {
        let pattern = self.specs[spec].pattern.clone();
        if pattern == "-" {
            let message = "standard input cannot be followed by the file tailer".to_owned();
            return self.report_error(spec, "-", message, notices);
        }
        let paths = match matching_paths(&pattern) {
            Ok(p) => p,
            Err(e) => return self.report_error(spec, &pattern, e.to_string(), notices),
        };
        let mut seen: HashSet<FileId> = HashSet::new();
        for path in paths {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // gone between glob and stat: next poll sees the new state
            };
            let id = (meta.dev(), meta.ino());
            if !meta.is_file() || !seen.insert(id) || self.ignored.contains(&id) {
                continue;
            }
            if let Some(f) = self
                .followers
                .iter_mut()
                .find(|f| f.spec == spec && f.id == id)
            {
                f.detached = false;
                f.idle_polls = 0;
                if f.path != path {
                    f.path_text = Arc::from(path_text(&path).as_str());
                    f.path = path;
                }
                continue;
            }
            self.open_new(spec, path, id, notices);
        }
        self.detach_unseen(spec, &seen, notices);
    }

    fn detach_unseen(
        &mut self,
        spec: usize,
        seen: &HashSet<FileId>,
        notices: &mut Vec<TailNotice>,
    ) {
        let source = self.specs[spec].source.clone();
        let mut rotations = 0;
        for f in self.followers.iter_mut() {
            if f.spec != spec || f.detached || seen.contains(&f.id) {
                continue;
            }
            f.detached = true;
            f.idle_polls = 0;
            let path = path_text(&f.path);
            let deleted = f.file.metadata().map(|m| m.nlink() == 0).unwrap_or(true);
            if deleted {
                notices.push(TailNotice::Gone {
                    source: source.clone(),
                    path,
                });
            } else {
                rotations += 1;
                notices.push(TailNotice::Rotated {
                    source: source.clone(),
                    path,
                });
            }
        }
        self.stats_for(spec).rotations += rotations;
    }

    /// Opens a newly matched file and decides where to start reading it.
    fn open_new(&mut self, spec: usize, path: PathBuf, id: FileId, notices: &mut Vec<TailNotice>) {
        let text = path_text(&path);
        let opened = File::open(&path).and_then(|file| {
            let meta = file.metadata()?;
            let fingerprint = fingerprint_file(&file)?;
            let gzip = starts_with_gzip(&file)?;
            Ok((
                file,
                (meta.dev(), meta.ino()),
                meta.len(),
                fingerprint,
                gzip,
            ))
        });
        let (file, real_id, size, fingerprint, gzip) = match opened {
            Ok(o) => o,
            Err(e) => return self.report_error(spec, &text, e.to_string(), notices),
        };
        self.reported_errors.remove(&text);
        if gzip {
            tracing::debug!(path = %text, "Not following a gzip file");
            self.ignored.insert(real_id);
            return;
        }
        if real_id != id {
            return; // replaced between stat and open; the next poll sees the new file
        }
        let start = self.start_offset(spec, &file, id, size, fingerprint, &text, notices);
        let mut f = self.follower(spec, path, file, id, start);
        f.fingerprint = fingerprint;
        self.followers.push(f);
    }

    /// Where a newly found file starts: its checkpoint, its end, or 0.
    #[allow(clippy::too_many_arguments)]
    fn start_offset(
        &mut self,
        spec: usize,
        file: &File,
        id: FileId,
        size: u64,
        fingerprint: Option<u64>,
        path: &str,
        notices: &mut Vec<TailNotice>,
    ) -> u64 {
        let source = self.specs[spec].source.clone();
        if let Some(cp) = self.take_checkpoint(&source, id, fingerprint) {
            if cp.offset <= size {
                let offset = cp.offset;
                notices.push(TailNotice::Resumed {
                    source,
                    path: path.to_owned(),
                    offset,
                });
                return offset;
            }
            self.stats_for(spec).truncations += 1;
            notices.push(TailNotice::Truncated {
                source,
                path: path.to_owned(),
                old_offset: cp.offset,
                size,
            });
            return 0;
        }
        if let Some(offset) = self.copy_of_followed(spec, id, fingerprint, size) {
            notices.push(TailNotice::Resumed {
                source,
                path: path.to_owned(),
                offset,
            });
            return offset;
        }
        let offset = if self.first_poll && self.opts.start_at_end {
            end_of_last_line(file, size)
        } else {
            0
        };
        notices.push(TailNotice::NewFile {
            source,
            path: path.to_owned(),
            offset,
        });
        offset
    }

    /// A new file with the fingerprint of a file already followed is a copy of it
    /// (logrotate's `copytruncate` copy, matched by a broad glob): it starts where
    /// the original was read up to, so the copied lines are not handed out twice.
    fn copy_of_followed(&self, spec: usize, id: FileId, fp: Option<u64>, size: u64) -> Option<u64> {
        if self.first_poll {
            return None;
        }
        let fp = fp?;
        self.followers
            .iter()
            .find(|f| f.spec == spec && f.id != id && f.fingerprint == Some(fp))
            .map(|f| f.committed)
            .filter(|&offset| offset <= size)
    }

    /// Finds and removes the checkpoint of this file: same device/inode and
    /// fingerprint, else the same fingerprint (the file was copied or moved across
    /// file systems). A checkpoint with the same inode but another fingerprint is a
    /// different file that reused the inode, and is not used.
    fn take_checkpoint(&mut self, source: &str, id: FileId, fp: Option<u64>) -> Option<Checkpoint> {
        let fp = fp.unwrap_or(0);
        let same_source = |s: &String| s.as_str() == source;
        let by_id = self
            .pending
            .iter()
            .position(|(s, cp)| same_source(s) && (cp.dev, cp.inode) == id && cp.fingerprint == fp);
        let by_fp = || {
            self.pending
                .iter()
                .position(|(s, cp)| same_source(s) && fp != 0 && cp.fingerprint == fp)
        };
        let i = by_id.or_else(by_fp)?;
        Some(self.pending.swap_remove(i).1)
    }

    /// On the first poll: a checkpointed file that no pattern matches any more may
    /// have been rotated while palisade was stopped (`access.log` → `access.log.1`).
    /// Look for it beside its old path and drain it from its checkpoint.
    fn resume_rotated_while_stopped(&mut self, notices: &mut Vec<TailNotice>) {
        let pending = std::mem::take(&mut self.pending);
        for (source, cp) in pending {
            let Some(spec) = self.specs.iter().position(|s| *s.source == *source) else {
                continue;
            };
            let Some((path, file)) = find_sibling(&cp) else {
                continue;
            };
            let id = (cp.dev, cp.inode);
            if self.followers.iter().any(|f| f.id == id) {
                continue;
            }
            notices.push(TailNotice::Resumed {
                source: self.specs[spec].source.clone(),
                path: path_text(&path),
                offset: cp.offset,
            });
            let mut f = self.follower(spec, path, file, id, cp.offset);
            f.fingerprint = Some(cp.fingerprint).filter(|&fp| fp != 0);
            f.detached = true;
            self.followers.push(f);
        }
    }

    fn follower(&self, spec: usize, path: PathBuf, file: File, id: FileId, at: u64) -> Follower {
        Follower {
            spec,
            path_text: Arc::from(path_text(&path).as_str()),
            path,
            file,
            id,
            fingerprint: None,
            split: Splitter::new(self.specs[spec].max_line_bytes, at),
            committed: at,
            recent: VecDeque::with_capacity(RECENT_LINES),
            tail_sig: None,
            detached: false,
            idle_polls: 0,
            cr_reported: false,
            backlog: false,
        }
    }

    /// Step 2: notice content replaced under the same inode and decide where to go on.
    fn check_replaced(&mut self, i: usize, notices: &mut Vec<TailNotice>) {
        let f = &mut self.followers[i];
        let Some((size, current_fp)) = replaced(f) else {
            return;
        };
        let spec = f.spec;
        let cap = self.specs[spec].max_line_bytes;
        let source = self.specs[spec].source.clone();
        let path = path_text(&f.path);
        let old_offset = f.committed;
        let resume = find_resume(&f.file, cap, &f.recent);
        let at = resume.unwrap_or(0);
        f.split = Splitter::new(cap, at);
        f.committed = at;
        f.fingerprint = current_fp;
        f.tail_sig = None;
        f.cr_reported = false;
        if resume.is_none() {
            f.recent.clear();
        }
        let stats = self.stats_for(spec);
        let notice = match resume {
            Some(resumed_at) => {
                stats.rewrites += 1;
                tracing::info!(%source, path, resumed_at, "File rewritten in place");
                TailNotice::Rewritten {
                    source,
                    path,
                    resumed_at,
                }
            }
            None => {
                stats.truncations += 1;
                tracing::info!(%source, path, old_offset, size, "File truncated");
                TailNotice::Truncated {
                    source,
                    path,
                    old_offset,
                    size,
                }
            }
        };
        notices.push(notice);
    }

    /// Step 3: hand out every complete line the file has now (up to the per-poll cap).
    fn read_follower(&mut self, i: usize, out: &mut Vec<Line>, notices: &mut Vec<TailNotice>) {
        let source = self.specs[self.followers[i].spec].source.clone();
        let limit = self.opts.max_bytes_per_poll;
        let (f, buf) = (&mut self.followers[i], &mut self.buf);
        let mut sink = Sink::new(&source, f.path_text.clone());
        let mut read = 0u64;
        let mut error = None;
        f.backlog = false;
        loop {
            if read >= limit {
                f.backlog = true;
                break;
            }
            let want = (limit - read).min(buf.len() as u64) as usize;
            let n = match f.file.read_at(&mut buf[..want], f.split.pos()) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            };
            read += n as u64;
            let _ = f
                .split
                .feed(&buf[..n], |raw| sink.take(raw, out, &mut f.recent));
        }
        f.idle_polls = if read == 0 { f.idle_polls + 1 } else { 0 };
        if sink.lines > 0 {
            f.committed = sink.committed;
            f.tail_sig = tail_sig(f);
        }
        let spec = f.spec;
        let cr_now = !f.cr_reported && f.split.endings.cr > 0;
        f.cr_reported |= cr_now;
        let path = f.path_text.to_string();
        self.account(spec, &sink);
        if cr_now {
            notices.push(TailNotice::CrOnlyEndings {
                source: source.clone(),
                path: path.clone(),
            });
        }
        if let Some(message) = error {
            self.report_error(spec, &path, message, notices);
        }
    }

    fn account(&mut self, spec: usize, sink: &Sink) {
        let s = self.stats_for(spec);
        s.lines += sink.lines;
        s.bytes += sink.bytes;
        s.lines_truncated += sink.truncated;
        s.invalid_utf8_lines += sink.invalid;
    }

    /// Drops rotated-away files that stayed idle long enough, handing out a last
    /// unterminated line first: its writer has moved on and will not finish it.
    fn drop_idle_detached(&mut self, out: &mut Vec<Line>) {
        let limit = self.opts.detached_idle_polls;
        let mut i = 0;
        while i < self.followers.len() {
            let f = &self.followers[i];
            if !(f.detached && f.idle_polls >= limit) {
                i += 1;
                continue;
            }
            let mut f = self.followers.remove(i);
            let source = self.specs[f.spec].source.clone();
            let mut sink = Sink::new(&source, f.path_text.clone());
            let _ = f.split.finish(|raw| sink.take(raw, out, &mut f.recent));
            self.account(f.spec, &sink);
        }
    }
}

/// Turns raw lines into owned [`Line`]s for one file and counts them.
struct Sink {
    source: Arc<str>,
    path: Arc<str>,
    lines: u64,
    bytes: u64,
    truncated: u64,
    invalid: u64,
    committed: u64,
}

impl Sink {
    fn new(source: &Arc<str>, path: Arc<str>) -> Sink {
        Sink {
            source: source.clone(),
            path,
            lines: 0,
            bytes: 0,
            truncated: 0,
            invalid: 0,
            committed: 0,
        }
    }

    fn take(
        &mut self,
        raw: &RawLine<'_>,
        out: &mut Vec<Line>,
        recent: &mut VecDeque<u64>,
    ) -> ControlFlow<()> {
        let mut text = String::with_capacity(raw.bytes.len());
        let invalid_utf8 = push_lossy(&mut text, raw.bytes);
        out.push(Line {
            source: self.source.clone(),
            path: self.path.clone(),
            offset: raw.offset,
            text,
            truncated: raw.truncated,
            invalid_utf8,
        });
        if recent.len() == RECENT_LINES {
            recent.pop_front();
        }
        recent.push_back(line_hash(raw.bytes));
        self.lines += 1;
        self.bytes += raw.end - raw.offset;
        self.truncated += u64::from(raw.truncated);
        self.invalid += u64::from(invalid_utf8);
        self.committed = raw.end;
        ControlFlow::Continue(())
    }
}

/// Whether the content under a followed inode was replaced: size below the read
/// position, another first line, or other bytes just before the read position.
/// Returns the size and current fingerprint when it was.
fn replaced(f: &mut Follower) -> Option<(u64, Option<u64>)> {
    let size = f.file.metadata().ok()?.len();
    if size == 0 && f.committed > 0 {
        // Emptied: a rewrite in progress (truncate, then write) or copytruncate.
        // Decide once content is back, so lines that survive a rewrite can be
        // recognised instead of being read again.
        return None;
    }
    let shrunk = size < f.split.pos();
    let current_fp = fingerprint_file(&f.file).ok().flatten();
    let fp_changed = f.fingerprint.is_some() && current_fp != f.fingerprint;
    let tail_changed = !shrunk && f.tail_sig.is_some() && f.tail_sig != tail_sig(f);
    if f.fingerprint.is_none() && !shrunk {
        f.fingerprint = current_fp;
    }
    (shrunk || fp_changed || tail_changed).then_some((size, current_fp))
}

/// In-memory hash of a line's (capped) bytes; never stored, so std's hasher is fine.
fn line_hash(bytes: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Hash of the bytes just before the read position, or `None` at offset 0.
fn tail_sig(f: &Follower) -> Option<u64> {
    let end = f.committed;
    let start = end.saturating_sub(TAIL_SIG_BYTES);
    if end == 0 {
        return None;
    }
    let mut buf = [0u8; TAIL_SIG_BYTES as usize];
    let want = &mut buf[..(end - start) as usize];
    f.file.read_exact_at(want, start).ok()?;
    Some(super::fnv1a(want))
}

/// After a rewrite: the offset just past the lines read last, found in the new
/// content, or `None` (read from 0). A size-capped log drops its oldest lines, so the
/// survivors are a suffix of what was read, sitting at the start of the new content
/// (or behind a few header lines that are kept). The longest such suffix wins; all
/// remembered lines in a row (two or more) are also accepted anywhere, for edits
/// further up the file.
fn find_resume(file: &File, cap: usize, recent: &VecDeque<u64>) -> Option<u64> {
    if recent.is_empty() {
        return None;
    }
    let lines = line_hashes(file, cap, REWRITE_SEARCH_BYTES);
    let recent: Vec<u64> = recent.iter().copied().collect();
    for m in (1..=recent.len()).rev() {
        let wanted = &recent[recent.len() - m..];
        let anywhere = m == recent.len() && m >= 2;
        let last_start = if anywhere { lines.len() } else { HEADER_LINES };
        let found = lines
            .windows(m)
            .take(last_start + 1)
            .find(|w| w.iter().map(|l| l.0).eq(wanted.iter().copied()));
        if let Some(w) = found {
            return Some(w[m - 1].1);
        }
    }
    None
}

/// (hash, end offset) of each complete line in the first `limit` bytes.
fn line_hashes(file: &File, cap: usize, limit: u64) -> Vec<(u64, u64)> {
    let mut split = Splitter::new(cap, 0);
    let mut lines = Vec::new();
    let mut buf = vec![0u8; TAIL_CHUNK];
    while split.pos() < limit {
        let n = match file.read_at(&mut buf, split.pos()) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let _ = split.feed(&buf[..n], |raw| {
            lines.push((line_hash(raw.bytes), raw.end));
            ControlFlow::Continue(())
        });
    }
    lines
}

/// Start offset for `start_at_end`: just past the last line terminator in the last
/// 64 KiB, so following starts on a line boundary; the end if none is found.
fn end_of_last_line(file: &File, size: u64) -> u64 {
    let from = size.saturating_sub(TAIL_CHUNK as u64);
    let mut buf = vec![0u8; (size - from) as usize];
    if file.read_exact_at(&mut buf, from).is_err() {
        return size;
    }
    match memchr::memrchr(b'\n', &buf) {
        Some(i) => from + i as u64 + 1,
        None => size,
    }
}

fn starts_with_gzip(file: &File) -> std::io::Result<bool> {
    let mut magic = [0u8; 2];
    let n = file.read_at(&mut magic, 0)?;
    Ok(n == 2 && magic == GZIP_MAGIC)
}

/// Looks beside a checkpoint's old path for the file it names (same device, inode
/// and fingerprint): a file rotated while palisade was stopped.
fn find_sibling(cp: &Checkpoint) -> Option<(PathBuf, File)> {
    let dir = Path::new(&cp.path).parent()?;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || (meta.dev(), meta.ino()) != (cp.dev, cp.inode) {
            continue;
        }
        let file = File::open(entry.path()).ok()?;
        let fp = fingerprint_file(&file).ok()?.unwrap_or(0);
        let same = fp == cp.fingerprint && cp.offset <= meta.len();
        return same.then(|| (entry.path(), file));
    }
    None
}
