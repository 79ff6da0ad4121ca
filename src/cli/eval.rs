//! `palisade eval`: detection quality on labelled corpora, palisade beside the
//! runbook's grep patterns. The judge is the real pipeline: the nginx parser, the
//! classifiers and the built-in rules.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use palisade::config::{Config, ParserConfig, SourceConfig};
use palisade::detect::classify::Classifier;
use palisade::detect::engine::Engine;
use palisade::detect::sigma::RuleSet;
use palisade::eval::{EvalOptions, Judge, Verdict};
use palisade::event::Event;
use palisade::parse::{self, Parser};
use palisade::sources::Line;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The corpus folder (default: $PALISADE_CORPUS, else ../shared/corpus).
    #[arg(long, env = "PALISADE_CORPUS")]
    pub corpus: Option<PathBuf>,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Include every missed case in the output.
    #[arg(long)]
    pub misses: bool,
    /// Leave out the runbook grep baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Also score the fail2ban annotated logs (client extraction of failures).
    #[arg(long)]
    pub fail2ban: bool,
}

/// The pipeline as a judge: one rendered access-log line in, the attack classes the
/// classifiers found and the rules that matched out.
struct PipelineJudge {
    parser: Box<dyn Parser>,
    auto: Box<dyn Parser>,
    classifier: Classifier,
    engine: Engine,
    events: Vec<Event>,
}

impl PipelineJudge {
    fn new(config: &Config) -> Result<PipelineJudge> {
        let nginx = SourceConfig {
            parser: ParserConfig::Nginx {
                log_format: "combined".into(),
            },
            ..SourceConfig::default()
        };
        let auto = SourceConfig {
            parser: ParserConfig::Auto,
            ..SourceConfig::default()
        };
        let rules = Arc::new(RuleSet::load(&config.rules).context("loading rules")?);
        Ok(PipelineJudge {
            parser: parse::build(&nginx, &config.network)?,
            auto: parse::build(&auto, &config.network)?,
            classifier: Classifier::new(),
            engine: Engine::new(rules, &config.detection),
            events: Vec::new(),
        })
    }

    fn events(&mut self, text: &str, auto: bool) -> Vec<Event> {
        let line = Line {
            source: Arc::from("eval"),
            path: Arc::from("-"),
            offset: 0,
            text: text.to_string(),
            truncated: false,
            invalid_utf8: false,
        };
        self.events.clear();
        let parser = if auto {
            &mut self.auto
        } else {
            &mut self.parser
        };
        if parser.parse(&line, &mut self.events).is_ok() {
            parser.flush(&mut self.events);
        }
        std::mem::take(&mut self.events)
    }
}

impl Judge for PipelineJudge {
    fn judge(&mut self, text: &str) -> Verdict {
        let mut classes: Vec<String> = Vec::new();
        let mut why: Vec<String> = Vec::new();
        for mut ev in self.events(text, false) {
            self.classifier.classify(&mut ev);
            classes.extend(ev.attacks.names().map(String::from));
            why.extend(ev.findings.iter().map(|f| {
                format!(
                    "{} in {} after [{}]: {}",
                    f.class, f.part, f.decoding, f.reason
                )
            }));
            for m in self.engine.explain(&ev) {
                if m.generates && !why.iter().any(|w| w.contains(&m.rule.title)) {
                    why.push(format!("rule: {}", m.rule.title));
                }
            }
        }
        classes.sort();
        classes.dedup();
        let explanation = (!why.is_empty()).then(|| why.join("; "));
        Verdict {
            classes,
            explanation,
        }
    }

    fn failure_host(&mut self, text: &str) -> Option<String> {
        self.events(text, true)
            .into_iter()
            .find_map(|ev| ev.source_ip.map(|ip| ip.to_string()))
    }
}

pub fn run(args: EvalArgs, config_path: Option<&Path>) -> Result<i32> {
    let config = super::load_config(config_path)?;
    let corpus = args.corpus.unwrap_or_else(palisade::eval::corpus_dir);
    let mut judge = PipelineJudge::new(&config)?;
    let opts = EvalOptions {
        baseline: !args.no_baseline,
        misses: args.misses,
        fail2ban: args.fail2ban,
    };
    let report = palisade::eval::run(&corpus, &mut judge, &opts)
        .with_context(|| format!("evaluating on {}", corpus.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(0)
}
