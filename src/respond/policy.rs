//! The response policy: which decision a detection gets. Entries of
//! `[[respond.policy]]` are tried in order and the first one whose conditions all hold
//! (rule id/name, minimum level, tag, minimum threat score) decides: ban, alert or
//! nothing. Ban lengths escalate for repeat offenders (1 h → 24 h → 7 d by default).
//!
//! The policy only decides; [`super::Responder`] checks the allowlist, the ban store and
//! the simulation switches, and enforces.

use std::time::Duration;

use crate::detect::{Detection, Level};

use super::config::{Action, PolicyConfig, RespondConfig};

/// One compiled policy entry.
#[derive(Debug, Clone)]
pub struct PolicyEntry {
    pub name: String,
    rules: Vec<String>,
    level: Option<Level>,
    tags: Vec<String>,
    min_threat_score: Option<f64>,
    pub action: Action,
    pub escalation: Vec<Option<Duration>>,
    pub simulate: bool,
}

impl PolicyEntry {
    fn from_config(cfg: &PolicyConfig, default_escalation: &[Option<Duration>]) -> Self {
        PolicyEntry {
            name: cfg.name.clone(),
            rules: cfg.rules.clone(),
            level: cfg.level,
            tags: cfg.tags.iter().map(|t| t.to_ascii_lowercase()).collect(),
            min_threat_score: cfg.min_threat_score,
            action: cfg.action,
            escalation: cfg
                .escalation
                .clone()
                .unwrap_or_else(|| default_escalation.to_vec()),
            simulate: cfg.simulate,
        }
    }

    /// Whether every condition of this entry holds for `d`. A threat-score condition
    /// fails when no score is known: "ban if the score is ≥ 80" must not ban unknowns.
    pub fn matches(&self, d: &Detection, threat_score: Option<f64>) -> bool {
        let rule = &d.rule;
        if !self.rules.is_empty() {
            let named = |r: &String| *r == rule.id || rule.name.as_deref() == Some(r.as_str());
            if !self.rules.iter().any(named) {
                return false;
            }
        }
        if self.level.is_some_and(|min| rule.level < min) {
            return false;
        }
        if !self.tags.is_empty() {
            let has = |t: &String| rule.tags.iter().any(|rt| rt.eq_ignore_ascii_case(t));
            if !self.tags.iter().any(has) {
                return false;
            }
        }
        match self.min_threat_score {
            Some(min) => threat_score.is_some_and(|s| s >= min),
            None => true,
        }
    }

    /// The ban length for an offender with `repeat` earlier bans; `None` = permanent.
    pub fn ban_length(&self, repeat: u32) -> Option<Duration> {
        let last = self.escalation.len().saturating_sub(1);
        let i = (repeat as usize).min(last);
        self.escalation.get(i).copied().flatten()
    }
}

/// The ordered policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    entries: Vec<PolicyEntry>,
}

impl Policy {
    /// Compiles `[respond] policy` entries.
    pub fn from_config(cfg: &RespondConfig) -> Policy {
        let entries = cfg
            .policies
            .iter()
            .map(|p| PolicyEntry::from_config(p, &cfg.escalation))
            .collect();
        Policy { entries }
    }

    /// The first entry matching `d`, if any.
    pub fn decide(&self, d: &Detection, threat_score: Option<f64>) -> Option<&PolicyEntry> {
        self.entries.iter().find(|e| e.matches(d, threat_score))
    }

    /// All entries, in order.
    pub fn entries(&self) -> &[PolicyEntry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use jiff::Timestamp;

    use super::*;
    use crate::detect::{DetectionState, RuleMeta};

    pub(crate) fn detection(id: &str, level: Level, tags: &[&str]) -> Detection {
        let t = Timestamp::from_second(1_700_000_000).unwrap();
        Detection {
            rule: Arc::new(RuleMeta {
                id: id.into(),
                name: Some(format!("{id}-name")),
                title: id.into(),
                level,
                tags: tags.iter().map(|s| s.to_string()).collect(),
                description: String::new(),
            }),
            key: vec![("source.ip".into(), "192.0.2.7".into())],
            count: 3,
            first_seen: t,
            last_seen: t,
            samples: Vec::new(),
            state: DetectionState::Fired,
        }
    }

    fn policy(toml_text: &str) -> Policy {
        Policy::from_config(&toml::from_str(toml_text).unwrap())
    }

    #[test]
    fn first_matching_entry_wins() {
        let p = policy(
            r#"
            [[policy]]
            name = "login"
            rules = ["login-name"]
            action = "ban"
            [[policy]]
            name = "rest"
            action = "alert"
            "#,
        );
        let login = detection("login", Level::Low, &[]);
        let other = detection("scan", Level::Low, &[]);
        assert_eq!(p.decide(&login, None).unwrap().name, "login");
        assert_eq!(p.decide(&other, None).unwrap().name, "rest");
    }

    #[test]
    fn level_and_tag_conditions_both_must_hold() {
        let p = policy(
            r#"
            [[policy]]
            level = "high"
            tags = ["attack.T1110"]
            action = "ban"
            "#,
        );
        assert!(
            p.decide(&detection("a", Level::High, &["attack.t1110"]), None)
                .is_some()
        );
        assert!(
            p.decide(&detection("a", Level::Medium, &["attack.t1110"]), None)
                .is_none()
        );
        assert!(
            p.decide(&detection("a", Level::Critical, &["attack.t1190"]), None)
                .is_none()
        );
    }

    #[test]
    fn threat_score_condition_fails_without_a_score() {
        let p = policy("[[policy]]\nmin_threat_score = 80.0\naction = \"ban\"");
        let d = detection("a", Level::Low, &[]);
        assert!(p.decide(&d, None).is_none());
        assert!(p.decide(&d, Some(50.0)).is_none());
        assert!(p.decide(&d, Some(90.0)).is_some());
    }

    #[test]
    fn repeat_offenders_escalate_and_the_last_length_repeats() {
        let p = Policy::from_config(&RespondConfig::default());
        let e = &p.entries()[0];
        let h = |n: u64| Some(Duration::from_secs(n * 3600));
        assert_eq!(e.ban_length(0), h(1));
        assert_eq!(e.ban_length(1), h(24));
        assert_eq!(e.ban_length(2), h(168));
        assert_eq!(e.ban_length(9), h(168));
    }
}
