//! XRANGE, XREVRANGE and XLEN, and the entry replies XREAD shares.

use ferrite_collections::stream::Entry;
use ferrite_collections::{Stream, StreamId, format_u64};

use super::id_arg::parse_range_or_reply;
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::objects::with_collection;
use crate::resp::Reply;

/// Writes `<ms>-<seq>` as a bulk string without allocating.
pub(super) fn reply_stream_id(reply: &mut Reply<'_>, id: StreamId) {
    let mut buf = [0u8; 41];
    let mut digits = [0u8; 20];
    let ms = format_u64(&mut digits, id.ms);
    let mut n = ms.len();
    buf[..n].copy_from_slice(ms);
    buf[n] = b'-';
    n += 1;
    let seq = format_u64(&mut digits, id.seq);
    buf[n..n + seq.len()].copy_from_slice(seq);
    n += seq.len();
    reply.bulk(&buf[..n]);
}

/// One entry as `streamReplyWithRange` writes it: `[id, [field, value, ...]]`.
pub(super) fn reply_stream_entry(reply: &mut Reply<'_>, e: &Entry<'_>) {
    reply.array_len(2);
    reply_stream_id(reply, e.id());
    reply.array_len(e.len() * 2);
    for (f, v) in e.fields() {
        f.with_bytes(|b| reply.bulk(b));
        v.with_bytes(|b| reply.bulk(b));
    }
}

/// Entries of `s` from `start` to `end` (descending if `rev`), at most `count` (0: all), as an
/// array.
pub(super) fn reply_range(
    reply: &mut Reply<'_>,
    s: &Stream,
    start: StreamId,
    end: StreamId,
    rev: bool,
    count: usize,
) {
    let limit = if count == 0 { usize::MAX } else { count };
    let entries: Vec<Entry<'_>> = s.entries.range(start, end, rev).take(limit).collect();
    reply.array_len(entries.len());
    for e in &entries {
        reply_stream_entry(reply, e);
    }
}

/// `XRANGE key start end [COUNT count]`
pub(crate) fn xrange(ctx: &mut Ctx<'_>, args: Args<'_>) {
    range_generic(ctx, args, false);
}

/// `XREVRANGE key end start [COUNT count]`
pub(crate) fn xrevrange(ctx: &mut Ctx<'_>, args: Args<'_>) {
    range_generic(ctx, args, true);
}

/// `xrangeGenericCommand`: the IDs, then COUNT, then the key.
fn range_generic(ctx: &mut Ctx<'_>, args: Args<'_>, rev: bool) {
    let (start_arg, end_arg) = if rev {
        (args.get(3), args.get(2))
    } else {
        (args.get(2), args.get(3))
    };
    let Some((start, end)) = parse_range_or_reply(ctx, start_arg, end_arg) else {
        return;
    };
    let mut count: Option<i64> = None;
    let mut j = 4;
    while j < args.len() {
        if eq_ignore_case(args.get(j), "count") && j + 1 < args.len() {
            let Some(c) = parse_i64(args.get(j + 1)) else {
                return ctx.not_integer();
            };
            count = Some(c.max(0));
            j += 2;
        } else {
            return ctx.syntax_error();
        }
    }
    let r = with_collection::<Stream, _>(ctx, args.get(1), true, |s, reply| match s {
        None => reply.array_len(0),
        Some(_) if count == Some(0) => reply.null_array(),
        Some(s) => {
            let n = count.map_or(0, |c| usize::try_from(c).unwrap_or(usize::MAX));
            reply_range(reply, s, start, end, rev, n);
        }
    });
    if r.is_err() {
        ctx.wrong_type();
    }
}

/// `XLEN key`
pub(crate) fn xlen(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let r = with_collection::<Stream, _>(ctx, args.get(1), true, |s, reply| {
        reply.int(s.map_or(0, |s| i64::try_from(s.entries.len()).unwrap_or(i64::MAX)));
    });
    if r.is_err() {
        ctx.wrong_type();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bulk_strings() {
        let replied = |id: StreamId| {
            let mut out = Vec::new();
            reply_stream_id(&mut Reply::new(&mut out, false), id);
            out
        };
        assert_eq!(replied(StreamId::new(1, 2)), b"$3\r\n1-2\r\n");
        assert_eq!(
            replied(StreamId::MAX),
            b"$41\r\n18446744073709551615-18446744073709551615\r\n"
        );
    }
}
