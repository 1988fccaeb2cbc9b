//! The log: a 48-bit logical address space cut into pages of `2^page_bits` bytes.
//!
//! Pages are allocated lazily, zeroed; with a disk tier, those that fall below the head are
//! evicted and their memory is reused for new pages (see `Log::retire_page`). A record
//! never straddles a page. The tail is one word, `page << 36 | offset`, bumped with `fetch_add`
//! (FASTER's scheme): the thread whose allocation crosses the page end opens the next page and
//! stores the new tail; threads that land beyond the page end while it does so wait for the tail
//! to move and retry. The unused end of a page stays zeroed, which is how a walker over the log
//! recognises it (every record header has a non-zero first word).
//!
//! Regions, newest first:
//! - `[read_only, tail)`: mutable. Records may be updated in place under their seqlock.
//! - `[safe_read_only, read_only)`: the fuzzy region. No new in-place update starts here, but one
//!   that began before `read_only` moved may still be running, so readers still use the seqlock.
//! - `[head, safe_read_only)`: immutable in memory. Readers may hand out the bytes directly.
//! - `[begin, head)`: on disk. With a disk tier (`set_memory_budget`), the thread that opens a
//!   page moves `head` so that at most the budget's pages stay in memory, but never past
//!   `flushed_until` (what the flusher has written); the pages that fall below are unmapped once
//!   every thread that might still read them has unpinned (crossbeam-epoch). Without one, `head`
//!   stays at `begin`.
//!
//! `read_only` trails the tail by the mutable share of the memory budget, in whole pages.
//! `safe_read_only` follows it one epoch later: the move is deferred with crossbeam-epoch, so it
//! happens only after every thread that might have read the old `read_only` (and started an
//! in-place update above it) has unpinned.
//!
//! Without a disk tier, log memory grows without bound: records superseded by read-copy-update
//! and tombstones stay in the log.
//!
//! Pages of 2 MiB or more (and the index's bucket array) come from [`map_zeroed`]: anonymous
//! mappings aligned to 2 MiB and advised `MADV_HUGEPAGE`, so that with THP in `madvise` mode
//! the kernel backs them with huge pages as they are touched (one TLB entry per 2 MiB instead
//! of 512), while untouched parts still cost nothing.

use std::ptr::NonNull;
use std::sync::Arc;

use crossbeam_epoch::Guard;
use crossbeam_utils::CachePadded;

use crate::sync::raw::{AtomicI64, AtomicPtr, AtomicU64};
use crate::sync::{Ordering, spin_wait};

/// The first valid address; 0 is the null address of chains.
pub const BEGIN_ADDRESS: u64 = 64;
/// The most log bytes this in-memory tier can address (the page table's reach).
pub const MAX_LOG_BYTES: u64 = 1 << 38;
/// Smallest and largest page sizes.
pub const MIN_PAGE_BITS: u32 = 12;
/// Largest page size (1 GiB).
pub const MAX_PAGE_BITS: u32 = 30;
const OFFSET_BITS: u32 = 36;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;
const PAGE_ALIGN: usize = 4096;

const _: () = assert!(MAX_LOG_BYTES <= 1 << crate::index::ADDRESS_BITS);
// The page number of the tail word must hold every page of the smallest size.
const _: () = assert!(MAX_LOG_BYTES >> MIN_PAGE_BITS <= 1 << (64 - OFFSET_BITS));
// Offsets may overshoot a page by one allocation per racing thread; leave room for thousands.
const _: () = assert!(OFFSET_BITS >= MAX_PAGE_BITS + 6);
const _: () = assert!(BEGIN_ADDRESS.is_multiple_of(8) && BEGIN_ADDRESS > 0);

/// A log of lazily allocated pages.
#[derive(Debug)]
pub struct Log {
    page_bits: u32,
    page_size: u64,
    /// Pages at the tail that stay mutable (in-place updates); changed by [`Log::resize`].
    mutable_pages: AtomicU64,
    /// `MAX_LOG_BYTES >> page_bits` page pointers, zero-allocated so untouched entries are free.
    table: NonNull<AtomicPtr<u8>>,
    table_len: usize,
    tail: CachePadded<AtomicU64>,
    read_only: CachePadded<AtomicU64>,
    safe_read_only: Arc<CachePadded<AtomicU64>>,
    head: AtomicU64,
    /// Records below this address are gone (compaction copied the live ones above it).
    begin: CachePadded<AtomicU64>,
    /// Pages below this address have been written to disk by the flusher.
    flushed_until: CachePadded<AtomicU64>,
    /// Pages kept in memory; 0 without a disk tier (nothing is evicted). Changed by
    /// [`Log::resize`]: every reader takes it afresh, so a new budget applies from the next page
    /// opened (or the next flusher pass) on.
    memory_pages: AtomicU64,
    /// Pages mapped now.
    resident_pages: AtomicU64,
    /// Per page (same indexing as `table`): bytes of heap blocks and objects its records hold
    /// (see [`Log::charge`]). Zero-allocated like the table.
    charges: NonNull<AtomicI64>,
    /// The sum of `charges` over the pages in memory.
    resident_heap: AtomicI64,
    /// Bytes of heap blocks freed with the pages that owned them (see `evict_pages`).
    evicted_heap: AtomicU64,
    /// What the objects freed with the pages that owned them measured.
    evicted_objects: AtomicU64,
    /// Heap blocks and objects freed with the pages that owned them.
    evicted_payloads: AtomicU64,
    /// Evicted pages kept for the next pages opened (see [`Log::reuse_page`]).
    spare_pages: std::sync::Mutex<Vec<NonNull<u8>>>,
    /// Pages went back to the allocator: its free memory should go back to the OS.
    trim_due: std::sync::atomic::AtomicBool,
}

