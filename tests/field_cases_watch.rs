//! Field cases through the real daemon: `palisade watch` follows a file through a
//! rename-and-create rotation and a copytruncate, bans at the configured line, keeps
//! following, and exports the rotation/truncation/lag metrics; `palisade ban list`
//! shows the ban afterwards. Lines carry the current time so bans are live.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Watcher {
    child: Child,
    rx: Receiver<Value>,
}

impl Watcher {
    fn start(config: &Path, metrics: SocketAddr) -> Watcher {
        let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .arg("-c")
            .arg(config)
            .args(["watch", "--json", "--metrics-listen"])
            .arg(metrics.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start palisade watch");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        Watcher { child, rx }
    }

    /// The next `fired` detection of rule `title`, waiting at most `limit`.
    fn fired(&self, title: &str, limit: Duration) -> Option<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let d = self.rx.recv_timeout(left).ok()?;
            if d["state"] == "fired" && d["rule"]["title"] == title {
                return Some(d);
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn scrape(addr: SocketAddr) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Waits until the metrics page contains `series` (a series with its value).
fn wait_metric(addr: SocketAddr, series: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = scrape(addr);
        if page.contains(series) || Instant::now() > deadline {
            return page;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A failed login (401 on /login) for `ip`, stamped now.
fn failure(ip: &str) -> String {
    let now = jiff::Timestamp::now().strftime("%d/%b/%Y:%H:%M:%S +0000");
    format!("{ip} - - [{now}] \"POST /login HTTP/1.1\" 401 12 \"-\" \"curl/8.5.0\"\n")
}

fn sqli(ip: &str) -> String {
    let now = jiff::Timestamp::now().strftime("%d/%b/%Y:%H:%M:%S +0000");
    format!(
        "{ip} - - [{now}] \"GET /item?id=1%20UNION%20SELECT%20pass%20FROM%20users-- HTTP/1.1\" 200 120 \"-\" \"-\"\n"
    )
}

#[test]
fn rotation_keeps_reading_renamed_file_then_new_file() {
    // Field case 2 (rule 4 failures / 10 min): 2 failures, rename to access.log.1, a
    // 3rd appended to the renamed file, a new access.log with the 4th → the detection
    // fires with all 4 counted and the address is banned; the new file is followed (a
    // 5th line is seen). Field case 4: a copytruncate afterwards is counted once and
    // the refill is read. Field case 36: the lag gauge is exported.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let config = dir.path().join("palisade.toml");
    fs::write(
        &config,
        format!(
            "[[sources]]\nname = \"nginx\"\npath = \"{}\"\nparser = {{ format = \"nginx\", log_format = \"combined\" }}\n\
             [store]\npath = \"{}\"\n[watch]\npoll_interval = \"100ms\"\n\
             [rules.overrides.\"web_login_bruteforce\"]\nthreshold = 4\ntimespan = \"10m\"\n\
             [respond]\nallowlist_host_addresses = false\n\
             [[respond.policy]]\nname = \"brute\"\nrules = [\"web_login_bruteforce\"]\naction = \"ban\"\n",
            log.display(),
            dir.path().join("palisade.db").display()
        ),
    )
    .unwrap();
    fs::write(&log, failure("203.0.113.40").repeat(2)).unwrap();
    let metrics = free_port();
    let w = Watcher::start(&config, metrics);
    let page = wait_metric(metrics, "palisade_lines_read_total{source=\"nginx\"} 2");
    assert!(
        page.contains("lines_read_total{source=\"nginx\"} 2"),
        "{page}"
    );

    let rotated = dir.path().join("access.log.1");
    fs::rename(&log, &rotated).unwrap();
    append(&rotated, &failure("203.0.113.40"));
    File::create(&log).unwrap();
    append(&log, &failure("203.0.113.40"));
    let d = w
        .fired("Web Login Brute Force", Duration::from_secs(10))
        .expect("no detection after the rotation");
    assert_eq!(d["key"]["source.ip"], "203.0.113.40");
    assert_eq!(d["count"], 4, "{d}");

    append(&log, &sqli("203.0.113.40"));
    let d = w
        .fired("SQL Injection Attempt", Duration::from_secs(10))
        .expect("the 5th line (in the new file) was not seen");
    assert_eq!(d["key"]["source.ip"], "203.0.113.40");
    let page = wait_metric(metrics, "palisade_lines_read_total{source=\"nginx\"} 5");
    assert!(
        page.contains("palisade_lines_read_total{source=\"nginx\"} 5"),
        "the 5th line (new file) was not read: {page}"
    );
    assert!(
        page.contains("palisade_log_rotations_total{source=\"nginx\"} 1"),
        "{page}"
    );
    assert!(
        page.contains("palisade_processing_lag_seconds{source=\"nginx\"}"),
        "{page}"
    );

    // copytruncate: copy away, truncate, refill with 3 lines before the next read.
    fs::copy(&log, dir.path().join("access.log.2")).unwrap();
    let refill = failure("192.0.2.44").repeat(3);
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    f.write_all(refill.as_bytes()).unwrap();
    drop(f);
    let page = wait_metric(metrics, "palisade_lines_read_total{source=\"nginx\"} 8");
    assert!(
        page.contains("palisade_lines_read_total{source=\"nginx\"} 8"),
        "refill not read: {page}"
    );
    assert!(
        page.contains("palisade_log_truncations_total{source=\"nginx\"} 1"),
        "{page}"
    );
    drop(w);

    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("-c")
        .arg(&config)
        .args(["ban", "list", "--json"])
        .output()
        .unwrap();
    let bans: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let scopes: Vec<&str> = bans.iter().filter_map(|b| b["scope"].as_str()).collect();
    assert_eq!(scopes, ["203.0.113.40/32"], "{bans:?}");
}

fn app_failure(ip: &str) -> String {
    let now = jiff::Timestamp::now();
    format!("{{\"time\":\"{now}\",\"msg\":\"login failed\",\"user\":\"kim\",\"ip\":\"{ip}\"}}\n")
}

const APP_RULES: &str = r#"
title: App Login Failed
id: 6a0f7a52-9a57-4d0e-bc38-0d2b0f9e4c11
name: app_login_failed
detection:
    selection:
        event.action: login_failed
    condition: selection
level: low
---
title: App Login Brute Force
id: 3f3e7a0e-2a47-4b0c-9b61-55b1d3f0a9d2
name: app_login_bruteforce
correlation:
    type: event_count
    rules:
        - app_login_failed
    group-by:
        - source.ip
    timespan: 10m
    condition:
        gte: 3
level: high
"#;

fn palisade(config: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn restart_replay_does_not_recount_failures_before_a_manual_unban() {
    // Field case 19: 198.51.100.61 banned permanently, `palisade unban`, restart; the
    // restart reads the log again from the start (here: a renamed source has no
    // checkpoint), holding the 3 old failures: no ban. New failures count from 1.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let rules = dir.path().join("rules");
    fs::create_dir(&rules).unwrap();
    fs::write(rules.join("app.yml"), APP_RULES).unwrap();
    let config = dir.path().join("palisade.toml");
    let write_config = |source: &str| {
        fs::write(
            &config,
            format!(
                "[[sources]]\nname = \"{source}\"\npath = \"{}\"\nparser = {{ format = \"json\" }}\n\
                 [store]\npath = \"{}\"\n[watch]\npoll_interval = \"100ms\"\n\
                 [rules]\ndirs = [\"{}\"]\n\
                 [respond]\nallowlist_host_addresses = false\nescalation = [\"permanent\"]\n\
                 [[respond.policy]]\nname = \"brute\"\nrules = [\"app_login_bruteforce\"]\naction = \"ban\"\n",
                log.display(),
                dir.path().join("palisade.db").display(),
                rules.display()
            ),
        )
        .unwrap();
    };
    write_config("app");
    fs::write(&log, app_failure("198.51.100.61").repeat(3)).unwrap();
    let w = Watcher::start(&config, free_port());
    w.fired("App Login Brute Force", Duration::from_secs(10))
        .expect("first ban");
    std::thread::sleep(Duration::from_millis(300));
    drop(w);
    assert!(palisade(&config, &["ban", "list"]).contains("198.51.100.61/32"));
    palisade(&config, &["ban", "remove", "198.51.100.61"]);
    assert_eq!(palisade(&config, &["ban", "list"]), "");

    write_config("app-replayed"); // no checkpoint: the whole file is read again
    let w = Watcher::start(&config, free_port());
    assert!(
        w.fired("App Login Brute Force", Duration::from_secs(2))
            .is_none(),
        "replayed failures from before the unban were counted"
    );
    append(&log, &app_failure("198.51.100.61").repeat(2));
    assert!(
        w.fired("App Login Brute Force", Duration::from_secs(1))
            .is_none(),
        "2 new failures banned: the old ones were counted"
    );
    append(&log, &app_failure("198.51.100.61"));
    let d = w
        .fired("App Login Brute Force", Duration::from_secs(10))
        .expect("the 3rd new failure must ban");
    assert_eq!(d["count"], 3, "{d}");
    std::thread::sleep(Duration::from_millis(300));
    drop(w);
    assert!(palisade(&config, &["ban", "list"]).contains("198.51.100.61/32"));
}
