//! Sinks against local stand-ins speaking the real wire formats (Slack incoming
//! webhook, signed generic webhook, Alertmanager v2, SMTP). Real time, short waits.

mod support;

use std::sync::Arc;
use std::time::Duration;

use palisade::detect::{Detection, DetectionState, Level, RuleMeta};
use palisade::event::Event;
use palisade::respond::alert::alertmanager::AlertmanagerSink;
use palisade::respond::alert::email::{EmailConfig, EmailSink, SmtpTls};
use palisade::respond::alert::slack::SlackSink;
use palisade::respond::alert::webhook::WebhookSink;
use palisade::respond::alert::{Alert, Outbox, OutboxConfig, Sink};
use support::Reply;

fn detection(
    rule_id: &str,
    description: &str,
    user: Option<&str>,
    host: Option<&str>,
) -> Detection {
    let mut ev = Event::new(
        Arc::from("nginx"),
        0,
        format!(
            "203.0.113.9 - - [12/May/2024:03:41:07 +0000] \"POST /login?user=amy&password=hunter2 HTTP/1.1\" 401 12 rule={rule_id}"
        ),
    );
    ev.source_ip = Some("203.0.113.9".parse().unwrap());
    ev.user_name = user.map(Into::into);
    if let Some(h) = host {
        ev.push_extra("host.name", h);
    }
    let t = jiff::Timestamp::from_second(1_715_485_267).unwrap();
    Detection {
        rule: Arc::new(RuleMeta {
            id: rule_id.into(),
            name: None,
            title: format!("Login brute force ({rule_id})"),
            level: Level::High,
            tags: vec!["attack.t1110".into()],
            description: description.into(),
        }),
        key: vec![("source.ip".into(), "203.0.113.9".into())],
        count: 12,
        first_seen: t,
        last_seen: t,
        samples: vec![ev],
        state: DetectionState::Fired,
    }
}

fn fast() -> OutboxConfig {
    OutboxConfig {
        min_send_interval: Duration::from_millis(50),
        backoff_base: Duration::from_millis(300),
        ..OutboxConfig::default()
    }
}

