//! Field names in rules → accessors on [`Event`].
//!
//! Rules may use ECS names (`url.path`), any extra field by its dotted name, or Sigma's
//! `webserver` taxonomy (`cs-uri-query`, `sc-status`, …). The taxonomy is mapped in
//! [`WEBSERVER_TAXONOMY`], the one table for it; `palisade.attack` reaches the
//! classifiers' attack classes. Names are resolved once, at compile time.

use std::fmt;
use std::net::IpAddr;

use crate::event::{Event, Field, Value};

/// Sigma `webserver`/`proxy` taxonomy names and the ECS name each maps to.
pub const WEBSERVER_TAXONOMY: [(&str, &str); 14] = [
    ("c-ip", "source.ip"),
    ("cs-method", "http.request.method"),
    ("cs-uri-stem", "url.path"),
    ("c-uri-stem", "url.path"),
    ("cs-uri-query", "url.query"),
    ("c-uri-query", "url.query"),
    ("cs-uri", "url.original"),
    ("c-uri", "url.original"),
    ("sc-status", "http.response.status_code"),
    ("cs-user-agent", "user_agent.original"),
    ("c-useragent", "user_agent.original"),
    ("cs-referer", "http.request.referrer"),
    ("cs-username", "user.name"),
    ("cs-host", "url.domain"),
];

/// Where a rule's field lives in an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldRef {
    /// A field with a typed home in [`Event`] (`palisade.attack` included).
    Typed(Field),
    /// Any other field, looked up in [`Event::extra`] by its dotted name.
    Extra(Box<str>),
}

impl FieldRef {
    /// Resolves a rule's field name (taxonomy names first, then ECS, then extra).
    pub fn resolve(name: &str) -> FieldRef {
        let ecs = WEBSERVER_TAXONOMY
            .iter()
            .find(|(sigma, _)| *sigma == name)
            .map_or(name, |(_, ecs)| *ecs);
        match Field::from_name(ecs) {
            Some(f) => FieldRef::Typed(f),
            None => FieldRef::Extra(ecs.into()),
        }
    }

    /// The ECS name, for explanations and detection keys.
    pub fn name(&self) -> &str {
        match self {
            FieldRef::Typed(f) => f.name(),
            FieldRef::Extra(n) => n,
        }
    }

    /// The field's value in `ev` (`None` when absent; `palisade.attack` has no value
    /// form and is tested through [`Event::attacks`] directly).
    #[inline]
    pub fn get<'e>(&self, ev: &'e Event) -> Option<Value<'e>> {
        match self {
            FieldRef::Typed(f) => ev.field(*f),
            FieldRef::Extra(n) => ev.extra(n).map(Value::Str),
        }
    }

    /// Whether this is `palisade.attack`.
    #[inline]
    pub fn is_attack(&self) -> bool {
        matches!(self, FieldRef::Typed(Field::Attacks))
    }
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A small stack buffer to format numbers and addresses into, so matching text
/// against an `Int` or `Ip` value needs no heap allocation.
pub struct TextBuf {
    buf: [u8; 48],
    len: usize,
}

impl TextBuf {
    /// Formats `v` (an address is at most 45 bytes, an `i64` at most 20).
    pub fn format(v: &Value<'_>) -> TextBuf {
        use std::io::Write;
        let mut b = TextBuf {
            buf: [0; 48],
            len: 0,
        };
        let mut cur = std::io::Cursor::new(&mut b.buf[..]);
        let _ = match v {
            Value::Int(n) => write!(cur, "{n}"),
            Value::Ip(ip) => write!(cur, "{ip}"),
            Value::Str(_) => Ok(()),
        };
        b.len = cur.position() as usize;
        b
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits, signs, dots, colons and hex letters are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// Calls `f` with the value as text (formatting numbers and addresses on the stack).
#[inline]
pub fn with_text<R>(v: &Value<'_>, f: impl FnOnce(&str) -> R) -> R {
    match v {
        Value::Str(s) => f(s),
        other => f(TextBuf::format(other).as_str()),
    }
}

/// The value as an address, when it is one or is text that parses as one.
pub fn as_ip(v: &Value<'_>) -> Option<IpAddr> {
    match v {
        Value::Ip(ip) => Some(*ip),
        Value::Str(s) => s.parse().ok(),
        Value::Int(_) => None,
    }
}

/// The value as a number, when it is one or is text that parses as one.
pub fn as_number(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::Int(n) => Some(*n as f64),
        Value::Str(s) => s.trim().parse().ok(),
        Value::Ip(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taxonomy_names_map_to_ecs() {
        assert_eq!(FieldRef::resolve("c-ip"), FieldRef::Typed(Field::SourceIp));
        assert_eq!(
            FieldRef::resolve("sc-status"),
            FieldRef::Typed(Field::Status)
        );
        assert_eq!(
            FieldRef::resolve("cs-host"),
            FieldRef::Extra("url.domain".into())
        );
        assert_eq!(
            FieldRef::resolve("nginx.zone"),
            FieldRef::Extra("nginx.zone".into())
        );
        assert!(FieldRef::resolve("palisade.attack").is_attack());
    }

    #[test]
    fn numbers_and_addresses_format_without_heap() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(TextBuf::format(&Value::Ip(ip)).as_str(), "2001:db8::1");
        assert_eq!(TextBuf::format(&Value::Int(-401)).as_str(), "-401");
    }
}
