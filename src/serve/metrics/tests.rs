//! Metrics tests: names the runbook expects, label caps, event classification.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::*;
use crate::detect::{DetectionState, Level, RuleMeta};

fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn login_failure(ip: IpAddr) -> Event {
    let mut e = Event {
        kind: EventKind::Access,
        source_ip: Some(ip),
        method: Some("POST".into()),
        status: Some(401),
        ..Event::default()
    };
    e.set_url("/api/auth/login");
    e
}

#[test]
fn runbook_metric_names_are_exported() {
    let m = Metrics::default();
    m.observe_event(&login_failure(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    m.inc_blocked_ips();
    m.set_active_sessions(3);
    let text = m.encode();
    assert_eq!(
        value_of(&text, "failed_auth_attempts_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(value_of(&text, "blocked_ips_total"), Some(1.0));
    assert_eq!(value_of(&text, "active_sessions"), Some(3.0));
    assert_eq!(value_of(&text, "sql_injection_attempts_total"), Some(0.0));
    assert_eq!(
        value_of(&text, r#"palisade_events_total{kind="access"}"#),
        Some(1.0)
    );
    assert!(text.ends_with("# EOF\n"), "OpenMetrics terminator missing");
}

#[test]
fn sqli_and_security_events_are_counted_by_type() {
    let m = Metrics::default();
    let mut req = Event {
        kind: EventKind::Access,
        ..Event::default()
    };
    req.attacks.insert(AttackClasses::SQLI);
    req.attacks.insert(AttackClasses::XSS);
    m.observe_event(&req);
    let app = Event {
        kind: EventKind::Security,
        action: Some("csrf_mismatch".into()),
        ..Event::default()
    };
    m.observe_event(&app);
    let text = m.encode();
    assert_eq!(value_of(&text, "sql_injection_attempts_total"), Some(1.0));
    for ty in ["sqli", "xss", "csrf_mismatch"] {
        let series = format!(r#"security_events_total{{event_type="{ty}"}}"#);
        assert_eq!(value_of(&text, &series), Some(1.0), "{series} in {text}");
    }
}

#[test]
fn detections_and_source_health_are_counted() {
    let m = Metrics::default();
    let rule = Arc::new(RuleMeta {
        id: "ssh-brute".into(),
        name: None,
        title: "SSH brute force".into(),
        level: Level::High,
        tags: vec![],
        description: String::new(),
    });
    let d = Detection {
        rule,
        key: vec![("source.ip".into(), "192.0.2.1".into())],
        count: 10,
        first_seen: Timestamp::UNIX_EPOCH,
        last_seen: Timestamp::UNIX_EPOCH,
        samples: vec![],
        state: DetectionState::Fired,
    };
    m.observe_detection(&d);
    let src = m.source("nginx");
    src.inc_lines_read(5);
    src.inc_lines_parsed(4);
    m.inc_parse_error(&src, "no_match");
    let now = Timestamp::from_second(1_000).unwrap();
    src.set_lag(Timestamp::from_second(990).unwrap(), now);
    let text = m.encode();
    let det = r#"palisade_detections_total{rule="ssh-brute",level="high"}"#;
    assert_eq!(value_of(&text, det), Some(1.0), "{text}");
    assert!(
        !text.contains("192.0.2.1"),
        "detection key leaked into labels"
    );
    assert_eq!(
        value_of(&text, r#"palisade_lines_read_total{source="nginx"}"#),
        Some(5.0)
    );
    let err = r#"palisade_parse_errors_total{source="nginx",reason="no_match"}"#;
    assert_eq!(value_of(&text, err), Some(1.0));
    let lag = r#"palisade_processing_lag_seconds{source="nginx"}"#;
    assert_eq!(value_of(&text, lag), Some(10.0));
}

#[test]
fn log_derived_labels_reject_addresses_and_cap_distinct_values() {
    let cap = LabelCap::new(3, true);
    assert_eq!(cap.admit("192.0.2.1"), OTHER);
    assert_eq!(cap.admit("2001:db8::1"), OTHER);
    assert_eq!(cap.admit("/login?user=ann"), OTHER);
    assert_eq!(cap.admit("a"), "a");
    assert_eq!(cap.admit("b"), "b");
    assert_eq!(cap.admit("c"), "c");
    assert_eq!(cap.admit("d"), OTHER, "fourth distinct value past the cap");
    assert_eq!(cap.admit("a"), "a", "known values keep their label");
}

/// Field case 55: 100,000 distinct client IPs through every observe function must not
/// create series per IP nor put an IP in a label.
#[test]
fn many_distinct_ips_do_not_grow_series_field_case_55() {
    let m = Metrics::default();
    let rule = Arc::new(RuleMeta {
        id: "web-brute".into(),
        name: None,
        title: "Web brute force".into(),
        level: Level::High,
        tags: vec![],
        description: String::new(),
    });
    for i in 0..100_000u32 {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i));
        let ip_text = ip.to_string();
        let mut ev = login_failure(ip);
        m.observe_event(&ev);
        // Hostile log text where a label value is read from the log.
        ev.kind = EventKind::Security;
        ev.action = Some(ip_text.as_str().into());
        m.observe_event(&ev);
        ev.kind = EventKind::RateLimit;
        ev.extra = vec![
            ("nginx.limit.zone".into(), format!("zone{i}").into()),
            ("nginx.limit.kind".into(), ip_text.as_str().into()),
        ];
        m.observe_event(&ev);
        let d = Detection {
            rule: rule.clone(),
            key: vec![("source.ip".into(), ip_text.as_str().into())],
            count: 1,
            first_seen: Timestamp::UNIX_EPOCH,
            last_seen: Timestamp::UNIX_EPOCH,
            samples: vec![],
            state: DetectionState::Fired,
        };
        m.observe_detection(&d);
        m.inc_blocked_ips();
    }
    let text = m.encode();
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    assert!(series < 500, "{series} series");
    assert!(text.len() < 100 * 1024, "{} bytes", text.len());
    assert!(!text.contains("10.0."), "an IP reached a label");
    assert_eq!(
        value_of(&text, "failed_auth_attempts_total"),
        Some(300_000.0)
    );
    assert_eq!(value_of(&text, "blocked_ips_total"), Some(100_000.0));
    // The first LOG_LABEL_CAP zones keep their names, every later one is `other`.
    let other_zone = r#"palisade_nginx_ratelimit_total{zone="other",kind="other"}"#;
    let expected = (100_000 - LOG_LABEL_CAP) as f64;
    assert_eq!(value_of(&text, other_zone), Some(expected));
}

#[test]
fn alert_delivery_counters_follow_the_outbox_totals() {
    let m = Metrics::default();
    let mut errors = std::collections::BTreeMap::new();
    errors.insert("429".to_string(), 2u64);
    m.record_alert_delivery("slack", 3, 0, 5, &errors);
    // Totals only grow; the second report adds the difference, not the sum.
    m.record_alert_delivery("slack", 7, 1, 0, &errors);
    let text = m.encode();
    assert_eq!(
        value_of(&text, r#"palisade_alerts_sent_total{channel="slack"}"#),
        Some(7.0)
    );
    assert_eq!(
        value_of(&text, r#"palisade_alerts_failed_total{channel="slack"}"#),
        Some(1.0)
    );
    assert_eq!(
        value_of(&text, r#"palisade_alerts_queued{channel="slack"}"#),
        Some(0.0)
    );
    assert_eq!(
        value_of(
            &text,
            r#"palisade_alert_send_errors_total{channel="slack",code="429"}"#
        ),
        Some(2.0)
    );
}
