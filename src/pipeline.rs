//! The pipeline: one line in, detections out, the same code for `scan` and `watch`.
//!
//! ```text
//!  Line ──► Parser ──► Event ──► allowlist ──► Classifier ──► Engine ──► Detection
//!  (source)  (per source)         (skip)        (attack bits)  (Sigma + windows)
//! ```
//!
//! The pipeline owns no I/O: `scan` feeds it lines from whole files, `watch` from the
//! tailer; both hand the detections to the store and outputs. Event time (from the
//! lines) is the only clock the engine sees; [`Pipeline::advance`] moves it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use jiff::Timestamp;
use serde::Serialize;
use thiserror::Error;

use crate::config::{Config, SourceConfig};
use crate::detect::classify::Classifier;
use crate::detect::engine::Engine;
use crate::detect::sigma::RuleSet;
use crate::detect::{Detection, DetectionState, Level, RuleMeta};
use crate::event::Event;
use crate::parse::monitor::{FormatMismatch, FormatMonitor};
use crate::parse::{self, Parser};
use crate::serve::{Metrics, SourceMetrics};
use crate::sources::Line;
use crate::store::{CounterDelta, EventClass, MinuteCounters};

/// Errors building a pipeline.
#[derive(Debug, Error)]
pub enum PipelineError {
    #[error("source {source_name:?}: {message}")]
    Parser {
        source_name: String,
        message: String,
    },
}

/// Counters for one source, reported at the end of a scan and exported as metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceStats {
    pub lines: u64,
    pub events: u64,
    pub failed: u64,
    pub truncated: u64,
    pub invalid_utf8: u64,
    /// Parse failures by reason (`no_match`, `bad_ip`, …).
    pub failed_by_reason: BTreeMap<&'static str, u64>,
    /// Events whose client is allowlisted, left out of detection.
    pub allowlisted: u64,
    /// Events from a cut line whose cut field was left out of detection.
    pub cut_fields: u64,
    /// Events older than a manual unban of their client, left out of detection.
    pub forgiven: u64,
}

struct SourceRuntime {
    name: Arc<str>,
    parser: Box<dyn Parser>,
    monitor: FormatMonitor,
    stats: SourceStats,
    metrics: Option<SourceMetrics>,
}

/// Parsers, classifier and rule engine wired together.
pub struct Pipeline {
    sources: Vec<SourceRuntime>,
    classifier: Classifier,
    engine: Engine,
    allowlist: Allowlist,
    metrics: Option<Arc<Metrics>>,
    counters: MinuteCounters,
    events: Vec<Event>,
    /// The latest event time seen: the engine's clock.
    clock: Option<Timestamp>,
    /// Manual unbans (scope, when): a client's events from before its unban are not
    /// counted again, e.g. when a restart replays them (field case 19).
    forgiven: Vec<(IpNet, Timestamp)>,
}

/// Networks whose clients are left out of detection, as masks ready to compare: the
/// check runs on every event.
struct Allowlist {
    /// (network, netmask) of each IPv4 network.
    v4: Vec<(u32, u32)>,
    /// (network, netmask) of each IPv6 network.
    v6: Vec<(u128, u128)>,
}

impl Allowlist {
    fn new(nets: &[IpNet]) -> Allowlist {
        let mut list = Allowlist {
            v4: Vec::new(),
            v6: Vec::new(),
        };
        for net in nets {
            match net {
                IpNet::V4(n) => list.v4.push((n.network().into(), n.netmask().into())),
                IpNet::V6(n) => list.v6.push((n.network().into(), n.netmask().into())),
            }
        }
        list
    }

    /// What `IpNet::contains` says for any of the networks: an address is in a
    /// network of its own family whose masked bits it shares.
    fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().any(|&(net, mask)| a & mask == net)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().any(|&(net, mask)| a & mask == net)
            }
        }
    }
}

