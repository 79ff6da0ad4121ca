//! [`Responder`]: policy + allowlist + ban store + backends. One instance per daemon
//! (or scan); it is not shared between threads, the pipeline owns it.
//!
//! Life cycle: [`Responder::reconcile_on_start`] once (restores bans in one batch, no
//! notifications), then [`Responder::on_detection`] per detection and
//! [`Responder::expire`] on a timer. There is deliberately no "stop" step: firewall
//! state is left in place when palisade exits (nftables/ipset elements keep their own
//! timeouts), so a restart neither opens a gap nor re-adds everything (field case 48).
//!
//! Ban start and expiry come from event time (the detection's last event), so a
//! replay after a restart computes the same expiry as the live run did; kernel timeouts
//! are the time left from the wall clock.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use thiserror::Error;
use tracing::{info, warn};

use super::allowlist::{
    AllowEntry, AllowSource, Allowlist, DOCKER_DEFAULT_BRIDGE, parse_client_ip,
};
use super::ban::nftables::Nftables;
use super::ban::store::{BanStore, BanStoreError, StoredBan};
use super::ban::{
    BackendError, Enforcement, FirewallBackend, ReconcileReport, SystemRunner, iptables, nginx,
    none, ufw,
};
use super::config::{Action, BackendKind, RespondConfig};
use super::decision::{Ban, Decision, DecisionKind, IdGen};
use super::policy::{Policy, PolicyEntry};
use crate::detect::{Detection, Level};

/// Most addresses remembered for "log the refusal once"; beyond it refusals are only
/// counted, so a botnet inside an allowlisted range cannot grow this set without bound.
const MAX_LOGGED_REFUSALS: usize = 4096;
/// Most detection episodes remembered for de-duplication (fired, then closed).
const MAX_EPISODES: usize = 65_536;

/// Errors of the responder.
#[derive(Debug, Error)]
pub enum RespondError {
    #[error(transparent)]
    Store(#[from] BanStoreError),
    #[error("firewall backend {backend}: {source}")]
    Backend {
        backend: &'static str,
        source: BackendError,
    },
    #[error(
        "refusing to ban {scope}: it is on the never-ban list ({entry} via {why}); \
             use --force to ban it anyway"
    )]
    Refused {
        scope: IpNet,
        entry: IpNet,
        why: AllowSource,
    },
    #[error("refusing to ban {scope}: it is on the never-ban list ({entry} via {why})")]
    RefusedImport {
        scope: IpNet,
        entry: IpNet,
        why: AllowSource,
    },
}

/// Counters for the metrics module (no addresses in them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RespondStats {
    /// Bans put in place (enforced, not simulated) since start: `blocked_ips_total`.
    pub blocked_ips_total: u64,
    /// Bans recorded in simulation mode.
    pub simulated_bans_total: u64,
    /// Alerts decided.
    pub alerts_total: u64,
    /// Detections or requests refused because the address is allowlisted.
    pub allowlisted: u64,
    /// Detections for an address already banned (no new ban, no new alert).
    pub suppressed_while_banned: u64,
    /// Detections whose events all predate a manual unban of their address.
    pub before_unban: u64,
    /// Post-ban self-checks that found the ban not in force.
    pub not_enforced: u64,
    /// Backend commands that failed.
    pub backend_errors: u64,
    /// "Client IPs look NATed by Docker" warnings (at most 1).
    pub docker_nat_warnings: u64,
    /// "Firewall-only ban of a proxied client has no effect" warnings (at most 1).
    pub proxy_warnings: u64,
    /// Bans in force now (set by [`Responder::stats`]).
    pub active_bans: u64,
}

/// What [`Responder::reconcile_on_start`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Active bans read from the store.
    pub restored: usize,
    /// Per backend: its name and what its reconcile changed.
    pub backends: Vec<(&'static str, ReconcileReport)>,
}

type Clock = Box<dyn Fn() -> Timestamp + Send>;

