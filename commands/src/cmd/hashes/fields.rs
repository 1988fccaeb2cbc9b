//! HSET, HMSET, HSETNX, HGET, HMGET, HDEL, HLEN, HSTRLEN, HEXISTS, HKEYS, HVALS, HGETALL.

use ferrite_collections::Hash;
use ferrite_hybridlog::{NO_EXPIRY, ObjectWrite};

use crate::args::Args;
use crate::ctx::Ctx;
use crate::notify::flags;
use crate::objects::Collection;

use super::{Found, Slot, read_hash, slot};

/// Clamps a length into a RESP integer.
#[inline]
fn int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `HSET key field value [field value ...]`: how many fields were created.
pub(super) fn hset(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if let Some(created) = set_pairs(ctx, args) {
        ctx.reply.int(int(created));
        ctx.notify(flags::HASH, "hset", args.get(1));
    }
}

/// `HMSET key field value [field value ...]`: HSET replying OK.
pub(super) fn hmset(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if set_pairs(ctx, args).is_some() {
        ctx.reply.ok();
        ctx.notify(flags::HASH, "hset", args.get(1));
    }
}

/// Sets every pair of `args` (from index 2); the number of new fields, or `None` after replying
/// with an error.
fn set_pairs(ctx: &mut Ctx<'_>, args: Args<'_>) -> Option<usize> {
    if args.len() % 2 == 1 {
        let msg = format!(
            "ERR wrong number of arguments for '{}' command",
            ctx.spec.name
        );
        ctx.reply.error(&msg);
        return None;
    }
    let insert_all = |h: &mut Hash| {
        let mut created = 0;
        let mut it = args.iter_from(2);
        while let (Some(f), Some(v)) = (it.next(), it.next()) {
            created += usize::from(h.insert(f, v));
        }
        created
    };
    let db = ctx.client.db;
    let created = ctx
        .store
        .rmw_value(db, args.get(1), ctx.now_ms, |e| match slot(e) {
            Slot::WrongType => ObjectWrite::Keep(None),
            Slot::Of(h) => ObjectWrite::Updated(Some(insert_all(h))),
            Slot::Missing => {
                let mut h = Hash::new();
                let created = insert_all(&mut h);
                ObjectWrite::Put {
                    object: Collection::Hash(h).boxed(),
                    expire_at: NO_EXPIRY,
                    result: Some(created),
                }
            }
        });
    if created.is_none() {
        ctx.wrong_type();
    }
    created
}

/// `HSETNX key field value`
pub(super) fn hsetnx(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (field, value) = (args.get(2), args.get(3));
    let db = ctx.client.db;
    let set = ctx
        .store
        .rmw_value(db, args.get(1), ctx.now_ms, |e| match slot(e) {
            Slot::WrongType => ObjectWrite::Keep(None),
            Slot::Of(h) if h.contains(field) => ObjectWrite::Keep(Some(false)),
            Slot::Of(h) => {
                h.insert(field, value);
                ObjectWrite::Updated(Some(true))
            }
            Slot::Missing => {
                let mut h = Hash::new();
                h.insert(field, value);
                ObjectWrite::Put {
                    object: Collection::Hash(h).boxed(),
                    expire_at: NO_EXPIRY,
                    result: Some(true),
                }
            }
        });
    match set {
        Some(set) => {
            ctx.reply.int(i64::from(set));
            if set {
                ctx.notify(flags::HASH, "hset", args.get(1));
            }
        }
        None => ctx.wrong_type(),
    }
}

/// `HGET key field`
pub(super) fn hget(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let field = args.get(2);
    match read_hash(ctx, args.get(1), |h, r| match h.get(field) {
        Some(v) => r.bulk(v),
        None => r.null(),
    }) {
        Found::Yes => {}
        Found::Missing => ctx.reply.null(),
        Found::WrongType => ctx.wrong_type(),
    }
}

