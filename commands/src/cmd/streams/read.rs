//! XREAD (`xreadCommand` without the group part).

use ferrite_collections::{Stream, StreamId};

use super::block::serve_or_block;
use super::id_arg::{INVALID_ID, parse_id_arg};
use super::range::reply_range;
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::blocking::Attempt;
use crate::ctx::Ctx;
use crate::objects::with_collection;

/// `XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]`
pub(crate) fn xread(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let argc = args.len();
    let mut timeout: Option<i64> = None;
    let mut count: usize = 0;
    let mut streams_arg = 0;
    let mut i = 1;
    while i < argc {
        let moreargs = argc - i - 1;
        let opt = args.get(i);
        if eq_ignore_case(opt, "block") && moreargs > 0 {
            i += 1;
            let Some(ms) = parse_i64(args.get(i)) else {
                return ctx
                    .reply
                    .error("ERR timeout is not an integer or out of range");
            };
            if ms < 0 {
                return ctx.reply.error("ERR timeout is negative");
            }
            if ms > 0 && ms > i64::MAX - i64::try_from(ctx.now_ms).unwrap_or(i64::MAX) {
                return ctx.reply.error("ERR timeout is out of range");
            }
            timeout = Some(ms);
        } else if eq_ignore_case(opt, "count") && moreargs > 0 {
            i += 1;
            let Some(c) = parse_i64(args.get(i)) else {
                return ctx.not_integer();
            };
            count = usize::try_from(c.max(0)).unwrap_or(usize::MAX);
        } else if eq_ignore_case(opt, "streams") && moreargs > 0 {
            streams_arg = i + 1;
            if !(argc - streams_arg).is_multiple_of(2) {
                return ctx.reply.error(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                );
            }
            break;
        } else if eq_ignore_case(opt, "group") && moreargs >= 2 {
            return ctx.reply.error(
                "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
            );
        } else if eq_ignore_case(opt, "noack") {
            return ctx.reply.error(
                "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
            );
        } else {
            return ctx.syntax_error();
        }
        i += 1;
    }
    if streams_arg == 0 {
        return ctx.syntax_error();
    }
    let n = (argc - streams_arg) / 2;
    let keys: Vec<&[u8]> = args.iter_from(streams_arg).take(n).collect();
    let mut ids = Vec::with_capacity(n);
    // Each key's type is checked just before its ID is parsed, as Redis does.
    for (key, arg) in keys.iter().zip(args.iter_from(streams_arg + n)) {
        let Ok(last) =
            with_collection::<Stream, _>(ctx, key, true, |s, _| s.map(|s| s.entries.last_id()))
        else {
            return ctx.wrong_type();
        };
        let id = match arg {
            b"$" => last.unwrap_or(StreamId::MIN),
            b">" => {
                return ctx.reply.error(
                    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                );
            }
            _ => match parse_id_arg(arg, 0, true, false) {
                Some(p) => p.id,
                None => return ctx.reply.error(INVALID_ID),
            },
        };
        ids.push(id);
    }
    let attempt = |ctx: &mut Ctx<'_>, ids: &[StreamId]| serve(ctx, &keys, ids, count);
    match timeout {
        Some(ms) => serve_or_block(ctx, &keys, ids, ms, attempt),
        None => {
            if attempt(ctx, &ids) == Attempt::Empty {
                ctx.reply.null_array();
            }
        }
    }
}

/// Replies the entries above `ids[i]` of each `keys[i]` that has some, or reports `Empty`
/// without replying.
fn serve(ctx: &mut Ctx<'_>, keys: &[&[u8]], ids: &[StreamId], count: usize) -> Attempt {
    let ready: Vec<usize> = (0..keys.len().min(ids.len()))
        .filter(|&i| {
            let gt = ids[i];
            with_collection::<Stream, _>(ctx, keys[i], true, |s, _| {
                s.and_then(|s| s.entries.last_entry_id())
                    .is_some_and(|top| top > gt)
            }) == Ok(true)
        })
        .collect();
    if ready.is_empty() {
        return Attempt::Empty;
    }
    let resp3 = ctx.reply.is_resp3();
    if resp3 {
        ctx.reply.map_len(ready.len());
    } else {
        ctx.reply.array_len(ready.len());
    }
    for i in ready {
        if !resp3 {
            ctx.reply.array_len(2);
        }
        ctx.reply.bulk(keys[i]);
        let start = ids[i].next().unwrap_or(StreamId::MIN);
        let served = with_collection::<Stream, _>(ctx, keys[i], false, |s, reply| match s {
            Some(s) => reply_range(reply, s, start, StreamId::MAX, false, count),
            None => reply.array_len(0),
        });
        if served.is_err() {
            ctx.reply.array_len(0);
        }
    }
    Attempt::Done
}
