//! OWASP CRS go-ftw regression tests as access-log cases.
//!
//! Each test's request is rendered into the nginx `combined` line nginx would write
//! ([`super::render`]). A test is an attack case (`expect_ids`), a negative (`no_expect_ids`)
//! or other (status / log regex only). Where the payload sits decides observability: the
//! access log holds the request line, Referer and User-Agent only, so a case whose payload
//! is only in a body, a Cookie or another header is *not observable* and is counted apart,
//! never as a miss. Paranoia levels per rule come from `data/crs-rule-levels.tsv`; labels
//! of log-visible negatives from `data/crs-negative-labels.tsv`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_norway::Value;

use super::render::{Encoding, LoggedRequest};
use super::report::{CrsTotals, Flagged, LevelCheck, Miss, NegativeRow, RecallRow};
use super::{EvalError, Judge, Verdict, read_text};

/// Paranoia level per CRS rule id (`?` = not established).
pub const RULE_LEVELS_TSV: &str = include_str!("../../data/crs-rule-levels.tsv");
/// Label (`benign` / `attack-like`) per log-visible negative.
pub const NEGATIVE_LABELS_TSV: &str = include_str!("../../data/crs-negative-labels.tsv");

/// The user agent go-ftw tests send when the agent is not the payload.
const DEFAULT_AGENT: &str = "OWASP CRS test agent";
/// Paths the tests use as plain endpoints (the payload is elsewhere).
const DEFAULT_PATHS: [&str; 3] = ["/", "/post", "/get"];

/// Families in report order: (rule-id prefix, name, the class a detector should name).
pub const FAMILIES: [(u32, &str, &str); 5] = [
    (942, "942 SQLi", "sqli"),
    (941, "941 XSS", "xss"),
    (930, "930 LFI", "traversal"),
    (932, "932 RCE", "cmdi"),
    (913, "913 scanner", "scanner_ua"),
];

/// "tests by paranoia level" (PL1..PL4) per family, as stated in the corpus `crs/README.md`.
const README_LEVELS: [(u32, [usize; 4]); 5] = [
    (942, [371, 588, 54, 17]),
    (941, [240, 21, 0, 0]),
    (930, [71, 11, 0, 0]),
    (932, [547, 335, 121, 0]),
    (913, [7, 0, 0, 0]),
];

// ---- go-ftw YAML -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct FtwFile {
    rule_id: u32,
    #[serde(default)]
    tests: Vec<FtwTest>,
}

#[derive(Debug, Deserialize)]
struct FtwTest {
    test_id: u32,
    #[serde(default)]
    stages: Vec<FtwStage>,
}

#[derive(Debug, Deserialize)]
struct FtwStage {
    #[serde(default)]
    input: FtwInput,
    #[serde(default)]
    output: FtwOutput,
}

#[derive(Debug, Default, Deserialize)]
struct FtwInput {
    method: Option<String>,
    uri: Option<String>,
    version: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, Value>,
    data: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct FtwOutput {
    #[serde(default)]
    log: FtwLog,
}

#[derive(Debug, Default, Deserialize)]
struct FtwLog {
    #[serde(default)]
    expect_ids: Vec<u32>,
    #[serde(default)]
    no_expect_ids: Vec<u32>,
}

// ---- cases -------------------------------------------------------------------------------

/// What a test asserts about its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Attack,
    Negative,
    Other,
}

/// One go-ftw test as an access-log case.
#[derive(Debug, Clone)]
pub struct Case {
    /// `<rule id>/<test id>`, the key of the label file.
    pub id: String,
    pub rule_id: u32,
    pub kind: Kind,
    /// The request as the access log records it.
    pub request: LoggedRequest,
    /// Whether the payload leaves a trace in the access log.
    pub observable: bool,
    /// For a not-observable case with a form body or cookie: the request with those moved
    /// into the query string (secondary figure).
    pub moved: Option<LoggedRequest>,
}

impl Case {
    /// The rule family (first three digits of the rule id).
    pub fn family(&self) -> u32 {
        self.rule_id / 1000
    }
}

