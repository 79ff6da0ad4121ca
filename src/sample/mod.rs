//! The bundled default: a small, deterministic sample of the reference stack's logs
//! with attacks in it, so `palisade demo` shows real detections on a fresh clone.
//!
//! It writes, for one simulated day-part of the reference stack:
//! - `nginx/access.log` in the stack's `main` format (combined + `"$http_x_forwarded_for"`),
//! - `nginx/error.log` with `limit_req` / `limit_conn` lines,
//! - `backend/stdout.log` as `docker logs prompt-backend` shows it (request log,
//!   morgan lines for status >= 400, `Security event:` JSON lines, a stack trace),
//! - `backend/security.log` (JSON lines),
//! - `palisade.toml`, a configuration that reads all four,
//! - `truth.json`, which IPs attack and how.
//!
//! The same seed always gives byte-identical files. Attackers use documentation
//! ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32); benign
//! clients never do.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

/// What a generated sample holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SampleSummary {
    pub dir: PathBuf,
    pub access_lines: usize,
    pub error_lines: usize,
    pub backend_lines: usize,
    pub security_lines: usize,
    /// Attacker IP → what it does.
    pub attackers: Vec<(String, String)>,
}

/// splitmix64: a tiny, well-known generator. Hand-written so the sample stays the same
/// bytes forever, whatever version of a random-number crate is current.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / ((1u64 << 53) as f64) < p
    }
}

const PAGES: &[&str] = &[
    "/",
    "/dashboard",
    "/prompts",
    "/prompts/42",
    "/prompts/new",
    "/settings",
    "/_next/static/chunks/main-3f2a.js",
    "/_next/static/css/app-91bc.css",
    "/images/logo.png",
    "/favicon.ico",
    "/api/prompts?page=2&limit=20",
    "/api/prompts/42",
    "/api/users/me",
    "/api/search?q=summarize+meeting+notes",
    "/api/search?q=select+the+best+union+rep",
    "/blog/tags/alert",
    "/scripts/app.js?v=3",
    "/docs/img/Insert%20or%20Update%20Table.png",
    "/api/health",
];

const BROWSERS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];

const SQLI: &[&str] = &[
    "/api/prompts?id=1%27%20OR%20%271%27%3D%271",
    "/api/search?q=1+UNION+SELECT+username,password+FROM+users--+-",
    "/api/prompts?id=7/**/UNION/**/SELECT/**/NULL,NULL,version()",
    "/api/search?q=1%252F%252A%252A%252FUNION%252F%252A%252A%252FSELECT%252F%252A%252A%252F1",
    "/api/prompts?id=1%20AND%20SLEEP(5)",
    "/api/users?sort=name;DROP%20TABLE%20users;--",
];

const XSS: &[&str] = &[
    "/api/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E",
    "/prompts?name=%3Cimg%20src=x%20onerror=alert(1)%3E",
    "/api/search?q=%3CsVg/OnLoAd=alert(1)%3E",
    "/prompts?redirect=javascript:alert(document.domain)",
];

const TRAVERSAL: &[&str] = &[
    "/api/files?name=..%2F..%2F..%2Fetc%2Fpasswd",
    "/static/..%252f..%252f..%252fetc%252fpasswd",
    "/api/download?f=....//....//....//etc/shadow",
    "/api/files?name=..%5C..%5Cwindows%5Cwin.ini",
];

const PROBES: &[&str] = &[
    "/.env",
    "/.git/config",
    "/wp-login.php",
    "/phpmyadmin/",
    "/.aws/credentials",
    "/backup.sql",
    "/server-status",
    "/actuator/env",
    "/xmlrpc.php",
    "/config.json",
    "/admin.php",
    "/.htpasswd",
];

/// The simulated attackers, documentation-range addresses only.
const BRUTE_FAST: &str = "203.0.113.77";
const BRUTE_SLOW: &str = "2001:db8:7::23";
const INJECTOR: &str = "198.51.100.66";
const SCANNER: &str = "192.0.2.150";
const FLOODER: &str = "198.51.100.12";
/// The reverse proxy in front of nginx is not in the picture; the XFF header is
/// client-supplied, so the injector forges one to look like someone else.
const FORGED_XFF: &str = "192.0.2.200";

struct Writer {
    access: String,
    error: String,
    backend: String,
    security: String,
    counts: [usize; 4],
}

