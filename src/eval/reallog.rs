//! The real access log: every line through the judge; every line that fires is listed with
//! its line number, classes and explanation so a person can decide whether it was an attack.

use std::path::Path;

use super::report::{RealHit, RealLogScore};
use super::{EvalError, Judge, read_text};

/// Reads the log's lines (lossy UTF-8; a trailing `\r` is dropped).
pub fn load(path: &Path) -> Result<Vec<String>, EvalError> {
    let text = read_text(path)?;
    Ok(text
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect())
}

/// Runs every line through `judge`.
pub fn score(lines: &[String], judge: &mut dyn Judge) -> RealLogScore {
    let mut score = RealLogScore {
        lines: lines.len(),
        ..RealLogScore::default()
    };
    for (i, line) in lines.iter().enumerate() {
        let verdict = judge.judge(line);
        if !verdict.fired() {
            continue;
        }
        score.hits.push(RealHit {
            line_no: i + 1,
            classes: verdict.classes,
            explanation: verdict.explanation,
            line: line.clone(),
        });
    }
    if !lines.is_empty() {
        score.per_10k = score.hits.len() as f64 * 10_000.0 / lines.len() as f64;
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::SubstringJudge;

    #[test]
    fn every_firing_line_is_listed_with_its_number() {
        let lines: Vec<String> = ["GET /a", "GET /alert", "GET /b", "GET /ALERT"]
            .map(String::from)
            .to_vec();
        let score = score(&lines, &mut SubstringJudge::new(&[("alert", "xss")]));
        let numbers: Vec<usize> = score.hits.iter().map(|h| h.line_no).collect();
        assert_eq!(numbers, [2, 4]);
        assert_eq!(score.per_10k, 5_000.0);
    }
}
