//! Prometheus metrics: the runbook's security counters and palisade's own health.
//!
//! [`Metrics`] owns every family and the registry that encodes them. The pipeline
//! thread updates it through [`Metrics::observe_event`], [`Metrics::observe_detection`]
//! and per-source [`SourceMetrics`] handles; the HTTP server calls [`Metrics::encode`].
//! Counters are atomics: hot paths (one call per line) touch pre-resolved handles and
//! never lock or allocate.
//!
//! Cardinality is bounded by construction (field case 55: a label holding client IPs
//! made a scrape tens of megabytes). No label ever carries an IP, URL or user name.
//! Label values that come from log text (`event_type`, `zone`, nginx limit kinds,
//! parse-error reasons) pass through a [`LabelCap`]: values that are not short
//! identifiers become `other`, and after the first [`LOG_LABEL_CAP`] distinct values
//! every new one becomes `other` too.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use jiff::Timestamp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::detect::Detection;
use crate::event::{AttackClasses, Event, EventKind};
use crate::store::EventClass;

/// Distinct values kept per log-derived label before new ones become `other`.
pub const LOG_LABEL_CAP: usize = 64;
/// Distinct rules kept as label values (rules come from config, not logs).
pub const RULE_LABEL_CAP: usize = 512;
/// Distinct configured sources kept as label values.
pub const SOURCE_LABEL_CAP: usize = 64;
/// The label value that stands for everything past a cap or not fit to be a label.
pub const OTHER: &str = "other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ParseErrorLabels {
    source: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventTypeLabel {
    event_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLevelLabels {
    rule: String,
    level: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelCodeLabels {
    channel: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RateLimitLabels {
    zone: String,
    kind: String,
}

type CounterFamily<L> = Family<L, Counter>;
type LagGauge = Gauge<f64, AtomicU64>;

/// Admits label values up to a number of distinct ones; the rest become `other`.
#[derive(Debug)]
pub struct LabelCap {
    max: usize,
    /// Whether values must look like identifiers (true for anything read from logs).
    strict: bool,
    seen: RwLock<HashSet<String>>,
}

impl LabelCap {
    /// A cap of `max` distinct values; `strict` also rejects anything that is not a
    /// short identifier (`[A-Za-z0-9_.-]{1,64}`, not an IP address).
    pub fn new(max: usize, strict: bool) -> LabelCap {
        LabelCap {
            max,
            strict,
            seen: RwLock::new(HashSet::new()),
        }
    }

    /// The value to use as a label: `value` itself, or [`OTHER`].
    pub fn admit(&self, value: &str) -> String {
        if !self.fit(value) {
            return OTHER.to_string();
        }
        let seen = self.seen.read().unwrap_or_else(|p| p.into_inner());
        if seen.contains(value) {
            return value.to_string();
        }
        let full = seen.len() >= self.max;
        drop(seen);
        if full {
            return OTHER.to_string();
        }
        let mut seen = self.seen.write().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= self.max {
            return OTHER.to_string();
        }
        seen.insert(value.to_string());
        value.to_string()
    }

    fn fit(&self, value: &str) -> bool {
        if value.is_empty() || value.len() > 128 {
            return false;
        }
        if !self.strict {
            return !looks_like_address(value);
        }
        value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            && !looks_like_address(value)
    }
}

/// An IP address, or a dotted number that is one in the making (`10.0.0`).
fn looks_like_address(v: &str) -> bool {
    if v.parse::<IpAddr>().is_ok() {
        return true;
    }
    let dotted = v.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    dotted && v.contains('.')
}

/// Every metric palisade exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    class: EventClass,

    failed_auth: Counter,
    security_events: CounterFamily<EventTypeLabel>,
    sqli: Counter,
    blocked_ips: Counter,
    active_sessions: Gauge,

    lines_read: CounterFamily<SourceLabel>,
    lines_parsed: CounterFamily<SourceLabel>,
    parse_errors: CounterFamily<ParseErrorLabels>,
    lines_truncated: CounterFamily<SourceLabel>,
    log_truncations: CounterFamily<SourceLabel>,
    log_rotations: CounterFamily<SourceLabel>,
    lag: Family<SourceLabel, LagGauge>,
    evicted_keys: CounterFamily<RuleLabel>,
    detections: CounterFamily<RuleLevelLabels>,
    events_by_kind: [Counter; EVENT_KINDS.len()],
    allowlisted: Counter,
    ratelimit: CounterFamily<RateLimitLabels>,
    store_errors: Counter,
    alerts_sent: CounterFamily<ChannelLabel>,
    alerts_failed: CounterFamily<ChannelLabel>,
    alerts_queued: Family<ChannelLabel, Gauge>,
    alert_errors: CounterFamily<ChannelCodeLabels>,
    active_bans: Gauge,

    sources: LabelCap,
    rules: LabelCap,
    event_types: LabelCap,
    zones: LabelCap,
    limit_kinds: LabelCap,
    reasons: LabelCap,
}

const EVENT_KINDS: [EventKind; 7] = [
    EventKind::Access,
    EventKind::ServerError,
    EventKind::RateLimit,
    EventKind::App,
    EventKind::Security,
    EventKind::Auth,
    EventKind::Posture,
];

fn kind_index(kind: EventKind) -> usize {
    EVENT_KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(EventClass::default())
    }
}

impl Metrics {
    /// All families registered, classifying events (failed logins, SQLi) with `class`.
    pub fn new(class: EventClass) -> Metrics {
        let mut registry = Registry::default();
        let events_kind = CounterFamily::<KindLabel>::default();
        let events_by_kind = EVENT_KINDS.map(|k| {
            events_kind
                .get_or_create(&KindLabel {
                    kind: k.as_str().into(),
                })
                .clone()
        });
        let m = Metrics {
            registry: Registry::default(),
            class,
            failed_auth: Counter::default(),
            security_events: Family::default(),
            sqli: Counter::default(),
            blocked_ips: Counter::default(),
            active_sessions: Gauge::default(),
            lines_read: Family::default(),
            lines_parsed: Family::default(),
            parse_errors: Family::default(),
            lines_truncated: Family::default(),
            log_truncations: Family::default(),
            log_rotations: Family::default(),
            lag: Family::default(),
            evicted_keys: Family::default(),
            detections: Family::default(),
            events_by_kind,
            allowlisted: Counter::default(),
            ratelimit: Family::default(),
            store_errors: Counter::default(),
            alerts_sent: Family::default(),
            alerts_failed: Family::default(),
            alerts_queued: Family::default(),
            alert_errors: Family::default(),
            active_bans: Gauge::default(),
            sources: LabelCap::new(SOURCE_LABEL_CAP, false),
            rules: LabelCap::new(RULE_LABEL_CAP, false),
            event_types: LabelCap::new(LOG_LABEL_CAP, true),
            zones: LabelCap::new(LOG_LABEL_CAP, true),
            limit_kinds: LabelCap::new(LOG_LABEL_CAP, true),
            reasons: LabelCap::new(LOG_LABEL_CAP, true),
        };
        m.register_all(&mut registry, events_kind);
        Metrics { registry, ..m }
    }

    fn register_all(&self, r: &mut Registry, events_kind: CounterFamily<KindLabel>) {
        // Counter names are registered without `_total`; the encoder appends it.
        r.register(
            "failed_auth_attempts",
            "Failed authentication attempts (login failures, denied POSTs to login paths)",
            self.failed_auth.clone(),
        );
        r.register(
            "security_events",
            "Security events by type (application security events, attack classes)",
            self.security_events.clone(),
        );
        r.register(
            "sql_injection_attempts",
            "Requests classified as SQL injection",
            self.sqli.clone(),
        );
        r.register(
            "blocked_ips",
            "Client addresses banned",
            self.blocked_ips.clone(),
        );
        r.register(
            "active_sessions",
            "Active sessions",
            self.active_sessions.clone(),
        );
        self.register_health(r, events_kind);
    }

    fn register_health(&self, r: &mut Registry, events_kind: CounterFamily<KindLabel>) {
        let counters: [(&str, &str, &CounterFamily<SourceLabel>); 5] = [
            (
                "palisade_lines_read",
                "Lines read per source",
                &self.lines_read,
            ),
            (
                "palisade_lines_parsed",
                "Lines parsed into events",
                &self.lines_parsed,
            ),
            (
                "palisade_lines_truncated",
                "Lines cut at the source's max_line_bytes",
                &self.lines_truncated,
            ),
            (
                "palisade_log_truncations",
                "Files found truncated or rewritten in place",
                &self.log_truncations,
            ),
            (
                "palisade_log_rotations",
                "Files found rotated",
                &self.log_rotations,
            ),
        ];
        for (name, help, family) in counters {
            r.register(name, help, family.clone());
        }
        r.register(
            "palisade_parse_errors",
            "Lines no parser accepted, by reason",
            self.parse_errors.clone(),
        );
        r.register(
            "palisade_processing_lag_seconds",
            "Wall-clock now minus the event time of the last processed line",
            self.lag.clone(),
        );
        r.register(
            "palisade_evicted_keys",
            "Correlation keys evicted at the memory ceiling",
            self.evicted_keys.clone(),
        );
        r.register(
            "palisade_detections",
            "Detections by rule and level",
            self.detections.clone(),
        );
        r.register("palisade_events", "Events by kind", events_kind);
        r.register(
            "palisade_allowlisted_events",
            "Events skipped by the allowlist",
            self.allowlisted.clone(),
        );
        r.register(
            "palisade_nginx_ratelimit",
            "nginx limit_req/limit_conn records by zone and kind",
            self.ratelimit.clone(),
        );
        r.register(
            "palisade_store_errors",
            "Store batches that failed (and are retried)",
            self.store_errors.clone(),
        );
        self.register_response(r);
    }

    fn register_response(&self, r: &mut Registry) {
        r.register(
            "palisade_alerts_sent",
            "Alerts delivered per sink",
            self.alerts_sent.clone(),
        );
        r.register(
            "palisade_alerts_failed",
            "Alerts given up on (permanent errors) per sink",
            self.alerts_failed.clone(),
        );
        r.register(
            "palisade_alerts_queued",
            "Alerts waiting in the outbox per sink",
            self.alerts_queued.clone(),
        );
        r.register(
            "palisade_alert_send_errors",
            "Failed delivery attempts per sink and error code (retried)",
            self.alert_errors.clone(),
        );
        r.register(
            "palisade_active_bans",
            "Bans in force now",
            self.active_bans.clone(),
        );
    }

    /// Mirrors one alert sink's delivery counters (cumulative, from the outbox).
    /// `sink` names come from the configuration, so the label set stays bounded.
    pub fn record_alert_delivery(
        &self,
        sink: &str,
        sent: u64,
        failed: u64,
        queued: u64,
        errors: &std::collections::BTreeMap<String, u64>,
    ) {
        let label = ChannelLabel {
            channel: self.rules.admit(sink),
        };
        let catch_up = |c: &Counter, total: u64| {
            let now = c.get();
            if total > now {
                c.inc_by(total - now);
            }
        };
        catch_up(&self.alerts_sent.get_or_create(&label), sent);
        catch_up(&self.alerts_failed.get_or_create(&label), failed);
        self.alerts_queued.get_or_create(&label).set(queued as i64);
        for (code, n) in errors {
            let l = ChannelCodeLabels {
                channel: label.channel.clone(),
                code: self.reasons.admit(code),
            };
            catch_up(&self.alert_errors.get_or_create(&l), *n);
        }
    }

    /// Sets the number of bans in force.
    pub fn set_active_bans(&self, n: u64) {
        self.active_bans.set(n as i64);
    }

    /// Counts one event: its kind, failed logins, security events, SQLi, rate limits.
    pub fn observe_event(&self, ev: &Event) {
        self.events_by_kind[kind_index(ev.kind)].inc();
        if self.class.is_failed_login(ev) {
            self.failed_auth.inc();
        }
        if self.class.is_sqli(ev) || is_sqli_action(ev) {
            self.sqli.inc();
        }
        if ev.kind == EventKind::Security {
            let ty = ev.action.as_deref().unwrap_or("unknown");
            self.inc_security_event(ty);
        }
        if !ev.attacks.is_empty() {
            self.observe_attacks(ev.attacks);
        }
        if ev.kind == EventKind::RateLimit {
            self.observe_ratelimit(ev);
        }
    }

    fn observe_attacks(&self, attacks: AttackClasses) {
        for name in attacks.names() {
            self.inc_security_event(name);
        }
    }

    fn inc_security_event(&self, event_type: &str) {
        let label = EventTypeLabel {
            event_type: self.event_types.admit(event_type),
        };
        self.security_events.get_or_create(&label).inc();
    }

    fn observe_ratelimit(&self, ev: &Event) {
        // The nginx error-log parser names these `nginx.limit.zone` and
        // `nginx.limit.kind` (req | conn | delay).
        let zone = ev.extra("nginx.limit.zone").or_else(|| ev.extra("zone"));
        let kind = ev.extra("nginx.limit.kind").unwrap_or("unknown");
        let labels = RateLimitLabels {
            zone: self.zones.admit(zone.unwrap_or("unknown")),
            kind: self.limit_kinds.admit(kind),
        };
        self.ratelimit.get_or_create(&labels).inc();
    }

    /// Counts one detection by rule and level (call once per fired episode).
    pub fn observe_detection(&self, d: &Detection) {
        let labels = RuleLevelLabels {
            rule: self.rules.admit(&d.rule.id),
            level: d.rule.level.as_str().into(),
        };
        self.detections.get_or_create(&labels).inc();
    }

    /// Pre-resolved handles for one configured source: keep it, update per line.
    pub fn source(&self, name: &str) -> SourceMetrics {
        let label = SourceLabel {
            source: self.sources.admit(name),
        };
        SourceMetrics {
            lines_read: self.lines_read.get_or_create_owned(&label),
            lines_parsed: self.lines_parsed.get_or_create_owned(&label),
            lines_truncated: self.lines_truncated.get_or_create_owned(&label),
            log_truncations: self.log_truncations.get_or_create_owned(&label),
            log_rotations: self.log_rotations.get_or_create_owned(&label),
            lag: self.lag.get_or_create_owned(&label),
            source: label.source,
        }
    }

    /// Counts a line no parser accepted; `reason` is a short code (`no_match`,
    /// `bad_timestamp`, …), capped like any label.
    pub fn inc_parse_error(&self, source: &SourceMetrics, reason: &str) {
        let labels = ParseErrorLabels {
            source: source.source.clone(),
            reason: self.reasons.admit(reason),
        };
        self.parse_errors.get_or_create(&labels).inc();
    }

    /// Counts `n` correlation keys evicted from `rule`'s state.
    pub fn inc_evicted_keys(&self, rule: &str, n: u64) {
        let label = RuleLabel {
            rule: self.rules.admit(rule),
        };
        self.evicted_keys.get_or_create(&label).inc_by(n);
    }

    /// Counts a ban of one client address.
    pub fn inc_blocked_ips(&self) {
        self.blocked_ips.inc();
    }

    /// Sets the number of active sessions.
    pub fn set_active_sessions(&self, n: i64) {
        self.active_sessions.set(n);
    }

    /// Counts an event skipped by the allowlist.
    pub fn inc_allowlisted(&self) {
        self.allowlisted.inc();
    }

    /// Counts a failed store batch.
    pub fn inc_store_errors(&self) {
        self.store_errors.inc();
    }

    /// The OpenMetrics text exposition of every family.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn is_sqli_action(ev: &Event) -> bool {
    ev.kind == EventKind::Security
        && ev.action.as_deref().is_some_and(|a| {
            let a = a.to_ascii_lowercase();
            a.contains("sql_injection") || a == "sqli"
        })
}

/// One source's counters, resolved once; every method is a single atomic operation.
#[derive(Debug, Clone)]
pub struct SourceMetrics {
    source: String,
    lines_read: Counter,
    lines_parsed: Counter,
    lines_truncated: Counter,
    log_truncations: Counter,
    log_rotations: Counter,
    lag: LagGauge,
}

impl SourceMetrics {
    /// The label value used for this source (`other` past the cap).
    pub fn label(&self) -> &str {
        &self.source
    }

    pub fn inc_lines_read(&self, n: u64) {
        self.lines_read.inc_by(n);
    }

    pub fn inc_lines_parsed(&self, n: u64) {
        self.lines_parsed.inc_by(n);
    }

    pub fn inc_lines_truncated(&self) {
        self.lines_truncated.inc();
    }

    pub fn inc_log_truncations(&self) {
        self.log_truncations.inc();
    }

    pub fn inc_log_rotations(&self) {
        self.log_rotations.inc();
    }

    /// Records the lag of the last processed line: `now` (wall clock) minus its event
    /// time. Negative lags (clock skew, future timestamps) are recorded as they are.
    pub fn set_lag(&self, event_time: Timestamp, now: Timestamp) {
        let lag = now.duration_since(event_time).as_secs_f64();
        self.lag.set(lag);
    }
}

/// Shared handle type the pipeline and the HTTP server hold.
pub type SharedMetrics = Arc<Metrics>;

#[cfg(test)]
mod tests;
