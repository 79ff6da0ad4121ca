//! JSON lines with a configurable field mapping ([`JsonFieldMap`]).
//!
//! Each ECS field has a list of candidate paths; the first present wins. A path is
//! dotted and may index arrays: `req.ip`, `attempts[0].user`; a key that itself holds
//! dots (`"source.ip": …`) is tried whole first. Every leaf the mapping did not use is
//! flattened into `extra` under its path (`req.ua`, `attempts[1].user`), so nested
//! objects and arrays of objects survive as evidence (field case 42). Addresses are
//! normalised (field case 9) and a line keeps its own time (field case 13).
//!
//! Messages recognised when no action field is mapped ([`message_action`]):
//!
//! | message contains (any case)                                      | action          | outcome |
//! |------------------------------------------------------------------|-----------------|---------|
//! | `login failed`, `failed login`, `authentication failed`, `invalid credentials`, `invalid password`, `auth failure` | `login_failed` | failure |
//! | `login successful`, `login succeeded`, `logged in`               | `login_success` | success |
//! | `rate limit exceeded`, `too many requests`                       | `rate_limited`  | failure |
//! | `access denied`, `forbidden`, `unauthorized`                     | `access_denied` | failure |

use std::borrow::Cow;

use serde_json::Value;

use super::time::{LocalClock, parse_epoch_number, parse_iso};
use super::{ParseError, Parser, event_for, ip, text_of};
use crate::config::JsonFieldMap;
use crate::event::{Event, EventKind, Text};
use crate::sources::Line;

const FORMAT: &str = "JSON lines";

/// The small message vocabulary: (needle, action, outcome).
const VOCABULARY: [(&str, &str, &str); 14] = [
    ("login failed", "login_failed", "failure"),
    ("failed login", "login_failed", "failure"),
    ("authentication failed", "login_failed", "failure"),
    ("invalid credentials", "login_failed", "failure"),
    ("invalid password", "login_failed", "failure"),
    ("auth failure", "login_failed", "failure"),
    ("login successful", "login_success", "success"),
    ("login succeeded", "login_success", "success"),
    ("logged in", "login_success", "success"),
    ("rate limit exceeded", "rate_limited", "failure"),
    ("too many requests", "rate_limited", "failure"),
    ("access denied", "access_denied", "failure"),
    ("forbidden", "access_denied", "failure"),
    ("unauthorized", "access_denied", "failure"),
];

/// The (action, outcome) a free-text message states, if it is in the vocabulary.
pub fn message_action(msg: &str) -> Option<(&'static str, &'static str)> {
    let lower = msg.to_ascii_lowercase();
    VOCABULARY
        .iter()
        .find(|(needle, _, _)| lower.contains(needle))
        .map(|(_, action, outcome)| (*action, *outcome))
}

/// The value at a dotted path with `[n]` indexes; a key holding the whole path wins.
pub fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = doc.get(path) {
        return Some(v);
    }
    let mut cur = doc;
    for part in path.split('.') {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        for idx in indexes.split('[').skip(1) {
            let n: usize = idx.strip_suffix(']')?.parse().ok()?;
            cur = cur.get(n)?;
        }
    }
    Some(cur)
}

/// A scalar as text (`null` and containers give `None`).
pub fn scalar_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// Flattens every leaf under `v` into `out` as (`prefix.path`, text), skipping `used`.
pub fn flatten(prefix: &str, v: &Value, used: &[String], out: &mut Vec<(Text, Text)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, child, used, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), child, used, out);
            }
        }
        Value::Null => {}
        leaf => {
            if used.iter().any(|u| u == prefix) || prefix.is_empty() {
                return;
            }
            let text = scalar_text(leaf).unwrap_or_default();
            out.push((Text::from(prefix), Text::from(text.as_ref())));
        }
    }
}

/// Parses JSON lines with a field mapping.
pub struct JsonParser {
    fields: JsonFieldMap,
    clock: LocalClock,
    last: Option<jiff::Timestamp>,
}

impl JsonParser {
    /// A parser with the given mapping; times without offset are read by `clock`.
    pub fn new(fields: JsonFieldMap, clock: LocalClock) -> JsonParser {
        JsonParser {
            fields,
            clock,
            last: None,
        }
    }

