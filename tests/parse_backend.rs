//! The reference backend's stdout and security.log, with sample lines written after
//! ARCHITECTURE.md's "reference stack" (Express + morgan + winston behind nginx).

use std::sync::Arc;

use palisade::config::{NetworkConfig, ParserConfig, SourceConfig};
use palisade::event::{Event, EventKind};
use palisade::parse;
use palisade::sources::Line;

const STDOUT: &str = r#"Security Log - Request: {"timestamp":"2024-06-01T10:00:00.120Z","method":"GET","url":"/api/products?search=%27%20OR%201%3D1--","ip":"::ffff:172.18.0.4","userAgent":"sqlmap/1.7.2#stable","headers":{"host":"shop.example.test","x-forwarded-for":"198.51.100.23"}}
Security Log - Request: {"timestamp":"2024-06-01T10:00:01.002Z","method":"POST","url":"/api/auth/login","ip":"::ffff:172.18.0.4","userAgent":"curl/8.5.0","headers":{"host":"shop.example.test","x-forwarded-for":"192.0.2.200, 203.0.113.50"}}
{"level":"warn","message":"Security event: auth_failure","timestamp":"2024-06-01T10:00:01.010Z","reason":"invalid_password","email":"alice@example.test","ip":"::ffff:203.0.113.50"}
::ffff:172.18.0.4 - - [01/Jun/2024:10:00:01 +0000] "POST /api/auth/login HTTP/1.1" 401 45 "-" "curl/8.5.0"
{"level":"warn","message":"Security event: rate_limit","timestamp":"2024-06-01T10:00:02.500Z","ip":"::ffff:203.0.113.50","path":"/api/auth/login","limit":5,"windowMs":60000}
Database query failed:
Error: connect ECONNREFUSED 172.18.0.3:5432
    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:21)
{"level":"warn","message":"Security event: suspicious_activity","timestamp":"2024-06-01T10:00:03.000Z","type":"path_traversal","ip":"::ffff:203.0.113.50","url":"/api/files?name=../../etc/passwd"}
Server listening on port 3000"#;

const SECURITY_LOG: &str = r#"{"timestamp":"2024-06-01T10:00:01.011Z","level":"warn","source":"auth","message":"Login failed","metadata":{"email":"alice@example.test","ip":"::ffff:203.0.113.50","reason":"invalid_password","attempt":{"count":3}},"tags":["auth","brute-force"]}
{"timestamp":"2024-06-01T10:00:03.001Z","level":"error","source":"middleware","message":"Suspicious activity detected","metadata":{"type":"path_traversal","ipAddress":"203.0.113.50","userId":"42"},"tags":["attack"]}"#;

fn source(parser: ParserConfig) -> SourceConfig {
    SourceConfig {
        name: "backend".into(),
        path: "backend.log".into(),
        parser,
        ..SourceConfig::default()
    }
}

fn parse(parser: ParserConfig, net: &NetworkConfig, input: &str) -> Vec<Event> {
    let mut p = parse::build(&source(parser), net).unwrap();
    let mut out = Vec::new();
    for (i, text) in input.lines().enumerate() {
        let line = Line {
            source: Arc::from("backend"),
            path: Arc::from("backend.log"),
            offset: i as u64,
            text: text.to_owned(),
            truncated: false,
            invalid_utf8: false,
        };
        p.parse(&line, &mut out)
            .unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
    }
    p.flush(&mut out);
    out
}

fn docker_net() -> NetworkConfig {
    NetworkConfig {
        trusted_proxies: vec!["172.18.0.0/16".parse().unwrap()],
        allowlist: vec![],
    }
}

#[test]
fn backend_request_log_keeps_raw_url_and_believes_the_proxy() {
    let events = parse(ParserConfig::Backend, &docker_net(), STDOUT);
    let req = &events[0];
    assert_eq!(req.kind, EventKind::Access);
    assert_eq!(req.url_query(), Some("search=%27%20OR%201%3D1--"));
    assert_eq!(req.user_agent.as_deref(), Some("sqlmap/1.7.2#stable"));
    assert_eq!(req.source_ip.unwrap().to_string(), "198.51.100.23");
    assert_eq!(req.peer_ip.unwrap().to_string(), "172.18.0.4");
    assert_eq!(req.timestamp.to_string(), "2024-06-01T10:00:00.12Z");
    // A forged left-most hop never becomes the client.
    assert_eq!(events[1].source_ip.unwrap().to_string(), "203.0.113.50");
}

#[test]
fn backend_security_events_get_kind_and_action() {
    let events = parse(ParserConfig::Backend, &docker_net(), STDOUT);
    let security: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Security)
        .collect();
    let actions: Vec<_> = security
        .iter()
        .map(|e| e.action.as_deref().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["auth_failure", "rate_limit", "suspicious_activity"]
    );
    assert_eq!(security[0].extra("reason"), Some("invalid_password"));
    assert_eq!(security[0].source_ip.unwrap().to_string(), "203.0.113.50");
    assert_eq!(security[0].outcome.as_deref(), Some("failure"));
    assert_eq!(security[2].url_path(), Some("/api/files"));
    assert_eq!(security[2].extra("security.detail"), Some("path_traversal"));
}

#[test]
fn backend_morgan_line_is_an_access_event() {
    let events = parse(ParserConfig::Backend, &NetworkConfig::default(), STDOUT);
    let morgan = events
        .iter()
        .find(|e| e.extra("backend.log") == Some("morgan"))
        .unwrap();
    assert_eq!(morgan.status, Some(401));
    assert_eq!(morgan.source_ip.unwrap().to_string(), "172.18.0.4");
    assert_eq!(morgan.url_path(), Some("/api/auth/login"));
}

#[test]
fn stack_trace_is_joined_to_the_entry_before_it() {
    let events = parse(ParserConfig::Backend, &NetworkConfig::default(), STDOUT);
    assert_eq!(
        events.len(),
        8,
        "{:#?}",
        events.iter().map(|e| &e.raw).collect::<Vec<_>>()
    );
    let err = events
        .iter()
        .find(|e| e.raw.starts_with("Database query failed:"))
        .unwrap();
    let msg = err.message.as_deref().unwrap();
    assert!(msg.contains("Error: connect ECONNREFUSED"));
    assert!(msg.ends_with("(node:internal/process/task_queues:95:21)"));
    assert_eq!(msg.lines().count(), 4);
    // Plain lines take the previous line's time.
    assert_eq!(err.timestamp.to_string(), "2024-06-01T10:00:02.5Z");
    // The last entry is only released by flush.
    assert_eq!(
        events.last().unwrap().message.as_deref(),
        Some("Server listening on port 3000")
    );
}

#[test]
fn security_log_lines_are_security_events() {
    let events = parse(
        ParserConfig::SecurityLog,
        &NetworkConfig::default(),
        SECURITY_LOG,
    );
    assert!(events.iter().all(|e| e.kind == EventKind::Security));
    assert_eq!(events[0].action.as_deref(), Some("login_failed"));
    assert_eq!(events[0].outcome.as_deref(), Some("failure"));
    assert_eq!(events[0].source_ip.unwrap().to_string(), "203.0.113.50");
    assert_eq!(events[0].user_name.as_deref(), Some("alice@example.test"));
    assert_eq!(events[0].extra("metadata.attempt.count"), Some("3"));
    assert_eq!(events[0].extra("tags"), Some("auth,brute-force"));
    assert_eq!(events[1].action.as_deref(), Some("path_traversal"));
    assert_eq!(events[1].user_name.as_deref(), Some("42"));
    assert_eq!(events[1].extra("security.source"), Some("middleware"));
}
