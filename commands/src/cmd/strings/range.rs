//! Whole-string and range operations: APPEND, STRLEN, GETRANGE/SUBSTR, SETRANGE.

use ferrite_hybridlog::{NO_EXPIRY, ValueKind, Write};

use super::{fits_string as within, is_string, string_too_long};
use crate::args::{Args, parse_i64};
use crate::config::Config;
use crate::ctx::Ctx;
use crate::notify::flags;

/// What a length-limited write did.
enum GrowOutcome {
    Len(usize),
    WrongType,
    TooLong,
}

/// `APPEND key value`: the new length. Keeps the TTL.
pub(super) fn append(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let value = args.get(2);
    let max = Config::load(&ctx.server.config.proto_max_bulk_len);
    let outcome = ctx
        .store
        .rmw(ctx.client.db, args.get(1), ctx.now_ms, |entry, buf| {
            buf.clear();
            let expire_at = match entry {
                // A new key takes the argument as it is (the protocol already bounded it).
                None => NO_EXPIRY,
                Some(e) if !is_string(e.kind) => return Write::Keep(GrowOutcome::WrongType),
                Some(e) => {
                    if !within(max, e.value.len() as u64, value.len() as u64) {
                        return Write::Keep(GrowOutcome::TooLong);
                    }
                    buf.reserve(e.value.len() + value.len());
                    buf.extend_from_slice(e.value);
                    e.expire_at
                }
            };
            buf.extend_from_slice(value);
            Write::Put {
                kind: ValueKind::String,
                expire_at,
                result: GrowOutcome::Len(buf.len()),
            }
        });
    if let GrowOutcome::Len(_) = outcome {
        ctx.notify(flags::STRING, "append", args.get(1));
    }
    reply_grow(ctx, outcome);
}

fn reply_grow(ctx: &mut Ctx<'_>, outcome: GrowOutcome) {
    match outcome {
        GrowOutcome::Len(n) => ctx.reply.int(n as i64),
        GrowOutcome::WrongType => ctx.wrong_type(),
        GrowOutcome::TooLong => string_too_long(ctx),
    }
}

/// `STRLEN key`
pub(super) fn strlen(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let found = ctx.store.read(ctx.client.db, args.get(1), ctx.now_ms, |e| {
        is_string(e.kind).then_some(e.value.len())
    });
    match found {
        Some(Some(n)) => {
            ctx.hit();
            ctx.reply.int(n as i64);
        }
        Some(None) => {
            ctx.hit();
            ctx.wrong_type();
        }
        None => {
            ctx.miss(args.get(1));
            ctx.reply.int(0);
        }
    }
}

/// The byte range `GETRANGE` returns for a string of `len` bytes, Redis's index rules
/// (negative from the end, clamped, empty when inverted).
pub(crate) fn getrange_bounds(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize + 1))
}

/// `GETRANGE key start end` (and its old name `SUBSTR`).
pub(super) fn getrange(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (Some(start), Some(end)) = (parse_i64(args.get(2)), parse_i64(args.get(3))) else {
        ctx.not_integer();
        return;
    };
    let reply = &mut ctx.reply;
    let found = ctx.store.read(ctx.client.db, args.get(1), ctx.now_ms, |e| {
        if !is_string(e.kind) {
            return false;
        }
        match getrange_bounds(start, end, e.value.len()) {
            Some((a, b)) => reply.bulk(&e.value[a..b]),
            None => reply.bulk(b""),
        }
        true
    });
    match found {
        Some(true) => ctx.hit(),
        Some(false) => {
            ctx.hit();
            ctx.wrong_type();
        }
        None => {
            ctx.miss(args.get(1));
            ctx.reply.bulk(b"");
        }
    }
}

/// `SUBSTR key start end`
pub(super) fn substr(ctx: &mut Ctx<'_>, args: Args<'_>) {
    getrange(ctx, args);
}

/// `SETRANGE key offset value`: the new length. Keeps the TTL.
pub(super) fn setrange(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(offset) = parse_i64(args.get(2)) else {
        ctx.not_integer();
        return;
    };
    if offset < 0 {
        ctx.reply.error("ERR offset is out of range");
        return;
    }
    let offset = offset as u64;
    let value = args.get(3);
    let max = Config::load(&ctx.server.config.proto_max_bulk_len);
    let mut wrote = false;
    let outcome = ctx
        .store
        .rmw(ctx.client.db, args.get(1), ctx.now_ms, |entry, buf| {
            wrote = false;
            let (old, expire_at): (&[u8], u64) = match entry {
                None if value.is_empty() => return Write::Keep(GrowOutcome::Len(0)),
                None => (&[], NO_EXPIRY),
                Some(e) if !is_string(e.kind) => return Write::Keep(GrowOutcome::WrongType),
                Some(e) if value.is_empty() => return Write::Keep(GrowOutcome::Len(e.value.len())),
                Some(e) => (e.value, e.expire_at),
            };
            if !within(max, offset, value.len() as u64) {
                return Write::Keep(GrowOutcome::TooLong);
            }
            // Within proto-max-bulk-len, so it fits in memory arithmetic.
            let start = offset as usize;
            let end = start + value.len();
            buf.clear();
            buf.extend_from_slice(old);
            if buf.len() < end {
                buf.resize(end, 0);
            }
            buf[start..end].copy_from_slice(value);
            wrote = true;
            Write::Put {
                kind: ValueKind::String,
                expire_at,
                result: GrowOutcome::Len(buf.len()),
            }
        });
    if wrote {
        ctx.notify(flags::STRING, "setrange", args.get(1));
    }
    reply_grow(ctx, outcome);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_rules() {
        assert_eq!(getrange_bounds(0, -1, 5), Some((0, 5)));
        assert_eq!(getrange_bounds(-1, -5, 5), None);
        assert_eq!(getrange_bounds(-100, 100, 5), Some((0, 5)));
        assert_eq!(getrange_bounds(3, 1, 5), None);
        assert_eq!(getrange_bounds(0, 0, 0), None);
        assert_eq!(getrange_bounds(i64::MIN, i64::MAX, 5), Some((0, 5)));
        assert_eq!(getrange_bounds(4, i64::MAX, 5), Some((4, 5)));
        assert_eq!(getrange_bounds(5, 10, 5), None);
    }
}
