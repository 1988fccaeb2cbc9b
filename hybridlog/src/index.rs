//! The hash index: FASTER's latch-free array of cache-line buckets.
//!
//! A key's 64-bit hash picks a bucket with its low bits (so that SCAN's reverse-binary cursor
//! stays valid if the index ever doubles) and a 14-bit tag with its high bits. Each bucket holds
//! seven entries and one overflow word linking to an overflow bucket; an entry is
//!
//! ```text
//!  63        62          61..48   47..0
//! [reserved][tentative][tag(14)][address(48)]
//! ```
//!
//! An entry points at the newest log record whose key has that (bucket, tag); older records and
//! records of other keys sharing the tag hang off it through each record's `prev` address. A
//! free slot is all zeroes; tags are never 0, so a live entry with an empty chain is never
//! mistaken for a free one.
//!
//! At most one non-tentative entry per (bucket, tag) may exist. Creating one follows FASTER's
//! tentative protocol: CAS a free slot to `tag | TENTATIVE`, fence, rescan the bucket chain; if
//! any other entry has the tag (tentative or not) another thread raced us, so clear ours and
//! retry; otherwise clear the tentative bit. Readers ignore tentative entries.
//!
//! # Occupancy
//! Whole-index walks (SCAN, KEYS, RANDOMKEY, FLUSHDB, active expiry) would cost O(buckets) on a
//! sparse index, so the index keeps one bit per *group* of 64 buckets, in SCAN's order: the
//! buckets of group `g` are those whose reversed bucket bits lie in `[64 g, 64 g + 64)`, so a
//! walk in cursor order visits groups one after the other and skips a clear bit in one step.
//! A set bit means the group may hold a live (non-tombstone) record; a clear bit, read while no
//! clear is in progress, means it holds none:
//! - every transition of a key to live marks its group after publishing: [`EntrySlot::try_swap`]
//!   (a new record, inserted or copied) and [`EntrySlot::mark_live`] (a tombstone revived in
//!   place), each with a full barrier between the publication and the bit's load;
//! - [`HashIndex::clear_group`] clears a bit, fences, and re-walks the group through its caller,
//!   setting the bit again if anything live remains. Either the walker sees a concurrent
//!   writer's record or the writer sees the clear bit and sets it (Dekker), so a live key never
//!   sits in a group whose bit stays clear;
//! - a walker reads bits only between two `clears_begun == clears_done` checks
//!   ([`HashIndex::next_occupied_group`]), so it never skips a group on the strength of a bit
//!   that a clear has dropped only for the moment.
//!
//! The bitmap uses std atomics in every build: the loom models check the entry protocol, and
//! the occupancy protocol is checked by tests instead.

use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::sync::raw::AtomicU64 as RawAtomicU64;
use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, Mutex, Ordering, fence, spin_wait};

/// Entries in a bucket besides the overflow word.
pub const ENTRIES_PER_BUCKET: usize = 7;
/// Bits of an entry that hold the record address.
pub const ADDRESS_BITS: u32 = 48;
/// Mask of the address bits.
pub const ADDRESS_MASK: u64 = (1 << ADDRESS_BITS) - 1;
const TAG_SHIFT: u32 = ADDRESS_BITS;
const TAG_BITS: u32 = 14;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
/// Set while an entry's creator checks for a racing duplicate.
pub const TENTATIVE: u64 = 1 << 62;
/// Reserved for FASTER's pending-I/O marker (the tiering work).
pub const RESERVED: u64 = 1 << 63;
/// Overflow buckets per pool chunk in a store.
pub const OVERFLOW_CHUNK_BUCKETS: usize = 1024;
/// The most overflow chunks an index may allocate (bounds overflow memory to 4 GiB in a store;
/// loom models get a handful).
pub const MAX_OVERFLOW_CHUNKS: usize = if cfg!(loom) { 4 } else { 1 << 16 };

