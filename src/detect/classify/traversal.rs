//! Path traversal and local file inclusion on decoded text.
//!
//! After the shared decoding, backslashes (and the `0x2f`/`0x5c` spellings some
//! scanners use) become `/`, `..;/` becomes `../`, then the detector counts `../`
//! climbs and looks for well-known target files and absolute system paths. One climb
//! alone is a relative link; two climbs, or one towards a known target, or a known
//! absolute target (`/etc/passwd`, `c:/windows/win.ini`) is traversal. `..` inside a
//! name (`/docs/v1..v2-changes`) is not a climb. Stream wrappers (`php://filter`,
//! `file:///`) are file inclusion.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Target files and directories an attacker reads through traversal.
const TARGETS: &[&str] = &[
    "etc/passwd",
    "etc/shadow",
    "etc/group",
    "etc/hosts",
    "etc/issue",
    "etc/motd",
    "etc/crontab",
    "etc/sudoers",
    "etc/fstab",
    "etc/resolv.conf",
    "etc/hostname",
    "etc/mysql/",
    "etc/apache2/",
    "etc/httpd/",
    "etc/nginx/",
    "etc/ssh/",
    "etc/security/",
    "etc/profile",
    "etc/bashrc",
    "etc/environment",
    "etc/master.passwd",
    "etc/pam.d",
    "proc/self/",
    "proc/version",
    "proc/cpuinfo",
    "proc/meminfo",
    "proc/net/",
    "proc/1/",
    "var/log/",
    "var/www/",
    "var/lib/",
    "var/mail/",
    "var/spool/",
    "usr/local/",
    "root/",
    "home/",
    "tmp/",
    "dev/null",
    "bin/sh",
    "bin/bash",
    "bin/id",
    "win.ini",
    "boot.ini",
    "system.ini",
    "windows/system32",
    "winnt/",
    "windows/",
    "inetpub/",
    "system32/",
    "autoexec.bat",
    "config.sys",
    "repair/sam",
    "php.ini",
    "my.cnf",
    "my.ini",
    "httpd.conf",
    "apache2.conf",
    "nginx.conf",
    "web.config",
    "wp-config.php",
    ".htaccess",
    ".htpasswd",
    ".bash_history",
    ".bashrc",
    ".ssh/",
    "id_rsa",
    "authorized_keys",
    ".env",
    ".git/",
    ".history",
    "_history",
    ".profile",
    ".netrc",
    ".pgpass",
    ".npmrc",
    ".viminfo",
    ".git-credentials",
    ".aws/",
    ".docker/",
    "proc/",
    "sys/",
    "boot/",
    "opt/",
    "srv/",
    "web-inf/",
    "meta-inf/",
    "etc/",
];

/// Targets that are telling even without any `../` (absolute reads via LFI).
const ABSOLUTE: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/hosts",
    "/etc/issue",
    "/proc/self/",
    "/proc/version",
    "/etc/master.passwd",
    "/etc/sudoers",
    "win.ini",
    "boot.ini",
    "system.ini",
    "/windows/system32/",
    "/winnt/system32/",
    "c:/windows/",
    "c:/boot",
    "/.ssh/id_rsa",
    "/root/.bash_history",
    "/etc/crontab",
    "/web-inf/web.xml",
    "php://filter",
    "php://input",
    "file:///",
    "zip://",
    "phar://",
    "expect://",
    "glob://",
    "compress.zlib://",
    "php://stdin",
    "/etc/",
    "/proc/",
    "/sys/class",
    "/sys/kernel/",
    "/sys/devices/",
    "/sys/firmware/",
    "/sys/module/",
    "/sys/power/",
    "/etc/apache2/",
    "/etc/httpd/",
    "/etc/nginx/",
    "/etc/mysql/",
    "/usr/local/etc/",
    "/var/lib/mysql/",
    "/var/www/",
    "/.bash_history",
    "/.zsh_history",
    "/.mysql_history",
    "/.git-credentials",
    "/.netrc",
    "/.pgpass",
    "/windows/win.ini",
    "c:/users/",
    "c:/program",
    "c:/pagefile.sys",
    "c:/inetpub",
    "/system32/config/",
    "/repair/sam",
    "/autoexec.bat",
    "/boot.ini",
    "/web-inf/",
    "/meta-inf/",
    "php://",
    "data://text",
    "ogg://",
    "rar://",
    "ssh2.",
    ".ssh/id_",
    "/.ssh/",
    ".aws/credentials",
    "/root/.",
    "/.docker/",
    "/.kube/config",
    "/var/run/secrets/",
    "/var/log/",
    "c:/inetpub/",
];

