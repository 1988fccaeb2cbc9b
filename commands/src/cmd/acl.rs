//! The ACL command (Redis's `aclCommand`) over [`crate::acl`]: users are created, changed,
//! listed, checked (DRYRUN), deleted (their connections closed), saved to and loaded from the
//! `aclfile`; LOG keeps the denied commands, keys, channels and authentications, grouped as
//! Redis groups them.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::acl::{self, Denied, User};
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::cmd::config_cmd::reply_help;
use crate::config::Config;
use crate::ctx::Ctx;
use crate::table::{self, CommandSpec, flags::*};

const ADMIN_FLAGS: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const ADMIN_ACL: &[&str] = &["admin", "slow", "dangerous"];

/// An administrative subcommand (its docs follow with `with_docs`).
const fn admin(name: &'static str, arity: i32, handler: table::Handler) -> CommandSpec {
    CommandSpec::new(name, arity, "server", handler)
        .with_flags(ADMIN_FLAGS)
        .with_acl(ADMIN_ACL)
}

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("acl", -2, "server", help)
    .with_acl(&["slow"])
    .with_docs(
        "6.0.0",
        "A container for Access List Control commands ",
        "Depends on subcommand.",
    )
    .with_subcommands(SUBCOMMANDS)];

const SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("cat", -2, "server", cat)
        .with_flags(NOSCRIPT | LOADING | STALE)
        .with_acl(&["slow"])
        .with_docs(
            "6.0.0",
            "List the ACL categories or the commands inside a category",
            "O(1) since the categories and commands are a fixed set.",
        ),
    admin("deluser", -3, deluser).with_docs(
        "6.0.0",
        "Remove the specified ACL users and the associated rules",
        "O(1) amortized time considering the typical user.",
    ),
    admin("dryrun", -4, dryrun).with_docs(
        "7.0.0",
        "Returns whether the user can execute the given command without executing the command.",
        "O(1).",
    ),
    CommandSpec::new("genpass", -2, "server", genpass)
        .with_flags(NOSCRIPT | LOADING | STALE)
        .with_acl(&["slow"])
        .with_docs(
            "6.0.0",
            "Generate a pseudorandom secure password to use for ACL users",
            "O(1)",
        ),
    admin("getuser", 3, getuser).with_docs(
        "6.0.0",
        "Get the rules for a specific ACL user",
        "O(N). Where N is the number of password, command and pattern rules that the user has.",
    ),
    CommandSpec::new("help", 2, "server", help)
        .with_flags(LOADING | STALE)
        .with_acl(&["slow"])
        .with_docs(
            "6.0.0",
            "Show helpful text about the different subcommands",
            "O(1)",
        ),
    admin("list", 2, list).with_docs(
        "6.0.0",
        "List the current ACL rules in ACL config file format",
        "O(N). Where N is the number of configured users.",
    ),
    admin("load", 2, load).with_docs(
        "6.0.0",
        "Reload the ACLs from the configured ACL file",
        "O(N). Where N is the number of configured users.",
    ),
    admin("log", -2, log).with_docs(
        "6.0.0",
        "List latest events denied because of ACLs in place",
        "O(N) with N being the number of entries shown.",
    ),
    admin("save", 2, save).with_docs(
        "6.0.0",
        "Save the current ACL rules in the configured ACL file",
        "O(N). Where N is the number of configured users.",
    ),
    admin("setuser", -3, setuser).with_docs(
        "6.0.0",
        "Modify or create the rules for a specific ACL user",
        "O(N). Where N is the number of rules provided.",
    ),
    admin("users", 2, users).with_docs(
        "6.0.0",
        "List the username of all the configured ACL rules",
        "O(N). Where N is the number of configured users.",
    ),
    CommandSpec::new("whoami", 2, "server", whoami)
        .with_flags(NOSCRIPT | LOADING | STALE)
        .with_acl(&["slow"])
        .with_docs(
            "6.0.0",
            "Return the name of the user associated to the current connection",
            "O(1)",
        ),
];

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
];

fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    reply_help(&mut ctx.reply, HELP);
}

