//! Redis 7.0 functions: FUNCTION LOAD / DELETE / FLUSH / LIST / STATS / KILL / DUMP / RESTORE
//! / HELP, FCALL and FCALL_RO. Libraries load into their own Lua interpreter (Redis's function
//! engine, `sandbox::Kind::Functions`), where a library's body sees only
//! `redis.register_function` and `redis.log` (`register.rs`); the functions run as scripts do
//! (`interp.rs`), with their keys and arguments as parameters. Libraries are kept by name
//! (`library.rs`), saved in RDB files and AOF rewrites as their code, and dumped and restored
//! as Redis's payload (`payload.rs`).
//!
//! The commands that change the libraries are `EXCLUSIVE`, as FCALL is: they reach the AOF in
//! order with everything else, and a fork for BGSAVE never sees a half-made library.

mod library;
mod payload;
pub(super) mod register;

pub use library::Functions;

use std::sync::atomic::Ordering;

use crate::args::{Args, parse_i64};
use crate::cmd::config_cmd::reply_help;
use crate::ctx::Ctx;
use crate::table::{CommandSpec, flags::*};
use library::{LibSet, Registry};

use super::engine::script_flags::NAMES;
use super::interp::Call;

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    fcall_spec("fcall", 0, "Invoke a function", fcall),
    fcall_spec(
        "fcall_ro",
        READONLY,
        "Invoke a read-only function",
        fcall_ro,
    ),
    CommandSpec {
        name: "function",
        arity: -2,
        flags: 0,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["slow"],
        group: "scripting",
        since: "7.0.0",
        summary: "A container for function commands",
        complexity: "Depends on subcommand.",
        handler: function,
        subcommands: SUBCOMMANDS,
    },
];

const fn fcall_spec(
    name: &'static str,
    extra: u32,
    summary: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    let complexity = "Depends on the function that is executed.";
    super::run_spec(name, extra, "7.0.0", summary, complexity, handler)
}

const fn sub(
    name: &'static str,
    arity: i32,
    flags: u32,
    write: bool,
    summary: &'static str,
    complexity: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    CommandSpec::new(name, arity, "scripting", handler)
        .with_flags(flags)
        .with_acl(if write {
            &["write", "slow", "scripting"]
        } else {
            &["slow", "scripting"]
        })
        .with_docs("7.0.0", summary, complexity)
}

const SUBCOMMANDS: &[CommandSpec] = &[
    sub(
        "delete",
        3,
        WRITE | NOSCRIPT | EXCLUSIVE,
        true,
        "Delete a function by name",
        "O(1)",
        function_delete,
    ),
    sub(
        "dump",
        2,
        NOSCRIPT,
        false,
        "Dump all functions into a serialized binary payload",
        "O(N) where N is the number of functions",
        function_dump,
    ),
    sub(
        "flush",
        -2,
        WRITE | NOSCRIPT | EXCLUSIVE,
        true,
        "Deleting all functions",
        "O(N) where N is the number of functions deleted",
        function_flush,
    ),
    sub(
        "help",
        2,
        LOADING | STALE,
        false,
        "Show helpful text about the different subcommands",
        "O(1)",
        function_help,
    ),
    sub(
        "kill",
        2,
        NOSCRIPT | ALLOW_BUSY,
        false,
        "Kill the function currently in execution.",
        "O(1)",
        function_kill,
    ),
    sub(
        "list",
        -2,
        NOSCRIPT,
        false,
        "List information about all the functions",
        "O(N) where N is the number of functions",
        function_list,
    ),
    sub(
        "load",
        -3,
        WRITE | DENYOOM | NOSCRIPT | EXCLUSIVE,
        true,
        "Create a function with the given arguments (name, code, description)",
        "O(1) (considering compilation time is redundant)",
        function_load,
    ),
    sub(
        "restore",
        -3,
        WRITE | DENYOOM | NOSCRIPT | EXCLUSIVE,
        true,
        "Restore all the functions on the given payload",
        "O(N) where N is the number of functions on the payload",
        function_restore,
    ),
    sub(
        "stats",
        2,
        NOSCRIPT | ALLOW_BUSY,
        false,
        "Return information about the function currently running (name, description, duration)",
        "O(1)",
        function_stats,
    ),
];

fn fcall(ctx: &mut Ctx<'_>, args: Args<'_>) {
    fcall_generic(ctx, args, false);
}

fn fcall_ro(ctx: &mut Ctx<'_>, args: Args<'_>) {
    fcall_generic(ctx, args, true);
}

/// `fcallCommandGeneric`: `FCALL function numkeys [key ...] [arg ...]`, shown to monitors
/// before the function's commands.
fn fcall_generic(ctx: &mut Ctx<'_>, args: Args<'_>, read_only_command: bool) {
    super::shown_to_monitors(ctx, args, |ctx| fcall_checked(ctx, args, read_only_command));
}

