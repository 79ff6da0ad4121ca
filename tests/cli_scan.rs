//! The binary as a user runs it: `demo`, `scan` (files, gz, stdin), exit codes, output.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn palisade() -> Command {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
}

/// Runs palisade with `args`, `input` on its stdin, and waits for it.
fn with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = palisade()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn key_ip(d: &Value) -> Option<IpAddr> {
    d["key"]["source.ip"].as_str()?.parse().ok()
}

fn is_documentation(ip: IpAddr) -> bool {
    [
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "2001:db8::/32",
    ]
    .iter()
    .any(|n| n.parse::<ipnet::IpNet>().unwrap().contains(&ip))
}

fn has_tag(d: &Value, tag: &str) -> bool {
    d["rule"]["tags"]
        .as_array()
        .is_some_and(|t| t.iter().any(|x| x == tag))
}

#[test]
fn demo_finds_every_planted_attacker_and_accuses_no_one_else() {
    let dir = tempfile::tempdir().unwrap();
    let out = palisade()
        .args(["demo", "--json", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let detections = json_lines(&out);
    let ips: Vec<IpAddr> = detections.iter().filter_map(key_ip).collect();
    for attacker in [
        "203.0.113.77",
        "2001:db8:7::23",
        "198.51.100.66",
        "192.0.2.150",
        "198.51.100.12",
    ] {
        let a: IpAddr = attacker.parse().unwrap();
        assert!(
            ips.contains(&a),
            "{attacker} not detected; detections: {detections:#?}"
        );
    }
    for d in &detections {
        if let Some(ip) = key_ip(d) {
            assert!(
                is_documentation(ip),
                "benign client {ip} accused by {}",
                d["rule"]["title"]
            );
        }
    }
    let slow: IpAddr = "2001:db8:7::23".parse().unwrap();
    assert!(
        detections
            .iter()
            .any(|d| key_ip(d) == Some(slow) && has_tag(d, "attack.t1110")),
        "the low-and-slow brute forcer has no attack.t1110 detection"
    );
    assert!(
        dir.path().join("palisade.db").exists(),
        "demo did not store its detections"
    );
}

#[test]
fn scan_json_objects_carry_rule_key_counts_times_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let mut text = String::new();
    for i in 0..3 {
        text.push_str(&format!(
            "192.0.2.91 - - [26/Feb/2024:07:31:0{i} +0000] \"GET /item?id=1%20UNION%20SELECT%20pass%20FROM%20users-- HTTP/1.1\" 200 120 \"-\" \"-\"\n"
        ));
    }
    std::fs::write(&log, text).unwrap();
    let out = palisade()
        .args(["scan", "--json", "--format", "nginx"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = json_lines(&out)
        .into_iter()
        .find(|d| d["key"]["source.ip"] == "192.0.2.91")
        .expect("a detection for the injector");
    for field in ["id", "title", "level", "tags"] {
        assert!(!d["rule"][field].is_null(), "rule.{field} missing: {d}");
    }
    assert_eq!(d["count"], 3);
    assert_eq!(d["first_seen"], "2024-02-26T07:31:00Z");
    assert_eq!(d["last_seen"], "2024-02-26T07:31:02Z");
    assert!(!d["samples"].as_array().unwrap().is_empty());
    assert_eq!(d["samples"][0]["source.ip"], "192.0.2.91");
}

#[test]
fn scan_reads_stdin_and_gzip_alike() {
    let line = "198.51.100.66 - - [11/Mar/2024:03:14:07 +0000] \"GET /index.php?file=..%2F..%2F..%2Fetc%2Fpasswd HTTP/1.1\" 404 0 \"-\" \"-\"\n";
    let from_stdin = json_lines(&with_stdin(
        &["scan", "--json", "--format", "nginx", "-"],
        line.as_bytes(),
    ));

    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("access.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(line.as_bytes()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let out = palisade()
        .args(["scan", "--json"])
        .arg(&gz)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_gz = json_lines(&out);

    assert!(!from_stdin.is_empty(), "nothing detected from stdin");
    let titles = |ds: &[Value]| {
        ds.iter()
            .map(|d| d["rule"]["title"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(titles(&from_stdin), titles(&from_gz));
}

#[test]
fn fail_on_level_exits_3_and_clean_input_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.log");
    std::fs::write(&bad, "192.0.2.152 - - [02/Nov/2024:11:20:07 +0000] \"GET /?q=%3CsCrIpT%3Ealert(1)%3C/script%3E HTTP/1.1\" 200 10 \"-\" \"-\"\n").unwrap();
    let good = dir.path().join("good.log");
    std::fs::write(&good, "81.2.69.160 - - [02/Nov/2024:11:20:07 +0000] \"GET /blog/tags/alert HTTP/1.1\" 200 10 \"-\" \"Mozilla/5.0\"\n").unwrap();
    let run = |p: &std::path::Path| {
        palisade()
            .args(["scan", "--format", "nginx", "--fail-on", "medium"])
            .arg(p)
            .output()
            .unwrap()
    };
    assert_eq!(run(&bad).status.code(), Some(3));
    let ok = run(&good);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        ok.stdout.is_empty(),
        "benign line produced output: {}",
        String::from_utf8_lossy(&ok.stdout)
    );
}

#[test]
fn missing_file_is_a_clear_error_with_exit_1() {
    let out = palisade()
        .args(["scan", "/nonexistent/palisade/access.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/palisade/access.log"),
        "error does not name the file: {err}"
    );
}

#[test]
fn garbage_and_invalid_utf8_are_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mixed.log");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"\x00\xff\xfe garbage \xc3\x28\n");
    bytes.extend_from_slice(&vec![b'A'; 1 << 20]);
    bytes.push(b'\n');
    bytes.extend_from_slice(b"192.0.2.150 - - [02/Nov/2024:11:20:05 +0000] \"GET /?id=1 HTTP/1.1\" 200 10 \"-\" \"sqlmap/1.8.2#stable (https://sqlmap.org)\"\n");
    std::fs::write(&log, bytes).unwrap();
    let out = palisade()
        .args(["scan", "--json", "--format", "nginx"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ds = json_lines(&out);
    assert!(
        ds.iter().any(|d| d["key"]["source.ip"] == "192.0.2.150"),
        "the good line after garbage was lost"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("3 lines"),
        "summary does not count every line: {err}"
    );
}

#[test]
fn unreadable_input_is_reported_and_the_others_are_still_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("a.log");
    std::fs::write(&good, "192.0.2.91 - - [26/Feb/2024:07:31:02 +0000] \"GET /item?id=1%20UNION%20SELECT%20pass%20FROM%20users-- HTTP/1.1\" 200 120 \"-\" \"-\"\n").unwrap();
    let bad = dir.path().join("b.log");
    std::fs::create_dir(&bad).unwrap(); // a directory where a log file is expected
    let out = palisade()
        .args(["scan", "--json", "--format", "nginx"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unreadable input must fail the run"
    );
    assert!(
        json_lines(&out)
            .iter()
            .any(|d| d["key"]["source.ip"] == "192.0.2.91"),
        "the readable file's detection was lost"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("b.log"),
        "the error does not name the file"
    );
}

/// `rules test` explains every line it can read: a line no parser understands is
/// reported on stderr, the lines after it are still tested, and the exit status is 1.
#[test]
fn rules_test_reports_an_unreadable_line_and_tests_the_rest() {
    let sqli = r#"203.0.113.9 - - [01/Dec/2026:10:00:00 +0000] "GET /?id=1%20UNION%20SELECT%201 HTTP/1.1" 200 5 "-" "curl/8""#;
    let xss = r#"203.0.113.9 - - [01/Dec/2026:10:00:01 +0000] "GET /?q=%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1" 200 5 "-" "curl/8""#;
    let out = palisade()
        .args(["rules", "test", "--json", sqli, "hello junk", xss])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "both good lines explained");
    let titles = |v: &Value| {
        v["matches"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|x| x["rule"]["title"].to_string())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    for (line, rule) in lines.iter().zip(["SQL Injection", "Cross-Site Scripting"]) {
        assert!(titles(line).iter().any(|t| t.contains(rule)), "{line:?}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2:"), "{stderr}");
}

/// Invalid UTF-8 on stdin is mended as `scan` mends it, not a refusal of the input.
#[test]
fn rules_test_reads_stdin_with_an_invalid_byte() {
    let out = with_stdin(
        &["rules", "test", "--json", "--format", "nginx"],
        b"203.0.113.9 - - [01/Dec/2026:10:00:00 +0000] \"GET /?id=1%20UNION%20SELECT%201 HTTP/1.1\" 200 5 \"-\" \"curl/8 \xff\"\n",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_lines(&out).len(), 1);
}

/// `config check` refuses what `watch` would refuse: metrics on a non-loopback address
/// without `allow_remote`.
#[test]
fn config_check_refuses_a_public_metrics_address_as_watch_does() {
    let dir = tempfile::tempdir().unwrap();
    let check = |listen: &str, allow_remote: bool| {
        let config = dir.path().join("palisade.toml");
        std::fs::write(
            &config,
            format!("[metrics]\nlisten = \"{listen}\"\nallow_remote = {allow_remote}\n"),
        )
        .unwrap();
        palisade()
            .arg("-c")
            .arg(&config)
            .args(["config", "check"])
            .output()
            .unwrap()
    };
    let public = check("0.0.0.0:9464", false);
    assert_eq!(public.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&public.stderr).contains("allow_remote"));
    assert_eq!(check("127.0.0.1:9464", false).status.code(), Some(0));
    assert_eq!(check("0.0.0.0:9464", true).status.code(), Some(0));
}

/// With the default `none` backend a ban is a record, and `ban list` says so.
#[test]
fn ban_list_says_when_bans_are_not_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("palisade.toml");
    std::fs::write(&config, "[store]\npath = \"palisade.db\"\n").unwrap();
    let run = |args: &[&str]| {
        palisade()
            .arg("-c")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(
        run(&["ban", "add", "192.0.2.5", "--reason", "test"])
            .status
            .success()
    );
    let listed = run(&["ban", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("192.0.2.5/32"));
    assert!(
        String::from_utf8_lossy(&listed.stderr).contains("recorded, not enforced"),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
}
