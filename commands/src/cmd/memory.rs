//! MEMORY USAGE / DOCTOR / PURGE / HELP (Redis's `object.c` memoryCommand).
//!
//! Ferrite's allocator is not Redis's, so sizes are estimates of the same shape: the key, the
//! value and a fixed per-key overhead comparable to Redis's robj, sds headers and dict entry.

use ferrite_hybridlog::Value;

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::cmd::config_cmd::reply_help;
use crate::ctx::Ctx;
use crate::table::{CommandSpec, flags::*};

/// Bytes Redis spends per key beyond key and value: a dictEntry (24), a robj (16), two sds
/// headers with their terminators (about 8), rounded as its allocator rounds small sizes.
const KEY_OVERHEAD: usize = 48;

/// Rounds up to the allocator's 8-byte granularity.
fn round8(n: usize) -> usize {
    n.saturating_add(7) & !7
}

/// The container is never run itself: the dispatcher resolves its subcommands.
fn memory(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply
        .error("ERR wrong number of arguments for 'memory' command");
}

/// `MEMORY USAGE key [SAMPLES count]`: options are checked before the key is looked up, and
/// (as Redis's `dictFind`) the lookup counts no keyspace hit or miss. Ferrite measures whole
/// values, so the sample count only has to be valid.
fn usage(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mut j = 3;
    while j < args.len() {
        if eq_ignore_case(args.get(j), "samples") && j + 1 < args.len() {
            match parse_i64(args.get(j + 1)) {
                None => return ctx.not_integer(),
                Some(n) if n < 0 => return ctx.syntax_error(),
                Some(_) => {}
            }
            j += 2;
        } else {
            return ctx.syntax_error();
        }
    }
    let key = args.get(2);
    let db = ctx.client.db;
    let size = ctx
        .store
        .read_value(db, key, ctx.now_ms, |e| match e.value {
            Value::String(s) => round8(s.len() + 1),
            Value::Object(o) => o.memory_usage(),
        });
    match size {
        None => ctx.reply.null(),
        Some(n) => {
            let total = KEY_OVERHEAD
                .saturating_add(round8(key.len() + 1))
                .saturating_add(n);
            ctx.reply.int(i64::try_from(total).unwrap_or(i64::MAX));
        }
    }
}

/// `MEMORY DOCTOR`: Ferrite's store has no fragmentation or peak history to diagnose.
fn doctor(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply.verbatim(
        "txt",
        b"Hi Sam, I can't find any memory issue in your instance. I can only account for what \
          occurs on this base.\n",
    );
}

/// `MEMORY PURGE`: nothing to hand back to the allocator on demand.
fn purge(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply.ok();
}

const HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

/// `MEMORY HELP`
fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    reply_help(&mut ctx.reply, HELP);
}

/// A MEMORY subcommand without keys.
const fn sub(
    name: &'static str,
    flags: u32,
    summary: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    CommandSpec::new(name, 2, "server", handler)
        .with_flags(flags)
        .with_acl(&["slow"])
        .with_docs("4.0.0", summary, "O(1)")
}

const SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "usage",
        arity: -3,
        flags: READONLY,
        first_key: 2,
        last_key: 2,
        step: 1,
        acl: &["read", "slow"],
        group: "server",
        since: "4.0.0",
        summary: "Estimate the memory usage of a key",
        complexity: "O(N) where N is the number of samples.",
        handler: usage,
        subcommands: &[],
    },
    sub("doctor", 0, "Outputs memory problems report", doctor),
    sub("purge", 0, "Ask the allocator to release memory", purge),
    sub(
        "help",
        LOADING | STALE,
        "Show helpful text about the different subcommands",
        help,
    ),
];

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "memory",
    arity: -2,
    flags: 0,
    first_key: 0,
    last_key: 0,
    step: 0,
    acl: &["slow"],
    group: "server",
    since: "4.0.0",
    summary: "A container for memory diagnostics commands",
    complexity: "Depends on subcommand.",
    handler: memory,
    subcommands: SUBCOMMANDS,
}];
