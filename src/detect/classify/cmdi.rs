//! OS command injection on decoded text.
//!
//! The text is first de-obfuscated the way a shell would read it: quotes inside words
//! (`c'a't`), `\` escapes, Windows `^` carets, `$@`, `${IFS}`/`$IFS$9` and brace
//! expansion (`{cat,/etc/passwd}`) removed or turned into spaces. Then every command
//! position — after `;`, `|`, `&`, `&&`, `||`, a newline, `` ` ``, `$(` — is read as a
//! command word (path stripped, `/???/c?t` globs matched) and checked against a
//! vocabulary of Unix and Windows commands. Commands that are also English words
//! (`more`, `type`, `find`, `cat`) need an argument that looks like one (`-x`, a path,
//! a number, a redirection). Shellshock (`() {`), SSI `<!--#exec` and PHP exec calls
//! are recognised directly.

/// Commands that are telling at any command position, arguments or not.
const STRONG: &[&[u8]] = &[
    b"whoami",
    b"uname",
    b"wget",
    b"curl",
    b"nc",
    b"ncat",
    b"netcat",
    b"bash",
    b"sh",
    b"zsh",
    b"ksh",
    b"dash",
    b"csh",
    b"tcsh",
    b"busybox",
    b"powershell",
    b"pwsh",
    b"cmd",
    b"ifconfig",
    b"ipconfig",
    b"systeminfo",
    b"netstat",
    b"nslookup",
    b"tasklist",
    b"taskkill",
    b"certutil",
    b"bitsadmin",
    b"wmic",
    b"net.exe",
    b"passwd",
    b"chmod",
    b"chown",
    b"crontab",
    b"nohup",
    b"telnet",
    b"tftp",
    b"python",
    b"python2",
    b"python3",
    b"perl",
    b"ruby",
    b"php",
    b"lua",
    b"node",
    b"id",
    b"pwd",
    b"ls",
    b"dir",
    b"ps",
    b"env",
    b"printenv",
    b"hostname",
    b"rm",
    b"useradd",
    b"wsl",
    b"mshta",
    b"rundll32",
    b"regsvr32",
    b"cscript",
    b"wscript",
    b"xterm",
    b"socat",
    b"base64",
    b"xxd",
    b"lsb_release",
    b"getent",
    b"sudo",
    b"su",
    b"sleep",
    b"ping",
    b"timeout",
    b"dig",
    b"traceroute",
    b"tracert",
    b"route",
    b"arp",
    b"uptime",
    b"w",
    b"last",
    b"lastlog",
    b"ver",
    b"fsutil",
    b"schtasks",
    b"reg",
    b"sc",
    b"icacls",
    b"cacls",
    b"nmap",
    b"ssh",
    b"scp",
    b"ftp",
    b"awk",
    b"gawk",
    b"sed",
    b"cut",
    b"xargs",
    b"exec",
    b"eval",
    b"system",
    b"kill",
    b"killall",
    b"pkill",
    b"mkfifo",
    b"mknod",
    b"chattr",
    b"dd",
    b"tar",
    b"zip",
    b"unzip",
    b"gzip",
    b"bzip2",
    b"openssl",
    b"java",
    b"jrunscript",
    b"iwr",
    b"iex",
    b"irm",
    b"invoke-webrequest",
    b"invoke-expression",
    b"invoke-restmethod",
    b"start-process",
    b"new-object",
    b"downloadstring",
    b"set-mppreference",
    b"netsh",
    b"ansible-inventory",
    b"kubectl",
    b"docker",
    b"cscli",
    b"mysql",
    b"psql",
    b"sqlcmd",
];

/// Commands that are also ordinary words: need an argument that looks like one.
const WEAK: &[&[u8]] = &[
    b"cat", b"echo", b"type", b"more", b"less", b"head", b"tail", b"find", b"grep", b"sort",
    b"which", b"whereis", b"set", b"host", b"net", b"who", b"time", b"date", b"cp", b"mv",
    b"touch", b"mkdir", b"printf", b"expr", b"file", b"strings", b"od", b"uniq", b"wc", b"diff",
    b"test", b"read", b"export", b"start", b"call", b"copy", b"del", b"tee", b"nl", b"rev", b"tac",
    b"ln", b"cd", b"source", b"print",
];