const _: () = assert!(TAG_SHIFT + TAG_BITS == 62);
const _: () = assert!(ENTRIES_PER_BUCKET + 1 == 8);
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Bucket>() == 64 && std::mem::align_of::<Bucket>() == 64);

/// The 14-bit tag of `hash` (never 0).
#[inline]
pub fn tag_of(hash: u64) -> u64 {
    let t = (hash >> (64 - TAG_BITS)) & TAG_MASK;
    if t == 0 { 1 } else { t }
}

/// The tag stored in entry word `w`.
#[inline]
pub fn entry_tag(w: u64) -> u64 {
    (w >> TAG_SHIFT) & TAG_MASK
}

/// One cache line: seven entries and the 1-based index of an overflow bucket (0 = none).
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Bucket {
    entries: [AtomicU64; ENTRIES_PER_BUCKET],
    overflow: AtomicU64,
}

impl Default for Bucket {
    fn default() -> Self {
        Self::new()
    }
}

impl Bucket {
    /// An empty bucket.
    pub fn new() -> Self {
        Self {
            entries: std::array::from_fn(|_| AtomicU64::new(0)),
            overflow: AtomicU64::new(0),
        }
    }
}

/// Allocates `n` empty buckets. Natively the memory comes zeroed from
/// [`map_zeroed`](crate::log::map_zeroed) (a 2 MiB-aligned anonymous mapping advised for huge
/// pages from 2 MiB up), so untouched buckets cost no resident memory.
fn alloc_buckets(n: usize) -> NonNull<Bucket> {
    assert!(n > 0);
    #[cfg(not(loom))]
    {
        let layout = std::alloc::Layout::array::<Bucket>(n).expect("index size overflows");
        // All-zero bytes are a valid `Bucket` (`AtomicU64` is a plain integer), so the memory
        // is initialised.
        crate::log::map_zeroed(layout.size(), layout.align()).cast::<Bucket>()
    }
    #[cfg(loom)]
    {
        let b: Box<[Bucket]> = (0..n).map(|_| Bucket::new()).collect();
        NonNull::new(Box::into_raw(b).cast::<Bucket>()).expect("box is non-null")
    }
}

/// Frees buckets from [`alloc_buckets`].
///
/// # Safety
/// `p` came from `alloc_buckets(n)` and no reference into it outlives this call.
unsafe fn free_buckets(p: NonNull<Bucket>, n: usize) {
    #[cfg(not(loom))]
    {
        let layout = std::alloc::Layout::array::<Bucket>(n).expect("index size overflows");
        // SAFETY: mapped by `map_zeroed` with this very size and alignment (caller's contract).
        unsafe { crate::log::unmap(p.cast(), layout.size(), layout.align()) }
    }
    #[cfg(loom)]
    {
        let s = std::ptr::slice_from_raw_parts_mut(p.as_ptr(), n);
        // SAFETY: allocated as a `Box<[Bucket]>` of length n (caller's contract).
        drop(unsafe { Box::from_raw(s) });
    }
}

/// A slot holding a live entry, and the entry word as it was read.
#[derive(Debug, Clone, Copy)]
pub struct EntrySlot<'a> {
    slot: &'a AtomicU64,
    word: u64,
    /// The index and the main bucket the slot's chain hangs off (for occupancy marks).
    index: &'a HashIndex,
    bucket: usize,
}

