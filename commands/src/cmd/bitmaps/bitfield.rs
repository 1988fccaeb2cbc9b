//! BITFIELD and BITFIELD_RO: integers of 1 to 64 bits at arbitrary bit offsets.

use ferrite_hybridlog::{NO_EXPIRY, ValueKind, Write};

use super::ops::{BitOutcome, bad_offset, bit_offset};
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::cmd::strings::is_string;
use crate::ctx::Ctx;
use crate::notify::flags;

/// What to do on overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Get,
    Set,
    IncrBy,
}

#[derive(Debug, Clone, Copy)]
struct Op {
    kind: OpKind,
    offset: u64,
    value: i64,
    signed: bool,
    bits: u32,
    overflow: Overflow,
}

/// Redis's `getBitfieldTypeFromArgument`: `i1`..`i64` or `u1`..`u63`.
fn parse_type(arg: &[u8]) -> Option<(bool, u32)> {
    // Lower case only, as Redis.
    let signed = match arg.first()? {
        b'i' => true,
        b'u' => false,
        _ => return None,
    };
    // Redis reads the width as a C string: it ends at a NUL.
    let rest = &arg[1..];
    let rest = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
    let bits = parse_i64(rest)?;
    let max = if signed { 64 } else { 63 };
    (1..=max).contains(&bits).then_some((signed, bits as u32))
}

/// Reads `bits` bits at bit `offset` of `s` as an unsigned number (zero past the end).
fn get_unsigned(s: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for i in 0..u64::from(bits) {
        let pos = offset + i;
        let bit = s
            .get((pos >> 3) as usize)
            .map_or(0, |b| (b >> (7 - (pos & 7))) & 1);
        v = (v << 1) | u64::from(bit);
    }
    v
}

fn get_signed(s: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned(s, offset, bits);
    if bits == 64 {
        return v as i64;
    }
    // Sign-extend from the field's top bit.
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// Writes the low `bits` bits of `v` at bit `offset`; `s` must be long enough.
fn set_bits(s: &mut [u8], offset: u64, bits: u32, v: u64) {
    for i in 0..u64::from(bits) {
        let bit = ((v >> (u64::from(bits) - 1 - i)) & 1) as u8;
        let pos = offset + i;
        let byte = (pos >> 3) as usize;
        let shift = 7 - (pos & 7) as u8;
        s[byte] = (s[byte] & !(1 << shift)) | (bit << shift);
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: whether `value + incr` overflows a `bits`-bit
/// unsigned field, and the value to store instead under WRAP or SAT.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (bool, u64) {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let wrap = || {
        let res = value.wrapping_add(incr as u64);
        if bits == 64 { res } else { res & max }
    };
    if value > max || (incr > 0 && incr > maxincr) {
        return (true, if ow == Overflow::Sat { max } else { wrap() });
    }
    if incr < 0 && incr < minincr {
        return (true, if ow == Overflow::Sat { 0 } else { wrap() });
    }
    (false, 0)
}

/// Redis's `checkSignedBitfieldOverflow`.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (bool, i64) {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let msb = 1u64 << (bits - 1);
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        return (true, if ow == Overflow::Sat { max } else { wrap() });
    }
    if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
        return (true, if ow == Overflow::Sat { min } else { wrap() });
    }
    (false, 0)
}

