//! Read throughput of the scan reader (`sources::file::read_lines`) on nginx-like
//! lines, plain and gzip: `cargo bench --bench read`.

use std::fs::File;
use std::io::Write;
use std::ops::ControlFlow;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use palisade::sources::file::{ReadOptions, read_lines};

const LINES: u32 = 200_000;

fn write_log(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let path = dir.join("access.log");
    let mut w = std::io::BufWriter::new(File::create(&path).expect("create"));
    for n in 0..LINES {
        writeln!(
            w,
            "203.0.113.{} - - [01/May/2024:10:{:02}:{:02} +0000] \"GET /api/items/{n}?page={} \
             HTTP/1.1\" {} {} \"https://example.com/\" \"Mozilla/5.0 (X11; Linux x86_64)\"",
            n % 250,
            n / 60 % 60,
            n % 60,
            n % 17,
            [200, 404, 401, 304][n as usize % 4],
            n % 9000
        )
        .expect("write");
    }
    drop(w);
    let gz = dir.join("access.log.gz");
    let mut enc = flate2::write::GzEncoder::new(File::create(&gz).expect("gz"), Default::default());
    enc.write_all(&std::fs::read(&path).expect("read"))
        .expect("compress");
    enc.finish().expect("finish");
    (path, gz)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (plain, gz) = write_log(dir.path());
    let mut group = c.benchmark_group("read_lines");
    group.throughput(Throughput::Elements(u64::from(LINES)));
    group.sample_size(20);
    for (name, path) in [("plain", &plain), ("gzip", &gz)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut bytes = 0usize;
                let stats = read_lines(&Arc::from("bench"), path, &ReadOptions::default(), |l| {
                    bytes += l.text.len();
                    ControlFlow::Continue(())
                })
                .expect("read");
                assert_eq!(stats.lines, u64::from(LINES));
                bytes
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
