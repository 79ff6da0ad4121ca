//! File sources: reading whole files for `scan`, following them for `watch`.
//!
//! - [`read_lines`] reads a plain file, a gzip file (recognised by its magic bytes, not
//!   its name) or standard input (`-`) start to end, reusing one [`Line`] buffer. This
//!   is the `scan` hot path: big reads, `memchr` for terminators, no allocation per line.
//! - [`Tailer`] follows globs of files for `watch`: new data, new files, rotation by
//!   rename, copytruncate, in-place rewrites and re-pointed symlinks. Files are known by
//!   identity (a fingerprint of their first bytes plus device and inode), not by path,
//!   and [`Tailer::checkpoints`] says how far every file has been handed out.
//! - [`save_checkpoints_file`] / [`load_checkpoints_file`] keep checkpoints in a JSON
//!   file, written crash-safely, for runs without the SQLite store.
//!
//! Both readers share one line splitter (`split`), so `scan` and `watch` cut lines the
//! same way: `\n`, `\r\n` and a lone `\r` end a line; lines over the source's
//! `max_line_bytes` are cut on a character boundary and flagged; invalid UTF-8 is
//! replaced and flagged.
//!
//! [`Line`]: crate::sources::Line

mod checkpoint_file;
mod scan;
mod split;
mod tail;

use std::path::{Path, PathBuf};

use thiserror::Error;

pub use checkpoint_file::{CHECKPOINT_FILE_VERSION, load_checkpoints_file, save_checkpoints_file};
pub use scan::{ReadOptions, ReadStats, read_lines, total_bytes};
pub use tail::{SourceTailStats, TailNotice, TailOptions, TailSpec, TailStats, Tailer};

/// How many leading bytes identify a file: its fingerprint hashes the first line, or
/// the first this-many bytes when the first line is longer.
pub const FINGERPRINT_BYTES: usize = 256;

/// The first two bytes of every gzip member.
pub(crate) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Errors reading files, expanding globs and keeping checkpoint files.
#[derive(Debug, Error)]
pub enum SourceError {
    #[error("cannot open {path}: {error} (check that it exists and palisade may read it)")]
    Open {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot decompress {path}: {error} (is the gzip file complete?)")]
    Gzip {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid glob pattern {pattern:?}: {message}")]
    Glob { pattern: String, message: String },
    #[error("no file matches {pattern:?}")]
    NoMatch { pattern: String },
    #[error("cannot write checkpoint file {path}: {error}")]
    CheckpointWrite {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot read checkpoint file {path}: {message} (move it aside to start over)")]
    CheckpointRead { path: PathBuf, message: String },
}

/// True when `pattern` holds glob syntax (`*`, `?`, `[`).
pub(crate) fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// The existing paths a pattern names right now, sorted; empty when none. A plain
/// path is returned as is when it exists (symlinks included).
pub(crate) fn matching_paths(pattern: &str) -> Result<Vec<PathBuf>, SourceError> {
    if !is_glob(pattern) {
        let path = PathBuf::from(pattern);
        return Ok(if path.exists() {
            vec![path]
        } else {
            Vec::new()
        });
    }
    let entries = glob::glob(pattern).map_err(|e| SourceError::Glob {
        pattern: pattern.to_owned(),
        message: e.to_string(),
    })?;
    // Unreadable directory entries are skipped: they are not files we could read.
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    Ok(paths)
}

/// Expands a `scan` argument into files: `-` stays `-` (stdin), a glob becomes its
/// sorted matches, a plain path must exist.
pub fn expand_paths(pattern: &str) -> Result<Vec<PathBuf>, SourceError> {
    if pattern == "-" {
        return Ok(vec![PathBuf::from("-")]);
    }
    let paths = matching_paths(pattern)?;
    if paths.is_empty() && !is_glob(pattern) {
        return Err(SourceError::Open {
            path: PathBuf::from(pattern),
            error: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    if paths.is_empty() {
        return Err(SourceError::NoMatch {
            pattern: pattern.to_owned(),
        });
    }
    Ok(paths)
}

/// FNV-1a: tiny and stable across releases and platforms, which a fingerprint stored
/// in a checkpoint must be (std's hasher makes no such promise).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The fingerprint of a file that starts with `head` (up to [`FINGERPRINT_BYTES`]):
/// the hash of its first line including the terminator byte, or of all
/// [`FINGERPRINT_BYTES`] when the first line is longer. `None` until that much has
/// been written. Never 0, which checkpoints use for "not known".
pub(crate) fn fingerprint_of(head: &[u8]) -> Option<u64> {
    let head = &head[..head.len().min(FINGERPRINT_BYTES)];
    let end = match memchr::memchr2(b'\n', b'\r', head) {
        Some(i) => i + 1,
        None if head.len() == FINGERPRINT_BYTES => head.len(),
        None => return None,
    };
    Some(fnv1a(&head[..end]).max(1))
}

/// Reads a file's fingerprint through an open handle.
pub(crate) fn fingerprint_file(file: &std::fs::File) -> std::io::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; FINGERPRINT_BYTES];
    let mut n = 0;
    while n < buf.len() {
        let got = file.read_at(&mut buf[n..], n as u64)?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(fingerprint_of(&buf[..n]))
}

/// The path as text for [`crate::sources::Line::path`] and checkpoints.
pub(crate) fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
