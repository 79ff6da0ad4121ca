//! Parsers: turn a [`Line`] into [`Event`]s. Parsers know nothing of detection.
//!
//! [`build`] makes the parser a [`SourceConfig`] asks for. Each format has its module:
//! [`nginx`] (any `log_format`, the hot path), [`nginx_error`], [`json`], [`backend`]
//! (the reference Node.js stdout), [`security_log`], [`journal`] and [`syslog`] (sshd),
//! [`apache_error`], [`logfmt`] (`key=value`), and [`auto`], which sniffs each line.
//! Shared pieces: [`ip`] (address spelling rules), [`client`] (trusted-proxy
//! resolution), [`time`] (timestamps and DST), [`monitor`] (the one "format mismatch"
//! warning per source and error counts by reason).
//!
//! Every parser strips a trailing `\r` before looking at a line, so CR never reaches a
//! field even if a reader left one.

pub mod apache_error;
pub mod auto;
pub mod backend;
pub mod client;
pub mod ip;
pub mod journal;
pub mod json;
pub mod logfmt;
pub mod monitor;
pub mod nginx;
pub mod nginx_error;
pub mod security_log;
pub mod syslog;
pub mod time;

pub use monitor::{FormatMismatch, FormatMonitor};

use crate::config::{NetworkConfig, ParserConfig, SourceConfig};
use crate::event::Event;
use crate::sources::Line;

/// A parser for one source's format. Stateful parsers (multi-line joining) hold an
/// entry back until the next line shows it is complete; `flush` releases it.
pub trait Parser: Send {
    /// Parses one line, pushing zero or more events.
    fn parse(&mut self, line: &Line, out: &mut Vec<Event>) -> Result<(), ParseError>;
    /// Emits anything held back (end of input or a quiet source).
    fn flush(&mut self, _out: &mut Vec<Event>) {}
    /// The format the parser expects, named for the "most lines fail" warning.
    fn format_name(&self) -> &str;
    /// The time the transport recorded for the next line (Docker stamps every entry),
    /// used by parsers whose lines may carry no time of their own instead of the
    /// previous line's time. Parsers that always read a time ignore it.
    fn set_time_hint(&mut self, _time: jiff::Timestamp) {}
    /// Hands back an event this parser made, once detection is done with it, so that
    /// its buffers can hold the next line's fields instead of new allocations.
    /// Parsers that keep nothing ignore it.
    fn recycle(&mut self, _ev: &mut Event) {}
}

/// Why a line did not parse. `reason()` is the metrics label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("line does not match the {format} format")]
    NoMatch { format: String },
    #[error("not a valid IP address: {0:?}")]
    BadIp(String),
    #[error("not a valid timestamp: {0:?}")]
    BadTime(String),
    #[error("invalid JSON: {0}")]
    BadJson(String),
}

impl ParseError {
    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::NoMatch { .. } => "no_match",
            ParseError::BadIp(_) => "bad_ip",
            ParseError::BadTime(_) => "bad_time",
            ParseError::BadJson(_) => "bad_json",
        }
    }

    /// A `NoMatch` for the named format.
    pub fn no_match(format: &str) -> ParseError {
        ParseError::NoMatch {
            format: format.into(),
        }
    }
}

/// Why a parser could not be made from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error(
        "source {source_name}: cannot use nginx log_format {format:?}: {reason}. Paste the \
         format string from nginx.conf, or use \"combined\" or \"main\""
    )]
    BadLogFormat {
        source_name: String,
        format: String,
        reason: String,
    },
    #[error(
        "source {source_name}: unknown time zone {zone:?}; use an IANA name such as \
         \"Europe/Berlin\""
    )]
    BadTimezone { source_name: String, zone: String },
}

