//! Classic syslog lines and the sshd messages inside them.
//!
//! [`SyslogParser`] reads `Mon dd hh:mm:ss host prog[pid]: message` (the year is not
//! written: it is taken from the previous line, or the current year for the first).
//! [`apply_sshd`] recognises sshd/sshd-session authentication messages and is shared
//! with the journald parser. sshd appends the client at the end (`from A port N`), so
//! the address is read from the right: a user name such as `x from 192.0.2.1` cannot
//! choose it.

use super::time::{LocalClock, parse_syslog_time};
use super::{ParseError, Parser, event_for, ip, text_of};
use crate::event::{Event, EventKind, Text};
use crate::sources::Line;

const FORMAT: &str = "syslog";

/// Message prefixes sshd writes, the text before the user, and the action.
const SSHD: [(&str, &str); 11] = [
    ("Invalid user ", "login_failed"),
    ("Failed password for ", "login_failed"),
    ("Failed publickey for ", "login_failed"),
    ("Failed keyboard-interactive/pam for ", "login_failed"),
    ("Failed none for ", "login_failed"),
    ("PAM: Authentication failure for ", "login_failed"),
    (
        "maximum authentication attempts exceeded for ",
        "login_failed",
    ),
    ("ROOT LOGIN REFUSED FROM", "login_failed"),
    ("Accepted password for ", "login_success"),
    ("Accepted publickey for ", "login_success"),
    ("Accepted keyboard-interactive/pam for ", "login_success"),
];

/// Recognises an sshd authentication message; returns whether it did. Sets kind
/// `Auth`, `event.action` (`login_failed` / `login_success`), outcome, `user.name`,
/// `source.ip` / `source.port` (or `source.domain` when sshd wrote a host name).
pub fn apply_sshd(ev: &mut Event, message: &str) -> bool {
    let msg = message
        .trim()
        .strip_prefix("error: ")
        .unwrap_or(message.trim());
    let Some((prefix, action)) = SSHD.iter().find(|(p, _)| msg.starts_with(p)) else {
        return apply_pam(ev, msg);
    };
    let rest = &msg[prefix.len()..];
    ev.kind = EventKind::Auth;
    ev.action = Some(Text::from(*action));
    ev.outcome = Some(Text::from(if *action == "login_success" {
        "success"
    } else {
        "failure"
    }));
    let (user, host, port) = from_tail(rest);
    if let Some(user) = user.filter(|u| !u.is_empty()) {
        let user = user.strip_prefix("invalid user ").unwrap_or(user);
        ev.user_name = Some(Text::from(user));
    }
    set_host(ev, host, port);
    true
}

/// `pam_unix(sshd:auth): authentication failure; … rhost=A  user=U`.
fn apply_pam(ev: &mut Event, msg: &str) -> bool {
    if !msg.contains("authentication failure;") {
        return false;
    }
    ev.kind = EventKind::Auth;
    ev.action = Some(Text::from("login_failed"));
    ev.outcome = Some(Text::from("failure"));
    for kv in msg.split_ascii_whitespace() {
        if let Some(host) = kv.strip_prefix("rhost=") {
            set_host(ev, Some(host), None);
        } else if let Some(user) = kv.strip_prefix("user=") {
            ev.user_name = Some(Text::from(user));
        }
    }
    true
}

/// Splits `U from A port N ssh2 [preauth]` into user, address and port, from the right.
fn from_tail(rest: &str) -> (Option<&str>, Option<&str>, Option<u16>) {
    let mut s = rest.trim();
    for suffix in [" [preauth]", " ssh2"] {
        s = s.strip_suffix(suffix).unwrap_or(s);
    }
    let mut port = None;
    if let Some((head, p)) = s.rsplit_once(" port ")
        && let Some(p) = ip::parse_port(p)
    {
        port = Some(p);
        s = head;
    }
    match s.rfind(" from ") {
        Some(i) => (Some(&s[..i]), Some(&s[i + 6..]), port),
        None if !s.contains(' ') => (None, Some(s.trim()), port),
        None => (Some(s), None, port),
    }
}

fn set_host(ev: &mut Event, host: Option<&str>, port: Option<u16>) {
    let Some(host) = host.map(str::trim).filter(|h| !h.is_empty()) else {
        return;
    };
    match ip::parse_ip(host) {
        Ok(addr) => {
            ev.source_ip = Some(addr);
            ev.source_port = port;
        }
        Err(_) => ev.push_extra("source.domain", host),
    }
}

