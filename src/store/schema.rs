//! Schema migrations, applied in order and recorded in `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema from version `i` to `i + 1` and runs
//! in its own transaction with the version bump, so an interrupted upgrade leaves the
//! previous version intact. Never edit a released migration: append a new one.
//! A database written by a newer palisade (a version above ours) is refused rather
//! than misread.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// The ordered migrations; index `i` upgrades version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: detections, samples, checkpoints, rule counters, minute counters.
    r#"
    CREATE TABLE detections (
        id              INTEGER PRIMARY KEY,
        rule_id         TEXT NOT NULL,
        rule_title      TEXT NOT NULL,
        level           TEXT NOT NULL,
        level_rank      INTEGER NOT NULL,
        tags            TEXT NOT NULL,          -- JSON array
        key_string      TEXT NOT NULL,
        key_json        TEXT NOT NULL,          -- JSON object field -> value
        source_ip       TEXT,                   -- the `source.ip` key value, if keyed by it
        count           INTEGER NOT NULL,
        first_seen      TEXT NOT NULL,          -- UTC RFC 3339
        first_seen_unix INTEGER NOT NULL,
        last_seen       TEXT NOT NULL,
        last_seen_unix  INTEGER NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('fired', 'closed')),
        updated_at      TEXT NOT NULL,          -- wall clock of the write (bookkeeping)
        UNIQUE (rule_id, key_string, first_seen)
    );
    CREATE INDEX detections_last_seen ON detections (last_seen_unix);
    CREATE INDEX detections_rule ON detections (rule_id, last_seen_unix);
    CREATE INDEX detections_source_ip ON detections (source_ip, last_seen_unix);

    CREATE TABLE detection_samples (
        detection_id INTEGER NOT NULL REFERENCES detections (id) ON DELETE CASCADE,
        seq          INTEGER NOT NULL,
        event_time   TEXT NOT NULL,
        source       TEXT NOT NULL,
        log_offset   INTEGER NOT NULL,
        raw          TEXT NOT NULL,             -- redacted
        event_json   TEXT NOT NULL,             -- redacted
        PRIMARY KEY (detection_id, seq)
    );

    CREATE TABLE checkpoints (
        source      TEXT NOT NULL,
        fingerprint INTEGER NOT NULL,           -- u64 stored as its i64 bit pattern
        dev         INTEGER NOT NULL,
        inode       INTEGER NOT NULL,
        path        TEXT NOT NULL,
        log_offset  INTEGER NOT NULL CHECK (log_offset >= 0),
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (source, fingerprint)
    );

    CREATE TABLE rule_counters (
        rule_id          TEXT PRIMARY KEY,
        matches_total    INTEGER NOT NULL DEFAULT 0,
        detections_total INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE counters (
        minute INTEGER NOT NULL,                -- unix seconds of the minute's start
        name   TEXT NOT NULL,
        value  INTEGER NOT NULL,
        PRIMARY KEY (minute, name)
    ) WITHOUT ROWID;
    "#,
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// The database's schema version (0 for a new file).
pub fn version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| StoreError::sqlite(path, "reading schema version", e))
}

/// Applies every migration the database lacks; refuses a newer database.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let mut current = check_not_newer(conn, path)?;
    while current < latest() {
        let sql = MIGRATIONS[current as usize];
        let tx = conn
            .transaction()
            .map_err(|e| StoreError::sqlite(path, "starting migration", e))?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::sqlite(path, "migrating schema", e))?;
        // PRAGMA takes no parameters; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {}", current + 1))
            .map_err(|e| StoreError::sqlite(path, "recording schema version", e))?;
        tx.commit()
            .map_err(|e| StoreError::sqlite(path, "committing migration", e))?;
        current += 1;
        tracing::info!(path = %path.display(), version = current, "Store schema migrated");
    }
    Ok(())
}

/// For read-only opens: the schema must be exactly ours.
pub fn check_current(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let found = check_not_newer(conn, path)?;
    if found < latest() {
        return Err(StoreError::BadRow {
            path: path.to_path_buf(),
            what: format!(
                "schema version {found} is older than {}; run palisade once with write \
                 access to upgrade it",
                latest()
            ),
        });
    }
    Ok(())
}

fn check_not_newer(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let found = version(conn, path)?;
    if found > latest() {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: latest(),
        });
    }
    Ok(found)
}
