//! Counters: INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT. Each is one `rmw`, and keeps the key's TTL.

use ferrite_hybridlog::{NO_EXPIRY, ValueKind, Write};

use super::is_string;
use super::longdouble::{self, Ld, Parsed};
use crate::args::{Args, parse_i64};
use crate::ctx::Ctx;
use crate::notify::flags;
use crate::resp::reply::{format_i64, itoa_buf};

/// What an integer increment did.
enum IncrOutcome {
    Value(i64),
    WrongType,
    NotInteger,
    Overflow,
}

/// Redis's `incrDecrCommand`.
fn incr_generic(ctx: &mut Ctx<'_>, key: &[u8], incr: i64) {
    let outcome = ctx.store.rmw(ctx.client.db, key, ctx.now_ms, |entry, buf| {
        let (old, expire_at) = match entry {
            None => (0, NO_EXPIRY),
            Some(e) if !is_string(e.kind) => return Write::Keep(IncrOutcome::WrongType),
            Some(e) => match parse_i64(e.value) {
                Some(v) => (v, e.expire_at),
                None => return Write::Keep(IncrOutcome::NotInteger),
            },
        };
        let Some(new) = old.checked_add(incr) else {
            return Write::Keep(IncrOutcome::Overflow);
        };
        let mut digits = itoa_buf();
        buf.clear();
        buf.extend_from_slice(format_i64(&mut digits, new));
        Write::Put {
            kind: ValueKind::String,
            expire_at,
            result: IncrOutcome::Value(new),
        }
    });
    match outcome {
        IncrOutcome::Value(v) => {
            ctx.notify(flags::STRING, "incrby", key);
            ctx.reply.int(v);
        }
        IncrOutcome::WrongType => ctx.wrong_type(),
        IncrOutcome::NotInteger => ctx.not_integer(),
        IncrOutcome::Overflow => ctx.reply.error("ERR increment or decrement would overflow"),
    }
}

/// `INCR key`
pub(super) fn incr(ctx: &mut Ctx<'_>, args: Args<'_>) {
    incr_generic(ctx, args.get(1), 1);
}

/// `DECR key`
pub(super) fn decr(ctx: &mut Ctx<'_>, args: Args<'_>) {
    incr_generic(ctx, args.get(1), -1);
}

/// `INCRBY key increment`
pub(super) fn incrby(ctx: &mut Ctx<'_>, args: Args<'_>) {
    match parse_i64(args.get(2)) {
        Some(by) => incr_generic(ctx, args.get(1), by),
        None => ctx.not_integer(),
    }
}

/// `DECRBY key decrement`
pub(super) fn decrby(ctx: &mut Ctx<'_>, args: Args<'_>) {
    match parse_i64(args.get(2)) {
        // Negating LLONG_MIN would overflow.
        Some(i64::MIN) => ctx.reply.error("ERR decrement would overflow"),
        Some(by) => incr_generic(ctx, args.get(1), -by),
        None => ctx.not_integer(),
    }
}

/// What INCRBYFLOAT did.
enum FloatOutcome {
    Value,
    WrongType,
    NotFloat,
    NanOrInfinity,
}

/// `INCRBYFLOAT key increment`, in `long double` arithmetic as Redis computes it.
pub(super) fn incrbyfloat(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let incr = longdouble::parse(args.get(2));
    let mut result: Vec<u8> = Vec::new();
    let outcome = ctx
        .store
        .rmw(ctx.client.db, args.get(1), ctx.now_ms, |entry, buf| {
            let (old, expire_at) = match entry {
                None => (Some(Parsed::Finite(Ld::default())), NO_EXPIRY),
                Some(e) if !is_string(e.kind) => return Write::Keep(FloatOutcome::WrongType),
                Some(e) => (longdouble::parse(e.value), e.expire_at),
            };
            let (Some(old), Some(incr)) = (old, incr) else {
                return Write::Keep(FloatOutcome::NotFloat);
            };
            let sum = match (old, incr) {
                (Parsed::Finite(a), Parsed::Finite(b)) => a.add(b),
                _ => None,
            };
            let Some(sum) = sum else {
                return Write::Keep(FloatOutcome::NanOrInfinity);
            };
            result = sum.to_human();
            buf.clear();
            buf.extend_from_slice(&result);
            Write::Put {
                kind: ValueKind::String,
                expire_at,
                result: FloatOutcome::Value,
            }
        });
    match outcome {
        FloatOutcome::Value => {
            ctx.notify(flags::STRING, "incrbyfloat", args.get(1));
            ctx.reply.bulk(&result);
        }
        FloatOutcome::WrongType => ctx.wrong_type(),
        FloatOutcome::NotFloat => ctx.not_float(),
        FloatOutcome::NanOrInfinity => ctx
            .reply
            .error("ERR increment would produce NaN or Infinity"),
    }
}
