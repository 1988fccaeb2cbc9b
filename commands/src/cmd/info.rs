//! INFO [section ...]: Redis 7.0's sections and field names (`server.c` `genRedisInfoString`),
//! filled from Ferrite's statistics. Fields Ferrite has no counterpart for keep Redis's idle
//! values (0, `ok`, -1) so that tools parsing INFO find every field they expect.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The Redis release whose behaviour Ferrite implements (INFO `redis_version`, the RDB
/// `redis-ver` field, scripts' `redis.REDIS_VERSION`).
pub const REDIS_VERSION: &str = "7.0.15";

use crate::args::{Args, eq_ignore_case};
use crate::config::Config;
use crate::ctx::Ctx;
use crate::server::unix_us;
use crate::table::{CommandSpec, flags::*};

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "info",
    arity: -1,
    flags: LOADING | STALE,
    first_key: 0,
    last_key: 0,
    step: 0,
    acl: &["slow", "dangerous"],
    group: "server",
    since: "1.0.0",
    summary: "Get information and statistics about the server",
    complexity: "O(1)",
    handler: info,
    subcommands: &[],
}];

/// Sections in output order; `default` marks those INFO without arguments shows.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
    // Ferrite's own: the disk tier of the log (not in the default INFO, as Redis has none).
    ("tiering", false),
];

/// What a client is estimated to cost in memory (Redis reports about this much per idle
/// connection: query and reply buffers plus the client struct).
const CLIENT_MEMORY_ESTIMATE: u64 = 20 * 1024;

/// `INFO [section ...]`
fn info(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mut wanted = [false; SECTIONS.len()];
    if args.len() == 1 {
        for (w, (_, default)) in wanted.iter_mut().zip(SECTIONS) {
            *w = *default;
        }
    }
    for a in args.iter_from(1) {
        if eq_ignore_case(a, "default") {
            for (w, (_, default)) in wanted.iter_mut().zip(SECTIONS) {
                *w |= *default;
            }
        } else if eq_ignore_case(a, "all") || eq_ignore_case(a, "everything") {
            wanted = [true; SECTIONS.len()];
        } else if let Some(i) = SECTIONS.iter().position(|(n, _)| eq_ignore_case(a, n)) {
            wanted[i] = true;
        }
    }
    let mut out = String::with_capacity(4096);
    let mut first = true;
    for (i, (name, _)) in SECTIONS.iter().enumerate() {
        if !wanted[i] {
            continue;
        }
        if !first {
            out.push_str("\r\n");
        }
        first = false;
        section(ctx, name, &mut out);
    }
    ctx.reply.verbatim("txt", out.as_bytes());
}

/// Appends `name:value\r\n`.
macro_rules! field {
    ($out:expr, $name:expr, $($arg:tt)*) => {{
        let _ = write!($out, "{}:", $name);
        let _ = write!($out, $($arg)*);
        $out.push_str("\r\n");
    }};
}

fn section(ctx: &Ctx<'_>, name: &str, out: &mut String) {
    let title = match name {
        "cpu" => "CPU".to_owned(),
        _ => {
            let mut t = name.to_owned();
            t[..1].make_ascii_uppercase();
            t
        }
    };
    let _ = write!(out, "# {title}\r\n");
    match name {
        "server" => server(ctx, out),
        "clients" => clients(ctx, out),
        "memory" => memory(ctx, out),
        "tiering" => tiering(ctx, out),
        "persistence" => persistence(ctx, out),
        "stats" => stats(ctx, out),
        "replication" => replication(ctx, out),
        "cpu" => cpu(out),
        "cluster" => field!(out, "cluster_enabled", "0"),
        "keyspace" => keyspace(ctx, out),
        "commandstats" => commandstats(ctx, out),
        "errorstats" => errorstats(ctx, out),
        "latencystats" => latencystats(ctx, out),
        // modules: nothing Ferrite has.
        _ => {}
    }
}

