//! CLIENT: ID, SETNAME, GETNAME, LIST, INFO, KILL, SETINFO, NO-EVICT, REPLY, UNBLOCK, HELP
//! (Redis's `networking.c` `clientCommand`).

use std::sync::atomic::Ordering;

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::client::{ClientShared, ReplyMode, flag_letters};
use crate::cmd::config_cmd::reply_help;
use crate::ctx::Ctx;
use crate::table::{CommandSpec, Handler, flags::*};

const ACL: &[&str] = &["slow", "connection"];
const ADMIN_ACL: &[&str] = &["admin", "slow", "dangerous", "connection"];

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "client",
    arity: -2,
    flags: 0,
    first_key: 0,
    last_key: 0,
    step: 0,
    acl: &["slow"],
    group: "connection",
    since: "2.4.0",
    summary: "A container for client connection commands",
    complexity: "Depends on subcommand.",
    handler: client_help,
    subcommands: &[
        sub(
            "id",
            2,
            0,
            "5.0.0",
            "Returns the client ID for the current connection",
            "O(1)",
            client_id,
        ),
        sub(
            "setname",
            3,
            0,
            "2.6.9",
            "Set the current connection name",
            "O(1)",
            client_setname,
        ),
        sub(
            "getname",
            2,
            0,
            "2.6.9",
            "Get the current connection name",
            "O(1)",
            client_getname,
        ),
        sub(
            "list",
            -2,
            ADMIN,
            "2.4.0",
            "Get the list of client connections",
            "O(N) where N is the number of client connections",
            client_list,
        ),
        sub(
            "info",
            2,
            0,
            "6.2.0",
            "Returns information about the current client connection.",
            "O(1)",
            client_info,
        ),
        sub(
            "kill",
            -3,
            ADMIN,
            "2.4.0",
            "Kill the connection of a client",
            "O(N) where N is the number of client connections",
            client_kill,
        ),
        sub(
            "setinfo",
            4,
            0,
            "7.2.0",
            "Sets information specific to the client or connection.",
            "O(1)",
            client_setinfo,
        ),
        sub(
            "no-evict",
            3,
            ADMIN,
            "7.0.0",
            "Set client eviction mode for the current connection",
            "O(1)",
            client_no_evict,
        ),
        sub(
            "unblock",
            -3,
            ADMIN,
            "5.0.0",
            "Unblock a client blocked in a blocking command from a different connection",
            "O(log N) where N is the number of client connections",
            client_unblock,
        ),
        sub(
            "reply",
            3,
            0,
            "3.2.0",
            "Instruct the server whether to reply to commands",
            "O(1)",
            client_reply,
        ),
        sub(
            "tracking",
            -3,
            0,
            "6.0.0",
            "Enable or disable server assisted client side caching support",
            "O(1). Some options may introduce additional complexity.",
            super::client_tracking::tracking,
        ),
        sub(
            "caching",
            3,
            0,
            "6.0.0",
            "Instruct the server about tracking or not keys in the next request",
            "O(1)",
            super::client_tracking::caching,
        ),
        sub(
            "getredir",
            2,
            0,
            "6.0.0",
            "Get tracking notifications redirection client ID if any",
            "O(1)",
            super::client_tracking::getredir,
        ),
        sub(
            "trackinginfo",
            2,
            0,
            "6.2.0",
            "Return information about server assisted client side caching for the current connection",
            "O(1)",
            super::client_tracking::trackinginfo,
        ),
        sub(
            "pause",
            -3,
            ADMIN,
            "2.9.50",
            "Stop processing commands from clients for some time",
            "O(1)",
            client_pause,
        ),
        sub(
            "unpause",
            2,
            ADMIN,
            "6.2.0",
            "Resume processing of clients that were paused",
            "O(N) Where N is the number of paused clients",
            client_unpause,
        ),
        CommandSpec {
            name: "help",
            arity: 2,
            flags: LOADING | STALE,
            first_key: 0,
            last_key: 0,
            step: 0,
            acl: ACL,
            group: "connection",
            since: "5.0.0",
            summary: "Show helpful text about the different subcommands",
            complexity: "O(1)",
            handler: client_help,
            subcommands: &[],
        },
    ],
}];

