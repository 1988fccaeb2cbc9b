//! LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP.

use ferrite_collections::{End, List};
use ferrite_hybridlog::{NO_EXPIRY, ObjectWrite};

use crate::args::{Args, parse_i64};
use crate::ctx::Ctx;
use crate::notify::flags;
use crate::objects::Collection;

use super::{Slot, reply_elements, slot};

/// `LPUSH key element [element ...]`
pub(super) fn lpush(ctx: &mut Ctx<'_>, args: Args<'_>) {
    push(ctx, args, End::Left, false);
}

/// `RPUSH key element [element ...]`
pub(super) fn rpush(ctx: &mut Ctx<'_>, args: Args<'_>) {
    push(ctx, args, End::Right, false);
}

/// `LPUSHX key element [element ...]`
pub(super) fn lpushx(ctx: &mut Ctx<'_>, args: Args<'_>) {
    push(ctx, args, End::Left, true);
}

/// `RPUSHX key element [element ...]`
pub(super) fn rpushx(ctx: &mut Ctx<'_>, args: Args<'_>) {
    push(ctx, args, End::Right, true);
}

/// Redis's `pushGenericCommand`: the new length, 0 for the X variants on a missing key.
fn push(ctx: &mut Ctx<'_>, args: Args<'_>, end: End, only_existing: bool) {
    let key = args.get(1);
    let db = ctx.client.db;
    let len = ctx.store.rmw_value(db, key, ctx.now_ms, |e| match slot(e) {
        Slot::WrongType => ObjectWrite::Keep(None),
        Slot::Missing if only_existing => ObjectWrite::Keep(Some(0)),
        Slot::Missing => {
            let mut l = List::new();
            for v in args.iter_from(2) {
                l.push(end, v);
            }
            let len = l.len();
            ObjectWrite::Put {
                object: Collection::List(l).boxed(),
                expire_at: NO_EXPIRY,
                result: Some(len),
            }
        }
        Slot::Of(l) => {
            for v in args.iter_from(2) {
                l.push(end, v);
            }
            ObjectWrite::Updated(Some(l.len()))
        }
    });
    match len {
        None => ctx.wrong_type(),
        Some(len) => {
            if len > 0 {
                ctx.signal_key_ready(key);
            }
            ctx.reply.int(i64::try_from(len).unwrap_or(i64::MAX));
            if len > 0 {
                ctx.notify(flags::LIST, pushed_event(end), key);
            }
        }
    }
}

/// `lpush` or `rpush`.
pub(super) fn pushed_event(end: End) -> &'static str {
    match end {
        End::Left => "lpush",
        End::Right => "rpush",
    }
}

/// `lpop` or `rpop`.
pub(super) fn popped_event(end: End) -> &'static str {
    match end {
        End::Left => "lpop",
        End::Right => "rpop",
    }
}

/// Redis's `listElementsRemoved`: the pop's event, then `del` when it emptied the list.
pub(crate) fn notify_popped(ctx: &mut Ctx<'_>, key: &[u8], end: End, emptied: bool) {
    ctx.notify(flags::LIST, popped_event(end), key);
    if emptied {
        ctx.notify(flags::GENERIC, "del", key);
    }
}

/// `LPOP key [count]`
pub(super) fn lpop(ctx: &mut Ctx<'_>, args: Args<'_>) {
    pop(ctx, args, End::Left);
}

/// `RPOP key [count]`
pub(super) fn rpop(ctx: &mut Ctx<'_>, args: Args<'_>) {
    pop(ctx, args, End::Right);
}

/// What a pop found.
enum Popped {
    Missing,
    WrongType,
    One(Box<[u8]>),
    Many(Vec<Box<[u8]>>),
}

/// Redis's `popGenericCommand`. Without a count the reply is the element (or a null bulk); with
/// one it is an array, a null array for a missing key, and an empty array for a count of 0.
fn pop(ctx: &mut Ctx<'_>, args: Args<'_>, end: End) {
    if args.len() > 3 {
        let msg = format!(
            "ERR wrong number of arguments for '{}' command",
            ctx.spec.name
        );
        ctx.reply.error(&msg);
        return;
    }
    let count = match args.try_get(2) {
        None => None,
        Some(arg) => match parse_i64(arg) {
            Some(c) if c >= 0 => Some(c.unsigned_abs()),
            _ => {
                ctx.reply
                    .error("ERR value is out of range, must be positive");
                return;
            }
        },
    };
    let db = ctx.client.db;
    let mut emptied = false;
    let popped = ctx.store.rmw_value(db, args.get(1), ctx.now_ms, |e| {
        emptied = false;
        let l = match slot(e) {
            Slot::Missing => return ObjectWrite::Keep(Popped::Missing),
            Slot::WrongType => return ObjectWrite::Keep(Popped::WrongType),
            Slot::Of(l) => l,
        };
        let popped = match count {
            Some(0) => return ObjectWrite::Keep(Popped::Many(Vec::new())),
            Some(n) => Popped::Many(l.pop_many(end, n)),
            None => match l.pop(end) {
                Some(v) => Popped::One(v),
                None => return ObjectWrite::Keep(Popped::Missing),
            },
        };
        if l.is_empty() {
            emptied = true;
            ObjectWrite::Delete(popped)
        } else {
            ObjectWrite::Updated(popped)
        }
    });
    match popped {
        Popped::Missing if count.is_some() => ctx.reply.null_array(),
        Popped::Missing => ctx.reply.null(),
        Popped::WrongType => ctx.wrong_type(),
        Popped::One(v) => {
            ctx.reply.bulk(&v);
            notify_popped(ctx, args.get(1), end, emptied);
        }
        Popped::Many(items) => {
            reply_elements(&mut ctx.reply, &items);
            if !items.is_empty() {
                notify_popped(ctx, args.get(1), end, emptied);
            }
        }
    }
}
