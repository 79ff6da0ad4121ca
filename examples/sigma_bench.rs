//! Rough cost of the built-in rules per ordinary access event.
//! `cargo run --release --example sigma_bench`

use std::sync::Arc;
use std::time::Instant;

use palisade::config::{DetectionConfig, RulesConfig};
use palisade::detect::engine::Engine;
use palisade::detect::sigma::RuleSet;
use palisade::event::{Event, EventKind};

fn main() {
    let rules = Arc::new(RuleSet::load(&RulesConfig::default()).expect("built-in rules"));
    let mut engine = Engine::new(rules.clone(), &DetectionConfig::default());
    let paths = [
        "/",
        "/api/products?page=2",
        "/static/app.js",
        "/login",
        "/api/cart",
    ];
    let statuses = [200, 200, 304, 200, 404, 302, 200, 401];
    let t0: jiff::Timestamp = "2024-05-01T00:00:00Z".parse().unwrap();
    let mut events: Vec<Event> = (0..10_000u32)
        .map(|i| {
            let mut e = Event::new(Arc::from("bench"), 0, String::new());
            e.raw = format!(
                "192.0.2.{} - - [01/May/2024:00:00:00 +0000] \"GET {} HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0\"",
                i % 200,
                paths[i as usize % paths.len()]
            );
            e.kind = EventKind::Access;
            e.timestamp = t0 + jiff::SignedDuration::from_millis(i64::from(i) * 10);
            e.source_ip = Some(format!("192.0.2.{}", i % 200).parse().unwrap());
            e.method = Some(if i % 7 == 0 { "POST" } else { "GET" }.into());
            e.set_url(paths[i as usize % paths.len()]);
            e.status = Some(statuses[i as usize % statuses.len()]);
            e.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0".into());
            e
        })
        .collect();
    let mut out = Vec::new();
    let mut ordinary: Vec<Event> = events
        .iter()
        .filter(|e| e.status == Some(200))
        .cloned()
        .collect();
    let mut fresh = Engine::new(rules.clone(), &DetectionConfig::default());
    let start = Instant::now();
    for _ in 0..100 {
        for e in &mut ordinary {
            e.timestamp += jiff::SignedDuration::from_secs(100);
            fresh.process(e, &mut out);
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / (100.0 * ordinary.len() as f64);
    println!("ordinary 200 access events: {ns:.0} ns/event");
    let rounds = 100u32;
    let start = Instant::now();
    for r in 0..rounds {
        for e in &mut events {
            e.timestamp += jiff::SignedDuration::from_secs(i64::from(r.min(1)) * 100);
            engine.process(e, &mut out);
        }
        out.clear();
    }
    let total = start.elapsed();
    let n = f64::from(rounds) * events.len() as f64;
    println!(
        "mix with 1/4 401/404 (feeding correlations): {} active of {} detection rules, {} correlations: {:.0} ns/event",
        rules.active.len(),
        rules.detections.len(),
        rules.correlations.len(),
        total.as_nanos() as f64 / n
    );
    for &i in &rules.active {
        let d = &rules.detections[i];
        let start = Instant::now();
        let mut hits = 0u32;
        for _ in 0..10 {
            for e in &events {
                hits += u32::from(std::hint::black_box(d.matches(e)));
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / (10.0 * events.len() as f64);
        println!(
            "  {ns:6.1} ns  {:<28} (tree only, {hits} hits)",
            d.meta.name.as_deref().unwrap_or("?")
        );
    }
    botnet_memory();
}

/// Field case 37 at the default key cap: 1,000,000 failed logins from 500,000
/// addresses within an hour; prints the resident memory afterwards.
fn botnet_memory() {
    let rules = Arc::new(RuleSet::load(&RulesConfig::default()).expect("built-in rules"));
    let mut engine = Engine::new(rules, &DetectionConfig::default());
    let t0: jiff::Timestamp = "2024-07-01T00:00:00Z".parse().unwrap();
    let mut ev = Event::new(Arc::from("bench"), 0, "POST /api/auth/login 401".into());
    ev.kind = EventKind::Access;
    ev.method = Some("POST".into());
    ev.set_url("/api/auth/login");
    ev.status = Some(401);
    let mut out = Vec::new();
    let rss_before = rss_kib();
    let start = Instant::now();
    for n in 0..1_000_000u32 {
        ev.source_ip = Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
            0x0a00_0000 + n / 2,
        )));
        ev.timestamp = t0 + jiff::SignedDuration::from_micros(i64::from(n) * 3_600);
        engine.process(&ev, &mut out);
    }
    let stats = engine.stats();
    let live: usize = stats.rules.iter().map(|r| r.live_keys).sum();
    let evicted: u64 = stats.rules.iter().map(|r| r.evicted_keys).sum();
    println!(
        "field case 37: {:.0} ns/event, {} detections, {live} live keys, {evicted} evicted, RSS {} -> {} MiB",
        start.elapsed().as_nanos() as f64 / 1e6,
        out.len(),
        rss_before / 1024,
        rss_kib() / 1024
    );
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
