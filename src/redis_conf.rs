//! redis.conf files: `ferrite /etc/redis/redis.conf` reads the file redis-server would, with
//! Redis's syntax (`name arg ...` per line, `#` comments, double- and single-quoted arguments
//! as `sdssplitargs` reads them, `include`), and applies each directive through the same
//! validation as `CONFIG SET`. A directive Ferrite does not know stops the start-up with
//! Redis's message, rather than being ignored.

use std::path::Path;

use anyhow::{Context, bail};
use ferrite_commands::config::Config;

/// Directives redis-server accepts that change what Ferrite would do in ways it cannot honour
/// (renamed commands, modules, ACL users from the file, Sentinel state): refused by name.
const UNSUPPORTED: &[&str] = &["rename-command", "loadmodule", "user", "sentinel"];

/// How deep `include` may nest (Redis has no limit; a cycle would recurse forever).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Applies the redis.conf file at `path` to `config`.
pub fn apply_file(config: &Config, path: &Path) -> anyhow::Result<()> {
    let mut save: Option<Vec<String>> = None;
    apply_path(config, path, &mut save, 0)?;
    // Redis's `save` lines add up (the first one replaces the defaults; `save ""` clears).
    if let Some(points) = save {
        set(config, "save", &points.join(" "))?;
    }
    Ok(())
}

fn apply_path(
    config: &Config,
    path: &Path,
    save: &mut Option<Vec<String>>,
    depth: usize,
) -> anyhow::Result<()> {
    if depth > MAX_INCLUDE_DEPTH {
        bail!("too many nested includes at {}", path.display());
    }
    let text = std::fs::read(path)
        .with_context(|| format!("Fatal error, can't open config file '{}'", path.display()))?;
    apply_text(config, &String::from_utf8_lossy(&text), save, depth)
        .with_context(|| format!("in {}", path.display()))
}

/// Applies the directives of one file's text, in order.
fn apply_text(
    config: &Config,
    text: &str,
    save: &mut Option<Vec<String>>,
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
            apply_path(config, Path::new(file), save, depth + 1)?;
            continue;
        }
        if UNSUPPORTED.contains(&name.as_str()) {
            return Err(fail(&format!("'{name}' is not supported by Ferrite")));
        }
        if name == "save" {
            let points = save.get_or_insert_with(Vec::new);
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

/// Redis's `sdssplitargs`: words separated by blanks; a word may be `"double quoted"` (with
/// `\n \r \t \b \a \\ \"` and `\xHH` escapes) or `'single quoted'` (with `\'`), and a closing
/// quote must be followed by a blank or the end. None for unbalanced quotes.
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() {
            return Some(out);
        }
        let mut word: Vec<u8> = Vec::new();
        match b[i] {
            b'"' => {
                i += 1;
                loop {
                    match *b.get(i)? {
                        b'\\'
                            if b.get(i + 3).is_some()
                                && b[i + 1] == b'x'
                                && b[i + 2].is_ascii_hexdigit()
                                && b[i + 3].is_ascii_hexdigit() =>
                        {
                            let hex = std::str::from_utf8(&b[i + 2..i + 4]).ok()?;
                            word.push(u8::from_str_radix(hex, 16).ok()?);
                            i += 4;
                        }
                        b'\\' if i + 1 < b.len() => {
                            word.push(match b[i + 1] {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 8,
                                b'a' => 7,
                                c => c,
                            });
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            if b.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                                return None;
                            }
                            break;
                        }
                        c => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    match *b.get(i)? {
                        b'\\' if b.get(i + 1) == Some(&b'\'') => {
                            word.push(b'\'');
                            i += 2;
                        }
                        b'\'' => {
                            i += 1;
                            if b.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                                return None;
                            }
                            break;
                        }
                        c => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
            }
            _ => {
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    word.push(b[i]);
                    i += 1;
                }
            }
        }
        out.push(String::from_utf8_lossy(&word).into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Option<Vec<String>> {
        split_args(line)
    }

    #[test]
    fn arguments_split_as_redis_splits_them() {
        assert_eq!(
            words("save 900 1  300\t10").unwrap(),
            ["save", "900", "1", "300", "10"]
        );
        assert_eq!(
            words(r#"requirepass "a b\"c""#).unwrap(),
            ["requirepass", "a b\"c"]
        );
        assert_eq!(words(r#"x "\x41\n""#).unwrap(), ["x", "A\n"]);
        assert_eq!(words(r"x 'it\'s'").unwrap(), ["x", "it's"]);
        assert_eq!(words(r#"save """#).unwrap(), ["save", ""]);
        assert_eq!(words("   ").unwrap(), Vec::<String>::new());
        assert_eq!(words(r#"x "open"#), None, "unbalanced");
        assert_eq!(
            words(r#"x "a"b"#),
            None,
            "a closing quote needs a blank after it"
        );
        assert_eq!(words("x 'open"), None);
    }

    fn applied(text: &str) -> anyhow::Result<Config> {
        let config = Config::default();
        let mut save = None;
        apply_text(&config, text, &mut save, 0)?;
        if let Some(points) = save {
            set(&config, "save", &points.join(" "))?;
        }
        Ok(config)
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
