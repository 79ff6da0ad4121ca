//! Compiled field tests: one rule selection item (`field|modifiers: values`) becomes
//! a [`FieldTest`], a list of [`Leaf`] tests over one [`FieldRef`].
//!
//! Matching is ASCII case-insensitive unless `|cased` is given (Sigma's default).
//! Plain values with `*`/`?` wildcards become equals/prefix/suffix/contains tests
//! when the wildcards sit only at the ends (Hayabusa's trick) and a linear-time
//! regex otherwise. Several `contains` values of one test are merged into a single
//! Aho-Corasick automaton, so a 30-keyword list costs one scan of the field.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use ipnet::IpNet;
use regex::{Regex, RegexBuilder};
use serde_norway::Value as Yaml;

use super::SigmaError;
use super::fields::{FieldRef, as_ip, as_number, with_text};
use crate::detect::memo::Memo;
use crate::event::{AttackClasses, Event, Field, Value};

/// How a text leaf compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    Equals,
    Prefix,
    Suffix,
    Contains,
}

/// Numeric comparisons (`|gt`, `|gte`, `|lt`, `|lte`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// One compiled value test.
#[derive(Debug, Clone)]
pub enum Leaf {
    /// Text comparison; `needle` is lowercased unless `cased`. `int` is the needle as
    /// a number, so `sc-status: 401` compares numerically with an `Int` field.
    Text {
        op: TextOp,
        needle: Box<str>,
        cased: bool,
        int: Option<i64>,
        ac: Option<AhoCorasick>,
    },
    Regex(Regex),
    Cmp(CmpOp, f64),
    Cidr(IpNet),
    /// `field: null`: absent or empty.
    Null,
    /// `field|exists: true/false`.
    Exists(bool),
    /// `palisade.attack: sqli`.
    Attack(AttackClasses),
}

/// A leaf with the text it was written as (for `rules test` explanations).
#[derive(Debug, Clone)]
pub struct LeafTest {
    pub leaf: Leaf,
    pub shown: String,
}

/// One `field|modifiers: values` item of a selection.
#[derive(Debug, Clone)]
pub struct FieldTest {
    pub field: FieldRef,
    /// The modifiers as written, e.g. `contains|all`.
    pub modifiers: String,
    pub leaves: Vec<LeafTest>,
    /// `|all`: every leaf must match (else any).
    pub all: bool,
    /// Case-insensitive `contains` leaves merged into one automaton (any-mode only);
    /// `rest` indexes the leaves it does not cover.
    merged: Option<Merged>,
    rest: Vec<usize>,
    /// Rough relative cost, used to test cheap items first.
    pub cost: u32,
    /// For `|expand` items: the item key without `expand` and the placeholder name,
    /// so the values can be replaced from the configuration.
    pub placeholder: Option<(String, String)>,
}

/// Placeholders `|expand` understands, with their built-in values. The engine
/// replaces them with the configured lists ([`crate::config::DetectionConfig`]).
pub fn placeholder_default(name: &str) -> Option<Vec<String>> {
    match name {
        "benign_asset_paths" => Some(crate::config::DetectionConfig::default().benign_asset_paths),
        _ => None,
    }
}

impl Leaf {
    /// Whether the present value `v` passes this test.
    #[inline]
    pub fn matches(&self, v: &Value<'_>) -> bool {
        match self {
            Leaf::Text {
                op,
                needle,
                cased,
                int,
                ac,
            } => {
                if let (Value::Int(n), Some(i), TextOp::Equals) = (v, int, op) {
                    return n == i;
                }
                with_text(v, |s| text_matches(*op, needle, *cased, ac.as_ref(), s))
            }
            Leaf::Regex(re) => with_text(v, |s| re.is_match(s)),
            Leaf::Cmp(op, n) => as_number(v).is_some_and(|x| cmp(*op, x, *n)),
            Leaf::Cidr(net) => as_ip(v).is_some_and(|ip| net.contains(&ip)),
            Leaf::Null => matches!(v, Value::Str(s) if s.is_empty()),
            Leaf::Exists(want) => *want,
            Leaf::Attack(_) => false,
        }
    }

    /// Whether this leaf passes when the field is absent.
    fn matches_absent(&self) -> bool {
        matches!(self, Leaf::Null | Leaf::Exists(false))
    }
}

fn cmp(op: CmpOp, x: f64, n: f64) -> bool {
    match op {
        CmpOp::Gt => x > n,
        CmpOp::Gte => x >= n,
        CmpOp::Lt => x < n,
        CmpOp::Lte => x <= n,
    }
}

