//! The detection engine: runs the active Sigma rules over each event, feeds
//! correlations, and turns matches into [`Detection`] episodes.
//!
//! Per event ([`Engine::process`]): every active detection rule is tested (their
//! tests are ordered cheapest first, so an ordinary access line is rejected by an
//! integer or bit-set comparison in most rules); a generating rule's match goes to
//! its episode [`Table`] keyed by `source.ip`; a rule that feeds correlations marks
//! them, and each marked correlation gets the event once, keyed by its `group-by`.
//!
//! Time is event time: the engine's clock is the latest event timestamp seen
//! (the watermark). [`Engine::advance`] moves it forward without an event (a live
//! watcher calls it on idle), and [`Engine::finish`] closes everything at the end
//! of a scan. Each episode is emitted twice: `Fired` when it starts, `Closed` with
//! final counts and samples when its window or gap has passed.

use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

use crate::config::DetectionConfig;
use crate::detect::correlate::{KEY_SEP, Limits, Observation, Table, TableStats, WindowSpec};
use crate::detect::sigma::fields::{FieldRef, with_text};
use crate::detect::sigma::{CorrelationRule, CorrelationType, DetectionRule, RuleSet, Threshold};
use crate::detect::{Detection, RuleMeta};
use crate::event::{Event, Field, Text, Value};

/// Live state counters, per rule with state.
#[derive(Debug, Clone, Serialize)]
pub struct EngineStats {
    pub events_processed: u64,
    pub rules: Vec<RuleStats>,
}

/// One rule's state counters.
#[derive(Debug, Clone, Serialize)]
pub struct RuleStats {
    pub rule_id: String,
    pub live_keys: usize,
    pub evicted_keys: u64,
    pub open_episodes: usize,
    /// Matching events the rule's table received.
    pub matches: u64,
    /// Episodes started (Fired detections emitted).
    pub fired: u64,
}

/// Why a detection rule matched an event (`palisade rules test`).
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub rule: Arc<RuleMeta>,
    /// Whether the rule emits detections itself.
    pub generates: bool,
    pub selections: Vec<SelectionExplain>,
    /// Correlations this match counts towards.
    pub feeds: Vec<Arc<RuleMeta>>,
}

/// One selection of a matching rule.
#[derive(Debug, Clone, Serialize)]
pub struct SelectionExplain {
    pub name: String,
    pub matched: bool,
    /// For a matched selection: the items of the first group that matched.
    pub items: Vec<ItemExplain>,
}

/// One field test that held.
#[derive(Debug, Clone, Serialize)]
pub struct ItemExplain {
    pub field: String,
    pub modifiers: String,
    /// The rule values that matched, as written (`contains "sqlmap/"`).
    pub values: Vec<String>,
    /// The event's value of the field (`None` when absent).
    pub event_value: Option<String>,
}

/// Runs a [`RuleSet`] over events. One engine per thread; not shared.
pub struct Engine {
    rules: Arc<RuleSet>,
    /// Episode tables of generating detection rules, by detection index.
    singles: Vec<Option<Table>>,
    /// Tables of enabled correlations, by correlation index.
    corrs: Vec<Option<Table>>,
    watermark: i64,
    next_due: i64,
    events: u64,
    /// Scratch: (correlation, bit set of its referenced rules the event matched).
    marks: Vec<(usize, u64)>,
}

impl Engine {
    /// Builds tables for every generating rule and enabled correlation.
    pub fn new(rules: Arc<RuleSet>, cfg: &DetectionConfig) -> Engine {
        let limits = Limits {
            max_keys: cfg.max_keys_per_rule,
            max_samples: cfg.max_samples,
        };
        let gap_ms = i64::try_from(cfg.episode_gap.as_millis()).unwrap_or(i64::MAX / 4);
        let singles = rules
            .detections
            .iter()
            .map(|d| (d.enabled && d.generate).then(|| single_table(d, gap_ms, limits)))
            .collect();
        let corrs = rules
            .correlations
            .iter()
            .map(|c| c.enabled.then(|| corr_table(c, limits)))
            .collect();
        Engine {
            rules,
            singles,
            corrs,
            watermark: i64::MIN,
            next_due: i64::MAX,
            events: 0,
            marks: Vec::new(),
        }
    }

    /// Runs every active rule on `ev`; detections that start go to `out`, as do
    /// episodes that the event's time closes.
    pub fn process(&mut self, ev: &Event, out: &mut Vec<Detection>) {
        self.events += 1;
        self.tick(ev.timestamp.as_millisecond(), out);
        let rules = Arc::clone(&self.rules);
        self.marks.clear();
        for &i in &rules.active {
            let d = &rules.detections[i];
            if !d.matches(ev) {
                continue;
            }
            if let Some(table) = self.singles[i].as_mut() {
                let key = single_key(ev);
                table.feed(&key, ev, Observation::Event, out);
                self.next_due = self.next_due.min(table.next_deadline().unwrap_or(i64::MAX));
            }
            for &c in &d.feeds {
                let bit = rules.correlations[c].rules.iter().position(|&r| r == i).unwrap_or(0);
                match self.marks.iter_mut().find(|(m, _)| *m == c) {
                    Some((_, mask)) => *mask |= 1 << bit.min(63),
                    None => self.marks.push((c, 1 << bit.min(63))),
                }
            }
        }
        for mi in 0..self.marks.len() {
            let (c, mask) = self.marks[mi];
            self.feed_correlation(&rules.correlations[c], c, mask, ev, out);
        }
    }

