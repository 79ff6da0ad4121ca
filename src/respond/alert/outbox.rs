//! The persistent alert outbox: every alert is stored per sink before anything is
//! sent, and a row is marked delivered only after its sink accepted it.
//!
//! - **Isolation.** One tokio task per sink; a failing or hanging sink only ever
//!   delays itself.
//! - **Grouping.** Per sink and rule, the first alert goes out at once; later ones wait
//!   and leave together as one digest per `digest_interval` (field case 47). When more
//!   than `digest_backlog` alerts are ready at once, they go out as a single digest
//!   (field case 52).
//! - **Rate limits.** At most one post per `min_send_interval`; transient failures
//!   back off exponentially with jitter, never sooner than a `Retry-After`.
//! - **Restarts.** Rows are keyed by the alert's idempotency key, so announcing the
//!   same detection again (a restart, a replay) queues nothing new (field cases
//!   48/50); undelivered rows are picked up by the next start (at-least-once).
//!
//! All timing uses `tokio::time`, so tests drive hours of back-off and digest windows
//! with paused time.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, params};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Alert, SendError, Sink};

/// Grouping, rate-limit and retry settings shared by all sinks.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// After a rule's first alert, at most one digest per this interval (default 5 min).
    pub digest_interval: Duration,
    /// More ready alerts than this are merged into one digest (default 10).
    pub digest_backlog: usize,
    /// Minimum gap between two posts to one sink (default 1 s; Slack allows ~1/s).
    pub min_send_interval: Duration,
    /// First retry delay; doubles per failed attempt (default 2 s).
    pub backoff_base: Duration,
    /// Longest retry delay (default 10 min).
    pub backoff_max: Duration,
    /// Backstop for a sink that never answers (default 120 s).
    pub send_timeout: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            digest_interval: Duration::from_secs(300),
            digest_backlog: 10,
            min_send_interval: Duration::from_secs(1),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(600),
            send_timeout: Duration::from_secs(120),
        }
    }
}

/// What went wrong with the outbox's database.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("alert outbox database {path}: {source}; check the path is writable")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("alert outbox query failed: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("two alert sinks are both named {0:?}; give each sink its own name")]
    DuplicateSink(String),
    #[error("alert could not be serialized for the outbox: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Delivery figures of one sink, for the metrics module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkCounters {
    /// Alerts delivered (a digest of 20 counts 20).
    pub sent: u64,
    /// Messages posted successfully (a digest counts 1).
    pub messages: u64,
    /// Alerts given up on after a permanent error.
    pub failed: u64,
    /// Alerts waiting right now.
    pub queued: u64,
    /// Failed attempts by code label (`429`, `500`, `timeout`, `transport`).
    pub errors: BTreeMap<String, u64>,
}

