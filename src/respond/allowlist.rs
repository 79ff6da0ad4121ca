//! The never-ban list, honoured by every path that can produce a ban: the policy
//! (detections), manual `palisade ban`, the API and decisions imported from peers.
//! Checking it in one place is the point (field case 23: a list applied at one stage
//! only let 127.0.0.1 be blocked).
//!
//! Entries come from: loopback (always), the host's own addresses, trusted proxies,
//! Docker networks (the default bridge plus configured ones; field case 18), the global
//! allowlist, and per-rule lists that extend — never replace — the global one (field
//! case 22). Addresses are normalised first: an IPv4-mapped IPv6 address is its IPv4
//! address (field case 9).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::Serialize;

/// Why an address is on the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "source", content = "rule")]
pub enum AllowSource {
    Loopback,
    HostAddress,
    TrustedProxy,
    DockerNetwork,
    /// `[network] allowlist`, `[defaults] allowlist` or `[respond] allowlist`.
    Global,
    /// A per-rule entry (the rule id or name).
    Rule(String),
}

impl fmt::Display for AllowSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowSource::Loopback => f.write_str("loopback"),
            AllowSource::HostAddress => f.write_str("this host's address"),
            AllowSource::TrustedProxy => f.write_str("trusted proxy"),
            AllowSource::DockerNetwork => f.write_str("Docker network"),
            AllowSource::Global => f.write_str("global allowlist"),
            AllowSource::Rule(r) => write!(f, "allowlist of rule {r}"),
        }
    }
}

/// One never-ban range and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowEntry {
    pub net: IpNet,
    #[serde(flatten)]
    pub source: AllowSource,
}

/// The default Docker bridge network; its gateway (172.17.0.1) is what every client
/// looks like when Docker NATs published ports.
pub const DOCKER_DEFAULT_BRIDGE: &str = "172.17.0.0/16";

/// The never-ban list.
#[derive(Debug, Clone)]
pub struct Allowlist {
    global: Vec<AllowEntry>,
    per_rule: HashMap<String, Vec<IpNet>>,
}

impl Default for Allowlist {
    fn default() -> Self {
        Allowlist::new()
    }
}

impl Allowlist {
    /// A list holding loopback (127.0.0.0/8 and ::1) only.
    pub fn new() -> Allowlist {
        let mut list = Allowlist {
            global: Vec::new(),
            per_rule: HashMap::new(),
        };
        let v4 = IpNet::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8).expect("valid prefix");
        list.add(v4, AllowSource::Loopback);
        list.add(
            IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            AllowSource::Loopback,
        );
        list
    }

    /// Adds a global entry (every rule, every path).
    pub fn add(&mut self, net: IpNet, source: AllowSource) {
        let net = normalize_net(net);
        if self.global.iter().any(|e| e.net == net) {
            return;
        }
        self.global.push(AllowEntry { net, source });
    }

    /// Adds entries for one rule (by id or name); they extend the global list.
    pub fn add_for_rule(&mut self, rule: &str, nets: &[IpNet]) {
        let list = self.per_rule.entry(rule.to_string()).or_default();
        for net in nets {
            let net = normalize_net(*net);
            if !list.contains(&net) {
                list.push(net);
            }
        }
    }

    /// The entry that forbids banning `scope` for a rule known by any of `rule_keys`
    /// (id, name), if any. A scope that overlaps an entry either way is refused: banning
    /// 2001:db8:1::/64 would also lock out an allowlisted 2001:db8:1::9.
    pub fn check(&self, scope: IpNet, rule_keys: &[&str]) -> Option<AllowEntry> {
        let scope = normalize_net(scope);
        if let Some(e) = self.global.iter().find(|e| overlaps(e.net, scope)) {
            return Some(e.clone());
        }
        let rule = rule_keys.iter().find_map(|k| {
            let nets = self.per_rule.get(*k)?;
            nets.iter().find(|n| overlaps(**n, scope)).map(|n| (k, *n))
        })?;
        Some(AllowEntry {
            net: rule.1,
            source: AllowSource::Rule(rule.0.to_string()),
        })
    }

    /// Every entry in force for a rule: the global ones, then the rule's own
    /// (what `palisade config show` lists as effective for it).
    pub fn effective_for(&self, rule_keys: &[&str]) -> Vec<AllowEntry> {
        let mut out = self.global.clone();
        for key in rule_keys {
            for net in self.per_rule.get(*key).into_iter().flatten() {
                out.push(AllowEntry {
                    net: *net,
                    source: AllowSource::Rule(key.to_string()),
                });
            }
        }
        out
    }

    /// Whether `ip` lies in a Docker network on the list.
    pub fn is_docker(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.global
            .iter()
            .any(|e| e.source == AllowSource::DockerNetwork && e.net.contains(&ip))
    }

    /// The global entries.
    pub fn entries(&self) -> &[AllowEntry] {
        &self.global
    }
}

