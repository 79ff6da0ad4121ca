//! The normalized log record every stage after the parsers works on.
//!
//! An [`Event`] is produced by a parser from one log line (or one joined multi-line
//! entry) and carries Elastic Common Schema field names, so detections, stored
//! samples and exported events read the same everywhere. Fields that every web log
//! has (client address, method, URL, status, user agent, …) are typed struct fields
//! for speed; anything else a parser finds goes into [`Event::extra`] under its
//! dotted ECS (or source-specific) name.
//!
//! Sigma rules address fields by name; [`Field`] is the closed set of names with a
//! typed home, and [`Event::get`] looks any name up, typed or extra.

use std::borrow::Cow;
use std::fmt;
use std::io::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use compact_str::CompactString;
use jiff::Timestamp;
use serde::Serialize;

/// Short owned text: strings of up to 24 bytes live inline without a heap allocation,
/// which covers methods, statuses, addresses, most paths and user names.
pub type Text = CompactString;

/// A `String` holding `v`, written into `buf`'s allocation when there is one (a
/// parser recycling the buffers of the event before).
pub fn text_in(buf: Option<String>, v: &str) -> String {
    match buf {
        Some(mut t) => {
            t.clear();
            t.push_str(v);
            t
        }
        None => v.to_owned(),
    }
}

/// What kind of record an event is; maps to ECS `event.category`/`event.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An HTTP access-log record (nginx access log, backend request log).
    Access,
    /// A web server error-log line (nginx error.log).
    ServerError,
    /// nginx `limit_req` / `limit_conn` rejection or delay.
    RateLimit,
    /// An application log line (backend stdout, JSON app logs).
    #[default]
    App,
    /// An application security event (backend `Security event:`, security.log).
    Security,
    /// A system authentication record (sshd via journald or syslog).
    Auth,
    /// A posture finding turned into an event (container, TLS, file checks).
    Posture,
}

impl EventKind {
    /// The name used in `event.kind`-style matching and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Access => "access",
            EventKind::ServerError => "server_error",
            EventKind::RateLimit => "rate_limit",
            EventKind::App => "app",
            EventKind::Security => "security",
            EventKind::Auth => "auth",
            EventKind::Posture => "posture",
        }
    }
}

/// Attack classes found in a request by the classifiers (`detect::classify`).
///
/// A bit set so that an event carries every class it showed at the cost of one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct AttackClasses(pub u16);

impl AttackClasses {
    pub const SQLI: AttackClasses = AttackClasses(1);
    pub const XSS: AttackClasses = AttackClasses(1 << 1);
    pub const TRAVERSAL: AttackClasses = AttackClasses(1 << 2);
    pub const CMDI: AttackClasses = AttackClasses(1 << 3);
    pub const SCANNER_UA: AttackClasses = AttackClasses(1 << 4);
    pub const SENSITIVE_FILE: AttackClasses = AttackClasses(1 << 5);
    pub const JNDI: AttackClasses = AttackClasses(1 << 6);
    pub const SSTI: AttackClasses = AttackClasses(1 << 7);

    /// Every class with its name, in a stable order.
    pub const ALL: [(AttackClasses, &'static str); 8] = [
        (Self::SQLI, "sqli"),
        (Self::XSS, "xss"),
        (Self::TRAVERSAL, "traversal"),
        (Self::CMDI, "cmdi"),
        (Self::SCANNER_UA, "scanner_ua"),
        (Self::SENSITIVE_FILE, "sensitive_file"),
        (Self::JNDI, "jndi"),
        (Self::SSTI, "ssti"),
    ];

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, other: AttackClasses) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub fn insert(&mut self, other: AttackClasses) {
        self.0 |= other.0;
    }

    /// Looks a class up by its name (`"sqli"`, `"xss"`, …).
    pub fn from_name(name: &str) -> Option<AttackClasses> {
        Self::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(c, _)| *c)
    }

    /// Names of the classes set, in a stable order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::ALL
            .into_iter()
            .filter(move |(c, _)| self.contains(*c))
            .map(|(_, n)| n)
    }
}

