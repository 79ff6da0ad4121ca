//! The TOML configuration: what to read, how to parse it, which rules run, where
//! results go. Every field has a default, so an empty file (or none) is a valid
//! configuration; `palisade config show` prints the effective one.

pub mod profiles;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Errors loading or validating a configuration.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML for palisade: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Log sources to read (`[[sources]]`).
    pub sources: Vec<SourceConfig>,
    pub network: NetworkConfig,
    pub detection: DetectionConfig,
    pub rules: RulesConfig,
    pub store: StoreConfig,
    pub metrics: MetricsConfig,
    pub watch: WatchConfig,
    /// What detections lead to: bans, alerts (see `respond::config`).
    pub respond: crate::respond::config::RespondConfig,
    /// Where alerts go: Slack, webhooks, email, Alertmanager, a file.
    pub alerts: crate::respond::alert::settings::AlertsConfig,
    /// Threat intelligence consulted before deciding: AbuseIPDB, offline blocklists.
    pub intel: crate::respond::intel::settings::IntelConfig,
    /// Container logs read through the Docker Engine API (`[docker]`); `watch` follows
    /// them next to the file sources when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<crate::sources::docker::DockerSourceConfig>,
}

/// One log source: files matched by a glob, or standard input (`path = "-"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceConfig {
    /// A name for metrics, checkpoints and output (defaults to the path).
    pub name: String,
    /// A file path or glob (`/var/log/nginx/*.log`); `-` is standard input.
    pub path: String,
    /// How to parse lines; see [`ParserConfig`].
    pub parser: ParserConfig,
    /// Time zone for timestamps written without an offset (IANA name, e.g.
    /// `America/New_York`); UTC when unset.
    pub timezone: Option<String>,
    /// Lines longer than this many bytes are cut to it and counted as truncated.
    pub max_line_bytes: usize,
    /// Multi-line joining for stack traces: continuation lines start with whitespace
    /// or `at ` and are appended to the previous entry.
    pub multiline: bool,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            name: String::new(),
            path: String::new(),
            parser: ParserConfig::default(),
            timezone: None,
            max_line_bytes: 64 * 1024,
            multiline: false,
        }
    }
}

impl SourceConfig {
    /// The name used in output: the configured name, else the path.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.path
        } else {
            &self.name
        }
    }
}

/// Which parser reads a source, with its settings.
// Built once per source at start-up, so the size of the JSON mapping variant costs
// nothing worth boxing it for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum ParserConfig {
    /// nginx access log compiled from a `log_format`: `combined`, `main` (combined +
    /// `"$http_x_forwarded_for"`) or a format string pasted from nginx.conf.
    Nginx {
        #[serde(default = "default_log_format")]
        log_format: String,
    },
    /// nginx error.log (`limiting requests`, `limiting connections`, `delaying
    /// request`, and any line with `client:`).
    NginxError,
    /// JSON lines with a field mapping from the document's (dotted) paths to ECS names.
    Json {
        #[serde(default)]
        fields: JsonFieldMap,
    },
    /// The reference backend's mixed stdout (`Security Log - Request: {json}`, morgan
    /// lines, `Security event:` JSON lines, stack traces).
    Backend,
    /// The reference backend's `security.log` (JSON lines).
    SecurityLog,
    /// `journalctl -o json` export (sshd and friends).
    Journal,
    /// Classic syslog lines (`Mon dd hh:mm:ss host prog[pid]: message`), e.g. sshd in
    /// /var/log/auth.log. The year is inferred.
    Syslog,
    /// Apache error log (`[Wed Oct 11 14:32:52.123 2000] [core:error] [client a:p] …`)
    /// and other lines naming the client as `[client addr:port]`.
    ApacheError,
    /// `key=value` lines (logfmt, HAProxy-style), optionally led by an ISO timestamp.
    /// `client_field` names the key holding the client; `client_port = true` declares
    /// that a port follows the address (`client=2001:db8::1:58340`), so an unbracketed
    /// IPv6 value is split at its last colon.
    Logfmt {
        #[serde(default = "default_client_field")]
        client_field: String,
        #[serde(default)]
        client_port: bool,
    },
    /// Guess per line among the formats above (slower; for `scan` of unknown files).
    Auto,
}

fn default_client_field() -> String {
    "client".into()
}

fn default_log_format() -> String {
    "combined".into()
}

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig::Nginx {
            log_format: default_log_format(),
        }
    }
}

/// Where in a JSON document each ECS field lives; dotted paths, `[n]` for array items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsonFieldMap {
    pub timestamp: Vec<String>,
    pub source_ip: Vec<String>,
    pub method: Vec<String>,
    pub url: Vec<String>,
    pub status: Vec<String>,
    pub user_agent: Vec<String>,
    pub user_name: Vec<String>,
    pub message: Vec<String>,
    pub level: Vec<String>,
    pub action: Vec<String>,
    /// Further `ecs.name = "json.path"` pairs copied into the event's extra fields.
    pub extra: BTreeMap<String, String>,
}

