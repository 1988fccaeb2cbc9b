//! XCLAIM and XAUTOCLAIM (`xclaimCommand`, `xautoclaimCommand`).

use ferrite_collections::stream::{ClaimOptions, ConsumerGroup, Entries, Retry};
use ferrite_collections::{Stream, StreamId};

use super::group_util::{error_fmt, no_key_or_group};
use super::id_arg::{INVALID_ID, parse_id_arg, parse_interval_id_or_reply};
use super::range::{reply_stream_entry, reply_stream_id};
use super::write::{Write, update_stream_with, wrote};
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::resp::Reply;

/// Redis allocates `COUNT` stream IDs up front and answers an error when that fails, which on
/// 64-bit Linux happens beyond the 47-bit user address space; so does Ferrite.
const TRANSIENT_LIMIT: usize = 1 << 47;

/// XCLAIM's arguments after the key and group checks.
struct Claim {
    ids: Vec<StreamId>,
    opts: ClaimOptions,
    justid: bool,
    last_id: Option<StreamId>,
}

/// Parses XCLAIM's min-idle-time, IDs and options as Redis does, in its order; `Err` holds the
/// parts of the error to reply.
fn parse_claim<'a>(args: Args<'a>, now: u64) -> Result<Claim, Vec<&'a [u8]>> {
    let err = |s: &'static str| vec![s.as_bytes()];
    let min_idle = parse_i64(args.get(4))
        .ok_or_else(|| err("ERR Invalid min-idle-time argument for XCLAIM"))?;
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_id_arg(args.get(j), 0, true, false) {
            Some(p) => ids.push(p.id),
            None => break,
        }
        j += 1;
    }
    let (mut force, mut justid) = (false, false);
    let mut delivery: i64 = -1;
    let mut retry: i64 = -1;
    let mut last_id = None;
    let now_i = i64::try_from(now).unwrap_or(i64::MAX);
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = args.get(j);
        if eq_ignore_case(opt, "force") {
            force = true;
        } else if eq_ignore_case(opt, "justid") {
            justid = true;
        } else if eq_ignore_case(opt, "idle") && more {
            j += 1;
            let v = parse_i64(args.get(j))
                .ok_or_else(|| err("ERR Invalid IDLE option argument for XCLAIM"))?;
            delivery = now_i.wrapping_sub(v);
        } else if eq_ignore_case(opt, "time") && more {
            j += 1;
            delivery = parse_i64(args.get(j))
                .ok_or_else(|| err("ERR Invalid TIME option argument for XCLAIM"))?;
        } else if eq_ignore_case(opt, "retrycount") && more {
            j += 1;
            retry = parse_i64(args.get(j))
                .ok_or_else(|| err("ERR Invalid RETRYCOUNT option argument for XCLAIM"))?;
        } else if eq_ignore_case(opt, "lastid") && more {
            j += 1;
            let p = parse_id_arg(args.get(j), 0, true, false).ok_or_else(|| err(INVALID_ID))?;
            last_id = Some(p.id);
        } else {
            return Err(vec![b"ERR Unrecognized XCLAIM option '", opt, b"'"]);
        }
        j += 1;
    }
    // A bogus delivery time (the client's clock ahead of ours) becomes now rather than an error.
    let delivery_time_ms = if delivery < 0 || delivery > now_i {
        now
    } else {
        delivery as u64
    };
    let retry = match u64::try_from(retry) {
        Ok(n) => Retry::Set(n),
        Err(_) if justid => Retry::Keep,
        Err(_) => Retry::Increment,
    };
    let opts = ClaimOptions {
        min_idle_ms: u64::try_from(min_idle).unwrap_or(0),
        delivery_time_ms,
        retry,
        force,
    };
    Ok(Claim {
        ids,
        opts,
        justid,
        last_id,
    })
}

/// Replies claimed IDs, or their entries (a null for one that vanished).
fn reply_claimed(reply: &mut Reply<'_>, entries: &Entries, ids: &[StreamId], justid: bool) {
    reply.array_len(ids.len());
    for &id in ids {
        if justid {
            reply_stream_id(reply, id);
        } else {
            match entries.get(id) {
                Some(e) => reply_stream_entry(reply, &e),
                None => reply.null(),
            }
        }
    }
}

/// The stream's entries and group `group`, or `None` after replying XCLAIM's and XAUTOCLAIM's
/// NOGROUP error when the key or the group is missing.
fn group_of<'s>(
    s: Option<&'s mut Stream>,
    reply: &mut Reply<'_>,
    key: &[u8],
    group: &[u8],
) -> Option<(&'s Entries, &'s mut ConsumerGroup)> {
    match s {
        Some(Stream { entries, groups }) => match groups.get_mut(group) {
            Some(g) => Some((&*entries, g)),
            None => {
                no_key_or_group(reply, key, group, "");
                None
            }
        },
        None => {
            no_key_or_group(reply, key, group, "");
            None
        }
    }
}