/// Always left out of detection: the host talking to itself.
fn loopback() -> [IpNet; 2] {
    [
        "127.0.0.0/8".parse().expect("constant"),
        "::1/128".parse().expect("constant"),
    ]
}

impl Pipeline {
    /// A pipeline with the configuration's sources, network settings and rules.
    pub fn new(
        config: &Config,
        rules: Arc<RuleSet>,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Pipeline, PipelineError> {
        let mut nets = loopback().to_vec();
        nets.extend(config.network.allowlist.iter().copied());
        let allowlist = Allowlist::new(&nets);
        let mut pipeline = Pipeline {
            sources: Vec::new(),
            classifier: Classifier::new(),
            engine: Engine::new(rules, &config.detection),
            allowlist,
            metrics,
            counters: MinuteCounters::new(EventClass::default()),
            events: Vec::with_capacity(4),
            clock: None,
            forgiven: Vec::new(),
        };
        for source in &config.sources {
            pipeline.add_source(source, config)?;
        }
        Ok(pipeline)
    }

    /// Adds a source; returns the index to pass to [`Pipeline::process_line`].
    pub fn add_source(
        &mut self,
        source: &SourceConfig,
        config: &Config,
    ) -> Result<usize, PipelineError> {
        let parser = parse::build(source, &config.network).map_err(|e| PipelineError::Parser {
            source_name: source.display_name().to_string(),
            message: e.to_string(),
        })?;
        let name: Arc<str> = Arc::from(source.display_name());
        let monitor = FormatMonitor::new(&name, parser.format_name());
        let metrics = self.metrics.as_ref().map(|m| m.source(&name));
        self.sources.push(SourceRuntime {
            name,
            parser,
            monitor,
            stats: SourceStats::default(),
            metrics,
        });
        Ok(self.sources.len() - 1)
    }

    /// Sets the manual unbans (scope, time of the unban; see
    /// `Responder::unbans`): events of a client inside such a scope stamped at or
    /// before its unban are left out of detection, so the failures that led to a ban
    /// an operator lifted are not counted again when a restart replays the log, and a
    /// new failure after the unban counts from 1 (field case 19).
    pub fn set_forgiven(&mut self, unbans: Vec<(IpNet, Timestamp)>) {
        self.forgiven = unbans;
    }

    /// The index of a source by name.
    pub fn source_index(&self, name: &str) -> Option<usize> {
        self.sources.iter().position(|s| &*s.name == name)
    }

    /// The configured name of source `idx`.
    pub fn source_name(&self, idx: usize) -> &Arc<str> {
        &self.sources[idx].name
    }

    /// Parses one line of source `idx` and runs its events through detection.
    pub fn process_line(&mut self, idx: usize, line: &Line, out: &mut Vec<Detection>) {
        let src = &mut self.sources[idx];
        src.stats.lines += 1;
        src.stats.truncated += u64::from(line.truncated);
        src.stats.invalid_utf8 += u64::from(line.invalid_utf8);
        let result = src.parser.parse(line, &mut self.events);
        // A cut line that fails says nothing about the configured format: a source of
        // very long lines is not a format mismatch (field case 34).
        let judged = !(line.truncated && result.is_err());
        if let Some(mismatch) = judged
            .then(|| src.monitor.record(&line.text, result.as_ref().map(|_| ())))
            .flatten()
        {
            format_mismatch_detection(&mismatch, line, out);
        }
        if let Some(m) = &src.metrics {
            m.inc_lines_read(1);
            if line.truncated {
                m.inc_lines_truncated();
            }
        }
        if let Err(e) = result {
            src.stats.failed += 1;
            *src.stats.failed_by_reason.entry(e.reason()).or_default() += 1;
            if let (Some(m), Some(sm)) = (&self.metrics, &src.metrics) {
                m.inc_parse_error(sm, e.reason());
            }
            tracing::debug!(source = %src.name, offset = line.offset, error = %e, "Unparsed line");
        }
        let cut = line.truncated.then_some(line.offset);
        self.drain_events(idx, cut, out);
    }

    /// [`Pipeline::process_line`] for a line whose transport recorded its time (a
    /// Docker log entry): a line without a time of its own gets `time` instead of the
    /// previous line's (field cases 39, 43: container output often has no timestamp).
    pub fn process_line_at(
        &mut self,
        idx: usize,
        line: &Line,
        time: Timestamp,
        out: &mut Vec<Detection>,
    ) {
        self.sources[idx].parser.set_time_hint(time);
        self.process_line(idx, line, out);
    }

    /// Releases entries a parser holds back (multi-line joining) for source `idx`.
    pub fn flush_source(&mut self, idx: usize, out: &mut Vec<Detection>) {
        self.sources[idx].parser.flush(&mut self.events);
        self.drain_events(idx, None, out);
    }

    /// Runs the parsed events through detection; `cut` is the offset of the line just
    /// parsed when it was cut at the source's `max_line_bytes`.
    fn drain_events(&mut self, idx: usize, cut: Option<u64>, out: &mut Vec<Detection>) {
        let mut events = std::mem::take(&mut self.events);
        // Worked on in place and dropped together: moving each several-hundred-byte
        // event out of the vector showed in profiles.
        for ev in events.iter_mut() {
            let src = &mut self.sources[idx];
            src.stats.events += 1;
            if let Some(m) = &src.metrics {
                m.inc_lines_parsed(1);
            }
            if self.clock.is_none_or(|c| ev.timestamp > c) {
                self.clock = Some(ev.timestamp);
            }
            if ev.source_ip.is_some_and(|ip| self.allowlist.contains(ip)) {
                self.sources[idx].stats.allowlisted += 1;
                if let Some(m) = &self.metrics {
                    m.inc_allowlisted();
                }
                continue;
            }
            if self.is_forgiven(ev) {
                self.sources[idx].stats.forgiven += 1;
                continue;
            }
            if cut == Some(ev.offset) && drop_cut_tail(ev) {
                self.sources[idx].stats.cut_fields += 1;
            }
            if ev.url_original.is_some() || ev.user_agent.is_some() {
                self.classifier.classify(ev);
            }
            self.counters.observe_event(ev);
            if let Some(m) = &self.metrics {
                m.observe_event(ev);
            }
            self.engine.process(ev, out);
            self.sources[idx].parser.recycle(ev);
        }
        events.clear();
        self.events = events;
    }

    fn is_forgiven(&self, ev: &Event) -> bool {
        if self.forgiven.is_empty() {
            return false;
        }
        let Some(ip) = ev.source_ip.map(|ip| ip.to_canonical()) else {
            return false;
        };
        self.forgiven
            .iter()
            .any(|(scope, at)| scope.contains(&ip) && ev.timestamp <= *at)
    }

    /// Moves the engine's clock to `now` (event time), closing finished episodes.
    pub fn advance(&mut self, now: Timestamp, out: &mut Vec<Detection>) {
        self.engine.advance(now, out);
    }

    /// Moves the engine's clock to the latest event time seen so far.
    pub fn advance_to_clock(&mut self, out: &mut Vec<Detection>) {
        if let Some(now) = self.clock {
            self.engine.advance(now, out);
        }
    }

    /// End of input: flushes every parser and closes every open detection.
    pub fn finish(&mut self, out: &mut Vec<Detection>) {
        for idx in 0..self.sources.len() {
            self.flush_source(idx, out);
            if let Some(mismatch) = self.sources[idx].monitor.finish() {
                let line = Line {
                    source: self.sources[idx].name.clone(),
                    path: Arc::from(""),
                    offset: 0,
                    text: mismatch.sample.clone(),
                    truncated: false,
                    invalid_utf8: false,
                };
                format_mismatch_detection(&mismatch, &line, out);
            }
        }
        self.engine.finish(out);
    }

    /// The per-minute counters (failed logins, SQLi, …) gathered since the last call,
    /// for the store's batch that also holds the detections from the same lines.
    pub fn drain_counters(&mut self) -> Vec<CounterDelta> {
        self.counters.drain()
    }

    /// The metrics handle of source `idx`, when metrics are on.
    pub fn source_metrics(&self, idx: usize) -> Option<&SourceMetrics> {
        self.sources[idx].metrics.as_ref()
    }

    /// The latest event time seen.
    pub fn clock(&self) -> Option<Timestamp> {
        self.clock
    }

    /// Per-source counters, by source name.
    pub fn source_stats(&self) -> Vec<(Arc<str>, SourceStats)> {
        self.sources
            .iter()
            .map(|s| (s.name.clone(), s.stats.clone()))
            .collect()
    }

    /// The rule engine (for stats and explanations).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The classifier (for `rules test`).
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }
}

