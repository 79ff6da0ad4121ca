//! Request-text normalisation for the classifiers.
//!
//! Attackers hide payloads behind encodings that the web server or application undoes
//! before the payload reaches its sink. [`decode`] undoes them in bounded rounds
//! (percent, double percent, `%uXXXX`, nginx `\xHH` log escapes, JavaScript `\uHHHH`
//! escapes, HTML entities with or without their `;`, overlong UTF-8) and [`fold`]
//! then lower-cases and turns whitespace tricks into plain separators. Every round is linear and never grows the text, and there are at most
//! [`MAX_ROUNDS`], so `%25252525…` costs a few passes, never an explosion.

/// Decoding rounds at most; two cover double encoding, the third triple.
pub const MAX_ROUNDS: usize = 3;

/// Which decodings changed the text, so a finding can say what was undone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Steps {
    /// Rounds in which percent decoding changed something.
    pub percent_rounds: u8,
    pub plus: bool,
    pub unicode_u: bool,
    pub hex_escape: bool,
    /// JavaScript/JSON `\uHHHH` escapes.
    pub js_escape: bool,
    pub html: bool,
    pub overlong: bool,
}

impl Steps {
    /// Human summary such as `percent x2, plus, html`; `none` when nothing was undone.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        match self.percent_rounds {
            0 => {}
            1 => parts.push("percent".into()),
            n => parts.push(format!("percent x{n}")),
        }
        let flags = [
            (self.plus, "plus"),
            (self.unicode_u, "%u"),
            (self.hex_escape, "\\xHH"),
            (self.js_escape, "\\uHHHH"),
            (self.html, "html entities"),
            (self.overlong, "overlong utf-8"),
        ];
        parts.extend(
            flags
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, n)| n.to_string()),
        );
        if parts.is_empty() {
            return "none".into();
        }
        parts.join(", ")
    }
}

