//! Throughput of the nginx `combined` parser on one thread. The pipeline budget is
//! ≥ 1,000,000 lines/s with every rule on, so the parser alone must be well above it;
//! the release build asserts that floor and prints the figure
//! (`cargo test --release --test parse_speed -- --nocapture`). A debug build only
//! checks that every generated line parses.

use std::sync::Arc;
use std::time::Instant;

use palisade::config::NetworkConfig;
use palisade::event::Event;
use palisade::parse::Parser;
use palisade::parse::nginx::{LogFormat, NginxParser};
use palisade::parse::time::LocalClock;
use palisade::sources::Line;

const UAS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "curl/8.5.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "python-requests/2.31",
];

fn lines(n: usize) -> Vec<Line> {
    (0..n)
        .map(|i| {
            let text = format!(
                "192.0.{}.{} - - [10/Mar/2024:13:{:02}:{:02} +0000] \"GET /api/products/{}?page={} HTTP/1.1\" {} {} \"https://shop.example.test/\" \"{}\"",
                i % 200,
                i % 250,
                (i / 6000) % 60,
                (i / 100) % 60,
                i % 977,
                i % 13,
                [200, 200, 304, 404][i % 4],
                1000 + i % 5000,
                UAS[i % 4]
            );
            Line {
                source: Arc::from("nginx"),
                path: Arc::from("access.log"),
                offset: i as u64 * 200,
                text,
                truncated: false,
                invalid_utf8: false,
            }
        })
        .collect()
}

/// On-CPU nanoseconds of this thread (`/proc/thread-self/schedstat`), so that other
/// processes competing for the cores do not distort the figure; wall time elsewhere.
fn cpu_ns(wall: Instant) -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| wall.elapsed().as_nanos() as u64)
}

/// Lines per second of CPU time for `f` run over `input` `rounds` times.
fn rate(input: &[Line], rounds: usize, mut f: impl FnMut(&Line) -> usize) -> (usize, f64) {
    let wall = Instant::now();
    let start = cpu_ns(wall);
    let mut n = 0;
    for _ in 0..rounds {
        for line in input {
            n += f(line);
        }
    }
    let secs = (cpu_ns(wall) - start) as f64 / 1e9;
    (n, n as f64 / secs)
}

#[test]
fn combined_parser_throughput() {
    let input = lines(200_000);
    let format = LogFormat::compile("combined").unwrap();
    let mut parser = NginxParser::new(format, &NetworkConfig::default(), LocalClock::default());
    let mut out = Vec::with_capacity(1);
    let rounds = if cfg!(debug_assertions) { 1 } else { 10 };
    let (parsed, lines_per_s) = rate(&input, rounds, |line| {
        parser.parse(line, &mut out).expect("generated line parses");
        let n = out.len();
        out.clear();
        n
    });
    let (_, floor) = rate(&input, rounds, |line| {
        let ev = Event::new(line.source.clone(), line.offset, line.text.clone());
        std::hint::black_box(ev);
        1
    });
    println!(
        "nginx combined: {parsed} lines, {:.2} M lines/s (CPU time)",
        lines_per_s / 1e6
    );
    println!(
        "floor (event + raw copy only): {:.2} M lines/s",
        floor / 1e6
    );
    assert_eq!(parsed, input.len() * rounds);
    if !cfg!(debug_assertions) {
        assert!(
            lines_per_s >= 1_000_000.0,
            "combined parser too slow: {lines_per_s:.0} lines/s"
        );
    }
}
