//! Guessing the format of each line, for `scan` of files of unknown origin.
//!
//! The sniffing order is cheap-first: a `{` starts JSON (journald export if it has
//! `__REALTIME_TIMESTAMP`, `security.log` if it has `timestamp` + `source` + `tags` or
//! `metadata`, a backend `Security event:` line, else generic JSON lines); the backend
//! request prefix; an nginx error-log date (`YYYY/MM/DD hh:mm:ss [`); a leading `[`
//! (Apache error / `[client A:P]`); `[dd/Mon/yyyy:` inside the line (nginx `main`, then
//! `combined`); a syslog date; `key=value` pairs. Lines without a time of their own
//! take the previous line's. Slower than a configured parser, never used for `watch`
//! by default.

use serde_json::Value;

use super::apache_error::ApacheErrorParser;
use super::journal::JournalParser;
use super::json::JsonParser;
use super::logfmt::LogfmtParser;
use super::nginx::{LogFormat, NginxParser};
use super::nginx_error::{NginxErrorParser, has_header};
use super::security_log::SecurityLogParser;
use super::syslog::SyslogParser;
use super::time::LocalClock;
use super::{ParseError, Parser, backend, text_of};
use crate::config::{JsonFieldMap, NetworkConfig};
use crate::event::Event;
use crate::sources::Line;

const FORMAT: &str = "auto";

/// Parses each line with whichever known format it looks like.
pub struct AutoParser {
    main: NginxParser,
    combined: NginxParser,
    nginx_error: NginxErrorParser,
    json: JsonParser,
    journal: JournalParser,
    security: SecurityLogParser,
    syslog: SyslogParser,
    apache: ApacheErrorParser,
    logfmt: LogfmtParser,
    last: Option<jiff::Timestamp>,
}

impl AutoParser {
    /// An auto parser; `net` and `clock` are passed to the parsers it tries.
    pub fn new(net: &NetworkConfig, clock: LocalClock) -> AutoParser {
        let compile = |f: &str| LogFormat::compile(f).expect("the built-in formats compile");
        AutoParser {
            main: NginxParser::new(compile("main"), net, clock.clone()),
            combined: NginxParser::new(compile("combined"), net, clock.clone()),
            nginx_error: NginxErrorParser::new(clock.clone()),
            json: JsonParser::new(JsonFieldMap::default(), clock.clone()),
            journal: JournalParser::new(),
            security: SecurityLogParser::new(clock.clone()),
            syslog: SyslogParser::new(clock.clone()),
            apache: ApacheErrorParser::new(clock.clone()),
            logfmt: LogfmtParser::new("client", false, clock),
            last: None,
        }
    }

    fn sniff(&mut self, line: &Line, text: &str) -> Result<Event, ParseError> {
        if text.starts_with('{') {
            return self.json_line(line, text);
        }
        if let Some(json) = text.strip_prefix("Security Log - Request: ") {
            let mut ev = self.json.parse_text(line, json)?;
            ev.raw = text.to_owned();
            ev.kind = crate::event::EventKind::Access;
            return Ok(ev);
        }
        if has_header(text) {
            return self.nginx_error.parse_text(line, text);
        }
        if text.starts_with('[') {
            if let Some(ts) = self.last {
                self.apache.set_last_time(ts);
            }
            return self.apache.parse_text(line, text);
        }
        if text.contains(" [") && text.contains("] \"") {
            return self
                .main
                .parse_text(line, text)
                .or_else(|_| self.combined.parse_text(line, text));
        }
        if let Ok(ev) = self.syslog.parse_text(line, text) {
            return Ok(ev);
        }
        self.logfmt.parse_text(line, text)
    }

    fn json_line(&mut self, line: &Line, text: &str) -> Result<Event, ParseError> {
        let doc: Value =
            serde_json::from_str(text).map_err(|e| ParseError::BadJson(e.to_string()))?;
        if doc.get("__REALTIME_TIMESTAMP").is_some() {
            return self.journal.parse_text(line, text);
        }
        let has = |k: &str| doc.get(k).is_some();
        if has("timestamp") && has("source") && (has("tags") || has("metadata")) {
            return self.security.parse_text(line, text);
        }
        let mut ev = super::event_for(line, text);
        self.json.fill(&mut ev, &doc)?;
        backend::apply_security_event(&mut ev);
        Ok(ev)
    }
}

impl Parser for AutoParser {
    fn parse(&mut self, line: &Line, out: &mut Vec<Event>) -> Result<(), ParseError> {
        let text = text_of(line);
        let ev = self.sniff(line, text)?;
        self.last = Some(ev.timestamp);
        out.push(ev);
        Ok(())
    }

    fn set_time_hint(&mut self, time: jiff::Timestamp) {
        self.last = Some(time);
    }

    fn format_name(&self) -> &str {
        FORMAT
    }
}
