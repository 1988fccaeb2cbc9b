//! Checking flushed data against the sidecar checksums (recovery's first step).

use super::buf::AlignedBuf;
use super::segment::SegmentedFile;
use super::sums::{self, Entry, NO_RECORD, SUM_BLOCK};
use super::{ADDRESS_LIMIT, DiskError};

/// Bytes verified per read.
const CHUNK: usize = 1 << 20;

/// What is wrong with a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// No checksum entry: the block was never flushed, or the crash came between its data and
    /// its entry (the segment or its sidecar may also have been cut short).
    Unwritten,
    /// The entry exists but the data file ends before the block: the file was truncated.
    Missing,
    /// The data does not match its checksum: a torn write, a flipped bit, a misdirected write.
    Corrupt,
    /// The entry itself is damaged (no tag, impossible record offset).
    BadEntry,
}

/// One damaged [`SUM_BLOCK`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadBlock {
    /// The block's first address.
    pub address: u64,
    /// What is wrong.
    pub damage: Damage,
}

/// Consecutive damaged blocks, and where recovery's record walk resumes after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadRun {
    /// First address of the first bad block.
    pub start: u64,
    /// One past the last bad block.
    pub end: u64,
    /// The first record that starts in a good block at or after `end` (within the verified
    /// range), or `None`. Records between `start`'s record and this one are lost.
    pub resume_at: Option<u64>,
}

/// The outcome of [`SegmentedFile::verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Blocks checked.
    pub blocks: u64,
    /// Damaged blocks, in address order.
    pub bad: Vec<BadBlock>,
    /// The same blocks grouped into runs.
    pub runs: Vec<BadRun>,
}

impl Verification {
    /// Whether every block checked out.
    pub fn is_clean(&self) -> bool {
        self.bad.is_empty()
    }

    fn push(&mut self, address: u64, check: Result<Option<u16>, Damage>) {
        self.blocks += 1;
        match check {
            Err(damage) => {
                self.bad.push(BadBlock { address, damage });
                match self.runs.last_mut() {
                    Some(run) if run.end == address => run.end += SUM_BLOCK as u64,
                    _ => self.runs.push(BadRun {
                        start: address,
                        end: address + SUM_BLOCK as u64,
                        resume_at: None,
                    }),
                }
            }
            Ok(Some(first)) => {
                // Every run still waiting for a resume point ends before this block.
                let at = address + first as u64;
                for run in self.runs.iter_mut().rev() {
                    if run.resume_at.is_some() {
                        break;
                    }
                    run.resume_at = Some(at);
                }
            }
            Ok(None) => {}
        }
    }
}

/// Checks one block: `Ok(first record start)` or the damage.
fn check(address: u64, data: Option<&[u8]>, entry: Entry) -> Result<Option<u16>, Damage> {
    let (crc, first) = match entry {
        Entry::Absent => return Err(Damage::Unwritten),
        Entry::Malformed => return Err(Damage::BadEntry),
        Entry::Present { crc, first_record } => (crc, first_record),
    };
    let data = data.ok_or(Damage::Missing)?;
    if sums::block_crc(address, first, data) != crc {
        return Err(Damage::Corrupt);
    }
    Ok((first != NO_RECORD).then_some(first))
}

impl SegmentedFile {
    /// Checks `[from, until)` (widened to whole [`SUM_BLOCK`]s) against the checksum table and
    /// reports every damaged block. The range is what recovery believes was flushed and synced,
    /// so blocks without an entry count as damage too. Reads the data, so it costs one pass
    /// over the range. Never panics on file contents.
    pub fn verify(&self, from: u64, until: u64) -> Result<Verification, DiskError> {
        let b = SUM_BLOCK as u64;
        let from = from / b * b;
        let until = until.min(ADDRESS_LIMIT).next_multiple_of(b);
        let begin = self.begin_address();
        if from < begin {
            return Err(DiskError::Truncated {
                address: from,
                begin,
            });
        }
        let mut out = Verification::default();
        let mut buf = AlignedBuf::new(CHUNK, self.alignment());
        let mut entries = Vec::new();
        let mut at = from;
        while at < until {
            let seg_end = (at | (self.segment_bytes() - 1)) + 1;
            let end = until.min(seg_end).min(at + CHUNK as u64);
            let blocks = ((end - at) / b) as usize;
            let n = at / self.segment_bytes();
            match self.segment(n, false)? {
                None => (0..blocks).for_each(|i| {
                    out.push(at + i as u64 * b, Err(Damage::Unwritten));
                }),
                Some(seg) => {
                    self.read_entries(&seg, at, blocks, &mut entries)?;
                    let data = self.read_at(at, (end - at) as usize, &mut buf)?;
                    for i in 0..blocks {
                        let block = data.get(i * SUM_BLOCK..(i + 1) * SUM_BLOCK);
                        let e = sums::decode(&entries[i * 8..(i + 1) * 8]);
                        let address = at + (i * SUM_BLOCK) as u64;
                        out.push(address, check(address, block, e));
                    }
                }
            }
            at = end;
        }
        Ok(out)
    }
}
