//! The iptables backend: two ipset sets (`palisade4`, `palisade6`, type `hash:net`
//! with timeouts, so bans end in the kernel) matched by one DROP rule each in `INPUT`
//! and, when Docker created it, `DOCKER-USER` (traffic to published container ports
//! crosses `FORWARD`, not `INPUT`; field case 21). Set changes are batched through
//! `ipset restore` with lines written from parsed addresses.

use std::collections::HashSet;
use std::fmt::Write as _;

use ipnet::IpNet;
use jiff::Timestamp;

use super::{
    BackendError, Ban, CommandRunner, Enforcement, FirewallBackend, ReconcileReport, argv, live,
};

const SET4: &str = "palisade4";
const SET6: &str = "palisade6";
const CHAINS: [&str; 2] = ["INPUT", "DOCKER-USER"];
/// ipset's largest timeout (about 24.8 days).
const MAX_TIMEOUT_SECS: u64 = 2_147_483;

/// The iptables + ipset backend.
pub struct Iptables {
    runner: Box<dyn CommandRunner>,
    ready: bool,
}

fn set_of(scope: &IpNet) -> &'static str {
    match scope {
        IpNet::V4(_) => SET4,
        IpNet::V6(_) => SET6,
    }
}

fn match_args(chain: &str, set: &str) -> Vec<String> {
    argv([chain, "-m", "set", "--match-set", set, "src", "-j", "DROP"])
}

/// `ipset restore` lines adding `bans`; timeout 0 is permanent in a timeout set.
pub fn restore_adds(bans: &[&Ban], now: Timestamp) -> String {
    let mut out = String::new();
    for b in bans {
        let secs = match b.remaining_secs(now) {
            Some(0) => continue,
            Some(s) if s <= MAX_TIMEOUT_SECS => s,
            // Permanent, or beyond ipset's limit: palisade's expiry timer removes it.
            _ => 0,
        };
        let _ = writeln!(out, "add {} {} timeout {secs}", set_of(&b.scope), b.scope);
    }
    out
}

fn restore_dels(scopes: &[IpNet]) -> String {
    let mut out = String::new();
    for s in scopes {
        let _ = writeln!(out, "del {} {s}", set_of(s));
    }
    out
}

/// Members listed by `ipset save <set>`: lines `add <set> <addr>[/len] [timeout N]`.
pub fn parse_save(text: &str) -> Vec<IpNet> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next()? == "add").then_some(())?;
            parts.next()?;
            crate::respond::config::parse_net(parts.next()?)
        })
        .collect()
}

impl Iptables {
    pub fn new(runner: Box<dyn CommandRunner>) -> Iptables {
        Iptables {
            runner,
            ready: false,
        }
    }

    fn ok(&mut self, argv: &[String]) -> Result<bool, BackendError> {
        Ok(self.runner.run(argv, None)?.success())
    }

    fn must(&mut self, argv: &[String], stdin: Option<&str>) -> Result<String, BackendError> {
        let out = self.runner.run(argv, stdin.map(str::as_bytes))?;
        Ok(out.check(argv)?.stdout)
    }

    /// The (tool, chain, set) triples that should carry a DROP rule.
    fn hooks(&mut self) -> Result<Vec<(&'static str, &'static str, &'static str)>, BackendError> {
        let mut out = Vec::new();
        for (tool, set) in [("iptables", SET4), ("ip6tables", SET6)] {
            for chain in CHAINS {
                let exists = chain == "INPUT" || self.ok(&argv([tool, "-n", "-L", chain]))?;
                if exists {
                    out.push((tool, chain, set));
                }
            }
        }
        Ok(out)
    }

    fn setup(&mut self) -> Result<(), BackendError> {
        if self.ready {
            return Ok(());
        }
        for (set, family) in [(SET4, "inet"), (SET6, "inet6")] {
            let create = ["ipset", "create", set, "hash:net", "family", family];
            let mut args = argv(create);
            args.extend(argv(["timeout", "0", "-exist"]));
            self.must(&args, None)?;
        }
        for (tool, chain, set) in self.hooks()? {
            let mut check = argv([tool, "-C"]);
            check.extend(match_args(chain, set));
            if self.ok(&check)? {
                continue;
            }
            let mut insert = argv([tool, "-I"]);
            insert.extend(match_args(chain, set));
            insert.insert(3, "1".into());
            self.must(&insert, None)?;
        }
        self.ready = true;
        Ok(())
    }

    fn restore(&mut self, lines: &str) -> Result<(), BackendError> {
        if lines.is_empty() {
            return Ok(());
        }
        self.must(&argv(["ipset", "restore", "-exist"]), Some(lines))
            .map(drop)
    }
}

