//! Writing batches: detections (upserted per episode), their samples, checkpoints and
//! counters, all in one transaction.
//!
//! An episode is identified by `(rule_id, key_string, first_seen)`: the engine emits a
//! detection when it fires and again, with the final count and samples, when it
//! closes; both writes land on the same row. Samples are replaced on each write and
//! capped, so a long-running attack keeps a bounded footprint however often it is
//! re-emitted.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Transaction, params};

use super::counters::CounterDelta;
use super::redact::{redact, redact_json};
use super::{Store, StoreError};
use crate::detect::{Detection, DetectionState};
use crate::event::Event;
use crate::sources::Checkpoint;

/// Everything one run of lines produced, written atomically by [`Store::commit`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Batch<'a> {
    pub detections: &'a [Detection],
    /// `(source name, checkpoint)`: the lines behind `detections` are done.
    pub checkpoints: &'a [(String, Checkpoint)],
    /// From [`MinuteCounters::drain`](super::MinuteCounters::drain).
    pub counters: &'a [CounterDelta],
}

impl Store {
    /// Stores detections and advances checkpoints in ONE transaction: either all of it
    /// is written or none. On error nothing changed and the same batch can be retried.
    pub fn commit_batch(
        &mut self,
        detections: &[Detection],
        checkpoints: &[(String, Checkpoint)],
    ) -> Result<(), StoreError> {
        self.commit(&Batch {
            detections,
            checkpoints,
            counters: &[],
        })
    }

    /// Adds counter deltas on their own (prefer passing them in the batch of the lines
    /// they came from).
    pub fn record_counters(&mut self, counters: &[CounterDelta]) -> Result<(), StoreError> {
        self.commit(&Batch {
            counters,
            ..Batch::default()
        })
    }

    /// Writes a whole [`Batch`] in one transaction.
    pub fn commit(&mut self, batch: &Batch<'_>) -> Result<(), StoreError> {
        let path = self.path.clone();
        let max_samples = self.max_samples;
        let now = Timestamp::now().to_string();
        let path = &path;
        let err = |op| move |e| StoreError::sqlite(path, op, e);

        let tx = self.conn.transaction().map_err(err("starting a batch"))?;
        for d in batch.detections {
            upsert_detection(&tx, d, max_samples, &now).map_err(err("storing a detection"))?;
        }
        for (source, cp) in batch.checkpoints {
            put_checkpoint(&tx, source, cp, &now).map_err(err("storing a checkpoint"))?;
        }
        for c in batch.counters {
            add_counter(&tx, c).map_err(err("storing counters"))?;
        }
        // Dropping `tx` on an early return rolls everything back.
        tx.commit().map_err(err("committing a batch"))
    }
}

fn upsert_detection(
    tx: &Transaction<'_>,
    d: &Detection,
    max_samples: usize,
    now: &str,
) -> rusqlite::Result<()> {
    let key_string = d.key_string();
    let first_seen = d.first_seen.to_string();
    let existing: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT id, count FROM detections \
             WHERE rule_id = ?1 AND key_string = ?2 AND first_seen = ?3",
        )?
        .query_row(params![d.rule.id, key_string, first_seen], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;

    let count = clamp_i64(d.count);
    let (id, new_matches, new_episodes) = match existing {
        Some((id, old)) => {
            update_detection(tx, id, d, now)?;
            (id, (count - old).max(0), 0)
        }
        None => (
            insert_detection(tx, d, &key_string, &first_seen, now)?,
            count,
            1,
        ),
    };

    tx.prepare_cached(
        "INSERT INTO rule_counters (rule_id, matches_total, detections_total) \
         VALUES (?1, ?2, ?3) ON CONFLICT (rule_id) DO UPDATE SET \
         matches_total = matches_total + excluded.matches_total, \
         detections_total = detections_total + excluded.detections_total",
    )?
    .execute(params![d.rule.id, new_matches, new_episodes])?;

    replace_samples(tx, id, &d.samples, max_samples)
}

fn insert_detection(
    tx: &Transaction<'_>,
    d: &Detection,
    key_string: &str,
    first_seen: &str,
    now: &str,
) -> rusqlite::Result<i64> {
    let tags = serde_json::to_string(&d.rule.tags).unwrap_or_else(|_| "[]".into());
    let key: serde_json::Map<String, serde_json::Value> = d
        .key
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_str().into()))
        .collect();
    let key_json = serde_json::Value::Object(key).to_string();
    tx.prepare_cached(
        "INSERT INTO detections (rule_id, rule_title, level, level_rank, tags, key_string, \
         key_json, source_ip, count, first_seen, first_seen_unix, last_seen, last_seen_unix, \
         state, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        d.rule.id,
        d.rule.title,
        d.rule.level.as_str(),
        d.rule.level as i64,
        tags,
        key_string,
        key_json,
        d.key_value("source.ip"),
        clamp_i64(d.count),
        first_seen,
        d.first_seen.as_second(),
        d.last_seen.to_string(),
        d.last_seen.as_second(),
        state_str(d.state),
        now,
    ])?;
    Ok(tx.last_insert_rowid())
}

