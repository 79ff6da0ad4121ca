//! Against the machine's real Docker Engine (`--features docker-tests`): container
//! logs joined and resumed, posture findings, isolation, evidence.
//!
//! No registry is reachable, so each test builds a tiny image FROM scratch holding a
//! static busybox (`apt-get install busybox-static`) through the API's `/build`
//! endpoint. Everything created carries the label `palisade-test=1` and is removed by
//! a Drop guard, even when the test fails.
#![cfg(feature = "docker-tests")]

mod support_docker;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use palisade::posture::containers::{self, CheckOptions};
use palisade::respond::isolate::{Authority, Isolator};
use palisade::sources::docker::api::DockerApi;
use palisade::sources::docker::follow::{DockerSource, read_container};
use palisade::sources::docker::{
    ContainerLog, ContainerSelector, DockerCheckpoint, DockerLine, DockerSourceConfig, Stream,
};
use serde_json::{Value, json};
use support_docker::setup;

const STACK_SCRIPT: &str = r#"
printf '%s\n' '203.0.113.7 - - [04/Dec/2026:10:00:00 +0000] "GET /api/products?id=1%27%20OR%201=1 HTTP/1.1" 200 512 "-" "sqlmap/1.7" "-"'
sleep 0.3
echo 'Error: invalid token for user carol' >&2
sleep 0.3
echo 'GET /health 200 1ms'
sleep 0.3
echo '    at verify (/app/auth.js:10:5)' >&2
echo '    at login (/app/routes.js:44:9)' >&2
sleep 0.3
echo 'Security event: {"type":"login_failed","ip":"192.0.2.61","path":"/api/auth/login"}'
sleep 0.3
printf '{"level":"warn","msg":"login failed","ip":"192.0.2.61","ctx":"'; head -c 40000 /dev/zero | tr '\0' A; printf '"}\n'
"#;

fn read_all(api: &DockerApi, id: &str, log: &mut ContainerLog) -> Vec<DockerLine> {
    let mut lines = Vec::new();
    let stop = AtomicBool::new(false);
    read_container(
        api,
        log,
        false,
        Duration::from_secs(1),
        &stop,
        &mut |b, _| lines.extend(b),
    )
    .unwrap_or_else(|e| panic!("reading logs of {id}: {e}"));
    lines
}

#[test]
fn reference_stack_lines_are_joined_per_stream() {
    // Field cases 39 and 43 through a real engine: a 40 KB JSON line split by Docker
    // into 16 KiB pieces, and a stack trace with a stdout line in between.
    let mut g = setup("join");
    let id = g.create("palisade-test-join", STACK_SCRIPT, json!({}));
    g.start(&id);
    g.wait(&id);
    let mut log = ContainerLog::new(&id, "palisade-test-join");
    let lines = read_all(&g.api, &id, &mut log);
    let texts: Vec<(&str, Stream)> = lines
        .iter()
        .map(|l| (l.line.text.as_str(), l.stream))
        .collect();
    assert_eq!(
        lines.len(),
        5,
        "{:?}",
        texts
            .iter()
            .map(|(t, s)| (&t[..t.len().min(60)], s))
            .collect::<Vec<_>>()
    );
    let err = lines.iter().find(|l| l.stream == Stream::Stderr).unwrap();
    assert_eq!(
        err.line.text,
        "Error: invalid token for user carol\n    at verify (/app/auth.js:10:5)\n    at login (/app/routes.js:44:9)"
    );
    assert!(texts.contains(&("GET /health 200 1ms", Stream::Stdout)));
    assert!(texts.iter().any(|(t, _)| t.starts_with("Security event: ")));
    assert!(
        texts
            .iter()
            .any(|(t, _)| t.starts_with("203.0.113.7 - - [04/Dec/2026"))
    );
    let long = lines
        .iter()
        .find(|l| l.line.text.starts_with("{\"level\""))
        .unwrap();
    let v: Value = serde_json::from_str(&long.line.text).expect("re-joined JSON parses");
    assert_eq!(v["ctx"].as_str().unwrap().len(), 40000);
    assert!(
        lines
            .iter()
            .all(|l| &*l.line.source == "palisade-test-join")
    );

    // Evidence of the same container.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("evidence");
    let since = lines.iter().map(|l| l.time).min().unwrap();
    let until = jiff::Timestamp::now();
    let m =
        palisade::incident::evidence::collect_container(&g.api, &dir, &id, since, until).unwrap();
    // 5 messages from 9 raw entries: 2 extra stack frames, the long line in 3 pieces —
    // proof Docker did split it and the joiner put it back together.
    assert_eq!(m.log_entries, 9, "raw entries");
    assert!(
        palisade::incident::evidence::verify(&dir, &m)
            .unwrap()
            .is_empty()
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["files"].as_array().unwrap().len(), 2);
    use std::os::unix::fs::PermissionsExt;
    for f in ["logs.jsonl", "inspect.json", "manifest.json"] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
}

