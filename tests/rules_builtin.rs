//! The built-in rules (`rules/`) against hand-built events: the thresholds users
//! rely on and the field cases from FIELD-CASES.md that concern rules.

use std::sync::Arc;

use jiff::Timestamp;
use palisade::config::{DetectionConfig, RuleOverride, RulesConfig};
use palisade::detect::engine::Engine;
use palisade::detect::sigma::{RuleKind, RuleSet};
use palisade::detect::{Detection, DetectionState};
use palisade::event::{AttackClasses, Event, EventKind};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

fn access(ip: &str, at: Timestamp, method: &str, url: &str, status: u16) -> Event {
    let mut e = Event::new(
        Arc::from("test"),
        0,
        format!("{ip} - - \"{method} {url}\" {status}"),
    );
    e.kind = EventKind::Access;
    e.timestamp = at;
    e.source_ip = Some(ip.parse().expect("test ip"));
    e.method = Some(method.into());
    e.set_url(url);
    e.status = Some(status);
    e.user_agent = Some("Mozilla/5.0".into());
    e
}

fn engine_with(cfg: RulesConfig) -> Engine {
    let rules = RuleSet::load(&cfg).expect("built-in rules load");
    Engine::new(Arc::new(rules), &DetectionConfig::default())
}

fn engine() -> Engine {
    engine_with(RulesConfig::default())
}

fn run(engine: &mut Engine, events: &[Event]) -> Vec<Detection> {
    let mut out = Vec::new();
    for e in events {
        engine.process(e, &mut out);
    }
    out
}

fn fired<'a>(out: &'a [Detection], name: &str) -> Vec<&'a Detection> {
    out.iter()
        .filter(|d| d.rule.name.as_deref() == Some(name) && d.state == DetectionState::Fired)
        .collect()
}

fn rule_id(name: &str) -> String {
    let rules = RuleSet::load(&RulesConfig::default()).unwrap();
    let info = rules
        .list()
        .into_iter()
        .find(|i| i.meta.name.as_deref() == Some(name));
    info.expect("rule exists").meta.id.clone()
}

fn failed_login(ip: &str, at: Timestamp) -> Event {
    access(ip, at, "POST", "/api/auth/login", 401)
}

#[test]
fn builtin_rules_load_with_ids_levels_and_attack_tags() {
    let rules = RuleSet::load(&RulesConfig::default()).unwrap();
    let list = rules.list();
    assert!(list.len() >= 25, "only {} built-in rules", list.len());
    for info in &list {
        let m = &info.meta;
        assert_eq!(m.id.len(), 36, "{} has no UUID id", m.title);
        assert!(m.name.is_some(), "{} has no name", m.id);
        assert!(
            m.tags.iter().any(|t| t.starts_with("attack.")),
            "{} has no ATT&CK tag",
            m.id
        );
        assert!(!m.description.is_empty(), "{} has no description", m.id);
    }
    let brute = list
        .iter()
        .find(|i| i.meta.name.as_deref() == Some("web_login_bruteforce"));
    let brute = brute.expect("brute-force rule");
    assert_eq!(brute.kind, RuleKind::Correlation);
    assert!(brute.meta.tags.contains(&"attack.t1110".to_string()));
    assert!(
        brute
            .meta
            .tags
            .contains(&"attack.credential-access".to_string())
    );
    let base = list
        .iter()
        .find(|i| i.meta.name.as_deref() == Some("web_login_failed"))
        .unwrap();
    assert!(
        !base.generates,
        "a correlation's base rule must not emit on its own"
    );
}

#[test]
fn login_brute_force_fires_at_the_eleventh_failure_not_the_tenth() {
    let t0 = ts("2024-05-01T10:00:00Z");
    let ten: Vec<Event> = (0..10)
        .map(|i| failed_login("198.51.100.7", t0 + jiff::SignedDuration::from_secs(i * 20)))
        .collect();
    let mut e = engine();
    assert!(fired(&run(&mut e, &ten), "web_login_bruteforce").is_empty());
    let eleventh = failed_login("198.51.100.7", t0 + jiff::SignedDuration::from_secs(240));
    let out = run(&mut e, &[eleventh]);
    let hits = fired(&out, "web_login_bruteforce");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].key_value("source.ip"), Some("198.51.100.7"));
    assert_eq!(hits[0].count, 11);
    assert!(!hits[0].samples.is_empty());
    assert_eq!(
        hits[0].first_seen, t0,
        "first_seen is the first failure of the episode, not the first one kept as a sample"
    );
}

