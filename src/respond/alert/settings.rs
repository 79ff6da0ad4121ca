//! The `[alerts]` configuration section and the sinks it builds.
//!
//! Secrets (webhook URLs, HMAC keys, SMTP passwords) can be named by an environment
//! variable (`*_env`) instead of being written into the file, so the config can be
//! world-readable while the secrets are not.
//!
//! ```toml
//! [alerts]
//! digest_interval = "5m"
//! [alerts.slack]
//! webhook_url_env = "SLACK_WEBHOOK_URL"
//! [[alerts.webhook]]
//! name = "soc"
//! url = "https://soc.example.test/hooks/palisade"
//! secret_env = "PALISADE_WEBHOOK_SECRET"
//! [alerts.alertmanager]
//! url = "http://127.0.0.1:9093"
//! [alerts.email]
//! host = "smtp.example.test"
//! port = 587
//! tls = "starttls"
//! from = "palisade <palisade@example.test>"
//! to = ["oncall@example.test"]
//! timeout = "30s"
//! password_env = "PALISADE_SMTP_PASSWORD"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Sink;
use super::alertmanager::AlertmanagerSink;
use super::email::{EmailConfig, EmailSink};
use super::file::{FileSink, FileTarget};
use super::outbox::OutboxConfig;
use super::slack::SlackSink;
use super::webhook::WebhookSink;
use crate::config::parse_duration;

/// `[alerts]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// After a rule's first alert, at most one digest per this interval and sink.
    pub digest_interval: Option<String>,
    /// Per-request timeout of the HTTP sinks.
    pub http_timeout: Option<String>,
    /// Sample lines (redacted) carried in each alert.
    pub max_samples: Option<usize>,
    pub slack: Option<SlackConfig>,
    pub webhook: Vec<WebhookConfig>,
    pub email: Option<EmailSettings>,
    pub alertmanager: Option<AlertmanagerConfig>,
    /// Alerts as JSON lines appended to a file.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    pub webhook_url: Option<String>,
    /// Environment variable holding the webhook URL (preferred: it is a secret).
    pub webhook_url_env: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    /// Environment variable holding the HMAC-SHA256 key for `X-Palisade-Signature`.
    pub secret_env: Option<String>,
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    #[serde(flatten)]
    pub smtp: EmailConfig,
    /// Environment variable holding the SMTP password.
    #[serde(default)]
    pub password_env: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertmanagerConfig {
    pub url: String,
    /// Link shown in Alertmanager back to palisade.
    pub generator_url: String,
}

/// Errors turning `[alerts]` into sinks.
#[derive(Debug, thiserror::Error)]
pub enum AlertConfigError {
    #[error("alerts.{field}: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: &str, message: impl Into<String>) -> AlertConfigError {
    AlertConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn secret(
    field: &str,
    direct: &Option<String>,
    env: &Option<String>,
) -> Result<Option<String>, AlertConfigError> {
    if let Some(name) = env {
        return std::env::var(name)
            .map(Some)
            .map_err(|_| invalid(field, format!("environment variable {name} is not set")));
    }
    Ok(direct.clone())
}

fn duration(
    field: &str,
    text: &Option<String>,
    default: Duration,
) -> Result<Duration, AlertConfigError> {
    match text {
        None => Ok(default),
        Some(t) => {
            parse_duration(t).ok_or_else(|| invalid(field, format!("{t:?} is not a duration")))
        }
    }
}

impl AlertsConfig {
    /// Whether any sink is configured.
    pub fn is_empty(&self) -> bool {
        self.slack.is_none()
            && self.webhook.is_empty()
            && self.email.is_none()
            && self.alertmanager.is_none()
            && self.file.is_none()
    }

    /// The outbox settings this section asks for.
    pub fn outbox(&self) -> Result<OutboxConfig, AlertConfigError> {
        let mut cfg = OutboxConfig::default();
        cfg.digest_interval = duration(
            "digest_interval",
            &self.digest_interval,
            cfg.digest_interval,
        )?;
        Ok(cfg)
    }

    /// Builds every configured sink; secrets are read from the environment here.
    pub fn build_sinks(&self) -> Result<Vec<Arc<dyn Sink>>, AlertConfigError> {
        let timeout = duration("http_timeout", &self.http_timeout, Duration::from_secs(10))?;
        let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
        if let Some(slack) = &self.slack {
            let url = secret(
                "slack.webhook_url",
                &slack.webhook_url,
                &slack.webhook_url_env,
            )?
            .ok_or_else(|| invalid("slack", "set webhook_url_env (or webhook_url)"))?;
            sinks.push(Arc::new(SlackSink::new(url, timeout)));
        }
        for (i, w) in self.webhook.iter().enumerate() {
            let field = format!("webhook[{i}]");
            if w.url.is_empty() {
                return Err(invalid(&field, "url is empty"));
            }
            let name = if w.name.is_empty() {
                format!("webhook-{i}")
            } else {
                w.name.clone()
            };
            let mut sink = WebhookSink::new(name, &w.url, timeout);
            if let Some(key) = secret(&field, &None, &w.secret_env)? {
                sink = sink.with_secret(key);
            }
            for (k, v) in &w.headers {
                sink = sink.with_header(k, v);
            }
            sinks.push(Arc::new(sink));
        }
        if let Some(email) = &self.email {
            let mut smtp = email.smtp.clone();
            if let Some(pw) = secret("email.password", &None, &email.password_env)? {
                smtp.password = Some(pw);
            }
            let sink = EmailSink::new(smtp).map_err(|e| invalid("email", e.to_string()))?;
            sinks.push(Arc::new(sink));
        }
        if let Some(am) = &self.alertmanager {
            sinks.push(Arc::new(AlertmanagerSink::new(
                &am.url,
                am.generator_url.clone(),
                timeout,
            )));
        }
        if let Some(path) = &self.file {
            sinks.push(Arc::new(FileSink::new(FileTarget::JsonLines(path.clone()))));
        }
        Ok(sinks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_secret_variable_is_named_in_the_error() {
        let cfg: AlertsConfig =
            toml::from_str("[slack]\nwebhook_url_env = \"PALISADE_TEST_SURELY_UNSET_VARIABLE\"\n")
                .unwrap();
        let Err(err) = cfg.build_sinks() else {
            panic!("must fail")
        };
        let err = err.to_string();
        assert!(err.contains("PALISADE_TEST_SURELY_UNSET_VARIABLE"), "{err}");
    }

    #[test]
    fn email_port_and_tls_mismatch_is_refused_at_build_time() {
        // field case 53: 587 with implicit TLS
        let cfg: AlertsConfig = toml::from_str(
            "[email]\nhost = \"127.0.0.1\"\nport = 587\ntls = \"implicit\"\nfrom = \"p@example.test\"\nto = [\"o@example.test\"]\ntimeout = \"30s\"\n",
        )
        .unwrap();
        let Err(err) = cfg.build_sinks() else {
            panic!("must fail")
        };
        let err = err.to_string();
        assert!(err.contains("587"), "{err}");
    }

    #[test]
    fn no_sinks_by_default() {
        assert!(AlertsConfig::default().is_empty());
        assert!(AlertsConfig::default().build_sinks().unwrap().is_empty());
    }
}
