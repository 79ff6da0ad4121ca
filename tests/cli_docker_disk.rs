//! `palisade watch` with `[docker]` when the Engine API is unreachable: it warns once
//! and follows the json-file (or CRI) logs under `json_file_root` instead, with the
//! same selectors, parsers and checkpoint file. No Docker engine needed: the tests lay
//! out a directory like /var/lib/docker/containers themselves.

mod support_watch;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::{Value, json};

const BRUTE_FORCE: &str = "b98b57be-35d6-4479-ba6b-4064d45924bc";
const NGINX_ID: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const BACKEND_ID: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const REDIS_ID: &str = "3333333333333333333333333333333333333333333333333333333333333333";

/// How the container log files are written.
#[derive(Clone, Copy)]
enum Format {
    JsonFile,
    Cri,
}

/// A temp dir with a containers root, a socket path nobody listens on, and a config.
struct Layout {
    tmp: tempfile::TempDir,
    format: Format,
}

impl Layout {
    fn new(format: Format) -> Layout {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout { tmp, format };
        l.container(NGINX_ID, "prompt-nginx", json!({}));
        l.container(
            BACKEND_ID,
            "prompt-backend",
            json!({"com.docker.compose.service": "backend"}),
        );
        // Not selected: its failed logins must not count.
        l.container(REDIS_ID, "prompt-redis", json!({}));
        l.write_config();
        l
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("containers")
    }

    fn config(&self) -> PathBuf {
        self.tmp.path().join("palisade.toml")
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.root().join(id).join(format!("{id}-json.log"))
    }

    fn container(&self, id: &str, name: &str, labels: Value) {
        let dir = self.root().join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let config = json!({"ID": id, "Name": format!("/{name}"),
            "Config": {"Labels": labels}, "State": {"Running": true}});
        std::fs::write(dir.join("config.v2.json"), config.to_string()).unwrap();
        std::fs::write(self.log_path(id), "").unwrap();
    }

    fn write_config(&self) {
        let text = format!(
            r#"[store]
path = "palisade.db"
[metrics]
enabled = false
[watch]
poll_interval = "100ms"

[docker]
socket = {socket:?}
json_file_root = {root:?}
poll_seconds = 1
flush_after_ms = 200

[[docker.containers]]
name = "prompt-nginx"
parser = {{ format = "nginx", log_format = "main" }}
stderr_parser = {{ format = "nginx_error" }}

[[docker.containers]]
service = "backend"
parser = {{ format = "backend" }}
"#,
            socket = self.tmp.path().join("no-docker.sock"),
            root = self.root(),
        );
        std::fs::write(self.config(), text).unwrap();
    }

    /// Appends one entry per `(stream, text, time)` to a container's log file.
    fn append(&self, id: &str, entries: &[(&str, String, String)]) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.log_path(id))
            .unwrap();
        for (stream, text, time) in entries {
            let line = match self.format {
                Format::JsonFile => {
                    json!({"log": format!("{text}\n"), "stream": stream, "time": time}).to_string()
                }
                Format::Cri => format!("{time} {stream} F {text}"),
            };
            writeln!(f, "{line}").unwrap();
        }
    }

    /// Twelve failed logins from `ip` in minute `minute` of 10:00 on 2026-12-04.
    fn failed_logins(&self, id: &str, ip: &str, minute: u32) {
        let entries: Vec<_> = (10..22)
            .map(|s| {
                let text = format!(
                    "{ip} - - [04/Dec/2026:10:{minute:02}:{s:02} +0000] \"POST /api/auth/login HTTP/1.1\" 401 45 \"-\" \"python-requests/2.31\" \"-\""
                );
                let time = format!("2026-12-04T10:{minute:02}:{s:02}.000000001Z");
                ("stdout", text, time)
            })
            .collect();
        self.append(id, &entries);
    }

    fn backend_noise(&self, second: u32) {
        let time = format!("2026-12-04T10:00:{second:02}.5Z");
        self.append(
            BACKEND_ID,
            &[("stdout", "GET /health 200 1ms".to_owned(), time)],
        );
    }

    fn palisade(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .arg("-c")
            .arg(self.config())
            .args(args)
            .output()
            .expect("run palisade")
    }

    /// `watch --duration <d>` to its end: the fired detections and stderr.
    fn watch_for(&self, d: &str) -> (Vec<Value>, String) {
        let out = self.palisade(&["watch", "--json", "--no-metrics", "--duration", d]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "watch failed: {stderr}");
        (fired(&String::from_utf8_lossy(&out.stdout)), stderr)
    }

    fn failed_login_count(&self) -> Value {
        let out = self.palisade(&["status", "--json", "--at", "2026-12-04T10:05:00Z"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        v["counts"]["failed_logins"].clone()
    }
}

fn fired(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["state"] == "fired")
        .collect()
}