/// Judges decoded, case-folded text; returns (reason, offset) for command injection.
pub fn detect(t: &[u8]) -> Option<(&'static str, usize)> {
    // Byte guards first: most values reaching here hold none of `{ < ( %`.
    let has = |b: u8| memchr::memchr(b, t).is_some();
    let (brace, angle, paren, pct) = (has(b'{'), has(b'<'), has(b'('), has(b'%'));
    if let Some(p) = brace.then(|| memchr::memmem::find(t, b"() {")).flatten() {
        return Some(("shellshock function definition", p));
    }
    if let Some(p) = angle
        .then(|| memchr::memmem::find(t, b"<!--#exec"))
        .flatten()
    {
        return Some(("SSI exec directive", p));
    }
    if let Some(r) = paren.then(|| php_exec(t)).flatten() {
        return Some(r);
    }
    if let Some(p) = (paren || pct).then(|| batch_control(t)).flatten() {
        return Some(("Windows batch for/if construct", p));
    }
    let s = deobfuscate(t);
    // Quotes, carets or backslashes inside a word (`wh'o'ami`, `c^md`) only make sense
    // to hide a command from filters: treat every position as a command position.
    let hidden = in_word_obfuscation(t);
    for (pos, after_sep) in command_positions(&s) {
        if let Some(reason) = command_at(&s, pos, after_sep || hidden) {
            return Some((reason, pos.min(t.len())));
        }
    }
    if let Some(p) = has(b'/')
        .then(|| memchr::memmem::find(&s, b"/dev/tcp/"))
        .flatten()
    {
        return Some(("/dev/tcp reverse shell", p.min(t.len())));
    }
    None
}

/// `system('…')`, `passthru(`, `shell_exec(`, `popen(`, `proc_open(` with an argument.
fn php_exec(t: &[u8]) -> Option<(&'static str, usize)> {
    let calls = [
        &b"system("[..],
        b"passthru(",
        b"shell_exec(",
        b"popen(",
        b"proc_open(",
        b"pcntl_exec(",
    ];
    for name in calls {
        if let Some(p) = memchr::memmem::find(t, name) {
            let arg = t.get(p + name.len()).copied();
            let word_start = p == 0 || !t[p - 1].is_ascii_alphanumeric();
            if word_start && matches!(arg, Some(b'\'' | b'"' | b'$' | b'`')) {
                return Some(("PHP command execution call", p));
            }
        }
    }
    // `exec('whoami')`, `eval('ls')`: generic names, so the string must hold a command.
    for name in [&b"exec("[..], b"eval(", b"execute("] {
        let Some(p) = memchr::memmem::find(t, name) else {
            continue;
        };
        let inner = &t[p + name.len()..];
        if matches!(inner.first(), Some(b'\'' | b'"' | b'`')) {
            let s = deobfuscate(&inner[1..]);
            if command_at(&s, 0, true).is_some() {
                return Some(("command in exec/eval call", p));
            }
        }
    }
    None
}

/// `for /f … in (…) do …` and `if exist|defined|errorlevel …`: cmd.exe control flow.
fn batch_control(t: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(off) = memchr::memmem::find(&t[from..], b"for ") {
        let at = from + off;
        from = at + 4;
        let window = &t[at..(at + 240).min(t.len())];
        let has_in = memchr::memmem::find(window, b" in (")
            .or_else(|| memchr::memmem::find(window, b" in("));
        let Some(i) = has_in else { continue };
        // cmd.exe loop variables are `%x` / `%%x`: prose ("for the win in (…) do") has none.
        if memchr::memchr(b'%', &window[..i]).is_none() {
            continue;
        }
        let tail = &window[i..];
        if memchr::memmem::find(tail, b") do").is_some()
            || memchr::memmem::find(tail, b")do").is_some()
        {
            return Some(at);
        }
    }
    for cond in [
        &b"if exist "[..],
        b"if defined ",
        b"if errorlevel ",
        b"%errorlevel%",
        b"if not exist ",
    ] {
        if let Some(p) = memchr::memmem::find(t, cond) {
            return Some(p);
        }
    }
    None
}

