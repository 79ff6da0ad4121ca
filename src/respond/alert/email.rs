//! Email sink over SMTP (lettre, rustls with aws-lc-rs).
//!
//! TLS modes: `starttls` (port 587, upgrade after EHLO), `implicit` (port 465, TLS
//! from the first byte) and `none` (plaintext, allowed only to a loopback relay).
//! Mixing them up is the classic failure ("first record does not look like a TLS
//! handshake", field case 53), so [`EmailConfig::check_config`] rejects 587 +
//! implicit and 465 + starttls with a message naming the mismatch.
//!
//! The whole SMTP conversation runs under one configurable `timeout` (field case 54:
//! providers that take 15 s to accept DATA need more than a fixed 10 s); a timeout is
//! a transient error, so the outbox retries with back-off instead of dropping it.

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::{Alert, DigestSummary, SendError, SendFuture, Sink, install_crypto_provider};

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (submission port 587).
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// No TLS: only for a relay on loopback.
    None,
}

/// Operator settings for the email sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailConfig {
    /// SMTP server host name (also the name the TLS certificate must carry).
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Sender, e.g. `palisade <palisade@example.test>`.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Limit for one whole SMTP conversation (connect to QUIT).
    #[serde(with = "humantime_secs")]
    pub timeout: Duration,
    /// Extra root certificate (PEM) to trust, e.g. a private relay's CA.
    #[serde(default)]
    pub root_cert_pem: Option<String>,
}

mod humantime_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    /// Seconds as a number (`30`) or a duration string like the rest of the config
    /// (`"30s"`, `"2m"`).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Secs {
            Number(f64),
            Text(String),
        }
        match Secs::deserialize(d)? {
            Secs::Number(n) if n >= 0.0 && n.is_finite() => Ok(Duration::from_secs_f64(n)),
            Secs::Number(n) => Err(serde::de::Error::custom(format!("bad timeout {n}"))),
            Secs::Text(t) => crate::config::parse_duration(&t)
                .ok_or_else(|| serde::de::Error::custom(format!("not a duration: {t:?}"))),
        }
    }
}

/// A setting the email sink cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailConfigError {
    #[error(
        "SMTP port 587 with tls = \"implicit\": port 587 expects STARTTLS; \
         set tls = \"starttls\" or use port 465 for implicit TLS"
    )]
    ImplicitOn587,
    #[error(
        "SMTP port 465 with tls = \"starttls\": port 465 expects implicit TLS; \
         set tls = \"implicit\" or use port 587 for STARTTLS"
    )]
    StarttlsOn465,
    #[error(
        "SMTP tls = \"none\" sends mail and passwords in clear; allowed only to a loopback host, not {0:?}"
    )]
    PlaintextRemote(String),
    #[error("email sink has no recipients: set `to`")]
    NoRecipients,
    #[error("email address {0:?} is not valid: {1}")]
    BadAddress(String, String),
    #[error("root certificate for SMTP is not valid PEM: {0}")]
    BadCertificate(String),
}