async fn wait_for(mut done: impl FnMut() -> bool, limit: Duration) {
    let start = std::time::Instant::now();
    while !done() && start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Field case 50: a normal alert, one without rule description and user, one without
/// host: exactly one POST each to Slack and to the webhook, placeholders filled in,
/// and no duplicate of the first alert after a restart.
#[tokio::test]
async fn alerts_missing_fields_are_still_sent_once_each() {
    let standin = support::start().await;
    standin.with(|s| s.secret = Some(b"hook-secret".to_vec()));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("palisade.db");
    let sinks = || -> Vec<Arc<dyn Sink>> {
        vec![
            Arc::new(SlackSink::new(
                standin.url("/slack"),
                Duration::from_secs(5),
            )),
            Arc::new(
                WebhookSink::new("webhook", standin.url("/hook"), Duration::from_secs(5))
                    .with_secret("hook-secret")
                    .with_header("X-Team", "ops"),
            ),
        ]
    };
    let alerts = [
        Alert::from_detection(
            &detection("a", "Many failed logins", Some("amy"), Some("shop")),
            "banned 1h",
            5,
        ),
        Alert::from_detection(&detection("b", "", None, Some("shop")), "alert only", 5),
        Alert::from_detection(
            &detection("c", "Many failed logins", Some("bob"), None),
            "simulated ban",
            5,
        ),
    ];
    let outbox = Outbox::open(&db, sinks(), fast()).unwrap();
    for a in &alerts {
        assert_eq!(outbox.enqueue(a).unwrap(), 2);
    }
    wait_for(|| standin.received().len() >= 6, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let got = standin.received();
    let slack: Vec<_> = got.iter().filter(|r| r.path == "/slack").collect();
    let hook: Vec<_> = got.iter().filter(|r| r.path == "/hook").collect();
    assert_eq!((slack.len(), hook.len()), (3, 3));
    assert_eq!(
        standin.with(|s| s.bad_signatures),
        0,
        "HMAC signature verified"
    );
    assert_eq!(hook[0].headers["x-team"], "ops");
    let slack_text = String::from_utf8_lossy(&slack[1].body);
    assert!(slack_text.contains("(no description)") && slack_text.contains("(unknown user)"));
    assert!(String::from_utf8_lossy(&hook[2].body).contains("(unknown host)"));
    assert!(
        !got.iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("hunter2")),
        "password leaked"
    );
    outbox.shutdown().await;

    let outbox = Outbox::open(&db, sinks(), fast()).unwrap();
    assert_eq!(
        outbox.enqueue(&alerts[0]).unwrap(),
        0,
        "restart re-announces nothing"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(standin.received().len(), 6);
}

/// A webhook post with the wrong secret is refused by the receiver (401, permanent).
#[tokio::test]
async fn webhook_signed_with_wrong_secret_is_rejected() {
    let standin = support::start().await;
    standin.with(|s| s.secret = Some(b"right".to_vec()));
    let sink = WebhookSink::new("webhook", standin.url("/hook"), Duration::from_secs(5))
        .with_secret("wrong");
    let a = Alert::from_detection(&detection("a", "d", None, None), "alert only", 5);
    let err = sink.send(&[a]).await.unwrap_err();
    assert_eq!((err.status, err.permanent), (Some(401), true));
    assert_eq!(standin.with(|s| s.bad_signatures), 1);
}

/// Slack's 429 carries `Retry-After`; the sink hands both to the outbox.
#[tokio::test]
async fn slack_429_reports_retry_after() {
    let standin = support::start().await;
    standin.push(Reply::TooMany {
        retry_after_secs: 3,
    });
    standin.push(Reply::Status(500));
    let sink = SlackSink::new(standin.url("/slack"), Duration::from_secs(5));
    let a = Alert::from_detection(&detection("a", "d", None, None), "alert only", 5);
    let err = sink.send(std::slice::from_ref(&a)).await.unwrap_err();
    assert_eq!(err.status, Some(429));
    assert_eq!(err.retry_after, Some(Duration::from_secs(3)));
    assert!(!err.permanent);
    let err = sink.send(std::slice::from_ref(&a)).await.unwrap_err();
    assert_eq!((err.status, err.permanent), (Some(500), false));
    sink.send(&[a]).await.unwrap();
}

/// A hanging webhook times out as a transient error instead of blocking forever.
#[tokio::test]
async fn hanging_webhook_times_out_transiently() {
    let standin = support::start().await;
    standin.push(Reply::Hang);
    let sink = WebhookSink::new("webhook", standin.url("/hook"), Duration::from_millis(300));
    let a = Alert::from_detection(&detection("a", "d", None, None), "alert only", 5);
    let err = sink.send(&[a]).await.unwrap_err();
    assert!(!err.permanent);
    assert_eq!(err.code_label(), "timeout");
}

/// Alertmanager accepts the body: an array of {labels, annotations, startsAt, endsAt,
/// generatorURL}.
#[tokio::test]
async fn alertmanager_receives_v2_alert_array() {
    let standin = support::start().await;
    let sink = AlertmanagerSink::new(
        &standin.url(""),
        "http://127.0.0.1:9900/",
        Duration::from_secs(5),
    );
    let batch = [
        Alert::from_detection(&detection("a", "d", None, None), "banned 1h", 5),
        Alert::from_detection(&detection("b", "d", None, None), "banned 1h", 5),
    ];
    sink.send(&batch).await.unwrap();
    let body = standin.received()[0].json();
    let arr = body.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["labels"]["severity"], "high");
    assert_eq!(arr[0]["labels"]["key"], "source.ip=203.0.113.9");
    for field in ["annotations", "startsAt", "endsAt", "generatorURL"] {
        assert!(!arr[0][field].is_null(), "{field} missing");
    }
}

fn smtp_config(port: u16, timeout: Duration) -> EmailConfig {
    EmailConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "palisade <palisade@example.test>".into(),
        to: vec!["ops@example.test".into()],
        timeout,
        root_cert_pem: None,
    }
}

