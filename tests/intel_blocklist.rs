//! Offline blocklists: plain and FireHOL netset formats, lookup and reload on change.

use std::net::IpAddr;

use palisade::respond::intel::Blocklists;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const NETSET: &str = "#\n# firehol_level1\n#\n# Maintainer : FireHOL\n#\n0.0.0.0/8\n5.188.10.0/23\n\
                      5.188.11.0/24\n198.51.100.7\n2001:db8:bad::/48\n";

#[test]
fn firehol_netset_and_plain_list_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        dir.path().join("firehol_level1.netset"),
        dir.path().join("local.txt"),
    );
    std::fs::write(&a, NETSET).unwrap();
    std::fs::write(
        &b,
        "203.0.113.0/25 ; spamhaus drop\nnot-an-ip\n192.0.2.44\n",
    )
    .unwrap();
    let mut lists = Blocklists::new();
    lists.add("firehol_level1", &a).unwrap();
    lists.add("local", &b).unwrap();

    assert_eq!(lists.lookup(ip("5.188.11.200")), Some("firehol_level1"));
    assert_eq!(lists.lookup(ip("5.188.12.0")), None);
    assert_eq!(lists.lookup(ip("198.51.100.7")), Some("firehol_level1"));
    assert_eq!(lists.lookup(ip("198.51.100.8")), None);
    assert_eq!(
        lists.lookup(ip("2001:db8:bad:1::9")),
        Some("firehol_level1")
    );
    assert_eq!(
        lists.lookup(ip("::ffff:203.0.113.5")),
        Some("local"),
        "v4-mapped v6"
    );
    assert_eq!(lists.lookup(ip("203.0.113.128")), None);
    assert_eq!(lists.lookup(ip("192.0.2.44")), Some("local"));
}

#[test]
fn changed_list_file_is_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("list.netset");
    std::fs::write(&path, "192.0.2.0/24\n").unwrap();
    let mut lists = Blocklists::new();
    lists.add("list", &path).unwrap();
    assert!(lists.reload_if_changed().is_empty());
    assert_eq!(lists.lookup(ip("192.0.2.9")), Some("list"));

    // Same second, different size: the size change alone triggers the reload.
    std::fs::write(&path, "# updated\n198.51.100.0/24\n").unwrap();
    assert!(lists.reload_if_changed().is_empty());
    assert_eq!(lists.lookup(ip("192.0.2.9")), None);
    assert_eq!(lists.lookup(ip("198.51.100.200")), Some("list"));

    std::fs::remove_file(&path).unwrap();
    assert_eq!(lists.reload_if_changed().len(), 1, "missing file reported");
    assert_eq!(
        lists.lookup(ip("198.51.100.200")),
        Some("list"),
        "old contents kept"
    );
}
