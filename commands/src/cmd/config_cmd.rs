//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP over [`crate::config::Config`].

use crate::args::{Args, eq_ignore_case};
use crate::config::ConfigError;
use crate::ctx::Ctx;
use crate::resp::Reply;
use crate::table::{CommandSpec, flags::*};

const SUB_ACL: &[&str] = &["admin", "slow", "dangerous"];

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "config",
    arity: -2,
    flags: 0,
    first_key: 0,
    last_key: 0,
    step: 0,
    acl: &["slow"],
    group: "server",
    since: "2.0.0",
    summary: "A container for server configuration commands",
    complexity: "Depends on subcommand.",
    handler: config_help,
    subcommands: &[
        sub(
            "get",
            -3,
            "2.0.0",
            "Get the values of configuration parameters",
            "O(N) when N is the number of configuration parameters provided",
            config_get,
        ),
        sub(
            "set",
            -4,
            "2.0.0",
            "Set configuration parameters to the given values",
            "O(N) when N is the number of configuration parameters provided",
            config_set,
        ),
        sub(
            "resetstat",
            2,
            "2.0.0",
            "Reset the stats returned by INFO",
            "O(1)",
            config_resetstat,
        ),
        sub(
            "rewrite",
            2,
            "2.8.0",
            "Rewrite the configuration file with the in memory configuration",
            "O(1)",
            config_rewrite,
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
            since: "5.0.0",
            summary: "Show helpful text about the different subcommands",
            complexity: "O(1)",
            handler: config_help,
            subcommands: &[],
        },
    ],
}];

const fn sub(
    name: &'static str,
    arity: i32,
    since: &'static str,
    summary: &'static str,
    complexity: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    CommandSpec::new(name, arity, "server", handler)
        .with_flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .with_acl(SUB_ACL)
        .with_docs(since, summary, complexity)
}

/// Writes a HELP reply: one status line per entry, as Redis's `addReplyHelp`.
pub(crate) fn reply_help(reply: &mut Reply<'_>, lines: &[&str]) {
    reply.array_len(lines.len());
    for l in lines {
        reply.simple(l);
    }
}

const HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
];

/// `CONFIG HELP`
fn config_help(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    reply_help(&mut ctx.reply, HELP);
}

/// `CONFIG GET parameter [parameter ...]`: a map, in RESP3 too.
fn config_get(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let patterns: Vec<&[u8]> = args.iter_from(2).collect();
    let found = ctx.server.config.get_many(&patterns);
    ctx.reply.map_len(found.len());
    for (name, value) in &found {
        ctx.reply.bulk(name.as_bytes());
        ctx.reply.bulk(value.as_bytes());
    }
}

/// Redis 7.0's `SENSITIVE_CONFIG` parameters: their values are redacted from the slow log
/// (whether Ferrite has the parameter or not).
const SENSITIVE: &[&str] = &["requirepass", "masterauth", "masteruser"];

/// `CONFIG SET parameter value [parameter value ...]`: all or nothing.
fn config_set(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if !args.len().is_multiple_of(2) {
        ctx.syntax_error();
        return;
    }
    // Every secret is hidden from the slow log, whether or not the command succeeds.
    for i in (2..args.len()).step_by(2) {
        if SENSITIVE.iter().any(|n| eq_ignore_case(args.get(i), n)) {
            ctx.redact(i + 1);
        }
    }
    let pairs: Vec<(&[u8], &[u8])> = (2..args.len())
        .step_by(2)
        .map(|i| (args.get(i), args.get(i + 1)))
        .collect();
    let old_memory_size = ctx.server.config.value("memory-size");
    match ctx.server.config.set_many(&pairs) {
        Ok(()) => {
            crate::notify::sync(ctx.server);
            ctx.server.slowlog.config_changed(&ctx.server.config);
            if pairs
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(b"requirepass"))
            {
                let password = ctx.server.config.password();
                ctx.server.acl.set_default_password(password.as_deref());
            }
            if pairs
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(b"memory-size"))
                && let Err(why) = apply_memory_size(ctx, old_memory_size.as_deref())
            {
                return ctx.reply.error(&format!(
                    "ERR CONFIG SET failed (possibly related to argument 'memory-size') - {why}"
                ));
            }
            let touches_aof = pairs.iter().any(|(n, _)| {
                n.eq_ignore_ascii_case(b"appendonly") || n.eq_ignore_ascii_case(b"appendfsync")
            });
            if !touches_aof {
                ctx.reply.ok();
                return;
            }
            let Some(server) = ctx.server.arc() else {
                ctx.reply.ok();
                return;
            };
            // EXEC runs its commands with blocking denied (see BGSAVE).
            let in_exec = ctx.client.deny_blocking;
            match crate::aof::apply_config(&server, ctx.store, in_exec) {
                Ok(()) => ctx.reply.ok(),
                Err(why) => {
                    // Redis reverts the parameter whose apply step failed.
                    let _ = ctx.server.config.set("appendonly", b"no");
                    ctx.reply.error(&format!(
                        "ERR CONFIG SET failed (possibly related to argument 'appendonly') - {why}"
                    ));
                }
            }
        }
        Err((name, ConfigError::Unknown(_))) => ctx.reply.error(&format!(
            "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
        )),
        Err((name, e)) => ctx.reply.error(&format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {e}"
        )),
    }
}

/// Gives the store the `memory-size` just set; on failure (below two log pages, or a store
/// without a disk tier) puts `old` back, as Redis reverts a parameter whose apply step failed.
fn apply_memory_size(ctx: &mut Ctx<'_>, old: Option<&str>) -> Result<(), String> {
    let bytes = ctx.server.config.memory_size();
    match ctx.store.store().set_memory_size(bytes) {
        Ok(_) => Ok(()),
        Err(ferrite_hybridlog::StoreError::Config(why)) => {
            if let Some(old) = old {
                let _ = ctx.server.config.set("memory-size", old.as_bytes());
            }
            Err(why)
        }
    }
}

/// `CONFIG RESETSTAT`
fn config_resetstat(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.server.stats.reset();
    ctx.server.master.reset_stats();
    ctx.reply.ok();
}

/// `CONFIG REWRITE`: the redis.conf file the server started with gets the current values
/// (a TOML file is not rewritten).
fn config_rewrite(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let users: Vec<String> = ctx
        .server
        .acl
        .users()
        .iter()
        .map(|u| crate::cmd::acl::user_line(u))
        .collect();
    match ctx.server.config.rewrite(&users) {
        Ok(()) => {
            log::info!("CONFIG REWRITE executed with success.");
            ctx.reply.ok();
        }
        Err(why) => {
            log::warn!("CONFIG REWRITE failed: {why}");
            ctx.reply.error(&format!("ERR {why}"));
        }
    }
}
