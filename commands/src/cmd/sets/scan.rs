//! What SSCAN, ZSCAN (and HSCAN-style commands) share with Redis's `scanGenericCommand`: the
//! cursor and option parsing, and the reply shape.

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::cmd::keys::glob;
use crate::ctx::Ctx;
use crate::resp::Reply;

/// Redis's `parseScanCursorOrReply`: C's `strtoul` in base 10 over the argument as a C string,
/// refusing a leading space, trailing garbage and overflow. So `-1` is 2^64-1, `+5` is 5, and an
/// empty cursor is 0.
pub(crate) fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let s = arg.split(|&b| b == 0).next().unwrap_or_default();
    if matches!(
        s.first(),
        Some(b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
    ) {
        return None;
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        // strtoul consumes nothing: fine only for an empty string.
        return s.is_empty().then_some(0);
    }
    let mut v: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(if negative { v.wrapping_neg() } else { v })
}

/// The options of a key-scanning command.
pub(crate) struct ScanOptions<'a> {
    /// MATCH pattern; `None` for none or `*` (which matches everything).
    pub pattern: Option<&'a [u8]>,
    /// COUNT (at least 1).
    pub count: usize,
}

impl ScanOptions<'_> {
    /// Whether `member` passes the MATCH filter.
    pub(crate) fn matches(&self, member: &[u8]) -> bool {
        self.pattern.is_none_or(|p| glob::matches(p, member))
    }
}

/// Parses `[MATCH pattern] [COUNT count]` from argument `start`, replying with Redis's error
/// when they are malformed.
pub(crate) fn parse_options<'a>(
    ctx: &mut Ctx<'_>,
    args: Args<'a>,
    start: usize,
) -> Option<ScanOptions<'a>> {
    let mut opts = ScanOptions {
        pattern: None,
        count: 10,
    };
    let mut i = start;
    while i < args.len() {
        let opt = args.get(i);
        let Some(value) = args.try_get(i + 1) else {
            ctx.syntax_error();
            return None;
        };
        if eq_ignore_case(opt, "count") {
            let Some(c) = parse_i64(value) else {
                ctx.not_integer();
                return None;
            };
            if c < 1 {
                ctx.syntax_error();
                return None;
            }
            opts.count = usize::try_from(c).unwrap_or(usize::MAX);
        } else if eq_ignore_case(opt, "match") {
            opts.pattern = (value != b"*").then_some(value);
        } else {
            ctx.syntax_error();
            return None;
        }
        i += 2;
    }
    Some(opts)
}

/// Writes the header of a scan reply: `[cursor, [` followed by `n` elements the caller writes.
pub(crate) fn reply_header(reply: &mut Reply<'_>, cursor: u64, n: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = cursor;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    reply.array_len(2);
    reply.bulk(&buf[i..]);
    reply.array_len(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"007"), Some(7));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b" 1"), None);
        assert_eq!(parse_cursor(b"1x"), None);
        assert_eq!(parse_cursor(b"-"), None);
        assert_eq!(parse_cursor(b"12\x00zz"), Some(12));
    }
}
