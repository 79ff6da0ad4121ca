//! Field cases from /work/shared/FIELD-CASES.md, end to end through the real code
//! paths: configuration (TOML) → parser → allowlist → classifier → Sigma engine
//! ([`Pipeline`](palisade::pipeline::Pipeline)) → [`Responder`](palisade::respond::Responder)
//! (backend `none`, store in a temp dir). Each case uses its own input lines and its
//! own rule thresholds (set with `[rules.overrides."<rule>"]`, as an operator would),
//! and asserts at which line the detection fires and what gets banned. Module-level
//! checks of the same cases live in parse_field_cases.rs, sources_file.rs,
//! rules_builtin.rs and respond_field_cases.rs; tests/field_cases_watch.rs runs some
//! through the `palisade watch` binary.

mod field_harness;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use field_harness::*;
use palisade::respond::decision::DecisionKind;
use palisade::sources::Line;
use palisade::sources::file::{TailNotice, TailOptions, TailSpec, Tailer};

// ------------------------------------------------------------------ time handling

#[test]
fn dst_fall_back_hour_is_counted_and_bans_at_the_third_line() {
    // Field case 11: 3 × 401 across the DST fall-back (offsets present); 3 failures /
    // 10 min → ban at the 3rd; nothing dropped as "older than the last line".
    let toml = source_toml("nginx", "access.log", NGINX_COMBINED)
        + &override_toml("web_login_bruteforce", 3, "10m")
        + &ban_policy(&["web_login_bruteforce"]);
    let mut s = Stack::new(&toml, "");
    s.feed_all(
        "nginx",
        r#"198.51.100.8 - - [03/Nov/2024:01:58:00 -0400] "POST /login HTTP/1.1" 401 12 "-" "curl/8.5.0"
198.51.100.8 - - [03/Nov/2024:01:01:00 -0500] "POST /login HTTP/1.1" 401 12 "-" "curl/8.5.0"
198.51.100.8 - - [03/Nov/2024:01:03:00 -0500] "POST /login HTTP/1.1" 401 12 "-" "curl/8.5.0""#,
    );
    assert_eq!(
        s.fired_by("web_login_bruteforce"),
        [(3, "198.51.100.8".to_owned())]
    );
    assert_eq!(s.bans(), [(3, "198.51.100.8/32".to_owned())]);
    let d = &s.fired[0].detection;
    assert_eq!(d.first_seen, at("2024-11-03T05:58:00Z"));
    assert_eq!(d.last_seen, at("2024-11-03T06:03:00Z"));
    assert_eq!(d.count, 3);
    let st = s.stats("nginx");
    assert_eq!((st.events, st.failed), (3, 0));
}

#[test]
fn dst_fall_back_without_offsets_resolves_later_instant_and_bans_at_the_third() {
    // Field case 11, variant without offsets (zone America/New_York configured): the
    // 2nd and 3rd lines follow a 01:58 EDT line, so they are the later (EST) 01:0x.
    let toml = format!(
        "{}timezone = \"America/New_York\"\n{}{}",
        source_toml("app", "app.log", JSON),
        override_toml("web_login_bruteforce", 3, "10m"),
        ban_policy(&["web_login_bruteforce"])
    );
    let mut s = Stack::new(&toml, "");
    s.feed_all(
        "app",
        r#"{"time":"2024-11-03T01:58:00","ip":"198.51.100.8","method":"POST","path":"/login","status":401}
{"time":"2024-11-03T01:01:00","ip":"198.51.100.8","method":"POST","path":"/login","status":401}
{"time":"2024-11-03T01:03:00","ip":"198.51.100.8","method":"POST","path":"/login","status":401}"#,
    );
    assert_eq!(s.bans(), [(3, "198.51.100.8/32".to_owned())]);
    let d = &s.fired[0].detection;
    assert_eq!(d.first_seen, at("2024-11-03T05:58:00Z"));
    assert_eq!(d.last_seen, at("2024-11-03T06:03:00Z"));
}

#[test]
fn late_stamped_line_keeps_its_time_and_does_not_complete_a_burst() {
    // Field case 13: 4xx burst rule 5 in 60 s; the line stamped 10:00:00 (request
    // start of a 6-minute upload) is outside the window → 4 in window, no alert.
    let toml = source_toml("app", "app.log", JSON)
        + &override_toml("web_error_burst", 5, "60s")
        + &ban_policy(&["web_error_burst"]);
    let mut s = Stack::new(&toml, "");
    s.feed_all(
        "app",
        r#"{"time":"2024-05-21T10:05:50Z","ip":"192.0.2.70","method":"POST","path":"/upload","status":401}
{"time":"2024-05-21T10:05:55Z","ip":"192.0.2.70","method":"POST","path":"/upload","status":401}
{"time":"2024-05-21T10:00:00Z","ip":"192.0.2.70","method":"POST","path":"/upload","status":401,"durationMs":360000}
{"time":"2024-05-21T10:05:58Z","ip":"192.0.2.70","method":"POST","path":"/upload","status":401}
{"time":"2024-05-21T10:05:59Z","ip":"192.0.2.70","method":"POST","path":"/upload","status":401}"#,
    );
    assert!(
        s.fired_by("web_error_burst").is_empty(),
        "4 in window, not 5"
    );
    assert!(s.bans().is_empty());
    // The threshold is live: one more in-window line makes 5.
    s.feed(
        "app",
        r#"{"time":"2024-05-21T10:06:00Z","ip":"192.0.2.70","method":"POST","path":"/upload","status":401}"#,
    );
    assert_eq!(
        s.fired_by("web_error_burst"),
        [(6, "192.0.2.70".to_owned())]
    );
}

