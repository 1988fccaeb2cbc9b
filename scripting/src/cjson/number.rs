//! The C library's number conversions that lua-cjson relies on: `printf("%.<p>g")` for
//! encoding and `strtod` for decoding, reproduced to the character (glibc, "C" locale).

/// `snprintf(buf, n, "%.<precision>g", x)` as glibc prints it (`precision` >= 1).
pub(crate) fn fmt_g(x: f64, precision: usize) -> String {
    let precision = precision.max(1);
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    // The %e conversion at precision P-1 gives the digits and the exponent X; both %e and %f
    // round at the same decimal place, so the digits serve either style.
    let e_form = format!("{:.*e}", precision - 1, x.abs());
    let (mantissa, exp) = e_form.split_once('e').unwrap_or((&e_form, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let p = precision as i32;
    let mut out = String::from(sign);
    if exp < p && exp >= -4 {
        let (int_part, frac): (String, Vec<u8>) = if exp >= 0 {
            let split = (exp as usize + 1).min(digits.len());
            (
                String::from_utf8_lossy(&digits[..split]).into_owned(),
                digits[split..].to_vec(),
            )
        } else {
            let mut frac = vec![b'0'; (-exp - 1) as usize];
            frac.extend_from_slice(&digits);
            ("0".to_string(), frac)
        };
        out.push_str(&int_part);
        push_fraction(&mut out, &frac);
    } else {
        out.push(char::from(digits.first().copied().unwrap_or(b'0')));
        push_fraction(&mut out, digits.get(1..).unwrap_or(&[]));
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    }
    out
}

/// Appends `.` and the fraction digits without their trailing zeros (%g without `#`).
fn push_fraction(out: &mut String, frac: &[u8]) {
    let end = frac.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
    if end > 0 {
        out.push('.');
        out.push_str(&String::from_utf8_lossy(&frac[..end]));
    }
}

/// `strtod` at the start of `s`: the value and the number of bytes it used (0 when `s` does
/// not start with a number). Accepts what glibc accepts: leading white space, a sign, decimal
/// and hexadecimal (`0x1.8p3`) forms, `inf`, `infinity` and `nan` / `nan(chars)` in any case.
pub(crate) fn strtod(s: &[u8]) -> (f64, usize) {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut i = 0;
    while matches!(at(i), b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        i += 1;
    }
    let negative = at(i) == b'-';
    if matches!(at(i), b'+' | b'-') {
        i += 1;
    }
    let signed = |v: f64| if negative { -v } else { v };
    let starts_with_ci = |i: usize, word: &[u8]| {
        s.get(i..i + word.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
    };
    if starts_with_ci(i, b"inf") {
        let len = if starts_with_ci(i, b"infinity") { 8 } else { 3 };
        return (signed(f64::INFINITY), i + len);
    }
    if starts_with_ci(i, b"nan") {
        let mut end = i + 3;
        if at(end) == b'(' {
            let mut j = end + 1;
            while at(j).is_ascii_alphanumeric() || at(j) == b'_' {
                j += 1;
            }
            if at(j) == b')' {
                end = j + 1;
            }
        }
        return (signed(f64::NAN), end);
    }
    if at(i) == b'0'
        && (at(i + 1) | 0x20) == b'x'
        && (at(i + 2).is_ascii_hexdigit() || (at(i + 2) == b'.' && at(i + 3).is_ascii_hexdigit()))
    {
        let (v, end) = hex_float(s, i + 2);
        return (signed(v), end);
    }
    let start = i;
    let mut digits = 0;
    while at(i).is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if at(i) == b'.' {
        i += 1;
        while at(i).is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return (0.0, 0);
    }
    if at(i) | 0x20 == b'e' {
        let mut j = i + 1;
        if matches!(at(j), b'+' | b'-') {
            j += 1;
        }
        if at(j).is_ascii_digit() {
            while at(j).is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    let text = std::str::from_utf8(&s[start..i]).unwrap_or("0");
    // Rust's parser is correctly rounded, as glibc's is; it wants a digit before the exponent.
    let v = text
        .parse::<f64>()
        .or_else(|_| {
            text.replacen(".e", ".0e", 1)
                .replacen(".E", ".0E", 1)
                .parse()
        })
        .unwrap_or(0.0);
    (signed(v), i)
}

/// The hexadecimal form after `0x`, starting at `i`: correctly rounded to nearest-even.
fn hex_float(s: &[u8], mut i: usize) -> (f64, usize) {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut mant: u64 = 0;
    let mut exp2: i64 = 0;
    let mut sticky = false;
    let mut add = |d: u32, fraction: bool, mant: &mut u64, exp2: &mut i64| {
        if *mant < 1 << 59 {
            *mant = *mant * 16 + u64::from(d);
            if fraction {
                *exp2 -= 4;
            }
        } else {
            sticky |= d != 0;
            if !fraction {
                *exp2 += 4;
            }
        }
    };
    while let Some(d) = hex(at(i)) {
        add(d, false, &mut mant, &mut exp2);
        i += 1;
    }
    if at(i) == b'.' {
        i += 1;
        while let Some(d) = hex(at(i)) {
            add(d, true, &mut mant, &mut exp2);
            i += 1;
        }
    }
    if at(i) | 0x20 == b'p' {
        let mut j = i + 1;
        let neg = at(j) == b'-';
        if matches!(at(j), b'+' | b'-') {
            j += 1;
        }
        if at(j).is_ascii_digit() {
            let mut e: i64 = 0;
            while at(j).is_ascii_digit() {
                e = (e * 10 + i64::from(at(j) - b'0')).min(1 << 40);
                j += 1;
            }
            exp2 += if neg { -e } else { e };
            i = j;
        }
    }
    (compose(mant, sticky, exp2), i)
}

/// `(mant + a nonzero tail below it when sticky) * 2^exp2`, rounded to a double.
fn compose(mant: u64, sticky: bool, exp2: i64) -> f64 {
    if mant == 0 {
        return 0.0;
    }
    let len = i64::from(64 - mant.leading_zeros());
    let top = exp2 + len - 1;
    if top > 1023 {
        return f64::INFINITY;
    }
    let keep = if top >= -1022 { 53 } else { 53 - (-1022 - top) };
    let shift = len - keep;
    let (q, k) = if shift > 0 {
        if shift > 64 {
            return 0.0;
        }
        let q = if shift == 64 { 0 } else { mant >> shift };
        let rem = if shift == 64 {
            mant
        } else {
            mant & ((1u64 << shift) - 1)
        };
        let half = 1u64 << (shift - 1);
        let up = rem > half || (rem == half && (sticky || q & 1 == 1));
        (q + u64::from(up), exp2 + shift)
    } else {
        (mant, exp2)
    };
    let mut x = q as f64;
    let mut k = k;
    while k > 1000 {
        x *= 2f64.powi(1000);
        k -= 1000;
    }
    while k < -1000 {
        x *= 2f64.powi(-1000);
        k += 1000;
    }
    x * 2f64.powi(k as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format_matches_printf() {
        // Expectations from C printf("%.14g") / Python's '%.14g', which agree with glibc.
        for (x, want) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.33333333333333"),
            (1e-5, "1e-05"),
            (1e-4, "0.0001"),
            (123456789012345678.0, "1.2345678901235e+17"),
            (1e14, "1e+14"),
            (99999999999999.0, "99999999999999"),
            (999999999999999.0, "1e+15"),
            (1e300, "1e+300"),
            (-1.5, "-1.5"),
            (f64::MAX, "1.7976931348623e+308"),
            (5e-324, "4.9406564584125e-324"),
            (0.5, "0.5"),
            (2.5e-5, "2.5e-05"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(fmt_g(x, 14), want, "{x:e}");
        }
        assert_eq!(fmt_g(1.23456, 3), "1.23");
        assert_eq!(fmt_g(1234.0, 2), "1.2e+03");
        assert_eq!(fmt_g(0.25, 1), "0.2");
        assert_eq!(fmt_g(0.35, 1), "0.3");
        assert_eq!(fmt_g(2.5, 1), "2");
    }

    #[test]
    fn strtod_forms() {
        for (s, want, used) in [
            ("12", 12.0, 2),
            ("-1.5e3x", -1500.0, 6),
            ("1.", 1.0, 2),
            (".5", 0.5, 2),
            ("1e", 1.0, 1),
            ("1e+", 1.0, 1),
            ("1.e2", 100.0, 4),
            ("0x10", 16.0, 4),
            ("0x", 0.0, 1),
            ("0x1p-2", 0.25, 6),
            ("0x.8", 0.5, 4),
            ("-0x1.8P1", -3.0, 8),
            ("1e999", f64::INFINITY, 5),
            ("-Infinity", f64::NEG_INFINITY, 9),
            ("infinit", f64::INFINITY, 3),
            ("+5", 5.0, 2),
            ("007", 7.0, 3),
        ] {
            let (v, n) = strtod(s.as_bytes());
            assert_eq!((v, n), (want, used), "{s}");
        }
        for bad in ["", "-", "+", ".", "e5", "x"] {
            assert_eq!(strtod(bad.as_bytes()).1, 0, "{bad}");
        }
        let (v, n) = strtod(b"nan(abc)");
        assert!(v.is_nan() && n == 8);
        let (v, n) = strtod(b"-nan(");
        assert!(v.is_nan() && v.is_sign_negative() && n == 4);
        assert_eq!(strtod(b"0x1fffffffffffff8").0, 2f64.powi(57)); // ties to even
        assert_eq!(strtod(b"0x1.0000000000001p-1074").0, 5e-324);
        assert_eq!(strtod(b"0x1p-1075").0, 0.0);
        assert_eq!(strtod(b"0x1.0000001p-1075").0, 5e-324);
        assert_eq!(strtod(b"0x1p1024").0, f64::INFINITY);
    }
}
