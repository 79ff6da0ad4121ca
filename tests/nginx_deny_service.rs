//! Field case 17 against a real nginx: the client arrives through a proxy/CDN, nginx
//! takes the real address from `X-Forwarded-For`, and a palisade ban written by the
//! `[respond.nginx]` deny-list writer (include file + reload argv) makes nginx answer
//! that client 403 while everybody else still gets 200; lifting the ban lets it back in.
//!
//! nginx runs as a child process with its own prefix, configuration, logs and pid file
//! in a temporary directory, listening on 127.0.0.1 only. Needs the `nginx` binary
//! (Debian package `nginx`; tools/test.sh installs it). Run with
//! `cargo test --features service-tests --test nginx_deny_service`.
#![cfg(feature = "service-tests")]

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use palisade::detect::{Detection, DetectionState, Level, RuleMeta};
use palisade::event::Event;
use palisade::respond::Responder;
use palisade::respond::config::RespondConfig;
use palisade::respond::decision::DecisionKind;

const BANNED: &str = "203.0.113.77";
const BYSTANDER: &str = "198.51.100.5";

/// A running nginx; stopped (and its workers with it) when dropped, even on panic.
struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its workers; SIGKILL alone would orphan them.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// The global arguments that point nginx at this instance's prefix, config and log.
    fn args(dir: &Path) -> Vec<String> {
        let p = |name: &str| dir.join(name).display().to_string();
        let prefix = format!("{}/", dir.display());
        vec![
            "-p".into(),
            prefix,
            "-c".into(),
            p("nginx.conf"),
            "-e".into(),
            p("error.log"),
        ]
    }

    /// The reload command palisade runs after rewriting the deny file.
    fn reload_argv(&self) -> Vec<String> {
        let mut argv = vec!["nginx".to_string()];
        argv.extend(Nginx::args(&self.dir));
        argv.extend(["-s".to_string(), "reload".to_string()]);
        argv
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx behind a CDN: trusts 127.0.0.1 to name the client in X-Forwarded-For, and
/// includes palisade's deny file in the server block. `/` is a static page, not
/// `return 200`: `return` answers in the rewrite phase, before `deny` is ever checked.
/// `user root` because the workers read the page from the private temporary directory
/// (nginx ignores the directive, with a warning, when not started as root).
fn nginx_conf(dir: &Path, port: u16, deny: &Path) -> String {
    let d = dir.display();
    format!(
        "user root;\n\
         worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
         access_log {d}/access.log;\n\
         server {{\n\
         listen 127.0.0.1:{port};\n\
         set_real_ip_from 127.0.0.1;\n\
         real_ip_header X-Forwarded-For;\n\
         include {deny};\n\
         root {d}/www;\n\
         location = / {{ try_files /index.html =404; }}\n\
         }}\n\
         }}\n",
        deny = deny.display()
    )
}