#[test]
fn same_instant_with_different_offsets_gives_one_alert() {
    // Field case 14: two hosts with different offsets; 3 × 401 in 60 s = alert, all
    // three are 13:07:41–50Z → exactly one detection for 192.0.2.81.
    let toml = source_toml("nginx", "access.log", NGINX_COMBINED)
        + &override_toml("web_login_bruteforce", 3, "60s");
    let mut s = Stack::new(&toml, "");
    s.feed_all(
        "nginx",
        r#"192.0.2.81 - - [10/Mar/2024:21:07:41 +0800] "POST /login HTTP/1.1" 401 12 "-" "-"
192.0.2.81 - - [10/Mar/2024:13:07:45 +0000] "POST /login HTTP/1.1" 401 12 "-" "-"
192.0.2.81 - - [10/Mar/2024:14:07:50 +0100] "POST /login HTTP/1.1" 401 12 "-" "-""#,
    );
    s.finish();
    assert_eq!(
        s.fired_by("web_login_bruteforce"),
        [(3, "192.0.2.81".to_owned())]
    );
    let closed: Vec<_> = s
        .closed
        .iter()
        .filter(|d| d.rule.name.as_deref() == Some("web_login_bruteforce"))
        .collect();
    assert_eq!(closed.len(), 1, "one episode, not one per offset");
    assert_eq!(closed[0].count, 3);
    assert_eq!(closed[0].first_seen, at("2024-03-10T13:07:41Z"));
    assert_eq!(closed[0].last_seen, at("2024-03-10T13:07:50Z"));
}

// ------------------------------------------------------------------ client address

