//! Redis 7.0's access control lists: users, their passwords and what each may run, on which
//! keys and channels (`acl.c`).
//!
//! Users are immutable [`User`] values in one registry; a change (ACL SETUSER, DELUSER, LOAD,
//! `requirepass`) publishes new values and bumps [`Acl::version`]. A connection keeps the
//! `Arc<User>` it authenticated as and the version it read it at; before each command it
//! compares one atomic with its copy and looks its user up again only when they differ, so a
//! change applies to every connection from its next command, as in Redis, where connections
//! point at the one mutable user. A user who may run everything on everything (the default
//! user, unless restricted) skips the checks.

mod describe;
pub mod file;
mod ids;
mod selector;
mod user;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::table::{CommandSpec, flags};
pub(crate) use selector::{READ, WRITE};
pub use user::{User, hash_password, valid_name};

/// Why a rule was refused (Redis's `ACLSetUserStringError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    /// ENOENT.
    Unknown,
    /// EINVAL.
    Syntax,
    /// EEXIST.
    AfterAllKeys,
    /// EISDIR.
    AfterAllChannels,
    /// ENODEV.
    NoSuchPassword,
    /// EBADMSG.
    BadHash,
    /// ECHILD.
    FirstArgOfSubcommand,
}

impl RuleError {
    /// Redis's text.
    pub fn message(self) -> &'static str {
        match self {
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::AfterAllKeys => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and \
                 does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
            }
            RuleError::AfterAllChannels => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid \
                 and does not have any effect. Try 'resetchannels' to start with an empty list \
                 of channels"
            }
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase \
                 hexadecimal characters"
            }
            RuleError::FirstArgOfSubcommand => {
                "Allowing first-arg of a subcommand is not supported"
            }
        }
    }
}

/// Why a command was denied, with the argument at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The command.
    Command,
    /// The key at this argument position.
    Key(usize),
    /// The channel at this argument position.
    Channel(usize),
}

impl Denied {
    /// Redis's order of relevance (`ACL_DENIED_*` values, then the later argument).
    fn rank(self) -> (u8, usize) {
        match self {
            Denied::Command => (1, 0),
            Denied::Key(p) => (2, p),
            Denied::Channel(p) => (4, p),
        }
    }

    /// The error a client gets (after `-NOPERM `).
    pub fn message(self, command: &str) -> String {
        match self {
            Denied::Command => {
                format!("this user has no permissions to run the '{command}' command")
            }
            Denied::Key(_) => {
                "this user has no permissions to access one of the keys used as arguments".into()
            }
            Denied::Channel(_) => {
                "this user has no permissions to access one of the channels used as arguments"
                    .into()
            }
        }
    }

    /// The error of a script's `redis.call` (`scriptVerifyACL`).
    pub fn script_message(self) -> &'static str {
        match self {
            Denied::Command => "The user executing the script can't run this command or subcommand",
            Denied::Key(_) => {
                "The user executing the script can't access at least one of the keys mentioned \
                 in the command arguments"
            }
            Denied::Channel(_) => {
                "The user executing the script can't publish to the channel mentioned in the \
                 command"
            }
        }
    }

    /// The error of a queued command EXEC finds no longer allowed (`execCommand`).
    pub fn exec_message(self) -> String {
        let reason = match self {
            Denied::Command => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        };
        format!(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and \
             the EXEC call. This command is no longer allowed for the following reason: {reason}"
        )
    }

    /// ACL LOG's `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Denied::Command => "command",
            Denied::Key(_) => "key",
            Denied::Channel(_) => "channel",
        }
    }
}

/// One command as the checks see it.
pub struct Call<'a> {
    /// The arguments, the command's name first.
    pub args: &'a [&'a [u8]],
    /// Key positions with the `READ`/`WRITE` access each needs.
    pub keys: &'a [(usize, u8)],
    /// Channel positions, and whether each must equal a user's pattern (PSUBSCRIBE's patterns).
    pub channels: &'a [(usize, bool)],
}

/// The users.
pub struct Acl {
    users: RwLock<BTreeMap<Vec<u8>, Arc<User>>>,
    version: AtomicU64,
}

impl Default for Acl {
    fn default() -> Self {
        let default = User::default_user(false);
        Acl {
            users: RwLock::new(BTreeMap::from([(default.name.clone(), Arc::new(default))])),
            version: AtomicU64::new(1),
        }
    }
}

