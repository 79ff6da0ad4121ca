//! Field cases from FIELD-CASES.md, checked at the parser level: the events the
//! parsers produce for each case's input (addresses in RFC 5952, times in UTC).

use std::sync::Arc;

use palisade::config::{JsonFieldMap, NetworkConfig, ParserConfig, SourceConfig};
use palisade::event::{Event, EventKind};
use palisade::parse::{self, FormatMonitor, ParseError, Parser};
use palisade::sources::Line;

fn line(n: usize, text: &str) -> Line {
    Line {
        source: Arc::from("test"),
        path: Arc::from("test.log"),
        offset: n as u64 * 100,
        text: text.to_owned(),
        truncated: false,
        invalid_utf8: false,
    }
}

fn source(parser: ParserConfig, timezone: Option<&str>) -> SourceConfig {
    SourceConfig {
        name: "test".into(),
        path: "test.log".into(),
        parser,
        timezone: timezone.map(str::to_owned),
        ..SourceConfig::default()
    }
}

fn nginx(format: &str) -> ParserConfig {
    ParserConfig::Nginx {
        log_format: format.into(),
    }
}

/// Parses every line, failing the test on any parse error.
fn parse_all(p: &mut dyn Parser, input: &str) -> Vec<Event> {
    let mut out = Vec::new();
    for (i, text) in input.lines().enumerate() {
        p.parse(&line(i, text), &mut out)
            .unwrap_or_else(|e| panic!("line {} rejected: {e}: {text}", i + 1));
    }
    p.flush(&mut out);
    out
}

fn run(cfg: ParserConfig, tz: Option<&str>, net: &NetworkConfig, input: &str) -> Vec<Event> {
    let mut p = parse::build(&source(cfg, tz), net).expect("parser builds");
    parse_all(p.as_mut(), input)
}

fn ips(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.source_ip.map(|i| i.to_string()).unwrap_or_default())
        .collect()
}

fn times(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.timestamp.to_string()).collect()
}

#[test]
fn ipv6_clients_parse_whatever_their_hex_letters() {
    // field case 6
    let input = r#"2024/03/05 10:00:01 [error] 311#311: *9 open() "/srv/www/wp-login.php" failed (2: No such file or directory), client: 2001:db8:abcd:ef01::7, server: shop.example.test, request: "GET /wp-login.php HTTP/1.1", host: "shop.example.test"
2024/03/05 10:00:02 [error] 311#311: *10 open() "/srv/www/wp-login.php" failed (2: No such file or directory), client: 2001:db8:1234:5678::7, server: shop.example.test, request: "GET /wp-login.php HTTP/1.1", host: "shop.example.test"
[client 2001:db8:abcd:ef01:e401:cd5:fff8:a845:60040] script not found: /wp-login.php"#;
    let events = run(ParserConfig::Auto, None, &NetworkConfig::default(), input);
    assert_eq!(
        ips(&events),
        [
            "2001:db8:abcd:ef01::7",
            "2001:db8:1234:5678::7",
            "2001:db8:abcd:ef01:e401:cd5:fff8:a845"
        ]
    );
    assert_eq!(events[2].source_port, Some(60040));
    assert_eq!(events[0].url_path(), Some("/wp-login.php"));
}

#[test]
fn ipv6_with_unbracketed_port_is_split_at_the_last_colon() {
    // field case 7
    let input = "2024-06-01T08:00:01Z auth 401 client=2001:db8::1:58340 user=frank
2024-06-01T08:00:02Z auth 401 client=[2001:db8::1]:58341 user=frank
2024-06-01T08:00:03Z auth 401 client=2001:db8::1:58342 user=frank";
    let cfg = ParserConfig::Logfmt {
        client_field: "client".into(),
        client_port: true,
    };
    let events = run(cfg.clone(), None, &NetworkConfig::default(), input);
    assert_eq!(ips(&events), ["2001:db8::1"; 3]);
    let ports: Vec<_> = events.iter().map(|e| e.source_port).collect();
    assert_eq!(ports, [Some(58340), Some(58341), Some(58342)]);
    assert_eq!(events[0].status, Some(401));
    assert_eq!(events[0].user_name.as_deref(), Some("frank"));

    let mut p = parse::build(&source(cfg, None), &NetworkConfig::default()).unwrap();
    let bad = line(
        0,
        "2024-06-01T08:00:04Z auth 401 client=2001:db8::1:5834x user=frank",
    );
    let err = p.parse(&bad, &mut Vec::new()).unwrap_err();
    assert_eq!(err.reason(), "bad_ip");
}

