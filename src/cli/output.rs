//! How detections reach a person or a script: readable lines on a terminal, or one
//! JSON object per line with `--json`.
//!
//! Everything printed comes from log lines an attacker wrote, so secrets are redacted
//! (as in the store) and, on the terminal, control characters are escaped: a log line
//! must not be able to retitle or clear the operator's terminal.

use std::io::{self, Write};

use owo_colors::OwoColorize;

use palisade::detect::{Detection, DetectionState, Level};
use palisade::event::{write_json_int, write_json_map, write_json_str};
use palisade::store::redact::redact;

/// Writes detections to stdout in the chosen style.
pub struct DetectionPrinter {
    json: bool,
    color: bool,
    out: io::BufWriter<io::Stdout>,
    /// One JSON line, reused.
    buf: Vec<u8>,
    /// stdout went away (`palisade scan | head`): stop writing, quietly.
    closed: bool,
    /// Another write error was already reported.
    reported: bool,
}

impl DetectionPrinter {
    pub fn new(json: bool, color: bool) -> DetectionPrinter {
        DetectionPrinter {
            json,
            color,
            out: io::BufWriter::new(io::stdout()),
            buf: Vec::new(),
            closed: false,
            reported: false,
        }
    }

    /// Prints one detection. A closed pipe ends output silently; any other write
    /// error is reported once.
    pub fn print(&mut self, d: &Detection) {
        if self.closed {
            return;
        }
        self.buf.clear();
        if self.json {
            write_detection_json(&mut self.buf, d);
        } else {
            self.buf
                .extend_from_slice(render_line(d, self.color).as_bytes());
        }
        self.buf.push(b'\n');
        let res = self.out.write_all(&self.buf);
        self.handle(res);
    }

    pub fn flush(&mut self) {
        if !self.closed {
            let res = self.out.flush();
            self.handle(res);
        }
    }

    fn handle(&mut self, res: io::Result<()>) {
        match res {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => self.closed = true,
            Err(e) if !self.reported => {
                self.reported = true;
                tracing::error!(error = %e, "Cannot write detections to stdout");
            }
            Err(_) => {}
        }
    }
}

/// Writes the bytes of `redact_json(d.to_json()).to_string()` without building the
/// `serde_json::Value`: sorted keys, every string that can hold log or rule text
/// redacted (times, the level and the state are fixed spellings no rule matches).
pub fn write_detection_json(out: &mut Vec<u8>, d: &Detection) {
    out.extend_from_slice(b"{\"count\":");
    write_json_int(out, d.count);
    out.extend_from_slice(b",\"first_seen\":");
    write_json_str(out, &d.first_seen.to_string());
    out.extend_from_slice(b",\"key\":");
    let mut key: Vec<(&str, &str)> = d
        .key
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    write_json_map(out, &mut key, |out, v| write_json_str(out, &redact(v)));
    out.extend_from_slice(b",\"last_seen\":");
    write_json_str(out, &d.last_seen.to_string());
    out.extend_from_slice(b",\"rule\":{\"id\":");
    write_json_str(out, &redact(&d.rule.id));
    out.extend_from_slice(b",\"level\":");
    write_json_str(out, d.rule.level.as_str());
    out.extend_from_slice(b",\"tags\":[");
    for (i, tag) in d.rule.tags.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, &redact(tag));
    }
    out.extend_from_slice(b"],\"title\":");
    write_json_str(out, &redact(&d.rule.title));
    out.extend_from_slice(b"},\"samples\":[");
    for (i, sample) in d.samples.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        sample.write_json(out, &redact);
    }
    out.extend_from_slice(b"],\"state\":");
    let state = match d.state {
        DetectionState::Fired => "fired",
        DetectionState::Closed => "closed",
    };
    write_json_str(out, state);
    out.push(b'}');
}