/// A caret or backslash between letters, or a word holding two or more quotes
/// (`wh'o'ami`, `ti''me`, `c^md`); a lone apostrophe (`don't`) is prose.
fn in_word_obfuscation(t: &[u8]) -> bool {
    for word in
        t.split(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'\'' | b'"' | b'^' | b'\\')))
    {
        let letters = word.iter().filter(|b| b.is_ascii_alphabetic()).count();
        if letters < 2 {
            continue;
        }
        let quotes = word.iter().filter(|b| matches!(b, b'\'' | b'"')).count();
        let inner = word.windows(3).any(|w| {
            w[0].is_ascii_alphabetic() && matches!(w[1], b'^' | b'\\') && w[2].is_ascii_alphabetic()
        });
        if quotes >= 2
            && word.iter().rposition(|b| b.is_ascii_alphabetic())
                > word.iter().position(|b| matches!(b, b'\'' | b'"'))
            || inner
        {
            return true;
        }
    }
    false
}

/// Removes what a shell would remove before reading words.
fn deobfuscate(t: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        let rest = &t[i..];
        if let Some(n) = ifs_len(rest) {
            out.push(b' ');
            i += n;
            continue;
        }
        match rest[0] {
            b'\'' | b'"' | b'^' => {}
            // A literal `\n` is a newline to the many sinks that unescape input.
            b'\\' if matches!(rest.get(1), Some(b'n' | b'r')) => {
                out.push(b'\n');
                i += 1;
            }
            b'\\' if rest.get(1).is_some_and(|b| b.is_ascii_alphanumeric()) => {}
            b'$' if matches!(rest.get(1), Some(b'@' | b'*')) => i += 1,
            b'{' | b'}' => out.push(b' '),
            b',' if out.iter().rev().take(40).any(|b| *b == b' ') && inside_brace(t, i) => {
                out.push(b' ')
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn inside_brace(t: &[u8], i: usize) -> bool {
    let back = &t[i.saturating_sub(64)..i];
    let open = back.iter().rposition(|b| *b == b'{');
    let close = back.iter().rposition(|b| *b == b'}');
    matches!((open, close), (Some(o), c) if c.is_none_or(|c| c < o))
}

/// Length of an `$IFS`-style separator at the start of `rest`.
fn ifs_len(rest: &[u8]) -> Option<usize> {
    for pat in [&b"${ifs}"[..], b"$ifs$9", b"${ifs%??}", b"$ifs"] {
        if rest.starts_with(pat) {
            return Some(pat.len());
        }
    }
    None
}

/// Offsets where a shell would start reading a command, with whether a separator
/// (rather than the start of the value) put it there.
fn command_positions(s: &[u8]) -> Vec<(usize, bool)> {
    let mut out = vec![(0, false)];
    if let Some(eq) = memchr::memchr(b'=', s) {
        out.push((eq + 1, false));
    }
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        let sep = match b {
            b';' | b'|' | b'&' | b'`' | b'\n' => 1,
            b'$' if s.get(i + 1) == Some(&b'(') => 2,
            _ => 0,
        };
        if sep > 0 {
            let mut k = i + sep;
            while matches!(s.get(k), Some(b'|' | b'&' | b'(')) {
                k += 1;
            }
            out.push((k, true));
            i = k;
            continue;
        }
        i += 1;
    }
    out
}

/// Reads the command word at `pos` and judges it.
fn command_at(s: &[u8], pos: usize, after_sep: bool) -> Option<&'static str> {
    let mut k = pos;
    while matches!(s.get(k), Some(b' ' | b'\n')) {
        k += 1;
    }
    let len = s[k..]
        .iter()
        .take_while(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'/' | b'.' | b'_' | b'-' | b'?' | b'*' | b'[' | b']')
        })
        .count();
    let word = &s[k..k + len];
    if word.is_empty() || len > 64 {
        return None;
    }
    let pathed = word.contains(&b'/');
    let base = word.rsplit(|b| *b == b'/').next().unwrap_or(word);
    let base = base.strip_suffix(b".exe").unwrap_or(base);
    let end = s.get(k + len).copied();
    if !matches!(
        end,
        None | Some(b' ' | b';' | b'|' | b'&' | b'`' | b')' | b'<' | b'>' | b'\n' | b'$')
    ) {
        return None;
    }
    let args = arg_like(&s[k + len..]) || windows_net(base, &s[k + len..]);
    let strong = lookup(STRONG, base) || base == b"netsh";
    let weak = lookup(WEAK, base);
    if !(strong || weak) {
        return None;
    }
    let bare_ok = matches!(end, None | Some(b';' | b'|' | b'&' | b'`' | b')' | b'\n'));
    match (after_sep, strong) {
        (true, true) if bare_ok || args || pathed => Some("command after shell separator"),
        (true, false) if args => Some("command with arguments after shell separator"),
        (false, _) if pathed && (args || bare_ok) && word.starts_with(b"/") => {
            Some("command by absolute path")
        }
        (false, true) if args && !matches!(base, b"id" | b"w" | b"sh" | b"sc" | b"su") => {
            Some("command with shell-style arguments")
        }
        _ => None,
    }
}