/// The name of the user `ctx`'s client runs as.
fn user_name(ctx: &Ctx<'_>) -> Vec<u8> {
    match &ctx.client.user {
        Some(u) => u.name.clone(),
        None => b"default".to_vec(),
    }
}

fn whoami(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let name = user_name(ctx);
    ctx.reply.bulk(&name);
}

fn users(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let users = ctx.server.acl.users();
    ctx.reply.array_len(users.len());
    for u in users {
        ctx.reply.bulk(&u.name);
    }
}

/// `user <name> <rules>`, as ACL LIST, ACL files and CONFIG REWRITE write a user.
pub(crate) fn user_line(u: &User) -> String {
    format!("user {} {}", String::from_utf8_lossy(&u.name), u.describe())
}

/// `ACL LIST`: every user in ACL-file form, by name.
fn list(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let users = ctx.server.acl.users();
    ctx.reply.array_len(users.len());
    for u in users {
        ctx.reply.bulk(user_line(&u).as_bytes());
    }
}

/// `ACL GETUSER name`: flags, passwords, the root selector's commands, keys and channels,
/// then the other selectors; null for an unknown user.
fn getuser(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(u) = ctx.server.acl.get(args.get(2)) else {
        ctx.reply.null();
        return;
    };
    let r = &mut ctx.reply;
    r.map_len(6);
    r.bulk(b"flags");
    let flags = u.flags();
    r.set_len(flags.len());
    for f in flags {
        r.bulk(f.as_bytes());
    }
    r.bulk(b"passwords");
    r.array_len(u.passwords.len());
    for p in &u.passwords {
        r.bulk(p.as_bytes());
    }
    let selectors = u.selector_fields();
    let (root, rest) = selectors.split_first().expect("a root selector");
    for (field, value) in root {
        r.bulk(field.as_bytes());
        r.bulk(value.as_bytes());
    }
    r.bulk(b"selectors");
    r.array_len(rest.len());
    for s in rest {
        r.map_len(s.len());
        for (field, value) in s {
            r.bulk(field.as_bytes());
            r.bulk(value.as_bytes());
        }
    }
}

/// `ACL CAT [category]`: the categories, or the commands (`container|sub` for subcommands)
/// in one.
fn cat(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if args.len() > 3 {
        ctx.subcommand_syntax_error(args);
        return;
    }
    let Some(wanted) = args.try_get(2) else {
        ctx.reply.array_len(crate::cmd::command::ACL_ORDER.len());
        for c in crate::cmd::command::ACL_ORDER {
            ctx.reply.bulk(c.as_bytes());
        }
        return;
    };
    let Some(category) = crate::cmd::command::ACL_ORDER
        .iter()
        .find(|c| c.as_bytes().eq_ignore_ascii_case(wanted))
    else {
        ctx.reply.error(&format!(
            "ERR Unknown category '{}'",
            String::from_utf8_lossy(wanted)
        ));
        return;
    };
    let mut names: Vec<String> = Vec::new();
    for spec in table::all() {
        if spec.acl.contains(category) {
            names.push(spec.name.to_string());
        }
        for sub in spec.subcommands {
            if sub.acl.contains(category) {
                names.push(format!("{}|{}", spec.name, sub.name));
            }
        }
    }
    ctx.reply.array_len(names.len());
    for n in names {
        ctx.reply.bulk(n.as_bytes());
    }
}

/// `ACL DRYRUN user command [arg ...]`: whether the user could run it, and if not why (a
/// bulk string, not an error).
fn dryrun(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(user) = ctx.server.acl.get(args.get(2)) else {
        ctx.reply.error(&format!(
            "ERR User '{}' not found",
            String::from_utf8_lossy(args.get(2))
        ));
        return;
    };
    let name = args.get(3);
    let found = table::lookup(name).and_then(|base| {
        if base.subcommands.is_empty() {
            Some(base)
        } else {
            args.try_get(4).and_then(|s| base.subcommand(s))
        }
    });
    let Some(spec) = found else {
        ctx.reply.error(&format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(name)
        ));
        return;
    };
    if !spec.arity_ok(args.len() - 3) {
        ctx.reply.error(&format!(
            "ERR wrong number of arguments for '{}' command",
            String::from_utf8_lossy(name).to_lowercase()
        ));
        return;
    }
    let argv: Vec<&[u8]> = args.iter_from(3).collect();
    let what = |p: usize| String::from_utf8_lossy(argv[p]).into_owned();
    let text = match acl::check(&user, spec, &argv) {
        Ok(()) => return ctx.reply.ok(),
        Err(Denied::Command) => format!(
            "This user has no permissions to run the '{}' command",
            acl::full_name(spec)
        ),
        Err(Denied::Key(p)) => {
            format!(
                "This user has no permissions to access the '{}' key",
                what(p)
            )
        }
        Err(Denied::Channel(p)) => format!(
            "This user has no permissions to access the '{}' channel",
            what(p)
        ),
    };
    ctx.reply.bulk(text.as_bytes());
}

