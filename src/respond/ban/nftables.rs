//! nftables backend: palisade's own table `inet palisade` with the sets `banned4` and
//! `banned6` (`flags interval, timeout`) and two chains, hooked on `input` (traffic to
//! the host, e.g. sshd) and `forward` (traffic to Docker-published ports, which never
//! crosses `input`; field case 21). Each element carries its own timeout, so a ban ends
//! in the kernel even if palisade dies.
//!
//! `nft` is driven with JSON documents built with `serde_json` from parsed addresses
//! (`nft -j -f -`), never from text. Every change is one document, which nft applies as
//! one atomic transaction: restoring 500 bans on start is one invocation (field case
//! 48). Stopping palisade leaves the table alone, so nothing is flushed and re-added.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use jiff::Timestamp;
use serde_json::{Value, json};
use tracing::warn;

use super::{
    BackendError, Ban, CommandRunner, Enforcement, FirewallBackend, ReconcileReport, live,
};

/// The table palisade owns.
pub const TABLE: &str = "palisade";
const FAMILY: &str = "inet";
const SET4: &str = "banned4";
const SET6: &str = "banned6";
/// Longest per-element timeout given to the kernel: older kernels keep set timeouts in
/// 32-bit milliseconds (about 49 days).
const MAX_TIMEOUT_SECS: u64 = u32::MAX as u64 / 1000;
/// The chains and the hook each sits on.
const CHAINS: [(&str, &str); 2] = [("input", "input"), ("forward", "forward")];

/// The nftables backend.
pub struct Nftables {
    runner: Box<dyn CommandRunner>,
    nft: String,
    priority: i32,
    /// Whether this process already created the table, sets and chains.
    ready: bool,
}

impl Nftables {
    /// A backend running `nft` (path or name) through `runner`; chains hook at
    /// `priority` (below 0 runs before the distribution's and Docker's filter chains).
    pub fn new(runner: Box<dyn CommandRunner>, nft: &str, priority: i32) -> Nftables {
        Nftables {
            runner,
            nft: nft.to_string(),
            priority,
            ready: false,
        }
    }

    /// Creates what is missing (table, sets, chains) and replaces palisade's chain
    /// rules. `add` of an existing table or set is a no-op, so set elements (the bans)
    /// are kept; the chain flush and re-add happen in the same transaction.
    pub fn setup_commands(&self) -> Vec<Value> {
        let mut cmds = vec![json!({"add": {"table": {"family": FAMILY, "name": TABLE}}})];
        for (name, ty) in [(SET4, "ipv4_addr"), (SET6, "ipv6_addr")] {
            cmds.push(json!({"add": {"set": {
                "family": FAMILY, "table": TABLE, "name": name, "type": ty,
                "flags": ["interval", "timeout"],
            }}}));
        }
        for (chain, hook) in CHAINS {
            cmds.push(json!({"add": {"chain": {
                "family": FAMILY, "table": TABLE, "name": chain, "type": "filter",
                "hook": hook, "prio": self.priority, "policy": "accept",
            }}}));
            cmds.push(
                json!({"flush": {"chain": {"family": FAMILY, "table": TABLE, "name": chain}}}),
            );
            for (proto, set) in [("ip", SET4), ("ip6", SET6)] {
                cmds.push(drop_rule(chain, proto, set));
            }
        }
        cmds
    }

    /// The whole document for one transaction.
    pub fn document(cmds: Vec<Value>) -> Value {
        json!({ "nftables": cmds })
    }

    fn run_json(&mut self, cmds: Vec<Value>) -> Result<(), BackendError> {
        let doc = Nftables::document(cmds).to_string();
        let argv = vec![self.nft.clone(), "-j".into(), "-f".into(), "-".into()];
        self.runner.run(&argv, Some(doc.as_bytes()))?.check(&argv)?;
        Ok(())
    }

    /// Reads the table; `None` when it does not exist yet.
    fn read_table(&mut self) -> Result<Option<Value>, BackendError> {
        let argv = [self.nft.as_str(), "-j", "list", "table", FAMILY, TABLE];
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let out = self.runner.run(&argv, None)?;
        if !out.success() && out.stderr.contains("No such file") {
            return Ok(None);
        }
        let out = out.check(&argv)?;
        let doc: Value = serde_json::from_str(&out.stdout).map_err(|e| BackendError::Output {
            program: self.nft.clone(),
            message: e.to_string(),
        })?;
        Ok(Some(doc))
    }

