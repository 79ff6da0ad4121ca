//! `journalctl -o json` export lines.
//!
//! The time is `__REALTIME_TIMESTAMP` (microseconds since the epoch). sshd messages
//! are recognised whether the process is called `sshd` or, since Debian 13 / OpenSSH
//! 9.8, `sshd-session` (field case 45): matching is on the message, with `_COMM` /
//! `SYSLOG_IDENTIFIER` only kept as `process.name`. `MESSAGE` may be a byte array when
//! it was not valid UTF-8; it is decoded lossily.

use serde_json::Value;

use super::syslog::apply_sshd;
use super::time::parse_epoch_micros;
use super::{ParseError, Parser, event_for, text_of};
use crate::event::{Event, EventKind};
use crate::sources::Line;

const FORMAT: &str = "journald JSON export";

/// Parses journald JSON export lines.
#[derive(Default)]
pub struct JournalParser;

impl JournalParser {
    /// A journald parser (stateless).
    pub fn new() -> JournalParser {
        JournalParser
    }

    /// Parses one line's text.
    pub fn parse_text(&mut self, line: &Line, text: &str) -> Result<Event, ParseError> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| ParseError::BadJson(e.to_string()))?;
        let micros = doc
            .get("__REALTIME_TIMESTAMP")
            .and_then(Value::as_str)
            .ok_or_else(|| ParseError::no_match(FORMAT))?;
        let mut ev = event_for(line, text);
        ev.timestamp = parse_epoch_micros(micros)?;
        ev.kind = EventKind::App;
        let message = doc.get("MESSAGE").map(message_text).unwrap_or_default();
        for (key, name) in [
            ("_COMM", "process.name"),
            ("SYSLOG_IDENTIFIER", "log.syslog.appname"),
            ("_SYSTEMD_UNIT", "systemd.unit"),
            ("_HOSTNAME", "host.hostname"),
            ("_PID", "process.pid"),
        ] {
            if let Some(v) = doc.get(key).and_then(Value::as_str) {
                ev.push_extra(name, v);
            }
        }
        apply_sshd(&mut ev, &message);
        ev.message = Some(message);
        Ok(ev)
    }
}

/// `MESSAGE` as text: a string, or an array of bytes.
fn message_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(|b| b.as_u64())
                .map(|b| b as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => String::new(),
    }
}

impl Parser for JournalParser {
    fn parse(&mut self, line: &Line, out: &mut Vec<Event>) -> Result<(), ParseError> {
        let text = text_of(line);
        out.push(self.parse_text(line, text)?);
        Ok(())
    }

    fn format_name(&self) -> &str {
        FORMAT
    }
}