fn overlaps(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// An IPv4-mapped IPv6 net (`::ffff:192.0.2.0/120`) as the IPv4 net it means.
pub fn normalize_net(net: IpNet) -> IpNet {
    let IpNet::V6(v6) = net else {
        return net.trunc();
    };
    let Some(v4) = v6.addr().to_ipv4_mapped() else {
        return net.trunc();
    };
    let len = v6.prefix_len().saturating_sub(96);
    IpNet::new(IpAddr::V4(v4), len).map_or(net, |n| n.trunc())
}

/// Parses a client address as logs write it: plain, bracketed (`[2001:db8::1]`), any
/// hex case, and IPv4-mapped IPv6 (`::ffff:192.0.2.77`, `::FFFF:c000:024d`) folded to
/// IPv4 so one client is one key (field case 9).
pub fn parse_client_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// The host's own addresses, read from `/proc/net/fib_trie` (IPv4 local routes) and
/// `/proc/net/if_inet6`. Files that cannot be read yield nothing (not Linux, or a
/// sandbox); the caller logs that once.
pub fn host_addresses() -> std::io::Result<Vec<IpAddr>> {
    let v4 = std::fs::read_to_string("/proc/net/fib_trie")?;
    let mut out = parse_fib_trie_locals(&v4);
    if let Ok(v6) = std::fs::read_to_string("/proc/net/if_inet6") {
        out.extend(parse_if_inet6(&v6));
    }
    Ok(out)
}

/// Addresses of `/32 host LOCAL` leaves in `/proc/net/fib_trie`: each leaf line
/// `|-- a.b.c.d` is followed by its route lines.
pub fn parse_fib_trie_locals(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut leaf: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(addr) = t.strip_prefix("|-- ") {
            leaf = addr.trim().parse().ok();
            continue;
        }
        if t.starts_with("/32 host LOCAL") {
            let Some(ip) = leaf else { continue };
            if !out.contains(&IpAddr::V4(ip)) {
                out.push(IpAddr::V4(ip));
            }
        }
    }
    out
}

/// Addresses in `/proc/net/if_inet6`: the first column is 32 hex digits.
pub fn parse_if_inet6(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let hex = line.split_whitespace().next()?;
            let bits = u128::from_str_radix(hex, 16).ok()?;
            (hex.len() == 32).then(|| IpAddr::V6(Ipv6Addr::from(bits)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        crate::respond::config::parse_net(s).unwrap()
    }

    #[test]
    fn loopback_is_always_on_the_list() {
        let list = Allowlist::new();
        assert!(list.check(net("127.0.0.1"), &[]).is_some());
        assert!(list.check(net("127.9.9.9"), &[]).is_some());
        assert!(list.check(net("::1"), &[]).is_some());
        assert!(list.check(net("192.0.2.1"), &[]).is_none());
    }

    #[test]
    fn mapped_loopback_is_refused_like_loopback() {
        let list = Allowlist::new();
        let hit = list.check(net("::ffff:127.0.0.1"), &[]).unwrap();
        assert_eq!(hit.source, AllowSource::Loopback);
    }

    #[test]
    fn rule_allowlist_extends_the_global_one() {
        // Field case 22: a per-rule list must not replace the global list.
        let mut list = Allowlist::new();
        list.add(net("192.0.2.0/28"), AllowSource::Global);
        list.add(net("2001:db8:1::/48"), AllowSource::Global);
        list.add_for_rule("login", &[net("198.51.100.7")]);
        assert!(list.check(net("192.0.2.5"), &["login"]).is_some());
        assert!(list.check(net("2001:db8:1::/64"), &["login"]).is_some());
        assert!(list.check(net("198.51.100.7"), &["login"]).is_some());
        assert!(list.check(net("198.51.100.7"), &["other"]).is_none());
        assert_eq!(list.effective_for(&["login"]).len(), 5);
    }

    #[test]
    fn v6_prefix_ban_covering_an_allowlisted_host_is_refused() {
        let mut list = Allowlist::new();
        list.add(net("2001:db8:5::9"), AllowSource::TrustedProxy);
        assert!(list.check(net("2001:db8:5::/64"), &[]).is_some());
    }

    #[test]
    fn mapped_and_bracketed_forms_parse_to_one_ipv4_address() {
        let want: IpAddr = "192.0.2.77".parse().unwrap();
        for s in [
            "192.0.2.77",
            "::ffff:192.0.2.77",
            "::FFFF:c000:024d",
            "[::ffff:192.0.2.77]",
        ] {
            assert_eq!(parse_client_ip(s), Some(want), "{s}");
        }
    }

    #[test]
    fn fib_trie_yields_only_local_host_routes() {
        let text = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     \
                    +-- 10.0.0.0/24 2 0 2\n        |-- 10.0.0.0\n           /24 link UNICAST\n        \
                    |-- 10.0.0.5\n           /32 host LOCAL\n     |-- 127.0.0.1\n        \
                    /32 host LOCAL\n";
        let got = parse_fib_trie_locals(text);
        assert_eq!(
            got,
            vec![
                "10.0.0.5".parse::<IpAddr>().unwrap(),
                "127.0.0.1".parse().unwrap()
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn every_mapped_spelling_of_an_ipv4_address_is_that_address(bits: u32) {
            let v4 = Ipv4Addr::from(bits);
            let mapped = v4.to_ipv6_mapped();
            let want = Some(IpAddr::V4(v4));
            proptest::prop_assert_eq!(parse_client_ip(&v4.to_string()), want);
            proptest::prop_assert_eq!(parse_client_ip(&mapped.to_string()), want);
            let upper = format!("[{}]", mapped.to_string().to_uppercase());
            proptest::prop_assert_eq!(parse_client_ip(&upper), want);
            let net = IpNet::new(IpAddr::V6(mapped), 128).unwrap();
            proptest::prop_assert_eq!(normalize_net(net), IpNet::from(IpAddr::V4(v4)));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn host_addresses_are_read_from_proc_and_include_loopback() {
        let ips = host_addresses().expect("/proc/net/fib_trie is readable on Linux");
        assert!(ips.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)), "{ips:?}");
    }

    #[test]
    fn if_inet6_lines_parse() {
        let text = "00000000000000000000000000000001 01 80 10 80       lo\n\
                    fe800000000000000000000000000001 02 40 20 80     eth0\n";
        let got = parse_if_inet6(text);
        assert_eq!(got[0], "::1".parse::<IpAddr>().unwrap());
        assert_eq!(got[1], "fe80::1".parse::<IpAddr>().unwrap());
    }
}
