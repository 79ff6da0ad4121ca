//! Store tests: schema, permissions, batch atomicity, upsert, bounded samples.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use jiff::Timestamp;

use super::*;
use crate::detect::{Detection, DetectionState, Level, RuleMeta};
use crate::event::Event;
use crate::sources::Checkpoint;

pub(crate) fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

pub(crate) fn rule(id: &str, level: Level, tags: &[&str]) -> Arc<RuleMeta> {
    Arc::new(RuleMeta {
        id: id.into(),
        name: None,
        title: format!("{id} title"),
        level,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        description: String::new(),
    })
}

pub(crate) fn event(at: &str, offset: u64, raw: &str) -> Event {
    let mut e = Event::new(Arc::from("nginx"), offset, raw.to_string());
    e.timestamp = ts(at);
    e
}

pub(crate) fn detection(rule: &Arc<RuleMeta>, ip: &str, first: &str, count: u64) -> Detection {
    Detection {
        rule: rule.clone(),
        key: vec![("source.ip".into(), ip.into())],
        count,
        first_seen: ts(first),
        last_seen: ts(first),
        samples: vec![event(first, 0, "GET /login?password=hunter2 HTTP/1.1")],
        state: DetectionState::Fired,
    }
}

fn checkpoint(offset: u64) -> (String, Checkpoint) {
    let cp = Checkpoint {
        fingerprint: u64::MAX - 7, // above i64::MAX: must survive the i64 column
        dev: 66306,
        inode: 1234,
        path: "/var/log/nginx/access.log".into(),
        offset,
    };
    ("nginx".into(), cp)
}

#[test]
fn new_database_is_migrated_and_reopens_without_remigrating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let mut s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), schema::latest());
    s.commit_batch(&[], &[checkpoint(10)]).unwrap();
    drop(s);

    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), schema::latest());
    assert_eq!(s.load_checkpoints().unwrap(), vec![checkpoint(10)]);
    let mode: String = s
        .conn()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn database_from_newer_palisade_is_refused_with_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let s = Store::open(&path).unwrap();
    s.conn().execute_batch("PRAGMA user_version = 99").unwrap();
    drop(s);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("p.db") && msg.contains("upgrade palisade"),
        "{msg}"
    );
}

#[test]
fn database_and_wal_files_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let mut s = Store::open(&path).unwrap();
    s.commit_batch(&[], &[checkpoint(1)]).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let p = dir.path().join(format!("p.db{suffix}"));
        let mode = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{} missing: {e}", p.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{} has mode {:o}", p.display(), mode);
    }
}