fn nginx_time(t: Timestamp) -> String {
    t.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string()
}

fn iso(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl Writer {
    #[allow(clippy::too_many_arguments)]
    fn access(&mut self, t: Timestamp, ip: &str, method: &str, url: &str, status: u16, ua: &str) {
        self.access_xff(t, ip, method, url, status, ua, "-");
    }

    #[allow(clippy::too_many_arguments)]
    fn access_xff(
        &mut self,
        t: Timestamp,
        ip: &str,
        method: &str,
        url: &str,
        status: u16,
        ua: &str,
        xff: &str,
    ) {
        let bytes = if status < 400 {
            512 + url.len() * 7
        } else {
            153
        };
        let referer = if url.starts_with("/api/") {
            "https://prompt.example.test/"
        } else {
            "-"
        };
        let _ = writeln!(
            self.access,
            "{ip} - - [{}] \"{method} {url} HTTP/1.1\" {status} {bytes} \"{referer}\" \"{ua}\" \"{xff}\"",
            nginx_time(t)
        );
        self.counts[0] += 1;
        if url.starts_with("/api/") {
            self.backend_request(t, ip, method, url, status, ua);
        }
    }

    fn backend_request(
        &mut self,
        t: Timestamp,
        ip: &str,
        method: &str,
        url: &str,
        status: u16,
        ua: &str,
    ) {
        let req = serde_json::json!({
            "timestamp": iso(t), "method": method, "url": url, "ip": ip, "userAgent": ua,
        });
        let _ = writeln!(self.backend, "Security Log - Request: {req}");
        self.counts[2] += 1;
        if status >= 400 {
            // morgan `combined`, as the backend writes it for errors
            let _ = writeln!(
                self.backend,
                "{ip} - - [{}] \"{method} {url} HTTP/1.1\" {status} 43 \"-\" \"{ua}\"",
                t.strftime("%d/%b/%Y:%H:%M:%S +0000")
            );
            self.counts[2] += 1;
        }
    }

    fn security_event(&mut self, t: Timestamp, kind: &str, ip: &str, extra: serde_json::Value) {
        let mut ev = serde_json::json!({
            "level": "warn", "message": format!("Security event: {kind}"),
            "type": kind, "ip": ip, "timestamp": iso(t),
        });
        if let (Some(obj), Some(more)) = (ev.as_object_mut(), extra.as_object()) {
            obj.extend(more.clone());
        }
        let _ = writeln!(self.backend, "{ev}");
        self.counts[2] += 1;
        let line = serde_json::json!({
            "timestamp": iso(t), "level": "warn", "source": "auth",
            "message": format!("Security event: {kind}"),
            "metadata": { "ip": ip, "type": kind, "details": extra },
            "tags": ["security", kind],
        });
        let _ = writeln!(self.security, "{line}");
        self.counts[3] += 1;
    }

    fn limit(&mut self, t: Timestamp, ip: &str, url: &str, cid: u64) {
        let _ = writeln!(
            self.error,
            "{} [error] 29#29: *{cid} limiting requests, excess: 20.{:03} by zone \"api\", client: {ip}, server: prompt.example.test, request: \"GET {url} HTTP/1.1\", host: \"prompt.example.test\"",
            t.strftime("%Y/%m/%d %H:%M:%S"),
            cid % 1000
        );
        self.counts[1] += 1;
    }
}

/// A benign client address from outside the documentation ranges.
fn benign_ip(rng: &mut Rng) -> String {
    if rng.chance(0.1) {
        return format!(
            "2a02:{:x}:{:x}::{:x}",
            rng.below(0xffff),
            rng.below(0xffff),
            1 + rng.below(0xfffe)
        );
    }
    let first = *rng.pick(&[31u64, 46, 81, 85, 89, 91, 104, 141, 151, 176, 185, 212]);
    format!(
        "{first}.{}.{}.{}",
        rng.below(256),
        rng.below(256),
        1 + rng.below(254)
    )
}

fn at(start: Timestamp, secs: f64) -> Timestamp {
    start + jiff::SignedDuration::from_secs_f64(secs)
}

/// Writes the sample into `dir` (created if missing) and returns what it holds.
pub fn generate(dir: &Path, seed: u64, benign_lines: usize) -> io::Result<SampleSummary> {
    let mut rng = Rng(seed);
    let start: Timestamp = "2026-11-20T08:00:00Z".parse().expect("valid constant");
    let span = 6.0 * 3600.0;
    let clients: Vec<(String, &str)> = (0..400)
        .map(|_| (benign_ip(&mut rng), *rng.pick(BROWSERS)))
        .collect();
    let mut events: Vec<(f64, u32, u64)> = Vec::new(); // (time, kind, arg)

    for i in 0..benign_lines {
        events.push((
            rng.below((span * 1000.0) as u64) as f64 / 1000.0,
            0,
            i as u64,
        ));
    }
    // fast brute force: 60 attempts, ~1.5 s apart
    let t0 = 3600.0 + rng.below(600) as f64;
    for i in 0..60 {
        events.push((t0 + i as f64 * 1.5, 1, i));
    }
    // low-and-slow: one attempt every 45-150 s for ~2.5 h
    let mut t = 1800.0;
    for i in 0..90 {
        events.push((t, 2, i));
        t += 45.0 + rng.below(105) as f64;
    }
    // injector: SQLi, XSS, traversal, spread over an hour
    for (i, t) in (0..30).map(|i| (i, 7200.0 + i as f64 * 97.0)) {
        events.push((t, 3, i));
    }
    // scanner: 120 probes within 2 minutes
    for i in 0..120 {
        events.push((10800.0 + i as f64 * 0.9, 4, i));
    }
    // flooder hitting the api rate limit
    for i in 0..80 {
        events.push((14400.0 + i as f64 * 0.2, 5, i));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));

    let mut w = Writer {
        access: String::new(),
        error: String::new(),
        backend: String::new(),
        security: String::new(),
        counts: [0; 4],
    };
    let mut cid = 1000u64;
    for (secs, kind, arg) in events {
        let t = at(start, secs);
        cid += 1;
        match kind {
            0 => benign(&mut w, &mut rng, &clients, t),
            1 | 2 => {
                let ip = if kind == 1 { BRUTE_FAST } else { BRUTE_SLOW };
                let ua = if kind == 1 {
                    "python-requests/2.31.0"
                } else {
                    BROWSERS[0]
                };
                w.access(t, ip, "POST", "/api/auth/login", 401, ua);
                let user = ["admin", "root", "alice", "support"][(arg % 4) as usize];
                w.security_event(
                    t,
                    "auth_failure",
                    ip,
                    serde_json::json!({"reason": "invalid_password", "email": format!("{user}@example.test")}),
                );
            }
            3 => {
                let list = [SQLI, XSS, TRAVERSAL][(arg % 3) as usize];
                let url = list[(arg / 3) as usize % list.len()];
                let status = if arg % 2 == 0 { 400 } else { 200 };
                w.access_xff(
                    t,
                    INJECTOR,
                    "GET",
                    url,
                    status,
                    "sqlmap/1.8.2#stable (https://sqlmap.org)",
                    FORGED_XFF,
                );
                if arg % 5 == 0 {
                    w.security_event(
                        t,
                        "suspicious_activity",
                        INJECTOR,
                        serde_json::json!({"pattern": "sql_injection", "url": url}),
                    );
                }
            }
            4 => {
                let path = PROBES[arg as usize % PROBES.len()];
                let path = if arg as usize >= PROBES.len() {
                    format!("/old{path}")
                } else {
                    path.to_string()
                };
                w.access(
                    t,
                    SCANNER,
                    "GET",
                    &path,
                    404,
                    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000001)",
                );
            }
            _ => {
                let status = if arg < 20 { 200 } else { 503 };
                w.access(
                    t,
                    FLOODER,
                    "GET",
                    "/api/prompts?page=1",
                    status,
                    "Go-http-client/1.1",
                );
                if status == 503 {
                    w.limit(t, FLOODER, "/api/prompts?page=1", cid);
                }
            }
        }
    }
    // one unhandled error with a stack trace, as Node prints it
    let _ = write!(
        w.backend,
        "Error: connect ECONNREFUSED 172.18.0.4:6379\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1607:16)\n    at RedisClient.connect (/app/node_modules/redis/dist/index.js:211:9)\n"
    );
    w.counts[2] += 1;

    write_files(dir, &w)?;
    Ok(SampleSummary {
        dir: dir.to_path_buf(),
        access_lines: w.counts[0],
        error_lines: w.counts[1],
        backend_lines: w.counts[2],
        security_lines: w.counts[3],
        attackers: vec![
            (
                BRUTE_FAST.into(),
                "brute force: 60 failed logins in 90 s".into(),
            ),
            (
                BRUTE_SLOW.into(),
                "low-and-slow brute force: one failed login every 45-150 s".into(),
            ),
            (
                INJECTOR.into(),
                "SQL injection, XSS and path traversal (sqlmap UA, forged X-Forwarded-For)".into(),
            ),
            (
                SCANNER.into(),
                "vulnerability scanner: 120 sensitive-file probes answered 404".into(),
            ),
            (
                FLOODER.into(),
                "hits the nginx `api` rate limit 60 times".into(),
            ),
        ],
    })
}

