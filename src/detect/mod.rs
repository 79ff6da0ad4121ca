//! Detection: turns events into [`Detection`]s.
//!
//! - [`classify`] decodes request parts and tags events with attack classes (SQLi,
//!   XSS, traversal, command injection, scanners) before any rule runs.
//! - [`sigma`] loads and compiles Sigma rules (built-in `rules/` and user folders)
//!   into matchers over [`Event`] fields.
//! - [`correlate`] keeps the per-key, event-time windows behind Sigma correlation
//!   rules (`event_count`, `value_count`, `temporal`) with a memory ceiling.
//! - [`engine`] runs both over a stream of events and emits detections.
//! - [`memo`] remembers verdicts on repeating values (paths, agents) per thread.
//!
//! Detection knows nothing of response: it hands detections to whoever drives it.

pub mod classify;
pub mod correlate;
pub mod engine;
pub mod memo;
pub mod sigma;

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::event::{Event, Text};

/// Sigma rule levels, lowest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Informational,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "informational" | "info" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return None,
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a detection says about the rule that fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleMeta {
    /// The Sigma `id` (a UUID) or, for rules without one, the `name`.
    pub id: String,
    /// The Sigma `name`, when set (correlations reference rules by it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub title: String,
    pub level: Level,
    /// Sigma tags, e.g. `attack.t1110`, `attack.credential-access`.
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// Where a detection stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionState {
    /// The rule's condition was just met for this key; emitted at once (live alerts).
    Fired,
    /// The episode ended (its window passed with no new matching events) or the scan
    /// ended; counts and samples are final.
    Closed,
}

/// A rule fired for a key: the unit that alerting, banning and the store work on.
#[derive(Debug, Clone)]
pub struct Detection {
    pub rule: Arc<RuleMeta>,
    /// The group-by fields and their values, e.g. `[("source.ip", "192.0.2.7")]`.
    pub key: Vec<(Text, Text)>,
    /// Matching events in this episode (may exceed `samples.len()`).
    pub count: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// A bounded sample of the events behind the detection (first ones, then the last).
    pub samples: Vec<Event>,
    pub state: DetectionState,
}

impl Detection {
    /// The key as `field=value` pairs joined by commas, for display and storage.
    pub fn key_string(&self) -> String {
        let parts: Vec<String> = self.key.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.join(",")
    }

    /// The value of one key field, e.g. `source.ip`.
    pub fn key_value(&self, field: &str) -> Option<&str> {
        self.key
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
    }

    /// The detection as the JSON object `scan --json` prints, one per line.
    pub fn to_json(&self) -> serde_json::Value {
        let key: serde_json::Map<String, serde_json::Value> = self
            .key
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_str().into()))
            .collect();
        serde_json::json!({
            "rule": {
                "id": self.rule.id,
                "title": self.rule.title,
                "level": self.rule.level,
                "tags": self.rule.tags,
            },
            "key": key,
            "count": self.count,
            "first_seen": self.first_seen.to_string(),
            "last_seen": self.last_seen.to_string(),
            "state": self.state,
            "samples": self.samples.iter().map(Event::to_json).collect::<Vec<_>>(),
        })
    }
}