/// A line cut at `max_line_bytes` ends inside its last field, so that field holds a
/// prefix of what was sent, and a prefix can match where the whole value does not:
/// `q=O'connors+UNION+selected+a+few` cut after `select` reads as SQL injection, and
/// `/x.phpinfo` cut to `/x.php` satisfies an `endswith: .php` rule (field case 34).
/// The field reaching the cut (the event's raw text ends with it) is left out of
/// classification and rules: a cut URL keeps its path when the `?` came before the cut
/// (the path is whole), other cut fields are dropped. The raw line keeps everything
/// as evidence. Returns whether a field was dropped.
fn drop_cut_tail(ev: &mut Event) -> bool {
    let raw = ev.raw.as_str();
    let reaches_cut = |v: &str| !v.is_empty() && raw.ends_with(v);
    if let Some(url) = ev.url_original.take() {
        if !reaches_cut(&url) {
            ev.url_original = Some(url);
        } else if let Some(q) = ev.query_at {
            ev.set_url(&url[..q as usize]);
            return true;
        } else {
            ev.query_at = None;
            return true;
        }
    }
    for field in [&mut ev.user_agent, &mut ev.referrer] {
        if field.as_deref().is_some_and(reaches_cut) {
            *field = None;
            return true;
        }
    }
    if ev.message.as_deref().is_some_and(reaches_cut) {
        ev.message = None;
        return true;
    }
    false
}

