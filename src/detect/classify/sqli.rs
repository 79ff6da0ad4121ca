//! SQL injection: a libinjection-style tokenizer plus structural rules.
//!
//! The decoded, case-folded value is tokenized three times, as libinjection does: as
//! written, and as if it started inside a `'` or `"` string (the usual injection point
//! `id='<here>'`). Rules then look for structure, not words: a string broken out of
//! and followed by logic or a comment, `union select`, quote-less comparisons
//! (`1 or 1=1`, `2>1 xor`), stacked statements, time/error-based functions, schema
//! tables, casts and hex/char encodings. Plain English with SQL words (`insert or
//! update table`, `how to select a union rep`) has none of that structure.

/// Token kinds; words are classified so rules can match on meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// A quoted string; `closed` says whether its closing quote was seen.
    Str {
        closed: bool,
    },
    Num,
    /// A plain identifier or word that is not a keyword.
    Word,
    /// A SQL keyword (`select`, `union`, `from`, …).
    Kw(Kw),
    /// A word immediately followed by `(`.
    Func(FnClass),
    /// `and`, `or`, `xor`, `&&`, `||`, `not`.
    Logic,
    /// Comparison symbols: `=`, `<`, `>`, `<>`, `!=`.
    Cmp,
    /// Arithmetic/other operator (`+ - * / % | & ^ ~`).
    Op,
    /// `::` (PostgreSQL cast) and `->`, `->>` (JSON operators).
    PgOp,
    /// `@var` / `@@version`; `system` for `@@`.
    Var {
        system: bool,
    },
    LParen,
    RParen,
    Comma,
    Semi,
    Dot,
    /// A comment that runs to the end (`--`, `#`, unterminated `/*`); `short` when it
    /// holds at most a few bytes (`--`, `-- -`, `#`), as injected terminators do.
    Comment {
        short: bool,
    },
    /// `like`, `rlike`, `regexp`, `is`, `in`, `between`, … (weaker than symbols).
    CmpWord,
}

/// How telling a function call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FnClass {
    /// Any other name followed by `(`.
    Plain,
    /// A SQL function (`concat`, `char`, `version`, …): telling with other SQL around.
    Sql,
    /// Only attacks call it (`sleep`, `extractvalue`, `load_file`, …).
    Decisive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    Union,
    Select,
    From,
    Where,
    Insert,
    Update,
    Delete,
    Drop,
    Create,
    Alter,
    Exec,
    Declare,
    Shutdown,
    Waitfor,
    Delay,
    OrderGroup,
    By,
    Having,
    Into,
    Outfile,
    AllDistinct,
    Null,
    Bool,
    Case,
    Limit,
    Schema,
    /// `values` (kept a keyword even before `(`).
    Values,
    /// `immediate` (`execute immediate`).
    Immediate,
    Other,
}

const MAX_TOKENS: usize = 64;

fn keyword(w: &[u8]) -> Option<Tok> {
    let kw = match w {
        b"union" | b"except" | b"intersect" => Kw::Union,
        b"select" => Kw::Select,
        b"from" => Kw::From,
        b"where" => Kw::Where,
        b"insert" | b"replace" => Kw::Insert,
        b"update" => Kw::Update,
        b"delete" => Kw::Delete,
        b"drop" | b"truncate" => Kw::Drop,
        b"create" | b"grant" | b"revoke" => Kw::Create,
        b"alter" | b"rename" => Kw::Alter,
        b"exec" | b"execute" => Kw::Exec,
        b"declare" => Kw::Declare,
        b"shutdown" => Kw::Shutdown,
        b"waitfor" => Kw::Waitfor,
        b"delay" | b"time" => Kw::Delay,
        b"order" | b"group" => Kw::OrderGroup,
        b"by" => Kw::By,
        b"having" => Kw::Having,
        b"into" => Kw::Into,
        b"outfile" | b"dumpfile" => Kw::Outfile,
        b"all" | b"distinct" => Kw::AllDistinct,
        b"null" => Kw::Null,
        b"true" | b"false" => Kw::Bool,
        b"case" | b"when" | b"then" | b"else" | b"end" => Kw::Case,
        b"limit" | b"offset" | b"procedure" | b"analyse" => Kw::Limit,
        b"information_schema"
        | b"sysobjects"
        | b"syscolumns"
        | b"sqlite_master"
        | b"pg_catalog"
        | b"pg_shadow"
        | b"pg_user"
        | b"mysql"
        | b"all_tables"
        | b"user_tables"
        | b"sys"
        | b"master"
        | b"msysobjects"
        | b"dual" => Kw::Schema,
        b"values" => Kw::Values,
        b"immediate" => Kw::Immediate,
        b"table" | b"set" | b"as" | b"on" | b"join" | b"top" | b"asc" | b"desc" | b"cast"
        | b"convert" | b"char" | b"nchar" | b"varchar" | b"int" | b"integer" | b"text"
        | b"current_user" | b"version" | b"database" | b"user" | b"pg_sleep" => Kw::Other,
        b"and" | b"or" | b"xor" => return Some(Tok::Logic),
        b"div" | b"mod" => return Some(Tok::Op),
        b"like" | b"rlike" | b"regexp" | b"is" | b"in" | b"between" | b"sounds" | b"glob"
        | b"match" | b"against" | b"collate" | b"escape" => {
            return Some(Tok::CmpWord);
        }
        _ => return None,
    };
    Some(Tok::Kw(kw))
}