fn server(ctx: &Ctx<'_>, out: &mut String) {
    let s = ctx.server;
    let uptime = s.started.elapsed().as_secs();
    let hz = Config::load(&s.config.hz);
    field!(out, "redis_version", "{REDIS_VERSION}");
    field!(out, "ferrite_version", "{}", env!("CARGO_PKG_VERSION"));
    field!(out, "redis_git_sha1", "00000000");
    field!(out, "redis_git_dirty", "0");
    field!(out, "redis_build_id", "0");
    field!(out, "redis_mode", "standalone");
    field!(out, "os", "{}", os_name());
    field!(out, "arch_bits", "{}", usize::BITS);
    field!(out, "monotonic_clock", "POSIX clock_gettime");
    let backend = s.io_backend.get().map_or("io_uring", String::as_str);
    field!(out, "multiplexing_api", "{backend}");
    field!(out, "atomicvar_api", "c11-builtin");
    field!(out, "gcc_version", "0.0.0");
    field!(out, "process_id", "{}", std::process::id());
    field!(out, "process_supervised", "no");
    field!(out, "run_id", "{}", s.run_id);
    let port = s.port.get().copied().unwrap_or_else(|| s.config.port());
    field!(out, "tcp_port", "{port}");
    field!(out, "server_time_usec", "{}", unix_us());
    field!(out, "uptime_in_seconds", "{uptime}");
    field!(out, "uptime_in_days", "{}", uptime / 86400);
    field!(out, "hz", "{hz}");
    field!(out, "configured_hz", "{hz}");
    // Redis's LRU clock: seconds, 24 bits.
    field!(
        out,
        "lru_clock",
        "{}",
        (ctx.now_ms / 1000) & ((1 << 24) - 1)
    );
    let exe = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    field!(out, "executable", "{exe}");
    field!(
        out,
        "config_file",
        "{}",
        s.config.config_file().unwrap_or("")
    );
    field!(out, "io_threads_active", "0");
    field!(out, "reactor_threads", "{}", s.threads);
}

fn clients(ctx: &Ctx<'_>, out: &mut String) {
    let s = ctx.server;
    // Redis counts its replicas apart (`connected_slaves`).
    let clients = s.clients.len().saturating_sub(s.master.replicas());
    field!(out, "connected_clients", "{clients}");
    field!(out, "cluster_connections", "0");
    field!(out, "maxclients", "{}", Config::load(&s.config.maxclients));
    for f in [
        "client_recent_max_input_buffer",
        "client_recent_max_output_buffer",
    ] {
        field!(out, f, "0");
    }
    field!(
        out,
        "blocked_clients",
        "{}",
        crate::blocking::blocked_clients(s)
    );
    let tracking = s.tracking.figures();
    field!(out, "tracking_clients", "{}", tracking.clients);
    field!(out, "clients_in_timeout_table", "0");
}

/// Redis's `bytesToHuman`.
fn human(n: u64) -> String {
    const K: f64 = 1024.0;
    let d = n as f64;
    match n {
        0..1024 => format!("{n}B"),
        1024..1_048_576 => format!("{:.2}K", d / K),
        1_048_576..1_073_741_824 => format!("{:.2}M", d / (K * K)),
        1_073_741_824..1_099_511_627_776 => format!("{:.2}G", d / (K * K * K)),
        1_099_511_627_776..1_125_899_906_842_624 => format!("{:.2}T", d / (K * K * K * K)),
        1_125_899_906_842_624..1_152_921_504_606_846_976 => {
            format!("{:.2}P", d / (K * K * K * K * K))
        }
        _ => format!("{n}B"),
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(p).unwrap_or(4096)
}

/// Resident set size from /proc/self/statm (0 where unavailable).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages.saturating_mul(page_size()))
}

fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    u64::try_from(pages)
        .unwrap_or(0)
        .saturating_mul(page_size())
}

