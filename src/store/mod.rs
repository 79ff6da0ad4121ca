//! The SQLite store: detections with bounded, redacted samples, file checkpoints, rule
//! counters and per-minute counters for `status`.
//!
//! The pipeline hands the store one batch at a time ([`Store::commit_batch`] or
//! [`Store::commit`]): the detections found in a run of lines and the checkpoints that
//! say those lines are done. Both land in one transaction, so after a crash or a full
//! disk a restart resumes exactly after the last stored detection — no line is skipped
//! and none is counted twice. A failed batch leaves nothing behind and can be retried
//! as is.
//!
//! - [`schema`]: the ordered migrations and the version check.
//! - [`write`]: batches (detections upsert, samples, checkpoints, counters).
//! - [`read`]: queries for `detections`, samples and checkpoints.
//! - [`aggregate`]: the per-IP and per-rule rollups behind `status`.
//! - [`counters`]: the minute-bucket counters (`failed_login`, `sqli`, …) and
//!   the event classification they share with the metrics.
//! - [`redact`]: secret redaction, also used by the alert sinks.

pub mod aggregate;
pub mod counters;
pub mod read;
pub mod redact;
pub mod schema;
pub mod write;

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

pub use aggregate::{IpActivity, RuleActivity, Window};
pub use counters::{CounterDelta, EventClass, MinuteCounters};
pub use read::{DetectionFilter, RuleCounter, StoredDetection, StoredSample};
pub use write::{Batch, Pruned};

/// How many sample events are kept per detection by default.
pub const DEFAULT_MAX_SAMPLES: usize = 10;

/// How long a writer waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong with the store; every message names the database and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the disk holding {path} is full while {op}; free space (or move `store.path`) — \
         the batch was not written and will be retried"
    )]
    Full { path: PathBuf, op: &'static str },
    #[error(
        "{path} is read-only while {op}; check the file's and its directory's permissions \
         and that the filesystem is mounted read-write — the batch was not written"
    )]
    ReadOnly { path: PathBuf, op: &'static str },
    #[error(
        "cannot open {path} while {op}; check that it exists (for read-only use) and that \
         palisade may read and write it and its directory"
    )]
    CannotOpen { path: PathBuf, op: &'static str },
    #[error(
        "{path} is locked by another process while {op}; stop the other palisade \
         (or point `store.path` elsewhere) — the batch was not written"
    )]
    Busy { path: PathBuf, op: &'static str },
    #[error(
        "{path} is not a palisade database or is corrupt ({op}); move it aside and \
         palisade creates a new one"
    )]
    Corrupt { path: PathBuf, op: &'static str },
    #[error(
        "{path} has schema version {found}, newer than this palisade supports ({supported}); \
         upgrade palisade or point `store.path` at another file"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("cannot prepare {path}: {source}; check the directory exists and is writable")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {op} failed: {source}")]
    Sqlite {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: stored row is invalid ({what}); the database was edited or is damaged")]
    BadRow { path: PathBuf, what: String },
}

impl StoreError {
    /// The condition may clear on its own or by operator action (space, permissions,
    /// a lock): the caller should keep the batch and retry it later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Full { .. }
                | StoreError::ReadOnly { .. }
                | StoreError::CannotOpen { .. }
                | StoreError::Busy { .. }
        )
    }

    /// Maps a SQLite error to the variant that tells the operator what to do.
    pub(crate) fn sqlite(path: &Path, op: &'static str, source: rusqlite::Error) -> StoreError {
        let path = path.to_path_buf();
        match source.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::Full { path, op },
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path, op },
            Some(ErrorCode::CannotOpen) => StoreError::CannotOpen { path, op },
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
                StoreError::Busy { path, op }
            }
            Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt { path, op }
            }
            _ => StoreError::Sqlite { path, op, source },
        }
    }
}

/// The palisade database: one connection, used from one thread (the pipeline's
/// writer); readers (`status`, the HTTP server) open their own.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    max_samples: usize,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, owner-only, in WAL mode, and
    /// brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        create_owner_only(path)?;
        let conn = Connection::open(path).map_err(|e| StoreError::sqlite(path, "opening", e))?;
        let store = Store::setup(conn, path.to_path_buf())?;
        store.tighten_sidecars();
        Ok(store)
    }

    /// Opens an existing database read-only (for `status` and the HTTP server while the
    /// daemon writes); fails if it does not exist or its schema is not current.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| StoreError::sqlite(path, "opening read-only", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| StoreError::sqlite(path, "setting busy timeout", e))?;
        schema::check_current(&conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            max_samples: DEFAULT_MAX_SAMPLES,
        })
    }

    /// A private in-memory database (tests, `scan` without a store).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn =
            Connection::open_in_memory().map_err(|e| StoreError::sqlite(&path, "opening", e))?;
        Store::setup(conn, path)
    }

    fn setup(conn: Connection, path: PathBuf) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| StoreError::sqlite(&path, "setting busy timeout", e))?;
        // WAL lets `status` read while the daemon writes; NORMAL sync is durable
        // across process crashes, and at worst loses the last batches on power loss —
        // whose checkpoints are lost with them, so those lines are simply re-read.
        let pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                       PRAGMA foreign_keys=ON;";
        conn.execute_batch(pragmas)
            .map_err(|e| StoreError::sqlite(&path, "setting pragmas", e))?;
        let mut store = Store {
            conn,
            path,
            max_samples: DEFAULT_MAX_SAMPLES,
        };
        schema::migrate(&mut store.conn, &store.path)?;
        Ok(store)
    }

    /// The database file (`:memory:` for in-memory stores).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Caps the samples kept per detection (at least one).
    pub fn set_max_samples(&mut self, n: usize) {
        self.max_samples = n.max(1);
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::version(&self.conn, &self.path)
    }

    /// The `-wal` and `-shm` files exist once WAL mode is on; SQLite gives them the
    /// database's mode, and we make sure of it in case the file predates us.
    fn tighten_sidecars(&self) {
        for suffix in ["-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let p = PathBuf::from(p);
            if p.exists()
                && let Err(e) = fs::set_permissions(&p, fs::Permissions::from_mode(0o600))
            {
                tracing::warn!(path = %p.display(), error = %e, "Cannot make store file owner-only");
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// Creates the database file with mode 0600 before SQLite opens it (SQLite would use
/// the umask), and tightens an existing file that is readable by others: detections
/// and samples hold client addresses and request lines.
pub fn create_owner_only(path: &Path) -> Result<(), StoreError> {
    let io_err = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(e)),
    }
    let mode = fs::metadata(path).map_err(io_err)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777),
            "Store readable by others; making it owner-only");
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