/// SQL functions that injected expressions use (string slicing, casts, info).
fn sql_function(w: &[u8]) -> bool {
    const STRONG: &[&[u8]] = &[
        b"sleep",
        b"benchmark",
        b"pg_sleep",
        b"extractvalue",
        b"updatexml",
        b"load_file",
        b"group_concat",
        b"concat_ws",
        b"xp_cmdshell",
        b"randomblob",
        b"name_const",
        b"utl_inaddr.get_host_address",
        b"utl_http.request",
        b"dbms_pipe.receive_message",
        b"dbms_lock.sleep",
        b"sys_eval",
        b"sys_exec",
        b"pg_read_file",
        b"lo_import",
        b"geometrycollection",
        b"multipoint",
        b"polygon",
        b"linestring",
        b"multipolygon",
        b"gtid_subset",
        b"json_keys",
        b"exp",
        b"floor",
        b"rand",
        b"ctxsys.drithsx.sn",
        b"dbms_xmlgen.getxml",
        b"xmltype",
        b"make_set",
        b"elt",
        b"substring_index",
        b"unhex",
        b"load_extension",
        b"pg_ls_dir",
        b"master..xp_dirtree",
        b"xp_dirtree",
        b"openrowset",
        b"opendatasource",
        b"current_database",
        b"sqlite_version",
        b"@@version",
        b"user_name",
        b"db_name",
        b"schema_name",
        b"system_user",
        b"session_user",
        b"current_user",
        b"iif",
        b"ifnull",
        b"nullif",
        b"if",
        b"ascii",
        b"ord",
        b"mid",
        b"substr",
        b"substring",
        b"char",
        b"chr",
        b"nchar",
        b"concat",
        b"version",
        b"database",
        b"user",
        b"length",
        b"count",
        b"hex",
        b"cast",
        b"convert",
        b"md5",
        b"sha1",
        b"encode",
        b"decode",
        b"instr",
        b"lpad",
        b"rpad",
        b"left",
        b"right",
        b"reverse",
        b"coalesce",
        b"char_length",
        b"json_extract",
        b"json_search",
        b"json_array",
        b"json_object",
        b"json_keys",
        b"jsonb_path_query",
        b"starts_with",
        b"div",
    ];
    STRONG.contains(&w)
}

/// Functions that alone are enough: delays, error-based extraction, file access,
/// out-of-band requests — no ordinary text calls them.
fn decisive_function(w: &[u8]) -> bool {
    const DECISIVE: &[&[u8]] = &[
        b"sleep",
        b"benchmark",
        b"pg_sleep",
        b"extractvalue",
        b"updatexml",
        b"load_file",
        b"group_concat",
        b"xp_cmdshell",
        b"name_const",
        b"utl_inaddr.get_host_address",
        b"utl_http.request",
        b"dbms_pipe.receive_message",
        b"dbms_lock.sleep",
        b"sys_eval",
        b"sys_exec",
        b"pg_read_file",
        b"lo_import",
        b"gtid_subset",
        b"ctxsys.drithsx.sn",
        b"dbms_xmlgen.getxml",
        b"xp_dirtree",
        b"master..xp_dirtree",
        b"openrowset",
        b"opendatasource",
        b"load_extension",
        b"pg_ls_dir",
        b"randomblob",
        b"concat_ws",
        b"make_set",
        b"lo_get",
        b"lo_export",
        b"lo_from_bytea",
    ];
    DECISIVE.contains(&w)
}

/// Stored procedures and functions that are telling even without `(` (T-SQL calls
/// them without parentheses: `exec xp_cmdshell 'dir'`).
fn decisive_word(w: &[u8]) -> bool {
    const WORDS: &[&[u8]] = &[
        b"xp_cmdshell",
        b"sp_executesql",
        b"sp_oacreate",
        b"sp_oamethod",
        b"sp_makewebtask",
        b"sp_addextendedproc",
        b"xp_regread",
        b"xp_regwrite",
        b"xp_dirtree",
        b"xp_fileexist",
        b"pg_sleep",
        b"dbms_pipe.receive_message",
        b"dbms_lock.sleep",
        b"utl_http.request",
    ];
    WORDS.contains(&w)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Tokenizer state; `comment_evasion` records inline `/**/` and `/*!…*/` padding.
struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    toks: Vec<Tok>,
    comment_evasion: bool,
}

impl<'a> Lexer<'a> {
    fn run(s: &'a [u8], start_in: Option<u8>) -> (Vec<Tok>, bool) {
        let mut lx = Lexer {
            s,
            i: 0,
            toks: Vec::with_capacity(16),
            comment_evasion: false,
        };
        if let Some(q) = start_in {
            lx.string(q);
        }
        while lx.i < lx.s.len() && lx.toks.len() < MAX_TOKENS {
            lx.step();
        }
        (lx.toks, lx.comment_evasion)
    }

    fn peek(&self, k: usize) -> u8 {
        self.s.get(self.i + k).copied().unwrap_or(0)
    }

    fn push(&mut self, t: Tok, len: usize) {
        self.toks.push(t);
        self.i += len;
    }