/// A subcommand; `admin` adds the admin flag and the admin/dangerous ACL categories.
const fn sub(
    name: &'static str,
    arity: i32,
    admin: u32,
    since: &'static str,
    summary: &'static str,
    complexity: &'static str,
    handler: Handler,
) -> CommandSpec {
    CommandSpec::new(name, arity, "connection", handler)
        .with_flags(admin | NOSCRIPT | LOADING | STALE)
        .with_acl(if admin != 0 { ADMIN_ACL } else { ACL })
        .with_docs(since, summary, complexity)
}

const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
];

/// `CLIENT HELP`
fn client_help(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    reply_help(&mut ctx.reply, HELP);
}

/// `CLIENT ID`
fn client_id(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply.int(ctx.client.id as i64);
}

/// Redis accepts names made of printable ASCII without spaces, so CLIENT LIST stays splittable.
fn valid_attr(v: &[u8]) -> bool {
    v.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each field is replaced whole: a poisoned lock still holds a valid value.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `CLIENT SETNAME name` (an empty name clears it).
fn client_setname(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let name = args.get(2);
    if !valid_attr(name) {
        ctx.reply
            .error("ERR Client names cannot contain spaces, newlines or special characters.");
        return;
    }
    *lock(&ctx.client.shared.name) = (!name.is_empty()).then(|| name.to_vec());
    ctx.reply.ok();
}

/// `CLIENT GETNAME`
fn client_getname(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    match &*lock(&ctx.client.shared.name) {
        Some(n) => ctx.reply.bulk(n),
        None => ctx.reply.null(),
    }
}

/// `CLIENT SETINFO LIB-NAME|LIB-VER value` (Redis 7.2; clients send it on connect).
fn client_setinfo(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (attr, value) = (args.get(2), args.get(3));
    let shared = &ctx.client.shared;
    let slot = if eq_ignore_case(attr, "lib-name") {
        &shared.lib_name
    } else if eq_ignore_case(attr, "lib-ver") {
        &shared.lib_ver
    } else {
        let attr = String::from_utf8_lossy(attr);
        ctx.reply
            .error(&format!("ERR Unrecognized option '{attr}'"));
        return;
    };
    if !valid_attr(value) {
        let attr = String::from_utf8_lossy(attr);
        ctx.reply.error(&format!(
            "ERR {attr} cannot contain spaces, newlines or special characters."
        ));
        return;
    }
    *lock(slot) = (!value.is_empty()).then(|| value.to_vec());
    ctx.reply.ok();
}

/// `CLIENT NO-EVICT ON|OFF`
fn client_no_evict(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let v = args.get(2);
    if eq_ignore_case(v, "on") {
        ctx.client.no_evict = true;
    } else if eq_ignore_case(v, "off") {
        ctx.client.no_evict = false;
    } else {
        ctx.syntax_error();
        return;
    }
    ctx.reply.ok();
}

/// `CLIENT REPLY ON|OFF|SKIP`: the worker drops the replies the mode asks it to.
fn client_reply(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let v = args.get(2);
    if eq_ignore_case(v, "on") {
        ctx.client.reply_mode = ReplyMode::On;
        ctx.reply.ok();
    } else if eq_ignore_case(v, "off") {
        ctx.client.reply_mode = ReplyMode::Off;
    } else if eq_ignore_case(v, "skip") {
        // As Redis: SKIP while replies are OFF changes nothing.
        if ctx.client.reply_mode != ReplyMode::Off {
            ctx.client.reply_mode = ReplyMode::Skip;
        }
    } else {
        ctx.syntax_error();
    }
}

/// Client types Redis knows (`getClientTypeByName`): Ferrite's clients are `normal`, but for
/// the master it follows (`master`); it serves no replicas, and counts subscribers as normal.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ClientType {
    Normal,
    Master,
    Replica,
    Other,
}

fn client_type(name: &[u8]) -> Option<ClientType> {
    if eq_ignore_case(name, "normal") {
        Some(ClientType::Normal)
    } else if eq_ignore_case(name, "master") {
        Some(ClientType::Master)
    } else if eq_ignore_case(name, "slave") || eq_ignore_case(name, "replica") {
        Some(ClientType::Replica)
    } else if eq_ignore_case(name, "pubsub") {
        Some(ClientType::Other)
    } else {
        None
    }
}

