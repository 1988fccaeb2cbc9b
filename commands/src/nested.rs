//! Running one command inside another: EXEC's queued commands and a script's `redis.call`.
//!
//! Both are Redis's nested `call()`: the command runs on the caller's client (its database,
//! its protocol), with every other thread already excluded by the outer command, is counted
//! in INFO commandstats on its own, and, while the AOF is on, files its propagated form into
//! the outer command's transaction (one MULTI/EXEC under the outer command's commit number).

use ferrite_hybridlog::Session;

use crate::aof::feed::TxnFeed;
use crate::args::Args;
use crate::client::Client;
use crate::ctx::Ctx;
use crate::resp::Reply;
use crate::server::Server;
use crate::stats::{CallTimer, ThreadStats};
use crate::table::CommandSpec;

/// Where a nested command runs: the outer command's state.
pub(crate) struct Outer<'a> {
    pub server: &'a Server,
    pub store: &'a mut Session,
    pub client: &'a mut Client,
    pub thread: usize,
    pub now_ms: u64,
    /// A script's `redis.call` (shown to monitors as `lua`), else EXEC.
    pub script: bool,
}

/// Runs `spec` with `args`, appending its reply to `out` in the client's current protocol;
/// returns the error replies it wrote. `txn` collects its propagated form, unless `propagate`
/// is false (a script's `redis.set_repl(redis.REPL_NONE)`).
pub(crate) fn call(
    outer: &mut Outer<'_>,
    spec: &'static CommandSpec,
    args: Args<'_>,
    out: &mut Vec<u8>,
    txn: Option<&mut TxnFeed>,
    propagate: bool,
) -> u32 {
    let timer = CallTimer::start();
    let (server, thread, now_ms) = (outer.server, outer.thread, outer.now_ms);
    let stats = server.stats.thread(thread);
    let (db, mark, resp3) = (outer.client.db, out.len(), outer.client.resp3);
    let mut sub = Ctx {
        server,
        store: &mut *outer.store,
        client: &mut *outer.client,
        reply: Reply::counted(out, resp3, stats),
        now_ms,
        thread,
        spec,
    };
    (spec.handler)(&mut sub, args);
    let errors = sub.reply.errors();
    if server.monitors.any() {
        // After it ran, so with the database it left, as Redis's nested `call()`. A monitor's
        // own EXEC gets its lines inside EXEC's reply, as in Redis.
        crate::monitor::show(server, outer.client, spec, args, outer.script, out);
    }
    outer.client.redacted.clear();
    if let Some(t) = txn {
        match outer.client.aof_txn.take() {
            _ if !propagate => t.unpropagated(server, outer.store),
            // A script run inside EXEC filed its own commands: they join EXEC's.
            Some(inner) => t.absorb(inner),
            None => t.command(server, outer.store, db, spec, args, &out[mark..], now_ms),
        }
    }
    outer.client.park = false;
    crate::persist::count_write(stats, spec, errors);
    ThreadStats::add(&stats.commands, 1);
    // Counted on its own as well as inside the outer command's time, as Redis's nested
    // `call()`; its errors do not make the outer command a failed call.
    if let Some(id) = crate::table::id_of(spec) {
        stats.commands_by_id.call(id, errors > 0);
        stats.commands_by_id.add_ticks(id, timer.ticks());
    }
    errors
}
