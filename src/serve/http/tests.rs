//! HTTP server tests, in-process on 127.0.0.1:0 with a plain HTTP/1.1 client.

use std::io::{Read, Write};
use std::net::TcpStream;

use super::*;

/// Sends one request and returns (status code, headers+body text).
fn request(addr: SocketAddr, method: &str, path: &str, extra: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to test server");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n{extra}\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {out:?}"));
    (code, out)
}

fn start(token: Option<&str>, store_path: Option<PathBuf>) -> ServerHandle {
    let opts = ServerOptions {
        listen: "127.0.0.1:0".into(),
        allow_remote: false,
        api_token: token.map(String::from),
        store_path,
    };
    spawn_with(opts, Arc::new(Metrics::default())).expect("server starts")
}

#[test]
fn metrics_endpoint_serves_openmetrics_text() {
    let metrics = Arc::new(Metrics::default());
    metrics.inc_blocked_ips();
    let opts = ServerOptions {
        listen: "127.0.0.1:0".into(),
        ..ServerOptions::default()
    };
    let server = spawn_with(opts, metrics).unwrap();
    let (code, text) = request(server.local_addr(), "GET", "/metrics", "");
    assert_eq!(code, 200, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text")
    );
    assert!(text.contains("blocked_ips_total 1"), "{text}");
    assert!(text.contains("# EOF"), "{text}");
    server.shutdown().unwrap();
}

#[test]
fn healthz_reports_store_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    drop(Store::open(&db).unwrap());
    let ok = start(None, Some(db));
    let (code, text) = request(ok.local_addr(), "GET", "/healthz", "");
    assert_eq!(code, 200, "{text}");
    assert!(text.contains(r#""store":"ok""#), "{text}");

    let broken = start(None, Some(dir.path().join("missing.db")));
    let (code, text) = request(broken.local_addr(), "GET", "/healthz", "");
    assert_eq!(code, 503, "{text}");
    assert!(text.contains("missing.db"), "{text}");
}

#[test]
fn mutating_route_is_refused_without_the_right_token() {
    let server = start(Some("s3cret-token"), None);
    let addr = server.local_addr();
    let (code, text) = request(addr, "POST", "/api/v1/reload", "");
    assert_eq!(code, 401, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{text}"
    );
    let (code, _) = request(
        addr,
        "POST",
        "/api/v1/reload",
        "Authorization: Bearer wrong\r\n",
    );
    assert_eq!(code, 401);
    let (code, _) = request(
        addr,
        "POST",
        "/api/v1/reload",
        "Authorization: Bearer s3cret\r\n",
    );
    assert_eq!(code, 401, "a prefix of the token must not pass");
    assert!(
        server.reload_requests().try_recv().is_err(),
        "refused calls reached the pipeline"
    );

    let auth = "Authorization: Bearer s3cret-token\r\n";
    let (code, text) = request(addr, "POST", "/api/v1/reload", auth);
    assert_eq!(code, 202, "{text}");
    assert!(
        server.reload_requests().try_recv().is_ok(),
        "reload not delivered"
    );
}

#[test]
fn mutating_route_is_disabled_when_no_token_is_configured() {
    let server = start(None, None);
    let auth = "Authorization: Bearer anything\r\n";
    let (code, text) = request(server.local_addr(), "POST", "/api/v1/reload", auth);
    assert_eq!(code, 403, "{text}");
    assert!(text.contains(TOKEN_ENV), "{text}");
}

#[test]
fn non_loopback_listen_is_refused_unless_allowed() {
    let metrics = Arc::new(Metrics::default());
    for listen in ["0.0.0.0:0", "192.0.2.10:9464", "[::]:0"] {
        let err = spawn(listen, metrics.clone(), None).unwrap_err();
        assert!(
            matches!(err, ServeError::NotLoopback { .. }),
            "{listen}: {err}"
        );
        assert!(err.to_string().contains("allow_remote"), "{err}");
    }
    let err = spawn("not an address", metrics, None).unwrap_err();
    assert!(matches!(err, ServeError::BadAddress { .. }), "{err}");
    // The check itself, without binding anything remote:
    assert!(resolve("192.0.2.10:9464", true).is_ok());
}

#[test]
fn port_in_use_is_a_bind_error() {
    let first = start(None, None);
    let listen = first.local_addr().to_string();
    let err = spawn(&listen, Arc::new(Metrics::default()), None).unwrap_err();
    assert!(matches!(err, ServeError::Bind { .. }), "{err}");
}

#[test]
fn token_comparison_checks_every_byte_and_length() {
    assert!(constant_time_eq("abc", "abc"));
    assert!(!constant_time_eq("abc", "abd"));
    assert!(!constant_time_eq("ab", "abc"));
    assert!(!constant_time_eq("abcd", "abc"));
    assert!(!constant_time_eq("", "abc"));
}