/// Writes the configuration and an empty deny file (as an operator would before
/// adding the include), starts nginx in the foreground and waits until it accepts.
fn start_nginx(dir: &Path, deny: &Path) -> Nginx {
    let port = free_port();
    fs::write(deny, "").unwrap();
    fs::create_dir(dir.join("www")).unwrap();
    fs::write(dir.join("www/index.html"), "ok\n").unwrap();
    fs::write(dir.join("nginx.conf"), nginx_conf(dir, port, deny)).unwrap();
    let child = Command::new("nginx")
        .args(Nginx::args(dir))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `nginx` ({e}): the service tests need nginx on PATH \
                 (Debian package `nginx`: apt-get install nginx, or run tools/test.sh)"
            )
        });
    let mut nginx = Nginx {
        child,
        dir: dir.to_path_buf(),
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return nginx;
        }
        if let Ok(Some(status)) = nginx.child.try_wait() {
            panic!("nginx exited ({status}) at start:\n{}", nginx.error_log());
        }
        assert!(
            Instant::now() < deadline,
            "nginx did not listen on 127.0.0.1:{port} within 10 s:\n{}",
            nginx.error_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The status code nginx answers `GET /` from a proxy naming `client`; a fresh
/// connection each time so a reloaded worker serves it.
fn status_for(port: u16, client: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to nginx");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: {client}\r\n\
         Connection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split(' ').nth(1).unwrap_or_default();
    status
        .parse()
        .unwrap_or_else(|_| panic!("not an HTTP response: {resp:?}"))
}

/// Polls for up to 3 s until `client` gets `want` (the reload is asynchronous: old
/// workers finish while new ones start); returns the last status seen.
fn wait_for_status(port: u16, client: &str, want: u16) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let got = status_for(port, client);
        if got == want || Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A high-level brute-force detection keyed by source.ip whose sample shows the
/// client arrived through the proxy at 127.0.0.1.
fn proxied_bruteforce(client: &str) -> Detection {
    let now = jiff::Timestamp::now();
    Detection {
        rule: Arc::new(RuleMeta {
            id: "web_login_bruteforce".into(),
            name: Some("failed-login-brute-force".into()),
            title: "Failed-login brute force".into(),
            level: Level::High,
            tags: vec!["attack.t1110".into()],
            description: String::new(),
        }),
        key: vec![("source.ip".into(), client.into())],
        count: 3,
        first_seen: now,
        last_seen: now,
        samples: vec![Event {
            source_ip: Some(client.parse().unwrap()),
            peer_ip: Some("127.0.0.1".parse().unwrap()),
            ..Event::default()
        }],
        state: DetectionState::Fired,
    }
}

/// The responder an operator configures: no firewall, the nginx writer on `deny`
/// with the real reload command, the shipped policy (high detections ban).
fn responder(dir: &Path, deny: &Path, reload: &[String]) -> Responder {
    let text = format!(
        "backend = \"none\"\n[nginx]\ndeny_file = {}\nreload = {}\n",
        toml::Value::String(deny.display().to_string()),
        toml::Value::Array(reload.iter().cloned().map(toml::Value::String).collect()),
    );
    let cfg: RespondConfig = toml::from_str(&text).unwrap();
    let proxy: IpNet = "127.0.0.1/32".parse().unwrap();
    Responder::from_config(&cfg, &dir.join("bans.db"), &[], &[proxy]).unwrap()
}

#[test]
fn proxied_client_ban_reaches_real_nginx_and_next_request_gets_403() {
    // Field case 17: a firewall ban cannot stop a client that arrives via a proxy;
    // the ban has to land in nginx, which knows the real client from X-Forwarded-For.
    let dir = tempfile::tempdir().unwrap();
    let deny = dir.path().join("palisade-deny.conf");
    let nginx = start_nginx(dir.path(), &deny);
    assert_eq!(status_for(nginx.port, BANNED), 200, "before the ban");

    let mut r = responder(dir.path(), &deny, &nginx.reload_argv());
    let decisions = r.on_detection(&proxied_bruteforce(BANNED));
    assert!(
        decisions.iter().any(
            |d| matches!(&d.kind, DecisionKind::Ban(b) if b.scope.to_string() == "203.0.113.77/32")
        ),
        "no ban decided: {decisions:?}"
    );
    assert_eq!(r.stats().proxy_warnings, 0);
    let got = wait_for_status(nginx.port, BANNED, 403);
    assert_eq!(
        got,
        403,
        "banned client not denied by nginx; deny file:\n{}\nerror.log:\n{}",
        fs::read_to_string(&deny).unwrap_or_default(),
        nginx.error_log()
    );
    assert_eq!(status_for(nginx.port, BYSTANDER), 200, "bystander denied");

    let lifted = r
        .ban_remove("203.0.113.77/32".parse().unwrap(), "test")
        .unwrap();
    assert_eq!(lifted.len(), 1, "{lifted:?}");
    let got = wait_for_status(nginx.port, BANNED, 200);
    assert_eq!(
        got,
        200,
        "unbanned client still denied; deny file:\n{}",
        fs::read_to_string(&deny).unwrap_or_default()
    );
}