impl Default for JsonFieldMap {
    fn default() -> Self {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        JsonFieldMap {
            timestamp: v(&["@timestamp", "timestamp", "time", "ts"]),
            source_ip: v(&[
                "source.ip",
                "ip",
                "client_ip",
                "remote_addr",
                "req.ip",
                "clientIp",
            ]),
            method: v(&["http.request.method", "method", "req.method"]),
            url: v(&["url.original", "url", "path", "req.url"]),
            status: v(&[
                "http.response.status_code",
                "status",
                "statusCode",
                "res.statusCode",
            ]),
            user_agent: v(&["user_agent.original", "userAgent", "user_agent", "ua"]),
            user_name: v(&["user.name", "user", "username", "userId"]),
            message: v(&["message", "msg"]),
            level: v(&["log.level", "level"]),
            action: v(&["event.action", "event", "type"]),
            extra: BTreeMap::new(),
        }
    }
}

/// Client-address resolution.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Proxies whose `X-Forwarded-For` is believed. The client is the right-most hop
    /// that is not one of these.
    pub trusted_proxies: Vec<IpNet>,
    /// Addresses never counted against or banned (loopback is always in it).
    pub allowlist: Vec<IpNet>,
}

/// Engine limits and the reference stack's application facts rules refer to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectionConfig {
    /// Most keys (IPs, users) any one correlation window keeps; the least recently
    /// seen are evicted and counted beyond this.
    pub max_keys_per_rule: usize,
    /// Sample events kept per detection.
    pub max_samples: usize,
    /// A single-event rule's detections for one key merge while hits come closer than
    /// this; a longer pause starts a new detection.
    #[serde(with = "humantime_serde_compat")]
    pub episode_gap: Duration,
    /// Well-known browser asset paths left out of 4xx-burst counting.
    pub benign_asset_paths: Vec<String>,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            max_keys_per_rule: 200_000,
            max_samples: 10,
            episode_gap: Duration::from_secs(600),
            benign_asset_paths: [
                "/favicon.ico",
                "/apple-touch-icon",
                "/robots.txt",
                "/browserconfig.xml",
                "/site.webmanifest",
                "/manifest.json",
                "/.well-known/",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        }
    }
}

/// Which rules run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Folders of user Sigma rules (`*.yml`, `*.yaml`), loaded after the built-in ones.
    pub dirs: Vec<PathBuf>,
    /// Leave out the built-in rules.
    pub no_builtin: bool,
    /// Rule ids or names to switch off.
    pub disabled: Vec<String>,
    /// Per-rule overrides of a correlation's threshold and window, by id or name.
    pub overrides: BTreeMap<String, RuleOverride>,
}

/// Tuning of one correlation rule without editing its file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleOverride {
    /// New threshold: the correlation fires at this many (`gte`).
    pub threshold: Option<u64>,
    /// New window, e.g. `"10m"`.
    pub timespan: Option<String>,
}

/// The embedded store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite database file (created owner-only).
    pub path: PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("palisade.db"),
        }
    }
}

/// The Prometheus endpoint served during `watch`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// Loopback by default; exposing it elsewhere is the operator's explicit choice.
    pub listen: String,
    /// Must be `true` for `listen` to be a non-loopback address (the endpoint has no
    /// TLS; put a reverse proxy in front when exposing it).
    pub allow_remote: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: "127.0.0.1:9464".into(),
            allow_remote: false,
        }
    }
}

/// Live following.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// How often files are polled for new data, rotation and new matches of a glob.
    #[serde(with = "humantime_serde_compat")]
    pub poll_interval: Duration,
    /// Where checkpoints live when not in the store (unused with the SQLite store).
    pub checkpoint_dir: Option<PathBuf>,
    /// Start new files at their end instead of their beginning.
    pub start_at_end: bool,
    /// With `[docker]`: how often `watch` re-runs the container posture checks (they
    /// also run at start). `0s` runs them only at start.
    #[serde(with = "humantime_serde_compat")]
    pub posture_interval: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            poll_interval: Duration::from_millis(200),
            checkpoint_dir: None,
            start_at_end: false,
            posture_interval: Duration::from_secs(600),
        }
    }
}

/// Parses durations written as `500ms`, `10s`, `5m`, `1h`, `2d` (or a bare number of
/// seconds). Written by hand because the forms are few and a crate for it adds more
/// than it saves.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return None,
    };
    (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs))
}