/// One readable line per detection, with the first sample's request or message.
pub fn render_line(d: &Detection, color: bool) -> String {
    let level = format!("{:<8}", d.rule.level.as_str().to_uppercase());
    let level = if color {
        paint_level(&level, d.rule.level)
    } else {
        level
    };
    let span = if d.first_seen == d.last_seen {
        d.first_seen.to_string()
    } else {
        format!("{} .. {}", d.first_seen, d.last_seen)
    };
    let mut line = format!(
        "{level} {}  [{}]  count={}  {span}",
        d.rule.title,
        escape_controls(&d.key_string()),
        d.count
    );
    if let Some(sample) = d.samples.first() {
        let what = match (sample.method.as_deref(), sample.url_original.as_deref()) {
            (Some(m), Some(u)) => format!("{m} {u}"),
            _ => sample.message.clone().unwrap_or_else(|| sample.raw.clone()),
        };
        let what: String = escape_controls(&redact(&what)).chars().take(160).collect();
        let tail = format!("\n         e.g. {what}");
        line.push_str(&if color {
            tail.dimmed().to_string()
        } else {
            tail
        });
    }
    line
}

/// Control characters (ESC, BEL, CR, …) written as `\x1b`-style escapes.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn paint_level(text: &str, level: Level) -> String {
    match level {
        Level::Critical => text.red().bold().to_string(),
        Level::High => text.red().to_string(),
        Level::Medium => text.yellow().to_string(),
        Level::Low => text.cyan().to_string(),
        Level::Informational => text.dimmed().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_is_the_redacted_value_written_out() {
        use std::sync::Arc;

        use palisade::detect::RuleMeta;
        use palisade::event::{AttackClasses, Event, Finding};
        use palisade::store::redact::redact_json;

        let mut a = Event::new(
            Arc::from("web"),
            42,
            "GET /login?password=hunter2 \"\u{1}é\"".into(),
        );
        a.source_ip = Some("2001:db8::1".parse().unwrap());
        a.peer_ip = Some("10.0.0.1".parse().unwrap());
        a.tz_offset_secs = Some(-3600);
        a.method = Some("GET".into());
        a.set_url("/login?password=hunter2&token=abcdefgh");
        a.status = Some(401);
        a.bytes = Some(u64::MAX >> 2);
        a.user_agent = Some("Bearer 0123456789abcdef".into());
        a.push_extra("url.query", "shadowed");
        a.push_extra("nginx.zone", "a");
        a.push_extra("nginx.zone", "b");
        a.push_extra("palisade.attack", "overwritten");
        a.attacks.insert(AttackClasses::SQLI);
        a.attacks.insert(AttackClasses::XSS);
        a.findings.push(Finding {
            class: "sqli",
            part: "url.query",
            decoding: "percent".into(),
            excerpt: "password=x".into(),
            reason: "union select".into(),
        });
        let b = Event::new(Arc::from("web"), 0, String::new());
        for samples in [vec![], vec![a.clone()], vec![a, b]] {
            let d = Detection {
                rule: Arc::new(RuleMeta {
                    id: "r-1".into(),
                    name: None,
                    title: "Title with secret: abc".into(),
                    level: Level::High,
                    tags: vec!["attack.t1110".into(), "x".into()],
                    description: String::new(),
                }),
                key: vec![
                    ("source.ip".into(), "192.0.2.1".into()),
                    ("a.key".into(), "api_key=zzz".into()),
                    ("a.key".into(), "later".into()),
                ],
                count: 7,
                first_seen: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
                last_seen: jiff::Timestamp::from_second(1_700_000_100).unwrap(),
                samples,
                state: DetectionState::Closed,
            };
            let mut want = d.to_json();
            redact_json(&mut want);
            let mut got = Vec::new();
            write_detection_json(&mut got, &d);
            assert_eq!(String::from_utf8(got).unwrap(), want.to_string());
        }
    }

    #[test]
    fn terminal_escapes_from_log_text_are_neutralised() {
        let shown = escape_controls("GET /x\u{1b}]0;pwned\u{7}\u{1b}[2J");
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.contains("\\x1b]0;pwned\\x07"), "{shown:?}");
    }
}