fn update_detection(
    tx: &Transaction<'_>,
    id: i64,
    d: &Detection,
    now: &str,
) -> rusqlite::Result<()> {
    // `max` so a late, out-of-order re-emission never moves an episode backwards.
    tx.prepare_cached(
        "UPDATE detections SET count = max(count, ?2), \
         last_seen = CASE WHEN ?4 > last_seen_unix THEN ?3 ELSE last_seen END, \
         last_seen_unix = max(last_seen_unix, ?4), state = ?5, updated_at = ?6 \
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        clamp_i64(d.count),
        d.last_seen.to_string(),
        d.last_seen.as_second(),
        state_str(d.state),
        now,
    ])?;
    Ok(())
}

/// Keeps at most `max` samples: the first half and the last half of what the detection
/// carries (the start of an attack and its latest state are the useful parts).
fn replace_samples(
    tx: &Transaction<'_>,
    id: i64,
    samples: &[Event],
    max: usize,
) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM detection_samples WHERE detection_id = ?1")?
        .execute([id])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO detection_samples \
         (detection_id, seq, event_time, source, log_offset, raw, event_json) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (seq, ev) in bounded(samples, max).enumerate() {
        let mut json = ev.to_json();
        // The raw line has its own column; storing it twice would double the size and
        // the redaction work. `samples()` puts it back.
        if let Some(map) = json.as_object_mut() {
            map.remove("event.original");
        }
        redact_json(&mut json);
        insert.execute(params![
            id,
            seq as i64,
            ev.timestamp.to_string(),
            &*ev.source,
            clamp_i64(ev.offset),
            redact(&ev.raw),
            json.to_string(),
        ])?;
    }
    Ok(())
}

fn bounded(samples: &[Event], max: usize) -> impl Iterator<Item = &Event> {
    let (head, tail) = if samples.len() <= max {
        (samples.len(), 0)
    } else {
        (max.div_ceil(2), max / 2)
    };
    samples[..head]
        .iter()
        .chain(samples[samples.len() - tail..].iter())
}

fn put_checkpoint(
    tx: &Transaction<'_>,
    source: &str,
    cp: &Checkpoint,
    now: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO checkpoints (source, fingerprint, dev, inode, path, log_offset, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (source, fingerprint) DO UPDATE SET \
         dev = excluded.dev, inode = excluded.inode, path = excluded.path, \
         log_offset = excluded.log_offset, updated_at = excluded.updated_at",
    )?
    .execute(params![
        source,
        cp.fingerprint as i64,
        cp.dev as i64,
        cp.inode as i64,
        cp.path,
        clamp_i64(cp.offset),
        now,
    ])?;
    Ok(())
}

fn add_counter(tx: &Transaction<'_>, c: &CounterDelta) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO counters (minute, name, value) VALUES (?1, ?2, ?3) \
         ON CONFLICT (minute, name) DO UPDATE SET value = value + excluded.value",
    )?
    .execute(params![c.minute, c.name, clamp_i64(c.delta)])?;
    Ok(())
}

fn state_str(s: DetectionState) -> &'static str {
    match s {
        DetectionState::Fired => "fired",
        DetectionState::Closed => "closed",
    }
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Parses the stored state text back.
pub(crate) fn parse_state(s: &str) -> Option<DetectionState> {
    match s {
        "fired" => Some(DetectionState::Fired),
        "closed" => Some(DetectionState::Closed),
        _ => None,
    }
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub detections: u64,
    pub counter_rows: u64,
}

impl Store {
    /// Deletes detections (with their samples) whose last event is before `before`,
    /// and counter buckets older than it, so the file does not grow forever. Rule
    /// totals and checkpoints are kept.
    pub fn prune(&mut self, before: Timestamp) -> Result<Pruned, StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::sqlite(&path, "pruning old rows", e);
        let tx = self.conn.transaction().map_err(err)?;
        let cutoff = before.as_second();
        let detections = tx
            .execute("DELETE FROM detections WHERE last_seen_unix < ?1", [cutoff])
            .map_err(err)?;
        let counter_rows = tx
            .execute("DELETE FROM counters WHERE minute + 60 <= ?1", [cutoff])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Pruned {
            detections: detections as u64,
            counter_rows: counter_rows as u64,
        })
    }
}

impl Store {
    /// Drops the checkpoint of a file that is gone for good (rotated away and
    /// deleted), so the table holds only files that may still be read.
    pub fn forget_checkpoint(
        &mut self,
        source: &str,
        fingerprint: u64,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM checkpoints WHERE source = ?1 AND fingerprint = ?2",
                params![source, fingerprint as i64],
            )
            .map_err(|e| StoreError::sqlite(&self.path, "forgetting a checkpoint", e))?;
        Ok(n > 0)
    }
}