/// The traversal detector: target and absolute-path automata.
pub struct Traversal {
    targets: AhoCorasick,
    absolute: AhoCorasick,
    /// [`ABSOLUTE`] case-insensitively, for raw (undecoded) header text.
    absolute_raw: AhoCorasick,
}

impl Traversal {
    pub fn new() -> Traversal {
        let build = |p: &[&str]| {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostFirst)
                .build(p)
                .expect("static traversal patterns compile")
        };
        let absolute_raw = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(ABSOLUTE)
            .expect("static traversal patterns compile");
        Traversal {
            targets: build(TARGETS),
            absolute: build(ABSOLUTE),
            absolute_raw,
        }
    }

    /// A well-known system path in raw text (a header with no suspicious bytes), one
    /// automaton pass and no allocation.
    pub fn system_path(&self, raw: &[u8]) -> Option<(&'static str, usize)> {
        let m = self.absolute_raw.find(raw)?;
        Some(("system path in header", m.start()))
    }

    /// Judges decoded, case-folded text; returns (reason, offset) when traversal.
    pub fn detect(&self, t: &[u8]) -> Option<(String, usize)> {
        if !t.iter().any(|b| matches!(b, b'.' | b':' | b'/' | b'\\')) {
            return None;
        }
        let p = normalise(t);
        let (climbs, first) = count_climbs(&p);
        if climbs >= 2 {
            return Some((format!("../ x{climbs}"), first));
        }
        // `..\` is never a URL relative link: one Windows-style climb is traversal.
        if climbs == 1 && backslash_climb(t) {
            return Some(("..\\ climb".to_string(), first));
        }
        if climbs == 1
            && let Some(m) = self.targets.find(&p[first..])
        {
            let name = TARGETS[m.pattern().as_usize()];
            return Some((format!("../ towards {name}"), first));
        }
        let m = self.absolute.find(&p)?;
        let name = ABSOLUTE[m.pattern().as_usize()];
        Some((format!("system path {name}"), m.start().min(t.len())))
    }
}

/// Files that hold a server's secrets or configuration: named as a parameter value
/// (`?file=.htaccess`, `?page=./wp-config.php`), they are a file-inclusion probe.
const SECRET_FILES: &[&[u8]] = &[
    b".htaccess",
    b".htpasswd",
    b".env",
    b".git/config",
    b".git/head",
    b".git-credentials",
    b".bash_history",
    b".ssh/id_rsa",
    b".ssh/authorized_keys",
    b".aws/credentials",
    b".docker/config.json",
    b".npmrc",
    b".pgpass",
    b".netrc",
    b".user.ini",
    b"web.config",
    b"wp-config.php",
    b"id_rsa",
];

/// A decoded parameter value (any case) that names a [`SECRET_FILES`] entry, after
/// any `./` or `/` prefix; returns the offset of the name.
pub fn secret_file_value(value: &[u8]) -> Option<(&'static str, usize)> {
    let mut at = 0;
    while let Some(rest) = value[at..]
        .strip_prefix(b"./")
        .or_else(|| value[at..].strip_prefix(b"/"))
        .or_else(|| value[at..].strip_prefix(b".\\"))
    {
        at = value.len() - rest.len();
    }
    let rest = value[at..].trim_ascii_end();
    let named = SECRET_FILES.iter().any(|f| {
        rest.len() >= f.len()
            && rest[..f.len()].eq_ignore_ascii_case(f)
            && matches!(rest.get(f.len()), None | Some(b'/' | b'.' | b'~' | 0))
    });
    named.then_some(("secret file named as a parameter value", at))
}

impl Default for Traversal {
    fn default() -> Self {
        Traversal::new()
    }
}

