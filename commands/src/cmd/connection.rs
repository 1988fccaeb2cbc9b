//! Connection commands: PING, ECHO, QUIT, SELECT, HELLO, AUTH, RESET.

use std::sync::atomic::Ordering;

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::client::ReplyMode;
use crate::ctx::Ctx;
use crate::resp::Reply;
use crate::table::{CommandSpec, flags::*};

/// The Redis version HELLO reports (Ferrite speaks Redis 7.0.15).
const REDIS_VERSION: &str = "7.0.15";

/// Flags Redis gives the commands a client must be able to run before it authenticates.
const CONNECTION_SETUP: u32 = NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY;

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "ping",
        arity: -1,
        flags: FAST,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["fast", "connection"],
        group: "connection",
        since: "1.0.0",
        summary: "Ping the server",
        complexity: "O(1)",
        handler: ping,
        subcommands: &[],
    },
    CommandSpec {
        name: "echo",
        arity: 2,
        flags: LOADING | STALE | FAST,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["fast", "connection"],
        group: "connection",
        since: "1.0.0",
        summary: "Echo the given string",
        complexity: "O(1)",
        handler: echo,
        subcommands: &[],
    },
    CommandSpec {
        name: "quit",
        arity: -1,
        flags: ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["fast", "connection"],
        group: "connection",
        since: "1.0.0",
        summary: "Close the connection",
        complexity: "O(1)",
        handler: quit,
        subcommands: &[],
    },
    CommandSpec {
        name: "select",
        arity: 2,
        flags: LOADING | STALE | FAST,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["fast", "connection"],
        group: "connection",
        since: "1.0.0",
        summary: "Change the selected database for the current connection",
        complexity: "O(1)",
        handler: select,
        subcommands: &[],
    },
    CommandSpec {
        name: "hello",
        arity: -1,
        flags: CONNECTION_SETUP,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["fast", "connection"],
        group: "connection",
        since: "6.0.0",
        summary: "Handshake with Redis",
        complexity: "O(1)",
        handler: hello,
        subcommands: &[],
    },
    CommandSpec {
        name: "auth",
        arity: -2,
        flags: CONNECTION_SETUP,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["fast", "connection"],
        group: "connection",
        since: "1.0.0",
        summary: "Authenticate to the server",
        complexity: "O(N) where N is the number of passwords defined for the user",
        handler: auth,
        subcommands: &[],
    },
    CommandSpec {
        name: "reset",
        arity: 1,
        flags: CONNECTION_SETUP,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["fast", "connection"],
        group: "connection",
        since: "6.2.0",
        summary: "Reset the connection",
        complexity: "O(1)",
        handler: reset,
        subcommands: &[],
    },
];

/// `PING [message]`
fn ping(ctx: &mut Ctx<'_>, args: Args<'_>) {
    // A RESP2 subscriber can only read pushes, so PING answers as one: `pong` and the message.
    if args.len() <= 2 && !ctx.client.resp3 && ctx.client.subscribed() {
        ctx.reply.array_len(2);
        ctx.reply.bulk(b"pong");
        ctx.reply.bulk(args.try_get(1).unwrap_or_default());
        return;
    }
    match args.len() {
        1 => ctx.reply.simple("PONG"),
        2 => ctx.reply.bulk(args.get(1)),
        _ => ctx
            .reply
            .error("ERR wrong number of arguments for 'ping' command"),
    }
}

/// `ECHO message`
fn echo(ctx: &mut Ctx<'_>, args: Args<'_>) {
    ctx.reply.bulk(args.get(1));
}

/// `QUIT`: replies OK, then closes once the reply is sent.
fn quit(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply.ok();
    ctx.client.close_after_reply = true;
}

/// `SELECT index`
fn select(ctx: &mut Ctx<'_>, args: Args<'_>) {
    // Redis's getIntFromObjectOrReply: an integer first, then one that fits a C int.
    let Some(db) = parse_i64(args.get(1)) else {
        ctx.not_integer();
        return;
    };
    if i32::try_from(db).is_err() {
        ctx.reply
            .error("ERR value is out of range, value must between -2147483648 and 2147483647");
        return;
    }
    let db = match u8::try_from(db) {
        Ok(db) if usize::from(db) < ctx.store_databases() => db,
        _ => {
            ctx.reply.error("ERR DB index is out of range");
            return;
        }
    };
    ctx.client.db = db;
    ctx.client.shared.db.store(db, Ordering::Relaxed);
    ctx.reply.ok();
}