/// The slow rule keeps few samples per key; its detection still starts at the first
/// attempt it counted.
#[test]
fn slow_brute_force_reports_when_the_attempts_began() {
    let t0 = ts("2024-05-01T08:30:00Z");
    let attempts: Vec<Event> = (0..40)
        .map(|i| {
            failed_login(
                "2001:db8:7::23",
                t0 + jiff::SignedDuration::from_secs(i * 90),
            )
        })
        .collect();
    let mut e = engine();
    let mut out = run(&mut e, &attempts);
    e.finish(&mut out);
    let hits: Vec<&Detection> = out
        .iter()
        .filter(|d| d.rule.name.as_deref() == Some("web_login_bruteforce_slow"))
        .collect();
    assert!(!hits.is_empty(), "slow brute force not detected");
    assert_eq!(hits[0].first_seen, t0);
}

#[test]
fn one_fired_per_episode_then_closed_after_the_window() {
    let t0 = ts("2024-05-01T10:00:00Z");
    let events: Vec<Event> = (0..30)
        .map(|i| failed_login("198.51.100.8", t0 + jiff::SignedDuration::from_secs(i * 2)))
        .collect();
    let mut e = engine();
    let mut out = run(&mut e, &events);
    assert_eq!(fired(&out, "web_login_bruteforce").len(), 1);
    e.advance(t0 + jiff::SignedDuration::from_secs(60 + 301), &mut out);
    let closed: Vec<_> = out
        .iter()
        .filter(|d| {
            d.rule.name.as_deref() == Some("web_login_bruteforce")
                && d.state == DetectionState::Closed
        })
        .collect();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].count, 30);
    assert!(closed[0].samples.len() <= DetectionConfig::default().max_samples);
}

#[test]
fn slow_brute_force_one_attempt_every_45_to_150_seconds_is_caught() {
    let mut t = ts("2024-05-01T00:00:00Z");
    let mut events = Vec::new();
    let gaps = [45, 150, 97, 60, 133, 78, 120, 45, 101, 150];
    let end = t + jiff::SignedDuration::from_hours(2);
    let mut i = 0;
    while t < end {
        events.push(failed_login("203.0.113.5", t));
        t += jiff::SignedDuration::from_secs(gaps[i % gaps.len()]);
        i += 1;
    }
    let mut e = engine();
    let out = run(&mut e, &events);
    assert!(
        fired(&out, "web_login_bruteforce").is_empty(),
        "fast rule must not see it"
    );
    assert_eq!(fired(&out, "web_login_bruteforce_slow").len(), 1);
}

#[test]
fn benign_user_with_three_failures_in_a_day_is_not_flagged() {
    let t0 = ts("2024-05-01T08:00:00Z");
    let events: Vec<Event> = [0, 5, 9 * 3600]
        .iter()
        .map(|&s| failed_login("192.0.2.44", t0 + jiff::SignedDuration::from_secs(s)))
        .collect();
    let mut e = engine();
    let mut out = run(&mut e, &events);
    e.finish(&mut out);
    assert!(
        out.is_empty(),
        "benign failures produced {:?}",
        out.iter().map(|d| &d.rule.title).collect::<Vec<_>>()
    );
}

/// Field case 13: a line stamped at request start arrives late; it keeps its own
/// time and falls outside the 60 s window, so 4 (not 5) count.
#[test]
fn late_out_of_order_line_keeps_its_time_and_is_not_counted() {
    let mut cfg = RulesConfig::default();
    cfg.overrides.insert(
        "web_error_burst".into(),
        RuleOverride {
            threshold: Some(5),
            timespan: Some("60s".into()),
        },
    );
    let mut e = engine_with(cfg);
    let times = ["10:05:50", "10:05:55", "10:00:00", "10:05:58", "10:05:59"];
    let events: Vec<Event> = times
        .iter()
        .map(|t| {
            access(
                "192.0.2.70",
                ts(&format!("2024-05-21T{t}Z")),
                "POST",
                "/upload",
                401,
            )
        })
        .collect();
    let mut out = run(&mut e, &events);
    e.finish(&mut out);
    assert!(fired(&out, "web_error_burst").is_empty());
}

