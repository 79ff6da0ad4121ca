//! Container posture: `palisade check containers`.
//!
//! For every container (or the ones named), [`check`] inspects it through the
//! Engine API and [`check_inspect`] — a pure function over the inspect JSON and the
//! user its main process actually runs as — reports what widens the path from a
//! compromised web process to the host: privileged mode, the Docker socket, added
//! capabilities, host network/PID/IPC namespaces, root, a writable root filesystem,
//! ports published on every interface. Image vulnerabilities come from `trivy` when
//! it is installed; otherwise one finding says the scan was skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::detect::{Detection, DetectionState, Level, RuleMeta};
use crate::sources::docker::api::{ApiError, DockerApi};

/// One posture problem of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Container name, without the leading `/`.
    pub container: String,
    /// Stable check id, e.g. `container.privileged`.
    pub check: &'static str,
    pub title: &'static str,
    pub level: Level,
    /// ATT&CK tags, e.g. `attack.t1611`.
    pub tags: Vec<&'static str>,
    /// What exactly was found (values from inspect).
    pub detail: String,
}

/// Options for [`check`].
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Only these containers (names or ids); all running containers when empty.
    pub containers: Vec<String>,
    /// Skip the trivy image scan even when trivy is installed.
    pub skip_images: bool,
    /// trivy binary to use; looked up on `PATH` when `None`.
    pub trivy: Option<PathBuf>,
}

/// What went wrong running the checks.
#[derive(Debug, thiserror::Error)]
pub enum PostureError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("no container named {0:?}; `docker ps -a` lists them")]
    NoSuchContainer(String),
}

const PREFIX: &str = "palisade-posture-";
const ESCAPE: &[&str] = &["attack.privilege-escalation", "attack.t1611"];

/// Capabilities that alone come close to root on the host.
const DANGEROUS_CAPS: &[&str] = &[
    "ALL",
    "SYS_ADMIN",
    "SYS_MODULE",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "DAC_READ_SEARCH",
    "NET_ADMIN",
    "BPF",
];

impl Finding {
    fn new(c: &str, check: &'static str, title: &'static str, level: Level) -> Finding {
        Finding {
            container: c.to_owned(),
            check,
            title,
            level,
            tags: ESCAPE.to_vec(),
            detail: String::new(),
        }
    }

    fn detail(mut self, detail: impl Into<String>) -> Finding {
        self.detail = detail.into();
        self
    }