/// Turns detections and operator commands into recorded, enforced decisions.
pub struct Responder {
    policy: Policy,
    allowlist: Allowlist,
    store: BanStore,
    backends: Vec<Box<dyn FirewallBackend>>,
    simulate: bool,
    repeat_window: Duration,
    prefix4: u8,
    prefix6: u8,
    ids: IdGen,
    stats: RespondStats,
    clock: Clock,
    refusals_logged: HashSet<IpNet>,
    episodes: HashSet<(String, String, Timestamp)>,
    warned_docker: bool,
    warned_proxy: bool,
}

/// The never-ban list from configuration: loopback, the host's own addresses (unless
/// switched off), trusted proxies, Docker networks (the default bridge always),
/// `global` (`[network]`/`[defaults]` allowlists) plus `[respond] allowlist`, and the
/// per-policy lists, which extend the global list for the rules they name.
pub fn build_allowlist(cfg: &RespondConfig, global: &[IpNet], trusted: &[IpNet]) -> Allowlist {
    let mut list = Allowlist::new();
    if cfg.allowlist_host_addresses {
        match super::allowlist::host_addresses() {
            Ok(ips) => ips
                .into_iter()
                .for_each(|ip| list.add(ip.into(), AllowSource::HostAddress)),
            Err(e) => {
                warn!(error = %e, "Cannot read this host's addresses; they are not allowlisted")
            }
        }
    }
    trusted
        .iter()
        .for_each(|n| list.add(*n, AllowSource::TrustedProxy));
    let bridge: IpNet = DOCKER_DEFAULT_BRIDGE.parse().expect("valid CIDR");
    list.add(bridge, AllowSource::DockerNetwork);
    cfg.docker_networks
        .iter()
        .for_each(|n| list.add(*n, AllowSource::DockerNetwork));
    global
        .iter()
        .chain(&cfg.allowlist)
        .for_each(|n| list.add(*n, AllowSource::Global));
    for p in cfg.policies.iter().filter(|p| !p.allowlist.is_empty()) {
        for rule in &p.rules {
            list.add_for_rule(rule, &p.allowlist);
        }
        list.add_for_rule(&format!("policy:{}", p.name), &p.allowlist);
    }
    list
}

/// The backends `cfg` asks for, running their tools behind `prefix` (empty in
/// production; `ip netns exec <ns>` in tests). The nginx writer comes second.
pub fn build_backends(cfg: &RespondConfig, prefix: &[String]) -> Vec<Box<dyn FirewallBackend>> {
    let runner = || {
        Box::new(SystemRunner {
            prefix: prefix.to_vec(),
        })
    };
    let mut out: Vec<Box<dyn FirewallBackend>> = vec![match cfg.backend {
        BackendKind::None => Box::new(none::NoFirewall::default()),
        BackendKind::Nftables => {
            let nft = cfg.nftables.nft.to_string_lossy();
            Box::new(Nftables::new(runner(), &nft, cfg.nftables.priority))
        }
        BackendKind::Iptables => Box::new(iptables::Iptables::new(runner())),
        BackendKind::Ufw => Box::new(ufw::Ufw::new(runner())),
    }];
    if let Some(n) = &cfg.nginx {
        out.push(Box::new(nginx::NginxDenyList::new(
            &n.deny_file,
            n.reload.clone(),
            runner(),
        )));
    }
    out
}

impl Responder {
    /// A responder over an open store and chosen backends.
    pub fn new(
        cfg: &RespondConfig,
        allowlist: Allowlist,
        store: BanStore,
        backends: Vec<Box<dyn FirewallBackend>>,
    ) -> Responder {
        Responder {
            policy: Policy::from_config(cfg),
            allowlist,
            store,
            backends,
            simulate: cfg.simulate,
            repeat_window: cfg.repeat_window,
            prefix4: cfg.ipv4_prefix.min(32),
            prefix6: cfg.ipv6_prefix.min(128),
            ids: IdGen::default(),
            stats: RespondStats::default(),
            clock: Box::new(Timestamp::now),
            refusals_logged: HashSet::new(),
            episodes: HashSet::new(),
            warned_docker: false,
            warned_proxy: false,
        }
    }