/// Why a classifier flagged a request: which part matched, after which decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The class (`sqli`, `xss`, …).
    pub class: &'static str,
    /// The request part: `url.path`, `url.query`, `user_agent.original`, …
    pub part: &'static str,
    /// The decodings applied before the match, e.g. `percent x2, plus, comment`.
    pub decoding: String,
    /// A short excerpt of the decoded text around the match.
    pub excerpt: String,
    /// What the classifier recognized, e.g. `union select`, `<script`, `../ x3`.
    pub reason: String,
}

/// One normalized log record.
#[derive(Debug, Clone, Default)]
pub struct Event {
    /// `@timestamp`: the instant the log line states, in UTC.
    pub timestamp: Timestamp,
    /// The UTC offset written in the line (seconds east), kept so the original local
    /// time can be shown; `None` when the line had no offset.
    pub tz_offset_secs: Option<i32>,
    /// Name of the configured source the line came from (`log.file.path` is in `extra`).
    pub source: Arc<str>,
    /// Byte offset of the start of the line in its file (for evidence and checkpoints).
    pub offset: u64,
    /// The raw line (or joined entry) as read, lossily decoded as UTF-8.
    pub raw: String,
    pub kind: EventKind,

    /// `source.ip`: the client, after trusted-proxy resolution.
    pub source_ip: Option<IpAddr>,
    /// `source.port`, when the log writes it.
    pub source_port: Option<u16>,
    /// The peer address the server saw (`$remote_addr`) when it differs from the
    /// resolved client; ECS has no name for it, we export `network.forwarded_ip`.
    pub peer_ip: Option<IpAddr>,
    /// `http.request.method`
    pub method: Option<Text>,
    /// `url.original`: path plus query, as written in the request line.
    pub url_original: Option<String>,
    /// Byte index of `?` in `url_original`, when there is a query.
    pub query_at: Option<u32>,
    /// `http.version`
    pub http_version: Option<Text>,
    /// `http.response.status_code`
    pub status: Option<u16>,
    /// `http.response.body.bytes`
    pub bytes: Option<u64>,
    /// `http.request.referrer`
    pub referrer: Option<String>,
    /// `user_agent.original`
    pub user_agent: Option<String>,
    /// `user.name`
    pub user_name: Option<Text>,
    /// The raw `X-Forwarded-For` header, kept as evidence even when not believed.
    pub forwarded_for: Option<Text>,
    /// `event.action`: what happened, e.g. `login_failed`, `auth_failure`,
    /// `limiting_requests`.
    pub action: Option<Text>,
    /// `event.outcome`: `success`, `failure` or `unknown`.
    pub outcome: Option<Text>,
    /// `log.level`
    pub log_level: Option<Text>,
    /// `message`: the human text of an application or error-log line.
    pub message: Option<String>,
    /// Every other field by its dotted name, in the order the parser found them.
    pub extra: Vec<(Text, Text)>,

    /// Attack classes the classifiers found in the request.
    pub attacks: AttackClasses,
    /// Why the classifiers flagged it (empty when `attacks` is empty).
    pub findings: Vec<Finding>,
}

/// The fields with a typed home in [`Event`], by ECS name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Timestamp,
    Source,
    Kind,
    SourceIp,
    SourcePort,
    PeerIp,
    Method,
    UrlOriginal,
    UrlPath,
    UrlQuery,
    HttpVersion,
    Status,
    Bytes,
    Referrer,
    UserAgent,
    UserName,
    ForwardedFor,
    Action,
    Outcome,
    LogLevel,
    Message,
    Raw,
    Attacks,
}

