//! The store across restarts, through the public API: what a daemon relies on when it
//! is stopped and started again.

use std::sync::Arc;

use jiff::Timestamp;
use palisade::detect::{Detection, DetectionState, Level, RuleMeta};
use palisade::event::Event;
use palisade::sources::Checkpoint;
use palisade::store::{DetectionFilter, Store, StoreError};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn detection(ip: &str, count: u64) -> Detection {
    let rule = Arc::new(RuleMeta {
        id: "web-brute".into(),
        name: None,
        title: "Web login brute force".into(),
        level: Level::High,
        tags: vec!["attack.t1110".into()],
        description: String::new(),
    });
    let mut sample = Event::new(
        Arc::from("nginx"),
        4096,
        format!(r#"{ip} - - "POST /login HTTP/1.1" 401 "Authorization: Bearer abcdef123456""#),
    );
    sample.timestamp = ts("2024-05-21T10:00:00Z");
    Detection {
        rule,
        key: vec![("source.ip".into(), ip.into())],
        count,
        first_seen: ts("2024-05-21T10:00:00Z"),
        last_seen: ts("2024-05-21T10:01:00Z"),
        samples: vec![sample],
        state: DetectionState::Fired,
    }
}

fn checkpoint(offset: u64) -> (String, Checkpoint) {
    let cp = Checkpoint {
        fingerprint: 0xdead_beef,
        dev: 1,
        inode: 2,
        path: "/var/log/nginx/access.log".into(),
        offset,
    };
    ("nginx".into(), cp)
}

#[test]
fn restart_resumes_from_the_last_committed_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("palisade.db");
    {
        let mut s = Store::open(&db).unwrap();
        s.commit_batch(&[detection("192.0.2.7", 5)], &[checkpoint(8192)])
            .unwrap();
    }
    let mut s = Store::open(&db).unwrap();
    assert_eq!(s.load_checkpoints().unwrap(), vec![checkpoint(8192)]);

    // The episode continues after the restart: still one row, updated count.
    s.commit_batch(&[detection("192.0.2.7", 9)], &[checkpoint(9000)])
        .unwrap();
    let rows = s.detections(&DetectionFilter::default()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].count, 9);
    let samples = s.samples(rows[0].id).unwrap();
    assert_eq!(samples[0].offset, 4096);
    assert!(
        !samples[0].raw.contains("abcdef123456"),
        "{}",
        samples[0].raw
    );
}

#[test]
fn reader_sees_committed_batches_while_the_writer_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("palisade.db");
    let mut writer = Store::open(&db).unwrap();
    let reader = Store::open_read_only(&db).unwrap();
    assert!(
        reader
            .detections(&DetectionFilter::default())
            .unwrap()
            .is_empty()
    );
    writer
        .commit_batch(&[detection("192.0.2.8", 1)], &[checkpoint(10)])
        .unwrap();
    let seen = reader.detections(&DetectionFilter::default()).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].key_string, "source.ip=192.0.2.8");
}

#[test]
fn unopenable_location_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("no-such-dir").join("palisade.db");
    let err = Store::open(&db).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}