#[derive(Default)]
struct SinkStats {
    sent: AtomicU64,
    messages: AtomicU64,
    failed: AtomicU64,
    queued: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl SinkStats {
    fn snapshot(&self) -> SinkCounters {
        SinkCounters {
            sent: self.sent.load(Ordering::Relaxed),
            messages: self.messages.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            errors: self.errors.lock().expect("stats lock").clone(),
        }
    }
}

struct Worker {
    name: String,
    notify: Arc<Notify>,
    stats: Arc<SinkStats>,
    handle: JoinHandle<()>,
}

/// The outbox with its delivery workers; dropping it stops them.
pub struct Outbox {
    db: Arc<Mutex<Connection>>,
    workers: Vec<Worker>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alert_outbox (
    id INTEGER PRIMARY KEY,
    sink TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    alert TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    enqueued_at TEXT NOT NULL,
    done_at TEXT,
    UNIQUE (sink, idem_key)
);
CREATE INDEX IF NOT EXISTS alert_outbox_queued ON alert_outbox (sink, state, id);
";

/// Rows one worker looks at per round. A sink that was down through a huge attack
/// drains its backlog in digests of at most this many alerts, oldest first.
const LOAD_LIMIT: i64 = 5000;

/// Delivered rows older than this are pruned at start; they only guard against
/// re-announcing, which matters for the latest episodes.
const KEEP_DELIVERED_DAYS: i64 = 14;

impl Outbox {
    /// Opens (or creates) the outbox table in the SQLite database at `path` and starts
    /// one delivery worker per sink; rows left undelivered by a previous run are sent.
    /// Must be called inside a tokio runtime.
    pub fn open(
        path: &Path,
        sinks: Vec<Arc<dyn Sink>>,
        cfg: OutboxConfig,
    ) -> Result<Outbox, OutboxError> {
        let mut names: Vec<&str> = sinks.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(OutboxError::DuplicateSink(w[0].to_owned()));
        }
        let open_err = |source| OutboxError::Open {
            path: path.display().to_string(),
            source,
        };
        if let Err(e) = crate::store::create_owner_only(path) {
            tracing::warn!(error = %e, "Cannot make the alert outbox owner-only");
        }
        let conn = Connection::open(path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        conn.execute(
            "DELETE FROM alert_outbox WHERE state != 'queued' AND done_at < ?1",
            [cutoff(KEEP_DELIVERED_DAYS)],
        )?;
        let db = Arc::new(Mutex::new(conn));
        let workers = sinks
            .into_iter()
            .map(|s| spawn_worker(db.clone(), s, cfg.clone()))
            .collect();
        Ok(Outbox { db, workers })
    }

    /// Queues `alert` for every sink. Returns how many sinks got a new row: 0 when the
    /// same alert (same idempotency key) was queued or delivered before.
    pub fn enqueue(&self, alert: &Alert) -> Result<usize, OutboxError> {
        let json = serde_json::to_string(alert)?;
        let now = jiff::Timestamp::now().to_string();
        let mut added = Vec::new();
        {
            let mut conn = self.db.lock().expect("outbox db lock");
            let tx = conn.transaction()?;
            for (i, w) in self.workers.iter().enumerate() {
                let n = tx.execute(
                    "INSERT OR IGNORE INTO alert_outbox (sink, idem_key, rule_id, alert, enqueued_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![w.name, alert.idempotency_key, alert.rule_id, json, now],
                )?;
                if n > 0 {
                    added.push(i);
                }
            }
            tx.commit()?;
        }
        for &i in &added {
            self.workers[i].stats.queued.fetch_add(1, Ordering::Relaxed);
            self.workers[i].notify.notify_one();
        }
        Ok(added.len())
    }

    /// Delivery figures per sink, in sink order.
    pub fn counters(&self) -> Vec<(String, SinkCounters)> {
        self.workers
            .iter()
            .map(|w| (w.name.clone(), w.stats.snapshot()))
            .collect()
    }

    /// The figures of one sink by name.
    pub fn counters_of(&self, sink: &str) -> Option<SinkCounters> {
        self.workers
            .iter()
            .find(|w| w.name == sink)
            .map(|w| w.stats.snapshot())
    }

