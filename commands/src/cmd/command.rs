//! COMMAND, COMMAND COUNT / INFO / DOCS / LIST / GETKEYS / GETKEYSANDFLAGS / HELP, derived from
//! the command table (`crate::table::all()`), in Redis 7.0's reply formats. Tips, key specs and
//! argument docs, which the table does not carry, come from Redis's own data ([`meta`]).

pub(crate) mod meta;

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::args::{Args, eq_ignore_case};
use crate::cmd::config_cmd::reply_help;
use crate::config::glob_nocase;
use crate::ctx::Ctx;
use crate::table::{self, CommandSpec, flags::*};

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "command",
    arity: -1,
    flags: LOADING | STALE,
    first_key: 0,
    last_key: 0,
    step: 0,
    acl: ACL,
    group: "server",
    since: "2.8.13",
    summary: "Get array of Redis command details",
    complexity: "O(N) where N is the total number of Redis commands",
    handler: command_all,
    subcommands: &[
        sub(
            "count",
            2,
            "2.8.13",
            "Get total number of Redis commands",
            "O(1)",
            command_count,
        ),
        sub(
            "info",
            -2,
            "2.8.13",
            "Get array of specific Redis command details, or all when no argument is given.",
            "O(N) where N is the number of commands to look up",
            command_info,
        ),
        sub(
            "docs",
            -2,
            "7.0.0",
            "Get array of specific Redis command documentation",
            "O(N) where N is the number of commands to look up",
            command_docs,
        ),
        sub(
            "list",
            -2,
            "7.0.0",
            "Get an array of Redis command names",
            "O(N) where N is the total number of Redis commands",
            command_list,
        ),
        sub(
            "getkeys",
            -4,
            "2.8.13",
            "Extract keys given a full Redis command",
            "O(N) where N is the number of arguments to the command",
            command_getkeys,
        ),
        sub(
            "getkeysandflags",
            -4,
            "7.0.0",
            "Extract keys and access flags given a full Redis command",
            "O(N) where N is the number of arguments to the command",
            command_getkeysandflags,
        ),
        sub(
            "help",
            2,
            "5.0.0",
            "Show helpful text about the different subcommands",
            "O(1)",
            command_help,
        ),
    ],
}];

const ACL: &[&str] = &["slow", "connection"];

const fn sub(
    name: &'static str,
    arity: i32,
    since: &'static str,
    summary: &'static str,
    complexity: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    CommandSpec::new(name, arity, "server", handler)
        .with_flags(LOADING | STALE)
        .with_acl(ACL)
        .with_docs(since, summary, complexity)
}

const HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
];

/// Flag names in the order Redis 7.0's `addReplyCommandFlags` lists them (`may_replicate` is
/// hidden on purpose there; `movablekeys` comes from Redis's key specs).
const FLAG_ORDER: &[(u32, &str)] = &[
    (WRITE, "write"),
    (READONLY, "readonly"),
    (DENYOOM, "denyoom"),
    (ADMIN, "admin"),
    (PUBSUB, "pubsub"),
    (NOSCRIPT, "noscript"),
    (BLOCKING, "blocking"),
    (LOADING, "loading"),
    (STALE, "stale"),
    (SKIP_MONITOR, "skip_monitor"),
    (SKIP_SLOWLOG, "skip_slowlog"),
    (ASKING, "asking"),
    (FAST, "fast"),
    (NO_AUTH, "no_auth"),
    (NO_MANDATORY_KEYS, "no_mandatory_keys"),
    (NO_ASYNC_LOADING, "no_async_loading"),
    (NO_MULTI, "no_multi"),
];

