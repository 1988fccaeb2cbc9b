//! The store: the index, the log, the logical→physical database map and the counters.

use std::sync::Arc;

use crossbeam_epoch::{Collector, Guard};
use crossbeam_utils::CachePadded;

use crate::access::Access;
use crate::commit::CommitSeq;
use crate::gate::{Gate, MAX_SESSIONS};
use crate::hash::KeyHasher;
use crate::index::{HashIndex, OVERFLOW_CHUNK_BUCKETS};
use crate::log::{BEGIN_ADDRESS, Log, MAX_PAGE_BITS, MIN_PAGE_BITS};
use crate::record::{HEADER_BYTES, Rec, RecordInit, Shape};
use crate::seqlock;
use crate::session::Session;
use crate::sync::Ordering;
use crate::sync::raw::{AtomicI64, AtomicU8, AtomicU64};
use crate::tier::{Device, Flusher, ObjectLog, ObjectReader, TierStats};
use crate::{Db, StoreConfig, StoreError, StoreStats};

/// Physical database ids are bytes.
const PHYSICAL_DBS: usize = 256;

#[derive(Debug, Default)]
struct DbCounts {
    keys: AtomicI64,
    expires: AtomicI64,
}

/// The store, shared by all reactor threads.
pub struct Store {
    pub(crate) collector: Collector,
    pub(crate) index: HashIndex,
    pub(crate) log: Log,
    pub(crate) hasher: KeyHasher,
    /// Keys and values whose padded length exceeds this live in heap blocks.
    pub(crate) inline_limit: usize,
    pub(crate) gate: Gate,
    /// The commit sequence (on only while the append-only file is).
    pub(crate) commits: CommitSeq,
    /// Whether writes record key events (see [`KeyEvent`](crate::KeyEvent)).
    key_events: std::sync::atomic::AtomicBool,
    /// Whether every write records a `Modified` key event (client-side caching).
    modified_events: std::sync::atomic::AtomicBool,
    /// Whether a read that finds its key expired deletes it (off on a replica, whose master's
    /// DELs expire keys: Redis's replica answers such a key as missing and keeps it).
    reap_on_read: std::sync::atomic::AtomicBool,
    databases: usize,
    /// Logical → physical database, under a seqlock so SWAPDB changes two entries atomically
    /// while lookups stay read-only.
    db_map: Box<[AtomicU8]>,
    db_map_version: AtomicU64,
    /// Per physical database.
    counts: Box<[CachePadded<DbCounts>]>,
    expired_keys: CachePadded<AtomicU64>,
    evicted_keys: CachePadded<AtomicU64>,
    heap_bytes: CachePadded<AtomicI64>,
    /// What the objects held by records in the log measure (`StoreObject::memory_usage`):
    /// counted when a record gets its cell (append, in-place put), followed through in-place
    /// changes, taken off when the record gives the cell up (seal, tombstone, put, a lost
    /// publication race) or its page is evicted (`Log::evicted_object_bytes`). Private copies
    /// read back from disk never count.
    object_bytes: CachePadded<AtomicI64>,
    /// The disk tier, if the store has one (below the head address).
    pub(crate) tier: Option<Tier>,
    /// LRU/LFU tracking (OBJECT IDLETIME/FREQ, `maxmemory` eviction).
    pub(crate) access: Access,
    /// See [`StoreConfig::copy_reads_to_tail`].
    pub(crate) copy_reads_to_tail: crate::CopyReads,
    /// See [`StoreConfig::mutable_fraction`]: kept for [`Store::set_memory_size`].
    mutable_fraction: f64,
    /// Bytes of the live (newest, not deleted) records, wherever they are: the dataset size
    /// `maxmemory` is compared with (with `heap_bytes`).
    data_bytes: CachePadded<AtomicI64>,
    /// Rebuilds collections read back from the object log (registered by the command layer).
    pub(crate) object_reader: std::sync::OnceLock<ObjectReader>,
}