#[test]
fn ipv4_mapped_addresses_are_normalised_to_ipv4() {
    // field case 9
    let input = r#"{"time":"2024-05-06T21:14:01Z","level":"warn","msg":"login failed","user":"alice","ip":"::ffff:192.0.2.77"}
{"time":"2024-05-06T21:14:03Z","level":"warn","msg":"login failed","user":"alice","ip":"192.0.2.77"}
{"time":"2024-05-06T21:14:05Z","level":"warn","msg":"login failed","user":"bob","ip":"::ffff:192.0.2.77"}
{"time":"2024-05-06T21:14:09Z","level":"warn","msg":"login failed","user":"bob","ip":"::FFFF:c000:024d"}"#;
    let cfg = ParserConfig::Json {
        fields: JsonFieldMap::default(),
    };
    let events = run(cfg, None, &NetworkConfig::default(), input);
    assert_eq!(ips(&events), ["192.0.2.77"; 4]);
    assert!(events.iter().all(|e| e.source_ip.unwrap().is_ipv4()));
    assert!(
        events
            .iter()
            .all(|e| e.action.as_deref() == Some("login_failed"))
    );
    assert!(
        events
            .iter()
            .all(|e| e.outcome.as_deref() == Some("failure"))
    );
    assert_eq!(events[3].user_name.as_deref(), Some("bob"));
}

#[test]
fn remote_addr_with_port_is_not_cut_into_a_partial_address() {
    // field case 10
    let fmt = r#"$remote_addr:$remote_port - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
    let input = r#"198.51.100.181:2225 - - [03/Apr/2024:11:26:52 +0000] "POST /api/login HTTP/1.1" 401 27 "-" "python-requests/2.31""#;
    let events = run(nginx(fmt), None, &NetworkConfig::default(), input);
    assert_eq!(ips(&events), ["198.51.100.181"]);
    assert_eq!(events[0].source_port, Some(2225));
    assert_eq!(events[0].status, Some(401));

    let mut p = parse::build(&source(nginx(fmt), None), &NetworkConfig::default()).unwrap();
    let bad = line(
        0,
        r#"100.181:2225 - - [03/Apr/2024:11:26:52 +0000] "POST / HTTP/1.1" 401 27 "-" "x""#,
    );
    assert!(matches!(
        p.parse(&bad, &mut Vec::new()),
        Err(ParseError::BadIp(_))
    ));
}

#[test]
fn dst_fall_back_with_offsets_keeps_the_repeated_hour() {
    // field case 11
    let input = r#"198.51.100.8 - - [03/Nov/2024:01:58:00 -0400] "POST /login HTTP/1.1" 401 12 "-" "curl/8.5.0"
198.51.100.8 - - [03/Nov/2024:01:01:00 -0500] "POST /login HTTP/1.1" 401 12 "-" "curl/8.5.0"
198.51.100.8 - - [03/Nov/2024:01:03:00 -0500] "POST /login HTTP/1.1" 401 12 "-" "curl/8.5.0""#;
    let events = run(nginx("combined"), None, &NetworkConfig::default(), input);
    assert_eq!(
        times(&events),
        [
            "2024-11-03T05:58:00Z",
            "2024-11-03T06:01:00Z",
            "2024-11-03T06:03:00Z"
        ]
    );
    assert_eq!(events[1].tz_offset_secs, Some(-5 * 3600));
}

