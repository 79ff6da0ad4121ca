//! AbuseIPDB client against a local stand-in of the `check` endpoint.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use palisade::respond::intel::{AbuseIpdb, AbuseIpdbConfig, IntelError};
use support::Reply;

async fn client(quota: u32, ttl: Duration) -> (support::StandIn, AbuseIpdb) {
    let standin = support::start().await;
    standin.with(|s| {
        s.api_key = "test-key".into();
        s.score = 87;
    });
    let cfg = AbuseIpdbConfig {
        base_url: standin.url("/api/v2"),
        api_key: "test-key".into(),
        max_age_days: 90,
        cache_ttl: ttl,
        daily_quota: quota,
        timeout: Duration::from_secs(5),
    };
    (standin, AbuseIpdb::new(cfg))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn score_is_fetched_with_key_header_and_then_cached() {
    let (standin, intel) = client(100, Duration::from_millis(400)).await;
    assert_eq!(intel.check(ip("198.51.100.7")).await.unwrap(), 87);
    assert_eq!(intel.check(ip("198.51.100.7")).await.unwrap(), 87);
    assert_eq!(
        standin.received().len(),
        1,
        "second check served from cache"
    );
    let q = standin.received()[0].headers.clone();
    assert_eq!(q["key"], "test-key");

    tokio::time::sleep(Duration::from_millis(500)).await;
    standin.with(|s| s.score = 3);
    assert_eq!(
        intel.check(ip("198.51.100.7")).await.unwrap(),
        3,
        "stale entry refetched"
    );
    assert_eq!(standin.received().len(), 2);
}

#[tokio::test]
async fn daily_quota_stops_calls() {
    let (standin, intel) = client(2, Duration::from_secs(3600)).await;
    intel.check(ip("192.0.2.1")).await.unwrap();
    intel.check(ip("192.0.2.2")).await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            intel.check(ip("192.0.2.3")).await,
            Err(IntelError::QuotaExhausted(2))
        );
    }
    assert_eq!(standin.received().len(), 2, "no call past the quota");
    assert_eq!(
        intel.check(ip("192.0.2.1")).await.unwrap(),
        87,
        "cache still answers"
    );
}

#[tokio::test]
async fn rate_limit_429_pauses_calls_for_retry_after() {
    let (standin, intel) = client(100, Duration::from_secs(3600)).await;
    standin.push(Reply::TooMany {
        retry_after_secs: 1,
    });
    assert!(matches!(
        intel.check(ip("192.0.2.9")).await,
        Err(IntelError::RateLimited(_))
    ));
    assert!(matches!(
        intel.check(ip("192.0.2.9")).await,
        Err(IntelError::RateLimited(_))
    ));
    assert_eq!(standin.received().len(), 1, "paused while Retry-After runs");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(intel.check(ip("192.0.2.9")).await.unwrap(), 87);
}

#[tokio::test]
async fn remaining_zero_header_pauses_further_calls() {
    let (standin, intel) = client(100, Duration::from_secs(3600)).await;
    standin.with(|s| s.rate_headers = vec![("x-ratelimit-remaining".into(), "0".into())]);
    assert_eq!(
        intel.check(ip("192.0.2.10")).await.unwrap(),
        87,
        "this answer still counts"
    );
    assert!(matches!(
        intel.check(ip("192.0.2.11")).await,
        Err(IntelError::RateLimited(_))
    ));
    assert_eq!(standin.received().len(), 1);
}

#[tokio::test]
async fn wrong_key_is_an_http_error() {
    let standin = support::start().await;
    standin.with(|s| s.api_key = "right".into());
    let intel = AbuseIpdb::new(AbuseIpdbConfig {
        base_url: standin.url("/api/v2"),
        api_key: "wrong".into(),
        max_age_days: 90,
        cache_ttl: Duration::from_secs(60),
        daily_quota: 10,
        timeout: Duration::from_secs(5),
    });
    assert_eq!(
        intel.check(ip("192.0.2.1")).await,
        Err(IntelError::Http(401))
    );
}