impl Field {
    /// Every typed field with its ECS name. `event.original` is the raw line.
    pub const NAMES: [(Field, &'static str); 23] = [
        (Field::Timestamp, "@timestamp"),
        (Field::Source, "log.source"),
        (Field::Kind, "event.kind"),
        (Field::SourceIp, "source.ip"),
        (Field::SourcePort, "source.port"),
        (Field::PeerIp, "network.forwarded_ip"),
        (Field::Method, "http.request.method"),
        (Field::UrlOriginal, "url.original"),
        (Field::UrlPath, "url.path"),
        (Field::UrlQuery, "url.query"),
        (Field::HttpVersion, "http.version"),
        (Field::Status, "http.response.status_code"),
        (Field::Bytes, "http.response.body.bytes"),
        (Field::Referrer, "http.request.referrer"),
        (Field::UserAgent, "user_agent.original"),
        (Field::UserName, "user.name"),
        (Field::ForwardedFor, "http.request.x_forwarded_for"),
        (Field::Action, "event.action"),
        (Field::Outcome, "event.outcome"),
        (Field::LogLevel, "log.level"),
        (Field::Message, "message"),
        (Field::Raw, "event.original"),
        (Field::Attacks, "palisade.attack"),
    ];

    /// The field with this ECS name, if it has a typed home.
    pub fn from_name(name: &str) -> Option<Field> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(f, _)| *f)
    }

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(f, _)| *f == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A field's value borrowed from an event, typed where the event keeps it typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Str(&'a str),
    Ip(IpAddr),
    Int(i64),
}

impl Value<'_> {
    /// The value as text; numbers and addresses are formatted (RFC 5952 for IPv6).
    pub fn to_text(&self) -> Text {
        match self {
            Value::Str(s) => Text::from(*s),
            Value::Ip(ip) => compact_str::format_compact!("{ip}"),
            Value::Int(n) => compact_str::format_compact!("{n}"),
        }
    }
}

impl Event {
    /// A blank event from the given source, line and offset; parsers fill the rest.
    pub fn new(source: Arc<str>, offset: u64, raw: String) -> Event {
        // Every field spelled out: `..Event::default()` built (and dropped) a default
        // source name for every line.
        Event {
            timestamp: Timestamp::default(),
            tz_offset_secs: None,
            source,
            offset,
            raw,
            kind: EventKind::default(),
            source_ip: None,
            source_port: None,
            peer_ip: None,
            method: None,
            url_original: None,
            query_at: None,
            http_version: None,
            status: None,
            bytes: None,
            referrer: None,
            user_agent: None,
            user_name: None,
            forwarded_for: None,
            action: None,
            outcome: None,
            log_level: None,
            message: None,
            extra: Vec::new(),
            attacks: AttackClasses::default(),
            findings: Vec::new(),
        }
    }

    /// `url.path`: the URL up to the `?`.
    pub fn url_path(&self) -> Option<&str> {
        let url = self.url_original.as_deref()?;
        Some(match self.query_at {
            Some(q) => &url[..q as usize],
            None => url,
        })
    }

    /// `url.query`: the URL after the `?` (without it), when there is one.
    pub fn url_query(&self) -> Option<&str> {
        let url = self.url_original.as_deref()?;
        self.query_at.map(|q| &url[q as usize + 1..])
    }

    /// Sets `url.original` and finds the query separator.
    pub fn set_url(&mut self, url: &str) {
        self.set_url_in(url, None);
    }

    /// [`Event::set_url`] writing into `buf`'s allocation when there is one.
    pub fn set_url_in(&mut self, url: &str, buf: Option<String>) {
        self.query_at = memchr::memchr(b'?', url.as_bytes()).map(|i| i as u32);
        self.url_original = Some(text_in(buf, url));
    }