/// A source whose lines mostly fail to parse is one detection (not one error per
/// line), so it reaches the same outputs and alerts as attacks do.
fn format_mismatch_detection(m: &FormatMismatch, line: &Line, out: &mut Vec<Detection>) {
    let rule = Arc::new(RuleMeta {
        id: "palisade-log-format-mismatch".into(),
        name: Some("log_format_mismatch".into()),
        title: "Log format mismatch".into(),
        level: Level::Medium,
        tags: vec!["palisade.health".into()],
        description: m.to_string(),
    });
    let mut sample = Event::new(line.source.clone(), line.offset, m.sample.clone());
    sample.message = Some(m.to_string());
    let now = Timestamp::now();
    for state in [DetectionState::Fired, DetectionState::Closed] {
        out.push(Detection {
            rule: rule.clone(),
            key: vec![("log.source".into(), m.source.as_str().into())],
            count: u64::from(m.failed),
            first_seen: now,
            last_seen: now,
            samples: vec![sample.clone()],
            state,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_masks_agree_with_ipnet() {
        let nets: Vec<IpNet> = ["127.0.0.0/8", "10.1.2.3/16", "2001:db8::5/32", "::1/128"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let list = Allowlist::new(&nets);
        for ip in [
            "127.0.0.1",
            "128.0.0.1",
            "10.1.200.9",
            "10.2.0.1",
            "2001:db8:ffff::1",
            "2001:db9::1",
            "::1",
            "::2",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let want = nets.iter().any(|n| n.contains(&ip));
            assert_eq!(list.contains(ip), want, "{ip}");
        }
    }
}
