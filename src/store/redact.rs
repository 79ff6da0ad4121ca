//! Secret redaction for text that leaves the pipeline: stored samples, alert bodies,
//! exported evidence.
//!
//! Log lines carry secrets more often than anyone intends: a login form posted as a
//! query string (`?password=...`), a bearer token in a logged header, a Stripe or AWS
//! key pasted into a URL, a JWT in a cookie. [`redact`] replaces the secret part and
//! keeps the rest (the parameter name, the scheme), so a reader still sees *that* a
//! secret was sent without seeing it. It runs on detection samples only, never on the
//! per-line hot path, so regexes are fine here.

use std::borrow::Cow;
use std::sync::{LazyLock, OnceLock};

use aho_corasick::AhoCorasick;
use regex::Regex;

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// One rule: literals that must appear (any of them, ASCII case-insensitive) for the
/// pattern to be tried, the pattern, and what replaces a match (`$1` keeps a prefix).
/// The pattern is compiled the first time a trigger asks for it: most runs need only
/// a few of the rules, and compiling all of them cost more than a whole 100k-line
/// scan's redaction.
struct Rule {
    triggers: &'static [&'static str],
    source: &'static str,
    pattern: OnceLock<Regex>,
    replacement: &'static str,
}

impl Rule {
    fn pattern(&self) -> &Regex {
        self.pattern
            .get_or_init(|| Regex::new(self.source).expect("redaction pattern compiles"))
    }
}

/// The rules and one automaton over all their triggers: most samples contain no
/// trigger at all and cost a single linear scan instead of nine regex searches.
struct Rules {
    rules: Vec<Rule>,
    triggers: AhoCorasick,
    /// For each trigger pattern id, the rule it belongs to.
    trigger_rule: Vec<usize>,
}

static RULES: LazyLock<Rules> = LazyLock::new(|| {
    let rule = |triggers, source, replacement| Rule {
        triggers,
        source,
        pattern: OnceLock::new(),
        replacement,
    };
    let rules: Vec<Rule> = vec![
        // JWTs first: a JWT inside `token=` must vanish whole, not just up to a dot.
        rule(
            &["eyj"],
            r"\beyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*",
            "[REDACTED-JWT]",
        ),
        // `Authorization: Bearer x`, `Bearer x` alone, `Basic x`.
        rule(
            &["authorization"],
            r"(?i)\b((?:authorization|proxy-authorization)\s*[:=]\s*(?:bearer|basic|token|digest)\s+)[^\s,;]+",
            "${1}[REDACTED]",
        ),
        rule(
            &["bearer"],
            r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{6,}",
            "${1}[REDACTED]",
        ),
        // Vendor keys recognisable on their own.
        rule(
            &["_live_", "_test_"],
            r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}",
            "[REDACTED-API-KEY]",
        ),
        rule(
            &["akia", "asia"],
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
            "[REDACTED-AWS-KEY]",
        ),
        rule(
            &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
            r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}",
            "[REDACTED-TOKEN]",
        ),
        rule(
            &["xox"],
            r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
            "[REDACTED-TOKEN]",
        ),
        // `scheme://user:password@host`
        rule(
            &["://"],
            r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@",
            "${1}[REDACTED]@",
        ),
        // `password=x`, `"api_key": "x"`, `access_token=x&`, `secret: x`.
        rule(
            &[
                "pass",
                "pwd",
                "secret",
                "token",
                "key",
                "credential",
                "session",
            ],
            // A JSON string value is masked whole, spaces and escapes included.
            r#"(?i)("[\w.-]*(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|credential|session[_-]?id|auth[_-]?key)[\w.-]*"\s*:\s*")(?:[^"\\]|\\.)*""#,
            "${1}[REDACTED]\"",
        ),
        rule(
            &[
                "pass",
                "pwd",
                "secret",
                "token",
                "key",
                "credential",
                "session",
            ],
            // Values already masked (`[REDACTED]`) are left alone.
            r#"(?i)\b([\w.-]*(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|credential|session[_-]?id|auth[_-]?key)[\w.-]*["']?\s*[=:]\s*["']?)[^\[\s"'&,;}\]][^\s"'&,;}\]]*"#,
            "${1}[REDACTED]",
        ),
    ];
    let mut trigger_rule = Vec::new();
    let mut literals = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        for t in r.triggers {
            literals.push(*t);
            trigger_rule.push(i);
        }
    }
    let triggers = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(&literals)
        .expect("redaction triggers compile");
    Rules {
        rules,
        triggers,
        trigger_rule,
    }
});

