//! Detection-quality field cases end to end: the case's nginx lines through the
//! parser, classifier and built-in rules with the shipped response policy (high and
//! critical ban, medium alerts). Benign traffic gets no alert and no ban; attacks are
//! seen whatever their encoding or case. Engine- and classifier-level checks of the
//! same cases are in rules_builtin.rs and classify_field_cases.rs.

mod field_harness;

use field_harness::*;

/// Rule titles that fired, for messages.
fn titles(s: &Stack) -> Vec<String> {
    s.fired
        .iter()
        .map(|f| format!("{} @{}", f.detection.rule.title, f.line))
        .collect()
}

fn nginx_stack() -> Stack {
    Stack::new(&source_toml("nginx", "access.log", NGINX_COMBINED), "")
}

/// The field-case profile for injections: 1 hit → event; 3 hits per IP in 10 min →
/// ban (the shipped policy bans on the first high-level hit instead).
fn injection_profile_stack() -> Stack {
    let toml = source_toml("nginx", "access.log", NGINX_COMBINED)
        + &ban_policy(&["web_injection_repeated"]);
    Stack::new(&toml, "")
}

/// Field case 24's input: a backup app's 12 WebDAV DELETEs in 2 s, most of them 404.
fn webdav_backup_deletes() -> Stack {
    let mut s = nginx_stack();
    for i in 0..12u32 {
        let status = if i % 4 == 1 { 204 } else { 404 };
        s.feed(
            "nginx",
            &format!(
                r#"198.51.100.30 - lena [02/May/2024:01:12:{:02} +0000] "DELETE /remote.php/dav/files/lena/.Backup/{i:02x}/{i:06x} HTTP/2.0" {status} 212 "-" "okhttp/4.12.0""#,
                40 + i / 6
            ),
        );
    }
    s.finish();
    s
}

#[test]
fn authenticated_webdav_delete_404s_are_not_an_error_burst_or_ban() {
    // Field case 24: no 4xx-burst / 404-scan detection and no ban for the client.
    let s = webdav_backup_deletes();
    assert_eq!(s.stats("nginx").events, 12);
    for rule in ["web_error_burst", "web_404_scan", "web_auth_denied_burst"] {
        assert!(s.fired_by(rule).is_empty(), "{rule}: {:?}", titles(&s));
    }
    assert!(s.bans().is_empty(), "{:?}", s.bans());
}

#[test]
fn authenticated_webdav_delete_404s_raise_no_alert_at_all() {
    // Field case 24, whole expectation: no probing alert of any kind.
    let s = webdav_backup_deletes();
    assert!(s.decisions.is_empty(), "{:?}", titles(&s));
    assert!(s.fired.is_empty(), "{:?}", titles(&s));
}

#[test]
fn browser_icon_404s_are_not_an_error_burst() {
    // Field case 25: one page view, then 12 × 404 on touch icons / favicon in 5 s.
    let mut s = nginx_stack();
    s.feed(
        "nginx",
        r#"203.0.113.120 - - [01/Jun/2024:12:00:00 +0000] "GET / HTTP/1.1" 200 5120 "-" "Mozilla/5.0 (Linux; Android 14)""#,
    );
    let paths = [
        "/apple-touch-icon.png",
        "/apple-touch-icon-precomposed.png",
        "/apple-touch-icon-120x120.png",
        "/apple-touch-icon-120x120-precomposed.png",
        "/favicon.ico",
    ];
    for i in 0..12usize {
        s.feed(
            "nginx",
            &format!(
                r#"203.0.113.120 - - [01/Jun/2024:12:00:0{} +0000] "GET {} HTTP/1.1" 404 153 "-" "Mozilla/5.0 (Linux; Android 14)""#,
                1 + i / 3,
                paths[i % paths.len()]
            ),
        );
    }
    s.finish();
    assert!(s.decisions.is_empty(), "{:?}", s.decisions);
    assert!(s.fired.is_empty(), "{:?}", titles(&s));
}

#[test]
fn existing_scripts_are_not_probes_and_missing_ones_are_counted() {
    // Field case 27: 30 × `GET /index.php?page=N` 200 and 2 × `GET /shell.php` 404 in
    // one minute: no script-probe detection; the two 404s are counted.
    let mut s = nginx_stack();
    for i in 0..30 {
        s.feed(
            "nginx",
            &format!(
                r#"192.0.2.33 - - [01/Jun/2024:12:00:{i:02} +0000] "GET /index.php?page={i} HTTP/1.1" 200 812 "-" "Mozilla/5.0""#
            ),
        );
    }
    for second in [40, 50] {
        s.feed(
            "nginx",
            &format!(
                r#"192.0.2.33 - - [01/Jun/2024:12:00:{second} +0000] "GET /shell.php HTTP/1.1" 404 153 "-" "Mozilla/5.0""#
            ),
        );
    }
    let probe = s
        .pipeline
        .engine()
        .stats()
        .rules
        .into_iter()
        .find(|r| r.rule_id == "4f8e838a-33c6-43ea-b2a8-99d1853dda30")
        .expect("script-probe correlation");
    assert_eq!(probe.matches, 2, "the two 404 script requests are counted");
    s.finish();
    assert!(s.decisions.is_empty(), "{:?}", s.decisions);
    assert!(s.fired.is_empty(), "{:?}", titles(&s));
}

