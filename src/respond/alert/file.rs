//! Terminal and JSON-lines file sink: one JSON object per alert per line, appended,
//! or a readable block on stderr. Useful without any chat service and as an audit of
//! what was sent.

use std::io::Write;
use std::path::PathBuf;

use serde_json::json;

use super::{Alert, DigestSummary, SendError, SendFuture, Sink};

/// Where the file sink writes.
#[derive(Debug, Clone)]
pub enum FileTarget {
    /// Human-readable text on stderr.
    Terminal,
    /// JSON lines appended to this file.
    JsonLines(PathBuf),
}

/// Writes alerts to the terminal or a JSON-lines file.
pub struct FileSink {
    target: FileTarget,
}

impl FileSink {
    /// A sink writing to `target`.
    pub fn new(target: FileTarget) -> FileSink {
        FileSink { target }
    }

    fn write(&self, batch: &[Alert]) -> std::io::Result<()> {
        match &self.target {
            FileTarget::Terminal => {
                let text = match batch {
                    [one] => format!("{}\n{}", one.headline(), one.text_body()),
                    _ => DigestSummary::of(batch)
                        .map(|s| s.text_body(batch))
                        .unwrap_or_default(),
                };
                std::io::stderr().lock().write_all(text.as_bytes())
            }
            FileTarget::JsonLines(path) => {
                let mut buf = Vec::new();
                let digest = batch.len() > 1;
                for a in batch {
                    serde_json::to_writer(&mut buf, &json!({ "digest": digest, "alert": a }))?;
                    buf.push(b'\n');
                }
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                f.write_all(&buf)?;
                f.flush()
            }
        }
    }
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        match self.target {
            FileTarget::Terminal => "terminal",
            FileTarget::JsonLines(_) => "file",
        }
    }

    fn send<'a>(&'a self, batch: &'a [Alert]) -> SendFuture<'a> {
        Box::pin(async move {
            self.write(batch)
                .map_err(|e| SendError::transient(format!("alert file write failed: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::alert::outbox::tests::sample_alert;

    #[tokio::test]
    async fn json_lines_are_appended_one_per_alert() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let sink = FileSink::new(FileTarget::JsonLines(path.clone()));
        sink.send(&[sample_alert("r1", "192.0.2.1", 1)])
            .await
            .unwrap();
        let digest = [
            sample_alert("r1", "192.0.2.2", 2),
            sample_alert("r1", "192.0.2.3", 3),
        ];
        sink.send(&digest).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["digest"], false);
        assert_eq!(lines[2]["digest"], true);
        assert_eq!(lines[2]["alert"]["key"], "source.ip=192.0.2.3");
    }
}
