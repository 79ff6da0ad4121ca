//! Alerting: turns a [`Detection`] plus the decision taken into an [`Alert`] and
//! delivers it to every configured [`Sink`] through a persistent [`Outbox`].
//!
//! - [`Alert`] (this file) is the sink-neutral message: what fired, for which key, how
//!   often, sample lines (redacted by [`redact`]) and the decision. Missing values get
//!   placeholders so no sink ever fails on an absent field.
//! - [`slack`], [`webhook`], [`email`], [`alertmanager`] and [`file`] render and send a
//!   batch; a batch of more than one alert is a digest.
//! - [`outbox`] stores every alert per sink in SQLite before anything is sent, runs one
//!   delivery worker per sink, groups storms into digests, honours rate limits and
//!   retries with back-off, and marks rows delivered only after the sink said yes.
//!
//! Policy (elsewhere in `respond`) decides; this module only tells people.

pub mod alertmanager;
pub mod email;
pub mod file;
pub mod outbox;
pub mod redact;
pub mod settings;
pub mod slack;
pub mod webhook;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::detect::{Detection, Level};
use crate::event::Event;

pub use outbox::{Outbox, OutboxConfig, OutboxError, SinkCounters};
pub use redact::redact;

/// Shown where a rule has no description.
pub const NO_DESCRIPTION: &str = "(no description)";
/// Shown where no user name is known.
pub const NO_USER: &str = "(unknown user)";
/// Shown where no host is known.
pub const NO_HOST: &str = "(unknown host)";
/// Shown where a detection has no group-by key.
pub const NO_KEY: &str = "(no key)";

/// How many sample lines an alert carries by default.
pub const DEFAULT_MAX_SAMPLES: usize = 5;
/// Longest sample line kept, in bytes; chat sinks truncate long bodies anyway.
const MAX_SAMPLE_BYTES: usize = 500;

/// One alert, ready for any sink. Serialized into the outbox, so fields only grow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable across restarts for the same detection episode and decision: the outbox
    /// refuses a second copy, so a restart re-announces nothing.
    pub idempotency_key: String,
    pub rule_id: String,
    pub rule_title: String,
    pub level: Level,
    pub tags: Vec<String>,
    pub description: String,
    /// The group-by key as `field=value,…`.
    pub key: String,
    /// `source.ip` when the key or the samples name one.
    pub ip: Option<String>,
    pub user: String,
    pub host: String,
    pub count: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Raw lines behind the detection, secrets masked.
    pub samples: Vec<String>,
    /// What palisade did: `banned 1h`, `alert only`, `simulated ban`, …
    pub decision: String,
    /// True when this alert was already sent on its own and is repeated in a digest
    /// only so the digest lists every key of its window; receivers must not count it
    /// as new.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recap: bool,
}

impl Alert {
    /// Builds the alert for `detection` after `decision` was taken, keeping at most
    /// `max_samples` redacted sample lines.
    pub fn from_detection(detection: &Detection, decision: &str, max_samples: usize) -> Alert {
        let rule = &detection.rule;
        let key = detection.key_string();
        let samples = &detection.samples;
        let ip = detection
            .key_value("source.ip")
            .map(str::to_owned)
            .or_else(|| {
                samples
                    .iter()
                    .find_map(|e| e.source_ip)
                    .map(|ip| ip.to_string())
            });
        let user = detection
            .key_value("user.name")
            .map(str::to_owned)
            .or_else(|| {
                samples
                    .iter()
                    .find_map(|e| e.user_name.as_ref())
                    .map(|u| u.to_string())
            });
        Alert {
            idempotency_key: idempotency_key(detection, decision),
            rule_id: rule.id.clone(),
            rule_title: non_empty(&rule.title, &rule.id),
            level: rule.level,
            tags: rule.tags.clone(),
            description: non_empty(&rule.description, NO_DESCRIPTION),
            key: non_empty(&key, NO_KEY),
            ip,
            user: user.unwrap_or_else(|| NO_USER.to_owned()),
            host: samples
                .iter()
                .find_map(host_of)
                .unwrap_or_else(|| NO_HOST.to_owned()),
            count: detection.count,
            first_seen: detection.first_seen,
            last_seen: detection.last_seen,
            samples: samples.iter().take(max_samples).map(sample_line).collect(),
            decision: non_empty(decision, "alert only"),
            recap: false,
        }
    }

