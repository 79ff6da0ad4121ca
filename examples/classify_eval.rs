//! Quick-feedback measurement of the request classifiers against the dev corpus.
//!
//! Prints recall per payload list and per CRS family (split by where the payload sits),
//! false-positive rates on the libinjection benign strings and the real access log,
//! the real-log lines that fire, and nanoseconds per line. It asserts nothing: the
//! official per-paranoia-level tables come from `palisade eval`.
//!
//! Run: `PALISADE_CORPUS=/work/shared/corpus cargo run --release --example classify_eval`
//! (add `-- --misses FAMILY` to print missed payloads of one family, e.g. `sqli`, `942`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use palisade::detect::classify::Classifier;
use palisade::event::{AttackClasses, Event};

fn corpus() -> PathBuf {
    let dir = std::env::var_os("PALISADE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    assert!(
        dir.join("payloads").is_dir(),
        "corpus not found at {}: set PALISADE_CORPUS",
        dir.display()
    );
    dir
}

/// Encodes what cannot stand in a request line, or everything non-alphanumeric.
fn encode(s: &str, all: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let keep = if all {
            b.is_ascii_alphanumeric()
        } else {
            b > 0x20 && b < 0x7f && !matches!(b, b'#' | b'&' | b'%' | b'+')
        };
        if keep || (!all && b == b'%') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn classify_url(
    c: &Classifier,
    url: &str,
    ua: Option<&str>,
    referrer: Option<&str>,
) -> AttackClasses {
    let mut ev = Event::default();
    ev.set_url(url);
    ev.user_agent = ua.map(Into::into);
    ev.referrer = referrer.map(Into::into);
    c.classify(&mut ev);
    ev.attacks
}

fn payloads(c: &Classifier, root: &Path, misses: &str) {
    println!("== payload lists (GET /search?q=<payload>) ==");
    println!(
        "{:<52} {:>5} {:>9} {:>9} {:>9}",
        "list", "n", "raw-ish", "encoded", "any-class"
    );
    for (fam, class) in [
        ("sqli", AttackClasses::SQLI),
        ("xss", AttackClasses::XSS),
        ("traversal", AttackClasses::TRAVERSAL),
        ("cmdi", AttackClasses::CMDI),
    ] {
        let mut files: Vec<_> = std::fs::read_dir(root.join("payloads").join(fam))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files {
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
            let (mut n, mut raw_hit, mut enc_hit, mut any) = (0, 0, 0, 0);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let p = line.replace("{FILE}", "etc/passwd");
                n += 1;
                let a = classify_url(c, &format!("/search?q={}", encode(&p, false)), None, None);
                let b = classify_url(c, &format!("/search?q={}", encode(&p, true)), None, None);
                raw_hit += usize::from(a.contains(class));
                enc_hit += usize::from(b.contains(class));
                any += usize::from(!a.is_empty() || !b.is_empty());
                if misses == fam && !a.contains(class) {
                    println!("  MISS {p}");
                }
            }
            let pct = |k: usize| 100.0 * k as f64 / n.max(1) as f64;
            let name = format!("{fam}/{}", f.file_name().unwrap().to_string_lossy());
            println!(
                "{name:<52} {n:>5} {:>8.1}% {:>8.1}% {:>8.1}%",
                pct(raw_hit),
                pct(enc_hit),
                pct(any)
            );
        }
    }
}

#[derive(Default)]
struct Tally {
    n: usize,
    hit: usize,
}

