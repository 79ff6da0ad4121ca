//! nginx access logs in any `log_format`.
//!
//! [`LogFormat::compile`] turns a format string into a list of literal and variable
//! tokens once; [`NginxParser`] then walks each line with byte searches (memchr /
//! precompiled memmem finders): a variable's value runs up to the next occurrence of
//! the literal that follows it. No regex runs per line. nginx escapes `"` and control
//! bytes inside values as `\xHH`, which is why "up to the next `\" `" is exact.
//!
//! Known variables land in typed [`Event`] fields (see [`Var`]); any other variable is
//! kept as `nginx.<name>` in `extra`. `-` means empty. A line cut short (a truncated
//! last quote, a line-length cap) keeps what was parsed when the status was already
//! read; otherwise it is a `NoMatch`.

use std::net::IpAddr;

use memchr::memmem::Finder;

use super::client::ClientResolver;
use super::time::{ClfTimeCache, LocalClock};
use super::{ParseError, Parser, event_for, ip, text_of};
use crate::config::NetworkConfig;
use crate::event::{Event, EventKind, Text};
use crate::sources::Line;

/// nginx's predefined `combined` format.
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// The stock Docker/Debian `main` format: `combined` plus the forwarded-for header.
pub const MAIN: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for""#;

/// A variable with a typed home; anything else is [`Var::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    RemoteAddr,
    RemotePort,
    /// `$remote_addr:$remote_port` written together (split at the last colon).
    RemoteAddrPort,
    RemoteUser,
    TimeLocal,
    TimeIso8601,
    Msec,
    Request,
    RequestMethod,
    RequestUri,
    Uri,
    Args,
    Status,
    BodyBytesSent,
    BytesSent,
    HttpReferer,
    HttpUserAgent,
    HttpXForwardedFor,
    Host,
    ServerName,
    RequestTime,
    UpstreamResponseTime,
    /// Kept as `nginx.<name>`.
    Other(Text),
}

impl Var {
    fn from_name(name: &str) -> Var {
        match name {
            "remote_addr" | "realip_remote_addr" => Var::RemoteAddr,
            "remote_port" | "realip_remote_port" => Var::RemotePort,
            "remote_user" => Var::RemoteUser,
            "time_local" => Var::TimeLocal,
            "time_iso8601" => Var::TimeIso8601,
            "msec" => Var::Msec,
            "request" => Var::Request,
            "request_method" => Var::RequestMethod,
            "request_uri" => Var::RequestUri,
            "uri" | "document_uri" => Var::Uri,
            "args" | "query_string" => Var::Args,
            "status" => Var::Status,
            "body_bytes_sent" => Var::BodyBytesSent,
            "bytes_sent" => Var::BytesSent,
            "http_referer" => Var::HttpReferer,
            "http_user_agent" => Var::HttpUserAgent,
            "http_x_forwarded_for" => Var::HttpXForwardedFor,
            "host" | "http_host" => Var::Host,
            "server_name" => Var::ServerName,
            "request_time" => Var::RequestTime,
            "upstream_response_time" => Var::UpstreamResponseTime,
            other => Var::Other(Text::from(other)),
        }
    }
}

/// One piece of a compiled format.
#[derive(Debug, Clone)]
enum Tok {
    Lit(Finder<'static>),
    Var(Var),
}

/// A compiled `log_format`.
#[derive(Debug, Clone)]
pub struct LogFormat {
    /// What the user configured (`combined`, `main` or the format string).
    pub name: String,
    toks: Vec<Tok>,
}

impl LogFormat {
    /// Compiles `combined`, `main`, a bare format string, or a whole pasted
    /// `log_format name '…' '…';` directive.
    pub fn compile(spec: &str) -> Result<LogFormat, String> {
        let text = match spec.trim() {
            "combined" => COMBINED.to_owned(),
            "main" => MAIN.to_owned(),
            other => unwrap_directive(other),
        };
        let toks = tokenize(&text)?;
        Ok(LogFormat {
            name: spec.trim().to_owned(),
            toks,
        })
    }