/// Parses `Mon dd hh:mm:ss host prog[pid]: message` lines.
pub struct SyslogParser {
    clock: LocalClock,
    last: Option<jiff::Timestamp>,
}

impl SyslogParser {
    /// A parser reading times in `clock`'s zone.
    pub fn new(clock: LocalClock) -> SyslogParser {
        SyslogParser { clock, last: None }
    }

    /// Parses one line's text.
    pub fn parse_text(&mut self, line: &Line, text: &str) -> Result<Event, ParseError> {
        let no_match = || ParseError::no_match(FORMAT);
        // `Feb 7 16:01:07` (one space before a 1-digit day) is written by some
        // daemons; the standard form pads the day with a space to 15 bytes.
        let short = text.as_bytes().get(5) == Some(&b' ');
        let len = if short { 14 } else { 15 };
        let stamp = text.get(..len).ok_or_else(no_match)?;
        // A syslog stamp is ASCII; anything else is not this format (and must not be
        // sliced at byte offsets).
        if !stamp.is_ascii() {
            return Err(no_match());
        }
        let padded;
        let stamp = if short {
            padded = format!("{} {}", &stamp[..3], &stamp[3..]);
            padded.as_str()
        } else {
            stamp
        };
        let reference = self.last.unwrap_or_else(jiff::Timestamp::now);
        let (ts, _) = parse_syslog_time(stamp, reference, &mut self.clock)?;
        let rest = text[len..].strip_prefix(' ').ok_or_else(no_match)?;
        let (host, rest) = rest.split_once(' ').ok_or_else(no_match)?;
        let (tag, message) = rest.split_once(": ").ok_or_else(no_match)?;
        let mut ev = event_for(line, text);
        ev.timestamp = ts;
        self.last = Some(ts);
        ev.kind = EventKind::App;
        ev.push_extra("host.hostname", host);
        let program = tag.split('[').next().unwrap_or(tag);
        ev.push_extra("process.name", program);
        apply_sshd(&mut ev, message);
        ev.message = Some(message.to_owned());
        Ok(ev)
    }
}

impl Parser for SyslogParser {
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

    fn sshd(msg: &str) -> Event {
        let mut ev = Event::default();
        assert!(apply_sshd(&mut ev, msg), "{msg}");
        ev
    }

    #[test]
    fn syslog_lines_with_padded_and_unpadded_days() {
        let mut p = SyslogParser::new(LocalClock::default());
        p.last = Some("2024-03-10T00:00:00Z".parse().unwrap());
        for (text, time) in [
            (
                "Mar  5 10:00:01 web sshd[7]: Invalid user x from 192.0.2.5 port 22",
                "2024-03-05T10:00:01Z",
            ),
            (
                "Feb 7 16:01:07 web sshd-session[8]: Failed password for root from 192.0.2.5 port 2 ssh2",
                "2024-02-07T16:01:07Z",
            ),
        ] {
            let line = Line {
                source: "s".into(),
                path: "s".into(),
                offset: 0,
                text: text.into(),
                truncated: false,
                invalid_utf8: false,
            };
            let ev = p.parse_text(&line, text).unwrap();
            assert_eq!(ev.timestamp.to_string(), time);
            assert_eq!(ev.source_ip.unwrap().to_string(), "192.0.2.5");
            assert_eq!(ev.action.as_deref(), Some("login_failed"));
        }
    }

    #[test]
    fn sshd_failures_name_user_and_address() {
        let ev = sshd(
            "Failed password for invalid user ROOT from aaaa:bbbb:cccc:1234::1:1 port 50273 ssh2",
        );
        assert_eq!(
            ev.source_ip.unwrap().to_string(),
            "aaaa:bbbb:cccc:1234::1:1"
        );
        assert_eq!(
            (ev.user_name.as_deref(), ev.source_port),
            (Some("ROOT"), Some(50273))
        );
        let ev = sshd("Invalid user a from 6.6.6.6 from 192.0.2.4 port 22");
        assert_eq!(ev.source_ip.unwrap().to_string(), "192.0.2.4");
        let ev = sshd("error: PAM: Authentication failure for stefanor from example.com");
        assert_eq!(ev.extra("source.domain"), Some("example.com"));
        let ev = sshd("ROOT LOGIN REFUSED FROM 1.2.3.4");
        assert_eq!(ev.source_ip.unwrap().to_string(), "1.2.3.4");
    }
}
