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

/// `MEMORY MALLOC-STATS`: what Redis answers when built on the C library's allocator, as
/// Ferrite is (INFO `mem_allocator:libc`).
fn malloc_stats(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply
        .verbatim("txt", b"Stats not supported for the current allocator");
}

/// Redis's `redisMemOverhead`, from the figures INFO memory shows (the allocator's as
/// `MemoryFigures::allocator` derives them). Each database's main table is its keys' share of the index (16 bytes per key);
/// expiry times live in the records, so there is no separate expires table.
struct Overhead {
    figures: crate::cmd::info::MemoryFigures,
    startup: u64,
    lua_caches: u64,
    functions_caches: u64,
    /// `(db, keys)` of the databases that hold keys.
    dbs: Vec<(usize, u64)>,
    keys: u64,
    dataset: u64,
    allocated: u64,
    active: u64,
    resident: u64,
    cached_scripts: u64,
    clients: u64,
}

impl Overhead {
    fn now(s: &crate::server::Server) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let figures = crate::cmd::info::MemoryFigures::now(s);
        let scripts = &s.scripts;
        let (allocated, active, resident) = figures.allocator();
        let store = &s.store;
        let dbs: Vec<(usize, u64)> = (0..store.databases().min(256))
            .map(|db| (db, store.db_size(db as u8)))
            .filter(|&(_, keys)| keys > 0)
            .collect();
        Overhead {
            startup: 0,
            lua_caches: scripts.bodies_memory.load(Relaxed),
            functions_caches: scripts.functions.overhead.load(Relaxed),
            keys: dbs.iter().map(|&(_, k)| k).sum(),
            dbs,
            dataset: store.dataset_bytes(),
            allocated,
            active,
            resident,
            cached_scripts: scripts.cached.load(Relaxed),
            clients: s.clients.len() as u64,
            figures,
        }
    }

    /// Net use: what is allocated beyond start-up.
    fn net(&self) -> u64 {
        self.figures.used.saturating_sub(self.startup)
    }
}

/// Redis keeps its ratios as C floats.
fn ratio(a: u64, b: u64) -> f64 {
    f64::from(a as f32 / b as f32)
}

fn percent(a: u64, b: u64) -> f64 {
    f64::from(a as f32 * 100.0 / b as f32)
}

fn diff(a: u64, b: u64) -> i64 {
    a as i64 - b as i64
}

/// `MEMORY STATS`: Redis's `getMemoryOverheadData` report.
fn stats(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let o = Overhead::now(ctx.server);
    let m = &o.figures;
    let r = &mut ctx.reply;
    r.map_len(27 + o.dbs.len());
    let int = |r: &mut crate::resp::Reply<'_>, name: &str, v: i64| {
        r.bulk(name.as_bytes());
        r.int(v);
    };
    let double = |r: &mut crate::resp::Reply<'_>, name: &str, v: f64| {
        r.bulk(name.as_bytes());
        r.double(v);
    };
    int(r, "peak.allocated", m.peak as i64);
    int(r, "total.allocated", m.used as i64);
    int(r, "startup.allocated", o.startup as i64);
    int(r, "replication.backlog", 0);
    int(r, "clients.slaves", 0);
    int(r, "clients.normal", m.clients as i64);
    int(r, "cluster.links", 0);
    int(r, "aof.buffer", 0);
    int(r, "lua.caches", o.lua_caches as i64);
    int(r, "functions.caches", o.functions_caches as i64);
    for &(db, n) in &o.dbs {
        r.bulk(format!("db.{db}").as_bytes());
        r.map_len(3);
        int(r, "overhead.hashtable.main", (n * 16) as i64);
        int(r, "overhead.hashtable.expires", 0);
        int(r, "overhead.hashtable.slot-to-keys", 0);
    }
    int(r, "overhead.total", m.overhead as i64);
    int(r, "keys.count", o.keys as i64);
    int(
        r,
        "keys.bytes-per-key",
        o.net().checked_div(o.keys).unwrap_or(0) as i64,
    );
    int(r, "dataset.bytes", o.dataset as i64);
    double(r, "dataset.percentage", percent(o.dataset, o.net()));
    double(r, "peak.percentage", percent(m.used, m.peak));
    int(r, "allocator.allocated", o.allocated as i64);
    int(r, "allocator.active", o.active as i64);
    int(r, "allocator.resident", o.resident as i64);
    double(
        r,
        "allocator-fragmentation.ratio",
        ratio(o.active, o.allocated),
    );
    int(
        r,
        "allocator-fragmentation.bytes",
        diff(o.active, o.allocated),
    );
    double(r, "allocator-rss.ratio", ratio(o.resident, o.active));
    int(r, "allocator-rss.bytes", diff(o.resident, o.active));
    double(r, "rss-overhead.ratio", ratio(m.rss, o.resident));
    int(r, "rss-overhead.bytes", diff(m.rss, o.resident));
    double(r, "fragmentation", ratio(m.rss, m.used));
    int(r, "fragmentation.bytes", diff(m.rss, m.used));
}

