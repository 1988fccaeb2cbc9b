//! ROLE, WAIT, FAILOVER, REPLICAOF, REPLCONF, PSYNC and SYNC (Redis's `roleCommand`,
//! `waitCommand`, `failoverCommand`, `replicaofCommand`, `replconfCommand`, `syncCommand`).
//! Ferrite follows a master when told to (`REPLICAOF host port`, see [`crate::replica`]) and
//! serves replicas that PSYNC to it (see [`crate::master`]); WAIT counts their
//! acknowledgements.

use crate::args::{Args, parse_i64};
use crate::blocking::{Want, park_keyless};
use crate::ctx::Ctx;
use crate::master::WaitTarget;
use crate::table::{CommandSpec, flags::*};

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    replicaof_spec("replicaof", "5.0.0"),
    replicaof_spec("slaveof", "1.0.0"),
    CommandSpec::new("replconf", -1, "server", replconf)
        .with_flags(ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs(
            "3.0.0",
            "An internal command for configuring the replication stream",
            "O(1)",
        ),
    sync_spec("psync", -3, "2.8.0"),
    sync_spec("sync", 1, "1.0.0"),
    CommandSpec::new("failover", -1, "server", failover)
        .with_flags(ADMIN | NOSCRIPT | STALE)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs(
            "6.2.0",
            "Start a coordinated failover between this server and one of its replicas.",
            "O(1)",
        ),
    CommandSpec {
        name: "role",
        arity: 1,
        flags: NOSCRIPT | LOADING | STALE | FAST,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["admin", "fast", "dangerous"],
        group: "server",
        since: "2.8.12",
        summary: "Return the role of the instance in the context of replication",
        complexity: "O(1)",
        handler: role,
        subcommands: &[],
    },
    CommandSpec {
        name: "wait",
        arity: 3,
        flags: NOSCRIPT,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["slow", "connection"],
        group: "generic",
        since: "3.0.0",
        summary: "Wait for the synchronous replication of all the write commands sent in the \
                  context of the current connection",
        complexity: "O(1)",
        handler: wait,
        subcommands: &[],
    },
];

/// `ROLE`: for a master, `master`, the replication offset, and the (empty) list of replicas;
/// for a replica, `slave`, the master's host and port, the link's state and the offset applied.
fn role(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let r = &mut ctx.reply;
    if let Some(link) = ctx.server.replication.link() {
        r.array_len(5);
        r.bulk(b"slave");
        r.bulk(link.host.as_bytes());
        r.int(i64::from(link.port));
        r.bulk(link.state().role_name().as_bytes());
        r.int(link.offset());
        return;
    }
    let master = &ctx.server.master;
    let online = master.online();
    r.array_len(3);
    r.bulk(b"master");
    r.int(master.offset());
    r.array_len(online.len());
    for (ip, port, acked) in online {
        r.array_len(3);
        r.bulk(ip.as_bytes());
        r.bulk(port.to_string().as_bytes());
        r.bulk(acked.to_string().as_bytes());
    }
}