    /// Alerts still waiting for `sink`, read from the database.
    pub fn pending(&self, sink: &str) -> Result<u64, OutboxError> {
        let conn = self.db.lock().expect("outbox db lock");
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM alert_outbox WHERE sink = ?1 AND state = 'queued'",
            [sink],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Stops the workers; undelivered rows stay queued for the next start.
    pub async fn shutdown(mut self) {
        let workers = std::mem::take(&mut self.workers);
        for w in &workers {
            w.handle.abort();
        }
        for w in workers {
            let _ = w.handle.await;
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        for w in &self.workers {
            w.handle.abort();
        }
    }
}

fn cutoff(days: i64) -> String {
    let ago = jiff::SignedDuration::from_hours(24 * days);
    jiff::Timestamp::now()
        .checked_sub(ago)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

fn spawn_worker(db: Arc<Mutex<Connection>>, sink: Arc<dyn Sink>, cfg: OutboxConfig) -> Worker {
    let notify = Arc::new(Notify::new());
    let stats = Arc::new(SinkStats::default());
    let name = sink.name().to_owned();
    let state = DeliveryLoop {
        db,
        sink,
        cfg,
        notify: notify.clone(),
        stats: stats.clone(),
        last_sent: HashMap::new(),
        openers: HashMap::new(),
        next_post: Instant::now(),
        retry_at: None,
        attempt: 0,
        jitter: RandomState::new(),
    };
    let handle = tokio::spawn(state.run());
    Worker {
        name,
        notify,
        stats,
        handle,
    }
}

/// One sink's delivery state. Lives in its own task.
struct DeliveryLoop {
    db: Arc<Mutex<Connection>>,
    sink: Arc<dyn Sink>,
    cfg: OutboxConfig,
    notify: Arc<Notify>,
    stats: Arc<SinkStats>,
    /// When each rule last had a message out (opens its digest window).
    last_sent: HashMap<String, Instant>,
    /// A rule's opening alert, recapped in its next digest so the digest alone lists
    /// every key of the window (field case 47).
    openers: HashMap<String, Alert>,
    next_post: Instant,
    retry_at: Option<Instant>,
    attempt: u32,
    jitter: RandomState,
}

/// What to do next.
enum Plan {
    /// Send these rows (indices into the loaded rows) as one message.
    Send(Vec<usize>),
    /// Nothing is ready; wake at this instant (or on a new alert).
    Wait(Option<Instant>),
}

impl DeliveryLoop {
    async fn run(mut self) {
        loop {
            let rows = match self.load() {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(sink = self.sink.name(), error = %e, "Alert outbox read failed; retrying in 5 s");
                    self.wait(Some(Instant::now() + Duration::from_secs(5)))
                        .await;
                    continue;
                }
            };
            self.stats
                .queued
                .store(rows.len() as u64, Ordering::Relaxed);
            let gate = self
                .retry_at
                .map_or(self.next_post, |r| r.max(self.next_post));
            if !rows.is_empty() && Instant::now() < gate {
                self.wait(Some(gate)).await;
                continue;
            }
            match self.plan(&rows) {
                Plan::Wait(until) => self.wait(until).await,
                Plan::Send(idx) => self.deliver(&rows, &idx).await,
            }
        }
    }

    async fn wait(&self, until: Option<Instant>) {
        match until {
            Some(t) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(t) => {}
                    _ = self.notify.notified() => {}
                }
            }
            None => self.notify.notified().await,
        }
    }

    fn load(&self) -> Result<Vec<(i64, Alert)>, OutboxError> {
        let conn = self.db.lock().expect("outbox db lock");
        let mut stmt = conn.prepare_cached(
            "SELECT id, alert FROM alert_outbox WHERE sink = ?1 AND state = 'queued'
             ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![self.sink.name(), LOAD_LIMIT], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row?;
            match serde_json::from_str::<Alert>(&json) {
                Ok(alert) => out.push((id, alert)),
                Err(e) => {
                    tracing::error!(sink = self.sink.name(), id, error = %e, "Unreadable outbox row; marking it failed");
                    conn.execute(
                        "UPDATE alert_outbox SET state = 'failed' WHERE id = ?1",
                        [id],
                    )?;
                }
            }
        }
        Ok(out)
    }

