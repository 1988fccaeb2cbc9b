//! Pub/Sub (Redis's `pubsub.c`): SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH,
//! the sharded SSUBSCRIBE, SUNSUBSCRIBE and SPUBLISH (on a standalone server, a second channel
//! namespace without patterns, with its own subscription count), and PUBSUB CHANNELS / NUMSUB
//! / NUMPAT / SHARDCHANNELS / SHARDNUMSUB / HELP. The registry and the delivery across reactor
//! threads live in [`crate::pubsub`]; this module keeps each client's own view of its
//! subscriptions and writes the replies.

use crate::args::Args;
use crate::client::{Client, Subscriptions};
use crate::cmd::config_cmd::reply_help;
use crate::ctx::Ctx;
use crate::pubsub::{Kind, registry};
use crate::table::{CommandSpec, flags::*};

/// Flags Redis gives the (un)subscribe commands.
const SUB_FLAGS: u32 = PUBSUB | NOSCRIPT | LOADING | STALE;

/// A (un)subscribe command.
const fn sub_spec(
    name: &'static str,
    arity: i32,
    summary: &'static str,
    complexity: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    CommandSpec::new(name, arity, "pubsub", handler)
        .with_flags(SUB_FLAGS)
        .with_acl(&["pubsub", "slow"])
        .with_docs("2.0.0", summary, complexity)
}

/// A shard (un)subscribe command: its channels sit where keys would (Redis's key specs mark
/// them `not_key`; they only pick a cluster slot).
const fn shard_spec(
    name: &'static str,
    arity: i32,
    summary: &'static str,
    complexity: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    sub_spec(name, arity, summary, complexity, handler)
        .with_keys(1, -1, 1)
        .with_docs("7.0.0", summary, complexity)
}

/// A PUBSUB subcommand.
const fn introspection(
    name: &'static str,
    arity: i32,
    flags: u32,
    acl: &'static [&'static str],
    summary: &'static str,
    complexity: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    CommandSpec::new(name, arity, "pubsub", handler)
        .with_flags(flags)
        .with_acl(acl)
        .with_docs("2.8.0", summary, complexity)
}

const SUBCOMMANDS: &[CommandSpec] = &[
    introspection(
        "channels",
        -2,
        PUBSUB | LOADING | STALE,
        &["pubsub", "slow"],
        "List active channels",
        "O(N) where N is the number of active channels, and assuming constant time pattern \
         matching (relatively short channels and patterns)",
        channels,
    ),
    introspection(
        "numsub",
        -2,
        PUBSUB | LOADING | STALE,
        &["pubsub", "slow"],
        "Get the count of subscribers for channels",
        "O(N) for the NUMSUB subcommand, where N is the number of requested channels",
        numsub,
    ),
    introspection(
        "numpat",
        2,
        PUBSUB | LOADING | STALE,
        &["pubsub", "slow"],
        "Get the count of unique patterns pattern subscriptions",
        "O(1)",
        numpat,
    ),
    CommandSpec {
        since: "7.0.0",
        ..introspection(
            "shardchannels",
            -2,
            PUBSUB | LOADING | STALE,
            &["pubsub", "slow"],
            "List active shard channels",
            "O(N) where N is the number of active shard channels, and assuming constant time \
             pattern matching (relatively short shard channels).",
            shardchannels,
        )
    },
    CommandSpec {
        since: "7.0.0",
        ..introspection(
            "shardnumsub",
            -2,
            PUBSUB | LOADING | STALE,
            &["pubsub", "slow"],
            "Get the count of subscribers for shard channels",
            "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard \
             channels",
            shardnumsub,
        )
    },
    introspection(
        "help",
        2,
        LOADING | STALE,
        &["slow"],
        "Show helpful text about the different subcommands",
        "O(1)",
        help,
    ),
];

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    sub_spec(
        "subscribe",
        -2,
        "Listen for messages published to the given channels",
        "O(N) where N is the number of channels to subscribe to.",
        subscribe,
    ),
    sub_spec(
        "unsubscribe",
        -1,
        "Stop listening for messages posted to the given channels",
        "O(N) where N is the number of clients already subscribed to a channel.",
        unsubscribe,
    ),
    sub_spec(
        "psubscribe",
        -2,
        "Listen for messages published to channels matching the given patterns",
        "O(N) where N is the number of patterns the client is already subscribed to.",
        psubscribe,
    ),
    sub_spec(
        "punsubscribe",
        -1,
        "Stop listening for messages posted to channels matching the given patterns",
        "O(N+M) where N is the number of patterns the client is already subscribed and M is \
         the number of total patterns subscribed in the system.",
        punsubscribe,
    ),
    CommandSpec {
        name: "publish",
        arity: 3,
        flags: PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["pubsub", "fast"],
        group: "pubsub",
        since: "2.0.0",
        summary: "Post a message to a channel",
        complexity: "O(N+M) where N is the number of clients subscribed to the receiving \
                     channel and M is the total number of subscribed patterns (by any client).",
        handler: publish,
        subcommands: &[],
    },
    shard_spec(
        "ssubscribe",
        -2,
        "Listen for messages published to the given shard channels",
        "O(N) where N is the number of shard channels to subscribe to.",
        ssubscribe,
    ),
    shard_spec(
        "sunsubscribe",
        -1,
        "Stop listening for messages posted to the given shard channels",
        "O(N) where N is the number of clients already subscribed to a shard channel.",
        sunsubscribe,
    ),
    CommandSpec {
        name: "spublish",
        arity: 3,
        flags: PUBSUB | LOADING | STALE | FAST,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["pubsub", "fast"],
        group: "pubsub",
        since: "7.0.0",
        summary: "Post a message to a shard channel",
        complexity: "O(N) where N is the number of clients subscribed to the receiving shard \
                     channel.",
        handler: spublish,
        subcommands: &[],
    },
    CommandSpec {
        name: "pubsub",
        arity: -2,
        flags: 0,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["slow"],
        group: "pubsub",
        since: "2.8.0",
        summary: "A container for Pub/Sub commands",
        complexity: "Depends on subcommand.",
        handler: container,
        subcommands: SUBCOMMANDS,
    },
];

