//! Users from files: `user` lines of the configuration file and the `aclfile` (Redis's
//! `ACLLoadConfiguredUsers`, `ACLLoadFromFile`, `ACLSaveToFile`), with Redis's messages.

use std::collections::BTreeMap;
use std::io::Write as _;

use super::{User, merge_selectors, selector::has_spaces};

/// Reads an ACL file: every user it defines, or every error found (nothing changes then).
pub fn load(path: &str, all_channels: bool) -> Result<BTreeMap<Vec<u8>, User>, String> {
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "Error loading ACLs, opening file '{path}': {}",
            crate::persist::strerror(&e)
        )
    })?;
    let mut users = BTreeMap::new();
    let mut errors = String::new();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let no = i + 1;
        let line = trim(raw, b" \t\r\n");
        if line.is_empty() {
            continue;
        }
        // Split on single spaces, as `sdssplitlen` does (two spaces make an empty rule).
        let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        if words[0] != b"user" || words.len() < 2 {
            errors.push_str(&format!(
                "{path}:{no} should start with user keyword followed by the username. "
            ));
            continue;
        }
        let name = words[1];
        if has_spaces(name) {
            errors.push_str(&format!(
                "'{path}:{no}: username '{}' contains invalid characters. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        if users.contains_key(name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {no}. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        let mut user = User::new(name, all_channels);
        let rules = match merge_selectors(&words[2..]) {
            Ok(rules) => rules,
            Err(_) => {
                errors.push_str(&format!(
                    "{path}:{no}: Unmatched parenthesis in selector definition."
                ));
                Vec::new()
            }
        };
        for rule in &rules {
            if let Err(e) = user.apply(trim(rule, b"\t\r\n"), all_channels) {
                errors.push_str(&format!("{path}:{no}: {}. ", e.message()));
            }
        }
        users.insert(name.to_vec(), user);
    }
    if !errors.is_empty() {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was \
             performed",
        );
        return Err(errors);
    }
    Ok(users)
}

/// Writes every user to `path` through a temporary file renamed over it.
pub fn save(path: &str, users: &[std::sync::Arc<User>]) -> std::io::Result<()> {
    let mut text = String::new();
    for u in users {
        text.push_str(&crate::cmd::acl::user_line(u));
        text.push('\n');
    }
    let tmp = format!(
        "{path}.tmp-{}-{}",
        std::process::id(),
        crate::server::unix_ms()
    );
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The users of the configuration file and the ACL file, once the server exists (Redis's
/// `ACLLoadUsersAtStartup`). The error is what Redis logs before exiting.
pub fn load_at_startup(server: &crate::Server) -> Result<(), String> {
    let all_channels = crate::cmd::acl::pubsub_default_all(server);
    let configured = std::mem::take(
        &mut *server
            .config
            .acl_users
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    let aclfile = server.config.value("aclfile").unwrap_or_default();
    if !aclfile.is_empty() && !configured.is_empty() {
        return Err(
            "Configuring Redis with users defined in redis.conf and at the same setting \
                    an ACL file path is invalid. This setup is very likely to lead to \
                    configuration errors and security holes, please define either an ACL file \
                    or declare users directly in your redis.conf, but not both."
                .into(),
        );
    }
    for (name, rules) in &configured {
        let user = super::build_user(name, rules, all_channels).map_err(|(rule, e)| {
            log::warn!(
                "Error loading ACL rule '{}' for the user named '{}': {}",
                String::from_utf8_lossy(&rule),
                String::from_utf8_lossy(name),
                e.message()
            );
            "Critical error while loading ACLs. Exiting.".to_owned()
        })?;
        if !user.enabled {
            log::info!(
                "The user '{}' is disabled (there is no 'on' modifier in the user description). \
                 Make sure this is not a configuration error.",
                String::from_utf8_lossy(name)
            );
        }
        server.acl.insert(user);
    }
    if !aclfile.is_empty() {
        let users = load(&aclfile, all_channels)
            .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
        server.acl.replace(users, all_channels);
    }
    Ok(())
}

fn trim<'a>(s: &'a [u8], set: &[u8]) -> &'a [u8] {
    let start = s.iter().position(|b| !set.contains(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !set.contains(b))
        .map_or(start, |e| e + 1);
    &s[start..end]
}