/// The disk tier: where the log's regions are and what the flusher and readers did.
fn tiering(ctx: &Ctx<'_>, out: &mut String) {
    let store = &ctx.server.store;
    let st = store.stats();
    let Some(t) = store.tier_stats() else {
        field!(out, "tier_enabled", "0");
        return;
    };
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    field!(out, "tier_enabled", "1");
    field!(out, "tier_log_memory_bytes", "{}", st.log_memory_bytes);
    field!(out, "tier_tail_address", "{}", st.tail_address);
    field!(out, "tier_read_only_address", "{}", st.read_only_address);
    field!(out, "tier_head_address", "{}", st.head_address);
    field!(out, "tier_flushed_until", "{}", st.flushed_until);
    field!(out, "tier_begin_address", "{}", st.begin_address);
    field!(
        out,
        "tier_disk_bytes",
        "{}",
        st.flushed_until.saturating_sub(st.begin_address)
    );
    field!(out, "tier_pages_flushed", "{}", n(&t.pages_flushed));
    field!(out, "tier_records_relocated", "{}", n(&t.records_relocated));
    field!(out, "tier_async_reads", "{}", n(&t.async_reads));
    field!(out, "tier_sync_reads", "{}", n(&t.sync_reads));
    field!(out, "tier_compactions", "{}", n(&t.compactions));
    field!(out, "tier_records_compacted", "{}", n(&t.records_compacted));
    field!(out, "tier_records_promoted", "{}", n(&t.records_promoted));
    field!(out, "tier_io_errors", "{}", n(&t.io_errors));
    // As aof_last_write_status: err while the flusher's writes fail (a full disk).
    let status = match store.tier_writes_failing() {
        Some(_) => "err",
        None => "ok",
    };
    field!(out, "tier_last_write_status", "{}", status);
    field!(out, "tier_objects_written", "{}", n(&t.objects_written));
    field!(
        out,
        "tier_object_bytes_written",
        "{}",
        n(&t.object_bytes_written)
    );
    field!(
        out,
        "tier_object_log_tail",
        "{}",
        store.object_log_tail().unwrap_or(0)
    );
    field!(out, "tier_payloads_evicted", "{}", store.evicted_payloads());
}

/// The memory figures INFO memory and MEMORY STATS share.
pub(crate) struct MemoryFigures {
    /// `used_memory`: the log in memory, the index, the clients.
    pub used: u64,
    /// `used_memory_peak`.
    pub peak: u64,
    /// `used_memory_overhead`: the index and the clients.
    pub overhead: u64,
    /// `mem_clients_normal`.
    pub clients: u64,
    /// The process's resident set.
    pub rss: u64,
    /// The Lua interpreters' heaps (EVAL's and the functions').
    pub lua: u64,
}

impl MemoryFigures {
    /// The figures now (the peak is the process's highest `used` seen by either command).
    pub(crate) fn now(s: &crate::server::Server) -> Self {
        static PEAK: AtomicU64 = AtomicU64::new(0);
        let st = s.store.stats();
        let clients = s.clients.len() as u64 * CLIENT_MEMORY_ESTIMATE;
        let overhead = st.index_memory_bytes.saturating_add(clients);
        let used = st.log_memory_bytes.saturating_add(overhead);
        let peak = PEAK.fetch_max(used, Ordering::Relaxed).max(used);
        let scripts = &s.scripts;
        MemoryFigures {
            used,
            peak,
            overhead,
            clients,
            rss: rss_bytes(),
            lua: scripts.lua_memory.load(Ordering::Relaxed)
                + scripts.functions.lua_memory.load(Ordering::Relaxed),
        }
    }

    /// The allocator's own figures, derived as Redis derives them when its allocator reports
    /// none (the C library's, Ferrite's): allocated is `used_memory`, active and resident are
    /// the resident set less the Lua heaps. `(allocated, active, resident)`.
    pub(crate) fn allocator(&self) -> (u64, u64, u64) {
        let resident = self.rss.saturating_sub(self.lua);
        (self.used, resident, resident)
    }
}