    /// Picks the next message: a rule's opening alert at once, a rule's held alerts
    /// once its digest window has passed, everything ready when the backlog is large.
    fn plan(&self, rows: &[(i64, Alert)]) -> Plan {
        let now = Instant::now();
        let mut ready = Vec::new();
        let mut wake: Option<Instant> = None;
        let mut opened = std::collections::HashSet::new();
        for (i, (_, alert)) in rows.iter().enumerate() {
            let rule = alert.rule_id.as_str();
            match self.last_sent.get(rule) {
                None if opened.insert(rule) => ready.push(i),
                None => {}
                Some(&t) if now >= t + self.cfg.digest_interval => ready.push(i),
                Some(&t) => {
                    let due = t + self.cfg.digest_interval;
                    wake = Some(wake.map_or(due, |w| w.min(due)));
                }
            }
        }
        let Some(&first) = ready.first() else {
            return Plan::Wait(wake);
        };
        if ready.len() > self.cfg.digest_backlog {
            return Plan::Send(ready);
        }
        let rule = &rows[first].1.rule_id;
        Plan::Send(
            ready
                .into_iter()
                .filter(|&i| &rows[i].1.rule_id == rule)
                .collect(),
        )
    }

    async fn deliver(&mut self, rows: &[(i64, Alert)], idx: &[usize]) {
        let fresh: Vec<Alert> = idx.iter().map(|&i| rows[i].1.clone()).collect();
        let batch = self.with_openers(&fresh);
        let ids: Vec<i64> = idx.iter().map(|&i| rows[i].0).collect();
        let result = match tokio::time::timeout(self.cfg.send_timeout, self.sink.send(&batch)).await
        {
            Ok(r) => r,
            Err(_) => Err(SendError::transient(format!(
                "{} send timed out after {:?}",
                self.sink.name(),
                self.cfg.send_timeout
            ))),
        };
        let now = Instant::now();
        self.next_post = now + self.cfg.min_send_interval;
        match result {
            Ok(()) => self.delivered(&ids, &fresh, batch.len() > fresh.len(), now),
            Err(e) => self.failed(&ids, &e, now),
        }
    }

    /// A digest (more than one alert) also lists the opening alert of its rules.
    fn with_openers(&self, fresh: &[Alert]) -> Vec<Alert> {
        if fresh.len() < 2
            && !fresh
                .iter()
                .any(|a| self.last_sent.contains_key(&a.rule_id))
        {
            return fresh.to_vec();
        }
        let mut rules: Vec<&str> = fresh.iter().map(|a| a.rule_id.as_str()).collect();
        rules.sort_unstable();
        rules.dedup();
        let mut batch: Vec<Alert> = rules
            .iter()
            .filter_map(|r| self.openers.get(*r).cloned())
            .map(|mut a| {
                a.recap = true;
                a
            })
            .collect();
        batch.retain(|o| !fresh.iter().any(|f| f.idempotency_key == o.idempotency_key));
        batch.extend_from_slice(fresh);
        batch
    }

    fn delivered(&mut self, ids: &[i64], fresh: &[Alert], recapped: bool, now: Instant) {
        if let Err(e) = self.mark(ids, "delivered") {
            // The sink has it; a duplicate after restart beats a loss.
            tracing::error!(sink = self.sink.name(), error = %e, "Could not mark alerts delivered");
        }
        self.stats
            .sent
            .fetch_add(fresh.len() as u64, Ordering::Relaxed);
        self.stats.messages.fetch_add(1, Ordering::Relaxed);
        for a in fresh {
            self.last_sent.insert(a.rule_id.clone(), now);
            if recapped || fresh.len() > 1 {
                self.openers.remove(&a.rule_id);
            }
        }
        if let ([single], false) = (fresh, recapped) {
            self.openers
                .entry(single.rule_id.clone())
                .or_insert_with(|| single.clone());
        }
        self.attempt = 0;
        self.retry_at = None;
    }

