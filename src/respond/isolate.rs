//! Container isolation: pause, stop or cut a container off its networks — and undo it.
//!
//! Every step is taken by an [`Authority`]: a person (`Operator`) or a rule
//! (`Policy`). Policy-driven isolation is refused unless `allow_policy_isolation` is
//! set, so no detection alone can take a service down by default. Each step is stored
//! as an [`ActionRecord`] in the SQLite table `container_actions` with its reason and
//! authority; a disconnect records the networks (and aliases) it removed, so
//! [`Isolator::reverse`] can reconnect them. Pause ↔ unpause and stop ↔ start are the
//! other reversible pairs. Disconnecting is the least destructive isolating step: the
//! process keeps running (state and memory stay for investigation) but can no longer
//! reach or be reached by its peers.

use std::path::Path;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::sources::docker::api::{ApiError, DockerApi, encode_query};

/// Who asked for an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Authority {
    /// A person's command; the name is who they are.
    Operator(String),
    /// A response policy; the id is the rule that triggered it.
    Policy(String),
}

impl Authority {
    /// `operator:<name>` or `policy:<rule id>`, as stored.
    pub fn label(&self) -> String {
        match self {
            Authority::Operator(n) => format!("operator:{n}"),
            Authority::Policy(r) => format!("policy:{r}"),
        }
    }

    fn parse(s: &str) -> Authority {
        match s.split_once(':') {
            Some(("policy", r)) => Authority::Policy(r.to_owned()),
            Some((_, n)) => Authority::Operator(n.to_owned()),
            None => Authority::Operator(s.to_owned()),
        }
    }
}

/// What was done to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Pause,
    Stop,
    Disconnect,
    Unpause,
    Start,
    Reconnect,
}

impl Action {
    /// The stored name, e.g. `disconnect`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Stop => "stop",
            Action::Disconnect => "disconnect",
            Action::Unpause => "unpause",
            Action::Start => "start",
            Action::Reconnect => "reconnect",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        [
            Action::Pause,
            Action::Stop,
            Action::Disconnect,
            Action::Unpause,
            Action::Start,
            Action::Reconnect,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }

    /// The action that undoes this one.
    pub fn inverse(self) -> Option<Action> {
        match self {
            Action::Pause => Some(Action::Unpause),
            Action::Stop => Some(Action::Start),
            Action::Disconnect => Some(Action::Reconnect),
            _ => None,
        }
    }
}

/// A network a container was attached to, as needed to attach it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    pub name: String,
    pub network_id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// One action taken on a container, as stored in `container_actions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub id: i64,
    pub at: Timestamp,
    pub container: String,
    pub container_id: String,
    pub action: Action,
    pub reason: String,
    pub authority: Authority,
    /// For `disconnect` / `reconnect`: the networks involved.
    pub networks: Vec<NetworkAttachment>,
    /// For undo actions: the record undone.
    pub reverses: Option<i64>,
}