/// Returns `text` with secrets replaced; borrows when there was nothing to redact.
///
/// ```
/// use palisade::store::redact::redact;
/// let line = "POST /login?user=ann&password=hunter2 HTTP/1.1";
/// assert_eq!(redact(line), "POST /login?user=ann&password=[REDACTED] HTTP/1.1");
/// ```
pub fn redact(text: &str) -> Cow<'_, str> {
    let rules = &*RULES;
    // Most text holds no trigger: one leftmost search answers that before the
    // overlapping walk that collects every rule to try.
    if !rules.triggers.is_match(text) {
        return Cow::Borrowed(text);
    }
    let mut wanted = 0u32;
    for m in rules.triggers.find_overlapping_iter(text) {
        wanted |= 1 << rules.trigger_rule[m.pattern().as_usize()];
    }
    let mut out = Cow::Borrowed(text);
    for (i, rule) in rules.rules.iter().enumerate() {
        if wanted & (1 << i) == 0 {
            continue;
        }
        if let Cow::Owned(changed) = rule.pattern().replace_all(&out, rule.replacement) {
            out = Cow::Owned(changed);
        }
    }
    out
}

/// Redacts every string inside a JSON value in place (keys are kept: they name fields).
pub fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Cow::Owned(r) = redact(s) {
                *s = r;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_hidden(input: &str, secret: &str) -> String {
        let out = redact(input).into_owned();
        assert!(
            !out.contains(secret),
            "secret {secret:?} survived in {out:?}"
        );
        assert!(out.contains("REDACTED"), "no marker in {out:?}");
        out
    }

    #[test]
    fn query_string_password_is_hidden_but_parameter_name_kept() {
        let out = assert_hidden(
            "GET /login?user=ann&password=hunter2&x=1 HTTP/1.1",
            "hunter2",
        );
        assert!(out.contains("user=ann") && out.contains("&x=1"), "{out}");
        assert!(out.contains("password=[REDACTED]"), "{out}");
    }

    #[test]
    fn token_and_api_key_parameters_are_hidden() {
        assert_hidden("/reset?token=abcdef123456", "abcdef123456");
        assert_hidden("/cb?access_token=zzzyyyxxx", "zzzyyyxxx");
        assert_hidden("/v1?api_key=k3y-value", "k3y-value");
        assert_hidden("csrf_token=qwerty987", "qwerty987");
    }

    #[test]
    fn json_body_secrets_are_hidden() {
        let out = assert_hidden(r#"{"user":"ann","password":"s3cr3t!","n":1}"#, "s3cr3t!");
        assert!(out.contains(r#""user":"ann""#), "{out}");
        assert_hidden(r#"{"clientSecret": "abc123def"}"#, "abc123def");
    }

    #[test]
    fn authorization_headers_are_hidden() {
        assert_hidden("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl");
        assert_hidden("authorization: Basic YW5uOmh1bnRlcjI=", "YW5uOmh1bnRlcjI=");
        assert_hidden(r#""Bearer 0123456789abcdef" sent"#, "0123456789abcdef");
    }

    #[test]
    fn vendor_keys_are_hidden_anywhere() {
        assert_hidden(
            "key sk_live_4eC39HqLyjWDarjtT1zdp7dc used",
            "4eC39HqLyjWDarjtT1zdp7dc",
        );
        assert_hidden("aws AKIAIOSFODNN7EXAMPLE in url", "AKIAIOSFODNN7EXAMPLE");
        assert_hidden(
            "gh ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        );
    }

    #[test]
    fn jwt_is_hidden_whole() {
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let out = assert_hidden(
            &format!("Cookie: session={jwt}; theme=dark"),
            "dozjgNryP4J3",
        );
        assert!(!out.contains("eyJzdWIi"), "{out}");
        assert!(out.contains("theme=dark"), "{out}");
    }

    #[test]
    fn url_userinfo_password_is_hidden() {
        let out = assert_hidden("postgres://app:pa55word@db:5432/app", "pa55word");
        assert!(out.contains("postgres://app:[REDACTED]@db"), "{out}");
    }

    #[test]
    fn every_pattern_compiles() {
        for rule in &RULES.rules {
            rule.pattern();
        }
    }

    #[test]
    fn ordinary_lines_are_borrowed_unchanged() {
        let line = r#"192.0.2.7 - - [21/May/2024:10:00:00 +0000] "GET /index.html HTTP/1.1" 200 512 "-" "curl/8""#;
        assert!(matches!(redact(line), Cow::Borrowed(_)));
    }

    #[test]
    fn redact_json_walks_nested_strings() {
        let mut v = serde_json::json!({
            "event.original": "GET /?password=hunter2",
            "nested": {"list": ["Bearer abcdefghijkl"]},
            "n": 3,
        });
        redact_json(&mut v);
        let text = v.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("abcdefghijkl"),
            "{text}"
        );
        assert_eq!(v["n"], 3);
    }
}
