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
# nginx writes its logs to a bind mount of the prompt-nginx container. The stack's
# `main` format is `combined` plus "$http_x_forwarded_for". That header is sent by the
# client (no real_ip module in front), so palisade keeps it as evidence only.
[[sources]]
name = "nginx-access"
path = "/var/log/nginx/access.log"
parser = { format = "nginx", log_format = "main" }

# limit_req / limit_conn rejections (zones "api" and "login" in the stack's nginx.conf).
[[sources]]
name = "nginx-error"
path = "/var/log/nginx/error.log"
parser = { format = "nginx_error" }

# The backend's stdout as the json-file log driver stores it is read through Docker
# (see the docker section once enabled); a plain file copy works too:
[[sources]]
name = "backend"
path = "/var/lib/palisade/prompt-backend.log"
parser = { format = "backend" }
multiline = true            # join Node.js stack traces to their error line

# /app/logs/security.log inside prompt-backend, bind-mounted on the host.
[[sources]]
name = "backend-security"
path = "/srv/prompt/logs/security.log"
parser = { format = "security_log" }

# --- Client addresses ------------------------------------------------------------
[network]
# Proxies whose X-Forwarded-For palisade believes (right-most untrusted hop wins).
# Empty: nginx faces clients directly and $remote_addr is the client.
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
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_profile_parses_as_a_config() {
        let text = get("reference").unwrap();
        let config = crate::config::Config::from_toml(text, std::path::Path::new("ref.toml"))
            .expect("the written profile must load");
        assert_eq!(config.sources.len(), 4);
        assert_eq!(config.metrics.listen, "127.0.0.1:9464");
    }
}
