//! Real-kernel tests of the nftables backend (`cargo test --features firewall-tests
//! --test firewall_nft`). They need root (CAP_NET_ADMIN and CAP_SYS_ADMIN), `ip`
//! (iproute2) and `nft` (nftables), and fail with a clear message without them.
//!
//! Each test builds its own namespaces ([`netns_lab::Lab`]); palisade's commands run
//! behind `ip netns exec <fw>`, so the host's firewall is never touched.

#![cfg(feature = "firewall-tests")]

mod netns_lab;

use std::thread;
use std::time::Duration;

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use palisade::respond::ban::nftables::Nftables;
use palisade::respond::ban::store::BanStore;
use palisade::respond::ban::{Enforcement, FirewallBackend, SystemRunner};
use palisade::respond::config::RespondConfig;
use palisade::respond::decision::{Ban, DecisionKind};
use palisade::respond::{Responder, build_allowlist, build_backends};

use netns_lab::{Lab, connects, listen, reachable, services};

const NFT: &[(&str, &str)] = &[("nft", "nftables")];

fn ban(scope: &str, secs: Option<i64>) -> Ban {
    let now = Timestamp::now();
    Ban {
        scope: scope.parse::<IpNet>().unwrap(),
        created: now,
        until: secs.map(|s| now + SignedDuration::from_secs(s)),
        reason: "firewall test".into(),
        rule_id: "test".into(),
        repeat: 0,
    }
}

fn nft(lab: &Lab) -> Nftables {
    Nftables::new(Box::new(SystemRunner::in_netns(&lab.fw)), "nft", -10)
}

#[test]
fn banned_client_is_dropped_on_input_and_forward_until_kernel_timeout() {
    let lab = Lab::new(NFT);
    let [(host, _h), (published, _p)] = services(&lab);
    assert!(
        reachable(&lab.client, host) && reachable(&lab.client, published),
        "lab broken"
    );

    let mut nft = nft(&lab);
    let b = ban("10.200.1.2/32", Some(3));
    nft.apply(std::slice::from_ref(&b), Timestamp::now())
        .unwrap();

    // Field case 21: in force on both paths, and the self-check says so.
    match nft.verify(b.scope).unwrap() {
        Enforcement::Enforced { paths } => assert_eq!(paths.len(), 2, "{paths:?}"),
        other => panic!("not enforced: {other:?}"),
    }
    assert!(!connects(&lab.client, host), "host service still reachable");
    assert!(
        !connects(&lab.client, published),
        "published port still reachable"
    );

    // The kernel ends the ban by itself: palisade is not asked to do anything.
    thread::sleep(Duration::from_secs(3));
    assert!(
        connects(&lab.client, host),
        "ban did not time out in the kernel"
    );
    assert!(connects(&lab.client, published));
    assert!(nft.list().unwrap().is_empty());
}

#[test]
fn unban_lets_traffic_through_again_and_v6_prefix_bans_hold() {
    let lab = Lab::new(NFT);
    let [(host, _h), _] = services(&lab);
    let (host6, _h6) = listen(&lab.fw, "[fd00:201::1]:0");
    assert!(
        reachable(&lab.client, host) && reachable(&lab.client, host6),
        "lab broken"
    );

    let mut nft = nft(&lab);
    let bans = [ban("10.200.1.2/32", None), ban("fd00:201::/64", None)];
    nft.apply(&bans, Timestamp::now()).unwrap();
    assert!(!connects(&lab.client, host));
    assert!(!connects(&lab.client, host6));

    nft.remove(&[bans[0].scope, bans[1].scope]).unwrap();
    assert!(connects(&lab.client, host));
    assert!(connects(&lab.client, host6));
    // Removing again (already gone) is harmless.
    nft.remove(&[bans[0].scope]).unwrap();
}

#[test]
fn restart_reconcile_keeps_bans_in_place_and_drops_stale_ones() {
    // Field case 48: a restart re-applies nothing that is already in the kernel.
    let lab = Lab::new(NFT);
    let [(host, _h), _] = services(&lab);
    assert!(reachable(&lab.client, host), "lab broken");
    let keep = [ban("10.200.1.2/32", None), ban("192.0.2.9/32", Some(600))];
    let stale = ban("198.51.100.3/32", None);
    let mut first = nft(&lab);
    first
        .apply(
            &[keep[0].clone(), keep[1].clone(), stale.clone()],
            Timestamp::now(),
        )
        .unwrap();

    let mut second = nft(&lab); // a new process
    let report = second.reconcile(&keep, Timestamp::now()).unwrap();
    assert_eq!((report.added, report.removed, report.kept), (0, 1, 2));
    assert_eq!(report.transactions, 1);
    assert!(!connects(&lab.client, host), "ban lost across restart");
    let mut listed = second.list().unwrap();
    listed.sort();
    assert_eq!(listed, [keep[0].scope, keep[1].scope]);
}

#[test]
fn responder_ban_and_unban_reach_the_kernel() {
    let lab = Lab::new(NFT);
    let [(host, _h), (published, _p)] = services(&lab);
    assert!(
        reachable(&lab.client, host) && reachable(&lab.client, published),
        "lab broken"
    );
    let mut cfg: RespondConfig = toml::from_str("backend = \"nftables\"").unwrap();
    cfg.allowlist_host_addresses = false;
    let backends = build_backends(
        &cfg,
        &["ip".into(), "netns".into(), "exec".into(), lab.fw.clone()],
    );
    let allow = build_allowlist(&cfg, &[], &[]);
    let mut r = Responder::new(&cfg, allow, BanStore::open_in_memory().unwrap(), backends);

    let scope: IpNet = "10.200.1.2/32".parse().unwrap();
    let decisions = r
        .ban_add(scope, None, "test", false, "operator:test")
        .unwrap();
    let kinds: Vec<&str> = decisions.iter().map(|d| d.kind.name()).collect();
    assert_eq!(
        kinds,
        ["ban"],
        "self-check must find the ban enforced: {decisions:?}"
    );
    assert!(matches!(decisions[0].kind, DecisionKind::Ban(_)));
    assert!(!connects(&lab.client, host) && !connects(&lab.client, published));

    r.ban_remove(scope, "operator:test").unwrap();
    assert!(connects(&lab.client, host) && connects(&lab.client, published));
}

#[test]
fn ban_after_someone_deleted_the_table_recreates_it() {
    let lab = Lab::new(NFT);
    let [(host, _h), _] = services(&lab);
    assert!(reachable(&lab.client, host), "lab broken");
    let mut nft = nft(&lab);
    nft.apply(&[ban("192.0.2.50/32", None)], Timestamp::now())
        .unwrap();
    netns_lab::run(&[
        "ip", "netns", "exec", &lab.fw, "nft", "delete", "table", "inet", "palisade",
    ]);

    nft.apply(&[ban("10.200.1.2/32", None)], Timestamp::now())
        .unwrap();
    assert!(
        !connects(&lab.client, host),
        "ban not in force after table re-creation"
    );
}