/// Whether RESP2 subscribed mode allows the command named `name` (Redis's `processCommand`
/// check).
pub fn allowed_when_subscribed(name: &[u8]) -> bool {
    [
        "ping",
        "subscribe",
        "ssubscribe",
        "unsubscribe",
        "sunsubscribe",
        "psubscribe",
        "punsubscribe",
        "quit",
        "reset",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
}

fn set_of(subs: &mut Subscriptions, kind: Kind) -> &mut std::collections::HashSet<Vec<u8>> {
    match kind {
        Kind::Channel => &mut subs.channels,
        Kind::Pattern => &mut subs.patterns,
        Kind::Shard => &mut subs.shards,
    }
}

/// The count a (un)subscribe reply of `kind` carries: shard channels are counted apart.
fn count_of(subs: &Subscriptions, kind: Kind) -> usize {
    match kind {
        Kind::Shard => subs.shards.len(),
        _ => subs.count(),
    }
}

/// SUBSCRIBE / PSUBSCRIBE.
fn add(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind, verb: &[u8]) {
    let shared = ctx.client.shared.clone();
    let subs = ctx.client.pubsub.get_or_insert_with(Box::default);
    for name in args.iter_from(1) {
        if set_of(subs, kind).insert(name.to_vec()) {
            registry().subscribe(kind, name, &shared);
        }
        let count = count_of(subs, kind);
        ctx.reply.push_len(3);
        ctx.reply.bulk(verb);
        ctx.reply.bulk(name);
        ctx.reply.int(count as i64);
    }
}

/// UNSUBSCRIBE / PUNSUBSCRIBE: the named ones, or every one of the kind.
fn remove(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind, verb: &[u8]) {
    let id = ctx.client.id;
    let mut subs = ctx.client.pubsub.take().unwrap_or_default();
    let names: Vec<Vec<u8>> = if args.len() > 1 {
        args.iter_from(1).map(<[u8]>::to_vec).collect()
    } else {
        set_of(&mut subs, kind).iter().cloned().collect()
    };
    if names.is_empty() {
        ctx.reply.push_len(3);
        ctx.reply.bulk(verb);
        ctx.reply.null();
        ctx.reply.int(count_of(&subs, kind) as i64);
    }
    for name in names {
        if set_of(&mut subs, kind).remove(&name) {
            registry().unsubscribe(kind, &name, id);
        }
        ctx.reply.push_len(3);
        ctx.reply.bulk(verb);
        ctx.reply.bulk(&name);
        ctx.reply.int(count_of(&subs, kind) as i64);
    }
    ctx.client.pubsub = Some(subs);
}

/// Drops every subscription without replying (RESET, disconnect).
pub fn unsubscribe_all(client: &mut Client) {
    let Some(subs) = client.pubsub.take() else {
        return;
    };
    let reg = registry();
    for c in &subs.channels {
        reg.unsubscribe(Kind::Channel, c, client.id);
    }
    for p in &subs.patterns {
        reg.unsubscribe(Kind::Pattern, p, client.id);
    }
    for c in &subs.shards {
        reg.unsubscribe(Kind::Shard, c, client.id);
    }
}

/// `SUBSCRIBE channel [channel ...]`
fn subscribe(ctx: &mut Ctx<'_>, args: Args<'_>) {
    add(ctx, args, Kind::Channel, b"subscribe");
}

/// `PSUBSCRIBE pattern [pattern ...]`
fn psubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) {
    add(ctx, args, Kind::Pattern, b"psubscribe");
}

