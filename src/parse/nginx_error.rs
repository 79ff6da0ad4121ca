//! nginx `error.log`: `YYYY/MM/DD hh:mm:ss [level] pid#tid: *cid message, client: …`.
//!
//! Rate limiting (field case 46) becomes [`EventKind::RateLimit`] with
//! `event.action` one of:
//!
//! | message starts with                           | action             | `nginx.limit.kind` |
//! |-----------------------------------------------|--------------------|--------------------|
//! | `limiting requests[, dry run], excess: X by zone "Z"` | `nginx_limit_req`  | `req`   |
//! | `limiting connections[, dry run] by zone "Z"` | `nginx_limit_conn` | `conn`             |
//! | `delaying request, excess: X, by zone "Z"`    | `nginx_delay`      | `delay`            |
//!
//! plus `nginx.limit.zone` (and `nginx.limit.excess` when written). basic-auth and PAM
//! failures get action `login_failed`. Every other line is a [`EventKind::ServerError`].
//!
//! The client is chosen structurally, because the message before it can hold
//! attacker text (a basic-auth user name such as `x", client: 127.0.0.1, …`). nginx
//! appends `, client: A, server: S[, request: "…"][, subrequest: "…"][, upstream: "…"]
//! [, host: "…"][, referrer: "…"]` at the end of the line; the client is the left-most
//! `, client: ` whose remainder is exactly such a tail. A referrer may itself contain
//! a forged tail; when a candidate fails only because its referrer holds a quote, the
//! line is ambiguous and gets no client (`nginx.client_ambiguous = true`) rather than
//! one an attacker picked.

use memchr::memmem;

use super::time::{LocalClock, parse_nginx_error_time};
use super::{ParseError, Parser, event_for, ip, nginx, text_of};
use crate::event::{Event, EventKind, Text};
use crate::sources::Line;

const FORMAT: &str = "nginx error log";

/// Parses nginx error-log lines (also with a syslog/journal prefix before the date).
pub struct NginxErrorParser {
    clock: LocalClock,
}

impl NginxErrorParser {
    /// A parser reading offset-less times with `clock`.
    pub fn new(clock: LocalClock) -> NginxErrorParser {
        NginxErrorParser { clock }
    }

    /// Parses one line's text.
    pub fn parse_text(&mut self, line: &Line, text: &str) -> Result<Event, ParseError> {
        let start = find_header(text).ok_or_else(|| ParseError::no_match(FORMAT))?;
        let (ts, _) = parse_nginx_error_time(&text[start..start + 19], &mut self.clock)?;
        let rest = &text[start + 19..];
        let (level, body) = split_level(rest).ok_or_else(|| ParseError::no_match(FORMAT))?;
        let mut ev = event_for(line, text);
        ev.timestamp = ts;
        ev.kind = EventKind::ServerError;
        ev.log_level = Some(Text::from(level));
        let body = strip_connection(&mut ev, body);
        let message = match find_client(body) {
            ClientPick::Found { at, addr, tail } => {
                ev.source_ip = Some(ip::parse_ip(addr)?);
                apply_tail(&mut ev, tail);
                &body[..at]
            }
            ClientPick::Ambiguous { at } => {
                ev.push_extra("nginx.client_ambiguous", "true");
                &body[..at]
            }
            ClientPick::None => body,
        };
        classify(&mut ev, message);
        ev.message = Some(message.to_owned());
        Ok(ev)
    }
}

/// Whether the line holds an nginx error-log date (`YYYY/MM/DD hh:mm:ss [`).
pub fn has_header(text: &str) -> bool {
    find_header(text).is_some()
}

/// Byte index of `YYYY/MM/DD hh:mm:ss [` in the line (0 for plain error.log lines).
fn find_header(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let is_at = |i: usize| {
        b.len() >= i + 21
            && b[i..i + 4].iter().all(u8::is_ascii_digit)
            && b[i + 4] == b'/'
            && b[i + 7] == b'/'
            && b[i + 10] == b' '
            && b[i + 13] == b':'
            && b[i + 19] == b' '
            && b[i + 20] == b'['
    };
    if is_at(0) {
        return Some(0);
    }
    memchr::memchr_iter(b'/', b)
        .filter_map(|i| i.checked_sub(4))
        .find(|i| is_at(*i))
}

