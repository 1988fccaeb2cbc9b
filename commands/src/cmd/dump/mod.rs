//! DUMP and RESTORE (Redis's `cluster.c`) over Redis's own RDB value encoding, so payloads move
//! between Ferrite and Redis in both directions.
//!
//! - [`rdb`]: the value encoding (RDB version 10, as Redis 7.0 writes it) and its decoder.
//! - [`packed`]: listpacks, ziplists and intsets, the blobs inside RDB values.
//! - [`lzf`]: the LZF compressor and decompressor RDB strings use.
//! - [`crc64`]: the payload checksum.

pub mod crc64;
pub mod lzf;
pub mod packed;
pub mod rdb;
mod stream_rdb;

use ferrite_hybridlog::{NO_EXPIRY, Value, ValueKind};

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::notify::flags;
use crate::objects::Collection;
use crate::table::{CommandSpec, flags::*};

use rdb::Decoded;
pub(crate) use rdb::quicklist_nodes;

/// A value's DUMP payload (DUMP, MIGRATE); `None` for an object that is not a collection.
pub(crate) fn payload(value: &Value<'_>) -> Option<Vec<u8>> {
    match value {
        Value::String(s) => Some(rdb::dump_string(s)),
        Value::Object(o) => Collection::of(*o).map(rdb::dump_collection),
    }
}

/// The bytes of a payload that are not the value itself: its type byte, and the RDB version
/// and CRC-64 after it. What is left is Redis's `rdbSavedObjectLen` (DEBUG OBJECT's
/// `serializedlength`).
pub(crate) const PAYLOAD_FRAMING: usize = 1 + 2 + 8;

/// `DUMP key`
fn dump(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let db = ctx.client.db;
    let payload = ctx
        .store
        .read_value(db, args.get(1), ctx.now_ms, |e| payload(&e.value));
    match payload {
        None => {
            ctx.miss(args.get(1));
            ctx.reply.null();
        }
        Some(p) => {
            ctx.hit();
            match p {
                Some(p) => ctx.reply.bulk(&p),
                // An object that is not a collection has no RDB form here.
                None => ctx.reply.null(),
            }
        }
    }
}

/// RESTORE's options after the payload.
struct Options {
    replace: bool,
    absttl: bool,
    /// IDLETIME seconds, FREQ counter.
    idle: Option<u64>,
    freq: Option<u8>,
}

/// Parses `REPLACE | ABSTTL | IDLETIME s | FREQ f` as `restoreCommand` does: IDLETIME and FREQ
/// exclude each other (the second one is a syntax error), and their values are checked on the
/// spot.
fn parse_options(ctx: &mut Ctx<'_>, args: Args<'_>) -> Option<Options> {
    let mut o = Options {
        replace: false,
        absttl: false,
        idle: None,
        freq: None,
    };
    let mut j = 4;
    while j < args.len() {
        let a = args.get(j);
        let more = j + 1 < args.len();
        if eq_ignore_case(a, "replace") {
            o.replace = true;
        } else if eq_ignore_case(a, "absttl") {
            o.absttl = true;
        } else if eq_ignore_case(a, "idletime") && more && o.freq.is_none() {
            match parse_i64(args.get(j + 1)) {
                None => {
                    ctx.not_integer();
                    return None;
                }
                Some(v) if v < 0 => {
                    ctx.reply.error("ERR Invalid IDLETIME value, must be >= 0");
                    return None;
                }
                Some(v) => o.idle = Some(v.unsigned_abs()),
            }
            j += 1;
        } else if eq_ignore_case(a, "freq") && more && o.idle.is_none() {
            match parse_i64(args.get(j + 1)) {
                None => {
                    ctx.not_integer();
                    return None;
                }
                Some(v) if !(0..=255).contains(&v) => {
                    ctx.reply
                        .error("ERR Invalid FREQ value, must be >= 0 and <= 255");
                    return None;
                }
                Some(v) => o.freq = Some(v as u8),
            }
            j += 1;
        } else {
            ctx.syntax_error();
            return None;
        }
        j += 1;
    }
    Some(o)
}