/// Builds the parser a source's configuration asks for.
pub fn build(cfg: &SourceConfig, net: &NetworkConfig) -> Result<Box<dyn Parser>, BuildError> {
    let clock = clock_for(cfg)?;
    let parser: Box<dyn Parser> = match &cfg.parser {
        ParserConfig::Nginx { log_format } => {
            let format = nginx::LogFormat::compile(log_format).map_err(|reason| {
                BuildError::BadLogFormat {
                    source_name: cfg.display_name().into(),
                    format: log_format.clone(),
                    reason,
                }
            })?;
            Box::new(nginx::NginxParser::new(format, net, clock))
        }
        ParserConfig::NginxError => Box::new(nginx_error::NginxErrorParser::new(clock)),
        ParserConfig::Json { fields } => Box::new(json::JsonParser::new(fields.clone(), clock)),
        ParserConfig::Backend => Box::new(backend::BackendParser::new(net, clock)),
        ParserConfig::SecurityLog => Box::new(security_log::SecurityLogParser::new(clock)),
        ParserConfig::Journal => Box::new(journal::JournalParser::new()),
        ParserConfig::Syslog => Box::new(syslog::SyslogParser::new(clock)),
        ParserConfig::ApacheError => Box::new(apache_error::ApacheErrorParser::new(clock)),
        ParserConfig::Logfmt {
            client_field,
            client_port,
        } => Box::new(logfmt::LogfmtParser::new(client_field, *client_port, clock)),
        ParserConfig::Auto => Box::new(auto::AutoParser::new(net, clock)),
    };
    Ok(parser)
}

/// The clock for times written without an offset: the source's `timezone`, else UTC.
fn clock_for(cfg: &SourceConfig) -> Result<time::LocalClock, BuildError> {
    let Some(zone) = &cfg.timezone else {
        return Ok(time::LocalClock::default());
    };
    let tz = jiff::tz::TimeZone::get(zone).map_err(|_| BuildError::BadTimezone {
        source_name: cfg.display_name().into(),
        zone: zone.clone(),
    })?;
    Ok(time::LocalClock::new(tz))
}

/// The line's text without a trailing `\r` (a CR-only or CRLF file the reader did not
/// fully split must not leak CR into fields).
pub(crate) fn text_of(line: &Line) -> &str {
    line.text.trim_end_matches('\r')
}

/// A blank event for `line`, with `raw` set to its text.
pub(crate) fn event_for(line: &Line, text: &str) -> Event {
    Event::new(line.source.clone(), line.offset, text.to_owned())
}

/// Guesses a file's format from its first lines: every known format is tried on them
/// and the first one that reads the most of them wins, provided it reads at least half.
/// `scan` uses this once per file so that the fast, specific parser runs on the rest
/// (the per-line `auto` parser is the fallback when nothing fits).
pub fn sniff(lines: &[Line], net: &NetworkConfig) -> Option<ParserConfig> {
    let candidates = [
        ParserConfig::Nginx {
            log_format: "main".into(),
        },
        ParserConfig::Nginx {
            log_format: "combined".into(),
        },
        ParserConfig::NginxError,
        ParserConfig::Backend,
        ParserConfig::SecurityLog,
        ParserConfig::Journal,
        ParserConfig::Json {
            fields: Default::default(),
        },
        ParserConfig::ApacheError,
        ParserConfig::Syslog,
    ];
    let mut best: Option<(usize, ParserConfig)> = None;
    for candidate in candidates {
        let source = SourceConfig {
            parser: candidate.clone(),
            ..SourceConfig::default()
        };
        let Ok(mut parser) = build(&source, net) else {
            continue;
        };
        // A line counts only when it parsed whole: the `main` format accepts a
        // `combined` line by marking it cut short, which must not win the vote.
        let mut events = Vec::new();
        let ok = lines
            .iter()
            .filter(|l| {
                events.clear();
                parser.parse(l, &mut events).is_ok()
                    && !events.iter().any(|e| e.extra("log.truncated").is_some())
            })
            .count();
        if ok * 2 >= lines.len() && ok > 0 && best.as_ref().is_none_or(|(n, _)| ok > *n) {
            best = Some((ok, candidate));
        }
    }
    best.map(|(_, c)| c)
}
