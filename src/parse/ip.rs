//! Client addresses as written in logs, turned into [`IpAddr`]s.
//!
//! Every parser funnels addresses through here so that one spelling rule holds
//! everywhere: brackets and zone ids are dropped, IPv4-mapped (`::ffff:a.b.c.d`, also
//! in hex) and dotted IPv4-compatible (`::a.b.c.d`) addresses become plain IPv4, and a
//! value that is not a whole address is rejected as [`ParseError::BadIp`] instead of
//! being guessed at (field cases 6, 7, 9, 10). `IpAddr`'s `Display` writes RFC 5952.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ParseError;

/// Parses one address (no port): `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`,
/// `fe80::1%eth0`. Mapped IPv4 comes back as IPv4.
pub fn parse_ip(text: &str) -> Result<IpAddr, ParseError> {
    let s = text.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(v4) = s.parse::<Ipv4Addr>() {
        return Ok(IpAddr::V4(v4));
    }
    let no_zone = s.split_once('%').map_or(s, |(addr, _zone)| addr);
    match no_zone.parse::<Ipv6Addr>() {
        Ok(v6) => Ok(normalize_v6(v6, no_zone.contains('.'))),
        Err(_) => Err(ParseError::BadIp(text.into())),
    }
}

/// Returns IPv4 for IPv4-mapped IPv6 (and IPv4-compatible written with dots, such as
/// `::192.0.2.1`; hex-only `::1`-style compatible addresses stay IPv6 because `::1`
/// is loopback, not `0.0.0.1`).
fn normalize_v6(v6: Ipv6Addr, dotted: bool) -> IpAddr {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let seg = v6.segments();
    if dotted
        && seg[..6].iter().all(|s| *s == 0)
        && let Some(v4) = v6.to_ipv4()
    {
        return IpAddr::V4(v4);
    }
    IpAddr::V6(v6)
}

/// Normalises an address already parsed elsewhere (mapped IPv6 → IPv4).
pub fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => normalize_v6(v6, false),
        v4 => v4,
    }
}

/// Parses `addr` or `addr:port`: `192.0.2.1:80`, `[2001:db8::1]:443`.
///
/// `port_follows` says the log format declares a port after the address (for example
/// `$remote_addr:$remote_port` or HAProxy's `client_addr:client_port`): an unbracketed
/// IPv6 value is then split at its last colon (field case 7: `2001:db8::1:58340` is
/// `2001:db8::1` port 58340, never `2001:db8::1:5834`). Without it, a bare IPv6 value
/// is taken whole unless it has nine groups, which can only be eight plus a port.
pub fn parse_host_port(
    text: &str,
    port_follows: bool,
) -> Result<(IpAddr, Option<u16>), ParseError> {
    let s = text.trim();
    let bad = || ParseError::BadIp(text.into());
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, tail) = rest.split_once(']').ok_or_else(bad)?;
        let port = match tail {
            "" => None,
            t => Some(parse_port(t.strip_prefix(':').ok_or_else(bad)?).ok_or_else(bad)?),
        };
        return Ok((parse_ip(addr)?, port));
    }
    let colons = memchr::memchr_iter(b':', s.as_bytes()).count();
    let split = match colons {
        0 => false,
        1 => true,
        _ => port_follows || colons == 8,
    };
    if !split {
        return Ok((parse_ip(s)?, None));
    }
    let (addr, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port = parse_port(port).ok_or_else(bad)?;
    Ok((parse_ip(addr).map_err(|_| bad())?, Some(port)))
}

/// A decimal TCP/UDP port, 1–5 digits.
pub fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> String {
        parse_ip(s).unwrap().to_string()
    }

    #[test]
    fn mapped_and_compatible_become_ipv4() {
        assert_eq!(ip("::ffff:192.0.2.77"), "192.0.2.77");
        assert_eq!(ip("::FFFF:c000:024d"), "192.0.2.77");
        assert_eq!(ip("::192.0.2.77"), "192.0.2.77");
        assert_eq!(ip("::1"), "::1");
    }

    #[test]
    fn brackets_and_zone_ids_are_dropped() {
        assert_eq!(ip("[2001:DB8:0:0:0:0:0:1]"), "2001:db8::1");
        assert_eq!(ip("fe80::1%eth0"), "fe80::1");
    }

    #[test]
    fn partial_or_junk_addresses_are_rejected() {
        for bad in [
            "181:2225",
            "1.2.3",
            "1.2.3.4.5",
            "example.com",
            "",
            "2001:db8::1:5834:1:2:3:4",
        ] {
            assert!(parse_ip(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn declared_port_splits_unbracketed_ipv6_at_last_colon() {
        // field case 7
        let (a, p) = parse_host_port("2001:db8::1:58340", true).unwrap();
        assert_eq!((a.to_string(), p), ("2001:db8::1".into(), Some(58340)));
        let (a, p) = parse_host_port("[2001:db8::1]:58341", true).unwrap();
        assert_eq!((a.to_string(), p), ("2001:db8::1".into(), Some(58341)));
        let (a, p) = parse_host_port("198.51.100.181:2225", true).unwrap();
        assert_eq!((a.to_string(), p), ("198.51.100.181".into(), Some(2225)));
        assert!(parse_host_port("2001:db8::1:99999", true).is_err());
    }

    #[test]
    fn nine_groups_are_eight_plus_a_port() {
        // field case 6, third line
        let (a, p) = parse_host_port("2001:db8:abcd:ef01:e401:cd5:fff8:a845:60040", false).unwrap();
        assert_eq!(a.to_string(), "2001:db8:abcd:ef01:e401:cd5:fff8:a845");
        assert_eq!(p, Some(60040));
        let (a, p) = parse_host_port("2001:db8::7", false).unwrap();
        assert_eq!((a.to_string(), p), ("2001:db8::7".into(), None));
    }
}