/// `WAIT numreplicas timeout`: the number of replicas that acknowledged this connection's
/// writes, always 0. Asked for more, it blocks until the timeout (milliseconds, 0: forever) or
/// CLIENT UNBLOCK, as Redis does with no replica connected; inside MULTI it answers at once.
fn wait(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if ctx.server.replication.is_replica() {
        return ctx.reply.error(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis \
             4.0 if a replica is configured to be writable (which is not the default) writes to \
             replicas are just local and are not propagated.",
        );
    }
    let Some(numreplicas) = parse_i64(args.get(1)) else {
        return ctx.not_integer();
    };
    let Some(timeout_ms) = parse_i64(args.get(2)) else {
        return ctx
            .reply
            .error("ERR timeout is not an integer or out of range");
    };
    if timeout_ms < 0 {
        return ctx.reply.error("ERR timeout is negative");
    }
    let server = ctx.server;
    let master = &server.master;
    // The goal is fixed when WAIT first runs; a re-run (an acknowledgement arrived) keeps it.
    let mut target = ctx.client.wait.unwrap_or(WaitTarget {
        seq: ctx.store.store().next_commit_seq(),
        offset: None,
    });
    let first_known = target.offset.is_none();
    if target.offset.is_none() {
        target.offset = server.aof.repl_offset_covering(server, target.seq);
    }
    let acked = target.offset.map_or(0, |o| master.acked(o));
    if acked >= numreplicas || ctx.client.deny_blocking {
        // A re-run that is answered leaves its wait.
        crate::blocking::release(ctx.server, ctx.store, ctx.client, ctx.now_ms);
        ctx.client.wait = None;
        return ctx.reply.int(acked);
    }
    if first_known && target.offset.is_some() && master.replicas() > 0 {
        // Ask for acknowledgements now rather than at the replicas' next second.
        master.request_acks(server);
    }
    ctx.client.wait = Some(target);
    if master.replicas() > 0 {
        master.add_waiter(ctx.client.id, ctx.thread);
    }
    // Redis 7.0 adds the timeout to the clock unchecked; past `i64::MAX` its timeout table
    // (unsigned keys) never reaches the wrapped deadline, so such a WAIT waits forever.
    let now = i64::try_from(ctx.now_ms).unwrap_or(i64::MAX);
    let timeout_ms = if now.checked_add(timeout_ms).is_some() {
        timeout_ms
    } else {
        0
    };
    park_keyless(ctx, Want::Acks, timeout_ms);
}

/// `FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]` (Redis's `failoverCommand`): its
/// checks, in Redis's order, then the coordinated failover of [`crate::master::Failover`].
fn failover(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let server = ctx.server;
    let state = &server.master.failover;
    if args.len() == 2 && args.get(1).eq_ignore_ascii_case(b"abort") {
        if !state.active() {
            return ctx.reply.error("ERR No failover in progress.");
        }
        state.abort(server, ctx.store, "Failover manually aborted");
        return ctx.reply.ok();
    }
    let (mut timeout, mut force, mut to) = (0i64, false, None);
    let mut j = 1;
    while j < args.len() {
        let a = args.get(j);
        if a.eq_ignore_ascii_case(b"timeout") && j + 1 < args.len() && timeout == 0 {
            let Some(ms) = parse_i64(args.get(j + 1)) else {
                return ctx.not_integer();
            };
            if ms <= 0 {
                return ctx
                    .reply
                    .error("ERR FAILOVER timeout must be greater than 0");
            }
            timeout = ms;
            j += 2;
        } else if a.eq_ignore_ascii_case(b"to") && j + 2 < args.len() && to.is_none() {
            let Some(port) = parse_i64(args.get(j + 2)) else {
                return ctx.not_integer();
            };
            to = Some((String::from_utf8_lossy(args.get(j + 1)).into_owned(), port));
            j += 3;
        } else if a.eq_ignore_ascii_case(b"force") && !force {
            force = true;
            j += 1;
        } else {
            return ctx.syntax_error();
        }
    }
    if state.active() {
        return ctx.reply.error("ERR FAILOVER already in progress.");
    }
    if server.replication.is_replica() {
        return ctx
            .reply
            .error("ERR FAILOVER is not valid when server is a replica.");
    }
    if server.master.replicas() == 0 {
        return ctx.reply.error("ERR FAILOVER requires connected replicas.");
    }
    if force && (timeout == 0 || to.is_none()) {
        return ctx.reply.error(
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
        );
    }
    let target = match to {
        Some((host, port)) => {
            // A port no replica listens on (out of range included) names no replica.
            let found = u16::try_from(port)
                .ok()
                .and_then(|p| server.master.replica_at(&host, p).map(|r| (p, r)));
            let Some((port, (online, _))) = found else {
                return ctx
                    .reply
                    .error("ERR FAILOVER target HOST and PORT is not a replica.");
            };
            if !online {
                return ctx
                    .reply
                    .error("ERR FAILOVER target replica is not online.");
            }
            log::info!("FAILOVER requested to {host}:{port}.");
            Some((host, port))
        }
        None => {
            log::info!("FAILOVER requested to any replica.");
            None
        }
    };
    state.begin(server, target, timeout as u64, force);
    ctx.reply.ok();
}

