//! SAVE, BGSAVE, LASTSAVE and SHUTDOWN (Redis's `rdb.c` and `server.c` commands) over
//! [`crate::persist`].

use std::sync::atomic::Ordering;

use crate::args::{Args, eq_ignore_case};
use crate::ctx::Ctx;
use crate::persist::snapshot::{self, BgsaveError};
use crate::persist::{ShutdownFlags, finish_shutdown};
use crate::table::{CommandSpec, flags::*};

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "save",
        arity: 1,
        flags: ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI | EXCLUSIVE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["admin", "slow", "dangerous"],
        group: "server",
        since: "1.0.0",
        summary: "Synchronously save the dataset to disk",
        complexity: "O(N) where N is the total number of keys in all databases",
        handler: save,
        subcommands: &[],
    },
    CommandSpec {
        name: "bgsave",
        arity: -1,
        flags: ADMIN | NOSCRIPT | NO_ASYNC_LOADING | EXCLUSIVE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["admin", "slow", "dangerous"],
        group: "server",
        since: "1.0.0",
        summary: "Asynchronously save the dataset to disk",
        complexity: "O(1)",
        handler: bgsave,
        subcommands: &[],
    },
    CommandSpec {
        name: "lastsave",
        arity: 1,
        flags: LOADING | STALE | FAST,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["admin", "fast", "dangerous"],
        group: "server",
        since: "1.0.0",
        summary: "Get the UNIX time stamp of the last successful save to disk",
        complexity: "O(1)",
        handler: lastsave,
        subcommands: &[],
    },
    CommandSpec {
        name: "shutdown",
        arity: -1,
        flags: ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY | EXCLUSIVE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["admin", "slow", "dangerous"],
        group: "server",
        since: "1.0.0",
        summary: "Synchronously save the dataset to disk and then shut down the server",
        complexity: "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
        handler: shutdown,
        subcommands: &[],
    },
];

/// `SAVE` (EXCLUSIVE: the whole save runs with every other thread excluded, as Redis blocks).
fn save(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let st = &ctx.server.persist;
    if st.child().is_some() {
        ctx.reply.error("ERR Background save already in progress");
        return;
    }
    st.rdb_saves.fetch_add(1, Ordering::Relaxed);
    if snapshot::save(ctx.server, ctx.store) {
        ctx.reply.ok();
    } else {
        ctx.reply.error("ERR");
    }
}

/// BGSAVE while an AOF rewrite runs (Redis's text).
const ANOTHER_CHILD: &str = "ERR Another child process is active (AOF?): can't BGSAVE right now. \
    Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.";

/// `BGSAVE [SCHEDULE]`
fn bgsave(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if args.len() > 1 && !(args.len() == 2 && eq_ignore_case(args.get(1), "schedule")) {
        ctx.syntax_error();
        return;
    }
    let st = &ctx.server.persist;
    // EXEC runs its commands with blocking denied: that is how a handler knows it is inside
    // EXEC, where Redis schedules the BGSAVE instead of forking mid-transaction.
    let in_exec = ctx.client.deny_blocking;
    let schedule = args.len() == 2;
    let rewriting = ctx.server.aof.rewrite.child().is_some();
    if st.child().is_some() {
        ctx.reply.error("ERR Background save already in progress");
    } else if in_exec || (rewriting && schedule) {
        st.bgsave_scheduled.store(true, Ordering::Relaxed);
        ctx.reply.simple("Background saving scheduled");
    } else if rewriting {
        ctx.reply.error(ANOTHER_CHILD);
    } else {
        match snapshot::bgsave(ctx.server, ctx.store) {
            Ok(_) => ctx.reply.simple("Background saving started"),
            Err(BgsaveError::InProgress) => {
                ctx.reply.error("ERR Background save already in progress")
            }
            Err(BgsaveError::ChildActive) => ctx.reply.error(ANOTHER_CHILD),
            // (Only a fork for replicas can find no cut.)
            Err(BgsaveError::Fork | BgsaveError::NotACut) => ctx.reply.error("ERR"),
        }
    }
}

/// `LASTSAVE`
fn lastsave(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let t = ctx.server.persist.last_save();
    ctx.reply.int(t as i64);
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`. On success the process exits (the client
/// sees its connection close); Ferrite has no replicas to wait for, so no shutdown is ever in
/// progress for ABORT to cancel.
fn shutdown(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mut flags = ShutdownFlags::default();
    let mut abort = false;
    let mut any = false;
    for a in args.iter_from(1) {
        if eq_ignore_case(a, "nosave") {
            flags.nosave = true;
        } else if eq_ignore_case(a, "save") {
            flags.save = true;
        } else if eq_ignore_case(a, "now") {
            flags.now = true;
        } else if eq_ignore_case(a, "force") {
            flags.force = true;
        } else if eq_ignore_case(a, "abort") {
            abort = true;
            continue;
        } else {
            ctx.syntax_error();
            return;
        }
        any = true;
    }
    if (abort && any) || (flags.nosave && flags.save) {
        ctx.syntax_error();
        return;
    }
    if abort {
        if ctx.server.master.abort_shutdown() {
            ctx.reply.ok();
        } else {
            ctx.reply.error("ERR No shutdown in progress.");
        }
        return;
    }
    // While a script is busy only SHUTDOWN NOSAVE stops the server (it would wait for the
    // script to save).
    if !flags.nosave
        && let Some(busy) = ctx.server.scripts.running.busy_reply()
    {
        ctx.reply.error(busy);
        return;
    }
    if !flags.now && ctx.server.master.wants_shutdown_wait(ctx.server) {
        // Waiting for the replicas needs the reactor threads to keep sending the stream, this
        // one included: the main thread waits instead, and exits or answers the error.
        *ctx.server
            .shutdown_request
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((flags, ctx.client.id));
        // SAFETY: kill(2) on our own pid; every thread blocks SIGTERM, so the main thread's
        // sigwait takes it.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        return;
    }
    log::warn!("User requested shutdown...");
    finish_shutdown(ctx.server, ctx.store, flags);
    ctx.reply
        .error("ERR Errors trying to SHUTDOWN. Check logs.");
}
