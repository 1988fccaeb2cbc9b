//! Redis's compact blobs as they appear inside RDB values: listpacks (`src/listpack.c`), the
//! older ziplists (`src/ziplist.c`, read only, for payloads from Redis before 7.0) and intsets
//! (`src/intset.c`).

use crate::args::parse_i64;

/// Bytes of a listpack header: total bytes (u32) and element count (u16).
const LP_HDR: usize = 6;
/// The end-of-listpack (and end-of-ziplist) byte.
const EOF: u8 = 0xff;

/// An element read from a listpack or ziplist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Elem<'a> {
    /// A string element.
    Str(&'a [u8]),
    /// An integer element.
    Int(i64),
}

impl Elem<'_> {
    /// The element as Redis's commands see it: integers in decimal.
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Elem::Str(s) => s.to_vec(),
            Elem::Int(i) => i.to_string().into_bytes(),
        }
    }
}

/// Builds a listpack the way `lpAppend` does, element by element.
pub struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

impl Default for ListpackWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ListpackWriter {
    /// An empty listpack.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; LP_HDR]);
        Self { buf, count: 0 }
    }

    /// Bytes the listpack would have now (its `lpBytes`, terminator included).
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Elements appended so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing was appended yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `lpAppend`: integers (by `string2ll`'s rules) get the smallest integer encoding, anything
    /// else a string encoding; then the entry's length, backwards.
    pub fn push(&mut self, ele: &[u8]) {
        let start = self.buf.len();
        match parse_i64(ele) {
            Some(v) => encode_int(&mut self.buf, v),
            None => encode_str(&mut self.buf, ele),
        }
        let entry_len = self.buf.len() - start;
        encode_backlen(&mut self.buf, entry_len as u64);
        self.count += 1;
    }

    /// The finished blob.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(EOF);
        let total = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let n = u16::try_from(self.count).unwrap_or(u16::MAX);
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
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

/// `lpEncodeBacklen`: the entry length in 7-bit groups, most significant first, every byte but
/// the first with the high bit set (so it reads right to left).
fn encode_backlen(out: &mut Vec<u8>, l: u64) {
    let groups = match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    };
    for g in (0..groups).rev() {
        let byte = ((l >> (7 * g)) & 127) as u8;
        out.push(if g == groups - 1 { byte } else { byte | 128 });
    }
}

/// Splits a listpack into its elements, checking every bound (a DUMP payload is untrusted).
/// `None` when the blob is malformed.
pub fn listpack_elements(lp: &[u8]) -> Option<Vec<Elem<'_>>> {
    if lp.len() < LP_HDR + 1 {
        return None;
    }
    let total = u32::from_le_bytes(lp[0..4].try_into().ok()?) as usize;
    if total != lp.len() || lp[lp.len() - 1] != EOF {
        return None;
    }
    let count = u16::from_le_bytes(lp[4..6].try_into().ok()?);
    let mut out = Vec::new();
    let mut p = LP_HDR;
    let end = lp.len() - 1;
    while p < end {
        let b = lp[p];
        let (elem, size) = if b & 0x80 == 0 {
            (Elem::Int(i64::from(b & 0x7f)), 1)
        } else if b & 0xc0 == 0x80 {
            let len = usize::from(b & 0x3f);
            (Elem::Str(lp.get(p + 1..p + 1 + len)?), 1 + len)
        } else if b & 0xe0 == 0xc0 {
            let u = (u16::from(b & 0x1f) << 8) | u16::from(*lp.get(p + 1)?);
            let v = if u >= 1 << 12 {
                i64::from(u) - (1 << 13)
            } else {
                i64::from(u)
            };
            (Elem::Int(v), 2)
        } else if b & 0xf0 == 0xe0 {
            let len = (usize::from(b & 0x0f) << 8) | usize::from(*lp.get(p + 1)?);
            (Elem::Str(lp.get(p + 2..p + 2 + len)?), 2 + len)
        } else {
            match b {
                0xf0 => {
                    let len = u32::from_le_bytes(lp.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                    let s = lp.get(p + 5..p.checked_add(5)?.checked_add(len)?)?;
                    (Elem::Str(s), 5 + len)
                }
                0xf1 => (Elem::Int(le_int(lp.get(p + 1..p + 3)?)), 3),
                0xf2 => (Elem::Int(le_int(lp.get(p + 1..p + 4)?)), 4),
                0xf3 => (Elem::Int(le_int(lp.get(p + 1..p + 5)?)), 5),
                0xf4 => (Elem::Int(le_int(lp.get(p + 1..p + 9)?)), 9),
                _ => return None,
            }
        };
        let mut backlen = Vec::with_capacity(5);
        encode_backlen(&mut backlen, size as u64);
        if lp.get(p + size..p + size + backlen.len())? != backlen.as_slice() {
            return None;
        }
        p += size + backlen.len();
        out.push(elem);
    }
    if p != end || (count != u16::MAX && usize::from(count) != out.len()) {
        return None;
    }
    Some(out)
}