/// `UNSUBSCRIBE [channel ...]`
fn unsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) {
    remove(ctx, args, Kind::Channel, b"unsubscribe");
}

/// `PUNSUBSCRIBE [pattern ...]`
fn punsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) {
    remove(ctx, args, Kind::Pattern, b"punsubscribe");
}

/// `SSUBSCRIBE shardchannel [shardchannel ...]`. Unlike SUBSCRIBE, refused inside MULTI too
/// (Redis keeps that exception for SUBSCRIBE's old users only).
fn ssubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if ctx.client.deny_blocking {
        ctx.reply
            .error("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client");
        return;
    }
    add(ctx, args, Kind::Shard, b"ssubscribe");
}

/// `SUNSUBSCRIBE [shardchannel ...]`
fn sunsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) {
    remove(ctx, args, Kind::Shard, b"sunsubscribe");
}

/// `SPUBLISH shardchannel message`: the number of clients that received it.
fn spublish(ctx: &mut Ctx<'_>, args: Args<'_>) {
    publish_generic(ctx, args, Kind::Shard);
}

/// `PUBLISH channel message`: the number of clients that received it.
fn publish(ctx: &mut Ctx<'_>, args: Args<'_>) {
    publish_generic(ctx, args, Kind::Channel);
}

fn publish_generic(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) {
    let (channel, message) = (args.get(1), args.get(2));
    let (server, me) = (ctx.server, ctx.client.id);
    let n = registry().publish(server, kind, channel, message, me, ctx.reply.raw());
    ctx.reply.int(n);
    // Redis sends PUBLISH down the replication stream (not to the AOF), so that subscribers of
    // the replicas hear it too; a commit number keeps its place among the writes.
    if server.aof.repl_streaming() && ctx.store.note_commit() {
        let mut entry = crate::aof::Entry::default();
        entry.push(ctx.client.db, args.iter_from(0));
        entry.set_repl_only();
        ctx.client.aof_txn = Some(crate::aof::Txn {
            entry,
            seqs: Vec::new(),
        });
    }
}

/// The container is never run itself: the dispatcher resolves its subcommands.
fn container(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply
        .error("ERR wrong number of arguments for 'pubsub' command");
}

/// `PUBSUB CHANNELS [pattern]`
fn channels(ctx: &mut Ctx<'_>, args: Args<'_>) {
    list_channels(ctx, args, Kind::Channel);
}

/// `PUBSUB SHARDCHANNELS [pattern]`
fn shardchannels(ctx: &mut Ctx<'_>, args: Args<'_>) {
    list_channels(ctx, args, Kind::Shard);
}

fn list_channels(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) {
    if args.len() > 3 {
        // Redis's `addReplySubcommandSyntaxError`, quoting the subcommand as typed.
        let sub = args.get(1);
        let sub = String::from_utf8_lossy(&sub[..sub.len().min(128)]);
        ctx.reply.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try PUBSUB HELP."
        ));
        return;
    }
    let list = registry().channels(kind, args.try_get(2));
    ctx.reply.array_len(list.len());
    for c in &list {
        ctx.reply.bulk(c);
    }
}

/// `PUBSUB NUMSUB [channel ...]`
fn numsub(ctx: &mut Ctx<'_>, args: Args<'_>) {
    count_subscribers(ctx, args, Kind::Channel);
}

/// `PUBSUB SHARDNUMSUB [shardchannel ...]`
fn shardnumsub(ctx: &mut Ctx<'_>, args: Args<'_>) {
    count_subscribers(ctx, args, Kind::Shard);
}

fn count_subscribers(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) {
    let reg = registry();
    ctx.reply.array_len((args.len() - 2) * 2);
    for c in args.iter_from(2) {
        ctx.reply.bulk(c);
        ctx.reply.int(reg.numsub(kind, c) as i64);
    }
}

/// `PUBSUB NUMPAT`
fn numpat(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply.int(registry().numpat() as i64);
}

const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// `PUBSUB HELP`
fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    reply_help(&mut ctx.reply, HELP);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribed_mode_allows_only_its_commands() {
        assert!(allowed_when_subscribed(b"PING"));
        assert!(allowed_when_subscribed(b"punsubscribe"));
        assert!(allowed_when_subscribed(b"Reset"));
        assert!(allowed_when_subscribed(b"SSUBSCRIBE"));
        assert!(!allowed_when_subscribed(b"spublish"));
        assert!(!allowed_when_subscribed(b"get"));
        assert!(!allowed_when_subscribed(b"publish"));
    }
}