#[test]
fn existing_world_readable_database_is_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    drop(Store::open(&path).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(Store::open(&path).unwrap());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn failed_batch_advances_no_checkpoint_and_can_be_retried() {
    let mut s = Store::open_in_memory().unwrap();
    s.commit_batch(&[], &[checkpoint(100)]).unwrap();
    // A trigger stands in for any mid-batch failure (constraint, I/O).
    s.conn()
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON detections WHEN NEW.rule_id = 'bad' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    let good = detection(
        &rule("good", Level::High, &[]),
        "192.0.2.1",
        "2024-05-21T10:00:00Z",
        3,
    );
    let bad = detection(
        &rule("bad", Level::High, &[]),
        "192.0.2.2",
        "2024-05-21T10:00:00Z",
        1,
    );
    let batch = [good, bad];

    assert!(s.commit_batch(&batch, &[checkpoint(500)]).is_err());
    assert_eq!(s.load_checkpoints().unwrap(), vec![checkpoint(100)]);
    assert!(
        s.detections(&DetectionFilter::default())
            .unwrap()
            .is_empty()
    );
    assert!(s.rule_counters().unwrap().is_empty());

    s.conn().execute_batch("DROP TRIGGER poison").unwrap();
    s.commit_batch(&batch, &[checkpoint(500)]).unwrap();
    assert_eq!(s.load_checkpoints().unwrap(), vec![checkpoint(500)]);
    assert_eq!(s.detections(&DetectionFilter::default()).unwrap().len(), 2);
}

#[test]
fn disk_full_is_a_typed_retryable_error_naming_the_db() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    let mut s = Store::open(&path).unwrap();
    s.commit_batch(&[], &[checkpoint(100)]).unwrap();
    // Cap the file at its current size: the next growth hits SQLITE_FULL.
    let pages: i64 = s
        .conn()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    s.conn()
        .execute_batch(&format!("PRAGMA max_page_count = {pages}"))
        .unwrap();
    let r = rule("big", Level::Low, &[]);
    let batch: Vec<Detection> = (0..400)
        .map(|i| {
            let mut d = detection(&r, &format!("198.51.100.{i}"), "2024-05-21T10:00:00Z", 1);
            d.samples = vec![event("2024-05-21T10:00:00Z", 0, &"x".repeat(2000)); 3];
            d
        })
        .collect();

    let err = s.commit_batch(&batch, &[checkpoint(900)]).unwrap_err();
    assert!(matches!(err, StoreError::Full { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("full.db"), "{err}");
    assert_eq!(s.load_checkpoints().unwrap(), vec![checkpoint(100)]);

    s.conn()
        .execute_batch("PRAGMA max_page_count = 1000000")
        .unwrap();
    s.commit_batch(&batch, &[checkpoint(900)]).unwrap();
    assert_eq!(s.load_checkpoints().unwrap(), vec![checkpoint(900)]);
}

#[test]
fn read_only_database_is_a_typed_error_and_nothing_is_written() {
    let mut s = Store::open_in_memory().unwrap();
    s.commit_batch(&[], &[checkpoint(100)]).unwrap();
    s.conn().execute_batch("PRAGMA query_only = ON").unwrap();
    let d = detection(
        &rule("r", Level::High, &[]),
        "192.0.2.1",
        "2024-05-21T10:00:00Z",
        1,
    );
    let err = s.commit_batch(&[d], &[checkpoint(200)]).unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
    assert!(err.to_string().contains("read-only"), "{err}");
    s.conn().execute_batch("PRAGMA query_only = OFF").unwrap();
    assert_eq!(s.load_checkpoints().unwrap(), vec![checkpoint(100)]);
}

#[test]
fn re_emitted_episode_updates_one_row_and_counts_matches_once() {
    let mut s = Store::open_in_memory().unwrap();
    let r = rule("brute", Level::High, &["attack.t1110"]);
    let mut d = detection(&r, "192.0.2.9", "2024-05-21T10:00:00Z", 5);
    s.commit_batch(std::slice::from_ref(&d), &[]).unwrap();

    d.count = 42;
    d.last_seen = ts("2024-05-21T10:04:00Z");
    d.state = DetectionState::Closed;
    s.commit_batch(std::slice::from_ref(&d), &[]).unwrap();

    let rows = s.detections(&DetectionFilter::default()).unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!((row.count, row.state), (42, DetectionState::Closed));
    assert_eq!(row.last_seen, ts("2024-05-21T10:04:00Z"));
    assert_eq!(
        row.key,
        vec![("source.ip".to_string(), "192.0.2.9".to_string())]
    );
    assert_eq!(row.tags, vec!["attack.t1110".to_string()]);
    let counters = s.rule_counters().unwrap();
    assert_eq!(
        (counters[0].matches_total, counters[0].detections_total),
        (42, 1)
    );

    // A new episode of the same rule and key is a new row.
    let later = detection(&r, "192.0.2.9", "2024-05-21T11:00:00Z", 2);
    s.commit_batch(&[later], &[]).unwrap();
    assert_eq!(s.detections(&DetectionFilter::default()).unwrap().len(), 2);
    assert_eq!(s.rule_counters().unwrap()[0].detections_total, 2);
}

#[test]
fn samples_are_bounded_keep_first_and_last_and_are_redacted() {
    let mut s = Store::open_in_memory().unwrap();
    s.set_max_samples(4);
    let mut d = detection(
        &rule("r", Level::High, &[]),
        "192.0.2.1",
        "2024-05-21T10:00:00Z",
        50,
    );
    d.samples = (0..50)
        .map(|i| {
            event(
                "2024-05-21T10:00:00Z",
                i * 100,
                &format!("line {i} token=abc{i}xyz"),
            )
        })
        .collect();
    s.commit_batch(std::slice::from_ref(&d), &[]).unwrap();
    s.commit_batch(std::slice::from_ref(&d), &[]).unwrap();

    let id = s.detections(&DetectionFilter::default()).unwrap()[0].id;
    let samples = s.samples(id).unwrap();
    let offsets: Vec<u64> = samples.iter().map(|x| x.offset).collect();
    assert_eq!(offsets, vec![0, 100, 4800, 4900]);
    assert!(
        samples[0].raw.starts_with("line 0 token=[REDACTED]"),
        "{}",
        samples[0].raw
    );
    let json = samples[3].event.to_string();
    assert!(!json.contains("abc49xyz"), "{json}");
    assert_eq!(samples[3].event["event.original"], samples[3].raw.as_str());
    assert_eq!(samples[3].event["log.offset"], 4900);
    assert_eq!(
        s.detections(&DetectionFilter::default()).unwrap()[0].count,
        50
    );
}

#[test]
fn detections_filter_by_since_rule_key_and_level() {
    let mut s = Store::open_in_memory().unwrap();
    let low = rule("low-rule", Level::Low, &[]);
    let high = rule("high-rule", Level::High, &[]);
    let batch = [
        detection(&low, "192.0.2.1", "2024-05-21T09:00:00Z", 1),
        detection(&high, "192.0.2.1", "2024-05-21T10:00:00Z", 1),
        detection(&high, "192.0.2.2", "2024-05-21T10:30:00Z", 1),
    ];
    s.commit_batch(&batch, &[]).unwrap();
    let q = |f: DetectionFilter| {
        s.detections(&f)
            .unwrap()
            .into_iter()
            .map(|d| (d.rule_id, d.key_string))
            .collect::<Vec<_>>()
    };
    let all = q(DetectionFilter::default());
    assert_eq!(all[0].1, "source.ip=192.0.2.2", "newest first");
    assert_eq!(all.len(), 3);
    let since = q(DetectionFilter {
        since: Some(ts("2024-05-21T09:30:00Z")),
        ..Default::default()
    });
    assert_eq!(since.len(), 2);
    let by_key = q(DetectionFilter {
        key: Some("192.0.2.1".into()),
        ..Default::default()
    });
    assert_eq!(by_key.len(), 2);
    let by_rule_level = q(DetectionFilter {
        rule: Some("high-rule title".into()),
        min_level: Some(Level::High),
        limit: Some(1),
        ..Default::default()
    });
    assert_eq!(
        by_rule_level,
        vec![("high-rule".into(), "source.ip=192.0.2.2".into())]
    );
    let none = q(DetectionFilter {
        min_level: Some(Level::Critical),
        ..Default::default()
    });
    assert!(none.is_empty());
}

#[test]
fn counters_add_up_across_batches() {
    let mut s = Store::open_in_memory().unwrap();
    let minute = ts("2024-05-21T10:05:00Z").as_second();
    let delta = |d| CounterDelta {
        name: counters::FAILED_LOGIN.into(),
        minute,
        delta: d,
    };
    s.record_counters(&[delta(3)]).unwrap();
    s.commit(&Batch {
        counters: &[delta(4)],
        ..Batch::default()
    })
    .unwrap();
    let from = ts("2024-05-21T10:00:00Z");
    let to = ts("2024-05-21T11:00:00Z");
    assert_eq!(s.counter_sum(counters::FAILED_LOGIN, from, to).unwrap(), 7);
    assert_eq!(s.counter_sum(counters::SQLI, from, to).unwrap(), 0);
}

#[test]
fn read_only_open_sees_writer_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let mut w = Store::open(&path).unwrap();
    let d = detection(
        &rule("r", Level::High, &[]),
        "192.0.2.1",
        "2024-05-21T10:00:00Z",
        1,
    );
    w.commit_batch(&[d], &[checkpoint(5)]).unwrap();
    let r = Store::open_read_only(&path).unwrap();
    assert_eq!(r.detections(&DetectionFilter::default()).unwrap().len(), 1);
    let missing = Store::open_read_only(&dir.path().join("none.db")).unwrap_err();
    assert!(
        matches!(missing, StoreError::CannotOpen { .. }),
        "{missing:?}"
    );
    assert!(missing.to_string().contains("none.db"), "{missing}");
}

#[test]
fn prune_drops_old_episodes_with_their_samples_and_old_counters() {
    let mut s = Store::open_in_memory().unwrap();
    let r = rule("r", Level::High, &[]);
    let old = detection(&r, "192.0.2.1", "2024-05-01T10:00:00Z", 1);
    let new = detection(&r, "192.0.2.2", "2024-05-21T10:00:00Z", 1);
    let counters = [
        CounterDelta {
            name: counters::FAILED_LOGIN.into(),
            minute: ts("2024-05-01T10:00:00Z").as_second(),
            delta: 1,
        },
        CounterDelta {
            name: counters::FAILED_LOGIN.into(),
            minute: ts("2024-05-21T10:00:00Z").as_second(),
            delta: 1,
        },
    ];
    s.commit(&Batch {
        detections: &[old, new],
        checkpoints: &[checkpoint(1)],
        counters: &counters,
    })
    .unwrap();

    let pruned = s.prune(ts("2024-05-10T00:00:00Z")).unwrap();
    assert_eq!(
        pruned,
        Pruned {
            detections: 1,
            counter_rows: 1
        }
    );
    let left = s.detections(&DetectionFilter::default()).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key_string, "source.ip=192.0.2.2");
    let orphans: i64 = s
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM detection_samples WHERE detection_id NOT IN \
             (SELECT id FROM detections)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "samples of pruned detections must go with them");
    assert_eq!(s.load_checkpoints().unwrap().len(), 1);
    assert_eq!(s.rule_counters().unwrap()[0].detections_total, 2);
}

#[test]
fn forgotten_checkpoint_is_not_loaded_again() {
    let mut s = Store::open_in_memory().unwrap();
    let (source, cp) = checkpoint(10);
    let other = Checkpoint {
        fingerprint: 42,
        ..cp.clone()
    };
    s.commit_batch(
        &[],
        &[
            (source.clone(), cp.clone()),
            (source.clone(), other.clone()),
        ],
    )
    .unwrap();
    assert!(s.forget_checkpoint(&source, cp.fingerprint).unwrap());
    assert!(!s.forget_checkpoint(&source, cp.fingerprint).unwrap());
    assert_eq!(s.load_checkpoints().unwrap(), vec![(source, other)]);
}