fn memory(ctx: &Ctx<'_>, out: &mut String) {
    let s = ctx.server;
    let st = s.store.stats();
    let figures = MemoryFigures::now(s);
    let (allocated, active, resident) = figures.allocator();
    let MemoryFigures {
        used,
        peak,
        overhead,
        clients,
        rss,
        ..
    } = figures;
    let total = total_system_memory();
    let maxmemory = Config::load(&s.config.maxmemory);
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    field!(out, "used_memory", "{used}");
    field!(out, "used_memory_human", "{}", human(used));
    field!(out, "used_memory_rss", "{rss}");
    field!(out, "used_memory_rss_human", "{}", human(rss));
    field!(out, "used_memory_peak", "{peak}");
    field!(out, "used_memory_peak_human", "{}", human(peak));
    field!(out, "used_memory_peak_perc", "{:.2}%", pct(used, peak));
    field!(out, "used_memory_overhead", "{overhead}");
    field!(out, "used_memory_startup", "0");
    field!(out, "used_memory_dataset", "{}", s.store.dataset_bytes());
    field!(
        out,
        "used_memory_dataset_perc",
        "{:.2}%",
        pct(st.log_memory_bytes, used)
    );
    field!(out, "allocator_allocated", "{allocated}");
    field!(out, "allocator_active", "{active}");
    field!(out, "allocator_resident", "{resident}");
    field!(out, "used_memory_log", "{}", st.log_memory_bytes);
    field!(out, "used_memory_index", "{}", st.index_memory_bytes);
    field!(out, "total_system_memory", "{total}");
    field!(out, "total_system_memory_human", "{}", human(total));
    // Scripting, in Redis 7.0's fields: EVAL's interpreter and cache, the function engine's
    // interpreter and libraries. Read from figures the engines publish: INFO may run inside a
    // script.
    let scripts = &s.scripts;
    let lua = scripts.lua_memory.load(Ordering::Relaxed);
    let bodies = scripts.bodies_memory.load(Ordering::Relaxed);
    let f = &scripts.functions;
    let vm_functions = f.lua_memory.load(Ordering::Relaxed);
    let functions_memory = f.overhead.load(Ordering::Relaxed);
    field!(out, "used_memory_lua", "{lua}");
    field!(out, "used_memory_vm_eval", "{lua}");
    field!(out, "used_memory_lua_human", "{}", human(lua));
    field!(out, "used_memory_scripts_eval", "{bodies}");
    let cached = scripts.cached.load(Ordering::Relaxed);
    field!(out, "number_of_cached_scripts", "{cached}");
    field!(
        out,
        "number_of_functions",
        "{}",
        f.functions.load(Ordering::Relaxed)
    );
    field!(
        out,
        "number_of_libraries",
        "{}",
        f.libraries.load(Ordering::Relaxed)
    );
    field!(out, "used_memory_vm_functions", "{vm_functions}");
    let vm_total = lua + vm_functions;
    field!(out, "used_memory_vm_total", "{vm_total}");
    field!(out, "used_memory_vm_total_human", "{}", human(vm_total));
    field!(out, "used_memory_functions", "{functions_memory}");
    let scripts_total = bodies + functions_memory;
    field!(out, "used_memory_scripts", "{scripts_total}");
    field!(out, "used_memory_scripts_human", "{}", human(scripts_total));
    field!(out, "maxmemory", "{maxmemory}");
    field!(out, "maxmemory_human", "{}", human(maxmemory));
    let policy = s.config.value("maxmemory-policy").unwrap_or_default();
    field!(out, "maxmemory_policy", "{policy}");
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let diff = |a: u64, b: u64| a as i128 - b as i128;
    field!(
        out,
        "allocator_frag_ratio",
        "{:.2}",
        ratio(active, allocated)
    );
    field!(
        out,
        "allocator_frag_bytes",
        "{}",
        active.saturating_sub(allocated)
    );
    field!(out, "allocator_rss_ratio", "{:.2}", ratio(resident, active));
    field!(out, "allocator_rss_bytes", "{}", diff(resident, active));
    field!(out, "rss_overhead_ratio", "{:.2}", ratio(rss, resident));
    field!(out, "rss_overhead_bytes", "{}", diff(rss, resident));
    let frag = if used == 0 {
        0.0
    } else {
        rss as f64 / used as f64
    };
    field!(out, "mem_fragmentation_ratio", "{frag:.2}");
    field!(
        out,
        "mem_fragmentation_bytes",
        "{}",
        rss as i128 - used as i128
    );
    field!(out, "mem_not_counted_for_evict", "0");
    field!(out, "mem_replication_backlog", "0");
    field!(out, "mem_total_replication_buffers", "0");
    field!(out, "mem_clients_slaves", "0");
    field!(out, "mem_clients_normal", "{clients}");
    field!(out, "mem_cluster_links", "0");
    field!(out, "mem_aof_buffer", "0");
    field!(out, "mem_allocator", "libc");
    field!(out, "active_defrag_running", "0");
    field!(out, "lazyfree_pending_objects", "0");
    field!(out, "lazyfreed_objects", "0");
}

fn persistence(ctx: &Ctx<'_>, out: &mut String) {
    for (name, value) in crate::persist::info_fields(ctx.server) {
        field!(out, name, "{value}");
    }
    ctx.server.aof.info(out);
}

