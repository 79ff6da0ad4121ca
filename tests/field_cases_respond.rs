//! Respond-side field cases end to end: log lines through the real parser, allowlist,
//! rules and [`Responder`](palisade::respond::Responder) with the configuration an
//! operator writes (backend `none`, nginx deny-list writer where the case needs it).
//! The responder-only checks of the same cases are in respond_field_cases.rs.

mod field_harness;

use std::fs;

use field_harness::*;

#[test]
fn proxied_client_ban_reaches_the_nginx_deny_list() {
    // Field case 17: nginx behind a CDN (10.0.0.0/8 trusted), real client from
    // X-Forwarded-For; 203.0.113.77 banned at the 3rd failure is written to the
    // deny include and nginx is reloaded; no "firewall-only" warning.
    let dir = tempfile::tempdir().unwrap();
    let deny = dir.path().join("palisade-deny.conf");
    let reloaded = dir.path().join("reloaded");
    let toml = source_toml("nginx", "access.log", NGINX_MAIN)
        + "[network]\ntrusted_proxies = [\"10.0.0.0/8\"]\n"
        + &override_toml("web_login_bruteforce", 3, "10m")
        + &format!(
            "[respond.nginx]\ndeny_file = \"{}\"\nreload = [\"touch\", \"{}\"]\n",
            deny.display(),
            reloaded.display()
        )
        + &ban_policy(&["web_login_bruteforce"]);
    // The responder's wall clock at the time of the lines, so the 1-h ban is live.
    let mut s = Stack::new(&toml, "").restart(Some(at("2024-04-22T07:41:04Z")));
    for second in 1..=3 {
        s.feed(
            "nginx",
            &format!(
                r#"10.0.0.9 - - [22/Apr/2024:09:41:0{second} +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "203.0.113.77""#
            ),
        );
    }
    assert_eq!(s.bans(), [(3, "203.0.113.77/32".to_owned())]);
    let text = fs::read_to_string(&deny).expect("deny include written");
    assert!(text.contains("deny 203.0.113.77/32;"), "{text}");
    assert!(
        !text.contains("10.0.0.9"),
        "the CDN address was denied: {text}"
    );
    assert!(reloaded.exists(), "nginx was not reloaded");
    assert_eq!(s.responder.stats().proxy_warnings, 0);
}

#[test]
fn proxied_client_with_firewall_only_ban_warns_once() {
    // Field case 17 without a proxy-level action: two proxied clients banned, one
    // warning that a firewall-only ban of a proxied client has no effect.
    let toml = source_toml("nginx", "access.log", NGINX_MAIN)
        + "[network]\ntrusted_proxies = [\"10.0.0.0/8\"]\n"
        + &override_toml("web_login_bruteforce", 3, "10m")
        + &ban_policy(&["web_login_bruteforce"]);
    let mut s = Stack::new(&toml, "");
    for client in ["203.0.113.77", "203.0.113.78"] {
        for second in 1..=3 {
            s.feed(
                "nginx",
                &format!(
                    r#"10.0.0.9 - - [22/Apr/2024:09:41:0{second} +0200] "POST /login HTTP/1.1" 401 12 "-" "-" "{client}""#
                ),
            );
        }
    }
    assert_eq!(s.bans().len(), 2);
    assert_eq!(s.responder.stats().proxy_warnings, 1);
}

#[test]
fn docker_gateway_address_is_detected_but_never_banned() {
    // Field case 18: every client logged as the Docker bridge gateway 172.17.0.1;
    // the failures are detected but the gateway is never banned (it would lock out
    // everyone), and one "looks NATed by Docker" warning is raised.
    let toml = source_toml("app", "app.log", JSON) + &ban_policy(&["app_login_bruteforce"]);
    let mut s = Stack::new(&toml, APP_LOGIN_RULES);
    s.feed_all(
        "app",
        r#"{"time":"2024-01-13T09:00:01Z","msg":"login failed","user":"gina","ip":"172.17.0.1"}
{"time":"2024-01-13T09:00:02Z","msg":"login failed","user":"hugo","ip":"172.17.0.1"}
{"time":"2024-01-13T09:00:03Z","msg":"login failed","user":"ivan","ip":"172.17.0.1"}
{"time":"2024-01-13T09:00:04Z","msg":"login failed","user":"jane","ip":"172.17.0.1"}"#,
    );
    assert_eq!(
        s.fired_by("app_login_bruteforce"),
        [(3, "172.17.0.1".to_owned())]
    );
    assert!(s.bans().is_empty(), "{:?}", s.bans());
    let stats = s.responder.stats();
    assert_eq!(stats.docker_nat_warnings, 1);
    assert_eq!(stats.active_bans, 0);
}

