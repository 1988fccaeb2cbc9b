//! Redis's listpack (`src/listpack.c`), the compact blob inside stream nodes and RDB values:
//! appending as `lpAppend` does, replacing an integer in place as `lpReplaceInteger` does, and
//! walking elements forwards and backwards. Every read is bounds-checked and answers `None` on
//! malformed bytes, so a node that came from an RDB payload can never make us panic;
//! [`validate`] checks a whole listpack once.

use crate::util::{format_i64, parse_i64_strict};

/// Bytes of a listpack header: total bytes (u32) and element count (u16).
pub const HDR: usize = 6;
/// The end-of-listpack byte.
const EOF: u8 = 0xff;
/// The header's element count once it no longer fits (`LP_HDR_NUMELE_UNKNOWN`).
const NUMELE_UNKNOWN: u16 = u16::MAX;

/// An element of a listpack: strings that look like integers are stored as integers, so a
/// field or value comes back as either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem<'a> {
    /// A string element.
    Str(&'a [u8]),
    /// An integer element (the client sent its decimal form).
    Int(i64),
}

impl Elem<'_> {
    /// The bytes the client sent.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// Appends the bytes the client sent to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.with_bytes(|b| out.extend_from_slice(b));
    }

    /// Calls `f` with the bytes the client sent, formatting an integer on the stack.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Elem::Str(s) => f(s),
            Elem::Int(v) => {
                let mut buf = [0u8; 20];
                f(format_i64(&mut buf, *v))
            }
        }
    }

    /// Whether the element's bytes are `b`.
    pub fn eq_bytes(&self, b: &[u8]) -> bool {
        self.with_bytes(|s| s == b)
    }

    /// Length of the element's bytes.
    pub fn len(&self) -> usize {
        self.with_bytes(<[u8]>::len)
    }

    /// Whether the element is the empty string.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The integer, for elements that hold one (`lpGetIntegerIfValid`: a string that parses
    /// as one counts too).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Elem::Int(v) => Some(*v),
            Elem::Str(s) => parse_i64_strict(s),
        }
    }
}

/// A new empty listpack (`lpNew`).
pub fn new() -> Vec<u8> {
    let mut lp = Vec::with_capacity(64);
    lp.extend_from_slice(&7u32.to_le_bytes());
    lp.extend_from_slice(&0u16.to_le_bytes());
    lp.push(EOF);
    lp
}

/// `lpAppend`: `ele` gets an integer encoding if it reads as one, else a string encoding.
pub fn append(lp: &mut Vec<u8>, ele: &[u8]) {
    // `lpStringToInt64` has `string2ll`'s rules.
    match parse_i64_strict(ele) {
        Some(v) => append_int(lp, v),
        None => append_encoded(lp, |out| encode_str(out, ele)),
    }
}

/// `lpAppendInteger` (which formats the integer and appends the string, giving the same bytes).
pub fn append_int(lp: &mut Vec<u8>, v: i64) {
    append_encoded(lp, |out| encode_int(out, v));
}

fn append_encoded(lp: &mut Vec<u8>, encode: impl FnOnce(&mut Vec<u8>)) {
    // Drop the terminator, write the element and its back-length, put the terminator back.
    lp.pop();
    let start = lp.len();
    encode(lp);
    let size = lp.len() - start;
    encode_backlen(lp, size);
    lp.push(EOF);
    set_total_bytes(lp);
    let n = num_elements(lp);
    if n != NUMELE_UNKNOWN {
        lp[4..6].copy_from_slice(&(n + 1).to_le_bytes());
    }
}

/// `lpReplaceInteger`: the element at `pos` becomes the integer `v`; later elements move if the
/// size changes. Returns `None` (leaving `lp` alone) if `pos` is not an element.
pub fn replace_int(lp: &mut Vec<u8>, pos: usize, v: i64) -> Option<()> {
    let (_, next) = get(lp, pos)?;
    let mut enc = Vec::with_capacity(10);
    encode_int(&mut enc, v);
    let size = enc.len();
    encode_backlen(&mut enc, size);
    lp.splice(pos..next, enc);
    set_total_bytes(lp);
    Some(())
}

fn set_total_bytes(lp: &mut [u8]) {
    let total = u32::try_from(lp.len()).unwrap_or(u32::MAX);
    lp[0..4].copy_from_slice(&total.to_le_bytes());
}

fn num_elements(lp: &[u8]) -> u16 {
    u16::from_le_bytes([lp[4], lp[5]])
}