#[inline]
fn text_matches(op: TextOp, needle: &str, cased: bool, ac: Option<&AhoCorasick>, s: &str) -> bool {
    let (h, n) = (s.as_bytes(), needle.as_bytes());
    let eq = |a: &[u8]| {
        if cased {
            a == n
        } else {
            a.eq_ignore_ascii_case(n)
        }
    };
    match op {
        TextOp::Equals => h.len() == n.len() && eq(h),
        TextOp::Prefix => h.len() >= n.len() && eq(&h[..n.len()]),
        TextOp::Suffix => h.len() >= n.len() && eq(&h[h.len() - n.len()..]),
        TextOp::Contains if cased => memchr::memmem::find(h, n).is_some(),
        TextOp::Contains => with_lower(h, |l| memchr::memmem::find(l, n).is_some())
            .unwrap_or_else(|| ac.is_some_and(|ac| ac.is_match(h))),
    }
}

impl FieldTest {
    /// Whether `ev` passes this item.
    #[inline]
    pub fn matches(&self, ev: &Event) -> bool {
        if self.field.is_attack() {
            return self.attack_matches(ev.attacks);
        }
        let Some(v) = self.field.get(ev) else {
            return self.combine(|l| l.matches_absent());
        };
        if self.all {
            return self.leaves.iter().all(|l| l.leaf.matches(&v));
        }
        if let Some(m) = &self.merged
            && with_text(&v, |s| m.is_match(s))
        {
            return true;
        }
        self.rest.iter().any(|&i| self.leaves[i].leaf.matches(&v))
    }

    fn combine(&self, f: impl Fn(&Leaf) -> bool) -> bool {
        if self.all {
            self.leaves.iter().all(|l| f(&l.leaf))
        } else {
            self.leaves.iter().any(|l| f(&l.leaf))
        }
    }

    fn attack_matches(&self, attacks: AttackClasses) -> bool {
        self.combine(|l| match l {
            Leaf::Attack(c) => attacks.contains(*c),
            Leaf::Exists(want) => attacks.is_empty() != *want,
            Leaf::Null => attacks.is_empty(),
            _ => false,
        })
    }

    /// The leaves that pass for `ev` (for explanations; not on the hot path).
    pub fn matching_leaves(&self, ev: &Event) -> Vec<&LeafTest> {
        let single = |l: &LeafTest| {
            let one = FieldTest {
                leaves: vec![l.clone()],
                all: false,
                merged: None,
                rest: vec![0],
                ..self.clone()
            };
            one.matches(ev)
        };
        self.leaves.iter().filter(|l| single(l)).collect()
    }
}

/// Compiles one `name|mods: value(s)` selection item. An empty name is a keyword
/// search over `event.original`.
pub fn compile_item(key: &str, value: &Yaml) -> Result<FieldTest, SigmaError> {
    let mut parts = key.split('|');
    let name = parts.next().unwrap_or("");
    let mods: Vec<&str> = parts.collect();
    let field = if name.is_empty() {
        FieldRef::Typed(Field::Raw)
    } else {
        FieldRef::resolve(name)
    };
    let opts = Mods::parse(&mods, name.is_empty())?;
    if opts.expand {
        return compile_expand(key, &mods, value);
    }
    let values: Vec<&Yaml> = match value {
        Yaml::Sequence(seq) => seq.iter().collect(),
        other => vec![other],
    };
    if values.is_empty() {
        return Err(SigmaError::rule(format!("`{key}` has an empty value list")));
    }
    let mut leaves = Vec::new();
    for v in values {
        compile_value(&field, &opts, v, &mut leaves)
            .map_err(|e| SigmaError::rule(format!("`{key}`: {e}")))?;
    }
    Ok(FieldTest::new(field, mods.join("|"), leaves, opts.all))
}

/// `field|mods|expand: '%name%'`: compiles the placeholder's built-in values and
/// remembers how to recompile with configured ones.
fn compile_expand(key: &str, mods: &[&str], value: &Yaml) -> Result<FieldTest, SigmaError> {
    let Yaml::String(v) = value else {
        return Err(SigmaError::rule(format!(
            "`{key}`: expand takes one '%placeholder%'"
        )));
    };
    let name = v.trim().trim_matches('%');
    let values = placeholder_default(name).ok_or_else(|| {
        SigmaError::rule(format!(
            "`{key}`: unknown placeholder %{name}% (known: %benign_asset_paths%)"
        ))
    })?;
    let base: Vec<&str> = std::iter::once(key.split('|').next().unwrap_or(""))
        .chain(mods.iter().copied().filter(|m| *m != "expand"))
        .collect();
    let base = base.join("|");
    let mut t = compile_values(&base, &values)?;
    t.placeholder = Some((base, name.to_string()));
    Ok(t)
}

