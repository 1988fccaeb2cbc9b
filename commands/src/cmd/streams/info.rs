//! XINFO STREAM [FULL [COUNT n]] / GROUPS / CONSUMERS / HELP (`xinfoCommand`), with Redis
//! 7.0's fields.

use ferrite_collections::stream::{ConsumerGroup, Entries};
use ferrite_collections::{Stream, StreamId};

use super::group_util::{int, no_group, subcommand_syntax_error};
use super::range::{reply_stream_entry, reply_stream_id};
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::cmd::config_cmd::reply_help;
use crate::ctx::Ctx;
use crate::objects::with_collection;
use crate::resp::Reply;

/// The container is never run itself: the dispatcher resolves its subcommands.
pub(super) fn container(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply
        .error("ERR wrong number of arguments for 'xinfo' command");
}

/// Looks the key up as `lookupKeyReadOrReply(.., shared.nokeyerr)` + `checkType`, then runs `f`
/// on the stream.
fn with_stream(ctx: &mut Ctx<'_>, key: &[u8], f: impl FnOnce(&Stream, &mut Reply<'_>)) {
    let r = with_collection::<Stream, _>(ctx, key, true, |s, reply| match s {
        Some(s) => f(s, reply),
        None => reply.error("ERR no such key"),
    });
    if r.is_err() {
        ctx.wrong_type();
    }
}

/// `XINFO STREAM key [FULL [COUNT count]]`
pub(super) fn stream(ctx: &mut Ctx<'_>, args: Args<'_>) {
    with_stream(ctx, args.get(2), |s, reply| {
        let argc = args.len();
        if argc != 3 && argc != 4 && argc != 6 {
            return subcommand_syntax_error(reply, "xinfo", args.get(1));
        }
        let mut full = None;
        if argc > 3 {
            if !eq_ignore_case(args.get(3), "full") {
                return subcommand_syntax_error(reply, "xinfo", args.get(1));
            }
            let mut count = 10;
            if argc == 6 {
                if !eq_ignore_case(args.get(4), "count") {
                    return subcommand_syntax_error(reply, "xinfo", args.get(1));
                }
                let Some(n) = parse_i64(args.get(5)) else {
                    return reply.error("ERR value is not an integer or out of range");
                };
                count = if n < 0 { 10 } else { n };
            }
            full = Some(usize::try_from(count).unwrap_or(usize::MAX));
        }
        stream_info(reply, s, full);
    });
}

/// `xinfoReplyWithStreamInfo`; `full` is FULL's COUNT (0: everything).
fn stream_info(reply: &mut Reply<'_>, s: &Stream, full: Option<usize>) {
    let e = &s.entries;
    reply.map_len(if full.is_some() { 9 } else { 10 });
    reply.bulk(b"length");
    reply.int(e.len() as i64);
    reply.bulk(b"radix-tree-keys");
    reply.int(int(e.node_count()));
    reply.bulk(b"radix-tree-nodes");
    reply.int(int(rax_nodes(e)));
    reply.bulk(b"last-generated-id");
    reply_stream_id(reply, e.last_id());
    reply.bulk(b"max-deleted-entry-id");
    reply_stream_id(reply, e.max_deleted_entry_id());
    reply.bulk(b"entries-added");
    reply.int(e.entries_added() as i64);
    reply.bulk(b"recorded-first-entry-id");
    reply_stream_id(reply, e.first_id());
    let Some(count) = full else {
        reply.bulk(b"groups");
        reply.int(int(s.groups.len()));
        reply.bulk(b"first-entry");
        match e.range(StreamId::MIN, StreamId::MAX, false).next() {
            Some(first) => reply_stream_entry(reply, &first),
            None => reply.null(),
        }
        reply.bulk(b"last-entry");
        match e.range(StreamId::MIN, StreamId::MAX, true).next() {
            Some(last) => reply_stream_entry(reply, &last),
            None => reply.null(),
        }
        return;
    };
    let limit = if count == 0 { usize::MAX } else { count };
    reply.bulk(b"entries");
    let shown: Vec<_> = e
        .range(StreamId::MIN, StreamId::MAX, false)
        .take(limit)
        .collect();
    reply.array_len(shown.len());
    for entry in &shown {
        reply_stream_entry(reply, entry);
    }
    reply.bulk(b"groups");
    reply.array_len(s.groups.len());
    for (name, g) in s.groups.iter() {
        full_group(reply, e, name, g, limit);
    }
}

