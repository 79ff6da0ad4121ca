//! The detection engine: runs the active Sigma rules over each event, feeds
//! correlations, and turns matches into [`Detection`] episodes.
//!
//! Per event ([`Engine::process`]): the active detection rules whose prefilters admit
//! the event's shape (kind, attack classes, status; the list is remembered per
//! shape, so an ordinary access line visits two or three rules) are tested, each
//! through its plan for the shape (the tests the shape settles are folded away,
//! [`crate::detect::sigma::plan`]) with the rest ordered cheapest first; a
//! generating rule's match goes to
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
use crate::detect::sigma::prefilter::{Candidates, EventFacts};
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
    /// Active rules by event shape (kind, attack classes, status).
    candidates: Candidates,
}

impl Engine {
    /// Builds tables for every generating rule and enabled correlation.
    pub fn new(rules: Arc<RuleSet>, cfg: &DetectionConfig) -> Engine {
        let rules = configured(rules, cfg);
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
            candidates: Candidates::default(),
        }
    }

    /// Runs every active rule on `ev`; detections that start go to `out`, as do
    /// episodes that the event's time closes.
    pub fn process(&mut self, ev: &Event, out: &mut Vec<Detection>) {
        self.events += 1;
        self.tick(ev.timestamp.as_millisecond(), out);
        let rules = Arc::clone(&self.rules);
        self.marks.clear();
        let facts = EventFacts::of(ev);
        let candidates = self.candidates.for_shape(facts.shape(), &rules);
        for cand in candidates {
            let at = cand.at as usize;
            if !rules.active_prefilters[at].admits_fields(&facts) {
                continue;
            }
            let i = rules.active[at];
            let d = &rules.detections[i];
            if !cand.plan.matches(d, ev) {
                continue;
            }
            if let Some(table) = self.singles[i].as_mut() {
                let key = single_key(ev);
                table.feed(&key, ev, Observation::Event, out);
                self.next_due = self.next_due.min(table.next_deadline().unwrap_or(i64::MAX));
            }
            for &c in &d.feeds {
                let bit = rules.correlations[c]
                    .rules
                    .iter()
                    .position(|&r| r == i)
                    .unwrap_or(0);
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
        let Some(table) = self.corrs[ci].as_mut() else {
            return;
        };
        let Some(key) = group_key(&c.group_by, ev) else {
            return;
        };
        match c.kind {
            CorrelationType::EventCount => table.feed(&key, ev, Observation::Event, out),
            CorrelationType::ValueCount => {
                let Some(v) = c.field.as_ref().and_then(|f| f.get(ev)) else {
                    return;
                };
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

/// Applies the configured benign asset paths to rules that `|expand` them.
fn configured(rules: Arc<RuleSet>, cfg: &DetectionConfig) -> Arc<RuleSet> {
    if cfg.benign_asset_paths == DetectionConfig::default().benign_asset_paths {
        return rules;
    }
    match rules.with_placeholder("benign_asset_paths", &cfg.benign_asset_paths) {
        Ok(set) => Arc::new(set),
        Err(e) => {
            tracing::warn!(error = %e, "Configured benign_asset_paths do not compile; using the built-in list");
            rules
        }
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
    let mut key = Text::default();
    if let Some(ip) = ev.source_ip {
        push_value(&mut key, &Value::Ip(ip));
    }
    key
}

/// Appends a value's text; IPv4 addresses (the usual key) are written digit by digit
/// into a stack buffer and appended once, because `Display` for addresses and
/// per-character pushes both cost more than the rest of a lookup.
fn push_value(key: &mut Text, v: &Value<'_>) {
    let Value::Ip(std::net::IpAddr::V4(ip)) = v else {
        with_text(v, |s| key.push_str(s));
        return;
    };
    let mut buf = [0u8; 15];
    let mut n = 0;
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if octet >= 100 {
            buf[n] = b'0' + octet / 100;
            n += 1;
        }
        if octet >= 10 {
            buf[n] = b'0' + octet / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + octet % 10;
        n += 1;
    }
    // Only ASCII digits and dots were written.
    key.push_str(std::str::from_utf8(&buf[..n]).unwrap_or_default());
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
        push_value(&mut key, &v);
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
                items: group
                    .map(|g| g.iter().map(|t| explain_item(t, ev)).collect())
                    .unwrap_or_default(),
            }
        })
        .collect();
    Explanation {
        rule: d.meta.clone(),
        generates: d.generate && d.enabled,
        selections,
        feeds: d
            .feeds
            .iter()
            .map(|&c| rules.correlations[c].meta.clone())
            .collect(),
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
        values: t
            .matching_leaves(ev)
            .iter()
            .map(|l| l.shown.clone())
            .collect(),
        event_value,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{RuleOverride, RulesConfig};
    use crate::detect::DetectionState;
    use crate::event::EventKind;

    const BASE: &str = r#"
title: Failed login
id: base-1
name: failed
detection:
    sel:
        http.response.status_code: 401
    condition: sel
---
title: Other
name: other
detection:
    sel:
        http.response.status_code: 403
    condition: sel
"#;

    fn rules(extra: &str) -> Arc<RuleSet> {
        Arc::new(RuleSet::from_yaml_str(&format!("{BASE}---\n{extra}"), "test").unwrap())
    }

    fn det(max_keys: usize) -> DetectionConfig {
        DetectionConfig {
            max_keys_per_rule: max_keys,
            ..DetectionConfig::default()
        }
    }

    fn ev(ip: &str, user: Option<&str>, secs: i64, status: u16) -> Event {
        let mut e = Event {
            kind: EventKind::Access,
            timestamp: Timestamp::from_second(1_700_000_000 + secs).unwrap(),
            source_ip: Some(ip.parse().unwrap()),
            user_name: user.map(Into::into),
            status: Some(status),
            ..Event::default()
        };
        e.set_url(&format!("/p{secs}"));
        e
    }

    fn names(out: &[Detection], state: DetectionState) -> Vec<String> {
        out.iter()
            .filter(|d| d.state == state)
            .map(|d| d.rule.name.clone().unwrap_or_default())
            .collect()
    }

    const COUNT: &str = r#"
title: Many failures
name: many
correlation:
    type: event_count
    rules: [failed]
    group-by: [source.ip]
    timespan: 60s
    condition:
        gte: 3
"#;

    #[test]
    fn event_count_slides_on_event_time_per_key() {
        let mut e = Engine::new(rules(COUNT), &det(100));
        let mut out = Vec::new();
        for (ip, s) in [
            ("192.0.2.1", 0),
            ("192.0.2.1", 50),
            ("192.0.2.2", 55),
            ("192.0.2.1", 70),
        ] {
            e.process(&ev(ip, None, s, 401), &mut out);
        }
        assert!(
            out.is_empty(),
            "0 s fell out of the window at 70 s: {out:?}"
        );
        e.process(&ev("192.0.2.1", None, 80, 401), &mut out);
        assert_eq!(names(&out, DetectionState::Fired), ["many"]);
        assert_eq!(out[0].key_value("source.ip"), Some("192.0.2.1"));
    }

    #[test]
    fn base_rules_of_a_correlation_stay_silent_unless_generate() {
        let mut e = Engine::new(rules(COUNT), &det(100));
        let mut out = Vec::new();
        e.process(&ev("192.0.2.1", None, 0, 401), &mut out);
        e.process(&ev("192.0.2.1", None, 0, 403), &mut out);
        e.finish(&mut out);
        assert_eq!(
            names(&out, DetectionState::Fired),
            ["other"],
            "`failed` feeds only"
        );
        let generating = COUNT.replace("    condition:", "    generate: true\n    condition:");
        let mut e = Engine::new(rules(&generating), &det(100));
        let mut out = Vec::new();
        e.process(&ev("192.0.2.1", None, 0, 401), &mut out);
        assert_eq!(names(&out, DetectionState::Fired), ["failed"]);
    }

    #[test]
    fn single_rule_episode_fires_once_and_closes_after_the_gap() {
        let mut e = Engine::new(rules(""), &det(100));
        let mut out = Vec::new();
        for s in [0, 10, 20, 30] {
            e.process(&ev("192.0.2.1", None, s, 403), &mut out);
        }
        assert_eq!(names(&out, DetectionState::Fired), ["other"]);
        e.advance(
            Timestamp::from_second(1_700_000_000 + 30 + 601).unwrap(),
            &mut out,
        );
        let closed: Vec<_> = out
            .iter()
            .filter(|d| d.state == DetectionState::Closed)
            .collect();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].count, 4);
        e.process(&ev("192.0.2.1", None, 2000, 403), &mut out);
        assert_eq!(
            names(&out, DetectionState::Fired).len(),
            2,
            "a new episode after the gap"
        );
    }

    #[test]
    fn samples_keep_the_first_and_the_most_recent() {
        let cfg = DetectionConfig {
            max_samples: 4,
            ..DetectionConfig::default()
        };
        let mut e = Engine::new(rules(""), &cfg);
        let mut out = Vec::new();
        for s in 0..10 {
            e.process(&ev("192.0.2.1", None, s, 403), &mut out);
        }
        e.finish(&mut out);
        let closed = out
            .iter()
            .find(|d| d.state == DetectionState::Closed)
            .unwrap();
        let urls: Vec<_> = closed
            .samples
            .iter()
            .map(|s| s.url_path().unwrap())
            .collect();
        assert_eq!(urls, ["/p0", "/p1", "/p8", "/p9"]);
        assert_eq!(closed.count, 10);
    }

    #[test]
    fn value_count_counts_distinct_values_per_group() {
        let vc = r#"
title: User from many IPs
name: many_ips
correlation:
    type: value_count
    rules: [failed]
    group-by: [user.name]
    timespan: 10m
    condition:
        field: source.ip
        gt: 2
"#;
        let mut e = Engine::new(rules(vc), &det(100));
        let mut out = Vec::new();
        for ip in ["192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.2"] {
            e.process(&ev(ip, Some("ann"), 1, 401), &mut out);
        }
        e.process(&ev("192.0.2.3", Some("bob"), 2, 401), &mut out);
        e.process(&ev("192.0.2.4", None, 2, 401), &mut out);
        assert!(out.is_empty());
        e.process(&ev("192.0.2.3", Some("ann"), 3, 401), &mut out);
        assert_eq!(names(&out, DetectionState::Fired), ["many_ips"]);
        assert_eq!(out[0].key_value("user.name"), Some("ann"));
    }

    #[test]
    fn temporal_needs_every_rule_and_ordered_needs_their_order() {
        let t = r#"
title: Both
name: both
correlation:
    type: temporal_ordered
    rules: [failed, other]
    group-by: [source.ip, user.name]
    timespan: 1m
"#;
        let mut e = Engine::new(rules(t), &det(100));
        let mut out = Vec::new();
        e.process(&ev("192.0.2.1", Some("a"), 0, 403), &mut out);
        e.process(&ev("192.0.2.1", Some("a"), 5, 401), &mut out);
        assert!(
            names(&out, DetectionState::Fired)
                .iter()
                .all(|n| n != "both")
        );
        e.process(&ev("192.0.2.1", Some("a"), 10, 403), &mut out);
        let fired: Vec<_> = out
            .iter()
            .filter(|d| d.rule.name.as_deref() == Some("both"))
            .collect();
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].key_string(), "source.ip=192.0.2.1,user.name=a");
        let unordered = t.replace("temporal_ordered", "temporal");
        let mut e = Engine::new(rules(&unordered), &det(100));
        let mut out = Vec::new();
        e.process(&ev("192.0.2.1", Some("a"), 0, 403), &mut out);
        e.process(&ev("192.0.2.1", Some("a"), 5, 401), &mut out);
        assert!(
            names(&out, DetectionState::Fired)
                .iter()
                .any(|n| n == "both")
        );
    }

    #[test]
    fn full_tables_evict_least_recent_keys_and_count_them() {
        let mut e = Engine::new(rules(COUNT), &det(16));
        let mut out = Vec::new();
        for i in 0..100u8 {
            e.process(
                &ev(&format!("192.0.2.{i}"), None, i64::from(i) / 10, 401),
                &mut out,
            );
        }
        let stats = e.stats();
        let many = stats.rules.iter().find(|r| r.rule_id == "many").unwrap();
        assert!(many.live_keys <= 16);
        assert!(many.evicted_keys >= 84, "{many:?}");
        assert_eq!(stats.events_processed, 100);
    }

    #[test]
    fn overrides_change_threshold_and_timespan_by_name() {
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "many".to_string(),
            RuleOverride {
                threshold: Some(2),
                timespan: Some("5s".into()),
            },
        );
        let cfg = RulesConfig {
            overrides,
            ..RulesConfig::default()
        };
        let text = format!("{BASE}---\n{COUNT}");
        let set = Arc::new(RuleSet::from_yaml_str_with(&text, "t", &cfg).unwrap());
        assert_eq!(set.correlations[0].timespan_ms, 5000);
        let mut e = Engine::new(set, &det(10));
        let mut out = Vec::new();
        e.process(&ev("192.0.2.1", None, 0, 401), &mut out);
        e.process(&ev("192.0.2.1", None, 6, 401), &mut out);
        assert!(out.is_empty(), "6 s apart is outside a 5 s window");
        e.process(&ev("192.0.2.1", None, 7, 401), &mut out);
        assert_eq!(names(&out, DetectionState::Fired), ["many"]);
        let bad = RulesConfig {
            overrides: [("failed".to_string(), RuleOverride::default())].into(),
            ..RulesConfig::default()
        };
        assert!(RuleSet::from_yaml_str_with(&text, "t", &bad).is_err());
    }

    #[test]
    fn explain_names_selection_field_modifier_and_value() {
        let set = Arc::new(
            RuleSet::from_yaml_str(
                r#"
title: UA
name: ua
detection:
    tools:
        cs-user-agent|contains: [sqlmap, nikto]
    condition: tools
"#,
                "t",
            )
            .unwrap(),
        );
        let e = Engine::new(set, &det(10));
        let mut x = ev("192.0.2.1", None, 0, 200);
        x.user_agent = Some("SQLMap/1.8".into());
        let why = e.explain(&x);
        assert_eq!(why.len(), 1);
        let item = &why[0].selections[0].items[0];
        assert_eq!(item.field, "user_agent.original");
        assert_eq!(item.modifiers, "contains");
        assert_eq!(item.values, [r#"contains "sqlmap""#]);
        assert_eq!(item.event_value.as_deref(), Some("SQLMap/1.8"));
    }
}