/// `HMGET key field [field ...]`: a null per missing field, all nulls for a missing key.
pub(super) fn hmget(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let fields = args.skip(2);
    match read_hash(ctx, args.get(1), |h, r| {
        r.array_len(fields.len());
        for f in fields.iter_from(0) {
            match h.get(f) {
                Some(v) => r.bulk(v),
                None => r.null(),
            }
        }
    }) {
        Found::Yes => {}
        Found::Missing => {
            ctx.reply.array_len(fields.len());
            for _ in 0..fields.len() {
                ctx.reply.null();
            }
        }
        Found::WrongType => ctx.wrong_type(),
    }
}

/// `HDEL key field [field ...]`: how many fields were removed.
pub(super) fn hdel(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let db = ctx.client.db;
    let mut emptied = false;
    let removed = ctx
        .store
        .rmw_value(db, args.get(1), ctx.now_ms, |e| match slot(e) {
            Slot::Missing => ObjectWrite::Keep(Some(0)),
            Slot::WrongType => ObjectWrite::Keep(None),
            Slot::Of(h) => {
                emptied = false;
                let mut n = 0;
                for f in args.iter_from(2) {
                    if h.remove(f) {
                        n += 1;
                        // Redis stops at the first field that empties the hash.
                        if h.is_empty() {
                            break;
                        }
                    }
                }
                if n == 0 {
                    ObjectWrite::Keep(Some(0))
                } else if h.is_empty() {
                    emptied = true;
                    ObjectWrite::Delete(Some(n))
                } else {
                    ObjectWrite::Updated(Some(n))
                }
            }
        });
    match removed {
        Some(n) => {
            if n > 0 {
                ctx.notify(flags::HASH, "hdel", args.get(1));
                if emptied {
                    ctx.notify(flags::GENERIC, "del", args.get(1));
                }
            }
            ctx.reply.int(int(n));
        }
        None => ctx.wrong_type(),
    }
}

/// `HLEN key`
pub(super) fn hlen(ctx: &mut Ctx<'_>, args: Args<'_>) {
    match read_hash(ctx, args.get(1), |h, r| r.int(int(h.len()))) {
        Found::Yes => {}
        Found::Missing => ctx.reply.int(0),
        Found::WrongType => ctx.wrong_type(),
    }
}

/// `HSTRLEN key field`
pub(super) fn hstrlen(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let field = args.get(2);
    match read_hash(ctx, args.get(1), |h, r| r.int(int(h.value_len(field)))) {
        Found::Yes => {}
        Found::Missing => ctx.reply.int(0),
        Found::WrongType => ctx.wrong_type(),
    }
}

/// `HEXISTS key field`
pub(super) fn hexists(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let field = args.get(2);
    match read_hash(ctx, args.get(1), |h, r| r.int(i64::from(h.contains(field)))) {
        Found::Yes => {}
        Found::Missing => ctx.reply.int(0),
        Found::WrongType => ctx.wrong_type(),
    }
}

/// `HKEYS key`
pub(super) fn hkeys(ctx: &mut Ctx<'_>, args: Args<'_>) {
    get_all(ctx, args, true, false);
}

/// `HVALS key`
pub(super) fn hvals(ctx: &mut Ctx<'_>, args: Args<'_>) {
    get_all(ctx, args, false, true);
}

/// `HGETALL key`: a map in RESP3.
pub(super) fn hgetall(ctx: &mut Ctx<'_>, args: Args<'_>) {
    get_all(ctx, args, true, true);
}

/// Redis's `genericHgetallCommand`.
fn get_all(ctx: &mut Ctx<'_>, args: Args<'_>, fields: bool, values: bool) {
    let both = fields && values;
    match read_hash(ctx, args.get(1), |h, r| {
        if both {
            r.map_len(h.len());
        } else {
            r.array_len(h.len());
        }
        for (f, v) in h.iter() {
            if fields {
                r.bulk(f);
            }
            if values {
                r.bulk(v);
            }
        }
    }) {
        Found::Yes => {}
        Found::Missing if both => ctx.reply.map_len(0),
        Found::Missing => ctx.reply.array_len(0),
        Found::WrongType => ctx.wrong_type(),
    }
}