/// The type of a connected client, from the flags its thread published.
fn type_of(c: &ClientShared) -> ClientType {
    let flags = c.conn.flags.load(std::sync::atomic::Ordering::Relaxed);
    if flags & crate::client::FLAG_MASTER != 0 {
        ClientType::Master
    } else if flags & crate::client::FLAG_REPLICA != 0 {
        ClientType::Replica
    } else {
        ClientType::Normal
    }
}

fn unknown_type(ctx: &mut Ctx<'_>, name: &[u8]) {
    let name = String::from_utf8_lossy(name);
    ctx.reply
        .error(&format!("ERR Unknown client type '{name}'"));
}

/// Appends one CLIENT LIST line (without the newline) in Redis 7.0's field order. The caller's
/// own line is built from its live state; other clients' from what their threads published at
/// the end of their last read ([`crate::client::Client::publish`]). `my_argv` is the argument
/// bytes of the running command (the caller's `argv-mem`).
///
/// Buffers map onto Ferrite's as follows: `qbuf` is the unconsumed input; `qbuf-free` is 0 (the
/// reactor owns the input buffer and does not report its capacity); `rbs` is the capacity of the
/// connection's output buffer and `rbp` its peak use over 5 s windows; `obl` is the output not
/// yet handed to the kernel; `oll` and `omem` are 0, since there is no reply list beyond that one
/// buffer. `fd` is the socket on epoll and -1 on io_uring, where the socket is only in the
/// ring's fixed-file table. Flags: `P`, `x`, `b` and `e`, as Redis computes them.
fn client_line(ctx: &Ctx<'_>, c: &ClientShared, my_argv: u64, out: &mut String) {
    let now = ctx.now_ms;
    client_line_of(ctx.server, ctx.client, ctx.spec, now, c, my_argv, out);
}

/// The CLIENT INFO line of `client` itself, running `spec` (ACL LOG's `client-info`).
pub(crate) fn info_line_of(
    server: &crate::Server,
    client: &crate::Client,
    spec: &'static crate::table::CommandSpec,
    argv: u64,
) -> String {
    let mut s = String::new();
    let now = crate::server::unix_ms();
    client_line_of(server, client, spec, now, &client.shared, argv, &mut s);
    s
}

