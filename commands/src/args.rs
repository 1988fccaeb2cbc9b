//! A parsed command's arguments and Redis's rules for reading numbers out of them.

/// The arguments of one command, the name included (`args.get(0)`), as spans into the buffer the
/// parser read them from: no copy per argument.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    data: &'a [u8],
    spans: &'a [(u32, u32)],
}

impl<'a> Args<'a> {
    /// Arguments as `(offset, len)` spans of `data`.
    pub fn new(data: &'a [u8], spans: &'a [(u32, u32)]) -> Self {
        debug_assert!(
            spans
                .iter()
                .all(|&(o, l)| (o as usize + l as usize) <= data.len())
        );
        Self { data, spans }
    }

    /// Number of arguments, the command name included.
    #[inline]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no arguments at all (never true for a dispatched command).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i` (0 is the command name). Panics when out of range: handlers index within the
    /// arity the command table checked.
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        let (o, l) = self.spans[i];
        &self.data[o as usize..o as usize + l as usize]
    }

    /// Argument `i` if present.
    #[inline]
    pub fn try_get(&self, i: usize) -> Option<&'a [u8]> {
        (i < self.spans.len()).then(|| self.get(i))
    }

    /// Iterates arguments from `start`.
    pub fn iter_from(&self, start: usize) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let data = self.data;
        self.spans[start.min(self.spans.len())..]
            .iter()
            .map(move |&(o, l)| &data[o as usize..o as usize + l as usize])
    }

    /// The arguments from `start` on, as a new view.
    pub fn skip(&self, start: usize) -> Args<'a> {
        Args {
            data: self.data,
            spans: &self.spans[start.min(self.spans.len())..],
        }
    }
}

/// Redis's `string2ll`: an optional `-`, then digits without leading zeros (except `0` itself),
/// no spaces or `+`, within i64.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if negative {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// Redis's `string2ull`-style unsigned parse (digits only).
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Redis's `getDoubleFromObject` (strtod): no leading space, whole string consumed, not NaN.
/// Accepts `inf`, `-inf`, exponents.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s[0].is_ascii_whitespace() || s.len() > 5000 {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let v: f64 = text
        .parse()
        .ok()
        .or_else(|| match text.to_ascii_lowercase().as_str() {
            "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
            "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        })?;
    if v.is_nan() { None } else { Some(v) }
}

/// Case-insensitive ASCII comparison of an argument with an option name.
#[inline]
pub fn eq_ignore_case(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

/// Redis's `parseScanCursorOrReply`: C's `strtoul` in base 10 over the argument as a C string,
/// refusing a leading space, trailing garbage and overflow. So `-1` is 2^64-1, `+5` is 5, and
/// an empty cursor is 0, as in Redis.
pub fn parse_scan_cursor(arg: &[u8]) -> Option<u64> {
    let s = arg.split(|&b| b == 0).next().unwrap_or_default();
    if matches!(
        s.first(),
        Some(b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
    ) {
        return None;
    }
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        // No digits at all: strtoul consumes nothing, which is fine only for an empty string.
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

#[cfg(test)]
mod tests {
    #[test]
    fn cursors_follow_strtoul() {
        assert_eq!(parse_scan_cursor(b"0"), Some(0));
        assert_eq!(parse_scan_cursor(b""), Some(0));
        assert_eq!(parse_scan_cursor(b"007"), Some(7));
        assert_eq!(parse_scan_cursor(b"+5"), Some(5));
        assert_eq!(parse_scan_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_scan_cursor(b"-0"), Some(0));
        assert_eq!(parse_scan_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_scan_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_scan_cursor(b"-18446744073709551615"), Some(1));
        assert_eq!(parse_scan_cursor(b"-18446744073709551616"), None);
        assert_eq!(parse_scan_cursor(b" 1"), None);
        assert_eq!(parse_scan_cursor(b"1 "), None);
        assert_eq!(parse_scan_cursor(b"abc"), None);
        assert_eq!(parse_scan_cursor(b"-"), None);
        assert_eq!(parse_scan_cursor(b"+"), None);
        assert_eq!(parse_scan_cursor(b"0x10"), None);
        assert_eq!(parse_scan_cursor(b"12\x00junk"), Some(12));
        assert_eq!(parse_scan_cursor(b"\x00"), Some(0));
    }

    use super::*;

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_i64(b"-"), None);
    }

    #[test]
    fn doubles() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
    }

    #[test]
    fn spans() {
        let data = b"SETkeyvalue";
        let spans = [(0, 3), (3, 3), (6, 5)];
        let a = Args::new(data, &spans);
        assert_eq!(a.len(), 3);
        assert_eq!(a.get(2), b"value");
        assert_eq!(
            a.iter_from(1).collect::<Vec<_>>(),
            vec![&b"key"[..], b"value"]
        );
    }
}
