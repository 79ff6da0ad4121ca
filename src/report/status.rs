//! `palisade status`: the runbook's quick assessment of the last hour.
//!
//! Answers three questions from the store: how many failed logins (and other notable
//! events) were there, which client addresses are attacking and why (the rules that
//! fired for them), and what was detected, by rule. Counts come from the minute
//! counters the pipeline commits with each batch ([`crate::store::counters`]), so they
//! include attempts that never reached a rule threshold; the per-IP and per-rule parts
//! come from stored detections.

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use jiff::{SignedDuration, Timestamp};
use owo_colors::OwoColorize;
use serde::Serialize;

use crate::detect::Level;
use crate::store::counters::{ATTACK, FAILED_LOGIN, RATE_LIMITED, SECURITY_EVENT, SQLI};
use crate::store::{IpActivity, RuleActivity, Store, StoreError, Window};

/// What `status` looks at.
#[derive(Debug, Clone, Copy)]
pub struct StatusOptions {
    /// How far back from `now` to look.
    pub window: SignedDuration,
    /// How many offending addresses to list.
    pub top_ips: usize,
}

impl Default for StatusOptions {
    fn default() -> Self {
        StatusOptions {
            window: SignedDuration::from_hours(1),
            top_ips: 10,
        }
    }
}

/// Brute-force episodes (rules tagged `attack.t1110` or titled "brute force").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BruteForce {
    pub episodes: u64,
    pub attempts: u64,
}

/// Event counts in the window (minute resolution: the first minute may be partial).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub failed_logins: u64,
    pub sqli_attempts: u64,
    pub attack_requests: u64,
    pub security_events: u64,
    pub rate_limited: u64,
}

/// The quick assessment; `Serialize` for `status --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    pub now: Timestamp,
    pub window: Window,
    pub counts: Counts,
    pub brute_force: BruteForce,
    pub top_ips: Vec<IpActivity>,
    pub rules: Vec<RuleActivity>,
}

/// The last hour before `now`, top ten addresses.
pub fn status(store: &Store, now: Timestamp) -> Result<StatusReport, StoreError> {
    status_with(store, now, &StatusOptions::default())
}

/// `status` with an explicit window and list length.
pub fn status_with(
    store: &Store,
    now: Timestamp,
    opts: &StatusOptions,
) -> Result<StatusReport, StoreError> {
    let from = now.saturating_sub(opts.window).unwrap_or(Timestamp::MIN);
    let window = Window { from, to: now };
    // Counter buckets are minutes: take every minute that overlaps the window.
    let bucket_from = Timestamp::from_second(from.as_second().div_euclid(60) * 60).unwrap_or(from);
    let bucket_to = now
        .saturating_add(SignedDuration::from_secs(1))
        .unwrap_or(now);
    let sum = |name| store.counter_sum(name, bucket_from, bucket_to);
    let counts = Counts {
        failed_logins: sum(FAILED_LOGIN)?,
        sqli_attempts: sum(SQLI)?,
        attack_requests: sum(ATTACK)?,
        security_events: sum(SECURITY_EVENT)?,
        rate_limited: sum(RATE_LIMITED)?,
    };
    let (episodes, attempts) = store.brute_force_activity(window)?;
    Ok(StatusReport {
        now,
        window,
        counts,
        brute_force: BruteForce { episodes, attempts },
        top_ips: store.top_source_ips(window, opts.top_ips)?,
        rules: store.rule_activity(window)?,
    })
}

impl StatusReport {
    /// The report as text for a terminal; `color` adds ANSI colors.
    pub fn render_text(&self, color: bool) -> String {
        let mut out = String::new();
        let minutes = self.window.to.duration_since(self.window.from).as_secs() / 60;
        let title = format!(
            "Status for the last {minutes} min ({} .. {}, event time)",
            self.window.from, self.window.to
        );
        out.push_str(&heading(&title, color));
        out.push('\n');
        out.push_str(&self.render_counts());
        out.push('\n');
        if self.top_ips.is_empty() && self.rules.is_empty() {
            out.push_str("No detections in this window.\n");
            return out;
        }
        if !self.top_ips.is_empty() {
            out.push_str(&heading("Top offending addresses", color));
            out.push('\n');
            out.push_str(&ip_table(&self.top_ips, color).to_string());
            out.push_str("\n\n");
        }
        out.push_str(&heading("Detections by rule", color));
        out.push('\n');
        out.push_str(&rule_table(&self.rules, color).to_string());
        out.push('\n');
        out
    }

    fn render_counts(&self) -> String {
        let c = &self.counts;
        let rows = [
            ("Failed logins", c.failed_logins.to_string()),
            (
                "Brute-force episodes",
                format!(
                    "{} ({} attempts)",
                    self.brute_force.episodes, self.brute_force.attempts
                ),
            ),
            ("SQL injection attempts", c.sqli_attempts.to_string()),
            (
                "Attack requests (all classes)",
                c.attack_requests.to_string(),
            ),
            ("Application security events", c.security_events.to_string()),
            ("Rate-limited requests", c.rate_limited.to_string()),
        ];
        rows.iter()
            .map(|(k, v)| format!("  {k:<31}{v}\n"))
            .collect()
    }
}

fn heading(text: &str, color: bool) -> String {
    if color {
        text.bold().to_string()
    } else {
        text.to_string()
    }
}

fn new_table(color: bool, header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    if color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t
}

fn level_cell(level: Level, color: bool) -> Cell {
    let cell = Cell::new(level.as_str());
    if !color {
        return cell;
    }
    match level {
        Level::Critical | Level::High => cell.fg(Color::Red),
        Level::Medium => cell.fg(Color::Yellow),
        Level::Low => cell.fg(Color::Cyan),
        Level::Informational => cell,
    }
}

fn ip_table(ips: &[IpActivity], color: bool) -> Table {
    let mut t = new_table(
        color,
        &["Address", "Level", "Detections", "Events", "Why (rules)"],
    );
    for ip in ips {
        t.add_row(vec![
            Cell::new(&ip.ip),
            level_cell(ip.max_level, color),
            Cell::new(ip.detections),
            Cell::new(ip.events),
            Cell::new(ip.rules.join("\n")),
        ]);
    }
    t
}

fn rule_table(rules: &[RuleActivity], color: bool) -> Table {
    let mut t = new_table(color, &["Rule", "Level", "Episodes", "Events", "Keys"]);
    for r in rules {
        t.add_row(vec![
            Cell::new(&r.title),
            level_cell(r.level, color),
            Cell::new(r.detections),
            Cell::new(r.events),
            Cell::new(r.keys),
        ]);
    }
    t
}

#[cfg(test)]
mod tests;
