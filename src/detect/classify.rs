//! Request classifiers: tag each access event with the attack classes its request
//! shows (SQLi, XSS, traversal, command injection, JNDI, SSTI, scanner agents,
//! sensitive-file probes) before any Sigma rule runs, so rules and correlations can
//! key on `palisade.attack` instead of fragile keyword lists.
//!
//! Cost model: the pipeline calls [`Classifier::classify`] on every event. Ordinary
//! requests (`/images/logo.png`, `/search?q=red+shoes`) are settled by a byte-class
//! scan per request part plus two automaton passes (scanner agents, sensitive paths).
//! Only a part holding a suspicious byte (`% ' " < > ( ) ; | $ \` \ { }`, `..`, a
//! space or `+` in a query value, …) is decoded ([`decode`]) and handed to the
//! detectors ([`sqli`], [`xss`], [`traversal`], [`cmdi`], [`template`]).
//! A query is judged per parameter, split on the raw `&` that starts a `name=` pair,
//! so one odd parameter does not make the rest expensive and findings name what
//! matched; an unencoded `&` inside a payload stays with its parameter.

pub mod cmdi;
pub mod decode;
pub mod scanner;
pub mod sqli;
pub mod template;
pub mod traversal;
pub mod xss;

use std::cell::RefCell;
use std::rc::Rc;
use std::thread::LocalKey;

use crate::detect::memo::Memo;
use crate::event::{AttackClasses, Event, Finding};

use decode::Steps;
use scanner::Scanner;
use traversal::Traversal;
use xss::Xss;

/// Part names used in findings (ECS field names).
pub const PART_PATH: &str = "url.path";
pub const PART_QUERY: &str = "url.query";
pub const PART_USER_AGENT: &str = "user_agent.original";
pub const PART_REFERRER: &str = "http.request.referrer";

/// Values longer than this are judged on their first bytes only, which bounds the
/// cost per line (field case 34); the excess cannot create a match, only hide one.
const MAX_VALUE_BYTES: usize = 8 * 1024;

/// Which bytes make a part worth decoding, per kind of part.
struct ByteClass([bool; 256]);

impl ByteClass {
    const fn new(bytes: &[u8]) -> ByteClass {
        let mut t = [false; 256];
        let mut i = 0;
        while i < bytes.len() {
            t[bytes[i] as usize] = true;
            i += 1;
        }
        // Control bytes and non-ASCII (raw overlong UTF-8, escaped tricks) always count.
        let mut b = 0;
        while b < 256 {
            if b < 0x20 || b >= 0x7f {
                t[b] = true;
            }
            b += 1;
        }
        ByteClass(t)
    }

    /// Whether `s` holds a listed byte or `..` (one pass, no searcher set-up).
    fn hit(&self, s: &[u8]) -> bool {
        let mut prev = 0u8;
        for &b in s {
            if self.0[b as usize] || (b == b'.' && prev == b'.') {
                return true;
            }
            prev = b;
        }
        false
    }
}

/// Paths: `+` and `&` are ordinary there; `:` is for `javascript:` in paths.
static PATH_BYTES: ByteClass = ByteClass::new(b"%'\"<>();|$`\\{} *!@^~");
/// Query values additionally treat `+`/space (encoded spaces), `/`, `:` and `=` inside
/// a value as worth a look; `&` is the separator and never reaches here raw.
static QUERY_BYTES: ByteClass = ByteClass::new(b"%'\"<>();|$`\\{} +*/:!@#,^~");
/// User agents always hold `(`, `)`, `;` and `/`; those do not count there. `=` and `&`
/// (attributes, entities) are rare in real agents.
static AGENT_BYTES: ByteClass = ByteClass::new(b"%'\"<>|$`\\{}=&");

/// The request classifier; build once with [`Classifier::new`], share freely.
pub struct Classifier {
    xss: Xss,
    traversal: Traversal,
    scanner: Scanner,
}

/// What one classification run collects.
#[derive(Default)]
struct Out {
    classes: AttackClasses,
    findings: Vec<Finding>,
    /// Every [`Out::add`] call, deduplicated or not: a part judged with no call is
    /// clean whatever the other parts found.
    calls: u32,
}

