//! The `ufw` backend: `ufw prepend deny from <addr>` per ban. ufw rules have no
//! timeout, so palisade's expiry timer ([`crate::respond::Responder::expire`]) lifts
//! them. `prepend` rather than `insert 1` because `insert 1` fails for an IPv6 rule
//! when the first rule is IPv4; both put the deny above any allow.

use std::collections::HashSet;

use ipnet::IpNet;
use jiff::Timestamp;

use super::live;
use super::{BackendError, Ban, CommandRunner, Enforcement, FirewallBackend, ReconcileReport};

/// The ufw backend.
pub struct Ufw {
    runner: Box<dyn CommandRunner>,
}

impl Ufw {
    pub fn new(runner: Box<dyn CommandRunner>) -> Ufw {
        Ufw { runner }
    }

    fn ufw(&mut self, args: &[String]) -> Result<String, BackendError> {
        let mut argv = vec!["ufw".to_string()];
        argv.extend_from_slice(args);
        Ok(self.runner.run(&argv, None)?.check(&argv)?.stdout)
    }

    fn deny(&mut self, scope: IpNet) -> Result<(), BackendError> {
        let args = ["prepend", "deny", "from"].map(String::from);
        self.ufw(&[&args[..], &[scope.to_string()]].concat())
            .map(drop)
    }

    fn undeny(&mut self, scope: IpNet) -> Result<(), BackendError> {
        let args = ["delete", "deny", "from"].map(String::from);
        self.ufw(&[&args[..], &[scope.to_string()]].concat())
            .map(drop)
    }
}

/// Sources of `DENY` rules in `ufw status` output, e.g.
/// `Anywhere                   DENY        192.0.2.14`.
pub fn parse_status(text: &str) -> Vec<IpNet> {
    text.lines()
        .filter(|l| l.contains("DENY"))
        .filter_map(|l| l.split_whitespace().last())
        .filter_map(crate::respond::config::parse_net)
        .collect()
}

impl FirewallBackend for Ufw {
    fn name(&self) -> &'static str {
        "ufw"
    }

    fn apply(&mut self, bans: &[Ban], now: Timestamp) -> Result<(), BackendError> {
        let present: HashSet<IpNet> = self.list()?.into_iter().collect();
        let todo: Vec<IpNet> = live(bans, now)
            .map(|b| b.scope)
            .filter(|s| !present.contains(s))
            .collect();
        todo.into_iter().try_for_each(|s| self.deny(s))
    }

    fn remove(&mut self, scopes: &[IpNet]) -> Result<(), BackendError> {
        let present: HashSet<IpNet> = self.list()?.into_iter().collect();
        let todo: Vec<IpNet> = scopes
            .iter()
            .filter(|s| present.contains(s))
            .copied()
            .collect();
        todo.into_iter().try_for_each(|s| self.undeny(s))
    }

    fn reconcile(
        &mut self,
        desired: &[Ban],
        now: Timestamp,
    ) -> Result<ReconcileReport, BackendError> {
        let present: HashSet<IpNet> = self.list()?.into_iter().collect();
        let wanted: HashSet<IpNet> = live(desired, now).map(|b| b.scope).collect();
        let extra: Vec<IpNet> = present.difference(&wanted).copied().collect();
        let missing: Vec<IpNet> = wanted.difference(&present).copied().collect();
        for s in &extra {
            self.undeny(*s)?;
        }
        for s in &missing {
            self.deny(*s)?;
        }
        Ok(ReconcileReport {
            added: missing.len(),
            removed: extra.len(),
            kept: wanted.len() - missing.len(),
            transactions: extra.len() + missing.len(),
        })
    }

    fn list(&mut self) -> Result<Vec<IpNet>, BackendError> {
        let out = self.ufw(&["status".to_string()])?;
        Ok(parse_status(&out))
    }

    fn verify(&mut self, scope: IpNet) -> Result<Enforcement, BackendError> {
        if self.list()?.contains(&scope) {
            return Ok(Enforcement::Enforced {
                paths: vec!["ufw-user-input".into()],
            });
        }
        Ok(Enforcement::NotEnforced {
            missing: vec![format!("ufw deny rule for {scope}")],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::ban::{CmdOutput, RecordingRunner};

    #[test]
    fn status_output_yields_denied_sources() {
        let text = "Status: active\n\nTo                         Action      From\n\
                    --                         ------      ----\n\
                    22/tcp                     ALLOW       Anywhere\n\
                    Anywhere                   DENY        192.0.2.14\n\
                    Anywhere (v6)              DENY        2001:db8::/64\n";
        let got: Vec<String> = parse_status(text).iter().map(|n| n.to_string()).collect();
        assert_eq!(got, ["192.0.2.14/32", "2001:db8::/64"]);
    }

    #[test]
    fn ban_is_a_typed_prepend_deny() {
        let runner = RecordingRunner::new(|_| CmdOutput::ok("Status: active\n"));
        let calls = runner.calls.clone();
        let mut ufw = Ufw::new(Box::new(runner));
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let ban = Ban {
            scope: "192.0.2.14/32".parse().unwrap(),
            created: now,
            until: None,
            reason: "r".into(),
            rule_id: String::new(),
            repeat: 0,
        };
        ufw.apply(&[ban], now).unwrap();
        let calls = calls.lock().unwrap();
        assert_eq!(
            calls[1].argv,
            ["ufw", "prepend", "deny", "from", "192.0.2.14/32"]
        );
    }
}