const COUNTER_SCRIPT: &str = "i=1; while [ $i -le 12 ]; do echo n=$i; i=$((i+1)); sleep 0.25; done";

fn source_cfg(name: &str) -> DockerSourceConfig {
    DockerSourceConfig {
        containers: vec![ContainerSelector {
            name: Some(name.into()),
            ..Default::default()
        }],
        poll_seconds: 1,
        flush_after_ms: 200,
        ..Default::default()
    }
}

fn collect_until(src: &DockerSource, want: impl Fn(&[String]) -> bool, out: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !want(out) {
        assert!(Instant::now() < deadline, "timed out; got {out:?}");
        if let Ok(l) = src.lines.recv_timeout(Duration::from_millis(200)) {
            out.push(l.line.text);
        }
    }
}

#[test]
fn restart_resumes_from_checkpoint_without_loss_or_repeat() {
    let mut g = setup("resume");
    let name = "palisade-test-resume";
    let id = g.create(name, COUNTER_SCRIPT, json!({}));
    g.start(&id);
    let cfg = source_cfg(name);

    // First run of palisade: read a few lines, stop, keep the checkpoints.
    let mut got = Vec::new();
    let mut src = DockerSource::start(&cfg, HashMap::new()).unwrap();
    collect_until(&src, |v| v.len() >= 3, &mut got);
    src.stop();
    got.extend(src.lines.try_iter().map(|l| l.line.text));
    let ckpts: HashMap<String, DockerCheckpoint> = src.checkpoints();
    drop(src);
    assert!(ckpts.contains_key(&id), "checkpoint for the container");

    // Second run resumes: the rest of the first container run, exactly once.
    let src = DockerSource::start(&cfg, ckpts).unwrap();
    collect_until(&src, |v| v.iter().any(|t| t == "n=12"), &mut got);
    let expected: Vec<String> = (1..=12).map(|i| format!("n={i}")).collect();
    assert_eq!(got, expected, "no line lost or repeated across the restart");

    // The container restarts: the source picks it up and reads the new run only.
    g.wait(&id);
    g.start(&id);
    let mut second = Vec::new();
    collect_until(&src, |v| v.iter().any(|t| t == "n=12"), &mut second);
    assert_eq!(second, expected, "the restarted container's run, once");

    // palisade stops; the container runs once more while it is down; palisade comes
    // back and reads that run from the stopped container.
    let mut src = src;
    src.stop();
    let _ = src.lines.try_iter().count();
    let ckpts = src.checkpoints();
    drop(src);
    g.wait(&id);
    g.start(&id);
    g.wait(&id);
    let src = DockerSource::start(&cfg, ckpts).unwrap();
    let mut third = Vec::new();
    collect_until(&src, |v| v.iter().any(|t| t == "n=12"), &mut third);
    std::thread::sleep(Duration::from_millis(1500));
    third.extend(src.lines.try_iter().map(|l| l.line.text));
    assert_eq!(third, expected, "the run while palisade was down, once");
}

