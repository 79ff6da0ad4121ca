//! Secret redaction for everything an alert sink sends out of the host.
//!
//! Sample log lines travel to chat rooms and mailboxes; a leaked `password=` or bearer
//! token there is a breach of its own. [`redact`] masks the common shapes before any
//! sink renders a line. Alerts are rare (after grouping), so a few regexes are cheap
//! here; this is never on the per-line detection path.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// What replaces a secret value.
pub const MASK: &str = "[REDACTED]";

/// Patterns and their replacements, applied in order.
static RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    let rules: [(&str, &'static str); 6] = [
        // JWTs first: they also appear as `token=` values and must vanish whole.
        (
            r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
            "[REDACTED-JWT]",
        ),
        (r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}", "${1}[REDACTED]"),
        (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "[REDACTED-AWS-KEY]"),
        (
            r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{8,}",
            "[REDACTED-API-KEY]",
        ),
        // key=value in query strings, form bodies and configs.
        (
            r"(?i)\b((?:password|passwd|pwd|pass|secret|token|api[_-]?key|access[_-]?token|refresh[_-]?token|client[_-]?secret|aws_secret_access_key|session)=)[^&\s;,]+",
            "${1}[REDACTED]",
        ),
        // JSON bodies: "password": "..."
        (
            r#"(?i)("(?:password|passwd|secret|token|api[_-]?key|access[_-]?token|client[_-]?secret)"\s*:\s*")[^"]*""#,
            "${1}[REDACTED]\"",
        ),
    ];
    rules
        .into_iter()
        .map(|(re, rep)| (Regex::new(re).expect("redaction pattern compiles"), rep))
        .collect()
});

/// `text` with passwords, tokens, bearer credentials, JWTs, AWS access keys and
/// Stripe-style API keys masked; borrowed unchanged when nothing matched.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for (re, rep) in RULES.iter() {
        if let Cow::Owned(s) = re.replace_all(&out, *rep) {
            out = Cow::Owned(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_line_is_borrowed_unchanged() {
        let line = r#"GET /products?page=2 HTTP/1.1" 200 512"#;
        assert!(matches!(redact(line), Cow::Borrowed(_)));
    }

    #[test]
    fn query_password_and_token_are_masked() {
        let out = redact("POST /login?user=bob&password=hunter2&token=abc123 HTTP/1.1");
        assert!(!out.contains("hunter2") && !out.contains("abc123"), "{out}");
        assert!(out.contains("user=bob"));
    }

    #[test]
    fn bearer_jwt_aws_and_stripe_keys_are_masked() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlX2hlcmU";
        let line = format!(
            "Authorization: Bearer {jwt} key=AKIAIOSFODNN7EXAMPLE sk_live_4eC39HqLyjWDarjtT1"
        );
        let out = redact(&line);
        for secret in [jwt, "AKIAIOSFODNN7EXAMPLE", "sk_live_4eC39HqLyjWDarjtT1"] {
            assert!(!out.contains(secret), "{secret} leaked in {out}");
        }
        let opaque = redact("authorization: bearer 0123456789abcdef");
        assert!(!opaque.contains("0123456789abcdef"), "{opaque}");
    }

    #[test]
    fn json_password_value_is_masked() {
        let out = redact(r#"{"user":"amy","password":"p@ss w0rd"}"#);
        assert_eq!(out, r#"{"user":"amy","password":"[REDACTED]"}"#);
    }
}
