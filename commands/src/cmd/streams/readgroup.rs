//! XREADGROUP (`xreadCommand` with a group, `streamReplyWithRange`,
//! `streamReplyWithRangeFromConsumerPEL`).
//!
//! Every key and ID is checked before anything is served, as Redis does; then each stream is
//! served by its own read-modify-write (the command is not atomic across streams, which only
//! shows if a group is destroyed between the check and the serve: that stream is skipped).

use ferrite_collections::{Stream, StreamId};

use super::block::{is_rerun, serve_or_block};
use super::group_util::{error_fmt, no_key_or_group};
use super::id_arg::{INVALID_ID, parse_id_arg};
use super::range::{reply_stream_entry, reply_stream_id};
use super::write::{Write, update_stream_with};
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::blocking::Attempt;
use crate::ctx::Ctx;
use crate::objects::with_collection;

/// `XREAD_BLOCKED_DEFAULT_COUNT`: what a woken client without COUNT is served at most.
const BLOCKED_DEFAULT_COUNT: usize = 1000;

/// XREADGROUP's options.
struct Request<'a> {
    group: &'a [u8],
    consumer: &'a [u8],
    count: usize,
    block_ms: Option<i64>,
    noack: bool,
    /// Index of the first key.
    streams: usize,
    /// Number of keys.
    n: usize,
}

/// Parses the options as `xreadCommand` does, replying its errors.
fn parse<'a>(ctx: &mut Ctx<'_>, args: Args<'a>) -> Option<Request<'a>> {
    let argc = args.len();
    let (mut count, mut block_ms, mut noack) = (0usize, None, false);
    let mut group = None;
    let mut streams = 0;
    let mut i = 1;
    while i < argc {
        let more = argc - i - 1;
        let o = args.get(i);
        if eq_ignore_case(o, "block") && more > 0 {
            i += 1;
            match parse_i64(args.get(i)) {
                None => {
                    ctx.reply
                        .error("ERR timeout is not an integer or out of range");
                    return None;
                }
                Some(t) if t < 0 => {
                    ctx.reply.error("ERR timeout is negative");
                    return None;
                }
                Some(t) => block_ms = Some(t),
            }
        } else if eq_ignore_case(o, "count") && more > 0 {
            i += 1;
            let Some(c) = parse_i64(args.get(i)) else {
                ctx.not_integer();
                return None;
            };
            count = usize::try_from(c.max(0)).unwrap_or(usize::MAX);
        } else if eq_ignore_case(o, "streams") && more > 0 {
            streams = i + 1;
            if !(argc - streams).is_multiple_of(2) {
                // Redis 7.0 names XREAD and `$` here, for XREADGROUP too.
                ctx.reply.error(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' \
                     must be specified.",
                );
                return None;
            }
            break;
        } else if eq_ignore_case(o, "group") && more >= 2 {
            group = Some((args.get(i + 1), args.get(i + 2)));
            i += 2;
        } else if eq_ignore_case(o, "noack") {
            noack = true;
        } else {
            ctx.syntax_error();
            return None;
        }
        i += 1;
    }
    if streams == 0 {
        ctx.syntax_error();
        return None;
    }
    let Some((group, consumer)) = group else {
        ctx.reply.error("ERR Missing GROUP option for XREADGROUP");
        return None;
    };
    Some(Request {
        group,
        consumer,
        count,
        block_ms,
        noack,
        streams,
        n: (argc - streams) / 2,
    })
}

/// `XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK] STREAMS key [key ...]
/// id [id ...]`
pub(super) fn xreadgroup(ctx: &mut Ctx<'_>, args: Args<'_>) {
    // Once per run, so that propagation never sees a previous command's record.
    let mut created = Vec::new();
    xreadgroup_run(ctx, args, &mut created);
    super::note_created_consumers(created);
}

fn xreadgroup_run(ctx: &mut Ctx<'_>, args: Args<'_>, created: &mut Vec<Vec<u8>>) {
    let Some(req) = parse(ctx, args) else {
        return;
    };
    let keys: Vec<&[u8]> = args.iter_from(req.streams).take(req.n).collect();
    // `>` is the maximum ID, as in Redis (so an explicit maximum ID means `>` too).
    let ids = vec![StreamId::MAX; req.n];
    match req.block_ms {
        None => {
            if attempt(ctx, args, &req, &keys, created) == Attempt::Empty {
                ctx.reply.null_array();
            }
        }
        Some(timeout) => serve_or_block(ctx, &keys, ids, timeout, |ctx, _| {
            attempt(ctx, args, &req, &keys, created)
        }),
    }
}

