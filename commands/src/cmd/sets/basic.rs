//! The single-key set commands, SMOVE and SSCAN.

use std::borrow::Cow;

use ferrite_collections::Limits;
use ferrite_hybridlog::{ObjectWrite, ValueKind, ValueMut};

use super::scan::{parse_options, reply_header};
use super::{WrongType, update_set, with_rng, with_set};
use crate::args::{Args, parse_i64};
use crate::ctx::Ctx;
use crate::notify::flags;
use crate::objects::Collection;

/// Replies WRONGTYPE for an `Err`, returns the value otherwise.
#[inline]
fn checked<R>(ctx: &mut Ctx<'_>, r: Result<R, WrongType>) -> Option<R> {
    match r {
        Ok(v) => Some(v),
        Err(WrongType) => {
            ctx.wrong_type();
            None
        }
    }
}

/// `SADD key member [member ...]`
pub(crate) fn sadd(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (r, _) = update_set(ctx, args.get(1), |s| {
        let added = args.iter_from(2).filter(|m| s.insert(m)).count();
        (added, added > 0)
    });
    if let Some(n) = checked(ctx, r) {
        if n > 0 {
            ctx.notify(flags::SET, "sadd", args.get(1));
        }
        ctx.reply.int(n as i64);
    }
}

/// `SREM key member [member ...]`
pub(crate) fn srem(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (r, emptied) = update_set(ctx, args.get(1), |s| {
        let removed = args.iter_from(2).filter(|m| s.remove(m)).count();
        (removed, removed > 0)
    });
    if let Some(n) = checked(ctx, r) {
        if n > 0 {
            ctx.notify(flags::SET, "srem", args.get(1));
            if emptied {
                ctx.notify(flags::GENERIC, "del", args.get(1));
            }
        }
        ctx.reply.int(n as i64);
    }
}

/// `SCARD key`
pub(crate) fn scard(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let r = with_set(ctx, args.get(1), true, |s, reply| {
        reply.int(s.map_or(0, |s| s.len() as i64));
    });
    checked(ctx, r);
}

/// `SISMEMBER key member`
pub(crate) fn sismember(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let member = args.get(2);
    let r = with_set(ctx, args.get(1), true, |s, reply| {
        reply.int(i64::from(s.is_some_and(|s| s.contains(member))));
    });
    checked(ctx, r);
}

/// `SMISMEMBER key member [member ...]`
pub(crate) fn smismember(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let r = with_set(ctx, args.get(1), true, |s, reply| {
        reply.array_len(args.len() - 2);
        for m in args.iter_from(2) {
            reply.int(i64::from(s.is_some_and(|s| s.contains(m))));
        }
    });
    checked(ctx, r);
}

/// `SMEMBERS key`: ascending integers for an intset, as Redis.
pub(crate) fn smembers(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let r = with_set(ctx, args.get(1), true, |s, reply| match s {
        Some(s) => {
            reply.set_len(s.len());
            for m in s.iter() {
                reply.bulk(&m);
            }
        }
        None => reply.set_len(0),
    });
    checked(ctx, r);
}

/// `SPOP key [count]`
pub(crate) fn spop(ctx: &mut Ctx<'_>, args: Args<'_>) {
    match args.len() {
        2 => {}
        3 => return spop_count(ctx, args),
        _ => return ctx.syntax_error(),
    }
    let (r, emptied) = update_set(ctx, args.get(1), |s| {
        let popped = with_rng(|rng| s.pop(rng));
        let changed = popped.is_some();
        (popped, changed)
    });
    match checked(ctx, r) {
        Some(Some(m)) => {
            ctx.notify(flags::SET, "spop", args.get(1));
            ctx.reply.bulk(&m);
            if emptied {
                ctx.notify(flags::GENERIC, "del", args.get(1));
            }
        }
        Some(None) => ctx.reply.null(),
        None => {}
    }
}

/// `SPOP key count`: a RESP3 set of up to `count` distinct members, removed.
fn spop_count(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(count) = parse_i64(args.get(2)).and_then(|c| u64::try_from(c).ok()) else {
        ctx.reply
            .error("ERR value is out of range, must be positive");
        return;
    };
    let (r, emptied) = update_set(ctx, args.get(1), |s| {
        let popped = with_rng(|rng| s.pop_many(count, rng));
        let changed = !popped.is_empty();
        (popped, changed)
    });
    if let Some(popped) = checked(ctx, r) {
        if !popped.is_empty() {
            ctx.notify(flags::SET, "spop", args.get(1));
        }
        ctx.reply.set_len(popped.len());
        for m in &popped {
            ctx.reply.bulk(m);
        }
        if emptied {
            ctx.notify(flags::GENERIC, "del", args.get(1));
        }
    }
}