    fn with_setup(&self, mut cmds: Vec<Value>) -> Vec<Value> {
        if self.ready {
            return cmds;
        }
        let mut all = self.setup_commands();
        all.append(&mut cmds);
        all
    }
}

fn drop_rule(chain: &str, proto: &str, set: &str) -> Value {
    json!({"add": {"rule": {
        "family": FAMILY, "table": TABLE, "chain": chain,
        "comment": "palisade bans",
        "expr": [
            {"match": {"op": "==",
                       "left": {"payload": {"protocol": proto, "field": "saddr"}},
                       "right": format!("@{set}")}},
            {"drop": null},
        ],
    }}})
}

fn set_of(scope: &IpNet) -> &'static str {
    match scope {
        IpNet::V4(_) => SET4,
        IpNet::V6(_) => SET6,
    }
}

/// The element value: a bare address for a single host, else a prefix.
fn elem_value(scope: &IpNet) -> Value {
    if scope.prefix_len() == scope.max_prefix_len() {
        return json!(scope.addr().to_string());
    }
    json!({"prefix": {"addr": scope.network().to_string(), "len": scope.prefix_len()}})
}

/// `add element` commands for `bans`, grouped per set; bans over at `now` are left out.
pub fn add_elements(bans: &[&Ban], now: Timestamp) -> Vec<Value> {
    let mut cmds = Vec::new();
    for set in [SET4, SET6] {
        let elems: Vec<Value> = bans
            .iter()
            .filter(|b| set_of(&b.scope) == set)
            .filter_map(|b| {
                let val = elem_value(&b.scope);
                match b.remaining_secs(now) {
                    Some(0) => None,
                    Some(secs) if secs <= MAX_TIMEOUT_SECS => {
                        Some(json!({"elem": {"val": val, "timeout": secs}}))
                    }
                    // Permanent, or longer than older kernels accept: no kernel timeout;
                    // palisade's expiry timer removes it.
                    _ => Some(json!({"elem": {"val": val}})),
                }
            })
            .collect();
        if !elems.is_empty() {
            cmds.push(json!({"add": {"element": {
                "family": FAMILY, "table": TABLE, "name": set, "elem": elems,
            }}}));
        }
    }
    cmds
}

fn delete_elements(scopes: &[IpNet]) -> Vec<Value> {
    let mut cmds = Vec::new();
    for set in [SET4, SET6] {
        let elems: Vec<Value> = scopes
            .iter()
            .filter(|s| set_of(s) == set)
            .map(elem_value)
            .collect();
        if !elems.is_empty() {
            cmds.push(json!({"delete": {"element": {
                "family": FAMILY, "table": TABLE, "name": set, "elem": elems,
            }}}));
        }
    }
    cmds
}

/// Parses one listed set element: `"1.2.3.4"`, `{"prefix": …}` or `{"elem": {"val": …}}`.
fn parse_elem(v: &Value) -> Option<IpNet> {
    if let Some(s) = v.as_str() {
        return s.parse::<IpAddr>().ok().map(IpNet::from);
    }
    if let Some(inner) = v.get("elem") {
        return parse_elem(inner.get("val")?);
    }
    let p = v.get("prefix")?;
    let addr: IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
    let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
    IpNet::new(addr, len).ok()
}

/// The elements of both ban sets in a `nft -j list table` document.
pub fn listed_elements(doc: &Value) -> Vec<IpNet> {
    let items = doc.get("nftables").and_then(Value::as_array);
    let sets = items.into_iter().flatten().filter_map(|i| i.get("set"));
    let ours = sets.filter(|s| matches!(s.get("name").and_then(Value::as_str), Some(SET4 | SET6)));
    ours.flat_map(|s| {
        s.get("elem")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    })
    .filter_map(|e| parse_elem(&e))
    .collect()
}

/// Chains of the table that carry a drop rule matching `@set`, as `chain (hook …)`.
fn enforcing_paths(doc: &Value, set: &str) -> Vec<String> {
    let items: Vec<&Value> = doc
        .get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let want = format!("@{set}");
    let mut paths = Vec::new();
    for (chain, hook) in CHAINS {
        let hooked = items.iter().filter_map(|i| i.get("chain")).any(|c| {
            c.get("name").and_then(Value::as_str) == Some(chain)
                && c.get("hook").and_then(Value::as_str) == Some(hook)
        });
        let ruled = items.iter().filter_map(|i| i.get("rule")).any(|r| {
            r.get("chain").and_then(Value::as_str) == Some(chain)
                && r.to_string().contains(&format!("\"{want}\""))
                && r.to_string().contains("\"drop\"")
        });
        if hooked && ruled {
            paths.push(format!("{FAMILY} {TABLE} {chain} (hook {hook})"));
        }
    }
    paths
}

