//! `status` tests: window edges, per-IP reasons, counters, rendering.

use std::sync::Arc;

use super::*;
use crate::detect::{Detection, DetectionState, RuleMeta};
use crate::event::{Event, EventKind};
use crate::store::counters::{CounterDelta, MinuteCounters};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn rule(id: &str, title: &str, level: Level, tags: &[&str]) -> Arc<RuleMeta> {
    Arc::new(RuleMeta {
        id: id.into(),
        name: None,
        title: title.into(),
        level,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        description: String::new(),
    })
}

fn det(rule: &Arc<RuleMeta>, ip: &str, first: &str, last: &str, count: u64) -> Detection {
    Detection {
        rule: rule.clone(),
        key: vec![("source.ip".into(), ip.into())],
        count,
        first_seen: ts(first),
        last_seen: ts(last),
        samples: vec![],
        state: DetectionState::Closed,
    }
}

fn failed_login(at: &str) -> Event {
    let mut e = Event {
        timestamp: ts(at),
        kind: EventKind::Access,
        method: Some("POST".into()),
        status: Some(401),
        ..Event::default()
    };
    e.set_url("/login");
    e
}

/// A store with: a brute force from .7 still going, SQLi from .8, an old scan from .9.
fn populated() -> Store {
    let mut s = Store::open_in_memory().unwrap();
    let brute = rule(
        "brute",
        "Web login brute force",
        Level::High,
        &["attack.t1110.001"],
    );
    let sqli = rule(
        "sqli",
        "SQL injection in query",
        Level::Critical,
        &["attack.t1190"],
    );
    let scan = rule("scan", "Scanner user agent", Level::Low, &[]);
    let dets = [
        // Began before the window, still active in it: counts.
        det(
            &brute,
            "192.0.2.7",
            "2024-05-21T08:50:00Z",
            "2024-05-21T09:20:00Z",
            120,
        ),
        det(
            &scan,
            "192.0.2.7",
            "2024-05-21T09:30:00Z",
            "2024-05-21T09:31:00Z",
            3,
        ),
        det(
            &sqli,
            "192.0.2.8",
            "2024-05-21T09:40:00Z",
            "2024-05-21T09:41:00Z",
            4,
        ),
        // Ended before the window: does not count.
        det(
            &scan,
            "192.0.2.9",
            "2024-05-21T07:00:00Z",
            "2024-05-21T07:10:00Z",
            50,
        ),
    ];
    let mut counters = MinuteCounters::default();
    for at in [
        "2024-05-21T08:30:00Z",
        "2024-05-21T09:10:00Z",
        "2024-05-21T09:59:59Z",
    ] {
        counters.observe_event(&failed_login(at));
    }
    let deltas: Vec<CounterDelta> = counters.drain();
    s.commit(&crate::store::Batch {
        detections: &dets,
        checkpoints: &[],
        counters: &deltas,
    })
    .unwrap();
    s
}

#[test]
fn status_counts_the_last_hour_and_ranks_addresses_by_severity() {
    let s = populated();
    let r = status(&s, ts("2024-05-21T10:00:00Z")).unwrap();
    assert_eq!(r.counts.failed_logins, 2, "08:30 is outside the hour");
    assert_eq!(
        r.brute_force,
        BruteForce {
            episodes: 1,
            attempts: 120
        }
    );

    let ips: Vec<&str> = r.top_ips.iter().map(|i| i.ip.as_str()).collect();
    assert_eq!(
        ips,
        vec!["192.0.2.8", "192.0.2.7"],
        "critical first; .9 is too old"
    );
    let seven = &r.top_ips[1];
    assert_eq!(
        (seven.detections, seven.events, seven.max_level),
        (2, 123, Level::High)
    );
    assert_eq!(
        seven.rules,
        vec!["Web login brute force", "Scanner user agent"]
    );

    let rules: Vec<(&str, u64)> = r
        .rules
        .iter()
        .map(|x| (x.rule_id.as_str(), x.events))
        .collect();
    assert_eq!(rules, vec![("sqli", 4), ("brute", 120), ("scan", 3)]);
}

#[test]
fn status_window_is_relative_to_the_given_instant() {
    let s = populated();
    let r = status(&s, ts("2024-05-21T07:30:00Z")).unwrap();
    assert_eq!(r.top_ips.len(), 1);
    assert_eq!(r.top_ips[0].ip, "192.0.2.9");
    assert_eq!(r.counts.failed_logins, 0);
    let wide = StatusOptions {
        window: SignedDuration::from_hours(24),
        top_ips: 1,
    };
    let r = status_with(&s, ts("2024-05-21T10:00:00Z"), &wide).unwrap();
    assert_eq!(r.counts.failed_logins, 3);
    assert_eq!(r.top_ips.len(), 1, "top_ips limits the list");
}

#[test]
fn status_renders_text_and_json() {
    let s = populated();
    let r = status(&s, ts("2024-05-21T10:00:00Z")).unwrap();
    let text = r.render_text(false);
    for needle in [
        "Failed logins",
        "192.0.2.7",
        "Web login brute force",
        "critical",
        "120",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    assert!(
        !text.contains('\u{1b}'),
        "colorless output has escape codes"
    );
    assert!(
        r.render_text(true).contains('\u{1b}'),
        "color output has no escape codes"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["counts"]["failed_logins"], 2);
    assert_eq!(json["top_ips"][0]["ip"], "192.0.2.8");
    assert_eq!(json["window"]["from"], "2024-05-21T09:00:00Z");
}

#[test]
fn status_of_an_empty_store_says_so() {
    let s = Store::open_in_memory().unwrap();
    let r = status(&s, ts("2024-05-21T10:00:00Z")).unwrap();
    assert!(r.render_text(false).contains("No detections"));
}