#[test]
fn sql_words_in_file_names_are_not_sqli_but_union_select_is() {
    // Field case 28: "Insert or Update Table.png" and "how-to-select-a-union-rep" are
    // no SQL injection; `1 UNION SELECT pass FROM users--` is, for 192.0.2.91 only.
    let mut s = nginx_stack();
    s.feed_all(
        "nginx",
        r#"192.0.2.90 - - [26/Feb/2024:07:31:02 +0000] "GET /docs/img/Insert%20or%20Update%20Table.png HTTP/1.1" 200 1204 "-" "Mozilla/5.0"
192.0.2.90 - - [26/Feb/2024:07:31:03 +0000] "GET /blog/how-to-select-a-union-rep HTTP/1.1" 200 4410 "-" "Mozilla/5.0"
192.0.2.91 - - [26/Feb/2024:07:31:09 +0000] "GET /item?id=1%20UNION%20SELECT%20pass%20FROM%20users-- HTTP/1.1" 200 120 "-" "-""#,
    );
    assert_eq!(s.fired_by("web_sqli"), [(3, "192.0.2.91".to_owned())]);
    assert_eq!(keyed(&s), ["192.0.2.91"]);
}

#[test]
fn comment_padded_and_double_encoded_sqli_bans_at_the_third() {
    // Field case 30: three encodings of UNION SELECT → 3 SQLi events, ban at the 3rd
    // (3 injection hits per IP in 10 min).
    let mut s = injection_profile_stack();
    s.feed_all(
        "nginx",
        r#"203.0.113.201 - - [11/Mar/2024:03:14:07 +0000] "GET /index.php?cat=7%2F%2A%2A%2FUNION%2F%2A%2A%2FSELECT%2F%2A%2A%2Fuser%2C2%2F%2A%2A%2FFROM%2F%2A%2A%2Fmysql.user HTTP/1.1" 200 512 "-" "-"
203.0.113.201 - - [11/Mar/2024:03:14:08 +0000] "GET /index.php?cat=7%252F%252A%252A%252FUNION%252F%252A%252A%252FSELECT%252F%252A%252A%252F1 HTTP/1.1" 200 512 "-" "-"
203.0.113.201 - - [11/Mar/2024:03:14:09 +0000] "GET /index.php?cat=7+UnIoN/**/sElEcT+1,2 HTTP/1.1" 200 512 "-" "-""#,
    );
    s.finish();
    let sqli = s
        .closed
        .iter()
        .find(|d| d.rule.name.as_deref() == Some("web_sqli"))
        .expect("SQLi episode");
    assert_eq!(sqli.count, 3, "every encoding is an SQLi event");
    assert_eq!(
        s.fired_by("web_injection_repeated"),
        [(3, "203.0.113.201".to_owned())]
    );
    assert!(
        s.bans().contains(&(3, "203.0.113.201/32".to_owned())),
        "{:?}",
        s.bans()
    );
}

#[test]
fn encoded_traversal_in_query_arguments_bans_at_the_third() {
    // Field case 31: 5 encoded traversals from 198.51.100.66 → 5 events, ban at the
    // 3rd; the benign `/docs/v1..v2-changes` from another client → no event.
    let mut s = injection_profile_stack();
    let requests = [
        "/index.php?file=..%2F..%2F..%2Fetc%2Fpasswd",
        "/index.php?file=%2e%2e%2F%2E%2E%2fetc%2fpasswd",
        "/index.php?file=..%252f..%252fetc%252fpasswd",
        "/index.php?file=....//....//etc/passwd",
        "/download?f=..%5C..%5Cwindows%5Cwin.ini",
    ];
    for (i, url) in requests.iter().enumerate() {
        s.feed(
            "nginx",
            &format!(
                r#"198.51.100.66 - - [01/Mar/2024:10:00:0{i} +0000] "GET {url} HTTP/1.1" 404 153 "-" "-""#
            ),
        );
    }
    s.feed(
        "nginx",
        r#"192.0.2.5 - - [01/Mar/2024:10:00:09 +0000] "GET /docs/v1..v2-changes HTTP/1.1" 200 900 "-" "-""#,
    );
    s.finish();
    let traversal = s
        .closed
        .iter()
        .find(|d| d.rule.name.as_deref() == Some("web_path_traversal"))
        .expect("traversal episode");
    assert_eq!(traversal.count, 5);
    assert_eq!(s.bans(), [(3, "198.51.100.66/32".to_owned())]);
    assert!(
        !keyed(&s).contains(&"192.0.2.5".to_owned()),
        "{:?}",
        titles(&s)
    );
}

#[test]
fn scanner_agents_and_payloads_match_regardless_of_case() {
    // Field case 33: `sqlmap/…`, `MASSCAN/1.3` and `%3CsCrIpT%3E` → three events
    // (bad UA, bad UA, XSS) for the three clients.
    let mut s = nginx_stack();
    s.feed_all(
        "nginx",
        r#"192.0.2.150 - - [02/Nov/2024:11:20:05 +0000] "GET /?id=1 HTTP/1.1" 200 10 "-" "sqlmap/1.8.2#stable (https://sqlmap.org)"
192.0.2.151 - - [02/Nov/2024:11:20:06 +0000] "GET / HTTP/1.1" 200 10 "-" "MASSCAN/1.3"
192.0.2.152 - - [02/Nov/2024:11:20:07 +0000] "GET /?q=%3CsCrIpT%3E HTTP/1.1" 200 10 "-" "-""#,
    );
    assert_eq!(
        s.fired_by("web_scanner_user_agent"),
        [(1, "192.0.2.150".to_owned()), (2, "192.0.2.151".to_owned())]
    );
    assert_eq!(s.fired_by("web_xss"), [(3, "192.0.2.152".to_owned())]);
}
