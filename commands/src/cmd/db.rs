//! Database-wide commands (Redis's `server` group): DBSIZE, FLUSHDB, FLUSHALL, SWAPDB and TIME.

use ferrite_hybridlog::Db;

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::table::{CommandSpec, flags::*};

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "dbsize",
        arity: 1,
        flags: READONLY | FAST,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["keyspace", "read", "fast"],
        group: "server",
        since: "1.0.0",
        summary: "Return the number of keys in the selected database",
        complexity: "O(1)",
        handler: dbsize,
        subcommands: &[],
    },
    CommandSpec {
        name: "flushdb",
        arity: -1,
        flags: WRITE | EXCLUSIVE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["keyspace", "write", "slow", "dangerous"],
        group: "server",
        since: "1.0.0",
        summary: "Remove all keys from the current database",
        complexity: "O(N) where N is the number of keys in the selected database",
        handler: flushdb,
        subcommands: &[],
    },
    CommandSpec {
        name: "flushall",
        arity: -1,
        flags: WRITE | EXCLUSIVE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["keyspace", "write", "slow", "dangerous"],
        group: "server",
        since: "1.0.0",
        summary: "Remove all keys from all databases",
        complexity: "O(N) where N is the total number of keys in all databases",
        handler: flushall,
        subcommands: &[],
    },
    CommandSpec {
        name: "swapdb",
        arity: 3,
        flags: WRITE | FAST | EXCLUSIVE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["keyspace", "write", "fast", "dangerous"],
        group: "server",
        since: "4.0.0",
        summary: "Swaps two Redis databases",
        complexity: "O(N) where N is the count of clients watching or blocking on keys from \
                     both databases.",
        handler: swapdb,
        subcommands: &[],
    },
    CommandSpec {
        name: "time",
        arity: 1,
        flags: LOADING | STALE | FAST,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["fast"],
        group: "server",
        since: "2.6.0",
        summary: "Return the current server time",
        complexity: "O(1)",
        handler: time,
        subcommands: &[],
    },
];

/// `DBSIZE`
fn dbsize(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let n = ctx.server.store.db_size(ctx.client.db);
    ctx.reply.int(i64::try_from(n).unwrap_or(i64::MAX));
}

/// Redis's `getFlushCommandFlags`: nothing, `SYNC` or `ASYNC`, and nothing else. Ferrite frees
/// log space the same way either way, so the mode only has to be valid.
fn flush_mode_ok(ctx: &mut Ctx<'_>, args: Args<'_>) -> bool {
    let ok = match args.len() {
        1 => true,
        2 => eq_ignore_case(args.get(1), "sync") || eq_ignore_case(args.get(1), "async"),
        _ => false,
    };
    if !ok {
        ctx.syntax_error();
    }
    ok
}

/// `FLUSHDB [ASYNC|SYNC]`
fn flushdb(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if flush_mode_ok(ctx, args) {
        ctx.store.flush_db(ctx.client.db);
        ctx.reply.ok();
        crate::tracking::flushed(ctx.server, false, ctx.client.id, ctx.reply.raw());
    }
}

/// `FLUSHALL [ASYNC|SYNC]`
fn flushall(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if flush_mode_ok(ctx, args) {
        ctx.store.flush_all();
        crate::persist::snapshot::after_flushall(ctx.server, ctx.store);
        ctx.reply.ok();
        crate::tracking::flushed(ctx.server, true, ctx.client.id, ctx.reply.raw());
    }
}

/// `SWAPDB index1 index2`: each index must be a C `int` (with its own error), then both must be
/// in range.
fn swapdb(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let as_int = |a: &[u8]| parse_i64(a).filter(|v| i32::try_from(*v).is_ok());
    let Some(a) = as_int(args.get(1)) else {
        ctx.reply.error("ERR invalid first DB index");
        return;
    };
    let Some(b) = as_int(args.get(2)) else {
        ctx.reply.error("ERR invalid second DB index");
        return;
    };
    let n = ctx.store_databases();
    let in_range = |v: i64| Db::try_from(v).ok().filter(|d| usize::from(*d) < n);
    let (Some(a), Some(b)) = (in_range(a), in_range(b)) else {
        ctx.reply.error("ERR DB index is out of range");
        return;
    };
    if a != b {
        ctx.store.swap_db(a, b);
        // Clients blocked on a key that now exists in their database are served, as Redis's
        // SWAPDB does.
        crate::blocking::signal_db(ctx, a);
        crate::blocking::signal_db(ctx, b);
    }
    ctx.reply.ok();
}

/// `TIME`: seconds and microseconds, as two bulk strings.
fn time(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let us = crate::server::unix_us();
    let secs = i64::try_from(us / 1_000_000).unwrap_or(i64::MAX);
    ctx.reply.array_len(2);
    ctx.reply.bulk_int(secs);
    ctx.reply.bulk_int((us % 1_000_000) as i64);
}

#[cfg(test)]
mod tests {
    use ferrite_hybridlog::NO_EXPIRY;

    use crate::cmd::keys::tests::Harness;

    #[test]
    fn flush_swap_and_size() {
        let mut h = Harness::new();
        h.set(0, b"a", b"1", NO_EXPIRY);
        h.set(1, b"b", b"1", NO_EXPIRY);
        h.set(1, b"c", b"1", NO_EXPIRY);
        assert_eq!(h.cmd("DBSIZE"), ":1\r\n");
        assert_eq!(h.cmd("SWAPDB 0 1"), "+OK\r\n");
        assert_eq!(h.cmd("DBSIZE"), ":2\r\n");
        assert_eq!(h.get(1, b"a").map(|(v, _)| v), Some(b"1".to_vec()));
        assert_eq!(h.cmd("SWAPDB 0 16"), "-ERR DB index is out of range\r\n");
        assert_eq!(h.cmd("SWAPDB x 1"), "-ERR invalid first DB index\r\n");
        assert_eq!(
            h.cmd("SWAPDB 1 4294967296"),
            "-ERR invalid second DB index\r\n"
        );
        assert_eq!(h.cmd("FLUSHDB SYNC"), "+OK\r\n");
        assert_eq!(h.cmd("DBSIZE"), ":0\r\n");
        assert_eq!(h.get(1, b"a").map(|(v, _)| v), Some(b"1".to_vec()));
        assert_eq!(h.cmd("FLUSHALL ASYNC SYNC"), "-ERR syntax error\r\n");
        assert_eq!(h.cmd("FLUSHALL ASYNC"), "+OK\r\n");
        assert_eq!(h.get(1, b"a"), None);
    }

    #[test]
    fn time_is_two_bulk_numbers() {
        let mut h = Harness::new();
        let reply = h.cmd("TIME");
        let parts: Vec<&str> = reply.split("\r\n").collect();
        assert_eq!(parts[0], "*2");
        let secs: u64 = parts[2].parse().expect("seconds");
        let micros: u64 = parts[4].parse().expect("microseconds");
        assert!(secs > 1_600_000_000);
        assert!(micros < 1_000_000);
    }
}
