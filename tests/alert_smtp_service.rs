//! Email sink against a real SMTP server (aiosmtpd) on loopback, with STARTTLS and
//! implicit TLS using a self-signed certificate generated here.
//!
//! Needs `python3 -m aiosmtpd` (`pip install aiosmtpd`, or Debian's
//! `python3-aiosmtpd` when `python3` is Debian's). Run with
//! `cargo test --features service-tests --test alert_smtp_service`.
#![cfg(feature = "service-tests")]

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use palisade::detect::Level;
use palisade::respond::alert::email::{EmailConfig, EmailSink, SmtpTls};
use palisade::respond::alert::{Alert, Outbox, OutboxConfig, SendError, SendFuture, Sink};

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Everything the server printed (aiosmtpd's Debugging handler prints each mail).
    fn output(mut self) -> String {
        let _ = self.child.kill();
        let mut out = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        out
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts aiosmtpd with `tls_args`, waiting until it accepts connections.
fn start_aiosmtpd(tls_args: &[&str]) -> Server {
    let port = free_port();
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(tls_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 not found: the service tests need `python3 -m aiosmtpd`");
    let server = Server { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("aiosmtpd did not listen on 127.0.0.1:{port}; install it with `pip install aiosmtpd`");
}

/// A self-signed certificate for `localhost`: (cert PEM, cert path, key path).
fn certificate(dir: &tempfile::TempDir) -> (String, String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    let (cp, kp) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cp, &cert).unwrap();
    std::fs::write(&kp, key).unwrap();
    (cert, cp.display().to_string(), kp.display().to_string())
}

fn config(port: u16, tls: SmtpTls, cert: &str) -> EmailConfig {
    EmailConfig {
        host: "localhost".into(),
        port,
        tls,
        username: None,
        password: None,
        from: "palisade <palisade@example.test>".into(),
        to: vec!["ops@example.test".into()],
        timeout: Duration::from_secs(10),
        root_cert_pem: Some(cert.to_owned()),
    }
}

fn alert(rule: &str) -> Alert {
    let t = jiff::Timestamp::from_second(1_715_485_267).unwrap();
    Alert {
        idempotency_key: format!("svc/{rule}"),
        rule_id: rule.into(),
        rule_title: format!("Service test {rule}"),
        level: Level::High,
        tags: vec![],
        description: "(no description)".into(),
        key: "source.ip=203.0.113.9".into(),
        ip: Some("203.0.113.9".into()),
        user: "(unknown user)".into(),
        host: "(unknown host)".into(),
        count: 1,
        first_seen: t,
        last_seen: t,
        samples: vec![],
        decision: "banned 1h".into(),
        recap: false,
    }
}

#[tokio::test]
async fn starttls_mail_is_delivered_to_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, cp, kp) = certificate(&dir);
    let server = start_aiosmtpd(&["--tlscert", &cp, "--tlskey", &kp]);
    let sink = EmailSink::new(config(server.port, SmtpTls::Starttls, &cert)).unwrap();
    sink.send(&[alert("starttls")]).await.unwrap();
    let out = server.output();
    assert!(
        out.contains("Service test starttls"),
        "mail not seen by aiosmtpd: {out}"
    );
}

#[tokio::test]
async fn implicit_tls_mail_is_delivered_to_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, cp, kp) = certificate(&dir);
    let server = start_aiosmtpd(&["--smtpscert", &cp, "--smtpskey", &kp]);
    let sink = EmailSink::new(config(server.port, SmtpTls::Implicit, &cert)).unwrap();
    sink.send(&[alert("implicit")]).await.unwrap();
    assert!(server.output().contains("Service test implicit"));
}

/// Records posts; stands in for Slack beside a failing email sink.
struct Recorder(std::sync::Mutex<usize>);

impl Sink for Recorder {
    fn name(&self) -> &str {
        "slack"
    }

    fn send<'a>(&'a self, _batch: &'a [Alert]) -> SendFuture<'a> {
        Box::pin(async move {
            *self.0.lock().unwrap() += 1;
            Ok::<(), SendError>(())
        })
    }
}

/// Field case 53, live half: implicit TLS against a STARTTLS server fails, counts an
/// email send error, and Slack is delivered anyway.
#[tokio::test]
async fn tls_mode_mismatch_counts_email_error_and_spares_slack() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, cp, kp) = certificate(&dir);
    let server = start_aiosmtpd(&["--tlscert", &cp, "--tlskey", &kp]);
    let mut cfg = config(server.port, SmtpTls::Implicit, &cert);
    cfg.timeout = Duration::from_secs(3);
    let slack = Arc::new(Recorder(std::sync::Mutex::new(0)));
    let sinks: Vec<Arc<dyn Sink>> = vec![Arc::new(EmailSink::new(cfg).unwrap()), slack.clone()];
    let outbox = Outbox::open(&dir.path().join("p.db"), sinks, OutboxConfig::default()).unwrap();
    outbox.enqueue(&alert("mismatch")).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        *slack.0.lock().unwrap(),
        1,
        "slack delivered despite email failing"
    );
    for _ in 0..50 {
        if outbox
            .counters_of("email")
            .unwrap()
            .errors
            .values()
            .sum::<u64>()
            >= 1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let email = outbox.counters_of("email").unwrap();
    assert!(email.errors.values().sum::<u64>() >= 1, "{email:?}");
    assert_eq!(email.sent, 0);
    outbox.shutdown().await;
    drop(server);
}
