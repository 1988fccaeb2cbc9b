//! SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP.

use ferrite_hybridlog::{NO_EXPIRY, ValueKind, Write};

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::cmd::strings::is_string;
use crate::config::Config;
use crate::ctx::Ctx;
use crate::notify::flags;

/// Redis's `getBitOffsetFromArgument`: a bit offset, `#n` meaning `n * bits` when `hash_bits`
/// is given (BITFIELD), below `proto-max-bulk-len` bytes.
pub(super) fn bit_offset(ctx: &Ctx<'_>, arg: &[u8], hash_bits: Option<u32>) -> Option<u64> {
    let (hash, digits) = match (hash_bits, arg.first()) {
        (Some(bits), Some(b'#')) => (Some(bits), &arg[1..]),
        _ => (None, arg),
    };
    let mut v = parse_i64(digits)?;
    if let Some(bits) = hash {
        // Redis multiplies in C; an overflow wraps negative and is refused below.
        v = v.wrapping_mul(i64::from(bits));
    }
    let max = Config::load(&ctx.server.config.proto_max_bulk_len);
    if v < 0 || (v as u64 >> 3) >= max {
        return None;
    }
    Some(v as u64)
}

/// `-ERR bit offset is not an integer or out of range`.
#[cold]
pub(super) fn bad_offset(ctx: &mut Ctx<'_>) {
    ctx.reply
        .error("ERR bit offset is not an integer or out of range");
}

/// Bit `offset` of `s` (bit 0 is the most significant bit of byte 0); past the end is 0.
#[inline]
fn bit_at(s: &[u8], offset: u64) -> u8 {
    let byte = (offset >> 3) as usize;
    match s.get(byte) {
        Some(b) => (b >> (7 - (offset & 7))) & 1,
        None => 0,
    }
}

/// What a bitmap write found.
pub(super) enum BitOutcome<T> {
    Done(T),
    WrongType,
}

/// `SETBIT key offset value`: the previous bit. Grows the string with zero bytes; keeps the TTL.
pub(super) fn setbit(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(offset) = bit_offset(ctx, args.get(2), None) else {
        return bad_offset(ctx);
    };
    let on = match parse_i64(args.get(3)) {
        Some(v @ (0 | 1)) => v as u8,
        _ => {
            ctx.reply.error("ERR bit is not an integer or out of range");
            return;
        }
    };
    let byte = (offset >> 3) as usize;
    let shift = 7 - (offset & 7) as u8;
    let mut wrote = false;
    let outcome = ctx
        .store
        .rmw(ctx.client.db, args.get(1), ctx.now_ms, |entry, buf| {
            let (old, expire_at): (&[u8], u64) = match entry {
                None => (&[], NO_EXPIRY),
                Some(e) if !is_string(e.kind) => return Write::Keep(BitOutcome::WrongType),
                Some(e) => (e.value, e.expire_at),
            };
            let prev = bit_at(old, offset);
            wrote = false;
            if byte < old.len() && prev == on {
                return Write::Keep(BitOutcome::Done(prev));
            }
            wrote = true;
            buf.clear();
            buf.extend_from_slice(old);
            if buf.len() <= byte {
                buf.resize(byte + 1, 0);
            }
            buf[byte] = (buf[byte] & !(1 << shift)) | (on << shift);
            Write::Put {
                kind: ValueKind::String,
                expire_at,
                result: BitOutcome::Done(prev),
            }
        });
    match outcome {
        BitOutcome::Done(prev) => {
            // Redis raises it when the string grew or the bit changed.
            if wrote {
                ctx.notify(flags::STRING, "setbit", args.get(1));
            }
            ctx.reply.int(i64::from(prev));
        }
        BitOutcome::WrongType => ctx.wrong_type(),
    }
}