/// Parses one go-ftw file into cases. `path` is only used in error messages.
pub fn parse_ftw(yaml: &str, path: &Path) -> Result<Vec<Case>, EvalError> {
    let file: FtwFile = serde_norway::from_str(yaml).map_err(|source| EvalError::Yaml {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(file
        .tests
        .iter()
        .filter_map(|t| case_of(file.rule_id, t))
        .collect())
}

fn case_of(rule_id: u32, test: &FtwTest) -> Option<Case> {
    // The stage that carries the log expectation decides the case; tests have one stage.
    let stage = test
        .stages
        .iter()
        .rev()
        .find(|s| !s.output.log.expect_ids.is_empty() || !s.output.log.no_expect_ids.is_empty())
        .or(test.stages.first())?;
    let kind = if !stage.output.log.expect_ids.is_empty() {
        Kind::Attack
    } else if !stage.output.log.no_expect_ids.is_empty() {
        Kind::Negative
    } else {
        Kind::Other
    };
    let input = &stage.input;
    let request = logged_request(input);
    let observable = is_observable(input);
    let moved = if observable {
        None
    } else {
        moved_request(input, &request)
    };
    Some(Case {
        id: format!("{rule_id}/{}", test.test_id),
        rule_id,
        kind,
        request,
        observable,
        moved,
    })
}

fn logged_request(input: &FtwInput) -> LoggedRequest {
    LoggedRequest {
        method: input.method.clone().unwrap_or_else(|| "GET".into()),
        uri: input.uri.clone().unwrap_or_else(|| "/".into()),
        version: input.version.clone().unwrap_or_else(|| "HTTP/1.1".into()),
        referer: header(input, "referer"),
        user_agent: header(input, "user-agent"),
    }
}

fn header(input: &FtwInput, name: &str) -> Option<String> {
    input
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| scalar(v))
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_norway::to_string(other).unwrap_or_default(),
    }
}

fn body(input: &FtwInput) -> String {
    input.data.as_ref().map(scalar).unwrap_or_default()
}

/// Whether the request leaves its payload in the access log: a query string, a path that
/// is not a plain endpoint, a non-default User-Agent, or a Referer. A plain path (letters,
/// digits, `/_.-`) in front of a body, a Cookie or an unusual header is routing; the
/// payload is in the part the log does not keep.
fn is_observable(input: &FtwInput) -> bool {
    let uri = input.uri.as_deref().unwrap_or("/");
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    if !query.is_empty() || header(input, "referer").is_some() {
        return true;
    }
    if header(input, "user-agent").unwrap_or_default() != DEFAULT_AGENT {
        return true;
    }
    let plain = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
    !DEFAULT_PATHS.contains(&path) && (!plain || !carries_unlogged_payload(input))
}

/// Headers every test sends, which carry no payload.
const ROUTINE_HEADERS: [&str; 10] = [
    "host",
    "user-agent",
    "accept",
    "accept-encoding",
    "accept-language",
    "content-type",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
];

/// A body, a Cookie, or a header outside the routine ones: parts the access log drops.
fn carries_unlogged_payload(input: &FtwInput) -> bool {
    let unusual_header = input.headers.keys().any(|k| {
        let k = k.to_ascii_lowercase();
        k != "referer" && !ROUTINE_HEADERS.contains(&k.as_str())
    });
    !body(input).is_empty() || unusual_header
}

