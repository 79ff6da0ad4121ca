//! The `[intel]` configuration section and the per-detection score lookup the daemon
//! hands to the policy.
//!
//! ```toml
//! [intel]
//! abuseipdb = true                 # key from ABUSEIPDB_API_KEY
//! abuseipdb_timeout = "1500ms"     # the pipeline waits at most this long per new address
//! [[intel.blocklist]]
//! name = "firehol_level1"
//! path = "/var/lib/palisade/firehol_level1.netset"
//! ```
//!
//! Off by default: palisade asks no outside service unless the operator turns it on.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AbuseIpdb, AbuseIpdbConfig, Blocklists, IntelError};
use crate::config::parse_duration;

/// `[intel]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntelConfig {
    /// Ask AbuseIPDB about addresses that a detection names (key from the environment).
    pub abuseipdb: bool,
    /// API base URL (for a proxy or a test stand-in); the public API when unset.
    pub abuseipdb_url: Option<String>,
    /// Longest wait for one answer; the decision goes ahead without a score after it.
    pub abuseipdb_timeout: Option<String>,
    /// Checks per UTC day (the free plan allows 1000).
    pub abuseipdb_daily_quota: Option<u32>,
    /// Offline lists; an address on one scores 100.
    #[serde(rename = "blocklist")]
    pub blocklists: Vec<BlocklistConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlocklistConfig {
    pub name: String,
    pub path: PathBuf,
}

/// Why `[intel]` could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IntelSetupError {
    #[error("intel.abuseipdb: {0}")]
    AbuseIpdb(IntelError),
    #[error("intel.abuseipdb_timeout: {0:?} is not a duration")]
    Timeout(String),
    #[error("intel.blocklist {name:?}: {message}")]
    Blocklist { name: String, message: String },
}

/// Reputation sources the daemon consults for a detection's address.
pub struct Intel {
    abuse: Option<AbuseIpdb>,
    wait: Duration,
    lists: Blocklists,
}

impl Intel {
    /// Builds the configured sources; nothing is contacted yet.
    pub fn from_config(cfg: &IntelConfig) -> Result<Intel, IntelSetupError> {
        let wait = match &cfg.abuseipdb_timeout {
            None => Duration::from_millis(1500),
            Some(t) => parse_duration(t).ok_or_else(|| IntelSetupError::Timeout(t.clone()))?,
        };
        let abuse = if cfg.abuseipdb {
            let mut c = AbuseIpdbConfig::from_env().map_err(IntelSetupError::AbuseIpdb)?;
            if let Some(url) = &cfg.abuseipdb_url {
                c.base_url = url.clone();
            }
            if let Some(q) = cfg.abuseipdb_daily_quota {
                c.daily_quota = q;
            }
            c.timeout = wait;
            Some(AbuseIpdb::new(c))
        } else {
            None
        };
        let mut lists = Blocklists::new();
        for b in &cfg.blocklists {
            lists
                .add(&b.name, &b.path)
                .map_err(|e| IntelSetupError::Blocklist {
                    name: b.name.clone(),
                    message: e.to_string(),
                })?;
        }
        Ok(Intel { abuse, wait, lists })
    }

    /// Whether any source is configured.
    pub fn is_enabled(&self) -> bool {
        self.abuse.is_some() || !self.lists.summary().is_empty()
    }

    /// The address's threat score (0–100): 100 when an offline list holds it, else
    /// AbuseIPDB's confidence when configured and answered in time, else `None`.
    pub fn score(&mut self, runtime: &tokio::runtime::Runtime, ip: IpAddr) -> Option<f64> {
        for e in self.lists.reload_if_changed() {
            tracing::warn!(error = %e, "Cannot reload blocklist; keeping the previous contents");
        }
        if let Some(list) = self.lists.lookup(ip) {
            tracing::info!(%ip, list, "Address is on a blocklist");
            return Some(100.0);
        }
        let abuse = self.abuse.as_ref()?;
        let answer =
            runtime.block_on(async { tokio::time::timeout(self.wait, abuse.check(ip)).await });
        match answer {
            Ok(Ok(score)) => Some(f64::from(score)),
            Ok(Err(e)) => {
                tracing::debug!(%ip, error = %e, "No AbuseIPDB score");
                None
            }
            Err(_) => {
                tracing::debug!(%ip, "AbuseIPDB did not answer in time");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_asks_nobody() {
        let intel = Intel::from_config(&IntelConfig::default()).unwrap();
        assert!(!intel.is_enabled());
    }

    #[test]
    fn blocklisted_address_scores_100_without_any_network() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.netset");
        std::fs::write(&path, "# test list\n203.0.113.0/24\n").unwrap();
        let cfg = IntelConfig {
            blocklists: vec![BlocklistConfig {
                name: "test".into(),
                path,
            }],
            ..IntelConfig::default()
        };
        let mut intel = Intel::from_config(&cfg).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(
            intel.score(&rt, "203.0.113.9".parse().unwrap()),
            Some(100.0)
        );
        assert_eq!(intel.score(&rt, "198.51.100.9".parse().unwrap()), None);
    }
}
