//! The classifier never panics and stays bounded on hostile input.

use std::sync::LazyLock;
use std::time::Instant;

use palisade::detect::classify::Classifier;
use proptest::prelude::*;

static CLASSIFIER: LazyLock<Classifier> = LazyLock::new(Classifier::new);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn classify_text_never_panics(s in "\\PC{0,300}", part in 0usize..6) {
        let parts = ["url.path", "url.query", "url.original", "user_agent.original", "http.request.referrer", "other"];
        let c = &*CLASSIFIER;
        let (classes, findings) = c.classify_text(parts[part], &s);
        prop_assert_eq!(classes.is_empty(), findings.is_empty());
    }

    #[test]
    fn classify_never_panics_on_symbol_soup(s in "[%25a-fA-F0-9uUx\\\\.'\"<>/;|&$(){}#*!=+ -]{0,400}") {
        let c = &*CLASSIFIER;
        let _ = c.classify_text("url.original", &format!("/p?q={s}"));
        let _ = c.classify_text("user_agent.original", &s);
    }
}

#[test]
fn nested_percent_encoding_costs_linear_time() {
    // `%25252525…` must not trigger an exponential or unbounded decoding loop.
    let c = Classifier::new();
    let deep = format!("/p?q=%25{}2e%2e%2f", "25".repeat(50_000));
    let start = Instant::now();
    let _ = c.classify_text("url.original", &deep);
    let hostile = format!("/p?q={}", "${".repeat(20_000));
    let _ = c.classify_text("url.original", &hostile);
    let quotes = format!("/p?q={}", "'\"(/*".repeat(20_000));
    let _ = c.classify_text("url.original", &quotes);
    assert!(
        start.elapsed().as_secs_f64() < 2.0,
        "took {:?}",
        start.elapsed()
    );
}
