//! Response: turns detections into decisions and carries them out.
//!
//! - [`policy`] maps a detection (rule, level, tags, threat score) to an action: ban,
//!   alert or nothing, with escalating ban lengths for repeat offenders.
//! - [`allowlist`] is the never-ban list every path honours (detections, manual bans,
//!   API and imported decisions).
//! - [`ban`] holds the persistent ban record ([`ban::store::BanStore`]) and the firewall
//!   backends (nftables, iptables + ipset, ufw, none, nginx deny list).
//! - [`alert`] delivers alerts to Slack, webhooks, email and Alertmanager through a
//!   persistent outbox; [`intel`] asks AbuseIPDB and offline blocklists about addresses.
//! - [`isolate`] pauses, stops or disconnects containers, recorded and reversible.
//! - [`decision`] is the record of what was done, for the store, alerts and the API.
//! - [`Responder`] ties them together; the pipeline calls
//!   [`Responder::on_detection`] for every detection and [`Responder::expire`] on a
//!   timer, and [`Responder::reconcile_on_start`] once before reading logs.
//!
//! Start reading at [`Responder`].

pub mod alert;
pub mod allowlist;
pub mod ban;
pub mod config;
pub mod decision;
pub mod intel;
pub mod isolate;
pub mod policy;
mod responder;

pub use responder::{
    RespondError, RespondStats, Responder, RestoreReport, build_allowlist, build_backends,
};