fn fcall_checked(ctx: &mut Ctx<'_>, args: Args<'_>, read_only_command: bool) {
    let server = ctx.server;
    let ran = server.scripts.functions.existing(|reg| {
        let Registry { interp, set } = reg;
        let Some(f) = set.function(args.get(1)) else {
            return Err("ERR Function not found");
        };
        let Some(numkeys) = parse_i64(args.get(2)) else {
            return Err("ERR Bad number of keys provided");
        };
        if numkeys > args.len() as i64 - 3 {
            return Err("ERR Number of keys can't be greater than number of args");
        }
        if numkeys < 0 {
            return Err("ERR Number of keys can't be negative");
        }
        let all: Vec<&[u8]> = args.iter_from(3).collect();
        let (keys, argv) = all.split_at(numkeys as usize);
        let call = Call {
            func: &f.func,
            flags: f.flags,
            // A registered name is `[a-zA-Z0-9_]+`: always UTF-8.
            name: std::str::from_utf8(&f.name).unwrap_or_default(),
            keys,
            argv,
            read_only_command,
            command: args,
        };
        interp.run(ctx, &call);
        Ok(())
    });
    match ran {
        Some(Ok(())) => {}
        Some(Err(msg)) => ctx.reply.error(msg),
        None => ctx.reply.error("ERR Function not found"),
    }
}

/// The container's own handler, reached only for `FUNCTION` without a subcommand.
fn function(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply
        .error("ERR wrong number of arguments for 'function' command");
}

/// `addReplySubcommandSyntaxError`.
fn syntax_error(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let sub = String::from_utf8_lossy(args.get(1));
    ctx.reply.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try FUNCTION HELP."
    ));
}

fn function_load(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mut replace = false;
    let mut pos = 2;
    while pos < args.len() - 1 {
        let opt = args.get(pos);
        pos += 1;
        if opt.eq_ignore_ascii_case(b"replace") {
            replace = true;
            continue;
        }
        ctx.reply.error(&format!(
            "ERR Unknown option given: {}",
            String::from_utf8_lossy(opt)
        ));
        return;
    }
    // The AOF's and a master's FUNCTION LOAD are obeyed whatever they take.
    let timeout = (!ctx.client.obey).then_some(library::LOAD_TIMEOUT);
    let scripts = &ctx.server.scripts;
    let code = args.get(pos);
    let made = scripts
        .functions
        .with(&scripts.rand, &scripts.running, |reg| {
            Registry::create(&reg.interp, &mut reg.set, code, replace, timeout)
        });
    match made.and_then(|r| r) {
        Ok(name) => ctx.reply.bulk(&name),
        Err(msg) => ctx.reply.error(&msg),
    }
}

fn function_delete(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let deleted = ctx.server.scripts.functions.existing(|reg| {
        let at = reg.set.library(args.get(2))?;
        reg.set.unlink(at);
        Some(())
    });
    match deleted.flatten() {
        Some(()) => ctx.reply.ok(),
        None => ctx.reply.error("ERR Library not found"),
    }
}

fn function_flush(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if args.len() > 3 {
        syntax_error(ctx, args);
        return;
    }
    if args.len() == 3 {
        let mode = args.get(2);
        if !mode.eq_ignore_ascii_case(b"sync") && !mode.eq_ignore_ascii_case(b"async") {
            ctx.reply
                .error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
            return;
        }
    }
    ctx.server.scripts.functions.flush();
    ctx.reply.ok();
}

fn function_kill(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    super::kill(ctx, false);
}

/// `FUNCTION STATS`: allowed while a script is busy, so it reads the published figures, never
/// the engine (the busy script's thread holds it).
fn function_stats(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let scripts = &ctx.server.scripts;
    // Redis shows only a function as the running script; a busy EVAL refuses the command.
    if let Some(busy @ super::busy::BUSY_EVAL) = scripts.running.busy_reply() {
        ctx.reply.error(busy);
        return;
    }
    let libraries = scripts.functions.libraries.load(Ordering::Relaxed);
    let functions = scripts.functions.functions.load(Ordering::Relaxed);
    let running = scripts.running.shown();
    let r = &mut ctx.reply;
    r.map_len(2);
    r.bulk(b"running_script");
    match running {
        None => r.null(),
        Some(((name, command), ms)) => {
            r.map_len(3);
            r.bulk(b"name");
            r.bulk(name.as_bytes());
            r.bulk(b"command");
            r.array_len(command.len());
            for arg in &command {
                r.bulk(arg);
            }
            r.bulk(b"duration_ms");
            r.int(ms as i64);
        }
    }
    r.bulk(b"engines");
    r.map_len(1);
    r.bulk(b"LUA");
    r.map_len(2);
    r.bulk(b"libraries_count");
    r.int(libraries as i64);
    r.bulk(b"functions_count");
    r.int(functions as i64);
}

