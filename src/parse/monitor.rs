//! Per-source parse health: error counts by reason and the one "format mismatch"
//! warning.
//!
//! A source configured with the wrong format fails on most lines. Reporting each line
//! would flood the operator and say nothing useful (field case 41), so the monitor
//! looks at the first [`WINDOW`] lines: as soon as more than half of them have failed
//! it raises exactly one [`FormatMismatch`] naming the expected format and one sample
//! line, and never again for that source. Counts by [`ParseError::reason`] feed
//! `palisade_parse_errors_total{source,reason}` (the reason set is closed, so the label
//! stays bounded).

use std::fmt;

use super::ParseError;

/// Lines looked at for the mismatch decision.
pub const WINDOW: u32 = 100;

/// The reasons in the order [`FormatMonitor::errors_by_reason`] reports them.
const REASONS: [&str; 4] = ["no_match", "bad_ip", "bad_time", "bad_json"];

/// "Most lines of this source do not parse with its configured format."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatMismatch {
    pub source: String,
    /// The configured format (`Parser::format_name`).
    pub format: String,
    /// Failed lines among the first `seen`.
    pub failed: u32,
    pub seen: u32,
    /// The first line that failed, cut to 300 bytes.
    pub sample: String,
    /// Why that line failed.
    pub reason: String,
}

impl fmt::Display for FormatMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "log format mismatch in source {}: {} of the first {} lines do not parse as {} \
             ({}). Sample line: {:?}. Check the source's parser/log_format against the \
             server configuration (for nginx, paste the log_format string).",
            self.source, self.failed, self.seen, self.format, self.reason, self.sample
        )
    }
}

/// Watches one source's parse results.
#[derive(Debug, Clone)]
pub struct FormatMonitor {
    source: String,
    format: String,
    seen: u32,
    failed: u32,
    sample: Option<(String, String)>,
    raised: bool,
    counts: [u64; 4],
}

impl FormatMonitor {
    /// A monitor for `source`, parsed as `format`.
    pub fn new(source: &str, format: &str) -> FormatMonitor {
        FormatMonitor {
            source: source.into(),
            format: format.into(),
            seen: 0,
            failed: 0,
            sample: None,
            raised: false,
            counts: [0; 4],
        }
    }

    /// Records one line's result; returns the mismatch the one time it is decided
    /// (also logged as a WARN).
    pub fn record(
        &mut self,
        text: &str,
        result: Result<(), &ParseError>,
    ) -> Option<FormatMismatch> {
        if let Err(e) = result {
            let i = REASONS.iter().position(|r| *r == e.reason()).unwrap_or(0);
            self.counts[i] += 1;
        }
        // A blank line is in no format: it says nothing about the configured one, and
        // a file of blank lines is not a format mismatch.
        if text.trim().is_empty() {
            return None;
        }
        if self.seen >= WINDOW {
            return None;
        }
        self.seen += 1;
        let Err(e) = result else { return None };
        self.failed += 1;
        if self.sample.is_none() {
            let cut = text.char_indices().nth(300).map_or(text.len(), |(i, _)| i);
            self.sample = Some((text[..cut].to_owned(), e.to_string()));
        }
        if self.failed * 2 <= WINDOW {
            return None;
        }
        self.raise()
    }

    /// At the end of a short input (fewer than [`WINDOW`] lines): raises the mismatch
    /// if more than half of the lines seen failed and it was not raised yet.
    pub fn finish(&mut self) -> Option<FormatMismatch> {
        if self.seen == 0 || self.failed * 2 <= self.seen {
            return None;
        }
        self.raise()
    }

    fn raise(&mut self) -> Option<FormatMismatch> {
        if self.raised {
            return None;
        }
        self.raised = true;
        let (sample, reason) = self.sample.clone().unwrap_or_default();
        let mismatch = FormatMismatch {
            source: self.source.clone(),
            format: self.format.clone(),
            failed: self.failed,
            seen: self.seen,
            sample,
            reason,
        };
        tracing::warn!(source = %self.source, format = %self.format, "{mismatch}");
        Some(mismatch)
    }

    /// Whether the mismatch warning was raised.
    pub fn raised(&self) -> bool {
        self.raised
    }

    /// Failed lines so far per reason label (`no_match`, `bad_ip`, `bad_time`,
    /// `bad_json`), all lines counted, not just the first [`WINDOW`].
    pub fn errors_by_reason(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        REASONS.iter().copied().zip(self.counts.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(m: &mut FormatMonitor, fail_every: u32, lines: u32) -> Vec<FormatMismatch> {
        let err = ParseError::no_match("combined");
        (0..lines)
            .filter_map(|i| {
                let result = if i % fail_every == 0 {
                    Err(&err)
                } else {
                    Ok(())
                };
                m.record("sample", result)
            })
            .collect()
    }

    #[test]
    fn half_failing_is_not_a_mismatch() {
        let mut m = FormatMonitor::new("s", "combined");
        assert!(run(&mut m, 2, 1000).is_empty());
        assert!(m.finish().is_none());
        assert_eq!(m.errors_by_reason().next(), Some(("no_match", 500)));
    }

    #[test]
    fn mostly_failing_raises_exactly_once() {
        let mut m = FormatMonitor::new("s", "combined");
        assert_eq!(run(&mut m, 1, 1000).len(), 1);
        assert!(m.finish().is_none());
        assert!(m.raised());
    }

    #[test]
    fn blank_lines_are_not_judged() {
        let mut m = FormatMonitor::new("s", "combined");
        let err = ParseError::no_match("combined");
        for text in ["", "   ", "\t", ""] {
            assert!(m.record(text, Err(&err)).is_none());
        }
        assert!(
            m.finish().is_none(),
            "a file of blank lines is no format mismatch"
        );
        assert_eq!(m.errors_by_reason().next(), Some(("no_match", 4)));
    }

    #[test]
    fn short_input_is_judged_at_the_end() {
        let mut m = FormatMonitor::new("s", "combined");
        assert!(run(&mut m, 1, 10).is_empty());
        let mismatch = m.finish().expect("10 of 10 failed");
        assert_eq!((mismatch.failed, mismatch.seen), (10, 10));
    }
}
