//! Judges that need no pipeline: the runbook grep baseline and a substring judge for tests.
//!
//! [`RunbookJudge`] reproduces what the reference runbook's cron scripts do: `grep -iE`
//! over whole access-log lines. The SQLi/XSS pattern and the traversal pattern are the
//! runbook's own; the command-injection and scanner patterns are the kind of one-liners
//! such cron scripts add (they are ours, kept deliberately simple and listed in
//! [`RUNBOOK_PATTERNS`] so the report can say exactly what was run).

use regex::Regex;

use super::{Judge, Verdict};

/// The baseline's patterns: (class, `grep -iE` pattern, where it comes from: `runbook` =
/// the reference runbook's own pattern, `cron-like` = our stand-in for the one-liners such
/// cron scripts add).
pub const RUNBOOK_PATTERNS: [(&str, &str, &str); 5] = [
    ("sqli", r"union select|drop table|exec", "runbook"),
    ("xss", r"script|alert", "runbook"),
    ("traversal", r"\.\./", "runbook"),
    (
        "cmdi",
        r"/etc/passwd|/bin/(ba)?sh|;[[:space:]]*(wget|curl|cat|id|uname)\b",
        "cron-like",
    ),
    (
        "scanner_ua",
        r"nikto|sqlmap|nmap|masscan|zgrab",
        "cron-like",
    ),
];

/// `grep -iE` over the whole line, one pattern per class (the runbook's single
/// `union select|drop table|exec|script|alert` is split into its SQL and script halves so
/// the class can be named; together they match exactly the same lines).
pub struct RunbookJudge {
    patterns: Vec<(&'static str, Regex)>,
}

impl RunbookJudge {
    /// The name shown in reports.
    pub const NAME: &'static str = "runbook grep";

    /// Compiles the [`RUNBOOK_PATTERNS`].
    pub fn new() -> RunbookJudge {
        let patterns = RUNBOOK_PATTERNS
            .iter()
            .map(|(class, pat, _)| {
                let re = Regex::new(&format!("(?i){pat}")).expect("runbook pattern compiles");
                (*class, re)
            })
            .collect();
        RunbookJudge { patterns }
    }
}

impl Default for RunbookJudge {
    fn default() -> Self {
        RunbookJudge::new()
    }
}

impl Judge for RunbookJudge {
    fn judge(&mut self, line: &str) -> Verdict {
        let mut verdict = Verdict::default();
        let mut why = Vec::new();
        for (class, re) in &self.patterns {
            if let Some(m) = re.find(line) {
                verdict.classes.push((*class).to_string());
                why.push(format!("{class}: grep matched `{}`", m.as_str()));
            }
        }
        if !why.is_empty() {
            verdict.explanation = Some(why.join("; "));
        }
        verdict
    }

    fn name(&self) -> &str {
        Self::NAME
    }
}

/// A judge for tests: fires `class` when the line contains `needle` (ASCII case-insensitive).
pub struct SubstringJudge {
    rules: Vec<(String, String)>,
}

impl SubstringJudge {
    /// `rules` are (needle, class) pairs.
    pub fn new(rules: &[(&str, &str)]) -> SubstringJudge {
        let rules = rules
            .iter()
            .map(|(n, c)| (n.to_ascii_lowercase(), (*c).to_string()))
            .collect();
        SubstringJudge { rules }
    }
}

impl Judge for SubstringJudge {
    fn judge(&mut self, line: &str) -> Verdict {
        let lower = line.to_ascii_lowercase();
        let mut verdict = Verdict::default();
        for (needle, class) in &self.rules {
            if lower.contains(needle.as_str()) && !verdict.has(class) {
                verdict.classes.push(class.clone());
                verdict.explanation = Some(format!("contains `{needle}`"));
            }
        }
        verdict
    }

    fn name(&self) -> &str {
        "substring"
    }

    fn failure_host(&mut self, line: &str) -> Option<String> {
        let fired = self.judge(line).fired();
        let first = line.split_whitespace().next()?;
        (fired && first.parse::<std::net::IpAddr>().is_ok()).then(|| first.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::render::LoggedRequest;

    fn runbook(uri: &str) -> Verdict {
        RunbookJudge::new().judge(&LoggedRequest::get(uri).to_combined())
    }

    #[test]
    fn runbook_flags_a_blog_tag_named_alert() {
        // The keyword grep cannot tell a word from an attack: this is its false positive.
        assert!(runbook("/blog/tags/alert").has("xss"));
        assert!(runbook("/docs/exec-summary.pdf").has("sqli"));
    }

    #[test]
    fn runbook_misses_encoded_and_commented_sqli() {
        assert!(!runbook("/item?id=1+UNION+SELECT+pass+FROM+users").fired());
        assert!(!runbook("/item?id=1%20UNION%20SELECT%20pass").fired());
        assert!(!runbook("/item?id=1/**/UNION/**/SELECT/**/1").fired());
        assert!(runbook("/item?id=1 union select 1").has("sqli"));
    }

    #[test]
    fn runbook_grep_is_case_insensitive_over_the_whole_line() {
        let mut req = LoggedRequest::get("/");
        req.user_agent = Some("SQLMAP/1.8".into());
        assert!(
            RunbookJudge::new()
                .judge(&req.to_combined())
                .has("scanner_ua")
        );
        assert!(runbook("/a/../../etc/passwd").has("traversal"));
    }

    #[test]
    fn substring_judge_fires_only_on_its_needles() {
        let mut j = SubstringJudge::new(&[("<script", "xss")]);
        assert!(j.judge("GET /?q=<SCRIPT>").has("xss"));
        assert!(!j.judge("GET /?q=scripture").fired());
    }
}