/// [`client_line`] without a command context: `me` is the client running `my_spec`.
fn client_line_of(
    server: &crate::Server,
    me_client: &crate::Client,
    my_spec: &'static crate::table::CommandSpec,
    now: u64,
    c: &ClientShared,
    my_argv: u64,
    out: &mut String,
) {
    use std::fmt::Write as _;
    let r = Ordering::Relaxed;
    let me = c.id == me_client.id;
    let age = now.saturating_sub(c.created_ms) / 1000;
    let idle = if me {
        0
    } else {
        now.saturating_sub(c.last_interaction_ms.load(r)) / 1000
    };
    let (db, resp) = if me {
        (me_client.db, if me_client.resp3 { 3 } else { 2 })
    } else {
        (c.db.load(r), c.resp.load(r))
    };
    let cmd = match (me, me_client.in_exec) {
        // Redis's `lastcmd` inside a transaction is EXEC itself.
        (true, Some(_)) => crate::table::lookup(b"exec"),
        (true, None) => Some(my_spec),
        (false, _) => c.last_cmd(),
    };
    let cmd = cmd.map_or_else(|| "NULL".to_owned(), crate::cmd::command::full_name);
    let name = lock(&c.name)
        .as_deref()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .unwrap_or_default();
    let user = String::from_utf8_lossy(&lock(&c.user)).into_owned();
    let i = &c.conn;
    let (flags, sub, psub, ssub, multi, multi_mem, argv_mem) = if me {
        let cl = me_client;
        let (sub, psub, ssub) = cl.pubsub.as_ref().map_or((0, 0, 0), |p| {
            let n = |set: &std::collections::HashSet<Vec<u8>>| set.len() as u32;
            (n(&p.channels), n(&p.patterns), n(&p.shards))
        });
        let (multi, multi_mem) = match (&cl.multi, cl.in_exec) {
            (Some(m), _) => (m.commands.len() as i64, m.memory()),
            (None, Some(running)) => running,
            (None, None) => (-1, 0),
        };
        (cl.flag_bits(), sub, psub, ssub, multi, multi_mem, my_argv)
    } else {
        (
            i.flags.load(r),
            i.sub.load(r),
            i.psub.load(r),
            i.ssub.load(r),
            i.multi.load(r),
            i.multi_mem.load(r),
            i.argv_mem.load(r),
        )
    };
    // Tracking's redirect and its broken state live in the tracking table.
    let (flags, redir) = match server.tracking.info(c.id) {
        Some((redirect, broken)) => {
            let broken = if broken {
                crate::client::FLAG_TRACKING_BROKEN
            } else {
                0
            };
            (flags | broken, redirect as i64)
        }
        None => (flags, -1),
    };
    let flags = flag_letters(flags, c.is_blocked());
    let qbuf = c.qbuf.load(r);
    let (rbs, rbp, obl) = (i.rbs.load(r), i.rbp.load(r), i.obl.load(r));
    let tot_mem = (std::mem::size_of::<crate::client::Client>()
        + std::mem::size_of::<ClientShared>()) as u64
        + qbuf
        + rbs
        + argv_mem
        + multi_mem;
    let _ = write!(
        out,
        "id={} addr={} laddr={} fd={} name={name} age={age} idle={idle} flags={flags} db={db} \
         sub={sub} psub={psub} ssub={ssub} multi={multi} qbuf={qbuf} qbuf-free=0 argv-mem={argv_mem} \
         multi-mem={multi_mem} rbs={rbs} rbp={rbp} obl={obl} oll=0 omem=0 tot-mem={tot_mem} \
         events=r cmd={cmd} user={user} redir={redir} resp={resp}",
        c.id,
        c.addr,
        c.laddr,
        c.fd.load(r),
    );
}

/// The bytes of a command's arguments (Redis's `argv_len_sum`).
fn argv_len(args: Args<'_>) -> u64 {
    args.iter_from(0).map(|a| a.len() as u64).sum()
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: the reason is checked before the id, as Redis does.
fn client_unblock(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if args.len() > 4 {
        ctx.subcommand_syntax_error(args);
        return;
    }
    let error = match args.try_get(3) {
        None => false,
        Some(r) if eq_ignore_case(r, "timeout") => false,
        Some(r) if eq_ignore_case(r, "error") => true,
        Some(_) => {
            ctx.reply
                .error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
            return;
        }
    };
    let Some(id) = parse_i64(args.get(2)) else {
        ctx.not_integer();
        return;
    };
    let done = u64::try_from(id).is_ok_and(|id| crate::blocking::unblock(ctx.server, id, error));
    if done && error {
        ctx.reply.mark_failed();
    }
    if done {
        log_unblocked(ctx, id);
    }
    ctx.reply.int(i64::from(done));
}

/// Redis 7.0 logs the command CLIENT UNBLOCK ends in the slow log from CLIENT UNBLOCK itself
/// (before CLIENT UNBLOCK's own entry), after freeing its arguments: an entry with none, and
/// the duration of its first run, which Ferrite does not keep: 0. The same call goes into the
/// command's LATENCY HISTOGRAM (on this thread's counters: they are summed over threads).
#[cold]
fn log_unblocked(ctx: &Ctx<'_>, id: i64) {
    let Some(target) = u64::try_from(id)
        .ok()
        .and_then(|id| ctx.server.clients.get(id))
    else {
        return;
    };
    if ctx
        .server
        .config
        .latency_tracking
        .load(std::sync::atomic::Ordering::Relaxed)
        && let Some(cmd) = target.last_cmd().and_then(crate::table::id_of)
    {
        ctx.stats().latency.record(cmd, 0);
    }
    let name = target
        .name
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default();
    let caller = crate::slowlog::Caller {
        addr: &target.addr,
        name: &name,
    };
    let none = Args::new(&[], &[]);
    ctx.server
        .slowlog
        .push(&ctx.server.config, none, &[], 0, caller);
}

/// The caller's CLIENT INFO line (without its newline), `argv` the bytes of its command.
pub(crate) fn info_line(ctx: &Ctx<'_>, argv: u64) -> String {
    let shared = ctx.client.shared.clone();
    let mut s = String::new();
    client_line(ctx, &shared, argv, &mut s);
    s
}

/// `CLIENT INFO`
fn client_info(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let shared = ctx.client.shared.clone();
    let mut s = String::new();
    client_line(ctx, &shared, argv_len(args), &mut s);
    s.push('\n');
    ctx.reply.verbatim("txt", s.as_bytes());
}

/// `CLIENT LIST [TYPE type] [ID id ...]`
fn client_list(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let clients: Vec<_> = if args.len() == 4 && eq_ignore_case(args.get(2), "type") {
        match client_type(args.get(3)) {
            Some(t) => ctx
                .server
                .clients
                .snapshot()
                .into_iter()
                .filter(|c| type_of(c) == t)
                .collect(),
            None => return unknown_type(ctx, args.get(3)),
        }
    } else if args.len() > 3 && eq_ignore_case(args.get(2), "id") {
        let mut v = Vec::new();
        for a in args.iter_from(3) {
            let Some(id) = parse_i64(a) else {
                ctx.reply.error("ERR Invalid client ID");
                return;
            };
            if let Some(c) = u64::try_from(id)
                .ok()
                .and_then(|id| ctx.server.clients.get(id))
            {
                v.push(c);
            }
        }
        v
    } else if args.len() != 2 {
        ctx.syntax_error();
        return;
    } else {
        ctx.server.clients.snapshot()
    };
    let mut s = String::new();
    // Killed clients are gone as far as Redis's synchronous CLIENT KILL is concerned.
    let my_argv = argv_len(args);
    for c in clients.iter().filter(|c| !c.killed()) {
        client_line(ctx, c, my_argv, &mut s);
        s.push('\n');
    }
    ctx.reply.verbatim("txt", s.as_bytes());
}

/// The filters of `CLIENT KILL`.
#[derive(Default)]
struct KillFilter<'a> {
    id: Option<u64>,
    user: Option<&'a [u8]>,
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    kind: Option<ClientType>,
    maxage: Option<u64>,
    skipme: bool,
}