fn stats(ctx: &Ctx<'_>, out: &mut String) {
    let t = ctx.server.stats.totals();
    let st = ctx.server.store.stats();
    let [ops, input_bps, output_bps] = ctx.server.stats.rates();
    field!(out, "total_connections_received", "{}", t.connections);
    field!(out, "total_commands_processed", "{}", t.commands);
    field!(out, "instantaneous_ops_per_sec", "{ops}");
    field!(out, "total_net_input_bytes", "{}", t.net_input_bytes);
    field!(out, "total_net_output_bytes", "{}", t.net_output_bytes);
    field!(out, "total_net_repl_input_bytes", "0");
    field!(out, "total_net_repl_output_bytes", "0");
    // Redis divides the integer bytes-per-second mean by 1024 as a float.
    field!(
        out,
        "instantaneous_input_kbps",
        "{:.2}",
        input_bps as f64 / 1024.0
    );
    field!(
        out,
        "instantaneous_output_kbps",
        "{:.2}",
        output_bps as f64 / 1024.0
    );
    field!(out, "instantaneous_input_repl_kbps", "0.00");
    field!(out, "instantaneous_output_repl_kbps", "0.00");
    field!(out, "rejected_connections", "{}", t.rejected_connections);
    let [full, partial_ok, partial_err] = ctx.server.master.sync_stats();
    field!(out, "sync_full", "{full}");
    field!(out, "sync_partial_ok", "{partial_ok}");
    field!(out, "sync_partial_err", "{partial_err}");
    field!(out, "expired_keys", "{}", st.expired_keys);
    field!(out, "expired_stale_perc", "0.00");
    field!(out, "expired_time_cap_reached_count", "0");
    field!(out, "expire_cycle_cpu_milliseconds", "0");
    field!(out, "evicted_keys", "{}", ctx.server.store.evicted_keys());
    for f in [
        "evicted_clients",
        "total_eviction_exceeded_time",
        "current_eviction_exceeded_time",
    ] {
        field!(out, f, "0");
    }
    field!(out, "keyspace_hits", "{}", t.keyspace_hits);
    field!(out, "keyspace_misses", "{}", t.keyspace_misses);
    let pubsub = crate::pubsub::registry();
    use crate::pubsub::Kind;
    field!(
        out,
        "pubsub_channels",
        "{}",
        pubsub.channels(Kind::Channel, None).len()
    );
    field!(out, "pubsub_patterns", "{}", pubsub.numpat());
    field!(
        out,
        "pubsubshard_channels",
        "{}",
        pubsub.channels(Kind::Shard, None).len()
    );
    let (fork_usec, forks) = ctx.server.persist.forks();
    field!(out, "latest_fork_usec", "{fork_usec}");
    field!(out, "total_forks", "{forks}");
    for f in [
        "migrate_cached_sockets",
        "slave_expires_tracked_keys",
        "active_defrag_hits",
        "active_defrag_misses",
        "active_defrag_key_hits",
        "active_defrag_key_misses",
        "total_active_defrag_time",
        "current_active_defrag_time",
    ] {
        field!(out, f, "0");
    }
    let tracking = ctx.server.tracking.figures();
    field!(out, "tracking_total_keys", "{}", tracking.keys);
    field!(out, "tracking_total_items", "{}", tracking.items);
    field!(out, "tracking_total_prefixes", "{}", tracking.prefixes);
    field!(out, "unexpected_error_replies", "0");
    field!(out, "total_error_replies", "{}", t.error_replies);
    for f in [
        "dump_payload_sanitizations",
        "total_reads_processed",
        "total_writes_processed",
        "io_threaded_reads_processed",
        "io_threaded_writes_processed",
        "reply_buffer_shrinks",
        "reply_buffer_expands",
    ] {
        field!(out, f, "0");
    }
}

/// `cmdstat_<name>:calls=..,usec=..,usec_per_call=..,rejected_calls=..,failed_calls=..` for
/// every command with a count, subcommands as `container|sub` (Redis's dict order is a hash
/// order; Ferrite's is by name).
fn commandstats(ctx: &Ctx<'_>, out: &mut String) {
    let totals = ctx.server.stats.command_totals();
    let mut lines = Vec::new();
    for (id, &[calls, ticks, rejected, failed]) in totals.iter().enumerate() {
        if calls == 0 && rejected == 0 && failed == 0 {
            continue;
        }
        let Some((spec, parent)) = crate::table::by_id(id as crate::table::CmdId) else {
            continue;
        };
        let key = match parent {
            Some(p) => (p.name, spec.name),
            None => (spec.name, ""),
        };
        lines.push((key, calls, ticks, rejected, failed));
    }
    lines.sort_unstable_by_key(|l| l.0);
    for ((top, sub), calls, ticks, rejected, failed) in lines {
        let usec = crate::stats::commands::ticks_to_us(ticks);
        let per_call = if calls == 0 {
            0.0
        } else {
            usec as f64 / calls as f64
        };
        let bar = if sub.is_empty() { "" } else { "|" };
        let _ = write!(
            out,
            "cmdstat_{top}{bar}{sub}:calls={calls},usec={usec},usec_per_call={per_call:.2},\
             rejected_calls={rejected},failed_calls={failed}\r\n"
        );
    }
}