/// PSYNC and SYNC: they run under the exclusive gate, so that the replication stream starts
/// (and a partial resync's backlog is read) at an exact commit number.
const fn sync_spec(name: &'static str, arity: i32, since: &'static str) -> CommandSpec {
    CommandSpec::new(name, arity, "server", sync)
        .with_flags(ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI | EXCLUSIVE)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs(since, "Internal command used for replication", "")
}

/// `PSYNC replid offset` / `SYNC` (Redis's `syncCommand`): the connection becomes a replica of
/// this server, continuing from the backlog or waiting for a full resync (see
/// [`crate::master`]). Its answer, `+CONTINUE` or `+FULLRESYNC`, and everything after it go
/// through the stream, not as this command's reply.
fn sync(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if ctx.client.replica.is_some() || ctx.client.monitor {
        return;
    }
    let psync = args.get(0).eq_ignore_ascii_case(b"psync");
    let offset = if psync {
        match parse_i64(args.get(2)) {
            Some(o) => Some(o),
            None => return ctx.not_integer(),
        }
    } else {
        None
    };
    // `PSYNC replid offset FAILOVER`: the master this server follows hands over to it.
    if psync && args.len() > 3 && args.get(3).eq_ignore_ascii_case(b"failover") {
        log::warn!(
            "Failover request received for replid {}.",
            String::from_utf8_lossy(args.get(1))
        );
        if !ctx.server.replication.is_replica() {
            return ctx
                .reply
                .error("ERR PSYNC FAILOVER can't be sent to a master.");
        }
        if !args
            .get(1)
            .eq_ignore_ascii_case(ctx.server.master.replid().as_bytes())
        {
            return ctx
                .reply
                .error("ERR PSYNC FAILOVER replid must match my replid.");
        }
        match ctx.server.replication.unfollow(ctx.server, ctx.store) {
            Ok(_) => log::info!(
                "MASTER MODE enabled (failover request from 'id={} addr={}')",
                ctx.client.id,
                ctx.client.shared.addr
            ),
            Err(_) => return ctx.reply.error(crate::replica::MID_CHUNK_ERROR),
        }
    }
    if ctx.server.master.failover.active() {
        return ctx
            .reply
            .error("NOMASTERLINK Can't SYNC while failing over");
    }
    // A replica serves its own replicas its master's stream (relayed), but only while it
    // follows that stream.
    if ctx
        .server
        .replication
        .link()
        .is_some_and(|l| l.state() != crate::replica::LinkState::Connected)
    {
        return ctx
            .reply
            .error("NOMASTERLINK Can't SYNC while not connected with my master");
    }
    let conf = ctx.client.replconf.clone();
    let ip = conf.ip.clone().unwrap_or_else(|| {
        let addr = &ctx.client.shared.addr;
        addr.rsplit_once(':')
            .map_or(addr.as_str(), |(ip, _)| ip)
            .to_string()
    });
    let replica = std::sync::Arc::new(crate::master::Replica::new(
        ctx.client.shared.clone(),
        ip,
        &conf,
        !psync,
    ));
    ctx.client.replica = Some(replica.clone());
    let server = ctx.server;
    let want = offset.map(|o| (args.get(1), o));
    let name = if psync { "Replica" } else { "Replica (SYNC)" };
    log::info!(
        "{name} {}:{} asks for synchronization",
        replica.ip,
        replica.port
    );
    match server.master.attach(server, replica, want, conf.psync2) {
        crate::master::Sync::Continue => {
            log::info!("Partial resynchronization request accepted.");
        }
        crate::master::Sync::Full => {
            if server.persist.child().is_some() || server.aof.rewrite.child().is_some() {
                log::info!("Waiting for next BGSAVE for SYNC");
            } else if server.master.start_pending_fork(server, ctx.store) {
                log::info!("Delay next BGSAVE for diskless SYNC");
            }
        }
    }
}