fn brute_force_ips(fired: &[Value]) -> Vec<String> {
    fired
        .iter()
        .filter(|d| d["rule"]["id"] == BRUTE_FORCE)
        .map(|d| d["key"]["source.ip"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// A running `watch --duration` whose fired detections arrive on a channel.
struct Watcher {
    child: Child,
    rx: Receiver<Value>,
}

impl Watcher {
    fn start(config: &Path, duration: &str) -> Watcher {
        let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .arg("-c")
            .arg(config)
            .args(["watch", "--json", "--no-metrics", "--duration", duration])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start palisade watch");
        let rx = support_watch::fired_stream(child.stdout.take().unwrap());
        Watcher { child, rx }
    }

    /// Fired detections until `until` holds or `limit` passes.
    fn collect(&self, limit: Duration, until: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        support_watch::collect(&self.rx, limit, until)
    }

    /// Waits for the `--duration` end; returns what fired meanwhile.
    fn finish(mut self) -> Vec<Value> {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "watch exits 0 at the end of --duration");
        self.rx.try_iter().collect()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn api_down_follows_files_and_resumes(format: Format) {
    let l = Layout::new(format);
    l.failed_logins(NGINX_ID, "198.51.100.23", 0);
    l.backend_noise(30);
    l.failed_logins(REDIS_ID, "192.0.2.99", 0);

    // Runs to the end of --duration: the brute force from the existing lines, once,
    // and one clear warning naming the socket and the root.
    let (got, stderr) = l.watch_for("4s");
    assert_eq!(brute_force_ips(&got), ["198.51.100.23"], "{got:?}");
    let socket = l.tmp.path().join("no-docker.sock");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|s| s.contains("unreachable: reading json-file logs under"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains(&*socket.to_string_lossy())
            && warnings[0].contains(&*l.root().to_string_lossy()),
        "{stderr}"
    );
    assert!(
        l.tmp.path().join("palisade.db.docker.json").exists(),
        "positions saved in the checkpoint file next to the store"
    );

    // Restart: nothing repeated; entries appended while running are followed.
    let w = Watcher::start(&l.config(), "6s");
    let before = w.collect(Duration::from_millis(1500), |_| false);
    assert!(brute_force_ips(&before).is_empty(), "repeated: {before:?}");
    l.failed_logins(NGINX_ID, "203.0.113.7", 1);
    let during = w.collect(Duration::from_secs(4), |g| !brute_force_ips(g).is_empty());
    assert_eq!(brute_force_ips(&during), ["203.0.113.7"], "{during:?}");
    let rest = w.finish();
    assert!(brute_force_ips(&rest).is_empty(), "{rest:?}");

    // Written while palisade was down: read after the restart, exactly once.
    l.failed_logins(NGINX_ID, "198.51.100.77", 2);
    let (got, _) = l.watch_for("3s");
    assert_eq!(brute_force_ips(&got), ["198.51.100.77"], "{got:?}");
    let (got, _) = l.watch_for("2s");
    assert!(brute_force_ips(&got).is_empty(), "repeated: {got:?}");
    assert_eq!(
        l.failed_login_count(),
        36,
        "each selected line counted once, the unselected container not at all"
    );
}

#[test]
fn api_down_follows_json_file_logs_fires_once_and_restart_repeats_nothing() {
    api_down_follows_files_and_resumes(Format::JsonFile);
}

#[test]
fn api_down_follows_cri_format_logs_fires_once_and_restart_repeats_nothing() {
    api_down_follows_files_and_resumes(Format::Cri);
}

#[test]
fn half_written_entry_waits_for_its_newline() {
    // The engine writes an entry in more than one write: a line without its newline
    // must not be parsed (and skipped as garbage) before the rest arrives.
    let l = Layout::new(Format::JsonFile);
    // Eleven failures: the brute force needs more than ten, so only the completed
    // last entry can fire it.
    let entries: Vec<String> = (10..21)
        .map(|s| {
            let text = format!(
                "198.51.100.5 - - [04/Dec/2026:10:00:{s:02} +0000] \"POST /api/auth/login HTTP/1.1\" 401 45 \"-\" \"-\" \"-\"\n"
            );
            json!({"log": text, "stream": "stdout", "time": format!("2026-12-04T10:00:{s:02}Z")})
                .to_string()
                + "\n"
        })
        .collect();
    let all = entries.concat();
    let (head, tail) = all.split_at(all.len() - 20);
    std::fs::write(l.log_path(NGINX_ID), head).unwrap();
    let w = Watcher::start(&l.config(), "4s");
    let early = w.collect(Duration::from_millis(1200), |_| false);
    assert!(brute_force_ips(&early).is_empty(), "{early:?}");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(l.log_path(NGINX_ID))
        .unwrap();
    f.write_all(tail.as_bytes()).unwrap();
    let got = w.collect(Duration::from_secs(3), |g| !brute_force_ips(g).is_empty());
    assert_eq!(brute_force_ips(&got), ["198.51.100.5"], "{got:?}");
}
