//! Attack payload lists (PayloadsAllTheThings) and the libinjection false-positive list.
//!
//! Every payload becomes `GET /search?q=<payload>` under each [`Encoding`] a client might
//! use; traversal payloads are also sent as the path itself. `{FILE}` placeholders are
//! replaced with `etc/passwd`. The benign list is sent form-encoded, the way a browser
//! submits a search box.

use std::path::Path;

use super::render::{Encoding, LoggedRequest};
use super::report::{BenignScore, Miss, PayloadRow};
use super::{EvalError, Judge, read_text};

/// Categories in report order; the directory name is also the class a detector should name.
pub const CATEGORIES: [&str; 4] = ["sqli", "xss", "traversal", "cmdi"];

/// One payload file.
#[derive(Debug, Clone)]
pub struct PayloadList {
    /// `<category>/<file name>`.
    pub name: String,
    pub category: &'static str,
    pub payloads: Vec<String>,
}

/// [`score_lists`] output: table rows and the misses behind them.
pub struct PayloadScore {
    pub rows: Vec<PayloadRow>,
    pub misses: Vec<Miss>,
}

/// Reads every file of every category under `dir` (the corpus `payloads/` folder).
pub fn load_lists(dir: &Path) -> Result<Vec<PayloadList>, EvalError> {
    let mut lists = Vec::new();
    for category in CATEGORIES {
        let sub = dir.join(category);
        let entries = std::fs::read_dir(&sub).map_err(|source| EvalError::Read {
            path: sub.clone(),
            source,
        })?;
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.is_file()) {
            let payloads = non_empty_lines(&read_text(&path)?)
                .map(|p| p.replace("{FILE}", "etc/passwd"))
                .collect();
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            lists.push(PayloadList {
                name: format!("{category}/{file}"),
                category,
                payloads,
            });
        }
    }
    Ok(lists)
}

/// Reads the libinjection false-positive list: `#` lines and blank lines are not entries.
pub fn load_benign(path: &Path) -> Result<Vec<String>, EvalError> {
    let text = read_text(path)?;
    Ok(non_empty_lines(&text)
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

fn non_empty_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
}

/// The request for `payload` in a placement (`query` or `path`) and encoding.
pub fn payload_request(payload: &str, placement: &str, encoding: Encoding) -> LoggedRequest {
    let encoded = encoding.encode(payload);
    if placement == "path" {
        let sep = if encoded.starts_with('/') { "" } else { "/" };
        return LoggedRequest::get(format!("{sep}{encoded}"));
    }
    LoggedRequest::get(format!("/search?q={encoded}"))
}

/// Placements and encodings used for a category.
fn variants(category: &str) -> Vec<(&'static str, Encoding)> {
    let mut v: Vec<_> = Encoding::ALL.iter().map(|e| ("query", *e)).collect();
    if category == "traversal" {
        v.push(("path", Encoding::Minimal));
        v.push(("path", Encoding::Full));
    }
    v
}

/// Runs every payload of every list through `judge` in every variant.
pub fn score_lists(lists: &[PayloadList], judge: &mut dyn Judge) -> PayloadScore {
    let mut out = PayloadScore {
        rows: Vec::new(),
        misses: Vec::new(),
    };
    for list in lists {
        for (placement, encoding) in variants(list.category) {
            let mut row = PayloadRow {
                list: list.name.clone(),
                placement: placement.into(),
                encoding: encoding.as_str().into(),
                total: list.payloads.len(),
                detected: 0,
                right_class: 0,
            };
            for (i, payload) in list.payloads.iter().enumerate() {
                let line = payload_request(payload, placement, encoding).to_combined();
                let verdict = judge.judge(&line);
                row.detected += usize::from(verdict.fired());
                row.right_class += usize::from(verdict.has(list.category));
                if !verdict.fired() {
                    let id = format!("{}#{} {placement} {}", list.name, i + 1, encoding.as_str());
                    out.misses.push(Miss {
                        source: "payloads".into(),
                        id,
                        line,
                    });
                }
            }
            out.rows.push(row);
        }
    }
    out
}

/// Runs the benign entries, form-encoded as `q=`, through `judge`.
pub fn score_benign(entries: &[String], judge: &mut dyn Judge) -> BenignScore {
    let mut score = BenignScore {
        total: entries.len(),
        ..BenignScore::default()
    };
    for entry in entries {
        let line = payload_request(entry, "query", Encoding::Form).to_combined();
        if judge.judge(&line).fired() {
            score.flagged += 1;
            score.flagged_entries.push(entry.clone());
        }
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::SubstringJudge;

    #[test]
    fn traversal_payload_as_a_path_keeps_a_single_leading_slash() {
        let req = payload_request("../../etc/passwd", "path", Encoding::Minimal);
        assert_eq!(req.uri, "/../../etc/passwd");
        let req = payload_request("/etc/passwd", "path", Encoding::Minimal);
        assert_eq!(req.uri, "/etc/passwd");
    }

    #[test]
    fn recall_counts_per_list_and_encoding() {
        let list = PayloadList {
            name: "sqli/t".into(),
            category: "sqli",
            payloads: vec!["1 union select 2".into(), "' or 1=1".into()],
        };
        let mut judge = SubstringJudge::new(&[("union%20select", "sqli")]);
        let score = score_lists(&[list], &mut judge);
        let found: Vec<(String, usize)> = score
            .rows
            .iter()
            .map(|r| (r.encoding.clone(), r.detected))
            .collect();
        assert_eq!(
            found,
            [
                ("minimal".into(), 1),
                ("percent".into(), 1),
                ("form".into(), 0)
            ]
        );
        assert_eq!(score.misses.len(), 4);
    }
}