/// `GETBIT key offset`
pub(super) fn getbit(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(offset) = bit_offset(ctx, args.get(2), None) else {
        return bad_offset(ctx);
    };
    let found = ctx.store.read(ctx.client.db, args.get(1), ctx.now_ms, |e| {
        is_string(e.kind).then(|| bit_at(e.value, offset))
    });
    match found {
        Some(Some(bit)) => {
            ctx.hit();
            ctx.reply.int(i64::from(bit));
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

/// An error a bitmap read found while looking at the value.
#[derive(Clone, Copy)]
enum ReadError {
    WrongType,
    NotInteger,
    Syntax,
}

fn reply_read(ctx: &mut Ctx<'_>, key: &[u8], r: Option<Result<i64, ReadError>>, missing: i64) {
    match r {
        None => {
            ctx.miss(key);
            ctx.reply.int(missing);
        }
        Some(r) => {
            ctx.hit();
            match r {
                Ok(v) => ctx.reply.int(v),
                Err(ReadError::WrongType) => ctx.wrong_type(),
                Err(ReadError::NotInteger) => ctx.not_integer(),
                Err(ReadError::Syntax) => ctx.syntax_error(),
            }
        }
    }
}

/// Parses BYTE|BIT.
fn unit_is_bit(arg: &[u8]) -> Result<bool, ReadError> {
    if eq_ignore_case(arg, "bit") {
        Ok(true)
    } else if eq_ignore_case(arg, "byte") {
        Ok(false)
    } else {
        Err(ReadError::Syntax)
    }
}

/// A resolved bit range: first and last bit (inclusive), or `None` when empty.
fn clamp_range(start: i64, end: i64, total: i64) -> Option<(i64, i64)> {
    let mut start = if start < 0 { total + start } else { start };
    let mut end = if end < 0 { total + end } else { end };
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    (start <= end).then_some((start, end))
}

/// Set bits of `s` between bits `first..=last`.
fn popcount_bits(s: &[u8], first: u64, last: u64) -> i64 {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    let mut count: u64 = s[fb..=lb].iter().map(|b| u64::from(b.count_ones())).sum();
    // Bits of the edge bytes outside the range.
    let head = if first & 7 == 0 {
        0
    } else {
        0xffu8 << (8 - (first & 7))
    };
    let tail = if last & 7 == 7 {
        0
    } else {
        0xffu8 >> ((last & 7) + 1)
    };
    count -= u64::from((s[fb] & head).count_ones());
    count -= u64::from((s[lb] & tail).count_ones());
    count as i64
}

/// `BITCOUNT key [start end [BYTE|BIT]]`
pub(super) fn bitcount(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let argc = args.len();
    let r = ctx.store.read(ctx.client.db, args.get(1), ctx.now_ms, |e| {
        if !is_string(e.kind) {
            return Err(ReadError::WrongType);
        }
        let s = e.value;
        let len = s.len() as i64;
        let (first, last) = match argc {
            2 => match clamp_range(0, len - 1, len) {
                Some((a, b)) => ((a * 8) as u64, (b * 8 + 7) as u64),
                None => return Ok(0),
            },
            4 | 5 => {
                let start = parse_i64(args.get(2)).ok_or(ReadError::NotInteger)?;
                let end = parse_i64(args.get(3)).ok_or(ReadError::NotInteger)?;
                if start < 0 && end < 0 && start > end {
                    return Ok(0);
                }
                let isbit = if argc == 5 {
                    unit_is_bit(args.get(4))?
                } else {
                    false
                };
                let total = if isbit { len * 8 } else { len };
                match clamp_range(start, end, total) {
                    None => return Ok(0),
                    Some((a, b)) if isbit => (a as u64, b as u64),
                    Some((a, b)) => ((a * 8) as u64, (b * 8 + 7) as u64),
                }
            }
            _ => return Err(ReadError::Syntax),
        };
        Ok(popcount_bits(s, first, last))
    });
    reply_read(ctx, args.get(1), r, 0);
}

/// First bit equal to `bit` in bits `first..=last` of `s`.
fn find_bit(s: &[u8], first: u64, last: u64, bit: u8) -> Option<u64> {
    let mut pos = first;
    // Bit by bit up to a byte boundary, then whole bytes, then the tail.
    while pos <= last && pos & 7 != 0 {
        if bit_at(s, pos) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    let skip = if bit == 1 { 0x00 } else { 0xff };
    while pos + 7 <= last {
        let b = s[(pos >> 3) as usize];
        if b != skip {
            let lead = if bit == 1 {
                b.leading_zeros()
            } else {
                (!b).leading_zeros()
            };
            return Some(pos + u64::from(lead));
        }
        pos += 8;
    }
    while pos <= last {
        if bit_at(s, pos) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// `BITPOS key bit [start [end [BYTE|BIT]]]`
pub(super) fn bitpos(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let bit = match parse_i64(args.get(2)) {
        Some(b @ (0 | 1)) => b as u8,
        Some(_) => {
            ctx.reply.error("ERR The bit argument must be 1 or 0.");
            return;
        }
        None => return ctx.not_integer(),
    };
    let argc = args.len();
    let r = ctx.store.read(ctx.client.db, args.get(1), ctx.now_ms, |e| {
        if !is_string(e.kind) {
            return Err(ReadError::WrongType);
        }
        let s = e.value;
        let len = s.len() as i64;
        let mut end_given = false;
        let range = match argc {
            3 => clamp_range(0, len - 1, len).map(|(a, b)| (a * 8, b * 8 + 7)),
            4..=6 => {
                let start = parse_i64(args.get(3)).ok_or(ReadError::NotInteger)?;
                let isbit = if argc == 6 {
                    unit_is_bit(args.get(5))?
                } else {
                    false
                };
                let end = if argc >= 5 {
                    end_given = true;
                    parse_i64(args.get(4)).ok_or(ReadError::NotInteger)?
                } else if isbit {
                    len * 8 + 7
                } else {
                    len - 1
                };
                let total = if isbit { len * 8 } else { len };
                match clamp_range(start, end, total) {
                    Some((a, b)) if isbit => Some((a, b)),
                    Some((a, b)) => Some((a * 8, b * 8 + 7)),
                    None => None,
                }
            }
            _ => return Err(ReadError::Syntax),
        };
        let Some((first, last)) = range else {
            return Ok(-1);
        };
        Ok(match find_bit(s, first as u64, last as u64, bit) {
            Some(p) => p as i64,
            // Past the end a string is zero-padded, unless the caller bounded the range.
            None if bit == 0 && !end_given => ((last as u64 >> 3) + 1) as i64 * 8,
            None => -1,
        })
    });
    reply_read(ctx, args.get(1), r, if bit == 1 { -1 } else { 0 });
}

/// `BITOP AND|OR|XOR|NOT destkey key [key ...]` (EXCLUSIVE: sources and destination change
/// together). Replies the length of the result; an empty result deletes the destination.
pub(super) fn bitop(ctx: &mut Ctx<'_>, args: Args<'_>) {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let name = args.get(1);
    let op = if eq_ignore_case(name, "and") {
        Op::And
    } else if eq_ignore_case(name, "or") {
        Op::Or
    } else if eq_ignore_case(name, "xor") {
        Op::Xor
    } else if eq_ignore_case(name, "not") {
        Op::Not
    } else {
        return ctx.syntax_error();
    };
    if op == Op::Not && args.len() != 4 {
        ctx.reply
            .error("ERR BITOP NOT must be called with a single source key.");
        return;
    }
    let db = ctx.client.db;
    let mut sources: Vec<Option<Vec<u8>>> = Vec::with_capacity(args.len() - 3);
    for key in args.iter_from(3) {
        let found = ctx.store.read(db, key, ctx.now_ms, |e| {
            is_string(e.kind).then(|| e.value.to_vec())
        });
        match found {
            None => {
                ctx.miss(key);
                sources.push(None);
            }
            Some(None) => {
                ctx.hit();
                return ctx.wrong_type();
            }
            Some(v) => {
                ctx.hit();
                sources.push(v);
            }
        }
    }
    let maxlen = sources.iter().flatten().map(Vec::len).max().unwrap_or(0);
    let dest = args.get(2);
    if maxlen == 0 {
        if ctx.store.delete(db, dest, ctx.now_ms) {
            ctx.notify(flags::GENERIC, "del", dest);
        }
        ctx.reply.int(0);
        return;
    }
    let byte =
        |src: &Option<Vec<u8>>, i: usize| src.as_ref().and_then(|s| s.get(i)).copied().unwrap_or(0);
    let mut res = vec![0u8; maxlen];
    for (i, out) in res.iter_mut().enumerate() {
        let mut v = byte(&sources[0], i);
        match op {
            Op::Not => v = !v,
            Op::And => sources[1..].iter().for_each(|s| v &= byte(s, i)),
            Op::Or => sources[1..].iter().for_each(|s| v |= byte(s, i)),
            Op::Xor => sources[1..].iter().for_each(|s| v ^= byte(s, i)),
        }
        *out = v;
    }
    ctx.reap_for_notify(dest);
    ctx.store
        .upsert(db, dest, &res, ValueKind::String, NO_EXPIRY);
    ctx.notify(flags::STRING, "set", dest);
    ctx.reply.int(maxlen as i64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn popcount_edges() {
        let s = b"foobar";
        assert_eq!(popcount_bits(s, 0, 47), 26);
        assert_eq!(popcount_bits(s, 5, 30), 17);
        assert_eq!(popcount_bits(&[0xff], 3, 3), 1);
        assert_eq!(popcount_bits(&[0xff, 0xff], 1, 14), 14);
    }

    #[test]
    fn find_bits() {
        assert_eq!(find_bit(&[0xff, 0xf0], 0, 15, 0), Some(12));
        assert_eq!(find_bit(&[0x00, 0x01], 0, 15, 1), Some(15));
        assert_eq!(find_bit(&[0x00, 0x01], 0, 14, 1), None);
        assert_eq!(find_bit(&[0xff, 0xff], 3, 15, 0), None);
        assert_eq!(find_bit(&[0x80], 1, 7, 1), None);
    }
}