impl Out {
    /// Records a class once per part, with the decoded text around `at`.
    fn add(
        &mut self,
        class: AttackClasses,
        part: &'static str,
        ctx: (&Steps, &[u8]),
        at: usize,
        reason: &str,
    ) {
        self.calls += 1;
        let name = class.names().next().unwrap_or("?");
        if self
            .findings
            .iter()
            .any(|f| f.class == name && f.part == part)
        {
            return;
        }
        self.classes.insert(class);
        self.findings.push(Finding {
            class: name,
            part,
            decoding: ctx.0.describe(),
            excerpt: excerpt(ctx.1, at),
            reason: reason.to_string(),
        });
    }
}

/// Up to 24 bytes before and 56 after `at`, lossily as text.
fn excerpt(text: &[u8], at: usize) -> String {
    let at = at.min(text.len());
    let start = at.saturating_sub(24);
    let end = (at + 56).min(text.len());
    String::from_utf8_lossy(&text[start..end]).into_owned()
}

impl Classifier {
    /// Builds the automata; do this once per process.
    pub fn new() -> Classifier {
        Classifier {
            xss: Xss::new(),
            traversal: Traversal::new(),
            scanner: Scanner::new(),
        }
    }

    /// Inspects the event's URL (path and query), User-Agent and Referer; sets
    /// `ev.attacks` and appends to `ev.findings`.
    pub fn classify(&self, ev: &mut Event) {
        let mut out = Out::default();
        if let Some(path) = ev.url_path() {
            cached_clean(
                &PATHS_SEEN,
                URL_CACHE_MAX_BYTES,
                Tag::Path,
                path,
                &mut out,
                |o| self.inspect_path(path, o),
            );
        }
        if let Some(query) = ev.url_query() {
            cached_clean(
                &QUERIES_SEEN,
                URL_CACHE_MAX_BYTES,
                Tag::Query,
                query,
                &mut out,
                |o| self.inspect_query(query, PART_QUERY, o),
            );
        }
        if let Some(ua) = ev.user_agent.as_deref() {
            cached_clean(
                &AGENTS_SEEN,
                CACHE_MAX_BYTES,
                Tag::Agent,
                ua,
                &mut out,
                |o| self.inspect_agent(ua, o),
            );
        }
        if let Some(referrer) = ev.referrer.as_deref() {
            cached_clean(
                &REFERRERS_SEEN,
                CACHE_MAX_BYTES,
                Tag::Referrer,
                referrer,
                &mut out,
                |o| self.inspect_referrer(referrer, o),
            );
        }
        if !out.classes.is_empty() {
            ev.attacks.insert(out.classes);
            ev.findings.extend(out.findings);
        }
    }

    /// Classifies one piece of text as the given part (`url.path`, `url.query`,
    /// `url.original`, `user_agent.original`, `http.request.referrer`; anything else
    /// is judged as a single decoded value). For `rules test` and evaluation.
    pub fn classify_text(&self, part: &'static str, text: &str) -> (AttackClasses, Vec<Finding>) {
        let mut out = Out::default();
        match part {
            PART_PATH => self.inspect_path(text, &mut out),
            PART_QUERY => self.inspect_query(text, PART_QUERY, &mut out),
            PART_USER_AGENT => self.inspect_agent(text, &mut out),
            PART_REFERRER => self.inspect_referrer(text, &mut out),
            "url.original" => match text.split_once('?') {
                Some((path, query)) => {
                    self.inspect_path(path, &mut out);
                    self.inspect_query(query, PART_QUERY, &mut out);
                }
                None => self.inspect_path(text, &mut out),
            },
            _ => {
                if QUERY_BYTES.hit(text.as_bytes()) {
                    self.inspect_value(part, text.as_bytes(), false, &mut out);
                }
            }
        }
        (out.classes, out.findings)
    }