/// ACL categories in Redis's bit order, which is the order COMMAND INFO prints them in.
pub(crate) const ACL_ORDER: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// `container|sub` for a subcommand, the plain name otherwise (CLIENT LIST's `cmd=`).
pub fn full_name(spec: &'static CommandSpec) -> String {
    static NAMES: OnceLock<HashMap<usize, String>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let mut m = HashMap::new();
        for c in table::all() {
            m.insert(std::ptr::from_ref(*c) as usize, c.name.to_owned());
            for s in c.subcommands {
                m.insert(
                    std::ptr::from_ref(s) as usize,
                    format!("{}|{}", c.name, s.name),
                );
            }
        }
        m
    });
    names
        .get(&(std::ptr::from_ref(spec) as usize))
        .cloned()
        .unwrap_or_else(|| spec.name.to_owned())
}

/// Finds `name` or `container|sub`, case-insensitively.
fn find(name: &[u8]) -> Option<(&'static CommandSpec, Option<&'static CommandSpec>)> {
    match name.iter().position(|&b| b == b'|') {
        None => table::lookup(name).map(|c| (c, None)),
        Some(i) => {
            let parent = table::lookup(&name[..i])?;
            let sub = parent.subcommand(&name[i + 1..])?;
            Some((parent, Some(sub)))
        }
    }
}

fn joined(parent: Option<&CommandSpec>, spec: &CommandSpec) -> String {
    match parent {
        Some(p) => format!("{}|{}", p.name, spec.name),
        None => spec.name.to_owned(),
    }
}

/// One COMMAND INFO entry (10 elements in Redis 7.0).
fn write_info(ctx: &mut Ctx<'_>, parent: Option<&CommandSpec>, spec: &CommandSpec) {
    let name = joined(parent, spec);
    let meta = meta::meta(&name);
    let r = &mut ctx.reply;
    r.array_len(10);
    r.bulk(name.as_bytes());
    r.int(i64::from(spec.arity));
    let movable = meta.is_some_and(|m| m.movable);
    let flags: Vec<&str> = FLAG_ORDER
        .iter()
        .filter(|(bit, _)| spec.has(*bit))
        .map(|(_, n)| *n)
        .chain(movable.then_some("movablekeys"))
        .chain(spec.has(ALLOW_BUSY).then_some("allow_busy"))
        .collect();
    r.set_len(flags.len());
    flags.iter().for_each(|f| r.simple(f));
    r.int(i64::from(spec.first_key));
    r.int(i64::from(spec.last_key));
    r.int(i64::from(spec.step));
    let mut acl: Vec<&str> = spec.acl.to_vec();
    acl.sort_by_key(|a| ACL_ORDER.iter().position(|o| o == a).unwrap_or(usize::MAX));
    r.set_len(acl.len());
    for a in &acl {
        r.simple(&format!("@{a}"));
    }
    match meta {
        Some(m) => {
            m.tips.write(r);
            m.key_specs.write(r);
        }
        None => {
            r.set_len(0);
            r.set_len(0);
        }
    }
    r.array_len(spec.subcommands.len());
    for s in spec.subcommands {
        write_info(ctx, Some(spec), s);
    }
}

/// One COMMAND DOCS value (the map for one command).
fn write_docs(ctx: &mut Ctx<'_>, parent: Option<&CommandSpec>, spec: &CommandSpec) {
    let name = joined(parent, spec);
    let extra: &[_] = meta::meta(&name).map_or(&[], |m| &m.docs);
    let subs = !spec.subcommands.is_empty();
    let r = &mut ctx.reply;
    // Redis documents no complexity for a few commands (MONITOR), and then has no such field.
    let has_complexity = !spec.complexity.is_empty();
    r.map_len(3 + usize::from(has_complexity) + extra.len() + usize::from(subs));
    for (k, v) in [
        ("summary", spec.summary),
        ("since", spec.since),
        ("group", spec.group),
        ("complexity", spec.complexity),
    ] {
        if v.is_empty() && k == "complexity" {
            continue;
        }
        r.bulk(k.as_bytes());
        r.bulk(v.as_bytes());
    }
    for (k, v) in extra {
        k.write(r);
        v.write(r);
    }
    if subs {
        r.bulk(b"subcommands");
        r.map_len(spec.subcommands.len());
        for s in spec.subcommands {
            ctx.reply.bulk(joined(Some(spec), s).as_bytes());
            write_docs(ctx, Some(spec), s);
        }
    }
}