/// `\` and its spellings to `/`, `..;/` (servlet path parameter) to `../`.
fn normalise(t: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        let rest = &t[i..];
        if rest.starts_with(b"0x2f") || rest.starts_with(b"0x5c") {
            out.push(b'/');
            i += 4;
            continue;
        }
        // `.;/`: a path parameter on `.`, read by servlet containers as `./`.
        if rest.starts_with(b".;/") || rest.starts_with(b".;\\") {
            out.push(b'.');
            i += 2;
            continue;
        }
        if rest.starts_with(b"..;") {
            out.extend_from_slice(b"..");
            i += 3;
            continue;
        }
        // Shell quoting and glob brackets (`/etc/pa[s]swd`, `/e't'c/`) read the same file.
        if matches!(rest[0], b'[' | b']' | b'\'' | b'"') {
            i += 1;
            continue;
        }
        out.push(if rest[0] == b'\\' { b'/' } else { rest[0] });
        i += 1;
    }
    out
}

/// `..` followed by a backslash, possibly after `;`/`.` padding.
fn backslash_climb(t: &[u8]) -> bool {
    let mut from = 0;
    while let Some(off) = memchr::memmem::find(&t[from..], b"..") {
        let after = &t[from + off + 2..];
        // `..;\`, `..;.\`: servlet `;` and `.` padding before the backslash.
        let pad = after
            .iter()
            .take_while(|b| matches!(b, b'.' | b';'))
            .count();
        if after[pad..].starts_with(b"\\") {
            return true;
        }
        from += off + 2;
    }
    false
}

/// Counts `..` segments used to climb: `..` directly followed by `/` or the end, and
/// preceded by a separator or more dots (`....//`). Returns the count and first offset.
fn count_climbs(p: &[u8]) -> (usize, usize) {
    let mut count = 0;
    let mut first = 0;
    let mut from = 0;
    while let Some(off) = memchr::memmem::find(&p[from..], b"..") {
        let at = from + off;
        let mut end = at + 2;
        while p.get(end) == Some(&b'.') {
            end += 1;
        }
        from = end;
        let before = at.checked_sub(1).map(|k| p[k]);
        let starts = matches!(
            before,
            None | Some(b'/' | b'=' | b' ' | b'"' | b'\'' | b':')
        );
        let after = p.get(end).copied();
        if starts && matches!(after, None | Some(b'/')) {
            if count == 0 {
                first = at;
            }
            count += 1;
        }
    }
    (count, first)
}

#[cfg(test)]
mod tests {
    use super::Traversal;

    #[test]
    fn climbs_and_targets_are_flagged() {
        let t = Traversal::new();
        for s in [
            "file=../../../etc/passwd",
            "file=....//....//etc/passwd",
            "f=..\\..\\windows\\win.ini",
            "file=/etc/passwd",
            "page=../etc/shadow",
            "p=..;/..;/web-inf/web.xml",
            "f=php://filter/convert.base64-encode/resource=index.php",
            "/..0x2f..0x2fetc/passwd",
        ] {
            assert!(t.detect(s.as_bytes()).is_some(), "{s} should be traversal");
        }
    }

    #[test]
    fn secret_files_named_as_values_are_flagged() {
        use super::secret_file_value;
        for v in [
            ".htaccess",
            "././.htaccess",
            "/.ENV",
            "wp-config.php.bak",
            ".git/config",
        ] {
            assert!(secret_file_value(v.as_bytes()).is_some(), "{v}");
        }
        for v in [
            "envelope",
            ".environment",
            "my.htaccess.guide",
            "web.configurator",
            "id",
        ] {
            assert!(secret_file_value(v.as_bytes()).is_none(), "{v}");
        }
    }

    #[test]
    fn dots_in_names_and_single_relative_links_are_not_flagged() {
        let t = Traversal::new();
        for s in [
            "/docs/v1..v2-changes",
            "next=../account",
            "/a/b.c/d...e",
            "v=1..5",
        ] {
            assert!(
                t.detect(s.as_bytes()).is_none(),
                "{s} should not be traversal"
            );
        }
    }
}