/// `ACL GENPASS [bits]`: random hex from the kernel's generator, 4 bits per character.
fn genpass(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let bits = match args.try_get(2) {
        None => 256,
        Some(a) => match parse_i64(a) {
            None => return ctx.not_integer(),
            Some(b) if b <= 0 || b > 4096 => {
                return ctx.reply.error(
                    "ERR ACL GENPASS argument must be the number of bits for the output \
                     password, a positive number up to 4096",
                );
            }
            Some(b) => b as usize,
        },
    };
    let chars = bits.div_ceil(4);
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    if let Err(e) = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
    {
        ctx.reply
            .error(&format!("ERR cannot read /dev/urandom: {e}"));
        return;
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    ctx.reply.bulk(&hex.as_bytes()[..chars]);
}

/// `ACL DELUSER name ...`: the default user cannot go; the clients of a deleted user are
/// closed (Redis's `ACLFreeUserAndKillClients`).
fn deluser(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if args.iter_from(2).any(|u| u == b"default") {
        ctx.reply.error("ERR The 'default' user cannot be removed");
        return;
    }
    let names: Vec<&[u8]> = args.iter_from(2).collect();
    let deleted = ctx.server.acl.delete(&names);
    kill_clients_of(ctx, &names);
    ctx.reply.int(deleted as i64);
}

/// Closes every client authenticated as one of `names` (this one after its reply).
pub(crate) fn kill_clients_of(ctx: &mut Ctx<'_>, names: &[&[u8]]) -> usize {
    let mut killed = 0;
    for c in ctx.server.clients.snapshot() {
        let user = c.user.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !names.iter().any(|n| **n == *user) || c.killed() {
            continue;
        }
        if c.id == ctx.client.id {
            ctx.client.close_after_reply = true;
        } else {
            c.kill.store(true, std::sync::atomic::Ordering::Release);
            ctx.server.wake(c.thread);
        }
        killed += 1;
    }
    killed
}

/// The `aclfile`, if one is set; otherwise answers Redis's error.
fn acl_file(ctx: &mut Ctx<'_>) -> Option<String> {
    let path = ctx.server.config.value("aclfile").unwrap_or_default();
    if path.is_empty() {
        ctx.reply.error(
            "ERR This Redis instance is not configured to use an ACL file. You may want to \
             specify users via the ACL SETUSER command and then issue a CONFIG REWRITE \
             (assuming you have a Redis configuration file set) in order to store users in the \
             Redis configuration.",
        );
        return None;
    }
    Some(path)
}

/// `ACL LOAD`: the users of the ACL file replace every user, or nothing changes; the clients
/// of the users replaced are closed, except the default user's (Redis keeps that one user).
fn load(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let Some(path) = acl_file(ctx) else { return };
    let all_channels = pubsub_default_all(ctx.server);
    match acl::file::load(&path, all_channels) {
        Ok(users) => {
            let old: Vec<Vec<u8>> = ctx
                .server
                .acl
                .users()
                .iter()
                .map(|u| u.name.clone())
                .filter(|n| n != b"default")
                .collect();
            ctx.server.acl.replace(users, all_channels);
            let names: Vec<&[u8]> = old.iter().map(Vec::as_slice).collect();
            kill_clients_of(ctx, &names);
            ctx.reply.ok();
        }
        Err(errors) => ctx.reply.error(&format!("ERR {errors}")),
    }
}

/// `ACL SAVE`: every user to the ACL file.
fn save(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let Some(path) = acl_file(ctx) else { return };
    match acl::file::save(&path, &ctx.server.acl.users()) {
        Ok(()) => ctx.reply.ok(),
        Err(e) => {
            log::warn!("Writing ACL file for ACL SAVE: {e}");
            ctx.reply.error(
                "ERR There was an error trying to save the ACLs. Please check the server logs \
                 for more information",
            );
        }
    }
}

/// `ACL SETUSER name rule ...`: every rule applies, to a copy, or none does.
fn setuser(ctx: &mut Ctx<'_>, args: Args<'_>) {
    for i in 2..args.len() {
        ctx.redact(i);
    }
    let name = args.get(2);
    if !acl::valid_name(name) {
        ctx.reply
            .error("ERR Usernames can't contain spaces or null characters");
        return;
    }
    let words: Vec<&[u8]> = args.iter_from(3).collect();
    let rules = match acl::merge_selectors(&words) {
        Ok(rules) => rules,
        Err(i) => {
            // Redis names the argument at the selector's index among the rules, counted from
            // the command's name.
            ctx.reply.error(&format!(
                "ERR Unmatched parenthesis in acl selector starting at '{}'.",
                String::from_utf8_lossy(args.get(i + 3))
            ));
            return;
        }
    };
    let all_channels = pubsub_default_all(ctx.server);
    let original = ctx.server.acl.get(name);
    match ctx.server.acl.set_user(name, &rules, all_channels) {
        Ok(()) => {
            if let (Some(original), Some(new)) = (original, ctx.server.acl.get(name))
                && let Some(allowed) = acl::channels_lost(&original, &new)
            {
                kill_subscribers_beyond(ctx, name, &allowed);
            }
            ctx.reply.ok();
        }
        Err((rule, e)) => ctx.reply.error(&format!(
            "ERR Error in ACL SETUSER modifier '{}': {}",
            String::from_utf8_lossy(&rule),
            e.message()
        )),
    }
}

/// Closes the Pub/Sub clients of user `name` subscribed to a channel or pattern `allowed` no
/// longer covers (a pattern must be one of them, letter for letter).
fn kill_subscribers_beyond(ctx: &mut Ctx<'_>, name: &[u8], allowed: &[Vec<u8>]) {
    let of_user = |c: &crate::client::ClientShared| {
        **c.user.lock().unwrap_or_else(|e| e.into_inner()) == *name
    };
    for (kind, channel, client) in crate::pubsub::registry().subscriptions(of_user) {
        let denied = match kind {
            crate::pubsub::Kind::Pattern => !allowed.contains(&channel),
            _ => !allowed
                .iter()
                .any(|p| crate::cmd::keys::glob::matches(p, &channel)),
        };
        if !denied || client.killed() {
            continue;
        }
        if client.id == ctx.client.id {
            ctx.client.close_after_reply = true;
        } else {
            client
                .kill
                .store(true, std::sync::atomic::Ordering::Release);
            ctx.server.wake(client.thread);
        }
    }
}

/// `acl-pubsub-default allchannels`: new users may use every channel.
pub(crate) fn pubsub_default_all(server: &crate::Server) -> bool {
    server
        .config
        .value("acl-pubsub-default")
        .is_some_and(|v| v == "allchannels")
}

/// Redis's `ACL_LOG_GROUPING_MAX_TIME_DELTA`: a failure within this many ms of a matching
/// entry counts into it.
const GROUPING_MS: u64 = 60_000;

/// One ACL LOG entry.
#[derive(Debug, Clone)]
struct Entry {
    count: u64,
    /// `command`, `key`, `channel` or `auth`.
    reason: &'static str,
    /// `toplevel`, `multi` or `lua`.
    context: &'static str,
    /// The command, key or channel denied; for `auth`, the command as the client named it.
    object: Vec<u8>,
    username: Vec<u8>,
    /// When it last happened, Unix ms.
    at_ms: u64,
    /// The client's CLIENT INFO line then.
    client_info: String,
}

/// The ACL log, newest first.
#[derive(Debug, Default)]
pub struct AclLog(Mutex<VecDeque<Entry>>);

impl AclLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Redis's `addACLLogEntry`: a match (same reason, context, object and user) among the ten
    /// newest entries within a minute is counted into and moved to the front, else a new entry
    /// is added and the log trimmed to `acllog-max-len`.
    fn add(&self, server: &crate::Server, new: Entry) {
        let max = Config::load(&server.config.acllog_max_len) as usize;
        let mut log = self.lock();
        let found = log.iter().take(10).position(|e| {
            e.reason == new.reason
                && e.context == new.context
                && e.object == new.object
                && e.username == new.username
                && new.at_ms.abs_diff(e.at_ms) <= GROUPING_MS
        });
        match found.and_then(|i| log.remove(i)) {
            Some(mut e) => {
                e.count += 1;
                e.at_ms = new.at_ms;
                e.client_info = new.client_info;
                log.push_front(e);
            }
            None => {
                log.push_front(new);
                log.truncate(max);
            }
        }
    }
}