impl EmailConfig {
    /// Rejects port/TLS mismatches (field case 53), plaintext to remote hosts, and
    /// unparsable addresses.
    pub fn check_config(&self) -> Result<(), EmailConfigError> {
        match (self.port, self.tls) {
            (587, SmtpTls::Implicit) => return Err(EmailConfigError::ImplicitOn587),
            (465, SmtpTls::Starttls) => return Err(EmailConfigError::StarttlsOn465),
            _ => {}
        }
        if self.tls == SmtpTls::None && !is_loopback(&self.host) {
            return Err(EmailConfigError::PlaintextRemote(self.host.clone()));
        }
        if self.to.is_empty() {
            return Err(EmailConfigError::NoRecipients);
        }
        for addr in std::iter::once(&self.from).chain(&self.to) {
            addr.parse::<Mailbox>()
                .map_err(|e| EmailConfigError::BadAddress(addr.clone(), e.to_string()))?;
        }
        Ok(())
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Sends alerts as plain-text mail.
pub struct EmailSink {
    cfg: EmailConfig,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl EmailSink {
    /// Checks `cfg` and builds the transport (no connection is made yet).
    pub fn new(cfg: EmailConfig) -> Result<EmailSink, EmailConfigError> {
        cfg.check_config()?;
        install_crypto_provider();
        let tls = match cfg.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_params(&cfg)?),
            SmtpTls::Implicit => Tls::Wrapper(tls_params(&cfg)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(cfg.timeout));
        if let (Some(user), Some(pass)) = (&cfg.username, &cfg.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(EmailSink {
            transport: builder.build(),
            cfg,
        })
    }

    fn message(&self, batch: &[Alert]) -> Result<Message, SendError> {
        let (subject, body) = match batch {
            [one] => (one.headline(), one.text_body()),
            _ => {
                let s = DigestSummary::of(batch)
                    .ok_or_else(|| SendError::permanent("empty email batch"))?;
                (s.headline(), s.text_body(batch))
            }
        };
        let bad =
            |e: lettre::address::AddressError| SendError::permanent(format!("email address: {e}"));
        let mut builder = Message::builder()
            .from(self.cfg.from.parse().map_err(bad)?)
            .subject(subject.replace(['\r', '\n'], " "))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.cfg.to {
            builder = builder.to(to.parse().map_err(bad)?);
        }
        builder
            .body(body)
            .map_err(|e| SendError::permanent(format!("email message did not build: {e}")))
    }
}

fn tls_params(cfg: &EmailConfig) -> Result<TlsParameters, EmailConfigError> {
    let mut b = TlsParameters::builder(cfg.host.clone());
    if let Some(pem) = &cfg.root_cert_pem {
        let cert = Certificate::from_pem(pem.as_bytes())
            .map_err(|e| EmailConfigError::BadCertificate(e.to_string()))?;
        b = b.add_root_certificate(cert);
    }
    b.build_rustls()
        .map_err(|e| EmailConfigError::BadCertificate(e.to_string()))
}

fn smtp_error(err: lettre::transport::smtp::Error) -> SendError {
    let status = err.status().map(u16::from);
    SendError {
        status,
        retry_after: None,
        permanent: err.is_permanent(),
        message: format!("email send failed: {err}"),
    }
}

impl Sink for EmailSink {
    fn name(&self) -> &str {
        "email"
    }

    fn send<'a>(&'a self, batch: &'a [Alert]) -> SendFuture<'a> {
        Box::pin(async move {
            let msg = self.message(batch)?;
            // lettre's own timeout covers only connecting; bound the whole exchange.
            match tokio::time::timeout(self.cfg.timeout, self.transport.send(msg)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(smtp_error(e)),
                Err(_) => Err(SendError::transient(format!(
                    "email send to {}:{} timed out after {:?}",
                    self.cfg.host, self.cfg.port, self.cfg.timeout
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn config(port: u16, tls: SmtpTls) -> EmailConfig {
        EmailConfig {
            host: "127.0.0.1".into(),
            port,
            tls,
            username: None,
            password: None,
            from: "palisade <palisade@example.test>".into(),
            to: vec!["ops@example.test".into()],
            timeout: Duration::from_secs(30),
            root_cert_pem: None,
        }
    }

    /// Field case 53: 587 + implicit TLS must fail the config check, naming it.
    #[test]
    fn implicit_tls_on_submission_port_is_rejected_by_name() {
        let err = config(587, SmtpTls::Implicit).check_config().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("587") && text.contains("implicit") && text.contains("starttls"));
        let err = config(465, SmtpTls::Starttls).check_config().unwrap_err();
        assert!(err.to_string().contains("465"));
        assert!(config(587, SmtpTls::Starttls).check_config().is_ok());
        assert!(config(465, SmtpTls::Implicit).check_config().is_ok());
    }

    #[test]
    fn plaintext_only_to_loopback() {
        let mut cfg = config(25, SmtpTls::None);
        assert!(cfg.check_config().is_ok());
        cfg.host = "mail.example.test".into();
        assert!(matches!(
            cfg.check_config(),
            Err(EmailConfigError::PlaintextRemote(_))
        ));
    }
}
