//! Reading the store: checkpoints on start-up, detections and samples for the CLI and
//! API, and the aggregates `status` needs.

use jiff::Timestamp;
use rusqlite::{Row, params};
use serde::Serialize;

use super::write::parse_state;
use super::{Store, StoreError};
use crate::detect::{DetectionState, Level};
use crate::sources::Checkpoint;

/// Which detections [`Store::detections`] returns. Empty means all, newest first.
#[derive(Debug, Clone, Default)]
pub struct DetectionFilter {
    /// Only episodes whose last event is at or after this instant.
    pub since: Option<Timestamp>,
    /// Only this rule, by id or exact title.
    pub rule: Option<String>,
    /// Only episodes with a key value equal to this (e.g. an IP), or this exact
    /// `field=value,...` key string.
    pub key: Option<String>,
    /// Only this level or higher.
    pub min_level: Option<Level>,
    /// At most this many rows (default 1000).
    pub limit: Option<usize>,
}

/// One stored detection episode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredDetection {
    pub id: i64,
    pub rule_id: String,
    pub rule_title: String,
    pub level: Level,
    pub tags: Vec<String>,
    pub key: Vec<(String, String)>,
    pub key_string: String,
    pub count: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub state: DetectionState,
}

/// One stored (redacted) sample event of a detection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredSample {
    pub seq: u32,
    pub timestamp: Timestamp,
    pub source: String,
    /// Byte offset of the line in its file.
    pub offset: u64,
    /// The raw line, secrets redacted.
    pub raw: String,
    /// The event as ECS JSON, secrets redacted.
    pub event: serde_json::Value,
}

/// Totals per rule since the database was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCounter {
    pub rule_id: String,
    pub matches_total: u64,
    pub detections_total: u64,
}

const DEFAULT_LIMIT: usize = 1000;

impl Store {
    /// Every stored checkpoint, to resume reading where the last run stopped.
    pub fn load_checkpoints(&self) -> Result<Vec<(String, Checkpoint)>, StoreError> {
        let err = |e| StoreError::sqlite(&self.path, "loading checkpoints", e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT source, fingerprint, dev, inode, path, log_offset FROM checkpoints \
                 ORDER BY source, path",
            )
            .map_err(err)?;
        let rows = stmt.query_map([], |r| {
            let cp = Checkpoint {
                fingerprint: r.get::<_, i64>(1)? as u64,
                dev: r.get::<_, i64>(2)? as u64,
                inode: r.get::<_, i64>(3)? as u64,
                path: r.get(4)?,
                offset: r.get::<_, i64>(5)?.max(0) as u64,
            };
            Ok((r.get(0)?, cp))
        });
        rows.and_then(|rows| rows.collect()).map_err(err)
    }