/// The newest pages that stay mutable however much their records hold on the heap (see
/// [`Log::first_mutable`]), within the configured mutable pages.
const MIN_MUTABLE_PAGES: u64 = 2;

/// Pages kept (in memory or as spares) beyond the budget: what writers may run ahead of the
/// flusher and the epoch (`Store`'s flush slack and one page waiting for its eviction), so
/// that a steady load never frees and reallocates pages.
const SPARE_PAGES_OVER_BUDGET: u64 = 4;

// SAFETY: the log owns its pages and table; shared access goes through atomics, and record bytes
// follow the publication and seqlock protocols documented in `record`.
unsafe impl Send for Log {}
// SAFETY: as above.
unsafe impl Sync for Log {}

impl Log {
    /// A log with pages of `2^page_bits` bytes whose newest `mutable_bytes` are mutable.
    pub fn new(page_bits: u32, mutable_bytes: u64) -> Self {
        assert!((MIN_PAGE_BITS..=MAX_PAGE_BITS).contains(&page_bits));
        let table_len = usize::try_from(MAX_LOG_BYTES >> page_bits).expect("table fits");
        let layout = std::alloc::Layout::array::<AtomicPtr<u8>>(table_len).expect("table layout");
        // SAFETY: non-zero size; all-zero bytes are null `AtomicPtr`s, a valid value.
        let table = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<AtomicPtr<u8>>();
        let table = NonNull::new(table).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        let charges_layout = std::alloc::Layout::array::<AtomicI64>(table_len).expect("layout");
        // SAFETY: non-zero size; all-zero bytes are `AtomicI64`s holding 0.
        let charges = unsafe { std::alloc::alloc_zeroed(charges_layout) }.cast::<AtomicI64>();
        let charges =
            NonNull::new(charges).unwrap_or_else(|| std::alloc::handle_alloc_error(charges_layout));
        let page_size = 1u64 << page_bits;
        let log = Self {
            page_bits,
            page_size,
            mutable_pages: AtomicU64::new((mutable_bytes >> page_bits).max(1)),
            table,
            table_len,
            tail: CachePadded::new(AtomicU64::new(BEGIN_ADDRESS)),
            read_only: CachePadded::new(AtomicU64::new(BEGIN_ADDRESS)),
            safe_read_only: Arc::new(CachePadded::new(AtomicU64::new(BEGIN_ADDRESS))),
            head: AtomicU64::new(BEGIN_ADDRESS),
            begin: CachePadded::new(AtomicU64::new(BEGIN_ADDRESS)),
            flushed_until: CachePadded::new(AtomicU64::new(BEGIN_ADDRESS)),
            memory_pages: AtomicU64::new(0),
            resident_pages: AtomicU64::new(0),
            charges,
            resident_heap: AtomicI64::new(0),
            evicted_heap: AtomicU64::new(0),
            evicted_objects: AtomicU64::new(0),
            evicted_payloads: AtomicU64::new(0),
            spare_pages: std::sync::Mutex::new(Vec::new()),
            trim_due: std::sync::atomic::AtomicBool::new(false),
        };
        log.ensure_page(0);
        log
    }

    /// Bytes per page.
    #[inline]
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// log2 of the page size.
    #[inline]
    pub fn page_bits(&self) -> u32 {
        self.page_bits
    }

    /// Turns on eviction: at most `bytes` of pages (at least the mutable ones plus one) stay in
    /// memory, the rest goes below the head once flushed. Set before the log is shared.
    pub fn set_memory_budget(&mut self, bytes: u64) {
        let pages = (bytes >> self.page_bits).max(self.mutable() + 1);
        *self.memory_pages.get_mut() = pages;
    }

    /// Changes the budget of a log with a disk tier while it is shared: at most `memory_bytes`
    /// of pages stay in memory, of which the newest `mutable_bytes` are mutable (whole pages, at
    /// least one mutable page and one more in memory). A smaller budget moves the read-only
    /// address and the head as the next page opened or the flusher's next pass allows (see
    /// [`Log::advance_head`]); a larger one lets them wait for the tail. Returns the pages kept
    /// in memory, or `None` (and changes nothing) without a disk tier.
    pub fn resize(&self, memory_bytes: u64, mutable_bytes: u64) -> Option<u64> {
        if self.memory_pages() == 0 {
            return None;
        }
        let mutable = (mutable_bytes >> self.page_bits).max(1);
        let pages = (memory_bytes >> self.page_bits).max(mutable + 1);
        // Mutable first when shrinking and last when growing, so that the pair is never wider
        // than the budget for long. A reader may still see one new and one old value: the two
        // counts only steer where the addresses move, and safety does not rest on them (the
        // head never passes what is flushed, which never passes the safe read-only address).
        if pages < self.memory_pages() {
            self.mutable_pages.store(mutable, Ordering::Relaxed);
            self.memory_pages.store(pages, Ordering::Relaxed);
        } else {
            self.memory_pages.store(pages, Ordering::Relaxed);
            self.mutable_pages.store(mutable, Ordering::Relaxed);
        }
        Some(pages)
    }

