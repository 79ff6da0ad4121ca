//! The field-case test stack shared by field_cases_*.rs: a palisade configuration
//! (TOML, as an operator writes it) → [`Pipeline`] → [`Responder`] (backend `none`,
//! store in a temp dir), fed line by line, recording at which input line each
//! detection fired and each decision was taken.
#![allow(dead_code)]

use std::fs;
use std::net::IpAddr;
use std::sync::Arc;

use jiff::Timestamp;
use palisade::config::Config;
use palisade::detect::sigma::RuleSet;
use palisade::detect::{Detection, DetectionState};
use palisade::pipeline::Pipeline;
use palisade::respond::Responder;
use palisade::respond::decision::{Ban, Decision, DecisionKind};
use palisade::serve::Metrics;
use palisade::sources::Line;

/// A JSON/logfmt "login failed" rule for the field-case profile (the built-in rules
/// count nginx 401s and sshd failures; application messages need a user rule, exactly
/// as an operator would add one in a rules folder).
pub const APP_LOGIN_RULES: &str = r#"
title: App Login Failed
id: 6a0f7a52-9a57-4d0e-bc38-0d2b0f9e4c11
name: app_login_failed
status: test
description: The application logged a failed login.
logsource:
    category: application
detection:
    selection:
        event.action: login_failed
    condition: selection
level: low
---
title: App Login Brute Force
id: 3f3e7a0e-2a47-4b0c-9b61-55b1d3f0a9d2
name: app_login_bruteforce
status: test
description: Failed logins from one client.
correlation:
    type: event_count
    rules:
        - app_login_failed
    group-by:
        - source.ip
    timespan: 10m
    condition:
        gte: 3
level: high
"#;

/// A logfmt "login failed" rule: `login failed` is free text in a logfmt line.
pub const LOGFMT_LOGIN_RULES: &str = r#"
title: Logfmt Login Failed
id: 0c5d1b8e-7f0f-4c44-9f6e-0d9a1b2c3d4e
name: logfmt_login_failed
status: test
description: A key=value line saying a login failed (or an auth 401).
logsource:
    category: application
detection:
    selection_text:
        message|contains: 'login failed'
    selection_auth:
        message|contains: 'auth'
        http.response.status_code: 401
    condition: 1 of selection_*
level: low
---
title: Logfmt Login Brute Force
id: 9b3e6a0c-1d2f-4e5a-8b7c-6d5e4f3a2b1c
name: logfmt_login_bruteforce
status: test
description: Failed logins from one client.
correlation:
    type: event_count
    rules:
        - logfmt_login_failed
    group-by:
        - source.ip
    timespan: 10m
    condition:
        gte: 3
level: high
"#;

/// One detection the pipeline fired, with the 1-based input line that fired it.
pub struct Fired {
    pub line: usize,
    pub detection: Detection,
}

/// Configuration → pipeline → responder, as `watch` wires them.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub pipeline: Pipeline,
    pub responder: Responder,
    pub metrics: Arc<Metrics>,
    pub lines: usize,
    pub fired: Vec<Fired>,
    pub closed: Vec<Detection>,
    pub decisions: Vec<(usize, Decision)>,
}

impl Stack {
    /// `toml` is a palisade configuration (sources, network, rules overrides);
    /// `user_rules` goes into a rules folder next to the built-in rules.
    pub fn new(toml: &str, user_rules: &str) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let mut config: Config = toml::from_str(toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        if !user_rules.is_empty() {
            let rules_dir = dir.path().join("rules");
            fs::create_dir(&rules_dir).unwrap();
            fs::write(rules_dir.join("field_cases.yml"), user_rules).unwrap();
            config.rules.dirs.push(rules_dir);
        }
        config.store.path = dir.path().join("palisade.db");
        config.respond.allowlist_host_addresses = false;
        Stack::start(dir, config, None)
    }

    /// Starts (or restarts, over the same store) the way `watch` does: the responder
    /// reconciles bans, and its manual unbans go to the pipeline. `clock` fixes the
    /// responder's wall clock (unban times).
    pub fn start(dir: tempfile::TempDir, config: Config, clock: Option<Timestamp>) -> Stack {
        let rules = Arc::new(RuleSet::load(&config.rules).expect("rules load"));
        let metrics = Arc::new(Metrics::default());
        let mut pipeline = Pipeline::new(&config, rules, Some(metrics.clone())).expect("pipeline");
        let mut responder = responder_for(&config);
        if let Some(t) = clock {
            responder = responder.with_clock(move || t);
        }
        responder.reconcile_on_start().expect("reconcile");
        pipeline.set_forgiven(responder.unbans());
        Stack {
            dir,
            config,
            pipeline,
            responder,
            metrics,
            lines: 0,
            fired: Vec::new(),
            closed: Vec::new(),
            decisions: Vec::new(),
        }
    }

    /// Stops and starts again over the same store and configuration.
    pub fn restart(self, clock: Option<Timestamp>) -> Stack {
        Stack::start(self.dir, self.config, clock)
    }

    pub fn source(&self, name: &str) -> usize {
        self.pipeline.source_index(name).expect("configured source")
    }

    /// Runs one line of `source` through the pipeline and the responder.
    pub fn feed(&mut self, source: &str, text: &str) {
        let line = Line {
            source: Arc::from(source),
            path: Arc::from(source),
            offset: self.lines as u64 * 1000,
            text: text.to_owned(),
            truncated: false,
            invalid_utf8: false,
        };
        self.feed_line(&line);
    }

