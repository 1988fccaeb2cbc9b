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

use std::sync::Arc;

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
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            index_buckets: 1 << 20,
            page_bits: 22,
            memory_size: 1 << 30,
            mutable_fraction: 0.9,
            databases: 16,
        }
    }
}

/// What a record's value is. Collections join as object kinds with the data-types work.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A Redis string: the value bytes are the string.
    String = 0,
}

/// A consistent view of one live record, valid for the duration of a callback.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The value bytes.
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
    /// Store the bytes the callback left in its scratch `Vec` as the new value.
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
    /// Bytes of index memory (buckets and overflow buckets).
    pub index_memory_bytes: u64,
    /// Keys removed because their TTL passed (lazily or by the active cycle).
    pub expired_keys: u64,
    /// Logical address of the log's tail.
    pub tail_address: u64,
    /// Logical address below which records are read-only.
    pub read_only_address: u64,
    /// Logical address below which records are on disk.
    pub head_address: u64,
}

/// The store, shared by all reactor threads.
pub struct Store {
    _private: (),
}

impl Store {
    /// Builds a store sized by `cfg`.
    pub fn new(cfg: StoreConfig) -> Result<Arc<Store>, StoreError> {
        let _ = cfg;
        todo!("hybridlog work")
    }
    /// A per-thread handle.
    pub fn session(self: &Arc<Self>) -> Session {
        todo!("hybridlog work")
    }
    /// Number of logical databases.
    pub fn databases(&self) -> usize {
        todo!("hybridlog work")
    }
    /// Live keys in `db`.
    pub fn db_size(&self, db: Db) -> u64 {
        let _ = db;
        todo!("hybridlog work")
    }
    /// Keys with a TTL in `db`.
    pub fn db_expires(&self, db: Db) -> u64 {
        let _ = db;
        todo!("hybridlog work")
    }
    /// Counters for INFO.
    pub fn stats(&self) -> StoreStats {
        todo!("hybridlog work")
    }
}

/// A per-thread handle on the store (owns the thread's epoch participant and scratch buffers).
pub struct Session {
    _private: (),
}

impl Session {
    /// Calls `f` with a consistent snapshot of `key`'s live record; `None` when absent or expired.
    pub fn read<R>(
        &mut self,
        db: Db,
        key: &[u8],
        now_ms: u64,
        f: impl FnOnce(Entry<'_>) -> R,
    ) -> Option<R> {
        let _ = (db, key, now_ms, f);
        todo!("hybridlog work")
    }
    /// Whether `key` is live.
    pub fn exists(&mut self, db: Db, key: &[u8], now_ms: u64) -> bool {
        let _ = (db, key, now_ms);
        todo!("hybridlog work")
    }
    /// Blind write.
    pub fn upsert(&mut self, db: Db, key: &[u8], value: &[u8], kind: ValueKind, expire_at: u64) {
        let _ = (db, key, value, kind, expire_at);
        todo!("hybridlog work")
    }
    /// Read-modify-write; `f` may be called more than once if a concurrent writer wins a race.
    pub fn rmw<R>(
        &mut self,
        db: Db,
        key: &[u8],
        now_ms: u64,
        f: impl FnMut(Option<Entry<'_>>, &mut Vec<u8>) -> Write<R>,
    ) -> R {
        let _ = (db, key, now_ms, f);
        todo!("hybridlog work")
    }
    /// Deletes `key`; true when a live key was removed.
    pub fn delete(&mut self, db: Db, key: &[u8], now_ms: u64) -> bool {
        let _ = (db, key, now_ms);
        todo!("hybridlog work")
    }
    /// One SCAN step.
    pub fn scan(
        &mut self,
        db: Db,
        cursor: u64,
        count: usize,
        now_ms: u64,
        f: impl FnMut(&[u8], Entry<'_>),
    ) -> u64 {
        let _ = (db, cursor, count, now_ms, f);
        todo!("hybridlog work")
    }
    /// A random live key.
    pub fn random_key(&mut self, db: Db, now_ms: u64, seed: u64) -> Option<Vec<u8>> {
        let _ = (db, now_ms, seed);
        todo!("hybridlog work")
    }
    /// Removes every key of `db`.
    pub fn flush_db(&mut self, db: Db) {
        let _ = db;
        todo!("hybridlog work")
    }
    /// Removes every key.
    pub fn flush_all(&mut self) {
        todo!("hybridlog work")
    }
    /// Swaps two databases atomically.
    pub fn swap_db(&mut self, a: Db, b: Db) {
        let _ = (a, b);
        todo!("hybridlog work")
    }
    /// Enters this session's shared section: held while the thread runs a batch of commands, so
    /// that a multi-key command on another thread can exclude it. Costs a store to a line this
    /// session owns and a fence, no shared read-modify-write.
    pub fn enter(&mut self) {
        todo!("hybridlog work")
    }
    /// Leaves the shared section (before the thread waits for I/O).
    pub fn leave(&mut self) {
        todo!("hybridlog work")
    }
    /// Runs `f` while every other session is outside its shared section: multi-key commands
    /// (MSET, RENAME, FLUSHALL, ...) are atomic this way. Must be called outside `enter`.
    pub fn exclusive<R>(&mut self, f: impl FnOnce(&mut Session) -> R) -> R {
        let _ = f;
        todo!("hybridlog work")
    }
    /// One step of the active expiry cycle; returns keys reaped.
    pub fn active_expire(&mut self, now_ms: u64, max_buckets: usize) -> u64 {
        let _ = (now_ms, max_buckets);
        todo!("hybridlog work")
    }
}