/// Field case 54, time scaled by 1/10: the server delays its DATA reply by 1.5 s
/// (the report: 15 s). A 3 s timeout (report: 30 s) delivers on the first try; a 1 s
/// timeout (report: 10 s) fails, is retried with back-off and delivered, not dropped.
/// Slack in the same outbox is served within 1 s regardless.
#[tokio::test]
async fn slow_smtp_data_is_retried_not_dropped_and_slack_is_not_delayed() {
    let standin = support::start().await;
    for (timeout, attempts) in [
        (Duration::from_secs(3), 1usize),
        (Duration::from_secs(1), 2),
    ] {
        let smtp = support::start_smtp(Duration::from_millis(1500), 1).await;
        let dir = tempfile::tempdir().unwrap();
        let before = standin.received().len();
        let sinks: Vec<Arc<dyn Sink>> = vec![
            Arc::new(EmailSink::new(smtp_config(smtp.addr.port(), timeout)).unwrap()),
            Arc::new(SlackSink::new(
                standin.url("/slack"),
                Duration::from_secs(5),
            )),
        ];
        let outbox = Outbox::open(&dir.path().join("p.db"), sinks, fast()).unwrap();
        let start = std::time::Instant::now();
        outbox
            .enqueue(&Alert::from_detection(
                &detection("a", "d", None, None),
                "banned 1h",
                5,
            ))
            .unwrap();
        wait_for(|| standin.received().len() > before, Duration::from_secs(5)).await;
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "slack waited for SMTP"
        );

        wait_for(
            || outbox.counters_of("email").unwrap().sent == 1,
            Duration::from_secs(15),
        )
        .await;
        let c = outbox.counters_of("email").unwrap();
        assert_eq!(c.sent, 1, "timeout {timeout:?}: mail not delivered: {c:?}");
        assert_eq!(*smtp.data_commands.lock().unwrap(), attempts);
        if attempts == 2 {
            assert_eq!(c.errors.get("timeout"), Some(&1));
        }
        outbox.shutdown().await;
    }
}

/// Field case 53: 587 + implicit TLS is refused before any connection, naming both.
#[test]
fn smtp_port_tls_mismatch_fails_config_check() {
    let mut cfg = smtp_config(587, Duration::from_secs(30));
    cfg.host = "smtp.example.test".into();
    cfg.tls = SmtpTls::Implicit;
    let err = EmailSink::new(cfg)
        .err()
        .expect("mismatch rejected")
        .to_string();
    assert!(err.contains("587") && err.contains("implicit"), "{err}");
}

/// Field case 52 end to end over HTTP (Retry-After scaled to 1 s): two 429s, then
/// 200; the alert arrives once, retries wait Retry-After, and the 429s are counted.
#[tokio::test]
async fn slack_429_over_http_is_retried_after_retry_after() {
    let standin = support::start().await;
    standin.push(Reply::TooMany {
        retry_after_secs: 1,
    });
    standin.push(Reply::TooMany {
        retry_after_secs: 1,
    });
    let dir = tempfile::tempdir().unwrap();
    let sinks: Vec<Arc<dyn Sink>> = vec![Arc::new(SlackSink::new(
        standin.url("/slack"),
        Duration::from_secs(5),
    ))];
    let outbox = Outbox::open(&dir.path().join("p.db"), sinks, fast()).unwrap();
    outbox
        .enqueue(&Alert::from_detection(
            &detection("a", "d", None, None),
            "banned 1h",
            5,
        ))
        .unwrap();
    wait_for(
        || outbox.counters_of("slack").unwrap().sent == 1,
        Duration::from_secs(10),
    )
    .await;
    let got = standin.received();
    assert_eq!(got.len(), 3);
    for pair in got.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_secs(1),
            "retried before Retry-After"
        );
    }
    let c = outbox.counters_of("slack").unwrap();
    assert_eq!((c.sent, c.errors.get("429").copied()), (1, Some(2)));
}

#[test]
fn two_sinks_with_one_name_are_refused() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let sinks: Vec<Arc<dyn Sink>> = vec![
        Arc::new(SlackSink::new(
            "http://127.0.0.1:9/a",
            Duration::from_secs(1),
        )),
        Arc::new(SlackSink::new(
            "http://127.0.0.1:9/b",
            Duration::from_secs(1),
        )),
    ];
    let err = Outbox::open(&dir.path().join("p.db"), sinks, fast())
        .err()
        .unwrap();
    assert!(err.to_string().contains("\"slack\""), "{err}");
}