#[test]
fn dst_fall_back_without_offsets_resolves_to_the_later_instant() {
    // field case 11, variant without offset (zone America/New_York)
    let input = r#"{"time":"2024-11-03T01:58:00","ip":"198.51.100.8","method":"POST","path":"/login","status":401}
{"time":"2024-11-03T01:01:00","ip":"198.51.100.8","method":"POST","path":"/login","status":401}
{"time":"2024-11-03T01:03:00","ip":"198.51.100.8","method":"POST","path":"/login","status":401}"#;
    let cfg = ParserConfig::Json {
        fields: JsonFieldMap::default(),
    };
    let events = run(
        cfg,
        Some("America/New_York"),
        &NetworkConfig::default(),
        input,
    );
    assert_eq!(
        times(&events),
        [
            "2024-11-03T05:58:00Z",
            "2024-11-03T06:01:00Z",
            "2024-11-03T06:03:00Z"
        ]
    );

    let errors = "2024/11/03 01:58:00 [error] 1#1: *1 limiting requests, excess: 5.000 by zone \"login\", client: 198.51.100.8, server: s, request: \"POST /login HTTP/1.1\", host: \"s\"
2024/11/03 01:01:00 [error] 1#1: *2 limiting requests, excess: 5.000 by zone \"login\", client: 198.51.100.8, server: s, request: \"POST /login HTTP/1.1\", host: \"s\"";
    let events = run(
        ParserConfig::NginxError,
        Some("America/New_York"),
        &NetworkConfig::default(),
        errors,
    );
    assert_eq!(
        times(&events),
        ["2024-11-03T05:58:00Z", "2024-11-03T06:01:00Z"]
    );
}

#[test]
fn late_request_line_keeps_its_own_time() {
    // field case 13 (parsing part)
    let input = r#"{"time":"2024-05-21T10:05:50Z","ip":"192.0.2.70","method":"POST","path":"/upload","status":401}
{"time":"2024-05-21T10:05:55Z","ip":"192.0.2.70","method":"POST","path":"/upload","status":401}
{"time":"2024-05-21T10:00:00Z","ip":"192.0.2.70","method":"POST","path":"/upload","status":401,"durationMs":360000}
{"time":"2024-05-21T10:05:58Z","ip":"192.0.2.70","method":"POST","path":"/upload","status":401}"#;
    let cfg = ParserConfig::Json {
        fields: JsonFieldMap::default(),
    };
    let events = run(cfg, None, &NetworkConfig::default(), input);
    assert_eq!(events[2].timestamp.to_string(), "2024-05-21T10:00:00Z");
    assert_eq!(events[2].kind, EventKind::Access);
    assert_eq!(events[2].method.as_deref(), Some("POST"));
    assert_eq!(events[2].url_path(), Some("/upload"));
    assert_eq!(events[2].status, Some(401));
    assert_eq!(events[2].extra("durationMs"), Some("360000"));
}

#[test]
fn timezone_offsets_are_honoured() {
    // field case 14
    let input = r#"192.0.2.81 - - [10/Mar/2024:21:07:41 +0800] "POST /login HTTP/1.1" 401 12 "-" "-"
192.0.2.81 - - [10/Mar/2024:13:07:45 +0000] "POST /login HTTP/1.1" 401 12 "-" "-"
192.0.2.81 - - [10/Mar/2024:14:07:50 +0100] "POST /login HTTP/1.1" 401 12 "-" "-""#;
    let events = run(nginx("combined"), None, &NetworkConfig::default(), input);
    assert_eq!(
        times(&events),
        [
            "2024-03-10T13:07:41Z",
            "2024-03-10T13:07:45Z",
            "2024-03-10T13:07:50Z"
        ]
    );
    let offsets: Vec<_> = events.iter().map(|e| e.tz_offset_secs).collect();
    assert_eq!(offsets, [Some(28800), Some(0), Some(3600)]);
}

