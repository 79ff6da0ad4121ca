//! Real-kernel tests of the nftables backend (`cargo test --features firewall-tests
//! --test firewall_nft`). They need root (CAP_NET_ADMIN and CAP_SYS_ADMIN), `ip`
//! (iproute2) and `nft` (nftables), and fail with a clear message without them.
//!
//! Each test builds its own three network namespaces and touches nothing outside them:
//!
//! ```text
//!  client 10.200.1.2 ── veth ── 10.200.1.1  fw  10.200.2.1 ── veth ── 10.200.2.2 server
//!         fd00:201::2           fd00:201::1 (routes)
//! ```
//!
//! palisade's rules go into `fw` only (its commands run behind `ip netns exec fw`). A
//! listener in `fw` itself stands for a host service (the `input` path); one in
//! `server`, reached through `fw`, stands for a Docker-published port (the `forward`
//! path; field case 21). Namespaces are deleted by a drop guard, also on failure.

#![cfg(feature = "firewall-tests")]

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use nix::sched::{CloneFlags, setns};
use palisade::respond::ban::nftables::Nftables;
use palisade::respond::ban::store::BanStore;
use palisade::respond::ban::{Enforcement, FirewallBackend, SystemRunner};
use palisade::respond::config::RespondConfig;
use palisade::respond::decision::{Ban, DecisionKind};
use palisade::respond::{Responder, build_allowlist, build_backends};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Runs `argv`, panicking with its stderr (and a hint) on failure.
fn run(argv: &[&str]) {
    let out = Command::new(argv[0]).args(&argv[1..]).output();
    let out = out.unwrap_or_else(|e| {
        panic!(
            "firewall-tests: cannot run {:?}: {e}; install iproute2 and nftables",
            argv[0]
        )
    });
    assert!(
        out.status.success(),
        "firewall-tests: {} failed: {} (these tests need root: CAP_NET_ADMIN + CAP_SYS_ADMIN)",
        argv.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn require_tools() {
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = Command::new("which").arg(tool).output();
        let ok = found.is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "firewall-tests need `{tool}` on PATH: apt-get install {package}"
        );
    }
}

/// Three namespaces wired client — fw — server; deleted on drop.
struct Lab {
    client: String,
    fw: String,
    server: String,
}

impl Lab {
    fn new() -> Lab {
        require_tools();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("pal{}x{n}", std::process::id());
        let lab = Lab {
            client: format!("{tag}c"),
            fw: format!("{tag}f"),
            server: format!("{tag}s"),
        };
        for ns in [&lab.client, &lab.fw, &lab.server] {
            run(&["ip", "netns", "add", ns]);
        }
        lab.wire();
        lab
    }

    fn wire(&self) {
        let (c, f, s) = (self.client.as_str(), self.fw.as_str(), self.server.as_str());
        run(&[
            "ip", "-n", c, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", f,
        ]);
        run(&[
            "ip", "-n", s, "link", "add", "v0", "type", "veth", "peer", "name", "v2", "netns", f,
        ]);
        let addrs = [
            (c, "v0", "10.200.1.2/24"),
            (f, "v1", "10.200.1.1/24"),
            (f, "v2", "10.200.2.1/24"),
            (s, "v0", "10.200.2.2/24"),
        ];
        for (ns, dev, addr) in addrs {
            run(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
        }
        for (ns, dev, addr) in [(c, "v0", "fd00:201::2/64"), (f, "v1", "fd00:201::1/64")] {
            run(&[
                "ip", "-n", ns, "-6", "addr", "add", addr, "dev", dev, "nodad",
            ]);
        }
        for (ns, dev) in [(c, "v0"), (f, "v1"), (f, "v2"), (s, "v0")] {
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        for ns in [c, f, s] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        run(&[
            "ip",
            "-n",
            c,
            "route",
            "add",
            "default",
            "via",
            "10.200.1.1",
        ]);
        run(&[
            "ip",
            "-n",
            s,
            "route",
            "add",
            "default",
            "via",
            "10.200.2.1",
        ]);
        run(&[
            "ip",
            "netns",
            "exec",
            f,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ]);
    }

    fn nft(&self) -> Nftables {
        Nftables::new(Box::new(SystemRunner::in_netns(&self.fw)), "nft", -10)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.client, &self.fw, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `f` on a thread that has entered namespace `ns` (setns affects one thread).
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    thread::spawn(move || {
        let fd = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        setns(&fd, CloneFlags::CLONE_NEWNET).expect("setns needs CAP_SYS_ADMIN");
        f()
    })
    .join()
    .expect("namespace thread panicked")
}

/// A TCP listener in `ns` at `addr` that accepts (and drops) connections until the
/// returned flag is set.
fn listen(ns: &str, addr: &str) -> (SocketAddr, Arc<AtomicBool>) {
    let stop = Arc::new(AtomicBool::new(false));
    let addr: SocketAddr = addr.parse().unwrap();
    let listener = in_netns(ns, move || {
        TcpListener::bind(addr).expect("bind in namespace")
    });
    listener.set_nonblocking(true).unwrap();
    let bound = listener.local_addr().unwrap();
    let flag = stop.clone();
    thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            let _ = listener.accept();
            thread::sleep(Duration::from_millis(20));
        }
    });
    (bound, stop)
}

/// Whether a TCP connection from `ns` to `to` is established within 1 s.
fn connects(ns: &str, to: SocketAddr) -> bool {
    in_netns(ns, move || {
        TcpStream::connect_timeout(&to, Duration::from_secs(1)).is_ok()
    })
}

/// Waits up to 5 s for the lab to pass traffic (links and neighbour discovery settle).
fn reachable(ns: &str, to: SocketAddr) -> bool {
    (0..5).any(|_| connects(ns, to))
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

/// Host service (input path) and "published container port" (forward path).
fn services(lab: &Lab) -> [(SocketAddr, Arc<AtomicBool>); 2] {
    [
        listen(&lab.fw, "10.200.1.1:0"),
        listen(&lab.server, "10.200.2.2:0"),
    ]
}

#[test]
fn banned_client_is_dropped_on_input_and_forward_until_kernel_timeout() {
    let lab = Lab::new();
    let [(host, _h), (published, _p)] = services(&lab);
    assert!(
        reachable(&lab.client, host) && reachable(&lab.client, published),
        "lab broken"
    );

    let mut nft = lab.nft();
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
    let lab = Lab::new();
    let [(host, _h), _] = services(&lab);
    let (host6, _h6) = listen(&lab.fw, "[fd00:201::1]:0");
    assert!(
        reachable(&lab.client, host) && reachable(&lab.client, host6),
        "lab broken"
    );

    let mut nft = lab.nft();
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
    let lab = Lab::new();
    let [(host, _h), _] = services(&lab);
    assert!(reachable(&lab.client, host), "lab broken");
    let keep = [ban("10.200.1.2/32", None), ban("192.0.2.9/32", Some(600))];
    let stale = ban("198.51.100.3/32", None);
    let mut first = lab.nft();
    first
        .apply(
            &[keep[0].clone(), keep[1].clone(), stale.clone()],
            Timestamp::now(),
        )
        .unwrap();

    let mut second = lab.nft(); // a new process
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
    let lab = Lab::new();
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
