//! The ban record: every ban palisade made, when it ends, and who lifted it early.
//! The firewall only holds what is in force now; this store is the truth it is
//! reconciled from on start (field case 20) and the memory that a manual unban happened
//! (field case 19), so a restart neither loses bans nor undoes unbans.
//!
//! Tables live in palisade's SQLite file next to the other stages' tables, created with
//! `CREATE TABLE IF NOT EXISTS` and versioned by a row in `respond_schema`.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};
use thiserror::Error;

use crate::respond::decision::Ban;

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = 1;

/// Who lifts a ban that ran out.
pub const EXPIRED_BY: &str = "expired";

/// Errors of the ban store.
#[derive(Debug, Error)]
pub enum BanStoreError {
    #[error("cannot open the ban store in {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("ban store query failed ({what}): {source}")]
    Query {
        what: &'static str,
        source: rusqlite::Error,
    },
    #[error(
        "the ban store has schema version {found}, newer than this palisade ({SCHEMA_VERSION}); \
         upgrade palisade"
    )]
    TooNew { found: i64 },
    #[error("the ban store holds an unreadable scope {0:?}; fix or delete that row")]
    BadScope(String),
}

type Result<T> = std::result::Result<T, BanStoreError>;

fn q(what: &'static str) -> impl FnOnce(rusqlite::Error) -> BanStoreError {
    move |source| BanStoreError::Query { what, source }
}

/// A ban as stored, with its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBan {
    pub id: i64,
    pub ban: Ban,
    pub caused_by: String,
    pub simulated: bool,
}

