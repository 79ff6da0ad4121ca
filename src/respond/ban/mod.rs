//! Bans: the persistent record ([`store::BanStore`]) and the backends that enforce
//! bans ([`FirewallBackend`]): [`nftables`], [`iptables`] (+ ipset), [`ufw`], [`none`]
//! (record only, the default) and the [`nginx`] deny-list writer for proxied clients.
//!
//! Backends drive their tools through a [`CommandRunner`] with typed argument vectors
//! (never a shell string built from log text). The runner can carry a prefix such as
//! `ip netns exec <ns>` so the firewall tests run inside a network namespace, and tests
//! swap in a [`RecordingRunner`] to inspect what would be run.

pub mod iptables;
pub mod nftables;
pub mod nginx;
pub mod none;
pub mod store;
pub mod ufw;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use jiff::Timestamp;
use thiserror::Error;

pub use crate::respond::decision::Ban;

/// Errors of a firewall backend.
#[derive(Debug, Error)]
pub enum BackendError {
    #[error("cannot run {program}: {source} (is it installed and on PATH?)")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} failed (exit {code:?}): {stderr}")]
    Failed {
        program: String,
        code: Option<i32>,
        stderr: String,
    },
    #[error("cannot read {program} output: {message}")]
    Output { program: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Whether a ban is in force where traffic passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enforcement {
    /// The ban is in place on every listed path (e.g. the input and forward hooks).
    Enforced { paths: Vec<String> },
    /// Something is missing: the listed paths have no rule or no set element.
    NotEnforced { missing: Vec<String> },
    /// The backend records only (`none`).
    RecordOnly,
}

/// What a reconcile changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Bans put in place that were missing.
    pub added: usize,
    /// Rules found that no active ban wants (lifted while palisade was down).
    pub removed: usize,
    /// Bans already in place and left alone.
    pub kept: usize,
    /// Firewall transactions (nft invocations) used; restoring is one batch.
    pub transactions: usize,
}

/// A firewall (or deny-list) that enforces bans.
pub trait FirewallBackend: Send {
    /// Short name for logs: `nftables`, `iptables`, `ufw`, `none`, `nginx`.
    fn name(&self) -> &'static str;

    /// Whether bans placed here stop traffic (`false` for `none`).
    fn enforces(&self) -> bool {
        true
    }

    /// Puts bans in place, in one batch where the tool allows. `now` turns expiry
    /// times into kernel timeouts; bans already over are skipped.
    fn apply(&mut self, bans: &[Ban], now: Timestamp) -> Result<(), BackendError>;

    /// Lifts bans of these scopes; scopes not in place are ignored.
    fn remove(&mut self, scopes: &[IpNet]) -> Result<(), BackendError>;

    /// Makes the firewall hold exactly `desired` (on start), without lifting and
    /// re-adding bans that are already in place.
    fn reconcile(
        &mut self,
        desired: &[Ban],
        now: Timestamp,
    ) -> Result<ReconcileReport, BackendError>;

    /// The scopes currently in place.
    fn list(&mut self) -> Result<Vec<IpNet>, BackendError>;

    /// Checks that a ban of `scope` is in force on every path this backend covers.
    fn verify(&mut self, scope: IpNet) -> Result<Enforcement, BackendError>;
}

/// What a command printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmdOutput {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// A successful run that printed `stdout`.
    pub fn ok(stdout: impl Into<String>) -> CmdOutput {
        CmdOutput {
            code: Some(0),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    /// Turns a non-zero exit into [`BackendError::Failed`].
    pub fn check(self, argv: &[String]) -> Result<CmdOutput, BackendError> {
        if self.success() {
            return Ok(self);
        }
        Err(BackendError::Failed {
            program: argv.join(" "),
            code: self.code,
            stderr: self.stderr.trim().to_string(),
        })
    }
}

/// Runs a program with typed arguments and optional standard input.
pub trait CommandRunner: Send {
    fn run(&mut self, argv: &[String], stdin: Option<&[u8]>) -> Result<CmdOutput, BackendError>;
}

/// Runs commands on this system, optionally behind a prefix such as
/// `["ip", "netns", "exec", "palisade-test"]`.
#[derive(Debug, Clone, Default)]
pub struct SystemRunner {
    pub prefix: Vec<String>,
}

impl SystemRunner {
    /// Runs commands inside the network namespace `ns` (tests).
    pub fn in_netns(ns: &str) -> SystemRunner {
        let prefix = ["ip", "netns", "exec", ns].map(String::from).to_vec();
        SystemRunner { prefix }
    }
}

impl CommandRunner for SystemRunner {
    fn run(&mut self, argv: &[String], stdin: Option<&[u8]>) -> Result<CmdOutput, BackendError> {
        let full: Vec<&String> = self.prefix.iter().chain(argv).collect();
        let Some((program, args)) = full.split_first() else {
            return Ok(CmdOutput::ok(""));
        };
        let spawn_err = |source| BackendError::Spawn {
            program: program.to_string(),
            source,
        };
        let mut child = Command::new(program)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(data).map_err(spawn_err)?;
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        Ok(CmdOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// One recorded invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    pub argv: Vec<String>,
    pub stdin: Option<String>,
}

type Reply = Box<dyn FnMut(&RecordedCall) -> CmdOutput + Send>;

/// A runner that records calls and answers from a closure: for tests that check
/// what a backend would run, without touching the system firewall.
pub struct RecordingRunner {
    pub calls: Arc<Mutex<Vec<RecordedCall>>>,
    reply: Reply,
}

impl RecordingRunner {
    /// Records calls; every call succeeds with the output `reply` gives.
    pub fn new(reply: impl FnMut(&RecordedCall) -> CmdOutput + Send + 'static) -> Self {
        RecordingRunner {
            calls: Arc::default(),
            reply: Box::new(reply),
        }
    }
}

impl CommandRunner for RecordingRunner {
    fn run(&mut self, argv: &[String], stdin: Option<&[u8]>) -> Result<CmdOutput, BackendError> {
        let call = RecordedCall {
            argv: argv.to_vec(),
            stdin: stdin.map(|s| String::from_utf8_lossy(s).into_owned()),
        };
        let out = (self.reply)(&call);
        self.calls.lock().expect("recording lock").push(call);
        Ok(out)
    }
}

/// Builds an argument vector from string-likes.
pub(crate) fn argv<const N: usize>(parts: [&str; N]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Scopes of `bans` still in force at `now`.
pub(crate) fn live(bans: &[Ban], now: Timestamp) -> impl Iterator<Item = &Ban> {
    bans.iter().filter(move |b| b.active_at(now))
}
