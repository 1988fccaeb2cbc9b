//! Score and lex ranges, parsed exactly as Redis's `zslParseRange` and `zslParseLexRange`.

use std::cmp::Ordering;

use crate::Error;
use crate::util::parse_f64_strtod;

/// A score interval: `min`/`max` with exclusivity flags (`(` in the syntax).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    /// The lower bound.
    pub min: f64,
    /// The upper bound.
    pub max: f64,
    /// Whether `min` itself is excluded.
    pub min_exclusive: bool,
    /// Whether `max` itself is excluded.
    pub max_exclusive: bool,
}

impl ScoreRange {
    /// The whole line, `-inf` to `+inf`.
    pub const ALL: ScoreRange = ScoreRange {
        min: f64::NEG_INFINITY,
        max: f64::INFINITY,
        min_exclusive: false,
        max_exclusive: false,
    };

    pub(crate) fn gte_min(&self, v: f64) -> bool {
        if self.min_exclusive {
            v > self.min
        } else {
            v >= self.min
        }
    }

    pub(crate) fn lte_max(&self, v: f64) -> bool {
        if self.max_exclusive {
            v < self.max
        } else {
            v <= self.max
        }
    }

    /// Whether no score can be inside (min above max, or equal with an exclusive end).
    pub(crate) fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.min_exclusive || self.max_exclusive))
    }

    /// Whether `v` is inside.
    pub fn contains(&self, v: f64) -> bool {
        self.gte_min(v) && self.lte_max(v)
    }
}

/// C's `strtod` on a hexadecimal float (`0x1.8p3`, `-0X10`), the form Rust's parser lacks:
/// `None` when `s` is not one. Leading whitespace is the caller's business.
pub fn parse_hex_float(s: &[u8]) -> Option<f64> {
    let (negative, rest) = match s.split_first() {
        Some((b'-', r)) => (true, r),
        Some((b'+', r)) => (false, r),
        _ => (false, s),
    };
    let rest = rest
        .strip_prefix(b"0x")
        .or_else(|| rest.strip_prefix(b"0X"))?;
    let (mantissa, exponent) = match rest.iter().position(|&b| b == b'p' || b == b'P') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut value = 0f64;
    let mut shift: i64 = 0;
    let mut digits = 0;
    let mut dot = false;
    for &b in mantissa {
        if b == b'.' && !dot {
            dot = true;
            continue;
        }
        let d = char::from(b).to_digit(16)?;
        value = value * 16.0 + f64::from(d);
        digits += 1;
        if dot {
            shift -= 4;
        }
    }
    if digits == 0 {
        return None;
    }
    if let Some(e) = exponent {
        let (eneg, edigits) = match e.split_first() {
            Some((b'-', r)) => (true, r),
            Some((b'+', r)) => (false, r),
            _ => (false, e),
        };
        if edigits.is_empty() || !edigits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut ev: i64 = 0;
        for &b in edigits {
            ev = ev.saturating_mul(10).saturating_add(i64::from(b - b'0'));
        }
        shift = shift.saturating_add(if eneg { -ev } else { ev });
    }
    let shift = i32::try_from(shift.clamp(-4000, 4000)).unwrap_or(0);
    // Two steps, so that a large mantissa with a very negative exponent does not overflow
    // the power of two before the product.
    let half = shift / 2;
    let v = value * 2f64.powi(half) * 2f64.powi(shift - half);
    Some(if negative { -v } else { v })
}

fn parse_score_bound(s: &[u8]) -> Result<(f64, bool), Error> {
    let (text, exclusive) = match s.split_first() {
        Some((b'(', rest)) => (rest, true),
        _ => (s, false),
    };
    let trimmed = text
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .map_or(&text[text.len()..], |i| &text[i..]);
    if let Some(v) = parse_hex_float(trimmed) {
        return Ok((v, exclusive));
    }
    match parse_f64_strtod(text) {
        Some(v) if !v.is_nan() => Ok((v, exclusive)),
        _ => Err(Error::ScoreRange),
    }
}

/// Parses ZRANGEBYSCORE-style bounds: a float (`inf`, `-inf` allowed), optionally prefixed by
/// `(` for exclusive. NaN is rejected.
pub fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Error> {
    let (min, min_exclusive) = parse_score_bound(min)?;
    let (max, max_exclusive) = parse_score_bound(max)?;
    Ok(ScoreRange {
        min,
        max,
        min_exclusive,
        max_exclusive,
    })
}

/// One end of a lex range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below every string.
    Min,
    /// `+`: above every string.
    Max,
    /// `[x`: `x` included.
    Inclusive(Box<[u8]>),
    /// `(x`: `x` excluded.
    Exclusive(Box<[u8]>),
}

impl LexBound {
    /// Parses one item as `zslParseLexRangeItem`.
    pub fn parse(s: &[u8]) -> Result<LexBound, Error> {
        match s {
            b"+" => Ok(LexBound::Max),
            b"-" => Ok(LexBound::Min),
            [b'(', rest @ ..] => Ok(LexBound::Exclusive(Box::from(rest))),
            [b'[', rest @ ..] => Ok(LexBound::Inclusive(Box::from(rest))),
            _ => Err(Error::LexRange),
        }
    }

