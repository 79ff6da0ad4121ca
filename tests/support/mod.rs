//! Local stand-ins for the services palisade talks to: Slack incoming webhooks, a
//! generic webhook receiver (verifying the HMAC signature), Alertmanager's v2 API,
//! AbuseIPDB's check endpoint and a minimal SMTP server. All bind 127.0.0.1:0 and can
//! fail on command (500, 429 with Retry-After, hang, slow DATA).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What the stand-in answers to the next request.
#[derive(Debug, Clone)]
pub enum Reply {
    Ok,
    Status(u16),
    TooMany {
        retry_after_secs: u64,
    },
    /// Never answers (the client's timeout must fire).
    Hang,
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("stand-in received JSON")
    }
}

#[derive(Default)]
pub struct Inner {
    pub script: VecDeque<Reply>,
    pub received: Vec<Received>,
    /// Webhook HMAC secret; requests with a bad signature get 401.
    pub secret: Option<Vec<u8>>,
    pub bad_signatures: usize,
    /// AbuseIPDB: API key expected in `Key`, and the score to answer.
    pub api_key: String,
    pub score: u8,
    /// AbuseIPDB: extra headers on successful answers.
    pub rate_headers: Vec<(String, String)>,
}

/// A running stand-in HTTP server.
#[derive(Clone)]
pub struct StandIn {
    pub addr: SocketAddr,
    pub inner: Arc<Mutex<Inner>>,
}

impl StandIn {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn push(&self, reply: Reply) {
        self.inner.lock().unwrap().script.push_back(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap())
    }
}

/// Starts a stand-in serving `/slack`, `/hook`, `/api/v2/alerts` and `/api/v2/check`.
pub async fn start() -> StandIn {
    let inner = Arc::new(Mutex::new(Inner::default()));
    let app = Router::new()
        .route("/slack", post(slack))
        .route("/hook", post(hook))
        .route("/api/v2/alerts", post(alertmanager))
        .route("/api/v2/check", get(abuseipdb))
        .with_state(inner.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    StandIn { addr, inner }
}

type Shared = State<Arc<Mutex<Inner>>>;

fn record(inner: &Arc<Mutex<Inner>>, path: &str, headers: HeaderMap, body: Bytes) -> Reply {
    let mut g = inner.lock().unwrap();
    g.received.push(Received {
        at: Instant::now(),
        path: path.into(),
        headers,
        body,
    });
    g.script.pop_front().unwrap_or(Reply::Ok)
}

async fn scripted(reply: Reply, ok: Response) -> Response {
    match reply {
        Reply::Ok => ok,
        Reply::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Reply::TooMany { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", retry_after_secs.to_string())],
            "rate_limited",
        )
            .into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            ok
        }
    }
}

/// Slack answers `ok` as text/plain; it rejects bodies without `text` or `blocks`.
async fn slack(State(inner): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let valid = serde_json::from_slice::<serde_json::Value>(&body)
        .is_ok_and(|v| v.get("text").is_some() || v.get("blocks").is_some());
    let reply = record(&inner, "/slack", headers, body);
    if !valid {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    }
    scripted(reply, (StatusCode::OK, "ok").into_response()).await
}

async fn hook(State(inner): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let secret = inner.lock().unwrap().secret.clone();
    if let Some(secret) = secret {
        let sig = headers
            .get("x-palisade-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !palisade::respond::alert::webhook::verify(&secret, &body, sig) {
            inner.lock().unwrap().bad_signatures += 1;
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    let reply = record(&inner, "/hook", headers, body);
    scripted(reply, StatusCode::NO_CONTENT.into_response()).await
}

/// Alertmanager v2 validates that the body is an array of objects with `labels`.
async fn alertmanager(State(inner): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let valid = serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|v| {
        v.as_array()
            .is_some_and(|a| a.iter().all(|x| x["labels"].is_object()))
    });
    let reply = record(&inner, "/api/v2/alerts", headers, body);
    if !valid {
        return (StatusCode::BAD_REQUEST, "invalid alerts").into_response();
    }
    scripted(reply, StatusCode::OK.into_response()).await
}

#[derive(serde::Deserialize)]
struct CheckQuery {
    #[serde(rename = "ipAddress")]
    ip_address: String,
    #[serde(rename = "maxAgeInDays")]
    max_age_in_days: Option<u32>,
}

async fn abuseipdb(
    State(inner): Shared,
    Query(q): Query<CheckQuery>,
    headers: HeaderMap,
) -> Response {
    let key_ok = {
        let g = inner.lock().unwrap();
        headers.get("key").and_then(|v| v.to_str().ok()) == Some(g.api_key.as_str())
            && headers.get("accept").and_then(|v| v.to_str().ok()) == Some("application/json")
    };
    let reply = record(&inner, "/api/v2/check", headers, Bytes::new());
    if !key_ok {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"errors":[{"detail":"Authentication failed"}]}"#,
        )
            .into_response();
    }
    let (score, extra) = {
        let g = inner.lock().unwrap();
        (g.score, g.rate_headers.clone())
    };
    let body = serde_json::json!({ "data": {
        "ipAddress": q.ip_address,
        "isPublic": true,
        "abuseConfidenceScore": score,
        "totalReports": 12,
        "maxAgeInDays": q.max_age_in_days,
    }});
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    for (k, v) in extra {
        resp.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    scripted(reply, resp).await
}

/// A minimal SMTP server (plaintext, RFC 5321 happy path) that can delay its reply to
/// the first `slow_data` DATA commands by `delay`.
pub struct SmtpStandIn {
    pub addr: SocketAddr,
    pub messages: Arc<Mutex<Vec<String>>>,
    pub data_commands: Arc<Mutex<usize>>,
}

pub async fn start_smtp(delay: Duration, slow_data: usize) -> SmtpStandIn {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let messages = Arc::new(Mutex::new(Vec::new()));
    let data_commands = Arc::new(Mutex::new(0usize));
    let (m, d) = (messages.clone(), data_commands.clone());
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            let (m, d) = (m.clone(), d.clone());
            tokio::spawn(smtp_session(sock, m, d, delay, slow_data));
        }
    });
    SmtpStandIn {
        addr,
        messages,
        data_commands,
    }
}

async fn smtp_session(
    sock: tokio::net::TcpStream,
    messages: Arc<Mutex<Vec<String>>>,
    data_commands: Arc<Mutex<usize>>,
    delay: Duration,
    slow_data: usize,
) {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    let _ = w.write_all(b"220 standin.test ESMTP ready\r\n").await;
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-standin.test\r\n250 8BITMIME\r\n",
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
            "DATA" => {
                let _ = w
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await;
                let mut body = String::new();
                while let Ok(Some(l)) = lines.next_line().await {
                    if l == "." {
                        break;
                    }
                    body.push_str(&l);
                    body.push('\n');
                }
                let n = {
                    let mut g = data_commands.lock().unwrap();
                    *g += 1;
                    *g
                };
                if n <= slow_data {
                    tokio::time::sleep(delay).await;
                }
                messages.lock().unwrap().push(body);
                b"250 OK queued\r\n"
            }
            "QUIT" => {
                let _ = w.write_all(b"221 Bye\r\n").await;
                return;
            }
            _ => b"502 Command not implemented\r\n",
        };
        if w.write_all(reply).await.is_err() {
            return;
        }
    }
}
