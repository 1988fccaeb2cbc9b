//! Running one command inside another: EXEC's queued commands and a script's `redis.call`.
//!
//! Both are Redis's nested `call()`: the command runs on the caller's client (its database,
//! its protocol), with every other thread already excluded by the outer command, is counted
//! in INFO commandstats on its own, and, while the AOF is on, files its propagated form into
//! the outer command's transaction (one MULTI/EXEC under the outer command's commit number).

use std::sync::atomic::Ordering;

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
    /// A script's `redis.call` (not EXEC): shown to monitors as `lua`, and logged in the slow
    /// log as Redis 7.0's Lua client's, with no address and no name.
    pub script: bool,
}

/// The address Redis 7.0's slow log shows for a script's commands (its Lua client has no
/// connection).
const SCRIPT_ADDR: &str = "?:0";

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
    // A tracking client remembers the keys its queued or scripted reads read.
    let tracked = crate::tracking::before_read(server, outer.client, spec, args);
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
    if let Some(table) = tracked {
        crate::tracking::remember(table, server, sub.client, spec, args);
    }
    let errors = sub.reply.errors();
    if server.monitors.any() {
        // After it ran, so with the database it left, as Redis's nested `call()`. A monitor's
        // own EXEC gets its lines inside EXEC's reply, as in Redis.
        crate::monitor::show(server, outer.client, spec, args, outer.script, out);
    }
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
    let ticks = timer.ticks();
    if let Some(id) = crate::table::id_of(spec) {
        stats.commands_by_id.call(id, errors > 0);
        stats.commands_by_id.add_ticks(id, ticks);
        if server.config.latency_tracking.load(Ordering::Relaxed) && !outer.client.obey {
            stats.latency.record(id, crate::worker::ticks_to_ns(ticks));
        }
    }
    let config = &server.config;
    let slower_than = config.slowlog_log_slower_than.load(Ordering::Relaxed);
    let spike_ms = config.latency_monitor_threshold.load(Ordering::Relaxed);
    if slower_than >= 0 && crate::slowlog::may_be_slow(ticks, slower_than) {
        log_slow(outer, spec, args, ticks);
    }
    if spike_ms > 0 {
        // Not a slow-log entry: the script's Lua client makes no difference here.
        crate::worker::timed(server, outer.client, spec, args, ticks, -1, spike_ms);
    }
    if !outer.client.redacted.is_empty() {
        outer.client.redacted.clear();
    }
    errors
}

/// The slow log's entry for a nested command: as the worker logs a command, but a script's
/// commands are the Lua client's.
#[cold]
fn log_slow(outer: &Outer<'_>, spec: &CommandSpec, args: Args<'_>, ticks: u64) {
    if !outer.script {
        crate::worker::log_slow(outer.server, outer.client, spec, args, ticks);
        return;
    }
    if spec.has(crate::table::flags::SKIP_SLOWLOG) || outer.client.obey {
        return;
    }
    let caller = crate::slowlog::Caller {
        addr: SCRIPT_ADDR,
        name: b"",
    };
    let us = crate::stats::commands::ticks_to_us(ticks);
    outer
        .server
        .slowlog
        .push(&outer.server.config, args, &[], us, caller);
}
