//! Cross-site scripting: HTML and JavaScript context recognition on decoded text.
//!
//! Looks for what makes a browser run script, not for words: a tag that loads or runs
//! script (`<script`, `<svg/onload=`, `<img … onerror=`), an event-handler attribute
//! (`" onmouseover=`, even without a tag), a script URI (`javascript:`, `vbscript:`,
//! `data:text/html`, with whitespace tricks inside), a string break-out into a JS
//! call (`'-alert(1)-'`, `";alert(1)//`), CSS `expression(`. The word `alert` or
//! `script` in a path (`/blog/tags/alert`, `/scripts/app.js`) has none of that.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Tags that run script, load content, or carry handlers commonly used in payloads.
const TAGS: &[&[u8]] = &[
    b"script",
    b"svg",
    b"img",
    b"image",
    b"iframe",
    b"frame",
    b"frameset",
    b"body",
    b"details",
    b"video",
    b"audio",
    b"source",
    b"object",
    b"embed",
    b"applet",
    b"input",
    b"form",
    b"button",
    b"math",
    b"style",
    b"link",
    b"meta",
    b"marquee",
    b"base",
    b"xmp",
    b"isindex",
    b"textarea",
    b"keygen",
    b"html",
    b"template",
    b"animate",
    b"set",
    b"plaintext",
    b"xss",
    b"bgsound",
    b"layer",
    b"ilayer",
    b"noscript",
    b"select",
    b"option",
    b"table",
    b"td",
    b"div",
    b"a",
    b"p",
    b"x",
    b"title",
    b"dialog",
    b"portal",
];

/// JavaScript sinks and gadgets that a payload calls; with a break-out these are XSS.
const SINKS: &[&str] = &[
    "alert(",
    "alert`",
    "prompt(",
    "prompt`",
    "confirm(",
    "confirm`",
    "eval(",
    "eval`",
    "document.cookie",
    "document.domain",
    "document.write",
    "document.location",
    "window.location",
    "location.href",
    "fromcharcode(",
    "settimeout(",
    "setinterval(",
    "constructor(",
    "atob(",
    "import(",
    ".innerhtml",
    "top[",
    "window[",
    "self[",
    "print(",
    "(alert)",
    "[alert]",
    "globalthis",
    "new function(",
    "btoa(",
];

/// The XSS detector; holds the sink automaton.
pub struct Xss {
    sinks: AhoCorasick,
}

impl Xss {
    pub fn new() -> Xss {
        let sinks = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(SINKS)
            .expect("static XSS sink patterns compile");
        Xss { sinks }
    }

    /// Judges decoded, case-folded text; returns (reason, byte offset) when XSS.
    pub fn detect(&self, t: &[u8]) -> Option<(&'static str, usize)> {
        self.active(t)
            .or_else(|| markup_injection(t))
            .or_else(|| angle_probe(t))
    }

    /// Markup or script that runs in a browser as it stands.
    fn active(&self, t: &[u8]) -> Option<(&'static str, usize)> {
        if let Some(r) = tags(t) {
            return Some(r);
        }
        if let Some(r) = script_uri(t) {
            return Some(r);
        }
        if let Some(r) = handler_attribute(t, false) {
            return Some(r);
        }
        if let Some(r) = obfuscated_markup(t)
            .or_else(|| tagged_template_call(t))
            .or_else(|| angular_expression(t))
        {
            return Some(r);
        }
        // CSS payloads below all hold `:` or `(`.
        if memchr::memchr2(b':', b'(', t).is_none() {
            return self.js_breakout(t);
        }
        if let Some(p) = memchr::memmem::find(t, b"behavior:")
            .or_else(|| memchr::memmem::find(t, b"-moz-binding"))
        {
            return Some(("CSS behavior/binding", p));
        }
        if let Some(r) = css_script_url(t) {
            return Some(r);
        }
        if let Some(p) = memchr::memmem::find(t, b"expression(") {
            let before = t[..p].iter().rev().find(|b| **b != b' ');
            if matches!(before, Some(b':' | b'=' | b'"' | b'\'')) {
                return Some(("CSS expression()", p));
            }
        }
        self.js_breakout(t)
    }

