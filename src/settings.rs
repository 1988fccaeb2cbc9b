//! Start-up settings: embedded defaults, then a configuration file, then the command line. The
//! file is `ferrite.toml`-style TOML when its name ends in `.toml`, else a redis.conf (see
//! [`crate::redis_conf`]); it is named by `--config FILE` or, as redis-server takes it, by the
//! first argument (`ferrite /etc/redis/redis.conf --port 7000`). Every value goes through the
//! same validation as `CONFIG SET` ([`Config::set_startup`]), so a value means the same wherever
//! it is given. As with redis-server, any configuration parameter can be given on the command
//! line as `--name value ...` (the words up to the next `--` make the value).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;
use ferrite_commands::config::Config;

/// A drop-in Redis replacement: the speed of memory, the capacity of disk.
#[derive(Debug, Parser)]
#[command(name = "ferrite", version, about)]
#[command(
    after_help = "Any configuration parameter (see ferrite.toml) can also be given as \
                        `--name value`, e.g. `--timeout 300 --maxclients 1000`."
)]
pub struct Cli {
    /// Configuration file: TOML if its name ends in .toml (see ferrite.toml), else redis.conf
    /// syntax. It may also be given as the first argument, as to redis-server.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// TCP port to listen on.
    #[arg(long)]
    pub port: Option<String>,
    /// Address to listen on.
    #[arg(long)]
    pub bind: Option<String>,
    /// Reactor threads (default: one per available core).
    #[arg(long)]
    pub threads: Option<String>,
    /// I/O backend: auto, uring or epoll.
    #[arg(long = "io-backend", value_name = "BACKEND")]
    pub io_backend: Option<String>,
    /// Password clients must AUTH with.
    #[arg(long)]
    pub requirepass: Option<String>,
    /// Working directory for data files.
    #[arg(long)]
    pub dir: Option<String>,
    /// Log level: debug, verbose, notice, warning.
    #[arg(long)]
    pub loglevel: Option<String>,
    /// Further `--name value` configuration parameters.
    #[arg(skip)]
    pub extra: Vec<(String, String)>,
}

impl Cli {
    /// Parses the command line, splitting off `--name value` pairs that are not flags of
    /// their own (they are configuration parameters).
    pub fn parse_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Cli> {
        const OWN: &[&str] = &[
            "config",
            "port",
            "bind",
            "threads",
            "io-backend",
            "requirepass",
            "dir",
            "loglevel",
            "help",
            "version",
        ];
        let mut own = Vec::new();
        let mut extra = Vec::new();
        let mut it = args.into_iter().peekable();
        own.extend(it.next());
        // redis-server's `redis-server /path/to/redis.conf [options]`.
        let mut positional_config = None;
        if it.peek().is_some_and(|a| !a.starts_with("--")) {
            positional_config = it.next().map(PathBuf::from);
        }
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--") else {
                own.push(arg);
                continue;
            };
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (name.to_string(), None),
            };
            if matches!(name.as_str(), "config" | "help" | "version") {
                own.push(arg);
                continue;
            }
            if let Some(value) = inline {
                match OWN.contains(&name.as_str()) {
                    true => own.push(arg),
                    false => extra.push((name, value)),
                }
                continue;
            }
            // As redis-server: `--save 900 1 300 10` is one value of four words.
            let mut words = vec![
                it.next()
                    .with_context(|| format!("option --{name} needs a value"))?,
            ];
            while let Some(w) = it.next_if(|a| !a.starts_with("--")) {
                words.push(w);
            }
            let value = words.join(" ");
            if OWN.contains(&name.as_str()) {
                own.push(format!("--{name}={value}"));
            } else {
                extra.push((name, value));
            }
        }
        let mut cli = Cli::try_parse_from(own).unwrap_or_else(|e| e.exit());
        if let Some(path) = positional_config {
            if cli.config.is_some() {
                bail!("the configuration file is given twice (first argument and --config)");
            }
            cli.config = Some(path);
        }
        cli.extra = extra;
        Ok(cli)
    }

    /// Applies the file and the command line to `config`, in that order.
    pub fn apply(&self, config: &Config) -> anyhow::Result<()> {
        if let Some(path) = &self.config {
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                apply_toml(config, &text).with_context(|| format!("in {}", path.display()))?;
            } else {
                crate::redis_conf::apply_file(config, path)?;
            }
            // INFO's `config_file` (and CONFIG REWRITE's target): the absolute path, as Redis
            // keeps it.
            let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            let _ = config
                .config_file
                .set(absolute.to_string_lossy().into_owned());
        }
        let own = [
            ("port", &self.port),
            ("bind", &self.bind),
            ("threads", &self.threads),
            ("io-backend", &self.io_backend),
            ("requirepass", &self.requirepass),
            ("dir", &self.dir),
            ("loglevel", &self.loglevel),
        ];
        for (name, value) in own {
            if let Some(v) = value {
                set(config, name, v)?;
            }
        }
        for (name, value) in &self.extra {
            set(config, name, value)?;
        }
        Ok(())
    }
}

fn set(config: &Config, name: &str, value: &str) -> anyhow::Result<()> {
    config
        .set_startup(name, value.as_bytes())
        .map_err(|e| anyhow::anyhow!("bad configuration '{name}' = '{value}': {e}"))
}

/// Applies a TOML file whose keys are parameter names (`maxclients = 1000`, `save = ""`,
/// `appendonly = false`); tables are not allowed.
pub fn apply_toml(config: &Config, text: &str) -> anyhow::Result<()> {
    let table: toml::Table = text.parse().context("invalid TOML")?;
    for (name, value) in &table {
        let value = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => if *b { "yes" } else { "no" }.to_string(),
            other => bail!("'{name}': unsupported value {other}"),
        };
        set(config, name, &value)?;
    }
    Ok(())
}

/// A configuration value as the binary needs it.
pub fn value(config: &Config, name: &str) -> String {
    config
        .get(name.as_bytes())
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// A numeric configuration value.
pub fn number(config: &Config, name: &str) -> anyhow::Result<u64> {
    let v = value(config, name);
    v.parse()
        .with_context(|| format!("configuration '{name}' is not a number: '{v}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn extra_parameters_are_split_off() {
        let cli = Cli::parse_args(argv("ferrite --port 7000 --timeout 5 --maxclients=9")).unwrap();
        assert_eq!(cli.port.as_deref(), Some("7000"));
        assert_eq!(
            cli.extra,
            vec![
                ("timeout".to_string(), "5".to_string()),
                ("maxclients".to_string(), "9".to_string())
            ]
        );
    }

    #[test]
    fn the_first_argument_names_a_config_file_and_values_take_several_words() {
        let cli =
            Cli::parse_args(argv("ferrite /etc/redis.conf --save 900 1 300 10 --port 7")).unwrap();
        assert_eq!(cli.config, Some(PathBuf::from("/etc/redis.conf")));
        assert_eq!(cli.port.as_deref(), Some("7"));
        assert_eq!(
            cli.extra,
            vec![("save".to_string(), "900 1 300 10".to_string())]
        );
        assert!(Cli::parse_args(argv("ferrite a.conf --config b.toml")).is_err());
        // The flags of their own too (`-::1` is a word, not a flag).
        let cli = Cli::parse_args(argv("ferrite --bind 127.0.0.1 -::1 --port=7")).unwrap();
        assert_eq!(cli.bind.as_deref(), Some("127.0.0.1 -::1"));
        assert_eq!(cli.port.as_deref(), Some("7"));
    }

    #[test]
    fn missing_value_is_an_error() {
        assert!(Cli::parse_args(argv("ferrite --timeout")).is_err());
    }
}
