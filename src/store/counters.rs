//! Minute-bucket counters behind `status` ("failed logins in the last hour").
//!
//! Detections alone cannot answer "how many failed logins": a brute-force rule fires
//! once per episode however many attempts it saw, and attempts below its threshold
//! never fire at all. So the pipeline counts notable events itself: it feeds every
//! event to a [`MinuteCounters`] (a small in-memory map, no I/O), and drains it into
//! the same [`Batch`](super::Batch) as the detections and checkpoints of those lines,
//! so counts are exact across restarts. Buckets are keyed by *event* time.
//!
//! [`EventClass`] is the single definition of "failed login" / "SQL injection attempt"
//! that both these counters and the Prometheus metrics use.

use std::collections::HashMap;

use jiff::Timestamp;

use crate::event::{AttackClasses, Event, EventKind};

/// Counter: failed authentication attempts (login failures, 401s on login paths).
pub const FAILED_LOGIN: &str = "failed_login";
/// Counter: requests the classifiers tagged as SQL injection.
pub const SQLI: &str = "sqli";
/// Counter: requests tagged with any attack class.
pub const ATTACK: &str = "attack";
/// Counter: application security events (`Security event: ...`).
pub const SECURITY_EVENT: &str = "security_event";
/// Counter: nginx rate-limit rejections and delays.
pub const RATE_LIMITED: &str = "rate_limited";

/// An amount to add to one named counter in one minute bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterDelta {
    pub name: String,
    /// Unix seconds of the minute's start.
    pub minute: i64,
    pub delta: u64,
}

/// Decides which counters an event bumps. Shared with `serve::metrics`.
#[derive(Debug, Clone)]
pub struct EventClass {
    /// URL paths (matched as suffix of `url.path`) whose `POST` answered 401/403 counts as a
    /// failed login.
    pub login_paths: Vec<String>,
}

impl Default for EventClass {
    fn default() -> Self {
        let paths = [
            "/login",
            "/signin",
            "/sign_in",
            "/session",
            "/sessions",
            "/oauth/token",
        ];
        EventClass {
            login_paths: paths.iter().map(|p| p.to_string()).collect(),
        }
    }
}

impl EventClass {
    /// A failed authentication: an app/auth event whose action says so, an auth event
    /// with outcome `failure`, or a `POST` to a login path answered 401 or 403.
    pub fn is_failed_login(&self, ev: &Event) -> bool {
        if let Some(action) = ev.action.as_deref()
            && is_failed_login_action(action)
        {
            return true;
        }
        if ev.kind == EventKind::Auth && ev.outcome.as_deref() == Some("failure") {
            return true;
        }
        let denied = matches!(ev.status, Some(401 | 403));
        if !denied || ev.method.as_deref() != Some("POST") {
            return false;
        }
        let Some(path) = ev.url_path() else {
            return false;
        };
        let path = path.trim_end_matches('/');
        self.login_paths.iter().any(|p| path.ends_with(p.as_str()))
    }

    /// The classifiers tagged the request as SQL injection.
    pub fn is_sqli(&self, ev: &Event) -> bool {
        ev.attacks.contains(AttackClasses::SQLI)
    }
}

fn is_failed_login_action(action: &str) -> bool {
    const ACTIONS: [&str; 6] = [
        "login_failed",
        "login_failure",
        "failed_login",
        "auth_failure",
        "authentication_failed",
        "authentication_failure",
    ];
    ACTIONS.iter().any(|a| a.eq_ignore_ascii_case(action))
}

/// Accumulates counter deltas in memory between store batches.
#[derive(Debug, Default)]
pub struct MinuteCounters {
    class: EventClass,
    pending: HashMap<(i64, &'static str), u64>,
}

impl MinuteCounters {
    /// Counters classifying events with `class`.
    pub fn new(class: EventClass) -> MinuteCounters {
        MinuteCounters {
            class,
            pending: HashMap::new(),
        }
    }

    /// Adds `delta` to `name` in the minute holding `at`.
    pub fn bump(&mut self, name: &'static str, at: Timestamp, delta: u64) {
        let minute = at.as_second().div_euclid(60) * 60;
        *self.pending.entry((minute, name)).or_default() += delta;
    }

    /// Bumps the counters this event belongs to (most events belong to none).
    pub fn observe_event(&mut self, ev: &Event) {
        if self.class.is_failed_login(ev) {
            self.bump(FAILED_LOGIN, ev.timestamp, 1);
        }
        if !ev.attacks.is_empty() {
            self.bump(ATTACK, ev.timestamp, 1);
            if self.class.is_sqli(ev) {
                self.bump(SQLI, ev.timestamp, 1);
            }
        }
        match ev.kind {
            EventKind::Security => self.bump(SECURITY_EVENT, ev.timestamp, 1),
            EventKind::RateLimit => self.bump(RATE_LIMITED, ev.timestamp, 1),
            _ => {}
        }
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Takes the pending deltas, for the next [`Batch`](super::Batch). If that batch
    /// fails, keep the returned deltas with it and retry them together.
    pub fn drain(&mut self) -> Vec<CounterDelta> {
        let mut out: Vec<CounterDelta> = self
            .pending
            .drain()
            .map(|((minute, name), delta)| CounterDelta {
                name: name.to_string(),
                minute,
                delta,
            })
            .collect();
        out.sort_by(|a, b| (a.minute, &a.name).cmp(&(b.minute, &b.name)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, url: &str, status: u16) -> Event {
        let mut e = Event {
            kind: EventKind::Access,
            method: Some(method.into()),
            status: Some(status),
            ..Event::default()
        };
        e.set_url(url);
        e
    }

    #[test]
    fn failed_login_needs_login_path_post_and_denial() {
        let c = EventClass::default();
        assert!(c.is_failed_login(&request("POST", "/api/auth/login", 401)));
        assert!(c.is_failed_login(&request("POST", "/login/?next=/", 403)));
        // field case: POST /upload answered 401 is not a login attempt.
        assert!(!c.is_failed_login(&request("POST", "/upload", 401)));
        assert!(!c.is_failed_login(&request("GET", "/login", 401)));
        assert!(!c.is_failed_login(&request("POST", "/login", 200)));
    }

    #[test]
    fn failed_login_from_app_action_and_auth_outcome() {
        let c = EventClass::default();
        let app = Event {
            action: Some("login_failed".into()),
            ..Event::default()
        };
        assert!(c.is_failed_login(&app));
        let ssh = Event {
            kind: EventKind::Auth,
            outcome: Some("failure".into()),
            ..Event::default()
        };
        assert!(c.is_failed_login(&ssh));
    }

    #[test]
    fn counters_bucket_by_event_minute() {
        let mut m = MinuteCounters::default();
        let mut e = request("POST", "/login", 401);
        e.timestamp = "2024-05-21T10:05:50Z".parse().unwrap();
        m.observe_event(&e);
        e.timestamp = "2024-05-21T10:05:59Z".parse().unwrap();
        m.observe_event(&e);
        e.timestamp = "2024-05-21T10:06:00Z".parse().unwrap();
        m.observe_event(&e);
        let d = m.drain();
        let base = "2024-05-21T10:05:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_second();
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!((d[0].minute, d[0].delta), (base, 2));
        assert_eq!((d[1].minute, d[1].delta), (base + 60, 1));
        assert!(m.is_empty());
    }
}
