//! Transactions (Redis's `multi.c`): MULTI, EXEC, DISCARD, WATCH, UNWATCH, and the queueing the
//! dispatcher does between MULTI and EXEC.
//!
//! Queued commands' arguments are copied into the client's [`MultiState`] (the input buffer they
//! came in is consumed as they arrive). EXEC runs them with every other thread excluded (its
//! table entry is `EXCLUSIVE`), so the transaction is atomic and the WATCH check and the
//! commands see the same state. WATCH remembers each key's [`KeyVersion`] (its newest record's
//! address and seqlock version), which every write changes, whichever client or thread made it.

use ferrite_hybridlog::KeyVersion;

use crate::args::Args;
use crate::client::{Client, MultiState, WatchedKey};
use crate::ctx::Ctx;
use crate::resp::Reply;
use crate::stats::ThreadStats;
use crate::table::{CommandSpec, flags::*};

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "multi",
        arity: 1,
        flags: NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["fast", "transaction"],
        group: "transactions",
        since: "1.2.0",
        summary: "Mark the start of a transaction block",
        complexity: "O(1)",
        handler: multi,
        subcommands: &[],
    },
    CommandSpec {
        name: "exec",
        arity: 1,
        flags: NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG | EXCLUSIVE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["slow", "transaction"],
        group: "transactions",
        since: "1.2.0",
        summary: "Execute all commands issued after MULTI",
        complexity: "Depends on commands in the transaction",
        handler: exec,
        subcommands: &[],
    },
    CommandSpec {
        name: "discard",
        arity: 1,
        flags: NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["fast", "transaction"],
        group: "transactions",
        since: "2.0.0",
        summary: "Discard all commands issued after MULTI",
        complexity: "O(N), when N is the number of queued commands",
        handler: discard,
        subcommands: &[],
    },
    CommandSpec {
        name: "watch",
        arity: -2,
        flags: NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        first_key: 1,
        last_key: -1,
        step: 1,
        acl: &["fast", "transaction"],
        group: "transactions",
        since: "2.2.0",
        summary: "Watch the given keys to determine execution of the MULTI/EXEC block",
        complexity: "O(1) for every key.",
        handler: watch,
        subcommands: &[],
    },
    CommandSpec {
        name: "unwatch",
        arity: 1,
        flags: NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["fast", "transaction"],
        group: "transactions",
        since: "2.2.0",
        summary: "Forget about all watched keys",
        complexity: "O(1)",
        handler: unwatch,
        subcommands: &[],
    },
];