    fn inspect_path(&self, path: &str, out: &mut Out) {
        let raw = clip(path.as_bytes());
        self.sensitive(raw, &Steps::default(), out);
        if !PATH_BYTES.hit(raw) {
            return;
        }
        let (mut norm, steps) = decode::decode(raw, false);
        decode::fold(&mut norm);
        if steps != Steps::default() {
            self.sensitive(&norm, &steps, out);
        }
        self.common(PART_PATH, &norm, &steps, out);
        // SQLi per raw segment, so `/` inside encoded `/**/` padding stays in one piece.
        for seg in raw.split(|b| *b == b'/').filter(|s| PATH_BYTES.hit(s)) {
            let (mut v, steps) = decode::decode(seg, false);
            decode::fold(&mut v);
            if let Some(reason) = sqli::detect(&v) {
                out.add(AttackClasses::SQLI, PART_PATH, (&steps, &v), 0, reason);
                break;
            }
        }
    }

    fn inspect_query(&self, query: &str, part: &'static str, out: &mut Out) {
        for seg in parameters(clip(query.as_bytes())) {
            // A parameter that swallowed a raw `&` is judged whole, `&` included.
            let joined = memchr::memchr(b'&', seg).is_some();
            if joined || QUERY_BYTES.hit(seg) || second_equals(seg) {
                // Whether a value is clean does not depend on the part it came in (its
                // findings name the part, so those are remembered per part).
                let tag = if part == PART_REFERRER {
                    Tag::ReferrerValue
                } else {
                    Tag::QueryValue
                };
                cached_clean(&VALUES_SEEN, URL_CACHE_MAX_BYTES, tag, seg, out, |o| {
                    self.inspect_value(part, seg, true, o)
                });
            } else if let Some(at) = cmdi::recon_value(seg) {
                let ctx = (&Steps::default(), seg);
                out.add(
                    AttackClasses::CMDI,
                    part,
                    ctx,
                    at,
                    "recon command as the whole value",
                );
            } else if let Some(eq) = memchr::memchr(b'=', seg) {
                // Nothing to decode: only a secret file named plainly (`?f=.htaccess`).
                secret_file(part, (&Steps::default(), seg), Some(eq), out);
            }
        }
    }

    fn inspect_agent(&self, ua: &str, out: &mut Out) {
        if let Some((tool, at)) = self.scanner.scanner_ua(ua) {
            let reason = format!("scanner user agent: {tool}");
            out.add(
                AttackClasses::SCANNER_UA,
                PART_USER_AGENT,
                (&Steps::default(), ua.as_bytes()),
                at,
                &reason,
            );
        }
        let raw = clip(ua.as_bytes());
        // `() {` (shellshock) holds `{`, which the agent byte class lists.
        if AGENT_BYTES.hit(raw) {
            self.inspect_value(PART_USER_AGENT, raw, false, out);
            return;
        }
        // Agents always hold `/`, so file paths (`/proc/net/tcp`) need their own look;
        // the per-thread clean cache keeps this off the hot path for repeated agents.
        self.plain_header(PART_USER_AGENT, raw, out);
    }

    /// A header with none of the suspicious bytes: a system path (`/proc/net/tcp`) or a
    /// command line (`env --version`, `;set`) written out plainly.
    fn plain_header(&self, part: &'static str, raw: &[u8], out: &mut Out) {
        if let Some((reason, at)) = self.traversal.system_path(raw) {
            out.add(
                AttackClasses::TRAVERSAL,
                part,
                (&Steps::default(), raw),
                at,
                reason,
            );
        }
        // `Product/1.0 (comment; id)`: agent grammar, where `; id)` is a locale, not a command.
        let product = raw
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
            .count();
        if product > 0 && raw.get(product) == Some(&b'/') {
            return;
        }
        let folded = raw.to_ascii_lowercase();
        if let Some((reason, at)) = cmdi::detect(&folded) {
            out.add(
                AttackClasses::CMDI,
                part,
                (&Steps::default(), raw),
                at,
                reason,
            );
        }
    }

    fn inspect_referrer(&self, referrer: &str, out: &mut Out) {
        let Some((_, query)) = referrer.split_once('?') else {
            let raw = clip(referrer.as_bytes());
            if AGENT_BYTES.hit(raw) {
                self.inspect_value(PART_REFERRER, raw, false, out);
            } else {
                self.plain_header(PART_REFERRER, raw, out);
            }
            return;
        };
        self.inspect_query(query, PART_REFERRER, out);
    }

