//! `palisade rules`: list the loaded rules; test which rules a line triggers and why.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use palisade::config::{Config, SourceConfig};
use palisade::detect::sigma::RuleSet;
use palisade::event::Event;
use palisade::parse;
use palisade::sources::Line;

use super::Format;

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List every loaded rule (built-in and from rule folders).
    List {
        /// Extra folder of Sigma rules (repeatable).
        #[arg(long = "rules", value_name = "DIR")]
        rule_dirs: Vec<PathBuf>,
        /// One JSON object per rule on stdout (id, name, title, level, tags, description).
        #[arg(long)]
        json: bool,
    },
    /// Show which rules match a log line and why (lines from arguments or stdin).
    Test {
        /// The log lines; none reads them from stdin.
        lines: Vec<String>,
        /// Format of the lines (auto guesses per line).
        #[arg(short, long, value_enum, default_value_t = Format::Auto)]
        format: Format,
        /// nginx `log_format` for `--format nginx`.
        #[arg(
            long = "nginx-format",
            value_name = "LOG_FORMAT",
            default_value = "combined"
        )]
        nginx_format: String,
        /// Extra folder of Sigma rules (repeatable).
        #[arg(long = "rules", value_name = "DIR")]
        rule_dirs: Vec<PathBuf>,
        /// One JSON object per line on stdout: the parsed event (with the classifier's
        /// findings) and every rule it matches, with the reason.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: RulesCommand, config_path: Option<&Path>, _color: bool) -> Result<i32> {
    let mut config = super::load_config(config_path)?;
    match cmd {
        RulesCommand::List { rule_dirs, json } => {
            config.rules.dirs.extend(rule_dirs);
            list(&config, json)
        }
        RulesCommand::Test {
            lines,
            format,
            nginx_format,
            rule_dirs,
            json,
        } => {
            config.rules.dirs.extend(rule_dirs);
            test(&config, lines, format, &nginx_format, json)
        }
    }
}

fn list(config: &Config, json: bool) -> Result<i32> {
    let rules = RuleSet::load(&config.rules).context("loading rules")?;
    let metas = rules.metas();
    if json {
        for m in &metas {
            println!("{}", serde_json::to_string(&**m)?);
        }
        return Ok(0);
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["level", "title", "id", "tags"]);
    for m in &metas {
        table.add_row([m.level.as_str(), &m.title, &m.id, &m.tags.join(" ")]);
    }
    println!("{table}\n{} rules", metas.len());
    Ok(0)
}

fn test(
    config: &Config,
    mut lines: Vec<String>,
    format: Format,
    log_format: &str,
    json: bool,
) -> Result<i32> {
    if lines.is_empty() {
        // Bytes, mended like `scan` mends them: one invalid byte must not refuse the
        // whole input.
        let mut raw = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut raw)
            .context("reading stdin")?;
        lines = String::from_utf8_lossy(&raw)
            .lines()
            .map(str::to_owned)
            .collect();
    }
    if lines.is_empty() {
        bail!("no lines to test: pass them as arguments or on stdin");
    }
    let rules = Arc::new(RuleSet::load(&config.rules).context("loading rules")?);
    let engine = palisade::detect::engine::Engine::new(rules, &config.detection);
    let classifier = palisade::detect::classify::Classifier::new();
    // A line that does not parse is reported and the others are still tested; the
    // exit status says that one failed.
    let mut failed = 0;
    for (n, text) in lines.iter().enumerate() {
        let line = Line {
            source: Arc::from("test"),
            path: Arc::from("-"),
            offset: 0,
            text: text.clone(),
            truncated: false,
            invalid_utf8: false,
        };
        let parser_cfg = match format {
            Format::Auto => match parse::sniff(std::slice::from_ref(&line), &config.network) {
                Some(p) => p,
                None => {
                    eprintln!(
                        "line {}: no parser understands this line; pass --format",
                        n + 1
                    );
                    failed += 1;
                    continue;
                }
            },
            f => f.parser(log_format),
        };
        let source = SourceConfig {
            parser: parser_cfg,
            ..SourceConfig::default()
        };
        let mut parser = parse::build(&source, &config.network)?;
        let mut events: Vec<Event> = Vec::new();
        if let Err(e) = parser.parse(&line, &mut events) {
            eprintln!(
                "line {}: does not parse as {}: {e}",
                n + 1,
                parser.format_name()
            );
            failed += 1;
            continue;
        }
        parser.flush(&mut events);
        for mut ev in events {
            classifier.classify(&mut ev);
            let matches = engine.explain(&ev);

            if json {
                let v =
                    serde_json::json!({ "line": text, "event": ev.to_json(), "matches": matches });
                println!("{v}");
            } else {
                println!("line {}: parsed as {}", n + 1, parser.format_name());
                for f in &ev.findings {
                    println!(
                        "  classifier: {} in {} after [{}]: {} — {:?}",
                        f.class, f.part, f.decoding, f.reason, f.excerpt
                    );
                }
                if matches.is_empty() {
                    println!("  no rule matches");
                }
                for m in &matches {
                    print_explanation(m);
                }
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} lines did not parse (see above)",
            lines.len()
        );
    }
    Ok(0)
}

fn print_explanation(m: &palisade::detect::engine::Explanation) {
    let role = if m.generates {
        ""
    } else {
        " (feeds correlations only)"
    };
    println!(
        "  rule {} [{}] {}{role}",
        m.rule.title, m.rule.level, m.rule.id
    );
    for sel in m.selections.iter().filter(|s| s.matched) {
        for item in &sel.items {
            let value = item.event_value.as_deref().unwrap_or("<absent>");
            let modifiers = if item.modifiers.is_empty() {
                String::new()
            } else {
                format!("|{}", item.modifiers)
            };
            println!(
                "    {}: {}{modifiers} → {} (event: {value:?})",
                sel.name,
                item.field,
                item.values.join(" | ")
            );
        }
    }
    for c in &m.feeds {
        println!("    counts towards: {} [{}]", c.title, c.level);
    }
}
