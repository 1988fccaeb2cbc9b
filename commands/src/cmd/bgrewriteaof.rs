//! BGREWRITEAOF (Redis's `bgrewriteaofCommand`) over [`crate::aof::rewrite`].

use crate::aof::rewrite::{self, RewriteError};
use crate::args::Args;
use crate::ctx::Ctx;
use crate::table::{CommandSpec, flags::*};

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "bgrewriteaof",
    arity: 1,
    // EXCLUSIVE: the fork is the AOF's cut, taken with every other thread outside the store.
    flags: ADMIN | NOSCRIPT | NO_ASYNC_LOADING | EXCLUSIVE,
    first_key: 0,
    last_key: 0,
    step: 0,
    acl: &["admin", "slow", "dangerous"],
    group: "server",
    since: "1.0.0",
    summary: "Asynchronously rewrite the append-only file",
    complexity: "O(1)",
    handler: bgrewriteaof,
    subcommands: &[],
}];

const IN_PROGRESS: &str = "ERR Background append only file rewriting already in progress";
const SCHEDULED: &str = "Background append only file rewriting scheduled";

/// `BGREWRITEAOF`
fn bgrewriteaof(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let rw = &ctx.server.aof.rewrite;
    // EXEC runs its commands with blocking denied (see BGSAVE): Redis schedules there.
    let in_exec = ctx.client.deny_blocking;
    if rw.child().is_some() {
        ctx.reply.error(IN_PROGRESS);
    } else if ctx.server.persist.child().is_some() || in_exec {
        rw.schedule();
        ctx.reply.simple(SCHEDULED);
    } else {
        match rewrite::start(ctx.server, ctx.store) {
            Ok(_) => ctx
                .reply
                .simple("Background append only file rewriting started"),
            Err(RewriteError::InProgress) => ctx.reply.error(IN_PROGRESS),
            Err(RewriteError::ChildActive) => {
                rw.schedule();
                ctx.reply.simple(SCHEDULED);
            }
            Err(RewriteError::Failed) => ctx.reply.error(
                "ERR Can't execute an AOF background rewriting. Please check the server logs \
                 for more information.",
            ),
        }
    }
}
