//! The `[respond]` configuration section: which firewall backend enforces bans, the
//! policy that maps detections to decisions, ban durations and escalation, and the
//! never-ban list. Every field has a default, and the defaults enforce nothing
//! (`backend = "none"`) until an operator picks a firewall.
//!
//! ```toml
//! [respond]
//! backend = "nftables"              # none | nftables | iptables | ufw
//! simulate = false                  # decide and record, enforce nothing
//! escalation = ["1h", "24h", "7d"]  # first, second, third+ offence; "permanent" allowed
//! ipv6_prefix = 64
//! allowlist = ["192.0.2.0/28", "198.51.100.7"]
//! docker_networks = ["172.18.0.0/16"]
//!
//! [[respond.policy]]
//! name = "brute-force"
//! rules = ["failed-login-brute-force"]
//! action = "ban"
//! allowlist = ["203.0.113.5"]       # extends, never replaces, the global list
//!
//! [[respond.policy]]
//! level = "medium"
//! action = "alert"
//!
//! [respond.nginx]                   # ban proxied clients at the proxy too
//! deny_file = "/etc/nginx/conf.d/palisade-deny.conf"
//! reload = ["nginx", "-s", "reload"]
//! ```

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{format_duration, parse_duration};
use crate::detect::Level;

/// `[respond]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RespondConfig {
    /// Which firewall enforces bans; `none` only records them.
    pub backend: BackendKind,
    /// Decide and record everything, enforce nothing (per-policy `simulate` adds to it).
    pub simulate: bool,
    /// Ban lengths for a first, second, third… offence; the last one repeats. An
    /// entry `"permanent"` bans for good.
    #[serde(with = "duration_list")]
    pub escalation: Vec<Option<Duration>>,
    /// How far back earlier bans of the same scope count as repeat offences.
    #[serde(with = "duration_str")]
    pub repeat_window: Duration,
    /// Prefix length of IPv4 bans (32 = the single address).
    pub ipv4_prefix: u8,
    /// Prefix length of IPv6 bans: one host usually owns a whole /64.
    pub ipv6_prefix: u8,
    /// Addresses never banned, added to `[network] allowlist` (loopback, the host's
    /// own addresses, trusted proxies and Docker networks are always in it).
    #[serde(deserialize_with = "net_list")]
    pub allowlist: Vec<IpNet>,
    /// Docker networks whose addresses are never banned; the default bridge is added.
    #[serde(deserialize_with = "net_list")]
    pub docker_networks: Vec<IpNet>,
    /// Read the host's own addresses (from /proc) into the never-ban list.
    pub allowlist_host_addresses: bool,
    /// Detection → decision mapping; the first matching entry wins.
    #[serde(rename = "policy")]
    pub policies: Vec<PolicyConfig>,
    /// nftables settings.
    pub nftables: NftConfig,
    /// nginx deny-list writer, for clients that arrive through a proxy.
    pub nginx: Option<NginxDenyConfig>,
}

impl Default for RespondConfig {
    fn default() -> Self {
        let h = |n: u64| Some(Duration::from_secs(n * 3600));
        RespondConfig {
            backend: BackendKind::None,
            simulate: false,
            escalation: vec![h(1), h(24), h(24 * 7)],
            repeat_window: Duration::from_secs(30 * 86_400),
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            allowlist: Vec::new(),
            docker_networks: Vec::new(),
            allowlist_host_addresses: true,
            policies: default_policies(),
            nftables: NftConfig::default(),
            nginx: None,
        }
    }
}

/// The shipped policy: high and critical detections ban, medium ones alert.
fn default_policies() -> Vec<PolicyConfig> {
    vec![
        PolicyConfig {
            name: "ban-high".into(),
            level: Some(Level::High),
            action: Action::Ban,
            ..PolicyConfig::default()
        },
        PolicyConfig {
            name: "alert-medium".into(),
            level: Some(Level::Medium),
            action: Action::Alert,
            ..PolicyConfig::default()
        },
    ]
}

/// Which firewall enforces bans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Record decisions only.
    #[default]
    None,
    /// Own table `inet palisade`, sets with per-element timeouts.
    Nftables,
    /// iptables/ip6tables with ipset sets.
    Iptables,
    /// `ufw deny from …`; palisade's timer lifts bans.
    Ufw,
}

/// What a policy entry does with the detections it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Ban the detection's `source.ip` (and alert about the ban).
    Ban,
    /// Alert only.
    #[default]
    Alert,
    /// Record nothing but the detection itself.
    Nothing,
}

/// `[[respond.policy]]`: one detection → decision mapping. Every condition given must
/// hold; an entry with no condition matches every detection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// A name for logs and `config show`.
    pub name: String,
    /// Rule ids or names this entry applies to (any of them).
    pub rules: Vec<String>,
    /// Minimum rule level.
    pub level: Option<Level>,
    /// Sigma tags, any of which must be on the rule (e.g. `attack.t1110`).
    pub tags: Vec<String>,
    /// Minimum threat-intel score (0–100) of the key's address, when one is known.
    pub min_threat_score: Option<f64>,
    pub action: Action,
    /// Overrides `[respond] escalation` for bans from this entry.
    #[serde(with = "opt_duration_list", skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Vec<Option<Duration>>>,
    /// Decide and record, but enforce nothing, for this entry only.
    pub simulate: bool,
    /// Never-ban entries that EXTEND the global list for the rules this entry matches.
    #[serde(deserialize_with = "net_list")]
    pub allowlist: Vec<IpNet>,
}

