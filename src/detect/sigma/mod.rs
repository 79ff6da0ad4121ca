//! Sigma rules: loading, compiling, and the [`RuleSet`] the engine runs.
//!
//! Rules are Sigma YAML (spec v2): detection rules (`detection:` with selections and
//! a `condition`) and correlation rules (`correlation:` with `event_count`,
//! `value_count`, `temporal` or `temporal_ordered`). The built-in rules in the
//! crate's `rules/` folder are embedded in the binary; user folders from
//! [`RulesConfig::dirs`] load after them (a rule with the same `id` replaces the
//! built-in one).
//!
//! Compilation resolves every field name once ([`fields`]), turns values into cheap
//! tests ([`matcher`]) and the condition into a tree ([`condition`]) whose operands
//! are ordered cheapest first. [`crate::detect::engine`] evaluates the active rules
//! per event and feeds correlations ([`crate::detect::correlate`]).
//!
//! `logsource` hint: rules whose `logsource.category` is `webserver` or `proxy` only
//! see access events (`event.kind: access`); every other logsource is not filtered.

pub mod condition;
pub mod fields;
pub mod matcher;
pub mod plan;
pub mod prefilter;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_norway::{Mapping, Value as Yaml};
use thiserror::Error;

use self::condition::Cond;
use self::fields::FieldRef;
use self::matcher::{FieldTest, compile_item};
use self::prefilter::{Prefilter, kind_bit};
use crate::config::{RuleOverride, RulesConfig, parse_duration};
use crate::detect::{Level, RuleMeta};
use crate::event::{Event, EventKind};

/// Errors loading or compiling rules.
#[derive(Debug, Error)]
pub enum SigmaError {
    /// A problem inside one rule, before its origin is known.
    #[error("{0}")]
    Rule(String),
    /// A problem inside one rule of a file.
    #[error("{origin}: rule {rule:?}: {message}")]
    InRule {
        origin: String,
        rule: String,
        message: String,
    },
    #[error("{origin}: not valid Sigma YAML: {message}")]
    Yaml { origin: String, message: String },
    #[error("cannot read rules from {path}: {source} (check `rules.dirs` in the config)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rules config: {0}")]
    Config(String),
}

impl SigmaError {
    pub(crate) fn rule(message: impl Into<String>) -> SigmaError {
        SigmaError::Rule(message.into())
    }

    fn at(self, origin: &str, rule: &str) -> SigmaError {
        match self {
            SigmaError::Rule(message) => SigmaError::InRule {
                origin: origin.into(),
                rule: rule.into(),
                message,
            },
            other => other,
        }
    }
}

/// A named selection: OR of groups, each an AND of field tests.
#[derive(Debug, Clone)]
pub struct Selection {
    pub name: String,
    pub groups: Vec<Vec<FieldTest>>,
    cost: u32,
}

impl Selection {
    #[inline]
    pub fn matches(&self, ev: &Event) -> bool {
        self.groups.iter().any(|g| g.iter().all(|t| t.matches(ev)))
    }
}

/// A compiled detection (single-event) rule.
#[derive(Debug, Clone)]
pub struct DetectionRule {
    pub meta: Arc<RuleMeta>,
    pub origin: String,
    pub selections: Vec<Selection>,
    pub cond: Cond,
    /// Bit set of event kinds the rule applies to (0: all), from the logsource hint.
    kinds: u8,
    /// Facts any matching event has; checked first by the engine.
    pub prefilter: Prefilter,
    /// Emits detections of its own (false when only feeding correlations).
    pub generate: bool,
    pub enabled: bool,
    /// Indices of the enabled correlations this rule feeds.
    pub feeds: Vec<usize>,
}

impl DetectionRule {
    /// Whether `ev` matches the rule.
    #[inline]
    pub fn matches(&self, ev: &Event) -> bool {
        if self.kinds != 0 && self.kinds & kind_bit(ev.kind) == 0 {
            return false;
        }
        self.cond.eval(&mut |i| self.selections[i].matches(ev))
    }
}

/// Correlation types (Sigma correlation spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrelationType {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
}

impl CorrelationType {
    pub fn as_str(self) -> &'static str {
        match self {
            CorrelationType::EventCount => "event_count",
            CorrelationType::ValueCount => "value_count",
            CorrelationType::Temporal => "temporal",
            CorrelationType::TemporalOrdered => "temporal_ordered",
        }
    }
}

