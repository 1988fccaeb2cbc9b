//! LSET, LINSERT, LREM, LTRIM.

use ferrite_hybridlog::ObjectWrite;

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::notify::flags;

use super::{Slot, slot};

/// `LSET key index element`: the key is looked up before the index is parsed, as in Redis.
pub(super) fn lset(ctx: &mut Ctx<'_>, args: Args<'_>) {
    enum Outcome {
        NoKey,
        WrongType,
        NotInteger,
        OutOfRange,
        Ok,
    }
    let index = parse_i64(args.get(2));
    let value = args.get(3);
    let db = ctx.client.db;
    let outcome = ctx.store.rmw_value(db, args.get(1), ctx.now_ms, |e| {
        let l = match slot(e) {
            Slot::Missing => return ObjectWrite::Keep(Outcome::NoKey),
            Slot::WrongType => return ObjectWrite::Keep(Outcome::WrongType),
            Slot::Of(l) => l,
        };
        let Some(index) = index else {
            return ObjectWrite::Keep(Outcome::NotInteger);
        };
        match l.set(index, value) {
            Ok(()) => ObjectWrite::Updated(Outcome::Ok),
            Err(_) => ObjectWrite::Keep(Outcome::OutOfRange),
        }
    });
    match outcome {
        Outcome::NoKey => ctx.reply.error("ERR no such key"),
        Outcome::WrongType => ctx.wrong_type(),
        Outcome::NotInteger => ctx.not_integer(),
        Outcome::OutOfRange => ctx.reply.error("ERR index out of range"),
        Outcome::Ok => {
            ctx.reply.ok();
            ctx.notify(flags::LIST, "lset", args.get(1));
        }
    }
}

/// `LINSERT key BEFORE|AFTER pivot element`: the new length, -1 without the pivot, 0 without
/// the key.
pub(super) fn linsert(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let where_ = args.get(2);
    let before = if eq_ignore_case(where_, "before") {
        true
    } else if eq_ignore_case(where_, "after") {
        false
    } else {
        ctx.syntax_error();
        return;
    };
    let (pivot, value) = (args.get(3), args.get(4));
    let db = ctx.client.db;
    let len = ctx
        .store
        .rmw_value(db, args.get(1), ctx.now_ms, |e| match slot(e) {
            Slot::Missing => ObjectWrite::Keep(Some(0)),
            Slot::WrongType => ObjectWrite::Keep(None),
            Slot::Of(l) => match l.insert(before, pivot, value) {
                Some(len) => ObjectWrite::Updated(Some(i64::try_from(len).unwrap_or(i64::MAX))),
                None => ObjectWrite::Keep(Some(-1)),
            },
        });
    match len {
        Some(len) => {
            if len > 0 {
                ctx.notify(flags::LIST, "linsert", args.get(1));
            }
            ctx.reply.int(len);
        }
        None => ctx.wrong_type(),
    }
}

/// `LREM key count element`
pub(super) fn lrem(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(count) = parse_i64(args.get(2)) else {
        ctx.not_integer();
        return;
    };
    let value = args.get(3);
    let db = ctx.client.db;
    let mut emptied = false;
    let removed = ctx
        .store
        .rmw_value(db, args.get(1), ctx.now_ms, |e| match slot(e) {
            Slot::Missing => ObjectWrite::Keep(Some(0)),
            Slot::WrongType => ObjectWrite::Keep(None),
            Slot::Of(l) => {
                let n = l.remove(count, value);
                emptied = l.is_empty();
                if n == 0 {
                    ObjectWrite::Keep(Some(0))
                } else if l.is_empty() {
                    ObjectWrite::Delete(Some(n))
                } else {
                    ObjectWrite::Updated(Some(n))
                }
            }
        });
    match removed {
        Some(n) => {
            if n > 0 {
                ctx.notify(flags::LIST, "lrem", args.get(1));
                if emptied {
                    ctx.notify(flags::GENERIC, "del", args.get(1));
                }
            }
            ctx.reply.int(i64::try_from(n).unwrap_or(i64::MAX));
        }
        None => ctx.wrong_type(),
    }
}

/// `LTRIM key start stop`
pub(super) fn ltrim(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (Some(start), Some(stop)) = (parse_i64(args.get(2)), parse_i64(args.get(3))) else {
        ctx.not_integer();
        return;
    };
    let db = ctx.client.db;
    // None: no list; Some(emptied).
    let mut trimmed = None;
    let ok = ctx
        .store
        .rmw_value(db, args.get(1), ctx.now_ms, |e| match slot(e) {
            Slot::Missing => ObjectWrite::Keep(true),
            Slot::WrongType => ObjectWrite::Keep(false),
            Slot::Of(l) => {
                let before = l.len();
                l.trim(start, stop);
                trimmed = Some(l.is_empty());
                if l.is_empty() {
                    ObjectWrite::Delete(true)
                } else if l.len() == before {
                    ObjectWrite::Keep(true)
                } else {
                    ObjectWrite::Updated(true)
                }
            }
        });
    if ok {
        // Redis raises `ltrim` for any list, trimmed or not.
        if let Some(emptied) = trimmed {
            ctx.notify(flags::LIST, "ltrim", args.get(1));
            if emptied {
                ctx.notify(flags::GENERIC, "del", args.get(1));
            }
        }
        ctx.reply.ok();
    } else {
        ctx.wrong_type();
    }
}