    fn tags(mut self, tags: &[&'static str]) -> Finding {
        self.tags = tags.to_vec();
        self
    }

    /// The finding as a detection keyed by `container.name`, so alerting, the store
    /// and `--json` treat it like any rule hit. `at` is when the check ran.
    pub fn to_detection(&self, at: Timestamp) -> Detection {
        let rule = RuleMeta {
            id: format!("{PREFIX}{}", self.check),
            name: Some(self.check.to_owned()),
            title: self.title.to_owned(),
            level: self.level,
            tags: self.tags.iter().map(|t| t.to_string()).collect(),
            description: self.detail.clone(),
        };
        Detection {
            rule: Arc::new(rule),
            key: vec![("container.name".into(), self.container.as_str().into())],
            count: 1,
            first_seen: at,
            last_seen: at,
            samples: Vec::new(),
            state: DetectionState::Fired,
        }
    }
}

/// Checks containers through the Engine API. Findings are sorted, most severe first.
pub fn check(api: &DockerApi, opts: &CheckOptions) -> Result<Vec<Finding>, PostureError> {
    let targets = targets(api, opts)?;
    let mut findings = Vec::new();
    let mut images = Vec::new();
    for id in targets {
        let inspect = api.get_json(&format!("/containers/{id}/json"))?;
        let uid = process_uid(api, &inspect);
        findings.extend(check_inspect(&inspect, uid));
        let image = inspect["Config"]["Image"].as_str().unwrap_or("").to_owned();
        if !image.is_empty() && !images.iter().any(|(i, _)| i == &image) {
            images.push((image, container_name(&inspect)));
        }
    }
    if !opts.skip_images {
        findings.extend(scan_images(&images, opts.trivy.as_deref()));
    }
    findings.sort_by(|a, b| b.level.cmp(&a.level).then(a.container.cmp(&b.container)));
    Ok(findings)
}

fn targets(api: &DockerApi, opts: &CheckOptions) -> Result<Vec<String>, PostureError> {
    if opts.containers.is_empty() {
        let list = api.get_json("/containers/json")?;
        let ids = list.as_array().map(Vec::as_slice).unwrap_or_default();
        return Ok(ids
            .iter()
            .filter_map(|c| c["Id"].as_str().map(str::to_owned))
            .collect());
    }
    let mut ids = Vec::new();
    for name in &opts.containers {
        let path = format!(
            "/containers/{}/json",
            crate::sources::docker::api::encode_query(name)
        );
        match api.get_json(&path) {
            Ok(v) => ids.push(v["Id"].as_str().unwrap_or(name).to_owned()),
            Err(ApiError::Status { status: 404, .. }) => {
                return Err(PostureError::NoSuchContainer(name.clone()));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ids)
}

fn container_name(inspect: &Value) -> String {
    inspect["Name"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_owned()
}

/// The effective uid of the container's main process: `/proc/<pid>/status` when
/// readable, else the first row of `/containers/{id}/top`.
pub fn process_uid(api: &DockerApi, inspect: &Value) -> Option<u32> {
    let pid = inspect["State"]["Pid"].as_u64().filter(|p| *p > 0)?;
    if let Some(uid) = uid_from_status(Path::new(&format!("/proc/{pid}/status"))) {
        return Some(uid);
    }
    uid_from_top(api, inspect["Id"].as_str()?)
}

/// The uid of a container's first process as `/containers/{id}/top` reports it (for
/// when `/proc` of the host is not readable, e.g. palisade itself in a container).
pub fn uid_from_top(api: &DockerApi, id: &str) -> Option<u32> {
    // dockerd needs a PID column to map ps output to the container.
    let top = api
        .get_json(&format!("/containers/{id}/top?ps_args=-o%20pid,uid"))
        .ok()?;
    let titles = top["Titles"].as_array()?;
    let col = titles.iter().position(|t| t.as_str() == Some("UID"))?;
    top["Processes"][0][col].as_str()?.trim().parse().ok()
}

fn uid_from_status(path: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with("Uid:"))?;
    // Uid: real effective saved fs — the effective one decides.
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Every finding for one container's inspect JSON; `uid` is the user its main process
/// runs as, when known.
pub fn check_inspect(inspect: &Value, uid: Option<u32>) -> Vec<Finding> {
    let name = container_name(inspect);
    let host = &inspect["HostConfig"];
    let mut out = Vec::new();
    if host["Privileged"].as_bool() == Some(true) {
        out.push(
            Finding::new(
                &name,
                "container.privileged",
                "Container runs privileged",
                Level::Critical,
            )
            .detail("HostConfig.Privileged is true: all devices and capabilities"),
        );
    }
    if let Some(mount) = docker_socket_mount(inspect) {
        out.push(
            Finding::new(
                &name,
                "container.docker_socket",
                "Docker socket mounted",
                Level::Critical,
            )
            .detail(format!(
                "{mount}: whoever controls the container controls Docker"
            )),
        );
    }
    out.extend(root_user(&name, inspect, uid));
    out.extend(capabilities(&name, host));
    out.extend(namespaces(&name, host));
    if host["ReadonlyRootfs"].as_bool() != Some(true) {
        out.push(
            Finding::new(
                &name,
                "container.writable_rootfs",
                "Root filesystem is writable",
                Level::Low,
            )
            .tags(&["attack.persistence"])
            .detail("HostConfig.ReadonlyRootfs is false"),
        );
    }
    out.extend(published_ports(&name, inspect));
    out
}

fn docker_socket_mount(inspect: &Value) -> Option<String> {
    let mounts = inspect["Mounts"].as_array()?;
    mounts.iter().find_map(|m| {
        let src = m["Source"].as_str().unwrap_or("");
        let dst = m["Destination"].as_str().unwrap_or("");
        let hit = [src, dst].iter().any(|p| p.ends_with("/docker.sock"));
        hit.then(|| format!("{src} -> {dst}"))
    })
}

fn root_user(name: &str, inspect: &Value, uid: Option<u32>) -> Option<Finding> {
    let user = inspect["Config"]["User"].as_str().unwrap_or("");
    let who = user.split(':').next().unwrap_or("");
    let configured_root = matches!(who, "" | "0" | "root");
    let runs_as_root = uid.map_or(configured_root, |u| u == 0);
    if !runs_as_root {
        return None;
    }
    let shown = if user.is_empty() {
        "(empty: image default)"
    } else {
        user
    };
    let actual = uid.map_or("unknown".to_owned(), |u| u.to_string());
    let f = Finding::new(
        name,
        "container.root_user",
        "Container process runs as root",
        Level::Medium,
    )
    .detail(format!("Config.User {shown}, main process uid {actual}"));
    Some(f)
}

fn capabilities(name: &str, host: &Value) -> Option<Finding> {
    let caps: Vec<&str> = host["CapAdd"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if caps.is_empty() {
        return None;
    }
    let bare = |c: &&str| c.trim_start_matches("CAP_").to_ascii_uppercase();
    let dangerous = caps
        .iter()
        .any(|c| DANGEROUS_CAPS.contains(&bare(c).as_str()));
    let level = if dangerous {
        Level::High
    } else {
        Level::Medium
    };
    let f = Finding::new(name, "container.cap_add", "Capabilities added", level)
        .detail(format!("CapAdd: {}", caps.join(", ")));
    Some(f)
}

fn namespaces(name: &str, host: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    let modes = [
        (
            "NetworkMode",
            "container.host_network",
            "Host network namespace",
        ),
        ("PidMode", "container.host_pid", "Host PID namespace"),
        ("IpcMode", "container.host_ipc", "Host IPC namespace"),
    ];
    for (field, check, title) in modes {
        if host[field].as_str() == Some("host") {
            out.push(
                Finding::new(name, check, title, Level::High)
                    .detail(format!("HostConfig.{field} is host")),
            );
        }
    }
    out
}

fn published_ports(name: &str, inspect: &Value) -> Option<Finding> {
    let ports = inspect["NetworkSettings"]["Ports"].as_object()?;
    let mut open = Vec::new();
    for (port, binds) in ports {
        for b in binds.as_array().map(Vec::as_slice).unwrap_or_default() {
            let ip = b["HostIp"].as_str().unwrap_or("");
            if matches!(ip, "" | "0.0.0.0" | "::") {
                let hp = b["HostPort"].as_str().unwrap_or("?");
                open.push(format!(
                    "{port} on {}:{hp}",
                    if ip.is_empty() { "*" } else { ip }
                ));
            }
        }
    }
    if open.is_empty() {
        return None;
    }
    open.sort();
    open.dedup();
    let f = Finding::new(
        name,
        "container.published_all_interfaces",
        "Ports published on every interface",
        Level::Low,
    )
    .tags(&["attack.initial-access"])
    .detail(open.join(", "));
    Some(f)
}

/// Scans each image with trivy, or says once that the scan was skipped.
fn scan_images(images: &[(String, String)], trivy: Option<&Path>) -> Vec<Finding> {
    let trivy = trivy
        .map(Path::to_path_buf)
        .or_else(|| find_on_path("trivy"));
    scan_with(images, trivy)
}

fn scan_with(images: &[(String, String)], trivy: Option<PathBuf>) -> Vec<Finding> {
    let Some(trivy) = trivy else {
        return vec![Finding::new("*", "container.image_scan", "Image scan skipped: trivy not found", Level::Informational)
            .tags(&[])
            .detail("install trivy (https://trivy.dev) to scan container images for known vulnerabilities")];
    };
    images
        .iter()
        .filter_map(|(image, container)| trivy_scan(&trivy, image, container))
        .collect()
}

fn find_on_path(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

fn trivy_scan(trivy: &Path, image: &str, container: &str) -> Option<Finding> {
    let base = Finding::new(
        container,
        "container.image_vulnerabilities",
        "Image has known vulnerabilities",
        Level::Informational,
    )
    .tags(&["attack.initial-access", "attack.t1190"]);
    if image.starts_with('-') {
        return Some(base.detail(format!("image name {image:?} not scanned: starts with '-'")));
    }
    let output = Command::new(trivy)
        .args(["image", "--quiet", "--format", "json", image])
        .output();
    let output = match output {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            return Some(base.detail(format!("trivy failed on {image}: {}", err.trim())));
        }
        Err(e) => return Some(base.detail(format!("cannot run {}: {e}", trivy.display()))),
    };
    let report: Value = serde_json::from_slice(&output.stdout).ok()?;
    let (level, summary) = summarize_trivy(&report)?;
    Some(Finding { level, ..base }.detail(format!("{image}: {summary}")))
}

/// Severity counts of a trivy JSON report, and the level of its worst finding.
pub fn summarize_trivy(report: &Value) -> Option<(Level, String)> {
    let mut counts = [0usize; 5];
    let names = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"];
    let results = report["Results"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for v in results.iter().flat_map(|r| {
        r["Vulnerabilities"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }) {
        let sev = v["Severity"].as_str().unwrap_or("UNKNOWN");
        let i = names.iter().position(|n| *n == sev).unwrap_or(4);
        counts[i] += 1;
    }
    let worst = counts.iter().position(|c| *c > 0)?;
    let level = [
        Level::Critical,
        Level::High,
        Level::Medium,
        Level::Low,
        Level::Low,
    ][worst];
    let parts: Vec<String> = names
        .iter()
        .zip(counts)
        .filter(|(_, c)| *c > 0)
        .map(|(n, c)| format!("{c} {n}"))
        .collect();
    Some((level, parts.join(", ")))
}

/// Findings as text for a terminal, one per line, most severe first.
pub fn render_text(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "containers: no findings\n".to_owned();
    }
    let width = findings
        .iter()
        .map(|f| f.container.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{:<13} {:<width$}  {}: {}\n",
            f.level.as_str().to_uppercase(),
            f.container,
            f.title,
            f.detail
        ));
    }
    out
}

/// Findings as the JSON array `check containers --json` prints.
pub fn to_json(findings: &[Finding]) -> Value {
    serde_json::to_value(findings).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn checks(f: &[Finding]) -> Vec<&'static str> {
        let mut v: Vec<_> = f.iter().map(|f| f.check).collect();
        v.sort();
        v
    }

    #[test]
    fn privileged_container_with_socket_and_caps_is_flagged() {
        let inspect = json!({
            "Name": "/bad", "Config": {"User": ""},
            "HostConfig": {"Privileged": true, "CapAdd": ["SYS_ADMIN"], "NetworkMode": "host",
                "PidMode": "host", "ReadonlyRootfs": false},
            "Mounts": [{"Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock"}],
        });
        let f = check_inspect(&inspect, Some(0));
        assert_eq!(
            checks(&f),
            vec![
                "container.cap_add",
                "container.docker_socket",
                "container.host_network",
                "container.host_pid",
                "container.privileged",
                "container.root_user",
                "container.writable_rootfs",
            ]
        );
        let cap = f.iter().find(|f| f.check == "container.cap_add").unwrap();
        assert_eq!(cap.level, Level::High);
    }

    #[test]
    fn hardened_container_has_no_findings() {
        let inspect = json!({
            "Name": "/good", "Config": {"User": "1000:1000"},
            "HostConfig": {"Privileged": false, "CapAdd": null, "NetworkMode": "bridge",
                "ReadonlyRootfs": true},
            "NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}},
            "Mounts": [],
        });
        assert!(check_inspect(&inspect, Some(1000)).is_empty());
    }

    #[test]
    fn user_set_in_config_but_process_root_is_still_root() {
        // The image's entrypoint may ignore Config.User (gosu, su-exec): the process decides.
        let inspect = json!({"Name": "/c", "Config": {"User": "app"},
            "HostConfig": {"ReadonlyRootfs": true}});
        assert_eq!(
            checks(&check_inspect(&inspect, Some(0))),
            vec!["container.root_user"]
        );
        assert!(check_inspect(&inspect, Some(1000)).is_empty());
        // Unknown process user: fall back to the configured one.
        assert!(check_inspect(&inspect, None).is_empty());
    }

    #[test]
    fn ports_on_all_interfaces_are_reported() {
        let inspect = json!({"Name": "/web", "Config": {"User": "1"}, "HostConfig": {"ReadonlyRootfs": true},
            "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "80"},
                {"HostIp": "::", "HostPort": "80"}]}}});
        let f = check_inspect(&inspect, Some(1));
        assert_eq!(checks(&f), vec!["container.published_all_interfaces"]);
        assert!(f[0].detail.contains("80/tcp on 0.0.0.0:80"));
    }