/// Records a failed authentication by `ctx`'s client (`ACL_DENIED_AUTH`).
pub(crate) fn log_auth_failure(ctx: &mut Ctx<'_>, object: &[u8], username: &[u8], now_ms: u64) {
    let client_info = crate::cmd::client::info_line(ctx, 0);
    let context = if ctx.client.multi.is_some() {
        "multi"
    } else {
        "toplevel"
    };
    ctx.server.acl_log.add(
        ctx.server,
        Entry {
            count: 1,
            reason: "auth",
            context,
            object: object.to_vec(),
            username: username.to_vec(),
            at_ms: now_ms,
            client_info,
        },
    );
}

/// Records a command the client's user may not run (`context`: `toplevel`, `multi`, `lua`),
/// with the client as it shows while running `running` (the script's EVAL, or `spec` itself).
pub(crate) fn log_denied(
    server: &crate::Server,
    client: &crate::Client,
    denied: Denied,
    spec: &'static CommandSpec,
    argv: &[&[u8]],
    context: &'static str,
    running: &'static CommandSpec,
) {
    let object = match denied {
        Denied::Command => acl::full_name(spec).as_bytes().to_vec(),
        Denied::Key(p) | Denied::Channel(p) => argv[p].to_vec(),
    };
    let username = client
        .user
        .as_ref()
        .map_or_else(|| b"default".to_vec(), |u| u.name.clone());
    let argv_len = argv.iter().map(|a| a.len() as u64).sum();
    let client_info = crate::cmd::client::info_line_of(server, client, running, argv_len);
    server.acl_log.add(
        server,
        Entry {
            count: 1,
            reason: denied.reason(),
            context,
            object,
            username,
            at_ms: crate::server::unix_ms(),
            client_info,
        },
    );
}

