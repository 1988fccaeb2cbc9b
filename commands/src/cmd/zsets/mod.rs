//! Sorted-set commands (Redis's `t_zset.c`): ZADD and friends, the range family, pops, random
//! members, the algebra (ZUNION, ZINTER, ZDIFF and their STORE forms) and ZSCAN.
//!
//! Single-key writes are one `rmw_value` each; commands over several keys (the algebra,
//! ZRANGESTORE, ZMPOP) run with the EXCLUSIVE flag, so reading the inputs and writing the
//! destination is atomic across threads.
//!
//! The helpers at the top ([`with_zset`], [`update_zset`], [`store_zset`]) are the way other
//! command groups (geo) read and write sorted sets.

mod algebra;
mod range;
mod read;
mod table;
mod write;

use ferrite_collections::SortedSet;
use ferrite_hybridlog::NO_EXPIRY;

use crate::ctx::Ctx;
use crate::notify::flags;
use crate::objects::{self, Collection};
use crate::resp::Reply;

use algebra::*;
use range::*;
use read::*;
use write::*;

pub use table::COMMANDS;

pub(crate) use crate::objects::WrongType;

/// Reads `key` as a sorted set ([`objects::with_collection`]), counting a keyspace hit or miss
/// as Redis's `lookupKeyRead` does.
pub(crate) fn with_zset<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(Option<&SortedSet>, &mut Reply<'_>) -> R,
) -> Result<R, WrongType> {
    objects::with_collection(ctx, key, true, f)
}

/// Like [`with_zset`] but without counting keyspace hits and misses: a second look at a key
/// already counted (ZSCAN).
pub(crate) fn with_zset_nostats<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(Option<&SortedSet>) -> R,
) -> Result<R, WrongType> {
    objects::with_collection(ctx, key, false, |z, _| f(z))
}

/// Read-modify-write of `key` as a sorted set ([`objects::update_collection`]) that also
/// signals blocked clients when the set grew; says whether it emptied (deleted) the key.
pub(crate) fn update_zset<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnMut(&mut SortedSet) -> (R, bool),
) -> (Result<R, WrongType>, bool) {
    let (r, change) = objects::update_collection(ctx, key, f);
    if change.grew {
        ctx.signal_key_ready(key);
    }
    (r, change.emptied)
}

/// Replaces `key` with `z` (any old value and TTL are dropped), or deletes `key` when `z` is
/// empty, as Redis's ZUNIONSTORE and GEOSEARCHSTORE do. Returns the stored cardinality and
/// whether an old key was deleted (for [`notify_stored`]).
pub(crate) fn store_zset(ctx: &mut Ctx<'_>, key: &[u8], mut z: SortedSet) -> (usize, bool) {
    z.normalize_for_store();
    let n = z.len();
    if n == 0 {
        return (0, ctx.store.delete(ctx.client.db, key, ctx.now_ms));
    }
    ctx.reap_for_notify(key);
    ctx.store
        .upsert_object(ctx.client.db, key, Collection::ZSet(z).boxed(), NO_EXPIRY);
    ctx.signal_key_ready(key);
    (n, false)
}

/// The events of a [`store_zset`]: `event` for a stored result, `del` for a deleted key.
pub(crate) fn notify_stored(ctx: &mut Ctx<'_>, key: &[u8], event: &str, stored: (usize, bool)) {
    match stored {
        (0, true) => ctx.notify(flags::GENERIC, "del", key),
        (0, false) => {}
        _ => ctx.notify(flags::ZSET, event, key),
    }
}

/// Redis's events of a pop: `zpopmin` or `zpopmax`, then `del` when it emptied the key.
pub(crate) fn notify_popped(ctx: &mut Ctx<'_>, key: &[u8], max: bool, emptied: bool) {
    ctx.notify(flags::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    if emptied {
        ctx.notify(flags::GENERIC, "del", key);
    }
}

/// Writes `(member, score)` pairs as Redis 7.0 does for ZRANGE-style replies: a flat array of
/// members (with interleaved scores when `withscores`) in RESP2, an array of `[member, score]`
/// pairs in RESP3 when `withscores`.
pub(crate) fn reply_pairs<'m>(
    reply: &mut Reply<'_>,
    pairs: impl ExactSizeIterator<Item = (&'m [u8], f64)>,
    withscores: bool,
) {
    let n = pairs.len();
    if withscores && reply.is_resp3() {
        reply.array_len(n);
        for (m, s) in pairs {
            reply.array_len(2);
            reply.bulk(m);
            reply.double(s);
        }
    } else if withscores {
        reply.array_len(n * 2);
        for (m, s) in pairs {
            reply.bulk(m);
            reply.double(s);
        }
    } else {
        reply.array_len(n);
        for (m, _) in pairs {
            reply.bulk(m);
        }
    }
}

/// Parses a score as Redis's `getDoubleFromObject`: `strtod` over the whole argument, no
/// leading space, not NaN, and no overflow to infinity or underflow to zero (`ERANGE`), so
/// `1e400` is refused while `inf` is accepted.
pub(crate) fn parse_score(arg: &[u8]) -> Option<f64> {
    if let Some(v) = ferrite_collections::parse_hex_float(arg) {
        return v.is_finite().then_some(v);
    }
    let v = crate::args::parse_f64(arg)?;
    if v.is_infinite() && !arg.iter().any(|b| b.eq_ignore_ascii_case(&b'i')) {
        return None;
    }
    if v == 0.0 {
        let mantissa = arg.split(|b| b.eq_ignore_ascii_case(&b'e')).next();
        if mantissa.is_some_and(|m| m.iter().any(|b| (b'1'..=b'9').contains(b))) {
            return None;
        }
    }
    Some(v)
}

/// A `numkeys` argument that must be a positive integer (ZMPOP and the algebra check the upper
/// bound themselves, with their own messages).
pub(crate) fn parse_numkeys(arg: &[u8]) -> Option<usize> {
    crate::args::parse_i64(arg)
        .filter(|&n| n >= 1)
        .and_then(|n| usize::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_like_get_double_from_object() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"1e400"), None);
        assert_eq!(parse_score(b"-1e400"), None);
        assert_eq!(parse_score(b"1e-400"), None);
        assert_eq!(parse_score(b"0e-400"), Some(0.0));
        assert_eq!(parse_score(b"0.000"), Some(0.0));
        assert_eq!(parse_score(b"nan"), None);
        assert_eq!(parse_score(b" 1"), None);
        assert_eq!(parse_score(b""), None);
        assert_eq!(parse_score(b"1x"), None);
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"0x1p99999"), None);
    }

    fn pairs(resp3: bool, withscores: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut r = Reply::new(&mut out, resp3);
        let v: Vec<(&[u8], f64)> = vec![(b"a", 1.5), (b"b", -0.0)];
        reply_pairs(&mut r, v.into_iter(), withscores);
        out
    }

    #[test]
    fn pair_replies_follow_protocol() {
        assert_eq!(pairs(false, false), b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
        assert_eq!(
            pairs(false, true),
            b"*4\r\n$1\r\na\r\n$3\r\n1.5\r\n$1\r\nb\r\n$2\r\n-0\r\n"
        );
        assert_eq!(
            pairs(true, true),
            b"*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$1\r\nb\r\n,-0\r\n"
        );
        assert_eq!(pairs(true, false), pairs(false, false));
    }

    #[test]
    fn numkeys() {
        assert_eq!(parse_numkeys(b"1"), Some(1));
        assert_eq!(parse_numkeys(b"0"), None);
        assert_eq!(parse_numkeys(b"-3"), None);
        assert_eq!(parse_numkeys(b"x"), None);
    }
}