/// What went wrong isolating a container.
#[derive(Debug, thiserror::Error)]
pub enum IsolateError {
    #[error(
        "policy {0:?} may not isolate containers: set allow_policy_isolation to let \
         response policies do it, or have an operator run the command"
    )]
    PolicyNotAllowed(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("container actions store: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("no container action with id {0}")]
    NoSuchRecord(i64),
    #[error("action {id} ({action}) cannot be reversed")]
    NotReversible { id: i64, action: &'static str },
    #[error("container {0} is attached to no network that can be disconnected")]
    NoNetworks(String),
}

/// Takes and records container actions.
pub struct Isolator {
    api: DockerApi,
    db: Connection,
    allow_policy_isolation: bool,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS container_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    container TEXT NOT NULL,
    container_id TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    authority TEXT NOT NULL,
    networks TEXT NOT NULL,
    reverses INTEGER
)";

impl Isolator {
    /// Opens (creating if needed) the `container_actions` table in the SQLite file at
    /// `db_path`.
    pub fn open(
        api: DockerApi,
        db_path: &Path,
        allow_policy_isolation: bool,
    ) -> Result<Isolator, IsolateError> {
        if let Err(e) = crate::store::create_owner_only(db_path) {
            tracing::warn!(error = %e, "Cannot make the action record owner-only");
        }
        let db = Connection::open(db_path)?;
        db.execute_batch(SCHEMA)?;
        Ok(Isolator {
            api,
            db,
            allow_policy_isolation,
        })
    }

    /// Pauses every process of the container (freezer cgroup); memory stays intact.
    pub fn pause(
        &self,
        container: &str,
        reason: &str,
        by: &Authority,
    ) -> Result<ActionRecord, IsolateError> {
        self.simple(container, Action::Pause, reason, by, None)
    }

    /// Stops the container (SIGTERM, then SIGKILL after Docker's grace period).
    pub fn stop(
        &self,
        container: &str,
        reason: &str,
        by: &Authority,
    ) -> Result<ActionRecord, IsolateError> {
        self.simple(container, Action::Stop, reason, by, None)
    }

    /// Disconnects the container from every network it is attached to, recording
    /// them for [`Isolator::reverse`].
    pub fn disconnect(
        &self,
        container: &str,
        reason: &str,
        by: &Authority,
    ) -> Result<ActionRecord, IsolateError> {
        self.authorize(by)?;
        let (id, name, nets) = self.attachments(container)?;
        if nets.is_empty() {
            return Err(IsolateError::NoNetworks(name));
        }
        for n in &nets {
            let body = json!({"Container": id, "Force": true});
            self.api.post_json(
                &format!("/networks/{}/disconnect", n.network_id),
                Some(&body),
            )?;
        }
        self.record(&id, &name, Action::Disconnect, reason, by, &nets, None)
    }

    /// The least destructive isolating step: [`Isolator::disconnect`]. The process
    /// keeps running for investigation but loses its networks.
    pub fn isolate(
        &self,
        container: &str,
        reason: &str,
        by: &Authority,
    ) -> Result<ActionRecord, IsolateError> {
        self.disconnect(container, reason, by)
    }

    /// Undoes the action recorded as `record_id`: unpause, start, or reconnect to the
    /// recorded networks.
    pub fn reverse(
        &self,
        record_id: i64,
        reason: &str,
        by: &Authority,
    ) -> Result<ActionRecord, IsolateError> {
        self.authorize(by)?;
        let rec = self
            .get(record_id)?
            .ok_or(IsolateError::NoSuchRecord(record_id))?;
        let inverse = rec.action.inverse().ok_or(IsolateError::NotReversible {
            id: rec.id,
            action: rec.action.as_str(),
        })?;
        if inverse != Action::Reconnect {
            return self.simple(&rec.container_id, inverse, reason, by, Some(rec.id));
        }
        for n in &rec.networks {
            let body =
                json!({"Container": rec.container_id, "EndpointConfig": {"Aliases": n.aliases}});
            self.api
                .post_json(&format!("/networks/{}/connect", n.network_id), Some(&body))?;
        }
        self.record(
            &rec.container_id,
            &rec.container,
            inverse,
            reason,
            by,
            &rec.networks,
            Some(rec.id),
        )
    }

    /// Every recorded action on a container (name or id), oldest first.
    pub fn history(&self, container: &str) -> Result<Vec<ActionRecord>, IsolateError> {
        let mut stmt = self.db.prepare(
            "SELECT id, at, container, container_id, action, reason, authority, networks, reverses
             FROM container_actions WHERE container = ?1 OR container_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([container], row_to_record)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn get(&self, id: i64) -> Result<Option<ActionRecord>, IsolateError> {
        let rec = self
            .db
            .query_row(
                "SELECT id, at, container, container_id, action, reason, authority, networks, reverses
                 FROM container_actions WHERE id = ?1",
                [id],
                row_to_record,
            )
            .optional()?;
        Ok(rec)
    }

    fn authorize(&self, by: &Authority) -> Result<(), IsolateError> {
        match by {
            Authority::Policy(rule) if !self.allow_policy_isolation => {
                tracing::warn!(rule = %rule, "Refused container isolation requested by a policy");
                Err(IsolateError::PolicyNotAllowed(rule.clone()))
            }
            _ => Ok(()),
        }
    }

    fn simple(
        &self,
        container: &str,
        action: Action,
        reason: &str,
        by: &Authority,
        reverses: Option<i64>,
    ) -> Result<ActionRecord, IsolateError> {
        self.authorize(by)?;
        let inspect = self
            .api
            .get_json(&format!("/containers/{}/json", encode_query(container)))?;
        let id = inspect["Id"].as_str().unwrap_or(container).to_owned();
        let name = inspect["Name"]
            .as_str()
            .unwrap_or(container)
            .trim_start_matches('/')
            .to_owned();
        self.api
            .post_json(&format!("/containers/{id}/{}", action.as_str()), None)?;
        self.record(&id, &name, action, reason, by, &[], reverses)
    }

    fn attachments(
        &self,
        container: &str,
    ) -> Result<(String, String, Vec<NetworkAttachment>), IsolateError> {
        let inspect = self
            .api
            .get_json(&format!("/containers/{}/json", encode_query(container)))?;
        let id = inspect["Id"].as_str().unwrap_or(container).to_owned();
        let name = inspect["Name"]
            .as_str()
            .unwrap_or(container)
            .trim_start_matches('/')
            .to_owned();
        Ok((id, name, networks_of(&inspect)))
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        id: &str,
        name: &str,
        action: Action,
        reason: &str,
        by: &Authority,
        nets: &[NetworkAttachment],
        reverses: Option<i64>,
    ) -> Result<ActionRecord, IsolateError> {
        let at = Timestamp::now();
        let networks = serde_json::to_string(nets).unwrap_or_else(|_| "[]".into());
        self.db.execute(
            "INSERT INTO container_actions (at, container, container_id, action, reason, authority, networks, reverses)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![at.to_string(), name, id, action.as_str(), reason, by.label(), networks, reverses],
        )?;
        tracing::info!(container = name, action = action.as_str(), by = %by.label(), reason, "Container action taken");
        Ok(ActionRecord {
            id: self.db.last_insert_rowid(),
            at,
            container: name.to_owned(),
            container_id: id.to_owned(),
            action,
            reason: reason.to_owned(),
            authority: by.clone(),
            networks: nets.to_vec(),
            reverses,
        })
    }
}

/// The user-defined and bridge networks of a container (not `host`/`none`, which
/// cannot be disconnected), with the aliases to restore.
pub fn networks_of(inspect: &Value) -> Vec<NetworkAttachment> {
    let Some(nets) = inspect["NetworkSettings"]["Networks"].as_object() else {
        return Vec::new();
    };
    let short_id = inspect["Id"]
        .as_str()
        .map(|s| &s[..s.len().min(12)])
        .unwrap_or("");
    nets.iter()
        .filter(|(name, _)| !matches!(name.as_str(), "host" | "none"))
        .map(|(name, v)| NetworkAttachment {
            name: name.clone(),
            network_id: v["NetworkID"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or(name)
                .to_owned(),
            // Docker adds the short id as an alias itself; keep only the chosen ones.
            aliases: v["Aliases"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .filter(|a| *a != short_id)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<ActionRecord> {
    let at: String = row.get(1)?;
    let action: String = row.get(4)?;
    let authority: String = row.get(6)?;
    let networks: String = row.get(7)?;
    Ok(ActionRecord {
        id: row.get(0)?,
        at: at.parse().unwrap_or(Timestamp::UNIX_EPOCH),
        container: row.get(2)?,
        container_id: row.get(3)?,
        action: Action::parse(&action).unwrap_or(Action::Pause),
        reason: row.get(5)?,
        authority: Authority::parse(&authority),
        networks: serde_json::from_str(&networks).unwrap_or_default(),
        reverses: row.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn isolator(allow: bool) -> (tempfile::TempDir, Isolator) {
        let tmp = tempfile::tempdir().unwrap();
        // No engine behind this socket: policy refusal must happen before any call.
        let api = DockerApi::new(tmp.path().join("absent.sock"));
        let iso = Isolator::open(api, &tmp.path().join("p.db"), allow).unwrap();
        (tmp, iso)
    }

    #[test]
    fn policy_isolation_is_refused_without_the_flag() {
        let (_tmp, iso) = isolator(false);
        let by = Authority::Policy("web_login_bruteforce".into());
        for result in [
            iso.pause("web", "r", &by),
            iso.stop("web", "r", &by),
            iso.disconnect("web", "r", &by),
        ] {
            assert!(
                matches!(result, Err(IsolateError::PolicyNotAllowed(_))),
                "{result:?}"
            );
        }
        assert!(
            iso.history("web").unwrap().is_empty(),
            "nothing recorded for a refused action"
        );
    }

    #[test]
    fn operator_and_allowed_policy_reach_the_engine() {
        // They get past authorisation and fail only because no engine is there.
        let (_tmp, iso) = isolator(true);
        let by = Authority::Policy("r1".into());
        assert!(matches!(
            iso.pause("web", "r", &by),
            Err(IsolateError::Api(ApiError::Connect { .. }))
        ));
        let (_tmp, iso) = isolator(false);
        let by = Authority::Operator("alice".into());
        assert!(matches!(
            iso.pause("web", "r", &by),
            Err(IsolateError::Api(ApiError::Connect { .. }))
        ));
    }

    #[test]
    fn records_round_trip_through_sqlite() {
        let (_tmp, iso) = isolator(false);
        let nets = vec![NetworkAttachment {
            name: "app".into(),
            network_id: "n1".into(),
            aliases: vec!["web".into()],
        }];
        let by = Authority::Operator("alice".into());
        let rec = iso
            .record(
                "cid",
                "web",
                Action::Disconnect,
                "sqli from 192.0.2.9",
                &by,
                &nets,
                None,
            )
            .unwrap();
        let hist = iso.history("web").unwrap();
        assert_eq!(hist.len(), 1);
        assert_eq!(hist[0].networks, nets);
        assert_eq!(hist[0].authority, by);
        assert_eq!(hist[0].reason, "sqli from 192.0.2.9");
        assert_eq!(hist[0].id, rec.id);
        assert_eq!(iso.history("cid").unwrap().len(), 1);
    }

    #[test]
    fn host_network_is_not_a_disconnect_target() {
        let inspect = json!({"Id": "0123456789abcdef", "NetworkSettings": {"Networks": {
            "host": {"NetworkID": "h"},
            "app": {"NetworkID": "n1", "Aliases": ["web", "0123456789ab"]}}}});
        let nets = networks_of(&inspect);
        assert_eq!(
            nets,
            vec![NetworkAttachment {
                name: "app".into(),
                network_id: "n1".into(),
                aliases: vec!["web".into()]
            }]
        );
    }
}