    /// Detections matching `filter`, most recent activity first.
    pub fn detections(&self, filter: &DetectionFilter) -> Result<Vec<StoredDetection>, StoreError> {
        let err = |e| StoreError::sqlite(&self.path, "querying detections", e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, rule_id, rule_title, level, tags, key_json, key_string, count, \
                 first_seen, last_seen, state FROM detections \
                 WHERE (?1 IS NULL OR last_seen_unix >= ?1) \
                 AND (?2 IS NULL OR rule_id = ?2 OR rule_title = ?2) \
                 AND (?3 IS NULL OR key_string = ?3 OR EXISTS \
                      (SELECT 1 FROM json_each(key_json) WHERE json_each.value = ?3)) \
                 AND level_rank >= ?4 \
                 ORDER BY last_seen_unix DESC, id DESC LIMIT ?5",
            )
            .map_err(err)?;
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).min(i64::MAX as usize) as i64;
        let min_rank = filter.min_level.map_or(0, |l| l as i64);
        let rows = stmt
            .query_map(
                params![
                    filter.since.map(|t| t.as_second()),
                    filter.rule,
                    filter.key,
                    min_rank,
                    limit
                ],
                raw_detection,
            )
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(self.decode_detection(row.map_err(err)?)?);
        }
        Ok(out)
    }

    /// The stored samples of one detection, in order.
    pub fn samples(&self, detection_id: i64) -> Result<Vec<StoredSample>, StoreError> {
        let err = |e| StoreError::sqlite(&self.path, "querying samples", e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, event_time, source, log_offset, raw, event_json \
                 FROM detection_samples WHERE detection_id = ?1 ORDER BY seq",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([detection_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, time, source, offset, raw, json) = row.map_err(err)?;
            let mut event: serde_json::Value =
                serde_json::from_str(&json).map_err(|e| self.bad(format!("sample: {e}")))?;
            if let Some(map) = event.as_object_mut() {
                map.insert("event.original".into(), raw.clone().into());
            }
            out.push(StoredSample {
                seq: seq as u32,
                timestamp: self.parse_time(&time)?,
                source,
                offset: offset.max(0) as u64,
                raw,
                event,
            });
        }
        Ok(out)
    }

    /// Per-rule totals, most matches first.
    pub fn rule_counters(&self) -> Result<Vec<RuleCounter>, StoreError> {
        let err = |e| StoreError::sqlite(&self.path, "querying rule counters", e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT rule_id, matches_total, detections_total FROM rule_counters \
                 ORDER BY matches_total DESC, rule_id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(RuleCounter {
                    rule_id: r.get(0)?,
                    matches_total: r.get::<_, i64>(1)?.max(0) as u64,
                    detections_total: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Sum of counter `name` over the minutes starting in `[from, to)`.
    pub fn counter_sum(
        &self,
        name: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<u64, StoreError> {
        let sum: i64 = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(SUM(value), 0) FROM counters \
                 WHERE name = ?1 AND minute >= ?2 AND minute < ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![name, from.as_second(), to.as_second()], |r| {
                    r.get(0)
                })
            })
            .map_err(|e| StoreError::sqlite(&self.path, "querying counters", e))?;
        Ok(sum.max(0) as u64)
    }

    fn decode_detection(&self, raw: RawDetection) -> Result<StoredDetection, StoreError> {
        let key_map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&raw.key_json).map_err(|e| self.bad(format!("key: {e}")))?;
        let key = key_map
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
            .collect();
        Ok(StoredDetection {
            id: raw.id,
            level: Level::parse(&raw.level)
                .ok_or_else(|| self.bad(format!("level {:?}", raw.level)))?,
            tags: serde_json::from_str(&raw.tags).map_err(|e| self.bad(format!("tags: {e}")))?,
            key,
            count: raw.count.max(0) as u64,
            first_seen: self.parse_time(&raw.first_seen)?,
            last_seen: self.parse_time(&raw.last_seen)?,
            state: parse_state(&raw.state)
                .ok_or_else(|| self.bad(format!("state {:?}", raw.state)))?,
            rule_id: raw.rule_id,
            rule_title: raw.rule_title,
            key_string: raw.key_string,
        })
    }

    pub(crate) fn parse_time(&self, text: &str) -> Result<Timestamp, StoreError> {
        text.parse()
            .map_err(|e| self.bad(format!("timestamp {text:?}: {e}")))
    }

    pub(crate) fn bad(&self, what: String) -> StoreError {
        StoreError::BadRow {
            path: self.path.clone(),
            what,
        }
    }
}

/// A detection row before its JSON and text columns are decoded.
struct RawDetection {
    id: i64,
    rule_id: String,
    rule_title: String,
    level: String,
    tags: String,
    key_json: String,
    key_string: String,
    count: i64,
    first_seen: String,
    last_seen: String,
    state: String,
}

fn raw_detection(r: &Row<'_>) -> rusqlite::Result<RawDetection> {
    Ok(RawDetection {
        id: r.get(0)?,
        rule_id: r.get(1)?,
        rule_title: r.get(2)?,
        level: r.get(3)?,
        tags: r.get(4)?,
        key_json: r.get(5)?,
        key_string: r.get(6)?,
        count: r.get(7)?,
        first_seen: r.get(8)?,
        last_seen: r.get(9)?,
        state: r.get(10)?,
    })
}