/// Applies a SET or INCRBY to `s` (long enough); the reply value, `None` for a FAIL overflow.
fn apply(s: &mut [u8], op: &Op) -> Option<i64> {
    let incr = op.kind == OpKind::IncrBy;
    if op.signed {
        let old = get_signed(s, op.offset, op.bits);
        let (ovf, new, ret) = if incr {
            let (ovf, w) = signed_overflow(old, op.value, op.bits, op.overflow);
            let new = if ovf { w } else { old.wrapping_add(op.value) };
            (ovf, new, new)
        } else {
            let (ovf, w) = signed_overflow(op.value, 0, op.bits, op.overflow);
            (ovf, if ovf { w } else { op.value }, old)
        };
        if ovf && op.overflow == Overflow::Fail {
            return None;
        }
        set_bits(s, op.offset, op.bits, new as u64);
        Some(ret)
    } else {
        let old = get_unsigned(s, op.offset, op.bits);
        let (ovf, new, ret) = if incr {
            let (ovf, w) = unsigned_overflow(old, op.value, op.bits, op.overflow);
            let new = if ovf {
                w
            } else {
                old.wrapping_add(op.value as u64)
            };
            (ovf, new, new)
        } else {
            let v = op.value as u64;
            let (ovf, w) = unsigned_overflow(v, 0, op.bits, op.overflow);
            (ovf, if ovf { w } else { v }, old)
        };
        if ovf && op.overflow == Overflow::Fail {
            return None;
        }
        set_bits(s, op.offset, op.bits, new);
        Some(ret as i64)
    }
}

/// Parses the operations; replies the error and returns `None` on a bad one.
fn parse_ops(ctx: &mut Ctx<'_>, args: Args<'_>) -> Option<Vec<Op>> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let remaining = args.len() - j - 1;
        let sub = args.get(j);
        let kind = if eq_ignore_case(sub, "get") && remaining >= 2 {
            OpKind::Get
        } else if eq_ignore_case(sub, "set") && remaining >= 3 {
            OpKind::Set
        } else if eq_ignore_case(sub, "incrby") && remaining >= 3 {
            OpKind::IncrBy
        } else if eq_ignore_case(sub, "overflow") && remaining >= 1 {
            let name = args.get(j + 1);
            overflow = if eq_ignore_case(name, "wrap") {
                Overflow::Wrap
            } else if eq_ignore_case(name, "sat") {
                Overflow::Sat
            } else if eq_ignore_case(name, "fail") {
                Overflow::Fail
            } else {
                ctx.reply.error("ERR Invalid OVERFLOW type specified");
                return None;
            };
            j += 2;
            continue;
        } else {
            ctx.syntax_error();
            return None;
        };
        let Some((signed, bits)) = parse_type(args.get(j + 1)) else {
            ctx.reply.error(
                "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not \
                 supported but i64 is.",
            );
            return None;
        };
        let Some(offset) = bit_offset(ctx, args.get(j + 2), Some(bits)) else {
            bad_offset(ctx);
            return None;
        };
        let mut value = 0;
        if kind != OpKind::Get {
            let Some(v) = parse_i64(args.get(j + 3)) else {
                ctx.not_integer();
                return None;
            };
            value = v;
        }
        ops.push(Op {
            kind,
            offset,
            value,
            signed,
            bits,
            overflow,
        });
        j += if kind == OpKind::Get { 3 } else { 4 };
    }
    Some(ops)
}

/// Replies the GETs of a read-only BITFIELD against `s` (empty when the key is missing).
fn reply_gets(ctx: &mut Ctx<'_>, s: &[u8], ops: &[Op]) {
    ctx.reply.array_len(ops.len());
    for op in ops {
        let v = if op.signed {
            get_signed(s, op.offset, op.bits)
        } else {
            get_unsigned(s, op.offset, op.bits) as i64
        };
        ctx.reply.int(v);
    }
}