/// A count condition as an inclusive range (`gt: 10` is `min: 11`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Threshold {
    pub min: Option<u64>,
    pub max: Option<u64>,
}

impl Threshold {
    pub fn met(&self, n: u64) -> bool {
        self.min.is_none_or(|m| n >= m) && self.max.is_none_or(|m| n <= m)
    }

    /// How many timestamps (or values) a key must keep to decide the condition.
    pub fn cap(&self) -> usize {
        let need = match self.max {
            Some(m) => m.saturating_add(1).max(self.min.unwrap_or(0)),
            None => self.min.unwrap_or(1),
        };
        need.clamp(1, 1 << 20) as usize
    }
}

/// A compiled correlation rule.
#[derive(Debug, Clone)]
pub struct CorrelationRule {
    pub meta: Arc<RuleMeta>,
    pub origin: String,
    pub kind: CorrelationType,
    /// The referenced rules as written (names or ids).
    pub rule_refs: Vec<String>,
    /// The referenced detection rules (indices into [`RuleSet::detections`]).
    pub rules: Vec<usize>,
    pub group_by: Vec<FieldRef>,
    pub timespan_ms: i64,
    pub threshold: Threshold,
    /// `value_count`'s field.
    pub field: Option<FieldRef>,
    /// Referenced rules also emit detections of their own.
    pub generate: bool,
    pub enabled: bool,
}

/// Detection or correlation, for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Detection,
    Correlation,
}

/// One rule as `palisade rules list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleInfo {
    pub meta: Arc<RuleMeta>,
    pub kind: RuleKind,
    /// `event_count`, `value_count`, … for correlations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_type: Option<&'static str>,
    /// Whether the rule emits detections itself (base rules of a correlation do not,
    /// unless the correlation says `generate: true`).
    pub generates: bool,
    pub enabled: bool,
    /// Where the rule came from: `builtin:<file>` or a path.
    pub origin: String,
}

/// Every loaded rule, compiled; shared read-only by engines.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub detections: Vec<DetectionRule>,
    pub correlations: Vec<CorrelationRule>,
    /// Detection rules the engine evaluates (generating or feeding a correlation).
    pub active: Vec<usize>,
    /// The active rules' prefilters, contiguous for the hot loop.
    pub active_prefilters: Vec<Prefilter>,
}

#[derive(rust_embed::RustEmbed)]
#[folder = "rules/"]
struct BuiltinRules;

enum Parsed {
    Detection(DetectionRule),
    Correlation(CorrelationRule),
}

impl RuleSet {
    /// Loads the built-in rules (unless `no_builtin`) and every `*.yml`/`*.yaml` under
    /// `cfg.dirs`, then applies `disabled` and `overrides`.
    pub fn load(cfg: &RulesConfig) -> Result<RuleSet, SigmaError> {
        let mut docs = Vec::new();
        if !cfg.no_builtin {
            docs.extend(builtin_docs()?);
        }
        for dir in &cfg.dirs {
            for path in rule_files(dir)? {
                let text = std::fs::read_to_string(&path).map_err(|source| SigmaError::Io {
                    path: path.clone(),
                    source,
                })?;
                docs.extend(yaml_docs(&text, &path.display().to_string())?);
            }
        }
        Self::build(docs, Some(cfg))
    }

    /// Compiles the rules in one YAML text (one or more `---` documents).
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<RuleSet, SigmaError> {
        Self::build(yaml_docs(text, origin)?, None)
    }

    /// Compiles `text` with a rules config applied (overrides, disabled), for tests
    /// and for `rules test` on a single file.
    pub fn from_yaml_str_with(
        text: &str,
        origin: &str,
        cfg: &RulesConfig,
    ) -> Result<RuleSet, SigmaError> {
        Self::build(yaml_docs(text, origin)?, Some(cfg))
    }

    /// A copy with every `|expand` item of placeholder `name` compiled from `values`
    /// (e.g. `benign_asset_paths` from the detection config).
    pub fn with_placeholder(&self, name: &str, values: &[String]) -> Result<RuleSet, SigmaError> {
        let mut set = self.clone();
        for d in &mut set.detections {
            for sel in &mut d.selections {
                for group in &mut sel.groups {
                    for t in group.iter_mut() {
                        let Some((key, n)) = t.placeholder.clone() else {
                            continue;
                        };
                        if n == name {
                            *t = matcher::compile_values(&key, values)?;
                            t.placeholder = Some((key, n));
                        }
                    }
                    group.sort_by_key(|t| t.cost);
                }
            }
            d.prefilter = prefilter::derive(&d.cond, &d.selections, d.kinds);
        }
        set.link_prefilters();
        Ok(set)
    }