fn crs(c: &Classifier, root: &Path, misses: &str) {
    println!(
        "\n== CRS regression tests (expect_ids = attack; no_expect_ids = flagged by the same class) =="
    );
    let families = [
        ("REQUEST-913-SCANNER-DETECTION", AttackClasses::SCANNER_UA),
        (
            "REQUEST-930-APPLICATION-ATTACK-LFI",
            AttackClasses(AttackClasses::TRAVERSAL.0 | AttackClasses::SENSITIVE_FILE.0),
        ),
        ("REQUEST-932-APPLICATION-ATTACK-RCE", AttackClasses::CMDI),
        ("REQUEST-941-APPLICATION-ATTACK-XSS", AttackClasses::XSS),
        ("REQUEST-942-APPLICATION-ATTACK-SQLI", AttackClasses::SQLI),
    ];
    for (dir, class) in families {
        let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
        let mut per_rule: BTreeMap<String, Tally> = BTreeMap::new();
        let mut files: Vec<_> = std::fs::read_dir(root.join("crs").join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files {
            let doc: serde_json::Value =
                serde_norway::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            let rule = doc["rule_id"].to_string();
            for t in doc["tests"].as_array().into_iter().flatten() {
                let stage = &t["stages"][0];
                let input = &stage["input"];
                let log = &stage["output"]["log"];
                let attack = log.get("expect_ids").is_some();
                if !attack && log.get("no_expect_ids").is_none() {
                    continue;
                }
                let (loc, got) = judge(c, input);
                let hit = got.0 & class.0 != 0;
                let key = format!("{} {loc}", if attack { "attack" } else { "benign" });
                let e = tallies.entry(key).or_default();
                e.n += 1;
                e.hit += usize::from(hit);
                if attack {
                    let r = per_rule.entry(rule.clone()).or_default();
                    r.n += 1;
                    r.hit += usize::from(hit);
                }
                if attack && !hit && misses.len() == 3 && dir.contains(misses) {
                    println!("  MISS {rule} {loc}: {}", describe(input));
                }
            }
        }
        println!("{dir}");
        let (mut an, mut ah) = (0, 0);
        for (k, t) in &tallies {
            println!(
                "  {k:<28} {:>4}/{:<4} {:>6.1}%",
                t.hit,
                t.n,
                100.0 * t.hit as f64 / t.n.max(1) as f64
            );
            if k.starts_with("attack") && !k.ends_with("(none)") {
                an += t.n;
                ah += t.hit;
            }
        }
        println!(
            "  attack overall (with payload) {ah}/{an} {:.1}%",
            100.0 * ah as f64 / an.max(1) as f64
        );
        let rules: Vec<String> = per_rule
            .iter()
            .map(|(r, t)| format!("{r}:{}/{}", t.hit, t.n))
            .collect();
        println!("  per rule: {}", rules.join(" "));
    }
}

fn describe(input: &serde_json::Value) -> String {
    let h = &input["headers"];
    format!(
        "uri={} data={} ua={} ref={}",
        input["uri"], input["data"], h["User-Agent"], h["Referer"]
    )
}

/// Renders one CRS request as an access-log event; a body moves into the query.
fn judge(c: &Classifier, input: &serde_json::Value) -> (&'static str, AttackClasses) {
    let uri = input["uri"].as_str().unwrap_or("/");
    let h = &input["headers"];
    let ua = h["User-Agent"].as_str().or(h["user-agent"].as_str());
    let referrer = h["Referer"].as_str().or(h["referer"].as_str());
    let data = input["data"].as_str().filter(|d| !d.is_empty());
    let mut got = classify_url(c, uri, ua, referrer);
    let loc = if data.is_some() {
        let url = format!("/post?{}", encode(data.unwrap_or_default(), false));
        got.insert(classify_url(c, &url, None, None));
        "body->query"
    } else if uri.contains('?') || uri.contains('%') {
        "uri/query"
    } else if ua.is_some_and(|u| u != "OWASP CRS test agent") {
        "user-agent"
    } else if referrer.is_some() {
        "referer"
    } else if uri.len() > 1 {
        "path"
    } else {
        "(none)"
    };
    (loc, got)
}

fn benign(c: &Classifier, root: &Path) {
    let text =
        std::fs::read_to_string(root.join("benign/libinjection-false_positives.txt")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    let mut sqli = 0;
    let mut any = 0;
    for l in &lines {
        let got = classify_url(c, &format!("/search?q={}", encode(l, true)), None, None);
        if got.contains(AttackClasses::SQLI) {
            sqli += 1;
            println!("  FP sqli: {l}");
        }
        any += usize::from(!got.is_empty());
    }
    let n = lines.len();
    println!(
        "\n== libinjection false positives: {n} strings; SQLi {sqli} ({:.1}%), any class {any}",
        100.0 * sqli as f64 / n as f64
    );
}

struct Req {
    url: String,
    ua: String,
    referrer: String,
}

/// Splits an Apache/nginx combined line into request URL, referrer and user agent.
fn parse_combined(line: &str) -> Option<Req> {
    let q: Vec<&str> = line.split('"').collect();
    let request = q.get(1)?;
    let url = request.split(' ').nth(1)?.to_string();
    Some(Req {
        url,
        referrer: q.get(3)?.to_string(),
        ua: q.get(5)?.to_string(),
    })
}

fn real_log(c: &Classifier, root: &Path) {
    let text = std::fs::read_to_string(root.join("real/elastic_examples_apache_logs.log")).unwrap();
    let reqs: Vec<Req> = text.lines().filter_map(parse_combined).collect();
    let mut events: Vec<Event> = reqs
        .iter()
        .map(|r| {
            let mut ev = Event::default();
            ev.set_url(&r.url);
            ev.user_agent = Some(r.ua.as_str().into());
            ev.referrer = Some(r.referrer.as_str().into());
            ev
        })
        .collect();
    let rounds = if std::env::args().any(|a| a == "--bench") {
        200
    } else {
        20
    };
    let start = Instant::now();
    let cpu_start = cpu_ns();
    for _ in 0..rounds {
        for ev in events.iter_mut() {
            ev.attacks = AttackClasses::default();
            ev.findings.clear();
            c.classify(ev);
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / (rounds * events.len()) as f64;
    let cpu = cpu_ns().saturating_sub(cpu_start) as f64 / (rounds * events.len()) as f64;
    println!("  classify: {ns:.0} ns/line wall, {cpu:.0} ns/line on-CPU (this thread)");
    for (name, pick) in [("url", 0), ("user agent", 1), ("referrer", 2)] {
        let start = Instant::now();
        for r in &reqs {
            let (part, text) = match pick {
                0 => ("url.original", r.url.as_str()),
                1 => ("user_agent.original", r.ua.as_str()),
                _ => ("http.request.referrer", r.referrer.as_str()),
            };
            std::hint::black_box(c.classify_text(part, text));
        }
        let ns = start.elapsed().as_nanos() as f64 / reqs.len() as f64;
        println!("  {name}: {ns:.0} ns/line");
    }
    let flagged: Vec<&Event> = events.iter().filter(|e| !e.attacks.is_empty()).collect();
    println!(
        "\n== real log: {} lines, {:.0} ns/line (classify only), {} flagged",
        events.len(),
        ns,
        flagged.len()
    );
    let mut by_class: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &flagged {
        for n in e.attacks.names() {
            *by_class.entry(n).or_default() += 1;
        }
        let f = &e.findings[0];
        println!(
            "  {:?} [{} in {}: {}] {}",
            e.attacks.names().collect::<Vec<_>>(),
            f.reason,
            f.part,
            f.excerpt,
            e.url_original.as_deref().unwrap_or("")
        );
    }
    println!("  by class: {by_class:?}");
}

/// This thread's on-CPU time in ns (Linux schedstat), so a loaded machine does not
/// inflate the per-line figure; 0 where unavailable.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let misses = args
        .iter()
        .position(|a| a == "--misses")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    let root = corpus();
    let c = Classifier::new();
    if args.iter().any(|a| a == "--bench") {
        real_log(&c, &root);
        return;
    }
    payloads(&c, &root, &misses);
    crs(&c, &root, &misses);
    benign(&c, &root);
    real_log(&c, &root);
}
