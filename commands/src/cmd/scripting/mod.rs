//! Lua scripting (Redis's `eval.c` and `script_lua.c`): EVAL, EVALSHA, their `_RO` forms and
//! SCRIPT. Scripts run in one Lua 5.1 interpreter with Redis's libraries and sandbox
//! (`sandbox.rs`), are cached by the SHA-1 of their body (`engine.rs`), and reach the dataset
//! through `redis.call`, which runs commands as nested calls (`call.rs`), their replies
//! converted to Lua values and back as Redis converts them (`convert.rs`).
//!
//! A script is atomic: EVAL is `EXCLUSIVE`, so no other thread runs a command while it does.
//! Its writes reach the AOF as the commands it ran, wrapped in MULTI/EXEC when more than one,
//! as Redis 7.0 propagates scripts by effects.
//!
//! Redis 7.0's functions (FUNCTION, FCALL) are in `functions/`, on a second interpreter; both
//! run scripts through `interp.rs`.
//!
//! A script running past `busy-reply-threshold` turns busy (`busy.rs`): the other threads
//! answer BUSY and take SCRIPT KILL / FUNCTION KILL / SHUTDOWN NOSAVE.
//!
//! Not built: the script debugger (SCRIPT DEBUG).

pub mod busy;
mod call;
mod convert;
mod current;
mod engine;
pub mod functions;
mod interp;
mod sandbox;

pub use engine::Scripts;

use crate::args::Args;
use crate::cmd::config_cmd::reply_help;
use crate::ctx::Ctx;
use crate::table::{CommandSpec, flags::*};
use engine::Source;

/// Whether `spec` with `args` is EVAL / EVALSHA / FCALL of a script or function that may write
/// (not known to be `no-writes`; Redis's `evalGetCommandFlags`). False for any other command.
pub fn may_write(server: &crate::server::Server, spec: &CommandSpec, args: Args<'_>) -> bool {
    match spec.name {
        "eval" => server.scripts.writes(false, args.get(1)),
        "evalsha" => server.scripts.writes(true, args.get(1)),
        "fcall" => server.scripts.function_writes(args.get(1)),
        _ => false,
    }
}

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    eval_spec("eval", 0, "2.6.0", "Execute a Lua script server side", eval),
    eval_spec(
        "evalsha",
        0,
        "2.6.0",
        "Execute a Lua script server side",
        evalsha,
    ),
    eval_spec(
        "eval_ro",
        READONLY,
        "7.0.0",
        "Execute a read-only Lua script server side",
        eval_ro,
    ),
    eval_spec(
        "evalsha_ro",
        READONLY,
        "7.0.0",
        "Execute a read-only Lua script server side",
        evalsha_ro,
    ),
    CommandSpec {
        name: "script",
        arity: -2,
        flags: 0,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["slow"],
        group: "scripting",
        since: "2.6.0",
        summary: "A container for Lua scripts management commands",
        complexity: "Depends on subcommand.",
        handler: script,
        subcommands: SCRIPT_SUBCOMMANDS,
    },
];

const fn eval_spec(
    name: &'static str,
    extra: u32,
    since: &'static str,
    summary: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    let complexity = "Depends on the script that is executed.";
    run_spec(name, extra, since, summary, complexity, handler)
}

/// A command that runs a script or a function (EVAL, FCALL and their kin).
const fn run_spec(
    name: &'static str,
    extra: u32,
    since: &'static str,
    summary: &'static str,
    complexity: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    CommandSpec::new(name, -3, "scripting", handler)
        // EXCLUSIVE: a script may touch any key, and runs atomically.
        .with_flags(NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | EXCLUSIVE | extra)
        .with_acl(&["slow", "scripting"])
        .with_docs(since, summary, complexity)
}

const fn script_sub(
    name: &'static str,
    arity: i32,
    flags: u32,
    summary: &'static str,
    complexity: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    CommandSpec::new(name, arity, "scripting", handler)
        .with_flags(flags)
        .with_acl(&["slow", "scripting"])
        .with_docs("2.6.0", summary, complexity)
}

const SCRIPT_SUBCOMMANDS: &[CommandSpec] = &[
    script_sub(
        "exists",
        -3,
        NOSCRIPT,
        "Check existence of scripts in the script cache.",
        "O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation).",
        script_exists,
    ),
    script_sub(
        "flush",
        -2,
        NOSCRIPT,
        "Remove all the scripts from the script cache.",
        "O(N) with N being the number of scripts in cache",
        script_flush,
    ),
    script_sub(
        "help",
        2,
        LOADING | STALE,
        "Show helpful text about the different subcommands",
        "O(1)",
        script_help,
    ),
    script_sub(
        "kill",
        2,
        NOSCRIPT | ALLOW_BUSY,
        "Kill the script currently in execution.",
        "O(1)",
        script_kill,
    ),
    script_sub(
        "load",
        3,
        NOSCRIPT | STALE,
        "Load the specified Lua script into the script cache.",
        "O(N) with N being the length in bytes of the script body.",
        script_load,
    ),
];

fn eval(ctx: &mut Ctx<'_>, args: Args<'_>) {
    eval_generic(ctx, args, false, false);
}

fn evalsha(ctx: &mut Ctx<'_>, args: Args<'_>) {
    eval_generic(ctx, args, true, false);
}

fn eval_ro(ctx: &mut Ctx<'_>, args: Args<'_>) {
    eval_generic(ctx, args, false, true);
}