    fn feed_correlation(
        &mut self,
        c: &CorrelationRule,
        ci: usize,
        mask: u64,
        ev: &Event,
        out: &mut Vec<Detection>,
    ) {
        let Some(table) = self.corrs[ci].as_mut() else { return };
        let Some(key) = group_key(&c.group_by, ev) else { return };
        match c.kind {
            CorrelationType::EventCount => table.feed(&key, ev, Observation::Event, out),
            CorrelationType::ValueCount => {
                let Some(v) = c.field.as_ref().and_then(|f| f.get(ev)) else { return };
                with_text(&v, |s| table.feed(&key, ev, Observation::Value(s), out));
            }
            CorrelationType::Temporal | CorrelationType::TemporalOrdered => {
                table.feed(&key, ev, Observation::Rules(mask), out)
            }
        }
        self.next_due = self.next_due.min(table.next_deadline().unwrap_or(i64::MAX));
    }

    /// Moves the event-time clock to `now` (never backwards) and closes episodes
    /// whose window or gap has passed.
    pub fn advance(&mut self, now: Timestamp, out: &mut Vec<Detection>) {
        self.tick(now.as_millisecond(), out);
    }

    fn tick(&mut self, t: i64, out: &mut Vec<Detection>) {
        if t <= self.watermark {
            return;
        }
        self.watermark = t;
        if t <= self.next_due {
            return;
        }
        let mut next = i64::MAX;
        for table in self.tables_mut() {
            table.expire(t, out);
            next = next.min(table.next_deadline().unwrap_or(i64::MAX));
        }
        self.next_due = next;
    }

    /// Closes every open episode (end of a scan) and clears all state.
    pub fn finish(&mut self, out: &mut Vec<Detection>) {
        for table in self.tables_mut() {
            table.finish(out);
        }
        self.next_due = i64::MAX;
    }

    fn tables_mut(&mut self) -> impl Iterator<Item = &mut Table> {
        self.singles
            .iter_mut()
            .chain(self.corrs.iter_mut())
            .filter_map(Option::as_mut)
    }

    /// State counters for metrics and `status`.
    pub fn stats(&self) -> EngineStats {
        let rules = self
            .singles
            .iter()
            .chain(self.corrs.iter())
            .filter_map(Option::as_ref)
            .map(|t| rule_stats(&t.rule, t.stats()))
            .collect();
        EngineStats {
            events_processed: self.events,
            rules,
        }
    }

    /// Which detection rules match `ev` and why, and which correlations it feeds.
    /// Looks at every loaded rule, enabled or not; not for the hot path.
    pub fn explain(&self, ev: &Event) -> Vec<Explanation> {
        self.rules
            .detections
            .iter()
            .filter(|d| d.matches(ev))
            .map(|d| explain_rule(d, &self.rules, ev))
            .collect()
    }
}

fn rule_stats(rule: &RuleMeta, s: TableStats) -> RuleStats {
    RuleStats {
        rule_id: rule.id.clone(),
        live_keys: s.live_keys,
        evicted_keys: s.evicted_keys,
        open_episodes: s.open_episodes,
        matches: s.matches,
        fired: s.fired,
    }
}

fn single_table(d: &DetectionRule, gap_ms: i64, limits: Limits) -> Table {
    let spec = WindowSpec {
        kind: None,
        span_ms: gap_ms,
        threshold: Threshold {
            min: Some(1),
            max: None,
        },
        nrules: 1,
    };
    let key_fields = vec![Text::from(Field::SourceIp.name())];
    Table::new(d.meta.clone(), key_fields, spec, gap_ms, limits)
}

fn corr_table(c: &CorrelationRule, limits: Limits) -> Table {
    let spec = WindowSpec {
        kind: Some(c.kind),
        span_ms: c.timespan_ms,
        threshold: c.threshold,
        nrules: c.rules.len(),
    };
    let key_fields = c.group_by.iter().map(|f| Text::from(f.name())).collect();
    Table::new(c.meta.clone(), key_fields, spec, c.timespan_ms, limits)
}

/// A single-event rule's key: the client address, or no key when there is none.
fn single_key(ev: &Event) -> Text {
    match ev.source_ip {
        Some(ip) => Value::Ip(ip).to_text(),
        None => Text::default(),
    }
}

/// The group-by values joined, or `None` when a group-by field is absent (such
/// events cannot be attributed to a group and are not counted).
fn group_key(fields: &[FieldRef], ev: &Event) -> Option<Text> {
    let mut key = Text::default();
    for (i, f) in fields.iter().enumerate() {
        let v = f.get(ev)?;
        if i > 0 {
            key.push(KEY_SEP);
        }
        with_text(&v, |s| key.push_str(s));
    }
    Some(key)
}

fn explain_rule(d: &DetectionRule, rules: &RuleSet, ev: &Event) -> Explanation {
    let selections = d
        .selections
        .iter()
        .map(|s| {
            let group = s.groups.iter().find(|g| g.iter().all(|t| t.matches(ev)));
            SelectionExplain {
                name: s.name.clone(),
                matched: group.is_some(),
                items: group.map(|g| g.iter().map(|t| explain_item(t, ev)).collect()).unwrap_or_default(),
            }
        })
        .collect();
    Explanation {
        rule: d.meta.clone(),
        generates: d.generate && d.enabled,
        selections,
        feeds: d.feeds.iter().map(|&c| rules.correlations[c].meta.clone()).collect(),
    }
}

fn explain_item(t: &crate::detect::sigma::matcher::FieldTest, ev: &Event) -> ItemExplain {
    let event_value = if t.field.is_attack() {
        Some(ev.attacks.names().collect::<Vec<_>>().join(","))
    } else {
        t.field.get(ev).map(|v| v.to_text().to_string())
    };
    ItemExplain {
        field: t.field.name().to_string(),
        modifiers: t.modifiers.clone(),
        values: t.matching_leaves(ev).iter().map(|l| l.shown.clone()).collect(),
        event_value,
    }
}
