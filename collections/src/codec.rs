//! The spill format shared by every type: a one-byte tag, a one-byte version, then varint counts
//! and length-prefixed byte strings. The caller checksums the whole record.

/// A spilled value that cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end before the value does.
    #[error("truncated collection record")]
    Truncated,
    /// The record is for another type.
    #[error("collection record has tag {found}, expected {expected}")]
    WrongTag {
        /// The tag the type expects.
        expected: u8,
        /// The tag found.
        found: u8,
    },
    /// The record's format version is not one this build reads.
    #[error("unsupported collection record version {0}")]
    Version(u8),
    /// The record decodes to something a live value cannot hold.
    #[error("corrupt collection record: {0}")]
    Corrupt(&'static str),
    /// Bytes remain after the value.
    #[error("trailing bytes after collection record")]
    Trailing,
}

/// The format version every type writes today.
pub(crate) const VERSION: u8 = 1;

/// Type tags, one per collection type.
pub(crate) mod tag {
    pub const LIST: u8 = b'L';
    pub const HASH: u8 = b'H';
    pub const SET_INTS: u8 = b'I';
    pub const SET: u8 = b'S';
    pub const ZSET: u8 = b'Z';
    pub const STREAM: u8 = b'X';
}

pub(crate) fn put_header(out: &mut Vec<u8>, tag: u8) {
    out.push(tag);
    out.push(VERSION);
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A cursor over a record being decoded.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Checks the header and returns the reader positioned after it, with the tag found.
    pub(crate) fn open(bytes: &'a [u8], accepted: &[u8]) -> Result<(Self, u8), DecodeError> {
        let [found, version, rest @ ..] = bytes else {
            return Err(DecodeError::Truncated);
        };
        if !accepted.contains(found) {
            return Err(DecodeError::WrongTag {
                expected: accepted[0],
                found: *found,
            });
        }
        if *version != VERSION {
            return Err(DecodeError::Version(*version));
        }
        Ok((Self { bytes: rest }, *found))
    }

    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.bytes.split_first().ok_or(DecodeError::Truncated)?;
            self.bytes = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Corrupt("varint too long"))
    }

    /// A count, bounded by the bytes left so that a corrupt count cannot make us allocate wildly.
    pub(crate) fn count(&mut self, min_bytes_each: usize) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| DecodeError::Truncated)?;
        if n.saturating_mul(min_bytes_each.max(1)) > self.bytes.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(self.varint()?).map_err(|_| DecodeError::Truncated)?;
        if n > self.bytes.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn u64_le(&mut self) -> Result<u64, DecodeError> {
        let Some((head, rest)) = self.bytes.split_first_chunk::<8>() else {
            return Err(DecodeError::Truncated);
        };
        self.bytes = rest;
        Ok(u64::from_le_bytes(*head))
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_header(&mut out, tag::LIST);
            put_varint(&mut out, v);
            let (mut r, _) = Reader::open(&out, &[tag::LIST]).unwrap();
            assert_eq!(r.varint().unwrap(), v);
            r.finish().unwrap();
        }
    }

    #[test]
    fn bad_headers() {
        assert_eq!(
            Reader::open(&[], &[tag::LIST]).err(),
            Some(DecodeError::Truncated)
        );
        assert!(matches!(
            Reader::open(&[b'Q', 1], &[tag::LIST]),
            Err(DecodeError::WrongTag { .. })
        ));
        assert_eq!(
            Reader::open(&[tag::LIST, 9], &[tag::LIST]).err(),
            Some(DecodeError::Version(9))
        );
        let (mut r, _) = Reader::open(&[tag::LIST, 1, 0xff, 0xff], &[tag::LIST]).unwrap();
        assert_eq!(r.varint(), Err(DecodeError::Truncated));
    }
}
