//! Threat intelligence the response policy consults before deciding.
//!
//! - [`abuseipdb`]: online reputation (`abuseConfidenceScore` 0–100) with a TTL cache
//!   and a daily quota, so an attack of a million IPs never burns the API key.
//! - [`blocklist`]: offline IP/CIDR lists (plain or FireHOL `.netset`), reloaded when
//!   the file changes; `lookup(ip)` names the list that contains the address.
//!
//! The policy (elsewhere in `respond`) turns a score or a list hit into a decision;
//! by default it bans above a score of 50 ([`abuseipdb::DEFAULT_BAN_SCORE`]).

pub mod abuseipdb;
pub mod blocklist;
pub mod settings;

pub use abuseipdb::{AbuseIpdb, AbuseIpdbConfig, IntelError};
pub use blocklist::{BlocklistError, Blocklists};