/// `-WRONGPASS`, for AUTH and HELLO AUTH alike.
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`
fn hello(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mut version = 0;
    let mut next = 1;
    if args.len() >= 2 {
        let Some(v) = parse_i64(args.get(1)) else {
            ctx.reply
                .error("ERR Protocol version is not an integer or out of range");
            return;
        };
        if !(2..=3).contains(&v) {
            ctx.reply.error("NOPROTO unsupported protocol version");
            return;
        }
        version = v;
        next = 2;
    }
    // Redis 7.0 applies each option as it reads it: an AUTH or SETNAME before a bad option
    // (or before a failed AUTH) stays applied.
    let mut j = next;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args.get(j);
        if eq_ignore_case(opt, "auth") && more >= 2 {
            ctx.redact(j + 1);
            ctx.redact(j + 2);
            if !credentials_ok(ctx, args.get(j + 1), args.get(j + 2)) {
                let now = ctx.now_ms;
                crate::cmd::acl::log_auth_failure(ctx, args.get(0), args.get(j + 1), now);
                ctx.reply.error(WRONGPASS);
                return;
            }
            ctx.client.authenticated = true;
            j += 3;
        } else if eq_ignore_case(opt, "setname") && more >= 1 {
            let name = args.get(j + 1);
            if !valid_client_name(name) {
                ctx.reply.error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
                return;
            }
            set_client_name(ctx, name);
            j += 2;
        } else {
            error_with_arg(
                &mut ctx.reply,
                "ERR Syntax error in HELLO option '",
                opt,
                "'",
            );
            return;
        }
    }
    if !ctx.client.authenticated {
        ctx.reply.error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO AUTH <user> <pass> option can be used to authenticate the client and select \
             the RESP protocol version at the same time",
        );
        return;
    }
    if version != 0 {
        set_protocol(ctx, version == 3);
    }
    let proto = if ctx.client.resp3 { 3 } else { 2 };
    let r = &mut ctx.reply;
    r.map_len(7);
    r.bulk(b"server");
    r.bulk(b"redis");
    r.bulk(b"version");
    r.bulk(REDIS_VERSION.as_bytes());
    r.bulk(b"proto");
    r.int(proto);
    r.bulk(b"id");
    r.int(i64::try_from(ctx.client.id).unwrap_or(i64::MAX));
    r.bulk(b"mode");
    r.bulk(b"standalone");
    r.bulk(b"role");
    r.bulk(if ctx.server.replication.is_replica() {
        b"replica"
    } else {
        b"master"
    });
    r.bulk(b"modules");
    r.array_len(0);
}

/// `AUTH [username] password`
fn auth(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if args.len() > 3 {
        ctx.syntax_error();
        return;
    }
    for i in 1..args.len() {
        ctx.redact(i);
    }
    let (user, password) = if args.len() == 2 {
        // The one-argument form keeps its pre-ACL error when there is nothing to check against.
        if ctx.server.acl.default_user().nopass {
            ctx.reply.error(
                "ERR AUTH <password> called without any password configured for the default \
                 user. Are you sure your configuration is correct?",
            );
            return;
        }
        (&b"default"[..], args.get(1))
    } else {
        (args.get(1), args.get(2))
    };
    if credentials_ok(ctx, user, password) {
        ctx.client.authenticated = true;
        ctx.reply.ok();
    } else {
        // A failed attempt leaves an authenticated connection authenticated, as in Redis.
        let now = ctx.now_ms;
        crate::cmd::acl::log_auth_failure(ctx, args.get(0), user, now);
        ctx.reply.error(WRONGPASS);
    }
}

/// `RESET`: the connection as it was when it was accepted (NO-EVICT excepted, as in Redis).
fn reset(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    // DISCARD and UNWATCH, as Redis's `clearClientConnectionState`.
    ctx.client.multi = None;
    ctx.client.watched.clear();
    crate::cmd::monitor::stop(ctx.server, ctx.client);
    crate::cmd::pubsub::unsubscribe_all(ctx.client);
    if ctx.client.tracking.take().is_some() {
        ctx.server
            .tracking
            .disable(&ctx.server.store, ctx.client.id);
    }
    ctx.client.db = 0;
    ctx.client.shared.db.store(0, Ordering::Relaxed);
    set_protocol(ctx, false);
    ctx.client.authenticated = !ctx.server.acl.auth_required();
    if ctx.client.user.is_some() {
        let version = ctx.server.acl.version();
        let default = ctx.server.acl.default_user();
        ctx.client.set_user(Some(default), version);
    }
    *ctx.client
        .shared
        .name
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = None;
    // Redis clears REPLY OFF and a pending SKIP, but a SKIP already armed for this very command
    // (SkipThis) still swallows the +RESET.
    if matches!(ctx.client.reply_mode, ReplyMode::Off | ReplyMode::Skip) {
        ctx.client.reply_mode = ReplyMode::On;
    }
    ctx.reply.simple("RESET");
}

/// Redis's `ACLAuthenticateUser`: on success the connection runs as that user from now on.
fn credentials_ok(ctx: &mut Ctx<'_>, user: &[u8], password: &[u8]) -> bool {
    let version = ctx.server.acl.version();
    match ctx.server.acl.authenticate(user, password) {
        Some(u) => {
            ctx.client.set_user(Some(u), version);
            true
        }
        None => false,
    }
}

/// Switches the connection's protocol; the reply being written switches with it.
fn set_protocol(ctx: &mut Ctx<'_>, resp3: bool) {
    ctx.client.resp3 = resp3;
    ctx.client
        .shared
        .resp
        .store(if resp3 { 3 } else { 2 }, Ordering::Relaxed);
    ctx.reply.set_resp3(resp3);
}

/// Redis's client name rule: printable ASCII without spaces, so that CLIENT LIST stays
/// splittable on spaces. The empty name is valid and clears the name.
fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|b| (b'!'..=b'~').contains(b))
}

fn set_client_name(ctx: &mut Ctx<'_>, name: &[u8]) {
    let value = (!name.is_empty()).then(|| name.to_vec());
    *ctx.client
        .shared
        .name
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = value;
}

/// An error quoting a client argument the way Redis's `%s` does: up to its first NUL, bytes as
/// they are (even when not UTF-8); CR and LF become spaces as in every error.
fn error_with_arg(reply: &mut Reply<'_>, before: &str, arg: &[u8], after: &str) {
    let arg = arg.split(|&b| b == 0).next().unwrap_or_default();
    if let Ok(text) = std::str::from_utf8(arg) {
        reply.error(&format!("{before}{text}{after}"));
        return;
    }
    // `Reply::error` takes text; write the bytes ourselves, letting it count the error.
    let mark = reply.mark();
    reply.error("");
    reply.truncate(mark);
    let out = reply.raw();
    out.push(b'-');
    out.extend_from_slice(before.as_bytes());
    out.extend(
        arg.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(after.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names() {
        assert!(valid_client_name(b""));
        assert!(valid_client_name(b"a~!"));
        assert!(!valid_client_name(b"a b"));
        assert!(!valid_client_name(b"a\xffb"));
        assert!(!valid_client_name(b"a\nb"));
    }

    #[test]
    fn errors_quote_arguments_like_printf() {
        let mut out = Vec::new();
        let mut r = Reply::new(&mut out, false);
        error_with_arg(&mut r, "ERR x '", b"a\xff\rb\0c", "'");
        assert_eq!(r.errors(), 1);
        assert_eq!(out, b"-ERR x 'a\xff b'\r\n");
        let mut out = Vec::new();
        let mut r = Reply::new(&mut out, false);
        error_with_arg(&mut r, "ERR x '", b"ok\0hidden", "'");
        assert_eq!(out, b"-ERR x 'ok'\r\n");
    }
}