#[test]
fn forwarded_for_client_is_the_rightmost_untrusted_hop() {
    // field case 15
    let input = r#"10.0.0.5 - - [22/Apr/2024:09:41:03 +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "192.0.2.200, 203.0.113.50"
10.0.0.5 - - [22/Apr/2024:09:41:04 +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "203.0.113.50"
10.0.0.5 - - [22/Apr/2024:09:41:05 +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "198.51.100.1, 203.0.113.50, 10.0.0.4"
10.0.0.6 - - [22/Apr/2024:09:41:06 +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "-""#;
    let net = NetworkConfig {
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        allowlist: vec![],
    };
    let events = run(nginx("main"), None, &net, input);
    assert_eq!(
        ips(&events),
        ["203.0.113.50", "203.0.113.50", "203.0.113.50", ""]
    );
    assert_eq!(events[0].peer_ip.unwrap().to_string(), "10.0.0.5");
    assert_eq!(
        events[2].forwarded_for.as_deref(),
        Some("198.51.100.1, 203.0.113.50, 10.0.0.4")
    );
    assert_eq!(events[3].peer_ip.unwrap().to_string(), "10.0.0.6");
    assert_eq!(events[0].timestamp.to_string(), "2024-04-22T07:41:03Z");

    // Without trusted proxies the header is evidence only.
    let events = run(nginx("main"), None, &NetworkConfig::default(), input);
    assert_eq!(ips(&events)[0], "10.0.0.5");
    assert!(events[0].forwarded_for.is_some());
}

#[test]
fn custom_log_format_parses_and_wrong_format_warns_once() {
    // field case 41
    let fmt = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent $request_time "$http_referer" "$http_user_agent""#;
    let text = r#"198.51.100.31 - - [14/Sep/2024:09:31:44 +0200] "POST /login HTTP/1.1" 401 31 0.012 "-" "Mozilla/5.0""#;
    let events = run(nginx(fmt), None, &NetworkConfig::default(), text);
    assert_eq!(events[0].status, Some(401));
    assert_eq!(events[0].extra("nginx.request_time"), Some("0.012"));
    assert_eq!(events[0].user_agent.as_deref(), Some("Mozilla/5.0"));
    assert_eq!(events[0].timestamp.to_string(), "2024-09-14T07:31:44Z");

    let mut p = parse::build(&source(nginx("combined"), None), &NetworkConfig::default()).unwrap();
    let mut monitor = FormatMonitor::new("test", p.format_name());
    let mut raised = Vec::new();
    for i in 0..300 {
        let result = p.parse(&line(i, text), &mut Vec::new());
        raised.extend(monitor.record(text, result.as_ref().map(|_| ())));
    }
    assert_eq!(raised.len(), 1, "one mismatch warning, not one per line");
    assert_eq!(raised[0].format, "combined");
    assert_eq!(raised[0].sample, text);
    assert!(raised[0].to_string().contains("log format mismatch"));
    let counts: Vec<_> = monitor.errors_by_reason().collect();
    assert_eq!(counts[0], ("no_match", 300));
}

#[test]
fn nested_json_and_arrays_of_objects_are_kept() {
    // field case 42
    let input = r#"{"time":"2024-11-30T12:00:00Z","level":"warn","msg":"login failed","req":{"ip":"198.51.100.71","ua":"curl/8.5.0"},"attempts":[{"user":"alice","ok":false},{"user":"bob","ok":false}]}"#;
    let fields = JsonFieldMap {
        source_ip: vec!["req.ip".into()],
        ..JsonFieldMap::default()
    };
    let events = run(
        ParserConfig::Json { fields },
        None,
        &NetworkConfig::default(),
        input,
    );
    let ev = &events[0];
    assert_eq!(ips(&events), ["198.51.100.71"]);
    assert_eq!(ev.extra("attempts[0].user"), Some("alice"));
    assert_eq!(ev.extra("attempts[1].user"), Some("bob"));
    assert_eq!(ev.extra("attempts[1].ok"), Some("false"));
    assert_eq!(ev.extra("req.ua"), Some("curl/8.5.0"));
    assert_eq!(
        ev.extra("req.ip"),
        None,
        "a mapped field is not repeated in extra"
    );
    assert_eq!(ev.action.as_deref(), Some("login_failed"));
}

#[test]
fn journald_sshd_session_failures_are_recognised() {
    // field case 45
    let input = r#"{"__REALTIME_TIMESTAMP":"1735752216000000","_SYSTEMD_UNIT":"ssh.service","_COMM":"sshd-session","MESSAGE":"Invalid user backup from 203.0.113.31 port 41022"}
{"__REALTIME_TIMESTAMP":"1735752218000000","_SYSTEMD_UNIT":"ssh.service","_COMM":"sshd-session","MESSAGE":"Invalid user deploy from 203.0.113.31 port 41030"}
{"__REALTIME_TIMESTAMP":"1735752220000000","_SYSTEMD_UNIT":"ssh.service","_COMM":"sshd","MESSAGE":"Invalid user gitlab from 203.0.113.31 port 41041"}"#;
    let events = run(
        ParserConfig::Journal,
        None,
        &NetworkConfig::default(),
        input,
    );
    assert_eq!(ips(&events), ["203.0.113.31"; 3]);
    assert!(events.iter().all(|e| e.kind == EventKind::Auth));
    assert!(
        events
            .iter()
            .all(|e| e.action.as_deref() == Some("login_failed"))
    );
    let users: Vec<_> = events
        .iter()
        .map(|e| e.user_name.clone().unwrap())
        .collect();
    assert_eq!(users, ["backup", "deploy", "gitlab"]);
    assert_eq!(
        times(&events),
        [
            "2025-01-01T17:23:36Z",
            "2025-01-01T17:23:38Z",
            "2025-01-01T17:23:40Z"
        ]
    );
}

#[test]
fn all_three_nginx_rate_limit_forms_are_recognised() {
    // field case 46
    let input = r#"2024/05/12 03:41:07 [error] 2211#2211: *5531 limiting connections by zone "perip", client: 198.51.100.12, server: shop.example.test, request: "GET / HTTP/1.1", host: "shop.example.test"
2024/05/12 03:41:08 [warn] 2211#2211: *5534 delaying request, excess: 0.512, by zone "api", client: 198.51.100.12, server: shop.example.test, request: "GET /api/items HTTP/1.1", host: "shop.example.test"
2024/05/12 03:41:09 [error] 2211#2211: *5537 limiting requests, excess: 7.250 by zone "login", client: 2001:db8::12, server: shop.example.test, request: "POST /login HTTP/2.0", host: "shop.example.test""#;
    let events = run(
        ParserConfig::NginxError,
        None,
        &NetworkConfig::default(),
        input,
    );
    assert!(events.iter().all(|e| e.kind == EventKind::RateLimit));
    let kinds: Vec<_> = events
        .iter()
        .map(|e| e.extra("nginx.limit.kind").unwrap())
        .collect();
    assert_eq!(kinds, ["conn", "delay", "req"]);
    let zones: Vec<_> = events
        .iter()
        .map(|e| e.extra("nginx.limit.zone").unwrap())
        .collect();
    assert_eq!(zones, ["perip", "api", "login"]);
    let actions: Vec<_> = events.iter().map(|e| e.action.clone().unwrap()).collect();
    assert_eq!(
        actions,
        ["nginx_limit_conn", "nginx_delay", "nginx_limit_req"]
    );
    assert_eq!(
        ips(&events),
        ["198.51.100.12", "198.51.100.12", "2001:db8::12"]
    );
    assert_eq!(events[2].url_path(), Some("/login"));
    assert_eq!(events[2].method.as_deref(), Some("POST"));
    assert_eq!(events[0].timestamp.to_string(), "2024-05-12T03:41:07Z");
    assert_eq!(events[2].extra("nginx.limit.excess"), Some("7.250"));
}

#[test]
fn carriage_return_never_reaches_a_field() {
    // field case 38 (the parser's share: a stray CR at the end of the text)
    let text =
        "192.0.2.81 - - [10/Mar/2024:21:07:41 +0800] \"GET / HTTP/1.1\" 200 12 \"-\" \"curl\"\r";
    let events = run(nginx("combined"), None, &NetworkConfig::default(), text);
    assert_eq!(events[0].user_agent.as_deref(), Some("curl"));
    assert!(!events[0].raw.contains('\r'));
}