    /// A JS sink call, with a string break-out or statement boundary before it.
    fn js_breakout(&self, t: &[u8]) -> Option<(&'static str, usize)> {
        let m = self.sinks.find(t)?;
        let before = &t[..m.start()];
        let boundary = before.is_empty()
            || before.iter().rev().take(4).any(|b| {
                matches!(
                    b,
                    b'\''
                        | b'"'
                        | b'`'
                        | b';'
                        | b'-'
                        | b'+'
                        | b'('
                        | b'>'
                        | b'='
                        | b'|'
                        | b'&'
                        | b'*'
                        | b'{'
                        | b'}'
                        | b'['
                        | b','
                        | b'\n'
                        | b'!'
                        | b'^'
                        | b'~'
                )
            });
        let call = t[m.end() - 1] == b'(' || t[m.end() - 1] == b'`';
        let args_close = !call
            || t[m.end()..]
                .iter()
                .take(200)
                .any(|b| matches!(b, b')' | b'`'));
        (boundary && args_close).then_some(("JavaScript call after break-out", m.start()))
    }
}

impl Default for Xss {
    fn default() -> Self {
        Xss::new()
    }
}

/// `<tag` for a known tag, `</script`, `<!--` style break-outs, or any tag with an
/// `on…=` attribute.
fn tags(t: &[u8]) -> Option<(&'static str, usize)> {
    let mut from = 0;
    while let Some(off) = memchr::memchr(b'<', &t[from..]) {
        let p = from + off;
        from = p + 1;
        let rest = &t[p + 1..];
        let closing = rest.first() == Some(&b'/');
        let name_at = usize::from(closing);
        let name_len = rest[name_at..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if name_len == 0 {
            continue;
        }
        let name = &rest[name_at..name_at + name_len];
        let after = rest.get(name_at + name_len).copied();
        let ends_name = matches!(after, None | Some(b' ' | b'/' | b'>' | b'\n' | b'+'));
        if !ends_name {
            continue;
        }
        if name == b"script" || (name == b"iframe" && !closing) {
            return Some(("<script>/<iframe> tag", p));
        }
        if closing {
            continue;
        }
        // Attributes are judged within 512 bytes, which keeps `<a<a<a…` linear.
        let window = &rest[..rest.len().min(512)];
        let tag_end = window
            .iter()
            .position(|b| *b == b'>')
            .unwrap_or(window.len());
        let attrs = &rest[name_at + name_len..tag_end];
        if handler_attribute(attrs, true).is_some() {
            return Some(("tag with event handler", p));
        }
        if script_uri(attrs).is_some() {
            return Some(("tag with script URI", p));
        }
        let embeds = matches!(
            name,
            b"object"
                | b"embed"
                | b"applet"
                | b"base"
                | b"meta"
                | b"link"
                | b"layer"
                | b"ilayer"
                | b"bgsound"
                | b"frameset"
                | b"frame"
                | b"import"
                | b"portal"
        );
        let bare = matches!(
            name,
            b"svg" | b"math" | b"style" | b"xmp" | b"plaintext" | b"xss"
        );
        if embeds && (attrs.contains(&b'=') || attrs.is_empty() && after == Some(b'>')) {
            return Some(("tag that loads active content", p));
        }
        if bare && matches!(after, Some(b'>' | b'/')) && TAGS.contains(&name) {
            return Some(("active HTML tag", p));
        }
    }
    None
}

/// Elements that frame a whole document or a form: user content (a comment, a product
/// description) does not carry them, so a parameter holding one as a real tag
/// (`</body>`, `<html xmlns:…>`, `<input type=…>`) is markup injection even when
/// nothing in it runs script yet. Ordinary content tags (`<a href>`, `<span class>`,
/// `<br />`, `<table width>`) are left alone: rich-text fields send those.
const DOCUMENT_ELEMENTS: &[&[u8]] = &[
    b"html",
    b"head",
    b"body",
    b"xml",
    b"title",
    b"form",
    b"input",
    b"button",
    b"textarea",
    b"isindex",
    b"keygen",
    b"xss",
];

/// A well-formed tag of a document-level element, a namespaced XML tag
/// (`<xss:xss>`), a tag with IE data binding (`datasrc=`) or a style attribute that
/// can fetch or run code (CSS escapes, `url(`, `expression(`), or a markup declaration
/// a parser acts on (`<!--`, `<![cdata[`, `<![endif]`, `<!doctype`, `<?xml`, `<?php`).
fn markup_injection(t: &[u8]) -> Option<(&'static str, usize)> {
    let mut from = 0;
    while let Some(off) = memchr::memchr(b'<', &t[from..]) {
        let p = from + off;
        from = p + 1;
        let rest = &t[p + 1..];
        for decl in [
            &b"!--"[..],
            b"![cdata[",
            b"![endif",
            b"![if",
            b"!doctype",
            b"?xml",
        ] {
            if rest.starts_with(decl) {
                return Some(("markup declaration", p));
            }
        }
        if rest.starts_with(b"?php") || rest.starts_with(b"?=") || rest.starts_with(b"? ") {
            return Some(("server-side script tag", p));
        }
        let closing = rest.first() == Some(&b'/');
        let body = &rest[usize::from(closing)..];
        let name_len = body
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b':')
            .count();
        if name_len == 0 || name_len > 24 || !body[0].is_ascii_alphabetic() {
            continue;
        }
        let name = &body[..name_len];
        let namespaced = name.iter().filter(|b| **b == b':').count() == 1 && !name.ends_with(b":");
        let after = &body[name_len..];
        let complete = after.first() == Some(&b'>') || after.starts_with(b"/>");
        let attributes = !closing && attribute_follows(after);
        if (namespaced || DOCUMENT_ELEMENTS.contains(&name)) && (complete || attributes) {
            return Some(("HTML document markup injection", p));
        }
        if attributes {
            let window = &after[..after.len().min(512)];
            let tag = &window[..memchr::memchr(b'>', window).unwrap_or(window.len())];
            if let Some(r) = risky_attribute(tag) {
                return Some((r, p));
            }
        }
    }
    None
}