    pub fn feed_line(&mut self, line: &Line) {
        self.lines += 1;
        let idx = self.source(&line.source);
        let mut out = Vec::new();
        self.pipeline.process_line(idx, line, &mut out);
        self.respond(out);
    }

    /// Runs a line whose transport recorded `time` (a Docker entry) through.
    pub fn feed_line_at(&mut self, line: &Line, time: Timestamp) {
        self.lines += 1;
        let idx = self.source(&line.source);
        let mut out = Vec::new();
        self.pipeline.process_line_at(idx, line, time, &mut out);
        self.respond(out);
    }

    pub fn feed_all(&mut self, source: &str, input: &str) {
        for text in input.lines() {
            self.feed(source, text);
        }
    }

    pub fn respond(&mut self, out: Vec<Detection>) {
        for d in out {
            if d.state != DetectionState::Fired {
                self.closed.push(d);
                continue;
            }
            for decision in self.responder.on_detection(&d) {
                self.decisions.push((self.lines, decision));
            }
            self.fired.push(Fired {
                line: self.lines,
                detection: d,
            });
        }
    }

    /// End of input: closes open episodes (their decisions are taken too).
    pub fn finish(&mut self) {
        let mut out = Vec::new();
        self.pipeline.finish(&mut out);
        self.respond(out);
    }

    /// Fired detections of rule `name`: (line, key address).
    pub fn fired_by(&self, name: &str) -> Vec<(usize, String)> {
        self.fired
            .iter()
            .filter(|f| f.detection.rule.name.as_deref() == Some(name))
            .map(|f| {
                let ip = f.detection.key_value("source.ip").unwrap_or("");
                (f.line, ip.to_owned())
            })
            .collect()
    }

    /// The first sample event of the first detection of rule `name`.
    pub fn fired_by_sample(&self, name: &str) -> palisade::event::Event {
        self.fired
            .iter()
            .find(|f| f.detection.rule.name.as_deref() == Some(name))
            .and_then(|f| f.detection.samples.first().cloned())
            .unwrap_or_else(|| {
                let names: Vec<_> = self.fired.iter().map(|f| &f.detection.rule.title).collect();
                panic!("no {name} detection; fired: {names:?}")
            })
    }

    /// Bans decided: (line, scope).
    pub fn bans(&self) -> Vec<(usize, String)> {
        self.decisions
            .iter()
            .filter_map(|(line, d)| match &d.kind {
                DecisionKind::Ban(Ban { scope, .. }) => Some((*line, scope.to_string())),
                _ => None,
            })
            .collect()
    }

    /// Decisions of any kind taken at or after `line`.
    pub fn decisions_from(&self, line: usize) -> Vec<&Decision> {
        self.decisions
            .iter()
            .filter(|(l, _)| *l >= line)
            .map(|(_, d)| d)
            .collect()
    }

    pub fn stats(&self, source: &str) -> palisade::pipeline::SourceStats {
        self.pipeline
            .source_stats()
            .into_iter()
            .find(|(n, _)| &**n == source)
            .map(|(_, s)| s)
            .expect("source stats")
    }

    pub fn metrics_text(&self) -> String {
        self.metrics.encode()
    }
}

pub fn responder_for(config: &Config) -> Responder {
    Responder::from_config(
        &config.respond,
        &config.store.path,
        &config.network.allowlist,
        &config.network.trusted_proxies,
    )
    .expect("responder")
}

/// A `[[sources]]` block.
pub fn source_toml(name: &str, path: &str, parser: &str) -> String {
    format!("[[sources]]\nname = \"{name}\"\npath = \"{path}\"\nparser = {parser}\n")
}

/// A `[rules.overrides."<rule>"]` block.
pub fn override_toml(rule: &str, threshold: u64, timespan: &str) -> String {
    format!("[rules.overrides.\"{rule}\"]\nthreshold = {threshold}\ntimespan = \"{timespan}\"\n")
}

/// `[[respond.policy]]`: the named rules ban.
pub fn ban_policy(rules: &[&str]) -> String {
    let list: Vec<String> = rules.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "[[respond.policy]]\nname = \"field-case\"\nrules = [{}]\naction = \"ban\"\n",
        list.join(", ")
    )
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub const NGINX_COMBINED: &str = r#"{ format = "nginx", log_format = "combined" }"#;
pub const NGINX_MAIN: &str = r#"{ format = "nginx", log_format = "main" }"#;
pub const JSON: &str = r#"{ format = "json" }"#;

/// A single-event rule that turns every event with a client into a detection keyed by
/// that client: shows which addresses the pipeline extracted, end to end.
pub const CLIENT_SEEN_RULE: &str = r#"
title: Client Seen
id: 1d6c5f0e-8a2b-4c3d-9e8f-7a6b5c4d3e2f
name: client_seen
status: test
description: Any event with a client address.
logsource:
    category: any
detection:
    selection:
        source.ip|exists: true
    condition: selection
level: informational
"#;

/// Every key address any detection (fired or closed) named, sorted and deduplicated.
pub fn keyed(stack: &Stack) -> Vec<String> {
    let mut all: Vec<String> = stack
        .fired
        .iter()
        .map(|f| &f.detection)
        .chain(&stack.closed)
        .filter_map(|d| d.key_value("source.ip").map(str::to_owned))
        .collect();
    all.sort();
    all.dedup();
    all
}
