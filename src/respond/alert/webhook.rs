//! Generic webhook sink: the alerts as a JSON body, optionally signed so the receiver
//! can tell palisade's posts from forgeries.
//!
//! Signature: `X-Palisade-Signature: sha256=<hex>` where the hex is HMAC-SHA256 over
//! the exact body bytes with the shared secret (the GitHub-webhook convention, so
//! receivers can reuse their verification code).

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{
    Alert, SendError, SendFuture, Sink, http_client, http_status_error, http_transport_error,
};

/// The header carrying the body signature.
pub const SIGNATURE_HEADER: &str = "X-Palisade-Signature";

/// Posts alerts as JSON to any HTTP endpoint.
pub struct WebhookSink {
    name: String,
    url: String,
    secret: Option<Vec<u8>>,
    headers: Vec<(String, String)>,
    client: reqwest::Client,
}

impl WebhookSink {
    /// A sink named `name` (the metrics label) posting to `url`.
    pub fn new(name: impl Into<String>, url: impl Into<String>, timeout: Duration) -> WebhookSink {
        WebhookSink {
            name: name.into(),
            url: url.into(),
            secret: None,
            headers: Vec::new(),
            client: http_client(timeout),
        }
    }

    /// Signs every body with HMAC-SHA256 under `secret`.
    pub fn with_secret(mut self, secret: impl Into<Vec<u8>>) -> WebhookSink {
        self.secret = Some(secret.into());
        self
    }

    /// Adds a header sent with every post (e.g. an API token the receiver expects).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> WebhookSink {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a `sha256=<hex>` signature in constant time (for receivers and tests).
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The body: `{"kind": "alert"|"digest", "count": n, "alerts": [...]}`.
pub fn payload(batch: &[Alert]) -> Value {
    json!({
        "source": "palisade",
        "kind": if batch.len() == 1 { "alert" } else { "digest" },
        "count": batch.len(),
        "alerts": batch,
    })
}

impl Sink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, batch: &'a [Alert]) -> SendFuture<'a> {
        Box::pin(async move {
            let body = serde_json::to_vec(&payload(batch)).map_err(|e| {
                SendError::permanent(format!("webhook body did not serialize: {e}"))
            })?;
            let mut req = self
                .client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json");
            for (k, v) in &self.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            if let Some(secret) = &self.secret {
                req = req.header(SIGNATURE_HEADER, signature(secret, &body));
            }
            let resp = req
                .body(body)
                .send()
                .await
                .map_err(|e| http_transport_error(&self.name, e))?;
            http_status_error(&self.name, resp.status(), resp.headers())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_and_tampering_fails() {
        let sig = signature(b"s3cret", b"{\"a\":1}");
        assert!(verify(b"s3cret", b"{\"a\":1}", &sig));
        assert!(!verify(b"s3cret", b"{\"a\":2}", &sig));
        assert!(!verify(b"other", b"{\"a\":1}", &sig));
        assert!(!verify(b"s3cret", b"{\"a\":1}", "sha1=00"));
    }

    #[test]
    fn known_vector_matches_rfc4231_case_2() {
        let sig = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