impl KillFilter<'_> {
    fn matches(&self, c: &ClientShared, now_ms: u64) -> bool {
        self.kind.is_none_or(|k| k == type_of(c))
            && self.id.is_none_or(|id| id == c.id)
            && self.user.is_none_or(|u| u == &lock(&c.user)[..])
            && self.addr.is_none_or(|a| a == c.addr.as_bytes())
            && self.laddr.is_none_or(|a| a == c.laddr.as_bytes())
            && self
                .maxage
                .is_none_or(|m| now_ms.saturating_sub(c.created_ms) / 1000 >= m)
    }
}

/// `CLIENT KILL ip:port` or `CLIENT KILL <filter> <value> ...`
fn client_kill(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let old_form = args.len() == 3;
    let mut f = KillFilter {
        skipme: true,
        ..KillFilter::default()
    };
    if old_form {
        f.addr = Some(args.get(2));
        // With the old form a client may kill itself.
        f.skipme = false;
    } else {
        let mut i = 2;
        while i < args.len() {
            let (opt, Some(val)) = (args.get(i), args.try_get(i + 1)) else {
                ctx.syntax_error();
                return;
            };
            if eq_ignore_case(opt, "id") {
                match parse_i64(val) {
                    Some(id) if id > 0 => f.id = Some(id as u64),
                    _ => {
                        ctx.reply.error("ERR client-id should be greater than 0");
                        return;
                    }
                }
            } else if eq_ignore_case(opt, "type") {
                match client_type(val) {
                    Some(t) => f.kind = Some(t),
                    None => return unknown_type(ctx, val),
                }
            } else if eq_ignore_case(opt, "addr") {
                f.addr = Some(val);
            } else if eq_ignore_case(opt, "laddr") {
                f.laddr = Some(val);
            } else if eq_ignore_case(opt, "user") {
                if ctx.server.acl.get(val).is_none() {
                    let user = String::from_utf8_lossy(val);
                    ctx.reply.error(&format!("ERR No such user '{user}'"));
                    return;
                }
                f.user = Some(val);
            } else if eq_ignore_case(opt, "skipme") {
                if eq_ignore_case(val, "yes") {
                    f.skipme = true;
                } else if eq_ignore_case(val, "no") {
                    f.skipme = false;
                } else {
                    ctx.syntax_error();
                    return;
                }
            } else if eq_ignore_case(opt, "maxage") {
                // Redis 7.4's filter: clients connected at least this many seconds.
                match parse_i64(val) {
                    Some(v) if v >= 0 => f.maxage = Some(v as u64),
                    _ => {
                        ctx.not_integer();
                        return;
                    }
                }
            } else {
                ctx.syntax_error();
                return;
            }
            i += 2;
        }
    }
    let mut killed = 0i64;
    for c in ctx.server.clients.snapshot() {
        if c.killed() || !f.matches(&c, ctx.now_ms) {
            continue;
        }
        if c.id == ctx.client.id {
            if f.skipme {
                continue;
            }
            ctx.client.close_after_reply = true;
        } else {
            c.kill.store(true, Ordering::Release);
            ctx.server.wake(c.thread);
        }
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            ctx.reply.error("ERR No such client");
        } else {
            ctx.reply.ok();
        }
    } else {
        ctx.reply.int(killed);
    }
}