    /// The short subject line sinks use: `[HIGH] SSH brute force — source.ip=…`.
    pub fn headline(&self) -> String {
        format!(
            "[{}] {} — {}",
            self.level.as_str().to_ascii_uppercase(),
            self.rule_title,
            self.key
        )
    }

    /// The plain-text body (email, terminal): every field, placeholders included.
    pub fn text_body(&self) -> String {
        let mut out = format!(
            "Rule: {} ({})\nLevel: {}\nTags: {}\nDescription: {}\nKey: {}\nUser: {}\nHost: {}\n\
             Count: {}\nFirst seen: {}\nLast seen: {}\nDecision: {}\n",
            self.rule_title,
            self.rule_id,
            self.level,
            if self.tags.is_empty() {
                "-".to_owned()
            } else {
                self.tags.join(", ")
            },
            self.description,
            self.key,
            self.user,
            self.host,
            self.count,
            self.first_seen,
            self.last_seen,
            self.decision,
        );
        if !self.samples.is_empty() {
            out.push_str("Samples:\n");
            for line in &self.samples {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

fn non_empty(value: &str, placeholder: &str) -> String {
    if value.trim().is_empty() {
        placeholder.to_owned()
    } else {
        value.to_owned()
    }
}

fn host_of(event: &Event) -> Option<String> {
    [
        "host.name",
        "url.domain",
        "http.request.host",
        "server.address",
    ]
    .iter()
    .find_map(|name| event.get(name).map(|v| v.to_text().to_string()))
    .filter(|h| !h.is_empty())
}

fn sample_line(event: &Event) -> String {
    let line = redact(&event.raw);
    if line.len() <= MAX_SAMPLE_BYTES {
        return line.into_owned();
    }
    let mut cut = MAX_SAMPLE_BYTES;
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &line[..cut])
}

/// Rule, key, episode start and decision hashed: the same episode announced again
/// (after a restart, or by a replay) maps to the same key.
fn idempotency_key(detection: &Detection, decision: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        detection.rule.id.as_str(),
        &detection.key_string(),
        &detection.first_seen.to_string(),
        decision,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
}

/// A batch summarised for digest messages: per rule, the count and every key.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestSummary {
    /// Total alerts in the batch.
    pub alerts: usize,
    /// Sum of the detections' event counts.
    pub events: u64,
    /// Per rule title: the keys in first-seen order (all of them, not only the top).
    pub by_rule: BTreeMap<String, Vec<String>>,
    pub highest: Level,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

impl DigestSummary {
    /// Summarises a non-empty batch; `None` for an empty one.
    pub fn of(batch: &[Alert]) -> Option<DigestSummary> {
        let first = batch.first()?;
        let mut s = DigestSummary {
            alerts: batch.len(),
            events: 0,
            by_rule: BTreeMap::new(),
            highest: first.level,
            first_seen: first.first_seen,
            last_seen: first.last_seen,
        };
        for a in batch {
            s.events += a.count;
            s.highest = s.highest.max(a.level);
            s.first_seen = s.first_seen.min(a.first_seen);
            s.last_seen = s.last_seen.max(a.last_seen);
            s.by_rule
                .entry(a.rule_title.clone())
                .or_default()
                .push(a.key.clone());
        }
        Some(s)
    }

    /// `Digest: 300 alerts (1 rule) from … to …`.
    pub fn headline(&self) -> String {
        format!(
            "[{}] Digest: {} alerts ({} rule{}) between {} and {}",
            self.highest.as_str().to_ascii_uppercase(),
            self.alerts,
            self.by_rule.len(),
            if self.by_rule.len() == 1 { "" } else { "s" },
            self.first_seen,
            self.last_seen
        )
    }

    /// Plain text listing every rule with its count and all its keys.
    pub fn text_body(&self, batch: &[Alert]) -> String {
        let mut out = format!("{}\nEvents: {}\n", self.headline(), self.events);
        for (rule, keys) in &self.by_rule {
            out.push_str(&format!("\nRule: {rule} — {} alerts\n", keys.len()));
            for key in keys {
                out.push_str("  ");
                out.push_str(key);
                out.push('\n');
            }
        }
        let decisions: std::collections::BTreeSet<&str> =
            batch.iter().map(|a| a.decision.as_str()).collect();
        out.push_str(&format!(
            "\nDecisions: {}\n",
            decisions.into_iter().collect::<Vec<_>>().join(", ")
        ));
        out
    }
}

/// Why a send failed, and what the outbox should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// HTTP status or SMTP reply code, when the peer answered.
    pub status: Option<u16>,
    /// How long the peer asked us to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// True when retrying cannot help (bad URL, 4xx other than 408/429, 5xx SMTP).
    pub permanent: bool,
    /// What failed, for logs.
    pub message: String,
}

impl SendError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> SendError {
        SendError {
            status: None,
            retry_after: None,
            permanent: false,
            message: message.into(),
        }
    }

    /// A failure retrying will not fix.
    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            status: None,
            retry_after: None,
            permanent: true,
            message: message.into(),
        }
    }

    /// The `code` label for send-error counters: the status, `timeout` or `transport`.
    pub fn code_label(&self) -> String {
        match self.status {
            Some(code) => code.to_string(),
            None if self.message.contains("timed out") || self.message.contains("timeout") => {
                "timeout".to_owned()
            }
            None => "transport".to_owned(),
        }
    }
}

