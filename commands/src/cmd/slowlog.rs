//! SLOWLOG GET / LEN / RESET / HELP over the process's [`crate::slowlog::SlowLog`] (Redis's
//! `slowlogCommand`).

use crate::args::{Args, parse_i64};
use crate::cmd::config_cmd::reply_help;
use crate::ctx::Ctx;
use crate::table::{CommandSpec, flags::*};

/// Entries SLOWLOG GET answers without a count.
const DEFAULT_COUNT: usize = 10;

/// The container is never run itself: the dispatcher resolves its subcommands.
fn slowlog(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply
        .error("ERR wrong number of arguments for 'slowlog' command");
}

/// `SLOWLOG GET [count]`: the newest `count` entries (10 by default, -1 for all).
fn get(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if args.len() > 3 {
        // Redis's `addReplySubcommandSyntaxError`, quoting the subcommand as typed.
        let sub = args.get(1);
        let sub = &sub[..sub.len().min(128)];
        let msg = [
            &b"ERR unknown subcommand or wrong number of arguments for '"[..],
            sub,
            b"'. Try SLOWLOG HELP.",
        ]
        .concat();
        ctx.reply.error_bytes(&msg);
        return;
    }
    let count = match args.try_get(2) {
        None => Some(DEFAULT_COUNT),
        Some(arg) => match parse_i64(arg) {
            Some(-1) => None,
            Some(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            // Not an integer or below -1: Redis answers both with the range's own message.
            _ => {
                ctx.reply
                    .error("ERR count should be greater than or equal to -1");
                return;
            }
        },
    };
    ctx.server.slowlog.write(&mut ctx.reply, count);
}

/// `SLOWLOG LEN`
fn len(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let n = ctx.server.slowlog.len();
    ctx.reply.int(i64::try_from(n).unwrap_or(i64::MAX));
}

/// `SLOWLOG RESET`
fn reset(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.server.slowlog.reset();
    ctx.reply.ok();
}

const HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

/// `SLOWLOG HELP`
fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    reply_help(&mut ctx.reply, HELP);
}

/// One of the administrative SLOWLOG subcommands (all but HELP).
const fn admin_sub(
    name: &'static str,
    arity: i32,
    summary: &'static str,
    complexity: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    CommandSpec::new(name, arity, "server", handler)
        .with_flags(ADMIN | LOADING | STALE)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("2.2.12", summary, complexity)
}

// As Redis's `commands.c` lists them (its replies follow a per-process random dict order).
const SUBCOMMANDS: &[CommandSpec] = &[
    admin_sub(
        "get",
        -2,
        "Get the slow log's entries",
        "O(N) where N is the number of entries returned",
        get,
    ),
    CommandSpec {
        name: "help",
        arity: 2,
        flags: LOADING | STALE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["slow"],
        group: "server",
        since: "6.2.0",
        summary: "Show helpful text about the different subcommands",
        complexity: "O(1)",
        handler: help,
        subcommands: &[],
    },
    admin_sub("len", 2, "Get the slow log's length", "O(1)", len),
    admin_sub(
        "reset",
        2,
        "Clear all entries from the slow log",
        "O(N) where N is the number of entries in the slowlog",
        reset,
    ),
];

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "slowlog",
    arity: -2,
    flags: 0,
    first_key: 0,
    last_key: 0,
    step: 0,
    acl: &["slow"],
    group: "server",
    since: "2.2.12",
    summary: "A container for slow log commands",
    complexity: "Depends on subcommand.",
    handler: slowlog,
    subcommands: SUBCOMMANDS,
}];
