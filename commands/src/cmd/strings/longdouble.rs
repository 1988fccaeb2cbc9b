//! Redis's INCRBYFLOAT arithmetic, which is x87 `long double` (64-bit mantissa) arithmetic:
//! `strtold` to parse, one addition, and `%.17Lf` with trailing zeros trimmed to print. An f64
//! emulation would print `0.30000000000000004` where Redis prints `0.3`, and could not hold
//! `1e400`, so this is a small software extended float, exact in all three steps (correct
//! rounding, ties to even, glibc's exact decimal conversion).

use super::bignum::Big;

/// Exponent of the smallest normal value with the mantissa's top bit set (2^-16382 = 2^63 *
/// 2^-16445); below it values are subnormal, with this exponent and a smaller mantissa.
const MIN_EXP: i64 = -16445;
/// Largest exponent of a finite value (2^16384 overflows).
const MAX_EXP: i64 = 16320;
/// Redis's `MAX_LONG_DOUBLE_CHARS`: longer strings are not numbers.
const MAX_CHARS: usize = 5 * 1024;

/// A finite extended value: `(-1)^neg * mant * 2^exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Ld {
    neg: bool,
    mant: u64,
    exp: i64,
}

/// What `strtold` made of a string Redis accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A finite value.
    Finite(Ld),
    /// `inf` or `infinity`: valid input, but any sum with it is refused.
    Infinite,
}

impl Ld {
    const ZERO: Ld = Ld {
        neg: false,
        mant: 0,
        exp: 0,
    };

    /// `a + b`, correctly rounded; `None` on overflow to infinity.
    pub(crate) fn add(self, other: Ld) -> Option<Ld> {
        if self.mant == 0 {
            return Some(if other.mant == 0 { Ld::ZERO } else { other });
        }
        if other.mant == 0 {
            return Some(self);
        }
        let (x, y) = if self.exp >= other.exp {
            (self, other)
        } else {
            (other, self)
        };
        // 62 guard bits below the 64-bit mantissa; what falls off y is jammed into bit 0 (the
        // sticky bit), which is enough for a correctly rounded sum or difference.
        let xm = u128::from(x.mant) << 62;
        let yfull = u128::from(y.mant) << 62;
        let d = x.exp - y.exp;
        let ym = if d >= 126 {
            1
        } else {
            let shifted = yfull >> d;
            let lost = yfull & ((1u128 << d) - 1);
            shifted | u128::from(lost != 0)
        };
        let (sum, neg) = if x.neg == y.neg {
            (xm + ym, x.neg)
        } else if xm >= ym {
            (xm - ym, x.neg)
        } else {
            (ym - xm, y.neg)
        };
        if sum == 0 {
            return Some(Ld::ZERO);
        }
        round(neg, sum, x.exp - 62, false)
    }

    /// `%.17Lf` with trailing zeros (and a bare point) removed, `-0` printed as `0`: Redis's
    /// `ld2string(LD_STR_HUMAN)`.
    pub(crate) fn to_human(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        if self.neg {
            out.push(b'-');
        }
        if self.exp >= 0 {
            let mut n = Big::from_u64(self.mant);
            n.shl(self.exp as usize);
            n.write_decimal(&mut out);
        } else {
            let s = (-self.exp) as u32;
            let (int_part, frac) = if s < 64 {
                (self.mant >> s, self.mant & ((1u64 << s) - 1))
            } else {
                (0, self.mant)
            };
            const SCALE: u64 = 100_000_000_000_000_000; // 10^17
            let prod = u128::from(frac) * u128::from(SCALE);
            let mut q = 0u128;
            if s < 128 {
                q = prod >> s;
                let rem = prod & ((1u128 << s) - 1);
                let half = 1u128 << (s - 1);
                if rem > half || (rem == half && q & 1 == 1) {
                    q += 1;
                }
            }
            let mut int_part = u128::from(int_part);
            if q == u128::from(SCALE) {
                q = 0;
                int_part += 1;
            }
            out.extend_from_slice(int_part.to_string().as_bytes());
            let digits = format!("{q:017}");
            let frac = digits.trim_end_matches('0');
            if !frac.is_empty() {
                out.push(b'.');
                out.extend_from_slice(frac.as_bytes());
            }
        }
        if out == b"-0" {
            out.remove(0);
        }
        out
    }
}