    /// A typed field's value.
    pub fn field(&self, field: Field) -> Option<Value<'_>> {
        fn s(t: &Option<impl std::ops::Deref<Target = str>>) -> Option<Value<'_>> {
            t.as_deref().map(Value::Str)
        }
        match field {
            Field::Timestamp => Some(Value::Int(self.timestamp.as_second())),
            Field::Source => Some(Value::Str(&self.source)),
            Field::Kind => Some(Value::Str(self.kind.as_str())),
            Field::SourceIp => self.source_ip.map(Value::Ip),
            Field::SourcePort => self.source_port.map(|p| Value::Int(p.into())),
            Field::PeerIp => self.peer_ip.map(Value::Ip),
            Field::Method => s(&self.method),
            Field::UrlOriginal => s(&self.url_original),
            Field::UrlPath => self.url_path().map(Value::Str),
            Field::UrlQuery => self.url_query().map(Value::Str),
            Field::HttpVersion => s(&self.http_version),
            Field::Status => self.status.map(|c| Value::Int(c.into())),
            Field::Bytes => self.bytes.map(|b| Value::Int(b as i64)),
            Field::Referrer => s(&self.referrer),
            Field::UserAgent => s(&self.user_agent),
            Field::UserName => s(&self.user_name),
            Field::ForwardedFor => s(&self.forwarded_for),
            Field::Action => s(&self.action),
            Field::Outcome => s(&self.outcome),
            Field::LogLevel => s(&self.log_level),
            Field::Message => self.message.as_deref().map(Value::Str),
            Field::Raw => Some(Value::Str(&self.raw)),
            Field::Attacks => None,
        }
    }

    /// An extra (untyped) field by its dotted name.
    pub fn extra(&self, name: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Adds an extra field.
    pub fn push_extra(&mut self, name: impl Into<Text>, value: impl Into<Text>) {
        self.extra.push((name.into(), value.into()));
    }

    /// Any field by name: a typed field, else an extra one.
    pub fn get(&self, name: &str) -> Option<Value<'_>> {
        match Field::from_name(name) {
            Some(f) => self.field(f),
            None => self.extra(name).map(Value::Str),
        }
    }

    /// The event as an ECS-shaped JSON object (for `--json`, samples and export).
    pub fn to_json(&self) -> serde_json::Value {
        let map = self
            .json_leaves()
            .into_iter()
            .map(|(name, leaf)| (name.to_string(), leaf.to_value()))
            .collect();
        serde_json::Value::Object(map)
    }
}

/// A leaf of the object [`Event::write_json`] writes.
enum Leaf<'a> {
    /// Text from the log, passed through the redactor.
    Str(&'a str),
    /// A formatted timestamp or address, or a fixed name: nothing a redactor would
    /// touch.
    Plain(String),
    Fixed(&'static str),
    Int(i64),
    U64(u64),
    Attacks(AttackClasses),
    Findings(&'a [Finding]),
}

impl Leaf<'_> {
    fn to_value(&self) -> serde_json::Value {
        match self {
            Leaf::Str(s) => (*s).into(),
            Leaf::Plain(s) => s.as_str().into(),
            Leaf::Fixed(s) => (*s).into(),
            Leaf::Int(n) => (*n).into(),
            Leaf::U64(n) => (*n).into(),
            Leaf::Attacks(a) => a.names().collect::<Vec<_>>().into(),
            Leaf::Findings(f) => serde_json::to_value(f).unwrap_or_default(),
        }
    }
}

/// Appends `s` as a JSON string, escaped exactly as `serde_json` escapes it.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends a JSON integer.
pub fn write_json_int(out: &mut Vec<u8>, n: impl fmt::Display) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{n}");
}