/// The request with a form body and cookies appended to the query string, minimally
/// encoded so the request line stays valid. `None` if there is nothing form-like to move.
fn moved_request(input: &FtwInput, request: &LoggedRequest) -> Option<LoggedRequest> {
    let mut parts = Vec::new();
    let content_type = header(input, "content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let data = body(input);
    if !data.is_empty()
        && (content_type.is_empty() || content_type.contains("x-www-form-urlencoded"))
    {
        parts.push(Encoding::Minimal.encode(&data));
    }
    if let Some(cookie) = header(input, "cookie") {
        let pairs: Vec<&str> = cookie
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        parts.push(Encoding::Minimal.encode(&pairs.join("&")));
    }
    if parts.is_empty() {
        return None;
    }
    let sep = if request.uri.contains('?') { '&' } else { '?' };
    let mut moved = request.clone();
    moved.uri = format!("{}{sep}{}", request.uri, parts.join("&"));
    Some(moved)
}

// ---- data tables -------------------------------------------------------------------------

/// Parses `data/crs-rule-levels.tsv`: rule id → `1`..`4` or `?`.
pub fn rule_levels() -> Result<BTreeMap<u32, String>, EvalError> {
    let mut levels = BTreeMap::new();
    for (line, fields) in tsv_rows(RULE_LEVELS_TSV) {
        let bad = |reason: &str| EvalError::Table {
            table: "crs-rule-levels.tsv",
            line,
            reason: reason.into(),
        };
        let [id, level, basis] = fields[..] else {
            return Err(bad(
                "expected 3 tab-separated fields: rule_id, paranoia_level, basis",
            ));
        };
        if !matches!(basis, "rule-file" | "recall" | "derived") {
            return Err(bad("basis must be rule-file, recall or derived"));
        }
        let id: u32 = id.parse().map_err(|_| bad("rule id is not a number"))?;
        if !matches!(level, "1" | "2" | "3" | "4" | "?") {
            return Err(bad("paranoia level must be 1-4 or ?"));
        }
        if levels.insert(id, level.to_string()).is_some() {
            return Err(bad("duplicate rule id"));
        }
    }
    Ok(levels)
}

/// A label of one log-visible negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Benign,
    AttackLike,
}

/// Parses `data/crs-negative-labels.tsv`: case id → (label, reason). Duplicate ids are an error.
pub fn negative_labels() -> Result<BTreeMap<String, (Label, String)>, EvalError> {
    let mut labels = BTreeMap::new();
    for (line, fields) in tsv_rows(NEGATIVE_LABELS_TSV) {
        let bad = |reason: &str| EvalError::Table {
            table: "crs-negative-labels.tsv",
            line,
            reason: reason.into(),
        };
        let [id, label, reason] = fields[..] else {
            return Err(bad("expected 3 tab-separated fields"));
        };
        let label = match label {
            "benign" => Label::Benign,
            "attack-like" => Label::AttackLike,
            _ => return Err(bad("label must be benign or attack-like")),
        };
        if reason.trim().is_empty() {
            return Err(bad("empty reason"));
        }
        if labels
            .insert(id.to_string(), (label, reason.to_string()))
            .is_some()
        {
            return Err(bad("duplicate case id"));
        }
    }
    Ok(labels)
}

/// Data rows of a TSV with `#` comments and one header row: (1-based line, fields).
fn tsv_rows(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1)
        .map(|(i, l)| (i + 1, l.split('\t').collect()))
}

// ---- the set and its scoring -------------------------------------------------------------

/// All CRS cases of the corpus with their levels and labels.
pub struct CrsSet {
    pub files: usize,
    pub cases: Vec<Case>,
    levels: BTreeMap<u32, String>,
    labels: BTreeMap<String, (Label, String)>,
}

/// [`CrsSet::score`] output for one judge.
pub struct CrsScore {
    pub recall: Vec<RecallRow>,
    pub negatives: Vec<NegativeRow>,
    pub benign_fps: Vec<Flagged>,
    pub misses: Vec<Miss>,
}

impl CrsSet {
    /// Reads every `REQUEST-9xx-*/*.yaml` under `dir` (the corpus `crs/` folder).
    pub fn load(dir: &Path) -> Result<CrsSet, EvalError> {
        let files = ftw_files(dir)?;
        let mut cases = Vec::new();
        for path in &files {
            cases.extend(parse_ftw(&read_text(path)?, path)?);
        }
        Ok(CrsSet {
            files: files.len(),
            cases,
            levels: rule_levels()?,
            labels: negative_labels()?,
        })
    }