/// Offset of the first element (`lpFirst`), `None` if the listpack is empty.
pub fn first(lp: &[u8]) -> Option<usize> {
    (lp.get(HDR).is_some_and(|&b| b != EOF)).then_some(HDR)
}

/// Offset of the last element (`lpLast`), `None` if the listpack is empty.
pub fn last(lp: &[u8]) -> Option<usize> {
    prev(lp, lp.len().checked_sub(1)?)
}

/// The element at `pos` and the offset just past it (its back-length included); at the
/// terminator or on malformed bytes, `None`.
pub fn get(lp: &[u8], pos: usize) -> Option<(Elem<'_>, usize)> {
    let (elem, size) = decode(lp, pos)?;
    let next = pos.checked_add(size)?.checked_add(backlen_size(size))?;
    (next < lp.len()).then_some((elem, next))
}

/// The integer at `pos` and the offset past it; `None` if it is not an integer.
pub fn get_int(lp: &[u8], pos: usize) -> Option<(i64, usize)> {
    let (e, next) = get(lp, pos)?;
    Some((e.as_int()?, next))
}

/// Whether `pos` is the terminator.
pub fn at_end(lp: &[u8], pos: usize) -> bool {
    lp.get(pos) == Some(&EOF)
}

/// Offset of the element before the one at `pos` (`lpPrev`), `None` at the first element.
pub fn prev(lp: &[u8], pos: usize) -> Option<usize> {
    if pos <= HDR || pos >= lp.len() {
        return None;
    }
    // The back-length ends just before `pos`; it reads right to left, 7 bits a byte.
    let mut p = pos - 1;
    let mut size: usize = 0;
    let mut shift = 0;
    loop {
        let b = *lp.get(p)?;
        size |= usize::from(b & 127) << shift;
        if b & 128 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
        p = p.checked_sub(1)?;
    }
    let start = pos.checked_sub(backlen_size(size))?.checked_sub(size)?;
    (start >= HDR).then_some(start)
}

/// Decodes the element at `pos`: the element and its encoded size (without back-length).
fn decode(lp: &[u8], pos: usize) -> Option<(Elem<'_>, usize)> {
    let b = *lp.get(pos)?;
    let at = |from: usize, len: usize| {
        lp.get(pos.checked_add(from)?..pos.checked_add(from)?.checked_add(len)?)
    };
    Some(if b & 0x80 == 0 {
        (Elem::Int(i64::from(b & 0x7f)), 1)
    } else if b & 0xc0 == 0x80 {
        let len = usize::from(b & 0x3f);
        (Elem::Str(at(1, len)?), 1 + len)
    } else if b & 0xe0 == 0xc0 {
        let u = (i64::from(b & 0x1f) << 8) | i64::from(*at(1, 1)?.first()?);
        (Elem::Int(if u >= 1 << 12 { u - (1 << 13) } else { u }), 2)
    } else if b & 0xf0 == 0xe0 {
        let len = (usize::from(b & 0x0f) << 8) | usize::from(*at(1, 1)?.first()?);
        (Elem::Str(at(2, len)?), 2 + len)
    } else {
        match b {
            0xf0 => {
                let len = u32::from_le_bytes(at(1, 4)?.try_into().ok()?) as usize;
                (Elem::Str(at(5, len)?), 5usize.checked_add(len)?)
            }
            0xf1 => (Elem::Int(le_int(at(1, 2)?)), 3),
            0xf2 => (Elem::Int(le_int(at(1, 3)?)), 4),
            0xf3 => (Elem::Int(le_int(at(1, 4)?)), 5),
            0xf4 => (Elem::Int(le_int(at(1, 8)?)), 9),
            _ => return None,
        }
    })
}

/// A little-endian two's-complement integer of 1 to 8 bytes, sign-extended (listpack and
/// ziplist integer encodings).
pub fn le_int(bytes: &[u8]) -> i64 {
    let mut v: u64 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        v |= u64::from(b) << (8 * i);
    }
    let bits = 8 * bytes.len() as u32;
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        v |= u64::MAX << bits;
    }
    v as i64
}

