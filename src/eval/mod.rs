//! Evaluation harness behind `palisade eval`: measures a detector on the shared corpus.
//!
//! The thing measured is a [`Judge`]: anything that looks at one rendered nginx `combined`
//! access-log line and says which attack classes it sees. The CLI passes a judge that runs
//! the real pipeline (parser → classifier → rules); [`judges::RunbookJudge`] is the
//! reference runbook's `grep -iE` patterns, run over the same inputs as a baseline so the
//! report shows both side by side.
//!
//! Inputs come from the corpus directory (see [`corpus_dir`]), never from copies:
//! - [`crs`]: OWASP CRS go-ftw regression tests, rendered into log lines ([`render`]),
//!   split into observable / not observable, scored per family and paranoia level;
//!   negatives scored against the labels in `data/crs-negative-labels.tsv`.
//! - [`payloads`]: PayloadsAllTheThings lists under several client encodings, and the
//!   libinjection false-positive list.
//! - [`reallog`]: a real access log; every line that fires is listed for a person to judge.
//! - [`fail2ban`]: optional, annotated fail2ban sample logs through the judge's host extraction.
//!
//! [`run`] drives them all and returns an [`EvalReport`] (JSON via serde, text via
//! [`EvalReport::render_text`]).

pub mod crs;
pub mod fail2ban;
pub mod judges;
pub mod payloads;
pub mod reallog;
pub mod render;
pub mod report;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use judges::{RunbookJudge, SubstringJudge};
pub use report::{EvalReport, Scores};

/// Environment variable naming the corpus directory.
pub const CORPUS_ENV: &str = "PALISADE_CORPUS";

/// What a detector says about one rendered access-log line.
pub trait Judge {
    /// Classify one line. An empty `classes` means "nothing seen".
    fn judge(&mut self, line: &str) -> Verdict;

    /// Short name shown in report columns.
    fn name(&self) -> &str {
        "palisade"
    }

    /// The client host the detector would count a failure against, for the optional
    /// fail2ban comparison. `None` means "not a failure line" (or not supported).
    fn failure_host(&mut self, _line: &str) -> Option<String> {
        None
    }
}

/// Any closure from a line to a verdict is a judge (named "palisade" in the report), so the
/// CLI can wire the pipeline without a wrapper type.
impl<F: FnMut(&str) -> Verdict> Judge for F {
    fn judge(&mut self, line: &str) -> Verdict {
        self(line)
    }
}

/// A judge's answer for one line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Attack classes seen, e.g. `sqli`, `xss`, `traversal`, `cmdi`, `scanner_ua`.
    pub classes: Vec<String>,
    /// Why, in words a person can check (matched text, rule id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

impl Verdict {
    /// True when the judge saw any attack class.
    pub fn fired(&self) -> bool {
        !self.classes.is_empty()
    }

    /// True when `class` is among the classes seen.
    pub fn has(&self, class: &str) -> bool {
        self.classes.iter().any(|c| c == class)
    }
}

/// What [`run`] measures and how much it reports.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Also run the runbook grep baseline on the same inputs.
    pub baseline: bool,
    /// Include every missed attack case (id and rendered line) in the report.
    pub misses: bool,
    /// Also score the fail2ban annotated logs through [`Judge::failure_host`].
    pub fail2ban: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            baseline: true,
            misses: false,
            fail2ban: false,
        }
    }
}

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(
        "corpus directory {path} not found; set {CORPUS_ENV}=/path/to/corpus (it must hold \
         crs/, payloads/, benign/ and real/)"
    )]
    CorpusMissing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse go-ftw YAML {path}: {source}")]
    Yaml {
        path: PathBuf,
        source: serde_norway::Error,
    },
    #[error("bad data table {table} line {line}: {reason}")]
    Table {
        table: &'static str,
        line: usize,
        reason: String,
    },
}

/// The corpus directory: `$PALISADE_CORPUS`, else `<repo>/../shared/corpus`. A git
/// worktree nested deeper than the main checkout finds the same folder by walking up
/// (`<repo>/../../shared/corpus`, ...); if none exists the first candidate is returned so
/// the error names it.
pub fn corpus_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CORPUS_ENV) {
        return PathBuf::from(dir);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let default = repo.join("../shared/corpus");
    repo.ancestors()
        .skip(1)
        .map(|a| a.join("shared/corpus"))
        .find(|c| c.join("crs").is_dir())
        .unwrap_or(default)
}

/// Checks that `corpus` looks like the shared corpus, with an error that says how to fix it.
pub fn check_corpus(corpus: &Path) -> Result<(), EvalError> {
    if corpus.join("crs").is_dir() {
        return Ok(());
    }
    Err(EvalError::CorpusMissing {
        path: corpus.to_path_buf(),
    })
}

/// Runs every measurement over `corpus` with `judge` (and the runbook baseline when
/// `opts.baseline`), and returns the report.
pub fn run(
    corpus: &Path,
    judge: &mut dyn Judge,
    opts: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    check_corpus(corpus)?;
    let inputs = Inputs::load(corpus)?;
    let subject = score(&inputs, judge, opts)?;
    let baseline = if opts.baseline {
        let mut runbook = RunbookJudge::new();
        let no_misses = EvalOptions {
            misses: false,
            ..opts.clone()
        };
        Some(score(&inputs, &mut runbook, &no_misses)?)
    } else {
        None
    };
    Ok(EvalReport {
        corpus: corpus.display().to_string(),
        crs_totals: inputs.crs.totals(),
        level_check: inputs.crs.level_check(),
        subject,
        baseline,
    })
}

/// Everything read from the corpus once, shared by the judges being compared.
struct Inputs {
    crs: crs::CrsSet,
    payloads: Vec<payloads::PayloadList>,
    benign: Vec<String>,
    real: Vec<String>,
    fail2ban_dir: PathBuf,
}

impl Inputs {
    fn load(corpus: &Path) -> Result<Inputs, EvalError> {
        Ok(Inputs {
            crs: crs::CrsSet::load(&corpus.join("crs"))?,
            payloads: payloads::load_lists(&corpus.join("payloads"))?,
            benign: payloads::load_benign(&corpus.join("benign/libinjection-false_positives.txt"))?,
            real: reallog::load(&corpus.join("real/elastic_examples_apache_logs.log"))?,
            fail2ban_dir: corpus.join("fail2ban/logs"),
        })
    }
}

fn score(inputs: &Inputs, judge: &mut dyn Judge, opts: &EvalOptions) -> Result<Scores, EvalError> {
    let crs = inputs.crs.score(judge, opts.misses);
    let payload_rows = payloads::score_lists(&inputs.payloads, judge);
    let libinjection = payloads::score_benign(&inputs.benign, judge);
    let real_log = reallog::score(&inputs.real, judge);
    let fail2ban = if opts.fail2ban {
        Some(fail2ban::score(&inputs.fail2ban_dir, judge)?)
    } else {
        None
    };
    let mut misses = crs.misses;
    if opts.misses {
        misses.extend(payload_rows.misses);
    }
    Ok(Scores {
        judge: judge.name().to_string(),
        crs_recall: crs.recall,
        crs_negatives: crs.negatives,
        crs_benign_fps: crs.benign_fps,
        payloads: payload_rows.rows,
        libinjection,
        real_log,
        fail2ban,
        misses,
    })
}

/// Reads a whole file as bytes and converts it lossily, with a typed error.
fn read_text(path: &Path) -> Result<String, EvalError> {
    let bytes = std::fs::read(path).map_err(|source| EvalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
