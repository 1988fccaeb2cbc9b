//! LLEN, LRANGE, LINDEX, LPOS.

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;

use super::{Found, read_list};

/// `LLEN key`
pub(super) fn llen(ctx: &mut Ctx<'_>, args: Args<'_>) {
    match read_list(ctx, args.get(1), |l, r| {
        r.int(i64::try_from(l.len()).unwrap_or(i64::MAX))
    }) {
        Found::Yes => {}
        Found::Missing => ctx.reply.int(0),
        Found::WrongType => ctx.wrong_type(),
    }
}

/// `LRANGE key start stop`: the indexes are parsed before the key is looked up, as in Redis.
pub(super) fn lrange(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (Some(start), Some(stop)) = (parse_i64(args.get(2)), parse_i64(args.get(3))) else {
        ctx.not_integer();
        return;
    };
    match read_list(ctx, args.get(1), |l, r| {
        let items = l.range(start, stop);
        r.array_len(items.len());
        for v in items {
            r.bulk(v);
        }
    }) {
        Found::Yes => {}
        Found::Missing => ctx.reply.array_len(0),
        Found::WrongType => ctx.wrong_type(),
    }
}

/// `LINDEX key index`: Redis looks the key up before parsing the index, so a missing key with
/// a malformed index is a null, not an error.
pub(super) fn lindex(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let index = parse_i64(args.get(2));
    let mut bad_index = false;
    match read_list(ctx, args.get(1), |l, r| match index {
        None => bad_index = true,
        Some(i) => match l.get(i) {
            Some(v) => r.bulk(v),
            None => r.null(),
        },
    }) {
        Found::Yes if bad_index => ctx.not_integer(),
        Found::Yes => {}
        Found::Missing => ctx.reply.null(),
        Found::WrongType => ctx.wrong_type(),
    }
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`
pub(super) fn lpos(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mut rank: i64 = 1;
    let mut count: Option<u64> = None;
    let mut maxlen: u64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = args.get(j);
        let has_value = j + 1 < args.len();
        if eq_ignore_case(opt, "rank") && has_value {
            let Some(r) = parse_i64(args.get(j + 1)) else {
                ctx.not_integer();
                return;
            };
            if r == 0 {
                ctx.reply.error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                );
                return;
            }
            rank = r;
        } else if eq_ignore_case(opt, "count") && has_value {
            match parse_i64(args.get(j + 1)) {
                Some(c) if c >= 0 => count = Some(c.unsigned_abs()),
                _ => {
                    ctx.reply.error("ERR COUNT can't be negative");
                    return;
                }
            }
        } else if eq_ignore_case(opt, "maxlen") && has_value {
            match parse_i64(args.get(j + 1)) {
                Some(m) if m >= 0 => maxlen = m.unsigned_abs(),
                _ => {
                    ctx.reply.error("ERR MAXLEN can't be negative");
                    return;
                }
            }
        } else {
            ctx.syntax_error();
            return;
        }
        j += 2;
    }
    // Redis negates the rank in a C long: LONG_MIN stays LONG_MIN, so every match qualifies
    // from the tail and the COUNT limit never triggers (its arithmetic overflows too).
    let (rank, limit) = if rank == i64::MIN {
        (-1, if count.is_some() { 0 } else { 1 })
    } else {
        (rank, count.unwrap_or(1))
    };
    let value = args.get(2);
    match read_list(ctx, args.get(1), |l, r| {
        let Ok(found) = l.positions(value, rank, limit, maxlen) else {
            return;
        };
        if count.is_some() {
            r.array_len(found.len());
            for i in found {
                r.int(i64::try_from(i).unwrap_or(i64::MAX));
            }
        } else {
            match found.first() {
                Some(&i) => r.int(i64::try_from(i).unwrap_or(i64::MAX)),
                None => r.null(),
            }
        }
    }) {
        Found::Yes => {}
        Found::Missing if count.is_some() => ctx.reply.array_len(0),
        Found::Missing => ctx.reply.null(),
        Found::WrongType => ctx.wrong_type(),
    }
}