    #[test]
    fn missing_trivy_yields_a_skipped_finding() {
        let images = [("nginx:1".to_owned(), "web".to_owned())];
        let f = scan_images(&images, Some(Path::new("/nonexistent/trivy")));
        assert_eq!(f.len(), 1);
        assert!(f[0].detail.contains("cannot run"), "{f:?}");
        let f = scan_with(&images, None);
        assert_eq!(f[0].title, "Image scan skipped: trivy not found");
    }

    #[test]
    fn trivy_report_is_summarised_by_worst_severity() {
        let report = json!({"Results": [{"Vulnerabilities": [{"Severity": "HIGH"}, {"Severity": "LOW"}, {"Severity": "HIGH"}]}]});
        assert_eq!(
            summarize_trivy(&report),
            Some((Level::High, "2 HIGH, 1 LOW".to_owned()))
        );
        assert_eq!(summarize_trivy(&json!({"Results": []})), None);
    }

    #[test]
    fn finding_becomes_a_detection_keyed_by_container() {
        let f = Finding::new(
            "web",
            "container.privileged",
            "Container runs privileged",
            Level::Critical,
        );
        let d = f.to_detection(Timestamp::UNIX_EPOCH);
        assert_eq!(d.key_value("container.name"), Some("web"));
        assert_eq!(d.rule.id, "palisade-posture-container.privileged");
        assert!(d.rule.tags.contains(&"attack.t1611".to_owned()));
        let j = to_json(&[f]);
        assert_eq!(j[0]["level"], "critical");
        assert!(render_text(&[]).contains("no findings"));
    }
}