    /// Metadata of every rule (detections first, then correlations).
    pub fn metas(&self) -> Vec<Arc<RuleMeta>> {
        self.list().into_iter().map(|i| i.meta).collect()
    }

    /// Every rule with its kind, whether it generates detections, and its origin.
    pub fn list(&self) -> Vec<RuleInfo> {
        let dets = self.detections.iter().map(|d| RuleInfo {
            meta: d.meta.clone(),
            kind: RuleKind::Detection,
            correlation_type: None,
            generates: d.generate && d.enabled,
            enabled: d.enabled,
            origin: d.origin.clone(),
        });
        let cors = self.correlations.iter().map(|c| RuleInfo {
            meta: c.meta.clone(),
            kind: RuleKind::Correlation,
            correlation_type: Some(c.kind.as_str()),
            generates: c.enabled,
            enabled: c.enabled,
            origin: c.origin.clone(),
        });
        dets.chain(cors).collect()
    }

    fn build(docs: Vec<(String, Yaml)>, cfg: Option<&RulesConfig>) -> Result<RuleSet, SigmaError> {
        let mut set = RuleSet::default();
        for (origin, doc) in docs {
            match parse_doc(&doc, &origin)? {
                Some(Parsed::Detection(d)) => set.push_detection(d),
                Some(Parsed::Correlation(c)) => set.push_correlation(c),
                None => {}
            }
        }
        if let Some(cfg) = cfg {
            set.apply_overrides(&cfg.overrides)?;
            set.apply_disabled(&cfg.disabled);
        }
        set.link()?;
        Ok(set)
    }

    fn push_detection(&mut self, d: DetectionRule) {
        match self.detections.iter().position(|x| x.meta.id == d.meta.id) {
            Some(i) => {
                tracing::info!(rule = %d.meta.id, origin = %d.origin, "Rule replaces an earlier one with the same id");
                self.detections[i] = d;
            }
            None => self.detections.push(d),
        }
    }

    fn push_correlation(&mut self, c: CorrelationRule) {
        match self
            .correlations
            .iter()
            .position(|x| x.meta.id == c.meta.id)
        {
            Some(i) => {
                tracing::info!(rule = %c.meta.id, origin = %c.origin, "Rule replaces an earlier one with the same id");
                self.correlations[i] = c;
            }
            None => self.correlations.push(c),
        }
    }

    fn apply_overrides(
        &mut self,
        overrides: &std::collections::BTreeMap<String, RuleOverride>,
    ) -> Result<(), SigmaError> {
        for (key, ov) in overrides {
            let Some(c) = self
                .correlations
                .iter_mut()
                .find(|c| is_named(&c.meta, key))
            else {
                let what = if self.detections.iter().any(|d| is_named(&d.meta, key)) {
                    "is a detection rule; only correlations have a threshold and timespan"
                } else {
                    "matches no loaded correlation rule (check `palisade rules list`)"
                };
                return Err(SigmaError::Config(format!("override `{key}` {what}")));
            };
            if let Some(t) = ov.threshold {
                c.threshold = Threshold {
                    min: Some(t),
                    max: None,
                };
            }
            if let Some(ts) = &ov.timespan {
                c.timespan_ms = timespan_ms(ts).map_err(|e| {
                    SigmaError::Config(format!("override `{key}`: timespan {ts:?}: {e}"))
                })?;
            }
        }
        Ok(())
    }

    fn apply_disabled(&mut self, disabled: &[String]) {
        for key in disabled {
            let mut found = false;
            for d in self
                .detections
                .iter_mut()
                .filter(|d| is_named(&d.meta, key))
            {
                d.enabled = false;
                found = true;
            }
            for c in self
                .correlations
                .iter_mut()
                .filter(|c| is_named(&c.meta, key))
            {
                c.enabled = false;
                found = true;
            }
            if !found {
                tracing::warn!(rule = %key, "Disabled rule matches no loaded rule; check `rules.disabled`");
            }
        }
    }