/// ` [error] 2211#2211: rest` → (`error`, `rest`).
fn split_level(rest: &str) -> Option<(&str, &str)> {
    let rest = rest.strip_prefix(" [")?;
    let (level, rest) = rest.split_once("] ")?;
    let (_pid, rest) = rest.split_once(": ")?;
    Some((level, rest))
}

/// Removes `*5531 ` and keeps the connection id.
fn strip_connection<'a>(ev: &mut Event, body: &'a str) -> &'a str {
    let Some(rest) = body.strip_prefix('*') else {
        return body;
    };
    let Some((cid, msg)) = rest.split_once(' ') else {
        return body;
    };
    if !cid.bytes().all(|c| c.is_ascii_digit()) {
        return body;
    }
    ev.push_extra("nginx.connection_id", cid);
    msg
}

/// Which `, client: ` occurrence names the client.
#[derive(Debug, PartialEq)]
enum ClientPick<'a> {
    Found {
        at: usize,
        addr: &'a str,
        tail: &'a str,
    },
    Ambiguous {
        at: usize,
    },
    None,
}

/// How a candidate's remainder compares with nginx's trailing fields.
#[derive(Debug, PartialEq)]
enum Tail {
    Valid,
    /// Everything fits except a quote inside the referrer value.
    QuotedReferrer,
    Invalid,
}

fn find_client(body: &str) -> ClientPick<'_> {
    const NEEDLE: &str = ", client: ";
    let mut first_doubtful = None;
    for at in memmem::find_iter(body.as_bytes(), NEEDLE) {
        let value = &body[at + NEEDLE.len()..];
        let (addr, tail) = value.split_once(", ").unwrap_or((value, ""));
        let check = if tail.is_empty() {
            Tail::Invalid
        } else {
            check_tail(tail)
        };
        match check {
            Tail::Valid if first_doubtful.is_none() => {
                return ClientPick::Found { at, addr, tail };
            }
            Tail::Valid => break,
            Tail::QuotedReferrer => first_doubtful = first_doubtful.or(Some(at)),
            Tail::Invalid => {}
        }
    }
    match first_doubtful {
        Some(at) => ClientPick::Ambiguous { at },
        None => ClientPick::None,
    }
}

/// Checks `server: S[, request: "…"][, subrequest: "…"][, upstream: "…"][, host: "…"]
/// [, referrer: "…"]` up to the end of the line.
fn check_tail(tail: &str) -> Tail {
    let Some(rest) = tail.strip_prefix("server: ") else {
        return Tail::Invalid;
    };
    let end = rest.find(", ").unwrap_or(rest.len());
    if rest[..end].contains(['"', ' ']) {
        return Tail::Invalid;
    }
    let mut rest = &rest[end..];
    for (key, spaces_ok) in [
        ("request", true),
        ("subrequest", true),
        ("upstream", false),
        ("host", false),
    ] {
        let Some(after) = strip_key(rest, key) else {
            continue;
        };
        let Some(close) = after.find('"') else {
            return Tail::Invalid;
        };
        if !spaces_ok && after[..close].contains(' ') {
            return Tail::Invalid;
        }
        rest = &after[close + 1..];
    }
    if rest.is_empty() {
        return Tail::Valid;
    }
    let Some(referrer) = strip_key(rest, "referrer") else {
        return Tail::Invalid;
    };
    match referrer.strip_suffix('"') {
        Some(v) if !v.contains('"') => Tail::Valid,
        Some(_) => Tail::QuotedReferrer,
        None => Tail::Invalid,
    }
}

/// `, key: "` → the text after the opening quote.
fn strip_key<'a>(rest: &'a str, key: &str) -> Option<&'a str> {
    rest.strip_prefix(", ")?
        .strip_prefix(key)?
        .strip_prefix(": \"")
}

