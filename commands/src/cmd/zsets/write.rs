//! ZADD ZINCRBY ZREM ZREMRANGEBY* ZPOPMIN ZPOPMAX ZMPOP.

use ferrite_collections::{
    Error, LexRange, ScoreRange, SortedSet, ZAddFlags, ZAddOutcome, parse_lex_range,
    parse_score_range,
};

use super::{WrongType, notify_popped, parse_numkeys, parse_score, update_zset};
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::notify::flags;

/// Replies WRONGTYPE for an `Err`, returns the value otherwise.
#[inline]
pub(super) fn checked<R>(ctx: &mut Ctx<'_>, r: Result<R, WrongType>) -> Option<R> {
    match r {
        Ok(v) => Some(v),
        Err(WrongType) => {
            ctx.wrong_type();
            None
        }
    }
}

/// Replies `-ERR <collections error>`.
#[cold]
pub(super) fn error(ctx: &mut Ctx<'_>, e: Error) {
    let mut msg = String::with_capacity(64);
    msg.push_str("ERR ");
    msg.push_str(&e.to_string());
    ctx.reply.error(&msg);
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`
pub(crate) fn zadd(ctx: &mut Ctx<'_>, args: Args<'_>) {
    zadd_generic(ctx, args, false);
}

/// `ZINCRBY key increment member`
pub(crate) fn zincrby(ctx: &mut Ctx<'_>, args: Args<'_>) {
    zadd_generic(ctx, args, true);
}

/// Redis's `zaddGenericCommand`: options, then pairs, then the scores are all parsed before the
/// key is looked at.
fn zadd_generic(ctx: &mut Ctx<'_>, args: Args<'_>, incr_command: bool) {
    let mut flags = ZAddFlags {
        incr: incr_command,
        ..ZAddFlags::default()
    };
    let mut i = 2;
    if !incr_command {
        while let Some(a) = args.try_get(i) {
            if eq_ignore_case(a, "nx") {
                flags.nx = true;
            } else if eq_ignore_case(a, "xx") {
                flags.xx = true;
            } else if eq_ignore_case(a, "ch") {
                flags.ch = true;
            } else if eq_ignore_case(a, "incr") {
                flags.incr = true;
            } else if eq_ignore_case(a, "gt") {
                flags.gt = true;
            } else if eq_ignore_case(a, "lt") {
                flags.lt = true;
            } else {
                break;
            }
            i += 1;
        }
    }
    let elements = args.len() - i;
    if elements == 0 || !elements.is_multiple_of(2) {
        return ctx.syntax_error();
    }
    if let Err(e) = flags.validate(elements / 2) {
        return error(ctx, e);
    }
    let mut pairs: Vec<(f64, &[u8])> = Vec::with_capacity(elements / 2);
    for p in 0..elements / 2 {
        let Some(score) = parse_score(args.get(i + 2 * p)) else {
            return ctx.not_float();
        };
        pairs.push((score, args.get(i + 2 * p + 1)));
    }
    // Redis raises the event for any change, even of a ZADD that then fails.
    let mut touched = false;
    let (r, _) = update_zset(ctx, args.get(1), |z| {
        touched = false;
        let mut counted = 0i64;
        let mut changed = false;
        let mut last = None;
        for &(score, member) in &pairs {
            match z.add(member, score, flags) {
                Ok(outcome) => {
                    changed |= matches!(outcome, ZAddOutcome::Added(_) | ZAddOutcome::Updated(_));
                    counted += i64::from(outcome.counts(flags.ch));
                    last = Some(outcome);
                }
                Err(e) => {
                    touched = changed;
                    return (Err(e), changed);
                }
            }
        }
        touched = changed;
        (Ok((counted, last)), changed)
    });
    match checked(ctx, r) {
        Some(Ok((_, last))) if flags.incr => match last.and_then(|o| o.score()) {
            Some(s) => ctx.reply.double(s),
            None => ctx.reply.null(),
        },
        Some(Ok((n, _))) => ctx.reply.int(n),
        Some(Err(e)) => error(ctx, e),
        None => {}
    }
    if touched {
        ctx.notify(
            flags::ZSET,
            if flags.incr { "zincr" } else { "zadd" },
            args.get(1),
        );
    }
}

/// `ZREM key member [member ...]`
pub(crate) fn zrem(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (r, emptied) = update_zset(ctx, args.get(1), |z| {
        let n = args.iter_from(2).filter(|m| z.remove(m)).count();
        (n, n > 0)
    });
    if let Some(n) = checked(ctx, r) {
        if n > 0 {
            ctx.notify(flags::ZSET, "zrem", args.get(1));
            if emptied {
                ctx.notify(flags::GENERIC, "del", args.get(1));
            }
        }
        ctx.reply.int(n as i64);
    }
}

/// Which ZREMRANGEBY* range.
enum RemRange {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

fn zremrange(ctx: &mut Ctx<'_>, args: Args<'_>, range: RemRange) {
    let (r, emptied) = update_zset(ctx, args.get(1), |z: &mut SortedSet| {
        let n = match &range {
            RemRange::Rank(a, b) => z.remove_range_by_rank(*a, *b),
            RemRange::Score(r) => z.remove_range_by_score(r),
            RemRange::Lex(r) => z.remove_range_by_lex(r),
        };
        (n, n > 0)
    });
    if let Some(n) = checked(ctx, r) {
        if n > 0 {
            let event = match range {
                RemRange::Rank(..) => "zremrangebyrank",
                RemRange::Score(_) => "zremrangebyscore",
                RemRange::Lex(_) => "zremrangebylex",
            };
            ctx.notify(flags::ZSET, event, args.get(1));
            if emptied {
                ctx.notify(flags::GENERIC, "del", args.get(1));
            }
        }
        ctx.reply.int(n as i64);
    }
}

/// `ZREMRANGEBYRANK key start stop`
pub(crate) fn zremrangebyrank(ctx: &mut Ctx<'_>, args: Args<'_>) {
    match (parse_i64(args.get(2)), parse_i64(args.get(3))) {
        (Some(a), Some(b)) => zremrange(ctx, args, RemRange::Rank(a, b)),
        _ => ctx.not_integer(),
    }
}

/// `ZREMRANGEBYSCORE key min max`
pub(crate) fn zremrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) {
    match parse_score_range(args.get(2), args.get(3)) {
        Ok(r) => zremrange(ctx, args, RemRange::Score(r)),
        Err(e) => error(ctx, e),
    }
}

/// `ZREMRANGEBYLEX key min max`
pub(crate) fn zremrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) {
    match parse_lex_range(args.get(2), args.get(3)) {
        Ok(r) => zremrange(ctx, args, RemRange::Lex(r)),
        Err(e) => error(ctx, e),
    }
}

/// Members popped, with their scores, in pop order.
type Popped = Vec<(Box<[u8]>, f64)>;

/// Pops up to `count` from `key` (`Ok(None)` when it is missing); says whether it emptied
/// the key.
fn pop_from(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    max: bool,
    count: u64,
) -> (Result<Option<Popped>, WrongType>, bool) {
    update_zset(ctx, key, |z| {
        if z.is_empty() {
            return (None, false);
        }
        let popped = z.pop(max, count);
        let changed = !popped.is_empty();
        (Some(popped), changed)
    })
}

/// `ZPOPMIN key [count]` / `ZPOPMAX key [count]`.
fn zpop(ctx: &mut Ctx<'_>, args: Args<'_>, max: bool) {
    let count = match args.len() {
        2 => None,
        3 => match parse_i64(args.get(2)) {
            Some(c) if c >= 0 => Some(c.unsigned_abs()),
            _ => {
                return ctx
                    .reply
                    .error("ERR value is out of range, must be positive");
            }
        },
        _ => return ctx.syntax_error(),
    };
    let (r, emptied) = pop_from(ctx, args.get(1), max, count.unwrap_or(1));
    let Some(popped) = checked(ctx, r) else {
        return;
    };
    let popped = popped.unwrap_or_default();
    let reply = &mut ctx.reply;
    if count.is_some() && reply.is_resp3() {
        reply.array_len(popped.len());
        for (m, s) in &popped {
            reply.array_len(2);
            reply.bulk(m);
            reply.double(*s);
        }
    } else {
        reply.array_len(popped.len() * 2);
        for (m, s) in &popped {
            reply.bulk(m);
            reply.double(*s);
        }
    }
    if !popped.is_empty() {
        notify_popped(ctx, args.get(1), max, emptied);
    }
}

/// `ZPOPMIN key [count]`
pub(crate) fn zpopmin(ctx: &mut Ctx<'_>, args: Args<'_>) {
    zpop(ctx, args, false);
}

/// `ZPOPMAX key [count]`
pub(crate) fn zpopmax(ctx: &mut Ctx<'_>, args: Args<'_>) {
    zpop(ctx, args, true);
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]` (EXCLUSIVE: the first non-empty key is
/// found and popped atomically).
pub(crate) fn zmpop(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(numkeys) = parse_numkeys(args.get(1)) else {
        return ctx.reply.error("ERR numkeys should be greater than 0");
    };
    let where_at = numkeys.saturating_add(2);
    let max = match args.try_get(where_at) {
        Some(w) if eq_ignore_case(w, "min") => false,
        Some(w) if eq_ignore_case(w, "max") => true,
        _ => return ctx.syntax_error(),
    };
    let mut count = 1u64;
    match (args.try_get(where_at + 1), args.try_get(where_at + 2)) {
        (None, _) => {}
        (Some(opt), Some(v)) if eq_ignore_case(opt, "count") && args.len() == where_at + 3 => {
            match parse_i64(v) {
                Some(c) if c >= 1 => count = c.unsigned_abs(),
                _ => {
                    return ctx.reply.error("ERR count should be greater than 0");
                }
            }
        }
        _ => return ctx.syntax_error(),
    }
    for key in args.iter_from(2).take(numkeys) {
        let (r, emptied) = pop_from(ctx, key, max, count);
        match checked(ctx, r) {
            None => return,
            Some(None) => continue,
            Some(Some(popped)) => {
                let reply = &mut ctx.reply;
                reply.array_len(2);
                reply.bulk(key);
                reply.array_len(popped.len());
                for (m, s) in &popped {
                    reply.array_len(2);
                    reply.bulk(m);
                    reply.double(*s);
                }
                notify_popped(ctx, key, max, emptied);
                return;
            }
        }
    }
    ctx.reply.null_array();
}