    fn step(&mut self) {
        let b = self.peek(0);
        match b {
            b' ' | b'\n' => self.i += 1,
            b'\'' | b'"' | b'`' => {
                self.i += 1;
                self.string(b);
            }
            b'0'..=b'9' => self.number(),
            b'.' if self.peek(1).is_ascii_digit() => self.number(),
            b'/' if self.peek(1) == b'*' => self.block_comment(),
            b'-' if self.peek(1) == b'-' => self.line_comment(),
            b'#' if self.peek(1) == b'>' => {
                let len = if self.peek(2) == b'>' { 3 } else { 2 };
                self.push(Tok::PgOp, len)
            }
            b'#' => self.line_comment(),
            // PostgreSQL containment and key-existence operators: `@>`, `<@`, `?|`, `?&`.
            b'@' if matches!(self.peek(1), b'>' | b' ') => self.push(Tok::PgOp, 2),
            b'<' if self.peek(1) == b'@' => self.push(Tok::PgOp, 2),
            b'?' if matches!(self.peek(1), b'|' | b'&') => self.push(Tok::PgOp, 2),
            b'?' if self.peek(1) == b' ' && self.i > 0 && self.s[self.i - 1] == b' ' => {
                self.push(Tok::PgOp, 1)
            }
            b'@' => self.variable(),
            // A lone `!` is negation or punctuation (`having pain!`), not a comparison.
            b'!' if self.peek(1) != b'=' => self.push(Tok::Op, 1),
            b'(' => self.push(Tok::LParen, 1),
            b')' => self.push(Tok::RParen, 1),
            b',' => self.push(Tok::Comma, 1),
            b';' => self.push(Tok::Semi, 1),
            b'.' => self.push(Tok::Dot, 1),
            b':' if self.peek(1) == b':' => self.push(Tok::PgOp, 2),
            b'-' if self.peek(1) == b'>' => {
                let len = if self.peek(2) == b'>' { 3 } else { 2 };
                self.push(Tok::PgOp, len)
            }
            b'=' | b'<' | b'>' | b'!' => self.compare(),
            b'|' if self.peek(1) == b'|' => self.push(Tok::Logic, 2),
            b'&' if self.peek(1) == b'&' => self.push(Tok::Logic, 2),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'|' | b'&' | b'^' | b'~' => self.push(Tok::Op, 1),
            _ if is_word_byte(b) => self.word(),
            _ => self.i += 1,
        }
    }

    fn string(&mut self, q: u8) {
        let rest = &self.s[self.i..];
        let mut j = 0;
        while j < rest.len() {
            if rest[j] == b'\\' {
                j += 2;
                continue;
            }
            if rest[j] == q {
                if rest.get(j + 1) == Some(&q) {
                    j += 2;
                    continue;
                }
                self.push(Tok::Str { closed: true }, j + 1);
                return;
            }
            j += 1;
        }
        self.push(Tok::Str { closed: false }, rest.len());
    }

    fn number(&mut self) {
        let rest = &self.s[self.i..];
        let mut j = 0;
        if rest.len() > 2 && rest[0] == b'0' && (rest[1] == b'x' || rest[1] == b'b') {
            j = 2;
        }
        while j < rest.len() && (rest[j].is_ascii_alphanumeric() || rest[j] == b'.') {
            j += 1;
        }
        let tok = if rest[..j]
            .iter()
            .all(|b| b.is_ascii_hexdigit() || matches!(b, b'.' | b'x'))
            || rest[..j].iter().filter(|b| b.is_ascii_alphabetic()).count() <= 1
        {
            Tok::Num
        } else {
            Tok::Word
        };
        self.push(tok, j.max(1));
    }

    fn block_comment(&mut self) {
        let rest = &self.s[self.i..];
        match memchr::memmem::find(&rest[2..], b"*/") {
            Some(end) => {
                // `/*!50000select*/` is executed by MySQL: keep its body, drop the markers.
                if rest.get(2) == Some(&b'!') {
                    let digits = rest[3..].iter().take_while(|b| b.is_ascii_digit()).count();
                    self.i += 3 + digits;
                    self.comment_evasion = true;
                    return;
                }
                self.i += end + 4;
                self.comment_evasion = true;
            }
            None => self.push(
                Tok::Comment {
                    short: rest.len() <= 4,
                },
                rest.len(),
            ),
        }
    }

    fn line_comment(&mut self) {
        let rest = &self.s[self.i..];
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        self.push(Tok::Comment { short: end <= 4 }, end);
    }

    fn variable(&mut self) {
        let rest = &self.s[self.i..];
        let system = rest.get(1) == Some(&b'@');
        let start = if system { 2 } else { 1 };
        let n = rest[start..]
            .iter()
            .take_while(|b| is_word_byte(**b))
            .count();
        self.push(
            Tok::Var {
                system: system && n > 0,
            },
            start + n,
        );
    }

    fn compare(&mut self) {
        let rest = &self.s[self.i..];
        let n = rest
            .iter()
            .take(3)
            .take_while(|b| matches!(b, b'=' | b'<' | b'>' | b'!'))
            .count();
        self.push(Tok::Cmp, n);
    }

