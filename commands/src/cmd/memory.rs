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

/// `MEMORY MALLOC-STATS`: what Redis answers when built on the C library's allocator, as
/// Ferrite is (INFO `mem_allocator:libc`).
fn malloc_stats(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply
        .verbatim("txt", b"Stats not supported for the current allocator");
}

/// `MEMORY STATS`: Redis's `getMemoryOverheadData` report from the figures INFO memory shows.
/// The allocator's own figures are derived as Redis derives them when its allocator reports
/// none (the C library's): allocated is `used_memory`, active and resident are the resident set
/// less the Lua heaps. Each database's main table is its keys' share of the index (16 bytes
/// per key); expiry times live in the records, so there is no separate expires table.
fn stats(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    use std::sync::atomic::Ordering::Relaxed;
    let s = ctx.server;
    let m = crate::cmd::info::MemoryFigures::now(s);
    let scripts = &s.scripts;
    let lua = scripts.lua_memory.load(Relaxed) + scripts.functions.lua_memory.load(Relaxed);
    let store = &s.store;
    let dbs: Vec<(usize, u64)> = (0..store.databases().min(256))
        .map(|db| (db, store.db_size(db as u8)))
        .filter(|&(_, keys)| keys > 0)
        .collect();
    let keys: u64 = dbs.iter().map(|&(_, k)| k).sum();
    let startup = 0u64;
    let net = m.used.saturating_sub(startup);
    let dataset = store.dataset_bytes();
    let allocated = m.used;
    let resident = m.rss.saturating_sub(lua);
    let active = resident;
    // Redis keeps these ratios as C floats.
    let ratio = |a: u64, b: u64| f64::from(a as f32 / b as f32);
    let percent = |a: u64, b: u64| f64::from(a as f32 * 100.0 / b as f32);
    let diff = |a: u64, b: u64| a as i64 - b as i64;
    let r = &mut ctx.reply;
    r.map_len(27 + dbs.len());
    let int = |r: &mut crate::resp::Reply<'_>, name: &str, v: i64| {
        r.bulk(name.as_bytes());
        r.int(v);
    };
    int(r, "peak.allocated", m.peak as i64);
    int(r, "total.allocated", m.used as i64);
    int(r, "startup.allocated", startup as i64);
    int(r, "replication.backlog", 0);
    int(r, "clients.slaves", 0);
    int(r, "clients.normal", m.clients as i64);
    int(r, "cluster.links", 0);
    int(r, "aof.buffer", 0);
    int(r, "lua.caches", scripts.bodies_memory.load(Relaxed) as i64);
    int(
        r,
        "functions.caches",
        scripts.functions.overhead.load(Relaxed) as i64,
    );
    for &(db, n) in &dbs {
        r.bulk(format!("db.{db}").as_bytes());
        r.map_len(3);
        int(r, "overhead.hashtable.main", (n * 16) as i64);
        int(r, "overhead.hashtable.expires", 0);
        int(r, "overhead.hashtable.slot-to-keys", 0);
    }
    int(r, "overhead.total", m.overhead as i64);
    int(r, "keys.count", keys as i64);
    int(
        r,
        "keys.bytes-per-key",
        net.checked_div(keys).unwrap_or(0) as i64,
    );
    int(r, "dataset.bytes", dataset as i64);
    let double = |r: &mut crate::resp::Reply<'_>, name: &str, v: f64| {
        r.bulk(name.as_bytes());
        r.double(v);
    };
    double(r, "dataset.percentage", percent(dataset, net));
    double(r, "peak.percentage", percent(m.used, m.peak));
    int(r, "allocator.allocated", allocated as i64);
    int(r, "allocator.active", active as i64);
    int(r, "allocator.resident", resident as i64);
    double(r, "allocator-fragmentation.ratio", ratio(active, allocated));
    int(r, "allocator-fragmentation.bytes", diff(active, allocated));
    double(r, "allocator-rss.ratio", ratio(resident, active));
    int(r, "allocator-rss.bytes", diff(resident, active));
    double(r, "rss-overhead.ratio", ratio(m.rss, resident));
    int(r, "rss-overhead.bytes", diff(m.rss, resident));
    double(r, "fragmentation", ratio(m.rss, m.used));
    int(r, "fragmentation.bytes", diff(m.rss, m.used));
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
    CommandSpec::new("malloc-stats", 2, "server", malloc_stats)
        .with_acl(&["slow"])
        .with_docs(
            "4.0.0",
            "Show allocator internal stats",
            "Depends on how much memory is allocated, could be slow",
        ),
    sub("purge", 0, "Ask the allocator to release memory", purge),
    sub("stats", 0, "Show memory usage details", stats),
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