/// Commands that run at once even inside MULTI (Redis's `processCommand` list).
const NOT_QUEUED: [&[u8]; 6] = [b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"];

/// Whether the command named by `args` is queued while a transaction is open.
#[inline]
pub(crate) fn queues(args: Args<'_>) -> bool {
    let name = args.try_get(0).unwrap_or_default();
    !NOT_QUEUED.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// Queues a checked command of an open transaction and answers `+QUEUED`; returns the error
/// replies written.
pub(crate) fn queue(
    client: &mut Client,
    spec: &'static CommandSpec,
    args: Args<'_>,
    out: &mut Vec<u8>,
    stats: &ThreadStats,
) -> u32 {
    let mut reply = Reply::counted(out, client.resp3, stats);
    let Some(state) = client.multi.as_mut() else {
        return 0;
    };
    if state.queue(spec, args) {
        reply.simple("QUEUED");
    } else {
        // Only past 4 GiB of queued arguments, which Redis would refuse for memory long before.
        state.dirty = true;
        reply.error("ERR Transaction too large");
    }
    reply.errors()
}

/// Answers a command that failed the dispatcher's checks (unknown, wrong arity, NOAUTH) with
/// `msg`, as Redis's `rejectCommand`: an open transaction is flagged so that EXEC refuses it, and
/// a rejected EXEC itself aborts the transaction with the reason.
pub(crate) fn reject(
    client: &mut Client,
    args: Args<'_>,
    out: &mut Vec<u8>,
    msg: &[u8],
    stats: &ThreadStats,
) {
    let mut reply = Reply::counted(out, client.resp3, stats);
    let name = args.try_get(0).unwrap_or_default();
    if name.eq_ignore_ascii_case(b"exec") {
        discard_transaction(client);
        // Redis's `execCommandAbort` prints the error without its `-ERR ` prefix.
        let detail = msg.strip_prefix(b"ERR ").unwrap_or(msg);
        reply.error_bytes(&[&b"EXECABORT Transaction discarded because of: "[..], detail].concat());
        return;
    }
    if let Some(state) = client.multi.as_mut() {
        state.dirty = true;
    }
    reply.error_bytes(msg);
}

/// Redis's `discardTransaction`: drops the queue and every WATCH.
fn discard_transaction(client: &mut Client) {
    client.multi = None;
    client.watched.clear();
}

/// `MULTI`
fn multi(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    if ctx.client.multi.is_some() {
        ctx.reply.error("ERR MULTI calls can not be nested");
        return;
    }
    ctx.client.multi = Some(Box::new(MultiState::default()));
    ctx.reply.ok();
}

/// `DISCARD`
fn discard(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    if ctx.client.multi.is_none() {
        ctx.reply.error("ERR DISCARD without MULTI");
        return;
    }
    discard_transaction(ctx.client);
    ctx.reply.ok();
}

/// `WATCH key [key ...]`
fn watch(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if ctx.client.multi.is_some() {
        ctx.reply.error("ERR WATCH inside MULTI is not allowed");
        return;
    }
    let db = ctx.client.db;
    for key in args.iter_from(1) {
        // Watching a key twice keeps the first version, as Redis keeps the first watch.
        if ctx
            .client
            .watched
            .iter()
            .any(|w| w.db == db && w.key == key)
        {
            continue;
        }
        let version = ctx.store.key_version(db, key, ctx.now_ms);
        ctx.client.watched.push(WatchedKey {
            db,
            key: key.to_vec(),
            version,
        });
    }
    ctx.reply.ok();
}

/// `UNWATCH`
fn unwatch(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.client.watched.clear();
    ctx.reply.ok();
}

/// Whether a key watched at version `then` counts as modified now that it is at `now`.
fn modified(then: KeyVersion, now: KeyVersion) -> bool {
    if then == now {
        return false;
    }
    match (then, now) {
        // Redis 7.0: a key already expired at WATCH and deleted since is "logically no
        // change"; one that is still expired has not changed either.
        (KeyVersion::Expired(..), KeyVersion::Absent | KeyVersion::Deleted(..)) => false,
        (KeyVersion::Expired(..), KeyVersion::Expired(..)) => false,
        // A tombstone compacted away is the same absent key.
        (KeyVersion::Deleted(..), KeyVersion::Absent) => false,
        _ => true,
    }
}

/// `EXEC`: runs the queued commands (with every other thread excluded, by its table flag) and
/// answers their replies as one array; a null array when a watched key was modified.
fn exec(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let Some(state) = ctx.client.multi.take() else {
        ctx.reply.error("ERR EXEC without MULTI");
        return;
    };
    if state.dirty {
        ctx.client.watched.clear();
        ctx.reply
            .error("EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    let watched = std::mem::take(&mut ctx.client.watched);
    let now_ms = ctx.now_ms;
    let dirty = watched
        .iter()
        .any(|w| modified(w.version, ctx.store.key_version(w.db, &w.key, now_ms)));
    if dirty {
        ctx.reply.null_array();
        return;
    }
    ctx.reply.array_len(state.commands.len());
    // Blocking commands answer at once inside a transaction, as Redis's CLIENT_DENY_BLOCKING.
    let deny_blocking = std::mem::replace(&mut ctx.client.deny_blocking, true);
    let mut txn = ctx
        .server
        .aof
        .propagating()
        .then(crate::aof::feed::TxnFeed::default);
    ctx.client.in_exec = Some((state.commands.len() as i64, state.memory()));
    let mut outer = crate::nested::Outer {
        server: ctx.server,
        store: &mut *ctx.store,
        client: &mut *ctx.client,
        thread: ctx.thread,
        now_ms,
        script: false,
    };
    for i in 0..state.commands.len() {
        let Some((spec, args)) = state.args(i) else {
            break;
        };
        // ACLs may have changed since the command was queued (Redis checks again here).
        if let Some(user) = &outer.client.user
            && !user.unrestricted()
        {
            let argv: Vec<&[u8]> = args.iter_from(0).collect();
            if let Err(denied) = crate::acl::check(user, spec, &argv) {
                let exec = ctx.spec;
                crate::cmd::acl::log_denied(
                    outer.server,
                    outer.client,
                    denied,
                    spec,
                    &argv,
                    "multi",
                    exec,
                );
                let out = ctx.reply.raw();
                out.push(b'-');
                out.extend_from_slice(denied.exec_message().as_bytes());
                out.extend_from_slice(b"\r\n");
                continue;
            }
        }
        // A HELLO inside the transaction switches the protocol of the replies after it.
        crate::nested::call(&mut outer, spec, args, ctx.reply.raw(), txn.as_mut(), true);
    }
    ctx.client.in_exec = None;
    ctx.client.deny_blocking = deny_blocking;
    ctx.client.aof_txn = txn.map(crate::aof::feed::TxnFeed::finish);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_versions_compare_as_redis() {
        use KeyVersion::*;
        assert!(!modified(Absent, Absent));
        assert!(modified(Absent, Live(1, 0)));
        assert!(modified(Absent, Deleted(1, 2)));
        assert!(modified(Live(1, 0), Live(1, 2)));
        assert!(modified(Live(1, 0), Live(2, 0)));
        assert!(modified(Live(1, 0), Expired(1, 0)));
        assert!(modified(Live(1, 0), Absent));
        assert!(!modified(Expired(1, 0), Absent));
        assert!(!modified(Expired(1, 0), Deleted(1, 2)));
        assert!(modified(Expired(1, 0), Live(3, 0)));
        assert!(!modified(Deleted(1, 2), Absent));
    }

    #[test]
    fn queue_copies_arguments() {
        let data = b"SETkeyvalueGETkey";
        let spans = [(0, 3), (3, 3), (6, 5)];
        let set = crate::table::lookup(b"set").expect("set");
        let get = crate::table::lookup(b"get").expect("get");
        let mut m = MultiState::default();
        assert!(m.queue(set, Args::new(data, &spans)));
        assert!(m.queue(get, Args::new(data, &[(11, 3), (14, 3)])));
        let (spec, args) = m.args(0).expect("first");
        assert!(std::ptr::eq(spec, set));
        assert_eq!(
            args.iter_from(0).collect::<Vec<_>>(),
            [&b"SET"[..], b"key", b"value"]
        );
        let (_, args) = m.args(1).expect("second");
        assert_eq!(args.iter_from(0).collect::<Vec<_>>(), [&b"GET"[..], b"key"]);
        assert!(m.args(2).is_none());
    }

    #[test]
    fn only_control_commands_skip_the_queue() {
        let spans = [(0u32, 4u32)];
        assert!(!queues(Args::new(b"EXEC", &spans)));
        assert!(!queues(Args::new(b"quit", &spans)));
        assert!(queues(Args::new(b"INCR", &spans)));
        assert!(queues(Args::new(b"PING", &spans)));
    }
}