/// Decodes `input` in up to [`MAX_ROUNDS`] rounds; `plus` turns `+` into a space first
/// (query strings only). Returns raw bytes (may be invalid UTF-8) and what was undone.
pub fn decode(input: &[u8], plus: bool) -> (Vec<u8>, Steps) {
    let mut steps = Steps::default();
    let mut cur: Vec<u8> = input.to_vec();
    if plus && memchr::memchr(b'+', &cur).is_some() {
        for b in cur.iter_mut().filter(|b| **b == b'+') {
            *b = b' ';
        }
        steps.plus = true;
    }
    let mut next = Vec::with_capacity(cur.len());
    for _ in 0..MAX_ROUNDS {
        next.clear();
        let changed = decode_round(&cur, &mut next, &mut steps);
        if !changed {
            break;
        }
        std::mem::swap(&mut cur, &mut next);
    }
    if fix_overlong(&mut cur) {
        steps.overlong = true;
    }
    (cur, steps)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex2(a: u8, b: u8) -> Option<u8> {
    Some(hex_val(a)? << 4 | hex_val(b)?)
}

/// One pass of every decoding; returns whether anything changed.
fn decode_round(src: &[u8], out: &mut Vec<u8>, steps: &mut Steps) -> bool {
    let mut i = 0;
    let mut changed = false;
    let mut percent = false;
    while i < src.len() {
        let b = src[i];
        let rest = &src[i..];
        if b == b'%' {
            if let Some(v) = rest.get(1..3).and_then(|h| hex2(h[0], h[1])) {
                out.push(v);
                i += 3;
                percent = true;
                continue;
            }
            if let Some(n) = u_escape(rest, out) {
                steps.unicode_u = true;
                i += n;
                changed = true;
                continue;
            }
        } else if b == b'\\' && rest.len() >= 4 && (rest[1] == b'x' || rest[1] == b'X') {
            if let Some(v) = hex2(rest[2], rest[3]) {
                out.push(v);
                i += 4;
                steps.hex_escape = true;
                changed = true;
                continue;
            }
        } else if b == b'\\'
            && let Some(n) = u_escape(rest, out)
        {
            steps.js_escape = true;
            i += n;
            changed = true;
            continue;
        } else if b == b'&'
            && let Some(n) = html_entity(rest, out)
        {
            steps.html = true;
            i += n;
            changed = true;
            continue;
        }
        out.push(b);
        i += 1;
    }
    if percent {
        steps.percent_rounds += 1;
    }
    changed || percent
}

/// `%uXXXX` (IIS style) and `\uXXXX` (the escape JavaScript and JSON strings use,
/// which a sink building markup from a JS string turns back into the character): the
/// introducer at `rest[0]` is the caller's; writes the code point as UTF-8, mapping
/// full-width and look-alike dots and slashes to ASCII because path handlers do.
fn u_escape(rest: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    if rest.len() < 6 || !(rest[1] == b'u' || rest[1] == b'U') {
        return None;
    }
    let hi = hex2(rest[2], rest[3])?;
    let lo = hex2(rest[4], rest[5])?;
    let cp = u32::from(hi) << 8 | u32::from(lo);
    push_code_point(cp, out);
    Some(6)
}

/// Writes a code point, folding look-alikes that servers normalise to ASCII.
fn push_code_point(cp: u32, out: &mut Vec<u8>) {
    let ascii = match cp {
        0xFF0E | 0x2024 => Some(b'.'),
        0xFF0F | 0x2215 | 0x2044 => Some(b'/'),
        0xFF3C | 0x2216 | 0x29F5 => Some(b'\\'),
        0xFF1C => Some(b'<'),
        0xFF1E => Some(b'>'),
        0xFF07 => Some(b'\''),
        0xFF02 => Some(b'"'),
        0x00A0 | 0x3000 => Some(b' '),
        _ => None,
    };
    if let Some(a) = ascii {
        out.push(a);
        return;
    }
    let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
}

/// HTML character references: `&lt;`, `&#60;`, `&#x3c;` (semicolon optional for numeric
/// ones, as browsers accept). Returns the bytes consumed.
fn html_entity(rest: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    if rest.get(1) == Some(&b'#') {
        return numeric_entity(rest, out);
    }
    const NAMED: [(&[u8], u8); 12] = [
        (b"lt;", b'<'),
        (b"gt;", b'>'),
        (b"quot;", b'"'),
        (b"apos;", b'\''),
        (b"amp;", b'&'),
        (b"colon;", b':'),
        (b"lpar;", b'('),
        (b"rpar;", b')'),
        (b"sol;", b'/'),
        (b"tab;", b'\t'),
        (b"newline;", b'\n'),
        (b"nbsp;", b' '),
    ];
    let body = &rest[1..];
    for (name, ch) in NAMED {
        if body.len() >= name.len() && body[..name.len()].eq_ignore_ascii_case(name) {
            out.push(ch);
            return Some(1 + name.len());
        }
    }
    // Browsers also read the legacy entities `&lt` `&gt` `&quot` `&amp` without their
    // `;`; followed by a letter, a digit or `=` (`&ltd`, `&lt=5`) the name is text.
    const LEGACY: [(&[u8], u8); 4] = [
        (b"lt", b'<'),
        (b"gt", b'>'),
        (b"quot", b'"'),
        (b"amp", b'&'),
    ];
    for (name, ch) in LEGACY {
        let ends = body
            .get(name.len())
            .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'=');
        if body.len() >= name.len() && body[..name.len()].eq_ignore_ascii_case(name) && ends {
            out.push(ch);
            return Some(1 + name.len());
        }
    }
    None
}

fn numeric_entity(rest: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let hex = matches!(rest.get(2), Some(b'x' | b'X'));
    let start = if hex { 3 } else { 2 };
    let mut cp: u32 = 0;
    let mut j = start;
    while j < rest.len() && j - start < 8 {
        let d = if hex {
            hex_val(rest[j])
        } else {
            rest[j].is_ascii_digit().then(|| rest[j] - b'0')
        };
        let Some(d) = d else { break };
        cp = cp
            .saturating_mul(if hex { 16 } else { 10 })
            .saturating_add(u32::from(d));
        j += 1;
    }
    if j == start {
        return None;
    }
    if rest.get(j) == Some(&b';') {
        j += 1;
    }
    push_code_point(cp.min(0x10FFFF), out);
    Some(j)
}

/// Rewrites overlong UTF-8 forms of ASCII (`C0 AE` = `.`, `E0 80 AF` = `/`) in place,
/// as lax decoders do. Returns whether any was found.
fn fix_overlong(buf: &mut Vec<u8>) -> bool {
    if !buf.iter().any(|&b| b == 0xC0 || b == 0xC1 || b == 0xE0) {
        return false;
    }
    let mut out = Vec::with_capacity(buf.len());
    let mut found = false;
    let mut i = 0;
    while i < buf.len() {
        let b = buf[i];
        let cont = |k: usize| buf.get(i + k).is_some_and(|c| c & 0xC0 == 0x80);
        if (b == 0xC0 || b == 0xC1) && cont(1) {
            out.push(((b & 0x1F) << 6) | (buf[i + 1] & 0x3F));
            i += 2;
            found = true;
            continue;
        }
        if b == 0xE0 && cont(1) && cont(2) && buf[i + 1] < 0xA0 {
            out.push(((buf[i + 1] & 0x3F) << 6) | (buf[i + 2] & 0x3F));
            i += 3;
            found = true;
            continue;
        }
        out.push(b);
        i += 1;
    }
    *buf = out;
    found
}