/// Field case 14: the same instants written with different offsets are already UTC
/// in the Event; three 401s within 60 s make one alert.
#[test]
fn same_instants_from_different_offsets_make_one_alert() {
    let mut cfg = RulesConfig::default();
    cfg.overrides.insert(
        "web_login_bruteforce".into(),
        RuleOverride {
            threshold: Some(3),
            timespan: Some("60s".into()),
        },
    );
    let mut e = engine_with(cfg);
    let events: Vec<Event> = [
        "2024-03-10T21:07:41+08:00",
        "2024-03-10T13:07:45+00:00",
        "2024-03-10T14:07:50+01:00",
    ]
    .iter()
    .map(|s| access("192.0.2.81", ts(s), "POST", "/login", 401))
    .collect();
    let mut out = run(&mut e, &events);
    e.finish(&mut out);
    let hits = fired(&out, "web_login_bruteforce");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].count, 3);
    assert_eq!(hits[0].key_value("source.ip"), Some("192.0.2.81"));
}

/// Field case 24: a backup client's WebDAV DELETEs, mostly 404, by a signed-in user.
#[test]
fn authenticated_webdav_delete_404s_are_not_a_probe() {
    let t0 = ts("2024-05-02T01:12:40Z");
    let events: Vec<Event> = (0..12)
        .map(|i| {
            let status = if i % 4 == 1 { 204 } else { 404 };
            let url = format!("/remote.php/dav/files/lena/.Backup/{i:02x}/{i:06x}");
            let mut ev = access(
                "198.51.100.30",
                t0 + jiff::SignedDuration::from_millis(i * 150),
                "DELETE",
                &url,
                status,
            );
            ev.user_name = Some("lena".into());
            ev.user_agent = Some("okhttp/4.12.0".into());
            ev
        })
        .collect();
    let mut e = engine();
    let mut out = run(&mut e, &events);
    e.finish(&mut out);
    assert!(
        out.is_empty(),
        "got {:?}",
        out.iter().map(|d| &d.rule.title).collect::<Vec<_>>()
    );
}

/// Field case 25: phones asking for touch icons over and over are not a 4xx burst.
#[test]
fn browser_icon_404s_are_not_an_error_burst() {
    let t0 = ts("2024-06-01T12:00:00Z");
    let paths = [
        "/apple-touch-icon.png",
        "/apple-touch-icon-precomposed.png",
        "/apple-touch-icon-120x120.png",
        "/apple-touch-icon-120x120-precomposed.png",
        "/favicon.ico",
    ];
    let mut events = vec![access("203.0.113.120", t0, "GET", "/", 200)];
    for i in 0..12 {
        let at = t0 + jiff::SignedDuration::from_millis(300 + i as i64 * 350);
        events.push(access(
            "203.0.113.120",
            at,
            "GET",
            paths[i % paths.len()],
            404,
        ));
    }
    let mut e = engine();
    let mut out = run(&mut e, &events);
    e.finish(&mut out);
    assert!(
        out.is_empty(),
        "got {:?}",
        out.iter().map(|d| &d.rule.title).collect::<Vec<_>>()
    );
}

/// Field case 27: existing scripts answered 200 are not probes; two missing ones
/// are counted but stay below the threshold.
#[test]
fn script_probe_rule_looks_at_the_status() {
    let t0 = ts("2024-06-01T12:00:00Z");
    let mut events: Vec<Event> = (0..30)
        .map(|i| {
            access(
                "192.0.2.33",
                t0 + jiff::SignedDuration::from_secs(i),
                "GET",
                &format!("/index.php?page={i}"),
                200,
            )
        })
        .collect();
    events.push(access(
        "192.0.2.33",
        t0 + jiff::SignedDuration::from_secs(40),
        "GET",
        "/shell.php",
        404,
    ));
    events.push(access(
        "192.0.2.33",
        t0 + jiff::SignedDuration::from_secs(50),
        "GET",
        "/shell.php",
        404,
    ));
    let mut e = engine();
    let mut out = run(&mut e, &events);
    let stats = e.stats();
    e.finish(&mut out);
    assert!(
        out.is_empty(),
        "got {:?}",
        out.iter().map(|d| &d.rule.title).collect::<Vec<_>>()
    );
    let burst_id = rule_id("web_script_probe_burst");
    let probe = stats.rules.iter().find(|r| r.rule_id == burst_id).unwrap();
    assert_eq!(
        probe.matches, 2,
        "the two 404 script requests must be counted"
    );
}