    /// Resolves correlation references and decides which rules generate and run.
    fn link(&mut self) -> Result<(), SigmaError> {
        let mut referenced = vec![false; self.detections.len()];
        let mut generate = vec![false; self.detections.len()];
        for (ci, c) in self.correlations.iter_mut().enumerate() {
            c.rules = resolve_refs(c, &self.detections)?;
            for &d in &c.rules {
                referenced[d] = true;
                generate[d] |= c.generate;
                if c.enabled {
                    self.detections[d].feeds.push(ci);
                }
            }
        }
        for (i, d) in self.detections.iter_mut().enumerate() {
            d.generate = !referenced[i] || generate[i];
        }
        self.active = (0..self.detections.len())
            .filter(|&i| {
                let d = &self.detections[i];
                (d.enabled && d.generate) || !d.feeds.is_empty()
            })
            .collect();
        self.link_prefilters();
        Ok(())
    }
}

impl RuleSet {
    fn link_prefilters(&mut self) {
        self.active_prefilters = self
            .active
            .iter()
            .map(|&i| self.detections[i].prefilter)
            .collect();
    }
}

fn is_named(meta: &RuleMeta, key: &str) -> bool {
    meta.id == key || meta.name.as_deref() == Some(key)
}

fn resolve_refs(c: &CorrelationRule, dets: &[DetectionRule]) -> Result<Vec<usize>, SigmaError> {
    let mut out = Vec::new();
    for r in &c.rule_refs {
        let Some(i) = dets.iter().position(|d| is_named(&d.meta, r)) else {
            return Err(SigmaError::rule(format!(
                "references rule `{r}`, which is not a loaded detection rule (chaining \
                 correlations is not supported)"
            ))
            .at(&c.origin, &c.meta.title));
        };
        out.push(i);
    }
    Ok(out)
}

fn builtin_docs() -> Result<Vec<(String, Yaml)>, SigmaError> {
    let mut names: Vec<_> = BuiltinRules::iter()
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    names.sort();
    let mut docs = Vec::new();
    for name in names {
        let Some(file) = BuiltinRules::get(&name) else {
            continue;
        };
        let origin = format!("builtin:{name}");
        let text = String::from_utf8_lossy(&file.data);
        docs.extend(yaml_docs(&text, &origin)?);
    }
    Ok(docs)
}

/// Rule files under `dir` (recursively), sorted for a stable load order.
pub fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, SigmaError> {
    let io = |source| SigmaError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            out.extend(rule_files(&path)?);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn yaml_docs(text: &str, origin: &str) -> Result<Vec<(String, Yaml)>, SigmaError> {
    let mut docs = Vec::new();
    for de in serde_norway::Deserializer::from_str(text) {
        let doc = Yaml::deserialize(de).map_err(|e| SigmaError::Yaml {
            origin: origin.into(),
            message: e.to_string(),
        })?;
        if !doc.is_null() {
            docs.push((origin.to_string(), doc));
        }
    }
    Ok(docs)
}

fn get<'a>(m: &'a Mapping, key: &str) -> Option<&'a Yaml> {
    m.get(Yaml::String(key.into()))
}