#[test]
fn forwarded_for_bans_rightmost_untrusted_hop_never_proxy_or_forged_hops() {
    // Field case 15: trusted proxies 10.0.0.0/8; client = right-most untrusted XFF hop
    // → 203.0.113.50 banned at the 3rd line; 10.0.0.6 (a proxy, no XFF) not counted;
    // the forgeable left-most hops 192.0.2.200 / 198.51.100.1 never keyed.
    let toml = source_toml("nginx", "access.log", NGINX_MAIN)
        + "[network]\ntrusted_proxies = [\"10.0.0.0/8\"]\n"
        + &override_toml("web_login_bruteforce", 3, "10m")
        + &ban_policy(&["web_login_bruteforce"]);
    let mut s = Stack::new(&toml, CLIENT_SEEN_RULE);
    s.feed_all(
        "nginx",
        r#"10.0.0.5 - - [22/Apr/2024:09:41:03 +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "192.0.2.200, 203.0.113.50"
10.0.0.5 - - [22/Apr/2024:09:41:04 +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "203.0.113.50"
10.0.0.5 - - [22/Apr/2024:09:41:05 +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "198.51.100.1, 203.0.113.50, 10.0.0.4"
10.0.0.6 - - [22/Apr/2024:09:41:06 +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "-""#,
    );
    assert_eq!(
        s.fired_by("web_login_bruteforce"),
        [(3, "203.0.113.50".to_owned())]
    );
    assert_eq!(s.bans(), [(3, "203.0.113.50/32".to_owned())]);
    // A forger repeating the same left-most hop behind three different real clients
    // must not get that hop banned.
    s.feed_all(
        "nginx",
        r#"10.0.0.5 - - [22/Apr/2024:09:41:07 +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "192.0.2.200, 203.0.113.61"
10.0.0.5 - - [22/Apr/2024:09:41:08 +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "192.0.2.200, 203.0.113.62"
10.0.0.5 - - [22/Apr/2024:09:41:09 +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "192.0.2.200, 203.0.113.63"
10.0.0.6 - - [22/Apr/2024:09:41:10 +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "-"
10.0.0.6 - - [22/Apr/2024:09:41:11 +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "-""#,
    );
    s.finish();
    assert_eq!(s.bans().len(), 1, "{:?}", s.bans());
    let keys = keyed(&s);
    for never in [
        "10.0.0.5",
        "10.0.0.6",
        "10.0.0.4",
        "192.0.2.200",
        "198.51.100.1",
    ] {
        assert!(!keys.contains(&never.to_owned()), "{never} keyed: {keys:?}");
    }
    assert_eq!(
        keys,
        [
            "203.0.113.50",
            "203.0.113.61",
            "203.0.113.62",
            "203.0.113.63"
        ]
    );
}

#[test]
fn remote_addr_with_port_keys_the_full_address_and_bad_ip_is_counted() {
    // Field case 10: `$remote_addr:$remote_port` → client 198.51.100.181 (never
    // `181:2225`); a value that is not an address is a counted `bad_ip` parse error.
    let fmt = r#"$remote_addr:$remote_port - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\""#;
    let parser = format!("{{ format = \"nginx\", log_format = \"{fmt}\" }}");
    let toml = source_toml("nginx", "access.log", &parser);
    let mut s = Stack::new(&toml, CLIENT_SEEN_RULE);
    s.feed(
        "nginx",
        r#"198.51.100.181:2225 - - [03/Apr/2024:11:26:52 +0000] "POST /api/login HTTP/1.1" 401 27 "-" "python-requests/2.31""#,
    );
    s.feed(
        "nginx",
        r#"198.51.100.999:2226 - - [03/Apr/2024:11:26:53 +0000] "POST /api/login HTTP/1.1" 401 27 "-" "python-requests/2.31""#,
    );
    s.finish();
    assert_eq!(keyed(&s), ["198.51.100.181"]);
    let sample = &s.fired[0].detection.samples[0];
    assert_eq!(sample.source_port, Some(2225));
    let st = s.stats("nginx");
    assert_eq!((st.events, st.failed), (1, 1));
    assert_eq!(st.failed_by_reason.get("bad_ip"), Some(&1));
    let metrics = s.metrics_text();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("palisade_parse_errors_total") && l.contains("reason=\"bad_ip\"")
        ),
        "{metrics}"
    );
}

#[test]
fn ipv6_clients_from_nginx_and_apache_error_logs_are_all_keyed() {
    // Field case 6: three events, addresses in RFC 5952 form, the 9th group of
    // `[client …]` is the port; no line rejected.
    // The app log's `[client …]` line carries no time of its own: it takes the time
    // of the line before it, so the three lines are one mixed stream (format `auto`).
    let toml = source_toml("mixed", "error.log", r#"{ format = "auto" }"#);
    let mut s = Stack::new(&toml, CLIENT_SEEN_RULE);
    s.feed_all(
        "mixed",
        r#"2024/03/05 10:00:01 [error] 311#311: *9 open() "/srv/www/wp-login.php" failed (2: No such file or directory), client: 2001:db8:abcd:ef01::7, server: shop.example.test, request: "GET /wp-login.php HTTP/1.1", host: "shop.example.test"
2024/03/05 10:00:02 [error] 311#311: *10 open() "/srv/www/wp-login.php" failed (2: No such file or directory), client: 2001:db8:1234:5678::7, server: shop.example.test, request: "GET /wp-login.php HTTP/1.1", host: "shop.example.test"
[client 2001:db8:abcd:ef01:e401:cd5:fff8:a845:60040] script not found: /wp-login.php"#,
    );
    s.finish();
    assert_eq!(
        keyed(&s),
        [
            "2001:db8:1234:5678::7",
            "2001:db8:abcd:ef01::7",
            "2001:db8:abcd:ef01:e401:cd5:fff8:a845",
        ]
    );
    let st = s.stats("mixed");
    assert_eq!((st.events, st.failed), (3, 0), "no line rejected");
}

#[test]
fn ipv6_with_unbracketed_port_bans_the_address_not_a_port_suffix() {
    // Field case 7: `client=2001:db8::1:58340` with a declared port → one key
    // 2001:db8::1 counted 3 times, banned at the 3rd; `2001:db8::1:5834` never seen.
    let toml = source_toml(
        "haproxy",
        "haproxy.log",
        r#"{ format = "logfmt", client_field = "client", client_port = true }"#,
    ) + &ban_policy(&["logfmt_login_bruteforce"])
        + "[respond]\nipv6_prefix = 128\n";
    let mut s = Stack::new(&toml, LOGFMT_LOGIN_RULES);
    s.feed_all(
        "haproxy",
        "2024-06-01T08:00:01Z auth 401 client=2001:db8::1:58340 user=frank
2024-06-01T08:00:02Z auth 401 client=[2001:db8::1]:58341 user=frank
2024-06-01T08:00:03Z auth 401 client=2001:db8::1:58342 user=frank",
    );
    assert_eq!(
        s.fired_by("logfmt_login_bruteforce"),
        [(3, "2001:db8::1".to_owned())]
    );
    assert_eq!(s.fired[0].detection.count, 3);
    assert_eq!(s.bans(), [(3, "2001:db8::1/128".to_owned())]);
    let ports: Vec<_> = s.fired[0]
        .detection
        .samples
        .iter()
        .map(|e| e.source_port)
        .collect();
    assert!(ports.contains(&Some(58342)), "{ports:?}");
}

#[test]
fn ipv4_mapped_client_is_one_key_banned_once_and_not_realerted() {
    // Field case 9: four spellings of 192.0.2.77 → one key; banned at the 3rd line
    // with an IPv4 rule; the 4th line (while banned) brings no new decision.
    let toml = source_toml("app", "app.log", JSON) + &ban_policy(&["app_login_bruteforce"]);
    let mut s = Stack::new(&toml, APP_LOGIN_RULES);
    s.feed_all(
        "app",
        r#"{"time":"2024-05-06T21:14:01Z","level":"warn","msg":"login failed","user":"alice","ip":"::ffff:192.0.2.77"}
{"time":"2024-05-06T21:14:03Z","level":"warn","msg":"login failed","user":"alice","ip":"192.0.2.77"}
{"time":"2024-05-06T21:14:05Z","level":"warn","msg":"login failed","user":"bob","ip":"::ffff:192.0.2.77"}
{"time":"2024-05-06T21:14:09Z","level":"warn","msg":"login failed","user":"bob","ip":"::FFFF:c000:024d"}"#,
    );
    assert_eq!(
        s.fired_by("app_login_bruteforce"),
        [(3, "192.0.2.77".to_owned())]
    );
    assert_eq!(s.bans(), [(3, "192.0.2.77/32".to_owned())]);
    assert!(s.decisions_from(4).is_empty(), "4th line re-alerted");
    s.finish();
    assert_eq!(s.bans().len(), 1, "closing the episode is not a second ban");
    assert!(
        s.decisions
            .iter()
            .all(|(_, d)| !matches!(d.kind, DecisionKind::Alert { .. })),
        "no extra alert"
    );
    assert_eq!(keyed(&s), ["192.0.2.77"]);
    assert!(s.responder.unbanned_at(ip("192.0.2.77")).is_none());
}

// ------------------------------------------------------------------ manual unban

#[test]
fn replayed_failures_from_before_a_manual_unban_are_not_recounted() {
    // Field case 19: 198.51.100.61 banned permanently, unbanned by the operator,
    // palisade restarted; the replay of the last 10 min holds the 3 failures again.
    // They are not counted; a new failure after the restart counts from 1.
    let toml = source_toml("app", "app.log", JSON)
        + &ban_policy(&["app_login_bruteforce"])
        + "[respond]\nescalation = [\"permanent\"]\n";
    let mut s = Stack::new(&toml, APP_LOGIN_RULES);
    let old = r#"{"time":"2024-02-01T10:00:00Z","msg":"login failed","user":"kim","ip":"198.51.100.61"}
{"time":"2024-02-01T10:00:04Z","msg":"login failed","user":"kim","ip":"198.51.100.61"}
{"time":"2024-02-01T10:00:08Z","msg":"login failed","user":"kim","ip":"198.51.100.61"}"#;
    s.feed_all("app", old);
    assert_eq!(s.bans(), [(3, "198.51.100.61/32".to_owned())]);

    let unban_time = at("2024-02-01T10:02:00Z");
    let mut s = s.restart(Some(unban_time));
    let lifted = s
        .responder
        .ban_remove("198.51.100.61/32".parse().unwrap(), "operator:ann");
    assert_eq!(lifted.unwrap().len(), 1);

    let mut s = s.restart(Some(at("2024-02-01T10:05:00Z")));
    assert!(
        s.responder.bans().unwrap().is_empty(),
        "no rule after restart"
    );
    s.feed_all("app", old); // the replay
    assert!(s.fired.is_empty(), "replayed failures were counted again");
    assert_eq!(s.stats("app").forgiven, 3);

    // New failures after the unban: the 3rd of them (not the 1st) bans.
    s.feed_all(
        "app",
        r#"{"time":"2024-02-01T10:05:01Z","msg":"login failed","user":"kim","ip":"198.51.100.61"}
{"time":"2024-02-01T10:05:02Z","msg":"login failed","user":"kim","ip":"198.51.100.61"}"#,
    );
    assert!(s.bans().is_empty(), "banned before the 3rd new failure");
    s.feed(
        "app",
        r#"{"time":"2024-02-01T10:05:03Z","msg":"login failed","user":"kim","ip":"198.51.100.61"}"#,
    );
    assert_eq!(s.bans(), [(6, "198.51.100.61/32".to_owned())]);
    assert_eq!(s.fired[0].detection.count, 3);
    assert_eq!(s.fired[0].detection.first_seen, at("2024-02-01T10:05:01Z"));
}

// ------------------------------------------------------------------ long lines

/// Reads everything `tailer` has (bounded polls) into `stack` as one source.
fn drain_tailer(tailer: &mut Tailer, stack: &mut Stack) -> Vec<TailNotice> {
    let mut notices = Vec::new();
    loop {
        let mut lines = Vec::new();
        notices.extend(tailer.poll(&mut lines));
        for line in &lines {
            stack.feed_line(line);
        }
        if !tailer.has_backlog() && lines.is_empty() {
            return notices;
        }
    }
}

fn tail_spec(stack: &Stack, source: &str) -> TailSpec {
    let cfg = stack
        .config
        .sources
        .iter()
        .find(|s| s.name == source)
        .expect("source");
    TailSpec::from_config(cfg)
}

fn nginx_line(ip: &str, second: u32, request: &str, status: u16, ua: &str) -> String {
    format!(
        "{ip} - - [01/Mar/2024:12:00:{second:02} +0000] \"{request}\" {status} 12 \"-\" \"{ua}\"\n"
    )
}

#[test]
fn failures_after_two_thousand_huge_lines_are_detected_at_the_third() {
    // Field case 34: 2,000 noise lines of 20,000 characters, then 3 failed logins for
    // 192.0.2.150 → ban at the 3rd, whether the long lines are kept whole (default
    // cap 64 KiB) or cut (cap 8 KiB, counted as truncated, no format alarm).
    for cap in [64 * 1024, 8 * 1024] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let toml = format!(
            "{}max_line_bytes = {cap}\n{}{}",
            source_toml("nginx", &log.display().to_string(), NGINX_COMBINED),
            override_toml("web_login_bruteforce", 3, "10m"),
            ban_policy(&["web_login_bruteforce"])
        );
        let mut s = Stack::new(&toml, "");
        let mut f = File::create(&log).unwrap();
        let noise_url = format!("GET /report?data={} HTTP/1.1", "a".repeat(19_950));
        for i in 0..2000 {
            let line = nginx_line("198.51.100.3", i % 60, &noise_url, 200, "db-export");
            assert!(line.len() > 20_000);
            f.write_all(line.as_bytes()).unwrap();
        }
        for i in 0..3 {
            let line = nginx_line("192.0.2.150", i, "POST /login HTTP/1.1", 401, "curl");
            f.write_all(line.as_bytes()).unwrap();
        }
        drop(f);
        let spec = tail_spec(&s, "nginx");
        let mut tailer = Tailer::new(vec![spec], Vec::new(), TailOptions::default());
        drain_tailer(&mut tailer, &mut s);
        assert_eq!(s.lines, 2003, "cap {cap}");
        assert_eq!(
            s.fired_by("web_login_bruteforce"),
            [(2003, "192.0.2.150".to_owned())],
            "cap {cap}"
        );
        assert_eq!(s.bans(), [(2003, "192.0.2.150/32".to_owned())]);
        let st = s.stats("nginx");
        let cut = if cap < 20_000 { 2000 } else { 0 };
        assert_eq!(st.truncated, cut, "cap {cap}");
        assert!(
            s.fired
                .iter()
                .all(|f| f.detection.rule.name.as_deref() != Some("log_format_mismatch")),
            "cut lines raised a format alarm (cap {cap})"
        );
        assert!(
            s.metrics_text().contains(&format!(
                "palisade_lines_truncated_total{{source=\"nginx\"}} {cut}"
            )),
            "{}",
            s.metrics_text()
        );
    }
}

#[test]
fn cut_line_never_matches_where_the_whole_line_does_not() {
    // Field case 34 (the maintainer's warning): cutting a line at `max_line_bytes`
    // must not create a match. A user agent saying `UNION selected a few friends` is
    // `<scriptless> kiosk` is no script tag; cut right after `<script` it would be.
    use palisade::detect::classify::Classifier;
    use palisade::sources::file::{ReadOptions, read_lines};

    let ua = "Mozilla/5.0 (<scriptless> kiosk)";
    let whole = nginx_line("198.51.100.44", 7, "GET /search?page=2 HTTP/1.1", 200, ua);
    let cap = whole.find("less>").unwrap();
    let cut_ua = &whole[whole.find("Mozilla").unwrap()..cap];
    // The input is meaningful: the cut agent alone does read as SQL injection.
    let (classes, _) = Classifier::new().classify_text("user_agent.original", cut_ua);
    assert!(
        !classes.is_empty(),
        "{cut_ua} is not flagged; pick another cut"
    );

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    fs::write(&log, &whole).unwrap();
    for (max, truncated) in [(64 * 1024, 0), (cap, 1)] {
        let toml = format!(
            "{}max_line_bytes = {max}\n",
            source_toml("nginx", &log.display().to_string(), NGINX_COMBINED)
        );
        let mut s = Stack::new(&toml, "");
        let opts = ReadOptions {
            max_line_bytes: max,
            ..ReadOptions::default()
        };
        read_lines(&Arc::from("nginx"), &log, &opts, |line| {
            s.feed_line(line);
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
        s.finish();
        let st = s.stats("nginx");
        assert_eq!((st.events, st.truncated), (1, truncated), "cap {max}");
        let fired: Vec<_> = s
            .fired
            .iter()
            .map(|f| f.detection.rule.name.clone().unwrap_or_default())
            .collect();
        assert!(fired.is_empty(), "cap {max}: {fired:?}");
        assert!(
            !s.metrics_text().contains("event_type=\"xss\""),
            "cap {max}: counted as XSS"
        );
        assert_eq!(st.cut_fields, truncated, "cap {max}");
    }
}

#[test]
fn cut_line_keeps_the_whole_path_for_rules_on_it() {
    // Field case 34: with the cut inside the query, the path before `?` is whole and
    // still classified (a sensitive-file probe is still seen); the cut query is not.
    let whole = format!(
        "2024-06-01T08:00:01Z GET status=404 client=198.51.100.45 path=\"/.env?x={}\" user=-",
        "b".repeat(300)
    );
    let cap = whole.find("bbbb").unwrap() + 100;
    let toml = source_toml("app", "app.log", r#"{ format = "logfmt" }"#);
    let mut s = Stack::new(&toml, CLIENT_SEEN_RULE);
    s.feed_line(&Line {
        source: Arc::from("app"),
        path: Arc::from("app.log"),
        offset: 0,
        text: whole[..cap].to_owned(),
        truncated: true,
        invalid_utf8: false,
    });
    s.finish();
    assert_eq!(s.stats("app").cut_fields, 1);
    let ev = &s.fired_by_sample("client_seen");
    assert_eq!(ev.url_path(), Some("/.env"));
    assert_eq!(ev.url_query(), None);
    let classes: Vec<_> = ev.attacks.names().collect();
    assert_eq!(classes, ["sensitive_file"]);
}

// ------------------------------------------------------------------ files: rotation

fn count_notices(notices: &[TailNotice], kind: &str) -> usize {
    notices.iter().filter(|n| n.kind() == kind).count()
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A stack following `log` (one source) with the Tailer, as `watch` does.
fn followed(log: &Path, parser: &str, extra_toml: &str, rules: &str) -> (Stack, Tailer) {
    let toml = source_toml("src", &log.display().to_string(), parser) + extra_toml;
    let s = Stack::new(&toml, rules);
    let tailer = Tailer::new(
        vec![tail_spec(&s, "src")],
        Vec::new(),
        TailOptions::default(),
    );
    (s, tailer)
}

#[test]
fn in_place_rewrite_counts_each_failure_once_and_does_not_ban_early() {
    // Field case 1: rule 4 failures / 10 min; the capped log is rewritten in place
    // (A, B → B, C): 198.51.100.23 is counted 3 times (A, B, C), B not twice, no ban;
    // the rewrite is reported.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app-errors.log");
    let a = "2024-05-01T10:00:01Z login failed user=erin ip=198.51.100.23\n";
    let b = "2024-05-01T10:00:07Z login failed user=erin ip=198.51.100.23\n";
    let c = "2024-05-01T10:00:12Z login failed user=erin ip=198.51.100.23\n";
    fs::write(&log, format!("{a}{b}")).unwrap();
    let extra = override_toml("logfmt_login_bruteforce", 4, "10m")
        + &ban_policy(&["logfmt_login_bruteforce"]);
    let parser = r#"{ format = "logfmt", client_field = "ip" }"#;
    let (mut s, mut tailer) = followed(&log, parser, &extra, LOGFMT_LOGIN_RULES);
    drain_tailer(&mut tailer, &mut s);

    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    f.write_all(format!("{b}{c}").as_bytes()).unwrap();
    drop(f);
    let notices = drain_tailer(&mut tailer, &mut s);
    assert_eq!(count_notices(&notices, "rewritten"), 1, "{notices:?}");
    assert_eq!(s.stats("src").events, 3, "A, B, C once each");
    assert!(
        s.fired.is_empty(),
        "banned after 3 failures with a rule of 4"
    );
    assert!(s.bans().is_empty());

    // The count really is 3: the next failure is the 4th and bans.
    append(
        &log,
        "2024-05-01T10:00:20Z login failed user=erin ip=198.51.100.23\n",
    );
    drain_tailer(&mut tailer, &mut s);
    assert_eq!(s.bans(), [(4, "198.51.100.23/32".to_owned())]);
}

#[test]
fn rotation_keeps_reading_renamed_file_then_new_file() {
    // Field case 2: rule 4 / 10 min; 2 failures in access.log, rename to
    // access.log.1, 1 more appended there, new access.log with the 4th failure →
    // banned at the 4th (the line in the new file); a 5th line is still seen.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let line = |s: u32| nginx_line("203.0.113.40", s, "POST /login HTTP/1.1", 401, "curl");
    fs::write(&log, format!("{}{}", line(1), line(2))).unwrap();
    let extra =
        override_toml("web_login_bruteforce", 4, "10m") + &ban_policy(&["web_login_bruteforce"]);
    let (mut s, mut tailer) = followed(&log, NGINX_COMBINED, &extra, "");
    drain_tailer(&mut tailer, &mut s);

    let rotated = dir.path().join("access.log.1");
    fs::rename(&log, &rotated).unwrap();
    append(&rotated, &line(3));
    File::create(&log).unwrap();
    append(&log, &line(4));
    let notices = drain_tailer(&mut tailer, &mut s);
    assert_eq!(count_notices(&notices, "rotated"), 1, "{notices:?}");
    assert_eq!(s.lines, 4, "all four lines read");
    assert_eq!(
        s.fired_by("web_login_bruteforce"),
        [(4, "203.0.113.40".to_owned())]
    );
    assert_eq!(s.bans(), [(4, "203.0.113.40/32".to_owned())]);
    let last = s.fired[0].detection.samples.last().unwrap();
    assert_eq!(
        last.offset, 0,
        "the 4th failure is the new file's first line"
    );
    assert_eq!(last.timestamp, at("2024-03-01T12:00:04Z"));

    append(&log, &line(5));
    drain_tailer(&mut tailer, &mut s);
    assert_eq!(s.lines, 5, "the new file is followed after the rotation");
    assert_eq!(s.stats("src").events, 5);
    assert_eq!(s.bans().len(), 1, "no second ban while banned");
}

#[test]
fn copytruncate_refill_is_processed_from_offset_zero() {
    // Field case 4: access.log at 1,200 bytes (read), truncated by copytruncate and
    // refilled with (A) 3 lines / 300 bytes or (B) 20 lines / 2,000 bytes before the
    // next read: every refill line is processed, none skipped, one truncation.
    for refill in [3u32, 20] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let old: String = (0..12)
            .map(|i| {
                format!(
                    "{:<99}\n",
                    nginx_line("198.51.100.4", i, "GET / HTTP/1.1", 200, "a").trim_end()
                )
            })
            .collect();
        assert_eq!(old.len(), 1200);
        fs::write(&log, &old).unwrap();
        let (mut s, mut tailer) = followed(&log, NGINX_COMBINED, "", CLIENT_SEEN_RULE);
        drain_tailer(&mut tailer, &mut s);
        assert_eq!(s.stats("src").events, 12);

        fs::copy(&log, dir.path().join("access.log.1")).unwrap();
        let new: String = (0..refill)
            .map(|i| {
                format!(
                    "{:<99}\n",
                    nginx_line("192.0.2.44", i, "GET / HTTP/1.1", 200, "b").trim_end()
                )
            })
            .collect();
        assert_eq!(new.len(), refill as usize * 100);
        let mut f = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&log)
            .unwrap();
        f.write_all(new.as_bytes()).unwrap();
        drop(f);
        let notices = drain_tailer(&mut tailer, &mut s);
        assert_eq!(count_notices(&notices, "truncated"), 1, "refill {refill}");
        let st = s.stats("src");
        assert_eq!(
            (st.lines, st.events, st.failed),
            (12 + u64::from(refill), 12 + u64::from(refill), 0)
        );
        s.finish();
        let new_client = s
            .closed
            .iter()
            .find(|d| d.key_value("source.ip") == Some("192.0.2.44"))
            .expect("refill lines detected");
        assert_eq!(new_client.count, u64::from(refill), "refill {refill}");
    }
}

#[test]
fn crlf_and_cr_only_files_ban_at_the_third_line_with_clean_fields() {
    // Field case 38: the same 3 failed logins for 192.0.2.80 saved with LF, CRLF and
    // CR-only endings: each gives 3 events and a ban at the 3rd, no `\r` in any
    // field, and one warning for the CR-only file.
    for (ending, name) in [("\n", "lf"), ("\r\n", "crlf"), ("\r", "cr")] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let text: String = (0..3)
            .map(|i| {
                nginx_line("192.0.2.80", i, "POST /login HTTP/1.1", 401, "Mozilla/5.0")
                    .replace('\n', ending)
            })
            .collect();
        fs::write(&log, text).unwrap();
        let extra = override_toml("web_login_bruteforce", 3, "10m")
            + &ban_policy(&["web_login_bruteforce"]);
        let (mut s, mut tailer) = followed(&log, NGINX_COMBINED, &extra, "");
        let notices = drain_tailer(&mut tailer, &mut s);
        assert_eq!(s.stats("src").events, 3, "{name}");
        assert_eq!(s.bans(), [(3, "192.0.2.80/32".to_owned())], "{name}");
        let warned = count_notices(&notices, "cr_only_endings");
        assert_eq!(warned, usize::from(name == "cr"), "{name}: {notices:?}");
        for ev in &s.fired[0].detection.samples {
            let fields = [
                ev.raw.as_str(),
                ev.user_agent.as_deref().unwrap_or(""),
                ev.url_original.as_deref().unwrap_or(""),
            ];
            assert!(fields.iter().all(|f| !f.contains('\r')), "{name}: {ev:?}");
            assert_eq!(ev.user_agent.as_deref(), Some("Mozilla/5.0"), "{name}");
        }
    }
}

// ------------------------------------------------------------------ volume

fn limiting_line(ip: &str, second: u32, n: usize) -> String {
    format!(
        "2024/05/12 03:41:{second:02} [error] 2211#2211: *{n} limiting requests, excess: 7.250 by zone \"login\", client: {ip}, server: shop.example.test, request: \"POST /login HTTP/1.1\", host: \"shop.example.test\""
    )
}

#[test]
fn flood_does_not_delay_the_ban_of_a_quiet_client() {
    // Field case 36: 50,000 `limiting requests` lines from 200 addresses in 5 s;
    // 203.0.113.5's 3rd line is line 40,000 and the rule bans after 3 → the detection
    // fires at exactly that line, and the lag gauge is exported for the source.
    let toml = source_toml("nginx-error", "error.log", r#"{ format = "nginx_error" }"#)
        + &override_toml("rate_limit_repeated", 3, "1m")
        + &ban_policy(&["rate_limit_repeated"]);
    let mut s = Stack::new(&toml, "");
    let quiet = [10_000, 25_000, 40_000];
    let mut other = 0usize;
    for n in 1..=50_000usize {
        let second = (n / 10_000) as u32; // 10,000 lines a second
        let ip = if quiet.contains(&n) {
            "203.0.113.5".to_owned()
        } else {
            other += 1;
            format!("198.51.100.{}", 1 + other % 199)
        };
        s.feed("nginx-error", &limiting_line(&ip, second, n));
    }
    let quiet_fired: Vec<_> = s
        .fired_by("rate_limit_repeated")
        .into_iter()
        .filter(|(_, ip)| ip == "203.0.113.5")
        .collect();
    assert_eq!(quiet_fired, [(40_000, "203.0.113.5".to_owned())]);
    assert!(s.bans().contains(&(40_000, "203.0.113.5/32".to_owned())));
    assert_eq!(
        s.fired_by("rate_limit_repeated").len(),
        200,
        "every flooder too"
    );
    let st = s.stats("nginx-error");
    assert_eq!((st.events, st.failed), (50_000, 0));
    let metrics = s.metrics_text();
    assert!(
        metrics.contains("palisade_processing_lag_seconds{source=\"nginx-error\"}"),
        "{metrics}"
    );
}

#[test]
fn sub_threshold_failures_from_many_clients_keep_state_bounded() {
    // Field case 37 (behaviour; memory figures are measured elsewhere): failures from
    // many distinct addresses, 2 each, threshold 3 / 10 min → no detection; the window
    // table never exceeds its key ceiling (the excess is evicted and counted) and
    // empties once the window has passed.
    let toml = source_toml("app", "app.log", JSON)
        + "[detection]\nmax_keys_per_rule = 5000\n"
        + &ban_policy(&["app_login_bruteforce"]);
    let mut s = Stack::new(&toml, APP_LOGIN_RULES);
    let clients = 20_000u32;
    for round in 0..2 {
        for i in 0..clients {
            let ip = std::net::Ipv4Addr::from(0xC000_0000 + i); // 192.0.0.0/16-ish
            let second = round * 120 + i / 1000;
            let line = format!(
                "{{\"time\":\"2024-05-01T10:{:02}:{:02}Z\",\"msg\":\"login failed\",\"ip\":\"{ip}\"}}",
                second / 60,
                second % 60
            );
            s.feed("app", &line);
        }
    }
    assert!(s.fired.is_empty(), "no client reached 3");
    let table = |s: &Stack| {
        s.pipeline
            .engine()
            .stats()
            .rules
            .into_iter()
            .find(|r| r.rule_id == "3f3e7a0e-2a47-4b0c-9b61-55b1d3f0a9d2")
            .expect("correlation table")
    };
    let t = table(&s);
    assert!(t.live_keys <= 5000, "{} live keys", t.live_keys);
    assert!(t.evicted_keys > 0, "ceiling never reached");
    let mut out = Vec::new();
    s.pipeline.advance(at("2024-05-01T10:30:00Z"), &mut out);
    assert!(out.is_empty());
    assert_eq!(table(&s).live_keys, 0, "entries outlived their window");
}

// ------------------------------------------------------------------ formats

const TIMED_FORMAT: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent $request_time "$http_referer" "$http_user_agent""#;

fn timed_line(second: u32) -> String {
    format!(
        r#"198.51.100.31 - - [14/Sep/2024:09:31:{second:02} +0200] "POST /login HTTP/1.1" 401 31 0.012 "-" "Mozilla/5.0""#
    )
}

#[test]
fn wrong_log_format_raises_one_mismatch_detection_with_one_sample() {
    // Field case 41: the `timed` log_format read as `combined` → > 50 % of the first
    // 100 lines fail → exactly one "Log format mismatch" detection with one sample.
    let toml = source_toml("nginx", "access.log", NGINX_COMBINED);
    let mut s = Stack::new(&toml, "");
    for i in 0..300 {
        s.feed("nginx", &timed_line(i % 60));
    }
    s.finish();
    let mismatch: Vec<_> = s
        .fired
        .iter()
        .filter(|f| f.detection.rule.title == "Log format mismatch")
        .collect();
    assert_eq!(mismatch.len(), 1, "one alarm, not one per line");
    assert_eq!(mismatch[0].detection.samples.len(), 1);
    assert_eq!(mismatch[0].detection.samples[0].raw, timed_line(0));
    assert!(mismatch[0].line <= 100, "raised within the first 100 lines");
    assert_eq!(s.stats("nginx").failed, 300);

    // Declared format: parsed, status 401 and request_time 0.012, no alarm.
    let parser = format!("{{ format = \"nginx\", log_format = '{TIMED_FORMAT}' }}");
    let mut s = Stack::new(
        &source_toml("nginx", "access.log", &parser),
        CLIENT_SEEN_RULE,
    );
    s.feed("nginx", &timed_line(44));
    s.finish();
    assert_eq!(s.stats("nginx").failed, 0);
    let ev = s.fired_by_sample("client_seen");
    assert_eq!(ev.status, Some(401));
    assert_eq!(ev.extra("nginx.request_time"), Some("0.012"));
    assert!(
        s.fired
            .iter()
            .all(|f| f.detection.rule.title != "Log format mismatch")
    );
}

#[test]
fn scan_reports_one_format_mismatch_for_a_custom_log_format() {
    // Field case 41 through the binary: `palisade scan` with the default format
    // prints one mismatch detection (with one sample); with `--nginx-format` the lines
    // parse and no mismatch is reported.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let text: String = (0..150).map(|i| timed_line(i % 60) + "\n").collect();
    fs::write(&log, text).unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args([
                "scan",
                "--json",
                "--no-store",
                "--no-progress",
                "--format",
                "nginx",
            ])
            .args(extra)
            .arg(&log)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let detections: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (
            detections,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ds, _) = run(&[]);
    let mismatch: Vec<_> = ds
        .iter()
        .filter(|d| d["rule"]["title"] == "Log format mismatch")
        .collect();
    assert_eq!(mismatch.len(), 1, "{ds:?}");
    assert_eq!(
        mismatch[0]["samples"].as_array().map(Vec::len),
        Some(1),
        "{}",
        mismatch[0]
    );

    let (ds, stderr) = run(&["--nginx-format", TIMED_FORMAT]);
    assert!(
        ds.iter()
            .all(|d| d["rule"]["title"] != "Log format mismatch"),
        "{ds:?}"
    );
    // Parsed: the 150 × 401 on /login are a brute force by 198.51.100.31.
    assert!(
        ds.iter()
            .any(|d| d["rule"]["title"] == "Web Login Brute Force"
                && d["key"]["source.ip"] == "198.51.100.31"
                && d["samples"][0]["nginx.request_time"] == "0.012"),
        "{stderr}"
    );
}

#[test]
fn nested_json_client_and_array_evidence_reach_the_detection() {
    // Field case 42: client from `req.ip`; both attempts kept as evidence in the
    // detection and in the alert built from it.
    let toml = source_toml("app", "app.log", JSON) + &ban_policy(&["app_login_bruteforce"]);
    let mut s = Stack::new(&toml, APP_LOGIN_RULES);
    for second in [0, 5, 9] {
        s.feed(
            "app",
            &format!(
                r#"{{"time":"2024-11-30T12:00:{second:02}Z","level":"warn","msg":"login failed","req":{{"ip":"198.51.100.71","ua":"curl/8.5.0"}},"attempts":[{{"user":"alice","ok":false}},{{"user":"bob","ok":false}}]}}"#
            ),
        );
    }
    assert_eq!(s.bans(), [(3, "198.51.100.71/32".to_owned())]);
    let d = &s.fired[0].detection;
    let ev = &d.samples[0];
    assert_eq!(ev.extra("attempts[0].user"), Some("alice"));
    assert_eq!(ev.extra("attempts[1].user"), Some("bob"));
    let alert = palisade::respond::alert::Alert::from_detection(d, "ban", 5);
    assert_eq!(alert.ip.as_deref(), Some("198.51.100.71"));
    assert!(
        alert.samples.iter().any(|l| l.contains("\"user\":\"bob\"")),
        "{:?}",
        alert.samples
    );
}

#[test]
fn journald_sshd_session_and_sshd_failures_ban_at_the_third() {
    // Field case 45: `sshd-session` and `sshd` both count; ban at the 3rd; time from
    // `__REALTIME_TIMESTAMP`.
    let toml = source_toml("journal", "journal.json", r#"{ format = "journal" }"#)
        + &override_toml("ssh_bruteforce", 3, "10m")
        + &ban_policy(&["ssh_bruteforce"]);
    let mut s = Stack::new(&toml, "");
    s.feed_all(
        "journal",
        r#"{"__REALTIME_TIMESTAMP":"1735752216000000","_SYSTEMD_UNIT":"ssh.service","_COMM":"sshd-session","MESSAGE":"Invalid user backup from 203.0.113.31 port 41022"}
{"__REALTIME_TIMESTAMP":"1735752218000000","_SYSTEMD_UNIT":"ssh.service","_COMM":"sshd-session","MESSAGE":"Invalid user deploy from 203.0.113.31 port 41030"}
{"__REALTIME_TIMESTAMP":"1735752220000000","_SYSTEMD_UNIT":"ssh.service","_COMM":"sshd","MESSAGE":"Invalid user gitlab from 203.0.113.31 port 41041"}"#,
    );
    assert_eq!(
        s.fired_by("ssh_bruteforce"),
        [(3, "203.0.113.31".to_owned())]
    );
    assert_eq!(s.bans(), [(3, "203.0.113.31/32".to_owned())]);
    let d = &s.fired[0].detection;
    assert_eq!(d.first_seen, at("2025-01-01T17:23:36Z"));
    assert_eq!(d.last_seen, at("2025-01-01T17:23:40Z"));
}

#[test]
fn all_nginx_rate_limit_forms_count_per_client_and_in_metrics() {
    // Field case 46: limit_conn, delay and limit_req lines are all rate-limit events;
    // per-IP counts 198.51.100.12 = 2, 2001:db8::12 = 1 (a rule of 2 fires for the
    // first only); `palisade_nginx_ratelimit_total{zone,kind}` counts each.
    let toml = source_toml("nginx-error", "error.log", r#"{ format = "nginx_error" }"#)
        + &override_toml("rate_limit_repeated", 2, "1m");
    let mut s = Stack::new(&toml, "");
    s.feed_all(
        "nginx-error",
        r#"2024/05/12 03:41:07 [error] 2211#2211: *5531 limiting connections by zone "perip", client: 198.51.100.12, server: shop.example.test, request: "GET / HTTP/1.1", host: "shop.example.test"
2024/05/12 03:41:08 [warn] 2211#2211: *5534 delaying request, excess: 0.512, by zone "api", client: 198.51.100.12, server: shop.example.test, request: "GET /api/items HTTP/1.1", host: "shop.example.test"
2024/05/12 03:41:09 [error] 2211#2211: *5537 limiting requests, excess: 7.250 by zone "login", client: 2001:db8::12, server: shop.example.test, request: "POST /login HTTP/2.0", host: "shop.example.test""#,
    );
    s.finish();
    assert_eq!(
        s.fired_by("rate_limit_repeated"),
        [(2, "198.51.100.12".to_owned())]
    );
    let counts: Vec<(String, u64)> = s
        .closed
        .iter()
        .filter(|d| d.rule.name.as_deref() == Some("rate_limit_repeated"))
        .map(|d| (d.key_value("source.ip").unwrap().to_owned(), d.count))
        .collect();
    assert_eq!(counts, [("198.51.100.12".to_owned(), 2)]);
    let metrics = s.metrics_text();
    for (zone, kind) in [("perip", "conn"), ("api", "delay"), ("login", "req")] {
        let series = format!("palisade_nginx_ratelimit_total{{zone=\"{zone}\",kind=\"{kind}\"}} 1");
        assert!(metrics.contains(&series), "{series} missing:\n{metrics}");
    }
}