/// REPLICAOF and its old name SLAVEOF.
const fn replicaof_spec(name: &'static str, since: &'static str) -> CommandSpec {
    CommandSpec::new(name, 3, "server", replicaof)
        .with_flags(ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs(
            since,
            "Make the server a replica of another instance, or promote it as master.",
            "O(1)",
        )
}

/// `REPLICAOF host port` / `SLAVEOF`: follow that master (or say it already does); `NO ONE`
/// stops following and keeps the data, as Redis.
fn replicaof(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if ctx.server.master.failover.active() {
        return ctx
            .reply
            .error("ERR REPLICAOF not allowed while failing over.");
    }
    let repl = &ctx.server.replication;
    let me = format!("id={} addr={}", ctx.client.id, ctx.client.shared.addr);
    if args.get(1).eq_ignore_ascii_case(b"no") && args.get(2).eq_ignore_ascii_case(b"one") {
        match repl.unfollow(ctx.server, ctx.store) {
            Ok(true) => log::info!("MASTER MODE enabled (user request from '{me}')"),
            Ok(false) => {}
            Err(_) => return ctx.reply.error(crate::replica::MID_CHUNK_ERROR),
        }
        ctx.reply.ok();
        return;
    }
    let Some(port) = parse_i64(args.get(2)).filter(|p| (0..=65535).contains(p)) else {
        ctx.reply.error("ERR Invalid master port");
        return;
    };
    let host = String::from_utf8_lossy(args.get(1)).into_owned();
    let Some(server) = ctx.server.arc() else {
        ctx.reply.error("ERR the server is shutting down");
        return;
    };
    let Ok(followed) = repl.follow(&server, ctx.store, &host, port as u16) else {
        return ctx.reply.error(crate::replica::MID_CHUNK_ERROR);
    };
    if !followed {
        log::info!(
            "REPLICAOF would result into synchronization with the master we are already \
             connected with. No operation performed."
        );
        ctx.reply.simple("OK Already connected to specified master");
        return;
    }
    log::info!("REPLICAOF {host}:{port} enabled (user request from '{me}')");
    ctx.reply.ok();
}

/// `REPLCONF option value [option value ...]`: what a replica says of itself while it hands
/// shakes (its port and address, `capa eof` and `psync2`), kept for its PSYNC; ACK from a
/// replica is its offset (no reply); GETACK from the master this server follows makes the
/// link acknowledge its offset.
fn replconf(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if args.len().is_multiple_of(2) {
        return ctx.syntax_error();
    }
    for j in (1..args.len()).step_by(2) {
        let opt = args.get(j);
        let value = args.get(j + 1);
        if opt.eq_ignore_ascii_case(b"listening-port") {
            let Some(port) = parse_i64(value) else {
                return ctx.not_integer();
            };
            ctx.client.replconf.port = port as u16;
        } else if opt.eq_ignore_ascii_case(b"ip-address") {
            if value.len() >= 256 {
                return ctx.reply.error(&format!(
                    "ERR REPLCONF ip-address provided by replica instance is too long: {} bytes",
                    value.len()
                ));
            }
            ctx.client.replconf.ip = Some(String::from_utf8_lossy(value).into_owned());
        } else if opt.eq_ignore_ascii_case(b"capa") {
            if value.eq_ignore_ascii_case(b"psync2") {
                ctx.client.replconf.psync2 = true;
            } else if value.eq_ignore_ascii_case(b"eof") {
                ctx.client.replconf.eof = true;
            }
        } else if opt.eq_ignore_ascii_case(b"rdb-only")
            || opt.eq_ignore_ascii_case(b"rdb-filter-only")
        {
        } else if opt.eq_ignore_ascii_case(b"ack") {
            // From a replica of this server: its offset (WAIT counts it); no reply.
            if let (Some(r), Some(off)) = (&ctx.client.replica, parse_i64(value)) {
                ctx.server.master.ack(ctx.server, r, off);
            }
            return;
        } else if opt.eq_ignore_ascii_case(b"getack") {
            ctx.server.replication.getack(ctx.client.id);
            return;
        } else {
            return ctx.reply.error(&format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            ));
        }
    }
    ctx.reply.ok();
}
