//! redis.conf files: `ferrite /etc/redis/redis.conf` reads the file redis-server would, with
//! Redis's syntax (`name arg ...` per line, `#` comments, double- and single-quoted arguments
//! as `sdssplitargs` reads them, `include`), and applies each directive through the same
//! validation as `CONFIG SET`. A directive Ferrite does not know stops the start-up with
//! Redis's message, rather than being ignored.

use std::path::Path;

use anyhow::{Context, bail};
use ferrite_commands::acl;
use ferrite_commands::config::{Config, split_args};

/// Directives redis-server accepts that change what Ferrite would do in ways it cannot honour
/// (renamed commands, modules, Sentinel state): refused by name.
const UNSUPPORTED: &[&str] = &["rename-command", "loadmodule", "sentinel"];

/// How deep `include` may nest (Redis has no limit; a cycle would recurse forever).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Applies the redis.conf file at `path` to `config`.
pub fn apply_file(config: &Config, path: &Path) -> anyhow::Result<()> {
    let mut pending = Pending::default();
    apply_path(config, path, &mut pending, 0)?;
    pending.finish(config)
}

/// What a file's lines add up to, applied after its last line.
#[derive(Default)]
struct Pending {
    /// Redis's `save` lines add up (the first one replaces the defaults; `save ""` clears).
    save: Option<Vec<String>>,
}

impl Pending {
    fn finish(self, config: &Config) -> anyhow::Result<()> {
        if let Some(points) = self.save {
            set(config, "save", &points.join(" "))?;
        }
        Ok(())
    }
}

/// `user <name> <rules>`: checked now (Redis's `ACLAppendUserForLoading`), applied once the
/// server exists (`ferrite_commands::acl::file::load_at_startup`).
fn user_line(config: &Config, values: &[String]) -> Result<(), String> {
    let Some((name, rules)) = values.split_first() else {
        return Err("Bad directive or wrong number of arguments".into());
    };
    let mut users = config.acl_users.lock().unwrap_or_else(|e| e.into_inner());
    if users.iter().any(|(n, _)| n == name.as_bytes()) {
        return Err(format!(
            "Error in user declaration '{name}': Duplicate user found. A user can only be \
             defined once in config files"
        ));
    }
    let words: Vec<&[u8]> = rules.iter().map(|r| r.as_bytes()).collect();
    let rules = acl::merge_selectors(&words).map_err(|i| {
        format!(
            "Error in user declaration '{}': Syntax error",
            String::from_utf8_lossy(words[i])
        )
    })?;
    acl::check_config_rules(&rules).map_err(|(rule, e)| {
        format!(
            "Error in user declaration '{}': {}",
            String::from_utf8_lossy(&rule),
            e.message()
        )
    })?;
    users.push((name.as_bytes().to_vec(), rules));
    Ok(())
}

fn apply_path(
    config: &Config,
    path: &Path,
    pending: &mut Pending,
    depth: usize,
) -> anyhow::Result<()> {
    if depth > MAX_INCLUDE_DEPTH {
        bail!("too many nested includes at {}", path.display());
    }
    let text = std::fs::read(path)
        .with_context(|| format!("Fatal error, can't open config file '{}'", path.display()))?;
    apply_text(config, &String::from_utf8_lossy(&text), pending, depth)
        .with_context(|| format!("in {}", path.display()))
}

/// Applies the directives of one file's text, in order.
fn apply_text(
    config: &Config,
    text: &str,
    pending: &mut Pending,
    depth: usize,
) -> anyhow::Result<()> {
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fail = |why: &str| {
            anyhow::anyhow!(
                "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration \
                 file, at line {}\n>>> '{trimmed}'\n{why}",
                i + 1
            )
        };
        let Some(args) = split_args(trimmed) else {
            return Err(fail("Unbalanced quotes in configuration line"));
        };
        let Some((name, values)) = args.split_first() else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        if name == "include" {
            let [file] = values else {
                return Err(fail("Bad directive or wrong number of arguments"));
            };
            apply_path(config, Path::new(file), pending, depth + 1)?;
            continue;
        }
        if name == "user" {
            user_line(config, values).map_err(|e| fail(&e))?;
            continue;
        }
        if UNSUPPORTED.contains(&name.as_str()) {
            return Err(fail(&format!("'{name}' is not supported by Ferrite")));
        }
        if name == "save" {
            let points = pending.save.get_or_insert_with(Vec::new);
            match values {
                [empty] if empty.is_empty() => points.clear(),
                _ => points.extend(values.iter().cloned()),
            }
            continue;
        }
        if values.is_empty() {
            return Err(fail("Bad directive or wrong number of arguments"));
        }
        set(config, &name, &values.join(" ")).map_err(|e| fail(&format!("{e:#}")))?;
    }
    Ok(())
}