/// `SRANDMEMBER key [count]`
pub(crate) fn srandmember(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let count = match args.len() {
        2 => None,
        3 => match parse_i64(args.get(2)) {
            Some(i64::MIN) => {
                ctx.reply.error(
                    "ERR value is out of range, value must between -9223372036854775807 and \
                     9223372036854775807",
                );
                return;
            }
            Some(c) => Some(c),
            None => return ctx.not_integer(),
        },
        _ => return ctx.syntax_error(),
    };
    let r = with_set(ctx, args.get(1), true, |s, reply| {
        with_rng(|rng| match (s, count) {
            (None, None) => reply.null(),
            (Some(s), None) => match s.random(rng) {
                Some(m) => reply.bulk(&m),
                None => reply.null(),
            },
            (None, Some(_)) => reply.array_len(0),
            (Some(s), Some(c)) if c >= 0 => {
                let picks = s.random_distinct(c.unsigned_abs(), rng);
                reply.array_len(picks.len());
                for m in &picks {
                    reply.bulk(m);
                }
            }
            (Some(s), Some(c)) => {
                let n = c.unsigned_abs();
                reply.array_len(usize::try_from(n).unwrap_or(usize::MAX));
                for m in s.random_repeated(n, rng) {
                    reply.bulk(&m);
                }
            }
        })
    });
    checked(ctx, r);
}

/// What SMOVE found at a key.
enum Found {
    Missing,
    Set,
    Other,
}

/// The kind of `key` for SMOVE's checks.
fn probe(ctx: &mut Ctx<'_>, key: &[u8]) -> Found {
    ctx.store
        .read_value(ctx.client.db, key, ctx.now_ms, |e| {
            if e.kind == ValueKind::Set {
                Found::Set
            } else {
                Found::Other
            }
        })
        .unwrap_or(Found::Missing)
}

/// `SMOVE source destination member` (EXCLUSIVE: both keys change together).
pub(crate) fn smove(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (src, dst, member) = (args.get(1), args.get(2), args.get(3));
    match (probe(ctx, src), probe(ctx, dst)) {
        (Found::Missing, _) => return ctx.reply.int(0),
        (Found::Other, _) | (_, Found::Other) => return ctx.wrong_type(),
        _ => {}
    }
    if src == dst {
        let r = with_set(ctx, src, false, |s, reply| {
            reply.int(i64::from(s.is_some_and(|s| s.contains(member))));
        });
        checked(ctx, r);
        return;
    }
    let removed = ctx.store.rmw_value(ctx.client.db, src, ctx.now_ms, |e| {
        let Some(e) = e else {
            return ObjectWrite::Keep(None);
        };
        let ValueMut::Object(o) = e.value else {
            return ObjectWrite::Keep(None);
        };
        let Some(Collection::Set(s)) = Collection::of_mut(o) else {
            return ObjectWrite::Keep(None);
        };
        if !s.remove(member) {
            ObjectWrite::Keep(None)
        } else if s.is_empty() {
            ObjectWrite::Delete(Some(true))
        } else {
            ObjectWrite::Updated(Some(false))
        }
    });
    let Some(emptied) = removed else {
        return ctx.reply.int(0);
    };
    ctx.notify(flags::SET, "srem", src);
    if emptied {
        ctx.notify(flags::GENERIC, "del", src);
    }
    let (r, _) = update_set(ctx, dst, |s| {
        let added = s.insert(member);
        (added, added)
    });
    if let Some(added) = checked(ctx, r) {
        if added {
            ctx.notify(flags::SET, "sadd", dst);
        }
        ctx.reply.int(1);
    }
}

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`
pub(crate) fn sscan(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(cursor) = crate::args::parse_scan_cursor(args.get(2)) else {
        ctx.reply.error("ERR invalid cursor");
        return;
    };
    // Redis replies to a missing key before it looks at the options.
    let exists = with_set(ctx, args.get(1), true, |s, reply| {
        if s.is_none() {
            reply_header(reply, 0, 0);
        }
        s.is_some()
    });
    match checked(ctx, exists) {
        Some(true) => {}
        _ => return,
    }
    let Some(opts) = parse_options(ctx, args, 3) else {
        return;
    };
    let limits = Limits::current();
    let r = with_set(ctx, args.get(1), false, |s, reply| {
        let (next, members): (u64, Vec<Cow<'_, [u8]>>) = match s {
            Some(s) => s.scan(cursor, opts.count, &limits),
            None => (0, Vec::new()),
        };
        let n = members.iter().filter(|m| opts.matches(m)).count();
        reply_header(reply, next, n);
        for m in members.iter().filter(|m| opts.matches(m)) {
            reply.bulk(m);
        }
    });
    checked(ctx, r);
}
