//! Redis's compact blobs as they appear inside RDB values: listpacks (`src/listpack.c`), the
//! older ziplists (`src/ziplist.c`, read only, for payloads from Redis before 7.0) and intsets
//! (`src/intset.c`).

use ferrite_collections::listpack::{self, le_int};

/// The end-of-ziplist byte.
const EOF: u8 = 0xff;

/// An element read from a listpack or ziplist (a string, or an integer to show in decimal).
pub use ferrite_collections::listpack::Elem;

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
        Self {
            buf: listpack::new(),
            count: 0,
        }
    }

    /// Bytes the listpack has now (its `lpBytes`, terminator included).
    pub fn bytes(&self) -> usize {
        self.buf.len()
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
        listpack::append(&mut self.buf, ele);
        self.count += 1;
    }

    /// The finished blob.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Splits a listpack into its elements, checking every bound (a DUMP payload is untrusted).
/// `None` when the blob is malformed.
pub fn listpack_elements(lp: &[u8]) -> Option<Vec<Elem<'_>>> {
    let mut out = Vec::with_capacity(listpack::validate(lp)?);
    let mut pos = listpack::first(lp);
    while let Some(p) = pos {
        let (e, next) = listpack::get(lp, p)?;
        out.push(e);
        pos = (!listpack::at_end(lp, next)).then_some(next);
    }
    Some(out)
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