/// `errorstat_<CODE>:count=N`, in code order (Redis keeps them in a radix tree).
/// `latency_percentiles_usec_<command>:p50=...,p99=...` per command that ran while
/// `latency-tracking` was on, at the `latency-tracking-info-percentiles`.
fn latencystats(ctx: &Ctx<'_>, out: &mut String) {
    let shown = ctx
        .server
        .config
        .value("latency-tracking-info-percentiles")
        .unwrap_or_default();
    let percentiles: Vec<(&str, f64)> = shown
        .split(' ')
        .filter_map(|p| Some((p, p.parse().ok()?)))
        .collect();
    for (id, h) in ctx.server.stats.latency_totals().iter().enumerate() {
        let (Some(h), Some((spec, parent))) = (h, crate::table::by_id(id as crate::table::CmdId))
        else {
            continue;
        };
        if h.total() == 0 {
            continue;
        }
        let name = crate::cmd::latency::full_name(spec, parent);
        let _ = write!(out, "latency_percentiles_usec_{name}:");
        for (i, (text, p)) in percentiles.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let us = h.value_at_percentile(*p) as f64 / 1000.0;
            let _ = write!(out, "p{text}={us:.3}");
        }
        out.push_str("\r\n");
    }
}

fn errorstats(ctx: &Ctx<'_>, out: &mut String) {
    for (code, n) in ctx.server.stats.error_totals() {
        // Codes are the first word of Ferrite's own messages: ASCII.
        let _ = write!(
            out,
            "errorstat_{}:count={n}\r\n",
            String::from_utf8_lossy(&code)
        );
    }
}

fn replication(ctx: &Ctx<'_>, out: &mut String) {
    // A replica's role lines, then what both roles show: its replicas and its history (a
    // replica's is its master's).
    if !ctx.server.replication.replica_info(ctx.server, out) {
        field!(out, "role", "master");
    }
    ctx.server.master.info(ctx.server, out);
}

fn rusage(who: libc::c_int) -> (String, String) {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, exclusively borrowed rusage.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return ("0.000000".into(), "0.000000".into());
    }
    let tv = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    (tv(ru.ru_stime), tv(ru.ru_utime))
}

fn cpu(out: &mut String) {
    let (sys, user) = rusage(libc::RUSAGE_SELF);
    let (csys, cuser) = rusage(libc::RUSAGE_CHILDREN);
    // The calling reactor thread stands in for Redis's main thread.
    let (tsys, tuser) = rusage(libc::RUSAGE_THREAD);
    field!(out, "used_cpu_sys", "{sys}");
    field!(out, "used_cpu_user", "{user}");
    field!(out, "used_cpu_sys_children", "{csys}");
    field!(out, "used_cpu_user_children", "{cuser}");
    field!(out, "used_cpu_sys_main_thread", "{tsys}");
    field!(out, "used_cpu_user_main_thread", "{tuser}");
}

fn keyspace(ctx: &Ctx<'_>, out: &mut String) {
    let store = &ctx.server.store;
    for db in 0..store.databases().min(256) {
        let keys = store.db_size(db as u8);
        if keys == 0 {
            continue;
        }
        let expires = store.db_expires(db as u8);
        let _ = write!(out, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
    }
}

/// `uname -s -r -m`, as Redis's `os` field.
fn os_name() -> String {
    // SAFETY: an all-zero utsname is a valid value for uname to overwrite.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, exclusively borrowed utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return std::env::consts::OS.to_owned();
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!(
        "{} {} {}",
        field(&u.sysname),
        field(&u.release),
        field(&u.machine)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_to_human() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(1024), "1.00K");
        assert_eq!(human(1_434_768), "1.37M");
        assert_eq!(human(25_276_502_016), "23.54G");
    }

    #[test]
    fn os_is_named() {
        assert!(!os_name().is_empty());
    }
}
