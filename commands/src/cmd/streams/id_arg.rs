//! Parsing stream ID arguments as `t_stream.c` does (`streamGenericParseIDOrReply`,
//! `streamParseIntervalIDOrReply`), including the leniency of its `string2ull` (which falls back
//! to `strtoull`: leading spaces and a sign are accepted) so that odd IDs are taken or refused as
//! Redis takes or refuses them.

use ferrite_collections::StreamId;

use crate::ctx::Ctx;

/// The error every malformed ID argument gets.
pub(super) const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// Redis copies the argument into a 128-byte buffer and refuses anything longer.
const MAX_ID_ARG: usize = 127;

/// A parsed ID argument, before the command decides what to do with a `<ms>-*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ParsedId {
    /// The ID (`-` is 0-0, `+` is the maximum, a missing seq is the caller's default).
    pub id: StreamId,
    /// False only for `<ms>-*` (then `id.seq` is 0).
    pub seq_given: bool,
}

/// `streamGenericParseIDOrReply` without the reply: `missing_seq` is the seq of an ID given as
/// `<ms>` alone, `strict` refuses `-` and `+`, `allow_auto_seq` accepts `<ms>-*` (XADD only, where
/// Redis passes a `seq_given` pointer).
pub(super) fn parse_id_arg(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_auto_seq: bool,
) -> Option<ParsedId> {
    if arg.len() > MAX_ID_ARG {
        return None;
    }
    // Redis works on a C string: an embedded NUL ends the argument.
    let arg = arg.split(|&b| b == 0).next().unwrap_or_default();
    match arg {
        b"-" | b"+" if strict => None,
        b"-" => Some(ParsedId {
            id: StreamId::MIN,
            seq_given: true,
        }),
        b"+" => Some(ParsedId {
            id: StreamId::MAX,
            seq_given: true,
        }),
        _ => {
            let (ms, seq) = match arg.iter().position(|&b| b == b'-') {
                Some(dash) => (&arg[..dash], Some(&arg[dash + 1..])),
                None => (arg, None),
            };
            let ms = string2ull(ms)?;
            let (seq, seq_given) = match seq {
                Some(b"*") if allow_auto_seq => (0, false),
                Some(s) => (string2ull(s)?, true),
                None => (missing_seq, true),
            };
            Some(ParsedId {
                id: StreamId::new(ms, seq),
                seq_given,
            })
        }
    }
}

/// `streamParseIntervalIDOrReply`: an ID, `-`, `+`, or `(<id>` (exclusive, then strict). Returns
/// the ID and whether it was exclusive; the caller steps past an exclusive bound.
pub(super) fn parse_interval_id(arg: &[u8], missing_seq: u64) -> Option<(StreamId, bool)> {
    match arg {
        [b'(', rest @ ..] if !rest.is_empty() => {
            parse_id_arg(rest, missing_seq, true, false).map(|p| (p.id, true))
        }
        _ => parse_id_arg(arg, missing_seq, false, false).map(|p| (p.id, false)),
    }
}

/// [`parse_interval_id`], replying the error when invalid.
pub(super) fn parse_interval_id_or_reply(
    ctx: &mut Ctx<'_>,
    arg: &[u8],
    missing_seq: u64,
) -> Option<(StreamId, bool)> {
    let r = parse_interval_id(arg, missing_seq);
    if r.is_none() {
        ctx.reply.error(INVALID_ID);
    }
    r
}

/// A range's bounds as XRANGE/XPENDING take them: `start` and `end` with `(` stepping past
/// themselves; replies Redis's errors (invalid ID, `invalid start/end ID for the interval`).
pub(super) fn parse_range_or_reply(
    ctx: &mut Ctx<'_>,
    start: &[u8],
    end: &[u8],
) -> Option<(StreamId, StreamId)> {
    let (mut s, s_ex) = parse_interval_id_or_reply(ctx, start, 0)?;
    if s_ex {
        let Some(next) = s.next() else {
            ctx.reply.error("ERR invalid start ID for the interval");
            return None;
        };
        s = next;
    }
    let (mut e, e_ex) = parse_interval_id_or_reply(ctx, end, u64::MAX)?;
    if e_ex {
        let Some(prev) = e.prev() else {
            ctx.reply.error("ERR invalid end ID for the interval");
            return None;
        };
        e = prev;
    }
    Some((s, e))
}

/// Redis's `string2ull`: a strict decimal first, else `strtoull(s, &end, 10)` over the whole
/// string (leading white space, an optional sign, a `-` wrapping around as in C).
pub(super) fn string2ull(s: &[u8]) -> Option<u64> {
    let mut i = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
        .unwrap_or(s.len());
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    // string2ll takes "-N" for N > 0 and string2ull then refuses the negative value; only a
    // form string2ll rejects ("-0", " -5", "-007") reaches strtoull, which negates.
    if negative && strict_negative(s) {
        return None;
    }
    Some(if negative { v.wrapping_neg() } else { v })
}

/// Whether `s` is one of the negative numbers Redis's `string2ll` parses ("-N", N a canonical
/// decimal without leading zeros, fitting an i64).
fn strict_negative(s: &[u8]) -> bool {
    let Some(rest) = s.strip_prefix(b"-") else {
        return false;
    };
    match rest.first() {
        Some(b'1'..=b'9') => {
            rest.iter().all(u8::is_ascii_digit)
                && std::str::from_utf8(s)
                    .ok()
                    .and_then(|t| t.parse::<i64>().ok())
                    .is_some()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(arg: &str, missing: u64) -> Option<StreamId> {
        parse_id_arg(arg.as_bytes(), missing, false, false).map(|p| p.id)
    }

    #[test]
    fn forms() {
        assert_eq!(id("-", 0), Some(StreamId::MIN));
        assert_eq!(id("+", 0), Some(StreamId::MAX));
        assert_eq!(id("5", 7), Some(StreamId::new(5, 7)));
        assert_eq!(id("5-3", 7), Some(StreamId::new(5, 3)));
        assert_eq!(id("5-", 7), None);
        assert_eq!(id("-5", 7), None);
        assert_eq!(id("", 7), None);
        assert_eq!(id("5-*", 7), None);
        assert_eq!(
            parse_id_arg(b"5-*", 0, true, true),
            Some(ParsedId {
                id: StreamId::new(5, 0),
                seq_given: false
            })
        );
        assert_eq!(parse_id_arg(b"+", 0, true, false), None);
        assert_eq!(
            id("18446744073709551615-18446744073709551615", 0),
            Some(StreamId::MAX)
        );
        assert_eq!(id("18446744073709551616", 0), None);
    }

    #[test]
    fn strtoull_leniency() {
        assert_eq!(string2ull(b" 5"), Some(5));
        assert_eq!(string2ull(b"+5"), Some(5));
        assert_eq!(string2ull(b"-5"), None);
        assert_eq!(string2ull(b"-0"), Some(0));
        assert_eq!(string2ull(b" -5"), Some(5u64.wrapping_neg()));
        assert_eq!(string2ull(b"5 "), None);
        assert_eq!(string2ull(b"0x5"), None);
        assert_eq!(id("5\0junk", 0), Some(StreamId::new(5, 0)));
        assert_eq!(
            parse_interval_id(b"(5", 0),
            Some((StreamId::new(5, 0), true))
        );
        assert_eq!(parse_interval_id(b"(+", 0), None);
        assert_eq!(parse_interval_id(b"(", 0), None);
    }
}