/// Compiles `key` with a list of text values; an empty list matches nothing.
pub fn compile_values(key: &str, values: &[String]) -> Result<FieldTest, SigmaError> {
    if values.is_empty() {
        let field = FieldRef::resolve(key.split('|').next().unwrap_or(""));
        return Ok(FieldTest::new(field, String::new(), Vec::new(), false));
    }
    let seq = Yaml::Sequence(values.iter().map(|v| Yaml::String(v.clone())).collect());
    compile_item(key, &seq)
}

impl FieldTest {
    fn new(field: FieldRef, modifiers: String, leaves: Vec<LeafTest>, all: bool) -> FieldTest {
        // Header values repeat across requests; a verdict memo pays off there.
        let repeats = matches!(field, FieldRef::Typed(Field::UserAgent | Field::Referrer));
        let (merged, rest) = if all {
            (None, (0..leaves.len()).collect())
        } else {
            merge(&leaves, repeats)
        };
        let cost =
            leaves.iter().map(|l| leaf_cost(&l.leaf)).max().unwrap_or(1) + field_cost(&field);
        FieldTest {
            field,
            modifiers,
            leaves,
            all,
            merged,
            rest,
            cost,
            placeholder: None,
        }
    }
}

/// Case-insensitive multi-needle search. Lowercasing the haystack into a stack
/// buffer and running a case-sensitive automaton lets aho-corasick use its SIMD
/// (Teddy) prefilter, which ASCII-case-insensitive automata with many distinct
/// first bytes cannot; measured 3-5x faster on user agents and request lines.
///
/// Two shortcuts keep ordinary events off the automaton: a [`Gate`] of bytes that
/// every needle holds one of (`$`/`%` for JNDI strings; one `memchr` over a line
/// without them settles it), and for fields whose values repeat (user agents,
/// referrers) a per-thread [`Memo`] of verdicts.
#[derive(Debug, Clone)]
pub struct Merged {
    lower: AhoCorasick,
    ci: AhoCorasick,
    gate: Option<Gate>,
    /// Tag in the per-thread verdict memo, for fields whose values repeat.
    memo: Option<u32>,
}

/// Longest value whose verdict the memo keeps.
const MEMO_MAX_BYTES: usize = 512;

thread_local! {
    static VERDICTS: RefCell<Memo<bool>> = RefCell::new(Memo::new(4096));
}

/// Source of memo tags: one per compiled automaton (a clone keeps its tag, which is
/// right: it matches the same needles).
static NEXT_TAG: AtomicU32 = AtomicU32::new(0);

impl Merged {
    fn new(needles: &[&str], repeats: bool) -> Result<Merged, aho_corasick::BuildError> {
        let lowered: Vec<String> = needles.iter().map(|n| n.to_ascii_lowercase()).collect();
        Ok(Merged {
            lower: AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostFirst)
                .build(&lowered)?,
            ci: ci_automaton(needles)?,
            gate: Gate::of(&lowered),
            memo: repeats.then(|| NEXT_TAG.fetch_add(1, Ordering::Relaxed)),
        })
    }

    #[inline]
    pub fn is_match(&self, s: &str) -> bool {
        if self.gate.is_some_and(|g| !g.admits(s.as_bytes())) {
            return false;
        }
        let Some(tag) = self.memo.filter(|_| s.len() <= MEMO_MAX_BYTES) else {
            return self.search(s);
        };
        if let Some(hit) = VERDICTS.with_borrow(|m| m.get(tag, s.as_bytes())) {
            return hit;
        }
        let hit = self.search(s);
        VERDICTS.with_borrow_mut(|m| m.put(tag, s.as_bytes(), hit));
        hit
    }

    fn search(&self, s: &str) -> bool {
        match with_lower(s.as_bytes(), |h| self.lower.is_match(h)) {
            Some(hit) => hit,
            None => self.ci.is_match(s),
        }
    }
}

/// Up to three short letterless strings of which every needle holds at least one
/// (`${` and `%24%7` for the JNDI keywords), so a haystack holding none cannot match.
/// Each starts with a byte that ordinary log text seldom holds; `memchr` finds those
/// and the rest of the string is compared where one turns up, so a line with `%20`
/// in it is settled without the automaton. Strings without ASCII letters are the
/// same in any case, so the raw haystack is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gate {
    /// The strings, each `len[i]` bytes of `strs[i]`; the first bytes are distinct.
    strs: [[u8; Gate::MAX_LEN]; 3],
    lens: [u8; 3],
    n: u8,
}

impl Gate {
    /// Bytes too common in access lines (timestamps, addresses, paths, agents) to
    /// start a gate string.
    const COMMON: &[u8] = b" \t./:-_0123456789\"[]=&?,+();";

    /// Longest gate string kept (a prefix of a longer one is as sound, if less sharp).
    const MAX_LEN: usize = 8;

