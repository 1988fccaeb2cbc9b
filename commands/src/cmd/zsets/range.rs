//! ZRANGE (BYSCORE BYLEX REV LIMIT WITHSCORES), ZRANGESTORE and the legacy ZREVRANGE,
//! Z[REV]RANGEBYSCORE, Z[REV]RANGEBYLEX, all through Redis's `zrangeGenericCommand` logic.

use ferrite_collections::{LexRange, ScoreRange, SortedSet, parse_lex_range, parse_score_range};

use super::write::{checked, error};
use super::{notify_stored, reply_pairs, store_zset, with_zset};
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;

/// How the range is given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Auto,
    Rank,
    Score,
    Lex,
}

/// A parsed range.
enum Range {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// A parsed ZRANGE-family request.
struct Request {
    range: Range,
    reverse: bool,
    withscores: bool,
    offset: i64,
    count: i64,
}

/// Parses from `first` (the key's position) on: `key min max [options]`. `by` and `rev` are
/// preset by the legacy commands, which then refuse BYSCORE/BYLEX/REV as syntax errors.
fn parse(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    first: usize,
    mut by: By,
    rev: Option<bool>,
    store: bool,
) -> Option<Request> {
    let mut reverse = rev;
    let mut withscores = false;
    let mut limit: Option<(i64, i64)> = None;
    let mut j = first + 3;
    while j < args.len() {
        let a = args.get(j);
        let left = args.len() - j - 1;
        if !store && eq_ignore_case(a, "withscores") {
            withscores = true;
        } else if eq_ignore_case(a, "limit") && left >= 2 {
            let (Some(o), Some(c)) = (parse_i64(args.get(j + 1)), parse_i64(args.get(j + 2)))
            else {
                ctx.not_integer();
                return None;
            };
            limit = Some((o, c));
            j += 2;
        } else if by == By::Auto && eq_ignore_case(a, "byscore") {
            by = By::Score;
        } else if by == By::Auto && eq_ignore_case(a, "bylex") {
            by = By::Lex;
        } else if reverse.is_none() && eq_ignore_case(a, "rev") {
            reverse = Some(true);
        } else {
            ctx.syntax_error();
            return None;
        }
        j += 1;
    }
    if by == By::Auto {
        by = By::Rank;
    }
    let reverse = reverse.unwrap_or(false);
    // Redis only looks at the count: `LIMIT <any> -1` passes (and is ignored) by rank.
    if limit.is_some_and(|(_, c)| c != -1) && by == By::Rank {
        ctx.reply.error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
        return None;
    }
    if withscores && by == By::Lex {
        ctx.reply
            .error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
        return None;
    }
    let (mut min, mut max) = (args.get(first + 1), args.get(first + 2));
    if reverse && by != By::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    let range = match by {
        By::Score => match parse_score_range(min, max) {
            Ok(r) => Range::Score(r),
            Err(e) => {
                error(ctx, e);
                return None;
            }
        },
        By::Lex => match parse_lex_range(min, max) {
            Ok(r) => Range::Lex(r),
            Err(e) => {
                error(ctx, e);
                return None;
            }
        },
        _ => match (parse_i64(min), parse_i64(max)) {
            (Some(a), Some(b)) => Range::Rank(a, b),
            _ => {
                ctx.not_integer();
                return None;
            }
        },
    };
    let (offset, count) = limit.unwrap_or((0, -1));
    Some(Request {
        range,
        reverse,
        withscores,
        offset,
        count,
    })
}

/// The members the request selects, in reply order.
fn select<'z>(z: &'z SortedSet, req: &Request) -> Vec<(&'z [u8], f64)> {
    match &req.range {
        Range::Rank(a, b) => z.range_by_rank(*a, *b, req.reverse),
        Range::Score(r) => z.range_by_score(r, req.reverse, req.offset, req.count),
        Range::Lex(r) => z.range_by_lex(r, req.reverse, req.offset, req.count),
    }
}

/// Runs a parsed read request against `key`.
fn run(ctx: &mut Ctx<'_>, key: &[u8], req: &Request) {
    let r = with_zset(ctx, key, |z, reply| match z {
        Some(z) => reply_pairs(reply, select(z, req).into_iter(), req.withscores),
        None => reply.array_len(0),
    });
    checked(ctx, r);
}

fn generic(ctx: &mut Ctx<'_>, args: Args<'_>, by: By, rev: Option<bool>) {
    if let Some(req) = parse(ctx, args, 1, by, rev, false) {
        run(ctx, args.get(1), &req);
    }
}

/// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`
pub(crate) fn zrange(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, By::Auto, None);
}

/// `ZREVRANGE key start stop [WITHSCORES]`
pub(crate) fn zrevrange(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, By::Rank, Some(true));
}

/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`
pub(crate) fn zrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, By::Score, Some(false));
}

/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`
pub(crate) fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, By::Score, Some(true));
}

/// `ZRANGEBYLEX key min max [LIMIT offset count]`
pub(crate) fn zrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, By::Lex, Some(false));
}

/// `ZREVRANGEBYLEX key max min [LIMIT offset count]`
pub(crate) fn zrevrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, By::Lex, Some(true));
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]` (EXCLUSIVE).
pub(crate) fn zrangestore(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(req) = parse(ctx, args, 2, By::Auto, None, true) else {
        return;
    };
    // The source is read as ZRANGE reads it (`lookupKeyRead`: counted, a miss announced).
    let r = with_zset(ctx, args.get(2), |z, _| {
        z.map(|z| select(z, &req).into_iter().collect::<SortedSet>())
    });
    let Some(result) = checked(ctx, r) else {
        return;
    };
    let stored = store_zset(ctx, args.get(1), result.unwrap_or_default());
    ctx.reply.int(stored.0 as i64);
    notify_stored(ctx, args.get(1), "zrangestore", stored);
}