    fn word(&mut self) {
        let rest = &self.s[self.i..];
        let mut n = rest.iter().take_while(|b| is_word_byte(**b)).count();
        // Dotted names such as `utl_inaddr.get_host_address` are one function name.
        while rest.get(n) == Some(&b'.')
            && rest
                .get(n + 1)
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        {
            n += 1 + rest[n + 1..]
                .iter()
                .take_while(|b| is_word_byte(**b))
                .count();
        }
        let w = &rest[..n];
        let mut after = n;
        while matches!(rest.get(after), Some(b' ' | b'\n')) {
            after += 1;
        }
        let kw = keyword(w);
        let tok = if decisive_word(w) {
            Tok::Func(FnClass::Decisive)
        } else if rest.get(after) == Some(&b'(')
            && !matches!(kw, Some(Tok::Logic | Tok::CmpWord | Tok::Kw(Kw::Values)))
        {
            Tok::Func(if decisive_function(w) {
                FnClass::Decisive
            } else if sql_function(w) {
                FnClass::Sql
            } else {
                FnClass::Plain
            })
        } else if let Some(t) = kw {
            t
        } else {
            Tok::Word
        };
        self.push(tok, n);
    }
}

/// Why a value was judged SQL injection.
pub type Reason = &'static str;

/// Classifies one decoded, case-folded value. Returns the reason when it is SQLi.
pub fn detect(v: &[u8]) -> Option<Reason> {
    if v.len() < 3 {
        return None;
    }
    if let Some(r) = analyse(v, None) {
        return Some(r);
    }
    for q in [b'\'', b'"'] {
        if memchr::memchr(q, v).is_some()
            && let Some(r) = analyse(v, Some(q))
        {
            return Some(r);
        }
    }
    None
}

fn analyse(v: &[u8], start_in: Option<u8>) -> Option<Reason> {
    let (toks, evasion) = Lexer::run(v, start_in);
    if toks.is_empty() {
        return None;
    }
    if let Some(q) = start_in {
        // `'-'`, `'^'`, `"*"`: the value closes the string, adds an operator and
        // re-opens it for the application's own closing quote (`name=''-''`), turning the
        // comparison into arithmetic that matches rows.
        let joined = matches!(
            toks[..],
            [
                Tok::Str { closed: true },
                Tok::Op,
                Tok::Str { closed: false }
            ]
        );
        if joined && v.trim_ascii_end().last() == Some(&q) {
            return Some("string closed, joined by operator to a re-opened string");
        }
        return quote_break(&toks);
    }
    leading(&toks, v).or_else(|| structural(&toks, evasion))
}

/// Catalogs only database internals are named after; a value that is just one of them
/// is a probe (`?table=pg_catalog`). Generic names (`mysql`, `sys`, `master`) are not.
fn catalog_name(v: &[u8]) -> bool {
    const CATALOGS: &[&[u8]] = &[
        b"information_schema",
        b"pg_catalog",
        b"pg_shadow",
        b"sysobjects",
        b"syscolumns",
        b"sqlite_master",
        b"msysobjects",
    ];
    CATALOGS.contains(&v.trim_ascii())
}

/// Shapes that only count at the start of a value, where an injected fragment begins:
/// `;drop …`, `or 88`, `like null`, `1=1`, `drop t;--`.
fn leading(toks: &[Tok], v: &[u8]) -> Option<Reason> {
    let first = toks[0];
    let second = toks.get(1).copied();
    let third = toks.get(2).copied();
    let last = toks[toks.len() - 1];
    match first {
        Tok::Semi if second.is_some_and(statement_start) => {
            return Some("value starts a stacked statement");
        }
        Tok::Logic
            if second.is_some_and(|t| matches!(t, Tok::Num | Tok::Str { .. }))
                && matches!(third, None | Some(Tok::Cmp | Tok::Op | Tok::Comment { .. })) =>
        {
            return Some("value starts with boolean operator and constant");
        }
        Tok::Logic if matches!(second, Some(Tok::Func(FnClass::Sql | FnClass::Decisive))) => {
            return Some("value starts with boolean operator and SQL function");
        }
        Tok::CmpWord if matches!(second, Some(Tok::Kw(Kw::Null) | Tok::Str { closed: false })) => {
            return Some("value starts with comparison operator");
        }
        _ if statement_start(first)
            && toks.len() >= 3
            && matches!(last, Tok::Semi | Tok::Comment { short: true }) =>
        {
            return Some("statement ended by terminator or comment");
        }
        Tok::Kw(Kw::Schema) if toks.len() == 1 && catalog_name(v) => {
            return Some("database catalog name");
        }
        _ => {}
    }
    // `something like '`: a comparison left open for the application's closing quote.
    let dangling = matches!(v.trim_ascii_end().last(), Some(b'\'' | b'"'));
    if dangling && matches!(toks, [.., Tok::CmpWord, Tok::Str { closed: false }]) {
        return Some("comparison with a dangling quote");
    }
    // Constant comparisons with nothing else around: `1=1`, `b,1=1`, `11!=1`, `1 is not 2`.
    let tail = &toks[toks.len().saturating_sub(4)..];
    let constant_cmp = matches!(tail, [.., Tok::Num, Tok::Cmp, Tok::Num])
        || matches!(tail, [Tok::Num, Tok::CmpWord, Tok::Word, Tok::Num]);
    (toks.len() <= 5 && constant_cmp && tautology_text(v)).then_some("constant tautology")
}

