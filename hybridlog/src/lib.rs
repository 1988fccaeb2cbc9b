//! The HybridLog store: the FASTER design (Chandramouli et al., SIGMOD 2018) as Garnet's Tsavorite
//! uses it for a Redis server.
//!
//! A latch-free hash index of cache-line buckets maps keys to the logical address of their newest
//! record in an append-only log. The log's tail is mutable in memory (updates happen in place), the
//! region below the read-only address is updated by read-copy-update, and (with the tiering work)
//! the region below the head address lives on disk. Readers on any thread are protected by
//! crossbeam-epoch and take no lock.
//!
//! The public API below is what the `commands` crate codes against.
//!
//! # Map of the crate
//! - [`index`]: the hash index (cache-line buckets, tags, the tentative-bit insert protocol).
//! - [`log`]: pages, tail allocation and the address regions (mutable, read-only, on disk).
//! - [`disk`]: the device under the on-disk region (segment files, checksums, async reads);
//!   not wired into the log yet.
//! - [`record`]: the record layout and its heap blocks for large keys and values.
//! - [`seqlock`]: the per-record version word in-place writers and readers share.
//! - `ops`: the read and write cores; `scan`: whole-index walks.
//! - [`gate`]: the shared/exclusive gate behind multi-key atomicity.
//! - [`hash`]: the keyed hash; [`sync`]: std or loom atomics.
//!
//! # Memory
//! Pages and the index are allocated zeroed and lazily backed. With only the in-memory tier, log
//! memory grows: records superseded by read-copy-update, tombstones and lost insert races stay
//! in the log until the tiering work adds eviction and compaction (see [`log`]).

pub mod access;
mod commit;
pub mod disk;
pub mod gate;
pub mod hash;
pub mod index;
pub mod log;
pub mod object;
mod ops;
mod prefetch;
pub use prefetch::KeyHash;
pub mod record;
mod scan;
pub mod seqlock;
mod session;
mod store;
pub mod sync;
pub mod tier;

pub use commit::{Commit, KeyEvent, KeyEventKind};
pub use object::{ObjectEntry, ObjectEntryMut, ObjectWrite, StoreObject, Value, ValueMut};
pub use scan::{EvictionPolicy, next_cursor};
pub use session::Session;
pub use store::Store;

/// Logical database number, `0..databases` (Redis's `SELECT` index).
pub type Db = u8;

/// `expire_at` of a record that has no TTL.
pub const NO_EXPIRY: u64 = 0;

/// Sizing of a store. Sizes are fixed at start-up (allocate once, not on the hot path).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Number of hash-index buckets (a power of two); each bucket is one 64-byte cache line.
    pub index_buckets: usize,
    /// log2 of the log's page size.
    pub page_bits: u32,
    /// In-memory log budget in bytes (the tiering work evicts below the head beyond it).
    pub memory_size: usize,
    /// Share of the in-memory log that is mutable (FASTER's default is 0.9).
    pub mutable_fraction: f64,
    /// Number of logical databases (Redis's `databases`, at most 256).
    pub databases: usize,
    /// Which records a read finds on disk are copied back to the tail, so that hot keys are
    /// read from memory again (FASTER's `CopyReadsToTail`).
    pub copy_reads_to_tail: CopyReads,
}

/// When a record a read found on disk is copied back to the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyReads {
    /// Never: every read of a cold key reads the disk (Garnet's default).
    Never,
    /// After every disk read (FASTER's `CopyReadsToTail`): under uniform reads of a dataset
    /// far larger than memory it writes back nearly every record read.
    Always,
    /// When the key was read from disk before, recently: a doorkeeper (TinyLFU's admission
    /// filter) remembers the keys of the last disk reads, so keys read once stay on disk and
    /// keys read again come back to memory.
    Repeated,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            index_buckets: 1 << 20,
            page_bits: 22,
            memory_size: 1 << 30,
            mutable_fraction: 0.9,
            databases: 16,
            copy_reads_to_tail: CopyReads::Never,
        }
    }
}

/// What a record's value is: bytes (strings) or a native object (collections, see [`object`]).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A Redis string: the value bytes are the string.
    String = 0,
    /// A list object.
    List = 1,
    /// A hash object.
    Hash = 2,
    /// A set object.
    Set = 3,
    /// A sorted-set object.
    ZSet = 4,
    /// A stream object.
    Stream = 5,
}

impl ValueKind {
    /// The kind stored as `raw` in a record. Records are only ever written with valid kinds.
    pub fn from_raw(raw: u8) -> ValueKind {
        match raw {
            1 => ValueKind::List,
            2 => ValueKind::Hash,
            3 => ValueKind::Set,
            4 => ValueKind::ZSet,
            5 => ValueKind::Stream,
            _ => {
                debug_assert_eq!(raw, ValueKind::String as u8, "unknown value kind");
                ValueKind::String
            }
        }
    }

    /// Whether values of this kind are native objects rather than bytes.
    pub fn is_object(self) -> bool {
        self != ValueKind::String
    }
}

/// A consistent view of one live record, valid for the duration of a callback.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The value bytes (empty for an object kind: objects are read with `Session::read_value`).
    pub value: &'a [u8],
    /// Absolute expiry in Unix milliseconds, or [`NO_EXPIRY`].
    pub expire_at: u64,
    /// What the value is.
    pub kind: ValueKind,
}

/// What a read-modify-write callback decided.
#[derive(Debug)]
pub enum Write<R> {
    /// Leave the key as it is.
    Keep(R),
    /// Store the bytes the callback left in its scratch `Vec` as the new value (replacing an
    /// object, if the key held one).
    Put {
        /// Kind of the new value.
        kind: ValueKind,
        /// New absolute expiry in Unix milliseconds, or [`NO_EXPIRY`].
        expire_at: u64,
        /// What `rmw` returns.
        result: R,
    },
    /// Change only the expiry; the value stays.
    SetExpiry {
        /// New absolute expiry in Unix milliseconds, or [`NO_EXPIRY`].
        expire_at: u64,
        /// What `rmw` returns.
        result: R,
    },
    /// Delete the key.
    Delete(R),
}

/// Errors from building a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A sizing parameter is out of range.
    #[error("invalid store configuration: {0}")]
    Config(String),
}

/// Counters and addresses for INFO.
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    /// Bytes of log memory allocated.
    pub log_memory_bytes: u64,
    /// Bytes of index memory (buckets and overflow buckets, and the disk tier's doorkeeper).
    pub index_memory_bytes: u64,
    /// Keys removed because their TTL passed (lazily or by the active cycle).
    pub expired_keys: u64,
    /// Logical address of the log's tail.
    pub tail_address: u64,
    /// Logical address below which records are read-only.
    pub read_only_address: u64,
    /// Logical address below which records are on disk.
    pub head_address: u64,
    /// Pages below this address are on disk.
    pub flushed_until: u64,
    /// Records below this address are gone (compacted away).
    pub begin_address: u64,
    /// Bytes of evicted pages kept for reuse by the next pages opened (not in
    /// `log_memory_bytes`): at most the budget's pages plus a few, less those in memory.
    pub spare_page_bytes: u64,
}

mod version;
pub use version::KeyVersion;