impl Acl {
    /// Bumped by every change.
    #[inline]
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Vec<u8>, Arc<User>>> {
        self.users.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Vec<u8>, Arc<User>>> {
        self.users.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A user by name.
    pub fn get(&self, name: &[u8]) -> Option<Arc<User>> {
        self.read().get(name).cloned()
    }

    /// The default user (it always exists).
    pub fn default_user(&self) -> Arc<User> {
        self.get(b"default")
            .expect("the default user cannot be removed")
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<Arc<User>> {
        self.read().values().cloned().collect()
    }

    /// Redis's `authRequired` half that depends on the server: the default user has a password
    /// or is off.
    pub fn auth_required(&self) -> bool {
        let d = self.default_user();
        !d.nopass || !d.enabled
    }

    /// The user `name` authenticates as with `password`, if it does.
    pub fn authenticate(&self, name: &[u8], password: &[u8]) -> Option<Arc<User>> {
        self.get(name).filter(|u| u.password_ok(password))
    }

    /// `ACL SETUSER name rules...`: all rules or none; creates the user if needed. The error
    /// names the rule at fault.
    pub fn set_user(
        &self,
        name: &[u8],
        rules: &[Vec<u8>],
        all_channels: bool,
    ) -> Result<(), (Vec<u8>, RuleError)> {
        let mut users = self.write();
        let mut user = match users.get(name) {
            Some(u) => User::clone(u),
            None => User::new(name, all_channels),
        };
        for rule in rules {
            user.apply(rule, all_channels)
                .map_err(|e| (rule.clone(), e))?;
        }
        users.insert(name.to_vec(), Arc::new(user));
        self.version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Adds or replaces a user.
    pub fn insert(&self, user: User) {
        self.write().insert(user.name.clone(), Arc::new(user));
        self.version.fetch_add(1, Ordering::Release);
    }

    /// Removes users; returns how many existed.
    pub fn delete(&self, names: &[&[u8]]) -> usize {
        let mut users = self.write();
        let n = names.iter().filter(|n| users.remove(**n).is_some()).count();
        self.version.fetch_add(1, Ordering::Release);
        n
    }

    /// Replaces every user (ACL LOAD, start-up), keeping the default user if `users` has none.
    pub fn replace(&self, mut users: BTreeMap<Vec<u8>, User>, all_channels: bool) {
        users
            .entry(b"default".to_vec())
            .or_insert_with(|| User::default_user(all_channels));
        *self.write() = users.into_iter().map(|(k, u)| (k, Arc::new(u))).collect();
        self.version.fetch_add(1, Ordering::Release);
    }

    /// `requirepass` (Redis's `ACLUpdateDefaultUserPassword`): the default user's only
    /// password, or `nopass`.
    pub fn set_default_password(&self, password: Option<&[u8]>) {
        let mut users = self.write();
        let mut user = User::clone(&users[&b"default"[..]]);
        let _ = user.apply(b"resetpass", false);
        match password {
            Some(p) => {
                let mut op = b">".to_vec();
                op.extend_from_slice(p);
                let _ = user.apply(&op, false);
            }
            None => {
                let _ = user.apply(b"nopass", false);
            }
        }
        users.insert(b"default".to_vec(), Arc::new(user));
        self.version.fetch_add(1, Ordering::Release);
    }
}

/// Builds a user from rules outside any registry (ACL files, `user` lines), to check them
/// before anything changes.
pub fn build_user(
    name: &[u8],
    rules: &[Vec<u8>],
    all_channels: bool,
) -> Result<User, (Vec<u8>, RuleError)> {
    let mut user = if name == b"default" {
        // Redis resets the default user before applying its line.
        let mut u = User::default_user(all_channels);
        u.apply(b"reset", all_channels).expect("valid");
        u
    } else {
        User::new(name, all_channels)
    };
    for rule in rules {
        user.apply(rule, all_channels)
            .map_err(|e| (rule.clone(), e))?;
    }
    Ok(user)
}

/// Checks a configuration file's `user` line as Redis's `ACLAppendUserForLoading` does: every
/// rule must apply, except that a command or category not (yet) known is let through.
pub fn check_config_rules(rules: &[Vec<u8>]) -> Result<(), (Vec<u8>, RuleError)> {
    let mut user = User::new(b"check", false);
    for rule in rules {
        match user.apply(rule, false) {
            Ok(()) | Err(RuleError::Unknown) => {}
            Err(e) => return Err((rule.clone(), e)),
        }
    }
    Ok(())
}

/// After `original` became `new`: the channel patterns its Pub/Sub clients are now held to, if
/// any of them may have lost a channel (Redis's `ACLKillPubsubClientsIfNeeded`: not when a
/// selector allows every channel, nor when every pattern the user had is still there).
pub fn channels_lost(original: &User, new: &User) -> Option<Vec<Vec<u8>>> {
    if new.selectors.iter().any(|s| s.all_channels) {
        return None;
    }
    let upcoming: Vec<Vec<u8>> = new
        .selectors
        .iter()
        .flat_map(|s| s.channels.iter().cloned())
        .collect();
    let kept = original
        .selectors
        .iter()
        .flat_map(|s| s.channels.iter())
        .all(|c| upcoming.contains(c));
    (!kept).then_some(upcoming)
}

/// Redis's `ACLMergeSelectorArguments`: words from `(` to the one ending in `)` make one
/// selector rule. `Err(i)`: the selector opened at word `i` is never closed.
pub fn merge_selectors(words: &[&[u8]]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (i, &w) in words.iter().enumerate() {
        if let Some((_, sel)) = &mut open {
            sel.push(b' ');
            sel.extend_from_slice(w);
            if w.last() == Some(&b')') {
                out.push(std::mem::take(sel));
                open = None;
            }
            continue;
        }
        if w.first() == Some(&b'(') && w.last() != Some(&b')') {
            open = Some((i, w.to_vec()));
            continue;
        }
        out.push(w.to_vec());
    }
    match open {
        Some((i, _)) => Err(i),
        None => Ok(out),
    }
}

/// Reads the client's user again after an ACL change (`version`). A user deleted meanwhile
/// leaves the client unauthenticated as the default user and closing, as Redis's
/// `ACLFreeUserAndKillClients` leaves it; returns false then.
pub fn refresh(server: &crate::Server, client: &mut crate::Client, version: u64) -> bool {
    let Some(user) = &client.user else {
        client.set_user(None, version);
        return true;
    };
    if let Some(now) = server.acl.get(&user.name) {
        client.set_user(Some(now), version);
        return true;
    }
    client.set_user(Some(server.acl.default_user()), version);
    client.authenticated = false;
    client.close_after_reply = true;
    false
}

/// Whether `user` may run `spec` (a subcommand's own entry for one) with `args`.
pub fn check(user: &User, spec: &'static CommandSpec, args: &[&[u8]]) -> Result<(), Denied> {
    // Every command dispatched comes from the table; one that did not could not be allowed.
    let Some(id) = ids::ids().of(spec) else {
        return Err(Denied::Command);
    };
    let needs_keys = !user.selectors.iter().all(|s| s.all_keys);
    let keys = if needs_keys {
        crate::cmd::command::acl_keys(spec, args)
    } else {
        Vec::new()
    };
    let channels = channels(full_name(spec), args.len());
    let call = Call {
        args,
        keys: &keys,
        channels: &channels,
    };
    user.check(id, spec.has(flags::NO_AUTH), &call)
}

/// The channel arguments of the Pub/Sub commands ACLs check (`ACLDoesCommandHaveChannels`):
/// PUBLISH and SPUBLISH's channel, SUBSCRIBE and SSUBSCRIBE's channels (matched against the
/// patterns), PSUBSCRIBE's patterns (which must equal one).
fn channels(full_name: &str, argc: usize) -> Vec<(usize, bool)> {
    match full_name {
        "publish" | "spublish" => vec![(1, false)],
        "subscribe" | "ssubscribe" => (1..argc).map(|p| (p, false)).collect(),
        "psubscribe" => (1..argc).map(|p| (p, true)).collect(),
        _ => Vec::new(),
    }
}

/// The full name of a table entry (`client|list`).
pub fn full_name(spec: &'static CommandSpec) -> &'static str {
    match ids::ids().of(spec) {
        Some(id) => &ids::ids().commands[id].full_name,
        None => spec.name,
    }
}

#[cfg(test)]
mod tests;
