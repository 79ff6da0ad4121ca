//! Docker field cases end to end: json-file lines → the container log reader (split
//! pieces re-joined, stack frames attached per stream) → the pipeline with the
//! container's parser → detections. No Docker daemon needed: the json-file lines are
//! the case's input; tests/docker_engine.rs covers the live Engine API.

mod field_harness;

use field_harness::*;
use palisade::sources::docker::ContainerLog;
use palisade::sources::docker::join::parse_json_file_line;

/// Feeds json-file lines of container `api` through the reader into the stack.
fn feed_container(stack: &mut Stack, lines: &[String]) {
    let mut log = ContainerLog::new("0123456789ab", "api");
    let mut out = Vec::new();
    for l in lines {
        log.feed(parse_json_file_line(l).expect("json-file line"), &mut out);
    }
    log.flush(&mut out);
    for d in out {
        stack.feed_line_at(&d.line, d.time);
    }
}

fn json_file(log: &str, stream: &str, time: &str) -> String {
    serde_json::json!({"log": log, "stream": stream, "time": time}).to_string()
}

#[test]
fn json_log_split_at_16k_is_one_failed_login_and_no_json_error() {
    // Field case 39: a Node.js JSON line over 16 KiB split into two json-file entries
    // (the first without trailing newline), a stderr line in between: one failed
    // login for 192.0.2.61, no "malformed JSON", stderr never glued to stdout.
    let toml = source_toml("api", "docker://api", JSON);
    let mut s = Stack::new(
        &toml,
        &(APP_LOGIN_RULES.to_owned() + "---" + CLIENT_SEEN_RULE),
    );
    let ctx = "A".repeat(16 * 1024);
    let first = format!(r#"{{"level":"warn","msg":"login failed","ip":"192.0.2.61","ctx":"{ctx}"#);
    feed_container(
        &mut s,
        &[
            json_file(&first, "stdout", "2024-04-03T10:00:00.000000001Z"),
            json_file(
                "{\"level\":\"info\",\"msg\":\"tick\",\"ip\":\"198.51.100.2\"}\n",
                "stderr",
                "2024-04-03T10:00:00.000000002Z",
            ),
            json_file("…rest…\"}\n", "stdout", "2024-04-03T10:00:00.000000003Z"),
        ],
    );
    s.finish();
    let st = s.stats("api");
    assert_eq!((st.lines, st.events, st.failed), (2, 2, 0), "{st:?}");
    assert_eq!(st.failed_by_reason.get("bad_json"), None);
    assert_eq!(keyed(&s), ["192.0.2.61", "198.51.100.2"]);
    let ev = s.fired_by_sample("client_seen");
    assert_eq!(ev.action.as_deref(), Some("login_failed"));
    assert_eq!(
        ev.timestamp,
        at("2024-04-03T10:00:00.000000001Z"),
        "the time Docker recorded for the first piece"
    );
}

#[test]
fn stack_trace_split_by_other_output_stays_one_event() {
    // Field case 43: an error on stderr, a health-check line on stdout, then the
    // error's two stack frames: 2 events (the error with both frames, the health
    // check), the stdout line not glued into the error.
    let toml = source_toml("api", "docker://api", r#"{ format = "backend" }"#);
    let mut s = Stack::new(&toml, ANY_MESSAGE_RULE);
    feed_container(
        &mut s,
        &[
            json_file(
                "Error: invalid token for user carol\n",
                "stderr",
                "2024-10-09T10:00:00.001Z",
            ),
            json_file(
                "GET /health 200 1ms\n",
                "stdout",
                "2024-10-09T10:00:00.002Z",
            ),
            json_file(
                "    at verify (/app/auth.js:10:5)\n",
                "stderr",
                "2024-10-09T10:00:00.003Z",
            ),
            json_file(
                "    at login (/app/routes.js:44:9)\n",
                "stderr",
                "2024-10-09T10:00:00.004Z",
            ),
        ],
    );
    s.finish();
    let st = s.stats("api");
    assert_eq!((st.lines, st.events, st.failed), (2, 2, 0), "{st:?}");
    // Both events reach the rules; the error carries its two frames, nothing else.
    let d = s
        .closed
        .iter()
        .find(|d| d.rule.name.as_deref() == Some("any_message"))
        .expect("closed episode");
    assert_eq!(d.count, 2);
    let messages: Vec<&str> = d
        .samples
        .iter()
        .filter_map(|e| e.message.as_deref())
        .collect();
    assert_eq!(
        messages,
        [
            "Error: invalid token for user carol\n    at verify (/app/auth.js:10:5)\n    at login (/app/routes.js:44:9)",
            "GET /health 200 1ms"
        ]
    );
}

/// Every event with a message, as detections (shows what reached the rules).
const ANY_MESSAGE_RULE: &str = r#"
title: Any Message
id: 5e0b3c1a-2d4f-4a6b-8c9d-0e1f2a3b4c5d
name: any_message
detection:
    selection:
        message|exists: true
    condition: selection
level: informational
"#;