fn benign(w: &mut Writer, rng: &mut Rng, clients: &[(String, &str)], t: Timestamp) {
    let (ip, ua) = rng.pick(clients);
    let roll = rng.below(1000);
    if roll < 15 {
        w.access(t, ip, "POST", "/api/auth/login", 200, ua);
    } else if roll < 17 {
        // a user mistyping a password once
        w.access(t, ip, "POST", "/api/auth/login", 401, ua);
    } else if roll < 25 {
        w.access(t, ip, "GET", "/apple-touch-icon-precomposed.png", 404, ua);
    } else {
        let page = *rng.pick(PAGES);
        let status = if page == "/prompts/42" && rng.chance(0.1) {
            304
        } else {
            200
        };
        w.access(t, ip, "GET", page, status, ua);
    }
}

fn write_files(dir: &Path, w: &Writer) -> io::Result<()> {
    fs::create_dir_all(dir.join("nginx"))?;
    fs::create_dir_all(dir.join("backend"))?;
    fs::write(dir.join("nginx/access.log"), &w.access)?;
    fs::write(dir.join("nginx/error.log"), &w.error)?;
    fs::write(dir.join("backend/stdout.log"), &w.backend)?;
    fs::write(dir.join("backend/security.log"), &w.security)?;
    fs::write(dir.join("palisade.toml"), SAMPLE_CONFIG)?;
    Ok(())
}

