//! Log4Shell JNDI lookups and server-side template injection.
//!
//! JNDI: `${jndi:ldap://…}` is hidden behind nested lookups (`${${lower:j}ndi:`,
//! `${${::-j}${::-n}di:`, `${env:X:-j}`); [`jndi`] evaluates those lookups the way
//! Log4j does (depth-limited) and looks for `jndi:` in the result. SSTI: arithmetic
//! or dunder access inside template delimiters (`{{7*7}}`, `${7*7}`, `#{7*7}`,
//! `{{''.__class__}}`, `<%= 7*7 %>`).

const MAX_DEPTH: usize = 12;

/// Returns the offset of a `${` that resolves to a JNDI lookup.
pub fn jndi(t: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(off) = memchr::memmem::find(&t[from..], b"${") {
        let at = from + off;
        let (value, end) = resolve(t, at + 2, 0);
        if value.starts_with(b"jndi:") {
            return Some(at);
        }
        from = end.max(at + 2);
    }
    None
}

/// Resolves the lookup whose body starts at `i`; returns its value and the index
/// after its closing `}`.
fn resolve(t: &[u8], mut i: usize, depth: usize) -> (Vec<u8>, usize) {
    let mut body = Vec::new();
    while i < t.len() && body.len() < 64 {
        if t[i..].starts_with(b"${") && depth < MAX_DEPTH {
            let (inner, next) = resolve(t, i + 2, depth + 1);
            body.extend_from_slice(&inner);
            i = next;
            continue;
        }
        if t[i] == b'}' {
            return (lookup_value(&body), i + 1);
        }
        body.push(t[i]);
        i += 1;
    }
    (lookup_value(&body), i)
}

/// What Log4j substitutes for one lookup body.
fn lookup_value(body: &[u8]) -> Vec<u8> {
    if body.starts_with(b"jndi:") {
        return body.to_vec();
    }
    if let Some(p) = memchr::memmem::rfind(body, b":-") {
        return body[p + 2..].to_vec();
    }
    for prefix in [&b"lower:"[..], b"upper:"] {
        if let Some(rest) = body.strip_prefix(prefix) {
            return rest.to_vec();
        }
    }
    Vec::new()
}

/// Returns (reason, offset) for template-expression injection.
pub fn ssti(t: &[u8]) -> Option<(&'static str, usize)> {
    for (open, close) in [
        (&b"{{"[..], &b"}}"[..]),
        (b"${", b"}"),
        (b"#{", b"}"),
        (b"<%=", b"%>"),
        (b"{%", b"%}"),
    ] {
        let mut from = 0;
        while let Some(off) = memchr::memmem::find(&t[from..], open) {
            let at = from + off;
            from = at + open.len();
            // Bodies are short; bounding the search keeps `{{{{…` linear.
            let window = &t[from..(from + 120 + close.len()).min(t.len())];
            let Some(end) = memchr::memmem::find(window, close).map(|e| from + e) else {
                continue;
            };
            if template_body(&t[from..end]) {
                return Some(("template expression", at));
            }
            if open == b"{%" && template_statement(&t[from..end]) {
                return Some(("template statement", at));
            }
        }
    }
    None
}

/// `{% for c in [1,2,3] %}`, `{% import os %}`: a Jinja/Twig/Liquid tag that runs logic.
/// User text has no `{%` at all, so a statement keyword right inside one is an injection.
fn template_statement(b: &[u8]) -> bool {
    const KEYWORDS: [&[u8]; 12] = [
        b"for ",
        b"if ",
        b"set ",
        b"import ",
        b"include ",
        b"extends ",
        b"macro ",
        b"from ",
        b"debug",
        b"raw",
        b"block ",
        b"filter ",
    ];
    let b = b.trim_ascii_start();
    let b = b.strip_prefix(b"-").unwrap_or(b).trim_ascii_start();
    KEYWORDS.iter().any(|k| b.starts_with(k))
}

/// Arithmetic between two numbers (`7*7`, `4+4`, `49/7`) or a Python object-model
/// gadget (`__class__`, even spelled with spaces: `.__ class __`).
fn template_body(b: &[u8]) -> bool {
    let arithmetic = b
        .iter()
        .position(|c| matches!(c, b'*' | b'+' | b'/'))
        .is_some_and(|p| {
            p > 0
                && b[..p]
                    .iter()
                    .rev()
                    .find(|c| **c != b' ')
                    .is_some_and(u8::is_ascii_digit)
                && b[p + 1..]
                    .iter()
                    .find(|c| **c != b' ')
                    .is_some_and(u8::is_ascii_digit)
        });
    let gadgets: [&[u8]; 8] = [
        b"__class__",
        b"__globals__",
        b"__builtins__",
        b"__subclasses__",
        b"__import__",
        b"config.items",
        b".getruntime()",
        b"self._templatereference",
    ];
    if arithmetic {
        return true;
    }
    // `.__ class __` reads as `.__class__` to the gadget list; copy only when spaced.
    let squeezed: std::borrow::Cow<[u8]> = if b.contains(&b' ') {
        b.iter().copied().filter(|c| *c != b' ').collect()
    } else {
        b.into()
    };
    gadgets
        .iter()
        .any(|g| memchr::memmem::find(&squeezed, g).is_some())
}

#[cfg(test)]
mod tests {
    use super::{jndi, ssti};

    #[test]
    fn obfuscated_jndi_lookups_resolve() {
        for s in [
            "${jndi:ldap://x/a}",
            "${${lower:j}ndi:ldap://x/a}",
            "${${::-j}${::-n}${::-d}${::-i}:rmi://x/a}",
            "${${env:nope:-j}ndi${env:nope:-:}ldap://x}",
        ] {
            assert!(jndi(s.as_bytes()).is_some(), "{s}");
        }
        assert!(jndi(b"${user.home}/docs").is_none());
    }

    #[test]
    fn template_arithmetic_is_flagged_but_plain_braces_are_not() {
        assert!(ssti(b"{{7*7}}").is_some());
        assert!(ssti(b"${7*7}").is_some());
        assert!(ssti(b"{{''.__class__.__mro__}}").is_some());
        assert!(ssti(b"{{4+4}}").is_some());
        assert!(ssti(b"{{[] .__ class __.__ base __.__ subclasses __ ()}}").is_some());
        assert!(ssti(b"{% for c in [1,2,3]%} {{c, c, c}} {% endfor%}").is_some());
        assert!(ssti(b"{{name}}").is_none());
        assert!(ssti(b"{{ page / total }}").is_none());
        assert!(ssti(b"100% {% of the time").is_none());
        assert!(ssti(b"${price} * 2").is_none());
    }
}
