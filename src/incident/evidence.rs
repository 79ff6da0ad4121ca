//! Evidence: a container's logs and configuration for a time window, kept so they can
//! be shown to be unaltered.
//!
//! [`collect_container`] writes into one folder (created owner-only, 0700):
//! `logs.jsonl` (every raw entry Docker holds between `since` and `until`, one JSON
//! object `{time, stream, log}` per line, unjoined so nothing is interpreted),
//! `inspect.json` (the container's inspect output), and `manifest.json` listing each
//! file with its size and SHA-256. Files are created owner-only (0600) and never
//! overwritten.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sources::docker::FrameDecoder;
use crate::sources::docker::api::{ApiError, DockerApi, encode_query};
use crate::sources::docker::join::parse_api_payload;

/// One file in an evidence folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceFile {
    /// File name inside the folder.
    pub name: String,
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the file's content.
    pub sha256: String,
}

/// `manifest.json`: what was collected, about what, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub container: String,
    pub container_id: String,
    pub since: Timestamp,
    pub until: Timestamp,
    pub collected_at: Timestamp,
    /// Raw log entries written to `logs.jsonl`.
    pub log_entries: u64,
    pub files: Vec<EvidenceFile>,
}

/// What went wrong collecting evidence.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("cannot write evidence {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("evidence file {0} already exists; evidence is never overwritten, pick a new folder")]
    Exists(PathBuf),
}

/// Writes the logs (`since`..=`until`) and inspect JSON of `container` into `dir`,
/// with a manifest. Returns the manifest.
pub fn collect_container(
    api: &DockerApi,
    dir: &Path,
    container: &str,
    since: Timestamp,
    until: Timestamp,
) -> Result<Manifest, EvidenceError> {
    make_private_dir(dir)?;
    let inspect = api.get_json(&format!("/containers/{}/json", encode_query(container)))?;
    let id = inspect["Id"].as_str().unwrap_or(container).to_owned();
    let tty = inspect["Config"]["Tty"].as_bool().unwrap_or(false);
    let (logs, log_entries) = fetch_logs(api, &id, tty, since, until)?;
    let pretty = serde_json::to_vec_pretty(&inspect).unwrap_or_default();
    let files = vec![
        write_private(dir, "logs.jsonl", &logs)?,
        write_private(dir, "inspect.json", &pretty)?,
    ];
    let manifest = Manifest {
        container: inspect["Name"]
            .as_str()
            .unwrap_or(container)
            .trim_start_matches('/')
            .to_owned(),
        container_id: id,
        since,
        until,
        collected_at: Timestamp::now(),
        log_entries,
        files,
    };
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    write_private(dir, "manifest.json", &bytes)?;
    Ok(manifest)
}

fn fetch_logs(
    api: &DockerApi,
    id: &str,
    tty: bool,
    since: Timestamp,
    until: Timestamp,
) -> Result<(Vec<u8>, u64), EvidenceError> {
    let path = format!(
        "/containers/{id}/logs?stdout=1&stderr=1&timestamps=1&since={}&until={}",
        unix_param(since),
        unix_param(until)
    );
    let mut body = api.open("GET", &path, None)?;
    let mut raw = Vec::new();
    body.read_to_end(&mut raw)
        .map_err(|source| EvidenceError::Io {
            path: path.clone().into(),
            source,
        })?;
    let mut decoder = FrameDecoder::new(tty);
    decoder.extend(&raw);
    let mut out = Vec::new();
    let mut n = 0;
    while let Some((stream, payload)) = decoder.next_frame() {
        let Ok(entry) = parse_api_payload(stream, payload) else {
            continue;
        };
        let line = serde_json::json!({
            "time": entry.time.to_string(),
            "stream": stream.as_str(),
            "log": if entry.partial { entry.text } else { entry.text + "\n" },
        });
        out.extend(line.to_string().as_bytes());
        out.push(b'\n');
        n += 1;
    }
    Ok((out, n))
}

fn unix_param(t: Timestamp) -> String {
    format!("{}.{:09}", t.as_second(), t.subsec_nanosecond().max(0))
}

fn make_private_dir(dir: &Path) -> Result<(), EvidenceError> {
    let io_err = |source| EvidenceError::Io {
        path: dir.to_owned(),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err)?;
    // An existing folder keeps its mode under `create`; tighten it.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err)
}

fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<EvidenceFile, EvidenceError> {
    let path = dir.join(name);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(EvidenceError::Exists(path));
        }
        Err(source) => return Err(EvidenceError::Io { path, source }),
    };
    let io_err = |source| EvidenceError::Io {
        path: path.clone(),
        source,
    };
    file.write_all(bytes).map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    Ok(EvidenceFile {
        name: name.to_owned(),
        bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
    })
}

/// Re-hashes every file in a manifest; returns the names whose content changed.
pub fn verify(dir: &Path, manifest: &Manifest) -> Result<Vec<String>, EvidenceError> {
    let mut changed = Vec::new();
    for f in &manifest.files {
        let path = dir.join(&f.name);
        let bytes = std::fs::read(&path).map_err(|source| EvidenceError::Io { path, source })?;
        if hex::encode(Sha256::digest(&bytes)) != f.sha256 {
            changed.push(f.name.clone());
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_files_are_owner_only_hashed_and_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("inc-1");
        make_private_dir(&dir).unwrap();
        let f = write_private(&dir, "logs.jsonl", b"abc").unwrap();
        assert_eq!(
            f.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("logs.jsonl")), 0o600);
        assert!(matches!(
            write_private(&dir, "logs.jsonl", b"x"),
            Err(EvidenceError::Exists(_))
        ));

        let manifest = Manifest {
            container: "c".into(),
            container_id: "id".into(),
            since: Timestamp::UNIX_EPOCH,
            until: Timestamp::UNIX_EPOCH,
            collected_at: Timestamp::UNIX_EPOCH,
            log_entries: 0,
            files: vec![f],
        };
        assert!(verify(&dir, &manifest).unwrap().is_empty());
        std::fs::write(dir.join("logs.jsonl"), b"abd").unwrap();
        assert_eq!(verify(&dir, &manifest).unwrap(), vec!["logs.jsonl"]);
    }
}