    /// Pages kept in memory (0: no disk tier).
    #[inline]
    pub fn memory_pages(&self) -> u64 {
        self.memory_pages.load(Ordering::Relaxed)
    }

    #[inline]
    fn mutable(&self) -> u64 {
        self.mutable_pages.load(Ordering::Relaxed)
    }

    fn slot(&self, page: u64) -> &AtomicPtr<u8> {
        let i = usize::try_from(page).expect("page fits usize");
        assert!(
            i < self.table_len,
            "log address space exhausted ({MAX_LOG_BYTES} bytes)"
        );
        // SAFETY: `i < table_len`; the table lives as long as `self`.
        unsafe { &*self.table.as_ptr().add(i) }
    }

    fn ensure_page(&self, page: u64) {
        let slot = self.slot(page);
        if !slot.load(Ordering::Acquire).is_null() {
            return;
        }
        let p = self
            .reuse_page()
            .unwrap_or_else(|| map_zeroed(self.page_size as usize, PAGE_ALIGN));
        // Only the thread that crosses into `page` opens it, so there is no race to lose.
        slot.store(p.as_ptr(), Ordering::Release);
        self.resident_pages.fetch_add(1, Ordering::Relaxed);
    }

    /// Reserves `size` bytes (a multiple of 8, at most a page) and returns their address.
    pub fn allocate(&self, size: usize, guard: &Guard) -> u64 {
        let size = size as u64;
        assert!(size.is_multiple_of(8) && size > 0 && size <= self.page_size);
        let mut step = 0;
        loop {
            let old = self.tail.fetch_add(size, Ordering::AcqRel);
            let (page, offset) = (old >> OFFSET_BITS, old & OFFSET_MASK);
            debug_assert!(offset < OFFSET_MASK / 2, "tail offset overflow");
            if offset + size <= self.page_size {
                return (page << self.page_bits) + offset;
            }
            if offset <= self.page_size {
                // We crossed the page end: open the next page and claim its first bytes.
                self.ensure_page(page + 1);
                self.shift_read_only(page + 1, guard);
                self.shift_head(page + 1, guard);
                self.tail
                    .store(((page + 1) << OFFSET_BITS) | size, Ordering::Release);
                return (page + 1) << self.page_bits;
            }
            while self.tail.load(Ordering::Acquire) >> OFFSET_BITS == page {
                spin_wait(&mut step);
            }
        }
    }

    /// The oldest mutable page when `tail_page` is the tail: the newest pages within the mutable
    /// share of the budget, counting what their records hold on the heap, but never fewer than
    /// [`MIN_MUTABLE_PAGES`]. Without that floor, a collection bigger than the mutable share
    /// made its own page read-only as soon as the next page opened, so every later write to it
    /// copied it whole (read-copy-update): LPUSHing 50,000 elements onto a 15 MiB list under a
    /// 16 MiB budget took 548 s and hundreds of MiB of garbage instead of a fraction of a second.
    fn first_mutable(&self, tail_page: u64) -> u64 {
        let mutable = self.mutable();
        let floor = (tail_page + 1).saturating_sub(mutable.min(MIN_MUTABLE_PAGES));
        self.newest_within(tail_page, mutable).min(floor)
    }

    fn shift_read_only(&self, tail_page: u64, guard: &Guard) {
        let first_mutable = self.first_mutable(tail_page);
        let ro = (first_mutable << self.page_bits).max(BEGIN_ADDRESS);
        if self.read_only.fetch_max(ro, Ordering::SeqCst) < ro {
            let safe = Arc::clone(&self.safe_read_only);
            guard.defer(move || safe.fetch_max(ro, Ordering::Release));
            // Hand the deferred move to the global queue now (once per page): left in this
            // thread's bag it would wait for 63 more deferred functions, and the flusher waits
            // for it.
            guard.flush();
        }
    }

    /// Moves the head so that at most `memory_pages` pages stay in memory, but never past what
    /// the flusher has written. The pages that fall below it are unmapped once every thread that
    /// might still hold an address in them has unpinned: readers check the head after pinning,
    /// so only those pinned before this move can reach them.
    fn shift_head(&self, tail_page: u64, guard: &Guard) {
        if self.memory_pages() == 0 {
            return;
        }
        let want = self.newest_within(tail_page, self.memory_pages()) << self.page_bits;
        let flushed = self.flushed_until.load(Ordering::Acquire) & !(self.page_size - 1);
        let new = want.min(flushed);
        let old = self.head.fetch_max(new, Ordering::SeqCst);
        if new <= old {
            return;
        }
        let (from, to) = (old >> self.page_bits, new >> self.page_bits);
        let log = LogPtr(self);
        guard.defer(move || {
            // SAFETY: the store drops its epoch collector, which runs every pending deferred
            // function, before it drops the log (field order in `Store`).
            unsafe { log.get() }.evict_pages(from, to)
        });
        guard.flush();
    }

