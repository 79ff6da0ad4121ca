//! SigmaHQ's web rules (test corpus) must compile with our Sigma compiler.
//!
//! Reads `$PALISADE_CORPUS` or `$CARGO_MANIFEST_DIR/../shared/corpus`; fails with a
//! clear message when the corpus is absent rather than passing silently.

use std::path::PathBuf;
use std::sync::Arc;

use palisade::config::DetectionConfig;
use palisade::detect::engine::Engine;
use palisade::detect::sigma::{RuleSet, rule_files};
use palisade::event::{Event, EventKind};

fn corpus() -> PathBuf {
    let dir = std::env::var_os("PALISADE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    assert!(
        dir.join("sigma-web").is_dir(),
        "test corpus not found at {} (set PALISADE_CORPUS to the corpus folder)",
        dir.display()
    );
    dir
}

fn compile_all(sub: &str) -> (usize, Vec<String>) {
    let files = rule_files(&corpus().join(sub)).expect("corpus rules readable");
    assert!(!files.is_empty(), "no rules under {sub}");
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        if let Err(e) = RuleSet::from_yaml_str(&text, &f.display().to_string()) {
            failures.push(e.to_string());
        }
    }
    (files.len(), failures)
}

#[test]
fn every_sigmahq_webserver_generic_rule_compiles() {
    let (n, failures) = compile_all("sigma-web/rules/web/webserver_generic");
    println!("webserver_generic: {}/{n} compile", n - failures.len());
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_sigmahq_web_rule_compiles() {
    let (n, failures) = compile_all("sigma-web/rules/web");
    println!("rules/web: {}/{n} compile", n - failures.len());
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn sigmahq_sql_injection_rule_matches_an_attack_line_and_not_a_404() {
    let path =
        corpus().join("sigma-web/rules/web/webserver_generic/web_sql_injection_in_access_logs.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let rules = Arc::new(RuleSet::from_yaml_str(&text, "sqli").unwrap());
    let engine = Engine::new(rules, &DetectionConfig::default());
    let mut ev = Event::new(Arc::from("t"), 0, String::new());
    ev.kind = EventKind::Access;
    ev.method = Some("GET".into());
    ev.set_url("/item?id=1%20UNION%20SELECT%20password%20FROM%20users");
    ev.raw = "192.0.2.1 - - [x] \"GET /item?id=1%20UNION%20SELECT%20password%20FROM%20users HTTP/1.1\" 200 1".into();
    ev.status = Some(200);
    let why = engine.explain(&ev);
    assert_eq!(why.len(), 1);
    assert!(
        why[0]
            .selections
            .iter()
            .any(|s| s.name == "keywords" && s.matched)
    );
    ev.status = Some(404);
    assert!(
        engine.explain(&ev).is_empty(),
        "filter_main_status must exclude 404"
    );
}
