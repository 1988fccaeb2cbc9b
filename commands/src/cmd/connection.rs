//! Connection commands: PING, ECHO, QUIT, SELECT.

use crate::args::{Args, parse_i64};
use crate::ctx::Ctx;
use crate::table::{CommandSpec, flags::*};

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
        summary: "Returns the server's liveliness response.",
        complexity: "O(1)",
        handler: ping,
        subcommands: &[],
    },
    CommandSpec {
        name: "echo",
        arity: 2,
        flags: FAST,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["fast", "connection"],
        group: "connection",
        since: "1.0.0",
        summary: "Returns the given string.",
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
        summary: "Closes the connection.",
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
        summary: "Changes the selected database.",
        complexity: "O(1)",
        handler: select,
        subcommands: &[],
    },
];

/// `PING [message]`
fn ping(ctx: &mut Ctx<'_>, args: Args<'_>) {
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
    let Some(db) = parse_i64(args.get(1)) else {
        ctx.not_integer();
        return;
    };
    if db < 0 || db as usize >= ctx.store_databases() {
        ctx.reply.error("ERR DB index is out of range");
        return;
    }
    ctx.client.db = db as u8;
    ctx.client
        .shared
        .db
        .store(db as u8, std::sync::atomic::Ordering::Relaxed);
    ctx.reply.ok();
}