    /// The oldest page `p` such that pages `p..=tail_page` cost at most `pages` pages of memory,
    /// counting what their records hold on the heap (see [`Log::charge`]) with a disk tier;
    /// always at most `tail_page`.
    fn newest_within(&self, tail_page: u64, pages: u64) -> u64 {
        let oldest = (tail_page + 1).saturating_sub(pages);
        if self.memory_pages() == 0 {
            return oldest;
        }
        let budget = pages * self.page_size;
        let mut cost = 0;
        let mut p = tail_page;
        loop {
            cost += self.page_size + self.charge_of(p).max(0) as u64;
            if (cost > budget && p < tail_page) || p <= oldest {
                return if cost > budget && p < tail_page {
                    p + 1
                } else {
                    p
                };
            }
            p -= 1;
        }
    }

    fn charge_slot(&self, page: u64) -> &AtomicI64 {
        let i = usize::try_from(page).expect("page fits usize");
        assert!(i < self.table_len, "log address space exhausted");
        // SAFETY: `i < table_len`; the charges live as long as `self`.
        unsafe { &*self.charges.as_ptr().add(i) }
    }

    fn charge_of(&self, page: u64) -> i64 {
        self.charge_slot(page).load(Ordering::Relaxed)
    }

    /// Adds `delta` bytes of heap memory (blocks, objects) held by the record at `address`,
    /// which is in memory. With a disk tier these count against the memory budget: the head
    /// and the read-only address keep the pages in memory, plus what their records hold, within
    /// it. A tail page whose records hold more than a page's worth is closed (the next record
    /// opens a new page), so that one page cannot hold an unbounded amount.
    pub fn charge(&self, address: u64, delta: i64) {
        if delta == 0 || self.memory_pages() == 0 {
            return;
        }
        let page = address >> self.page_bits;
        let now = self.charge_slot(page).fetch_add(delta, Ordering::Relaxed) + delta;
        self.resident_heap.fetch_add(delta, Ordering::Relaxed);
        if now > self.page_size as i64 {
            self.close_page(page);
        }
    }

    /// Makes `page` full if it is the tail page: the next allocation opens the next page.
    fn close_page(&self, page: u64) {
        let mut t = self.tail.load(Ordering::Acquire);
        while t >> OFFSET_BITS == page && t & OFFSET_MASK < self.page_size {
            // Exactly full: the next allocator finds its offset at the page end and opens the
            // next page (`allocate`). The bytes left are zero: the unused end of the page.
            let full = (page << OFFSET_BITS) | self.page_size;
            match self
                .tail
                .compare_exchange(t, full, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => t = now,
            }
        }
    }

    /// Memory in use: the pages mapped and what their records hold on the heap.
    pub fn resident_bytes(&self) -> u64 {
        self.memory_bytes() + self.resident_heap.load(Ordering::Relaxed).max(0) as u64
    }

    /// Moves the read-only address as far as the budget wants (after [`Log::resize`] shrank
    /// it: otherwise only opening a page moves it).
    pub fn advance_read_only(&self, guard: &Guard) {
        let tail_page = self.tail.load(Ordering::Acquire) >> OFFSET_BITS;
        self.shift_read_only(tail_page, guard);
    }

    /// Moves the head as far as the budget wants and the flusher allows (the flusher calls
    /// this after writing pages, so that memory is released even while no page is opened).
    pub fn advance_head(&self, guard: &Guard) {
        let tail_page = self.tail.load(Ordering::Acquire) >> OFFSET_BITS;
        self.shift_head(tail_page, guard);
    }

