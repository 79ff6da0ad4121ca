//! `/metrics` scraped over loopback HTTP after a flood of distinct clients.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;

use palisade::event::{AttackClasses, Event, EventKind};
use palisade::serve::{Metrics, ServerOptions, spawn_with};

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Field case 55: 100,000 distinct (IPv6) clients send SQLi and rate-limited requests;
/// the scrape must stay small and hold no address or URL.
#[test]
fn scrape_stays_small_with_100k_distinct_clients_field_case_55() {
    let metrics = Arc::new(Metrics::default());
    for i in 0..100_000u32 {
        let ip = IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            (i >> 16) as u16,
            i as u16,
        ));
        let mut ev = Event {
            kind: EventKind::Access,
            source_ip: Some(ip),
            method: Some("GET".into()),
            status: Some(403),
            ..Event::default()
        };
        ev.set_url(&format!("/api/allowlist/{ip}?id=1%20OR%201=1"));
        ev.attacks.insert(AttackClasses::SQLI);
        metrics.observe_event(&ev);
        ev.kind = EventKind::RateLimit;
        ev.action = Some(format!("/api/allowlist/{ip}").into());
        ev.push_extra("nginx.limit.zone", ip.to_string());
        metrics.observe_event(&ev);
    }
    let opts = ServerOptions {
        listen: "127.0.0.1:0".into(),
        ..ServerOptions::default()
    };
    let server = spawn_with(opts, metrics).unwrap();
    let resp = get(server.local_addr(), "/metrics");
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp:.200}");
    assert!(
        body.contains("sql_injection_attempts_total 200000"),
        "{body}"
    );
    assert!(!body.contains("2001:db8"), "an address reached a label");
    assert!(!body.contains("/api/"), "a URL reached a label");
    let series = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    assert!(series < 500, "{series} series");
    assert!(body.len() < 100 * 1024, "{} bytes", body.len());
    server.shutdown().unwrap();
}