/// `ACL LOG [count|RESET]`
fn log(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if args.len() > 3 {
        ctx.subcommand_syntax_error(args);
        return;
    }
    let mut count = 10i64;
    if let Some(a) = args.try_get(2) {
        if eq_ignore_case(a, "reset") {
            ctx.server.acl_log.lock().clear();
            ctx.reply.ok();
            return;
        }
        let Some(n) = parse_i64(a) else {
            return ctx.not_integer();
        };
        count = n.max(0);
    }
    let entries: Vec<Entry> = {
        let log = ctx.server.acl_log.lock();
        log.iter().take(count as usize).cloned().collect()
    };
    let now = crate::server::unix_ms();
    let r = &mut ctx.reply;
    r.array_len(entries.len());
    for e in entries {
        r.map_len(7);
        r.bulk(b"count");
        r.int(e.count as i64);
        r.bulk(b"reason");
        r.bulk(e.reason.as_bytes());
        r.bulk(b"context");
        r.bulk(e.context.as_bytes());
        r.bulk(b"object");
        r.bulk(&e.object);
        r.bulk(b"username");
        r.bulk(&e.username);
        r.bulk(b"age-seconds");
        r.double(now.saturating_sub(e.at_ms) as f64 / 1000.0);
        r.bulk(b"client-info");
        r.bulk(e.client_info.as_bytes());
    }
}
