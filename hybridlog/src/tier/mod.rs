//! The disk tier: the part of the log's address space below the head address.
//!
//! - [`Device`]: where flushed pages go and records below the head are read from; log address
//!   `a` is byte `a` of the device (pages map 1:1 onto the file space).
//! - `flusher`: a thread that writes each page once it is immutable (below the safe read-only
//!   address), the payloads of its pointer records (heap keys and values, collection objects:
//!   pointers mean nothing on disk) to the object log first, and then lets the log move its
//!   head past it (`Log::set_flushed_until`).
//! - `objlog`: the object log, the second append-only device those payloads go to.
//! - `disk_record`: parsing records read back from the device and walking a key's chain below
//!   the head, record by record, plus the per-thread cache of what such walks found.
//! - [`Fetch`]: the same walk driven by asynchronous reads, for a reactor that must not block;
//!   the synchronous walk is the fallback for paths that cannot park (SCAN, KEYS, RANDOMKEY).
//! - `compact`: copies the live records of the oldest segment to the tail, moves the log's
//!   begin address past it and deletes it, so that disk use follows the live data.
//! - `promote`: copies a record a read found on disk back to the tail (`CopyReadsToTail`).
//! - `health`: whether the flusher's writes succeed (a full disk refuses writes, not hangs).

mod compact;
mod disk_record;
mod fetch;
mod flusher;
mod health;
mod objlog;
mod promote;

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use compact::compact_if_due;
pub(crate) use disk_record::{
    OnDisk, Walk, find_on_disk, is_resolved, record_at, release_resolved,
};
pub use fetch::{Fetch, FetchStep, FileRead};
pub(crate) use flusher::{Flusher, flush_ready_pages, on_flusher_thread};
pub(crate) use health::WriteHealth;
pub(crate) use objlog::ObjectLog;
pub use objlog::ObjectReader;
pub(crate) use promote::{Doorkeeper, promote, without as without_promotion};

/// Alignment of device offsets, lengths and buffers (direct I/O).
pub const DISK_ALIGN: usize = 4096;
/// Largest single read a walk asks for (the reactor's read buffer size).
pub const MAX_READ: usize = 128 * 1024;

/// Storage for the log below the head.
pub trait Device: Send + Sync + 'static {
    /// Writes `bytes` at log address `address`. Both are multiples of [`DISK_ALIGN`] and
    /// `bytes` is [`DISK_ALIGN`]-aligned in memory.
    fn write(&self, address: u64, bytes: &[u8]) -> std::io::Result<()>;
    /// Reads up to `buf.len()` bytes at `address` (aligned as for `write`); fewer at the end.
    fn read(&self, address: u64, buf: &mut [u8]) -> std::io::Result<usize>;
    /// The file and offset holding log address `address`, for a read by someone else (the
    /// reactor's ring). The bytes up to the end of `address`'s log page are in that file, which
    /// stays open (even if truncated away meanwhile) while the returned guard lives.
    fn locate(&self, address: u64) -> std::io::Result<(RawFd, u64, KeepOpen)>;
    /// Deletes what lies below `address` (compaction moved everything live above it).
    fn truncate_until(&self, address: u64) -> std::io::Result<()>;
    /// The unit `truncate_until` deletes in (a power of two, at least a log page).
    fn segment_bytes(&self) -> u64;
    /// Whether `bytes`, read at `address` (aligned as for `write`), are what was written there
    /// (a device with checksums checks them; one without trusts its reads).
    fn check(&self, address: u64, bytes: &[u8]) -> bool {
        let _ = (address, bytes);
        true
    }
}

/// Keeps a file open while a read someone else performs on its descriptor is in flight.
pub type KeepOpen = std::sync::Arc<dyn std::any::Any + Send + Sync>;

/// Counters of the disk tier (INFO).
#[derive(Debug, Default)]
pub struct TierStats {
    /// Pages written to the device.
    pub pages_flushed: AtomicU64,
    /// Records copied to the tail because their page was about to leave memory.
    pub records_relocated: AtomicU64,
    /// Records read back from the device by the asynchronous path.
    pub async_reads: AtomicU64,
    /// Records read back synchronously (paths that cannot park).
    pub sync_reads: AtomicU64,
    /// Device errors (each is also logged).
    pub io_errors: AtomicU64,
    /// Compaction passes that moved the begin address.
    pub compactions: AtomicU64,
    /// Live records compaction copied to the tail.
    pub records_compacted: AtomicU64,
    /// Records a read found on disk and copied back to the tail (`copy_reads_to_tail`).
    pub records_promoted: AtomicU64,
    /// Record bytes written by the flusher, and records: their ratio is the average record
    /// size compaction uses to estimate the live data.
    pub bytes_flushed: AtomicU64,
    /// Records written by the flusher.
    pub records_flushed: AtomicU64,
    /// Payloads (heap keys and values, serialized collections) written to the object log.
    pub objects_written: AtomicU64,
    /// Bytes of those payloads (blob headers included).
    pub object_bytes_written: AtomicU64,
}

impl TierStats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
