//! OBJECT ENCODING / FREQ / IDLETIME / REFCOUNT / HELP (Redis's `object.c`).

use ferrite_collections::Limits;
use ferrite_hybridlog::{StoreObject, Value, ValueKind};

use crate::args::{Args, parse_i64};
use crate::cmd::config_cmd::reply_help;
use crate::ctx::Ctx;
use crate::objects::Collection;

/// Redis's `OBJ_SHARED_INTEGERS`: integer strings below it share one immortal object.
const SHARED_INTEGERS: i64 = 10_000;
/// Redis's `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`.
const EMBSTR_SIZE_LIMIT: usize = 44;
/// The refcount Redis reports for its shared (immortal) objects: `INT_MAX`.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// The integer a string value would be encoded as by `tryObjectEncoding` (at most 20 bytes and
/// accepted by `string2l`).
fn as_int(value: &[u8]) -> Option<i64> {
    if value.len() > 20 {
        return None;
    }
    parse_i64(value)
}

/// The encoding Redis would report for a string stored by SET. Ferrite keeps no per-value
/// encoding, so a value Redis would hold as `raw` after APPEND or SETRANGE shows as what SET
/// would have made of the same bytes.
pub(crate) fn string_encoding(value: &[u8]) -> &'static str {
    if as_int(value).is_some() {
        "int"
    } else if value.len() <= EMBSTR_SIZE_LIMIT {
        "embstr"
    } else {
        "raw"
    }
}

/// Redis's refcount for a stored string: shared integers report `INT_MAX`, anything else 1.
pub(crate) fn string_refcount(value: &[u8]) -> i64 {
    match as_int(value) {
        Some(v) if (0..SHARED_INTEGERS).contains(&v) => SHARED_REFCOUNT,
        _ => 1,
    }
}

/// The container is never run itself: the dispatcher resolves its subcommands.
pub(super) fn object(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply
        .error("ERR wrong number of arguments for 'object' command");
}

/// The encoding Redis 7.0 would report for a collection, with the `*-max-*` thresholds in
/// force (CONFIG SET changes them).
pub(crate) fn collection_encoding(object: &dyn StoreObject) -> &'static str {
    let limits = Limits::current();
    match Collection::of(object) {
        Some(Collection::List(l)) => l.encoding_name(&limits),
        Some(Collection::Hash(h)) => h.encoding_name(&limits),
        Some(Collection::Set(s)) => s.encoding_name(&limits),
        Some(Collection::ZSet(z)) => z.encoding_name(&limits),
        Some(Collection::Stream(_)) => "stream",
        None => "unknown",
    }
}

/// Looks the key up as `objectCommandLookupOrReply` does: a null reply when it is missing.
fn lookup<R>(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    f: impl FnOnce(ValueKind, Value<'_>) -> R,
) -> Option<R> {
    let db = ctx.client.db;
    let r = ctx
        .store
        .read_value(db, args.get(2), ctx.now_ms, |e| f(e.kind, e.value));
    if r.is_some() {
        ctx.hit();
    } else {
        // OBJECT looks its key up without a keymiss event (LOOKUP_NONOTIFY).
        ctx.miss_quiet();
        ctx.reply.null();
    }
    r
}

/// The key's access bits, looked up (and counted) as [`lookup`] does.
fn access_bits(ctx: &mut Ctx<'_>, args: Args<'_>) -> Option<u32> {
    let bits = ctx
        .store
        .access_bits(ctx.client.db, args.get(2), ctx.now_ms);
    if bits.is_some() {
        ctx.hit();
    } else {
        ctx.miss_quiet();
    }
    bits
}

/// `OBJECT ENCODING key`
pub(super) fn encoding(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if let Some(name) = lookup(ctx, args, |_, value| match value {
        Value::String(bytes) => string_encoding(bytes),
        Value::Object(object) => collection_encoding(object),
    }) {
        ctx.reply.bulk(name.as_bytes());
    }
}

/// `OBJECT REFCOUNT key`
pub(super) fn refcount(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if let Some(n) = lookup(ctx, args, |_, value| match value {
        Value::String(bytes) => string_refcount(bytes),
        Value::Object(_) => 1,
    }) {
        ctx.reply.int(n);
    }
}

/// `OBJECT IDLETIME key`: seconds since the key was last read or written (the LRU clock in its
/// record), unless an LFU policy tracks frequency instead. Not itself an access.
pub(super) fn idletime(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(bits) = access_bits(ctx, args) else {
        return ctx.reply.null();
    };
    let access = ctx.store.store().access();
    if crate::eviction::tracks_lfu(&ctx.server.config) {
        return ctx.reply.error(
            "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that \
             when switching between policies at runtime LRU and LFU data will take some time to \
             adjust.",
        );
    }
    ctx.reply.int(access.idle_seconds(bits) as i64);
}

/// `OBJECT FREQ key`: the key's logarithmic access counter under an LFU policy (Redis's error
/// otherwise). Not itself an access.
pub(super) fn freq(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(bits) = access_bits(ctx, args) else {
        return ctx.reply.null();
    };
    let access = ctx.store.store().access();
    if !crate::eviction::tracks_lfu(&ctx.server.config) {
        return ctx.reply.error(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please \
             note that when switching between policies at runtime LRU and LFU data will take \
             some time to adjust.",
        );
    }
    ctx.reply.int(i64::from(access.frequency(bits)));
}

const HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// `OBJECT HELP`
pub(super) fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    reply_help(&mut ctx.reply, HELP);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_redis() {
        assert_eq!(string_encoding(b"123"), "int");
        assert_eq!(string_encoding(b"-1"), "int");
        assert_eq!(string_encoding(b"9223372036854775807"), "int");
        assert_eq!(string_encoding(b"9223372036854775808"), "embstr");
        assert_eq!(string_encoding(b"01"), "embstr");
        assert_eq!(string_encoding(b" 1"), "embstr");
        assert_eq!(string_encoding(b""), "embstr");
        assert_eq!(string_encoding(&[b'x'; 44]), "embstr");
        assert_eq!(string_encoding(&[b'x'; 45]), "raw");
    }

    #[test]
    fn refcounts_match_redis() {
        assert_eq!(string_refcount(b"0"), 2_147_483_647);
        assert_eq!(string_refcount(b"9999"), 2_147_483_647);
        assert_eq!(string_refcount(b"10000"), 1);
        assert_eq!(string_refcount(b"-1"), 1);
        assert_eq!(string_refcount(b"abc"), 1);
    }
}