fn bitfield_generic(ctx: &mut Ctx<'_>, args: Args<'_>, readonly_cmd: bool) {
    let Some(ops) = parse_ops(ctx, args) else {
        return;
    };
    let key = args.get(1);
    let db = ctx.client.db;
    if ops.iter().all(|op| op.kind == OpKind::Get) {
        let reply = &mut ctx.reply;
        let found = ctx.store.read(db, key, ctx.now_ms, |e| {
            if !is_string(e.kind) {
                return false;
            }
            reply.array_len(ops.len());
            for op in &ops {
                let v = if op.signed {
                    get_signed(e.value, op.offset, op.bits)
                } else {
                    get_unsigned(e.value, op.offset, op.bits) as i64
                };
                reply.int(v);
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
                reply_gets(ctx, &[], &ops);
            }
        }
        return;
    }
    if readonly_cmd {
        ctx.reply
            .error("ERR BITFIELD_RO only supports the GET subcommand");
        return;
    }
    let highest = ops
        .iter()
        .filter(|op| op.kind != OpKind::Get)
        .map(|op| op.offset + u64::from(op.bits) - 1)
        .max()
        .unwrap_or(0);
    let need = (highest >> 3) as usize + 1;
    let mut results: Vec<Option<i64>> = Vec::with_capacity(ops.len());
    let outcome = ctx.store.rmw(db, key, ctx.now_ms, |entry, buf| {
        let (old, expire_at): (&[u8], u64) = match entry {
            None => (&[], NO_EXPIRY),
            Some(e) if !is_string(e.kind) => return Write::Keep(BitOutcome::WrongType),
            Some(e) => (e.value, e.expire_at),
        };
        buf.clear();
        buf.extend_from_slice(old);
        if buf.len() < need {
            buf.resize(need, 0);
        }
        results.clear();
        for op in &ops {
            results.push(match op.kind {
                OpKind::Get => Some(if op.signed {
                    get_signed(buf, op.offset, op.bits)
                } else {
                    get_unsigned(buf, op.offset, op.bits) as i64
                }),
                _ => apply(buf, op),
            });
        }
        Write::Put {
            kind: ValueKind::String,
            expire_at,
            result: BitOutcome::Done(()),
        }
    });
    match outcome {
        BitOutcome::WrongType => ctx.wrong_type(),
        BitOutcome::Done(()) => {
            // Redis's `changes`: the SETs and INCRBYs that OVERFLOW FAIL did not refuse.
            let changes = ops
                .iter()
                .zip(&results)
                .any(|(op, r)| op.kind != OpKind::Get && r.is_some());
            ctx.reply.array_len(results.len());
            for r in results {
                match r {
                    Some(v) => ctx.reply.int(v),
                    None => ctx.reply.null(),
                }
            }
            if changes {
                ctx.notify(flags::STRING, "setbit", key);
            }
        }
    }
}

/// `BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
/// [OVERFLOW WRAP|SAT|FAIL] ...`
pub(super) fn bitfield(ctx: &mut Ctx<'_>, args: Args<'_>) {
    bitfield_generic(ctx, args, false);
}

/// `BITFIELD_RO key [GET type offset ...]`
pub(super) fn bitfield_ro(ctx: &mut Ctx<'_>, args: Args<'_>) {
    bitfield_generic(ctx, args, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        assert_eq!(parse_type(b"i64"), Some((true, 64)));
        assert_eq!(parse_type(b"u63"), Some((false, 63)));
        assert_eq!(parse_type(b"U8"), None);
        assert_eq!(parse_type(b"u64"), None);
        assert_eq!(parse_type(b"i0"), None);
        assert_eq!(parse_type(b"i08"), None);
        assert_eq!(parse_type(b"x8"), None);
        assert_eq!(parse_type(b""), None);
    }

    #[test]
    fn fields_round_trip() {
        let mut s = vec![0u8; 9];
        set_bits(&mut s, 3, 64, 0x8123_4567_89ab_cdef);
        assert_eq!(get_unsigned(&s, 3, 64), 0x8123_4567_89ab_cdef);
        assert_eq!(get_signed(&s, 3, 4), -8);
        assert_eq!(get_unsigned(&[0xff], 4, 8), 0xf0);
    }

    #[test]
    fn overflow_rules() {
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Wrap), (true, 4));
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Sat), (true, 255));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Sat), (true, 0));
        assert_eq!(
            unsigned_overflow(u64::MAX, 0, 8, Overflow::Wrap),
            (true, 255)
        );
        assert_eq!(signed_overflow(127, 1, 8, Overflow::Wrap), (true, -128));
        assert_eq!(signed_overflow(-128, -1, 8, Overflow::Sat), (true, -128));
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Wrap),
            (true, i64::MIN)
        );
        assert_eq!(signed_overflow(100, 0, 8, Overflow::Wrap), (false, 0));
        assert_eq!(signed_overflow(200, 0, 8, Overflow::Wrap), (true, -56));
    }
}
