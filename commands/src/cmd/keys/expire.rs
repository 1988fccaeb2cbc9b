//! Expiry commands: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, TTL, PTTL, EXPIRETIME, PEXPIRETIME and
//! PERSIST (Redis's `expire.c`). Expiry times are absolute Unix milliseconds, as in the store.

use ferrite_hybridlog::{NO_EXPIRY, Write};

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::notify::flags as notify;

/// NX: only when the key has no expiry.
const NX: u8 = 1;
/// XX: only when the key has an expiry.
const XX: u8 = 2;
/// GT: only when the new expiry is later (no expiry counts as infinitely late).
const GT: u8 = 4;
/// LT: only when the new expiry is sooner.
const LT: u8 = 8;

/// `EXPIRE key seconds [NX|XX|GT|LT]`
pub(super) fn expire(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let now = now_i64(ctx);
    expire_generic(ctx, args, now, true);
}

/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`
pub(super) fn pexpire(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let now = now_i64(ctx);
    expire_generic(ctx, args, now, false);
}

/// `EXPIREAT key unix-time-seconds [NX|XX|GT|LT]`
pub(super) fn expireat(ctx: &mut Ctx<'_>, args: Args<'_>) {
    expire_generic(ctx, args, 0, true);
}

/// `PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]`
pub(super) fn pexpireat(ctx: &mut Ctx<'_>, args: Args<'_>) {
    expire_generic(ctx, args, 0, false);
}

#[inline]
fn now_i64(ctx: &Ctx<'_>) -> i64 {
    i64::try_from(ctx.now_ms).unwrap_or(i64::MAX)
}

/// Redis's `parseExtendedExpireArgumentsOrReply`: every option is read before the incompatible
/// combinations are judged, and before the time argument is parsed.
fn parse_flags(ctx: &mut Ctx<'_>, args: Args<'_>) -> Option<u8> {
    let mut flags = 0u8;
    for opt in args.iter_from(3) {
        if eq_ignore_case(opt, "nx") {
            flags |= NX;
        } else if eq_ignore_case(opt, "xx") {
            flags |= XX;
        } else if eq_ignore_case(opt, "gt") {
            flags |= GT;
        } else if eq_ignore_case(opt, "lt") {
            flags |= LT;
        } else {
            // `%s` stops at the first NUL byte.
            let shown = opt.split(|&b| b == 0).next().unwrap_or_default();
            let msg = format!("ERR Unsupported option {}", String::from_utf8_lossy(shown));
            ctx.reply.error(&msg);
            return None;
        }
    }
    if flags & NX != 0 && flags & (XX | GT | LT) != 0 {
        ctx.reply
            .error("ERR NX and XX, GT or LT options at the same time are not compatible");
        return None;
    }
    if flags & GT != 0 && flags & LT != 0 {
        ctx.reply
            .error("ERR GT and LT options at the same time are not compatible");
        return None;
    }
    Some(flags)
}

/// The absolute expiry in ms for `param`, or `None` when it overflows, exactly where Redis's
/// unit conversion or base-time addition would.
pub(super) fn absolute_ms(param: i64, basetime: i64, seconds: bool) -> Option<i64> {
    // Same bounds as Redis's `when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000` test.
    let when = if seconds {
        param.checked_mul(1000)?
    } else {
        param
    };
    if when > i64::MAX - basetime {
        return None;
    }
    Some(when + basetime)
}

/// Whether an expiry of `when` may replace `current` (-1: none) under `flags`.
pub(super) fn allowed(flags: u8, when: i64, current: i64) -> bool {
    if flags & NX != 0 && current != -1 {
        return false;
    }
    if flags & XX != 0 && current == -1 {
        return false;
    }
    // No expiry counts as an infinite TTL: GT never beats it, LT always does.
    if flags & GT != 0 && (current == -1 || when <= current) {
        return false;
    }
    if flags & LT != 0 && current != -1 && when >= current {
        return false;
    }
    true
}

/// Redis's `expireGenericCommand`; `basetime` is now for relative forms, 0 for absolute ones.
fn expire_generic(ctx: &mut Ctx<'_>, args: Args<'_>, basetime: i64, seconds: bool) {
    let Some(flags) = parse_flags(ctx, args) else {
        return;
    };
    let Some(param) = parse_i64(args.get(2)) else {
        ctx.not_integer();
        return;
    };
    let Some(when) = absolute_ms(param, basetime, seconds) else {
        let msg = format!("ERR invalid expire time in '{}' command", ctx.spec.name);
        ctx.reply.error(&msg);
        return;
    };
    let now = now_i64(ctx);
    let db = ctx.client.db;
    // None: unchanged; Some(deleted).
    let changed = ctx
        .store
        .rmw(db, args.get(1), ctx.now_ms, |entry, _scratch| {
            let Some(entry) = entry else {
                return Write::Keep(None);
            };
            let current = current_expiry(entry.expire_at);
            if !allowed(flags, when, current) {
                return Write::Keep(None);
            }
            // A time at or before now deletes the key at once, as Redis's checkAlreadyExpired.
            if when <= now {
                Write::Delete(Some(true))
            } else {
                Write::SetExpiry {
                    expire_at: when as u64,
                    result: Some(false),
                }
            }
        });
    // Redis raises `del` before its reply and `expire` after it.
    if changed == Some(true) {
        ctx.notify(notify::GENERIC, "del", args.get(1));
    }
    ctx.reply.int(i64::from(changed.is_some()));
    if changed == Some(false) {
        ctx.notify(notify::GENERIC, "expire", args.get(1));
    }
}

/// The store's expiry as Redis's `getExpire`: -1 for none.
#[inline]
fn current_expiry(expire_at: u64) -> i64 {
    if expire_at == NO_EXPIRY {
        -1
    } else {
        i64::try_from(expire_at).unwrap_or(i64::MAX)
    }
}

/// `TTL key`
pub(super) fn ttl(ctx: &mut Ctx<'_>, args: Args<'_>) {
    ttl_generic(ctx, args, false, false);
}

/// `PTTL key`
pub(super) fn pttl(ctx: &mut Ctx<'_>, args: Args<'_>) {
    ttl_generic(ctx, args, true, false);
}

/// `EXPIRETIME key`
pub(super) fn expiretime(ctx: &mut Ctx<'_>, args: Args<'_>) {
    ttl_generic(ctx, args, false, true);
}

/// `PEXPIRETIME key`
pub(super) fn pexpiretime(ctx: &mut Ctx<'_>, args: Args<'_>) {
    ttl_generic(ctx, args, true, true);
}

/// Redis's `ttlGenericCommand`: -2 for a missing key, -1 for no expiry, else the remaining (or
/// absolute) time, never negative, rounded to the nearest second for the second forms.
fn ttl_generic(ctx: &mut Ctx<'_>, args: Args<'_>, ms: bool, absolute: bool) {
    let db = ctx.client.db;
    let Some((_, expire_at)) = ctx.store.kind_and_expiry(db, args.get(1), ctx.now_ms) else {
        ctx.miss(args.get(1));
        ctx.reply.int(-2);
        return;
    };
    ctx.hit();
    if expire_at == NO_EXPIRY {
        ctx.reply.int(-1);
        return;
    }
    let left = if absolute {
        expire_at
    } else {
        expire_at.saturating_sub(ctx.now_ms)
    };
    let left = left.min(i64::MAX as u64);
    ctx.reply.int(ttl_reply(left, ms));
}

/// Milliseconds, or seconds rounded half up (Redis's `(ttl+500)/1000`, which cannot overflow
/// for a non-negative i64 in unsigned arithmetic).
pub(super) fn ttl_reply(left_ms: u64, ms: bool) -> i64 {
    if ms {
        left_ms as i64
    } else {
        ((left_ms + 500) / 1000) as i64
    }
}

/// `PERSIST key`
pub(super) fn persist(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let db = ctx.client.db;
    let removed = ctx
        .store
        .rmw(db, args.get(1), ctx.now_ms, |entry, _scratch| match entry {
            Some(e) if e.expire_at != NO_EXPIRY => Write::SetExpiry {
                expire_at: NO_EXPIRY,
                result: true,
            },
            _ => Write::Keep(false),
        });
    if removed {
        ctx.notify(notify::GENERIC, "persist", args.get(1));
    }
    ctx.reply.int(i64::from(removed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_points_match_redis() {
        assert_eq!(absolute_ms(10, 1000, true), Some(11_000));
        assert_eq!(absolute_ms(-10, 1000, true), Some(-9_000));
        assert_eq!(
            absolute_ms(i64::MAX / 1000, 0, true),
            Some(i64::MAX / 1000 * 1000)
        );
        assert_eq!(absolute_ms(i64::MAX / 1000 + 1, 0, true), None);
        assert_eq!(absolute_ms(i64::MIN / 1000 - 1, 0, true), None);
        assert_eq!(absolute_ms(i64::MIN, 0, false), Some(i64::MIN));
        assert_eq!(absolute_ms(i64::MAX, 0, false), Some(i64::MAX));
        assert_eq!(absolute_ms(i64::MAX, 1, false), None);
        assert_eq!(absolute_ms(i64::MAX / 1000, 1_700_000_000_000, true), None);
        // A large negative relative time plus now never overflows downwards.
        assert_eq!(absolute_ms(i64::MIN, 5, false), Some(i64::MIN + 5));
    }

    #[test]
    fn conditions() {
        assert!(allowed(NX, 5, -1));
        assert!(!allowed(NX, 5, 3));
        assert!(!allowed(XX, 5, -1));
        assert!(allowed(XX, 5, 3));
        assert!(!allowed(GT, 5, -1));
        assert!(allowed(GT, 5, 3));
        assert!(!allowed(GT, 3, 3));
        assert!(allowed(LT, 5, -1));
        assert!(allowed(LT, 2, 3));
        assert!(!allowed(LT, 3, 3));
        assert!(allowed(XX | GT, 5, 3));
        assert!(!allowed(XX | LT, 5, -1));
        assert!(allowed(0, -100, 3));
    }

    #[test]
    fn rounding() {
        assert_eq!(ttl_reply(1499, false), 1);
        assert_eq!(ttl_reply(1500, false), 2);
        assert_eq!(ttl_reply(0, false), 0);
        assert_eq!(ttl_reply(i64::MAX as u64, false), 9_223_372_036_854_776);
        assert_eq!(ttl_reply(i64::MAX as u64, true), i64::MAX);
    }
}
