//! `palisade container`: a person's response actions on a container — pause, stop,
//! isolate (disconnect from its networks), restore (undo the last one) — and their
//! history. Every step goes through `respond::isolate::Isolator` with the operator's
//! name and reason and is recorded in the store database.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use palisade::respond::isolate::{ActionRecord, Authority, Isolator};

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Freeze every process of the container (memory stays for investigation).
    Pause(ActionArgs),
    /// Stop the container (SIGTERM, then SIGKILL after Docker's grace period).
    Stop(ActionArgs),
    /// Cut the container off every network it is attached to; it keeps running.
    Isolate(ActionArgs),
    /// Undo the last pause, stop or isolate not yet undone (unpause, start, reconnect).
    Restore(ActionArgs),
    /// The recorded actions on a container, oldest first.
    History(HistoryArgs),
}

#[derive(Debug, Args)]
pub struct ActionArgs {
    /// Container name or id.
    pub name: String,
    /// Why (kept in the record), e.g. "SQL injection from 203.0.113.7".
    #[arg(long)]
    pub reason: String,
    /// The record as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Container name or id.
    pub name: String,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: ContainerCommand, config_path: Option<&Path>) -> Result<i32> {
    let config = super::load_config(config_path)?;
    let api = super::docker_api(&config)?;
    let db = &config.store.path;
    // Store::open creates the database owner-only; the isolator adds its table.
    palisade::store::Store::open(db).with_context(|| format!("opening store {}", db.display()))?;
    let iso = Isolator::open(api, db, false)
        .with_context(|| format!("opening container actions in {}", db.display()))?;
    let by = Authority::Operator(operator());
    let (rec, json): (ActionRecord, bool) = match cmd {
        ContainerCommand::History(args) => return history(&iso, &args),
        ContainerCommand::Pause(a) => (iso.pause(&a.name, &a.reason, &by)?, a.json),
        ContainerCommand::Stop(a) => (iso.stop(&a.name, &a.reason, &by)?, a.json),
        ContainerCommand::Isolate(a) => (iso.isolate(&a.name, &a.reason, &by)?, a.json),
        ContainerCommand::Restore(a) => (restore(&iso, &a, &by)?, a.json),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&rec)?);
    } else {
        println!("{}", describe(&rec));
    }
    Ok(0)
}

/// Who runs the command: the person behind sudo, else the login user.
fn operator() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn restore(iso: &Isolator, args: &ActionArgs, by: &Authority) -> Result<ActionRecord> {
    let history = iso.history(&args.name)?;
    let Some(last) = last_open_action(&history) else {
        bail!(
            "nothing to restore on container {:?}: no pause, stop or isolate is left undone \
             (`palisade container history {}` lists what was done)",
            args.name,
            args.name
        );
    };
    Ok(iso.reverse(last, &args.reason, by)?)
}

/// The newest reversible action no later record undoes.
fn last_open_action(history: &[ActionRecord]) -> Option<i64> {
    history
        .iter()
        .rev()
        .filter(|r| r.action.inverse().is_some())
        .find(|r| !history.iter().any(|u| u.reverses == Some(r.id)))
        .map(|r| r.id)
}

fn history(iso: &Isolator, args: &HistoryArgs) -> Result<i32> {
    let records = iso
        .history(&args.name)
        .context("reading container actions")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(0);
    }
    if records.is_empty() {
        bail!("no recorded actions on container {:?}", args.name);
    }
    for r in &records {
        println!("{}", describe(r));
    }
    Ok(0)
}

fn describe(r: &ActionRecord) -> String {
    let undo = r
        .reverses
        .map(|id| format!(" (undoes #{id})"))
        .unwrap_or_default();
    format!(
        "#{} {} {:<10} {} by {}{}: {}",
        r.id,
        r.at,
        r.action.as_str(),
        r.container,
        r.authority.label(),
        undo,
        r.reason
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade::respond::isolate::Action;

    fn rec(id: i64, action: Action, reverses: Option<i64>) -> ActionRecord {
        ActionRecord {
            id,
            at: jiff::Timestamp::UNIX_EPOCH,
            container: "web".into(),
            container_id: "abc".into(),
            action,
            reason: String::new(),
            authority: Authority::Operator("alice".into()),
            networks: Vec::new(),
            reverses,
        }
    }

    #[test]
    fn restore_picks_the_newest_action_not_yet_undone() {
        let h = [
            rec(1, Action::Disconnect, None),
            rec(2, Action::Pause, None),
            rec(3, Action::Unpause, Some(2)),
        ];
        assert_eq!(
            last_open_action(&h),
            Some(1),
            "pause was undone; the isolation not"
        );
        let all_undone = [rec(1, Action::Stop, None), rec(2, Action::Start, Some(1))];
        assert_eq!(last_open_action(&all_undone), None);
    }
}
