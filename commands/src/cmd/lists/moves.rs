//! LMOVE, RPOPLPUSH, LMPOP: the list commands that involve several keys. They run with the
//! EXCLUSIVE flag, so the type checks and the writes below see one consistent keyspace.

use ferrite_collections::{End, List};
use ferrite_hybridlog::{NO_EXPIRY, ObjectWrite, ValueKind};

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::notify::flags;
use crate::objects::Collection;

use super::push_pop::{notify_popped, pushed_event};
use super::{Slot, parse_end, reply_elements, slot};

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`
pub(super) fn lmove(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (Some(from), Some(to)) = (parse_end(args.get(3)), parse_end(args.get(4))) else {
        ctx.syntax_error();
        return;
    };
    move_element(ctx, args.get(1), args.get(2), from, to);
}

/// `RPOPLPUSH source destination`
pub(super) fn rpoplpush(ctx: &mut Ctx<'_>, args: Args<'_>) {
    move_element(ctx, args.get(1), args.get(2), End::Right, End::Left);
}

/// The kind of a live key, without counting a keyspace hit (Redis's `lookupKeyWrite`).
fn kind_of(ctx: &mut Ctx<'_>, key: &[u8]) -> Option<ValueKind> {
    let db = ctx.client.db;
    ctx.store.read_value(db, key, ctx.now_ms, |e| e.kind)
}

/// Redis's `lmoveGenericCommand`: the source is checked first (missing: null), then the
/// destination's type, and only then is anything moved.
pub(crate) fn move_element(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from: End, to: End) {
    let db = ctx.client.db;
    if src == dst {
        let moved = ctx.store.rmw_value(db, src, ctx.now_ms, |e| match slot(e) {
            Slot::Missing => ObjectWrite::Keep(Ok(None)),
            Slot::WrongType => ObjectWrite::Keep(Err(())),
            Slot::Of(l) => match l.rotate(from, to) {
                Some(v) => ObjectWrite::Updated(Ok(Some(Box::<[u8]>::from(v)))),
                None => ObjectWrite::Keep(Ok(None)),
            },
        });
        match moved {
            Ok(Some(v)) => {
                ctx.notify(flags::LIST, pushed_event(to), dst);
                ctx.reply.bulk(&v);
                ctx.signal_key_ready(dst);
                notify_popped(ctx, src, from, false);
            }
            Ok(None) => ctx.reply.null(),
            Err(()) => ctx.wrong_type(),
        }
        return;
    }
    match kind_of(ctx, src) {
        None => {
            ctx.reply.null();
            return;
        }
        Some(ValueKind::List) => {}
        Some(_) => {
            ctx.wrong_type();
            return;
        }
    }
    if kind_of(ctx, dst).is_some_and(|k| k != ValueKind::List) {
        ctx.wrong_type();
        return;
    }
    let mut emptied = false;
    let popped = ctx.store.rmw_value(db, src, ctx.now_ms, |e| match slot(e) {
        Slot::Missing | Slot::WrongType => ObjectWrite::Keep(None),
        Slot::Of(l) => match l.pop(from) {
            None => ObjectWrite::Keep(None),
            Some(v) if l.is_empty() => {
                emptied = true;
                ObjectWrite::Delete(Some(v))
            }
            Some(v) => ObjectWrite::Updated(Some(v)),
        },
    });
    let Some(value) = popped else {
        ctx.reply.null();
        return;
    };
    // Redis pushes, raises the push's event, replies, then raises the pop's events.
    let reply = value.clone();
    let mut value = Some(value);
    ctx.store.rmw_value(db, dst, ctx.now_ms, |e| {
        let Some(v) = value.take() else {
            return ObjectWrite::Keep(());
        };
        match slot(e) {
            Slot::Of(l) => {
                l.push_boxed(to, v);
                ObjectWrite::Updated(())
            }
            // Not a list cannot happen with every other thread excluded; replace it like a
            // missing key rather than lose the element.
            Slot::Missing | Slot::WrongType => {
                let mut l = List::new();
                l.push_boxed(to, v);
                ObjectWrite::Put {
                    object: Collection::List(l).boxed(),
                    expire_at: NO_EXPIRY,
                    result: (),
                }
            }
        }
    });
    ctx.notify(flags::LIST, pushed_event(to), dst);
    ctx.reply.bulk(&reply);
    notify_popped(ctx, src, from, emptied);
    ctx.signal_key_ready(dst);
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`: pops from the first non-empty list.
pub(super) fn lmpop(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let numkeys = match parse_i64(args.get(1)) {
        Some(n) if n > 0 => n.unsigned_abs(),
        _ => {
            ctx.reply.error("ERR numkeys should be greater than 0");
            return;
        }
    };
    let where_idx = usize::try_from(numkeys)
        .ok()
        .and_then(|n| n.checked_add(2))
        .filter(|&i| i < args.len());
    let Some(where_idx) = where_idx else {
        ctx.syntax_error();
        return;
    };
    let Some(end) = parse_end(args.get(where_idx)) else {
        ctx.syntax_error();
        return;
    };
    let mut count: Option<u64> = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && eq_ignore_case(args.get(j), "count") && j + 1 < args.len() {
            match parse_i64(args.get(j + 1)) {
                Some(c) if c > 0 => count = Some(c.unsigned_abs()),
                _ => {
                    ctx.reply.error("ERR count should be greater than 0");
                    return;
                }
            }
            j += 2;
        } else {
            ctx.syntax_error();
            return;
        }
    }
    let count = count.unwrap_or(1);
    let db = ctx.client.db;
    for key in args.iter_from(2).take(where_idx - 2) {
        let mut emptied = false;
        let popped = ctx.store.rmw_value(db, key, ctx.now_ms, |e| match slot(e) {
            Slot::Missing => ObjectWrite::Keep(Ok(None)),
            Slot::WrongType => ObjectWrite::Keep(Err(())),
            Slot::Of(l) => {
                let items = l.pop_many(end, count);
                emptied = l.is_empty();
                if items.is_empty() {
                    ObjectWrite::Keep(Ok(None))
                } else if l.is_empty() {
                    ObjectWrite::Delete(Ok(Some(items)))
                } else {
                    ObjectWrite::Updated(Ok(Some(items)))
                }
            }
        });
        match popped {
            Ok(None) => {}
            Ok(Some(items)) => {
                ctx.reply.array_len(2);
                ctx.reply.bulk(key);
                reply_elements(&mut ctx.reply, &items);
                notify_popped(ctx, key, end, emptied);
                return;
            }
            Err(()) => {
                ctx.wrong_type();
                return;
            }
        }
    }
    ctx.reply.null_array();
}