    fn of(needles: &[String]) -> Option<Gate> {
        let usable = |b: &u8| !b.is_ascii_alphabetic() && !Gate::COMMON.contains(b);
        let mut open: Vec<&[u8]> = needles.iter().map(|n| n.as_bytes()).collect();
        let mut gate = Gate {
            strs: [[0; Gate::MAX_LEN]; 3],
            lens: [0; 3],
            n: 0,
        };
        while !open.is_empty() {
            if gate.n == 3 || open.iter().any(|n| !n.iter().any(usable)) {
                return None;
            }
            // The usable byte held by the most remaining needles (lowest byte on ties).
            let best = (0..=255u8)
                .filter(usable)
                .max_by_key(|b| (open.iter().filter(|n| n.contains(b)).count(), Reverse(*b)))?;
            let (held, rest): (Vec<&[u8]>, Vec<&[u8]>) =
                open.into_iter().partition(|n| n.contains(&best));
            let s = Gate::longest_shared(best, &held);
            let i = usize::from(gate.n);
            gate.strs[i][..s.len()].copy_from_slice(s);
            gate.lens[i] = s.len() as u8;
            gate.n += 1;
            open = rest;
        }
        (gate.n > 0).then_some(gate)
    }

    /// The longest letterless string starting with `first` that every one of `held`
    /// (which all hold `first`) contains; at least `[first]`.
    fn longest_shared<'a>(first: u8, held: &[&'a [u8]]) -> &'a [u8] {
        let one = held[0];
        let mut best: &[u8] = &one[memchr::memchr(first, one).unwrap_or(0)..][..1];
        for (at, _) in one.iter().enumerate().filter(|(_, b)| **b == first) {
            let run = one[at..]
                .iter()
                .take(Gate::MAX_LEN)
                .take_while(|b| !b.is_ascii_alphabetic())
                .count();
            for len in (best.len() + 1..=run).rev() {
                let cand = &one[at..at + len];
                if held.iter().all(|n| memchr::memmem::find(n, cand).is_some()) {
                    best = cand;
                    break;
                }
            }
        }
        best
    }

    fn str(&self, i: usize) -> &[u8] {
        &self.strs[i][..usize::from(self.lens[i])]
    }

    /// Whether `h` holds one of the gate strings.
    #[inline]
    fn admits(&self, h: &[u8]) -> bool {
        let [a, b, c] = [0, 1, 2].map(|i| self.strs[i][0]);
        // A byte loop: the strings are a few bytes long, shorter than a `memcmp` call.
        let holds = |at: usize| {
            (0..usize::from(self.n)).any(|i| {
                let s = self.str(i);
                h.len() - at >= s.len() && s.iter().zip(&h[at..]).all(|(a, b)| a == b)
            })
        };
        match self.n {
            1 => memchr::memchr_iter(a, h).any(holds),
            2 => memchr::memchr2_iter(a, b, h).any(holds),
            _ => memchr::memchr3_iter(a, b, c, h).any(holds),
        }
    }
}

/// Runs `f` on the ASCII-lowercased bytes of `s` when they fit a stack buffer.
#[inline]
fn with_lower<R>(s: &[u8], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    // Most values (paths, agents) are short: a small buffer keeps the zeroing that
    // comes with a stack array from costing more than the lowering itself.
    if s.len() <= 256 {
        return Some(lower_into::<256, R>(s, f));
    }
    if s.len() <= 1024 {
        return Some(lower_into::<1024, R>(s, f));
    }
    None
}

#[inline]
fn lower_into<const N: usize, R>(s: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    let mut buf = [0u8; N];
    for (d, c) in buf.iter_mut().zip(s) {
        *d = c.to_ascii_lowercase();
    }
    f(&buf[..s.len()])
}

/// Merges case-insensitive contains leaves (two or more) into one automaton.
fn merge(leaves: &[LeafTest], repeats: bool) -> (Option<Merged>, Vec<usize>) {
    let is_ci_contains = |l: &Leaf| {
        matches!(
            l,
            Leaf::Text {
                op: TextOp::Contains,
                cased: false,
                ..
            }
        )
    };
    let needles: Vec<&str> = leaves
        .iter()
        .filter_map(|l| match &l.leaf {
            Leaf::Text { needle, .. } if is_ci_contains(&l.leaf) => Some(&**needle),
            _ => None,
        })
        .collect();
    if needles.len() < 2 {
        return (None, (0..leaves.len()).collect());
    }
    let Ok(m) = Merged::new(&needles, repeats) else {
        return (None, (0..leaves.len()).collect());
    };
    let rest = (0..leaves.len())
        .filter(|&i| !is_ci_contains(&leaves[i].leaf))
        .collect();
    (Some(m), rest)
}

fn ci_automaton(needles: &[&str]) -> Result<AhoCorasick, aho_corasick::BuildError> {
    // Standard semantics let `is_match` stop at the first hit; a DFA is the fastest
    // scan and the pattern lists in rules are small.
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(Some(AhoCorasickKind::DFA))
        .build(needles)
}