/// Evaluates a trailing `<int> <op> <int>` where the operator is an (in)equality:
/// true only for tautologies (`1=1`, `11!=1`, `1 is not 2`). Ordering (`123<456`) is
/// how ranges and filters are written, and false comparisons (`11!=11`) prove nothing.
fn tautology_text(v: &[u8]) -> bool {
    let v = v.trim_ascii();
    let v = v.rsplit(|b| *b == b',').next().unwrap_or(v);
    let lead = v.iter().take_while(|b| b.is_ascii_digit()).count();
    let trail = v.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if lead == 0 || trail == 0 || lead + trail >= v.len() {
        return false;
    }
    let (a, b) = (&v[..lead], &v[v.len() - trail..]);
    let op = v[lead..v.len() - trail].trim_ascii();
    let equal = a.trim_ascii_start() == b;
    let same = |x: &[u8]| {
        x.iter()
            .skip_while(|c| **c == b'0')
            .eq(b.iter().skip_while(|c| **c == b'0'))
    };
    let equal = equal || same(a);
    match op {
        b"=" | b"==" | b"<=>" => equal,
        b"!=" | b"<>" | b"is not" => !equal,
        _ => false,
    }
}

fn is_operand(t: Tok) -> bool {
    matches!(
        t,
        Tok::Num
            | Tok::Str { .. }
            | Tok::Word
            | Tok::Var { .. }
            | Tok::Kw(Kw::Null | Kw::Bool)
            | Tok::Func(_)
            | Tok::LParen
    )
}

fn is_value(t: Tok) -> bool {
    matches!(
        t,
        Tok::Num | Tok::Str { .. } | Tok::Var { .. } | Tok::Kw(Kw::Null | Kw::Bool)
    )
}

/// After an implied opening quote: the value closed the string and continued as SQL.
fn quote_break(toks: &[Tok]) -> Option<Reason> {
    if toks.first() != Some(&Tok::Str { closed: true }) || toks.len() < 2 {
        return None;
    }
    let mut k = 1;
    while toks.get(k) == Some(&Tok::RParen) {
        k += 1;
    }
    let next = *toks.get(k)?;
    let after = toks.get(k + 1).copied();
    match next {
        Tok::Comment { short: true } if k + 1 == toks.len() => Some("string closed, then comment"),
        Tok::Semi if matches!(after, Some(Tok::Comment { short: true })) => {
            Some("string closed, statement ended by comment")
        }
        Tok::Semi if after.is_some_and(statement_start) => Some("string closed, stacked query"),
        Tok::Logic if after.is_some_and(is_operand) => {
            tail_is_sql(&toks[k + 1..]).then_some("string closed, then boolean logic")
        }
        Tok::Cmp if after.is_some_and(|t| is_value(t) || matches!(t, Tok::Func(_))) => {
            Some("string closed, then comparison")
        }
        Tok::Kw(Kw::Union) if union_select(&toks[k + 1..]).is_some() => {
            Some("string closed, then union select")
        }
        Tok::Kw(Kw::OrderGroup) if after == Some(Tok::Kw(Kw::By)) => {
            Some("string closed, then order/group by")
        }
        Tok::Kw(Kw::Having | Kw::Waitfor) if after.is_some_and(is_operand) => {
            Some("string closed, then SQL clause")
        }
        Tok::PgOp => Some("string closed, then cast or JSON operator"),
        Tok::Op
            if after.is_some_and(|t| matches!(t, Tok::Func(FnClass::Sql | FnClass::Decisive))) =>
        {
            Some("string closed, then expression")
        }
        _ => structural(&toks[k..], false),
    }
}

/// The rest after a break-out looks like SQL: a comparison, a function, a closing
/// comment, a new string that stays balanced, or a bare value.
fn tail_is_sql(rest: &[Tok]) -> bool {
    let n = rest.len().min(8);
    let window = &rest[..n];
    let has = |f: fn(&Tok) -> bool| window.iter().any(f);
    has(|t| matches!(t, Tok::Cmp | Tok::Comment { short: true } | Tok::Semi))
        || has(|t| matches!(t, Tok::Kw(Kw::Select | Kw::Union | Kw::Schema)))
        || has(|t| matches!(t, Tok::Func(FnClass::Sql | FnClass::Decisive)))
        || matches!(window, [Tok::Num | Tok::Kw(Kw::Bool | Kw::Null)])
        || string_arithmetic(window)
        || reopened(rest)
        || matches!(rest, [a, Tok::Op] if is_operand(*a))
}

/// `' and x and '`: logic up to a quote re-opened for the application's closing quote;
/// `' or '' '`: only string literals (adjacent ones concatenate) up to that quote.
fn reopened(rest: &[Tok]) -> bool {
    matches!(rest, [.., Tok::Logic, Tok::Str { closed: false }])
        || rest.len() >= 2
            && rest.last() == Some(&Tok::Str { closed: false })
            && rest.iter().all(|t| matches!(t, Tok::Str { .. }))
}