    /// Whether the format has a variable.
    pub fn has(&self, var: &Var) -> bool {
        self.toks.iter().any(|t| matches!(t, Tok::Var(v) if v == var))
    }
}

/// `log_format timed '$a ' '$b';` → `$a $b`; a bare format is returned as is.
fn unwrap_directive(spec: &str) -> String {
    let Some(rest) = spec.strip_prefix("log_format") else {
        return spec.to_owned();
    };
    if !rest.contains('\'') && !rest.contains('"') {
        return spec.to_owned();
    }
    let body = rest.trim().trim_end_matches(';');
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\'' && c != '"' {
            continue;
        }
        for d in chars.by_ref() {
            if d == c {
                break;
            }
            out.push(d);
        }
    }
    out
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    if text.is_empty() {
        return Err("the format is empty".into());
    }
    let mut toks: Vec<Tok> = Vec::new();
    let mut lit = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            lit.push(b[i]);
            i += 1;
            continue;
        }
        let (name, next) = var_name(text, i + 1)?;
        if lit.is_empty() && matches!(toks.last(), Some(Tok::Var(_))) {
            return Err(format!("variable ${name} follows another with nothing between"));
        }
        flush_lit(&mut toks, &mut lit);
        toks.push(Tok::Var(Var::from_name(name)));
        i = next;
    }
    flush_lit(&mut toks, &mut lit);
    Ok(merge_addr_port(toks))
}

fn var_name(text: &str, start: usize) -> Result<(&str, usize), String> {
    let b = text.as_bytes();
    let braced = b.get(start) == Some(&b'{');
    let from = start + usize::from(braced);
    let mut end = from;
    while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
        end += 1;
    }
    if end == from {
        return Err(format!("a `$` at byte {start} is not followed by a variable name"));
    }
    if braced && b.get(end) != Some(&b'}') {
        return Err(format!("`${{` at byte {start} is not closed"));
    }
    Ok((&text[from..end], end + usize::from(braced)))
}

fn flush_lit(toks: &mut Vec<Tok>, lit: &mut Vec<u8>) {
    if !lit.is_empty() {
        toks.push(Tok::Lit(Finder::new(lit.as_slice()).into_owned()));
        lit.clear();
    }
}

/// `$remote_addr:$remote_port` becomes one token, so an IPv6 address is not cut at its
/// first colon (field cases 7 and 10).
fn merge_addr_port(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out = Vec::with_capacity(toks.len());
    let mut it = toks.into_iter().peekable();
    while let Some(tok) = it.next() {
        let is_addr = matches!(&tok, Tok::Var(Var::RemoteAddr));
        let colon = matches!(it.peek(), Some(Tok::Lit(f)) if f.needle() == b":");
        if !(is_addr && colon) {
            out.push(tok);
            continue;
        }
        let lit = it.next().expect("peeked");
        if matches!(it.peek(), Some(Tok::Var(Var::RemotePort))) {
            it.next();
            out.push(Tok::Var(Var::RemoteAddrPort));
        } else {
            out.push(tok);
            out.push(lit);
        }
    }
    out
}

/// Values gathered while walking a line, applied to the event at the end.
#[derive(Default)]
struct Pending<'a> {
    remote: Option<&'a str>,
    remote_port: Option<&'a str>,
    addr_port: Option<&'a str>,
    xff: Option<&'a str>,
    uri: Option<&'a str>,
    args: Option<&'a str>,
    status_seen: bool,
}

/// Parses an nginx access log with a compiled [`LogFormat`].
pub struct NginxParser {
    format: LogFormat,
    clf: ClfTimeCache,
    clock: LocalClock,
    resolver: ClientResolver,
}

impl NginxParser {
    /// A parser for `format`, resolving clients with `net`.
    pub fn new(format: LogFormat, net: &NetworkConfig, clock: LocalClock) -> NginxParser {
        NginxParser {
            format,
            clf: ClfTimeCache::default(),
            clock,
            resolver: ClientResolver::new(net),
        }
    }

    /// Parses one line's text into an event (the reusable core of [`Parser::parse`]).
    pub fn parse_text(&mut self, line: &Line, text: &str) -> Result<Event, ParseError> {
        let mut ev = event_for(line, text);
        ev.kind = EventKind::Access;
        let mut p = Pending::default();
        self.walk(text, &mut ev, &mut p)?;
        self.finish(&mut ev, p)?;
        Ok(ev)
    }

    fn no_match(&self) -> ParseError {
        ParseError::no_match(&format!("nginx ({})", self.format.name))
    }

