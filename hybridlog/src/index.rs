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

use std::ptr::NonNull;

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

/// Allocates `n` empty buckets. Natively the memory comes zeroed from the allocator (an
/// anonymous mapping for large sizes), so untouched buckets cost no resident memory.
fn alloc_buckets(n: usize) -> NonNull<Bucket> {
    assert!(n > 0);
    #[cfg(not(loom))]
    {
        let layout = std::alloc::Layout::array::<Bucket>(n).expect("index size overflows");
        // SAFETY: the layout has non-zero size (n > 0, Bucket is 64 bytes). All-zero bytes are
        // a valid `Bucket` (`AtomicU64` is a plain integer), so the memory is initialised.
        let p = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Bucket>();
        NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
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
        // SAFETY: allocated by `alloc_zeroed` with this very layout (caller's contract).
        unsafe { std::alloc::dealloc(p.as_ptr().cast(), layout) }
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

    /// Publishes `address` as the new chain head if the head is still what was read; on failure
    /// `self` holds the current word.
    #[inline]
    pub fn try_swap(&mut self, address: u64) -> bool {
        debug_assert!(address & !ADDRESS_MASK == 0 && address != 0);
        let new = (self.word & !ADDRESS_MASK) | address;
        // Release publishes the new record's contents to readers that Acquire the entry.
        match self
            .slot
            .compare_exchange(self.word, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                self.word = new;
                true
            }
            Err(now) => {
                self.word = now;
                false
            }
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

/// The index: `len` buckets allocated once, plus the overflow pool.
#[derive(Debug)]
pub struct HashIndex {
    buckets: NonNull<Bucket>,
    len: usize,
    pool: OverflowPool,
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
        Self {
            buckets: alloc_buckets(buckets),
            len: buckets,
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
    pub fn find(&self, hash: u64) -> Option<EntrySlot<'_>> {
        let tag = tag_of(hash);
        let mut found = None;
        self.any_slot(self.bucket_index(hash), |slot| {
            let w = slot.load(Ordering::Acquire);
            let hit = w != 0 && w & TENTATIVE == 0 && entry_tag(w) == tag;
            if hit {
                found = Some(EntrySlot { slot, word: w });
            }
            hit
        });
        found
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
            return EntrySlot { slot: mine, word };
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
                f(EntrySlot { slot, word: w });
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
