//! Criterion benchmarks of the hot path, stage by stage and whole, on lines made by the
//! bundled sample generator (real-looking traffic with attacks in it).
//!
//! `cargo bench --bench pipeline`; the end-to-end figure on the shared 1M-line log is
//! `tools/bench.sh` (see BENCHMARKS.md).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use palisade::config::{Config, SourceConfig};
use palisade::detect::classify::Classifier;
use palisade::detect::engine::Engine;
use palisade::detect::sigma::RuleSet;
use palisade::event::Event;
use palisade::parse;
use palisade::pipeline::Pipeline;
use palisade::sources::Line;

fn sample_lines() -> Vec<Line> {
    let dir = tempfile::tempdir().expect("tempdir");
    palisade::sample::generate(dir.path(), 3, 20_000).expect("sample");
    let text = std::fs::read_to_string(dir.path().join("nginx/access.log")).expect("read");
    text.lines()
        .enumerate()
        .map(|(i, l)| Line {
            source: Arc::from("bench"),
            path: Arc::from("access.log"),
            offset: i as u64 * 200,
            text: l.to_string(),
            truncated: false,
            invalid_utf8: false,
        })
        .collect()
}

fn source() -> SourceConfig {
    SourceConfig {
        name: "bench".into(),
        path: "access.log".into(),
        parser: palisade::config::ParserConfig::Nginx { log_format: "main".into() },
        ..SourceConfig::default()
    }
}

fn bench(c: &mut Criterion) {
    let lines = sample_lines();
    let config = Config::default();
    let mut group = c.benchmark_group("access_log");
    group.throughput(Throughput::Elements(lines.len() as u64));

    let mut parser = parse::build(&source(), &config.network).expect("parser");
    let mut events: Vec<Event> = Vec::with_capacity(4);
    group.bench_function("parse", |b| {
        b.iter(|| {
            for l in &lines {
                events.clear();
                let _ = parser.parse(black_box(l), &mut events);
            }
        })
    });

    let mut parsed: Vec<Event> = Vec::new();
    for l in &lines {
        let _ = parser.parse(l, &mut parsed);
    }
    let classifier = Classifier::new();
    group.bench_function("classify", |b| {
        b.iter(|| {
            for ev in &parsed {
                let mut ev = ev.clone();
                classifier.classify(black_box(&mut ev));
            }
        })
    });

    let rules = Arc::new(RuleSet::load(&config.rules).expect("rules"));
    group.bench_function("rules", |b| {
        b.iter(|| {
            let mut engine = Engine::new(rules.clone(), &config.detection);
            let mut out = Vec::new();
            for ev in &parsed {
                engine.process(black_box(ev), &mut out);
            }
            engine.finish(&mut out);
            out.len()
        })
    });

    group.bench_function("pipeline", |b| {
        b.iter(|| {
            let mut cfg = config.clone();
            cfg.sources = vec![source()];
            let mut p = Pipeline::new(&cfg, rules.clone(), None).expect("pipeline");
            let mut out = Vec::new();
            for l in &lines {
                p.process_line(0, black_box(l), &mut out);
            }
            p.finish(&mut out);
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