/// `XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms] [RETRYCOUNT n]
/// [FORCE] [JUSTID] [LASTID id]`
pub(super) fn xclaim(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (key, group, consumer) = (args.get(1), args.get(2), args.get(3));
    let now = ctx.now_ms;
    let r = update_stream_with(ctx, key, true, |s, reply| {
        let Some((entries, g)) = group_of(s, reply, key, group) else {
            return Write::Keep(());
        };
        let c = match parse_claim(args, now) {
            Ok(c) => c,
            Err(e) => {
                error_fmt(reply, &e);
                return Write::Keep(());
            }
        };
        let mut changed = false;
        if let Some(last) = c.last_id
            && last > g.last_id
        {
            g.last_id = last;
            changed = true;
        }
        let pending_before = g.pel().len();
        let claimed = g.claim(consumer, &c.ids, c.opts, now, |id| {
            entries.get(id).is_some()
        });
        changed |= !claimed.is_empty() || g.pel().len() != pending_before;
        reply_claimed(reply, entries, &claimed, c.justid);
        wrote(changed, ())
    });
    if r.is_err() {
        ctx.wrong_type();
    }
}

/// XAUTOCLAIM's min-idle-time, start, COUNT and JUSTID, parsed in Redis's order; `None` once
/// the error is replied.
fn parse_autoclaim(ctx: &mut Ctx<'_>, args: Args<'_>) -> Option<(u64, StreamId, usize, bool)> {
    let Some(min_idle) = parse_i64(args.get(4)) else {
        ctx.reply
            .error("ERR Invalid min-idle-time argument for XAUTOCLAIM");
        return None;
    };
    let (mut start, exclusive) = parse_interval_id_or_reply(ctx, args.get(5), 0)?;
    if exclusive {
        let Some(n) = start.next() else {
            ctx.reply.error("ERR invalid start ID for the interval");
            return None;
        };
        start = n;
    }
    // Redis's bound keeps `count * max(sizeof(streamID), attempts factor)` within a long.
    const MAX_COUNT: i64 = i64::MAX / 16;
    let (mut count, mut justid) = (100usize, false);
    let mut j = 6;
    while j < args.len() {
        let more = j + 1 < args.len();
        if eq_ignore_case(args.get(j), "count") && more {
            match parse_i64(args.get(j + 1)) {
                Some(n) if (1..=MAX_COUNT).contains(&n) => count = n as usize,
                _ => {
                    ctx.reply.error("ERR COUNT must be > 0");
                    return None;
                }
            }
            j += 1;
        } else if eq_ignore_case(args.get(j), "justid") {
            justid = true;
        } else {
            ctx.syntax_error();
            return None;
        }
        j += 1;
    }
    Some((u64::try_from(min_idle).unwrap_or(0), start, count, justid))
}

/// `XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]`: `[cursor,
/// claimed, deleted IDs]`.
pub(super) fn xautoclaim(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some((min_idle, start, count, justid)) = parse_autoclaim(ctx, args) else {
        // Redis looked the key up before it parsed: the lookup still counts.
        let (db, now) = (ctx.client.db, ctx.now_ms);
        match ctx.store.read_value(db, args.get(1), now, |_| ()) {
            Some(()) => ctx.hit(),
            None => ctx.miss(args.get(1)),
        }
        return;
    };
    let (key, group, consumer) = (args.get(1), args.get(2), args.get(3));
    let now = ctx.now_ms;
    let r = update_stream_with(ctx, key, true, |s, reply| {
        let Some((entries, g)) = group_of(s, reply, key, group) else {
            return Write::Keep(());
        };
        if count.saturating_mul(16) >= TRANSIENT_LIMIT {
            reply.error(
                "ERR Insufficient memory, failed allocating transient memory, COUNT too high.",
            );
            return Write::Keep(());
        }
        let exists = |id| entries.get(id).is_some();
        let out = g.autoclaim(consumer, min_idle, start, count, justid, now, exists);
        reply.array_len(3);
        reply_stream_id(reply, out.next);
        reply_claimed(reply, entries, &out.claimed, justid);
        reply.array_len(out.deleted.len());
        for &id in &out.deleted {
            reply_stream_id(reply, id);
        }
        wrote(!out.claimed.is_empty() || !out.deleted.is_empty(), ())
    });
    if r.is_err() {
        ctx.wrong_type();
    }
}