/// IE data binding (`datasrc=`, `datafld=`, `dataformatas=`) and style attributes whose
/// CSS can load or run code (escapes like `\0075` that spell `url`, `url(`,
/// `expression(`, `behavior:`), inside one tag.
fn risky_attribute(tag: &[u8]) -> Option<&'static str> {
    for attr in [&b"datasrc"[..], b"datafld", b"dataformatas"] {
        if memchr::memmem::find(tag, attr).is_some() {
            return Some("tag with IE data binding");
        }
    }
    let style = memchr::memmem::find(tag, b"style")?;
    let value = skip_space(&tag[style + 5..]).strip_prefix(b"=")?;
    let escaped = value
        .windows(2)
        .any(|w| w[0] == b'\\' && w[1].is_ascii_hexdigit());
    let code = ["url(", "expression(", "behavior", "-moz-binding", "@import"]
        .iter()
        .any(|k| memchr::memmem::find(value, k.as_bytes()).is_some());
    (escaped || code).then_some("style attribute with code-capable CSS")
}

/// ` name=` or ` name>`-style attributes right after a tag name (`<div style=`,
/// `<html xmlns:xss>`), but not prose (`<a b c> d`).
fn attribute_follows(after: &[u8]) -> bool {
    let rest = match after.first() {
        Some(b' ' | b'\n' | b'/') => skip_space(&after[1..]),
        _ => return false,
    };
    let name = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'_'))
        .count();
    name > 0 && matches!(skip_space(&rest[name..]).first(), Some(b'=' | b'>'))
}

/// A parameter that is nothing but markup metacharacters (`<`, `">`, `'><`), however
/// encoded (`&#x003c`, `\u003c`, `%253C`): the probe a filter-evasion scan sends to
/// learn which spellings of `<` come back unescaped.
fn angle_probe(t: &[u8]) -> Option<(&'static str, usize)> {
    let at = memchr::memchr(b'=', t).map_or(0, |e| e + 1);
    let v = t[at..].trim_ascii();
    let probe = (1..=4).contains(&v.len())
        && v.iter().all(|b| matches!(b, b'<' | b'>' | b'"' | b'\''))
        && v.iter().any(|b| matches!(b, b'<' | b'>'));
    probe.then_some(("markup metacharacter probe", at))
}

/// `javascript:`, `vbscript:`, `livescript:`, `data:text/html`, ignoring whitespace
/// and control characters a browser skips inside the scheme.
fn script_uri(t: &[u8]) -> Option<(&'static str, usize)> {
    let mut from = 0;
    while let Some(off) = memchr::memchr(b':', &t[from..]) {
        let p = from + off;
        from = p + 1;
        let mut squeezed = [0u8; 10];
        let mut n = 0;
        for &b in t[..p].iter().rev() {
            if b == b' ' || b == b'\n' || b < 0x20 {
                continue;
            }
            if !b.is_ascii_alphabetic() || n == squeezed.len() {
                break;
            }
            squeezed[squeezed.len() - 1 - n] = b;
            n += 1;
        }
        let scheme = &squeezed[squeezed.len() - n..];
        if scheme.ends_with(b"javascript")
            || scheme.ends_with(b"vbscript")
            || scheme == b"livescript"
        {
            return Some(("script URI", p));
        }
        if scheme.ends_with(b"data") {
            let after: Vec<u8> = t[p + 1..]
                .iter()
                .take(24)
                .copied()
                .filter(|b| *b != b' ')
                .collect();
            if after.starts_with(b"text/html")
                || after.starts_with(b"image/svg")
                || after.starts_with(b"application/x")
            {
                return Some(("data: URI with HTML", p));
            }
        }
    }
    None
}

