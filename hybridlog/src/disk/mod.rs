//! The disk device under the HybridLog's on-disk region `[begin, head)`: segment files, aligned
//! buffers and per-block checksums. [`SegmentedFile`] is the store's
//! [`Device`](crate::tier::Device): the flusher writes pages through
//! [`SegmentedFile::write_page`], and records below the head are read through
//! [`SegmentedFile::locate`] by the reactor (its own ring, or its I/O threads on the epoll
//! backend) or synchronously through [`SegmentedFile::read_at`].
//!
//! # Layout
//! The log's address space maps 1:1 onto file offsets: address `a` lives in segment
//! `a >> segment_bits`, file `<dir>/hlog.<n>`, at offset `a & (segment_bytes - 1)`. Segments
//! are created when first written, so the files are sparse where the log has holes, and
//! `truncate_until` (compaction) deletes whole segments below an address.
//!
//! # Direct I/O, and the buffered fallback
//! Segments are opened with `O_DIRECT`, so flushed pages do not pass through (and double-cache
//! in) the page cache, and written without `O_DSYNC`: durability is an explicit
//! [`SegmentedFile::sync`] (`fdatasync` of each segment written since the last one, and of the
//! directory when segments were created), which the checkpoint calls once per flush batch, not
//! per page. Direct I/O needs offsets, lengths and buffer addresses aligned to the file
//! system's direct-I/O alignment, which `statx(STATX_DIOALIGN)` reports (Linux 6.1+; 4096 is
//! assumed before that). At open a probe file is created with `O_DIRECT` and one aligned block
//! written and read back; if the file system refuses (`EINVAL`, as tmpfs before Linux 6.6 and
//! several FUSE and network file systems do), segments are opened buffered instead and every
//! write is followed by `posix_fadvise(POSIX_FADV_DONTNEED)` (again after `sync`, once the pages
//! are clean), so that the log's cold pages do not crowd the page cache. The mode is logged at
//! open and exposed as [`SegmentedFile::mode`]; `DirectIo::Off` forces the fallback and
//! `DirectIo::Required` refuses to run without `O_DIRECT`. Reads use the same aligned windows
//! in both modes, so the asynchronous path does not care which one is in force.
//!
//! # Integrity
//! Pages are written as they are in memory (the 40-byte record header is unchanged), and a
//! sidecar file `<dir>/hlog.<n>.sum` holds one 8-byte entry per 4 KiB block: a CRC32C of the
//! block (and of its address), and the offset of the first record that starts in the block (see
//! [`sums`](self::sums) for the format). A 4 KiB block is the unit a device writes atomically in
//! practice, so a torn page write leaves some of its blocks new and some old (or zero, in a
//! fresh sparse file): exactly those blocks fail their check. Within one `write_page` the
//! data goes out before its entries, so a crash between the two leaves blocks without entries
//! ("unwritten") rather than entries that vouch for data never written; but only
//! [`SegmentedFile::sync`] orders anything against a crash, so recovery trusts nothing beyond
//! the flushed-until address that the checkpoint recorded after a successful `sync`. Recovery
//! calls [`SegmentedFile::verify`] over `[begin, flushed_until)` and walks each page's records
//! from the page start: a record that overlaps a bad block is lost, and the walk resumes at
//! [`BadRun::resume_at`], the first record that starts in a good block after the damage (the
//! `first_record` column makes this possible even when the damage hid the headers in
//! between). So damage costs the records it touches, not the rest of the page. One exposure
//! remains: rewriting a block that was already synced (the last block of a page flushed in
//! part, then again in full) is not atomic with its entry, so a crash in between fails the
//! whole block, records that were durable in it included.
//!
//! # Errors
//! Every failure is a [`DiskError`] value; a full disk is [`DiskError::NoSpace`], after which
//! freeing space and repeating the same `write_page` succeeds (the write is idempotent).

mod buf;
mod error;
mod segment;
pub mod sums;
mod sys;
mod verify;

pub use buf::{AlignedBuf, BUF_ALIGN};
pub use error::DiskError;
pub use segment::{Location, Segment, SegmentedFile};
pub use sums::SUM_BLOCK;
pub use verify::{BadBlock, BadRun, Damage, Verification};

use std::path::PathBuf;

/// Default segment size: 1 GiB.
pub const DEFAULT_SEGMENT_BITS: u32 = 30;
/// Smallest segment (one checksum block).
pub const MIN_SEGMENT_BITS: u32 = 12;
/// Largest segment (the whole 48-bit address space in one file).
pub const MAX_SEGMENT_BITS: u32 = 48;
/// One past the largest log address.
pub const ADDRESS_LIMIT: u64 = 1 << 48;

/// Whether to use `O_DIRECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DirectIo {
    /// Use it where the file system supports it, else fall back to buffered I/O with a warning.
    #[default]
    Auto,
    /// Always buffered I/O (tests, or file systems where direct I/O is slow).
    Off,
    /// Fail to open when the file system does not support it.
    Required,
}

/// How the segments of a [`SegmentedFile`] are opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMode {
    /// `O_DIRECT`, with offsets and lengths aligned to `align` bytes.
    Direct {
        /// The file system's direct-I/O alignment.
        align: usize,
    },
    /// Buffered I/O, with `POSIX_FADV_DONTNEED` after writes.
    Buffered,
}

/// Where and how to open a [`SegmentedFile`].
#[derive(Debug, Clone)]
pub struct DiskConfig {
    /// Directory of the segment files (created if missing).
    pub dir: PathBuf,
    /// log2 of the segment size, in `MIN_SEGMENT_BITS..=MAX_SEGMENT_BITS`.
    pub segment_bits: u32,
    /// `O_DIRECT` policy.
    pub direct: DirectIo,
}

impl DiskConfig {
    /// 1 GiB segments in `dir`, `O_DIRECT` where supported.
    pub fn new(dir: impl Into<PathBuf>) -> DiskConfig {
        DiskConfig {
            dir: dir.into(),
            segment_bits: DEFAULT_SEGMENT_BITS,
            direct: DirectIo::Auto,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
#[cfg(all(test, not(loom)))]
pub(crate) mod testutil;
