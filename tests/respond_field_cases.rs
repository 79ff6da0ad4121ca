//! Responder behaviour users rely on, pinned to the field cases in
//! /work/shared/FIELD-CASES.md (9, 17, 18, 19, 20, 21, 22, 23, 48). Firewalls here are
//! recording fakes; the real-kernel tests are in tests/firewall_nft.rs.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use palisade::detect::{Detection, DetectionState, Level, RuleMeta};
use palisade::event::Event;
use palisade::respond::ban::nftables::Nftables;
use palisade::respond::ban::store::BanStore;
use palisade::respond::ban::{
    BackendError, CmdOutput, Enforcement, FirewallBackend, ReconcileReport, RecordingRunner,
};
use palisade::respond::config::{Action, RespondConfig, parse_net};
use palisade::respond::decision::{Ban, Decision, DecisionKind};
use palisade::respond::{RespondError, Responder, build_allowlist};

/// A firewall fake: the set of scopes with their expiry, shared with the test.
#[derive(Clone, Default)]
struct Fw {
    state: Arc<Mutex<FwState>>,
    name: &'static str,
}

#[derive(Default)]
struct FwState {
    set: BTreeMap<IpNet, Option<Timestamp>>,
    applies: usize,
    broken_forward_hook: bool,
}

impl Fw {
    fn new(name: &'static str) -> Fw {
        Fw {
            name,
            ..Fw::default()
        }
    }

    fn scopes(&self) -> Vec<String> {
        let st = self.state.lock().unwrap();
        st.set.keys().map(|s| s.to_string()).collect()
    }

    fn until(&self, scope: &str) -> Option<Option<Timestamp>> {
        self.state.lock().unwrap().set.get(&net(scope)).copied()
    }
}

impl FirewallBackend for Fw {
    fn name(&self) -> &'static str {
        self.name
    }

    fn apply(&mut self, bans: &[Ban], now: Timestamp) -> Result<(), BackendError> {
        let mut st = self.state.lock().unwrap();
        st.applies += 1;
        for b in bans.iter().filter(|b| b.active_at(now)) {
            st.set.insert(b.scope, b.until);
        }
        Ok(())
    }

    fn remove(&mut self, scopes: &[IpNet]) -> Result<(), BackendError> {
        let mut st = self.state.lock().unwrap();
        for s in scopes {
            st.set.remove(s);
        }
        Ok(())
    }

    fn reconcile(
        &mut self,
        desired: &[Ban],
        now: Timestamp,
    ) -> Result<ReconcileReport, BackendError> {
        let mut st = self.state.lock().unwrap();
        let live = desired.iter().filter(|b| b.active_at(now));
        st.set = live.map(|b| (b.scope, b.until)).collect();
        Ok(ReconcileReport {
            added: st.set.len(),
            transactions: 1,
            ..Default::default()
        })
    }

    fn list(&mut self) -> Result<Vec<IpNet>, BackendError> {
        Ok(self.state.lock().unwrap().set.keys().copied().collect())
    }

    fn verify(&mut self, scope: IpNet) -> Result<Enforcement, BackendError> {
        let st = self.state.lock().unwrap();
        if st.broken_forward_hook {
            let missing = vec!["inet palisade forward (hook forward)".into()];
            return Ok(Enforcement::NotEnforced { missing });
        }
        if !st.set.contains_key(&scope) {
            let missing = vec![scope.to_string()];
            return Ok(Enforcement::NotEnforced { missing });
        }
        let paths = vec!["input".into(), "forward".into()];
        Ok(Enforcement::Enforced { paths })
    }
}