/// Copies the trailing fields (already validated) into the event.
fn apply_tail(ev: &mut Event, tail: &str) {
    let server = tail.strip_prefix("server: ").unwrap_or("");
    let end = server.find(", ").unwrap_or(server.len());
    if end > 0 {
        ev.push_extra("nginx.server_name", &server[..end]);
    }
    let mut rest = &server[end..];
    for key in ["request", "subrequest", "upstream", "host", "referrer"] {
        let Some(after) = strip_key(rest, key) else {
            continue;
        };
        let close = if key == "referrer" {
            after.len() - 1
        } else {
            after.find('"').unwrap_or(after.len())
        };
        let value = &after[..close];
        match key {
            "request" => nginx::apply_request(ev, value),
            "host" => ev.push_extra("url.domain", value),
            "referrer" => ev.referrer = Some(value.to_owned()),
            "upstream" => ev.push_extra("nginx.upstream", value),
            _ => ev.push_extra("nginx.subrequest", value),
        }
        rest = after.get(close + 1..).unwrap_or("");
    }
}

/// Recognises rate limiting and basic-auth failures in the message.
fn classify(ev: &mut Event, msg: &str) {
    let kind = if msg.starts_with("limiting requests") {
        Some(("req", "nginx_limit_req"))
    } else if msg.starts_with("limiting connections") {
        Some(("conn", "nginx_limit_conn"))
    } else if msg.starts_with("delaying request") {
        Some(("delay", "nginx_delay"))
    } else {
        None
    };
    if let Some((kind, action)) = kind {
        ev.kind = EventKind::RateLimit;
        ev.action = Some(Text::from(action));
        ev.outcome = Some(Text::from(if kind == "delay" {
            "success"
        } else {
            "failure"
        }));
        ev.push_extra("nginx.limit.kind", kind);
        if let Some(zone) = between(msg, "by zone \"", "\"") {
            ev.push_extra("nginx.limit.zone", zone);
        }
        if let Some(excess) = between(msg, "excess: ", " ") {
            ev.push_extra("nginx.limit.excess", excess.trim_end_matches(','));
        }
        return;
    }
    classify_auth(ev, msg);
}

fn classify_auth(ev: &mut Event, msg: &str) {
    let user = if let Some(rest) = msg.strip_prefix("user \"") {
        let failed = rest.contains("password mismatch") || rest.contains("was not found in");
        failed.then(|| rest.split('"').next()).flatten()
    } else if let Some(rest) = msg.strip_prefix("PAM: user '") {
        rest.contains("not authenticated")
            .then(|| rest.split('\'').next())
            .flatten()
    } else {
        None
    };
    let Some(user) = user else { return };
    ev.action = Some(Text::from("login_failed"));
    ev.outcome = Some(Text::from("failure"));
    ev.user_name = Some(Text::from(user));
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end).unwrap_or(s.len() - from);
    Some(&s[from..from + len])
}

impl Parser for NginxErrorParser {
    fn parse(&mut self, line: &Line, out: &mut Vec<Event>) -> Result<(), ParseError> {
        let text = text_of(line);
        out.push(self.parse_text(line, text)?);
        Ok(())
    }

    fn format_name(&self) -> &str {
        FORMAT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_client_in_user_name_is_not_chosen() {
        let body = r#"user "test": password mismatch, client: 127.0.0.1, server: test, request: "GET / HTTP/1.1", host: "localhost:8443"": was not found in "/etc/nginx/.htpasswd", client: 192.0.2.2, server: , request: "GET / HTTP/1.1", host: "localhost:8443""#;
        let ClientPick::Found { addr, .. } = find_client(body) else {
            panic!()
        };
        assert_eq!(addr, "192.0.2.2");
    }

    #[test]
    fn forged_tail_in_referrer_gives_no_client() {
        let body = r#"open() failed, client: 192.0.2.9, server: s, request: "GET / HTTP/1.1", host: "h", referrer: "x", client: 6.6.6.6, server: s, request: "GET / HTTP/1.1", host: "h""#;
        assert!(matches!(find_client(body), ClientPick::Ambiguous { .. }));
    }

    #[test]
    fn user_name_swallowing_the_tail_gives_no_client() {
        let body = r#"user "a", client: 6.6.6.6, server: s, referrer: "": password mismatch, client: 192.0.2.9, server: s, request: "GET / HTTP/1.1", host: "h""#;
        assert!(!matches!(
            find_client(body),
            ClientPick::Found {
                addr: "6.6.6.6",
                ..
            }
        ));
    }
}