impl FirewallBackend for Nftables {
    fn name(&self) -> &'static str {
        "nftables"
    }

    fn apply(&mut self, bans: &[Ban], now: Timestamp) -> Result<(), BackendError> {
        let wanted: Vec<&Ban> = live(bans, now).collect();
        let elems = add_elements(&wanted, now);
        let cmds = self.with_setup(elems.clone());
        if cmds.is_empty() {
            return Ok(());
        }
        let was_ready = self.ready;
        self.ready = false;
        match self.run_json(cmds) {
            Ok(()) => {}
            // Someone removed our table (`nft flush ruleset`, a firewalld reload): set
            // it up again once in the same transaction as the bans.
            Err(e) if was_ready => {
                warn!(error = %e, "nftables table missing or changed; recreating it");
                self.run_json(self.with_setup(elems))?;
            }
            Err(e) => return Err(e),
        }
        self.ready = true;
        Ok(())
    }

    fn remove(&mut self, scopes: &[IpNet]) -> Result<(), BackendError> {
        // Deleting an absent element fails the whole transaction: delete only what
        // is there (it may have timed out in the kernel already).
        let present: HashSet<IpNet> = self.list()?.into_iter().collect();
        let gone: Vec<IpNet> = scopes
            .iter()
            .filter(|s| present.contains(s))
            .copied()
            .collect();
        let cmds = delete_elements(&gone);
        if cmds.is_empty() {
            return Ok(());
        }
        self.run_json(cmds)
    }

    fn reconcile(
        &mut self,
        desired: &[Ban],
        now: Timestamp,
    ) -> Result<ReconcileReport, BackendError> {
        let present: HashSet<IpNet> = self.list()?.into_iter().collect();
        let wanted: Vec<&Ban> = live(desired, now).collect();
        let wanted_scopes: HashSet<IpNet> = wanted.iter().map(|b| b.scope).collect();
        let extra: Vec<IpNet> = present.difference(&wanted_scopes).copied().collect();
        let missing: Vec<&Ban> = wanted
            .iter()
            .filter(|b| !present.contains(&b.scope))
            .copied()
            .collect();

        let mut cmds = self.setup_commands();
        cmds.extend(delete_elements(&extra));
        cmds.extend(add_elements(&missing, now));
        self.run_json(cmds)?;
        self.ready = true;
        Ok(ReconcileReport {
            added: missing.len(),
            removed: extra.len(),
            kept: wanted.len() - missing.len(),
            transactions: 1,
        })
    }

    fn list(&mut self) -> Result<Vec<IpNet>, BackendError> {
        Ok(self
            .read_table()?
            .map(|doc| listed_elements(&doc))
            .unwrap_or_default())
    }

    fn verify(&mut self, scope: IpNet) -> Result<Enforcement, BackendError> {
        let Some(doc) = self.read_table()? else {
            return Ok(Enforcement::NotEnforced {
                missing: vec![format!("table {FAMILY} {TABLE}")],
            });
        };
        let set = set_of(&scope);
        let mut missing = Vec::new();
        if !listed_elements(&doc).contains(&scope) {
            missing.push(format!("element {scope} in set {set}"));
        }
        let paths = enforcing_paths(&doc, set);
        for (chain, hook) in CHAINS {
            if !paths.iter().any(|p| p.contains(&format!(" {chain} "))) {
                missing.push(format!("{FAMILY} {TABLE} {chain} (hook {hook})"));
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

    fn ban(scope: &str, until_h: Option<i64>, now: Timestamp) -> Ban {
        Ban {
            scope: scope.parse().unwrap(),
            created: now,
            until: until_h.map(|h| now + SignedDuration::from_hours(h)),
            reason: "r".into(),
            rule_id: "x".into(),
            repeat: 0,
        }
    }

    #[test]
    fn elements_carry_remaining_seconds_and_expired_ones_are_left_out() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let a = ban("192.0.2.1/32", Some(1), now);
        let b = ban("2001:db8::/64", None, now);
        let c = ban("192.0.2.2/32", Some(-1), now);
        let cmds = add_elements(&[&a, &b, &c], now);
        let text = Value::Array(cmds).to_string();
        assert!(
            text.contains(r#"{"elem":{"timeout":3600,"val":"192.0.2.1"}}"#),
            "{text}"
        );
        assert!(
            text.contains(r#""prefix":{"addr":"2001:db8::","len":64}"#),
            "{text}"
        );
        assert!(!text.contains("192.0.2.2"), "{text}");
    }

    #[test]
    fn very_long_ban_gets_no_kernel_timeout_instead_of_an_overflow() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let year = ban("192.0.2.1/32", Some(24 * 365), now);
        let text = Value::Array(add_elements(&[&year], now)).to_string();
        assert!(!text.contains("timeout"), "{text}");
    }

    #[test]
    fn listing_parses_plain_prefix_and_timed_elements() {
        let doc: Value = serde_json::from_str(
            r#"{"nftables":[{"set":{"name":"banned4","elem":[
              {"elem":{"val":"10.1.2.3","timeout":60,"expires":59}},
              {"prefix":{"addr":"10.9.0.0","len":16}}, "10.0.0.7"]}},
              {"set":{"name":"other","elem":["10.5.5.5"]}}]}"#,
        )
        .unwrap();
        let got: Vec<String> = listed_elements(&doc)
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(got, ["10.1.2.3/32", "10.9.0.0/16", "10.0.0.7/32"]);
    }

    #[test]
    fn restoring_500_bans_is_one_nft_transaction() {
        // Field case 48: restore in one batch, not one command per ban.
        let runner = RecordingRunner::new(|call| {
            if call.argv.contains(&"list".to_string()) {
                return CmdOutput {
                    code: Some(1),
                    stdout: String::new(),
                    stderr: "Error: No such file or directory".into(),
                };
            }
            CmdOutput::ok("")
        });
        let calls = runner.calls.clone();
        let mut nft = Nftables::new(Box::new(runner), "nft", -10);
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let bans: Vec<Ban> = (0..500u32)
            .map(|i| {
                let ip = std::net::Ipv4Addr::from(0xC633_6400 + i); // 198.51.100.0 + i
                ban(&format!("{ip}/32"), Some(1), now)
            })
            .collect();
        let report = nft.reconcile(&bans, now).unwrap();
        assert_eq!(report.added, 500);
        let calls = calls.lock().unwrap();
        let writes: Vec<_> = calls.iter().filter(|c| c.stdin.is_some()).collect();
        assert_eq!(writes.len(), 1, "one nft -j -f - invocation");
        let doc: Value = serde_json::from_str(writes[0].stdin.as_ref().unwrap()).unwrap();
        let elems: usize = doc["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c.pointer("/add/element/elem"))
            .map(|e| e.as_array().unwrap().len())
            .sum();
        assert_eq!(elems, 500);
        assert_eq!(writes[0].argv, ["nft", "-j", "-f", "-"]);
    }

    #[test]
    fn flushed_ruleset_is_set_up_again_on_the_next_ban() {
        // First write succeeds, second fails (table gone), third (with setup) succeeds.
        let mut n = 0;
        let runner = RecordingRunner::new(move |_| {
            n += 1;
            match n {
                2 => CmdOutput {
                    code: Some(1),
                    stderr: "Error: No such file or directory".into(),
                    ..CmdOutput::default()
                },
                _ => CmdOutput::ok(""),
            }
        });
        let calls = runner.calls.clone();
        let mut nft = Nftables::new(Box::new(runner), "nft", -10);
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        nft.apply(&[ban("192.0.2.1/32", Some(1), now)], now)
            .unwrap();
        nft.apply(&[ban("192.0.2.2/32", Some(1), now)], now)
            .unwrap();
        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 3);
        let last = calls[2].stdin.as_deref().unwrap();
        assert!(
            last.contains(r#""table":{"family":"inet","name":"palisade"}"#),
            "{last}"
        );
        assert!(last.contains("192.0.2.2"));
    }

    #[test]
    fn setup_hooks_both_input_and_forward() {
        // Field case 21: Docker-published ports pass through forward, not input.
        let nft = Nftables::new(
            Box::new(RecordingRunner::new(|_| CmdOutput::ok(""))),
            "nft",
            -10,
        );
        let text = Value::Array(nft.setup_commands()).to_string();
        assert!(text.contains(r#""hook":"input""#));
        assert!(text.contains(r#""hook":"forward""#));
        assert!(
            !text.contains(r#""flush":{"set""#),
            "bans must not be flushed"
        );
    }
}