    /// Paranoia level of a rule, `?` when unknown.
    pub fn level(&self, rule_id: u32) -> &str {
        self.levels.get(&rule_id).map(String::as_str).unwrap_or("?")
    }

    /// Ids of negatives whose request leaves a trace in the access log.
    pub fn visible_negative_ids(&self) -> Vec<String> {
        self.cases
            .iter()
            .filter(|c| c.kind == Kind::Negative && c.observable)
            .map(|c| c.id.clone())
            .collect()
    }

    /// Counts independent of any judge.
    pub fn totals(&self) -> CrsTotals {
        let count = |f: &dyn Fn(&Case) -> bool| self.cases.iter().filter(|c| f(c)).count();
        CrsTotals {
            files: self.files,
            tests: self.cases.len(),
            expect: count(&|c| c.kind == Kind::Attack),
            no_expect: count(&|c| c.kind == Kind::Negative),
            other: count(&|c| c.kind == Kind::Other),
            expect_not_observable: count(&|c| c.kind == Kind::Attack && !c.observable),
            no_expect_log_visible: count(&|c| c.kind == Kind::Negative && c.observable),
        }
    }

    /// Tests per paranoia level per family from our table, compared with the README.
    pub fn level_check(&self) -> Vec<LevelCheck> {
        README_LEVELS
            .iter()
            .map(|(fam, readme)| {
                let mut ours = [0usize; 4];
                let mut unknown = 0;
                for c in self.cases.iter().filter(|c| c.family() == *fam) {
                    match self.level(c.rule_id).parse::<usize>() {
                        Ok(pl @ 1..=4) => ours[pl - 1] += 1,
                        _ => unknown += 1,
                    }
                }
                let below = ours.iter().zip(readme).all(|(o, r)| o <= r);
                let gap: usize = ours
                    .iter()
                    .zip(readme)
                    .map(|(o, r)| r.saturating_sub(*o))
                    .sum();
                LevelCheck {
                    family: family_name(*fam).to_string(),
                    ours: level_list(&ours, unknown),
                    readme: level_list(readme, 0),
                    matches: unknown == 0 && ours == *readme,
                    consistent: below && gap == unknown,
                }
            })
            .collect()
    }

    /// Runs every case through `judge`.
    pub fn score(&self, judge: &mut dyn Judge, want_misses: bool) -> CrsScore {
        let mut out = CrsScore {
            recall: Vec::new(),
            negatives: Vec::new(),
            benign_fps: Vec::new(),
            misses: Vec::new(),
        };
        for (fam, name, class) in FAMILIES {
            for pl in ["1", "2", "3", "4", "?"] {
                let row = self.recall_row(
                    judge,
                    fam,
                    pl,
                    class,
                    want_misses.then_some(&mut out.misses),
                );
                if row.observable + row.not_observable > 0 {
                    out.recall.push(RecallRow {
                        family: name.into(),
                        paranoia: pl.into(),
                        ..row
                    });
                }
            }
            out.negatives
                .push(self.negative_row(judge, fam, &mut out.benign_fps));
        }
        out
    }

    fn recall_row(
        &self,
        judge: &mut dyn Judge,
        fam: u32,
        pl: &str,
        class: &str,
        mut misses: Option<&mut Vec<Miss>>,
    ) -> RecallRow {
        let mut row = RecallRow::default();
        let mut rules_obs = BTreeSet::new();
        let mut rules_hit = BTreeSet::new();
        let cases = self
            .cases
            .iter()
            .filter(|c| c.kind == Kind::Attack && c.family() == fam);
        for case in cases.filter(|c| self.level(c.rule_id) == pl) {
            let Some(req) = (if case.observable {
                Some(&case.request)
            } else {
                case.moved.as_ref()
            }) else {
                row.not_observable += 1;
                continue;
            };
            let line = req.to_combined();
            let verdict = judge.judge(&line);
            row.moved_observable += 1;
            row.moved_detected += usize::from(verdict.fired());
            if !case.observable {
                row.not_observable += 1;
                continue;
            }
            row.observable += 1;
            rules_obs.insert(case.rule_id);
            if verdict.fired() {
                row.detected += 1;
                row.right_class += usize::from(verdict.has(class));
                rules_hit.insert(case.rule_id);
            } else if let Some(m) = misses.as_deref_mut() {
                m.push(Miss {
                    source: "crs".into(),
                    id: case.id.clone(),
                    line,
                });
            }
        }
        row.rules_observable = rules_obs.len();
        row.rules_detected = rules_hit.len();
        row.rules_undetected = rules_obs.difference(&rules_hit).copied().collect();
        row
    }

