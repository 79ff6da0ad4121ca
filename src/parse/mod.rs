//! Parsers: turn a [`Line`] into [`Event`]s. Parsers know nothing of detection.
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
}