/// `'' -'`, `''*'`: strings joined by an operator up to a re-opened quote.
fn string_arithmetic(w: &[Tok]) -> bool {
    w.last() == Some(&Tok::Str { closed: false })
        && w.contains(&Tok::Op)
        && w.iter()
            .all(|t| matches!(t, Tok::Str { .. } | Tok::Op | Tok::Num))
}

fn statement_start(t: Tok) -> bool {
    matches!(
        t,
        Tok::Kw(
            Kw::Select
                | Kw::Insert
                | Kw::Update
                | Kw::Delete
                | Kw::Drop
                | Kw::Create
                | Kw::Alter
                | Kw::Exec
                | Kw::Declare
                | Kw::Shutdown
                | Kw::Waitfor
        )
    )
}

/// Rules that need no string context.
fn structural(toks: &[Tok], evasion: bool) -> Option<Reason> {
    for (i, &t) in toks.iter().enumerate() {
        let next = toks.get(i + 1).copied();
        let rest = &toks[i + 1..];
        let r = match t {
            Tok::Func(FnClass::Decisive) => Some("time, error-based or file function"),
            Tok::Kw(Kw::Union) => union_select(rest),
            Tok::Kw(Kw::Select) if matches!(next, Some(Tok::Func(FnClass::Sql))) => {
                Some("select of SQL function")
            }
            Tok::Kw(Kw::Select) => select_from(toks, i, evasion),
            Tok::Kw(Kw::Case) if next == Some(Tok::Kw(Kw::Case)) && case_then(&rest[1..]) => {
                Some("case when … then")
            }
            Tok::Kw(Kw::Exec) if matches!(next, Some(Tok::Kw(Kw::Immediate) | Tok::Str { .. })) => {
                Some("dynamic SQL execution")
            }
            Tok::RParen if next == Some(Tok::CmpWord) && toks.get(i + 2) == Some(&Tok::LParen) => {
                Some("comparison between parenthesised expressions")
            }
            Tok::CmpWord
                if next == Some(Tok::LParen) && toks.get(i + 2) == Some(&Tok::Kw(Kw::Select)) =>
            {
                Some("subquery")
            }
            Tok::Str { .. } if next == Some(Tok::PgOp) && json_operand(toks.get(i + 2)) => {
                Some("JSON operator on string")
            }
            Tok::Str { closed: true } if chained_comparison(rest) => Some("chained comparison"),
            Tok::Kw(Kw::Having) if matches!(next, Some(Tok::Func(FnClass::Sql))) => {
                Some("having on an aggregate")
            }
            Tok::Semi if next.is_some_and(statement_start) && stacked(&rest[1..]) => {
                Some("stacked query")
            }
            Tok::Kw(Kw::Waitfor) if next == Some(Tok::Kw(Kw::Delay)) => Some("waitfor delay"),
            Tok::Var { system: true } => Some("@@ system variable"),
            Tok::Kw(Kw::Schema) if schema_probe(toks, i) => Some("schema table"),
            Tok::Logic => tautology(toks, i, evasion),
            Tok::Kw(Kw::OrderGroup) => order_by_probe(toks, i),
            Tok::Kw(Kw::Having)
                if next.is_some_and(|t| is_value(t) || t == Tok::Word)
                    && toks.get(i + 2) == Some(&Tok::Cmp) =>
            {
                Some("having comparison")
            }
            Tok::Kw(Kw::Into) if next == Some(Tok::Kw(Kw::Outfile)) => Some("into outfile"),
            Tok::PgOp if i > 0 && pg_cast(toks, i) => Some("PostgreSQL cast in expression"),
            Tok::Func(FnClass::Sql) if comparison_argument(rest) => {
                Some("SQL function with comparison argument")
            }
            Tok::Func(FnClass::Sql) => function_context(toks, i),
            _ => None,
        };
        if r.is_some() {
            return r;
        }
    }
    None
}

/// After `; <statement keyword>`: SQL shape within the next few tokens.
fn stacked(rest: &[Tok]) -> bool {
    rest.iter().take(6).any(|t| {
        matches!(
            t,
            Tok::Kw(Kw::From | Kw::Into | Kw::Schema | Kw::Other | Kw::Delay | Kw::Null)
                | Tok::Func(_)
                | Tok::Var { .. }
                | Tok::Str { .. }
                | Tok::Comment { short: true }
        )
    }) || matches!(rest.first(), Some(Tok::Op | Tok::Num))
}

/// `union [all] select`, `except values(…)`; `+` between the words counts as the
/// space it encodes in paths.
fn union_select(rest: &[Tok]) -> Option<Reason> {
    let mut k = 0;
    while matches!(
        rest.get(k),
        Some(Tok::Kw(Kw::AllDistinct) | Tok::LParen | Tok::Op)
    ) {
        k += 1;
    }
    match rest.get(k) {
        Some(Tok::Kw(Kw::Select)) => Some("union select"),
        Some(Tok::Kw(Kw::Values)) if rest.get(k + 1) == Some(&Tok::LParen) => {
            Some("set operation with values")
        }
        _ => None,
    }
}

/// After `case when`: a `then` within the next few tokens.
fn case_then(rest: &[Tok]) -> bool {
    rest.iter().take(8).any(|t| *t == Tok::Kw(Kw::Case))
}