    fn negative_row(&self, judge: &mut dyn Judge, fam: u32, fps: &mut Vec<Flagged>) -> NegativeRow {
        let mut row = NegativeRow {
            family: family_name(fam).into(),
            ..NegativeRow::default()
        };
        let cases = self
            .cases
            .iter()
            .filter(|c| c.kind == Kind::Negative && c.observable && c.family() == fam);
        for case in cases {
            let line = case.request.to_combined();
            let verdict = judge.judge(&line);
            match self.labels.get(&case.id).map(|(l, _)| *l) {
                None => row.unlabeled += 1,
                Some(Label::AttackLike) => {
                    row.attack_like += 1;
                    row.attack_like_flagged += usize::from(verdict.fired());
                }
                Some(Label::Benign) => {
                    row.benign += 1;
                    if verdict.fired() {
                        row.benign_flagged += 1;
                        let Verdict {
                            classes,
                            explanation,
                        } = verdict;
                        fps.push(Flagged {
                            id: case.id.clone(),
                            line,
                            classes,
                            explanation,
                        });
                    }
                }
            }
        }
        row
    }
}

fn level_list(counts: &[usize; 4], unknown: usize) -> String {
    let mut parts: Vec<String> = (1..=4)
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(pl, n)| format!("PL{pl} {n}"))
        .collect();
    if unknown > 0 {
        parts.push(format!("PL? {unknown}"));
    }
    parts.join(", ")
}

fn family_name(fam: u32) -> &'static str {
    FAMILIES
        .iter()
        .find(|(f, _, _)| *f == fam)
        .map(|(_, n, _)| *n)
        .unwrap_or("other")
}

