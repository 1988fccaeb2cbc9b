//! MONITOR (Redis's `monitorCommand`): the client becomes a monitor, shown every command the
//! server runs from then on (see [`crate::monitor`] for the lines and their delivery).
//!
//! Redis marks a monitor as a replica too, so it may no longer touch the keyspace (the worker
//! refuses such commands with [`touches_keyspace`]); RESET, or closing, ends monitoring.

use crate::args::Args;
use crate::client::Client;
use crate::ctx::Ctx;
use crate::server::Server;
use crate::table::{CommandSpec, flags::*};

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "monitor",
    arity: 1,
    flags: ADMIN | NOSCRIPT | LOADING | STALE,
    first_key: 0,
    last_key: 0,
    step: 0,
    acl: &["admin", "slow", "dangerous"],
    group: "server",
    since: "1.0.0",
    summary: "Listen for all requests received by the server in real time",
    // Redis documents none.
    complexity: "",
    handler: monitor,
    subcommands: &[],
}];

/// `MONITOR`.
fn monitor(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    // Inside EXEC: a monitor's stream is not a reply per command.
    if ctx.client.deny_blocking {
        ctx.reply
            .error("ERR MONITOR isn't allowed for DENY BLOCKING client");
        return;
    }
    // Already a monitor: Redis answers nothing at all.
    if ctx.client.monitor {
        return;
    }
    ctx.client.monitor = true;
    ctx.server.monitors.add(&ctx.client.shared);
    ctx.reply.ok();
}

/// Ends MONITOR mode (RESET, as Redis's `clearClientConnectionState`).
pub fn stop(server: &Server, client: &mut Client) {
    if client.monitor {
        client.monitor = false;
        server.monitors.remove(client.id);
    }
}

/// Whether a monitor must be refused `spec` with `args` (Redis's "Replica can't interact with
/// the keyspace"): a command that reads or writes keys or may replicate, or EVAL/EVALSHA/FCALL
/// of anything but a script or function known to be `no-writes` (FCALL_RO is a read). (EXEC needs no check of its own: every command it holds passed
/// this one when it was queued.)
pub fn touches_keyspace(server: &Server, spec: &CommandSpec, args: Args<'_>) -> bool {
    spec.has(READONLY | WRITE | MAY_REPLICATE)
        || crate::cmd::scripting::may_write(server, spec, args)
}
