//! Whole-key commands (Redis's `db.c`): DEL, UNLINK, EXISTS, TOUCH, TYPE, RANDOMKEY, RENAME,
//! RENAMENX, COPY and MOVE. The multi-key ones run with the EXCLUSIVE flag, so their reads and
//! writes of several keys are one atomic step for every other thread.

use std::cell::Cell;

use ferrite_hybridlog::{Db, Session, StoreObject, Value, ValueKind};

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::blocking;
use crate::ctx::Ctx;
use crate::notify::flags;

/// Redis's name for a value kind (TYPE, SCAN TYPE).
pub(super) fn type_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::String => "string",
        ValueKind::List => "list",
        ValueKind::Hash => "hash",
        ValueKind::Set => "set",
        ValueKind::ZSet => "zset",
        ValueKind::Stream => "stream",
    }
}

/// `DEL key [key ...]`: the number of live keys removed.
pub(super) fn del(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let db = ctx.client.db;
    let mut n = 0i64;
    for key in args.iter_from(1) {
        if ctx.store.delete(db, key, ctx.now_ms) {
            ctx.notify(flags::GENERIC, "del", key);
            n += 1;
        }
    }
    ctx.reply.int(n);
}

/// `EXISTS key [key ...]`: counts every argument naming a live key, duplicates included.
pub(super) fn exists(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let db = ctx.client.db;
    let mut n = 0i64;
    for key in args.iter_from(1) {
        if ctx.store.exists(db, key, ctx.now_ms) {
            ctx.hit();
            n += 1;
        } else {
            ctx.miss(key);
        }
    }
    ctx.reply.int(n);
}

/// `TOUCH key [key ...]`: as EXISTS (Ferrite keeps no access time to update).
pub(super) fn touch(ctx: &mut Ctx<'_>, args: Args<'_>) {
    exists(ctx, args);
}

/// `TYPE key`
pub(super) fn type_cmd(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let db = ctx.client.db;
    match ctx.store.kind_and_expiry(db, args.get(1), ctx.now_ms) {
        Some((kind, _)) => {
            ctx.hit();
            ctx.reply.simple(type_name(kind));
        }
        None => {
            ctx.miss(args.get(1));
            ctx.reply.simple("none");
        }
    }
}

thread_local! {
    /// Per-thread xorshift state for RANDOMKEY's seeds (0: not yet seeded).
    static RANDOM: Cell<u64> = const { Cell::new(0) };
}

