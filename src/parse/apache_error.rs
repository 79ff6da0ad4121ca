//! Apache error-log lines and other lines naming the client as `[client addr:port]`.
//!
//! `[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1:tid 2] [client A:P] message`.
//! The leading bracket groups are read in order; the time group is optional (some
//! application logs write only `[client A:P] message`), and a line without one takes
//! the previous line's time. Apache 2.4 always writes a port after the address, so an
//! unbracketed IPv6 client is split at its last colon (field case 6: a 9-group value is
//! 8 groups plus the port, whatever the hex letters).

use super::time::{LocalClock, parse_apache_time};
use super::{ParseError, Parser, event_for, ip, text_of};
use crate::event::{Event, EventKind, Text};
use crate::sources::Line;

const FORMAT: &str = "Apache error log";

/// Parses Apache-style error lines.
pub struct ApacheErrorParser {
    clock: LocalClock,
    last: Option<jiff::Timestamp>,
}

impl ApacheErrorParser {
    /// A parser reading offset-less times with `clock`.
    pub fn new(clock: LocalClock) -> ApacheErrorParser {
        ApacheErrorParser { clock, last: None }
    }

    /// Seeds the time used for lines that carry none (the auto parser shares its own).
    pub fn set_last_time(&mut self, ts: jiff::Timestamp) {
        self.last = Some(ts);
    }

    /// Parses one line's text.
    pub fn parse_text(&mut self, line: &Line, text: &str) -> Result<Event, ParseError> {
        if !text.starts_with('[') {
            return Err(ParseError::no_match(FORMAT));
        }
        let mut ev = event_for(line, text);
        ev.kind = EventKind::ServerError;
        let mut rest = text;
        let mut timed = false;
        while let Some(group) = rest.strip_prefix('[') {
            let Some((inner, after)) = group.split_once(']') else {
                break;
            };
            timed |= self.apply_group(&mut ev, inner)?;
            rest = after.trim_start();
        }
        if ev.source_ip.is_none() && !timed {
            return Err(ParseError::no_match(FORMAT));
        }
        if !timed {
            ev.timestamp = self
                .last
                .ok_or_else(|| ParseError::BadTime("no time in the line".into()))?;
        }
        self.last = Some(ev.timestamp);
        ev.message = Some(rest.to_owned());
        Ok(ev)
    }

    /// Applies one `[…]` group; returns whether it was the time.
    fn apply_group(&mut self, ev: &mut Event, inner: &str) -> Result<bool, ParseError> {
        if let Some(addr) = inner.strip_prefix("client ") {
            let (ip, port) = ip::parse_host_port(addr, true)?;
            ev.source_ip = Some(ip);
            ev.source_port = port;
            return Ok(false);
        }
        if let Some(pid) = inner.strip_prefix("pid ") {
            ev.push_extra("process.pid", pid.split(':').next().unwrap_or(pid));
            return Ok(false);
        }
        if inner.len() >= 24 && inner.as_bytes()[3] == b' ' {
            let (ts, _) = parse_apache_time(inner, &mut self.clock)?;
            ev.timestamp = ts;
            return Ok(true);
        }
        let level = inner.rsplit(':').next().unwrap_or(inner);
        if ev.log_level.is_none() {
            ev.log_level = Some(Text::from(level));
        }
        Ok(false)
    }
}

impl Parser for ApacheErrorParser {
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
