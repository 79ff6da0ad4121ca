//! Outbox behaviour under storms, rate limits, outages and restarts, with tokio's
//! paused clock so minutes of digest windows and back-off run in milliseconds.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade::detect::Level;
use palisade::respond::alert::{Alert, Outbox, OutboxConfig, SendError, SendFuture, Sink};
use tokio::time::{Instant, sleep};

/// One post a mock sink saw: when, what, and whether it was accepted.
#[derive(Clone)]
struct Post {
    at: Instant,
    batch: Vec<Alert>,
    ok: bool,
}

/// A sink that records every attempt and answers from a script (then `Ok`), or fails
/// with 503 while `down_until` lies ahead.
struct MockSink {
    name: &'static str,
    /// Never answers: only the outbox's send timeout ends an attempt.
    hang: std::sync::atomic::AtomicBool,
    script: Mutex<VecDeque<SendError>>,
    down_until: Mutex<Option<Instant>>,
    posts: Mutex<Vec<Post>>,
}

impl MockSink {
    fn new(name: &'static str) -> Arc<MockSink> {
        Arc::new(MockSink {
            name,
            hang: Default::default(),
            script: Mutex::default(),
            down_until: Mutex::default(),
            posts: Mutex::default(),
        })
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }

    fn ok_posts(&self) -> Vec<Post> {
        self.posts().into_iter().filter(|p| p.ok).collect()
    }

    /// Keys of alerts delivered as new (not recaps), with how often each arrived.
    fn delivered(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for p in self.ok_posts() {
            for a in p.batch.iter().filter(|a| !a.recap) {
                *out.entry(a.idempotency_key.clone()).or_default() += 1;
            }
        }
        out
    }
}

impl Sink for MockSink {
    fn name(&self) -> &str {
        self.name
    }

    fn send<'a>(&'a self, batch: &'a [Alert]) -> SendFuture<'a> {
        Box::pin(async move {
            if self.hang.load(std::sync::atomic::Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
            let now = Instant::now();
            let down = self.down_until.lock().unwrap().is_some_and(|t| now < t);
            let result = if down {
                Err(SendError {
                    status: Some(503),
                    ..SendError::transient("down")
                })
            } else {
                self.script.lock().unwrap().pop_front().map_or(Ok(()), Err)
            };
            let post = Post {
                at: now,
                batch: batch.to_vec(),
                ok: result.is_ok(),
            };
            self.posts.lock().unwrap().push(post);
            result
        })
    }
}

fn alert(rule: &str, ip: &str, n: u64) -> Alert {
    let t = jiff::Timestamp::from_second(1_700_000_000 + n as i64).unwrap();
    Alert {
        idempotency_key: format!("{rule}/{ip}/{n}"),
        rule_id: rule.into(),
        rule_title: format!("Rule {rule}"),
        level: Level::High,
        tags: vec![],
        description: "brute force".into(),
        key: format!("source.ip={ip}"),
        ip: Some(ip.into()),
        user: "(unknown user)".into(),
        host: "(unknown host)".into(),
        count: 5,
        first_seen: t,
        last_seen: t,
        samples: vec![],
        decision: "banned 1h".into(),
        recap: false,
    }
}

fn ip(i: u64) -> String {
    format!("10.1.{}.{}", i / 256, i % 256)
}

fn open(dir: &tempfile::TempDir, sinks: &[Arc<MockSink>]) -> Outbox {
    let sinks: Vec<Arc<dyn Sink>> = sinks.iter().map(|s| s.clone() as Arc<dyn Sink>).collect();
    Outbox::open(
        &dir.path().join("palisade.db"),
        sinks,
        OutboxConfig::default(),
    )
    .unwrap()
}

/// Field case 47: one rule bans 300 distinct IPs within 60 s; Slack and email each
/// get the first ban at once and then a single digest listing all 300 IPs.
#[tokio::test(start_paused = true)]
async fn ban_storm_does_not_flood_each_channel() {
    let dir = tempfile::tempdir().unwrap();
    let (slack, email) = (MockSink::new("slack"), MockSink::new("email"));
    let outbox = open(&dir, &[slack.clone(), email.clone()]);
    let start = Instant::now();
    for i in 0..300 {
        outbox.enqueue(&alert("ssh-brute", &ip(i), i)).unwrap();
        sleep(Duration::from_millis(200)).await;
    }
    sleep(Duration::from_secs(300) - start.elapsed() + Duration::from_millis(500)).await;

    for sink in [&slack, &email] {
        let posts = sink.ok_posts();
        let in_window = posts
            .iter()
            .filter(|p| p.at - start <= Duration::from_secs(300))
            .count();
        assert!(
            in_window <= 3,
            "{}: {in_window} messages in the first 5 min",
            sink.name
        );
        assert_eq!(posts[0].batch.len(), 1, "first ban goes out alone");
        assert!(
            posts[0].at - start < Duration::from_secs(1),
            "first ban is immediate"
        );
        let digest = posts.last().unwrap();
        let listed: std::collections::HashSet<&str> = digest
            .batch
            .iter()
            .map(|a| a.ip.as_deref().unwrap())
            .collect();
        assert_eq!(
            listed.len(),
            300,
            "{}: digest lists every banned IP",
            sink.name
        );
        assert_eq!(sink.delivered().len(), 300);
        assert!(sink.delivered().values().all(|&n| n == 1));
    }
}

/// Field case 52: Slack answers 429 `Retry-After: 3` twice, then 200, while 20
/// alerts arrive within 1 s.
#[tokio::test(start_paused = true)]
async fn slack_429_is_honoured_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let slack = MockSink::new("slack");
    let too_many = SendError {
        status: Some(429),
        retry_after: Some(Duration::from_secs(3)),
        ..SendError::transient("slack answered HTTP 429")
    };
    slack
        .script
        .lock()
        .unwrap()
        .extend([too_many.clone(), too_many]);
    let outbox = open(&dir, std::slice::from_ref(&slack));
    for i in 0..20 {
        outbox
            .enqueue(&alert(&format!("rule-{i}"), &ip(i), i))
            .unwrap();
        sleep(Duration::from_millis(50)).await;
    }
    sleep(Duration::from_secs(60)).await;