fn evalsha_ro(ctx: &mut Ctx<'_>, args: Args<'_>) {
    eval_generic(ctx, args, true, true);
}

/// `evalGenericCommand`: `EVAL script numkeys [key ...] [arg ...]`.
fn eval_generic(ctx: &mut Ctx<'_>, args: Args<'_>, by_sha: bool, read_only: bool) {
    shown_to_monitors(ctx, args, |ctx| eval_checked(ctx, args, by_sha, read_only));
}

/// Runs a script command (`run`: EVAL's or FCALL's) with MONITOR's lines in Redis's order: the
/// command itself before its script's commands (with the caller's database), and, for a
/// monitor running it, the lines already due and its script's commands before its reply.
pub(super) fn shown_to_monitors(ctx: &mut Ctx<'_>, args: Args<'_>, run: impl FnOnce(&mut Ctx<'_>)) {
    let monitor = ctx.client.monitor;
    if ctx.server.monitors.any() && !ctx.client.obey {
        if monitor {
            // What reached this monitor before goes before this script's lines.
            crate::pubsub::drain(&ctx.client.shared, ctx.reply.raw());
        }
        // Shown before its script's commands (so with the caller's database), whatever
        // follows: the table keeps EVAL and FCALL out of the worker's feed, as Redis's
        // `evalCommand` and `fcallCommandGeneric`.
        let client = &*ctx.client;
        let origin = crate::monitor::Origin::Client(&client.shared.addr);
        let (db, me) = (client.db, client.id);
        ctx.server
            .monitors
            .feed(ctx.server, origin, db, args, &[], me, ctx.reply.raw());
    }
    let mark = ctx.reply.raw().len();
    run(ctx);
    if monitor {
        // A monitor running a (`no-writes`) script got its commands' lines in its outbox, as
        // Lua reads their replies back from a scratch buffer; Redis writes them to it before
        // the script's reply. Nothing else can be there: the script ran with every other
        // thread excluded.
        let mut lines = Vec::new();
        crate::pubsub::drain(&ctx.client.shared, &mut lines);
        if !lines.is_empty() {
            ctx.reply.raw().splice(mark..mark, lines);
        }
    }
}

/// EVAL's arguments checked, then the script run.
fn eval_checked(ctx: &mut Ctx<'_>, args: Args<'_>, by_sha: bool, read_only: bool) {
    let Some(numkeys) = crate::args::parse_i64(args.get(2)) else {
        ctx.not_integer();
        return;
    };
    let rest = args.len() as i64 - 3;
    if numkeys > rest {
        ctx.reply
            .error("ERR Number of keys can't be greater than number of args");
        return;
    }
    if numkeys < 0 {
        ctx.reply.error("ERR Number of keys can't be negative");
        return;
    }
    let source = if by_sha {
        // A name of the wrong length cannot match: answered before anything else.
        if args.get(1).len() != 40 {
            ctx.reply.error(engine::NOSCRIPT);
            return;
        }
        Source::Sha(args.get(1))
    } else {
        Source::Body(args.get(1))
    };
    let all: Vec<&[u8]> = args.iter_from(3).collect();
    let (keys, argv) = all.split_at(numkeys as usize);
    let server = ctx.server;
    server
        .scripts
        .eval(ctx, source, keys, argv, read_only, args);
}

/// The container's own handler, reached only for `SCRIPT` without a subcommand.
fn script(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply
        .error("ERR wrong number of arguments for 'script' command");
}

fn script_exists(ctx: &mut Ctx<'_>, args: Args<'_>) {
    ctx.reply.array_len(args.len() - 2);
    for sha in args.iter_from(2) {
        let found = ctx.server.scripts.exists(sha);
        ctx.reply.int(i64::from(found));
    }
}

fn script_flush(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mode_ok = match args.len() {
        2 => true,
        3 => {
            let m = args.get(2);
            m.eq_ignore_ascii_case(b"sync") || m.eq_ignore_ascii_case(b"async")
        }
        _ => false,
    };
    if !mode_ok {
        ctx.reply
            .error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
        return;
    }
    ctx.server.scripts.flush();
    ctx.reply.ok();
}

fn script_kill(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    kill(ctx, true);
}

/// SCRIPT KILL (`eval`) and FUNCTION KILL (Redis's `scriptKill`).
fn kill(ctx: &mut Ctx<'_>, eval: bool) {
    match ctx.server.scripts.running.kill(eval) {
        busy::Kill::Accepted => ctx.reply.ok(),
        busy::Kill::NotBusy => ctx
            .reply
            .error("NOTBUSY No scripts in execution right now."),
        busy::Kill::Unkillable => ctx.reply.error(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. \
             You can either wait the script termination or kill the server in a hard way using \
             the SHUTDOWN NOSAVE command.",
        ),
        busy::Kill::WrongKind(busy) => ctx.reply.error(busy),
    }
}

fn script_load(ctx: &mut Ctx<'_>, args: Args<'_>) {
    match ctx.server.scripts.load(args.get(2)) {
        Ok(sha) => ctx.reply.bulk(&sha),
        Err(msg) => convert::error_reply(&mut ctx.reply, msg.as_bytes(), true),
    }
}

fn script_help(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    reply_help(
        &mut ctx.reply,
        &[
            "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
            "HELP",
            "    Prints this help.",
        ],
    );
}
