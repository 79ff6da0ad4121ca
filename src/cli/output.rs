//! How detections reach a person or a script: readable lines on a terminal, or one
//! JSON object per line with `--json`.
//!
//! Everything printed comes from log lines an attacker wrote, so secrets are redacted
//! (as in the store) and, on the terminal, control characters are escaped: a log line
//! must not be able to retitle or clear the operator's terminal.

use std::io::{self, Write};

use owo_colors::OwoColorize;

use palisade::detect::{Detection, Level};
use palisade::store::redact::{redact, redact_json};

/// Writes detections to stdout in the chosen style.
pub struct DetectionPrinter {
    json: bool,
    color: bool,
    out: io::BufWriter<io::Stdout>,
    /// stdout went away (`palisade scan | head`): stop writing, quietly.
    closed: bool,
    /// Another write error was already reported.
    reported: bool,
}

impl DetectionPrinter {
    pub fn new(json: bool, color: bool) -> DetectionPrinter {
        DetectionPrinter {
            json,
            color,
            out: io::BufWriter::new(io::stdout()),
            closed: false,
            reported: false,
        }
    }

    /// Prints one detection. A closed pipe ends output silently; any other write
    /// error is reported once.
    pub fn print(&mut self, d: &Detection) {
        if self.closed {
            return;
        }
        let text = if self.json {
            let mut v = d.to_json();
            redact_json(&mut v);
            v.to_string()
        } else {
            render_line(d, self.color)
        };
        let res = self
            .out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.write_all(b"\n"));
        self.handle(res);
    }

    pub fn flush(&mut self) {
        if !self.closed {
            let res = self.out.flush();
            self.handle(res);
        }
    }

    fn handle(&mut self, res: io::Result<()>) {
        match res {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => self.closed = true,
            Err(e) if !self.reported => {
                self.reported = true;
                tracing::error!(error = %e, "Cannot write detections to stdout");
            }
            Err(_) => {}
        }
    }
}

/// One readable line per detection, with the first sample's request or message.
pub fn render_line(d: &Detection, color: bool) -> String {
    let level = format!("{:<8}", d.rule.level.as_str().to_uppercase());
    let level = if color {
        paint_level(&level, d.rule.level)
    } else {
        level
    };
    let span = if d.first_seen == d.last_seen {
        d.first_seen.to_string()
    } else {
        format!("{} .. {}", d.first_seen, d.last_seen)
    };
    let mut line = format!(
        "{level} {}  [{}]  count={}  {span}",
        d.rule.title,
        escape_controls(&d.key_string()),
        d.count
    );
    if let Some(sample) = d.samples.first() {
        let what = match (sample.method.as_deref(), sample.url_original.as_deref()) {
            (Some(m), Some(u)) => format!("{m} {u}"),
            _ => sample.message.clone().unwrap_or_else(|| sample.raw.clone()),
        };
        let what: String = escape_controls(&redact(&what)).chars().take(160).collect();
        let tail = format!("\n         e.g. {what}");
        line.push_str(&if color {
            tail.dimmed().to_string()
        } else {
            tail
        });
    }
    line
}

/// Control characters (ESC, BEL, CR, …) written as `\x1b`-style escapes.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn paint_level(text: &str, level: Level) -> String {
    match level {
        Level::Critical => text.red().bold().to_string(),
        Level::High => text.red().to_string(),
        Level::Medium => text.yellow().to_string(),
        Level::Low => text.cyan().to_string(),
        Level::Informational => text.dimmed().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_from_log_text_are_neutralised() {
        let shown = escape_controls("GET /x\u{1b}]0;pwned\u{7}\u{1b}[2J");
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.contains("\\x1b]0;pwned\\x07"), "{shown:?}");
    }
}