/// `net user …`, `net localgroup …`: Windows account and share commands.
fn windows_net(base: &[u8], rest: &[u8]) -> bool {
    const SUB: [&[u8]; 9] = [
        b" user",
        b" localgroup",
        b" view",
        b" share",
        b" use ",
        b" group",
        b" accounts",
        b" session",
        b" start",
    ];
    base == b"net" && SUB.iter().any(|s| rest.starts_with(s))
}

/// Exact or glob (`c?t`, `c*t`, `/???/`) vocabulary match.
fn lookup(list: &[&[u8]], word: &[u8]) -> bool {
    if !word.iter().any(|b| matches!(b, b'?' | b'*' | b'[')) {
        return list.contains(&word);
    }
    list.iter().any(|cand| glob(word, cand))
}

fn glob(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pat[1..], s) || (!s.is_empty() && glob(pat, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&pat[1..], &s[1..]),
        (Some(p), Some(c)) if p == c => glob(&pat[1..], &s[1..]),
        _ => false,
    }
}

/// The text after a command word looks like shell arguments: an option, a path, a
/// URL, a variable, a redirection, a number or an IP address.
fn arg_like(rest: &[u8]) -> bool {
    let mut k = 0;
    while rest.get(k) == Some(&b' ') {
        k += 1;
    }
    if k == 0 && !matches!(rest.first(), Some(b'<' | b'>')) {
        return false;
    }
    let a = &rest[k..];
    match a.first() {
        Some(b'-' | b'/' | b'$' | b'%' | b'<' | b'>' | b'~' | b'.' | b'*' | b'`') => true,
        Some(b'0'..=b'9') => true,
        Some(b'c') if a.get(1) == Some(&b':') => true,
        _ => a.starts_with(b"http") || a.starts_with(b"ftp:") || a.starts_with(b"127."),
    }
}

#[cfg(test)]
mod tests {
    use super::detect;

    #[test]
    fn commands_in_shell_context_are_flagged() {
        for s in [
            "127.0.0.1; cat /etc/passwd",
            "x|id",
            "a && whoami",
            "`uname -a`",
            "$(wget http://x/y.sh)",
            "\n/usr/bin/id\n",
            "x;c'a't${ifs}/etc/passwd",
            "x;/???/c?t /etc/passwd",
            "x|c^m^d /c dir",
            "() { :; }; /bin/bash -c id",
            "x;{cat,/etc/passwd}",
            "x; ping -c 3 127.0.0.1",
            "x & powershell -enc abc",
            "'wh'oami",
            "for /f %a in ('dir /b') do echo %a",
            "x;iwr http://x/a.ps1",
        ] {
            assert!(
                detect(s.as_bytes()).is_some(),
                "{s} should be command injection"
            );
        }
    }

    #[test]
    fn english_and_ordinary_values_are_not_flagged() {
        for s in [
            "tom & jerry",
            "cats | dogs",
            "see; more info",
            "q=find my phone",
            "name=id",
            "ls",
            "type=cat",
            "rock;n;roll",
            "o'keefe's cafe",
            "for the win in (a way) do it",
        ] {
            assert!(
                detect(s.as_bytes()).is_none(),
                "{s} should not be command injection"
            );
        }
    }
}