    fn walk<'a>(&mut self, text: &'a str, ev: &mut Event, p: &mut Pending<'a>) -> Result<(), ParseError> {
        let b = text.as_bytes();
        let toks = std::mem::take(&mut self.format.toks);
        let result = self.walk_tokens(&toks, text, b, ev, p);
        self.format.toks = toks;
        result
    }

    fn walk_tokens<'a>(
        &mut self,
        toks: &[Tok],
        text: &'a str,
        b: &[u8],
        ev: &mut Event,
        p: &mut Pending<'a>,
    ) -> Result<(), ParseError> {
        let mut pos = 0;
        for (i, tok) in toks.iter().enumerate() {
            let var = match tok {
                Tok::Lit(f) => {
                    if !b[pos..].starts_with(f.needle()) {
                        return Err(self.no_match());
                    }
                    pos += f.needle().len();
                    continue;
                }
                Tok::Var(v) => v,
            };
            let (end, cut) = value_end(&toks[i + 1..], b, pos);
            let value = text.get(pos..end).ok_or_else(|| self.no_match())?;
            self.apply(var, value, ev, p)?;
            if cut {
                return self.accept_truncated(ev, p);
            }
            pos = end;
        }
        if pos != b.len() {
            return Err(self.no_match());
        }
        Ok(())
    }

    fn accept_truncated(&self, ev: &mut Event, p: &Pending<'_>) -> Result<(), ParseError> {
        if !p.status_seen && self.format.has(&Var::Status) {
            return Err(self.no_match());
        }
        ev.push_extra("log.truncated", "true");
        Ok(())
    }

    fn apply<'a>(&mut self, var: &Var, v: &'a str, ev: &mut Event, p: &mut Pending<'a>) -> Result<(), ParseError> {
        let dash = v.is_empty() || v == "-";
        match var {
            Var::RemoteAddr => p.remote = Some(v),
            Var::RemotePort => p.remote_port = Some(v),
            Var::RemoteAddrPort => p.addr_port = Some(v),
            Var::HttpXForwardedFor => p.xff = Some(v),
            Var::Status => {
                p.status_seen = true;
                ev.status = parse_status(v).map_err(|_| self.no_match())?;
            }
            Var::TimeLocal => self.set_clf_time(ev, v)?,
            Var::Request => apply_request(ev, v),
            _ if dash => {}
            Var::Uri => p.uri = Some(v),
            Var::Args => p.args = Some(v),
            other => self.apply_simple(other, v, ev)?,
        }
        Ok(())
    }

    fn apply_simple(&mut self, var: &Var, v: &str, ev: &mut Event) -> Result<(), ParseError> {
        match var {
            Var::RemoteUser => ev.user_name = Some(Text::from(v)),
            Var::TimeIso8601 => {
                let (ts, off) = super::time::parse_iso(v, &mut self.clock)?;
                ev.timestamp = ts;
                ev.tz_offset_secs = off;
            }
            Var::Msec => {
                let secs: f64 = v.parse().map_err(|_| ParseError::BadTime(v.into()))?;
                ev.timestamp = super::time::parse_epoch_number(secs * 1000.0)
                    .ok_or_else(|| ParseError::BadTime(v.into()))?;
            }
            Var::RequestMethod => ev.method = Some(Text::from(v)),
            Var::RequestUri => ev.set_url(v),
            Var::BodyBytesSent => ev.bytes = Some(v.parse().map_err(|_| self.no_match())?),
            Var::BytesSent => ev.push_extra("http.response.bytes", v),
            Var::HttpReferer => ev.referrer = Some(Text::from(v)),
            Var::HttpUserAgent => ev.user_agent = Some(Text::from(v)),
            Var::Host => ev.push_extra("url.domain", v),
            Var::ServerName => ev.push_extra("nginx.server_name", v),
            Var::RequestTime => ev.push_extra("nginx.request_time", v),
            Var::UpstreamResponseTime => ev.push_extra("nginx.upstream_response_time", v),
            Var::Other(name) => ev.push_extra(compact_str::format_compact!("nginx.{name}"), v),
            _ => {}
        }
        Ok(())
    }

    fn set_clf_time(&mut self, ev: &mut Event, v: &str) -> Result<(), ParseError> {
        let (ts, off) = self.clf.parse(v)?;
        ev.timestamp = ts;
        ev.tz_offset_secs = off;
        Ok(())
    }

    fn finish(&mut self, ev: &mut Event, p: Pending<'_>) -> Result<(), ParseError> {
        if ev.url_original.is_none() {
            set_uri_args(ev, p.uri, p.args);
        }
        let remote = match (p.addr_port, p.remote) {
            (Some(ap), _) => {
                let (addr, port) = ip::parse_host_port(ap, true)?;
                ev.source_port = port;
                Some(addr)
            }
            (None, Some(r)) => Some(ip::parse_ip(r)?),
            (None, None) => None,
        };
        if let Some(port) = p.remote_port.filter(|v| *v != "-") {
            ev.source_port = Some(ip::parse_port(port).ok_or_else(|| self.no_match())?);
        }
        let Some(remote) = remote else {
            return Ok(());
        };
        self.resolve_client(ev, remote, p.xff);
        Ok(())
    }

    fn resolve_client(&mut self, ev: &mut Event, remote: IpAddr, xff: Option<&str>) {
        self.resolver.resolve(ev, remote, xff);
    }
}

