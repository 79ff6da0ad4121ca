//! Runs the evaluation harness over the shared corpus (`$PALISADE_CORPUS` or
//! `<repo>/../shared/corpus`). These tests fail, with a message naming the path, when the
//! corpus is absent: a harness that silently measured nothing would look like a pass.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use palisade::eval::crs::{CrsSet, negative_labels};
use palisade::eval::{self, EvalOptions, EvalReport, RunbookJudge};

fn corpus() -> std::path::PathBuf {
    let dir = eval::corpus_dir();
    if let Err(e) = eval::check_corpus(&dir) {
        panic!("shared corpus required for this test: {e}");
    }
    dir
}

/// The runbook baseline's report, computed once for all tests in this file.
fn runbook_report() -> &'static EvalReport {
    static REPORT: OnceLock<EvalReport> = OnceLock::new();
    REPORT.get_or_init(|| {
        let opts = EvalOptions {
            baseline: false,
            misses: true,
            fail2ban: false,
        };
        eval::run(&corpus(), &mut RunbookJudge::new(), &opts).expect("eval runs")
    })
}

#[test]
fn crs_totals_equal_the_corpus_readme_counts() {
    let t = &runbook_report().crs_totals;
    assert_eq!(t.files, 148);
    assert_eq!(t.tests, 2383);
    assert_eq!(t.expect, 1851);
    assert_eq!(t.no_expect, 530);
    assert_eq!(t.other, 2);
    assert_eq!(t.expect_not_observable + runbook_observable(), 1851);
}

fn runbook_observable() -> usize {
    runbook_report()
        .subject
        .crs_recall
        .iter()
        .map(|r| r.observable)
        .sum()
}

#[test]
fn payload_and_benign_list_sizes_equal_the_readme_counts() {
    let s = &runbook_report().subject;
    let mut per_category: BTreeMap<String, usize> = BTreeMap::new();
    for row in s
        .payloads
        .iter()
        .filter(|r| r.placement == "query" && r.encoding == "minimal")
    {
        let cat = row.list.split('/').next().unwrap_or_default().to_string();
        *per_category.entry(cat).or_default() += row.total;
    }
    let expected: BTreeMap<String, usize> = [
        ("cmdi", 531),
        ("sqli", 806),
        ("traversal", 1914),
        ("xss", 546),
    ]
    .map(|(k, v)| (k.into(), v))
    .into();
    assert_eq!(per_category, expected);
    assert_eq!(s.libinjection.total, 421);
    assert_eq!(s.real_log.lines, 10_000);
}

#[test]
fn every_log_visible_negative_has_exactly_one_label() {
    let set = CrsSet::load(&corpus().join("crs")).expect("CRS set loads");
    let labels = negative_labels().expect("label file parses (duplicates are an error)");
    let visible = set.visible_negative_ids();
    let unlabeled: Vec<&String> = visible
        .iter()
        .filter(|id| !labels.contains_key(*id))
        .collect();
    assert!(
        unlabeled.is_empty(),
        "log-visible negatives without a label: {unlabeled:?}"
    );
    let stale: Vec<&String> = labels.keys().filter(|id| !visible.contains(id)).collect();
    assert!(
        stale.is_empty(),
        "labels for cases that are not log-visible negatives: {stale:?}"
    );
}

#[test]
fn runbook_grep_flags_benign_lines_and_misses_encoded_attacks() {
    let s = &runbook_report().subject;
    // The grep fires on ordinary traffic (e.g. `script` in `javascript`/`.js` URLs).
    assert!(
        !s.real_log.hits.is_empty(),
        "expected runbook false positives on the real log"
    );
    // Form-encoded UNION+SELECT payloads slip past `union select`.
    let union_form = s
        .payloads
        .iter()
        .find(|r| r.list == "sqli/Generic_UnionSelect.txt" && r.encoding == "form")
        .expect("row present");
    assert!(union_form.detected * 2 < union_form.total, "{union_form:?}");
}

#[test]
fn report_renders_text_and_json_with_the_same_totals() {
    let report = runbook_report();
    let text = report.render_text();
    assert!(text.contains("2383 tests"), "{text}");
    assert!(text.contains("942 SQLi"));
    let json = serde_json::to_value(report).expect("serializes");
    assert_eq!(json["crs_totals"]["expect"], 1851);
    assert!(
        json["subject"]["misses"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
    );
}

#[test]
fn rule_level_table_agrees_with_the_readme_per_family() {
    for check in &runbook_report().level_check {
        assert!(
            check.consistent,
            "{}: ours {} vs README {}",
            check.family, check.ours, check.readme
        );
    }
    let exact: Vec<&str> = runbook_report()
        .level_check
        .iter()
        .filter(|c| c.matches)
        .map(|c| c.family.as_str())
        .collect();
    assert_eq!(
        exact.len(),
        5,
        "every family matches the README exactly: {exact:?}"
    );
}

#[test]
fn report_shows_the_judge_and_the_runbook_side_by_side() {
    // A closure is a judge: the CLI wires the real pipeline the same way.
    let mut judge = |line: &str| {
        let hit = line.to_ascii_lowercase().contains("%27");
        eval::Verdict {
            classes: if hit { vec!["sqli".into()] } else { vec![] },
            explanation: None,
        }
    };
    let report = eval::run(&corpus(), &mut judge, &EvalOptions::default()).expect("eval runs");
    let baseline = report.baseline.as_ref().expect("baseline runs by default");
    assert_eq!(report.subject.crs_recall.len(), baseline.crs_recall.len());
    assert_eq!(report.subject.payloads.len(), baseline.payloads.len());
    let text = report.render_text();
    assert!(
        text.contains("palisade: cases") && text.contains("runbook grep: cases"),
        "{text}"
    );
    assert!(
        report.subject.misses.is_empty(),
        "misses only with --misses"
    );
}
