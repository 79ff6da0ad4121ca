//! Prometheus Alertmanager sink: `POST {base}/api/v2/alerts` with a JSON array of
//! `{labels, annotations, startsAt, endsAt, generatorURL}`. Alertmanager groups and
//! routes by itself, so a digest batch is simply sent as one array of alerts.
//!
//! Labels stay low-cardinality except `key`, which Alertmanager needs to tell alerts
//! apart (it deduplicates on the label set).

use std::time::Duration;

use serde_json::{Value, json};

use super::{Alert, SendFuture, Sink, http_client, http_status_error, http_transport_error};

/// How long after `last_seen` Alertmanager should consider an alert resolved unless
/// re-sent.
const RESOLVE_AFTER: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// Posts alerts to Alertmanager's v2 API.
pub struct AlertmanagerSink {
    url: String,
    generator_url: String,
    client: reqwest::Client,
}

impl AlertmanagerSink {
    /// `base_url` like `http://127.0.0.1:9093`; `generator_url` links back to palisade
    /// (its dashboard), shown by Alertmanager as the alert's source.
    pub fn new(base_url: &str, generator_url: impl Into<String>, timeout: Duration) -> Self {
        AlertmanagerSink {
            url: format!("{}/api/v2/alerts", base_url.trim_end_matches('/')),
            generator_url: generator_url.into(),
            client: http_client(timeout),
        }
    }

    /// The request body for a batch.
    pub fn payload(&self, batch: &[Alert]) -> Value {
        Value::Array(batch.iter().map(|a| self.one(a)).collect())
    }

    fn one(&self, a: &Alert) -> Value {
        let ends = a
            .last_seen
            .checked_add(RESOLVE_AFTER)
            .unwrap_or(a.last_seen);
        json!({
            "labels": {
                "alertname": a.rule_title,
                "rule_id": a.rule_id,
                "severity": a.level.as_str(),
                "key": a.key,
                "source": "palisade",
            },
            "annotations": {
                "summary": a.headline(),
                "description": a.description,
                "decision": a.decision,
                "count": a.count.to_string(),
                "user": a.user,
                "host": a.host,
                "samples": a.samples.join("\n"),
            },
            "startsAt": a.first_seen.to_string(),
            "endsAt": ends.to_string(),
            "generatorURL": self.generator_url,
        })
    }
}

impl Sink for AlertmanagerSink {
    fn name(&self) -> &str {
        "alertmanager"
    }

    fn send<'a>(&'a self, batch: &'a [Alert]) -> SendFuture<'a> {
        Box::pin(async move {
            let resp = self
                .client
                .post(&self.url)
                .json(&self.payload(batch))
                .send()
                .await
                .map_err(|e| http_transport_error("alertmanager", e))?;
            http_status_error("alertmanager", resp.status(), resp.headers())
        })
    }
}
