//! The `none` backend: bans are decided and recorded but nothing is enforced. It is
//! the default until an operator chooses a firewall, so installing palisade can never
//! lock anyone out by itself.

use std::collections::BTreeSet;

use ipnet::IpNet;
use jiff::Timestamp;

use super::{BackendError, Ban, Enforcement, FirewallBackend, ReconcileReport, live};

/// Keeps the set of scopes that would be banned, for `list`.
#[derive(Debug, Default)]
pub struct NoFirewall {
    scopes: BTreeSet<IpNet>,
}

impl FirewallBackend for NoFirewall {
    fn name(&self) -> &'static str {
        "none"
    }

    fn enforces(&self) -> bool {
        false
    }

    fn apply(&mut self, bans: &[Ban], now: Timestamp) -> Result<(), BackendError> {
        self.scopes.extend(live(bans, now).map(|b| b.scope));
        Ok(())
    }

    fn remove(&mut self, scopes: &[IpNet]) -> Result<(), BackendError> {
        for s in scopes {
            self.scopes.remove(s);
        }
        Ok(())
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
            transactions: 0,
        };
        self.scopes = wanted;
        Ok(report)
    }

    fn list(&mut self) -> Result<Vec<IpNet>, BackendError> {
        Ok(self.scopes.iter().copied().collect())
    }

    fn verify(&mut self, _scope: IpNet) -> Result<Enforcement, BackendError> {
        Ok(Enforcement::RecordOnly)
    }
}