/// The disk tier's parts.
pub(crate) struct Tier {
    pub(crate) device: Box<dyn Device>,
    /// Where pointer records' payloads go when their page is written (none: such records are
    /// relocated to the tail instead, and never leave memory).
    pub(crate) objects: Option<ObjectLog>,
    pub(crate) stats: TierStats,
    /// Whether the flusher's writes succeed.
    pub(crate) health: crate::tier::WriteHealth,
    flusher: std::sync::Mutex<Option<Flusher>>,
    /// Which keys read from disk were read recently ([`crate::CopyReads::Repeated`]).
    pub(crate) doorkeeper: Option<crate::tier::Doorkeeper>,
}

/// Pages in memory beyond the budget at which writers wait for the flusher.
const FLUSH_SLACK_PAGES: u64 = 2;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("databases", &self.databases)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Builds a store sized by `cfg`, in memory only.
    pub fn new(cfg: StoreConfig) -> Result<Arc<Store>, StoreError> {
        Self::build(cfg, None)
    }

    /// Builds a store whose log keeps `cfg.memory_size` bytes of pages in memory and the rest on
    /// `device`, with a flusher thread writing pages as they become immutable.
    ///
    /// Without an object log, records holding heap blocks or objects are copied to the tail
    /// before their page leaves memory, so they never do: see [`Store::with_devices`].
    pub fn with_device(
        cfg: StoreConfig,
        device: Box<dyn Device>,
    ) -> Result<Arc<Store>, StoreError> {
        Self::with_tier(cfg, device, None)
    }

    /// [`Store::with_device`] plus an object log on `objects`: the payloads of records that hold
    /// heap keys, heap values or (once an [`ObjectReader`] is registered with
    /// [`Store::set_object_reader`]) collection objects go there when their page is written,
    /// and their memory is freed when the page leaves memory.
    pub fn with_devices(
        cfg: StoreConfig,
        device: Box<dyn Device>,
        objects: Box<dyn Device>,
    ) -> Result<Arc<Store>, StoreError> {
        Self::with_tier(cfg, device, Some(ObjectLog::new(objects)))
    }

    fn with_tier(
        cfg: StoreConfig,
        device: Box<dyn Device>,
        objects: Option<ObjectLog>,
    ) -> Result<Arc<Store>, StoreError> {
        let store = Self::build(cfg, Some((device, objects)))?;
        let flusher = Flusher::start(&store)
            .map_err(|e| StoreError::Config(format!("cannot start the flusher: {e}")))?;
        let tier = store.tier.as_ref().expect("built with a device");
        *tier.flusher.lock().unwrap_or_else(|e| e.into_inner()) = Some(flusher);
        Ok(store)
    }

    fn build(
        cfg: StoreConfig,
        device: Option<(Box<dyn Device>, Option<ObjectLog>)>,
    ) -> Result<Arc<Store>, StoreError> {
        let bad = |m: String| Err(StoreError::Config(m));
        if !cfg.index_buckets.is_power_of_two() || cfg.index_buckets > 1 << 32 {
            return bad(format!(
                "index_buckets {} is not a power of two in 1..=2^32",
                cfg.index_buckets
            ));
        }
        if !(MIN_PAGE_BITS..=MAX_PAGE_BITS).contains(&cfg.page_bits) {
            return bad(format!(
                "page_bits {} is outside {MIN_PAGE_BITS}..={MAX_PAGE_BITS}",
                cfg.page_bits
            ));
        }
        if !(1..=PHYSICAL_DBS).contains(&cfg.databases) {
            return bad(format!("databases {} is outside 1..=256", cfg.databases));
        }
        if !(0.0..=1.0).contains(&cfg.mutable_fraction) {
            return bad(format!(
                "mutable_fraction {} is outside 0..=1",
                cfg.mutable_fraction
            ));
        }
        let mutable_bytes = (cfg.memory_size as f64 * cfg.mutable_fraction) as u64;
        let page_size = 1usize << cfg.page_bits;
        let mut log = Log::new(cfg.page_bits, mutable_bytes);
        if device.is_some() {
            log.set_memory_budget(cfg.memory_size as u64);
        }
        Ok(Arc::new(Store {
            collector: Collector::new(),
            index: HashIndex::new(cfg.index_buckets, OVERFLOW_CHUNK_BUCKETS),
            log,
            hasher: KeyHasher::random(),
            inline_limit: page_size / 4,
            gate: Gate::new(MAX_SESSIONS),
            commits: CommitSeq::new(),
            key_events: std::sync::atomic::AtomicBool::new(false),
            modified_events: std::sync::atomic::AtomicBool::new(false),
            reap_on_read: std::sync::atomic::AtomicBool::new(true),
            databases: cfg.databases,
            db_map: (0..PHYSICAL_DBS).map(|i| AtomicU8::new(i as u8)).collect(),
            db_map_version: AtomicU64::new(0),
            counts: (0..PHYSICAL_DBS)
                .map(|_| CachePadded::new(DbCounts::default()))
                .collect(),
            expired_keys: CachePadded::new(AtomicU64::new(0)),
            evicted_keys: CachePadded::new(AtomicU64::new(0)),
            heap_bytes: CachePadded::new(AtomicI64::new(0)),
            object_bytes: CachePadded::new(AtomicI64::new(0)),
            access: Access::default(),
            copy_reads_to_tail: cfg.copy_reads_to_tail,
            mutable_fraction: cfg.mutable_fraction,
            data_bytes: CachePadded::new(AtomicI64::new(0)),
            object_reader: std::sync::OnceLock::new(),
            tier: device.map(|(device, objects)| Tier {
                device,
                objects,
                stats: TierStats::default(),
                health: crate::tier::WriteHealth::default(),
                flusher: std::sync::Mutex::new(None),
                doorkeeper: (cfg.copy_reads_to_tail == crate::CopyReads::Repeated)
                    .then(|| crate::tier::Doorkeeper::new(cfg.memory_size)),
            }),
        }))
    }

    /// Registers how collections read back from the object log are rebuilt. Until one is
    /// registered, records holding objects are relocated to the tail rather than written out.
    /// Register it before the store is used; a second registration is ignored.
    pub fn set_object_reader(&self, reader: ObjectReader) {
        let _ = self.object_reader.set(reader);
    }

    pub(crate) fn object_reader(&self) -> Option<ObjectReader> {
        self.object_reader.get().copied()
    }

    /// Access tracking: its clock and policy.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The dataset's size in bytes: live records, plus the heap blocks of big keys and values
    /// and the collection objects that are in memory (not payloads in the object log). What
    /// `maxmemory` limits.
    pub fn dataset_bytes(&self) -> u64 {
        (self.data_bytes.load(Ordering::Relaxed) + self.heap() + self.objects()).max(0) as u64
    }

    /// What the collection objects in memory measure (see `object_bytes`).
    pub fn object_memory_bytes(&self) -> u64 {
        self.objects().max(0) as u64
    }

    /// Counts a key evicted for `maxmemory` (INFO `evicted_keys`).
    pub fn count_evicted(&self) {
        self.evicted_keys.fetch_add(1, Ordering::Relaxed);
    }

    /// Keys evicted for `maxmemory` so far.
    pub fn evicted_keys(&self) -> u64 {
        self.evicted_keys.load(Ordering::Relaxed)
    }

    /// Adds `delta` bytes of live records.
    pub(crate) fn count_bytes(&self, delta: i64) {
        if delta != 0 {
            self.data_bytes.fetch_add(delta, Ordering::Relaxed);
        }
    }

    /// The average size of the records the flusher has written (what a disk read of one
    /// record should cover; 1 KiB before anything is flushed).
    pub(crate) fn average_record_size(&self) -> usize {
        let Some(t) = &self.tier else { return 1024 };
        let records = t.stats.records_flushed.load(Ordering::Relaxed);
        if records == 0 {
            return 1024;
        }
        (t.stats.bytes_flushed.load(Ordering::Relaxed) / records) as usize
    }

    /// Records whose heap blocks or objects were freed when their page left memory.
    pub fn evicted_payloads(&self) -> u64 {
        self.log.evicted_payloads()
    }

    /// Bytes written to the object log so far (its tail address; compaction deletes below it),
    /// if there is one.
    pub fn object_log_tail(&self) -> Option<u64> {
        let t = self.tier.as_ref()?.objects.as_ref()?;
        Some(t.tail())
    }

    /// Counters of the disk tier, if there is one.
    pub fn tier_stats(&self) -> Option<&TierStats> {
        self.tier.as_ref().map(|t| &t.stats)
    }

    /// The OS error number of the disk tier's failing writes, while what they keep in memory
    /// is over the budget: write commands should be refused (Ferrite answers `-MISCONF`) until
    /// the flusher writes again. None without a tier, while writes succeed, or while memory
    /// has room. Stable while the disk fails: only writes (refused) grow what it counts.
    pub fn tier_write_error(&self) -> Option<i32> {
        let errno = self.tier_writes_failing()?;
        self.log.unflushed_over_budget().then_some(errno)
    }

    /// The OS error number of the disk tier's last write, if it failed (whatever the memory).
    pub fn tier_writes_failing(&self) -> Option<i32> {
        self.tier.as_ref()?.health.error()
    }

    /// Writes every page that is ready for the disk now (the flusher does this on its own;
    /// tests call it to make eviction deterministic).
    pub fn flush_ready_pages(&self) {
        crate::tier::flush_ready_pages(self);
    }

    /// A per-thread handle. Panics if more than [`MAX_SESSIONS`] sessions are alive at once.
    pub fn session(self: &Arc<Self>) -> Session {
        let slot = self
            .gate
            .register()
            .unwrap_or_else(|| panic!("more than {MAX_SESSIONS} live sessions"));
        Session::new(Arc::clone(self), slot)
    }

    /// Number of logical databases.
    pub fn databases(&self) -> usize {
        self.databases
    }

    /// Live keys in `db`.
    pub fn db_size(&self, db: Db) -> u64 {
        let pdb = self.pdb(db);
        self.counts[usize::from(pdb)]
            .keys
            .load(Ordering::Relaxed)
            .max(0) as u64
    }

    /// Keys with a TTL in `db`.
    pub fn db_expires(&self, db: Db) -> u64 {
        let pdb = self.pdb(db);
        self.counts[usize::from(pdb)]
            .expires
            .load(Ordering::Relaxed)
            .max(0) as u64
    }

    /// Counters for INFO.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            log_memory_bytes: self.log.memory_bytes()
                + (self.heap() + self.objects()).max(0) as u64,
            index_memory_bytes: self.index.memory_bytes()
                + self
                    .tier
                    .as_ref()
                    .and_then(|t| t.doorkeeper.as_ref())
                    .map_or(0, |d| d.memory_bytes() as u64),
            expired_keys: self.expired_keys.load(Ordering::Relaxed),
            tail_address: self.log.tail_address(),
            read_only_address: self.log.read_only_address(),
            head_address: self.log.head_address(),
            flushed_until: self.log.flushed_until(),
            begin_address: self.log.begin_address(),
            spare_page_bytes: self.log.spare_bytes(),
        }
    }

    /// Turns the commit sequence on or off (see [`Commit`](crate::Commit)). Only switch it
    /// while no write can be in flight (before serving, or under an exclusive section), or a
    /// write may take a number the consumer no longer expects.
    pub fn set_commit_sequence(&self, on: bool) {
        self.commits.set(on);
    }

    /// Makes writes record the key events they cause (expiry, eviction, creation), for keyspace
    /// notifications; sessions hand them over with
    /// [`Session::take_key_events`](crate::Session::take_key_events). Off, a write pays one
    /// relaxed load.
    pub fn set_key_events(&self, on: bool) {
        self.key_events
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether writes record key events.
    #[inline]
    pub fn key_events_on(&self) -> bool {
        self.key_events.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether reads delete the expired keys they find: on by default; off on a replica
    /// (Redis's `expireIfNeeded` there answers such a key as missing and leaves it to the
    /// master's DEL).
    pub fn set_reap_on_read(&self, on: bool) {
        self.reap_on_read
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether reads delete the expired keys they find (see [`Store::set_reap_on_read`]).
    #[inline]
    pub fn reaps_on_read(&self) -> bool {
        self.reap_on_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Makes every write that changes a key record a [`KeyEventKind::Modified`] event (Redis's
    /// `signalModifiedKey`, for client-side caching's invalidations). Turn it on under
    /// [`Session::exclusive`](crate::Session::exclusive): every session then sees it on from its
    /// next shared section, so no write after the caller's next read can miss it. Off, a write
    /// pays one relaxed load.
    ///
    /// [`KeyEventKind::Modified`]: crate::KeyEventKind::Modified
    pub fn set_modified_events(&self, on: bool) {
        self.modified_events
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether writes record `Modified` events.
    #[inline]
    pub fn modified_events_on(&self) -> bool {
        self.modified_events
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the commit sequence is on.
    pub fn commit_sequence_on(&self) -> bool {
        self.commits.is_on()
    }

    /// The number the next write will take.
    pub fn next_commit_seq(&self) -> u64 {
        self.commits.peek()
    }

    /// The logical database that physical database `pdb` is now (SWAPDB moves them).
    pub fn logical_db(&self, pdb: u8) -> Option<Db> {
        (0..self.databases)
            .find(|&l| self.pdb(l as Db) == pdb)
            .map(|l| l as Db)
    }

    /// The physical database logical `db` maps to now.
    pub(crate) fn pdb(&self, db: Db) -> u8 {
        let mut step = 0;
        loop {
            if let Some(v) = seqlock::read_begin(&self.db_map_version) {
                let p = self.db_map[usize::from(db)].load(Ordering::Relaxed);
                if seqlock::read_validate(&self.db_map_version, v) {
                    return p;
                }
            }
            crate::sync::spin_wait(&mut step);
        }
    }

    /// Swaps two logical databases' physical ids in one atomic step.
    pub(crate) fn swap_db(&self, a: Db, b: Db) {
        let mut step = 0;
        let locked = loop {
            if let Some(l) = seqlock::try_lock(&self.db_map_version) {
                break l;
            }
            crate::sync::spin_wait(&mut step);
        };
        let (ea, eb) = (&self.db_map[usize::from(a)], &self.db_map[usize::from(b)]);
        let pa = ea.load(Ordering::Relaxed);
        ea.store(eb.load(Ordering::Relaxed), Ordering::Relaxed);
        eb.store(pa, Ordering::Relaxed);
        seqlock::unlock(&self.db_map_version, locked, true);
    }

    /// The record at `address` (an address read from an index entry or a record's `prev`),
    /// which must be in memory: at or above the head the caller read after pinning.
    #[inline]
    pub(crate) fn rec(&self, address: u64) -> Rec<'_> {
        debug_assert!(address >= BEGIN_ADDRESS && address < self.log.tail_address());
        // SAFETY: published addresses are 8-aligned record starts inside allocated pages, which
        // live as long as the store; header words are only accessed atomically.
        unsafe { Rec::at(self.log.ptr(address), address) }
    }

    /// The newest record of (`pdb`, `key`) on the chain from `head`. The caller is pinned. Below
    /// the log's head the walk continues on disk: from this thread's cache of finished walks,
    /// or by reading the device synchronously (a command that may park asks `Session::locate`
    /// first, so that it does not get here).
    pub(crate) fn find_record(&self, head: u64, pdb: u8, key: &[u8]) -> Option<Rec<'_>> {
        let mut a = head;
        let in_memory = self.log.head_address();
        while a >= BEGIN_ADDRESS {
            if a < in_memory {
                return crate::tier::find_on_disk(self, a, pdb, key);
            }
            let r = self.rec(a);
            if r.pdb() == pdb && r.key_len() == key.len() && r.key() == key {
                return Some(r);
            }
            let prev = r.prev();
            debug_assert!(prev < a, "chains run from newer to older addresses");
            a = prev;
        }
        None
    }

    /// The newest record of (`pdb`, `key`), whose hash is `hash`: its index entry's chain
    /// walked by [`Store::find_record`]. The caller is pinned.
    #[inline]
    pub(crate) fn newest(&self, hash: u64, pdb: u8, key: &[u8]) -> Option<Rec<'_>> {
        self.newest_entry(hash, pdb, key).map(|(_, r)| r)
    }

    /// [`newest`](Self::newest), with the index entry the record was found from.
    ///
    /// Compaction copies a chain's live record to the tail (a CAS of the index entry) before it
    /// moves the begin address past the original, which cuts the old chain. A walk that found
    /// nothing while the begin address moved may have followed such a chain: it starts over
    /// from the index, which by then leads to the copy. If the begin address did not move, the
    /// entry was read after any earlier cut, so "absent" is the answer.
    #[inline]
    pub(crate) fn newest_entry(
        &self,
        hash: u64,
        pdb: u8,
        key: &[u8],
    ) -> Option<(crate::index::EntrySlot<'_>, Rec<'_>)> {
        loop {
            let begin = self.log.begin_address();
            let entry = self.index.find(hash)?;
            let found = self.find_record(entry.address(), pdb, key);
            if let Some(rec) = found {
                return Some((entry, rec));
            }
            if self.log.begin_address() == begin {
                return None;
            }
        }
    }

    /// The first address of `key`'s chain below the head, if the in-memory part of the chain
    /// from `head` does not hold it. The caller is pinned.
    pub(crate) fn disk_start(&self, head: u64, pdb: u8, key: &[u8]) -> Option<u64> {
        self.tier.as_ref()?;
        let mut a = head;
        let in_memory = self.log.head_address();
        while a >= BEGIN_ADDRESS {
            if a < in_memory {
                // Below the begin address the chain is gone: nothing to read.
                return (a >= self.log.begin_address()).then_some(a);
            }
            let r = self.rec(a);
            if r.pdb() == pdb && r.key_len() == key.len() && r.key() == key {
                return None;
            }
            a = r.prev();
        }
        None
    }

    /// Changes the memory budget of a store with a disk tier at runtime (`CONFIG SET
    /// memory-size`): at most `bytes` of log pages (and what their records hold on the heap)
    /// stay in memory, the same share of them mutable as at start-up. The page size stays, so
    /// the budget is whole pages and at least two. Shrinking moves the read-only address now;
    /// the flusher writes what fell below it and the head follows, freeing those pages (writers
    /// wait for the flusher meanwhile, as whenever it is behind). Returns the budget in effect.
    pub fn set_memory_size(&self, bytes: u64) -> Result<u64, StoreError> {
        let page = self.log.page_size();
        if self.tier.is_none() {
            return Err(StoreError::Config(
                "the store has no disk tier: its memory is not bounded".into(),
            ));
        }
        if bytes < 2 * page {
            return Err(StoreError::Config(format!(
                "below two log pages ({} bytes): the page size was chosen at start-up",
                2 * page
            )));
        }
        let mutable = (bytes as f64 * self.mutable_fraction) as u64;
        let pages = self.log.resize(bytes, mutable).unwrap_or(0);
        {
            let guard = self.collector.register().pin();
            self.log.advance_read_only(&guard);
            self.log.advance_head(&guard);
        }
        self.nudge_flusher();
        Ok(pages * page)
    }

    /// Whether writers should wait for the flusher (see `Session::wait_for_flusher`): never on
    /// the flusher itself, which is what everyone waits for.
    pub(crate) fn flush_is_behind(&self) -> bool {
        self.log.flush_is_behind(FLUSH_SLACK_PAGES) && !crate::tier::on_flusher_thread()
    }

    /// Asks the flusher for a pass now.
    pub(crate) fn nudge_flusher(&self) {
        if let Some(tier) = &self.tier
            && let Some(f) = tier
                .flusher
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
        {
            f.nudge();
        }
    }

    /// Allocates and writes a record (unpublished).
    pub(crate) fn append(&self, guard: &Guard, init: &RecordInit<'_>) -> Rec<'_> {
        let shape = if init.object != 0 {
            Shape::object(init.key.len(), self.inline_limit)
        } else {
            Shape::new(
                init.key.len(),
                init.value.len(),
                init.tombstone,
                self.inline_limit,
            )
        };
        debug_assert!(shape.size >= HEADER_BYTES && shape.size as u64 <= self.log.page_size());
        let address = self.log.allocate(shape.size, guard);
        let rec = self.rec(address);
        let heap = rec.init(init, shape);
        let bits = self.access.initial();
        rec.touch(|_| bits);
        self.heap_delta(address, heap as i64);
        if init.object != 0 {
            // SAFETY: the caller owns the cell (it is not published yet), so it is alive and
            // nobody mutates it.
            let object = unsafe { crate::record::object_ref(init.object) };
            self.object_delta(address, object.memory_usage() as i64);
        }
        rec
    }

    /// Counts an object put in place into the record at `address` (which then owns it).
    pub(crate) fn charge_object(&self, address: u64, cell: &crate::record::ObjectCell) {
        // SAFETY: the caller owns the cell and nobody else can reach it.
        let object = unsafe { crate::record::object_ref(cell.as_raw()) };
        self.object_delta(address, object.memory_usage() as i64);
    }

    /// Gives up on an unpublished record (its object cell, if any, stays with the caller).
    pub(crate) fn discard(&self, rec: Rec<'_>) {
        if rec.is_object() {
            let ptr = rec.object_ptr().load(Ordering::Relaxed);
            if ptr != 0 {
                // SAFETY: the record is unpublished: the caller owns its cell, and nobody else
                // can reach it.
                let object = unsafe { crate::record::object_ref(ptr) };
                self.object_delta(rec.address(), -(object.memory_usage() as i64));
            }
        }
        let freed = rec.invalidate();
        self.heap_delta(rec.address(), -(freed as i64));
    }

    /// Takes what the record at `address` gave up off the counters and its page.
    pub(crate) fn release(&self, address: u64, freed: crate::record::Freed) {
        self.heap_delta(address, -(freed.heap as i64));
        self.object_delta(address, -(freed.object as i64));
    }

    /// Bytes of heap blocks in memory: those allocated and not retired, less those freed with
    /// their evicted pages (their bytes are in the object log).
    fn heap(&self) -> i64 {
        self.heap_bytes.load(Ordering::Relaxed) - self.log.evicted_heap_bytes() as i64
    }

    /// What the objects in memory measure: those counted and not given up, less those freed
    /// with their evicted pages (serialized in the object log).
    fn objects(&self) -> i64 {
        self.object_bytes.load(Ordering::Relaxed) - self.log.evicted_object_bytes() as i64
    }

    /// Adds `delta` to what the object held by the record at `address` (in memory) measures:
    /// to the dataset and to the record's page (the memory budget).
    pub(crate) fn object_delta(&self, address: u64, delta: i64) {
        if delta != 0 {
            self.object_bytes.fetch_add(delta, Ordering::Relaxed);
            self.log.charge(address, delta);
        }
    }

    /// After an object grew in place: if memory is now over the budget and opening a page
    /// would move the read-only address, opens one, so that the grown objects become
    /// read-only, then flushed and evicted, as appended records would have made them. (In-place
    /// updates allocate nothing, so without this the tail page never closes for them.) The
    /// page is opened by a filler record (a tombstone, discarded: walkers skip it).
    pub(crate) fn after_growth(&self, guard: &Guard) {
        if !self.log.read_only_is_due() {
            return;
        }
        self.log.close_tail_page();
        let filler = self.append(
            guard,
            &RecordInit {
                prev: 0,
                pdb: 0,
                key: &[],
                value: &[],
                kind: crate::ValueKind::String,
                expire_at: 0,
                tombstone: true,
                object: 0,
            },
        );
        self.discard(filler);
    }

    /// What the objects owned by the records in memory measure, summed record by record,
    /// against the running count (tests: it must be exact). Pages below the head whose
    /// eviction has not run yet are not walked, so call it once the epoch has settled.
    ///
    /// # Safety
    /// No other thread writes the store meanwhile (objects are measured without their
    /// records' locks).
    pub unsafe fn check_object_bytes(&self) -> Result<(), String> {
        let handle = self.collector.register();
        // Pinned after loading nothing: the pages from the head (read below) stay mapped.
        let _guard = handle.pin();
        let mut sum = 0i64;
        let head = self.log.head_address();
        let tail = self.log.tail_address();
        let page = self.log.page_size();
        let mut start = head & !(page - 1);
        while start < tail {
            if self.log.page_ptr(start >> self.log.page_bits()).is_some() {
                let mut a = start.max(BEGIN_ADDRESS);
                while a + HEADER_BYTES as u64 <= (start + page).min(tail) {
                    let r = self.rec(a);
                    let info = r.info();
                    if info == 0 {
                        break;
                    }
                    let meta = crate::record::Meta(r.meta());
                    if r.is_object() && !meta.sealed() && info & crate::record::F_INVALID == 0 {
                        let p = r.object_ptr().load(Ordering::Relaxed);
                        if p != 0 {
                            // SAFETY: the caller's contract: nobody writes the store meanwhile,
                            // so the unsealed record's cell is alive and unchanged; the page is
                            // at or above the head read after pinning, so it stays mapped.
                            sum += unsafe { crate::record::object_ref(p) }.memory_usage() as i64;
                        }
                    }
                    a += r.size() as u64;
                }
            }
            start += page;
        }
        let counted = self.objects();
        if counted == sum {
            Ok(())
        } else {
            Err(format!(
                "object bytes counted {counted}, measured over live in-memory records {sum}"
            ))
        }
    }

    /// Adds `delta` bytes of heap blocks held by the record at `address` (in memory, or a
    /// copy read back from disk, whose changes are always 0).
    pub(crate) fn heap_delta(&self, address: u64, delta: i64) {
        if delta != 0 {
            self.heap_bytes.fetch_add(delta, Ordering::Relaxed);
            self.log.charge(address, delta);
        }
    }

    pub(crate) fn count(&self, pdb: u8, keys: i64, expires: i64) {
        let c = &self.counts[usize::from(pdb)];
        if keys != 0 {
            c.keys.fetch_add(keys, Ordering::Relaxed);
        }
        if expires != 0 {
            c.expires.fetch_add(expires, Ordering::Relaxed);
        }
    }

    pub(crate) fn count_expired(&self) {
        self.expired_keys.fetch_add(1, Ordering::Relaxed);
    }

    /// Keys in every database (expired ones not yet reaped included): Redis's
    /// `dbTotalServerKeyCount`.
    pub fn total_keys(&self) -> u64 {
        self.counts
            .iter()
            .map(|c| c.keys.load(Ordering::Relaxed).max(0) as u64)
            .sum()
    }

    /// Live keys of physical database `pdb`.
    pub(crate) fn physical_size(&self, pdb: u8) -> i64 {
        self.counts[usize::from(pdb)].keys.load(Ordering::Relaxed)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let mut pages = Vec::new();
        self.log
            .for_each_page(|start, used| pages.push((start, used)));
        for (start, used) in pages {
            let mut a = start.max(BEGIN_ADDRESS);
            while a + HEADER_BYTES as u64 <= start + used {
                // SAFETY: inside an allocated page, 8-aligned (records are multiples of 8).
                let r = unsafe { Rec::at(self.log.ptr(a), a) };
                if r.info() == 0 {
                    break; // The unused end of the page.
                }
                r.free_blocks();
                a += r.size() as u64;
            }
        }
    }
}