/// One group of XINFO STREAM FULL, its PEL and its consumers' PELs cut at `limit`.
fn full_group(reply: &mut Reply<'_>, e: &Entries, name: &[u8], g: &ConsumerGroup, limit: usize) {
    reply.map_len(7);
    reply.bulk(b"name");
    reply.bulk(name);
    reply.bulk(b"last-delivered-id");
    reply_stream_id(reply, g.last_id);
    reply.bulk(b"entries-read");
    reply_entries_read(reply, g);
    reply.bulk(b"lag");
    reply_lag(reply, e, g);
    reply.bulk(b"pel-count");
    reply.int(int(g.pel().len()));
    reply.bulk(b"pending");
    let n = g.pel().len().min(limit);
    reply.array_len(n);
    for (id, nack) in g.pel().iter().take(n) {
        reply.array_len(4);
        reply_stream_id(reply, *id);
        reply.bulk(nack.consumer());
        reply.int(nack.delivery_time_ms as i64);
        reply.int(nack.delivery_count as i64);
    }
    reply.bulk(b"consumers");
    reply.array_len(g.consumer_count());
    for (cname, c) in g.consumers() {
        reply.map_len(4);
        reply.bulk(b"name");
        reply.bulk(cname);
        reply.bulk(b"seen-time");
        reply.int(c.seen_time_ms as i64);
        reply.bulk(b"pel-count");
        reply.int(int(c.pending_count()));
        reply.bulk(b"pending");
        let n = c.pending_count().min(limit);
        reply.array_len(n);
        for id in c.pending().take(n) {
            let (time, count) = g
                .pel()
                .get(&id)
                .map_or((0, 0), |n| (n.delivery_time_ms, n.delivery_count));
            reply.array_len(3);
            reply_stream_id(reply, id);
            reply.int(time as i64);
            reply.int(count as i64);
        }
    }
}

fn reply_entries_read(reply: &mut Reply<'_>, g: &ConsumerGroup) {
    match g.entries_read {
        Some(n) => reply.int(n as i64),
        None => reply.null(),
    }
}

fn reply_lag(reply: &mut Reply<'_>, e: &Entries, g: &ConsumerGroup) {
    match g.lag(e) {
        Some(n) => reply.int(n),
        None => reply.null(),
    }
}

/// `XINFO GROUPS key`
pub(super) fn groups(ctx: &mut Ctx<'_>, args: Args<'_>) {
    with_stream(ctx, args.get(2), |s, reply| {
        reply.array_len(s.groups.len());
        for (name, g) in s.groups.iter() {
            reply.map_len(6);
            reply.bulk(b"name");
            reply.bulk(name);
            reply.bulk(b"consumers");
            reply.int(int(g.consumer_count()));
            reply.bulk(b"pending");
            reply.int(int(g.pel().len()));
            reply.bulk(b"last-delivered-id");
            reply_stream_id(reply, g.last_id);
            reply.bulk(b"entries-read");
            reply_entries_read(reply, g);
            reply.bulk(b"lag");
            reply_lag(reply, &s.entries, g);
        }
    });
}

/// `XINFO CONSUMERS key group`
pub(super) fn consumers(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (key, group) = (args.get(2), args.get(3));
    let now = ctx.now_ms;
    with_stream(ctx, key, |s, reply| {
        let Some(g) = s.groups.get(group) else {
            return no_group(reply, key, group);
        };
        reply.array_len(g.consumer_count());
        for (name, c) in g.consumers() {
            reply.map_len(3);
            reply.bulk(b"name");
            reply.bulk(name);
            reply.bulk(b"pending");
            reply.int(int(c.pending_count()));
            reply.bulk(b"idle");
            reply.int(i64::try_from(now.saturating_sub(c.seen_time_ms)).unwrap_or(i64::MAX));
        }
    });
}

const HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

/// `XINFO HELP`
pub(super) fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    reply_help(&mut ctx.reply, HELP);
}

/// Redis's `rax->numnodes` for the stream's node keys (16-byte big-endian master IDs): the
/// nodes of the canonical radix tree over them, which is the tree rax builds by inserting them
/// (removals recompress it back to that shape in the cases streams produce).
fn rax_nodes(e: &Entries) -> usize {
    let keys: Vec<[u8; 16]> = e.nodes().map(|(id, _)| id.to_be_bytes()).collect();
    if keys.is_empty() {
        return 1;
    }
    subtree_nodes(&keys, 0)
}

/// Nodes of the subtree holding `keys` (sorted, distinct, all sharing their first `depth`
/// bytes): a leaf past the last byte; a compressed node over a common run; else a branching
/// node with one subtree per next byte.
fn subtree_nodes(keys: &[[u8; 16]], depth: usize) -> usize {
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        return 0;
    };
    if depth >= 16 {
        return 1;
    }
    let common = first[depth..]
        .iter()
        .zip(&last[depth..])
        .take_while(|(a, b)| a == b)
        .count();
    if common > 0 {
        return 1 + subtree_nodes(keys, depth + common);
    }
    let mut n = 1;
    let mut rest = keys;
    while let Some(head) = rest.first() {
        let split = rest
            .iter()
            .position(|k| k[depth] != head[depth])
            .unwrap_or(rest.len());
        n += subtree_nodes(&rest[..split], depth + 1);
        rest = &rest[split..];
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(ids: &[(u64, u64)]) -> usize {
        let mut keys: Vec<[u8; 16]> = ids
            .iter()
            .map(|&(m, s)| StreamId::new(m, s).to_be_bytes())
            .collect();
        keys.sort();
        if keys.is_empty() {
            1
        } else {
            subtree_nodes(&keys, 0)
        }
    }

    #[test]
    fn rax_node_counts() {
        assert_eq!(nodes(&[]), 1);
        // One key: a compressed node over all 16 bytes, then the key's leaf.
        assert_eq!(nodes(&[(1, 1)]), 2);
        // Keys differing in the last byte: compressed prefix, branch, two leaves.
        assert_eq!(nodes(&[(1, 1), (1, 2)]), 4);
        // Differing earlier: prefix, branch, two compressed tails, two leaves.
        assert_eq!(nodes(&[(1, 1), (2, 1)]), 6);
    }
}
