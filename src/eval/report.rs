//! The evaluation report: numbers for one judge ([`Scores`]), the baseline beside it, and
//! the text rendering (comfy-table) that `palisade eval` prints.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

/// Everything `palisade eval` reports.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub corpus: String,
    /// Case counts of the CRS set, independent of any judge.
    pub crs_totals: CrsTotals,
    /// Per family: tests per paranoia level from `data/crs-rule-levels.tsv` vs the corpus README.
    pub level_check: Vec<LevelCheck>,
    /// The judge under test.
    pub subject: Scores,
    /// The runbook grep baseline on the same inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Scores>,
}

/// Counts of the CRS regression set.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CrsTotals {
    pub files: usize,
    pub tests: usize,
    pub expect: usize,
    pub no_expect: usize,
    /// Tests that only check status or a log regex.
    pub other: usize,
    /// `expect` cases whose payload is not in the access log (body, cookie, other header).
    pub expect_not_observable: usize,
    /// `no_expect` cases that leave a trace in the access log (the ones labelled).
    pub no_expect_log_visible: usize,
}

/// Tests per paranoia level for one family: ours vs the corpus README.
#[derive(Debug, Clone, Serialize)]
pub struct LevelCheck {
    pub family: String,
    pub ours: String,
    pub readme: String,
    /// Exact match, no `?` rules.
    pub matches: bool,
    /// No known level exceeds the README and the `?` rules fill exactly the gaps.
    pub consistent: bool,
}

/// One judge's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    pub judge: String,
    /// CRS attack cases per family × paranoia level.
    pub crs_recall: Vec<RecallRow>,
    /// CRS log-visible negatives per family.
    pub crs_negatives: Vec<NegativeRow>,
    /// Benign CRS negatives the judge flagged (each one a false positive to study).
    pub crs_benign_fps: Vec<Flagged>,
    /// Payload lists per encoding.
    pub payloads: Vec<PayloadRow>,
    pub libinjection: BenignScore,
    pub real_log: RealLogScore,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail2ban: Option<Vec<Fail2banRow>>,
    /// Missed attack cases (only with `--misses`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub misses: Vec<Miss>,
}

/// CRS attack (`expect_ids`) cases of one family at one paranoia level.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecallRow {
    pub family: String,
    /// `1`..`4`, or `?` when the rule's level is not established.
    pub paranoia: String,
    /// Cases whose payload is in the access log.
    pub observable: usize,
    pub detected: usize,
    /// Detected with the family's own class (e.g. `sqli` for 942).
    pub right_class: usize,
    /// Cases whose payload is only in a body, cookie or other header: never a miss.
    pub not_observable: usize,
    /// Rules with at least one observable case / rules detected at least once.
    pub rules_observable: usize,
    pub rules_detected: usize,
    /// Rules with observable cases that were never detected, for a developer to study.
    pub rules_undetected: Vec<u32>,
    /// Secondary figure: form bodies and cookies moved into the query string.
    pub moved_observable: usize,
    pub moved_detected: usize,
}

/// CRS log-visible negatives of one family.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NegativeRow {
    pub family: String,
    pub benign: usize,
    pub attack_like: usize,
    /// Log-visible negatives without a label (must be 0; see the label-file test).
    pub unlabeled: usize,
    /// Benign negatives flagged: the false positives.
    pub benign_flagged: usize,
    pub attack_like_flagged: usize,
}

/// A line the judge flagged, for a person to check.
#[derive(Debug, Clone, Serialize)]
pub struct Flagged {
    pub id: String,
    pub line: String,
    pub classes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

/// One payload list under one encoding and placement.
#[derive(Debug, Clone, Serialize)]
pub struct PayloadRow {
    pub list: String,
    /// `query` (`/search?q=`) or `path`.
    pub placement: String,
    pub encoding: String,
    pub total: usize,
    pub detected: usize,
    pub right_class: usize,
}

/// The libinjection false-positive list as query values.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenignScore {
    pub total: usize,
    pub flagged: usize,
    pub flagged_entries: Vec<String>,
}

/// The real access log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RealLogScore {
    pub lines: usize,
    pub per_10k: f64,
    /// Every line that fired (line numbers are 1-based).
    pub hits: Vec<RealHit>,
}

/// One real-log line that fired.
#[derive(Debug, Clone, Serialize)]
pub struct RealHit {
    pub line_no: usize,
    pub classes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    pub line: String,
}

/// fail2ban annotated lines of one file through [`super::Judge::failure_host`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Fail2banRow {
    pub file: String,
    pub match_true: usize,
    /// `match:true` lines where the judge named the expected host.
    pub true_with_host: usize,
    pub match_false: usize,
    /// `match:false` lines where the judge named a host anyway.
    pub false_with_host: usize,
}