impl EntrySlot<'_> {
    /// The address of the newest record in the chain (0 for an empty chain).
    #[inline]
    pub fn address(&self) -> u64 {
        self.word & ADDRESS_MASK
    }

    /// Re-reads the slot.
    #[inline]
    pub fn reload(&mut self) {
        self.word = self.slot.load(Ordering::Acquire);
        debug_assert!(self.word & TENTATIVE == 0 && self.word != 0);
    }

    /// Publishes `address` as the new chain head if the head is still what was read, and marks
    /// the bucket's group occupied; on failure `self` holds the current word.
    #[inline]
    pub fn try_swap(&mut self, address: u64) -> bool {
        debug_assert!(address & !ADDRESS_MASK == 0 && address != 0);
        let new = (self.word & !ADDRESS_MASK) | address;
        // Release publishes the new record's contents to readers that Acquire the entry. SeqCst
        // (the same locked instruction on x86) orders the CAS before the occupancy load in
        // `mark`, against `clear_group`'s SeqCst clear and rescan (module docs).
        match self
            .slot
            .compare_exchange(self.word, new, Ordering::SeqCst, Ordering::Acquire)
        {
            Ok(_) => {
                self.word = new;
                self.index.occupancy.mark(self.index.group_of(self.bucket));
                true
            }
            Err(now) => {
                self.word = now;
                false
            }
        }
    }

    /// Marks the bucket's group occupied after a record on this chain became live without a
    /// new record (a tombstone revived in place): call it after the record's lock is released.
    #[inline]
    pub fn mark_live(&self) {
        // Orders the record's new state before the bit's load (module docs).
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        self.index.occupancy.mark(self.index.group_of(self.bucket));
    }
}

/// Buckets per occupancy group (fewer only when the whole index is smaller).
pub const GROUP_BUCKETS: usize = 64;

/// One bit per group of buckets, in SCAN order (module docs).
#[derive(Debug)]
struct Occupancy {
    words: Box<[RawAtomicU64]>,
    clears_begun: CachePadded<RawAtomicU64>,
    clears_done: CachePadded<RawAtomicU64>,
    /// Walk counters (groups and buckets visited) for tests and INFO-style diagnostics.
    groups_visited: CachePadded<RawAtomicU64>,
    buckets_visited: RawAtomicU64,
}

impl Occupancy {
    fn new(groups: usize) -> Self {
        Self {
            words: (0..groups.div_ceil(64))
                .map(|_| RawAtomicU64::new(0))
                .collect(),
            clears_begun: CachePadded::new(RawAtomicU64::new(0)),
            clears_done: CachePadded::new(RawAtomicU64::new(0)),
            groups_visited: CachePadded::new(RawAtomicU64::new(0)),
            buckets_visited: RawAtomicU64::new(0),
        }
    }

    /// Sets group `g`'s bit. The load comes first so that the common case (already set) only
    /// reads a line every thread shares.
    #[inline]
    fn mark(&self, g: usize) {
        use std::sync::atomic::Ordering::SeqCst;
        let (w, bit) = (&self.words[g / 64], 1u64 << (g % 64));
        if w.load(SeqCst) & bit == 0 {
            w.fetch_or(bit, SeqCst);
        }
    }
}

/// Preallocated-in-chunks overflow buckets, addressed by 1-based index.
#[derive(Debug)]
struct OverflowPool {
    chunk_buckets: usize,
    chunks: Box<[AtomicPtr<Bucket>]>,
    next: AtomicU64,
    allocated_chunks: AtomicUsize,
    /// Serialises chunk allocation (rare: once per `chunk_buckets` overflow buckets).
    grow: Mutex<()>,
    /// Buckets allocated by a thread that then lost the race to link them; still zeroed.
    spare: Mutex<Vec<u64>>,
}