fn leaf_cost(l: &Leaf) -> u32 {
    match l {
        Leaf::Attack(_) | Leaf::Exists(_) | Leaf::Null => 1,
        Leaf::Cmp(..) | Leaf::Cidr(_) => 2,
        Leaf::Text {
            op: TextOp::Contains,
            ..
        } => 8,
        Leaf::Text { .. } => 3,
        Leaf::Regex(_) => 20,
    }
}

fn field_cost(f: &FieldRef) -> u32 {
    match f {
        FieldRef::Typed(Field::Raw | Field::Message) => 10,
        FieldRef::Typed(_) => 0,
        FieldRef::Extra(_) => 4,
    }
}

/// The modifiers of one item, checked for combinations we support.
#[derive(Debug, Default)]
struct Mods {
    op: Option<TextOp>,
    all: bool,
    cased: bool,
    re: bool,
    re_flags: String,
    cidr: bool,
    exists: bool,
    cmp: Option<CmpOp>,
    windash: bool,
    base64: Option<bool>,
    expand: bool,
}

impl Mods {
    fn parse(mods: &[&str], keyword: bool) -> Result<Mods, SigmaError> {
        let mut m = Mods::default();
        if keyword {
            m.op = Some(TextOp::Contains);
        }
        for &md in mods {
            match md {
                "contains" => m.op = Some(TextOp::Contains),
                "startswith" => m.op = Some(TextOp::Prefix),
                "endswith" => m.op = Some(TextOp::Suffix),
                "all" => m.all = true,
                "cased" => m.cased = true,
                "re" => m.re = true,
                "i" | "m" | "s" if m.re => m.re_flags.push_str(md),
                "cidr" => m.cidr = true,
                "exists" => m.exists = true,
                "gt" => m.cmp = Some(CmpOp::Gt),
                "gte" => m.cmp = Some(CmpOp::Gte),
                "lt" => m.cmp = Some(CmpOp::Lt),
                "lte" => m.cmp = Some(CmpOp::Lte),
                "windash" => m.windash = true,
                "base64" => m.base64 = Some(false),
                "base64offset" => m.base64 = Some(true),
                "expand" => m.expand = true,
                other => {
                    return Err(SigmaError::rule(format!(
                        "modifier `{other}` is not supported (supported: contains, startswith, \
                         endswith, all, cased, re, cidr, exists, gt, gte, lt, lte, windash, \
                         base64, base64offset, expand)"
                    )));
                }
            }
        }
        Ok(m)
    }
}

fn scalar_text(v: &Yaml) -> Result<Option<String>, String> {
    Ok(Some(match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Null => return Ok(None),
        _ => return Err("values must be strings, numbers, booleans or null".into()),
    }))
}

fn compile_value(
    field: &FieldRef,
    m: &Mods,
    v: &Yaml,
    out: &mut Vec<LeafTest>,
) -> Result<(), String> {
    let Some(text) = scalar_text(v)? else {
        out.push(LeafTest {
            leaf: Leaf::Null,
            shown: "null".into(),
        });
        return Ok(());
    };
    let leaf = |leaf: Leaf, shown: String| LeafTest { leaf, shown };
    if m.exists {
        let want = matches!(v, Yaml::Bool(true)) || text.eq_ignore_ascii_case("true");
        out.push(leaf(Leaf::Exists(want), format!("exists {want}")));
    } else if field.is_attack() {
        let class = AttackClasses::from_name(&text)
            .ok_or_else(|| format!("unknown attack class {text:?} (known: sqli, xss, traversal, cmdi, scanner_ua, sensitive_file, jndi, ssti)"))?;
        out.push(leaf(Leaf::Attack(class), format!("attack {text}")));
    } else if let Some(op) = m.cmp {
        let n: f64 = text
            .parse()
            .map_err(|_| format!("{text:?} is not a number"))?;
        out.push(leaf(
            Leaf::Cmp(op, n),
            format!("{op:?} {text}").to_lowercase(),
        ));
    } else if m.cidr {
        let net = parse_cidr(&text)?;
        out.push(leaf(Leaf::Cidr(net), format!("cidr {text}")));
    } else if m.re {
        let re = RegexBuilder::new(&format!("(?{}){text}", flags(&m.re_flags)))
            .size_limit(1 << 22)
            .build()
            .map_err(|e| format!("bad regex {text:?}: {e}"))?;
        out.push(leaf(Leaf::Regex(re), format!("re {text:?}")));
    } else {
        for variant in text_variants(&text, m) {
            let l = compile_pattern(&variant, m.op.unwrap_or(TextOp::Equals), m.cased)?;
            let shown = format!("{} {variant:?}", op_name(m.op));
            out.push(leaf(l, shown));
        }
    }
    Ok(())
}