/// `if(2=`, `iif(a<b`: a comparison as the first argument of a SQL function.
fn comparison_argument(rest: &[Tok]) -> bool {
    matches!(rest, [Tok::LParen, a, Tok::Cmp, ..] if is_value(*a) || *a == Tok::Word)
}

fn json_operand(t: Option<&Tok>) -> bool {
    matches!(t, Some(Tok::Str { .. } | Tok::Word | Tok::Kw(Kw::Other)))
}

/// `'{…}' < '$.c' = 7`: one comparison feeding another, which only expressions do.
fn chained_comparison(rest: &[Tok]) -> bool {
    matches!(rest, [Tok::Cmp, Tok::Str { .. }, Tok::Cmp, b, ..] if is_value(*b))
}

/// `select <list> from`: a select list made of SQL-ish items (columns with commas,
/// `*`, numbers, functions) or comment padding; `select x from y` alone is prose.
fn select_from(toks: &[Tok], i: usize, evasion: bool) -> Option<Reason> {
    let list_end = toks[i + 1..]
        .iter()
        .take(16)
        .position(|t| *t == Tok::Kw(Kw::From))?;
    let list = &toks[i + 1..i + 1 + list_end];
    if list.is_empty() {
        return None;
    }
    let sqlish = list.iter().any(|t| {
        matches!(
            t,
            Tok::Comma | Tok::Op | Tok::Func(_) | Tok::Num | Tok::Var { .. } | Tok::Dot
        ) || matches!(t, Tok::Kw(Kw::Null))
    });
    let target = toks.get(i + 2 + list_end).copied();
    let table_ok = matches!(
        target,
        Some(Tok::Word | Tok::Kw(Kw::Schema) | Tok::Str { .. })
    );
    (table_ok && (sqlish || evasion)).then_some("select … from")
}

fn schema_probe(toks: &[Tok], i: usize) -> bool {
    let neighbours = toks[i.saturating_sub(3)..(i + 3).min(toks.len())].iter();
    neighbours
        .clone()
        .any(|t| matches!(t, Tok::Dot | Tok::Kw(Kw::From)))
        || toks
            .iter()
            .any(|t| matches!(t, Tok::Kw(Kw::Select | Kw::Union)))
}

/// Quote-less comparisons after boolean logic: `1 or 1=1`, `and 2>1`, `xor 1`,
/// `or true--`, `and sleep(5)`.
fn tautology(toks: &[Tok], i: usize, evasion: bool) -> Option<Reason> {
    let a = toks.get(i + 1).copied()?;
    let b = toks.get(i + 2).copied();
    let c = toks.get(i + 3).copied();
    let prev = i.checked_sub(1).map(|p| toks[p]);
    let left_value = matches!(prev, None | Some(Tok::RParen)) || prev.is_some_and(is_value);
    let cmp_operand = |t: Tok| is_value(t) || t == Tok::Word;
    if cmp_operand(a) && b == Some(Tok::Cmp) && c.is_some_and(is_operand) {
        return Some("comparison after boolean operator");
    }
    if matches!(a, Tok::Num | Tok::Kw(Kw::Bool | Kw::Null))
        && matches!(toks.get(i + 2), Some(Tok::Comment { short: true }))
    {
        return Some("boolean operator with constant operand, then comment");
    }
    if !left_value {
        return None;
    }
    // `9999 or /* hint */ true`: comment padding inside boolean logic between constants.
    if evasion && prev.is_some_and(is_value) && is_value(a) {
        return Some("boolean operator padded with comments");
    }
    let ends = |k: usize| {
        matches!(
            toks.get(i + k),
            None | Some(Tok::Comment { .. } | Tok::Semi)
        )
    };
    // `1 or 1--`: a constant operand closed by a comment (plain `1950 or 1960` is prose).
    if matches!(a, Tok::Num | Tok::Kw(Kw::Bool | Kw::Null)) && ends(2) && toks.get(i + 2).is_some()
    {
        return prev
            .is_some()
            .then_some("boolean operator with constant operand");
    }
    if matches!(a, Tok::Func(_)) && toks.get(i + 2) == Some(&Tok::LParen) {
        return prev
            .is_some_and(|p| matches!(p, Tok::Num | Tok::Str { .. } | Tok::RParen))
            .then_some("boolean operator with function call");
    }
    None
}

/// `1 order by 3--`: column-count probing.
fn order_by_probe(toks: &[Tok], i: usize) -> Option<Reason> {
    if toks.get(i + 1) != Some(&Tok::Kw(Kw::By)) || toks.get(i + 2) != Some(&Tok::Num) {
        return None;
    }
    let prev = i.checked_sub(1).map(|p| toks[p]);
    let prefixed = matches!(prev, Some(Tok::Num | Tok::Str { .. } | Tok::RParen));
    let ended = matches!(
        toks.get(i + 3),
        None | Some(Tok::Comment { .. } | Tok::Semi)
    );
    let commented = matches!(toks.get(i + 3), Some(Tok::Comment { short: true }));
    let alone = prev.is_none() && toks.len() == i + 3;
    (prefixed && ended || commented || alone).then_some("order by column probing")
}