fn encode_int(out: &mut Vec<u8>, v: i64) {
    if (0..=127).contains(&v) {
        out.push(v as u8);
    } else if (-4096..=4095).contains(&v) {
        let u = if v < 0 { (1 << 13) + v } else { v } as u16;
        out.push(((u >> 8) as u8) | 0xc0);
        out.push(u as u8);
    } else if (-32768..=32767).contains(&v) {
        out.push(0xf1);
        out.extend_from_slice(&(v as i16).to_le_bytes());
    } else if (-8_388_608..=8_388_607).contains(&v) {
        out.push(0xf2);
        out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
    } else if i32::try_from(v).is_ok() {
        out.push(0xf3);
        out.extend_from_slice(&(v as i32).to_le_bytes());
    } else {
        out.push(0xf4);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn encode_str(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 64 {
        out.push(0x80 | len as u8);
    } else if len < 4096 {
        out.push(0xe0 | (len >> 8) as u8);
        out.push(len as u8);
    } else {
        out.push(0xf0);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(s);
}

/// Bytes `lpEncodeBacklen` uses for an element of `size` bytes.
fn backlen_size(size: usize) -> usize {
    match size {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// `lpEncodeBacklen`: the size in 7-bit groups, most significant first, every byte but the
/// first with the high bit set (so it reads right to left).
fn encode_backlen(out: &mut Vec<u8>, size: usize) {
    let groups = backlen_size(size);
    for g in (0..groups).rev() {
        let byte = ((size >> (7 * g)) & 127) as u8;
        out.push(if g == groups - 1 { byte } else { byte | 128 });
    }
}

/// `lpValidateIntegrity` with deep checking: the header's size and count match, every element
/// decodes within bounds with a matching back-length, and the terminator ends it. Returns the
/// number of elements.
pub fn validate(lp: &[u8]) -> Option<usize> {
    if lp.len() < HDR + 1 || u32::from_le_bytes(lp[0..4].try_into().ok()?) as usize != lp.len() {
        return None;
    }
    if lp.last() != Some(&EOF) {
        return None;
    }
    let mut pos = HDR;
    let mut count = 0usize;
    while !at_end(lp, pos) {
        let (_, size) = decode(lp, pos)?;
        let mut back = Vec::with_capacity(5);
        encode_backlen(&mut back, size);
        let end = pos.checked_add(size)?;
        if lp.get(end..end.checked_add(back.len())?)? != back.as_slice() {
            return None;
        }
        pos = end + back.len();
        count += 1;
    }
    if pos != lp.len() - 1 {
        return None;
    }
    let n = num_elements(lp);
    (n == NUMELE_UNKNOWN || usize::from(n) == count).then_some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_replace_and_walk_both_ways() {
        let mut lp = new();
        for e in [
            &b"1"[..],
            b"-5000",
            b"hello",
            &[b'x'; 100],
            b"9223372036854775807",
            b"007",
        ] {
            append(&mut lp, e);
        }
        assert_eq!(validate(&lp), Some(6));
        let mut fwd = Vec::new();
        let mut p = first(&lp);
        while let Some(pos) = p {
            let (e, next) = get(&lp, pos).unwrap();
            fwd.push(e.to_vec());
            p = (!at_end(&lp, next)).then_some(next);
        }
        assert_eq!(fwd[1], b"-5000");
        assert_eq!(fwd[5], b"007");
        let mut back = Vec::new();
        let mut p = last(&lp);
        while let Some(pos) = p {
            back.push(get(&lp, pos).unwrap().0.to_vec());
            p = prev(&lp, pos);
        }
        back.reverse();
        assert_eq!(fwd, back);
        // Growing an integer from one byte to three moves what follows.
        replace_int(&mut lp, HDR, 100_000).unwrap();
        assert_eq!(validate(&lp), Some(6));
        assert_eq!(get(&lp, HDR).unwrap().0, Elem::Int(100_000));
        assert_eq!(get_int(&lp, HDR).unwrap().0, 100_000);
    }

    #[test]
    fn integers_round_trip_every_width() {
        for v in [
            0,
            127,
            128,
            -1,
            4095,
            -4096,
            4096,
            32767,
            -32768,
            8_388_607,
            -8_388_608,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ] {
            let mut lp = new();
            append_int(&mut lp, v);
            assert_eq!(validate(&lp), Some(1));
            assert_eq!(get(&lp, HDR).unwrap().0, Elem::Int(v));
            assert_eq!(Elem::Int(v).to_vec(), v.to_string().into_bytes());
        }
    }

    #[test]
    fn malformed_bytes_are_refused_without_panicking() {
        let mut lp = new();
        append(&mut lp, b"abc");
        for cut in 0..lp.len() {
            assert_eq!(validate(&lp[..cut]), None);
            let _ = get(&lp[..cut], HDR);
            let _ = prev(&lp[..cut], cut);
        }
        let mut bad = lp.clone();
        bad[HDR] = 0xf5;
        assert_eq!(validate(&bad), None);
    }
}