    /// Opens the store at `db` and builds everything from configuration.
    pub fn from_config(
        cfg: &RespondConfig,
        db: &Path,
        global_allowlist: &[IpNet],
        trusted_proxies: &[IpNet],
    ) -> Result<Responder, RespondError> {
        let store = BanStore::open(db)?;
        let allowlist = build_allowlist(cfg, global_allowlist, trusted_proxies);
        Ok(Responder::new(
            cfg,
            allowlist,
            store,
            build_backends(cfg, &[]),
        ))
    }

    /// Replaces the wall clock (tests, replays).
    pub fn with_clock(mut self, clock: impl Fn() -> Timestamp + Send + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// The never-ban list in force.
    pub fn allowlist(&self) -> &Allowlist {
        &self.allowlist
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Decides about one detection; see [`Responder::on_detection_scored`].
    pub fn on_detection(&mut self, d: &Detection) -> Vec<Decision> {
        self.on_detection_scored(d, None)
    }

    /// Decides about one detection, with the key address's threat-intel score when
    /// known. Returns the decisions taken (empty when the policy says nothing, the
    /// address is allowlisted, already banned, or this episode was already handled).
    pub fn on_detection_scored(&mut self, d: &Detection, score: Option<f64>) -> Vec<Decision> {
        let Some(entry) = self.policy.decide(d, score).cloned() else {
            return Vec::new();
        };
        if entry.action == Action::Nothing || !self.first_time(d) {
            return Vec::new();
        }
        let ip = d.key_value("source.ip").and_then(parse_client_ip);
        if ip.is_some_and(|ip| !self.may_act_on(d, &entry, ip)) {
            return Vec::new();
        }
        match (entry.action, ip) {
            (Action::Ban, Some(ip)) => self.ban_for_detection(d, &entry, ip),
            _ => vec![self.alert_for(d, entry.simulate)],
        }
    }

    /// The per-address gates, in order: already banned (field case 9), events older
    /// than a manual unban (field case 19), Docker NAT (field case 18), allowlist
    /// (field cases 22, 23).
    fn may_act_on(&mut self, d: &Detection, entry: &PolicyEntry, ip: IpAddr) -> bool {
        if self.banned_at(ip, d.last_seen) {
            self.stats.suppressed_while_banned += 1;
            return false;
        }
        if self.unbanned_at(ip).is_some_and(|at| d.last_seen <= at) {
            // Built from events an operator already forgave (replay after restart).
            self.stats.before_unban += 1;
            return false;
        }
        self.note_docker(ip);
        let policy_key = format!("policy:{}", entry.name);
        let mut keys = vec![d.rule.id.as_str(), policy_key.as_str()];
        keys.extend(d.rule.name.as_deref());
        let scope = self.scope_for(ip);
        let Some(hit) = self.allowlist.check(scope, &keys) else {
            return true;
        };
        self.refuse(scope, &hit);
        false
    }

    /// Whether this detection episode (rule, key, start) is new; a closed detection
    /// after a fired one for the same episode gets no second decision.
    fn first_time(&mut self, d: &Detection) -> bool {
        if self.episodes.len() >= MAX_EPISODES {
            self.episodes.clear();
        }
        self.episodes
            .insert((d.rule.id.clone(), d.key_string(), d.first_seen))
    }

    fn banned_at(&self, ip: IpAddr, at: Timestamp) -> bool {
        match self.store.active_for(ip, at) {
            Ok(ban) => ban.is_some(),
            Err(e) => {
                warn!(error = %e, "Cannot read the ban store; treating the address as not banned");
                false
            }
        }
    }

    /// The range a ban of `ip` covers: the address for v4, its /64 (by default) for v6.
    pub fn scope_for(&self, ip: IpAddr) -> IpNet {
        let ip = ip.to_canonical();
        let len = if ip.is_ipv4() {
            self.prefix4
        } else {
            self.prefix6
        };
        IpNet::new(ip, len).map_or(IpNet::from(ip), |n| n.trunc())
    }

    fn note_docker(&mut self, ip: IpAddr) {
        if self.warned_docker || !self.allowlist.is_docker(ip) {
            return;
        }
        self.warned_docker = true;
        self.stats.docker_nat_warnings += 1;
        warn!(
            client = %ip,
            "Client IPs look NATed by Docker: detections name a Docker network address, \
             which is never banned; publish ports so source addresses are kept \
             (rootless Docker: the slirp4netns port driver)"
        );
    }

    fn refuse(&mut self, scope: IpNet, hit: &AllowEntry) {
        self.stats.allowlisted += 1;
        if self.refusals_logged.len() >= MAX_LOGGED_REFUSALS {
            return;
        }
        if self.refusals_logged.insert(scope) {
            warn!(%scope, entry = %hit.net, source = %hit.source,
                  "Not banning an allowlisted address (logged once per address)");
        }
    }

    fn alert_for(&mut self, d: &Detection, simulated: bool) -> Decision {
        self.stats.alerts_total += 1;
        let summary = format!(
            "{} ({}) for {}: {} events",
            d.rule.title,
            d.rule.level,
            d.key_string(),
            d.count
        );
        self.decision(
            DecisionKind::Alert {
                rule_id: d.rule.id.clone(),
                title: d.rule.title.clone(),
                level: d.rule.level,
                key: d.key_string(),
                summary,
            },
            caused_by(d),
            simulated || self.simulate,
            d.last_seen,
        )
    }

    fn decision(&mut self, kind: DecisionKind, by: String, sim: bool, at: Timestamp) -> Decision {
        Decision {
            id: self.ids.next(at),
            kind,
            caused_by: by,
            simulated: sim,
            created_at: at,
        }
    }

    fn ban_for_detection(
        &mut self,
        d: &Detection,
        entry: &PolicyEntry,
        ip: IpAddr,
    ) -> Vec<Decision> {
        let scope = self.scope_for(ip);
        let since = d.last_seen - SignedDuration::try_from(self.repeat_window).unwrap_or_default();
        let repeat = self.store.repeat_count(scope, since).unwrap_or_else(|e| {
            warn!(error = %e, "Cannot count earlier bans; treating as a first offence");
            0
        });
        let ban = Ban {
            scope,
            created: d.last_seen,
            until: entry
                .ban_length(repeat)
                .map(|len| d.last_seen + to_signed(len)),
            reason: d.rule.title.clone(),
            rule_id: d.rule.id.clone(),
            repeat,
        };
        let simulated = self.simulate || entry.simulate;
        self.note_proxied(d);
        self.record_and_enforce(ban, caused_by(d), simulated)
    }

    fn note_proxied(&mut self, d: &Detection) {
        let proxied = d
            .samples
            .iter()
            .any(|e| e.peer_ip.is_some_and(|p| Some(p) != e.source_ip));
        let proxy_action = self.backends.iter().any(|b| b.name() == "nginx");
        if !proxied || proxy_action || self.warned_proxy {
            return;
        }
        self.warned_proxy = true;
        self.stats.proxy_warnings += 1;
        warn!(rule = %d.rule.id,
              "Clients arrive through a proxy, so a firewall-only ban has no effect on them; \
               configure [respond.nginx] to ban at the proxy");
    }

    /// Stores a ban, enforces it unless simulated, checks it took, and returns the ban
    /// decision plus a "ban not enforced" alert when the check fails.
    fn record_and_enforce(&mut self, ban: Ban, by: String, simulated: bool) -> Vec<Decision> {
        if let Err(e) = self.store.insert(&ban, &by, simulated) {
            warn!(error = %e, scope = %ban.scope, "Cannot record a ban; enforcing it anyway");
        }
        let at = ban.created;
        if simulated {
            self.stats.simulated_bans_total += 1;
            return vec![self.decision(DecisionKind::Ban(ban), by, true, at)];
        }
        self.stats.blocked_ips_total += 1;
        let missing = self.enforce(&ban);
        let mut out = vec![self.decision(DecisionKind::Ban(ban.clone()), by, false, at)];
        if !missing.is_empty() {
            out.push(self.not_enforced_alert(&ban, &missing, at));
        }
        out
    }

    /// Applies `ban` on every backend and verifies it; returns what is missing.
    fn enforce(&mut self, ban: &Ban) -> Vec<String> {
        let now = self.now();
        let mut missing = Vec::new();
        for b in &mut self.backends {
            let result = b
                .apply(std::slice::from_ref(ban), now)
                .and_then(|()| b.verify(ban.scope));
            match result {
                Ok(Enforcement::NotEnforced { missing: m }) => missing.extend(m),
                Ok(Enforcement::Enforced { paths }) => {
                    info!(scope = %ban.scope, backend = b.name(), paths = ?paths, "Ban enforced");
                }
                Ok(Enforcement::RecordOnly) => {}
                Err(e) => {
                    self.stats.backend_errors += 1;
                    missing.push(format!("{}: {e}", b.name()));
                }
            }
        }
        missing
    }

    fn not_enforced_alert(&mut self, ban: &Ban, missing: &[String], at: Timestamp) -> Decision {
        self.stats.not_enforced += 1;
        self.stats.alerts_total += 1;
        warn!(scope = %ban.scope, missing = ?missing, "Ban not enforced");
        let summary = format!(
            "ban of {} not enforced: missing {}",
            ban.scope,
            missing.join("; ")
        );
        self.decision(
            DecisionKind::Alert {
                rule_id: "palisade.ban-not-enforced".into(),
                title: "ban not enforced".into(),
                level: Level::High,
                key: format!("source.ip={}", ban.scope),
                summary,
            },
            "palisade".into(),
            false,
            at,
        )
    }

    /// A manual ban (`palisade ban add`). `duration` `None` is permanent. An
    /// allowlisted scope (127.0.0.1 included) is refused unless `force` (field case 23).
    pub fn ban_add(
        &mut self,
        scope: IpNet,
        duration: Option<Duration>,
        reason: &str,
        force: bool,
        by: &str,
    ) -> Result<Vec<Decision>, RespondError> {
        let scope = super::allowlist::normalize_net(scope);
        if let Some(hit) = self.allowlist.check(scope, &[]) {
            if !force {
                self.refuse(scope, &hit);
                return Err(RespondError::Refused {
                    scope,
                    entry: hit.net,
                    why: hit.source,
                });
            }
            warn!(%scope, entry = %hit.net, "Banning an allowlisted address because of --force");
        }
        Ok(self.manual_ban(scope, duration, reason, by))
    }

    /// A ban that arrived from the API or a peer: the allowlist always applies, there
    /// is no force (field case 23).
    pub fn import_ban(
        &mut self,
        scope: IpNet,
        duration: Option<Duration>,
        reason: &str,
        source: &str,
    ) -> Result<Vec<Decision>, RespondError> {
        let scope = super::allowlist::normalize_net(scope);
        if let Some(hit) = self.allowlist.check(scope, &[]) {
            self.refuse(scope, &hit);
            return Err(RespondError::RefusedImport {
                scope,
                entry: hit.net,
                why: hit.source,
            });
        }
        Ok(self.manual_ban(scope, duration, reason, source))
    }

    fn manual_ban(
        &mut self,
        scope: IpNet,
        dur: Option<Duration>,
        reason: &str,
        by: &str,
    ) -> Vec<Decision> {
        let now = self.now();
        if let Some(held) = self.covering_ban(scope, now) {
            // A second, overlapping element would also be refused by nft interval sets.
            let reason = format!("{scope} is already banned by {held}");
            let by = by.to_string();
            return vec![self.decision(DecisionKind::Nothing { reason }, by, false, now)];
        }
        let ban = Ban {
            scope,
            created: now,
            until: dur.map(|d| now + to_signed(d)),
            reason: reason.to_string(),
            rule_id: String::new(),
            repeat: 0,
        };
        self.record_and_enforce(ban, by.to_string(), self.simulate)
    }

    /// An active ban whose range contains all of `scope`.
    fn covering_ban(&self, scope: IpNet, now: Timestamp) -> Option<IpNet> {
        let active = self.store.active(now).ok()?;
        active
            .into_iter()
            .map(|s| s.ban.scope)
            .find(|held| held.contains(&scope))
    }

    /// Lifts every active ban covering `ip` or equal to `scope` (`palisade unban`),
    /// records who did it so a restart does not bring the ban back (field case 19).
    /// Returns the scopes lifted.
    pub fn ban_remove(&mut self, scope: IpNet, by: &str) -> Result<Vec<IpNet>, RespondError> {
        let scope = super::allowlist::normalize_net(scope);
        let now = self.now();
        let mut scopes: Vec<IpNet> = self
            .store
            .active(now)?
            .into_iter()
            .map(|s| s.ban.scope)
            .filter(|s| *s == scope || s.contains(&scope.addr()))
            .collect();
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            scopes.push(scope);
        }
        for s in &scopes {
            self.store.remove(*s, now, by)?;
        }
        self.remove_everywhere(&scopes)?;
        Ok(scopes)
    }

    fn remove_everywhere(&mut self, scopes: &[IpNet]) -> Result<(), RespondError> {
        for b in &mut self.backends {
            b.remove(scopes).map_err(|source| RespondError::Backend {
                backend: b.name(),
                source,
            })?;
        }
        Ok(())
    }

    /// Bans in force now.
    pub fn bans(&self) -> Result<Vec<StoredBan>, RespondError> {
        Ok(self.store.active(self.now())?)
    }

    /// When an operator last lifted a ban covering `ip`: the pipeline ignores that
    /// key's events from before it (field case 19).
    pub fn unbanned_at(&self, ip: IpAddr) -> Option<Timestamp> {
        self.store.unbanned_at(ip)
    }

    /// Every manual unban (scope, when), for [`crate::pipeline::Pipeline::set_forgiven`]:
    /// a restart's replay must not count the failures an operator already forgave.
    pub fn unbans(&self) -> Vec<(IpNet, Timestamp)> {
        self.store.unbans().to_vec()
    }

    /// Ends bans whose time is up at `now` and lifts them from backends without kernel
    /// timeouts (ufw, nginx). Returns the bans ended.
    pub fn expire(&mut self, now: Timestamp) -> Result<Vec<Ban>, RespondError> {
        let ended = self.store.expire(now)?;
        if ended.is_empty() {
            return Ok(ended);
        }
        let scopes: Vec<IpNet> = ended.iter().map(|b| b.scope).collect();
        self.remove_everywhere(&scopes)?;
        Ok(ended)
    }

    /// Puts the firewall in line with the store on start: active, enforced bans are
    /// restored in one batch with their original expiry; bans that ended while palisade
    /// was down or were lifted by an operator are not. Produces no decisions, so no
    /// "new ban" notifications (field cases 20, 48); logs one "restored N bans".
    pub fn reconcile_on_start(&mut self) -> Result<RestoreReport, RespondError> {
        let now = self.now();
        self.store.expire(now)?;
        let desired: Vec<Ban> = self
            .store
            .active(now)?
            .into_iter()
            .filter(|s| !s.simulated)
            .map(|s| s.ban)
            .collect();
        let mut report = RestoreReport {
            restored: desired.len(),
            backends: Vec::new(),
        };
        for b in &mut self.backends {
            let r = b
                .reconcile(&desired, now)
                .map_err(|source| RespondError::Backend {
                    backend: b.name(),
                    source,
                })?;
            report.backends.push((b.name(), r));
        }
        info!(restored = desired.len(), "Restored {} bans", desired.len());
        Ok(report)
    }

    /// Counters, with `active_bans` read from the store now.
    pub fn stats(&self) -> RespondStats {
        let mut s = self.stats.clone();
        s.active_bans = self
            .bans()
            .map_or(0, |b| b.iter().filter(|s| !s.simulated).count() as u64);
        s
    }
}

fn caused_by(d: &Detection) -> String {
    format!("rule:{} {}", d.rule.id, d.key_string())
}

fn to_signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}
