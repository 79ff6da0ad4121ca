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
    "sqlmap",
    "nikto",
    "nuclei",
    "masscan",
    "zgrab",
    "gobuster",
    "dirbuster",
    "nmap",
    "wpscan",
    "acunetix",
    "nessus",
    "openvas",
    "hydra",
    "w3af",
    "arachni",
    "skipfish",
    "havij",
    "netsparker",
    "appscan",
    "webinspect",
    "fimap",
    "commix",
    "wfuzz",
    "feroxbuster",
    "ffuf",
    "fuzz faster u fool",
    "jaeles",
    "xsstrike",
    "whatweb",
    "wapiti",
    "zmeu",
    "morfeus",
    "paros",
    "sql power injector",
    "pangolin",
    "bsqlbf",
    "grabber",
    "dotdotpwn",
    "nasl",
    "jorgee",
    "dirb/",
    "(dirb)",
    "joomscan",
    "droopescan",
    "cgichk",
    "webshag",
    "zap/",
    "owasp zap",
    "burp",
    "vega/",
    "nsauditor",
    "httprint",
    "brutus",
    "medusa",
    "zmap",
    "l9explore",
    "l9tcpid",
    "struts-pwn",
    "qualys",
    "crimscanner",
    "sqlninja",
    "absinthe",
    "metasploit",
    "internet-measurement",
    "scaninfo@",
    "netlab360",
    "masscan-ng",
    "mozilla/5.0 zgrab",
    "censysinspect",
    "nmap scripting engine",
    "teh forest lobster",
    "webfuzz",
    "dirsearch",
    "blackwidow",
];

/// Names that, at the start of a path segment, ask for admin consoles, credentials,
/// configuration or debug output. A name must end at a boundary (end, `/`, `.`, `-`,
/// `_`, `~`, `;`) unless it ends in `/` itself. Dot-names (`/.env`, `/.git/`) are
/// covered by [`hidden_segment`].
const SENSITIVE_SEGMENTS: &[&str] = &[
    "wp-login.php",
    "xmlrpc.php",
    "wp-config",
    "phpmyadmin",
    "pma/",
    "myadmin",
    "mysqladmin",
    "server-status",
    "server-info",
    "actuator",
    "eval-stdin.php",
    "phpinfo.php",
    "web.config",
    "docker-compose.y",
    "config.json",
    "credentials",
    "id_rsa",
    "boaform",
    "cgi-bin/",
    "vendor/phpunit",
    "console/",
    "manager/html",
    "jmx-console",
    "solr/admin",
    "_profiler",
    "telescope",
    "debug/pprof",
    "etc/passwd",
    "etc/shadow",
    "proc/self/",
    "proc/version",
    "proc/cpuinfo",
    "proc/meminfo",
    "proc/interrupts",
    "proc/mounts",
    "proc/net/",
    "sys/class/",
    "sys/class",
    "sys/kernel/",
    "sys/firmware/",
    "win.ini",
    "boot.ini",
    "web-inf/",
    "debug.log",
    "error.log",
    "errors.log",
    "error_log",
    "access.log",
];

/// Extensions of dumps, backups, editor leftovers, keys and databases.
const SENSITIVE_EXTENSIONS: &[&str] = &[
    "sql", "bak", "old", "orig", "swp", "save", "backup", "mdb", "sqlite", "pem", "key", "kdbx",
    "tfstate", "gz", "zip",
];

/// Scanner-UA and sensitive-path automata.
pub struct Scanner {
    agents: AhoCorasick,
    /// Indices into [`SENSITIVE_SEGMENTS`] by lower-cased first byte.
    by_first: Vec<Vec<u8>>,
    /// Bit set of lower-cased first-two-byte pairs of those names: most segments are
    /// rejected with one lookup.
    pairs: Vec<u64>,
}

fn pair_index(a: u8, b: u8) -> usize {
    usize::from(a.to_ascii_lowercase()) << 8 | usize::from(b.to_ascii_lowercase())
}

impl Scanner {
    pub fn new() -> Scanner {
        let build = |pats: Vec<&str>, kind| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(kind)
                .kind(Some(AhoCorasickKind::DFA))
                // Start bytes such as `/` occur in every path: a prefilter only adds work.
                .prefilter(false)
                .build(pats)
                .expect("static scanner patterns compile")
        };
        let mut by_first = vec![Vec::new(); 256];
        for (i, pat) in SENSITIVE_SEGMENTS.iter().enumerate() {
            by_first[usize::from(pat.as_bytes()[0])].push(i as u8);
        }
        let mut pairs = vec![0u64; 65536 / 64];
        for pat in SENSITIVE_SEGMENTS {
            let p = pat.as_bytes();
            let i = pair_index(p[0], p[1]);
            pairs[i / 64] |= 1 << (i % 64);
        }
        Scanner {
            agents: build(SCANNERS.to_vec(), MatchKind::LeftmostFirst),
            by_first,
            pairs,
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
        let mut seg_start = 0;
        while let Some(off) = memchr::memchr(b'/', &path[seg_start..]) {
            let at = seg_start + off + 1;
            seg_start = at;
            let Some(first) = path.get(at) else { break };
            let second = path.get(at + 1).copied().unwrap_or(0);
            let pi = pair_index(*first, second);
            if self.pairs[pi / 64] & (1 << (pi % 64)) == 0 {
                continue;
            }
            for &i in &self.by_first[usize::from(first.to_ascii_lowercase())] {
                let pat = SENSITIVE_SEGMENTS[usize::from(i)].as_bytes();
                let Some(found) = path.get(at..at + pat.len()) else {
                    continue;
                };
                let after = path.get(at + pat.len()).copied();
                let bounded = pat.ends_with(b"/")
                    || matches!(after, None | Some(b'/' | b'.' | b'~' | b'-' | b'_' | b';'));
                if found.eq_ignore_ascii_case(pat) && bounded {
                    return Some((SENSITIVE_SEGMENTS[usize::from(i)], at - 1));
                }
            }
        }
        sensitive_extension(path)
    }
}