impl FirewallBackend for Iptables {
    fn name(&self) -> &'static str {
        "iptables"
    }

    fn apply(&mut self, bans: &[Ban], now: Timestamp) -> Result<(), BackendError> {
        self.setup()?;
        let wanted: Vec<&Ban> = live(bans, now).collect();
        self.restore(&restore_adds(&wanted, now))
    }

    fn remove(&mut self, scopes: &[IpNet]) -> Result<(), BackendError> {
        // `-exist` makes deleting an already timed-out member harmless.
        self.restore(&restore_dels(scopes))
    }

    fn reconcile(
        &mut self,
        desired: &[Ban],
        now: Timestamp,
    ) -> Result<ReconcileReport, BackendError> {
        self.setup()?;
        let present: HashSet<IpNet> = self.list()?.into_iter().collect();
        let wanted: Vec<&Ban> = live(desired, now).collect();
        let scopes: HashSet<IpNet> = wanted.iter().map(|b| b.scope).collect();
        let extra: Vec<IpNet> = present.difference(&scopes).copied().collect();
        let missing: Vec<&Ban> = wanted
            .iter()
            .filter(|b| !present.contains(&b.scope))
            .copied()
            .collect();
        let lines = restore_dels(&extra) + &restore_adds(&missing, now);
        self.restore(&lines)?;
        Ok(ReconcileReport {
            added: missing.len(),
            removed: extra.len(),
            kept: wanted.len() - missing.len(),
            transactions: usize::from(!lines.is_empty()),
        })
    }

    fn list(&mut self) -> Result<Vec<IpNet>, BackendError> {
        let mut out = Vec::new();
        for set in [SET4, SET6] {
            let o = self.runner.run(&argv(["ipset", "save", set]), None)?;
            if o.success() {
                out.extend(parse_save(&o.stdout));
            }
        }
        Ok(out)
    }

    fn verify(&mut self, scope: IpNet) -> Result<Enforcement, BackendError> {
        let set = set_of(&scope);
        let mut missing = Vec::new();
        if !self.list()?.contains(&scope) {
            missing.push(format!("member {scope} of ipset {set}"));
        }
        let mut paths = Vec::new();
        for (tool, chain, s) in self.hooks()? {
            if s != set {
                continue;
            }
            let mut check = argv([tool, "-C"]);
            check.extend(match_args(chain, s));
            match self.ok(&check)? {
                true => paths.push(format!("{tool} {chain}")),
                false => missing.push(format!("{tool} {chain} DROP rule")),
            }
        }
        if missing.is_empty() {
            return Ok(Enforcement::Enforced { paths });
        }
        Ok(Enforcement::NotEnforced { missing })
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::respond::ban::{CmdOutput, RecordingRunner};

    #[test]
    fn restore_lines_carry_timeouts_and_permanent_is_zero() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let mk = |s: &str, until| Ban {
            scope: s.parse().unwrap(),
            created: now,
            until,
            reason: String::new(),
            rule_id: String::new(),
            repeat: 0,
        };
        let a = mk("192.0.2.1/32", Some(now + SignedDuration::from_secs(90)));
        let b = mk("2001:db8::/64", None);
        let text = restore_adds(&[&a, &b], now);
        assert_eq!(
            text,
            "add palisade4 192.0.2.1/32 timeout 90\nadd palisade6 2001:db8::/64 timeout 0\n"
        );
    }

    #[test]
    fn save_output_parses() {
        let text = "create palisade4 hash:net family inet hashsize 1024 maxelem 65536 timeout 0\n\
                    add palisade4 192.0.2.1 timeout 80\nadd palisade4 10.0.0.0/8 timeout 0\n";
        let got: Vec<String> = parse_save(text).iter().map(|n| n.to_string()).collect();
        assert_eq!(got, ["192.0.2.1/32", "10.0.0.0/8"]);
    }

    #[test]
    fn docker_user_gets_a_rule_when_the_chain_exists() {
        // Field case 21: container traffic crosses DOCKER-USER, host traffic INPUT.
        let runner = RecordingRunner::new(|c| {
            // -C fails (rule not there yet); every other command succeeds.
            if c.argv.get(1).is_some_and(|a| a == "-C") {
                return CmdOutput {
                    code: Some(1),
                    ..CmdOutput::default()
                };
            }
            CmdOutput::ok("")
        });
        let calls = runner.calls.clone();
        let mut ipt = Iptables::new(Box::new(runner));
        ipt.apply(&[], Timestamp::from_second(1_700_000_000).unwrap())
            .unwrap();
        let inserts: Vec<String> = calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.argv.get(1).is_some_and(|a| a == "-I"))
            .map(|c| format!("{} {}", c.argv[0], c.argv[2]))
            .collect();
        assert_eq!(
            inserts,
            [
                "iptables INPUT",
                "iptables DOCKER-USER",
                "ip6tables INPUT",
                "ip6tables DOCKER-USER"
            ]
        );
    }
}
