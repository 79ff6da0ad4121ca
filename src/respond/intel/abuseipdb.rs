//! AbuseIPDB `check` client: `GET {base}/check?ipAddress=…&maxAgeInDays=90` with the
//! key in the `Key` header, answering `data.abuseConfidenceScore`.
//!
//! Every answer is cached for `cache_ttl`. Calls stop once the daily quota is used
//! (logged once per day, returned as [`IntelError::QuotaExhausted`]); a 429 or an
//! `X-RateLimit-Remaining: 0` pauses calls until `Retry-After` /
//! `X-RateLimit-Reset` says. The cache and pauses use `tokio::time`, so tests can
//! run with paused time; the quota day is the UTC calendar day, as AbuseIPDB counts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

/// Score above which the policy bans by default.
pub const DEFAULT_BAN_SCORE: u8 = 50;
/// The environment variable holding the API key.
pub const KEY_ENV: &str = "ABUSEIPDB_API_KEY";

/// Client settings.
#[derive(Debug, Clone)]
pub struct AbuseIpdbConfig {
    /// API base, `https://api.abuseipdb.com/api/v2` in production; tests point it at a
    /// local stand-in.
    pub base_url: String,
    pub api_key: String,
    pub max_age_days: u32,
    pub cache_ttl: Duration,
    /// Checks allowed per UTC day (the free plan allows 1000).
    pub daily_quota: u32,
    pub timeout: Duration,
}

impl AbuseIpdbConfig {
    /// Production defaults with the key from `ABUSEIPDB_API_KEY`.
    pub fn from_env() -> Result<AbuseIpdbConfig, IntelError> {
        let key = std::env::var(KEY_ENV).map_err(|_| IntelError::MissingKey)?;
        if key.trim().is_empty() {
            return Err(IntelError::MissingKey);
        }
        Ok(AbuseIpdbConfig {
            base_url: "https://api.abuseipdb.com/api/v2".into(),
            api_key: key.trim().to_owned(),
            max_age_days: 90,
            cache_ttl: Duration::from_secs(6 * 3600),
            daily_quota: 1000,
            timeout: Duration::from_secs(10),
        })
    }
}

/// Why no score is available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntelError {
    #[error("AbuseIPDB key missing: set {KEY_ENV}")]
    MissingKey,
    #[error("AbuseIPDB daily quota of {0} checks is used up; checks resume tomorrow (UTC)")]
    QuotaExhausted(u32),
    #[error("AbuseIPDB rate limit: paused for another {0:?}")]
    RateLimited(Duration),
    #[error("AbuseIPDB answered HTTP {0}")]
    Http(u16),
    #[error("AbuseIPDB request failed: {0}")]
    Transport(String),
    #[error("AbuseIPDB answer not understood: {0}")]
    Parse(String),
}

#[derive(Deserialize)]
struct CheckResponse {
    data: CheckData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckData {
    abuse_confidence_score: u8,
}

struct Quota {
    /// UTC day number the `used` count belongs to.
    day: i64,
    used: u32,
    warned: bool,
    paused_until: Option<Instant>,
}

/// AbuseIPDB client with cache and quota.
pub struct AbuseIpdb {
    cfg: AbuseIpdbConfig,
    http: reqwest::Client,
    cache: Mutex<HashMap<IpAddr, (Instant, u8)>>,
    quota: Mutex<Quota>,
}

fn utc_day() -> i64 {
    jiff::Timestamp::now().as_second().div_euclid(86_400)
}

impl AbuseIpdb {
    /// A client with `cfg`.
    pub fn new(cfg: AbuseIpdbConfig) -> AbuseIpdb {
        crate::respond::alert::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .expect("HTTP client builds with the bundled TLS provider");
        let quota = Quota {
            day: utc_day(),
            used: 0,
            warned: false,
            paused_until: None,
        };
        AbuseIpdb {
            cfg,
            http,
            cache: Mutex::default(),
            quota: Mutex::new(quota),
        }
    }

    /// Checks used today.
    pub fn used_today(&self) -> u32 {
        self.quota.lock().expect("quota lock").used
    }

    /// The abuse confidence score (0–100) of `ip`, from the cache when fresh.
    pub async fn check(&self, ip: IpAddr) -> Result<u8, IntelError> {
        if let Some(score) = self.cached(ip) {
            return Ok(score);
        }
        self.take_quota()?;
        let resp = self
            .http
            .get(format!("{}/check", self.cfg.base_url.trim_end_matches('/')))
            .query(&[
                ("ipAddress", ip.to_string()),
                ("maxAgeInDays", self.cfg.max_age_days.to_string()),
            ])
            .header("Key", &self.cfg.api_key)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| IntelError::Transport(e.to_string()))?;
        self.note_rate_headers(resp.status().as_u16(), resp.headers())?;
        if !resp.status().is_success() {
            return Err(IntelError::Http(resp.status().as_u16()));
        }
        let body: CheckResponse = resp
            .json()
            .await
            .map_err(|e| IntelError::Parse(e.to_string()))?;
        let score = body.data.abuse_confidence_score.min(100);
        self.cache
            .lock()
            .expect("cache lock")
            .insert(ip, (Instant::now(), score));
        Ok(score)
    }

    fn cached(&self, ip: IpAddr) -> Option<u8> {
        let mut cache = self.cache.lock().expect("cache lock");
        let &(at, score) = cache.get(&ip)?;
        if at.elapsed() < self.cfg.cache_ttl {
            return Some(score);
        }
        cache.remove(&ip);
        None
    }

    /// Counts one call against the quota, or refuses (warning once per day).
    fn take_quota(&self) -> Result<(), IntelError> {
        let mut q = self.quota.lock().expect("quota lock");
        if let Some(until) = q.paused_until {
            let now = Instant::now();
            if now < until {
                return Err(IntelError::RateLimited(until - now));
            }
            q.paused_until = None;
        }
        let today = utc_day();
        if q.day != today {
            *q = Quota {
                day: today,
                used: 0,
                warned: false,
                paused_until: None,
            };
        }
        if q.used >= self.cfg.daily_quota {
            if !q.warned {
                q.warned = true;
                tracing::warn!(
                    quota = self.cfg.daily_quota,
                    "AbuseIPDB daily quota used up; no more checks until tomorrow (UTC)"
                );
            }
            return Err(IntelError::QuotaExhausted(self.cfg.daily_quota));
        }
        q.used += 1;
        Ok(())
    }

    /// Honours 429 + `Retry-After` and `X-RateLimit-Remaining: 0` (+ `X-RateLimit-Reset`
    /// as epoch seconds).
    fn note_rate_headers(
        &self,
        status: u16,
        headers: &reqwest::header::HeaderMap,
    ) -> Result<(), IntelError> {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        let remaining = num("x-ratelimit-remaining");
        let pause = if let Some(secs) = num("retry-after") {
            Some(Duration::from_secs(secs.max(0) as u64))
        } else if remaining == Some(0) || status == 429 {
            let reset = num("x-ratelimit-reset").unwrap_or(0);
            let wait = reset - jiff::Timestamp::now().as_second();
            Some(Duration::from_secs(wait.clamp(60, 86_400) as u64))
        } else {
            None
        };
        let Some(pause) = pause.filter(|_| status == 429 || remaining == Some(0)) else {
            return Ok(());
        };
        tracing::warn!(pause = ?pause, status, "AbuseIPDB rate limit reached; pausing checks");
        self.quota.lock().expect("quota lock").paused_until = Some(Instant::now() + pause);
        if status == 429 {
            Err(IntelError::RateLimited(pause))
        } else {
            Ok(())
        }
    }
}