/// The last segment ends in a dump/backup/key extension (`/db/dump.sql`, `x.php.bak`)
/// or an editor leftover `~`.
fn sensitive_extension(path: &[u8]) -> Option<(&'static str, usize)> {
    let last = path.iter().rposition(|b| *b == b'/').map_or(0, |p| p + 1);
    let name = &path[last..];
    if name.len() > 1 && name.ends_with(b"~") {
        return Some(("editor backup ~", last));
    }
    let dot = name.iter().rposition(|b| *b == b'.').filter(|d| *d > 0)?;
    let ext = &name[dot + 1..];
    let hit = SENSITIVE_EXTENSIONS
        .iter()
        .find(|e| ext.eq_ignore_ascii_case(e.as_bytes()))?;
    // `.gz`/`.zip` only as dumps of SQL (`backup.sql.gz`), not any archive.
    if matches!(*hit, "gz" | "zip") && !name[..dot].to_ascii_lowercase().ends_with(b".sql") {
        return None;
    }
    Some((hit, last + dot))
}

/// A path segment starting with `.` and a name (`/.env`, `/.claude/settings.json`,
/// `/.git/`): dotfiles hold configuration and secrets and are never meant to be served.
/// `/.well-known/` is the standard exception.
fn hidden_segment(path: &[u8]) -> Option<usize> {
    // A hidden name at the web root (`/.foo`) is a probe in itself. Deeper down only
    // well-known secret-holding names count: other hidden folders are often user
    // content (a WebDAV client's `/dav/files/lena/.Backup/…`, field case 24).
    let named = |at: usize| {
        path.get(at + 1)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
    };
    if path.starts_with(b"/.") && named(1) && !path[1..].starts_with(b".well-known") {
        return Some(0);
    }
    let mut from = 1;
    while let Some(off) = path.get(from..).and_then(|rest| memchr::memchr(b'.', rest)) {
        let at = from + off;
        from = at + 1;
        if path[at - 1] != b'/' || !named(at) {
            continue;
        }
        let rest = &path[at + 1..];
        let end = rest
            .iter()
            .position(|b| matches!(b, b'/' | b'.'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        if HIDDEN_SECRETS
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
        {
            return Some(at - 1);
        }
    }
    None
}

/// Hidden files and folders that hold credentials, history or source, wherever they sit.
const HIDDEN_SECRETS: &[&str] = &[
    "env",
    "git",
    "svn",
    "hg",
    "bzr",
    "aws",
    "ssh",
    "docker",
    "dockercfg",
    "kube",
    "htpasswd",
    "htaccess",
    "ds_store",
    "vscode",
    "idea",
    "npmrc",
    "pypirc",
    "netrc",
    "pgpass",
    "bash_history",
    "zsh_history",
    "mysql_history",
    "git-credentials",
    "gitconfig",
    "s3cfg",
    "boto",
    "azure",
    "gcloud",
    "terraform",
    "claude",
    "config",
];

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
        for ua in [
            "sqlmap/1.8.2#stable (https://sqlmap.org)",
            "MASSCAN/1.3",
            "Nikto/2.5",
            "Mozilla/5.0 zgrab/0.x",
        ] {
            assert!(s.scanner_ua(ua).is_some(), "{ua}");
        }
        assert!(
            s.scanner_ua("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")
                .is_none()
        );
    }

    #[test]
    fn sensitive_paths_need_boundaries() {
        let s = Scanner::new();
        for p in [
            "/.env",
            "/app/.env.production",
            "/.git/config",
            "/wp-login.php",
            "/db/dump.sql",
            "/.aws/credentials",
            "/actuator/env",
            "/index.php.bak",
            "/.claude/settings.json",
        ] {
            assert!(s.sensitive_path(p.as_bytes()).is_some(), "{p}");
        }
        for p in [
            "/envelope",
            "/.well-known/acme-challenge/x",
            "/v1.2/docs",
            "/blog/sql",
            "/legit/",
            "/styles/key.css",
            "/docs/oldies",
            "/",
        ] {
            assert!(s.sensitive_path(p.as_bytes()).is_none(), "{p}");
        }
    }
}