/// A bot that asks for `/wp-login.php` again and again all day is counted, not
/// accused (the benchmark log's real traffic holds about a hundred such clients); a
/// client that asks for three different secret files within minutes is.
#[test]
fn sensitive_file_probing_needs_several_different_files() {
    let classifier = palisade::detect::classify::Classifier::new();
    let t0 = ts("2024-06-01T12:00:00Z");
    let at = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
    let classified = |mut e: Event| {
        classifier.classify(&mut e);
        e
    };
    let mut events: Vec<Event> = (0..20)
        .map(|i| {
            classified(access(
                "198.51.100.7",
                at(i * 150),
                "GET",
                "/wp-login.php",
                404,
            ))
        })
        .collect();
    for (i, path) in ["/.env", "/.git/config", "/wp-login.php"]
        .iter()
        .enumerate()
    {
        events.push(classified(access(
            "192.0.2.44",
            at(3000 + i as i64),
            "GET",
            path,
            404,
        )));
    }
    let mut e = engine();
    let mut out = run(&mut e, &events);
    let stats = e.stats();
    e.finish(&mut out);
    let burst = fired(&out, "web_sensitive_file_probe_burst");
    assert_eq!(
        burst.len(),
        1,
        "got {:?}",
        out.iter().map(|d| &d.rule.title).collect::<Vec<_>>()
    );
    assert_eq!(burst[0].key_value("source.ip"), Some("192.0.2.44"));
    assert!(
        out.iter()
            .all(|d| d.key_value("source.ip") != Some("198.51.100.7")),
        "the one-path bot must not be accused: {:?}",
        out.iter()
            .map(|d| (&d.rule.title, &d.key))
            .collect::<Vec<_>>()
    );
    let probe_id = rule_id("web_sensitive_file_probe_burst");
    let probe = stats.rules.iter().find(|r| r.rule_id == probe_id).unwrap();
    assert_eq!(
        probe.matches, 23,
        "every refused request for a secret file is counted"
    );
}

/// Field case 33: user agents match whatever their case.
#[test]
fn scanner_user_agents_match_regardless_of_case() {
    let t0 = ts("2024-11-02T11:20:05Z");
    let mut a = access("192.0.2.150", t0, "GET", "/?id=1", 200);
    a.user_agent = Some("sqlmap/1.8.2#stable (https://sqlmap.org)".into());
    let mut b = access("192.0.2.151", t0, "GET", "/", 200);
    b.user_agent = Some("MASSCAN/1.3".into());
    let mut c = access("192.0.2.152", t0, "GET", "/?q=%3CsCrIpT%3E", 200);
    c.attacks.insert(AttackClasses::XSS);
    let mut e = engine();
    let out = run(&mut e, &[a, b, c]);
    let ua = fired(&out, "web_scanner_user_agent");
    assert_eq!(ua.len(), 2);
    assert_eq!(fired(&out, "web_xss").len(), 1);
}

