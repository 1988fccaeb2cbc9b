//! BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH.

use ferrite_collections::End;
use ferrite_hybridlog::{ObjectWrite, ValueKind, ValueMut};

use crate::args::{Args, eq_ignore_case};
use crate::blocking::{Attempt, Denied, Want, serve_or_block};
use crate::ctx::Ctx;
use crate::objects::Collection;

use super::{parse_mpop, parse_mpop_count, timeout_or_reply};

/// `BLPOP key [key ...] timeout`
pub(super) fn blpop(ctx: &mut Ctx<'_>, args: Args<'_>) {
    bpop(ctx, args, End::Left);
}

/// `BRPOP key [key ...] timeout`
pub(super) fn brpop(ctx: &mut Ctx<'_>, args: Args<'_>) {
    bpop(ctx, args, End::Right);
}

/// Redis's `blockingPopGenericCommand` without a count: the timeout is checked first, then the
/// keys in order; the first non-empty list is popped and a key of another type is an error.
fn bpop(ctx: &mut Ctx<'_>, args: Args<'_>, end: End) {
    let last = args.len() - 1;
    let Some(timeout) = timeout_or_reply(ctx, args.get(last)) else {
        return;
    };
    let keys = args.skip(1);
    let n = last - 1;
    serve_or_block(
        ctx,
        keys.iter_from(0).take(n),
        Want::List,
        timeout,
        Denied::NullArray,
        |ctx| pop_first(ctx, keys.iter_from(0).take(n), end, None),
    );
}

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`: the timeout is parsed after
/// the other arguments, as Redis's `lmpopGenericCommand` does.
pub(super) fn blmpop(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(mut m) = parse_mpop(ctx, args, 2) else {
        return;
    };
    let Some(end) = parse_end(args.get(m.where_at)) else {
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
        Want::List,
        timeout,
        Denied::NullArray,
        |ctx| pop_first(ctx, keys.iter_from(0).take(n), end, Some(count)),
    );
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout`
pub(super) fn blmove(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (Some(from), Some(to)) = (parse_end(args.get(3)), parse_end(args.get(4))) else {
        ctx.syntax_error();
        return;
    };
    let Some(timeout) = timeout_or_reply(ctx, args.get(5)) else {
        return;
    };
    bmove(ctx, args.get(1), args.get(2), from, to, timeout);
}

/// `BRPOPLPUSH source destination timeout`
pub(super) fn brpoplpush(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(timeout) = timeout_or_reply(ctx, args.get(3)) else {
        return;
    };
    bmove(
        ctx,
        args.get(1),
        args.get(2),
        End::Right,
        End::Left,
        timeout,
    );
}

/// Redis's `blmoveGenericCommand`: a missing source blocks (whatever the destination holds);
/// a present one is moved by LMOVE's own logic, which checks the destination's type.
fn bmove(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from: End, to: End, timeout: i64) {
    let keys = std::iter::once(src);
    serve_or_block(ctx, keys, Want::List, timeout, Denied::Null, |ctx| {
        let db = ctx.client.db;
        match ctx.store.read_value(db, src, ctx.now_ms, |e| e.kind) {
            None => Attempt::Empty,
            Some(ValueKind::List) => {
                crate::cmd::lists::moves::move_element(ctx, src, dst, from, to);
                Attempt::Done
            }
            Some(_) => {
                ctx.wrong_type();
                Attempt::Done
            }
        }
    });
}

/// `LEFT` or `RIGHT`, case-insensitively.
fn parse_end(arg: &[u8]) -> Option<End> {
    if eq_ignore_case(arg, "left") {
        Some(End::Left)
    } else if eq_ignore_case(arg, "right") {
        Some(End::Right)
    } else {
        None
    }
}

/// What popping one key found.
enum Popped {
    Missing,
    WrongType,
    Items(Vec<Box<[u8]>>),
}

/// Pops from the first non-empty list of `keys` and replies: `[key, element]` without a count,
/// `[key, [elements]]` with one (BLMPOP). A key of another type met first is WRONGTYPE.
fn pop_first<'k>(
    ctx: &mut Ctx<'_>,
    keys: impl Iterator<Item = &'k [u8]>,
    end: End,
    count: Option<u64>,
) -> Attempt {
    let db = ctx.client.db;
    for key in keys {
        let mut emptied = false;
        let popped = ctx.store.rmw_value(db, key, ctx.now_ms, |e| {
            let Some(e) = e else {
                return ObjectWrite::Keep(Popped::Missing);
            };
            let l = match e.value {
                ValueMut::Object(o) => match Collection::of_mut(o) {
                    Some(Collection::List(l)) => l,
                    _ => return ObjectWrite::Keep(Popped::WrongType),
                },
                ValueMut::String(_) => return ObjectWrite::Keep(Popped::WrongType),
            };
            let items = l.pop_many(end, count.unwrap_or(1));
            emptied = l.is_empty();
            if items.is_empty() {
                ObjectWrite::Keep(Popped::Missing)
            } else if l.is_empty() {
                ObjectWrite::Delete(Popped::Items(items))
            } else {
                ObjectWrite::Updated(Popped::Items(items))
            }
        });
        match popped {
            Popped::Missing => {}
            Popped::WrongType => {
                ctx.wrong_type();
                return Attempt::Done;
            }
            Popped::Items(items) => {
                let reply = &mut ctx.reply;
                reply.array_len(2);
                reply.bulk(key);
                match count {
                    None => {
                        if let Some(v) = items.first() {
                            reply.bulk(v);
                        }
                    }
                    Some(_) => {
                        reply.array_len(items.len());
                        for v in &items {
                            reply.bulk(v);
                        }
                    }
                }
                crate::cmd::lists::notify_popped(ctx, key, end, emptied);
                return Attempt::Done;
            }
        }
    }
    Attempt::Empty
}
