//! The reference backend's stdout (Node.js/Express), which mixes four kinds of lines:
//!
//! - `Security Log - Request: {json}` for every request, with the raw URL and query
//!   → [`EventKind::Access`] (no status: the line is written before the response);
//! - morgan `combined` lines for responses with status ≥ 400 → `Access`, read with the
//!   nginx parser (`:date[clf]` is nginx's `$time_local`);
//! - JSON lines whose message is `Security event: <type>` (`rate_limit`,
//!   `auth_failure` with a `reason`, `suspicious_activity`, …) → [`EventKind::Security`]
//!   with `event.action = <type>`; other JSON lines → `App` (see [`super::json`]);
//! - stack traces: a line starting with whitespace (`    at fn (file:line:col)`), or an
//!   `…Error:` line right after an entry ending in `:`, is appended to the entry before
//!   it (message and raw joined with `\n`).
//!
//! Because a trace line can only be recognised after its entry, the parser always holds
//! the latest entry back until the next line (or [`Parser::flush`]) shows it complete.
//! Plain text lines take the time of the previous timed line.
//! Addresses go through trusted-proxy resolution with the request's
//! `headers.x-forwarded-for` when the JSON has it.

use serde_json::Value;

use super::client::ClientResolver;
use super::json::JsonParser;
use super::nginx::{LogFormat, NginxParser};
use super::time::LocalClock;
use super::{ParseError, Parser, event_for, text_of};
use crate::config::{JsonFieldMap, NetworkConfig};
use crate::event::{Event, EventKind, Text};
use crate::sources::Line;

const FORMAT: &str = "backend stdout";
const REQUEST_PREFIX: &str = "Security Log - Request: ";
const SECURITY_PREFIX: &str = "Security event: ";

/// Parses the backend's mixed stdout, joining stack traces.
pub struct BackendParser {
    json: JsonParser,
    morgan: NginxParser,
    resolver: ClientResolver,
    pending: Option<Event>,
    last: Option<jiff::Timestamp>,
}

impl BackendParser {
    /// A backend parser; `net` decides whose `X-Forwarded-For` is believed.
    pub fn new(net: &NetworkConfig, clock: LocalClock) -> BackendParser {
        let combined = LogFormat::compile("combined").expect("the built-in format compiles");
        BackendParser {
            json: JsonParser::new(JsonFieldMap::default(), clock.clone()),
            morgan: NginxParser::new(combined, net, clock),
            resolver: ClientResolver::new(net),
            pending: None,
            last: None,
        }
    }

    fn is_continuation(&self, text: &str) -> bool {
        if text.starts_with([' ', '\t']) {
            return true;
        }
        let after_colon = self
            .pending
            .as_ref()
            .and_then(|p| p.message.as_deref())
            .is_some_and(|m| m.trim_end().ends_with(':'));
        after_colon && error_line(text)
    }

    fn entry(&mut self, line: &Line, text: &str) -> Result<Event, ParseError> {
        if let Some(json) = text.strip_prefix(REQUEST_PREFIX) {
            let mut ev = self.json_event(line, text, json)?;
            ev.kind = EventKind::Access;
            ev.push_extra("backend.log", "request");
            return Ok(ev);
        }
        if text.starts_with('{') {
            let mut ev = self.json_event(line, text, text)?;
            apply_security_event(&mut ev);
            return Ok(ev);
        }
        if let Ok(mut ev) = self.morgan.parse_text(line, text) {
            ev.push_extra("backend.log", "morgan");
            return Ok(ev);
        }
        let mut ev = event_for(line, text);
        ev.timestamp = self
            .last
            .ok_or_else(|| ParseError::BadTime("no time before this line".into()))?;
        ev.kind = EventKind::App;
        if error_line(text) {
            ev.log_level = Some(Text::from("error"));
        }
        ev.message = Some(text.to_owned());
        Ok(ev)
    }

    fn json_event(&mut self, line: &Line, text: &str, json: &str) -> Result<Event, ParseError> {
        let doc: Value =
            serde_json::from_str(json).map_err(|e| ParseError::BadJson(e.to_string()))?;
        let mut ev = event_for(line, text);
        self.json.fill(&mut ev, &doc)?;
        if let Some(ip) = ev.source_ip {
            let xff = super::json::lookup(&doc, "headers.x-forwarded-for").and_then(Value::as_str);
            self.resolver.resolve(&mut ev, ip, xff);
        }
        Ok(ev)
    }
}

/// `Error: …`, `TypeError: …`, `SequelizeDatabaseError: …`.
fn error_line(text: &str) -> bool {
    let head = text.split(':').next().unwrap_or("");
    text.contains(':') && head.ends_with("Error") && !head.contains(' ')
}

/// `Security event: <type>` → kind Security, action = type.
pub(crate) fn apply_security_event(ev: &mut Event) {
    let Some(kind) = ev
        .message
        .as_deref()
        .and_then(|m| m.strip_prefix(SECURITY_PREFIX))
    else {
        return;
    };
    let action = kind.trim().to_owned();
    ev.kind = EventKind::Security;
    if let Some(detail) = ev.action.take().filter(|a| *a != action) {
        // A `type`/`event` field the mapping read as the action is kept as detail.
        ev.push_extra("security.detail", detail);
    }
    let failed = matches!(
        action.as_str(),
        "auth_failure" | "rate_limit" | "access_denied"
    );
    if failed {
        ev.outcome = Some(Text::from("failure"));
    }
    ev.action = Some(Text::from(action));
}

fn append(entry: &mut Event, text: &str) {
    entry.raw.push('\n');
    entry.raw.push_str(text);
    let msg = entry.message.get_or_insert_with(String::new);
    msg.push('\n');
    msg.push_str(text);
}

impl Parser for BackendParser {
    fn parse(&mut self, line: &Line, out: &mut Vec<Event>) -> Result<(), ParseError> {
        let text = text_of(line);
        if text.trim().is_empty() {
            return Ok(());
        }
        if self.is_continuation(text)
            && let Some(entry) = self.pending.as_mut()
        {
            append(entry, text);
            return Ok(());
        }
        let ev = self.entry(line, text)?;
        self.last = Some(ev.timestamp);
        if let Some(done) = self.pending.replace(ev) {
            out.push(done);
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut Vec<Event>) {
        out.extend(self.pending.take());
    }

    fn set_time_hint(&mut self, time: jiff::Timestamp) {
        self.last = Some(time);
        self.json.set_time_hint(time);
    }

    fn format_name(&self) -> &str {
        FORMAT
    }
}