/// Where the value starting at `pos` ends, and whether the line was cut before the
/// literal that should close it.
fn value_end(rest: &[Tok], b: &[u8], pos: usize) -> (usize, bool) {
    let Some(Tok::Lit(f)) = rest.first() else {
        return (b.len(), false);
    };
    if rest.len() == 1 {
        // The closing literal of the line: match it at the end, so a stray quote inside
        // the last value cannot end it early.
        return match b.ends_with(f.needle()) && b.len() - f.needle().len() >= pos {
            true => (b.len() - f.needle().len(), false),
            false => (b.len(), true),
        };
    }
    let needle = f.needle();
    let found = if needle.len() == 1 {
        memchr::memchr(needle[0], &b[pos..])
    } else {
        f.find(&b[pos..])
    };
    match found {
        Some(i) => (pos + i, false),
        None => (b.len(), true),
    }
}

fn parse_status(v: &str) -> Result<Option<u16>, ()> {
    if v == "-" {
        return Ok(None);
    }
    if v.len() != 3 || !v.bytes().all(|c| c.is_ascii_digit()) {
        return Err(());
    }
    v.parse().map(Some).map_err(|_| ())
}

fn set_uri_args(ev: &mut Event, uri: Option<&str>, args: Option<&str>) {
    match (uri, args) {
        (Some(u), Some(a)) => ev.set_url(&format!("{u}?{a}")),
        (Some(u), None) => ev.set_url(u),
        (None, Some(a)) => ev.push_extra("url.query", a),
        (None, None) => {}
    }
}

/// Splits `$request` (`GET /path?q HTTP/1.1`) into method, URL and version. Anything
/// that is not a request line (empty, `HELP`, escaped TLS bytes such as `\x16\x03…`) is
/// kept whole as `http.request.line` so rules can still see it.
pub fn apply_request(ev: &mut Event, v: &str) {
    if v.is_empty() || v == "-" {
        return;
    }
    let Some((method, rest)) = v.split_once(' ') else {
        ev.push_extra("http.request.line", v);
        return;
    };
    if !is_method(method) {
        ev.push_extra("http.request.line", v);
        return;
    }
    ev.method = Some(Text::from(method));
    match rest.rsplit_once(' ') {
        Some((url, proto)) if proto.starts_with("HTTP/") => {
            ev.set_url(url);
            ev.http_version = Some(Text::from(&proto[5..]));
        }
        _ => ev.set_url(rest),
    }
}

fn is_method(m: &str) -> bool {
    (1..=24).contains(&m.len()) && m.bytes().all(|c| c.is_ascii_uppercase() || c == b'-' || c == b'_')
}

impl Parser for NginxParser {
    fn parse(&mut self, line: &Line, out: &mut Vec<Event>) -> Result<(), ParseError> {
        let text = text_of(line);
        let ev = self.parse_text(line, text)?;
        self.clock.observe(ev.timestamp);
        out.push(ev);
        Ok(())
    }

    fn format_name(&self) -> &str {
        &self.format.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_pasted_whole_is_unwrapped() {
        let f = LogFormat::compile("log_format t '$remote_addr [$time_local] '\n '\"$request\" $status';")
            .unwrap();
        assert!(f.has(&Var::Request) && f.has(&Var::Status));
    }

    #[test]
    fn adjacent_variables_are_refused() {
        assert!(LogFormat::compile("$remote_addr$status").is_err());
        assert!(LogFormat::compile("$").is_err());
    }

    #[test]
    fn request_forms() {
        let mut ev = Event::default();
        apply_request(&mut ev, "CONNECT 123.123.123.123 HTTP/1.1");
        assert_eq!(ev.method.as_deref(), Some("CONNECT"));
        assert_eq!(ev.url_original.as_deref(), Some("123.123.123.123"));
        let mut ev = Event::default();
        apply_request(&mut ev, r"\x16\x03\x01\x00\xF1\x01");
        assert_eq!(ev.method, None);
        assert_eq!(ev.extra("http.request.line"), Some(r"\x16\x03\x01\x00\xF1\x01"));
    }
}
