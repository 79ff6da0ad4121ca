//! `palisade watch` end to end: a line appended to a followed file raises its alert,
//! and a restart resumes from the stored checkpoint without repeating or losing lines.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use serde_json::Value;

struct Watcher {
    child: Child,
    rx: Receiver<Value>,
}

impl Watcher {
    fn start(config: &Path) -> Watcher {
        let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .arg("-c")
            .arg(config)
            .args(["watch", "--json", "--no-metrics"])
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

    /// The next `fired` detection, waiting at most `limit`.
    fn next_fired(&self, limit: Duration) -> Option<Value> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            let d = self.rx.recv_timeout(left).ok()?;
            if d["state"] == "fired" {
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

fn sqli_line(ip: &str, second: u32) -> String {
    format!(
        "{ip} - - [11/Mar/2024:03:14:{second:02} +0000] \"GET /index.php?cat=7+UnIoN/**/sElEcT+1,2 HTTP/1.1\" 200 512 \"-\" \"-\"\n"
    )
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// An empty `access.log` in `dir` and a config that follows it with a store beside it.
fn followed_access_log(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let log = dir.join("access.log");
    std::fs::write(&log, "").unwrap();
    let config = dir.join("palisade.toml");
    std::fs::write(
        &config,
        "[[sources]]\nname = \"nginx\"\npath = \"access.log\"\nparser = { format = \"nginx\", log_format = \"combined\" }\n[store]\npath = \"palisade.db\"\n[watch]\npoll_interval = \"100ms\"\n",
    )
    .unwrap();
    (log, config)
}

#[test]
fn appended_line_alerts_and_restart_neither_repeats_nor_loses() {
    let dir = tempfile::tempdir().unwrap();
    let (log, config) = followed_access_log(dir.path());

    let first = Watcher::start(&config);
    std::thread::sleep(Duration::from_millis(300));
    append(&log, &sqli_line("203.0.113.201", 7));
    let d = first
        .next_fired(Duration::from_secs(10))
        .expect("no alert for the appended line");
    assert_eq!(d["key"]["source.ip"], "203.0.113.201");
    std::thread::sleep(Duration::from_millis(400)); // let the checkpoint commit
    drop(first);

    // Written while palisade is down: must be read after the restart, exactly once.
    append(&log, &sqli_line("198.51.100.66", 9));
    let second = Watcher::start(&config);
    let d = second
        .next_fired(Duration::from_secs(10))
        .expect("line written while down was lost");
    assert_eq!(
        d["key"]["source.ip"], "198.51.100.66",
        "restart replayed an old line: {d}"
    );
    assert!(
        second.next_fired(Duration::from_millis(800)).is_none(),
        "a line was read twice"
    );
}

/// systemd and `docker stop` stop a daemon with SIGTERM: palisade must shut down as on
/// Ctrl-C (episodes closed and written, exit status 0), not die on the signal.
#[test]
fn sigterm_closes_open_detections_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (log, config) = followed_access_log(dir.path());
    let mut w = Watcher::start(&config);
    std::thread::sleep(Duration::from_millis(300));
    append(&log, &sqli_line("203.0.113.202", 7));
    w.next_fired(Duration::from_secs(10))
        .expect("no alert for the appended line");
    let status = Command::new("kill")
        .args(["-TERM", &w.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(s) = w.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "watch ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "watch died on SIGTERM: {exit}");
    let closed = std::iter::from_fn(|| w.rx.recv_timeout(Duration::from_secs(2)).ok())
        .any(|d| d["state"] == "closed" && d["key"]["source.ip"] == "203.0.113.202");
    assert!(closed, "the open detection was not closed on SIGTERM");
}