    /// Decodes one value (a query parameter, a header) and runs every detector on it.
    fn inspect_value(&self, part: &'static str, raw: &[u8], plus: bool, out: &mut Out) {
        let (mut norm, steps) = decode::decode(raw, plus);
        decode::fold(&mut norm);
        self.common(part, &norm, &steps, out);
        if let Some(at) = nosql_operator(&norm) {
            out.add(
                AttackClasses::SQLI,
                part,
                (&steps, &norm),
                at,
                "NoSQL query operator",
            );
        }
        let eq = if part == PART_USER_AGENT {
            None
        } else {
            memchr::memchr(b'=', &norm)
        };
        let value = eq.map_or(&norm[..], |e| &norm[e + 1..]);
        if part != PART_USER_AGENT {
            secret_file(part, (&steps, &norm), eq, out);
        }
        let sqli = sqli::detect(value).or_else(|| eq.and_then(|e| sqli::detect(&norm[..e])));
        if let Some(reason) = sqli {
            let at = eq.map_or(0, |e| e + 1);
            out.add(AttackClasses::SQLI, part, (&steps, &norm), at, reason);
        }
    }

    /// Detectors that read the whole decoded part.
    fn common(&self, part: &'static str, norm: &[u8], steps: &Steps, out: &mut Out) {
        let ctx = (steps, norm);
        if let Some((reason, at)) = self.xss.detect(norm) {
            out.add(AttackClasses::XSS, part, ctx, at, reason);
        }
        if let Some((reason, at)) = self.traversal.detect(norm) {
            out.add(AttackClasses::TRAVERSAL, part, ctx, at, &reason);
        }
        if let Some((reason, at)) = cmdi::detect(norm) {
            out.add(AttackClasses::CMDI, part, ctx, at, reason);
        }
        // Both need a brace (`${`, `{{`, `#{`, `{%`) or `<%`: skip the searches otherwise.
        let brace = memchr::memchr2(b'{', b'%', norm).is_some();
        if let Some(at) = brace.then(|| template::jndi(norm)).flatten() {
            out.add(AttackClasses::JNDI, part, ctx, at, "JNDI lookup");
        }
        if let Some((reason, at)) = brace.then(|| template::ssti(norm)).flatten() {
            out.add(AttackClasses::SSTI, part, ctx, at, reason);
        }
    }

    fn sensitive(&self, path: &[u8], steps: &Steps, out: &mut Out) {
        if let Some((pat, at)) = self.scanner.sensitive_path(path) {
            let reason = format!("sensitive file: {pat}");
            out.add(
                AttackClasses::SENSITIVE_FILE,
                PART_PATH,
                (steps, path),
                at,
                &reason,
            );
        }
    }
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier::new()
    }
}

/// Slots in each per-thread cache of values already judged clean.
const CACHE_SLOTS: usize = 16_384;

/// Longest header a clean cache keeps (longer ones are judged every time).
const CACHE_MAX_BYTES: usize = 1024;

/// Longest path, query or query value a clean cache keeps: those vary more than
/// headers, and this bounds what a flood of distinct long URLs can make the caches
/// hold (three caches of 16,384 slots: at most 12 MiB per thread).
const URL_CACHE_MAX_BYTES: usize = 256;

/// Values recently judged clean ([`Memo`]). Paths, query values, user agents and
/// referrers repeat heavily in real traffic; this takes the decoding and the
/// detectors off the hot path for the repeats. A value's verdict depends on its
/// bytes only, never on the rest of the request.
type CleanCache = Memo<()>;

/// Slots in the per-thread memory of flagged values (one table for every part).
const FLAGGED_SLOTS: usize = 2048;

/// Most findings a flagged value may have for its verdict to be remembered; with the
/// key limits this bounds the table to a few MiB per thread whatever the traffic.
const FLAGGED_MAX_FINDINGS: usize = 4;

/// What inspecting one value added to an empty [`Out`], kept so that the next time
/// the value is seen (scanners repeat their payloads and agents) it can be replayed
/// instead of decoded and judged again.
struct Recorded {
    classes: AttackClasses,
    calls: u32,
    findings: Box<[Finding]>,
}