    /// Redis sets the "exclusive" flag for `-` and `+` too.
    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Inclusive(_))
    }

    /// `sdscmplex(value, bound)`.
    fn cmp_value(&self, value: &[u8]) -> Ordering {
        match self {
            LexBound::Min => Ordering::Greater,
            LexBound::Max => Ordering::Less,
            LexBound::Inclusive(s) | LexBound::Exclusive(s) => value.cmp(s),
        }
    }
}

/// A lex interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexRange {
    /// The lower end.
    pub min: LexBound,
    /// The upper end.
    pub max: LexBound,
}

impl LexRange {
    /// `-` to `+`.
    pub const ALL: LexRange = LexRange {
        min: LexBound::Min,
        max: LexBound::Max,
    };

    pub(crate) fn gte_min(&self, v: &[u8]) -> bool {
        let c = self.min.cmp_value(v);
        if self.min.exclusive() {
            c == Ordering::Greater
        } else {
            c != Ordering::Less
        }
    }

    pub(crate) fn lte_max(&self, v: &[u8]) -> bool {
        let c = self.max.cmp_value(v);
        if self.max.exclusive() {
            c == Ordering::Less
        } else {
            c != Ordering::Greater
        }
    }

    /// Whether no string can be inside.
    pub(crate) fn is_empty(&self) -> bool {
        use LexBound::*;
        let cmp = match (&self.min, &self.max) {
            (Min, Min) | (Max, Max) => Ordering::Equal,
            (Min, _) | (_, Max) => Ordering::Less,
            (Max, _) | (_, Min) => Ordering::Greater,
            (Inclusive(a) | Exclusive(a), Inclusive(b) | Exclusive(b)) => a.cmp(b),
        };
        cmp == Ordering::Greater
            || (cmp == Ordering::Equal && (self.min.exclusive() || self.max.exclusive()))
    }

    /// Whether `v` is inside.
    pub fn contains(&self, v: &[u8]) -> bool {
        self.gte_min(v) && self.lte_max(v)
    }
}

/// Parses ZRANGEBYLEX-style bounds.
pub fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, Error> {
    Ok(LexRange {
        min: LexBound::parse(min)?,
        max: LexBound::parse(max)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_ranges() {
        let r = parse_score_range(b"(1", b"+inf").unwrap();
        assert!(!r.contains(1.0) && r.contains(1.5) && r.contains(f64::INFINITY));
        let r = parse_score_range(b"-inf", b"(2").unwrap();
        assert!(r.contains(f64::NEG_INFINITY) && !r.contains(2.0));
        assert_eq!(parse_score_range(b"", b"(").unwrap().min, 0.0);
        assert_eq!(parse_score_range(b"nan", b"1"), Err(Error::ScoreRange));
        assert_eq!(parse_score_range(b"1", b"x"), Err(Error::ScoreRange));
        assert_eq!(parse_score_range(b"((1", b"2"), Err(Error::ScoreRange));
        assert!(parse_score_range(b"(1", b"1").unwrap().is_empty());
        assert!(parse_score_range(b"2", b"1").unwrap().is_empty());
        assert!(!parse_score_range(b"1", b"1").unwrap().is_empty());
    }

    #[test]
    fn hex_floats_like_strtod() {
        assert_eq!(parse_hex_float(b"0x10"), Some(16.0));
        assert_eq!(parse_hex_float(b"-0X1.8p1"), Some(-3.0));
        assert_eq!(parse_hex_float(b"0x.8"), Some(0.5));
        assert_eq!(parse_hex_float(b"0x1p-2"), Some(0.25));
        assert_eq!(parse_hex_float(b"0xe"), Some(14.0));
        assert_eq!(parse_hex_float(b"0x"), None);
        assert_eq!(parse_hex_float(b"0x1p"), None);
        assert_eq!(parse_hex_float(b"0xg"), None);
        assert_eq!(parse_hex_float(b"10"), None);
        assert_eq!(parse_hex_float(b"0x1p99999"), Some(f64::INFINITY));
        assert_eq!(parse_score_range(b"(0x10", b" 0x20").unwrap().max, 32.0);
    }

    #[test]
    fn lex_ranges() {
        assert_eq!(parse_lex_range(b"a", b"+"), Err(Error::LexRange));
        assert_eq!(parse_lex_range(b"-", b"++"), Err(Error::LexRange));
        let all = parse_lex_range(b"-", b"+").unwrap();
        assert!(all.contains(b"") && all.contains(b"\xff") && !all.is_empty());
        assert!(parse_lex_range(b"-", b"-").unwrap().is_empty());
        assert!(parse_lex_range(b"+", b"-").unwrap().is_empty());
        assert!(parse_lex_range(b"[b", b"-").unwrap().is_empty());
        assert!(parse_lex_range(b"(b", b"[b").unwrap().is_empty());
        let r = parse_lex_range(b"[b", b"(d").unwrap();
        assert!(r.contains(b"b") && r.contains(b"c\xff") && !r.contains(b"d") && !r.contains(b"a"));
        let r = parse_lex_range(b"(", b"+").unwrap();
        assert!(!r.contains(b"") && r.contains(b"\0"));
    }
}