/// `CLIENT PAUSE timeout [WRITE|ALL]`: the mode is checked before the timeout, as Redis does.
fn client_pause(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if args.len() > 4 {
        ctx.subcommand_syntax_error(args);
        return;
    }
    let all = match args.try_get(3) {
        None => true,
        Some(m) if eq_ignore_case(m, "all") => true,
        Some(m) if eq_ignore_case(m, "write") => false,
        Some(_) => {
            ctx.reply
                .error("ERR CLIENT PAUSE mode must be WRITE or ALL");
            return;
        }
    };
    // Redis's `getTimeoutFromObjectOrReply(.., UNIT_MILLISECONDS)`: a positive timeout is added
    // to the clock, 0 stays 0 (a pause that is already over).
    let Some(ms) = parse_i64(args.get(2)) else {
        ctx.reply
            .error("ERR timeout is not an integer or out of range");
        return;
    };
    if ms < 0 {
        ctx.reply.error("ERR timeout is negative");
        return;
    }
    let end = if ms > 0 {
        ctx.now_ms.saturating_add(ms as u64)
    } else {
        0
    };
    ctx.server
        .pause_clients(crate::pause::Purpose::Client, end, all, ctx.now_ms);
    ctx.reply.ok();
}

/// `CLIENT UNPAUSE`: every thread resumes its postponed clients.
fn client_unpause(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.server
        .unpause_clients(crate::pause::Purpose::Client, ctx.now_ms);
    ctx.reply.ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_charset() {
        assert!(valid_attr(b"foo-bar_1"));
        assert!(valid_attr(b""));
        assert!(!valid_attr(b"a b"));
        assert!(!valid_attr(b"a\nb"));
        assert!(!valid_attr(b"\xc3\xa9"));
        assert!(valid_attr(b"x\\x01"));
    }

    #[test]
    fn kill_filter() {
        let c = ClientShared::new(7, 0, "1.2.3.4:5".into(), "127.0.0.1:6379".into(), 1000);
        let f = KillFilter {
            addr: Some(b"1.2.3.4:5"),
            ..KillFilter::default()
        };
        assert!(f.matches(&c, 1000));
        let f = KillFilter {
            id: Some(8),
            ..KillFilter::default()
        };
        assert!(!f.matches(&c, 1000));
        let f = KillFilter {
            maxage: Some(2),
            ..KillFilter::default()
        };
        assert!(!f.matches(&c, 2500));
        assert!(f.matches(&c, 3000));
        let f = KillFilter {
            kind: Some(ClientType::Other),
            ..KillFilter::default()
        };
        assert!(!f.matches(&c, 1000));
        let f = KillFilter {
            kind: Some(ClientType::Master),
            ..KillFilter::default()
        };
        assert!(!f.matches(&c, 1000));
        c.conn.flags.store(
            crate::client::FLAG_MASTER,
            std::sync::atomic::Ordering::Relaxed,
        );
        assert!(f.matches(&c, 1000));
    }
}