/// Formats a duration the way [`parse_duration`] reads it back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".into(),
        m if m % 86_400_000 == 0 => format!("{}d", m / 86_400_000),
        m if m % 3_600_000 == 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 => format!("{}m", m / 60_000),
        m if m % 1000 == 0 => format!("{}s", m / 1000),
        m => format!("{m}ms"),
    }
}

/// serde glue for durations written as strings in the config.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not a duration: {s:?} (try \"10m\")")))
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses config text; `path` only names the file in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        for (i, s) in self.sources.iter().enumerate() {
            if s.path.is_empty() {
                return Err(invalid(format!("sources[{i}] has no `path`")));
            }
            if let Some(tz) = &s.timezone {
                jiff::tz::TimeZone::get(tz).map_err(|e| {
                    invalid(format!(
                        "sources[{i}].timezone {tz:?} is not a known time zone: {e}"
                    ))
                })?;
            }
            if s.max_line_bytes < 256 {
                return Err(invalid(format!(
                    "sources[{i}].max_line_bytes must be at least 256"
                )));
            }
        }
        if let Some(docker) = &self.docker {
            validate_docker(docker).map_err(invalid)?;
        }
        for (id, o) in &self.rules.overrides {
            if let Some(t) = &o.timespan
                && parse_duration(t).is_none()
            {
                return Err(invalid(format!(
                    "rules.overrides.{id}.timespan {t:?} is not a duration"
                )));
            }
        }
        Ok(())
    }
}

/// Checks the `[docker]` section: every selector picks something, container names are
/// unique (they name pipeline sources), files name their container and path.
fn validate_docker(docker: &crate::sources::docker::DockerSourceConfig) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    for (i, c) in docker.containers.iter().enumerate() {
        if c.name.is_none() && c.label.is_none() && c.service.is_none() {
            return Err(format!(
                "docker.containers[{i}] picks no container: set `name`, `label` or `service`"
            ));
        }
        if let Some(name) = &c.name
            && !names.insert(name.trim_start_matches('/'))
        {
            return Err(format!(
                "docker.containers[{i}]: container {name:?} is listed twice"
            ));
        }
    }
    for (i, f) in docker.files.iter().enumerate() {
        if f.container.is_empty() || f.path.is_empty() {
            return Err(format!("docker.files[{i}] needs `container` and `path`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for s in ["500ms", "10s", "5m", "1h", "2d"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("10 parsecs"), None);
    }

    #[test]
    fn empty_config_is_valid() {
        let c = Config::from_toml("", Path::new("x.toml")).unwrap();
        assert!(c.sources.is_empty());
        assert_eq!(c.metrics.listen, "127.0.0.1:9464");
    }

    #[test]
    fn source_with_pasted_log_format() {
        let c = Config::from_toml(
            r#"
            [[sources]]
            path = "/var/log/nginx/access.log"
            parser = { format = "nginx", log_format = '$remote_addr [$time_local] "$request" $status' }
            "#,
            Path::new("x.toml"),
        )
        .unwrap();
        assert!(
            matches!(&c.sources[0].parser, ParserConfig::Nginx { log_format } if log_format.starts_with("$remote_addr"))
        );
    }

    #[test]
    fn unknown_time_zone_is_rejected_with_its_name() {
        let err = Config::from_toml(
            "[[sources]]\npath = \"a.log\"\ntimezone = \"Mars/Olympus\"\n",
            Path::new("x.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus"), "{err}");
    }

    #[test]
    fn docker_section_is_optional_and_parsed_when_present() {
        let none = Config::from_toml("", Path::new("x.toml")).unwrap();
        assert!(
            none.docker.is_none(),
            "no [docker]: watch follows no containers"
        );
        let c = Config::from_toml(
            r#"
            [docker]
            socket = "/run/docker.sock"
            [[docker.containers]]
            service = "backend"
            parser = { format = "backend" }
            "#,
            Path::new("x.toml"),
        )
        .unwrap();
        let d = c.docker.unwrap();
        assert_eq!(d.socket, Path::new("/run/docker.sock"));
        assert_eq!(d.containers[0].service.as_deref(), Some("backend"));
        assert_eq!(d.poll_seconds, 5, "defaults fill the rest");
    }

    #[test]
    fn docker_selector_without_criterion_is_rejected() {
        let err = Config::from_toml(
            "[docker]\n[[docker.containers]]\nparser = { format = \"backend\" }\n",
            Path::new("x.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("docker.containers[0]"), "{err}");
    }

    #[test]
    fn docker_container_listed_twice_is_rejected() {
        let err = Config::from_toml(
            "[[docker.containers]]\nname = \"web\"\n[[docker.containers]]\nname = \"/web\"\n",
            Path::new("x.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
    }

    #[test]
    fn unknown_docker_key_is_rejected() {
        let err =
            Config::from_toml("[docker]\nsockett = \"/x\"\n", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("sockett"), "{err}");
    }
}