/// Checks every key, group and ID (replying the first error), then serves what can be served
/// now. `Empty` when nothing was served and the client may block. Keys whose group got a new
/// consumer are added to `created` (for the AOF).
fn attempt(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    req: &Request<'_>,
    keys: &[&[u8]],
    created: &mut Vec<Vec<u8>>,
) -> Attempt {
    let rerun = is_rerun(ctx);
    let mut ids = Vec::with_capacity(req.n);
    for (i, &key) in keys.iter().enumerate() {
        let found = with_collection::<Stream, _>(ctx, key, true, |s, _| {
            s.map(|s| s.groups.get(req.group).is_some())
        });
        match found {
            // A woken client whose key changed type or vanished keeps waiting, as in Redis 7.0.
            Err(_) | Ok(None) if rerun => return Attempt::Empty,
            Err(_) => {
                ctx.wrong_type();
                return Attempt::Done;
            }
            Ok(Some(false)) if rerun => {
                error_fmt(
                    &mut ctx.reply,
                    &[b"NOGROUP the consumer group this client was blocked on no longer exists"],
                );
                return Attempt::Done;
            }
            Ok(None | Some(false)) => {
                let suffix = " in XREADGROUP with GROUP option";
                no_key_or_group(&mut ctx.reply, key, req.group, suffix);
                return Attempt::Done;
            }
            Ok(Some(true)) => {}
        }
        let id = match args.get(req.streams + req.n + i) {
            b"$" => {
                ctx.reply.error(
                    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read \
                     the history of this consumer by specifying a proper ID, or use the > ID to \
                     get new messages. The $ ID would just return an empty result set.",
                );
                return Attempt::Done;
            }
            b">" => StreamId::MAX,
            a => match parse_id_arg(a, 0, true, false) {
                Some(p) => p.id,
                None => {
                    ctx.reply.error(INVALID_ID);
                    return Attempt::Done;
                }
            },
        };
        ids.push(id);
    }
    let count = if rerun && req.count == 0 {
        BLOCKED_DEFAULT_COUNT
    } else {
        req.count
    };
    let mark = ctx.reply.mark();
    let mut served = 0;
    for (&key, &id) in keys.iter().zip(&ids) {
        let (this_served, this_created) = serve_one(ctx, key, id, count, req);
        served += usize::from(this_served);
        if this_created && !created.iter().any(|k| k == key) {
            created.push(key.to_vec());
        }
    }
    if served == 0 {
        return Attempt::Empty;
    }
    // The number of streams served is known only now: put the header before them.
    let header = format!(
        "{}{served}\r\n",
        if ctx.reply.is_resp3() { '%' } else { '*' }
    );
    ctx.reply.raw().splice(mark..mark, header.bytes());
    Attempt::Done
}

/// Serves one stream (`xreadCommand`'s synchronous serve): the consumer's history for an
/// explicit ID, new entries for `>` when there are any. Writes `key, entries` (a pair in RESP2)
/// and says whether it did, and whether it created the consumer (a served read creates it or
/// refreshes its seen time).
fn serve_one(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    id: StreamId,
    count: usize,
    req: &Request<'_>,
) -> (bool, bool) {
    let now = ctx.now_ms;
    let limit = if count == 0 { usize::MAX } else { count };
    let r = update_stream_with(ctx, key, true, |s, reply| {
        let Some(Stream { entries, groups }) = s else {
            return Write::Keep((false, false));
        };
        let Some(g) = groups.get_mut(req.group) else {
            return Write::Keep((false, false));
        };
        let history = id != StreamId::MAX;
        let from = if history {
            Some(id)
        } else {
            entries
                .last_entry_id()
                .filter(|&max| max > g.last_id)
                .map(|_| g.last_id)
        };
        // Redis 7.0 looks the consumer up (creating it) only for a read it serves now: a `>`
        // read with nothing new, which blocks or answers nil, leaves no consumer behind.
        let Some(from) = from else {
            return Write::Keep((false, false));
        };
        let created = g.touch_consumer(req.consumer, now);
        if !reply.is_resp3() {
            reply.array_len(2);
        }
        reply.bulk(key);
        let Some(start) = from.next() else {
            reply.array_len(0);
            return Write::Updated((true, created));
        };
        if history {
            let found = g.history(req.consumer, start, count, now, |i| {
                entries.get(i).is_some()
            });
            reply.array_len(found.len());
            for (i, exists) in found {
                match entries.get(i) {
                    Some(e) if exists => reply_stream_entry(reply, &e),
                    // An entry deleted while pending: its ID and a null.
                    _ => {
                        reply.array_len(2);
                        reply_stream_id(reply, i);
                        reply.null_array();
                    }
                }
            }
            return Write::Updated((true, created));
        }
        let served: Vec<_> = entries
            .range(start, StreamId::MAX, false)
            .take(limit)
            .collect();
        reply.array_len(served.len());
        for e in &served {
            g.advance_in(e.id(), entries);
            reply_stream_entry(reply, e);
            if !req.noack {
                g.deliver(e.id(), req.consumer, now);
            }
        }
        Write::Updated((true, created))
    });
    r.unwrap_or((false, false))
}