/// A little-endian two's-complement integer of 1 to 8 bytes, sign-extended.
fn le_int(bytes: &[u8]) -> i64 {
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

/// Splits a ziplist (Redis before 7.0) into its elements; `None` when malformed.
pub fn ziplist_elements(zl: &[u8]) -> Option<Vec<Elem<'_>>> {
    const HDR: usize = 10;
    if zl.len() < HDR + 1 {
        return None;
    }
    let total = u32::from_le_bytes(zl[0..4].try_into().ok()?) as usize;
    if total != zl.len() || zl[zl.len() - 1] != EOF {
        return None;
    }
    let count = u16::from_le_bytes(zl[8..10].try_into().ok()?);
    let mut out = Vec::new();
    let mut p = HDR;
    let end = zl.len() - 1;
    while p < end {
        // The previous entry's length: one byte, or 0xfe and four bytes.
        p += if zl[p] == 0xfe { 5 } else { 1 };
        let b = *zl.get(p)?;
        let (elem, size) = match b >> 6 {
            0 => {
                let len = usize::from(b & 0x3f);
                (Elem::Str(zl.get(p + 1..p + 1 + len)?), 1 + len)
            }
            1 => {
                let len = (usize::from(b & 0x3f) << 8) | usize::from(*zl.get(p + 1)?);
                (Elem::Str(zl.get(p + 2..p + 2 + len)?), 2 + len)
            }
            2 => {
                let len = u32::from_be_bytes(zl.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                let s = zl.get(p + 5..p.checked_add(5)?.checked_add(len)?)?;
                (Elem::Str(s), 5 + len)
            }
            _ => match b {
                0xc0 => (Elem::Int(le_int(zl.get(p + 1..p + 3)?)), 3),
                0xd0 => (Elem::Int(le_int(zl.get(p + 1..p + 5)?)), 5),
                0xe0 => (Elem::Int(le_int(zl.get(p + 1..p + 9)?)), 9),
                0xf0 => (Elem::Int(le_int(zl.get(p + 1..p + 4)?)), 4),
                0xfe => (Elem::Int(le_int(zl.get(p + 1..p + 2)?)), 2),
                0xf1..=0xfd => (Elem::Int(i64::from(b & 0x0f) - 1), 1),
                _ => return None,
            },
        };
        p += size;
        out.push(elem);
    }
    if p != end || (count != u16::MAX && usize::from(count) != out.len()) {
        return None;
    }
    Some(out)
}

/// An intset blob: encoding width, length, then the values ascending, all little-endian. The
/// width is the smallest that holds every value (Redis's upgrade-only width can be wider after
/// removals).
pub fn intset_blob(values: &[i64]) -> Vec<u8> {
    let width: usize = if values.iter().all(|&v| i16::try_from(v).is_ok()) {
        2
    } else if values.iter().all(|&v| i32::try_from(v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * values.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for &v in values {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

/// The values of an intset blob; `None` when malformed (bad width, size mismatch).
pub fn intset_values(blob: &[u8]) -> Option<Vec<i64>> {
    let width = u32::from_le_bytes(blob.get(0..4)?.try_into().ok()?) as usize;
    let len = u32::from_le_bytes(blob.get(4..8)?.try_into().ok()?) as usize;
    if !matches!(width, 2 | 4 | 8) || blob.len() != 8 + width.checked_mul(len)? {
        return None;
    }
    Some(blob[8..].chunks_exact(width).map(le_int).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_matches_redis() {
        // The node of `RPUSH L a b 1 -5000` as redis-server 7.0 dumps it.
        let mut w = ListpackWriter::new();
        for e in [&b"a"[..], b"b", b"1", b"-5000"] {
            w.push(e);
        }
        let lp = w.finish();
        assert_eq!(
            lp,
            b"\x13\x00\x00\x00\x04\x00\x81a\x02\x81b\x02\x01\x01\xf1x\xec\x03\xff"
        );
        let elems = listpack_elements(&lp).unwrap();
        assert_eq!(
            elems,
            [
                Elem::Str(b"a"),
                Elem::Str(b"b"),
                Elem::Int(1),
                Elem::Int(-5000)
            ]
        );
    }

    #[test]
    fn listpack_round_trips_every_encoding() {
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let items: Vec<Vec<u8>> = [
            "0",
            "127",
            "128",
            "-1",
            "-4096",
            "4095",
            "4096",
            "-32768",
            "32767",
            "32768",
            "-8388608",
            "8388607",
            "8388608",
            "-2147483648",
            "2147483647",
            "2147483648",
            "-9223372036854775808",
            "9223372036854775807",
            "",
            "-0",
            "01",
            "abc",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([long, mid])
        .collect();
        let mut w = ListpackWriter::new();
        for i in &items {
            w.push(i);
        }
        let lp = w.finish();
        let back: Vec<Vec<u8>> = listpack_elements(&lp)
            .unwrap()
            .iter()
            .map(Elem::to_vec)
            .collect();
        assert_eq!(back, items);
        for cut in 0..lp.len() {
            assert!(listpack_elements(&lp[..cut]).is_none());
        }
    }

    #[test]
    fn intsets() {
        let blob = intset_blob(&[-3, 5, 70000]);
        assert_eq!(&blob[..8], b"\x04\x00\x00\x00\x03\x00\x00\x00");
        assert_eq!(intset_values(&blob).unwrap(), [-3, 5, 70000]);
        assert!(intset_values(&blob[..blob.len() - 1]).is_none());
        assert!(intset_values(b"\x03\x00\x00\x00\x00\x00\x00\x00").is_none());
    }

    #[test]
    fn ziplist_reads() {
        // A ziplist of "ab", 7 (immediate), 300 (int16), hand-built.
        let mut zl = vec![0u8; 10];
        zl.extend_from_slice(b"\x00\x02ab");
        zl.extend_from_slice(b"\x04\xf8");
        zl.extend_from_slice(b"\x02\xc0\x2c\x01");
        zl.push(0xff);
        let n = zl.len() as u32;
        zl[0..4].copy_from_slice(&n.to_le_bytes());
        zl[8..10].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(
            ziplist_elements(&zl).unwrap(),
            [Elem::Str(b"ab"), Elem::Int(7), Elem::Int(300)]
        );
        assert!(ziplist_elements(&zl[..zl.len() - 2]).is_none());
    }
}