/// Field case 37: a million failures from 500,000 addresses, two each, never reach
/// a threshold of 3 in 10 minutes; state stays bounded and evictions are counted.
#[test]
fn million_sub_threshold_failures_keep_state_bounded() {
    let mut cfg = RulesConfig::default();
    cfg.overrides.insert(
        "web_login_bruteforce".into(),
        RuleOverride {
            threshold: Some(3),
            timespan: Some("10m".into()),
        },
    );
    // Only the login rules hold state for these events; the generic 4xx rules are
    // switched off to keep this test quick in debug builds.
    cfg.disabled = vec!["web_auth_denied_burst".into(), "web_error_burst".into()];
    let rules = Arc::new(RuleSet::load(&cfg).unwrap());
    let det = DetectionConfig {
        max_keys_per_rule: 20_000,
        ..DetectionConfig::default()
    };
    let mut e = Engine::new(rules, &det);
    let t0 = ts("2024-07-01T00:00:00Z");
    let mut ev = failed_login("10.0.0.1", t0);
    ev.user_agent = None;
    ev.raw = String::from("POST /api/auth/login 401");
    let mut out = Vec::new();
    // Each address fails twice, 1 s apart; 500,000 addresses over one hour.
    for n in 0..1_000_000u32 {
        let ip = n / 2;
        ev.source_ip = Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
            0x0a00_0000 + ip,
        )));
        ev.timestamp = t0 + jiff::SignedDuration::from_micros(i64::from(n) * 3_600);
        e.process(&ev, &mut out);
    }
    assert!(fired(&out, "web_login_bruteforce").is_empty());
    assert!(fired(&out, "web_login_bruteforce_slow").is_empty());
    let stats = e.stats();
    for r in &stats.rules {
        assert!(
            r.live_keys <= 20_000,
            "{} holds {} keys",
            r.rule_id,
            r.live_keys
        );
    }
    let evicted: u64 = stats.rules.iter().map(|r| r.evicted_keys).sum();
    assert!(
        evicted > 0,
        "the slow rule's 1 h window over 500k keys must evict: {stats:?}"
    );
    e.advance(t0 + jiff::SignedDuration::from_hours(3), &mut out);
    assert!(
        e.stats().rules.iter().all(|r| r.live_keys == 0),
        "state must fall after the window"
    );
}

#[test]
fn user_rule_folders_load_after_builtins_and_disabled_rules_stay_silent() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("web");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(
        sub.join("admin.yml"),
        concat!(
            "title: Admin panel probe\n",
            "id: user-admin-probe\n",
            "level: low\n",
            "tags: [attack.discovery]\n",
            "logsource: {category: webserver}\n",
            "detection:\n",
            "  sel:\n",
            "    cs-uri-stem|startswith: /wp-admin\n",
            "  condition: sel\n",
        ),
    )
    .unwrap();
    let cfg = RulesConfig {
        dirs: vec![dir.path().to_path_buf()],
        disabled: vec!["web_scanner_user_agent".into()],
        ..RulesConfig::default()
    };
    let mut e = engine_with(cfg);
    let t0 = ts("2024-06-01T12:00:00Z");
    let mut probe = access("192.0.2.90", t0, "GET", "/wp-admin/setup.php", 404);
    probe.user_agent = Some("Nikto/2.5".into());
    let out = run(&mut e, &[probe]);
    assert!(out.iter().any(|d| d.rule.id == "user-admin-probe"));
    assert!(fired(&out, "web_scanner_user_agent").is_empty());
}

#[test]
fn unreadable_rule_folder_is_an_error_naming_it() {
    let cfg = RulesConfig {
        dirs: vec!["/nonexistent/palisade-rules".into()],
        ..RulesConfig::default()
    };
    let err = RuleSet::load(&cfg).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/palisade-rules"), "{err}");
}

/// Field case 25: the benign asset list is configurable (`detection.benign_asset_paths`).
#[test]
fn configured_benign_asset_paths_replace_the_builtin_list() {
    let det = DetectionConfig {
        benign_asset_paths: vec!["/icons/".into()],
        ..DetectionConfig::default()
    };
    let rules = Arc::new(RuleSet::load(&RulesConfig::default()).unwrap());
    let t0 = ts("2024-06-01T12:00:00Z");
    let burst = |path: &str| -> Vec<Event> {
        (0..12)
            .map(|i| {
                let at = t0 + jiff::SignedDuration::from_millis(i * 300);
                access("203.0.113.121", at, "GET", path, 404)
            })
            .collect()
    };
    let mut e = Engine::new(rules.clone(), &det);
    assert!(fired(&run(&mut e, &burst("/icons/a.png")), "web_error_burst").is_empty());
    let mut e = Engine::new(rules, &det);
    let out = run(&mut e, &burst("/favicon.ico"));
    assert_eq!(
        fired(&out, "web_error_burst").len(),
        1,
        "no longer in the list, so counted"
    );
}