    fn failed(&mut self, ids: &[i64], err: &SendError, now: Instant) {
        let code = err.code_label();
        *self
            .stats
            .errors
            .lock()
            .expect("stats lock")
            .entry(code.clone())
            .or_default() += 1;
        if err.permanent {
            tracing::error!(sink = self.sink.name(), code, error = %err, alerts = ids.len(), "Alert sink refused alerts permanently; fix the sink settings");
            if let Err(e) = self.mark(ids, "failed") {
                tracing::error!(sink = self.sink.name(), error = %e, "Could not mark alerts failed");
            }
            self.stats
                .failed
                .fetch_add(ids.len() as u64, Ordering::Relaxed);
            return;
        }
        self.attempt += 1;
        let delay = self.backoff(err.retry_after);
        tracing::warn!(sink = self.sink.name(), code, error = %err, attempt = self.attempt, retry_in = ?delay, "Alert send failed; will retry");
        self.retry_at = Some(now + delay);
        let conn = self.db.lock().expect("outbox db lock");
        for id in ids {
            let _ = conn.execute(
                "UPDATE alert_outbox SET attempts = attempts + 1 WHERE id = ?1",
                [id],
            );
        }
    }

    /// Exponential back-off with up to 10 % jitter, never below `Retry-After`.
    fn backoff(&self, retry_after: Option<Duration>) -> Duration {
        let exp = self.attempt.saturating_sub(1).min(20);
        let base = self
            .cfg
            .backoff_base
            .saturating_mul(1 << exp)
            .min(self.cfg.backoff_max);
        let base = retry_after.map_or(base, |ra| base.max(ra));
        // Jitter differs per attempt and per process, so sinks retrying after a shared
        // outage do not all come back in the same instant.
        let frac = (self.jitter.hash_one((self.attempt, Instant::now())) % 1000) as u32;
        base + base / 10 * frac / 1000
    }

    fn mark(&self, ids: &[i64], state: &str) -> Result<(), OutboxError> {
        let mut conn = self.db.lock().expect("outbox db lock");
        let tx = conn.transaction()?;
        let now = jiff::Timestamp::now().to_string();
        for id in ids {
            tx.execute(
                "UPDATE alert_outbox SET state = ?1, done_at = ?2 WHERE id = ?3",
                params![state, now, id],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::detect::Level;

    /// An alert for `rule` about `ip`; `n` makes the episode distinct.
    pub(crate) fn sample_alert(rule: &str, ip: &str, n: u64) -> Alert {
        let t = jiff::Timestamp::from_second(1_700_000_000 + n as i64).unwrap();
        Alert {
            idempotency_key: format!("{rule}/{ip}/{n}"),
            rule_id: rule.into(),
            rule_title: format!("Rule {rule}"),
            level: Level::High,
            tags: vec!["attack.t1110".into()],
            description: "desc".into(),
            key: format!("source.ip={ip}"),
            ip: Some(ip.into()),
            user: super::super::NO_USER.into(),
            host: super::super::NO_HOST.into(),
            count: 3,
            first_seen: t,
            last_seen: t,
            samples: vec![],
            decision: "banned 1h".into(),
            recap: false,
        }
    }

    #[test]
    fn backoff_doubles_caps_and_respects_retry_after() {
        let (tx, _rx) = (Arc::new(Notify::new()), ());
        let mut dl = DeliveryLoop {
            db: Arc::new(Mutex::new(Connection::open_in_memory().unwrap())),
            sink: Arc::new(crate::respond::alert::file::FileSink::new(
                crate::respond::alert::file::FileTarget::Terminal,
            )),
            cfg: OutboxConfig::default(),
            notify: tx,
            stats: Arc::default(),
            last_sent: HashMap::new(),
            openers: HashMap::new(),
            next_post: Instant::now(),
            retry_at: None,
            attempt: 1,
            jitter: RandomState::new(),
        };
        let d1 = dl.backoff(None);
        assert!(
            d1 >= Duration::from_secs(2) && d1 <= Duration::from_millis(2200),
            "{d1:?}"
        );
        dl.attempt = 3;
        assert!(dl.backoff(None) >= Duration::from_secs(8));
        assert!(dl.backoff(Some(Duration::from_secs(30))) >= Duration::from_secs(30));
        dl.attempt = 40;
        assert!(dl.backoff(None) <= Duration::from_secs(660));
    }
}
