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
    let paths = ["/", "/api/products?page=2", "/static/app.js", "/login", "/api/cart"];
    let statuses = [200, 200, 304, 200, 404, 302, 200, 401];
    let t0: jiff::Timestamp = "2024-05-01T00:00:00Z".parse().unwrap();
    let events: Vec<Event> = (0..10_000u32)
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
    let rounds = 100u32;
    let start = Instant::now();
    for r in 0..rounds {
        for e in &events {
            let mut e2 = e.clone();
            e2.timestamp += jiff::SignedDuration::from_secs(i64::from(r) * 100);
            engine.process(&e2, &mut out);
        }
        out.clear();
    }
    let clone_start = Instant::now();
    for _ in 0..rounds {
        for e in &events {
            std::hint::black_box(e.clone());
        }
    }
    let clone_cost = clone_start.elapsed();
    let total = start.elapsed() - clone_cost;
    let n = f64::from(rounds) * events.len() as f64;
    println!(
        "{} active of {} detection rules, {} correlations: {:.0} ns/event",
        rules.active.len(),
        rules.detections.len(),
        rules.correlations.len(),
        total.as_nanos() as f64 / n
    );
}
