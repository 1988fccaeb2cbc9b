//! The sidecar checksum table: one 8-byte entry per 4 KiB block of a segment, in
//! `hlog.<n>.sum` at offset `block * 8`.
//!
//! ```text
//! bytes 0..4  CRC32C over (block address as u64 LE, first_record as u16 LE, the block's bytes)
//! bytes 4..6  first_record: offset in the block of the first record that starts in it,
//!             or 0xFFFF when none does (the block continues a record, or is unused page end)
//! bytes 6..8  tag 0xD15C: the entry was written (an all-zero entry means "never flushed")
//! ```
//!
//! The address is in the CRC so that a block written at the wrong offset, or a stale entry of a
//! deleted segment file, fails the check; `first_record` is in it so that a damaged entry cannot
//! send recovery to a wrong record start.

use crate::log::BEGIN_ADDRESS;
use crate::record::{HEADER_BYTES, stored_size};

/// Bytes covered by one checksum entry: the unit in which damage is reported.
pub const SUM_BLOCK: usize = 4096;
/// Bytes of one entry in the sidecar file.
pub const ENTRY_BYTES: usize = 8;
/// `first_record` of a block in which no record starts.
pub const NO_RECORD: u16 = u16::MAX;
const TAG: u16 = 0xD15C;

const _: () = assert!(SUM_BLOCK < NO_RECORD as usize);
const _: () = assert!(SUM_BLOCK.is_power_of_two() && HEADER_BYTES <= SUM_BLOCK);

/// A decoded sidecar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// All zero: the block's sum was never written.
    Absent,
    /// Not zero, but without the tag: the entry itself is damaged.
    Malformed,
    /// A written entry.
    Present { crc: u32, first_record: u16 },
}

pub(crate) fn block_crc(address: u64, first_record: u16, block: &[u8]) -> u32 {
    debug_assert_eq!(block.len(), SUM_BLOCK);
    let c = crc32c::crc32c(&address.to_le_bytes());
    let c = crc32c::crc32c_append(c, &first_record.to_le_bytes());
    crc32c::crc32c_append(c, block)
}

pub(crate) fn encode(crc: u32, first_record: u16) -> [u8; ENTRY_BYTES] {
    let mut e = [0u8; ENTRY_BYTES];
    e[..4].copy_from_slice(&crc.to_le_bytes());
    e[4..6].copy_from_slice(&first_record.to_le_bytes());
    e[6..].copy_from_slice(&TAG.to_le_bytes());
    e
}

pub(crate) fn decode(e: &[u8]) -> Entry {
    let e: [u8; ENTRY_BYTES] = match e.try_into() {
        Ok(e) => e,
        Err(_) => return Entry::Malformed,
    };
    if e == [0; ENTRY_BYTES] {
        return Entry::Absent;
    }
    let [c0, c1, c2, c3, f0, f1, t0, t1] = e;
    if u16::from_le_bytes([t0, t1]) != TAG {
        return Entry::Malformed;
    }
    let first_record = u16::from_le_bytes([f0, f1]);
    if first_record != NO_RECORD && first_record as usize >= SUM_BLOCK {
        return Entry::Malformed;
    }
    Entry::Present {
        crc: u32::from_le_bytes([c0, c1, c2, c3]),
        first_record,
    }
}

fn word(data: &[u8], at: usize) -> Option<u64> {
    let bytes = data.get(at..at + 8)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// For each [`SUM_BLOCK`] of a page image written at `address`, where its first record starts.
///
/// The image starts with a record (a page start; page 0 starts with the unused bytes below
/// [`BEGIN_ADDRESS`]), records follow each other, and a zero first word marks the unused end
/// of the page (module docs of `log`). Sizes come from the headers through
/// [`stored_size`]; a size that does not fit ends the walk, so garbage cannot make it panic or
/// loop.
pub(crate) fn first_records(address: u64, data: &[u8]) -> Vec<u16> {
    let mut firsts = vec![NO_RECORD; data.len().div_ceil(SUM_BLOCK)];
    let mut at = BEGIN_ADDRESS.saturating_sub(address) as usize;
    while at + HEADER_BYTES <= data.len() {
        let (Some(info), Some(sizes)) = (word(data, at), word(data, at + 16)) else {
            break;
        };
        if info == 0 {
            break;
        }
        let slot = &mut firsts[at / SUM_BLOCK];
        if *slot == NO_RECORD {
            *slot = (at % SUM_BLOCK) as u16;
        }
        let size = stored_size(info, sizes);
        if size < HEADER_BYTES || !size.is_multiple_of(8) {
            break;
        }
        match at.checked_add(size) {
            Some(next) if next <= data.len() => at = next,
            _ => break,
        }
    }
    firsts
}

/// The sidecar entries for a page image written at `address` (a multiple of [`SUM_BLOCK`],
/// as is `data.len()`).
pub(crate) fn page_entries(address: u64, data: &[u8]) -> Vec<u8> {
    assert!(address.is_multiple_of(SUM_BLOCK as u64) && data.len().is_multiple_of(SUM_BLOCK));
    let firsts = first_records(address, data);
    let mut out = Vec::with_capacity(firsts.len() * ENTRY_BYTES);
    for (i, (block, &first)) in data.chunks_exact(SUM_BLOCK).zip(&firsts).enumerate() {
        let a = address + (i * SUM_BLOCK) as u64;
        out.extend_from_slice(&encode(block_crc(a, first, block), first));
    }
    debug_assert_eq!(out.len(), data.len() / SUM_BLOCK * ENTRY_BYTES);
    out
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::disk::testutil::page_image;

    #[test]
    fn entries_round_trip_and_reject_damage() {
        let e = encode(0xDEAD_BEEF, 40);
        assert_eq!(
            decode(&e),
            Entry::Present {
                crc: 0xDEAD_BEEF,
                first_record: 40
            }
        );
        assert_eq!(decode(&[0; 8]), Entry::Absent);
        let mut bad = e;
        bad[7] ^= 1;
        assert_eq!(decode(&bad), Entry::Malformed);
        assert_eq!(decode(&encode(1, 5000)), Entry::Malformed);
        assert_eq!(decode(&e[..7]), Entry::Malformed);
    }

    #[test]
    fn first_records_follow_the_record_chain() {
        let (data, starts) = page_image(4096 * 4, 4 * 4096, &[10, 3000, 5000, 100, 7]);
        let firsts = first_records(4096 * 4, &data);
        for (b, &f) in firsts.iter().enumerate() {
            let lo = 4096 * 4 + (b * 4096) as u64;
            let expect = starts.iter().find(|&&s| s >= lo && s < lo + 4096);
            match expect {
                Some(&s) => assert_eq!(f as u64, s - lo, "block {b}"),
                None => assert_eq!(f, NO_RECORD, "block {b}"),
            }
        }
        // Page 0 starts below BEGIN_ADDRESS.
        let (data, starts) = page_image(0, 4096, &[16]);
        assert_eq!(starts, [BEGIN_ADDRESS]);
        assert_eq!(first_records(0, &data)[0] as u64, BEGIN_ADDRESS);
    }

    #[test]
    fn garbage_headers_end_the_walk_without_panicking() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200 {
            let mut data = vec![0u8; 8192];
            for b in data.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            let f = first_records(8192, &data);
            assert_eq!(f.len(), 2);
            assert_eq!(page_entries(8192, &data).len(), 16);
        }
    }
}