/// A fresh pseudo-random seed; sampling needs no cryptographic quality.
fn next_seed() -> u64 {
    RANDOM.with(|r| {
        let mut x = r.get();
        if x == 0 {
            let mut b = [0u8; 8];
            crate::server::fill_random(&mut b);
            x = u64::from_le_bytes(b) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    })
}

/// `RANDOMKEY`
pub(super) fn randomkey(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let db = ctx.client.db;
    match ctx.store.random_key(db, ctx.now_ms, next_seed()) {
        Some(key) => ctx.reply.bulk(&key),
        None => ctx.reply.null(),
    }
}

/// A copied value: what moves between keys or databases.
enum Copied {
    /// A string's bytes.
    Bytes(Vec<u8>, ValueKind),
    /// A deep copy of a collection.
    Object(Box<dyn StoreObject>),
}

/// A copied record: what moves between keys or databases.
struct Record {
    value: Copied,
    expire_at: u64,
}

/// Copies a live key's value (a collection deep, through `clone_box`) and its expiry.
fn read_record(store: &mut Session, db: Db, key: &[u8], now_ms: u64) -> Option<Record> {
    store.read_value(db, key, now_ms, |e| Record {
        value: match e.value {
            Value::String(bytes) => Copied::Bytes(bytes.to_vec(), e.kind),
            Value::Object(object) => Copied::Object(object.clone_box()),
        },
        expire_at: e.expire_at,
    })
}

/// Stores a copied record at `key`, replacing whatever is there, with the record's TTL.
/// RENAME, MOVE and COPY delete the destination and add the key anew (`dbAdd`), so with key
/// events on the replaced key is deleted first, for the `new` event Redis raises.
fn write_record(store: &mut Session, db: Db, key: &[u8], rec: Record) {
    if store.store().key_events_on() {
        store.delete(db, key, 0);
    }
    match rec.value {
        Copied::Bytes(bytes, kind) => store.upsert(db, key, &bytes, kind, rec.expire_at),
        Copied::Object(object) => store.upsert_object(db, key, object, rec.expire_at),
    }
}

/// `RENAME key newkey`
pub(super) fn rename(ctx: &mut Ctx<'_>, args: Args<'_>) {
    rename_generic(ctx, args, false);
}

/// `RENAMENX key newkey`
pub(super) fn renamenx(ctx: &mut Ctx<'_>, args: Args<'_>) {
    rename_generic(ctx, args, true);
}

/// Redis's `renameGenericCommand`: a missing source is an error even when both names are the
/// same; the TTL moves with the value.
fn rename_generic(ctx: &mut Ctx<'_>, args: Args<'_>, nx: bool) {
    let (src, dst) = (args.get(1), args.get(2));
    let db = ctx.client.db;
    let now = ctx.now_ms;
    if src == dst {
        if !ctx.store.exists(db, src, now) {
            ctx.reply.error("ERR no such key");
        } else if nx {
            ctx.reply.int(0);
        } else {
            ctx.reply.ok();
        }
        return;
    }
    // Checks first, then the copy: a collection is copied only when it will be written.
    if !ctx.store.exists(db, src, now) {
        ctx.reply.error("ERR no such key");
        return;
    }
    if nx && ctx.store.exists(db, dst, now) {
        ctx.reply.int(0);
        return;
    }
    // EXCLUSIVE: the source is still there (same clock, no other thread).
    let Some(rec) = read_record(ctx.store, db, src, now) else {
        ctx.reply.error("ERR no such key");
        return;
    };
    write_record(ctx.store, db, dst, rec);
    ctx.store.delete(db, src, now);
    // A list or sorted set arriving under a name clients block on serves them, as in Redis.
    blocking::signal_key_ready_in(ctx, db, dst);
    ctx.notify(flags::GENERIC, "rename_from", src);
    ctx.notify(flags::GENERIC, "rename_to", dst);
    if nx {
        ctx.reply.int(1);
    } else {
        ctx.reply.ok();
    }
}

/// Redis's `getIntFromObjectOrReply` then `selectDb`: a database index argument, with the
/// integer error for non-integers, the `int` range error, then the database range error.
fn parse_db_index(ctx: &mut Ctx<'_>, arg: &[u8]) -> Option<Db> {
    let Some(v) = parse_i64(arg) else {
        ctx.not_integer();
        return None;
    };
    if i32::try_from(v).is_err() {
        ctx.reply
            .error("ERR value is out of range, value must between -2147483648 and 2147483647");
        return None;
    }
    match Db::try_from(v) {
        Ok(db) if usize::from(db) < ctx.store_databases() => Some(db),
        _ => {
            ctx.reply.error("ERR DB index is out of range");
            None
        }
    }
}

/// `MOVE key db`
pub(super) fn move_cmd(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(dst_db) = parse_db_index(ctx, args.get(2)) else {
        return;
    };
    let src_db = ctx.client.db;
    if src_db == dst_db {
        ctx.reply
            .error("ERR source and destination objects are the same");
        return;
    }
    let key = args.get(1);
    let now = ctx.now_ms;
    if !ctx.store.exists(src_db, key, now) || ctx.store.exists(dst_db, key, now) {
        ctx.reply.int(0);
        return;
    }
    // EXCLUSIVE: the source is still there (same clock, no other thread).
    let Some(rec) = read_record(ctx.store, src_db, key, now) else {
        ctx.reply.int(0);
        return;
    };
    write_record(ctx.store, dst_db, key, rec);
    ctx.store.delete(src_db, key, now);
    blocking::signal_key_ready_in(ctx, dst_db, key);
    ctx.notify_in(flags::GENERIC, "move_from", key, src_db);
    ctx.notify_in(flags::GENERIC, "move_to", key, dst_db);
    ctx.reply.int(1);
}

/// `COPY source destination [DB destination-db] [REPLACE]`
pub(super) fn copy(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let src_db = ctx.client.db;
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        let opt = args.get(j);
        if eq_ignore_case(opt, "replace") {
            replace = true;
        } else if eq_ignore_case(opt, "db") && j + 1 < args.len() {
            let Some(db) = parse_db_index(ctx, args.get(j + 1)) else {
                return;
            };
            dst_db = db;
            j += 1;
        } else {
            ctx.syntax_error();
            return;
        }
        j += 1;
    }
    let (src, dst) = (args.get(1), args.get(2));
    if src_db == dst_db && src == dst {
        ctx.reply
            .error("ERR source and destination objects are the same");
        return;
    }
    let now = ctx.now_ms;
    if !ctx.store.exists(src_db, src, now) {
        ctx.miss(src);
        ctx.reply.int(0);
        return;
    }
    ctx.hit();
    if !replace && ctx.store.exists(dst_db, dst, now) {
        ctx.reply.int(0);
        return;
    }
    // EXCLUSIVE: the source is still there (same clock, no other thread).
    let Some(rec) = read_record(ctx.store, src_db, src, now) else {
        ctx.reply.int(0);
        return;
    };
    write_record(ctx.store, dst_db, dst, rec);
    blocking::signal_key_ready_in(ctx, dst_db, dst);
    ctx.notify_in(flags::GENERIC, "copy_to", dst, dst_db);
    ctx.reply.int(1);
}
