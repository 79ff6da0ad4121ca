//! Rollups over a time window for `status`: who is attacking, with which rules, and
//! how many brute-force episodes there were.
//!
//! An episode is in the window when it overlaps it (`last_seen >= from` and
//! `first_seen <= to`): a brute force that began before the window and is still going
//! counts, one that ended before it does not.

use jiff::Timestamp;
use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError};
use crate::detect::Level;

/// A closed time range `[from, to]` in event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
}

/// What one client address did in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpActivity {
    pub ip: String,
    /// Detection episodes keyed by this address.
    pub detections: u64,
    /// Matching events across those episodes.
    pub events: u64,
    pub max_level: Level,
    /// Titles of the rules that fired, most severe first.
    pub rules: Vec<String>,
}

/// What one rule found in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleActivity {
    pub rule_id: String,
    pub title: String,
    pub level: Level,
    pub detections: u64,
    pub events: u64,
    /// Distinct keys (usually client addresses) it fired for.
    pub keys: u64,
}

const LEVELS: [Level; 5] = [
    Level::Informational,
    Level::Low,
    Level::Medium,
    Level::High,
    Level::Critical,
];

fn level_from_rank(rank: i64) -> Level {
    LEVELS[rank.clamp(0, 4) as usize]
}

fn non_negative(n: i64) -> u64 {
    n.max(0) as u64
}

impl Store {
    /// Client addresses with detections in `w`, worst first (level, then events).
    pub fn top_source_ips(&self, w: Window, limit: usize) -> Result<Vec<IpActivity>, StoreError> {
        let err = |e| StoreError::sqlite(&self.path, "summarizing addresses", e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT source_ip, COUNT(*), SUM(count), MAX(level_rank), \
                 (SELECT json_group_array(title) FROM (SELECT DISTINCT d2.rule_title AS title \
                   FROM detections d2 WHERE d2.source_ip = d.source_ip \
                   AND d2.last_seen_unix >= ?1 AND d2.first_seen_unix <= ?2 \
                   ORDER BY d2.level_rank DESC, d2.rule_title)) \
                 FROM detections d WHERE source_ip IS NOT NULL \
                 AND last_seen_unix >= ?1 AND first_seen_unix <= ?2 \
                 GROUP BY source_ip ORDER BY MAX(level_rank) DESC, SUM(count) DESC, source_ip \
                 LIMIT ?3",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(
                params![w.from.as_second(), w.to.as_second(), limit as i64],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (ip, detections, events, rank, rules) = row.map_err(err)?;
            out.push(IpActivity {
                ip,
                detections: non_negative(detections),
                events: non_negative(events),
                max_level: level_from_rank(rank),
                rules: serde_json::from_str(&rules)
                    .map_err(|e| self.bad(format!("rule list: {e}")))?,
            });
        }
        Ok(out)
    }

    /// Rules that fired in `w`, most severe first, then by events.
    pub fn rule_activity(&self, w: Window) -> Result<Vec<RuleActivity>, StoreError> {
        let err = |e| StoreError::sqlite(&self.path, "summarizing rules", e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT rule_id, MAX(rule_title), MAX(level_rank), COUNT(*), SUM(count), \
                 COUNT(DISTINCT key_string) FROM detections \
                 WHERE last_seen_unix >= ?1 AND first_seen_unix <= ?2 \
                 GROUP BY rule_id ORDER BY MAX(level_rank) DESC, SUM(count) DESC, rule_id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![w.from.as_second(), w.to.as_second()], |r| {
                Ok(RuleActivity {
                    rule_id: r.get(0)?,
                    title: r.get(1)?,
                    level: level_from_rank(r.get(2)?),
                    detections: non_negative(r.get(3)?),
                    events: non_negative(r.get(4)?),
                    keys: non_negative(r.get(5)?),
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Brute-force episodes in `w` and their events: rules tagged `attack.t1110*`
    /// (MITRE brute force) or titled "brute force"/"brute-force".
    pub fn brute_force_activity(&self, w: Window) -> Result<(u64, u64), StoreError> {
        let (episodes, events): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(count), 0) FROM detections \
                 WHERE last_seen_unix >= ?1 AND first_seen_unix <= ?2 AND ( \
                   EXISTS (SELECT 1 FROM json_each(tags) WHERE lower(value) LIKE 'attack.t1110%') \
                   OR lower(rule_title) LIKE '%brute force%' \
                   OR lower(rule_title) LIKE '%brute-force%')",
            )
            .and_then(|mut s| {
                s.query_row(params![w.from.as_second(), w.to.as_second()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .map_err(|e| StoreError::sqlite(&self.path, "counting brute-force episodes", e))?;
        Ok((non_negative(episodes), non_negative(events)))
    }
}