/// Event-handler attribute: `on<name>=` preceded by a separator a browser accepts
/// between attributes (space, quote, slash) and followed by a value. Inside a tag
/// (`in_tag`) any `on…=` name counts, since browsers add events faster than lists do.
fn handler_attribute(t: &[u8], in_tag: bool) -> Option<(&'static str, usize)> {
    let mut from = 0;
    while let Some(off) = memchr::memmem::find(&t[from..], b"on") {
        let p = from + off;
        from = p + 2;
        let prev = p.checked_sub(1).map(|q| t[q]);
        if !matches!(prev, Some(b' ' | b'"' | b'\'' | b'/' | b'\n' | b'`' | b';')) {
            continue;
        }
        let name_len = t[p + 2..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        if !(3..=48).contains(&name_len) {
            continue;
        }
        let mut k = p + 2 + name_len;
        while t.get(k) == Some(&b' ') {
            k += 1;
        }
        if t.get(k) != Some(&b'=') {
            continue;
        }
        let value = &t[k + 1..];
        let name = &t[p + 2..p + 2 + name_len];
        let known = HANDLERS.contains(&name);
        let scripty = value
            .iter()
            .take(80)
            .any(|b| matches!(b, b'(' | b'`' | b'=' | b'.'));
        // After a quote the attribute context is already broken out of: any name counts.
        let after_quote = matches!(prev, Some(b'"' | b'\'' | b'`'));
        // A name no browser knows still runs if a later one adds it; after whitespace it
        // counts when its value looks like code (`onabcdefgh= =vardata`).
        let after_space = matches!(prev, Some(b' ' | b'\n'));
        if in_tag
            || after_quote
            || known && (scripty || prev != Some(b';'))
            || after_space && scripty
        {
            return Some(("event handler attribute", p));
        }
    }
    None
}

/// DOM event names (without `on`) that payloads use.
const HANDLERS: &[&[u8]] = &[
    b"load",
    b"error",
    b"click",
    b"dblclick",
    b"mouseover",
    b"mouseout",
    b"mousemove",
    b"mousedown",
    b"mouseup",
    b"mouseenter",
    b"mouseleave",
    b"focus",
    b"blur",
    b"focusin",
    b"focusout",
    b"toggle",
    b"change",
    b"input",
    b"submit",
    b"reset",
    b"select",
    b"keydown",
    b"keyup",
    b"keypress",
    b"animationstart",
    b"animationend",
    b"animationiteration",
    b"transitionend",
    b"transitionstart",
    b"transitionrun",
    b"begin",
    b"end",
    b"repeat",
    b"pageshow",
    b"pagehide",
    b"hashchange",
    b"popstate",
    b"resize",
    b"scroll",
    b"unload",
    b"beforeunload",
    b"message",
    b"play",
    b"playing",
    b"pause",
    b"canplay",
    b"ended",
    b"loadstart",
    b"loadeddata",
    b"loadedmetadata",
    b"progress",
    b"durationchange",
    b"timeupdate",
    b"volumechange",
    b"seeked",
    b"seeking",
    b"waiting",
    b"stalled",
    b"suspend",
    b"abort",
    b"drag",
    b"dragstart",
    b"dragend",
    b"dragenter",
    b"dragleave",
    b"dragover",
    b"drop",
    b"copy",
    b"cut",
    b"paste",
    b"contextmenu",
    b"wheel",
    b"mousewheel",
    b"pointerover",
    b"pointerdown",
    b"pointerup",
    b"pointerenter",
    b"pointerleave",
    b"pointermove",
    b"pointerout",
    b"touchstart",
    b"touchend",
    b"touchmove",
    b"show",
    b"invalid",
    b"search",
    b"afterprint",
    b"beforeprint",
    b"readystatechange",
    b"start",
    b"finish",
    b"bounce",
    b"online",
    b"offline",
    b"storage",
    b"cuechange",
    b"formdata",
    b"auxclick",
    b"beforeinput",
    b"beforetoggle",
    b"scrollend",
    b"activate",
    b"beforeactivate",
    b"beforecopy",
    b"beforecut",
    b"beforepaste",
    b"filterchange",
    b"help",
    b"losecapture",
    b"move",
    b"propertychange",
    b"rowenter",
    b"rowexit",
    b"selectstart",
    b"webkitanimationstart",
    b"webkittransitionend",
    b"securitypolicyviolation",
    b"close",
    b"cancel",
];

/// Markup a browser still reads as active although it hides from a plain `<tag`
/// search: UTF-7 `+adw-` for `<`, IE `<?import`/`<import implementation=`, namespaced
/// `< x: script`, tag names split by whitespace (`<f o r m`), and quote break-outs
/// into attributes that run script (`'formaction=`, `"srcdoc=`).
fn obfuscated_markup(t: &[u8]) -> Option<(&'static str, usize)> {
    if let Some(p) = memchr::memmem::find(t, b"+adw-")
        && t.get(p + 5)
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'/')
    {
        return Some(("UTF-7 encoded tag", p));
    }
    let mut from = 0;
    while let Some(off) =
        memchr::memchr2(b'<', b'\'', &t[from..]).or_else(|| memchr::memchr(b'"', &t[from..]))
    {
        let p = from + off;
        from = p + 1;
        if t[p] == b'<' {
            if let Some(r) = hidden_tag(&t[p + 1..]) {
                return Some((r, p));
            }
            continue;
        }
        let rest = skip_space(&t[p + 1..]);
        for attr in [&b"formaction"[..], b"srcdoc", b"xlink:href"] {
            if rest.starts_with(attr) && skip_space(&rest[attr.len()..]).first() == Some(&b'=') {
                return Some(("quote break-out into script attribute", p));
            }
        }
    }
    None
}

