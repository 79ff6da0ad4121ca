//! The nginx deny-list writer: bans as `deny <addr>;` lines in an include file, then
//! the configured reload command. For clients that reach the app through a proxy or
//! CDN the firewall only sees the proxy, so the ban has to happen where the real client
//! address is known (field case 17). nginx has no per-line expiry: palisade's timer
//! rewrites the file when bans end.
//!
//! The file is written to a temporary sibling and renamed over the old one, so nginx
//! never reads half a file.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use jiff::Timestamp;

use super::{
    BackendError, Ban, CommandRunner, Enforcement, FirewallBackend, ReconcileReport, live,
};

/// Writes the deny include and reloads nginx.
pub struct NginxDenyList {
    path: PathBuf,
    reload: Vec<String>,
    runner: Box<dyn CommandRunner>,
    scopes: BTreeSet<IpNet>,
}

impl NginxDenyList {
    /// A writer for `path` that runs `reload` (an argument vector; empty = no reload).
    /// Entries already in the file are read back, so a restart keeps them.
    pub fn new(path: &Path, reload: Vec<String>, runner: Box<dyn CommandRunner>) -> Self {
        let scopes = fs::read_to_string(path)
            .map(|t| parse_deny_file(&t))
            .unwrap_or_default();
        NginxDenyList {
            path: path.to_path_buf(),
            reload,
            runner,
            scopes,
        }
    }

    fn write(&mut self) -> Result<(), BackendError> {
        let write_err = |source| BackendError::Write {
            path: self.path.display().to_string(),
            source,
        };
        let tmp = self.path.with_extension("tmp");
        let mut f = fs::File::create(&tmp).map_err(write_err)?;
        f.write_all(render(&self.scopes).as_bytes())
            .map_err(write_err)?;
        f.sync_all().map_err(write_err)?;
        fs::rename(&tmp, &self.path).map_err(write_err)?;
        if self.reload.is_empty() {
            return Ok(());
        }
        let argv = self.reload.clone();
        self.runner.run(&argv, None)?.check(&argv).map(drop)
    }
}

/// The include file's text.
pub fn render(scopes: &BTreeSet<IpNet>) -> String {
    let mut out = String::from("# Written by palisade; changes are overwritten.\n");
    for s in scopes {
        out.push_str(&format!("deny {s};\n"));
    }
    out
}

/// Scopes of `deny <addr>;` lines.
pub fn parse_deny_file(text: &str) -> BTreeSet<IpNet> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("deny ")?.strip_suffix(';'))
        .filter_map(crate::respond::config::parse_net)
        .collect()
}

impl FirewallBackend for NginxDenyList {
    fn name(&self) -> &'static str {
        "nginx"
    }

    fn apply(&mut self, bans: &[Ban], now: Timestamp) -> Result<(), BackendError> {
        let before = self.scopes.len();
        self.scopes.extend(live(bans, now).map(|b| b.scope));
        if self.scopes.len() == before && self.path.exists() {
            return Ok(());
        }
        self.write()
    }

    fn remove(&mut self, scopes: &[IpNet]) -> Result<(), BackendError> {
        let before = self.scopes.len();
        for s in scopes {
            self.scopes.remove(s);
        }
        if self.scopes.len() == before {
            return Ok(());
        }
        self.write()
    }

    fn reconcile(
        &mut self,
        desired: &[Ban],
        now: Timestamp,
    ) -> Result<ReconcileReport, BackendError> {
        let wanted: BTreeSet<IpNet> = live(desired, now).map(|b| b.scope).collect();
        let report = ReconcileReport {
            added: wanted.difference(&self.scopes).count(),
            removed: self.scopes.difference(&wanted).count(),
            kept: wanted.intersection(&self.scopes).count(),
            transactions: 1,
        };
        self.scopes = wanted;
        self.write()?;
        Ok(report)
    }

    fn list(&mut self) -> Result<Vec<IpNet>, BackendError> {
        Ok(self.scopes.iter().copied().collect())
    }

    fn verify(&mut self, scope: IpNet) -> Result<Enforcement, BackendError> {
        let on_disk = fs::read_to_string(&self.path)
            .map(|t| parse_deny_file(&t))
            .unwrap_or_default();
        if on_disk.contains(&scope) {
            let path = format!("nginx deny list {}", self.path.display());
            return Ok(Enforcement::Enforced { paths: vec![path] });
        }
        Ok(Enforcement::NotEnforced {
            missing: vec![format!("deny {scope}; in {}", self.path.display())],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::ban::{CmdOutput, RecordingRunner};

    #[test]
    fn ban_writes_deny_line_and_runs_reload_argv() {
        // Field case 17: proxied clients are stopped at the proxy.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deny.conf");
        let runner = RecordingRunner::new(|_| CmdOutput::ok(""));
        let calls = runner.calls.clone();
        let reload = vec!["nginx".to_string(), "-s".into(), "reload".into()];
        let mut w = NginxDenyList::new(&path, reload.clone(), Box::new(runner));
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let ban = Ban {
            scope: "203.0.113.77/32".parse().unwrap(),
            created: now,
            until: None,
            reason: String::new(),
            rule_id: String::new(),
            repeat: 0,
        };
        w.apply(std::slice::from_ref(&ban), now).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("deny 203.0.113.77/32;\n"), "{text}");
        assert_eq!(calls.lock().unwrap()[0].argv, reload);
        assert!(matches!(
            w.verify(ban.scope).unwrap(),
            Enforcement::Enforced { .. }
        ));

        w.remove(&[ban.scope]).unwrap();
        assert!(!fs::read_to_string(&path).unwrap().contains("203.0.113.77"));
    }
}
