//! Who the client is: `$remote_addr` or a believed `X-Forwarded-For` hop.
//!
//! `X-Forwarded-For` is client-supplied text. It is believed only when the peer that
//! sent it is one of `network.trusted_proxies`, and then only from the right: every
//! trusted proxy appends the address it saw, so the right-most hop that is not itself
//! a trusted proxy is the client. Hops further left are whatever the client wrote and
//! never become the client (field case 15). The raw header is always kept as evidence.

use std::net::IpAddr;

use ipnet::IpNet;

use super::ip;
use crate::config::NetworkConfig;
use crate::event::{Event, Text};

/// Resolves the client of one source's events. Holds the "no client" warning state,
/// so it must live as long as the source's parser.
#[derive(Debug, Clone, Default)]
pub struct ClientResolver {
    trusted: Vec<IpNet>,
    warned_no_client: bool,
    no_client: u64,
}

impl ClientResolver {
    /// A resolver believing `X-Forwarded-For` from `net.trusted_proxies`.
    pub fn new(net: &NetworkConfig) -> ClientResolver {
        ClientResolver {
            trusted: net.trusted_proxies.clone(),
            warned_no_client: false,
            no_client: 0,
        }
    }

    /// Whether `ip` is a configured trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// Sets `source_ip`, `peer_ip` and `forwarded_for` from the peer address and the
    /// raw `X-Forwarded-For` value (`None` or `-` when absent).
    pub fn resolve(&mut self, ev: &mut Event, remote: IpAddr, xff: Option<&str>) {
        let xff = xff.map(str::trim).filter(|v| !v.is_empty() && *v != "-");
        if let Some(raw) = xff {
            ev.forwarded_for = Some(Text::from(raw));
        }
        if !self.is_trusted(remote) {
            ev.source_ip = Some(remote);
            return;
        }
        let client = xff.and_then(|raw| self.rightmost_untrusted(raw));
        ev.source_ip = client;
        if client != Some(remote) {
            ev.peer_ip = Some(remote);
        }
        if client.is_none() {
            self.warn_no_client(ev, remote);
        }
    }

    /// Walks the hops right to left, skipping trusted proxies. A hop that is not an
    /// address ends the walk: nothing left of it can be attributed.
    fn rightmost_untrusted(&self, raw: &str) -> Option<IpAddr> {
        for hop in raw.rsplit(',') {
            let Ok((addr, _port)) = ip::parse_host_port(hop, false) else {
                return None;
            };
            if !self.is_trusted(addr) {
                return Some(addr);
            }
        }
        None
    }

    fn warn_no_client(&mut self, ev: &Event, remote: IpAddr) {
        self.no_client += 1;
        if self.warned_no_client {
            return;
        }
        self.warned_no_client = true;
        tracing::warn!(
            source = %ev.source,
            peer = %remote,
            "A request came from a trusted proxy without a usable X-Forwarded-For hop; \
             such requests get no client address and are not counted. Check that the \
             proxy sets X-Forwarded-For (further occurrences are not logged)"
        );
    }

    /// Whether the "request from a trusted proxy without a client" warning was given.
    pub fn warned_no_client(&self) -> bool {
        self.warned_no_client
    }

    /// Requests from a trusted proxy that had no usable client hop (warned once).
    pub fn no_client_count(&self) -> u64 {
        self.no_client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> ClientResolver {
        ClientResolver::new(&NetworkConfig {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            allowlist: vec![],
        })
    }

    #[test]
    fn untrusted_peer_xff_is_evidence_only() {
        let mut r = resolver();
        let mut ev = Event::default();
        r.resolve(&mut ev, "192.0.2.9".parse().unwrap(), Some("203.0.113.1"));
        assert_eq!(ev.source_ip, Some("192.0.2.9".parse().unwrap()));
        assert_eq!(ev.forwarded_for.as_deref(), Some("203.0.113.1"));
        assert_eq!(ev.peer_ip, None);
    }

    #[test]
    fn garbage_hop_stops_the_walk() {
        let mut r = resolver();
        let mut ev = Event::default();
        r.resolve(
            &mut ev,
            "10.0.0.5".parse().unwrap(),
            Some("203.0.113.1, junk, 10.0.0.4"),
        );
        assert_eq!(ev.source_ip, None);
        assert!(r.warned_no_client());
    }

    #[test]
    fn trusted_peer_without_client_warns_once_per_source() {
        // field case 15, line 4 repeated
        let mut r = resolver();
        for _ in 0..3 {
            let mut ev = Event::default();
            r.resolve(&mut ev, "10.0.0.6".parse().unwrap(), Some("-"));
            assert_eq!(ev.source_ip, None);
            assert_eq!(ev.peer_ip, Some("10.0.0.6".parse().unwrap()));
        }
        assert!(r.warned_no_client());
        assert_eq!(r.no_client_count(), 3);
    }
}