impl Event {
    /// Writes the same bytes as `self.to_json().to_string()`, without building the
    /// `serde_json::Value`: keys in the same (sorted) order, a later duplicate key
    /// replacing an earlier one. Every string value that holds text from the log goes
    /// through `text` first (the printer passes the redactor, and gets what
    /// redacting every string of the built value gives); timestamps, addresses, the
    /// event kind and attack class names are fixed spellings that no redaction rule
    /// matches, and are written as they are.
    pub fn write_json(&self, out: &mut Vec<u8>, text: &dyn Fn(&str) -> Cow<'_, str>) {
        let mut leaves = self.json_leaves();
        write_json_map(out, &mut leaves, |out, leaf| match leaf {
            Leaf::Str(s) => write_json_str(out, &text(s)),
            Leaf::Plain(s) => write_json_str(out, s),
            Leaf::Fixed(s) => write_json_str(out, s),
            Leaf::Int(n) => write_json_int(out, *n),
            Leaf::U64(n) => write_json_int(out, *n),
            Leaf::Attacks(a) => {
                out.push(b'[');
                for (j, name) in a.names().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    write_json_str(out, name);
                }
                out.push(b']');
            }
            Leaf::Findings(f) => write_findings(out, f, text),
        });
    }

    /// The fields [`Event::to_json`] and [`Event::write_json`] export, by JSON name, in
    /// insertion order (a later duplicate name wins).
    fn json_leaves(&self) -> Vec<(&str, Leaf<'_>)> {
        let mut leaves: Vec<(&str, Leaf<'_>)> = Vec::with_capacity(24 + self.extra.len());
        leaves.push(("@timestamp", Leaf::Plain(self.timestamp.to_string())));
        for (field, name, v) in self.exported_fields() {
            leaves.push((
                name,
                match v {
                    Value::Str(_) if field == Field::Kind => Leaf::Fixed(self.kind.as_str()),
                    Value::Str(s) => Leaf::Str(s),
                    Value::Ip(ip) => Leaf::Plain(ip.to_string()),
                    Value::Int(n) => Leaf::Int(n),
                },
            ));
        }
        if let Some(p) = self.url_path() {
            leaves.push(("url.path", Leaf::Str(p)));
        }
        if let Some(q) = self.url_query() {
            leaves.push(("url.query", Leaf::Str(q)));
        }
        if let Some(off) = self.tz_offset_secs {
            leaves.push(("event.timezone_offset_seconds", Leaf::Int(off.into())));
        }
        leaves.push(("log.offset", Leaf::U64(self.offset)));
        for (k, v) in &self.extra {
            leaves.push((k.as_str(), Leaf::Str(v.as_str())));
        }
        if !self.attacks.is_empty() {
            leaves.push(("palisade.attack", Leaf::Attacks(self.attacks)));
            leaves.push(("palisade.findings", Leaf::Findings(&self.findings)));
        }
        leaves
    }

    /// The typed fields the JSON form exports under their own name, with their values
    /// (the time and the URL parts are written separately).
    fn exported_fields(&self) -> impl Iterator<Item = (Field, &'static str, Value<'_>)> {
        Field::NAMES
            .into_iter()
            .filter(|(field, _)| {
                !matches!(
                    field,
                    Field::Timestamp | Field::Attacks | Field::UrlPath | Field::UrlQuery
                )
            })
            .filter_map(|(field, name)| self.field(field).map(|v| (field, name, v)))
    }
}

/// Writes `entries` as a JSON object the way a `serde_json::Map` is written: keys in
/// sorted order, and of a key given twice only the later value.
pub fn write_json_map<V>(
    out: &mut Vec<u8>,
    entries: &mut [(&str, V)],
    mut value: impl FnMut(&mut Vec<u8>, &V),
) {
    // Stable: of equal keys, the one given last stays last.
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    let mut first = true;
    for (i, (name, v)) in entries.iter().enumerate() {
        if entries.get(i + 1).is_some_and(|next| next.0 == *name) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_json_str(out, name);
        out.push(b':');
        value(out, v);
    }
    out.push(b'}');
}

/// Findings as the sorted-key objects `serde_json::to_value` makes of them.
fn write_findings(out: &mut Vec<u8>, findings: &[Finding], text: &dyn Fn(&str) -> Cow<'_, str>) {
    out.push(b'[');
    for (i, f) in findings.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let fields: [(&str, &str); 5] = [
            ("class", f.class),
            ("decoding", &f.decoding),
            ("excerpt", &f.excerpt),
            ("part", f.part),
            ("reason", &f.reason),
        ];
        out.push(b'{');
        for (j, (k, v)) in fields.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            write_json_str(out, k);
            out.push(b':');
            write_json_str(out, &text(v));
        }
        out.push(b'}');
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_split_at_first_question_mark() {
        let mut e = Event::default();
        e.set_url("/search?q=a?b");
        assert_eq!(e.url_path(), Some("/search"));
        assert_eq!(e.url_query(), Some("q=a?b"));
        e.set_url("/plain");
        assert_eq!(e.url_query(), None);
    }

    #[test]
    fn get_reaches_typed_and_extra_fields() {
        let mut e = Event {
            status: Some(401),
            ..Event::default()
        };
        e.push_extra("nginx.zone", "api");
        assert_eq!(e.get("http.response.status_code"), Some(Value::Int(401)));
        assert_eq!(e.get("nginx.zone"), Some(Value::Str("api")));
        assert_eq!(e.get("nope"), None);
    }

    #[test]
    fn attack_classes_by_name() {
        let mut c = AttackClasses::default();
        c.insert(AttackClasses::from_name("XSS").unwrap());
        c.insert(AttackClasses::SQLI);
        assert_eq!(c.names().collect::<Vec<_>>(), vec!["sqli", "xss"]);
    }
}