/// Rounds `m * 2^e` (plus a nonzero tail below `m` when `sticky`) to 64 bits, ties to even.
/// `None` when it overflows; values below the subnormal range round to zero.
fn round(neg: bool, m: u128, e: i64, sticky: bool) -> Option<Ld> {
    let bits = 128 - i64::from(m.leading_zeros());
    let shift = (bits - 64).max(MIN_EXP - e);
    let (mant, exp) = if shift <= 0 {
        // Exact: the value fits in 64 bits (callers only pass a tail with ample guard bits).
        ((m << (-shift) as u32) as u64, e + shift)
    } else {
        let (mut q, up) = if shift < 128 {
            let q = m >> shift;
            let rem = m & ((1u128 << shift) - 1);
            let half = 1u128 << (shift - 1);
            let up = rem > half || (rem == half && (sticky || q & 1 == 1));
            (q, up)
        } else if shift == 128 {
            let half = 1u128 << 127;
            (0, m > half || (m == half && sticky))
        } else {
            (0, false)
        };
        q += u128::from(up);
        let mut exp = e + shift;
        if q >> 64 != 0 {
            q >>= 1;
            exp += 1;
        }
        (q as u64, exp)
    };
    if exp > MAX_EXP {
        return None;
    }
    if mant == 0 {
        return Some(Ld {
            neg,
            mant: 0,
            exp: 0,
        });
    }
    Some(Ld { neg, mant, exp })
}

/// Rounds a big integer times `2^e` to an extended value.
fn round_big(neg: bool, n: &Big, e: i64) -> Option<Ld> {
    let bits = n.bit_len();
    if bits <= 128 {
        return round(neg, n.low_u128(), e, false);
    }
    let drop = bits - 128;
    let (top, sticky) = n.top_bits(drop);
    round(neg, top, e + drop as i64, sticky)
}

/// Redis's `string2ld`: `strtold` must consume the whole string, the first byte must not be a
/// space, NaN is refused, and so is a result that overflowed or underflowed to zero.
pub(crate) fn parse(s: &[u8]) -> Option<Parsed> {
    if s.is_empty() || s.len() >= MAX_CHARS {
        return None;
    }
    if s.first().is_some_and(|&b| is_c_space(b)) {
        return None;
    }
    let (neg, body) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(Parsed::Infinite);
    }
    let v = if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
        parse_hex(neg, &body[2..])?
    } else {
        parse_decimal(neg, body)?
    };
    Some(Parsed::Finite(v))
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Parses an optional exponent (`e`/`p` already consumed): sign and digits, saturating.
fn parse_exp(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        v = v.saturating_mul(10).saturating_add(i64::from(d - b'0'));
    }
    // Far beyond any representable exponent either way; keeps later arithmetic in range.
    let v = v.min(1 << 40);
    Some(if neg { -v } else { v })
}

fn parse_decimal(neg: bool, s: &[u8]) -> Option<Ld> {
    let mut i = 0;
    let mut digits: Vec<u8> = Vec::new();
    let mut exp10: i64 = 0;
    let mut seen_digit = false;
    while i < s.len() && s[i].is_ascii_digit() {
        seen_digit = true;
        if !(digits.is_empty() && s[i] == b'0') {
            digits.push(s[i] - b'0');
        }
        i += 1;
    }
    if i < s.len() && s[i] == b'.' {
        i += 1;
        while i < s.len() && s[i].is_ascii_digit() {
            seen_digit = true;
            if !(digits.is_empty() && s[i] == b'0') {
                digits.push(s[i] - b'0');
            }
            exp10 -= 1;
            i += 1;
        }
    }
    if !seen_digit {
        return None;
    }
    if i < s.len() {
        if s[i] | 0x20 != b'e' {
            return None;
        }
        exp10 += parse_exp(&s[i + 1..])?;
    }
    if digits.is_empty() {
        return Some(Ld { neg, ..Ld::ZERO });
    }
    // Trailing zeros only scale the exponent.
    while digits.last() == Some(&0) {
        digits.pop();
        exp10 += 1;
    }
    let n = digits.len() as i64;
    // The value lies in [10^(n-1+exp10), 10^(n+exp10)): outside ~[1e-4951, 1.19e4932] it is an
    // overflow or an underflow to zero, both refused.
    if n - 1 + exp10 > 4933 {
        return None;
    }
    if n + exp10 < -4952 {
        return None;
    }
    let mut d = Big::zero();
    for chunk in digits.chunks(19) {
        let mut v = 0u64;
        for &c in chunk {
            v = v * 10 + u64::from(c);
        }
        d.mul_small(10u64.pow(chunk.len() as u32));
        d.add_small(v);
    }
    let r = if exp10 >= 0 {
        d.mul_pow10(exp10 as u32);
        round_big(neg, &d, 0)?
    } else {
        let mut m = Big::from_u64(1);
        m.mul_pow10((-exp10) as u32);
        // Scale so the quotient has 66-67 bits: two more than the mantissa, plus the sticky
        // remainder, decide the rounding exactly.
        let s = m.bit_len() as i64 - d.bit_len() as i64 + 66;
        if s >= 0 {
            d.shl(s as usize);
        } else {
            m.shl((-s) as usize);
        }
        let (q, rem) = d.div_small_quotient(&m);
        round(neg, q, -s, rem)?
    };
    if r.mant == 0 {
        return None; // underflow to zero
    }
    Some(r)
}

