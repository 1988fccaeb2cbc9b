//! Small helpers shared by the types: a seeded PRNG, Redis's number parsers and formatting, and
//! the index normalisation LRANGE, LTRIM and ZRANGE share.

use std::hash::{BuildHasher, RandomState};

/// A small, fast, seedable PRNG (xoshiro256**) for SPOP, SRANDMEMBER, HRANDFIELD, ZRANDMEMBER and
/// skiplist levels. Not cryptographic.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator from a seed; the same seed gives the same sequence.
    pub fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut s = [0u64; 4];
        for word in &mut s {
            // splitmix64 expands the seed so that no state is all zero.
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *word = x ^ (x >> 31);
        }
        Self { s }
    }

    /// A generator seeded from the process's random hasher keys.
    pub fn from_entropy() -> Self {
        Self::new(RandomState::new().hash_one(0x5eed_u64))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform integer in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-shift; the bias is below 2^-64 * n, irrelevant here.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Formats `v` in decimal at the end of `buf`, returning the digits (Redis's `ull2string`).
#[inline]
pub fn format_u64(buf: &mut [u8; 20], mut v: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Formats `v` in decimal at the end of `buf`, returning the digits (Redis's `ll2string`).
#[inline]
pub fn format_i64(buf: &mut [u8; 20], v: i64) -> &[u8] {
    let digits = format_u64(buf, v.unsigned_abs()).len();
    // |i64::MIN| has 19 digits, so the sign always fits.
    let start = buf.len() - digits - usize::from(v < 0);
    if v < 0 {
        buf[start] = b'-';
    }
    &buf[start..]
}

/// Parses an integer exactly as Redis's `string2ll`: optional `-`, no `+`, no spaces, no leading
/// zeros, within `i64`.
pub fn parse_i64_strict(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        if value > i64::MAX as u64 + 1 {
            return None;
        }
        Some((value as i64).wrapping_neg())
    } else {
        i64::try_from(value).ok()
    }
}

/// Parses a float as C's `strtod` does when the whole string must be consumed: leading
/// whitespace is skipped, an empty rest reads as 0, `inf`/`infinity`/`nan` in any case are
/// accepted. Returns `None` for trailing garbage or a non-UTF-8 string.
pub fn parse_f64_strtod(s: &[u8]) -> Option<f64> {
    let start = s
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(s.len());
    let rest = std::str::from_utf8(&s[start..]).ok()?;
    if rest.is_empty() {
        return Some(0.0);
    }
    // Rust's parser is stricter than strtod only in rejecting hex floats, which nobody sends.
    rest.parse::<f64>().ok()
}

/// Formats a float the way Redis replies to INCRBYFLOAT and HINCRBYFLOAT (`%.17Lf` with trailing
/// zeros trimmed). Redis computes in `long double`; the shortest round-trip form of the `f64` is
/// what that gives for the decimal inputs clients send, and beyond 17 decimals the fixed form is
/// rounded as Redis's is.
pub fn format_long_double(value: f64) -> String {
    let shortest = format!("{value}");
    let decimals = shortest.split_once('.').map_or(0, |(_, frac)| frac.len());
    if decimals <= 17 {
        return shortest;
    }
    let fixed = format!("{value:.17}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Normalises a Redis `start..=end` index pair against a length, as LRANGE, LTRIM and ZRANGE do.
/// Returns the inclusive range, or `None` when it is empty.
pub(crate) fn normalize_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let mut start = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        len.saturating_add(end)
    } else {
        end
    };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize))
}

/// Normalises a single Redis index (negative from the end); `None` when out of range.
pub(crate) fn normalize_index(index: i64, len: usize) -> Option<usize> {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let index = if index < 0 {
        len_i.saturating_add(index)
    } else {
        index
    };
    if index < 0 || index >= len_i {
        None
    } else {
        Some(index as usize)
    }
}

/// Parses a stored value as Redis's `string2ld` does for HINCRBYFLOAT and INCRBYFLOAT: not empty,
/// no leading space, the whole string a float, not NaN.
pub(crate) fn parse_long_double(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() > 5 * 1024 || s[0].is_ascii_whitespace() || s[0] == 0x0b {
        return None;
    }
    let v = parse_f64_strtod(s)?;
    if v.is_nan() { None } else { Some(v) }
}

/// `count` distinct indexes below `len` (all of them, in order, when `count >= len`), for the
/// positive-count forms of SRANDMEMBER, SPOP, HRANDFIELD and ZRANDMEMBER.
pub(crate) fn pick_distinct(len: usize, count: u64, rng: &mut Rng) -> Vec<usize> {
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if count >= len {
        return (0..len).collect();
    }
    if count.saturating_mul(3) > len {
        // Many picks: a partial Fisher-Yates shuffle of all indexes.
        let mut all: Vec<usize> = (0..len).collect();
        for i in 0..count {
            let j = i + rng.below(len - i);
            all.swap(i, j);
        }
        all.truncate(count);
        all
    } else {
        // Few picks: draw until `count` distinct ones were seen.
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let i = rng.below(len);
            if seen.insert(i) {
                out.push(i);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn integers_format_in_decimal() {
        let mut b = [0u8; 20];
        for (v, want) in [
            (0i64, "0"),
            (-1, "-1"),
            (1234, "1234"),
            (i64::MAX, "9223372036854775807"),
            (i64::MIN, "-9223372036854775808"),
        ] {
            assert_eq!(format_i64(&mut b, v), want.as_bytes());
        }
        assert_eq!(format_u64(&mut b, u64::MAX), b"18446744073709551615");
    }

    use super::*;

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64_strict(b"0"), Some(0));
        assert_eq!(parse_i64_strict(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64_strict(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b"9223372036854775808"[..],
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"",
            b"1a",
            b"-",
        ] {
            assert_eq!(parse_i64_strict(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn strtod_rules() {
        assert_eq!(parse_f64_strtod(b""), Some(0.0));
        assert_eq!(parse_f64_strtod(b" 1.5"), Some(1.5));
        assert_eq!(parse_f64_strtod(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64_strtod(b"+Infinity"), Some(f64::INFINITY));
        assert!(parse_f64_strtod(b"1.5 ").is_none());
        assert!(parse_f64_strtod(b"abc").is_none());
    }

    #[test]
    fn long_double_format() {
        assert_eq!(format_long_double(10.5 + 0.1), "10.6");
        assert_eq!(format_long_double(3000.0), "3000");
        assert_eq!(format_long_double(1e20), "100000000000000000000");
        assert_eq!(format_long_double(1e-20), "0");
        assert_eq!(format_long_double(-1.5), "-1.5");
    }

    #[test]
    fn ranges() {
        assert_eq!(normalize_range(0, -1, 3), Some((0, 2)));
        assert_eq!(normalize_range(i64::MIN, i64::MAX, 3), Some((0, 2)));
        assert_eq!(normalize_range(5, 10, 3), None);
        assert_eq!(normalize_range(-1, -2, 3), None);
        assert_eq!(normalize_range(0, 0, 0), None);
        assert_eq!(normalize_index(i64::MIN, 3), None);
        assert_eq!(normalize_index(-1, 3), Some(2));
    }

    #[test]
    fn distinct_picks() {
        let mut rng = Rng::new(1);
        for (len, count) in [
            (10, 0),
            (10, 3),
            (10, 5),
            (10, 10),
            (10, u64::MAX),
            (0, 5),
            (1000, 7),
        ] {
            let picks = pick_distinct(len, count, &mut rng);
            let set: std::collections::HashSet<_> = picks.iter().collect();
            assert_eq!(picks.len(), len.min(count as usize));
            assert_eq!(set.len(), picks.len());
            assert!(picks.iter().all(|&i| i < len));
        }
        assert_eq!(parse_long_double(b" 1"), None);
        assert_eq!(parse_long_double(b""), None);
        assert_eq!(parse_long_double(b"nan"), None);
        assert_eq!(parse_long_double(b"1e3"), Some(1000.0));
    }

    #[test]
    fn rng_is_uniform_enough() {
        let mut rng = Rng::new(7);
        let mut hits = [0u32; 4];
        for _ in 0..4000 {
            hits[rng.below(4)] += 1;
        }
        assert!(hits.iter().all(|&h| (800..1200).contains(&h)), "{hits:?}");
        assert_eq!(rng.below(0), 0);
    }
}