#[test]
fn posture_flags_privileged_socket_and_root_but_not_hardened() {
    let mut g = setup("posture");
    let sleep = "sleep 120";
    let privileged = g.create(
        "palisade-test-privileged",
        sleep,
        json!({"User": "1000", "HostConfig": {"Privileged": true, "ReadonlyRootfs": true}}),
    );
    let socket = g.create(
        "palisade-test-socket",
        sleep,
        json!({"User": "1000", "HostConfig": {"ReadonlyRootfs": true,
        "Binds": ["/var/run/docker.sock:/var/run/docker.sock:ro"]}}),
    );
    let root = g.create(
        "palisade-test-root",
        sleep,
        json!({"HostConfig": {"ReadonlyRootfs": true}}),
    );
    let clean = g.create(
        "palisade-test-clean",
        sleep,
        json!({"User": "1000:1000", "HostConfig": {"ReadonlyRootfs": true, "CapDrop": ["ALL"]}}),
    );
    for id in [&privileged, &socket, &root, &clean] {
        g.start(id);
    }
    let names = [
        "palisade-test-privileged",
        "palisade-test-socket",
        "palisade-test-root",
        "palisade-test-clean",
    ];
    let opts = CheckOptions {
        containers: names.iter().map(|s| s.to_string()).collect(),
        skip_images: true,
        trivy: None,
    };
    let findings = containers::check(&g.api, &opts).unwrap();
    let of = |c: &str| -> HashSet<&str> {
        findings
            .iter()
            .filter(|f| f.container == c)
            .map(|f| f.check)
            .collect()
    };
    assert_eq!(
        of("palisade-test-privileged"),
        HashSet::from(["container.privileged"])
    );
    assert_eq!(
        of("palisade-test-socket"),
        HashSet::from(["container.docker_socket"])
    );
    assert_eq!(
        of("palisade-test-root"),
        HashSet::from(["container.root_user"])
    );
    assert!(of("palisade-test-clean").is_empty(), "{findings:?}");
    // The ps-based fallback agrees with /proc.
    assert_eq!(containers::uid_from_top(&g.api, &root), Some(0));
    assert_eq!(containers::uid_from_top(&g.api, &clean), Some(1000));
    let text = containers::render_text(&findings);
    assert!(text.starts_with("CRITICAL"), "{text}");
    let d = findings[0].to_detection(jiff::Timestamp::now());
    assert!(d.key_value("container.name").is_some());
}

#[test]
fn isolation_disconnects_and_reconnects_pauses_and_unpauses() {
    let mut g = setup("isolate");
    let net = g
        .api
        .post_json(
            "/networks/create",
            Some(&json!({"Name": "palisade-test-net", "Labels": {"palisade-test": "1"}})),
        )
        .unwrap();
    let net_id = net["Id"].as_str().unwrap().to_owned();
    g.networks.push(net_id.clone());
    let id = g.create(
        "palisade-test-isolated",
        "sleep 120",
        json!({"HostConfig": {"NetworkMode": "palisade-test-net"},
        "NetworkingConfig": {"EndpointsConfig": {"palisade-test-net": {"Aliases": ["web"]}}}}),
    );
    g.start(&id);
    let tmp = tempfile::tempdir().unwrap();
    let iso = Isolator::open(g.api.clone(), &tmp.path().join("palisade.db"), false).unwrap();
    let alice = Authority::Operator("alice".into());

    let refused = iso.disconnect(&id, "sqli", &Authority::Policy("web_sqli".into()));
    assert!(refused.is_err(), "policy isolation without the flag");
    assert!(g.inspect(&id)["NetworkSettings"]["Networks"]["palisade-test-net"].is_object());

    let rec = iso
        .disconnect("palisade-test-isolated", "sqli from 203.0.113.7", &alice)
        .unwrap();
    let nets = g.inspect(&id)["NetworkSettings"]["Networks"].clone();
    assert!(
        nets.as_object().unwrap().is_empty(),
        "networks gone: {nets}"
    );
    iso.reverse(rec.id, "false positive", &alice).unwrap();
    let nets = g.inspect(&id)["NetworkSettings"]["Networks"].clone();
    let back = &nets["palisade-test-net"];
    assert!(back.is_object(), "network back: {nets}");
    assert!(
        back["Aliases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "web")
    );

    let rec = iso.pause(&id, "investigating", &alice).unwrap();
    assert_eq!(g.inspect(&id)["State"]["Paused"], true);
    iso.reverse(rec.id, "done", &alice).unwrap();
    assert_eq!(g.inspect(&id)["State"]["Paused"], false);
    let history = iso.history("palisade-test-isolated").unwrap();
    let actions: Vec<&str> = history.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["disconnect", "reconnect", "pause", "unpause"]);
    assert_eq!(history[1].reverses, Some(history[0].id));
}

#[test]
fn recreated_container_is_read_from_its_own_start() {
    let mut g = setup("recreate");
    let name = "palisade-test-recreate";
    let first = g.create(name, "echo first-run", json!({}));
    g.start(&first);
    g.wait(&first);
    let src = DockerSource::start(&source_cfg(name), HashMap::new()).unwrap();
    let mut got = Vec::new();
    collect_until(&src, |v| v.iter().any(|t| t == "first-run"), &mut got);

    // Same name, new container (docker compose up --force-recreate does this).
    g.api
        .delete(&format!("/containers/{first}?force=1"))
        .unwrap();
    let second = g.create(name, "echo second-run", json!({}));
    g.start(&second);
    collect_until(&src, |v| v.iter().any(|t| t == "second-run"), &mut got);
    assert_eq!(got, ["first-run", "second-run"]);
}
