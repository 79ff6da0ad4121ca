//! Built-in configuration profiles that `palisade config init --profile NAME` writes.

/// The profile text for `name`, if there is one.
pub fn get(name: &str) -> Option<&'static str> {
    match name {
        "reference" => Some(REFERENCE),
        _ => None,
    }
}

/// The reference stack: nginx in front of a Node.js backend, Redis and PostgreSQL, all
/// in Docker (containers prompt-nginx, prompt-backend, prompt-frontend, prompt-redis,
/// prompt-postgres).
const REFERENCE: &str = r#"# palisade for the reference stack (prompt-nginx, prompt-backend, prompt-frontend,
# prompt-redis, prompt-postgres). Written by `palisade config init --profile reference`.
# Every setting below shows its default unless marked otherwise; delete what you don't need.

# --- Sources ---------------------------------------------------------------------
# Container logs come through Docker (the [docker] section below). Files on the host
# are [[sources]]; give each log ONE way in, or its lines are counted twice.

# /app/logs/security.log inside prompt-backend, bind-mounted on the host (the
# compose file maps ./logs to /app/logs).
[[sources]]
name = "backend-security"
path = "/srv/prompt/logs/security.log"
parser = { format = "security_log" }

# Alternative for nginx: if prompt-nginx writes real files to a bind mount
# (/var/log/nginx on the host) instead of its stdout/stderr, read those and drop
# prompt-nginx from [docker] below. The stack's `main` format is `combined` plus
# "$http_x_forwarded_for".
# [[sources]]
# name = "nginx-access"
# path = "/var/log/nginx/access.log"
# parser = { format = "nginx", log_format = "main" }
#
# [[sources]]
# name = "nginx-error"
# path = "/var/log/nginx/error.log"
# parser = { format = "nginx_error" }

# --- Docker ------------------------------------------------------------------------
# Read access to the Engine API socket is needed (root, or the `docker` group). If the
# API is down, the json-file logs under json_file_root are read instead (same
# checkpoints, kept next to the store as <store>.docker.json).
[docker]
socket = "/var/run/docker.sock"
json_file_root = "/var/lib/docker/containers"
poll_seconds = 5              # look for started / restarted / recreated containers
flush_after_ms = 1000         # a stack-trace head waits this long for its `at ...` frames

# nginx in front: access log on stdout in the `main` format, error log on stderr.
# limit_req rejections of the zones "api" (/api/) and "login" (/api/auth/login) show
# up there as "limiting requests, excess: ... zone=\"login\"".
[[docker.containers]]
name = "prompt-nginx"
parser = { format = "nginx", log_format = "main" }
stderr_parser = { format = "nginx_error" }

# The Node.js backend: JSON lines and `Security event:` records on stdout, errors with
# stack traces on stderr (joined per stream). Failed logins are POSTs to
# /api/auth/login answered 401.
[[docker.containers]]
name = "prompt-backend"
parser = { format = "backend" }

# Or pick containers by compose service (or label) instead of by name:
# [[docker.containers]]
# service = "backend"
# parser = { format = "backend" }

# --- Client addresses ------------------------------------------------------------
[network]
# Proxies whose X-Forwarded-For palisade believes (right-most untrusted hop wins).
# Empty: nginx faces clients directly and $remote_addr is the client; the
# X-Forwarded-For in the `main` format is then kept as evidence only (a client can
# write anything there). Add your load balancer here if one sits in front of nginx,
# e.g. ["10.0.0.0/8"].
trusted_proxies = []
# Addresses never counted or banned, on top of loopback (always).
allowlist = []

# --- Detection ---------------------------------------------------------------------
[detection]
max_keys_per_rule = 200000    # memory ceiling per rule; least recently seen keys go first
max_samples = 10              # sample events kept per detection
episode_gap = "10m"           # a quieter gap than this starts a new detection

[rules]
dirs = []                     # your own Sigma rules, e.g. ["/etc/palisade/rules"]
disabled = []                 # rule ids or names to switch off
# Tune a correlation without editing it, e.g. the runbook's ">10 failed logins in 5m":
# [rules.overrides.web_login_bruteforce]
# threshold = 10
# timespan = "5m"

# --- Store and metrics ---------------------------------------------------------------
[store]
path = "/var/lib/palisade/palisade.db"   # created owner-only (0600)

[metrics]
enabled = true
listen = "127.0.0.1:9464"     # loopback only unless you change it deliberately

[watch]
poll_interval = "200ms"
start_at_end = false          # true: skip what a file already holds the first time
posture_interval = "10m"      # re-run the container posture checks (also run at start)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_profile_parses_as_a_config() {
        let text = get("reference").unwrap();
        let config = crate::config::Config::from_toml(text, std::path::Path::new("ref.toml"))
            .expect("the written profile must load");
        assert_eq!(config.sources.len(), 1);
        assert_eq!(config.sources[0].path, "/srv/prompt/logs/security.log");
        assert_eq!(config.metrics.listen, "127.0.0.1:9464");
    }

    #[test]
    fn reference_profile_follows_nginx_by_stream_and_the_backend() {
        use crate::config::ParserConfig;
        let text = get("reference").unwrap();
        let config =
            crate::config::Config::from_toml(text, std::path::Path::new("ref.toml")).unwrap();
        let docker = config
            .docker
            .expect("the reference profile has a [docker] section");
        assert_eq!(docker.socket, std::path::Path::new("/var/run/docker.sock"));
        let nginx = &docker.containers[0];
        assert_eq!(nginx.name.as_deref(), Some("prompt-nginx"));
        assert_eq!(
            nginx.parser,
            ParserConfig::Nginx {
                log_format: "main".into()
            }
        );
        assert_eq!(nginx.stderr_parser, Some(ParserConfig::NginxError));
        let backend = &docker.containers[1];
        assert_eq!(backend.name.as_deref(), Some("prompt-backend"));
        assert_eq!(backend.parser, ParserConfig::Backend);
        assert!(backend.stderr_parser.is_none());
        // The security log comes from the host bind mount, not a second docker path,
        // so no line is read twice.
        assert!(docker.files.is_empty());
        assert!(config.network.trusted_proxies.is_empty());
    }

    #[test]
    fn written_profile_survives_show_round_trip() {
        // `config show` renders the effective config; it must load again unchanged.
        let text = get("reference").unwrap();
        let config =
            crate::config::Config::from_toml(text, std::path::Path::new("ref.toml")).unwrap();
        let shown = toml::to_string_pretty(&config).unwrap();
        let again = crate::config::Config::from_toml(&shown, std::path::Path::new("shown.toml"))
            .expect("shown config loads");
        assert_eq!(again.docker.unwrap().containers.len(), 2);
        assert_eq!(
            again.watch.posture_interval,
            std::time::Duration::from_secs(600)
        );
    }
}