/// Lower-cases ASCII and maps whitespace tricks to plain separators: tab, vertical tab,
/// form feed, NUL and no-break space become ` `; CR and LF become `\n` (a shell command
/// separator, so it stays distinct).
pub fn fold(buf: &mut Vec<u8>) {
    let mut w = 0;
    let mut i = 0;
    while i < buf.len() {
        let b = buf[i];
        let (out, used) = match b {
            b'\t' | 0x0B | 0x0C | 0 | 0xA0 => (b' ', 1),
            b'\r' => (b'\n', 1),
            0xC2 if buf.get(i + 1) == Some(&0xA0) => (b' ', 2),
            // `¼script¾`: with the high bit stripped (US-ASCII 7-bit handling) U+00BC
            // and U+00BE are `<` and `>`.
            0xC2 if buf.get(i + 1) == Some(&0xBC) => (b'<', 2),
            0xC2 if buf.get(i + 1) == Some(&0xBE) => (b'>', 2),
            // Full-width `＜ ＞ ＂ ＇` (U+FF1C/E/02/07), which some back ends fold to ASCII.
            0xEF if buf.get(i + 1) == Some(&0xBC) => match buf.get(i + 2) {
                Some(0x9C) => (b'<', 3),
                Some(0x9E) => (b'>', 3),
                Some(0x82) => (b'"', 3),
                Some(0x87) => (b'\'', 3),
                _ => (b, 1),
            },
            _ => (b.to_ascii_lowercase(), 1),
        };
        buf[w] = out;
        w += 1;
        i += used;
    }
    buf.truncate(w);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str, plus: bool) -> String {
        let (mut b, _) = decode(s.as_bytes(), plus);
        fold(&mut b);
        String::from_utf8_lossy(&b).into_owned()
    }

    #[test]
    fn double_percent_and_plus_are_undone() {
        assert_eq!(dec("7%252F%252A%252A%252FUNION", false), "7/**/union");
        assert_eq!(dec("a+b%2Bc", true), "a b+c");
        assert_eq!(dec("a+b", false), "a+b");
    }

    #[test]
    fn unicode_overlong_hex_escape_and_entities() {
        assert_eq!(dec("%c0%ae%c0%ae%c0%afetc", false), "../etc");
        assert_eq!(dec("%e0%80%ae", false), ".");
        assert_eq!(dec("%uff0e%uff0e%u2215", false), "../");
        assert_eq!(dec("..\\x5C..\\x5cwin.ini", false), "..\\..\\win.ini");
        assert_eq!(
            dec("&lt;svg&#47;onload&#x3d;alert(1)&gt;", false),
            "<svg/onload=alert(1)>"
        );
        assert_eq!(dec("a%09b%0bc%a0d", false), "a b c d");
        assert_eq!(dec("%ef%bc%9cscript%ef%bc%9e", false), "<script>");
        assert_eq!(dec("\\u003cimg\\u003E", false), "<img>");
        assert_eq!(dec("%C2%BCscript%C2%BE", false), "<script>");
        assert_eq!(dec("&lt&LT;&gt", false), "<<>");
        // A legacy entity name followed by a letter or `=` is text, not a reference.
        assert_eq!(dec("&ltd &lt=5", false), "&ltd &lt=5");
    }

    #[test]
    fn decoding_rounds_are_bounded() {
        // Each round peels one layer; after MAX_ROUNDS the rest stays encoded.
        let deep = format!("%25{}2e", "25".repeat(10_000));
        let (out, steps) = decode(deep.as_bytes(), false);
        assert_eq!(steps.percent_rounds as usize, MAX_ROUNDS);
        assert!(out.len() < deep.len() && out.starts_with(b"%25"));
    }

    #[test]
    fn steps_are_described() {
        let (_, s) = decode(b"%252F+x", true);
        assert_eq!(s.describe(), "percent x2, plus");
    }
}