/// `FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]`.
fn function_list(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (mut with_code, mut pattern) = (false, None);
    let mut i = 2;
    while i < args.len() {
        let a = args.get(i);
        if !with_code && a.eq_ignore_ascii_case(b"withcode") {
            with_code = true;
        } else if pattern.is_none() && a.eq_ignore_ascii_case(b"libraryname") {
            if i + 1 >= args.len() {
                ctx.reply.error("ERR library name argument was not given");
                return;
            }
            i += 1;
            pattern = Some(args.get(i).to_ascii_lowercase());
        } else {
            ctx.reply.error(&format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(a)
            ));
            return;
        }
        i += 1;
    }
    let r = &mut ctx.reply;
    ctx.server.scripts.functions.read(|set: &LibSet| {
        // Redis matches library names without regard to case.
        let shown: Vec<_> = set
            .libraries
            .iter()
            .filter(|l| {
                pattern.as_ref().is_none_or(|p| {
                    crate::cmd::keys::glob::matches(p, &l.name.to_ascii_lowercase())
                })
            })
            .collect();
        r.array_len(shown.len());
        for lib in shown {
            r.map_len(if with_code { 4 } else { 3 });
            r.bulk(b"library_name");
            r.bulk(&lib.name);
            r.bulk(b"engine");
            r.bulk(b"LUA");
            r.bulk(b"functions");
            r.array_len(lib.functions.len());
            for f in &lib.functions {
                r.map_len(3);
                r.bulk(b"name");
                r.bulk(&f.name);
                r.bulk(b"description");
                match &f.desc {
                    Some(d) => r.bulk(d),
                    None => r.null(),
                }
                r.bulk(b"flags");
                let names: Vec<&str> = NAMES
                    .iter()
                    .filter(|(_, bit)| f.flags & bit != 0)
                    .map(|(n, _)| *n)
                    .collect();
                r.set_len(names.len());
                for n in names {
                    r.simple(n);
                }
            }
            if with_code {
                r.bulk(b"library_code");
                r.bulk(&lib.code);
            }
        }
    });
}

fn function_dump(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let codes = ctx.server.scripts.functions.codes();
    ctx.reply.bulk(&payload::dump(&codes));
}

/// How FUNCTION RESTORE treats the libraries there are.
#[derive(PartialEq, Eq)]
enum Policy {
    Flush,
    Append,
    Replace,
}

/// `FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]`.
fn function_restore(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if args.len() > 4 {
        syntax_error(ctx, args);
        return;
    }
    let policy = match args.len() {
        4 => {
            let p = args.get(3);
            if p.eq_ignore_ascii_case(b"append") {
                Policy::Append
            } else if p.eq_ignore_ascii_case(b"replace") {
                Policy::Replace
            } else if p.eq_ignore_ascii_case(b"flush") {
                Policy::Flush
            } else {
                ctx.reply.error(
                    "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
                );
                return;
            }
        }
        _ => Policy::Append,
    };
    let (codes, bad) = payload::read(args.get(2));
    if codes.is_empty()
        && let Some(msg) = &bad
    {
        ctx.reply.error(msg);
        return;
    }
    let scripts = &ctx.server.scripts;
    let restored = scripts
        .functions
        .with(&scripts.rand, &scripts.running, |reg| {
            let mut fresh = LibSet::default();
            for code in &codes {
                Registry::create(&reg.interp, &mut fresh, code, false, None)?;
            }
            if let Some(msg) = bad {
                return Err(msg);
            }
            if policy == Policy::Flush {
                reg.set = fresh;
                return Ok(());
            }
            reg.set.join(fresh, policy == Policy::Replace)
        });
    match restored.and_then(|r| r) {
        Ok(()) => ctx.reply.ok(),
        Err(msg) => ctx.reply.error(&msg),
    }
}

fn function_help(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    reply_help(
        &mut ctx.reply,
        &[
            "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
            "HELP",
            "    Prints this help.",
        ],
    );
}

impl super::Scripts {
    /// Whether FCALL of the function named `name` may write, as Redis 7.0 decides before running
    /// it (`fcallGetCommandFlags`): unless the function is known and `no-writes`.
    pub(crate) fn function_writes(&self, name: &[u8]) -> bool {
        self.functions
            .read(|set| set.function(name).map(|f| f.flags))
            .is_none_or(|flags| flags & super::engine::script_flags::NO_WRITES == 0)
    }

    /// Loads libraries read from an RDB file (`rdbFunctionLoad` at start-up): no time limit,
    /// and a library that already exists is an error, as in Redis.
    pub fn load_libraries(&self, codes: &[Vec<u8>]) -> Result<(), String> {
        self.load_libraries_replacing(codes, false)
    }

    /// [`load_libraries`](Self::load_libraries), letting each library replace one of the same
    /// name when `replace` (DEBUG RELOAD MERGE).
    pub fn load_libraries_replacing(&self, codes: &[Vec<u8>], replace: bool) -> Result<(), String> {
        self.functions
            .with(&self.rand, &self.running, |reg| {
                codes.iter().try_for_each(|code| {
                    Registry::create(&reg.interp, &mut reg.set, code, replace, None).map(drop)
                })
            })
            .and_then(|r| r)
    }
}
