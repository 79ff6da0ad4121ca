//! Checkpoints in a JSON file, for runs without the SQLite store.
//!
//! Written crash-safely: the new content goes to a temporary file in the same
//! directory, is fsynced, renamed over the old file, and the directory is fsynced, so
//! after a crash the file holds either the old or the new set, never a torn mix.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SourceError;
use crate::sources::Checkpoint;

/// Format version written to and required from checkpoint files.
pub const CHECKPOINT_FILE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct FileFormat {
    version: u32,
    checkpoints: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    source: String,
    #[serde(flatten)]
    checkpoint: Checkpoint,
}

/// Replaces the checkpoint file at `path` with `checkpoints` (source name, checkpoint).
pub fn save_checkpoints_file(
    path: &Path,
    checkpoints: &[(String, Checkpoint)],
) -> Result<(), SourceError> {
    let doc = FileFormat {
        version: CHECKPOINT_FILE_VERSION,
        checkpoints: checkpoints
            .iter()
            .map(|(source, checkpoint)| Entry {
                source: source.clone(),
                checkpoint: checkpoint.clone(),
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&doc).expect("checkpoints always serialize");
    let write_err = |source| SourceError::CheckpointWrite {
        path: path.to_owned(),
        error: source,
    };
    let tmp = temp_path(path);
    let result = write_synced(&tmp, &bytes).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    sync_dir(path).map_err(write_err)
}

/// Reads a checkpoint file; a missing file is an empty set (first run).
pub fn load_checkpoints_file(path: &Path) -> Result<Vec<(String, Checkpoint)>, SourceError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(SourceError::CheckpointRead {
                path: path.to_owned(),
                message: e.to_string(),
            });
        }
    };
    let bad = |message: String| SourceError::CheckpointRead {
        path: path.to_owned(),
        message,
    };
    let doc: FileFormat =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a checkpoint file: {e}")))?;
    if doc.version != CHECKPOINT_FILE_VERSION {
        return Err(bad(format!(
            "version {} is not the supported version {CHECKPOINT_FILE_VERSION}",
            doc.version
        )));
    }
    Ok(doc
        .checkpoints
        .into_iter()
        .map(|e| (e.source, e.checkpoint))
        .collect())
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Makes the rename itself durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.json");
        assert!(load_checkpoints_file(&path).unwrap().is_empty());
        let cp = Checkpoint {
            fingerprint: u64::MAX - 7,
            dev: 2049,
            inode: 12,
            path: "/var/log/a.log".into(),
            offset: 4096,
        };
        let set = vec![("nginx".to_string(), cp)];
        save_checkpoints_file(&path, &set).unwrap();
        save_checkpoints_file(&path, &set).unwrap();
        assert_eq!(load_checkpoints_file(&path).unwrap(), set);
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "temporary file left behind");
    }

    #[test]
    fn unknown_version_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        fs::write(&path, r#"{"version": 9, "checkpoints": []}"#).unwrap();
        let err = load_checkpoints_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("version 9") && err.contains("cp.json"),
            "{err}"
        );
    }
}