    let posts = slack.posts();
    assert!(
        posts[1].at - posts[0].at >= Duration::from_secs(3),
        "first retry waits Retry-After"
    );
    for pair in posts.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_secs(1),
            "more than 1 post/s"
        );
    }
    assert!(
        posts.iter().any(|p| p.batch.len() > 10),
        "backlog merged into one digest"
    );
    assert_eq!(slack.delivered().len(), 20, "no alert lost");
    let c = outbox.counters_of("slack").unwrap();
    assert_eq!(c.errors.get("429"), Some(&2));
    assert_eq!((c.sent, c.queued, c.failed), (20, 0, 0));
    assert_eq!(outbox.pending("slack").unwrap(), 0);
}

/// A sink down for 5 minutes during an attack: the healthy sink stays on time, and
/// once the broken one returns it gets every alert exactly once.
#[tokio::test(start_paused = true)]
async fn sink_outage_delays_only_itself_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (slack, hook) = (MockSink::new("slack"), MockSink::new("webhook"));
    let start = Instant::now();
    *hook.down_until.lock().unwrap() = Some(start + Duration::from_secs(300));
    let outbox = open(&dir, &[slack.clone(), hook.clone()]);
    let mut n = 0;
    for minute in 0..6u64 {
        for _ in 0..10 {
            let rule = if n % 2 == 0 { "sqli" } else { "scanner" };
            outbox.enqueue(&alert(rule, &ip(n), n)).unwrap();
            n += 1;
            sleep(Duration::from_secs(6)).await;
        }
        // Each rule's opener left the healthy sink within a second of the attack.
        if minute == 0 {
            let first = slack.ok_posts();
            assert!(first.len() >= 2 && first[1].at - start < Duration::from_secs(7));
        }
    }
    sleep(Duration::from_secs(1200)).await;

    let healthy = slack.ok_posts();
    assert!(healthy.iter().all(|p| p.ok), "healthy sink never failed");
    // Digests on the healthy sink leave when their window ends, not after the outage.
    let digest_at = healthy.iter().find(|p| p.batch.len() > 1).unwrap().at - start;
    assert!(
        digest_at <= Duration::from_secs(302),
        "digest late: {digest_at:?}"
    );
    for sink in [&slack, &hook] {
        let got = sink.delivered();
        assert_eq!(got.len(), n as usize, "{} lost alerts", sink.name);
        assert!(
            got.values().all(|&c| c == 1),
            "{} got duplicates",
            sink.name
        );
    }
    assert!(
        hook.posts().iter().any(|p| !p.ok),
        "the outage was exercised"
    );
    assert!(outbox.counters_of("webhook").unwrap().errors["503"] >= 1);
}

/// Field cases 48/50: after a restart, the first alert is not announced again, and
/// what was left undelivered goes out once.
#[tokio::test(start_paused = true)]
async fn restart_resends_only_undelivered_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let slack = MockSink::new("slack");
    let outbox = open(&dir, std::slice::from_ref(&slack));
    let first = alert("r1", &ip(1), 1);
    outbox.enqueue(&first).unwrap();
    sleep(Duration::from_secs(2)).await;
    assert_eq!(slack.delivered().len(), 1);

    *slack.down_until.lock().unwrap() = Some(Instant::now() + Duration::from_secs(3600));
    let second = alert("r2", &ip(2), 2);
    outbox.enqueue(&second).unwrap();
    sleep(Duration::from_secs(5)).await;
    outbox.shutdown().await;

    let slack2 = MockSink::new("slack");
    let outbox = open(&dir, std::slice::from_ref(&slack2));
    assert_eq!(
        outbox.enqueue(&first).unwrap(),
        0,
        "re-announced alert is refused"
    );
    assert_eq!(
        outbox.enqueue(&second).unwrap(),
        0,
        "queued alert is not queued twice"
    );
    sleep(Duration::from_secs(5)).await;
    let got = slack2.delivered();
    assert_eq!(got.len(), 1);
    assert_eq!(got.get(&second.idempotency_key), Some(&1));
}

/// A sink that never answers only delays itself: the other sink gets every alert on
/// time, and the hung attempts end at the send timeout and count as `timeout`.
#[tokio::test(start_paused = true)]
async fn hanging_sink_does_not_block_other_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let (slack, email) = (MockSink::new("slack"), MockSink::new("email"));
    email.hang.store(true, std::sync::atomic::Ordering::Relaxed);
    let outbox = open(&dir, &[slack.clone(), email.clone()]);
    let start = Instant::now();
    for i in 0..5 {
        outbox.enqueue(&alert(&format!("r{i}"), &ip(i), i)).unwrap();
    }
    sleep(Duration::from_secs(10)).await;
    let posts = slack.ok_posts();
    assert_eq!(posts.len(), 5);
    assert!(
        posts[4].at - start <= Duration::from_secs(5),
        "slack was held up"
    );

    sleep(Duration::from_secs(300)).await;
    let c = outbox.counters_of("email").unwrap();
    assert!(c.errors.get("timeout").is_some_and(|&n| n >= 1), "{c:?}");
    assert_eq!((c.sent, c.queued), (0, 5), "hung alerts stay queued");
}
