//! Sources: where lines come from. Each source yields [`Line`]s with the byte offset
//! they started at, so checkpoints and evidence can point back into the file.
//!
//! - [`docker`]: container logs through the Docker Engine API or json-file/CRI files.
//! - [`file`]: whole files (plain or `.gz`) and stdin for `scan`; live following with
//!   rotation, truncation and checkpoints for `watch`.

pub mod docker;
pub mod file;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One line (or record) read from a source, before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The configured source name.
    pub source: Arc<str>,
    /// The file the line came from (`-` for stdin).
    pub path: Arc<str>,
    /// Byte offset of the line's first byte in that file.
    pub offset: u64,
    /// The line without its terminator (`\n`, `\r\n` or `\r`), invalid UTF-8 replaced.
    pub text: String,
    /// The line was longer than the source's cap and was cut.
    pub truncated: bool,
    /// The line held bytes that are not valid UTF-8 (replaced by U+FFFD).
    pub invalid_utf8: bool,
}

/// Where reading of one file stands; stored so a restart resumes exactly there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Hash of the file's first bytes (see `file::FINGERPRINT_BYTES`): the identity
    /// that survives renames.
    pub fingerprint: u64,
    pub dev: u64,
    pub inode: u64,
    /// The path it was last seen at (informational).
    pub path: String,
    /// Bytes consumed: every line before this offset has been processed and its
    /// detections stored.
    pub offset: u64,
}