impl OverflowPool {
    fn alloc(&self) -> u64 {
        if let Some(i) = self.spare.lock().expect("pool lock").pop() {
            return i;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let chunk = usize::try_from(i).expect("pool index fits usize") / self.chunk_buckets;
        assert!(
            chunk < self.chunks.len(),
            "hash index overflow pool exhausted"
        );
        if self.chunks[chunk].load(Ordering::Acquire).is_null() {
            let _g = self.grow.lock().expect("pool lock");
            if self.chunks[chunk].load(Ordering::Acquire).is_null() {
                let p = alloc_buckets(self.chunk_buckets);
                self.chunks[chunk].store(p.as_ptr(), Ordering::Release);
                self.allocated_chunks.fetch_add(1, Ordering::Relaxed);
            }
        }
        i + 1
    }

    fn get(&self, index: u64) -> &Bucket {
        debug_assert!(index > 0);
        let i = usize::try_from(index - 1).expect("pool index fits usize");
        let chunk = self.chunks[i / self.chunk_buckets].load(Ordering::Acquire);
        assert!(!chunk.is_null(), "overflow index {index} has no chunk");
        // SAFETY: the chunk holds `chunk_buckets` initialised buckets and is never freed while
        // the pool lives; `i % chunk_buckets` is in bounds.
        unsafe { &*chunk.add(i % self.chunk_buckets) }
    }
}

impl Drop for OverflowPool {
    fn drop(&mut self) {
        for c in self.chunks.iter() {
            if let Some(p) = NonNull::new(c.load(Ordering::Acquire)) {
                // SAFETY: allocated by `alloc_buckets(chunk_buckets)`; the pool is being dropped
                // so no reference into it remains.
                unsafe { free_buckets(p, self.chunk_buckets) }
            }
        }
    }
}

/// The index: `len` buckets allocated once, plus the overflow pool and the occupancy bits.
#[derive(Debug)]
pub struct HashIndex {
    buckets: NonNull<Bucket>,
    len: usize,
    /// log2(len).
    len_bits: u32,
    /// Buckets per group: `min(GROUP_BUCKETS, len)`.
    group_len: usize,
    pool: OverflowPool,
    occupancy: Occupancy,
}

// SAFETY: the index owns its bucket memory; every shared access goes through atomics.
unsafe impl Send for HashIndex {}
// SAFETY: as above: `&HashIndex` only hands out `&Bucket`, whose fields are atomics.
unsafe impl Sync for HashIndex {}

impl Drop for HashIndex {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with `len` buckets; `&mut self` means no borrows remain.
        unsafe { free_buckets(self.buckets, self.len) }
    }
}

impl HashIndex {
    /// An index of `buckets` buckets (a power of two) whose overflow pool grows by
    /// `overflow_chunk` buckets at a time.
    pub fn new(buckets: usize, overflow_chunk: usize) -> Self {
        assert!(buckets.is_power_of_two() && overflow_chunk > 0);
        let group_len = buckets.min(GROUP_BUCKETS);
        Self {
            buckets: alloc_buckets(buckets),
            len: buckets,
            len_bits: buckets.trailing_zeros(),
            group_len,
            occupancy: Occupancy::new(buckets / group_len),
            pool: OverflowPool {
                chunk_buckets: overflow_chunk,
                chunks: (0..MAX_OVERFLOW_CHUNKS)
                    .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                    .collect(),
                next: AtomicU64::new(0),
                allocated_chunks: AtomicUsize::new(0),
                grow: Mutex::new(()),
                spare: Mutex::new(Vec::new()),
            },
        }
    }

    /// Number of main buckets.
    #[inline]
    pub fn bucket_count(&self) -> usize {
        self.len
    }

    /// The main bucket that `hash` maps to.
    #[inline]
    pub fn bucket_index(&self, hash: u64) -> usize {
        (hash as usize) & (self.len - 1)
    }

    /// The bucket at position `pos` of SCAN's order, and the position of bucket `pos` (reversing
    /// the low `log2(len)` bits is its own inverse).
    #[inline]
    pub fn reverse(&self, pos: usize) -> usize {
        if self.len_bits == 0 {
            0
        } else {
            ((pos as u64).reverse_bits() >> (64 - self.len_bits)) as usize
        }
    }

    /// Number of occupancy groups.
    #[inline]
    pub fn group_count(&self) -> usize {
        self.len / self.group_len
    }

    /// Buckets per occupancy group.
    #[inline]
    pub fn group_len(&self) -> usize {
        self.group_len
    }

    /// The occupancy group of main bucket `bucket`.
    #[inline]
    pub fn group_of(&self, bucket: usize) -> usize {
        self.reverse(bucket & (self.len - 1)) / self.group_len
    }