fn flags(f: &str) -> String {
    // An empty group `(?)` is not valid; `(?u)` is the default anyway.
    if f.is_empty() { "u".into() } else { f.into() }
}

fn op_name(op: Option<TextOp>) -> &'static str {
    match op {
        None | Some(TextOp::Equals) => "equals",
        Some(TextOp::Prefix) => "startswith",
        Some(TextOp::Suffix) => "endswith",
        Some(TextOp::Contains) => "contains",
    }
}

fn parse_cidr(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{text:?} is not a CIDR range"))
}

/// The values a text leaf stands for after `windash` and `base64` expansion.
fn text_variants(text: &str, m: &Mods) -> Vec<String> {
    let mut vs = vec![text.to_string()];
    if m.windash {
        let dashed: Vec<String> = ['/', '–', '—', '―']
            .iter()
            .filter(|_| text.contains('-'))
            .map(|c| text.replace('-', &c.to_string()))
            .collect();
        vs.extend(dashed);
    }
    match m.base64 {
        Some(false) => vs.iter().map(|v| base64(v.as_bytes())).collect(),
        Some(true) => vs
            .iter()
            .flat_map(|v| base64_offsets(v.as_bytes()))
            .collect(),
        None => vs,
    }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The three encodings of `data` at byte offsets 0, 1, 2 with the characters that
/// depend on neighbouring bytes cut off (pySigma's `base64offset`).
fn base64_offsets(data: &[u8]) -> Vec<String> {
    (0..3usize)
        .map(|i| {
            let mut padded = vec![b' '; i];
            padded.extend_from_slice(data);
            let enc = base64(&padded);
            let start = [0, 2, 3][i];
            let end = enc.len() - [0, 3, 2][(data.len() + i) % 3];
            enc.get(start..end).unwrap_or("").to_string()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// A piece of a wildcard pattern.
#[derive(Debug, PartialEq)]
enum Tok {
    Lit(String),
    Star,
    One,
}

fn tokenize(s: &str) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut lit = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('*' | '?' | '\\')) => {
                lit.push(chars.next().unwrap_or('\\'));
            }
            '*' | '?' => {
                if !lit.is_empty() {
                    toks.push(Tok::Lit(std::mem::take(&mut lit)));
                }
                let t = if c == '*' { Tok::Star } else { Tok::One };
                if !(t == Tok::Star && toks.last() == Some(&Tok::Star)) {
                    toks.push(t);
                }
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        toks.push(Tok::Lit(lit));
    }
    toks
}

/// Compiles a value with Sigma wildcards under a text modifier.
fn compile_pattern(value: &str, op: TextOp, cased: bool) -> Result<Leaf, String> {
    let mut toks = tokenize(value);
    if matches!(op, TextOp::Contains | TextOp::Suffix) && toks.first() != Some(&Tok::Star) {
        toks.insert(0, Tok::Star);
    }
    if matches!(op, TextOp::Contains | TextOp::Prefix) && toks.last() != Some(&Tok::Star) {
        toks.push(Tok::Star);
    }
    let star_front = toks.first() == Some(&Tok::Star);
    let star_back = toks.len() > 1 && toks.last() == Some(&Tok::Star);
    let inner = &toks[usize::from(star_front)..toks.len() - usize::from(star_back)];
    match inner {
        [] => Ok(text_leaf(TextOp::Contains, "", cased)),
        [Tok::Lit(s)] => {
            let op = match (star_front, star_back) {
                (false, false) => TextOp::Equals,
                (false, true) => TextOp::Prefix,
                (true, false) => TextOp::Suffix,
                (true, true) => TextOp::Contains,
            };
            Ok(text_leaf(op, s, cased))
        }
        _ => wildcard_regex(&toks, cased),
    }
}

fn text_leaf(op: TextOp, s: &str, cased: bool) -> Leaf {
    let needle: Box<str> = if cased {
        s.into()
    } else {
        s.to_ascii_lowercase().into()
    };
    let ac = (op == TextOp::Contains && !cased && !needle.is_empty())
        .then(|| ci_automaton(&[&needle]).ok())
        .flatten();
    Leaf::Text {
        op,
        int: (op == TextOp::Equals).then(|| s.parse().ok()).flatten(),
        needle,
        cased,
        ac,
    }
}

fn wildcard_regex(toks: &[Tok], cased: bool) -> Result<Leaf, String> {
    let mut pat = String::from(if cased { "(?s)^" } else { "(?si)^" });
    for t in toks {
        match t {
            Tok::Lit(s) => pat.push_str(&regex::escape(s)),
            Tok::Star => pat.push_str(".*"),
            Tok::One => pat.push('.'),
        }
    }
    pat.push('$');
    RegexBuilder::new(&pat)
        .size_limit(1 << 22)
        .build()
        .map(Leaf::Regex)
        .map_err(|e| format!("wildcard pattern did not compile: {e}"))
}

impl fmt::Display for LeafTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, yaml: &str) -> FieldTest {
        compile_item(key, &serde_norway::from_str(yaml).unwrap()).unwrap()
    }

    fn access(ua: &str, url: &str, status: u16) -> Event {
        let mut e = Event {
            user_agent: Some(ua.into()),
            status: Some(status),
            source_ip: Some("192.0.2.9".parse().unwrap()),
            ..Event::default()
        };
        e.set_url(url);
        e
    }

    #[test]
    fn wildcards_become_cheap_text_tests() {
        for (pat, op) in [
            ("abc", TextOp::Equals),
            ("abc*", TextOp::Prefix),
            ("*abc", TextOp::Suffix),
            ("*abc*", TextOp::Contains),
        ] {
            match compile_pattern(pat, TextOp::Equals, false).unwrap() {
                Leaf::Text { op: got, .. } => assert_eq!(got, op, "{pat}"),
                other => panic!("{pat} compiled to {other:?}"),
            }
        }
        assert!(matches!(
            compile_pattern("a*b", TextOp::Equals, false),
            Ok(Leaf::Regex(_))
        ));
        assert!(matches!(
            compile_pattern("a?", TextOp::Equals, false),
            Ok(Leaf::Regex(_))
        ));
    }

    #[test]
    fn inner_wildcards_and_escapes_match_like_sigma() {
        let t = item("url.path", "'/api/*/login?'");
        assert!(t.matches(&access("-", "/api/v1/login2", 200)));
        assert!(!t.matches(&access("-", "/api/v1/login", 200)));
        let lit = item("url.path", r"'/a\*b'");
        assert!(lit.matches(&access("-", "/a*b", 200)));
        assert!(!lit.matches(&access("-", "/axxb", 200)));
    }

    #[test]
    fn matching_ignores_case_unless_cased() {
        let t = item("user_agent.original|contains", "['sqlmap/', 'Nikto']");
        assert!(t.matches(&access("SQLMAP/1.8", "/", 200)));
        assert!(t.matches(&access("Mozilla (nikto)", "/", 200)));
        let c = item("user_agent.original|contains|cased", "'Nikto'");
        assert!(!c.matches(&access("nikto", "/", 200)));
        assert!(c.matches(&access("xNikto", "/", 200)));
    }

    #[test]
    fn contains_all_needs_every_value() {
        let t = item("url.query|contains|all", "['lng=', 'ver=']");
        assert!(t.matches(&access("-", "/u?lng=en&ver=2", 200)));
        assert!(!t.matches(&access("-", "/u?lng=en", 200)));
    }

    #[test]
    fn status_compares_numerically_and_by_range() {
        assert!(item("sc-status", "401").matches(&access("-", "/", 401)));
        assert!(item("sc-status", "'401'").matches(&access("-", "/", 401)));
        assert!(!item("sc-status", "[403, 404]").matches(&access("-", "/", 401)));
        assert!(item("sc-status|gte", "400").matches(&access("-", "/", 404)));
        assert!(!item("sc-status|lt", "400").matches(&access("-", "/", 404)));
        assert!(item("sc-status", "'40*'").matches(&access("-", "/", 404)));
    }

    #[test]
    fn cidr_exists_null_and_regex() {
        let e = access("", "/x", 200);
        assert!(item("c-ip|cidr", "'192.0.2.0/24'").matches(&e));
        assert!(!item("c-ip|cidr", "'10.0.0.0/8'").matches(&e));
        assert!(item("user.name|exists", "false").matches(&e));
        assert!(!item("user.name|exists", "true").matches(&e));
        assert!(item("cs-user-agent", "null").matches(&e));
        assert!(item("cs-referer", "null").matches(&e));
        assert!(item("url.original|re", "'^/x$'").matches(&e));
        assert!(!item("url.original|re", "'^/X$'").matches(&e));
        assert!(item("url.original|re|i", "'^/X$'").matches(&e));
    }

    #[test]
    fn attack_classes_match_by_name() {
        let mut e = access("-", "/", 200);
        let t = item("palisade.attack", "sqli");
        assert!(!t.matches(&e));
        e.attacks.insert(AttackClasses::SQLI);
        assert!(t.matches(&e));
        assert!(compile_item("palisade.attack", &Yaml::String("nope".into())).is_err());
    }

    #[test]
    fn keywords_search_the_raw_line() {
        let mut e = access("-", "/", 200);
        e.raw = "GET /x?a=${JNDI:ldap://h/a} HTTP/1.1".into();
        assert!(item("", "['${jndi:']").matches(&e));
        assert!(!item("", "['union select']").matches(&e));
    }

    #[test]
    fn base64_encodings_match_pysigma() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(
            base64_offsets(b"/bin/sh"),
            vec!["L2Jpbi9za", "9iaW4vc2", "vYmluL3No"]
        );
    }

    #[test]
    fn gates_pick_rare_letterless_strings_every_needle_holds() {
        let g = |ns: &[&str]| Gate::of(&ns.iter().map(|n| n.to_string()).collect::<Vec<_>>());
        let jndi = g(&["${jndi:", "%24%7bjndi:", "${${lower:j}", "%24%7bjndi%3a"]).unwrap();
        let strs: Vec<&[u8]> = (0..usize::from(jndi.n)).map(|i| jndi.str(i)).collect();
        assert_eq!(strs, [&b"${"[..], b"%24%7"]);
        assert!(!jndi.admits(b"GET /a?b=1 HTTP/1.1"));
        assert!(
            !jndi.admits(b"GET /a?b=%20$x%24 HTTP/1.1"),
            "no gate string"
        );
        assert!(jndi.admits(b"GET /a?b=%24%7Bjndi HTTP/1.1"));
        assert!(jndi.admits(b"GET /a?b=%24%7bjndi HTTP/1.1"));
        assert!(jndi.admits(b"x$%24%7"), "a string at the very end");
        assert!(jndi.admits(b"$$${"));
        assert!(!jndi.admits(b"$"));
        let one = g(&["<scr", "<ifr"]).unwrap();
        assert_eq!(one.str(0), b"<", "letters stop a gate string");
        let long = g(&["x%%%%%%%%%%%%"]).unwrap();
        assert_eq!(long.str(0).len(), Gate::MAX_LEN);
        assert_eq!(g(&["sqlmap", "${jndi:"]), None, "a needle of letters only");
        assert_eq!(g(&["a:b", "c.d"]), None, "only common bytes");
        assert_eq!(g(&["<a", ">b", "|c", "`d"]), None, "more than three bytes");
    }

    #[test]
    fn gated_and_memoised_contains_match_like_plain_search() {
        let jndi = item("|contains", "['${jndi:', '%24%7Bjndi:']");
        let ua = item(
            "user_agent.original|contains",
            "['sqlmap', 'Nikto', 'nmap scripting engine']",
        );
        for (agent, line, want_ua, want_raw) in [
            ("Mozilla/5.0 Nikto", "GET /?x=${JNDI:ldap://a}", true, true),
            ("Mozilla/5.0", "GET /?x=%24%7bjndi:ldap", false, true),
            ("Mozilla/5.0", "GET /$x%y", false, false),
            ("Mozilla/5.0 NIKTO", "GET /", true, false),
            ("Mozilla/5.0 Nikto", "GET /", true, false),
        ] {
            let mut e = access(agent, "/", 200);
            e.raw = line.into();
            for _ in 0..2 {
                assert_eq!(ua.matches(&e), want_ua, "{agent}");
                assert_eq!(jndi.matches(&e), want_raw, "{line}");
            }
        }
    }

    #[test]
    fn gated_keywords_agree_with_a_plain_search() {
        let needles = [
            "${jndi:",
            "%24%7Bjndi:",
            "%24%7bjndi%3a",
            "${${lower:j}",
            "${${::-j}",
            "${${env:",
        ];
        let list = format!("['{}']", needles.join("', '"));
        let t = item("", &list);
        let plain = |h: &str| {
            let h = h.to_ascii_lowercase();
            needles.iter().any(|n| h.contains(&n.to_ascii_lowercase()))
        };
        let pieces = [
            "GET /a?q=%20x HTTP/1.1",
            "%24%7Bjndi:ldap",
            "%24%7bJNDI%3A",
            "%24%7BJndi%3a",
            "%24%7b",
            "%24%7Cjndi:",
            "$%7Bjndi:",
            "${JNDI:rmi",
            "${${LOWER:j}",
            "${${::-J}",
            "$ {jndi:",
            "%%24%7bjndi:",
            "$${${env:X}",
            "100%",
            "$",
        ];
        let pad = "x".repeat(1100);
        for a in pieces {
            for b in pieces {
                for h in [
                    format!("{a}{b}"),
                    format!("{a} {b}"),
                    format!("{pad}{a}{b}"),
                    format!("{a}{pad}{b}"),
                ] {
                    let mut e = access("-", "/", 200);
                    e.raw = h.clone();
                    assert_eq!(t.matches(&e), plain(&h), "{h:.80}");
                }
            }
        }
    }

    #[test]
    fn unknown_modifier_is_an_error_naming_it() {
        let err = compile_item("a|utf16le", &Yaml::String("x".into())).unwrap_err();
        assert!(err.to_string().contains("utf16le"), "{err}");
    }
}