/// The configuration written next to the sample; paths are relative to it.
pub const SAMPLE_CONFIG: &str = r#"# palisade configuration for the bundled sample of the reference stack.
# Paths are relative to this file.

[[sources]]
name = "nginx-access"
path = "nginx/access.log"
parser = { format = "nginx", log_format = "main" }

[[sources]]
name = "nginx-error"
path = "nginx/error.log"
parser = { format = "nginx_error" }

[[sources]]
name = "backend"
path = "backend/stdout.log"
parser = { format = "backend" }

[[sources]]
name = "backend-security"
path = "backend/security.log"
parser = { format = "security_log" }

[store]
path = "palisade.db"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_identical_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        generate(a.path(), 7, 500).unwrap();
        generate(b.path(), 7, 500).unwrap();
        for f in [
            "nginx/access.log",
            "nginx/error.log",
            "backend/stdout.log",
            "backend/security.log",
        ] {
            let x = fs::read(a.path().join(f)).unwrap();
            let y = fs::read(b.path().join(f)).unwrap();
            assert!(!x.is_empty(), "{f} is empty");
            assert_eq!(x, y, "{f} differs between runs with the same seed");
        }
    }

    #[test]
    fn attackers_use_documentation_ranges_only() {
        let d = tempfile::tempdir().unwrap();
        let s = generate(d.path(), 1, 2000).unwrap();
        let doc: Vec<ipnet::IpNet> = [
            "192.0.2.0/24",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "2001:db8::/32",
        ]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
        for (ip, _) in &s.attackers {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            assert!(
                doc.iter().any(|n| n.contains(&ip)),
                "{ip} outside documentation ranges"
            );
        }
        let access = fs::read_to_string(d.path().join("nginx/access.log")).unwrap();
        let benign_in_doc = access
            .lines()
            .filter_map(|l| l.split(' ').next()?.parse::<std::net::IpAddr>().ok())
            .filter(|ip| doc.iter().any(|n| n.contains(ip)))
            .filter(|ip| {
                !s.attackers
                    .iter()
                    .any(|(a, _)| a.parse::<std::net::IpAddr>().ok() == Some(*ip))
            })
            .count();
        assert_eq!(benign_in_doc, 0);
    }
}
