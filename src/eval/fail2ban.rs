//! Optional: fail2ban's annotated sample logs through [`Judge::failure_host`].
//!
//! Each `# failJSON: {...}` annotation describes the next log line: `"match": true` lines
//! must be counted as a failure of `"host"`, `"match": false` lines must not. The parser
//! team owns the detailed figures; this hook only counts, per file, how often the judge
//! named the expected host and how often it named a host on a `match:false` line.
//! `# filterOptions` modes are not distinguished (all blocks are scored together).

use std::path::Path;

use super::report::Fail2banRow;
use super::{EvalError, Judge, read_text};

const ANNOTATION: &str = "# failJSON:";

/// Scores every file under `dir` (the corpus `fail2ban/logs/` folder), sorted by name.
pub fn score(dir: &Path, judge: &mut dyn Judge) -> Result<Vec<Fail2banRow>, EvalError> {
    let entries = std::fs::read_dir(dir).map_err(|source| EvalError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut rows = Vec::new();
    for path in paths {
        let mut row = score_text(&read_text(&path)?, judge);
        row.file = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        rows.push(row);
    }
    Ok(rows)
}

/// Scores one annotated log text.
pub fn score_text(text: &str, judge: &mut dyn Judge) -> Fail2banRow {
    let mut row = Fail2banRow::default();
    let mut pending: Option<serde_json::Value> = None;
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(json) = line.strip_prefix(ANNOTATION) {
            pending = serde_json::from_str(json.trim()).ok();
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some(annotation) = pending.take() else {
            continue;
        };
        let host = judge.failure_host(line);
        if annotation["match"].as_bool() == Some(true) {
            row.match_true += 1;
            let expected = annotation["host"].as_str();
            row.true_with_host += usize::from(expected.is_some() && host.as_deref() == expected);
        } else {
            row.match_false += 1;
            row.false_with_host += usize::from(host.is_some());
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::SubstringJudge;

    #[test]
    fn annotations_apply_to_the_next_log_line_only() {
        let text = "# failJSON: { \"match\": true, \"host\": \"192.0.2.1\" }\n\
                    192.0.2.1 - - [x] \"POST /login HTTP/1.1\" 401 0 \"-\" \"-\"\n\
                    192.0.2.9 - - [x] \"POST /login HTTP/1.1\" 401 0 \"-\" \"-\"\n\
                    # failJSON: { \"match\": false }\n\
                    192.0.2.2 - - [x] \"GET / HTTP/1.1\" 200 0 \"-\" \"-\"\n";
        let row = score_text(text, &mut SubstringJudge::new(&[(" 401 ", "auth_failure")]));
        assert_eq!(
            (
                row.match_true,
                row.true_with_host,
                row.match_false,
                row.false_with_host
            ),
            (1, 1, 1, 0)
        );
    }
}