/// The persistent ban record.
pub struct BanStore {
    conn: Connection,
    /// Manual unbans, newest last: small (operators type them), so kept in memory for
    /// the per-event [`BanStore::unbanned_at`] lookup.
    unbans: Vec<(IpNet, Timestamp)>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS respond_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bans (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    until_ms INTEGER,
    reason TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    repeat INTEGER NOT NULL,
    caused_by TEXT NOT NULL,
    simulated INTEGER NOT NULL,
    removed_ms INTEGER,
    removed_by TEXT
);
CREATE INDEX IF NOT EXISTS bans_scope ON bans (scope);
CREATE INDEX IF NOT EXISTS bans_open ON bans (removed_ms);
";

impl BanStore {
    /// Opens (creating if needed) the store in the SQLite file at `path`.
    pub fn open(path: &Path) -> Result<BanStore> {
        // The ban record names addresses and reasons: owner-only, like the store.
        if let Err(e) = crate::store::create_owner_only(path) {
            tracing::warn!(error = %e, "Cannot make the ban record owner-only");
        }
        let conn = Connection::open(path).map_err(|source| BanStoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        BanStore::from_connection(conn)
    }

    /// A throwaway store (tests, `scan` without a database).
    pub fn open_in_memory() -> Result<BanStore> {
        BanStore::from_connection(Connection::open_in_memory().map_err(q("open memory"))?)
    }

    /// Uses an already open connection to palisade's database.
    pub fn from_connection(conn: Connection) -> Result<BanStore> {
        // Other stages write the same file; wait for their locks instead of failing.
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(q("set busy timeout"))?;
        conn.execute_batch(SCHEMA).map_err(q("create tables"))?;
        let found: Option<i64> = conn
            .query_row("SELECT max(version) FROM respond_schema", [], |r| r.get(0))
            .map_err(q("read schema version"))?;
        match found {
            None => {
                let sql = "INSERT INTO respond_schema (version) VALUES (?1)";
                conn.execute(sql, [SCHEMA_VERSION])
                    .map_err(q("write schema version"))?;
            }
            Some(v) if v > SCHEMA_VERSION => return Err(BanStoreError::TooNew { found: v }),
            Some(_) => {}
        }
        let mut store = BanStore {
            conn,
            unbans: Vec::new(),
        };
        store.unbans = store.load_unbans()?;
        Ok(store)
    }

    fn load_unbans(&self) -> Result<Vec<(IpNet, Timestamp)>> {
        let sql = "SELECT scope, max(removed_ms) FROM bans
                   WHERE removed_ms IS NOT NULL AND removed_by <> ?1 GROUP BY scope";
        let mut stmt = self.conn.prepare(sql).map_err(q("load unbans"))?;
        let rows = stmt
            .query_map([EXPIRED_BY], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(q("load unbans"))?;
        let mut out = Vec::new();
        for row in rows {
            let (scope, ms) = row.map_err(q("load unbans"))?;
            out.push((parse_scope(&scope)?, ts(ms)));
        }
        Ok(out)
    }

    /// Records a new ban; returns its row id.
    pub fn insert(&mut self, ban: &Ban, caused_by: &str, simulated: bool) -> Result<i64> {
        let sql = "INSERT INTO bans (scope, created_ms, until_ms, reason, rule_id, repeat,
                   caused_by, simulated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
        self.conn
            .execute(
                sql,
                params![
                    ban.scope.to_string(),
                    ban.created.as_millisecond(),
                    ban.until.map(|t| t.as_millisecond()),
                    ban.reason,
                    ban.rule_id,
                    ban.repeat,
                    caused_by,
                    simulated,
                ],
            )
            .map_err(q("insert ban"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records many bans in one transaction (imports from peers, bulk `ban add`): one
    /// disk sync instead of one per ban. Returns how many were written.
    pub fn insert_many(&mut self, bans: &[Ban], caused_by: &str, simulated: bool) -> Result<usize> {
        let tx = self.conn.transaction().map_err(q("begin bulk insert"))?;
        {
            let sql = "INSERT INTO bans (scope, created_ms, until_ms, reason, rule_id, repeat,
                       caused_by, simulated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
            let mut stmt = tx.prepare(sql).map_err(q("bulk insert"))?;
            for ban in bans {
                stmt.execute(params![
                    ban.scope.to_string(),
                    ban.created.as_millisecond(),
                    ban.until.map(|t| t.as_millisecond()),
                    ban.reason,
                    ban.rule_id,
                    ban.repeat,
                    caused_by,
                    simulated,
                ])
                .map_err(q("bulk insert"))?;
            }
        }
        tx.commit().map_err(q("commit bulk insert"))?;
        Ok(bans.len())
    }

    /// Bans not lifted and not over at `now`, simulated ones included, oldest first.
    pub fn active(&self, now: Timestamp) -> Result<Vec<StoredBan>> {
        let sql = "SELECT id, scope, created_ms, until_ms, reason, rule_id, repeat, caused_by,
                   simulated FROM bans
                   WHERE removed_ms IS NULL AND (until_ms IS NULL OR until_ms > ?1) ORDER BY id";
        let mut stmt = self.conn.prepare(sql).map_err(q("list active bans"))?;
        let rows = stmt
            .query_map([now.as_millisecond()], raw_row)
            .map_err(q("list active bans"))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(q("list active bans"))?.into_stored()?);
        }
        Ok(out)
    }

    /// The active ban covering `ip` at `now`, if any.
    pub fn active_for(&self, ip: IpAddr, now: Timestamp) -> Result<Option<StoredBan>> {
        let ip = ip.to_canonical();
        Ok(self.active(now)?.into_iter().find(|s| s.ban.covers(ip)))
    }

    /// Lifts every open ban of exactly `scope` at `at`, recording `by` (an operator
    /// name, `api`, …). Returns how many rows were lifted.
    pub fn remove(&mut self, scope: IpNet, at: Timestamp, by: &str) -> Result<usize> {
        let sql = "UPDATE bans SET removed_ms = ?1, removed_by = ?2
                   WHERE scope = ?3 AND removed_ms IS NULL";
        let n = self
            .conn
            .execute(sql, params![at.as_millisecond(), by, scope.to_string()])
            .map_err(q("remove ban"))?;
        if by != EXPIRED_BY {
            self.unbans.retain(|(s, _)| *s != scope);
            self.unbans.push((scope, at));
        }
        Ok(n)
    }

    /// Marks bans whose time ran out by `now` as lifted by expiry; returns them.
    pub fn expire(&mut self, now: Timestamp) -> Result<Vec<Ban>> {
        let sql = "SELECT id, scope, created_ms, until_ms, reason, rule_id, repeat, caused_by,
                   simulated FROM bans
                   WHERE removed_ms IS NULL AND until_ms IS NOT NULL AND until_ms <= ?1";
        let mut stmt = self.conn.prepare(sql).map_err(q("find expired bans"))?;
        let rows = stmt
            .query_map([now.as_millisecond()], raw_row)
            .map_err(q("find expired bans"))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(q("find expired bans"))?.into_stored()?);
        }
        drop(stmt);
        let sql = "UPDATE bans SET removed_ms = until_ms, removed_by = ?2
                   WHERE removed_ms IS NULL AND until_ms IS NOT NULL AND until_ms <= ?1";
        self.conn
            .execute(sql, params![now.as_millisecond(), EXPIRED_BY])
            .map_err(q("mark expired bans"))?;
        Ok(out.into_iter().map(|s| s.ban).collect())
    }

    /// How many bans of `scope` (enforced or simulated) started at or after `since`:
    /// the repeat count that escalation works from.
    pub fn repeat_count(&self, scope: IpNet, since: Timestamp) -> Result<u32> {
        let sql = "SELECT count(*) FROM bans WHERE scope = ?1 AND created_ms >= ?2";
        let n: i64 = self
            .conn
            .query_row(
                sql,
                params![scope.to_string(), since.as_millisecond()],
                |r| r.get(0),
            )
            .map_err(q("count earlier bans"))?;
        Ok(n.try_into().unwrap_or(u32::MAX))
    }

    /// When an operator last lifted a ban covering `ip`. The pipeline ignores events
    /// for that key older than this, so replayed failures from before the unban are not
    /// counted again after a restart (field case 19).
    pub fn unbanned_at(&self, ip: IpAddr) -> Option<Timestamp> {
        let ip = ip.to_canonical();
        self.unbans
            .iter()
            .filter(|(scope, _)| scope.contains(&ip))
            .map(|(_, at)| *at)
            .max()
    }

    /// Every manual unban remembered: (scope, when), newest last.
    pub fn unbans(&self) -> &[(IpNet, Timestamp)] {
        &self.unbans
    }

    /// The newest ban row for `scope`, lifted or not (for `palisade ban show`).
    pub fn latest(&self, scope: IpNet) -> Result<Option<StoredBan>> {
        let sql = "SELECT id, scope, created_ms, until_ms, reason, rule_id, repeat, caused_by,
                   simulated FROM bans WHERE scope = ?1 ORDER BY id DESC LIMIT 1";
        let raw = self
            .conn
            .query_row(sql, [scope.to_string()], raw_row)
            .optional()
            .map_err(q("read latest ban"))?;
        raw.map(RawBan::into_stored).transpose()
    }
}

/// A row before its scope text is parsed (rusqlite's closure cannot return our error).
struct RawBan {
    id: i64,
    scope: String,
    created_ms: i64,
    until_ms: Option<i64>,
    reason: String,
    rule_id: String,
    repeat: u32,
    caused_by: String,
    simulated: bool,
}

fn raw_row(r: &Row<'_>) -> rusqlite::Result<RawBan> {
    Ok(RawBan {
        id: r.get(0)?,
        scope: r.get(1)?,
        created_ms: r.get(2)?,
        until_ms: r.get(3)?,
        reason: r.get(4)?,
        rule_id: r.get(5)?,
        repeat: r.get(6)?,
        caused_by: r.get(7)?,
        simulated: r.get(8)?,
    })
}

impl RawBan {
    fn into_stored(self) -> Result<StoredBan> {
        Ok(StoredBan {
            id: self.id,
            ban: Ban {
                scope: parse_scope(&self.scope)?,
                created: ts(self.created_ms),
                until: self.until_ms.map(ts),
                reason: self.reason,
                rule_id: self.rule_id,
                repeat: self.repeat,
            },
            caused_by: self.caused_by,
            simulated: self.simulated,
        })
    }
}

fn parse_scope(s: &str) -> Result<IpNet> {
    s.parse()
        .map_err(|_| BanStoreError::BadScope(s.to_string()))
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;

    fn t0() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    fn ban(scope: &str, created: Timestamp, hours: Option<i64>) -> Ban {
        Ban {
            scope: crate::respond::config::parse_net(scope).unwrap(),
            created,
            until: hours.map(|h| created + SignedDuration::from_hours(h)),
            reason: "test".into(),
            rule_id: "r".into(),
            repeat: 0,
        }
    }

    #[test]
    fn bans_survive_reopening_with_their_original_expiry() {
        // Field case 20: restored with the expiry computed from the original time;
        // a ban that ran out while palisade was down is not restored.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let t = t0();
        {
            let mut s = BanStore::open(&path).unwrap();
            s.insert(&ban("203.0.113.88", t, None), "rule:r", false)
                .unwrap();
            s.insert(&ban("203.0.113.89", t, Some(1)), "rule:r", false)
                .unwrap();
            let early = t - SignedDuration::from_mins(10);
            let mut short = ban("203.0.113.90", early, None);
            short.until = Some(early + SignedDuration::from_mins(5));
            s.insert(&short, "rule:r", false).unwrap();
        }
        let s = BanStore::open(&path).unwrap();
        let active = s.active(t + SignedDuration::from_mins(10)).unwrap();
        let scopes: Vec<String> = active.iter().map(|b| b.ban.scope.to_string()).collect();
        assert_eq!(scopes, ["203.0.113.88/32", "203.0.113.89/32"]);
        assert_eq!(active[0].ban.until, None);
        assert_eq!(active[1].ban.until, Some(t + SignedDuration::from_mins(60)));
    }

    #[test]
    fn manual_unban_is_remembered_across_reopening() {
        // Field case 19: the unban time survives a restart so replayed older failures
        // can be ignored.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let t = t0();
        let unban_at = t + SignedDuration::from_mins(5);
        {
            let mut s = BanStore::open(&path).unwrap();
            let b = ban("198.51.100.61", t, None);
            s.insert(&b, "rule:r", false).unwrap();
            assert_eq!(s.remove(b.scope, unban_at, "operator:ann").unwrap(), 1);
        }
        let s = BanStore::open(&path).unwrap();
        assert!(s.active(unban_at).unwrap().is_empty());
        let ip: IpAddr = "198.51.100.61".parse().unwrap();
        assert_eq!(s.unbanned_at(ip), Some(unban_at));
        assert_eq!(s.unbanned_at("198.51.100.62".parse().unwrap()), None);
    }

    #[test]
    fn expiry_is_not_an_unban() {
        let mut s = BanStore::open_in_memory().unwrap();
        let t = t0();
        s.insert(&ban("192.0.2.1", t, Some(1)), "rule:r", false)
            .unwrap();
        let gone = s.expire(t + SignedDuration::from_hours(2)).unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(s.unbanned_at("192.0.2.1".parse().unwrap()), None);
        assert_eq!(s.repeat_count(gone[0].scope, t).unwrap(), 1);
    }

    #[test]
    fn newer_schema_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute("INSERT INTO respond_schema VALUES (99)", [])
            .unwrap();
        let err = BanStore::from_connection(conn).err().unwrap();
        assert!(matches!(err, BanStoreError::TooNew { found: 99 }));
    }
}