/// `COMMAND`: every command's details.
fn command_all(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let all = table::all();
    ctx.reply.array_len(all.len());
    for c in all {
        write_info(ctx, None, c);
    }
}

/// `COMMAND COUNT`
fn command_count(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply.int(table::all().len() as i64);
}

/// `COMMAND INFO [name ...]`: details, null for unknown names.
fn command_info(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if args.len() == 2 {
        return command_all(ctx, args);
    }
    ctx.reply.array_len(args.len() - 2);
    for name in args.iter_from(2) {
        match find(name) {
            Some((c, None)) => write_info(ctx, None, c),
            Some((p, Some(s))) => write_info(ctx, Some(p), s),
            None => ctx.reply.null(),
        }
    }
}

/// `COMMAND DOCS [name ...]`: a map of name to docs; unknown names are left out.
fn command_docs(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let found: Vec<(Option<&CommandSpec>, &CommandSpec)> = if args.len() == 2 {
        table::all().iter().map(|c| (None, *c)).collect()
    } else {
        args.iter_from(2)
            .filter_map(find)
            .map(|(c, s)| match s {
                Some(s) => (Some(c), s),
                None => (None, c),
            })
            .collect()
    };
    ctx.reply.map_len(found.len());
    for (p, c) in found {
        ctx.reply.bulk(joined(p, c).as_bytes());
        write_docs(ctx, p, c);
    }
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]`
fn command_list(ctx: &mut Ctx<'_>, args: Args<'_>) {
    enum Filter<'a> {
        All,
        None,
        Acl(&'a [u8]),
        Pattern(&'a [u8]),
    }
    let filter = if args.len() == 2 {
        Filter::All
    } else if args.len() == 5 && eq_ignore_case(args.get(2), "filterby") {
        let (kind, arg) = (args.get(3), args.get(4));
        if eq_ignore_case(kind, "module") {
            // No modules: nothing belongs to one.
            Filter::None
        } else if eq_ignore_case(kind, "aclcat") {
            Filter::Acl(arg)
        } else if eq_ignore_case(kind, "pattern") {
            Filter::Pattern(arg)
        } else {
            ctx.syntax_error();
            return;
        }
    } else {
        ctx.syntax_error();
        return;
    };
    let mut names = Vec::new();
    for c in table::all() {
        let with_subs = std::iter::once((c.name.to_owned(), *c))
            .chain(c.subcommands.iter().map(|s| (joined(Some(c), s), s)));
        for (name, spec) in with_subs {
            let keep = match filter {
                Filter::All => true,
                Filter::None => false,
                Filter::Acl(cat) => spec
                    .acl
                    .iter()
                    .any(|a| a.as_bytes().eq_ignore_ascii_case(cat)),
                Filter::Pattern(p) => glob_nocase(p, name.as_bytes()),
            };
            if keep {
                names.push(name);
            }
        }
    }
    ctx.reply.array_len(names.len());
    for n in &names {
        ctx.reply.bulk(n.as_bytes());
    }
}

/// `COMMAND GETKEYS command [arg ...]`
/// The positions of MIGRATE's keys, as Redis's `migrateGetKeys` finds them: options before
/// KEYS are skipped with their arguments; after KEYS everything is a key (none if the key
/// argument is not empty then).
fn migrate_keys(argv: &[&[u8]]) -> std::ops::Range<usize> {
    let mut i = 6;
    while i < argv.len() {
        let a = argv[i];
        if a.eq_ignore_ascii_case(b"keys") {
            return if argv[3].is_empty() {
                i + 1..argv.len()
            } else {
                0..0
            };
        }
        if a.eq_ignore_ascii_case(b"auth") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"auth2") {
            i += 2;
        }
        i += 1;
    }
    3..4
}

fn command_getkeys(ctx: &mut Ctx<'_>, args: Args<'_>) {
    getkeys(ctx, args, false);
}

/// `COMMAND GETKEYSANDFLAGS command [arg ...]`
fn command_getkeysandflags(ctx: &mut Ctx<'_>, args: Args<'_>) {
    getkeys(ctx, args, true);
}

/// Redis's `getKeysSubcommandImpl`.
fn getkeys(ctx: &mut Ctx<'_>, args: Args<'_>, with_flags: bool) {
    let argv: Vec<&[u8]> = args.iter_from(2).collect();
    let Some(top) = table::lookup(argv[0]) else {
        ctx.reply.error("ERR Invalid command specified");
        return;
    };
    let (parent, spec) = if top.subcommands.is_empty() {
        (None, top)
    } else {
        match argv.get(1).and_then(|s| top.subcommand(s)) {
            Some(s) => (Some(top), s),
            None => {
                ctx.reply.error("ERR Invalid command specified");
                return;
            }
        }
    };
    let meta = meta::meta(&joined(parent, spec));
    let has_keys = match meta {
        // Redis's `doesCommandHaveKeys`: a key spec that names keys.
        Some(m) => m
            .key_specs
            .items()
            .iter()
            .any(|s| !s.get("flags").is_some_and(meta::not_key)),
        None => spec.first_key != 0,
    };
    if !has_keys {
        ctx.reply.error("ERR The command has no key arguments");
        return;
    }
    if !spec.arity_ok(argv.len()) {
        ctx.reply
            .error("ERR Invalid number of arguments specified for command");
        return;
    }
    let keys: Option<Vec<(usize, Option<&meta::Value>)>> = match meta {
        // Redis's `migrateGetKeys` (its KEYS spec is incomplete): the key argument, or the
        // keys after KEYS, which leaves the empty key argument out.
        Some(m) if spec.name == "migrate" => {
            let flags = m.key_specs.items().first().and_then(|s| s.get("flags"));
            Some(migrate_keys(&argv).map(|p| (p, flags)).collect())
        }
        Some(m) => meta::keys_from_specs(&m.key_specs, &argv)
            .map(|v| v.into_iter().map(|k| (k.pos, Some(k.flags))).collect()),
        None => legacy_keys(spec, argv.len()).map(|v| v.into_iter().map(|p| (p, None)).collect()),
    };
    let Some(keys) = keys.filter(|k| !k.is_empty()) else {
        if spec.has(NO_MANDATORY_KEYS) {
            ctx.reply.array_len(0);
        } else {
            ctx.reply
                .error("ERR Invalid arguments specified for command");
        }
        return;
    };
    let resolved = variable_flags(spec.name, &argv);
    ctx.reply.array_len(keys.len());
    for (pos, flags) in keys {
        if with_flags {
            ctx.reply.array_len(2);
            ctx.reply.bulk(argv[pos]);
            match (&resolved, flags) {
                (Some(names), _) => {
                    ctx.reply.set_len(names.len());
                    names.iter().for_each(|n| ctx.reply.simple(n));
                }
                (None, Some(f)) => f.write(&mut ctx.reply),
                (None, None) => ctx.reply.set_len(0),
            }
        } else {
            ctx.reply.bulk(argv[pos]);
        }
    }
}

/// The keys of a command for the ACL checks (`getKeysFromCommandWithSpecs`), each with the
/// access it needs: `access` reads, `insert`, `delete` and `update` write; none where Redis
/// knows no flags (any pattern then matches).
pub(crate) fn acl_keys(spec: &'static CommandSpec, argv: &[&[u8]]) -> Vec<(usize, u8)> {
    use crate::acl::{READ, WRITE};
    let access = |names: &mut dyn Iterator<Item = &[u8]>| {
        names.fold(0, |a, n| {
            a | match n {
                b"access" => READ,
                b"insert" | b"delete" | b"update" => WRITE,
                _ => 0,
            }
        })
    };
    let name = crate::acl::full_name(spec);
    let meta = meta::meta(name);
    let keys: Vec<(usize, u8)> = match meta {
        Some(m) if spec.name == "migrate" => {
            let flags = m.key_specs.items().first().and_then(|s| s.get("flags"));
            let a = flags.map_or(0, |f| {
                access(&mut f.items().iter().filter_map(|v| v.bytes()))
            });
            migrate_keys(argv).map(|p| (p, a)).collect()
        }
        Some(m) => meta::keys_from_specs(&m.key_specs, argv)
            .unwrap_or_default()
            .into_iter()
            .map(|k| {
                (
                    k.pos,
                    access(&mut k.flags.items().iter().filter_map(|v| v.bytes())),
                )
            })
            .collect(),
        None => legacy_keys(spec, argv.len())
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p, 0))
            .collect(),
    };
    match variable_flags(spec.name, argv) {
        Some(names) => {
            let a = access(&mut names.iter().map(|n| n.as_bytes()));
            keys.into_iter().map(|(p, _)| (p, a)).collect()
        }
        None => keys,
    }
}

/// The key flags Redis's getkeys procs resolve for the `variable_flags` commands (`setGetKeys`,
/// `bitfieldGetKeys`): they depend on the arguments.
fn variable_flags(name: &str, argv: &[&[u8]]) -> Option<&'static [&'static str]> {
    const RO: &[&str] = &["RO", "access"];
    const RW: &[&str] = &["RW", "access", "update"];
    match name {
        "set" => Some(if argv.iter().skip(3).any(|a| eq_ignore_case(a, "get")) {
            RW
        } else {
            &["OW", "update"]
        }),
        "bitfield" => {
            let mut i = 2;
            while i < argv.len() {
                let rem = argv.len() - i - 1;
                let a = argv[i];
                if eq_ignore_case(a, "get") && rem >= 2 {
                    i += 3;
                } else if eq_ignore_case(a, "overflow") && rem >= 1 {
                    i += 2;
                } else {
                    // SET, INCRBY or a syntax error: assume the command writes.
                    return Some(RW);
                }
            }
            Some(RO)
        }
        _ => None,
    }
}

/// Keys from the table's first/last/step, for commands Redis has no key specs for.
fn legacy_keys(spec: &CommandSpec, argc: usize) -> Option<Vec<usize>> {
    let argc = argc as i64;
    let first = i64::from(spec.first_key);
    let last = if spec.last_key < 0 {
        argc + i64::from(spec.last_key)
    } else {
        i64::from(spec.last_key)
    };
    let step = i64::from(spec.step.max(1));
    if first <= 0 || last >= argc || last < first {
        return None;
    }
    Some(
        (first..=last)
            .step_by(step as usize)
            .map(|p| p as usize)
            .collect(),
    )
}

/// `COMMAND HELP`
fn command_help(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    reply_help(&mut ctx.reply, HELP);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_key_positions() {
        let spec = |first_key, last_key, step| CommandSpec {
            name: "x",
            arity: -2,
            flags: 0,
            first_key,
            last_key,
            step,
            acl: &[],
            group: "generic",
            since: "1.0.0",
            summary: "",
            complexity: "",
            handler: command_help,
            subcommands: &[],
        };
        assert_eq!(legacy_keys(&spec(1, -1, 2), 5), Some(vec![1, 3]));
        assert_eq!(legacy_keys(&spec(1, 1, 1), 1), None);
        assert_eq!(legacy_keys(&spec(0, 0, 0), 3), None);
    }

    #[test]
    fn full_names() {
        let client = table::lookup(b"client").expect("client exists");
        let list = client.subcommand(b"list").expect("client list exists");
        assert_eq!(full_name(list), "client|list");
        assert_eq!(full_name(client), "client");
    }
}