fn set(config: &Config, name: &str, value: &str) -> anyhow::Result<()> {
    config.set_startup(name, value.as_bytes()).map_err(|e| {
        if matches!(e, ferrite_commands::config::ConfigError::Unknown(_)) {
            anyhow::anyhow!("Bad directive or wrong number of arguments")
        } else {
            anyhow::anyhow!("{e}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(text: &str) -> anyhow::Result<Config> {
        let config = Config::default();
        let mut pending = Pending::default();
        apply_text(&config, text, &mut pending, 0)?;
        pending.finish(&config)?;
        Ok(config)
    }

    #[test]
    fn user_lines_are_checked_and_kept_for_start_up() {
        let c =
            applied("user default on >s3cret ~* &* +@all\nuser alice on >pw ~k* +get\n").unwrap();
        let users = c.acl_users.lock().unwrap().clone();
        assert_eq!(users.len(), 2);
        assert_eq!(users[1].0, b"alice");
        // Unknown commands pass (a module may bring them); other errors stop.
        assert!(applied("user bob +nosuch\n").is_ok());
        let e = applied("user bob bogus\n").unwrap_err();
        assert!(format!("{e:#}").contains("Error in user declaration 'bogus': Syntax error"));
        let e = applied("user bob on\nuser bob off\n").unwrap_err();
        assert!(format!("{e:#}").contains("Duplicate user found"));
        assert!(applied("user\n").is_err());
    }

    fn get(config: &Config, name: &str) -> String {
        crate::settings::value(config, name)
    }

    #[test]
    fn directives_apply_in_order_and_save_lines_add_up() {
        let c = applied(
            "# a comment\n\nmaxclients 100\nMAXCLIENTS 200\nsave 900 1\nsave 300 10\n\
             appendonly yes\nclient-output-buffer-limit pubsub 32mb 8mb 60\n",
        )
        .unwrap();
        assert_eq!(get(&c, "maxclients"), "200", "the last line wins");
        assert_eq!(get(&c, "save"), "900 1 300 10");
        assert_eq!(get(&c, "appendonly"), "yes");
        let c = applied("save 900 1\nsave \"\"\n").unwrap();
        assert_eq!(get(&c, "save"), "");
    }

    #[test]
    fn a_bad_line_stops_with_its_number() {
        let e = applied("port 7000\nno-such-thing 1\n").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("at line 2"), "{msg}");
        assert!(msg.contains(">>> 'no-such-thing 1'"), "{msg}");
        assert!(msg.contains("Bad directive"), "{msg}");
        let e = applied("maxclients lots\n").unwrap_err();
        assert!(format!("{e:#}").contains("at line 1"));
        let e = applied("rename-command FLUSHALL \"\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("not supported"));
        assert!(applied("port \"7000\n").is_err(), "unbalanced quotes");
    }

    #[test]
    fn includes_are_read_in_place() {
        let dir = std::env::temp_dir().join(format!("ferrite-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let inner = dir.join("inner.conf");
        std::fs::write(&inner, "maxclients 300\ntimeout 7\n").unwrap();
        let c = applied(&format!(
            "maxclients 100\ninclude {}\ntimeout 9\n",
            inner.display()
        ))
        .unwrap();
        assert_eq!(get(&c, "maxclients"), "300");
        assert_eq!(get(&c, "timeout"), "9");
        let looped = dir.join("loop.conf");
        std::fs::write(&looped, format!("include {}\n", looped.display())).unwrap();
        assert!(apply_file(&Config::default(), &looped).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
