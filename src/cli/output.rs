//! How detections reach a person or a script: readable lines on a terminal, or one
//! JSON object per line with `--json`.

use std::io::{self, Write};

use owo_colors::OwoColorize;

use palisade::detect::{Detection, Level};

/// Writes detections to stdout in the chosen style.
pub struct DetectionPrinter {
    json: bool,
    color: bool,
    out: io::BufWriter<io::Stdout>,
}

impl DetectionPrinter {
    pub fn new(json: bool, color: bool) -> DetectionPrinter {
        DetectionPrinter {
            json,
            color,
            out: io::BufWriter::new(io::stdout()),
        }
    }

    /// Prints one detection. A closed pipe (`palisade scan | head`) is not an error.
    pub fn print(&mut self, d: &Detection) -> io::Result<()> {
        let res = if self.json {
            serde_json::to_writer(&mut self.out, &d.to_json())
                .map_err(io::Error::other)
                .and_then(|()| self.out.write_all(b"\n"))
        } else {
            let line = render_line(d, self.color);
            writeln!(self.out, "{line}")
        };
        match res {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match self.out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
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
        d.key_string(),
        d.count
    );
    if let Some(sample) = d.samples.first() {
        let what = match (sample.method.as_deref(), sample.url_original.as_deref()) {
            (Some(m), Some(u)) => format!("{m} {u}"),
            _ => sample.message.clone().unwrap_or_else(|| sample.raw.clone()),
        };
        let what: String = what.chars().take(160).collect();
        let tail = format!("\n         e.g. {what}");
        line.push_str(&if color {
            tail.dimmed().to_string()
        } else {
            tail
        });
    }
    line
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
