//! Secrets are masked before an alert leaves the host. The patterns are the store's
//! (`store::redact`): one list, so what is kept and what is sent agree.

pub use crate::store::redact::redact;

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

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