    /// Parses one line's text.
    pub fn parse_text(&mut self, line: &Line, text: &str) -> Result<Event, ParseError> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| ParseError::BadJson(e.to_string()))?;
        if !doc.is_object() {
            return Err(ParseError::BadJson("the line is not a JSON object".into()));
        }
        let mut ev = event_for(line, text);
        self.fill(&mut ev, &doc)?;
        Ok(ev)
    }

    /// Fills `ev` from a parsed document with the mapping.
    pub fn fill(&mut self, ev: &mut Event, doc: &Value) -> Result<(), ParseError> {
        let mut used = Vec::new();
        self.fill_time(ev, doc, &mut used)?;
        let fields = std::mem::take(&mut self.fields);
        let result = fill_fields(&fields, ev, doc, &mut used);
        self.fields = fields;
        result?;
        flatten("", doc, &used, &mut ev.extra);
        Ok(())
    }

    fn fill_time(
        &mut self,
        ev: &mut Event,
        doc: &Value,
        used: &mut Vec<String>,
    ) -> Result<(), ParseError> {
        let found = first(&self.fields.timestamp, doc);
        let Some((path, v)) = found else {
            ev.timestamp = self
                .last
                .ok_or_else(|| ParseError::BadTime("no timestamp field".into()))?;
            return Ok(());
        };
        used.push(path.to_owned());
        let (ts, off) = match v {
            Value::Number(n) => {
                let ts = n.as_f64().and_then(parse_epoch_number);
                (ts.ok_or_else(|| ParseError::BadTime(n.to_string()))?, None)
            }
            Value::String(s) => parse_iso(s, &mut self.clock)?,
            other => return Err(ParseError::BadTime(other.to_string())),
        };
        ev.timestamp = ts;
        ev.tz_offset_secs = off;
        self.last = Some(ts);
        Ok(())
    }
}

/// The first candidate path present (and not null) in `doc`.
fn first<'a, 'p>(paths: &'p [String], doc: &'a Value) -> Option<(&'p str, &'a Value)> {
    paths.iter().find_map(|p| {
        lookup(doc, p)
            .filter(|v| !v.is_null())
            .map(|v| (p.as_str(), v))
    })
}

fn first_text<'a>(
    paths: &[String],
    doc: &'a Value,
    used: &mut Vec<String>,
) -> Option<Cow<'a, str>> {
    let (path, v) = first(paths, doc)?;
    let text = scalar_text(v)?;
    used.push(path.to_owned());
    Some(text)
}

fn fill_fields(
    f: &JsonFieldMap,
    ev: &mut Event,
    doc: &Value,
    used: &mut Vec<String>,
) -> Result<(), ParseError> {
    if let Some(addr) = first_text(&f.source_ip, doc, used) {
        let (ip, port) = ip::parse_host_port(&addr, false)?;
        ev.source_ip = Some(ip);
        ev.source_port = port;
    }
    if let Some(url) = first_text(&f.url, doc, used) {
        ev.set_url(&url);
    }
    if let Some(status) = first_text(&f.status, doc, used) {
        ev.status = status.parse().ok();
    }
    let text = |paths: &[String], used: &mut Vec<String>| {
        first_text(paths, doc, used).map(|t| Text::from(t.as_ref()))
    };
    ev.method = text(&f.method, used);
    ev.user_agent = first_text(&f.user_agent, doc, used).map(Cow::into_owned);
    ev.user_name = text(&f.user_name, used);
    ev.log_level = text(&f.level, used);
    ev.action = text(&f.action, used);
    ev.message = first_text(&f.message, doc, used).map(Cow::into_owned);
    for (name, path) in &f.extra {
        if let Some(v) = lookup(doc, path).and_then(scalar_text) {
            ev.push_extra(name.as_str(), v.as_ref());
            used.push(path.clone());
        }
    }
    finish_kind(ev);
    Ok(())
}

/// Kind and vocabulary action from what was found.
fn finish_kind(ev: &mut Event) {
    ev.kind = if ev.status.is_some() || ev.method.is_some() {
        EventKind::Access
    } else {
        EventKind::App
    };
    if ev.action.is_some() {
        return;
    }
    let Some((action, outcome)) = ev.message.as_deref().and_then(message_action) else {
        return;
    };
    ev.action = Some(Text::from(action));
    ev.outcome = Some(Text::from(outcome));
}

impl Parser for JsonParser {
    fn parse(&mut self, line: &Line, out: &mut Vec<Event>) -> Result<(), ParseError> {
        let text = text_of(line);
        out.push(self.parse_text(line, text)?);
        Ok(())
    }

    fn set_time_hint(&mut self, time: jiff::Timestamp) {
        self.last = Some(time);
    }

    fn format_name(&self) -> &str {
        FORMAT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_paths() {
        let doc: Value =
            serde_json::from_str(r#"{"a":{"b":[{"c":1},{"c":2}]},"x.y":"flat"}"#).unwrap();
        assert_eq!(lookup(&doc, "a.b[1].c"), Some(&Value::from(2)));
        assert_eq!(lookup(&doc, "x.y"), Some(&Value::from("flat")));
        assert_eq!(lookup(&doc, "a.b[7].c"), None);
    }

    #[test]
    fn vocabulary() {
        assert_eq!(
            message_action("Login FAILED for alice"),
            Some(("login_failed", "failure"))
        );
        assert_eq!(message_action("GET /health"), None);
    }
}