fn parse_hex(neg: bool, s: &[u8]) -> Option<Ld> {
    let mut n = Big::zero();
    let mut exp2: i64 = 0;
    let mut i = 0;
    let mut seen = false;
    let mut nonzero = false;
    let push = |n: &mut Big, c: u8, nonzero: &mut bool| {
        let v = (c as char).to_digit(16).unwrap_or(0);
        // Leading zeros add nothing (and would only grow the number).
        if v != 0 || *nonzero {
            *nonzero = true;
            n.mul_small(16);
            n.add_small(u64::from(v));
        }
    };
    while i < s.len() && s[i].is_ascii_hexdigit() {
        seen = true;
        push(&mut n, s[i], &mut nonzero);
        i += 1;
    }
    if i < s.len() && s[i] == b'.' {
        i += 1;
        while i < s.len() && s[i].is_ascii_hexdigit() {
            seen = true;
            push(&mut n, s[i], &mut nonzero);
            exp2 -= 4;
            i += 1;
        }
    }
    if !seen || n.bit_len() > MAX_CHARS * 4 + 8 {
        return None;
    }
    if i < s.len() {
        if s[i] | 0x20 != b'p' {
            return None;
        }
        exp2 += parse_exp(&s[i + 1..])?;
    }
    if n.bit_len() == 0 {
        return Some(Ld { neg, ..Ld::ZERO });
    }
    if n.bit_len() as i64 + exp2 > MAX_EXP + 64 {
        return None;
    }
    let r = round_big(neg, &n, exp2)?;
    if r.mant == 0 {
        return None;
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fin(s: &str) -> Ld {
        match parse(s.as_bytes()) {
            Some(Parsed::Finite(v)) => v,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn incr(a: &str, b: &str) -> String {
        String::from_utf8(fin(a).add(fin(b)).expect("finite").to_human()).expect("ascii")
    }

    #[test]
    fn redis_outputs() {
        assert_eq!(incr("0", "0.1"), "0.1");
        assert_eq!(incr("0.1", "0.1"), "0.2");
        assert_eq!(incr("0.2", "0.1"), "0.3");
        assert_eq!(incr("0.3", "5.0e3"), "5000.29999999999999982");
        assert_eq!(
            incr("5000.29999999999999982", "1.5"),
            "5001.79999999999999982"
        );
        assert_eq!(incr("1e18", "0.1"), "1000000000000000000.125");
        assert_eq!(incr("0", "0x10"), "16");
        assert_eq!(incr("16", "+1."), "17");
        assert_eq!(incr("17", ".5"), "17.5");
        assert_eq!(incr("17.5", "1e-4940"), "17.5");
        assert_eq!(incr("0", "-0.0"), "0");
        assert_eq!(incr("0", "1e-20"), "0");
        assert_eq!(incr("10.5", "-10.5"), "0");
        assert_eq!(incr("-1", "0.5"), "-0.5");
        let big = incr("0", "1e400");
        assert_eq!(big.len(), 401);
        assert!(big.starts_with("10000000000000000000281880683947586514586453433629"));
        assert!(big.ends_with("734806343732497430221946880"));
    }

    #[test]
    fn refused() {
        for s in [
            "", " 1", "1 ", "abc", "1e", "1e+", ".", "-", "nan", "1e5000", "1e-5000", "0x", "\0",
            "1.5\0x",
        ] {
            assert_eq!(parse(s.as_bytes()), None, "{s}");
        }
        assert_eq!(parse(b"inf"), Some(Parsed::Infinite));
        assert_eq!(parse(b"-Infinity"), Some(Parsed::Infinite));
        assert!(parse(b"1.18973149535723176502e+4932").is_some());
        assert!(parse(b"1.18973149535723176509e+4932").is_none());
    }

    #[test]
    fn ties_to_even_when_printing() {
        // 2^-18 = 0.000003814697265625: the 18th decimal is a tie.
        assert_eq!(incr("0", "0x1p-18"), "0.00000381469726562");
    }
}