fn skip_space(t: &[u8]) -> &[u8] {
    let n = t.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &t[n..]
}

/// What follows a `<`: an IE import, a namespaced script, or a whitespace-split name.
fn hidden_tag(rest: &[u8]) -> Option<&'static str> {
    let r = rest.strip_prefix(b"?").unwrap_or(rest);
    if r.starts_with(b"import")
        && memchr::memmem::find(&r[..r.len().min(64)], b"implementation").is_some()
    {
        return Some("IE import of a behaviour");
    }
    let r = skip_space(rest);
    let ns = r.iter().take_while(|b| b.is_ascii_alphanumeric()).count();
    if ns > 0 && r.get(ns) == Some(&b':') && skip_space(&r[ns + 1..]).starts_with(b"script") {
        return Some("namespaced script tag");
    }
    // `<f o r m`: single letters separated by single spaces spell a tag name.
    let mut name = [0u8; 12];
    let mut n = 0;
    let mut k = 0;
    while n < name.len() && r.get(k).is_some_and(u8::is_ascii_alphabetic) {
        name[n] = r[k];
        n += 1;
        k += 1;
        let spaced = r.get(k) == Some(&b' ') && r.get(k + 1).is_some_and(u8::is_ascii_alphabetic);
        if !spaced || r.get(k + 2).is_some_and(u8::is_ascii_alphabetic) {
            break;
        }
        k += 1;
    }
    (n >= 3 && k > n && TAGS.contains(&&name[..n])).then_some("tag name split by whitespace")
}

/// CSS `url(javascript:…)` with optional quotes and spaces.
fn css_script_url(t: &[u8]) -> Option<(&'static str, usize)> {
    let p = memchr::memmem::find(t, b"url(")?;
    let rest = skip_space(&t[p + 4..]);
    let rest = rest
        .strip_prefix(b"'")
        .or_else(|| rest.strip_prefix(b"\""))
        .unwrap_or(rest);
    let rest = skip_space(rest);
    (rest.starts_with(b"javascript") || rest.starts_with(b"vbscript"))
        .then_some(("CSS url() with script URI", p))
}

/// `[].sort.call`${alert}1``, `reflect.apply.call``: a tagged template calling a
/// method through `.call`/`.apply`, which runs a function without parentheses.
fn tagged_template_call(t: &[u8]) -> Option<(&'static str, usize)> {
    let mut from = 0;
    while let Some(off) = memchr::memchr(b'`', &t[from..]) {
        let p = from + off;
        from = p + 1;
        let before = t[..p].trim_ascii_end();
        let method = before.ends_with(b"call") || before.ends_with(b"apply");
        if !method {
            continue;
        }
        let name_len = if before.ends_with(b"call") { 4 } else { 5 };
        let dot = before[..before.len() - name_len].trim_ascii_end();
        if dot.ends_with(b".") {
            return Some(("tagged template call", p));
        }
    }
    None
}

