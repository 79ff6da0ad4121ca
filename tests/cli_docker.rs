//! The Docker commands of the CLI end to end against the machine's real Docker Engine
//! (`--features docker-tests`): `check containers`, `container isolate|restore|history`,
//! `evidence collect|verify`, and `watch` following a container through `[docker]`.
//!
//! Images and containers come from `support_docker` (FROM scratch + static busybox),
//! carry the label `palisade-test=1` and are removed by its guard even on failure.
#![cfg(feature = "docker-tests")]

mod support_docker;
mod support_watch;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::{Value, json};
use support_docker::setup;

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .env("USER", "tester")
        .env("SUDO_USER", "alice")
        .output()
        .expect("run palisade")
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn write_config(dir: &Path, extra: &str) -> String {
    let path = dir.join("palisade.toml");
    let text = format!("[store]\npath = \"palisade.db\"\n[metrics]\nenabled = false\n{extra}");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

const HARDENED: &str =
    r#"{"User": "1000:1000", "HostConfig": {"ReadonlyRootfs": true, "CapDrop": ["ALL"]}}"#;

#[test]
fn check_containers_flags_privileged_not_clean_and_stores_findings() {
    let mut g = setup("cli-check");
    let bad = "palisade-test-cli-privileged";
    let clean = "palisade-test-cli-clean";
    let a = g.create(
        bad,
        "sleep 120",
        json!({"User": "1000", "HostConfig": {"Privileged": true, "ReadonlyRootfs": true}}),
    );
    let b = g.create(clean, "sleep 120", serde_json::from_str(HARDENED).unwrap());
    g.start(&a);
    g.start(&b);
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "");
    let out = palisade(&[
        "-c",
        &config,
        "check",
        "containers",
        "--json",
        "--no-images",
        "--container",
        bad,
        "--container",
        clean,
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a critical finding fails the check"
    );
    let findings = stdout_json(&out);
    let of = |c: &str| -> Vec<String> {
        findings
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["container"] == c)
            .map(|f| f["check"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(of(bad), ["container.privileged"], "{findings}");
    assert!(of(clean).is_empty(), "{findings}");

    // Stored as detections: status lists the posture rule.
    let status = palisade(&["-c", &config, "status", "--json"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let rules = stdout_json(&status)["rules"].clone();
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule_id"] == "palisade-posture-container.privileged"),
        "{rules}"
    );

    // Only the clean container: nothing at or above high, exit 0.
    let out = palisade(&["check", "containers", "--no-images", "--container", clean]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no findings"));
}

#[test]
fn unreachable_engine_is_named_in_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("no-docker.sock");
    let config = write_config(tmp.path(), &format!("[docker]\nsocket = {:?}\n", sock));
    let out = palisade(&["-c", &config, "check", "containers"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&*sock.to_string_lossy()), "{err}");
}

#[test]
fn isolate_then_restore_reconnects_and_is_recorded_with_the_operator() {
    let mut g = setup("cli-isolate");
    let net = g
        .api
        .post_json(
            "/networks/create",
            Some(&json!({"Name": "palisade-test-cli-net", "Labels": {"palisade-test": "1"}})),
        )
        .unwrap();
    g.networks.push(net["Id"].as_str().unwrap().to_owned());
    let name = "palisade-test-cli-isolated";
    let id = g.create(
        name,
        "sleep 120",
        json!({"HostConfig": {"NetworkMode": "palisade-test-cli-net"},
        "NetworkingConfig": {"EndpointsConfig": {"palisade-test-cli-net": {"Aliases": ["api"]}}}}),
    );
    g.start(&id);
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "");
    let networks =
        |g: &support_docker::Guard| g.inspect(&id)["NetworkSettings"]["Networks"].clone();

    let out = palisade(&[
        "-c",
        &config,
        "container",
        "isolate",
        name,
        "--reason",
        "sqli from 203.0.113.7",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        networks(&g).as_object().unwrap().is_empty(),
        "{}",
        networks(&g)
    );

    let out = palisade(&[
        "-c",
        &config,
        "container",
        "restore",
        name,
        "--reason",
        "false positive",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nets = networks(&g);
    assert!(
        nets["palisade-test-cli-net"]["Aliases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "api"),
        "{nets}"
    );

    // Nothing left to undo.
    let out = palisade(&[
        "-c",
        &config,
        "container",
        "restore",
        name,
        "--reason",
        "again",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to restore"));

    let out = palisade(&["-c", &config, "container", "history", name, "--json"]);
    let history = stdout_json(&out);
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["disconnect", "reconnect"]);
    assert_eq!(
        history[0]["authority"],
        json!({"kind": "operator", "id": "alice"}),
        "SUDO_USER wins"
    );
    assert_eq!(history[0]["reason"], "sqli from 203.0.113.7");
    assert_eq!(history[1]["reverses"], history[0]["id"]);
    assert!(
        tmp.path().join("palisade.db").exists(),
        "recorded in the store db"
    );
}

#[test]
fn evidence_collect_then_verify_and_tampering_is_caught() {
    let mut g = setup("cli-evidence");
    let name = "palisade-test-cli-evidence";
    let id = g.create(name, "echo one; echo two >&2; echo three", json!({}));
    g.start(&id);
    g.wait(&id);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("case-1");
    let dir_s = dir.to_string_lossy().into_owned();
    let out = palisade(&[
        "evidence",
        "collect",
        "--container",
        name,
        "--since",
        "1h",
        "--out",
        &dir_s,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["log_entries"], 3);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for f in ["logs.jsonl", "inspect.json", "manifest.json"] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let ok = palisade(&["evidence", "verify", &dir_s]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // Collecting into the same folder again must not overwrite it.
    let again = palisade(&[
        "evidence",
        "collect",
        "--container",
        name,
        "--since",
        "1h",
        "--out",
        &dir_s,
    ]);
    assert!(!again.status.success());

    let logs = dir.join("logs.jsonl");
    let mut text = std::fs::read_to_string(&logs).unwrap();
    text = text.replacen("two", "TWO", 1);
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&logs, text).unwrap();
    let bad = palisade(&["evidence", "verify", &dir_s]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("logs.jsonl") && !err.contains("inspect.json"),
        "{err}"
    );
}

/// A `palisade watch --json` process whose fired detections arrive on a channel.
struct Watcher {
    child: Child,
    rx: Receiver<Value>,
}

impl Watcher {
    fn start(config: &str) -> Watcher {
        let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["-c", config, "watch", "--json", "--no-metrics"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start palisade watch");
        let rx = support_watch::fired_stream(child.stdout.take().unwrap());
        Watcher { child, rx }
    }

    /// Fired detections within `limit`, stopping early once `until` holds.
    fn collect(&self, limit: Duration, until: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        support_watch::collect(&self.rx, limit, until)
    }

    /// Ctrl-C: the clean shutdown path.
    fn interrupt(mut self) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(ok.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "watch exits 0 on Ctrl-C: {status}");
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const BRUTE_FORCE: &str = "b98b57be-35d6-4479-ba6b-4064d45924bc";

/// prompt-nginx's `main` format: 12 failed logins from one address, then a limit_req
/// rejection on stderr.
const NGINX_SCRIPT: &str = r#"
i=10
while [ $i -lt 22 ]; do
  printf '198.51.100.23 - - [04/Dec/2026:10:00:%02d +0000] "POST /api/auth/login HTTP/1.1" 401 45 "-" "python-requests/2.31" "-"\n' $i
  i=$((i+1))
done
echo '2026/12/04 10:00:30 [error] 7#7: *12 limiting requests, excess: 5.120 by zone "login", client: 198.51.100.23, server: _, request: "POST /api/auth/login HTTP/1.1", host: "shop.test"' >&2
sleep 300
"#;

fn is_brute_force(d: &Value) -> bool {
    d["rule"]["id"] == BRUTE_FORCE
}

#[test]
fn watch_follows_a_container_fires_brute_force_and_restart_repeats_nothing() {
    let mut g = setup("cli-watch");
    let name = "palisade-test-cli-nginx";
    let id = g.create(name, NGINX_SCRIPT, serde_json::from_str(HARDENED).unwrap());
    // A privileged container picked by label: the posture check at start raises it.
    let mut priv_extra =
        json!({"User": "1000", "HostConfig": {"Privileged": true, "ReadonlyRootfs": true}});
    priv_extra["Labels"] = json!({"palisade-test": "1", "palisade-test-cli-watch": "posture"});
    let privileged = g.create("palisade-test-cli-watchpriv", "sleep 300", priv_extra);
    g.start(&id);
    g.start(&privileged);
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(
        tmp.path(),
        &format!(
            r#"
[watch]
poll_interval = "100ms"

[docker]
poll_seconds = 1
flush_after_ms = 200

[[docker.containers]]
name = "{name}"
parser = {{ format = "nginx", log_format = "main" }}
stderr_parser = {{ format = "nginx_error" }}

[[docker.containers]]
label = "palisade-test-cli-watch=posture"
parser = {{ format = "backend" }}
"#
        ),
    );

    let w = Watcher::start(&config);
    let fired = w.collect(Duration::from_secs(30), |got| {
        got.iter().any(is_brute_force)
            && got
                .iter()
                .any(|d| d["rule"]["id"] == "palisade-posture-container.privileged")
    });
    let brute: Vec<&Value> = fired.iter().filter(|d| is_brute_force(d)).collect();
    assert_eq!(brute.len(), 1, "{fired:?}");
    assert_eq!(brute[0]["key"]["source.ip"], "198.51.100.23");
    let posture: Vec<&Value> = fired
        .iter()
        .filter(|d| d["rule"]["id"] == "palisade-posture-container.privileged")
        .collect();
    assert_eq!(posture.len(), 1, "{fired:?}");
    assert_eq!(
        posture[0]["key"]["container.name"],
        "palisade-test-cli-watchpriv"
    );
    // Let the stderr line through before stopping.
    std::thread::sleep(Duration::from_millis(1500));
    w.interrupt();
    assert!(
        tmp.path().join("palisade.db.docker.json").exists(),
        "checkpoints next to the store"
    );

    // The stderr line went to the nginx_error parser: status counts the rejection.
    let status = palisade(&[
        "-c",
        &config,
        "status",
        "--json",
        "--at",
        "2026-12-04T10:05:00Z",
    ]);
    let counts = stdout_json(&status)["counts"].clone();
    assert_eq!(counts["failed_logins"], 12, "{counts}");
    assert_eq!(counts["rate_limited"], 1, "{counts}");

    // Restart after a clean stop: nothing read again.
    let w = Watcher::start(&config);
    let again = w.collect(Duration::from_secs(6), |_| false);
    assert!(
        !again.iter().any(is_brute_force),
        "repeated after restart: {again:?}"
    );
    drop(w); // SIGKILL: the checkpoints saved after each commit must hold too.

    let w = Watcher::start(&config);
    let again = w.collect(Duration::from_secs(5), |_| false);
    assert!(
        !again.iter().any(is_brute_force),
        "repeated after a kill: {again:?}"
    );
    w.interrupt();
    let status = palisade(&[
        "-c",
        &config,
        "status",
        "--json",
        "--at",
        "2026-12-04T10:05:00Z",
    ]);
    let counts = stdout_json(&status)["counts"].clone();
    assert_eq!(
        counts["failed_logins"], 12,
        "each line counted once: {counts}"
    );
}
