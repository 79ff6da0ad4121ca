//! Detection quality floors on the shared dev corpus, taken from the detection-quality
//! requirements (>= 95% per payload list where the list is a pure attack list, <= 3%
//! SQLi on libinjection's false-positive strings, about one injection alarm per
//! 10,000 lines of real traffic). Needs the corpus at `$PALISADE_CORPUS` or
//! `$CARGO_MANIFEST_DIR/../shared/corpus`; fails, never skips, when it is absent.

use std::path::{Path, PathBuf};

use palisade::detect::classify::Classifier;
use palisade::event::{AttackClasses, Event};

fn corpus() -> PathBuf {
    let dir = std::env::var_os("PALISADE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    assert!(
        dir.join("payloads").is_dir(),
        "test corpus not found at {}: set PALISADE_CORPUS to the shared corpus folder",
        dir.display()
    );
    dir
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn attacks(c: &Classifier, url: &str) -> AttackClasses {
    let mut ev = Event::default();
    ev.set_url(url);
    c.classify(&mut ev);
    ev.attacks
}

/// Share of the list's payloads classified as `class` (`None`: as any attack class).
fn recall(c: &Classifier, list: &str, class: Option<AttackClasses>) -> f64 {
    let text = std::fs::read(corpus().join("payloads").join(list)).expect("payload list");
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().filter(|l| l.trim().len() > 2).collect();
    let hits = lines
        .iter()
        .filter(|p| {
            let p = p.replace("{FILE}", "etc/passwd");
            let found = attacks(c, &format!("/search?q={}", encode(&p)));
            class.map_or(!found.is_empty(), |class| found.contains(class))
        })
        .count();
    hits as f64 / lines.len() as f64
}

#[test]
fn payload_lists_are_caught_at_95_percent() {
    let c = Classifier::new();
    for (list, class) in [
        ("sqli/Generic_UnionSelect.txt", Some(AttackClasses::SQLI)),
        ("sqli/Generic_TimeBased.txt", Some(AttackClasses::SQLI)),
        ("sqli/Generic_ErrorBased.txt", Some(AttackClasses::SQLI)),
        ("sqli/Auth_Bypass.txt", Some(AttackClasses::SQLI)),
        (
            "sqli/payloads-sql-blind-MySQL-WHERE",
            Some(AttackClasses::SQLI),
        ),
        ("xss/BRUTELOGIC-XSS-STRINGS.txt", Some(AttackClasses::XSS)),
        ("xss/IntrudersXSS.txt", Some(AttackClasses::XSS)),
        ("xss/XSSDetection.txt", Some(AttackClasses::XSS)),
        ("xss/XSS_Polyglots.txt", Some(AttackClasses::XSS)),
        ("xss/xss_payloads_quick.txt", Some(AttackClasses::XSS)),
        (
            "traversal/deep_traversal.txt",
            Some(AttackClasses::TRAVERSAL),
        ),
        (
            "traversal/directory_traversal.txt",
            Some(AttackClasses::TRAVERSAL),
        ),
        (
            "traversal/traversals-8-deep-exotic-encoding.txt",
            Some(AttackClasses::TRAVERSAL),
        ),
        ("cmdi/command-execution-unix.txt", Some(AttackClasses::CMDI)),
        // Mixed list: shell commands, code and template injection (SSTI is its own class).
        ("cmdi/command_exec.txt", None),
    ] {
        let r = recall(&c, list, class);
        assert!(r >= 0.95, "{list}: recall {:.1}% below 95%", r * 100.0);
    }
}

#[test]
fn libinjection_false_positive_strings_rarely_read_as_sqli() {
    let c = Classifier::new();
    let text = std::fs::read_to_string(corpus().join("benign/libinjection-false_positives.txt"))
        .expect("benign list");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let flagged = lines
        .iter()
        .filter(|l| attacks(&c, &format!("/search?q={}", encode(l))).contains(AttackClasses::SQLI))
        .count();
    let rate = flagged as f64 / lines.len() as f64;
    assert!(
        rate <= 0.03,
        "{flagged}/{} benign strings flagged as SQLi",
        lines.len()
    );
}

#[test]
fn real_traffic_raises_almost_no_injection_alarms() {
    let c = Classifier::new();
    let text = std::fs::read_to_string(corpus().join("real/elastic_examples_apache_logs.log"))
        .expect("real log");
    let injection = AttackClasses(
        AttackClasses::SQLI.0
            | AttackClasses::XSS.0
            | AttackClasses::TRAVERSAL.0
            | AttackClasses::CMDI.0
            | AttackClasses::JNDI.0
            | AttackClasses::SSTI.0,
    );
    let mut flagged = Vec::new();
    let mut lines = 0;
    for line in text.lines() {
        let q: Vec<&str> = line.split('"').collect();
        let Some(url) = q.get(1).and_then(|r| r.split(' ').nth(1)) else {
            continue;
        };
        lines += 1;
        let mut ev = Event::default();
        ev.set_url(url);
        ev.referrer = q.get(3).map(|s| (*s).into());
        ev.user_agent = q.get(5).map(|s| (*s).into());
        c.classify(&mut ev);
        if ev.attacks.0 & injection.0 != 0 {
            flagged.push(url.to_string());
        }
    }
    assert!(lines >= 9_000, "real log unexpectedly short: {lines} lines");
    assert!(
        flagged.len() * 10_000 <= lines * 2,
        "injection alarms on real traffic: {flagged:?}"
    );
}
