//! The decision model: what palisade did, or would have done in simulation, about a
//! detection, an operator's command or an imported decision.
//!
//! A [`Decision`] is the unit the store records, the alert sinks notify about and the
//! API lists. Bans carry a [`Ban`], the same value the firewall backends enforce, so a
//! decision and the kernel rule it produced cannot drift apart.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::detect::Level;

/// One ban: an address range kept out until a time (or for good).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// The banned range: a single host (`/32`, `/128`) or a v6 prefix (`/64`).
    pub scope: IpNet,
    /// When the ban started (event time for detections, wall-clock for operators).
    pub created: Timestamp,
    /// When it ends; `None` is permanent.
    pub until: Option<Timestamp>,
    /// Why, in words, e.g. the rule title.
    pub reason: String,
    /// The rule id that caused it, or empty for manual bans.
    pub rule_id: String,
    /// How many earlier bans this scope had (0 for a first offence); drives escalation.
    pub repeat: u32,
}

impl Ban {
    /// Whether the ban is still in force at `now`.
    pub fn active_at(&self, now: Timestamp) -> bool {
        self.until.is_none_or(|until| until > now)
    }

    /// Seconds left at `now` (for kernel timeouts); `None` when permanent, `Some(0)`
    /// when already over.
    pub fn remaining_secs(&self, now: Timestamp) -> Option<u64> {
        let until = self.until?;
        let secs = until.as_second() - now.as_second();
        Some(secs.max(0) as u64)
    }

    /// Whether `ip` falls inside the banned range.
    pub fn covers(&self, ip: IpAddr) -> bool {
        self.scope.contains(&ip)
    }
}

/// What kind of action a decision is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DecisionKind {
    /// Keep an address range out.
    Ban(Ban),
    /// Notify people; the alert sinks deliver it.
    Alert {
        rule_id: String,
        title: String,
        level: Level,
        /// The detection key, `field=value` pairs.
        key: String,
        /// One-line summary for chat and mail subjects.
        summary: String,
    },
    /// Cut a container off its networks (carried out by the isolate module).
    Isolate { container: String },
    /// Deliberately nothing, with the reason (e.g. allowlisted), kept for the record.
    Nothing { reason: String },
}

impl DecisionKind {
    /// Short lowercase name for logs and metric labels.
    pub fn name(&self) -> &'static str {
        match self {
            DecisionKind::Ban(_) => "ban",
            DecisionKind::Alert { .. } => "alert",
            DecisionKind::Isolate { .. } => "isolate",
            DecisionKind::Nothing { .. } => "nothing",
        }
    }
}

/// What palisade did (or, when `simulated`, would have done) and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Unique within a palisade database (time-ordered).
    pub id: u64,
    pub kind: DecisionKind,
    /// `rule:<id> key=<key>`, `operator:<user>`, `api`, `import:<peer>` or `palisade`.
    pub caused_by: String,
    /// Decided and recorded, but nothing was enforced.
    pub simulated: bool,
    pub created_at: Timestamp,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sim = if self.simulated { " (simulated)" } else { "" };
        match &self.kind {
            DecisionKind::Ban(b) => {
                let until = b.until.map_or("permanent".to_string(), |t| t.to_string());
                write!(f, "ban {} until {until}: {}{sim}", b.scope, b.reason)
            }
            DecisionKind::Alert { summary, .. } => write!(f, "alert: {summary}{sim}"),
            DecisionKind::Isolate { container } => write!(f, "isolate {container}{sim}"),
            DecisionKind::Nothing { reason } => write!(f, "nothing: {reason}"),
        }
    }
}

/// Hands out time-ordered decision ids: milliseconds since the epoch shifted left,
/// plus a sequence, so ids from one process never repeat and sort by creation.
#[derive(Debug, Default)]
pub struct IdGen {
    last: u64,
}

impl IdGen {
    /// The next id for a decision made at `now`.
    pub fn next(&mut self, now: Timestamp) -> u64 {
        let base = (now.as_millisecond().max(0) as u64) << 12;
        self.last = base.max(self.last + 1);
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_even_when_the_clock_stands_still() {
        let mut ids = IdGen::default();
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let a = ids.next(now);
        let b = ids.next(now);
        assert!(b > a);
    }

    #[test]
    fn permanent_ban_never_ends_and_timed_ban_ends_at_until() {
        let t = Timestamp::from_second(1_700_000_000).unwrap();
        let mut ban = Ban {
            scope: "192.0.2.1/32".parse().unwrap(),
            created: t,
            until: None,
            reason: "test".into(),
            rule_id: String::new(),
            repeat: 0,
        };
        assert!(ban.active_at(t + jiff::SignedDuration::from_hours(10_000)));
        assert_eq!(ban.remaining_secs(t), None);
        ban.until = Some(t + jiff::SignedDuration::from_hours(1));
        assert_eq!(ban.remaining_secs(t), Some(3600));
        assert!(!ban.active_at(t + jiff::SignedDuration::from_hours(1)));
    }
}
