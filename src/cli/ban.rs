//! `palisade ban`: add, remove and list bans by hand. Bans are recorded in the store
//! and enforced by the configured backend (`[respond] backend`, `none` by default);
//! the allowlist applies here too (127.0.0.1 is refused unless `--force`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use ipnet::IpNet;

use palisade::respond::Responder;

#[derive(Debug, Subcommand)]
pub enum BanCommand {
    /// Ban an address or range now.
    Add {
        /// IPv4/IPv6 address or CIDR.
        #[arg(value_parser = parse_scope)]
        scope: IpNet,
        /// How long, e.g. `1h`, `7d`; without it the ban is permanent.
        #[arg(long, value_parser = parse_duration_arg)]
        duration: Option<Duration>,
        /// Why (kept with the ban).
        #[arg(long, default_value = "manual ban")]
        reason: String,
        /// Ban even an allowlisted address (loopback, proxies, this host).
        #[arg(long)]
        force: bool,
    },
    /// Lift a ban; the unban is recorded and survives restarts.
    #[command(alias = "unban")]
    Remove {
        #[arg(value_parser = parse_scope)]
        scope: IpNet,
    },
    /// List active bans.
    List {
        #[arg(long)]
        json: bool,
    },
}

fn parse_scope(s: &str) -> Result<IpNet, String> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net);
    }
    s.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?} is not an IP address or CIDR"))
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    palisade::config::parse_duration(s).ok_or_else(|| format!("not a duration: {s:?} (try 1h)"))
}

fn operator() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_default();
    format!(
        "operator:{}",
        if user.is_empty() { "unknown" } else { &user }
    )
}

pub fn run(cmd: BanCommand, config_path: Option<&Path>) -> Result<i32> {
    let config = super::load_config(config_path)?;
    let mut responder = Responder::from_config(
        &config.respond,
        &config.store.path,
        &config.network.allowlist,
        &config.network.trusted_proxies,
    )
    .with_context(|| format!("opening the ban record in {}", config.store.path.display()))?;
    match cmd {
        BanCommand::Add {
            scope,
            duration,
            reason,
            force,
        } => {
            let decisions = responder.ban_add(scope, duration, &reason, force, &operator())?;
            for d in decisions {
                println!("{d}");
            }
        }
        BanCommand::Remove { scope } => {
            let active = responder
                .bans()?
                .iter()
                .any(|b| b.ban.scope == scope || b.ban.scope.contains(&scope.addr()));
            // Recorded either way: a later replay of old lines must not re-ban it.
            let lifted = responder.ban_remove(scope, &operator())?;
            if !active {
                eprintln!("no active ban covers {scope}; the unban is recorded anyway");
                return Ok(1);
            }
            for net in lifted {
                println!("unbanned {net}");
            }
        }
        BanCommand::List { json } => {
            let bans = responder.bans()?;
            if !json
                && !bans.is_empty()
                && config.respond.backend == palisade::respond::config::BackendKind::None
            {
                // The default backend records decisions only; say so where they are
                // listed, not just in the README.
                eprintln!(
                    "note: [respond] backend = \"none\": these bans are recorded, not enforced \
                     (set nftables, iptables or ufw to enforce them)"
                );
            }
            for b in bans {
                if json {
                    println!("{}", serde_json::to_string(&b.ban)?);
                } else {
                    let until = b
                        .ban
                        .until
                        .map_or("permanent".to_string(), |t| t.to_string());
                    let sim = if b.simulated { " (simulated)" } else { "" };
                    println!(
                        "{}  until {until}  {}  by {}{sim}",
                        b.ban.scope, b.ban.reason, b.caused_by
                    );
                }
            }
        }
    }
    Ok(0)
}