/// A missed attack case, for a developer to study.
#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    pub source: String,
    pub id: String,
    pub line: String,
}

impl EvalReport {
    /// All tables, then the real-log hits, as plain text.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("Corpus: {}\n", self.corpus));
        out.push_str(&render_runbook_patterns(&self.judges()));
        out.push_str(&self.render_crs_totals());
        out.push_str(&self.render_recall());
        out.push_str(&self.render_negatives());
        out.push_str(&self.render_payloads());
        out.push_str(&self.render_benign());
        out.push_str(&self.render_fail2ban());
        out.push_str(&self.render_real_hits());
        out
    }

    fn judges(&self) -> Vec<&Scores> {
        std::iter::once(&self.subject)
            .chain(self.baseline.as_ref())
            .collect()
    }

    fn render_crs_totals(&self) -> String {
        let t = &self.crs_totals;
        let mut s = format!(
            "\nCRS regression set: {} files, {} tests: {} expect_ids, {} no_expect_ids, {} \
             other; {} attack cases not observable in an access log (payload only in a body, \
             Cookie or other header; counted apart, never as misses); {} log-visible \
             negatives labelled.\n",
            t.files,
            t.tests,
            t.expect,
            t.no_expect,
            t.other,
            t.expect_not_observable,
            t.no_expect_log_visible
        );
        let mut table = new_table(&[
            "family",
            "tests per PL (data/crs-rule-levels.tsv)",
            "README",
            "match",
        ]);
        for c in &self.level_check {
            let m = match (c.matches, c.consistent) {
                (true, _) => "yes",
                (false, true) => "gaps = PL? rules",
                (false, false) => "NO",
            };
            table.add_row(vec![
                c.family.clone(),
                c.ours.clone(),
                c.readme.clone(),
                m.into(),
            ]);
        }
        s.push_str(&format!("{table}\n"));
        s
    }

    fn render_recall(&self) -> String {
        let judges = self.judges();
        let mut head = vec!["family", "PL", "observable", "not obs."];
        let names: Vec<String> = judges.iter().map(|j| j.judge.clone()).collect();
        let cols: Vec<String> = names
            .iter()
            .flat_map(|n| {
                [
                    format!("{n}: cases"),
                    format!("{n}: rules"),
                    format!("{n}: moved*"),
                ]
            })
            .collect();
        head.extend(cols.iter().map(String::as_str));
        let mut table = new_table(&head);
        for (i, row) in self.subject.crs_recall.iter().enumerate() {
            let mut cells = vec![
                row.family.clone(),
                row.paranoia.clone(),
                row.observable.to_string(),
                row.not_observable.to_string(),
            ];
            for j in &judges {
                let r = &j.crs_recall[i];
                cells.push(ratio(r.detected, r.observable));
                cells.push(format!("{}/{}", r.rules_detected, r.rules_observable));
                cells.push(ratio(r.moved_detected, r.moved_observable));
            }
            table.add_row(cells);
        }
        let mut table = format!("{table}\n");
        for row in self
            .subject
            .crs_recall
            .iter()
            .filter(|r| !r.rules_undetected.is_empty())
        {
            let ids: Vec<String> = row.rules_undetected.iter().map(u32::to_string).collect();
            table.push_str(&format!(
                "  {} never detected ({} PL{}): {}\n",
                self.subject.judge,
                row.family,
                row.paranoia,
                ids.join(" ")
            ));
        }
        format!(
            "\nCRS attack cases (expect_ids), detected / observable, per family and paranoia \
             level (PL `?` = rule level not established). rules = rules detected at least once \
             / rules with observable cases. *moved = secondary figure with form bodies and \
             cookies moved into the query string.\n{table}"
        )
    }

    fn render_negatives(&self) -> String {
        let judges = self.judges();
        let mut head = vec!["family", "benign", "attack-like", "FP target"];
        let cols: Vec<String> = judges
            .iter()
            .flat_map(|j| {
                [
                    format!("{}: FP on benign", j.judge),
                    format!("{}: attack-like flagged", j.judge),
                ]
            })
            .collect();
        head.extend(cols.iter().map(String::as_str));
        let mut table = new_table(&head);
        for (i, row) in self.subject.crs_negatives.iter().enumerate() {
            let mut cells = vec![
                row.family.clone(),
                row.benign.to_string(),
                row.attack_like.to_string(),
                fp_target(&row.family).into(),
            ];
            for j in &judges {
                let r = &j.crs_negatives[i];
                cells.push(r.benign_flagged.to_string());
                cells.push(r.attack_like_flagged.to_string());
            }
            table.add_row(cells);
        }
        let mut s = format!(
            "\nCRS log-visible negatives (no_expect_ids), labels from data/crs-negative-labels.tsv; \
             false positives counted on benign only.\n{table}\n"
        );
        for fp in &self.subject.crs_benign_fps {
            s.push_str(&format!(
                "  FP {} [{}]: {}\n",
                fp.id,
                fp.classes.join(","),
                fp.line
            ));
        }
        s
    }

    fn render_payloads(&self) -> String {
        let judges = self.judges();
        let mut head = vec!["list", "placement", "encoding", "payloads"];
        let cols: Vec<String> = judges
            .iter()
            .flat_map(|j| {
                [
                    format!("{}: recall", j.judge),
                    format!("{}: right class", j.judge),
                ]
            })
            .collect();
        head.extend(cols.iter().map(String::as_str));
        let mut table = new_table(&head);
        for (i, row) in self.subject.payloads.iter().enumerate() {
            let mut cells = vec![
                row.list.clone(),
                row.placement.clone(),
                row.encoding.clone(),
                row.total.to_string(),
            ];
            for j in &judges {
                let r = &j.payloads[i];
                cells.push(ratio(r.detected, r.total));
                cells.push(ratio(r.right_class, r.total));
            }
            table.add_row(cells);
        }
        format!(
            "\nPayload lists as `GET /search?q=<payload>` (traversal also as the path; `{{FILE}}` = \
             etc/passwd). Target: recall >= 95% per list and encoding.\n{table}\n"
        )
    }

    fn render_benign(&self) -> String {
        let mut table = new_table(&["benign set", "judge", "flagged", "rate"]);
        for j in self.judges() {
            let l = &j.libinjection;
            table.add_row(vec![
                "libinjection false_positives (form-encoded q=)".into(),
                j.judge.clone(),
                format!("{}/{}", l.flagged, l.total),
                percent(l.flagged, l.total),
            ]);
            let r = &j.real_log;
            table.add_row(vec![
                "real access log".into(),
                j.judge.clone(),
                format!("{}/{}", r.hits.len(), r.lines),
                format!("{:.1} per 10k", r.per_10k),
            ]);
        }
        format!(
            "\nFalse positives on benign inputs. Target: libinjection list <= 3% (libinjection \
             itself flags about 5%).\n{table}\n"
        )
    }

    fn render_fail2ban(&self) -> String {
        let Some(rows) = &self.subject.fail2ban else {
            return String::new();
        };
        let mut table = new_table(&[
            "file",
            "match:true",
            "host named",
            "match:false",
            "host named",
        ]);
        for r in rows {
            table.add_row(vec![
                r.file.clone(),
                r.match_true.to_string(),
                r.true_with_host.to_string(),
                r.match_false.to_string(),
                r.false_with_host.to_string(),
            ]);
        }
        format!(
            "\nfail2ban annotated lines ({}).\n{table}\n",
            self.subject.judge
        )
    }

    fn render_real_hits(&self) -> String {
        let mut s = String::new();
        for j in self.judges() {
            s.push_str(&format!(
                "\nReal-log lines flagged by {} ({}):\n",
                j.judge,
                j.real_log.hits.len()
            ));
            for h in &j.real_log.hits {
                let why = h.explanation.as_deref().unwrap_or("-");
                s.push_str(&format!(
                    "  {:>5} [{}] {}\n        {}\n",
                    h.line_no,
                    h.classes.join(","),
                    why,
                    h.line
                ));
            }
        }
        s
    }
}

/// The baseline's exact patterns, so nobody has to guess what "the runbook" ran.
fn render_runbook_patterns(judges: &[&Scores]) -> String {
    if !judges.iter().any(|j| j.judge == super::RunbookJudge::NAME) {
        return String::new();
    }
    let mut s = format!(
        "{} = grep -iE over whole lines:\n",
        super::RunbookJudge::NAME
    );
    for (class, pattern, origin) in super::judges::RUNBOOK_PATTERNS {
        s.push_str(&format!("  {class:<10} {pattern}   ({origin})\n"));
    }
    s
}

/// The false-positive budget on benign CRS negatives, per family.
fn fp_target(family: &str) -> &'static str {
    match family.split(' ').next() {
        Some("942") | Some("930") => "0",
        Some("941") => "<= 2",
        Some("932") => "<= 3",
        _ => "-",
    }
}

fn new_table(head: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(head.to_vec());
    table
}

fn ratio(hit: usize, total: usize) -> String {
    if total == 0 {
        return "-".into();
    }
    format!("{hit}/{total} {}", percent(hit, total))
}

fn percent(hit: usize, total: usize) -> String {
    if total == 0 {
        return "-".into();
    }
    format!("{:.1}%", 100.0 * hit as f64 / total as f64)
}