#[test]
fn global_allowlist_holds_when_a_rule_has_its_own() {
    // Field case 22 (palisade's spelling of the case's config: the global list is
    // `[network] allowlist`, the rule's own list is the policy's `allowlist`, which
    // extends it): 5 failures each from 192.0.2.5 and 2001:db8:1::9 → 0 bans, both
    // counted in `palisade_allowlisted_events_total`; the rule-only entry holds too.
    let toml = source_toml("nginx", "access.log", NGINX_COMBINED)
        + "[network]\nallowlist = [\"192.0.2.0/28\", \"2001:db8:1::/48\"]\n"
        + &override_toml("web_login_bruteforce", 3, "10m")
        + &ban_policy(&["web_login_bruteforce"])
        + "allowlist = [\"198.51.100.7\"]\n";
    let mut s = Stack::new(&toml, "");
    for client in ["192.0.2.5", "2001:db8:1::9", "198.51.100.7"] {
        for second in 1..=5 {
            s.feed(
                "nginx",
                &format!(
                    r#"{client} - - [01/Apr/2024:00:00:0{second} +0000] "POST /login HTTP/1.1" 401 12 "-" "-""#
                ),
            );
        }
    }
    assert!(s.bans().is_empty(), "{:?}", s.bans());
    assert_eq!(s.stats("nginx").allowlisted, 10);
    let metrics = s.metrics_text();
    assert!(
        metrics.contains("palisade_allowlisted_events_total 10"),
        "{metrics}"
    );
    // The policy-only entry: detected (not globally allowlisted) but not banned.
    assert_eq!(
        s.fired_by("web_login_bruteforce"),
        [(13, "198.51.100.7".to_owned())]
    );
    assert_eq!(s.responder.stats().allowlisted, 1);
    let effective = s
        .responder
        .allowlist()
        .effective_for(&["web_login_bruteforce"]);
    let nets: Vec<String> = effective.iter().map(|e| e.net.to_string()).collect();
    for want in ["192.0.2.0/28", "2001:db8:1::/48", "198.51.100.7/32"] {
        assert!(
            nets.contains(&want.to_owned()),
            "{want} not effective: {nets:?}"
        );
    }
}

#[test]
fn metrics_stay_small_with_100k_distinct_clients_through_the_pipeline() {
    // Field case 55, through the parsers and rules: 100,000 distinct IPv6 clients
    // each send an SQL injection (access log) and hit a rate limit (error log, zone
    // named after nothing client-specific); no label holds an address or URL, the
    // series count does not grow with clients, the page stays under 100 KB.
    let toml = source_toml("nginx", "access.log", NGINX_COMBINED)
        + &source_toml("nginx-error", "error.log", r#"{ format = "nginx_error" }"#)
        + "[[respond.policy]]\nname = \"quiet\"\naction = \"nothing\"\n";
    let mut s = Stack::new(&toml, "");
    for i in 0..100_000u32 {
        let ip = format!("2001:db8::{:x}:{:x}", i >> 16, i & 0xffff);
        let second = (i / 2000) % 60;
        s.feed(
            "nginx",
            &format!(
                r#"{ip} - - [01/Apr/2024:00:00:{second:02} +0000] "GET /api/allowlist/{ip}?id=1%20UNION%20SELECT%20pass%20FROM%20users-- HTTP/1.1" 403 9 "-" "-""#
            ),
        );
        s.feed(
            "nginx-error",
            &format!(
                r#"2024/04/01 00:00:{second:02} [error] 1#1: *{i} limiting requests, excess: 5.000 by zone "api", client: {ip}, server: s, request: "GET /api/allowlist/{ip} HTTP/1.1", host: "s""#
            ),
        );
    }
    assert_eq!(s.stats("nginx").events, 100_000);
    assert_eq!(s.stats("nginx-error").events, 100_000);
    let body = s.metrics_text();
    assert!(
        body.contains("sql_injection_attempts_total 100000"),
        "{body}"
    );
    assert!(!body.contains("2001:db8"), "an address reached a label");
    assert!(!body.contains("/api/"), "a URL reached a label");
    let series = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    assert!(series < 500, "{series} series");
    assert!(body.len() < 100 * 1024, "{} bytes", body.len());
}
