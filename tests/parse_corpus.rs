//! The fail2ban test logs for nginx, read with palisade's parsers: every line
//! annotated `# failJSON: { "match": true, "host": H, "time": T }` must parse to an
//! event whose client is H and whose time, as written in the line's own offset, is T.
//!
//! The corpus is read from `$PALISADE_CORPUS` (default `$CARGO_MANIFEST_DIR/../shared/
//! corpus`); the test fails with a message when it is missing, never skips.

use std::path::PathBuf;
use std::sync::Arc;

use palisade::config::{NetworkConfig, ParserConfig, SourceConfig};
use palisade::event::Event;
use palisade::parse::{self, Parser};
use palisade::sources::Line;

fn corpus_dir() -> PathBuf {
    let dir = match std::env::var_os("PALISADE_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    };
    let f2b = dir.join("fail2ban/logs");
    assert!(
        f2b.is_dir(),
        "fail2ban corpus not found at {}: set PALISADE_CORPUS to the directory holding \
         fail2ban/logs (e.g. PALISADE_CORPUS=/work/shared/corpus)",
        f2b.display()
    );
    f2b
}

/// One annotated line.
struct Case {
    line_no: usize,
    text: String,
    host: Option<String>,
    time: Option<String>,
}

/// The `match: true` cases of a fail2ban test log.
fn cases(text: &str) -> Vec<Case> {
    let mut out = Vec::new();
    let mut pending: Option<serde_json::Value> = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(json) = line.strip_prefix("# failJSON:") {
            pending = Some(serde_json::from_str(json.trim()).expect("failJSON annotation is JSON"));
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some(meta) = pending.take() else { continue };
        if meta.get("match").and_then(|m| m.as_bool()) != Some(true) {
            continue;
        }
        let field = |k: &str| meta.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        out.push(Case {
            line_no: i + 1,
            text: line.to_owned(),
            host: field("host"),
            time: field("time"),
        });
    }
    out
}

/// The event's time as written: in the line's offset, else UTC (no zone configured).
fn written_time(ev: &Event) -> String {
    let offset = jiff::tz::Offset::from_seconds(ev.tz_offset_secs.unwrap_or(0)).unwrap();
    let civil = offset.to_datetime(ev.timestamp);
    civil.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

fn check_file(name: &str, parser: ParserConfig) -> (usize, Vec<String>) {
    let path = corpus_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cfg = SourceConfig {
        name: name.into(),
        path: path.display().to_string(),
        parser,
        ..SourceConfig::default()
    };
    let mut p = parse::build(&cfg, &NetworkConfig::default()).unwrap();
    let cases = cases(&text);
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = check_case(p.as_mut(), case) {
            failures.push(format!("{name}:{}: {why}\n    {}", case.line_no, case.text));
        }
    }
    (cases.len(), failures)
}

fn check_case(p: &mut dyn Parser, case: &Case) -> Result<(), String> {
    let line = Line {
        source: Arc::from("corpus"),
        path: Arc::from("corpus"),
        offset: 0,
        text: case.text.clone(),
        truncated: false,
        invalid_utf8: false,
    };
    let mut out = Vec::new();
    p.parse(&line, &mut out)
        .map_err(|e| format!("rejected: {e}"))?;
    p.flush(&mut out);
    let ev = out.last().ok_or("no event")?;
    let client = ev.source_ip.map(|i| i.to_string());
    if let Some(host) = &case.host
        && client.as_deref() != Some(host.as_str())
    {
        return Err(format!("client {client:?}, expected {host}"));
    }
    let got = written_time(ev);
    if let Some(time) = &case.time
        && &got != time
    {
        return Err(format!("time {got}, expected {time}"));
    }
    Ok(())
}

#[test]
fn fail2ban_nginx_corpus_clients_and_times() {
    // The files mix access and error lines (some behind a journal prefix), so the
    // auto parser reads them; it picks the nginx access or error parser per line.
    let files = [
        ("nginx-bad-request", ParserConfig::Auto),
        ("nginx-botsearch", ParserConfig::Auto),
        ("nginx-forbidden", ParserConfig::Auto),
        ("nginx-http-auth", ParserConfig::Auto),
        ("nginx-limit-req", ParserConfig::Auto),
    ];
    let mut all_failures = Vec::new();
    for (name, parser) in files {
        let (total, failures) = check_file(name, parser);
        println!(
            "{name}: {} of {total} match:true lines correct",
            total - failures.len()
        );
        assert!(
            total > 0,
            "{name}: no annotated lines found; is the corpus intact?"
        );
        all_failures.extend(failures);
    }
    assert!(
        all_failures.is_empty(),
        "corpus mismatches:\n{}",
        all_failures.join("\n")
    );
}