    /// The main buckets of group `g`, in SCAN order.
    pub fn group_buckets(&self, g: usize) -> impl Iterator<Item = usize> + '_ {
        let start = g * self.group_len;
        (start..start + self.group_len).map(|pos| self.reverse(pos))
    }

    /// The first group at or after `from` that may hold live records, or `None` if none does.
    /// Conservative: while a [`clear_group`](Self::clear_group) runs it answers `from` itself.
    pub fn next_occupied_group(&self, from: usize) -> Option<usize> {
        use std::sync::atomic::Ordering::SeqCst;
        let groups = self.group_count();
        if from >= groups {
            return None;
        }
        let o = &self.occupancy;
        let begun = o.clears_begun.load(SeqCst);
        if o.clears_done.load(SeqCst) != begun {
            return Some(from);
        }
        let mut found = None;
        let mut wi = from / 64;
        let mut bits = o.words[wi].load(SeqCst) & (!0u64 << (from % 64));
        loop {
            if bits != 0 {
                found = Some(wi * 64 + bits.trailing_zeros() as usize).filter(|&g| g < groups);
                break;
            }
            wi += 1;
            if wi == o.words.len() {
                break;
            }
            bits = o.words[wi].load(SeqCst);
        }
        if o.clears_begun.load(SeqCst) != begun {
            return Some(from);
        }
        found
    }

    /// Whether group `g`'s bit is set (a hint: see [`next_occupied_group`](Self::next_occupied_group)
    /// for a decision a walk may rely on).
    pub fn group_marked(&self, g: usize) -> bool {
        let w = self.occupancy.words[g / 64].load(std::sync::atomic::Ordering::Relaxed);
        w & (1 << (g % 64)) != 0
    }

    /// Number of groups that may hold live records.
    pub fn occupied_groups(&self) -> usize {
        let o = &self.occupancy;
        o.words
            .iter()
            .map(|w| w.load(std::sync::atomic::Ordering::Relaxed).count_ones() as usize)
            .sum()
    }

    /// Clears group `g`'s bit, then calls `rewalk`, which walks the group and says whether it
    /// still holds a live record (including one written concurrently); if so the bit is set
    /// again. See the module docs for why no live key is left behind a clear bit.
    pub fn clear_group<R>(&self, g: usize, rewalk: impl FnOnce() -> (bool, R)) -> R {
        use std::sync::atomic::Ordering::SeqCst;
        let o = &self.occupancy;
        /// Finishes the clear even if `rewalk` unwinds (marking conservatively).
        struct Done<'a>(&'a Occupancy, usize, bool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                if !self.2 {
                    self.0.mark(self.1);
                }
                self.0.clears_done.fetch_add(1, SeqCst);
            }
        }
        o.clears_begun.fetch_add(1, SeqCst);
        let mut done = Done(o, g, false);
        o.words[g / 64].fetch_and(!(1u64 << (g % 64)), SeqCst);
        std::sync::atomic::fence(SeqCst);
        let (live, r) = rewalk();
        if live {
            o.mark(g);
        }
        done.2 = true;
        r
    }

    /// Adds to the walk counters.
    pub fn count_visits(&self, groups: u64, buckets: u64) {
        let o = &self.occupancy;
        if groups != 0 {
            o.groups_visited
                .fetch_add(groups, std::sync::atomic::Ordering::Relaxed);
        }
        if buckets != 0 {
            o.buckets_visited
                .fetch_add(buckets, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Groups and buckets visited by walks so far.
    pub fn visits(&self) -> (u64, u64) {
        let o = &self.occupancy;
        (
            o.groups_visited.load(std::sync::atomic::Ordering::Relaxed),
            o.buckets_visited.load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// A pointer to the main bucket `hash` maps to, for prefetching.
    #[inline]
    pub fn bucket_ptr(&self, hash: u64) -> *const Bucket {
        // `wrapping_add` keeps this safe; the index is in bounds anyway (masked).
        self.buckets.as_ptr().wrapping_add(self.bucket_index(hash))
    }

    /// Bytes of bucket memory (main array plus overflow chunks).
    pub fn memory_bytes(&self) -> u64 {
        let chunks = self.pool.allocated_chunks.load(Ordering::Relaxed);
        ((self.len + chunks * self.pool.chunk_buckets) * std::mem::size_of::<Bucket>()) as u64
    }

    fn bucket(&self, i: usize) -> &Bucket {
        assert!(i < self.len);
        // SAFETY: `i < len` and the array lives as long as `self`.
        unsafe { &*self.buckets.as_ptr().add(i) }
    }

    fn next(&self, b: &Bucket) -> Option<&Bucket> {
        match b.overflow.load(Ordering::Acquire) {
            0 => None,
            i => Some(self.pool.get(i)),
        }
    }

    /// Calls `f` on every slot of main bucket `i` and its overflow chain until it returns true.
    fn any_slot<'s>(&'s self, i: usize, mut f: impl FnMut(&'s AtomicU64) -> bool) -> bool {
        let mut b = Some(self.bucket(i));
        while let Some(bucket) = b {
            if bucket.entries.iter().any(&mut f) {
                return true;
            }
            b = self.next(bucket);
        }
        false
    }

    /// The live entry for `hash`'s (bucket, tag), if any.
    #[inline]
    pub fn find(&self, hash: u64) -> Option<EntrySlot<'_>> {
        let tag = tag_of(hash);
        let bucket = self.bucket_index(hash);
        // SAFETY: `bucket_index` masks with `len - 1` and `len` is a power of two, so the index
        // is in bounds; the array lives as long as `self`.
        let mut b = unsafe { &*self.buckets.as_ptr().add(bucket) };
        loop {
            for slot in &b.entries {
                let w = slot.load(Ordering::Acquire);
                // A live entry with our tag (tags are never 0, so a free slot never matches).
                if w & (TENTATIVE | TAG_MASK << TAG_SHIFT) == tag << TAG_SHIFT {
                    return Some(EntrySlot {
                        slot,
                        word: w,
                        index: self,
                        bucket,
                    });
                }
            }
            b = self.next(b)?;
        }
    }

    /// The live entry for `hash`'s (bucket, tag), created (with an empty chain) if missing.
    pub fn find_or_create(&self, hash: u64) -> EntrySlot<'_> {
        let tag = tag_of(hash);
        let bucket = self.bucket_index(hash);
        let mut step = 0;
        loop {
            if let Some(e) = self.find(hash) {
                return e;
            }
            let word = tag << TAG_SHIFT;
            let mine = self.claim_free_slot(bucket, word | TENTATIVE);
            // Store→load ordering between our claim and the rescan (Dekker with the racer).
            fence(Ordering::SeqCst);
            let raced = self.any_slot(bucket, |slot| {
                !std::ptr::eq(slot, mine) && {
                    let w = slot.load(Ordering::Acquire);
                    w != 0 && entry_tag(w) == tag
                }
            });
            if raced {
                mine.store(0, Ordering::Release);
                spin_wait(&mut step);
                continue;
            }
            // Only the claimer writes a tentative slot, so a plain store finishes the claim.
            mine.store(word, Ordering::Release);
            return EntrySlot {
                slot: mine,
                word,
                index: self,
                bucket,
            };
        }
    }

    /// CASes a free slot of bucket `i`'s chain to `word`, linking a new overflow bucket when
    /// the chain is full.
    fn claim_free_slot(&self, i: usize, word: u64) -> &AtomicU64 {
        let mut bucket = self.bucket(i);
        loop {
            for slot in &bucket.entries {
                if slot.load(Ordering::Relaxed) == 0
                    && slot
                        .compare_exchange(0, word, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                {
                    return slot;
                }
            }
            bucket = match self.next(bucket) {
                Some(b) => b,
                None => {
                    let fresh = self.pool.alloc();
                    match bucket.overflow.compare_exchange(
                        0,
                        fresh,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => self.pool.get(fresh),
                        Err(winner) => {
                            self.pool.spare.lock().expect("pool lock").push(fresh);
                            self.pool.get(winner)
                        }
                    }
                }
            };
        }
    }

    /// Calls `f` with every live (non-tentative) entry of main bucket `i` and its overflow chain.
    pub fn for_each_entry(&self, i: usize, mut f: impl FnMut(EntrySlot<'_>)) {
        self.any_slot(i, |slot| {
            let w = slot.load(Ordering::Acquire);
            if w != 0 && w & TENTATIVE == 0 {
                f(EntrySlot {
                    slot,
                    word: w,
                    index: self,
                    bucket: i,
                });
            }
            false
        });
    }

    /// Every non-free entry word of bucket `i`'s chain, tentative ones included (for tests and
    /// models that check the at-most-one-entry-per-tag invariant).
    pub fn raw_entries(&self, i: usize) -> Vec<u64> {
        let mut out = Vec::new();
        self.any_slot(i, |slot| {
            let w = slot.load(Ordering::Acquire);
            if w != 0 {
                out.push(w);
            }
            false
        });
        out
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn hash_with(tag: u64, bucket: u64) -> u64 {
        (tag << 50) | bucket
    }

    #[test]
    fn create_then_find_and_swap() {
        let ix = HashIndex::new(4, 2);
        let h = hash_with(5, 2);
        assert!(ix.find(h).is_none());
        let mut e = ix.find_or_create(h);
        assert_eq!(e.address(), 0);
        assert!(e.try_swap(64));
        assert_eq!(ix.find(h).unwrap().address(), 64);
        let mut stale = EntrySlot {
            word: tag_of(h) << 48,
            ..e
        };
        assert!(!stale.try_swap(128));
        assert_eq!(stale.address(), 64);
        assert_eq!(ix.find_or_create(h).address(), 64);
        assert!(ix.find(hash_with(6, 2)).is_none());
        assert!(ix.find(hash_with(5, 3)).is_none());
    }

    #[test]
    fn tag_zero_is_remapped() {
        assert_eq!(tag_of(0), 1);
        let ix = HashIndex::new(1, 1);
        let e = ix.find_or_create(0);
        assert_eq!(ix.raw_entries(0), vec![1 << 48]);
        assert_eq!(e.address(), 0);
    }

    #[test]
    fn overflow_chain_holds_many_tags() {
        let ix = HashIndex::new(2, 2);
        for tag in 1..=40 {
            let mut e = ix.find_or_create(hash_with(tag, 1));
            assert!(e.try_swap(tag * 8));
        }
        for tag in 1..=40 {
            assert_eq!(ix.find(hash_with(tag, 1)).unwrap().address(), tag * 8);
        }
        assert_eq!(ix.raw_entries(1).len(), 40);
        assert!(ix.raw_entries(0).is_empty());
        let mut n = 0;
        ix.for_each_entry(1, |_| n += 1);
        assert_eq!(n, 40);
        assert!(ix.memory_bytes() > 2 * 64);
    }

    #[test]
    fn groups_partition_the_index_in_scan_order() {
        for len in [1usize, 2, 32, 64, 128, 1 << 12] {
            let ix = HashIndex::new(len, 1);
            assert_eq!(ix.group_count() * ix.group_len(), len);
            let mut seen = vec![false; len];
            let mut cursor = 0u64;
            let mut order = Vec::new();
            loop {
                order.push(cursor as usize);
                cursor = crate::scan::next_cursor(cursor, len as u64 - 1);
                if cursor == 0 {
                    break;
                }
            }
            // Position p of SCAN's cursor order is bucket reverse(p), and groups are runs of it.
            for (p, &b) in order.iter().enumerate() {
                assert_eq!(ix.reverse(p), b);
                assert_eq!(ix.reverse(b), p);
                assert_eq!(ix.group_of(b), p / ix.group_len());
            }
            for g in 0..ix.group_count() {
                for b in ix.group_buckets(g) {
                    assert_eq!(ix.group_of(b), g);
                    assert!(!std::mem::replace(&mut seen[b], true));
                }
            }
            assert!(seen.iter().all(|&x| x));
        }
    }

    #[test]
    fn publishing_marks_and_clearing_unmarks() {
        let ix = HashIndex::new(1 << 12, 4);
        assert_eq!(ix.occupied_groups(), 0);
        assert_eq!(ix.next_occupied_group(0), None);
        // An entry with an empty chain is not live: creating it marks nothing.
        let h = hash_with(3, 0x5a5);
        let mut e = ix.find_or_create(h);
        assert_eq!(ix.occupied_groups(), 0);
        assert!(e.try_swap(64));
        let g = ix.group_of(0x5a5);
        assert!(ix.group_marked(g));
        assert_eq!(ix.next_occupied_group(0), Some(g));
        assert_eq!(ix.next_occupied_group(g), Some(g));
        assert_eq!(ix.next_occupied_group(g + 1), None);
        assert_eq!(ix.next_occupied_group(ix.group_count()), None);
        // A clear whose rewalk finds something live leaves the bit set.
        ix.clear_group(g, || (true, ()));
        assert!(ix.group_marked(g));
        // While a clear runs, walkers are told not to skip anything.
        let during = ix.clear_group(g, || (false, ix.next_occupied_group(0)));
        assert_eq!(during, Some(0));
        assert!(!ix.group_marked(g));
        assert_eq!(ix.next_occupied_group(0), None);
        // A tombstone revived in place marks again; so does the next published record.
        ix.find(h).unwrap().mark_live();
        assert_eq!(ix.next_occupied_group(0), Some(g));
        ix.clear_group(g, || (false, ()));
        let mut e = ix.find(h).unwrap();
        assert!(e.try_swap(128));
        assert_eq!(ix.occupied_groups(), 1);
        // Groups far apart in the bitmap (different words) are found in order.
        let last = ix.group_count() - 1;
        let b = ix.group_buckets(last).next().unwrap() as u64;
        let mut e = ix.find_or_create(hash_with(9, b));
        assert!(e.try_swap(192));
        assert_eq!(ix.next_occupied_group(g + 1), Some(last));
        ix.count_visits(2, 5);
        assert_eq!(ix.visits(), (2, 5));
    }

    #[test]
    fn a_clear_racing_a_publisher_never_hides_it() {
        // The publisher's try_swap and the clearer's rewalk race; afterwards the group is either
        // marked or the rewalk saw the record (and so would have kept the bit).
        for round in 0..200u64 {
            let ix = Arc::new(HashIndex::new(64, 4));
            let h = hash_with(1 + round % 100, round % 64);
            let g = ix.group_of(ix.bucket_index(h));
            ix.find_or_create(h);
            let ix2 = ix.clone();
            let publisher = std::thread::spawn(move || {
                let mut e = ix2.find(h).unwrap();
                assert!(e.try_swap(64));
            });
            ix.clear_group(g, || {
                let live = ix.find(h).is_some_and(|e| e.address() != 0);
                (live, ())
            });
            publisher.join().unwrap();
            assert!(
                ix.group_marked(g),
                "round {round}: live entry behind a clear bit"
            );
        }
    }

    #[test]
    fn racing_creators_leave_one_entry_per_tag() {
        for round in 0..50 {
            let ix = Arc::new(HashIndex::new(1, 4));
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let ix = ix.clone();
                    std::thread::spawn(move || {
                        for tag in 1..=12u64 {
                            let tag = (tag + t + round) % 12 + 1;
                            ix.find_or_create(hash_with(tag, 0));
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            let mut tags: Vec<u64> = ix.raw_entries(0).into_iter().map(entry_tag).collect();
            assert!(ix.raw_entries(0).iter().all(|w| w & TENTATIVE == 0));
            tags.sort_unstable();
            assert_eq!(tags, (1..=12).collect::<Vec<_>>());
        }
    }
}
