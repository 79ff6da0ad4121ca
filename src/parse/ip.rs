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
    if let Some(v6) = plain_v6(no_zone.as_bytes()) {
        return Ok(normalize_v6(v6, false));
    }
    match no_zone.parse::<Ipv6Addr>() {
        Ok(v6) => Ok(normalize_v6(v6, no_zone.contains('.'))),
        Err(_) => Err(ParseError::BadIp(text.into())),
    }
}

/// An IPv6 address written as hex groups only (`2001:db8::1`, `2a01:c444:ff69:…`),
/// parsed without `Ipv6Addr::from_str`, whose general parser costs ~1,800 instructions
/// per address and showed in scans of logs where IPv6 clients are common. Anything
/// else (an embedded dotted IPv4, a bad group, two `::`) returns `None` and goes to the
/// standard parser, which decides exactly as before; a test holds the two equal.
fn plain_v6(s: &[u8]) -> Option<Ipv6Addr> {
    let mut head = [0u16; 8];
    let mut tail = [0u16; 8];
    let (mut nh, mut nt) = (0usize, 0usize);
    let mut gap = false;
    let mut i = 0;
    if s.starts_with(b"::") {
        gap = true;
        i = 2;
    }
    while i < s.len() {
        let start = i;
        let mut group = 0u16;
        while i < s.len() && i - start < 4 {
            let digit = match s[i] {
                c @ b'0'..=b'9' => c - b'0',
                c @ b'a'..=b'f' => c - b'a' + 10,
                c @ b'A'..=b'F' => c - b'A' + 10,
                _ => break,
            };
            group = group << 4 | u16::from(digit);
            i += 1;
        }
        if i == start {
            return None;
        }
        if gap {
            *tail.get_mut(nt)? = group;
            nt += 1;
        } else {
            *head.get_mut(nh)? = group;
            nh += 1;
        }
        if i == s.len() {
            break;
        }
        // After a group only `:` (then another group) or `::` (once) may follow.
        if s[i] != b':' {
            return None;
        }
        i += 1;
        if s.get(i) == Some(&b':') {
            if gap {
                return None;
            }
            gap = true;
            i += 1;
        } else if i == s.len() {
            return None;
        }
    }
    let groups = match gap {
        false if nh == 8 => head,
        true if nh + nt <= 7 => {
            let mut all = [0u16; 8];
            all[..nh].copy_from_slice(&head[..nh]);
            all[8 - nt..].copy_from_slice(&tail[..nt]);
            all
        }
        _ => return None,
    };
    Some(Ipv6Addr::from(groups))
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
    use proptest::prelude::*;

    /// What `plain_v6` accepts, the standard parser reads the same way.
    fn agrees(s: &str) {
        if let Some(fast) = plain_v6(s.as_bytes()) {
            assert_eq!(s.parse::<Ipv6Addr>().ok(), Some(fast), "{s:?}");
        }
    }

    #[test]
    fn plain_v6_takes_the_common_spellings_and_agrees_with_std() {
        for s in [
            "2001:4860:ac05:bc66::4aed",
            "2a01:c444:ff69:8451:5e2c:602d:8d92:ff53",
            "::1",
            "::",
            "fe80::",
            "1::",
            "2001:DB8::A",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
        ] {
            assert!(plain_v6(s.as_bytes()).is_some(), "{s}");
            agrees(s);
        }
        for s in [
            "",
            ":",
            ":::",
            "1:::2",
            "1::2::3",
            ":1::2",
            "1::2:",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8",
            "12345::1",
            "g::1",
            "::ffff:192.0.2.1",
            "1:2:3:4:5:6:7::8",
            " ::1",
        ] {
            agrees(s);
        }
    }

    proptest! {
        #[test]
        fn plain_v6_agrees_with_std_on_any_text(s in "[0-9a-fA-F:.g ]{0,42}") {
            agrees(&s);
        }

        #[test]
        fn plain_v6_reads_every_address_std_writes(groups in proptest::array::uniform8(any::<u16>()), zeros in 0u8..=255) {
            // Runs of zero groups, so that `::` appears in many places.
            let mut g = groups;
            for (i, v) in g.iter_mut().enumerate() {
                if zeros & (1 << i) != 0 {
                    *v = 0;
                }
            }
            let addr = Ipv6Addr::from(g);
            let text = addr.to_string();
            if !text.contains('.') {
                prop_assert_eq!(plain_v6(text.as_bytes()), Some(addr));
            }
            let full = g.iter().map(|v| format!("{v:X}")).collect::<Vec<_>>().join(":");
            prop_assert_eq!(plain_v6(full.as_bytes()), Some(addr));
        }
    }

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
