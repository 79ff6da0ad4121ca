//! `key=value` lines (logfmt, HAProxy-style), optionally led by an ISO 8601 time.
//!
//! `2024-06-01T08:00:01Z auth 401 client=2001:db8::1:58340 user=frank`: the leading
//! time (if any) is the event time, `key=value` pairs (values may be double-quoted)
//! are mapped, and bare words become the message. The configured `client_field`
//! holds the client; when the configuration declares that a port follows
//! (`client_port = true`), an unbracketed IPv6 value is split at its last colon (field
//! case 7). Known keys: `time`/`ts`, `level`, `msg`/`message`, `user`, `method`,
//! `path`/`url`, `status`; others go to `extra` as `logfmt.<key>`. A bare 3-digit word
//! between 100 and 599 is taken as the status.

use super::time::{LocalClock, parse_iso};
use super::{ParseError, Parser, event_for, ip, text_of};
use crate::event::{Event, EventKind, Text};
use crate::sources::Line;

const FORMAT: &str = "key=value (logfmt)";

/// Parses `key=value` lines.
pub struct LogfmtParser {
    client_field: String,
    client_port: bool,
    clock: LocalClock,
    last: Option<jiff::Timestamp>,
}

impl LogfmtParser {
    /// A parser taking the client from `client_field`; `client_port` declares a port.
    pub fn new(client_field: &str, client_port: bool, clock: LocalClock) -> LogfmtParser {
        LogfmtParser {
            client_field: client_field.to_owned(),
            client_port,
            clock,
            last: None,
        }
    }

    /// Parses one line's text.
    pub fn parse_text(&mut self, line: &Line, text: &str) -> Result<Event, ParseError> {
        let mut ev = event_for(line, text);
        ev.kind = EventKind::App;
        let mut words = Vec::new();
        let mut timed = false;
        let mut pairs = 0;
        for (i, (key, value)) in tokens(text).enumerate() {
            match key {
                None if i == 0 && !timed => match parse_iso(value, &mut self.clock) {
                    Ok((ts, off)) => {
                        (ev.timestamp, ev.tz_offset_secs, timed) = (ts, off, true);
                    }
                    Err(_) => words.push(value),
                },
                None => self.apply_word(&mut ev, value, &mut words),
                Some(k) => {
                    pairs += 1;
                    timed |= self.apply_pair(&mut ev, k, value)?;
                }
            }
        }
        if pairs == 0 {
            return Err(ParseError::no_match(FORMAT));
        }
        if !timed {
            ev.timestamp = self
                .last
                .ok_or_else(|| ParseError::BadTime("no time in the line".into()))?;
        }
        self.last = Some(ev.timestamp);
        if ev.message.is_none() && !words.is_empty() {
            ev.message = Some(words.join(" "));
        }
        Ok(ev)
    }

    fn apply_word<'a>(&self, ev: &mut Event, word: &'a str, words: &mut Vec<&'a str>) {
        let status = (word.len() == 3)
            .then(|| word.parse::<u16>().ok())
            .flatten();
        match status.filter(|s| (100..600).contains(s)) {
            Some(s) if ev.status.is_none() => ev.status = Some(s),
            _ => words.push(word),
        }
    }

    /// Applies one pair; returns whether it set the time.
    fn apply_pair(&mut self, ev: &mut Event, key: &str, value: &str) -> Result<bool, ParseError> {
        if key == self.client_field {
            let (addr, port) = ip::parse_host_port(value, self.client_port)?;
            ev.source_ip = Some(addr);
            ev.source_port = port;
            return Ok(false);
        }
        match key {
            "time" | "ts" | "timestamp" => {
                let (ts, off) = parse_iso(value, &mut self.clock)?;
                (ev.timestamp, ev.tz_offset_secs) = (ts, off);
                return Ok(true);
            }
            "level" => ev.log_level = Some(Text::from(value)),
            "msg" | "message" => ev.message = Some(value.to_owned()),
            "user" => ev.user_name = Some(Text::from(value)),
            "method" => ev.method = Some(Text::from(value)),
            "path" | "url" | "uri" => ev.set_url(value),
            "status" => ev.status = value.parse().ok(),
            other => ev.push_extra(compact_str::format_compact!("logfmt.{other}"), value),
        }
        Ok(false)
    }
}

/// Splits a line into `(Some(key), value)` pairs and `(None, word)` bare words.
fn tokens(text: &str) -> impl Iterator<Item = (Option<&str>, &str)> {
    let mut rest = text.trim();
    std::iter::from_fn(move || {
        rest = rest.trim_start();
        if rest.is_empty() {
            return None;
        }
        let word_end = rest.find(' ').unwrap_or(rest.len());
        let eq = rest[..word_end].find('=');
        let Some(eq) = eq.filter(|i| *i > 0) else {
            let word = &rest[..word_end];
            rest = &rest[word_end..];
            return Some((None, word));
        };
        let key = &rest[..eq];
        let after = &rest[eq + 1..];
        let (value, next) = match after.strip_prefix('"') {
            Some(q) => {
                let close = q.find('"').unwrap_or(q.len());
                (&q[..close], q.get(close + 1..).unwrap_or(""))
            }
            None => {
                let end = after.find(' ').unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        rest = next;
        Some((Some(key), value))
    })
}

impl Parser for LogfmtParser {
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