fn ftw_files(dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
    let read = |p: &Path| {
        std::fs::read_dir(p).map_err(|source| EvalError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let mut files = Vec::new();
    for family in read(dir)? {
        let family = family
            .map_err(|source| EvalError::Read {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        let is_family = family
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("REQUEST-9"));
        if !family.is_dir() || !is_family {
            continue;
        }
        for f in read(&family)? {
            let f = f
                .map_err(|source| EvalError::Read {
                    path: family.clone(),
                    source,
                })?
                .path();
            if f.extension().is_some_and(|e| e == "yaml") {
                files.push(f);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"---
meta:
  author: "test"
rule_id: 942999
tests:
  - test_id: 1
    desc: "query payload"
    stages:
      - input:
          dest_addr: 127.0.0.1
          headers:
            Host: localhost
            User-Agent: "OWASP CRS test agent"
          method: GET
          port: 80
          uri: "/get?id=1%20or%201=1"
          version: HTTP/1.1
        output:
          log:
            expect_ids: [942999]
  - test_id: 2
    desc: "body only"
    stages:
      - input:
          headers:
            User-Agent: "OWASP CRS test agent"
            Content-Type: application/x-www-form-urlencoded
          method: POST
          uri: "/post"
          data: "var=1 union select 2"
        output:
          log:
            no_expect_ids: [942999]
  - test_id: 3
    stages:
      - input:
          headers:
            user-agent: "OWASP CRS test agent"
            cookie: "a=1' or '1'='1; b=2"
          uri: "/"
        output:
          status: 403
  - test_id: 4
    stages:
      - input:
          headers:
            User-Agent: "OWASP CRS test agent"
            Referer: 'http://x/"q"'
          method: GET
          uri: "/"
        output:
          log:
            expect_ids: [942999]
"#;

    fn sample() -> Vec<Case> {
        parse_ftw(SAMPLE, Path::new("sample.yaml")).expect("sample parses")
    }

    #[test]
    fn go_ftw_tests_become_cases_with_kind_and_id() {
        let cases = sample();
        let kinds: Vec<(&str, Kind)> = cases.iter().map(|c| (c.id.as_str(), c.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("942999/1", Kind::Attack),
                ("942999/2", Kind::Negative),
                ("942999/3", Kind::Other),
                ("942999/4", Kind::Attack)
            ]
        );
        assert_eq!(cases[0].request.uri, "/get?id=1%20or%201=1");
        assert_eq!(
            cases[2].request.method, "GET",
            "missing method defaults to GET"
        );
    }

    #[test]
    fn body_only_and_cookie_only_payloads_are_not_observable() {
        let cases = sample();
        assert!(cases[0].observable, "query payload is in the log");
        assert!(
            !cases[1].observable,
            "form body never reaches the access log"
        );
        assert!(!cases[2].observable, "cookie never reaches the access log");
        assert!(cases[3].observable, "Referer is logged");
    }

    #[test]
    fn moved_figure_appends_form_body_and_cookies_to_the_query() {
        let cases = sample();
        let moved = cases[1].moved.as_ref().expect("form body can be moved");
        assert_eq!(moved.uri, "/post?var=1%20union%20select%202");
        let moved = cases[2].moved.as_ref().expect("cookie can be moved");
        assert_eq!(moved.uri, "/?a=1'%20or%20'1'='1&b=2");
    }

    #[test]
    fn referer_quotes_are_escaped_in_the_rendered_line() {
        let line = sample()[3].request.to_combined();
        assert!(line.contains("\"http://x/\\x22q\\x22\""), "{line}");
    }

    fn observable(uri: &str, data: Option<&str>) -> bool {
        let mut headers = BTreeMap::new();
        headers.insert(
            "User-Agent".to_string(),
            Value::String(DEFAULT_AGENT.into()),
        );
        let data = data.map(|d| Value::String(d.into()));
        is_observable(&FtwInput {
            uri: Some(uri.into()),
            headers,
            data,
            ..FtwInput::default()
        })
    }

    #[test]
    fn a_plain_path_in_front_of_a_body_is_routing_not_payload() {
        assert!(!observable("/post/foo", Some("a=<script>")));
        assert!(!observable("/webhook/adyen", Some("sig=x")));
        assert!(
            observable("/post/foo/9'union+all/bar", Some("a=1")),
            "payload in the path"
        );
        assert!(observable("/@fs/etc/passwd", None), "path-only LFI case");
        assert!(!observable("/get", None), "nothing in the log but defaults");
        let mut headers = BTreeMap::new();
        headers.insert(
            "User-Agent".to_string(),
            Value::String(DEFAULT_AGENT.into()),
        );
        headers.insert("Cookie".to_string(), Value::String("a=<script>".into()));
        let input = FtwInput {
            uri: Some("/get/baz".into()),
            headers,
            ..FtwInput::default()
        };
        assert!(!is_observable(&input), "cookie payload behind a plain path");
    }

    #[test]
    fn a_json_body_is_not_moved() {
        let yaml = SAMPLE.replace("application/x-www-form-urlencoded", "application/json");
        let cases = parse_ftw(&yaml, Path::new("s.yaml")).unwrap();
        assert!(!cases[1].observable && cases[1].moved.is_none());
    }

    #[test]
    fn broken_yaml_names_the_file() {
        let err = parse_ftw("rule_id: [", Path::new("bad.yaml")).unwrap_err();
        assert!(err.to_string().contains("bad.yaml"), "{err}");
    }

    #[test]
    fn data_tables_parse() {
        let levels = rule_levels().unwrap();
        assert_eq!(levels.get(&942100).map(String::as_str), Some("1"));
        assert!(negative_labels().unwrap().len() > 100);
    }
}
