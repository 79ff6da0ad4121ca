//! The reference backend's `/app/logs/security.log`: JSON lines with `timestamp`,
//! `level`, `source`, `message`, `metadata` (an object) and `tags` (an array).
//!
//! Every line is a [`EventKind::Security`] event. The action is `metadata.type` /
//! `metadata.event` when present, else the message vocabulary of [`super::json`], else
//! the message itself in snake case (`Suspicious activity detected` →
//! `suspicious_activity_detected`). The client is `metadata.ip` / `ipAddress` /
//! `clientIp`, the user `metadata.userId` / `username` / `email`. All metadata is kept
//! in `extra` as `metadata.<path>`, tags as `tags` (comma-joined).

use serde_json::Value;

use super::json::{flatten, lookup, message_action, scalar_text};
use super::time::{LocalClock, parse_iso};
use super::{ParseError, Parser, event_for, ip, text_of};
use crate::event::{Event, EventKind, Text};
use crate::sources::Line;

const FORMAT: &str = "security.log JSON";

/// Parses `security.log` lines.
pub struct SecurityLogParser {
    clock: LocalClock,
}

impl SecurityLogParser {
    /// A parser reading offset-less times with `clock`.
    pub fn new(clock: LocalClock) -> SecurityLogParser {
        SecurityLogParser { clock }
    }

    /// Parses one line's text.
    pub fn parse_text(&mut self, line: &Line, text: &str) -> Result<Event, ParseError> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| ParseError::BadJson(e.to_string()))?;
        let stamp = doc.get("timestamp").and_then(Value::as_str);
        let stamp = stamp.ok_or_else(|| ParseError::no_match(FORMAT))?;
        let mut ev = event_for(line, text);
        (ev.timestamp, ev.tz_offset_secs) = parse_iso(stamp, &mut self.clock)?;
        ev.kind = EventKind::Security;
        let text_at = |path: &str| lookup(&doc, path).and_then(scalar_text);
        ev.log_level = text_at("level").map(|v| Text::from(v.as_ref()));
        ev.message = text_at("message").map(|v| v.into_owned());
        if let Some(source) = text_at("source") {
            ev.push_extra("security.source", source.as_ref());
        }
        let meta = |keys: &[&str]| keys.iter().find_map(|k| text_at(&format!("metadata.{k}")));
        if let Some(addr) = meta(&["ip", "ipAddress", "clientIp", "client_ip"]) {
            ev.source_ip = Some(ip::parse_host_port(&addr, false)?.0);
        }
        ev.user_name =
            meta(&["userId", "username", "user", "email"]).map(|v| Text::from(v.as_ref()));
        ev.action = meta(&["type", "event", "action"]).map(|v| Text::from(v.as_ref()));
        set_action(&mut ev);
        if let Some(m) = doc.get("metadata") {
            flatten("metadata", m, &[], &mut ev.extra);
        }
        if let Some(Value::Array(tags)) = doc.get("tags") {
            let joined: Vec<_> = tags.iter().filter_map(scalar_text).collect();
            ev.push_extra("tags", joined.join(","));
        }
        Ok(ev)
    }
}

fn set_action(ev: &mut Event) {
    let msg = ev.message.as_deref().unwrap_or("");
    if let Some((action, outcome)) = message_action(msg) {
        ev.outcome = Some(Text::from(outcome));
        if ev.action.is_none() {
            ev.action = Some(Text::from(action));
        }
    }
    if ev.action.is_none() && !msg.is_empty() {
        ev.action = Some(Text::from(snake(msg)));
    }
}

/// `Suspicious activity detected` → `suspicious_activity_detected` (first 6 words).
fn snake(msg: &str) -> String {
    let words: Vec<String> = msg
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(6)
        .map(str::to_ascii_lowercase)
        .collect();
    words.join("_")
}

impl Parser for SecurityLogParser {
    fn parse(&mut self, line: &Line, out: &mut Vec<Event>) -> Result<(), ParseError> {
        let text = text_of(line);
        out.push(self.parse_text(line, text)?);
        Ok(())
    }

    fn format_name(&self) -> &str {
        FORMAT
    }
}