/// `[respond.nftables]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NftConfig {
    /// The `nft` program.
    pub nft: PathBuf,
    /// Hook priority of palisade's chains; below 0 runs before the usual filter chains.
    pub priority: i32,
}

impl Default for NftConfig {
    fn default() -> Self {
        NftConfig {
            nft: PathBuf::from("nft"),
            priority: -10,
        }
    }
}

/// `[respond.nginx]`: write bans as `deny <addr>;` lines into a file nginx includes,
/// then run the reload command.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NginxDenyConfig {
    /// The generated include file, e.g. `/etc/nginx/conf.d/palisade-deny.conf`.
    pub deny_file: PathBuf,
    /// Argument vector run after each rewrite, e.g. `["nginx", "-s", "reload"]`.
    #[serde(default = "default_nginx_reload")]
    pub reload: Vec<String>,
}

fn default_nginx_reload() -> Vec<String> {
    vec!["nginx".into(), "-s".into(), "reload".into()]
}

/// Parses `"192.0.2.0/28"` or a bare address (`"198.51.100.7"` = its /32 or /128).
pub fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net.trunc());
    }
    let ip: std::net::IpAddr = s.parse().ok()?;
    Some(IpNet::from(ip.to_canonical()))
}

/// serde: a list of CIDRs where bare addresses are allowed, as operators write them.
pub fn net_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let raw = Vec::<String>::deserialize(d)?;
    raw.iter()
        .map(|s| {
            parse_net(s).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "not an address or CIDR: {s:?} (try \"192.0.2.0/24\" or \"2001:db8::1\")"
                ))
            })
        })
        .collect()
}

fn parse_ban_length(s: &str) -> Result<Option<Duration>, String> {
    if s.eq_ignore_ascii_case("permanent") {
        return Ok(None);
    }
    parse_duration(s)
        .map(Some)
        .ok_or_else(|| format!("not a ban length: {s:?} (try \"1h\", \"7d\" or \"permanent\")"))
}

fn format_ban_length(d: &Option<Duration>) -> String {
    d.map_or("permanent".into(), format_duration)
}

mod duration_str {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not a duration: {s:?} (try \"30d\")")))
    }
}

mod duration_list {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[Option<Duration>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(format_ban_length))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<Duration>>, D::Error> {
        let raw = Vec::<String>::deserialize(d)?;
        let list: Vec<_> = raw
            .iter()
            .map(|s| parse_ban_length(s))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)?;
        if list.is_empty() {
            return Err(serde::de::Error::custom(
                "escalation needs at least one ban length",
            ));
        }
        Ok(list)
    }
}

mod opt_duration_list {
    use super::*;

    pub fn serialize<S: Serializer>(
        v: &Option<Vec<Option<Duration>>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::duration_list::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<Option<Duration>>>, D::Error> {
        super::duration_list::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_records_only_and_escalates_1h_24h_7d() {
        let cfg: RespondConfig = toml::from_str("").unwrap();
        assert_eq!(cfg.backend, BackendKind::None);
        assert_eq!(cfg.escalation[0], Some(Duration::from_secs(3600)));
        assert_eq!(cfg.escalation[2], Some(Duration::from_secs(7 * 86_400)));
        assert_eq!((cfg.ipv4_prefix, cfg.ipv6_prefix), (32, 64));
    }

    #[test]
    fn policy_entries_parse_with_permanent_and_per_rule_allowlist() {
        let cfg: RespondConfig = toml::from_str(
            r#"
            backend = "nftables"
            [[policy]]
            rules = ["login"]
            action = "ban"
            escalation = ["10m", "permanent"]
            allowlist = ["198.51.100.7/32"]
            "#,
        )
        .unwrap();
        let p = &cfg.policies[0];
        assert_eq!(p.action, Action::Ban);
        assert_eq!(p.escalation.as_ref().unwrap()[1], None);
        assert_eq!(p.allowlist.len(), 1);
    }

    #[test]
    fn module_doc_example_parses() {
        let doc = include_str!("config.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .collect::<Vec<_>>()
            .join("\n");
        let value: toml::Table = toml::from_str(&example).unwrap();
        let section = value["respond"].clone();
        let cfg: RespondConfig = section.try_into().unwrap();
        assert_eq!(cfg.backend, BackendKind::Nftables);
        assert_eq!(cfg.policies.len(), 2);
        assert_eq!(cfg.allowlist[1].to_string(), "198.51.100.7/32");
        assert!(cfg.nginx.is_some());
    }

    #[test]
    fn bad_ban_length_is_rejected_with_a_hint() {
        let err = toml::from_str::<RespondConfig>(r#"escalation = ["soon"]"#).unwrap_err();
        assert!(err.to_string().contains("permanent"), "{err}");
    }
}
