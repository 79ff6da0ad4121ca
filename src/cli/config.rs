//! `palisade config`: show the effective configuration, or write a starting one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults filled in) as TOML.
    Show,
    /// Check the configuration and report the first problem.
    Check,
    /// Write a commented configuration for a known stack.
    Init {
        /// The stack: `reference` (nginx + Node.js backend + Redis + PostgreSQL in Docker).
        #[arg(long, default_value = "reference")]
        profile: String,
        /// Where to write it (`-` for stdout).
        #[arg(short, long, default_value = "palisade.toml")]
        output: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(cmd: ConfigCommand, config_path: Option<&Path>) -> Result<i32> {
    match cmd {
        ConfigCommand::Show => {
            let config = super::load_config(config_path)?;
            print!(
                "{}",
                toml::to_string_pretty(&config).context("rendering configuration")?
            );
        }
        ConfigCommand::Check => {
            let config = super::load_config(config_path)?;
            palisade::detect::sigma::RuleSet::load(&config.rules).context("loading rules")?;
            for source in &config.sources {
                palisade::parse::build(source, &config.network)?;
                let found = source.path == "-"
                    || palisade::sources::file::expand_paths(&source.path)
                        .is_ok_and(|p| !p.is_empty());
                if !found {
                    eprintln!(
                        "warning: source {:?}: nothing matches {} yet (watch picks it up \
                         when it appears)",
                        source.display_name(),
                        source.path
                    );
                }
            }
            config.alerts.build_sinks().context("checking [alerts]")?;
            if config.metrics.enabled {
                palisade::serve::ServerOptions::from_config(&config.metrics, None)
                    .check_listen()
                    .context("checking [metrics]")?;
            }
            let containers = config.docker.as_ref().map_or(0, |d| d.containers.len());
            println!(
                "configuration OK: {} sources, {containers} container selectors",
                config.sources.len()
            );
        }
        ConfigCommand::Init {
            profile,
            output,
            force,
        } => {
            let text = palisade::config::profiles::get(&profile)
                .with_context(|| format!("unknown profile {profile:?}; known: reference"))?;
            if output.as_os_str() == "-" {
                print!("{text}");
            } else {
                if output.exists() && !force {
                    bail!("{} exists; pass --force to overwrite it", output.display());
                }
                std::fs::write(&output, text)
                    .with_context(|| format!("writing {}", output.display()))?;
                eprintln!("wrote {} (profile {profile})", output.display());
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_profile_written_by_init_passes_check() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("palisade.toml");
        let init = ConfigCommand::Init {
            profile: "reference".into(),
            output: path.clone(),
            force: false,
        };
        assert_eq!(run(init, None).unwrap(), 0);
        assert_eq!(run(ConfigCommand::Check, Some(&path)).unwrap(), 0);
        let config = super::super::load_config(Some(&path)).unwrap();
        let docker = config.docker.expect("[docker] in the written profile");
        let names: Vec<_> = docker
            .containers
            .iter()
            .filter_map(|c| c.name.as_deref())
            .collect();
        assert_eq!(names, ["prompt-nginx", "prompt-backend"]);
        let again = ConfigCommand::Init {
            profile: "reference".into(),
            output: path,
            force: false,
        };
        assert!(
            run(again, None).is_err(),
            "an existing file is not overwritten"
        );
    }
}
