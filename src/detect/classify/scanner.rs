//! Scanner user agents and requests for sensitive files.
//!
//! Both are single automaton passes that run on every request, so they are built
//! once, case-insensitive (field case 33: `sqlmap` vs `Sqlmap`, `MASSCAN`), and
//! checked with boundaries so that ordinary names that merely contain a pattern do
//! not match (`/envelope`, `/legit/`).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

/// Tool names found in the User-Agent header of vulnerability scanners and brute
/// forcers.
const SCANNERS: &[&str] = &[
    "sqlmap", "nikto", "nuclei", "masscan", "zgrab", "gobuster", "dirbuster", "nmap",
    "wpscan", "acunetix", "nessus", "openvas", "hydra", "w3af", "arachni", "skipfish",
    "havij", "netsparker", "appscan", "webinspect", "fimap", "commix", "wfuzz",
    "feroxbuster", "ffuf", "fuzz faster u fool", "jaeles", "xsstrike", "whatweb",
    "wapiti", "zmeu", "morfeus", "paros", "sql power injector", "pangolin", "bsqlbf",
    "grabber", "dotdotpwn", "nasl", "jorgee", "dirb/", "(dirb)", "joomscan", "droopescan",
    "cgichk", "webshag", "zap/", "owasp zap", "burp", "vega/", "nsauditor", "httprint",
    "brutus", "medusa", "zmap", "l9explore", "l9tcpid", "struts-pwn", "xenu", "qualys",
    "crimscanner", "sqlninja", "absinthe", "metasploit", "internet-measurement",
    "scaninfo@", "netlab360", "masscan-ng", "mozilla/5.0 zgrab", "censysinspect",
    "nmap scripting engine", "teh forest lobster", "webfuzz", "dirsearch", "blackwidow",
];

/// A path pattern and where it must sit.
#[derive(Clone, Copy)]
enum Anchor {
    /// Starts a path segment; followed by end, `/`, `.`, `~`, `-` or `_`.
    Segment,
    /// Ends the path (extension of a dump or backup).
    Suffix,
}

const SENSITIVE: &[(&str, Anchor)] = &[
    ("/.env", Anchor::Segment),
    ("/.git", Anchor::Segment),
    ("/.svn", Anchor::Segment),
    ("/.hg/", Anchor::Segment),
    ("/.bzr", Anchor::Segment),
    ("/.aws", Anchor::Segment),
    ("/.ssh", Anchor::Segment),
    ("/.docker", Anchor::Segment),
    ("/.npmrc", Anchor::Segment),
    ("/.htpasswd", Anchor::Segment),
    ("/.htaccess", Anchor::Segment),
    ("/.ds_store", Anchor::Segment),
    ("/.bash_history", Anchor::Segment),
    ("/.vscode", Anchor::Segment),
    ("/.idea", Anchor::Segment),
    ("/id_rsa", Anchor::Segment),
    ("/wp-login.php", Anchor::Segment),
    ("/xmlrpc.php", Anchor::Segment),
    ("/wp-config", Anchor::Segment),
    ("/phpmyadmin", Anchor::Segment),
    ("/pma/", Anchor::Segment),
    ("/myadmin", Anchor::Segment),
    ("/mysqladmin", Anchor::Segment),
    ("/server-status", Anchor::Segment),
    ("/server-info", Anchor::Segment),
    ("/actuator", Anchor::Segment),
    ("/eval-stdin.php", Anchor::Segment),
    ("/phpinfo.php", Anchor::Segment),
    ("/web.config", Anchor::Segment),
    ("/docker-compose.y", Anchor::Segment),
    ("/config.json", Anchor::Segment),
    ("/credentials", Anchor::Segment),
    ("/etc/passwd", Anchor::Segment),
    ("/boaform", Anchor::Segment),
    ("/cgi-bin/", Anchor::Segment),
    ("/vendor/phpunit", Anchor::Segment),
    ("/console/", Anchor::Segment),
    ("/manager/html", Anchor::Segment),
    ("/jmx-console", Anchor::Segment),
    ("/solr/admin", Anchor::Segment),
    ("/_profiler", Anchor::Segment),
    ("/telescope", Anchor::Segment),
    ("/debug/pprof", Anchor::Segment),
    ("/.well-known/security.txt.bak", Anchor::Segment),
    (".sql", Anchor::Suffix),
    (".sql.gz", Anchor::Suffix),
    (".sql.zip", Anchor::Suffix),
    (".bak", Anchor::Suffix),
    (".old", Anchor::Suffix),
    (".orig", Anchor::Suffix),
    (".swp", Anchor::Suffix),
    (".save", Anchor::Suffix),
    (".backup", Anchor::Suffix),
    (".mdb", Anchor::Suffix),
    (".sqlite", Anchor::Suffix),
    (".pem", Anchor::Suffix),
    (".key", Anchor::Suffix),
    (".kdbx", Anchor::Suffix),
    (".tfstate", Anchor::Suffix),
    ("~", Anchor::Suffix),
    (".log", Anchor::Suffix),
];