fn get_str(m: &Mapping, key: &str) -> Option<String> {
    match get(m, key)? {
        Yaml::String(s) => Some(s.trim().to_string()),
        Yaml::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn get_list(m: &Mapping, key: &str) -> Vec<String> {
    match get(m, key) {
        Some(Yaml::Sequence(seq)) => seq
            .iter()
            .filter_map(|v| match v {
                Yaml::String(s) => Some(s.clone()),
                Yaml::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(Yaml::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn parse_meta(m: &Mapping) -> Result<RuleMeta, SigmaError> {
    let title = get_str(m, "title").ok_or_else(|| SigmaError::rule("has no `title`"))?;
    let name = get_str(m, "name");
    let id = get_str(m, "id")
        .or_else(|| name.clone())
        .ok_or_else(|| SigmaError::rule("has neither `id` nor `name`"))?;
    let level = match get_str(m, "level") {
        None => Level::Medium,
        Some(l) => {
            Level::parse(&l).ok_or_else(|| SigmaError::rule(format!("unknown level {l:?}")))?
        }
    };
    Ok(RuleMeta {
        id,
        name,
        title,
        level,
        tags: get_list(m, "tags"),
        description: get_str(m, "description").unwrap_or_default(),
    })
}

fn parse_doc(doc: &Yaml, origin: &str) -> Result<Option<Parsed>, SigmaError> {
    let Yaml::Mapping(m) = doc else {
        return Err(SigmaError::Yaml {
            origin: origin.into(),
            message: "a rule document must be a mapping".into(),
        });
    };
    let title = get_str(m, "title").unwrap_or_else(|| "(untitled)".into());
    let parsed = if get(m, "correlation").is_some() {
        parse_correlation(m, origin).map(|c| Some(Parsed::Correlation(c)))
    } else if get(m, "detection").is_some() {
        parse_detection(m, origin).map(|d| Some(Parsed::Detection(d)))
    } else if get(m, "action").is_some() {
        Err(SigmaError::rule(
            "Sigma v1 `action:` documents are not supported",
        ))
    } else {
        Err(SigmaError::rule(
            "has neither `detection` nor `correlation`",
        ))
    };
    parsed.map_err(|e| e.at(origin, &title))
}

fn parse_detection(m: &Mapping, origin: &str) -> Result<DetectionRule, SigmaError> {
    let meta = parse_meta(m)?;
    let Some(Yaml::Mapping(det)) = get(m, "detection") else {
        return Err(SigmaError::rule("`detection` must be a mapping"));
    };
    let mut selections = Vec::new();
    let mut conditions = Vec::new();
    for (k, v) in det {
        let Yaml::String(name) = k else {
            return Err(SigmaError::rule("selection names must be strings"));
        };
        if name == "condition" {
            conditions = condition_texts(v)?;
        } else if name != "timeframe" {
            selections.push(parse_selection(name, v)?);
        }
    }
    if conditions.is_empty() {
        return Err(SigmaError::rule("`detection` has no `condition`"));
    }
    let names: Vec<String> = selections.iter().map(|s| s.name.clone()).collect();
    let mut conds = conditions
        .iter()
        .map(|c| condition::parse(c, &names))
        .collect::<Result<Vec<_>, _>>()?;
    let mut cond = if conds.len() == 1 {
        conds.remove(0)
    } else {
        Cond::Or(conds)
    };
    cond.sort_by_cost(&|i| selections[i].cost);
    let kinds = logsource_kinds(m);
    Ok(DetectionRule {
        meta: Arc::new(meta),
        origin: origin.into(),
        prefilter: prefilter::derive(&cond, &selections, kinds),
        selections,
        cond,
        kinds,
        generate: true,
        enabled: true,
        feeds: Vec::new(),
    })
}

fn condition_texts(v: &Yaml) -> Result<Vec<String>, SigmaError> {
    match v {
        Yaml::String(s) => Ok(vec![s.clone()]),
        Yaml::Sequence(seq) => seq
            .iter()
            .map(|c| match c {
                Yaml::String(s) => Ok(s.clone()),
                _ => Err(SigmaError::rule("`condition` list items must be strings")),
            })
            .collect(),
        _ => Err(SigmaError::rule(
            "`condition` must be a string or a list of strings",
        )),
    }
}

fn logsource_kinds(m: &Mapping) -> u8 {
    let Some(Yaml::Mapping(ls)) = get(m, "logsource") else {
        return 0;
    };
    match get_str(ls, "category").as_deref() {
        Some("webserver" | "proxy") => kind_bit(EventKind::Access),
        _ => 0,
    }
}

fn parse_selection(name: &str, v: &Yaml) -> Result<Selection, SigmaError> {
    let groups = match v {
        Yaml::Mapping(map) => vec![parse_group(map)?],
        Yaml::Sequence(seq) if seq.iter().all(|x| matches!(x, Yaml::Mapping(_))) => seq
            .iter()
            .filter_map(|x| x.as_mapping())
            .map(parse_group)
            .collect::<Result<_, _>>()?,
        Yaml::Sequence(seq) if seq.iter().all(|x| !x.is_mapping() && !x.is_sequence()) => {
            vec![vec![compile_item("", v)?]]
        }
        Yaml::String(_) | Yaml::Number(_) => vec![vec![compile_item("", v)?]],
        _ => {
            return Err(SigmaError::rule(format!(
                "selection `{name}` must be a mapping, a list of mappings or a keyword list"
            )));
        }
    };
    let cost = groups
        .iter()
        .map(|g: &Vec<FieldTest>| g.first().map_or(0, |t| t.cost))
        .max()
        .unwrap_or(0);
    Ok(Selection {
        name: name.into(),
        groups,
        cost,
    })
}

fn parse_group(map: &Mapping) -> Result<Vec<FieldTest>, SigmaError> {
    let mut tests = Vec::with_capacity(map.len());
    for (k, v) in map {
        let key = match k {
            Yaml::String(s) => s.as_str(),
            _ => return Err(SigmaError::rule("field names must be strings")),
        };
        tests.push(compile_item(key, v)?);
    }
    tests.sort_by_key(|t| t.cost);
    Ok(tests)
}

fn timespan_ms(s: &str) -> Result<i64, String> {
    let d = parse_duration(s).ok_or("not a duration (try `5m`, `1h`, `30s`)")?;
    let ms = i64::try_from(d.as_millis()).map_err(|_| "too long")?;
    if ms <= 0 {
        return Err("must be longer than zero".into());
    }
    Ok(ms)
}

fn parse_correlation(m: &Mapping, origin: &str) -> Result<CorrelationRule, SigmaError> {
    let meta = parse_meta(m)?;
    let Some(Yaml::Mapping(c)) = get(m, "correlation") else {
        return Err(SigmaError::rule("`correlation` must be a mapping"));
    };
    let kind = match get_str(c, "type").as_deref() {
        Some("event_count") => CorrelationType::EventCount,
        Some("value_count") => CorrelationType::ValueCount,
        Some("temporal") => CorrelationType::Temporal,
        Some("temporal_ordered") => CorrelationType::TemporalOrdered,
        other => {
            return Err(SigmaError::rule(format!(
                "correlation type {other:?} is not supported (event_count, value_count, \
                 temporal, temporal_ordered)"
            )));
        }
    };
    let rule_refs = get_list(c, "rules");
    if rule_refs.is_empty() {
        return Err(SigmaError::rule("correlation has no `rules`"));
    }
    let ts =
        get_str(c, "timespan").ok_or_else(|| SigmaError::rule("correlation has no `timespan`"))?;
    let timespan_ms =
        timespan_ms(&ts).map_err(|e| SigmaError::rule(format!("timespan {ts:?}: {e}")))?;
    let (threshold, field) = parse_threshold(get(c, "condition"), kind, rule_refs.len())?;
    let generate = matches!(
        get(c, "generate").or_else(|| get(m, "generate")),
        Some(Yaml::Bool(true))
    );
    Ok(CorrelationRule {
        meta: Arc::new(meta),
        origin: origin.into(),
        kind,
        rule_refs,
        rules: Vec::new(),
        group_by: get_list(c, "group-by")
            .iter()
            .map(|f| FieldRef::resolve(f))
            .collect(),
        timespan_ms,
        threshold,
        field,
        generate,
        enabled: true,
    })
}

fn parse_threshold(
    cond: Option<&Yaml>,
    kind: CorrelationType,
    nrules: usize,
) -> Result<(Threshold, Option<FieldRef>), SigmaError> {
    let temporal = matches!(
        kind,
        CorrelationType::Temporal | CorrelationType::TemporalOrdered
    );
    let Some(Yaml::Mapping(cm)) = cond else {
        if temporal {
            return Ok((
                Threshold {
                    min: Some(nrules as u64),
                    max: None,
                },
                None,
            ));
        }
        return Err(SigmaError::rule(
            "correlation has no `condition` (e.g. `gte: 10`)",
        ));
    };
    let mut t = Threshold::default();
    let num = |k: &str| -> Result<Option<u64>, SigmaError> {
        match get(cm, k) {
            None => Ok(None),
            Some(Yaml::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| SigmaError::rule(format!("condition `{k}` must be a whole number"))),
            Some(_) => Err(SigmaError::rule(format!(
                "condition `{k}` must be a number"
            ))),
        }
    };
    if let Some(n) = num("gte")? {
        t.min = Some(n)
    }
    if let Some(n) = num("gt")? {
        t.min = Some(n + 1)
    }
    if let Some(n) = num("lte")? {
        t.max = Some(n)
    }
    if let Some(n) = num("lt")? {
        t.max = Some(n.saturating_sub(1))
    }
    if let Some(n) = num("eq")? {
        (t.min, t.max) = (Some(n), Some(n))
    }
    if let Some(r) = get_str(cm, "range") {
        let (a, b) = r
            .split_once("..")
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
            .ok_or_else(|| SigmaError::rule(format!("condition range {r:?} is not `min..max`")))?;
        (t.min, t.max) = (Some(a), Some(b));
    }
    if t == Threshold::default() {
        return Err(SigmaError::rule(
            "correlation condition needs gt, gte, lt, lte, eq or range",
        ));
    }
    let field = get_str(cm, "field").map(|f| FieldRef::resolve(&f));
    if kind == CorrelationType::ValueCount && field.is_none() {
        return Err(SigmaError::rule("value_count needs `condition.field`"));
    }
    Ok((t, field))
}
