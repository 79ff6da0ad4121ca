//! Slack incoming-webhook sink: Block Kit JSON built with `serde_json`, never by
//! pasting text into a JSON string. Slack's mrkdwn gives `<`, `>` and `&` meaning
//! (links, mentions), so every piece of log-derived text is escaped first.

use std::time::Duration;

use serde_json::{Value, json};

use super::{
    Alert, DigestSummary, SendFuture, Sink, http_client, http_status_error, http_transport_error,
};

/// Slack rejects section text above 3000 characters; stay under it.
const SECTION_LIMIT: usize = 2900;
/// Slack allows 50 blocks per message.
const MAX_BLOCKS: usize = 48;

/// Posts alerts to a Slack incoming webhook.
pub struct SlackSink {
    name: String,
    url: String,
    client: reqwest::Client,
}

impl SlackSink {
    /// A sink posting to `webhook_url` with the given request timeout.
    pub fn new(webhook_url: impl Into<String>, timeout: Duration) -> SlackSink {
        SlackSink::named("slack", webhook_url, timeout)
    }

    /// A second (third, …) Slack sink needs its own name, e.g. `slack-oncall`; the
    /// outbox and the metrics tell sinks apart by it.
    pub fn named(
        name: impl Into<String>,
        webhook_url: impl Into<String>,
        timeout: Duration,
    ) -> SlackSink {
        SlackSink {
            name: name.into(),
            url: webhook_url.into(),
            client: http_client(timeout),
        }
    }
}

impl Sink for SlackSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, batch: &'a [Alert]) -> SendFuture<'a> {
        Box::pin(async move {
            let body = payload(batch);
            let resp = self
                .client
                .post(&self.url)
                .json(&body)
                .send()
                .await
                .map_err(|e| http_transport_error("slack", e))?;
            http_status_error("slack", resp.status(), resp.headers())
        })
    }
}

/// Escapes the three characters Slack's mrkdwn treats as control characters.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// The webhook body for a batch: one alert, or a digest of several.
pub fn payload(batch: &[Alert]) -> Value {
    match batch {
        [one] => single(one),
        _ => digest(batch),
    }
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

fn single(a: &Alert) -> Value {
    let fields = format!(
        "*Key:* {}\n*Count:* {}\n*User:* {}\n*Host:* {}\n*First seen:* {}\n*Last seen:* {}\n\
         *Decision:* {}\n*Rule id:* {}\n*Tags:* {}",
        escape(&a.key),
        a.count,
        escape(&a.user),
        escape(&a.host),
        a.first_seen,
        a.last_seen,
        escape(&a.decision),
        escape(&a.rule_id),
        escape(&a.tags.join(", ")),
    );
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": truncate(&a.headline(), 150) } }),
        section(truncate(&escape(&a.description), SECTION_LIMIT)),
        section(fields),
    ];
    if !a.samples.is_empty() {
        let lines: Vec<String> = a.samples.iter().map(|s| escape(s)).collect();
        blocks.push(section(truncate(
            &format!("```{}```", lines.join("\n")),
            SECTION_LIMIT,
        )));
    }
    json!({ "text": escape(&a.headline()), "blocks": blocks })
}

fn digest(batch: &[Alert]) -> Value {
    let Some(summary) = DigestSummary::of(batch) else {
        return json!({ "text": "palisade: empty digest" });
    };
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate(&summary.headline(), 150) }
    })];
    for (rule, keys) in &summary.by_rule {
        blocks.push(section(format!(
            "*{}* — {} alerts",
            escape(rule),
            keys.len()
        )));
        // Every key is listed (field case 47): chunk them across sections.
        let mut chunk = String::new();
        for key in keys {
            let line = format!("{}\n", escape(key));
            if chunk.len() + line.len() > SECTION_LIMIT {
                blocks.push(section(std::mem::take(&mut chunk)));
            }
            chunk.push_str(&line);
        }
        if !chunk.is_empty() {
            blocks.push(section(chunk));
        }
    }
    if blocks.len() > MAX_BLOCKS {
        let dropped = blocks.len() - MAX_BLOCKS;
        blocks.truncate(MAX_BLOCKS);
        blocks.push(section(format!(
            "… {dropped} more blocks; see the webhook or email sink"
        )));
    }
    json!({ "text": escape(&summary.headline()), "blocks": blocks })
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max - 3;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::alert::outbox::tests::sample_alert;

    #[test]
    fn mrkdwn_control_characters_are_escaped() {
        assert_eq!(
            escape("<@U123> & <!channel>"),
            "&lt;@U123&gt; &amp; &lt;!channel&gt;"
        );
    }

    #[test]
    fn log_text_with_quotes_stays_valid_json_and_escaped() {
        let mut a = sample_alert("r1", "198.51.100.7", 0);
        a.samples = vec![r#"GET /?q="><script>alert(1)</script> HTTP/1.1"#.into()];
        let body = payload(&[a]);
        let text = serde_json::to_string(&body).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        let samples = back["blocks"][3]["text"]["text"].as_str().unwrap();
        assert!(samples.contains("&lt;script&gt;") && !samples.contains("<script>"));
    }

    #[test]
    fn notification_fallback_text_is_escaped() {
        let mut a = sample_alert("r1", "198.51.100.7", 0);
        a.key = "user.name=<!channel>".into();
        let body = payload(&[a]);
        assert!(body["text"].as_str().unwrap().contains("&lt;!channel&gt;"));
    }

    #[test]
    fn digest_lists_every_key() {
        let batch: Vec<Alert> = (0..300)
            .map(|i| sample_alert("r1", &format!("10.0.{}.{}", i / 256, i % 256), i))
            .collect();
        let text = serde_json::to_string(&payload(&batch)).unwrap();
        assert!(text.contains("300 alerts"));
        for a in &batch {
            assert!(text.contains(&a.key), "{} missing", a.key);
        }
    }
}
