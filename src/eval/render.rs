//! Renders HTTP requests into the nginx `combined` access-log line nginx would write, and
//! encodes payloads the ways real clients do.
//!
//! nginx writes `$request` (method, URI and protocol exactly as received), `$http_referer`
//! and `$http_user_agent` with its default log escaping: `"`, `\` and every byte outside
//! printable ASCII become `\xHH`, so a logged request always stays on one line. Empty or
//! absent values are written as `-`. Time and client address are fixed so the same input
//! always renders to the same line.

use std::fmt::Write;

/// Client address written on every rendered line (TEST-NET-1, never a real host).
pub const CLIENT_IP: &str = "192.0.2.10";
/// Fixed `$time_local` of every rendered line.
pub const TIME_LOCAL: &str = "04/Dec/2026:12:00:00 +0000";

/// One request as the access log sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query exactly as sent on the request line.
    pub uri: String,
    pub version: String,
    pub referer: Option<String>,
    pub user_agent: Option<String>,
}

impl LoggedRequest {
    /// A `GET` of `uri` with a browser-like user agent and no referer.
    pub fn get(uri: impl Into<String>) -> LoggedRequest {
        LoggedRequest {
            method: "GET".into(),
            uri: uri.into(),
            version: "HTTP/1.1".into(),
            referer: None,
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".into()),
        }
    }

    /// The nginx `combined` line for this request, status 200, no trailing newline.
    pub fn to_combined(&self) -> String {
        let mut request = String::with_capacity(self.uri.len() + 16);
        request.push_str(&self.method);
        request.push(' ');
        request.push_str(&self.uri);
        if !self.version.is_empty() {
            request.push(' ');
            request.push_str(&self.version);
        }
        format!(
            "{CLIENT_IP} - - [{TIME_LOCAL}] \"{}\" 200 512 \"{}\" \"{}\"",
            escape(&request),
            escape_or_dash(self.referer.as_deref()),
            escape_or_dash(self.user_agent.as_deref()),
        )
    }
}

fn escape_or_dash(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => escape(v),
        _ => "-".to_string(),
    }
}

/// nginx's default access-log escaping of a variable value.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            let _ = write!(out, "\\x{b:02X}");
        } else {
            out.push(b as char);
        }
    }
    out
}

/// How a client puts a value into a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// What curl or a hand-written tool sends: only bytes that cannot stand in a request
    /// line (space, `#`, controls, non-ASCII) are percent-encoded; `%` sequences the
    /// payload already carries are kept as they are.
    Minimal,
    /// Every byte except RFC 3986 unreserved characters percent-encoded.
    Full,
    /// HTML form (`application/x-www-form-urlencoded`): space as `+`, the rest like `Full`.
    Form,
}

impl Encoding {
    /// All encodings, in report order.
    pub const ALL: [Encoding; 3] = [Encoding::Minimal, Encoding::Full, Encoding::Form];

    /// Name used in report tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Minimal => "minimal",
            Encoding::Full => "percent",
            Encoding::Form => "form",
        }
    }

    /// Encodes `value` for use in a query string.
    pub fn encode(self, value: &str) -> String {
        let mut out = String::with_capacity(value.len() * 3);
        for &b in value.as_bytes() {
            let keep = match self {
                Encoding::Minimal => b > 0x20 && b < 0x7f && b != b'#',
                Encoding::Full | Encoding::Form => is_unreserved(b),
            };
            if keep {
                out.push(b as char);
            } else if self == Encoding::Form && b == b' ' {
                out.push('+');
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
        out
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_backslashes_and_non_ascii_are_hex_escaped_like_nginx() {
        let mut req = LoggedRequest::get("/a?q=\"x\"\\é");
        req.user_agent = Some("ua \"quoted\"".into());
        let line = req.to_combined();
        assert!(
            line.contains("GET /a?q=\\x22x\\x22\\x5C\\xC3\\xA9 HTTP/1.1"),
            "{line}"
        );
        assert!(line.ends_with("\"ua \\x22quoted\\x22\""), "{line}");
    }

    #[test]
    fn newlines_in_a_request_never_split_the_log_line() {
        let mut req = LoggedRequest::get("/x?a=1\r\nInjected: yes");
        req.referer = Some("r\nr".into());
        let line = req.to_combined();
        assert_eq!(line.lines().count(), 1);
        assert!(line.contains("\\x0D\\x0A"), "{line}");
    }

    #[test]
    fn spaces_stay_literal_inside_the_quoted_request_field() {
        let line = LoggedRequest::get("/a b").to_combined();
        assert!(line.contains("\"GET /a b HTTP/1.1\""), "{line}");
    }

    #[test]
    fn absent_referer_and_agent_are_written_as_dash() {
        let mut req = LoggedRequest::get("/");
        req.user_agent = None;
        let line = req.to_combined();
        assert!(line.ends_with("200 512 \"-\" \"-\""), "{line}");
    }

    #[test]
    fn minimal_encoding_keeps_the_payload_readable_but_the_line_valid() {
        let enc = Encoding::Minimal.encode("1 UNION SELECT #x%27 é");
        assert_eq!(enc, "1%20UNION%20SELECT%20%23x%27%20%C3%A9");
    }

    #[test]
    fn full_and_form_encoding_differ_only_in_spaces() {
        assert_eq!(Encoding::Full.encode("a b/'"), "a%20b%2F%27");
        assert_eq!(Encoding::Form.encode("a b/'"), "a+b%2F%27");
    }
}
