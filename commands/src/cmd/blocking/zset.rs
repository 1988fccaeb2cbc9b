//! BZPOPMIN, BZPOPMAX, BZMPOP.

use crate::args::{Args, eq_ignore_case};
use crate::blocking::{Attempt, Denied, Want, serve_or_block};
use crate::cmd::zsets::{WrongType, update_zset};
use crate::ctx::Ctx;

use super::{parse_mpop, parse_mpop_count, timeout_or_reply};

/// `BZPOPMIN key [key ...] timeout`
pub(super) fn bzpopmin(ctx: &mut Ctx<'_>, args: Args<'_>) {
    bzpop(ctx, args, false);
}

/// `BZPOPMAX key [key ...] timeout`
pub(super) fn bzpopmax(ctx: &mut Ctx<'_>, args: Args<'_>) {
    bzpop(ctx, args, true);
}

/// Redis's `blockingGenericZpopCommand` without a count: `[key, member, score]`.
fn bzpop(ctx: &mut Ctx<'_>, args: Args<'_>, max: bool) {
    let last = args.len() - 1;
    let Some(timeout) = timeout_or_reply(ctx, args.get(last)) else {
        return;
    };
    let keys = args.skip(1);
    let n = last - 1;
    serve_or_block(
        ctx,
        keys.iter_from(0).take(n),
        Want::ZSet,
        timeout,
        Denied::NullArray,
        |ctx| zpop_first(ctx, keys.iter_from(0).take(n), max, None),
    );
}

/// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]`
pub(super) fn bzmpop(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(mut m) = parse_mpop(ctx, args, 2) else {
        return;
    };
    let w = args.get(m.where_at);
    let max = if eq_ignore_case(w, "min") {
        false
    } else if eq_ignore_case(w, "max") {
        true
    } else {
        ctx.syntax_error();
        return;
    };
    if parse_mpop_count(ctx, args, &mut m).is_none() {
        return;
    }
    let Some(timeout) = timeout_or_reply(ctx, args.get(1)) else {
        return;
    };
    let keys = args.skip(m.first_key);
    let (n, count) = (m.numkeys, m.count);
    serve_or_block(
        ctx,
        keys.iter_from(0).take(n),
        Want::ZSet,
        timeout,
        Denied::NullArray,
        |ctx| zpop_first(ctx, keys.iter_from(0).take(n), max, Some(count)),
    );
}

/// Pops from the first non-empty sorted set of `keys` and replies: `[key, member, score]`
/// without a count, `[key, [[member, score], ...]]` with one (BZMPOP). Scores are doubles in
/// RESP3, bulk strings in RESP2.
fn zpop_first<'k>(
    ctx: &mut Ctx<'_>,
    keys: impl Iterator<Item = &'k [u8]>,
    max: bool,
    count: Option<u64>,
) -> Attempt {
    for key in keys {
        let (popped, emptied) = update_zset(ctx, key, |z| {
            if z.is_empty() {
                return (Vec::new(), false);
            }
            let popped = z.pop(max, count.unwrap_or(1));
            let changed = !popped.is_empty();
            (popped, changed)
        });
        let popped = match popped {
            Err(WrongType) => {
                ctx.wrong_type();
                return Attempt::Done;
            }
            Ok(p) if p.is_empty() => continue,
            Ok(p) => p,
        };
        let reply = &mut ctx.reply;
        match count {
            None => {
                reply.array_len(3);
                reply.bulk(key);
                if let Some((m, s)) = popped.first() {
                    reply.bulk(m);
                    reply.double(*s);
                }
            }
            Some(_) => {
                reply.array_len(2);
                reply.bulk(key);
                reply.array_len(popped.len());
                for (m, s) in &popped {
                    reply.array_len(2);
                    reply.bulk(m);
                    reply.double(*s);
                }
            }
        }
        crate::cmd::zsets::notify_popped(ctx, key, max, emptied);
        return Attempt::Done;
    }
    Attempt::Empty
}