/// AngularJS client-side template injection: `{{constructor.constructor('…')()}}`
/// reaches the `Function` constructor from inside an expression.
fn angular_expression(t: &[u8]) -> Option<(&'static str, usize)> {
    let p = memchr::memmem::find(t, b"{{")?;
    let inner = &t[p + 2..t.len().min(p + 200)];
    let end = memchr::memmem::find(inner, b"}}").unwrap_or(inner.len());
    let body = &inner[..end];
    let escapes = memchr::memmem::find(body, b"constructor").is_some()
        || memchr::memmem::find(body, b"$eval").is_some()
        || memchr::memmem::find(body, b"$on.").is_some();
    escapes.then_some(("AngularJS expression reaching the Function constructor", p))
}

#[cfg(test)]
mod tests {
    use super::Xss;

    #[test]
    fn payloads_in_html_and_js_context_are_flagged() {
        let x = Xss::new();
        for s in [
            "<script>alert(1)</script>",
            "<svg/onload=alert(1)>",
            "<img src=x onerror=alert(1)>",
            "<iframe src=javascript:alert(1)>",
            "<details open ontoggle=alert(1)>",
            "\" onmouseover=\"alert(1)",
            "'-alert(1)-'",
            "\";alert(1)//",
            "java\tscript:alert(1)",
            "data:text/html;base64,pd9zy3jpchq+",
            "<a href=\"javascript:alert(1)\">x</a>",
            "width:expression(alert(1))",
        ] {
            assert!(x.detect(s.as_bytes()).is_some(), "{s} should be XSS");
        }
    }

    #[test]
    fn words_alert_and_script_are_not_flagged() {
        let x = Xss::new();
        for s in [
            "/scripts/app.js",
            "/blog/tags/alert",
            "/javascript/tutorial",
            "q=red alert",
            "a < b and c > d",
            "onboarding=1",
            "<3 love it",
            "see: online help",
        ] {
            assert!(x.detect(s.as_bytes()).is_none(), "{s} should not be XSS");
        }
    }

    #[test]
    fn obfuscated_markup_and_script_gadgets_are_flagged() {
        let x = Xss::new();
        for s in [
            "+adw-script+ad4-alert(1)",
            "<?import implementation =",
            "< x: script",
            "foo=bar<f o r m",
            "'formaction=",
            "x=x:url(javascript",
            "[].sort.call`${alert}1337`",
            "reflect.apply.call`${x}`",
            "new function()",
            "x {{constructor.constructor('alert(1)')()}}",
            "  onabcdefgh= =vardata",
            "<\"onwebkitplaybacktargetavailabilitychanged=",
        ] {
            assert!(x.detect(s.as_bytes()).is_some(), "{s} should be XSS");
        }
    }

    #[test]
    fn markup_injection_and_bracket_probes_are_flagged() {
        let x = Xss::new();
        for s in [
            "<div style=\"background-image:\\0075\\0072\\006c\\0028'\\006a\">",
            "</body></html>",
            "<html xmlns:xss>",
            "  <xss:xss>xss</xss:xss>",
            "<span datasrc=#i datafld=c dataformatas=html></span>",
            "<input type=text value=x>",
            "<!--[if gte ie 4]>",
            "<![endif]-->",
            "<?xml:namespace prefix=\"t\">",
            "<? echo('<scr)';",
            "q=<",
            "q=\">",
            "'><",
        ] {
            assert!(x.detect(s.as_bytes()).is_some(), "{s} should be XSS");
        }
    }

    #[test]
    fn look_alikes_of_obfuscated_markup_are_not_flagged() {
        let x = Xss::new();
        for s in [
            "a + b - c",
            "<a b c> d",
            "{{ user.name }}",
            "background:url(/img/a.png)",
            "call `me` maybe",
            "done on time=yes",
            "q=a<b",
            "x<y>z",
            "i <3 u",
            "q=<<< back",
            "price<5 and size>2",
            "blah <a href=\"/path1/path2\">foo</a>",
            "<span class=\"show-text\">regardez</span>",
            "<table width=\"99%\" border=\"0\" cellpadding=\"1\"",
            "faites un tour <br /><a href=\"/apps/\">galerie</a>",
            "<div style=\"color:red\">x</div>",
        ] {
            assert!(x.detect(s.as_bytes()).is_none(), "{s} should not be XSS");
        }
    }
}
