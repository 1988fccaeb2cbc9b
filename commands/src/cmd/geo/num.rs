//! Redis 7.0's `getDoubleFromObject` for the geo commands' coordinates, radii and sizes.

/// Parses `s` as Redis 7.0's `getDoubleFromObject` does with `strtod`: the whole string must be
/// consumed, no leading space, hex floats (`0x1p4`) and `inf`/`infinity` accepted, NaN refused,
/// and a finite literal that overflows to infinity or underflows to zero (`ERANGE`) refused,
/// while subnormal results are kept.
pub fn parse_double(s: &[u8]) -> Option<f64> {
    let first = *s.first()?;
    if matches!(first, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        return None;
    }
    let (negative, body) = match first {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
        parse_hex(&body[2..])?
    } else {
        parse_decimal(body)?
    };
    Some(if negative { -magnitude } else { magnitude })
}

fn is_infinity_word(body: &[u8]) -> bool {
    body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity")
}

fn parse_decimal(body: &[u8]) -> Option<f64> {
    if is_infinity_word(body) {
        return Some(f64::INFINITY);
    }
    // Only digits, one dot and an exponent: this also keeps out the words Rust's parser knows
    // (`nan`) and a second sign.
    let mantissa_end = body
        .iter()
        .position(|&b| b == b'e' || b == b'E')
        .unwrap_or(body.len());
    let mantissa = &body[..mantissa_end];
    if !mantissa.iter().all(|&b| b.is_ascii_digit() || b == b'.')
        || !mantissa.iter().any(u8::is_ascii_digit)
        || mantissa.iter().filter(|&&b| b == b'.').count() > 1
    {
        return None;
    }
    if mantissa_end < body.len() {
        let exp = &body[mantissa_end + 1..];
        let digits = exp
            .strip_prefix(b"-")
            .or(exp.strip_prefix(b"+"))
            .unwrap_or(exp);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
    }
    let v: f64 = std::str::from_utf8(body).ok()?.parse().ok()?;
    let nonzero = mantissa.iter().any(|&b| (b'1'..=b'9').contains(&b));
    range_checked(v, nonzero)
}

/// `strtod`'s ERANGE cases that Redis refuses: overflow to infinity, underflow to zero.
fn range_checked(v: f64, nonzero: bool) -> Option<f64> {
    if v.is_infinite() || (v == 0.0 && nonzero) {
        None
    } else {
        Some(v)
    }
}

fn parse_hex(body: &[u8]) -> Option<f64> {
    let mantissa_end = body
        .iter()
        .position(|&b| b == b'p' || b == b'P')
        .unwrap_or(body.len());
    let mut mantissa = 0.0f64;
    let mut scale: i64 = 0;
    let (mut digits, mut dot) = (0usize, false);
    for &b in &body[..mantissa_end] {
        if b == b'.' {
            if dot {
                return None;
            }
            dot = true;
            continue;
        }
        let d = char::from(b).to_digit(16)?;
        digits += 1;
        mantissa = mantissa * 16.0 + f64::from(d);
        if dot {
            scale -= 4;
        }
    }
    if digits == 0 {
        return None;
    }
    if mantissa_end < body.len() {
        let exp = &body[mantissa_end + 1..];
        let (sign, digits) = match exp.first() {
            Some(b'-') => (-1, &exp[1..]),
            Some(b'+') => (1, &exp[1..]),
            _ => (1, exp),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let e: i64 = digits
            .iter()
            .try_fold(0i64, |acc, &b| {
                acc.checked_mul(10)?.checked_add(i64::from(b - b'0'))
            })
            .unwrap_or(i64::MAX / 2);
        scale = scale.saturating_add(sign * e);
    }
    let nonzero = mantissa != 0.0;
    let v = mantissa * 2f64.powi(scale.clamp(-2200, 2200) as i32);
    // powi of a very negative exponent is 0 before the mantissa can lift it back: split it.
    let v = if v == 0.0 && nonzero && scale > -1200 {
        mantissa * 2f64.powi((scale / 2) as i32) * 2f64.powi((scale - scale / 2) as i32)
    } else {
        v
    };
    range_checked(v, nonzero)
}

#[cfg(test)]
mod tests {
    use super::parse_double;

    #[test]
    fn strtod_rules() {
        assert_eq!(parse_double(b"1.5"), Some(1.5));
        assert_eq!(parse_double(b"+1"), Some(1.0));
        assert_eq!(parse_double(b".5"), Some(0.5));
        assert_eq!(parse_double(b"5."), Some(5.0));
        assert_eq!(parse_double(b"-1e3"), Some(-1000.0));
        assert_eq!(parse_double(b"0e-400"), Some(0.0));
        assert_eq!(parse_double(b"1e-310"), Some(1e-310));
        assert_eq!(parse_double(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_double(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_double(b"0x10"), Some(16.0));
        assert_eq!(parse_double(b"0x1.8p1"), Some(3.0));
        assert_eq!(parse_double(b"-0X.8"), Some(-0.5));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"NaN",
            b"1e400",
            b"1e-400",
            b"0x",
            b"0x1p",
            b".",
            b"1e",
            b"1e+",
            b"--1",
            b"+-1",
            b"1.2.3",
            b"infx",
            b"0x1p99999",
            b"abc",
        ] {
            assert_eq!(
                parse_double(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