/// `MEMORY DOCTOR`: Redis's `getMemoryDoctorReport`, its thresholds and texts, on the figures
/// MEMORY STATS shows.
fn doctor(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let report = doctor_report(&Overhead::now(ctx.server));
    ctx.reply.verbatim("txt", report.as_bytes());
}

fn doctor_report(o: &Overhead) -> String {
    const MB10: i64 = 10 << 20;
    let m = &o.figures;
    if m.used < 5 << 20 {
        return "Hi Sam, this instance is empty or is using very little memory, my issues \
                detector can't be used in these conditions. Please, leave for your mission on \
                Earth and fill it with some data. The new Sam and I will be back to our \
                programming as soon as I finished rebooting.\n"
            .to_string();
    }
    let mut found: Vec<&str> = Vec::new();
    if ratio(m.peak, m.used) > 1.5 {
        found.push(DOCTOR_PEAK);
    }
    if ratio(m.rss, m.used) > 1.4 && diff(m.rss, m.used) > MB10 {
        found.push(DOCTOR_FRAG);
    }
    if ratio(o.active, o.allocated) > 1.1 && diff(o.active, o.allocated) > MB10 {
        found.push(DOCTOR_ALLOC_FRAG);
    }
    if ratio(o.resident, o.active) > 1.1 && diff(o.resident, o.active) > MB10 {
        found.push(DOCTOR_ALLOC_RSS);
    }
    if ratio(m.rss, o.resident) > 1.1 && diff(m.rss, o.resident) > MB10 {
        found.push(DOCTOR_PROC_RSS);
    }
    if m.clients.checked_div(o.clients).unwrap_or(0) > 200 * 1024 {
        found.push(DOCTOR_CLIENT_BUF);
    }
    if o.cached_scripts > 1000 {
        found.push(DOCTOR_SCRIPTS);
    }
    if found.is_empty() {
        return "Hi Sam, I can't find any memory issue in your instance. I can only account for \
                what occurs on this base.\n"
            .to_string();
    }
    let mut s =
        String::from("Sam, I detected a few issues in this Redis instance memory implants:\n\n");
    for f in found {
        s.push_str(f);
        s.push_str("\n\n");
    }
    s.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
    s
}

const DOCTOR_PEAK: &str = " * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.";
const DOCTOR_FRAG: &str = " * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"libc\".";
const DOCTOR_ALLOC_FRAG: &str = " * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try enabling 'activedefrag' config option.";
const DOCTOR_ALLOC_RSS: &str = " * High allocator RSS overhead: This instance has an RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the allocator is much larger than the sum what the allocator actually holds). This problem is usually due to a large peak memory (check if there is a peak memory entry above in the report), you can try the MEMORY PURGE command to reclaim it.";
const DOCTOR_PROC_RSS: &str = " * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.";
const DOCTOR_CLIENT_BUF: &str = " * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.";
const DOCTOR_SCRIPTS: &str = " * Many scripts: There seem to be many cached scripts in this instance (more than 1000). This may be because scripts are generated and `EVAL`ed, instead of being parameterized (with KEYS and ARGV), `SCRIPT LOAD`ed and `EVALSHA`ed. Unless `SCRIPT FLUSH` is called periodically, the scripts' caches may end up consuming most of your memory.";

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

#[cfg(test)]
mod doctor_tests {
    use super::*;
    use crate::cmd::info::MemoryFigures;

    fn overhead(used: u64, peak: u64, rss: u64) -> Overhead {
        Overhead {
            figures: MemoryFigures {
                used,
                peak,
                overhead: 0,
                clients: 20 * 1024,
                rss,
                lua: 0,
            },
            startup: 0,
            lua_caches: 0,
            functions_caches: 0,
            dbs: Vec::new(),
            keys: 0,
            dataset: 0,
            allocated: used,
            active: rss,
            resident: rss,
            cached_scripts: 0,
            clients: 1,
        }
    }

    #[test]
    fn reports_follow_redis_thresholds() {
        assert!(doctor_report(&overhead(1 << 20, 1 << 20, 1 << 20)).starts_with("Hi Sam, this"));
        assert!(
            doctor_report(&overhead(64 << 20, 64 << 20, 64 << 20)).starts_with("Hi Sam, I can't")
        );
        let peak = doctor_report(&overhead(64 << 20, 200 << 20, 64 << 20));
        assert!(peak.starts_with("Sam, I detected a few issues"));
        assert!(peak.contains(" * Peak memory:"));
        assert!(!peak.contains("High total RSS"));
        assert!(peak.ends_with("I'm here to keep you safe, Sam. I want to help you.\n"));
        let frag = doctor_report(&overhead(64 << 20, 64 << 20, 128 << 20));
        assert!(frag.contains("High total RSS") && frag.contains("High allocator fragmentation"));
    }
}