/// Which part a flagged value was judged as: its findings name the part, so the same
/// bytes in another part are another entry. Used as the [`Memo`] tag.
#[derive(Clone, Copy)]
enum Tag {
    Path,
    Query,
    Agent,
    Referrer,
    QueryValue,
    ReferrerValue,
}

thread_local! {
    static PATHS_SEEN: RefCell<CleanCache> = RefCell::new(Memo::new(CACHE_SLOTS));
    static QUERIES_SEEN: RefCell<CleanCache> = RefCell::new(Memo::new(CACHE_SLOTS));
    static VALUES_SEEN: RefCell<CleanCache> = RefCell::new(Memo::new(CACHE_SLOTS));
    static AGENTS_SEEN: RefCell<CleanCache> = RefCell::new(Memo::new(CACHE_SLOTS));
    static REFERRERS_SEEN: RefCell<CleanCache> = RefCell::new(Memo::new(CACHE_SLOTS));
    static FLAGGED: RefCell<Memo<Rc<Recorded>>> = RefCell::new(Memo::new(FLAGGED_SLOTS));
}

impl Out {
    /// Adds what a value's inspection recorded as if it ran again here: the same
    /// calls, each finding kept unless its class was already found in its part
    /// (exactly what [`Out::add`] would have done; a class whose finding is skipped
    /// is already in `classes`).
    fn replay(&mut self, rec: &Recorded) {
        self.calls += rec.calls;
        self.classes.insert(rec.classes);
        for f in &rec.findings {
            if !self
                .findings
                .iter()
                .any(|x| x.class == f.class && x.part == f.part)
            {
                self.findings.push(f.clone());
            }
        }
    }
}

/// Runs `inspect` unless `value` is cached as clean or as flagged (whose findings
/// are then replayed); caches the verdict either way. `inspect` runs against an
/// empty [`Out`] and its result is replayed into `out`, which is what running it
/// against `out` does (see [`Out::replay`]).
fn cached_clean(
    cache: &'static LocalKey<RefCell<CleanCache>>,
    max_bytes: usize,
    tag: Tag,
    value: impl AsRef<[u8]>,
    out: &mut Out,
    inspect: impl FnOnce(&mut Out),
) {
    let value = value.as_ref();
    if cache.with_borrow(|c| c.get(0, value).is_some()) {
        return;
    }
    let fits = value.len() <= max_bytes;
    if fits && let Some(rec) = FLAGGED.with_borrow(|m| m.get(tag as u32, value)) {
        out.replay(&rec);
        return;
    }
    let mut fresh = Out::default();
    inspect(&mut fresh);
    if fresh.calls == 0 {
        if fits {
            cache.with_borrow_mut(|c| c.put(0, value, ()));
        }
        return;
    }
    let rec = Recorded {
        classes: fresh.classes,
        calls: fresh.calls,
        findings: fresh.findings.into_boxed_slice(),
    };
    out.replay(&rec);
    if fits && rec.findings.len() <= FLAGGED_MAX_FINDINGS {
        FLAGGED.with_borrow_mut(|m| m.put(tag as u32, value, Rc::new(rec)));
    }
}

/// `id[$ne]=`, `[$regex]`: MongoDB-style operators smuggled in parameter names.
fn nosql_operator(t: &[u8]) -> Option<usize> {
    const OPS: [&[u8]; 12] = [
        b"ne]", b"gt]", b"gte]", b"lt]", b"lte]", b"regex]", b"where]", b"in]", b"nin]",
        b"exists]", b"expr]", b"or]",
    ];
    let mut from = 0;
    while let Some(off) = memchr::memchr(b'$', &t[from..]) {
        let at = from + off;
        from = at + 1;
        if at > 0 && t[at - 1] == b'[' && OPS.iter().any(|op| t[at + 1..].starts_with(op)) {
            return Some(at - 1);
        }
    }
    None
}

/// A parameter (`name=value` in `ctx.1`, `=` at `eq`) whose value names a file of
/// server secrets.
fn secret_file(part: &'static str, ctx: (&Steps, &[u8]), eq: Option<usize>, out: &mut Out) {
    let start = eq.map_or(0, |e| e + 1);
    if let Some((reason, at)) = traversal::secret_file_value(&ctx.1[start..]) {
        out.add(AttackClasses::TRAVERSAL, part, ctx, start + at, reason);
    }
}