fn pg_cast(toks: &[Tok], i: usize) -> bool {
    let prev = toks[i - 1];
    let after = toks.get(i + 1).copied();
    // `password::int`: a column cast to a type keyword (`::1` in IPv6 is a number).
    if matches!(prev, Tok::Word | Tok::Kw(Kw::Other)) && after == Some(Tok::Kw(Kw::Other)) {
        return true;
    }
    matches!(prev, Tok::Str { .. } | Tok::Num | Tok::RParen)
        && matches!(
            after,
            Some(Tok::Kw(Kw::Other) | Tok::Word | Tok::Str { .. })
        )
        && toks.iter().any(|t| {
            matches!(
                t,
                Tok::Logic | Tok::Cmp | Tok::Comment { .. } | Tok::Func(_)
            )
        })
}

/// A SQL function is only suspicious with other SQL around it: a comparison, logic,
/// a comment, a select, or nested SQL functions.
fn function_context(toks: &[Tok], i: usize) -> Option<Reason> {
    let others = toks.iter().enumerate().filter(|(k, _)| *k != i);
    let mut score = 0;
    for (_, t) in others {
        score += match t {
            Tok::Func(FnClass::Sql | FnClass::Decisive) => 2,
            Tok::Logic | Tok::Comment { .. } | Tok::Kw(Kw::Select | Kw::From) => 2,
            Tok::Cmp => 1,
            _ => 0,
        };
    }
    (score >= 3).then_some("SQL functions in expression")
}

#[cfg(test)]
mod tests {
    use super::detect;

    fn flagged(s: &str) -> bool {
        detect(s.to_ascii_lowercase().as_bytes()).is_some()
    }

    #[test]
    fn classic_injections_are_flagged() {
        for s in [
            "1 union select pass from users--",
            "7/**/union/**/select/**/user,2/**/from/**/mysql.user",
            "1' or '1'='1",
            "admin'--",
            "1 or 1=1",
            "1 and 2>1",
            "1; drop table users",
            "1 and sleep(5)",
            "1' and extractvalue(1,concat(0x7e,version()))--",
            "'; waitfor delay '0:0:5'--",
            "1)) or pg_sleep(5)--",
            "select * from information_schema.tables",
            "1' and 1=cast(version() as int)--",
            "1 xor 1=1",
            "1 order by 3--",
            " exec xp_cmdshell 'dir'",
            "password::int",
            "' and 1 in (select min(name) from sysobjects where xtype = 'u') --",
        ] {
            assert!(flagged(s), "{s} should be SQLi");
        }
    }

    #[test]
    fn english_with_sql_words_is_not_flagged() {
        for s in [
            "insert or update table.png",
            "how to select a union rep",
            "lock and key",
            "from to tag christmas",
            "o'reilly books",
            "rock and roll",
            "1 by 1 inch pillows",
            "select all from the menu",
            "don't or won't",
        ] {
            assert!(!flagged(s), "{s} should not be SQLi");
        }
    }

    #[test]
    fn injected_fragments_at_value_start_are_flagged() {
        for s in [
            ";truncate[xx",
            "xor 2 <",
            "or 88",
            "like null",
            "drop sampletable;--",
            "delete from users;--",
            "pg_catalog",
        ] {
            assert!(flagged(s), "{s} should be SQLi");
        }
    }

    #[test]
    fn tautologies_flagged_but_false_or_ordering_comparisons_not() {
        for s in ["1=1", "b,1=1", "42<=>42", "11!=1", "1 is not 2"] {
            assert!(flagged(s), "{s} is a tautology");
        }
        for s in ["11!=11", "1 is not 1", "123<456", "1=5"] {
            assert!(!flagged(s), "{s} proves nothing");
        }
    }

    #[test]
    fn postgres_json_and_conditional_expressions_are_flagged() {
        for s in [
            "or '{\"a\":\"b\"}' ? 'a'",
            "or '{\"name\":\"asd\"}' ?| array['a','name']",
            "'{\"b\":2}'::jsonb @ '{\"a\":1}'::jsonb",
            "'{\"a\":2}' < '$.c[2].f' = 7",
            "or json_extract('{\"id\": 14}', '$.name') = 'x'",
            "1 current_user::int",
            "if(2=",
            "case when condition1 then result1",
            ") like (",
            "in ( select * from",
            "except values(1,2)",
            "execute immediate \"",
            "9999 or /* optimizer hint */ true",
            "select if(x",
            "lo_get(16400)",
            "1' and starts_with(password) and 'true",
        ] {
            assert!(flagged(s), "{s} should be SQLi");
        }
    }

    #[test]
    fn string_break_outs_joined_by_operators_are_flagged() {
        for s in ["'-'", "'^'", "\"*\"", "'&'", "' or '' '", "\" or \"\"&\""] {
            assert!(flagged(s), "{s} should be SQLi");
        }
        for s in [
            "rock 'n' roll",
            "'hello' - 'world' tour",
            "5' - 6' tall",
            "'-' sign",
        ] {
            assert!(!flagged(s), "{s} should not be SQLi");
        }
    }

    #[test]
    fn prose_with_exclamation_quotes_and_like_is_not_flagged() {
        for s in [
            "having pain!",
            "dress with hat 18';",
            "\"like\" stamp",
            "pin \"as is\"",
            "in case you wonder",
            "sql_table=orders",
        ] {
            assert!(!flagged(s), "{s} should not be SQLi");
        }
    }
}