/// `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]`. Runs EXCLUSIVE: the
/// existence check and the write must be one step, and the value may be a string or an object.
fn restore(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(opts) = parse_options(ctx, args) else {
        return;
    };
    let db = ctx.client.db;
    let key = args.get(1);
    if !opts.replace && ctx.store.exists(db, key, ctx.now_ms) {
        ctx.reply.error("BUSYKEY Target key name already exists.");
        return;
    }
    let ttl = match parse_i64(args.get(2)) {
        None => return ctx.not_integer(),
        Some(t) if t < 0 => {
            ctx.reply.error("ERR Invalid TTL value, must be >= 0");
            return;
        }
        Some(t) => t,
    };
    let payload = args.get(3);
    if !rdb::verify(payload) {
        ctx.reply
            .error("ERR DUMP payload version or checksum are wrong");
        return;
    }
    let Ok(value) = rdb::decode(payload) else {
        ctx.reply.error("ERR Bad data format");
        return;
    };
    let expire_at = if ttl == 0 {
        NO_EXPIRY
    } else if opts.absttl {
        ttl as u64
    } else {
        (ttl as u64).saturating_add(ctx.now_ms)
    };
    if expire_at != NO_EXPIRY && expire_at <= ctx.now_ms {
        // Already expired: the old value (with REPLACE) goes, nothing is created.
        if opts.replace && ctx.store.delete(db, key, ctx.now_ms) {
            ctx.notify(flags::GENERIC, "del", key);
        }
        ctx.reply.ok();
        return;
    }
    if opts.replace && ctx.server.store.key_events_on() {
        // Redis deletes the old key and adds the new one, which raises `new`.
        ctx.store.delete(db, key, ctx.now_ms);
    }
    match value {
        Decoded::String(s) => ctx.store.upsert(db, key, &s, ValueKind::String, expire_at),
        Decoded::Object(c) => {
            let signal = matches!(c, Collection::List(_) | Collection::ZSet(_));
            ctx.store.upsert_object(db, key, c.boxed(), expire_at);
            if signal {
                ctx.signal_key_ready(key);
            }
        }
    }
    // Redis's `objectSetLRUOrLFU`: the option that matches the policy's tracking applies.
    let access = ctx.store.store().access();
    let lfu = crate::eviction::tracks_lfu(&ctx.server.config);
    let bits = match (lfu, opts.idle, opts.freq) {
        (false, Some(idle), _) => Some(access.bits_for_idle(idle)),
        (true, _, Some(freq)) => Some(access.bits_for_freq(freq)),
        _ => None,
    };
    if let Some(bits) = bits {
        ctx.store.set_access_bits(db, key, ctx.now_ms, bits);
    }
    ctx.notify(flags::GENERIC, "restore", key);
    ctx.reply.ok();
}

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "dump",
        arity: 2,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["keyspace", "read", "slow"],
        group: "generic",
        since: "2.6.0",
        summary: "Return a serialized version of the value stored at the specified key.",
        complexity: "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).",
        handler: dump,
        subcommands: &[],
    },
    CommandSpec {
        name: "restore",
        arity: -4,
        flags: WRITE | DENYOOM | EXCLUSIVE,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["keyspace", "write", "slow", "dangerous"],
        group: "generic",
        since: "2.6.0",
        summary: "Create a key using the provided serialized value, previously obtained using DUMP.",
        complexity: "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).",
        handler: restore,
        subcommands: &[],
    },
    // RESTORE as cluster nodes send it while migrating a slot; a standalone server takes it
    // as RESTORE.
    CommandSpec::new("restore-asking", -4, "server", restore)
        .with_flags(WRITE | DENYOOM | ASKING | EXCLUSIVE)
        .with_keys(1, 1, 1)
        .with_acl(&["keyspace", "write", "slow", "dangerous"])
        .with_docs(
            "3.0.0",
            "An internal command for migrating keys in a cluster",
            "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).",
        ),
];
