//! Real-kernel tests of the iptables + ipset backend (`cargo test --features
//! firewall-tests --test firewall_iptables`). They need root, `ip` (iproute2),
//! `iptables`/`ip6tables` (iptables) and `ipset` (ipset), and fail with a clear message
//! without them. Everything happens inside the namespaces of [`netns_lab::Lab`].

#![cfg(feature = "firewall-tests")]

mod netns_lab;

use std::thread;
use std::time::Duration;

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use palisade::respond::ban::iptables::Iptables;
use palisade::respond::ban::{Enforcement, FirewallBackend, SystemRunner};
use palisade::respond::decision::Ban;

use netns_lab::{Lab, connects, reachable, run, services};

const TOOLS: &[(&str, &str)] = &[
    ("iptables", "iptables"),
    ("ip6tables", "iptables"),
    ("ipset", "ipset"),
];

fn iptables(lab: &Lab) -> Iptables {
    Iptables::new(Box::new(SystemRunner::in_netns(&lab.fw)))
}

/// What Docker sets up: a `DOCKER-USER` chain that `FORWARD` jumps to first.
fn docker_user_chain(lab: &Lab) {
    run(&[
        "ip",
        "netns",
        "exec",
        &lab.fw,
        "iptables",
        "-N",
        "DOCKER-USER",
    ]);
    let jump = ["iptables", "-I", "FORWARD", "-j", "DOCKER-USER"];
    run(&[&["ip", "netns", "exec", &lab.fw][..], &jump[..]].concat());
}

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

#[test]
fn ipset_ban_covers_input_and_docker_user_until_its_timeout() {
    // Field case 21: host traffic crosses INPUT, container traffic DOCKER-USER.
    let lab = Lab::new(TOOLS);
    docker_user_chain(&lab);
    let [(host, _h), (published, _p)] = services(&lab);
    assert!(
        reachable(&lab.client, host) && reachable(&lab.client, published),
        "lab broken"
    );

    let mut ipt = iptables(&lab);
    let b = ban("10.200.1.2/32", Some(3));
    ipt.apply(std::slice::from_ref(&b), Timestamp::now())
        .unwrap();
    match ipt.verify(b.scope).unwrap() {
        Enforcement::Enforced { paths } => {
            assert_eq!(paths, ["iptables INPUT", "iptables DOCKER-USER"]);
        }
        other => panic!("not enforced: {other:?}"),
    }
    assert!(!connects(&lab.client, host), "host service still reachable");
    assert!(
        !connects(&lab.client, published),
        "published port still reachable"
    );

    thread::sleep(Duration::from_secs(3));
    assert!(
        connects(&lab.client, host),
        "ipset timeout did not end the ban"
    );
    assert!(connects(&lab.client, published));
}

#[test]
fn ipset_unban_and_restart_reconcile() {
    let lab = Lab::new(TOOLS);
    let [(host, _h), _] = services(&lab);
    assert!(reachable(&lab.client, host), "lab broken");

    let keep = ban("10.200.1.2/32", None);
    let stale = ban("198.51.100.3/32", None);
    iptables(&lab)
        .apply(&[keep.clone(), stale.clone()], Timestamp::now())
        .unwrap();
    assert!(!connects(&lab.client, host));

    let mut again = iptables(&lab); // a new process
    let report = again
        .reconcile(std::slice::from_ref(&keep), Timestamp::now())
        .unwrap();
    assert_eq!((report.added, report.removed, report.kept), (0, 1, 1));
    assert!(!connects(&lab.client, host), "ban lost across restart");
    // Setting up twice must not stack duplicate DROP rules.
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.fw, "iptables", "-S", "INPUT"])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&out.stdout);
    assert_eq!(rules.matches("palisade4").count(), 1, "{rules}");

    again.remove(&[keep.scope]).unwrap();
    assert!(connects(&lab.client, host));
}