/// Scanner-UA and sensitive-path automata.
pub struct Scanner {
    agents: AhoCorasick,
    paths: AhoCorasick,
}

impl Scanner {
    pub fn new() -> Scanner {
        let build = |pats: Vec<&str>, kind| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(kind)
                .kind(Some(AhoCorasickKind::DFA))
                .build(pats)
                .expect("static scanner patterns compile")
        };
        Scanner {
            agents: build(SCANNERS.to_vec(), MatchKind::LeftmostFirst),
            paths: build(SENSITIVE.iter().map(|(p, _)| *p).collect(), MatchKind::Standard),
        }
    }

    /// The scanner tool named in a User-Agent, if any.
    pub fn scanner_ua(&self, ua: &str) -> Option<(&'static str, usize)> {
        let m = self.agents.find(ua)?;
        Some((SCANNERS[m.pattern().as_usize()], m.start()))
    }

    /// The sensitive-file pattern a path asks for, if any (path without query).
    pub fn sensitive_path(&self, path: &[u8]) -> Option<(&'static str, usize)> {
        if let Some(at) = hidden_segment(path) {
            return Some(("hidden file or directory (/.name)", at));
        }
        for m in self.paths.find_overlapping_iter(path) {
            let (pat, anchor) = SENSITIVE[m.pattern().as_usize()];
            let after = path.get(m.end()).copied();
            let ok = match anchor {
                Anchor::Segment => {
                    pat.ends_with('/')
                        || matches!(after, None | Some(b'/' | b'.' | b'~' | b'-' | b'_' | b';'))
                }
                Anchor::Suffix => after.is_none() && m.start() > 0 && path[m.start() - 1] != b'/',
            };
            if ok {
                return Some((pat, m.start()));
            }
        }
        None
    }
}

/// A path segment starting with `.` and a name (`/.env`, `/.claude/settings.json`,
/// `/.git/`): dotfiles hold configuration and secrets and are never meant to be served.
/// `/.well-known/` is the standard exception.
fn hidden_segment(path: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(off) = memchr::memchr(b'.', &path[from..]) {
        let at = from + off;
        from = at + 1;
        let starts_segment = at > 0 && path[at - 1] == b'/';
        let named = path.get(at + 1).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if starts_segment && named && !path[at..].starts_with(b".well-known") {
            return Some(at - 1);
        }
    }
    None
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Scanner;

    #[test]
    fn scanner_agents_match_in_any_case() {
        // Field case 33: capitalisation must not hide a scanner.
        let s = Scanner::new();
        for ua in ["sqlmap/1.8.2#stable (https://sqlmap.org)", "MASSCAN/1.3", "Nikto/2.5", "Mozilla/5.0 zgrab/0.x"] {
            assert!(s.scanner_ua(ua).is_some(), "{ua}");
        }
        assert!(s.scanner_ua("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0").is_none());
    }

    #[test]
    fn sensitive_paths_need_boundaries() {
        let s = Scanner::new();
        for p in ["/.env", "/app/.env.production", "/.git/config", "/wp-login.php", "/db/dump.sql", "/.aws/credentials", "/actuator/env", "/index.php.bak", "/.claude/settings.json"] {
            assert!(s.sensitive_path(p.as_bytes()).is_some(), "{p}");
        }
        for p in ["/envelope", "/.well-known/acme-challenge/x", "/v1.2/docs", "/blog/sql", "/legit/", "/styles/key.css", "/docs/oldies", "/"] {
            assert!(s.sensitive_path(p.as_bytes()).is_none(), "{p}");
        }
    }
}
