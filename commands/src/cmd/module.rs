//! MODULE for a server that loads no modules: Redis's modules are shared objects written
//! against its C API, which Ferrite does not have (its own extensions are crates built in). So
//! MODULE LIST is always empty, and LOAD, LOADEX and UNLOAD are refused as redis-server 7.0
//! refuses them by default (`enable-module-command no`), before they run (the table marks them
//! `PROTECTED`; the worker gives the refusal); where the option allows them, a load fails. Clients that look for a module in MODULE LIST
//! (RedisJSON, RediSearch) find none, as on a plain redis-server.

use crate::args::Args;
use crate::cmd::config_cmd::reply_help;
use crate::ctx::Ctx;
use crate::table::{CommandSpec, flags::*};

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("module", -2, "server", module_help)
    .with_acl(&["slow"])
    .with_docs(
        "4.0.0",
        "A container for module commands",
        "Depends on subcommand.",
    )
    .with_subcommands(SUBCOMMANDS)];

const ADMIN_ACL: &[&str] = &["admin", "slow", "dangerous"];
const LOAD_FLAGS: u32 = ADMIN | NOSCRIPT | NO_ASYNC_LOADING | PROTECTED;

const SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("help", 2, "server", module_help)
        .with_flags(LOADING | STALE)
        .with_acl(&["slow"])
        .with_docs(
            "5.0.0",
            "Show helpful text about the different subcommands",
            "O(1)",
        ),
    CommandSpec::new("list", 2, "server", module_list)
        .with_flags(ADMIN | NOSCRIPT)
        .with_acl(ADMIN_ACL)
        .with_docs(
            "4.0.0",
            "List all modules loaded by the server",
            "O(N) where N is the number of loaded modules.",
        ),
    CommandSpec::new("load", -3, "server", load)
        .with_flags(LOAD_FLAGS)
        .with_acl(ADMIN_ACL)
        .with_docs("4.0.0", "Load a module", "O(1)"),
    CommandSpec::new("loadex", -3, "server", load)
        .with_flags(LOAD_FLAGS)
        .with_acl(ADMIN_ACL)
        .with_docs("7.0.0", "Load a module with extended parameters", "O(1)"),
    CommandSpec::new("unload", 3, "server", unload)
        .with_flags(LOAD_FLAGS)
        .with_acl(ADMIN_ACL)
        .with_docs("4.0.0", "Unload a module", "O(1)"),
];

const HELP: &[&str] = &[
    "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LIST",
    "    Return a list of loaded modules.",
    "LOAD <path> [<arg> ...]",
    "    Load a module library from <path>, passing to it any optional arguments.",
    "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
    "    Load a module library from <path>, while passing it module configurations and optional arguments.",
    "UNLOAD <name>",
    "    Unload a module.",
    "HELP",
    "    Prints this help.",
];

fn module_help(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    reply_help(&mut ctx.reply, HELP);
}

/// `MODULE LIST`: no module is ever loaded.
fn module_list(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply.array_len(0);
}

/// MODULE LOAD / LOADEX where `enable-module-command` allows it: Ferrite cannot load a Redis
/// module, so the load fails as a failed load fails in Redis.
fn load(ctx: &mut Ctx<'_>, args: Args<'_>) {
    log::warn!(
        "Module {} failed to load: Ferrite does not load Redis modules",
        String::from_utf8_lossy(args.get(2))
    );
    ctx.reply
        .error("ERR Error loading the extension. Please check the server logs.");
}

/// MODULE UNLOAD where allowed: no module is ever loaded.
fn unload(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply
        .error("ERR Error unloading module: no such module with that name");
}