/// Splits a raw query into parameters at each `&` that starts a `name=` pair. A piece
/// without `=` after the first (`q='&'`, `q=&#60`, `q=&&id`) is what a client sends
/// when it leaves an `&` of its payload unencoded, so it stays with the parameter
/// before it and the payload is judged as written. Ordinary queries split as usual.
fn parameters(query: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = query;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = memchr::memchr(b'&', rest).unwrap_or(rest.len());
        while end < rest.len() {
            let next = &rest[end + 1..];
            let piece = &next[..memchr::memchr(b'&', next).unwrap_or(next.len())];
            if memchr::memchr(b'=', piece).is_some() {
                break;
            }
            end += 1 + piece.len();
        }
        let param = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        Some(param)
    })
}

/// `a=1=1`: a second `=` inside a value is a comparison worth a look.
fn second_equals(seg: &[u8]) -> bool {
    memchr::memchr(b'=', seg).is_some_and(|e| memchr::memchr(b'=', &seg[e + 1..]).is_some())
}

fn clip(s: &[u8]) -> &[u8] {
    &s[..s.len().min(MAX_VALUE_BYTES)]
}

#[cfg(test)]
mod tests {
    use super::{Classifier, parameters};
    use crate::event::Event;

    /// Flagged values are remembered with their findings; a repeat must come out
    /// exactly as the first sighting did, including which part each finding names and
    /// the one-finding-per-class-and-part rule across parameters and parts.
    #[test]
    fn remembered_flags_replay_exactly() {
        let c = Classifier::new();
        let cases = [
            (
                "/a.php?id=1' or '1'='1&q=1 union select 1,2",
                "sqlmap/1.8",
                "-",
            ),
            (
                "/x?id=1' or '1'='1",
                "Mozilla/5.0",
                "http://h/?id=1' or '1'='1",
            ),
            (
                "/../../etc/passwd?f=../../etc/passwd",
                "() { :; }; /bin/cat /etc/passwd",
                "-",
            ),
            ("/.env", "Nikto", "http://h/?q=<script>alert(1)</script>"),
            (
                "/?x=${jndi:ldap://a/b}&y=${jndi:ldap://a/b}",
                "${jndi:ldap://a/b}",
                "-",
            ),
            ("/index.html", "Mozilla/5.0", "-"),
        ];
        let run = |(url, ua, referrer): (&str, &str, &str)| {
            let mut e = Event {
                user_agent: Some(ua.into()),
                referrer: (referrer != "-").then(|| referrer.into()),
                ..Event::default()
            };
            e.set_url(url);
            c.classify(&mut e);
            (e.attacks, e.findings)
        };
        let first: Vec<_> = cases.iter().map(|&x| run(x)).collect();
        assert!(first.iter().filter(|(a, _)| !a.is_empty()).count() >= 5);
        for _ in 0..2 {
            for (case, want) in cases.iter().zip(&first) {
                assert_eq!(&run(*case), want, "{case:?}");
            }
        }
        // The same flagged query value seen as a referrer's names that part.
        let (_, findings) = run(("/", "curl/8", "http://h/?a=1&id=1' or '1'='1"));
        assert!(!findings.is_empty());
        assert!(
            findings.iter().all(|f| f.part == super::PART_REFERRER),
            "{findings:?}"
        );
    }

    fn split(q: &str) -> Vec<&str> {
        parameters(q.as_bytes())
            .map(|p| std::str::from_utf8(p).unwrap_or("?"))
            .collect()
    }

    #[test]
    fn parameters_split_on_pairs_and_keep_unencoded_ampersands() {
        assert_eq!(split("a=1&b=2"), ["a=1", "b=2"]);
        assert_eq!(split("q='&'"), ["q='&'"]);
        assert_eq!(split("q=&&id&x=1"), ["q=&&id", "x=1"]);
        assert_eq!(split("debug&x=1"), ["debug", "x=1"]);
        assert_eq!(split("q=rock&roll&page=2"), ["q=rock&roll", "page=2"]);
        assert_eq!(split("a=1&"), ["a=1&"]);
        assert_eq!(split(""), Vec::<&str>::new());
    }
}