fn net(s: &str) -> IpNet {
    parse_net(s).unwrap()
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// The field-case profile: failed-login brute force → ban (1 h, escalating).
fn config(extra: &str) -> RespondConfig {
    let text = format!(
        "allowlist_host_addresses = false\n{extra}\n[[policy]]\nname = \"login\"\n\
         rules = [\"login\"]\naction = \"ban\"\n"
    );
    toml::from_str(&text).unwrap()
}

fn responder(cfg: &RespondConfig, store: BanStore, fw: &Fw, now: Timestamp) -> Responder {
    let allow = build_allowlist(cfg, &[], &[]);
    Responder::new(cfg, allow, store, vec![Box::new(fw.clone())]).with_clock(move || now)
}

fn memory() -> BanStore {
    BanStore::open_in_memory().unwrap()
}

fn login(ip: &str, first: Timestamp, last: Timestamp) -> Detection {
    Detection {
        rule: Arc::new(RuleMeta {
            id: "login".into(),
            name: Some("failed-login-brute-force".into()),
            title: "Failed-login brute force".into(),
            level: Level::High,
            tags: vec!["attack.t1110".into()],
            description: String::new(),
        }),
        key: vec![("source.ip".into(), ip.into())],
        count: 3,
        first_seen: first,
        last_seen: last,
        samples: Vec::new(),
        state: DetectionState::Fired,
    }
}

fn bans_in(decisions: &[Decision]) -> Vec<&Ban> {
    decisions
        .iter()
        .filter_map(|d| match &d.kind {
            DecisionKind::Ban(b) => Some(b),
            _ => None,
        })
        .collect()
}

#[test]
fn mapped_ipv6_client_is_banned_once_as_ipv4_and_not_realerted() {
    // Field case 9: `::ffff:192.0.2.77` is 192.0.2.77; banned with an IPv4 rule, and a
    // later detection while banned raises no new ban or alert.
    let cfg = config("");
    let fw = Fw::new("nftables");
    let mut r = responder(&cfg, memory(), &fw, at("2024-05-06T21:14:06Z"));

    let first = r.on_detection(&login(
        "::ffff:192.0.2.77",
        at("2024-05-06T21:14:01Z"),
        at("2024-05-06T21:14:05Z"),
    ));
    let again = r.on_detection(&login(
        "::FFFF:c000:024d",
        at("2024-05-06T21:14:09Z"),
        at("2024-05-06T21:14:09Z"),
    ));

    let bans = bans_in(&first);
    assert_eq!(first.len(), 1);
    assert_eq!(bans[0].scope, net("192.0.2.77/32"));
    assert!(again.is_empty(), "no new decision while banned: {again:?}");
    assert_eq!(fw.scopes(), ["192.0.2.77/32"]);
    assert_eq!(r.stats().suppressed_while_banned, 1);
}

#[test]
fn docker_gateway_address_is_never_banned_and_warned_once() {
    // Field case 18: every client shows as 172.17.0.1 behind Docker NAT.
    let cfg = config("");
    let fw = Fw::new("nftables");
    let t = at("2024-01-13T09:00:01Z");
    let mut r = responder(&cfg, memory(), &fw, t);
    for i in 0..4 {
        let when = t + SignedDuration::from_secs(i);
        assert!(r.on_detection(&login("172.17.0.1", when, when)).is_empty());
    }
    assert!(fw.scopes().is_empty());
    let stats = r.stats();
    assert_eq!(stats.docker_nat_warnings, 1);
    assert_eq!(stats.allowlisted, 4);
}

#[test]
fn manual_unban_survives_restart_and_old_failures_do_not_reban() {
    // Field case 19.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("palisade.db");
    let cfg = config(r#"escalation = ["permanent"]"#);
    let fw = Fw::new("nftables");
    let t = at("2024-02-01T10:00:00Z");
    let unban_time = t + SignedDuration::from_mins(2);
    {
        let mut r = responder(&cfg, BanStore::open(&db).unwrap(), &fw, unban_time);
        let d = r.on_detection(&login("198.51.100.61", t, t));
        assert_eq!(bans_in(&d)[0].until, None);
        let lifted = r.ban_remove(net("198.51.100.61"), "operator:ann").unwrap();
        assert_eq!(lifted, [net("198.51.100.61/32")]);
    }
    let later = t + SignedDuration::from_mins(8);
    let mut r = responder(&cfg, BanStore::open(&db).unwrap(), &fw, later);
    let restored = r.reconcile_on_start().unwrap();
    assert_eq!(restored.restored, 0);
    assert!(fw.scopes().is_empty(), "no firewall rule after restart");
    let ip: IpAddr = "198.51.100.61".parse().unwrap();
    assert_eq!(r.unbanned_at(ip), Some(unban_time));

    // The replay of the last 10 minutes re-detects the old failures: ignored.
    let replayed = r.on_detection(&login("198.51.100.61", t, t + SignedDuration::from_secs(5)));
    assert!(replayed.is_empty(), "{replayed:?}");
    // Failures after the unban count again.
    let fresh = r.on_detection(&login("198.51.100.61", later, later));
    assert_eq!(bans_in(&fresh).len(), 1);
}

#[test]
fn restart_restores_live_bans_with_original_expiry_only() {
    // Field case 20: at T, .88 permanent and .89 for 1 h; .90 for 5 min at T-10 min;
    // stopped at T+1 min, started at T+10 min.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("palisade.db");
    let t = at("2024-03-01T12:00:00Z");
    let fw = Fw::new("nftables");
    let cfg = config("");
    {
        let early = t - SignedDuration::from_mins(10);
        let mut r = responder(&cfg, BanStore::open(&db).unwrap(), &fw, early);
        let five_min = Some(Duration::from_secs(300));
        r.ban_add(net("203.0.113.90"), five_min, "m", false, "api")
            .unwrap();
        let mut r = responder(&cfg, BanStore::open(&db).unwrap(), &fw, t);
        r.ban_add(net("203.0.113.88"), None, "m", false, "operator:ann")
            .unwrap();
        let hour = Some(Duration::from_secs(3600));
        r.ban_add(net("203.0.113.89"), hour, "m", false, "api")
            .unwrap();
    }
    fw.state.lock().unwrap().set.clear(); // the host rebooted: kernel state is gone
    let restart = t + SignedDuration::from_mins(10);
    let mut r = responder(&cfg, BanStore::open(&db).unwrap(), &fw, restart);
    let report = r.reconcile_on_start().unwrap();
    assert_eq!(report.restored, 2);
    assert_eq!(fw.scopes(), ["203.0.113.88/32", "203.0.113.89/32"]);
    assert_eq!(fw.until("203.0.113.88"), Some(None));
    let expected = t + SignedDuration::from_mins(60);
    assert_eq!(fw.until("203.0.113.89"), Some(Some(expected)));
}

#[test]
fn global_allowlist_holds_when_a_rule_has_its_own() {
    // Field case 22: [defaults] allowlist plus a rule list that extends it.
    let mut cfg = config("");
    cfg.policies[0].allowlist = vec![net("198.51.100.7")];
    let global = [net("192.0.2.0/28"), net("2001:db8:1::/48")];
    let allow = build_allowlist(&cfg, &global, &[]);
    let fw = Fw::new("nftables");
    let t = at("2024-04-01T00:00:00Z");
    let backends: Vec<Box<dyn FirewallBackend>> = vec![Box::new(fw.clone())];
    let mut r = Responder::new(&cfg, allow, memory(), backends).with_clock(move || t);
    for i in 0..5 {
        let when = t + SignedDuration::from_secs(i);
        assert!(r.on_detection(&login("192.0.2.5", when, when)).is_empty());
        assert!(
            r.on_detection(&login("2001:db8:1::9", when, when))
                .is_empty()
        );
        assert!(
            r.on_detection(&login("198.51.100.7", when, when))
                .is_empty()
        );
    }
    assert!(fw.scopes().is_empty());
    assert_eq!(r.stats().allowlisted, 15);
    let effective = r.allowlist().effective_for(&["login"]);
    let effective: Vec<String> = effective.iter().map(|e| e.net.to_string()).collect();
    for want in ["192.0.2.0/28", "2001:db8:1::/48", "198.51.100.7/32"] {
        assert!(
            effective.contains(&want.to_string()),
            "{want} missing: {effective:?}"
        );
    }
}

#[test]
fn loopback_from_api_or_peer_is_refused_and_manual_needs_force() {
    // Field case 23.
    let cfg = config("");
    let fw = Fw::new("nftables");
    let mut r = responder(&cfg, memory(), &fw, at("2024-05-01T00:00:00Z"));
    for addr in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
        let err = r.import_ban(net(addr), None, "peer said so", "import:node2");
        assert!(
            matches!(err, Err(RespondError::RefusedImport { .. })),
            "{addr}"
        );
    }
    let err = r
        .ban_add(net("127.0.0.1"), None, "oops", false, "operator:ann")
        .unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    assert!(fw.scopes().is_empty(), "no firewall rule for loopback");
    assert_eq!(r.stats().allowlisted, 4);

    let forced = r
        .ban_add(net("127.0.0.1"), None, "really", true, "operator:ann")
        .unwrap();
    assert_eq!(bans_in(&forced).len(), 1);
}

/// An nft fake whose `list table` answers with `elems` already in `banned4`.
fn nft_runner(elems: Vec<String>) -> RecordingRunner {
    RecordingRunner::new(move |call| {
        if !call.argv.iter().any(|a| a == "list") {
            return CmdOutput::ok("");
        }
        let set = serde_json::json!({"nftables": [
            {"set": {"family": "inet", "table": "palisade", "name": "banned4", "elem": elems}}
        ]});
        CmdOutput::ok(set.to_string())
    })
}

fn persist_500_bans(db: &Path, t: Timestamp) {
    let bans: Vec<Ban> = (0..500u32)
        .map(|i| Ban {
            scope: IpNet::from(IpAddr::V4(std::net::Ipv4Addr::from(0xC633_6400 + i))),
            created: t,
            until: None,
            reason: "r".into(),
            rule_id: "login".into(),
            repeat: 0,
        })
        .collect();
    let mut store = BanStore::open(db).unwrap();
    assert_eq!(store.insert_many(&bans, "rule:login", false).unwrap(), 500);
}

fn nft_responder(
    cfg: &RespondConfig,
    db: &Path,
    runner: RecordingRunner,
    t: Timestamp,
) -> Responder {
    let nft = Nftables::new(Box::new(runner), "nft", -10);
    let allow = build_allowlist(cfg, &[], &[]);
    let store = BanStore::open(db).unwrap();
    Responder::new(cfg, allow, store, vec![Box::new(nft)]).with_clock(move || t)
}

#[test]
fn restart_with_500_bans_is_one_transaction_and_no_new_ban_decisions() {
    // Field case 48: restored in one nft transaction within 2 s, no "new ban" decisions.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("palisade.db");
    let t = at("2024-06-01T00:00:00Z");
    persist_500_bans(&db, t);
    let cfg = config(r#"backend = "nftables""#);

    let runner = nft_runner(Vec::new());
    let calls = runner.calls.clone();
    let mut r = nft_responder(&cfg, &db, runner, t);
    let started = std::time::Instant::now();
    let report = r.reconcile_on_start().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(report.restored, 500);
    assert_eq!(report.backends[0].1.transactions, 1);
    let writes = calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.stdin.is_some())
        .count();
    assert_eq!(writes, 1, "one nft -j -f - for the whole restore");
    assert_eq!(
        r.stats().blocked_ips_total,
        0,
        "restoring is not banning anew"
    );
    assert_eq!(r.stats().active_bans, 500);

    // Restart while the kernel still holds them: nothing removed or re-added.
    let held: Vec<String> = r
        .bans()
        .unwrap()
        .iter()
        .map(|b| b.ban.scope.addr().to_string())
        .collect();
    let mut r = nft_responder(&cfg, &db, nft_runner(held), t);
    let report = r.reconcile_on_start().unwrap();
    let nft = &report.backends[0].1;
    assert_eq!((nft.added, nft.removed, nft.kept), (0, 0, 500));
}

#[test]
fn simulation_records_the_ban_but_enforces_nothing() {
    let cfg = config("simulate = true");
    let fw = Fw::new("nftables");
    let t = at("2024-07-01T00:00:00Z");
    let mut r = responder(&cfg, memory(), &fw, t);
    let d = r.on_detection(&login("192.0.2.20", t, t));
    assert!(d[0].simulated);
    assert_eq!(bans_in(&d).len(), 1);
    assert!(fw.scopes().is_empty());
    assert_eq!(fw.state.lock().unwrap().applies, 0);
    assert_eq!(r.bans().unwrap().len(), 1, "the decision is recorded");
    assert_eq!(r.stats().simulated_bans_total, 1);
    assert_eq!(r.stats().active_bans, 0);
}

#[test]
fn per_policy_simulation_leaves_manual_bans_enforcing() {
    let mut cfg = config("");
    cfg.policies[0].simulate = true;
    let fw = Fw::new("nftables");
    let t = at("2024-07-01T00:00:00Z");
    let mut r = responder(&cfg, memory(), &fw, t);
    assert!(r.on_detection(&login("192.0.2.21", t, t))[0].simulated);
    let manual = r
        .ban_add(net("192.0.2.22"), None, "m", false, "operator:ann")
        .unwrap();
    assert!(!manual[0].simulated);
    assert_eq!(fw.scopes(), ["192.0.2.22/32"]);
}

#[test]
fn repeat_offender_gets_a_longer_ban() {
    let cfg = config("");
    let fw = Fw::new("nftables");
    let t = at("2024-08-01T00:00:00Z");
    let mut r = responder(&cfg, memory(), &fw, t);
    let first = r.on_detection(&login("192.0.2.30", t, t));
    assert_eq!(
        bans_in(&first)[0].until,
        Some(t + SignedDuration::from_hours(1))
    );

    let later = t + SignedDuration::from_hours(2);
    r.expire(later).unwrap();
    assert!(fw.scopes().is_empty(), "expired ban lifted");
    let second = r.on_detection(&login("192.0.2.30", later, later));
    let ban = bans_in(&second)[0];
    assert_eq!(ban.repeat, 1);
    assert_eq!(ban.until, Some(later + SignedDuration::from_hours(24)));
}

#[test]
fn ipv6_client_is_banned_by_its_64() {
    let cfg = config("");
    let fw = Fw::new("nftables");
    let t = at("2024-08-01T00:00:00Z");
    let mut r = responder(&cfg, memory(), &fw, t);
    let d = r.on_detection(&login("2001:db8:7:8:aaaa::1", t, t));
    assert_eq!(bans_in(&d)[0].scope, net("2001:db8:7:8::/64"));
    // Another host of the same /64 is already covered.
    let t2 = t + SignedDuration::from_secs(5);
    assert!(
        r.on_detection(&login("2001:db8:7:8::99", t2, t2))
            .is_empty()
    );
}

#[test]
fn ban_missing_from_a_hook_raises_one_not_enforced_alert() {
    // Field case 21: the self-check must notice a ban that traffic can bypass.
    let cfg = config("");
    let fw = Fw::new("nftables");
    fw.state.lock().unwrap().broken_forward_hook = true;
    let t = at("2024-09-01T00:00:00Z");
    let mut r = responder(&cfg, memory(), &fw, t);
    let d = r.on_detection(&login("192.0.2.14", t, t));
    let alerts: Vec<&str> = d
        .iter()
        .filter_map(|d| match &d.kind {
            DecisionKind::Alert { title, .. } => Some(title.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(alerts, ["ban not enforced"]);
    assert_eq!(r.stats().not_enforced, 1);
}

fn proxied(ip: &str, t: Timestamp) -> Detection {
    let mut d = login(ip, t, t);
    d.samples.push(Event {
        source_ip: Some(ip.parse().unwrap()),
        peer_ip: Some("10.0.0.2".parse().unwrap()),
        ..Event::default()
    });
    d
}

#[test]
fn proxied_client_with_firewall_only_ban_warns_once() {
    // Field case 17: the firewall only sees the proxy.
    let cfg = config("");
    let t = at("2024-10-01T00:00:00Z");
    let fw = Fw::new("nftables");
    let mut r = responder(&cfg, memory(), &fw, t);
    r.on_detection(&proxied("203.0.113.77", t));
    r.on_detection(&proxied("203.0.113.78", t));
    assert_eq!(r.stats().proxy_warnings, 1);
}

#[test]
fn proxied_client_is_banned_at_the_nginx_deny_list_too() {
    // Field case 17, with a proxy-level action configured: no warning, ban written.
    let cfg = config("");
    let t = at("2024-10-01T00:00:00Z");
    let (fw, nginx) = (Fw::new("nftables"), Fw::new("nginx"));
    let backends: Vec<Box<dyn FirewallBackend>> = vec![Box::new(fw), Box::new(nginx.clone())];
    let allow = build_allowlist(&cfg, &[], &[]);
    let mut r = Responder::new(&cfg, allow, memory(), backends).with_clock(move || t);
    r.on_detection(&proxied("203.0.113.79", t));
    assert_eq!(r.stats().proxy_warnings, 0);
    assert_eq!(nginx.scopes(), ["203.0.113.79/32"]);
}

#[test]
fn fired_then_closed_detection_decides_once() {
    let mut cfg = config("");
    cfg.policies[0].action = Action::Alert;
    let fw = Fw::new("nftables");
    let t = at("2024-11-01T00:00:00Z");
    let mut r = responder(&cfg, memory(), &fw, t);
    let mut d = login("192.0.2.40", t, t);
    assert_eq!(r.on_detection(&d).len(), 1);
    d.state = DetectionState::Closed;
    d.last_seen = t + SignedDuration::from_mins(1);
    d.count = 7;
    assert!(r.on_detection(&d).is_empty());
    assert_eq!(r.stats().alerts_total, 1);
}

#[test]
fn manual_ban_inside_an_active_prefix_ban_adds_no_second_rule() {
    let cfg = config("");
    let fw = Fw::new("nftables");
    let t = at("2024-11-02T00:00:00Z");
    let mut r = responder(&cfg, memory(), &fw, t);
    r.ban_add(net("2001:db8:9::/64"), None, "m", false, "api")
        .unwrap();
    let again = r
        .ban_add(net("2001:db8:9::5"), None, "m", false, "api")
        .unwrap();
    assert_eq!(again[0].kind.name(), "nothing");
    assert_eq!(fw.scopes(), ["2001:db8:9::/64"]);
}
