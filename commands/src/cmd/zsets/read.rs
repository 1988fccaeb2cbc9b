//! ZCARD ZSCORE ZMSCORE ZRANK ZREVRANK ZCOUNT ZLEXCOUNT ZRANDMEMBER ZSCAN.

use ferrite_collections::{Limits, parse_lex_range, parse_score_range};

use super::write::{checked, error};
use super::{reply_pairs, with_zset};
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::cmd::sets::scan::{parse_options, reply_header};
use crate::cmd::sets::with_rng;
use crate::ctx::Ctx;
use crate::resp::reply::format_double_g17;

/// `ZCARD key`
pub(crate) fn zcard(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let r = with_zset(ctx, args.get(1), |z, reply| {
        reply.int(z.map_or(0, |z| z.len() as i64));
    });
    checked(ctx, r);
}

/// `ZSCORE key member`
pub(crate) fn zscore(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let member = args.get(2);
    let r = with_zset(ctx, args.get(1), |z, reply| {
        match z.and_then(|z| z.score(member)) {
            Some(s) => reply.double(s),
            None => reply.null(),
        }
    });
    checked(ctx, r);
}

/// `ZMSCORE key member [member ...]`
pub(crate) fn zmscore(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let r = with_zset(ctx, args.get(1), |z, reply| {
        reply.array_len(args.len() - 2);
        for m in args.iter_from(2) {
            match z.and_then(|z| z.score(m)) {
                Some(s) => reply.double(s),
                None => reply.null(),
            }
        }
    });
    checked(ctx, r);
}

fn rank(ctx: &mut Ctx<'_>, args: Args<'_>, reverse: bool) {
    let member = args.get(2);
    let r = with_zset(ctx, args.get(1), |z, reply| {
        match z.and_then(|z| z.rank(member, reverse)) {
            Some(r) => reply.int(r as i64),
            None => reply.null(),
        }
    });
    checked(ctx, r);
}

/// `ZRANK key member`
pub(crate) fn zrank(ctx: &mut Ctx<'_>, args: Args<'_>) {
    rank(ctx, args, false);
}

/// `ZREVRANK key member`
pub(crate) fn zrevrank(ctx: &mut Ctx<'_>, args: Args<'_>) {
    rank(ctx, args, true);
}

/// `ZCOUNT key min max`
pub(crate) fn zcount(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let range = match parse_score_range(args.get(2), args.get(3)) {
        Ok(r) => r,
        Err(e) => return error(ctx, e),
    };
    let r = with_zset(ctx, args.get(1), |z, reply| {
        reply.int(z.map_or(0, |z| z.count_in_score(&range) as i64));
    });
    checked(ctx, r);
}

/// `ZLEXCOUNT key min max`
pub(crate) fn zlexcount(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let range = match parse_lex_range(args.get(2), args.get(3)) {
        Ok(r) => r,
        Err(e) => return error(ctx, e),
    };
    let r = with_zset(ctx, args.get(1), |z, reply| {
        reply.int(z.map_or(0, |z| z.count_in_lex(&range) as i64));
    });
    checked(ctx, r);
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`
pub(crate) fn zrandmember(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mut withscores = false;
    let count = match args.try_get(2) {
        None => None,
        Some(c) => {
            let c = match parse_i64(c) {
                Some(i64::MIN) => {
                    return ctx.reply.error(
                        "ERR value is out of range, value must between -9223372036854775807 \
                         and 9223372036854775807",
                    );
                }
                Some(c) => c,
                None => return ctx.not_integer(),
            };
            match args.try_get(3) {
                None => {}
                Some(w) if args.len() == 4 && eq_ignore_case(w, "withscores") => {
                    withscores = true;
                    if !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&c) {
                        return ctx.reply.error("ERR value is out of range");
                    }
                }
                Some(_) => return ctx.syntax_error(),
            }
            Some(c)
        }
    };
    let r = with_zset(ctx, args.get(1), |z, reply| {
        with_rng(|rng| match (z, count) {
            (None, None) => reply.null(),
            (Some(z), None) => match z.random(rng) {
                Some((m, _)) => reply.bulk(m),
                None => reply.null(),
            },
            (None, Some(_)) => reply.array_len(0),
            (Some(z), Some(c)) if c >= 0 => {
                let picks = z.random_distinct(c.unsigned_abs(), rng);
                reply_pairs(reply, picks.into_iter(), withscores);
            }
            (Some(z), Some(c)) => {
                let n = c.unsigned_abs();
                let len = usize::try_from(n).unwrap_or(usize::MAX);
                let resp3 = reply.is_resp3();
                if withscores && !resp3 {
                    reply.array_len(len.saturating_mul(2));
                } else {
                    reply.array_len(len);
                }
                for (m, s) in z.random_repeated(n, rng) {
                    if withscores && resp3 {
                        reply.array_len(2);
                    }
                    reply.bulk(m);
                    if withscores {
                        reply.double(s);
                    }
                }
            }
        })
    });
    checked(ctx, r);
}

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: scores as bulk strings in both protocols,
/// as Redis.
pub(crate) fn zscan(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(cursor) = crate::args::parse_scan_cursor(args.get(2)) else {
        ctx.reply.error("ERR invalid cursor");
        return;
    };
    // Redis replies to a missing key before it looks at the options.
    let exists = with_zset(ctx, args.get(1), |z, reply| {
        if z.is_none() {
            reply_header(reply, 0, 0);
        }
        z.is_some()
    });
    match checked(ctx, exists) {
        Some(true) => {}
        _ => return,
    }
    let Some(opts) = parse_options(ctx, args, 3) else {
        return;
    };
    let limits = Limits::current();
    let r = super::with_zset_nostats(ctx, args.get(1), |z| {
        let (next, pairs) = match z {
            Some(z) => z.scan(cursor, opts.count, &limits),
            None => (0, Vec::new()),
        };
        let kept: Vec<(Box<[u8]>, String)> = pairs
            .into_iter()
            .filter(|(m, _)| opts.matches(m))
            .map(|(m, s)| (Box::from(m), format_double_g17(s)))
            .collect();
        (next, kept)
    });
    if let Some((next, kept)) = checked(ctx, r) {
        reply_header(&mut ctx.reply, next, kept.len() * 2);
        for (m, s) in &kept {
            ctx.reply.bulk(m);
            ctx.reply.bulk(s.as_bytes());
        }
    }
}