/// The future a [`Sink`] returns; boxed so sinks can live behind `dyn Sink`.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// A delivery channel. `send` gets one alert (a normal message) or several (render
/// them as one digest message); it returns only after the peer accepted or refused.
pub trait Sink: Send + Sync {
    /// The channel label used in metrics and the outbox (`slack`, `email`, …).
    fn name(&self) -> &str;
    /// Delivers `batch` as one message.
    fn send<'a>(&'a self, batch: &'a [Alert]) -> SendFuture<'a>;
}

impl fmt::Debug for dyn Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sink({})", self.name())
    }
}

/// Classifies an HTTP answer: 2xx is `Ok`; 429/408/5xx are transient (with any
/// `Retry-After` in seconds); other statuses are permanent.
pub(crate) fn http_status_error(
    channel: &str,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let code = status.as_u16();
    let transient = code == 429 || code == 408 || status.is_server_error();
    Err(SendError {
        status: Some(code),
        retry_after,
        permanent: !transient,
        message: format!("{channel} answered HTTP {status}"),
    })
}

/// Maps a reqwest failure (no HTTP answer) to a transient error, or a permanent one
/// for a malformed request.
pub(crate) fn http_transport_error(channel: &str, err: reqwest::Error) -> SendError {
    let what = if err.is_timeout() {
        "timed out"
    } else {
        "failed"
    };
    let message = format!("{channel} request {what}: {err}");
    if err.is_builder() {
        SendError::permanent(message)
    } else {
        SendError::transient(message)
    }
}

/// Installs aws-lc-rs as the process-wide rustls provider (reqwest and lettre share
/// it). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A shared HTTP client for the webhook-style sinks with the given request timeout.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("HTTP client builds with the bundled TLS provider")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::detect::{DetectionState, RuleMeta};

    fn detection(description: &str) -> Detection {
        let t = Timestamp::from_second(1_715_485_267).unwrap();
        let raw = "POST /login?password=hunter2 HTTP/1.1".to_owned();
        Detection {
            rule: Arc::new(RuleMeta {
                id: "r-1".into(),
                name: None,
                title: "Brute force".into(),
                level: Level::High,
                tags: vec![],
                description: description.into(),
            }),
            key: vec![("source.ip".into(), "192.0.2.7".into())],
            count: 9,
            first_seen: t,
            last_seen: t,
            samples: vec![Event::new(Arc::from("nginx"), 0, raw)],
            state: DetectionState::Fired,
        }
    }

    /// Field case 50: absent description, user and host become placeholders.
    #[test]
    fn missing_fields_get_placeholders_and_samples_are_redacted() {
        let a = Alert::from_detection(&detection(""), "banned 1h", 5);
        assert_eq!(
            (a.description.as_str(), a.user.as_str(), a.host.as_str()),
            (NO_DESCRIPTION, NO_USER, NO_HOST)
        );
        assert_eq!(a.ip.as_deref(), Some("192.0.2.7"));
        assert!(!a.samples[0].contains("hunter2"));
        assert!(a.text_body().contains(NO_DESCRIPTION));
    }

    #[test]
    fn same_episode_and_decision_give_the_same_idempotency_key() {
        let a = Alert::from_detection(&detection("d"), "banned 1h", 5);
        let b = Alert::from_detection(&detection("d"), "banned 1h", 5);
        let c = Alert::from_detection(&detection("d"), "alert only", 5);
        assert_eq!(a.idempotency_key, b.idempotency_key);
        assert_ne!(a.idempotency_key, c.idempotency_key);
    }
}
