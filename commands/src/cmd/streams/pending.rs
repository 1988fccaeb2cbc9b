//! XPENDING (`xpendingCommand`): the summary form and the extended form with IDLE and a
//! consumer filter.

use ferrite_collections::Stream;

use super::group_util::{int, no_key_or_group};
use super::id_arg::parse_range_or_reply;
use super::range::reply_stream_id;
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::objects::with_collection;

/// `XPENDING key group [[IDLE min-idle-time] start end count [consumer]]`
pub(super) fn xpending(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return ctx.syntax_error();
    }
    // The range arguments are parsed before the key is looked up, so that syntax errors come
    // first, as in Redis.
    let mut range = None;
    if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0;
        if eq_ignore_case(args.get(3), "idle") {
            let Some(v) = parse_i64(args.get(4)) else {
                return ctx.not_integer();
            };
            if argc < 8 {
                return ctx.syntax_error();
            }
            min_idle = v;
            at = 5;
        }
        let Some(count) = parse_i64(args.get(at + 2)) else {
            return ctx.not_integer();
        };
        let count = usize::try_from(count.max(0)).unwrap_or(usize::MAX);
        let Some((start, end)) = parse_range_or_reply(ctx, args.get(at), args.get(at + 1)) else {
            return;
        };
        range = Some((start, end, count, min_idle, args.try_get(at + 3)));
    }
    let (key, group) = (args.get(1), args.get(2));
    let now = ctx.now_ms;
    let r = with_collection::<Stream, _>(ctx, key, true, |s, reply| {
        let Some(g) = s.and_then(|s| s.groups.get(group)) else {
            no_key_or_group(reply, key, group, "");
            return;
        };
        let Some((start, end, count, min_idle, consumer)) = range else {
            let sum = g.summary();
            reply.array_len(4);
            reply.int(int(sum.count));
            match sum.bounds {
                None => {
                    reply.null();
                    reply.null();
                    reply.null_array();
                }
                Some((first, last)) => {
                    reply_stream_id(reply, first);
                    reply_stream_id(reply, last);
                    reply.array_len(sum.consumers.len());
                    for (name, n) in sum.consumers {
                        reply.array_len(2);
                        reply.bulk(name);
                        reply.bulk_int(int(n));
                    }
                }
            }
            return;
        };
        let found = g.pending_range(start, end, count, min_idle, consumer, now);
        reply.array_len(found.len());
        for (id, nack) in found {
            reply.array_len(4);
            reply_stream_id(reply, id);
            reply.bulk(nack.consumer());
            reply.int(i64::try_from(nack.idle_ms(now)).unwrap_or(i64::MAX));
            reply.int(nack.delivery_count as i64);
        }
    });
    if r.is_err() {
        ctx.wrong_type();
    }
}