    /// Unmaps pages `from..to` (all below the head; nobody can reach them any more), after
    /// freeing what their records own: key blocks (always their record's), and the value blocks
    /// and objects of records that were neither superseded nor deleted in place (those gave
    /// theirs up through the epoch already: `Rec::free_blocks` tells them apart). The flusher
    /// wrote every such payload to the object log, or relocated its record, before the page could
    /// fall below the head.
    fn evict_pages(&self, from: u64, to: u64) {
        for page in from..to {
            let p = self.slot(page).swap(std::ptr::null_mut(), Ordering::AcqRel);
            let charged = self.charge_slot(page).swap(0, Ordering::Relaxed);
            self.resident_heap.fetch_sub(charged, Ordering::Relaxed);
            if let Some(p) = NonNull::new(p) {
                self.free_payloads(page, p);
                // SAFETY: a page of this log, unreachable since the head passed it and every
                // reader pinned before that has unpinned.
                unsafe { self.retire_page(p) };
                self.resident_pages.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Gives up evicted page `p`. A page from the global allocator (below [`HUGE_PAGE`]) is
    /// kept for the next page opened (FASTER's circular buffer of pages): such pages are never
    /// given back to the allocator while the log lives, so they take at most the most pages
    /// ever in memory at once, whatever the log's length. Freed and allocated again, they
    /// fragmented malloc's heaps (aligned blocks of 64 KiB between the small blocks of other
    /// threads), which kept growing: RSS grew by about 0.7 MiB per 100 pages appended over a
    /// 4 MiB budget. A page mapped on its own is unmapped: that frees it whole.
    ///
    /// # Safety
    /// `p` is a page of this log (from `ensure_page`) that nothing can reach any more.
    unsafe fn retire_page(&self, p: NonNull<u8>) {
        if (self.page_size as usize) < HUGE_PAGE {
            let mut spares = self.spares();
            // Pages beyond what the budget can use again go back to the allocator: after the
            // budget shrank (`resize`), spares kept for the old one would hold its memory.
            let keep = self.memory_pages() + SPARE_PAGES_OVER_BUDGET;
            if self.resident_pages.load(Ordering::Relaxed) + spares.len() as u64 <= keep {
                spares.push(p);
                return;
            }
            drop(spares);
            // SAFETY: the caller's contract; `ensure_page` allocated it with this size and
            // alignment.
            unsafe { unmap(p, self.page_size as usize, PAGE_ALIGN) };
            self.trim_due.store(true, Ordering::Relaxed);
        } else {
            // SAFETY: the caller's contract; `ensure_page` mapped it with this size and
            // alignment.
            unsafe { unmap(p, self.page_size as usize, PAGE_ALIGN) };
        }
    }

    /// Gives the allocator's free memory back to the OS if pages were freed since the last
    /// call (glibc keeps freed blocks of this size in its heaps otherwise). Called by the
    /// flusher, off the reactor threads: trimming walks the allocator's heaps.
    pub fn trim_if_due(&self) {
        if self.trim_due.swap(false, Ordering::Relaxed) {
            #[cfg(target_env = "gnu")]
            // SAFETY: malloc_trim only releases free memory of the allocator's own heaps.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }

    /// A retired page, zeroed, for a page being opened (see [`Log::retire_page`]).
    fn reuse_page(&self) -> Option<NonNull<u8>> {
        let p = self.spares().pop()?;
        // SAFETY: a whole page of `page_size` bytes that nobody can reach (see `evict_pages`).
        unsafe { std::ptr::write_bytes(p.as_ptr(), 0, self.page_size as usize) };
        Some(p)
    }

    /// Bytes of evicted pages kept for reuse.
    pub fn spare_bytes(&self) -> u64 {
        self.spares().len() as u64 * self.page_size
    }

    fn spares(&self) -> std::sync::MutexGuard<'_, Vec<NonNull<u8>>> {
        // A panic while holding it leaves a valid list.
        self.spare_pages.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn free_payloads(&self, page: u64, base: NonNull<u8>) {
        let start = page << self.page_bits;
        let mut offset = BEGIN_ADDRESS.saturating_sub(start);
        let (mut bytes, mut objects, mut count) = (0, 0, 0);
        while offset + crate::record::HEADER_BYTES as u64 <= self.page_size {
            // SAFETY: inside the page, 8-aligned (records are multiples of 8); nobody else can
            // reach the page any more, so its words are ours.
            let r = unsafe { crate::record::Rec::at(base.add(offset as usize), start + offset) };
            let info = r.info();
            if info == 0 {
                break; // The unused end of the page.
            }
            if info & crate::record::POINTERS != 0 {
                let freed = r.free_blocks();
                bytes += freed.heap;
                objects += freed.object;
                count += 1;
            }
            offset += r.size() as u64;
        }
        self.evicted_heap.fetch_add(bytes, Ordering::Relaxed);
        self.evicted_objects.fetch_add(objects, Ordering::Relaxed);
        self.evicted_payloads.fetch_add(count, Ordering::Relaxed);
    }

    /// Bytes of heap blocks freed with evicted pages so far.
    pub fn evicted_heap_bytes(&self) -> u64 {
        self.evicted_heap.load(Ordering::Relaxed)
    }

    /// What the objects freed with evicted pages so far measured.
    pub fn evicted_object_bytes(&self) -> u64 {
        self.evicted_objects.load(Ordering::Relaxed)
    }

    /// Whether what is in memory (pages and what their records hold) exceeds the budget and
    /// opening a page now would move the read-only address: then the records that grew in
    /// place (which allocate nothing, so open no page) should let it move. O(1) unless over
    /// the budget.
    pub fn read_only_is_due(&self) -> bool {
        if self.memory_pages() == 0 || self.resident_bytes() <= self.memory_pages() * self.page_size
        {
            return false;
        }
        let tail_page = self.tail.load(Ordering::Acquire) >> OFFSET_BITS;
        let first_mutable = self.first_mutable(tail_page + 1);
        (first_mutable << self.page_bits) > self.read_only_address()
    }

    /// Makes the tail page full, so that the next allocation opens the next page (and moves
    /// the read-only address and the head as opening a page does).
    pub fn close_tail_page(&self) {
        let page = self.tail.load(Ordering::Acquire) >> OFFSET_BITS;
        self.close_page(page);
    }

    /// Records whose heap blocks or objects were freed with evicted pages so far.
    pub fn evicted_payloads(&self) -> u64 {
        self.evicted_payloads.load(Ordering::Relaxed)
    }

    /// Records below this address are gone: a chain that reaches it ends there.
    #[inline]
    pub fn begin_address(&self) -> u64 {
        self.begin.load(Ordering::Acquire)
    }

    /// Moves the begin address up (compaction, after copying everything live above it).
    pub fn set_begin(&self, address: u64) {
        debug_assert!(address <= self.head_address());
        self.begin.fetch_max(address, Ordering::AcqRel);
    }

    /// Records that every page below `address` (page-aligned) is on disk.
    pub fn set_flushed_until(&self, address: u64) {
        debug_assert!(address.is_multiple_of(self.page_size));
        self.flushed_until.fetch_max(address, Ordering::Release);
    }

    /// Pages below this address are on disk.
    pub fn flushed_until(&self) -> u64 {
        self.flushed_until.load(Ordering::Acquire)
    }

    /// Whether writers should wait for the flusher: the pages in memory exceed the budget by
    /// more than `slack` because flushing is behind, or by more than `slack + 1` because the
    /// pages below the head are not unmapped yet (their eviction waits for the epoch, which
    /// waiting writers advance: see `Session::wait_for_flusher`).
    pub fn flush_is_behind(&self, slack: u64) -> bool {
        // Every write asks: each atomic is loaded once (the compiler may not merge them).
        let budget = self.memory_pages();
        if budget == 0 {
            return false;
        }
        let limit = budget + slack;
        let tail_page = self.tail.load(Ordering::Acquire) >> OFFSET_BITS;
        let flushed = self.flushed_until();
        let flushed_page = flushed >> self.page_bits;
        let resident = self.resident_pages.load(Ordering::Relaxed);
        if tail_page + 1 - flushed_page.min(tail_page + 1) > limit || resident > limit + 1 {
            return true;
        }
        // Over the budget by what records hold on the heap: waiting helps only if the flusher
        // has pages to write (then the head can move past them), or will have once the safe
        // read-only address follows the read-only one (the waiting writer's own pins advance
        // the epoch that moves it). Records that grew in place close pages early and move the
        // read-only address with little appended, so it may be well ahead of what is flushed.
        let heap = self.resident_heap.load(Ordering::Relaxed).max(0) as u64;
        resident * self.page_size + heap > limit * self.page_size
            && flushed < self.read_only_address() & !(self.page_size - 1)
    }

    /// Whether what memory holds that cannot leave it (the pages not yet on disk, and what
    /// their records keep on the heap) exceeds the budget. While the disk takes no writes this
    /// only grows with writes, unlike [`Self::flush_is_behind`], which also counts flushed pages
    /// whose eviction waits for the epoch: a refusal decided on it would flicker as they go.
    /// Visits each unflushed page's charge: for use only while the disk fails.
    pub fn unflushed_over_budget(&self) -> bool {
        let budget = self.memory_pages();
        if budget == 0 {
            return false;
        }
        let tail_page = self.tail.load(Ordering::Acquire) >> OFFSET_BITS;
        let flushed_page = (self.flushed_until() >> self.page_bits).min(tail_page + 1);
        let heap: i64 = (flushed_page..=tail_page).map(|p| self.charge_of(p)).sum();
        (tail_page + 1 - flushed_page) * self.page_size + heap.max(0) as u64
            > budget * self.page_size
    }

    /// The bytes of page `page` if it is in memory: a pointer to `page_size` bytes.
    pub fn page_ptr(&self, page: u64) -> Option<NonNull<u8>> {
        NonNull::new(self.slot(page).load(Ordering::Acquire))
    }

    /// A pointer to the byte at `address` if its page is in memory now.
    #[inline]
    pub fn try_ptr(&self, address: u64) -> Option<NonNull<u8>> {
        let page = self.page_ptr(address >> self.page_bits)?;
        let offset = (address & (self.page_size - 1)) as usize;
        // SAFETY: `offset < page_size`, inside the page allocation.
        Some(unsafe { page.add(offset) })
    }

    /// A pointer to the byte at `address`, which must lie in an allocated page.
    #[inline]
    pub fn ptr(&self, address: u64) -> NonNull<u8> {
        let page = self.slot(address >> self.page_bits).load(Ordering::Acquire);
        let page = NonNull::new(page).expect("address in an unallocated page");
        let offset = (address & (self.page_size - 1)) as usize;
        // SAFETY: `offset < page_size`, inside the page allocation.
        unsafe { page.add(offset) }
    }

    /// The next address to be allocated.
    pub fn tail_address(&self) -> u64 {
        let t = self.tail.load(Ordering::Acquire);
        ((t >> OFFSET_BITS) << self.page_bits) + (t & OFFSET_MASK).min(self.page_size)
    }

    /// Records at or above this address may be updated in place.
    #[inline]
    pub fn read_only_address(&self) -> u64 {
        self.read_only.load(Ordering::SeqCst)
    }

    /// Records below this address are never written again: readers may use them directly.
    #[inline]
    pub fn safe_read_only_address(&self) -> u64 {
        self.safe_read_only.load(Ordering::Acquire)
    }

    /// Records below this address are on disk.
    #[inline]
    pub fn head_address(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Bytes of page memory mapped now.
    pub fn memory_bytes(&self) -> u64 {
        self.resident_pages.load(Ordering::Relaxed) * self.page_size
    }

    /// Calls `f(address, bytes_in_use)` for every page in memory (from the head), oldest
    /// first. Only for an owner with no concurrent allocator (the store's `Drop`).
    pub fn for_each_page(&mut self, mut f: impl FnMut(u64, u64)) {
        let tail = self.tail.load(Ordering::Acquire);
        let (tail_page, tail_offset) = (tail >> OFFSET_BITS, tail & OFFSET_MASK);
        for page in self.head_address() >> self.page_bits..=tail_page {
            if self.page_ptr(page).is_none() {
                continue;
            }
            let used = if page == tail_page {
                tail_offset.min(self.page_size)
            } else {
                self.page_size
            };
            f(page << self.page_bits, used);
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let tail_page = self.tail.load(Ordering::Acquire) >> OFFSET_BITS;
        for i in 0..=tail_page {
            let p = self.slot(i).load(Ordering::Acquire);
            if let Some(p) = NonNull::new(p) {
                // SAFETY: mapped in `ensure_page` with this size and alignment; `&mut self`
                // means no borrows into it remain.
                unsafe { unmap(p, self.page_size as usize, PAGE_ALIGN) }
            }
        }
        for p in std::mem::take(
            self.spare_pages
                .get_mut()
                .unwrap_or_else(|e| e.into_inner()),
        ) {
            // SAFETY: mapped in `ensure_page` with this size and alignment, and evicted: no
            // page slot and no reader refers to it.
            unsafe { unmap(p, self.page_size as usize, PAGE_ALIGN) }
        }
        let table = std::alloc::Layout::array::<AtomicPtr<u8>>(self.table_len).expect("layout");
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.table.as_ptr().cast(), table) }
        let charges = std::alloc::Layout::array::<AtomicI64>(self.table_len).expect("layout");
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.charges.as_ptr().cast(), charges) }
    }
}

/// The log, for a deferred eviction that outlives the borrow it was made under.
struct LogPtr(*const Log);

// SAFETY: `Log` is `Sync`; the pointer is only dereferenced under `LogPtr::get`'s contract.
unsafe impl Send for LogPtr {}

impl LogPtr {
    /// # Safety
    /// The log is still alive.
    unsafe fn get(&self) -> &Log {
        // SAFETY: forwarded from the caller.
        unsafe { &*self.0 }
    }
}

/// Huge-page size and alignment of [`map_zeroed`] memory.
pub const HUGE_PAGE: usize = 2 << 20;

/// `bytes` of zeroed memory aligned to `align` (a power of two of at most 4 KiB). From
/// `HUGE_PAGE` bytes up it is an anonymous mapping aligned to `HUGE_PAGE` and advised
/// `MADV_HUGEPAGE`: untouched memory costs nothing, touched memory is backed by 2 MiB pages
/// where the kernel can (fewer TLB misses on random access). Smaller sizes, and targets
/// other than Linux, use the global allocator. Free with [`unmap`] and the same arguments.
pub fn map_zeroed(bytes: usize, align: usize) -> NonNull<u8> {
    assert!(bytes > 0 && align.is_power_of_two() && align <= PAGE_ALIGN);
    #[cfg(target_os = "linux")]
    if bytes >= HUGE_PAGE {
        let len = bytes.next_multiple_of(PAGE_ALIGN);
        let total = len + HUGE_PAGE;
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            let layout = std::alloc::Layout::from_size_align(bytes, align).expect("layout");
            std::alloc::handle_alloc_error(layout);
        }
        let base = base.cast::<u8>();
        let head = base.align_offset(HUGE_PAGE);
        let tail = total - head - len;
        // SAFETY: `[base, base + head)` and `[base + head + len, base + total)` lie inside the
        // mapping just made and nothing points into them; unmapping page-aligned parts of it
        // leaves `[base + head, + len)` mapped. `head` and `tail` are multiples of 4 KiB.
        // madvise only changes how the kernel backs our own range (failure, e.g. with THP
        // disabled, just leaves normal pages).
        unsafe {
            if head > 0 {
                libc::munmap(base.cast(), head);
            }
            if tail > 0 {
                libc::munmap(base.add(head + len).cast(), tail);
            }
            let p = base.add(head);
            libc::madvise(p.cast(), len, libc::MADV_HUGEPAGE);
            return NonNull::new_unchecked(p);
        }
    }
    let layout = std::alloc::Layout::from_size_align(bytes, align).expect("layout");
    // SAFETY: the layout has non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
}

/// Frees memory from [`map_zeroed`].
///
/// # Safety
/// `p` came from `map_zeroed(bytes, align)` with these arguments, and nothing uses it after.
pub unsafe fn unmap(p: NonNull<u8>, bytes: usize, align: usize) {
    #[cfg(target_os = "linux")]
    if bytes >= HUGE_PAGE {
        // SAFETY: the caller's contract: this is the whole mapping `map_zeroed` kept.
        unsafe { libc::munmap(p.as_ptr().cast(), bytes.next_multiple_of(PAGE_ALIGN)) };
        return;
    }
    let layout = std::alloc::Layout::from_size_align(bytes, align).expect("layout");
    // SAFETY: the caller's contract: allocated by `alloc_zeroed` with this layout.
    unsafe { std::alloc::dealloc(p.as_ptr(), layout) }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn huge_mappings_are_aligned_zeroed_and_writable() {
        for bytes in [4096, HUGE_PAGE, 3 * HUGE_PAGE + 4096] {
            let p = map_zeroed(bytes, 64);
            if bytes >= HUGE_PAGE {
                assert!(p.as_ptr().addr().is_multiple_of(HUGE_PAGE));
            }
            // SAFETY: test: `bytes` bytes were just mapped for us alone.
            let s = unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), bytes) };
            assert!(s.iter().step_by(4096).all(|&b| b == 0) && s[bytes - 1] == 0);
            s[0] = 1;
            s[bytes - 1] = 2;
            // SAFETY: from `map_zeroed` with these arguments; `s` is not used again.
            unsafe { unmap(p, bytes, 64) };
        }
    }

    #[test]
    fn allocations_never_straddle_pages() {
        let log = Log::new(12, 4096);
        let c = crossbeam_epoch::Collector::new();
        let h = c.register();
        let g = h.pin();
        let mut last = 0;
        for i in 0..2000u64 {
            let size = 8 * (1 + i % 60) as usize;
            let a = log.allocate(size, &g);
            assert!(a >= BEGIN_ADDRESS && a > last);
            assert_eq!(
                a >> 12,
                (a + size as u64 - 1) >> 12,
                "record straddles a page"
            );
            // SAFETY: test: the range was just allocated to us and nobody else touches it.
            unsafe { log.ptr(a).as_ptr().write_bytes(0xAB, size) };
            last = a;
        }
        assert!(log.memory_bytes() >= 40 * 4096);
        assert!(log.read_only_address() > BEGIN_ADDRESS);
        assert!(log.tail_address() > last);
    }

    #[test]
    fn concurrent_allocations_are_disjoint() {
        let log = std::sync::Arc::new(Log::new(12, 1 << 20));
        let c = crossbeam_epoch::Collector::new();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (log, c) = (log.clone(), c.clone());
                std::thread::spawn(move || {
                    let h = c.register();
                    (0..3000)
                        .map(|i| {
                            (
                                log.allocate(8 * (1 + i % 9), &h.pin()),
                                8 * (1 + i % 9) as u64,
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(u64, u64)> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort_unstable();
        for w in all.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "overlap {w:?}");
        }
    }

    #[test]
    fn evicted_pages_are_reused_zeroed() {
        let mut log = Log::new(12, 4096);
        log.set_memory_budget(4 * 4096);
        let c = crossbeam_epoch::Collector::new();
        let h = c.register();
        let size = crate::record::HEADER_BYTES + 8;
        for _ in 0..64 * 4096 / size {
            let g = h.pin();
            let a = log.allocate(size, &g);
            // Every page below the tail page counts as written to disk.
            log.set_flushed_until(a & !4095);
            // The header stays zero (the unused end of a page to `free_payloads`); the word
            // after it is ours.
            let word = log
                .ptr(a + crate::record::HEADER_BYTES as u64)
                .as_ptr()
                .cast::<u64>();
            // SAFETY: test: the range was just allocated to us and nobody else touches it;
            // 8-aligned.
            unsafe {
                assert_eq!(word.read(), 0, "a page opened is zeroed");
                word.write(u64::MAX);
            }
            g.flush();
        }
        assert!(log.head_address() > 32 * 4096);
        let spares = log.spares().len() as u64;
        assert!(spares > 0, "evicted pages are kept");
        assert!(
            log.memory_bytes() / 4096 + spares <= 8,
            "pages are reused: {} in memory, {spares} spare",
            log.memory_bytes() / 4096
        );
    }

    #[test]
    fn unflushed_over_budget_counts_only_what_cannot_leave_memory() {
        let mut log = Log::new(12, 4096);
        log.set_memory_budget(4 * 4096);
        let c = crossbeam_epoch::Collector::new();
        let h = c.register();
        // Until a record is on `page` (a full page's tail points at its end, the next start).
        let to_page = |log: &Log, page: u64| {
            while log.tail_address() <= page << 12 {
                log.allocate(64, &h.pin());
            }
        };
        // Pages 1 and 2 on disk (their eviction may lag), 3..=6 not: four pages, the budget.
        to_page(&log, 3);
        log.set_flushed_until(3 * 4096);
        to_page(&log, 6);
        assert!(!log.unflushed_over_budget());
        // A fifth page that cannot leave memory is over it.
        to_page(&log, 7);
        assert!(log.unflushed_over_budget());
        // As is what the unflushed records hold on the heap.
        log.set_flushed_until(4 * 4096);
        assert!(!log.unflushed_over_budget());
        log.charge(log.tail_address() - 64, 100);
        assert!(log.unflushed_over_budget());
        // What flushed pages hold does not count.
        log.charge(log.tail_address() - 64, -100);
        log.charge(3 * 4096, 100);
        assert!(!log.unflushed_over_budget());
    }

    #[test]
    fn safe_read_only_follows_after_an_epoch() {
        let log = Log::new(12, 4096);
        let c = crossbeam_epoch::Collector::new();
        let h = c.register();
        for _ in 0..4 * 512 {
            log.allocate(8, &h.pin());
        }
        let ro = log.read_only_address();
        assert!(ro >= 3 * 4096);
        for _ in 0..1000 {
            let g = h.pin();
            g.flush();
            if log.safe_read_only_address() == ro {
                return;
            }
        }
        panic!("safe read-only never caught up with {ro}");
    }
}
