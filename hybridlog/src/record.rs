//! Record layout in log memory.
//!
//! ```text
//! word 0  info     prev address (48) | physical db (8) | flags (8): VALID KEY_HEAP VALUE_HEAP INVALID
//!                                                                     OBJECT OLOG (disk) COPY
//! word 1  version  seqlock: odd while a writer holds the record
//! word 2  sizes    key length (32) | inline value capacity (32)
//! word 3  meta     value length (32) | kind (8) | TOMBSTONE | SEALED        (under the seqlock)
//! word 4  expire   absolute Unix ms, 0 = none                               (under the seqlock)
//! then    key      inline bytes padded to 8, or one word: pointer to a heap block
//! then    value    inline words (capacity bytes), or one word: pointer to a heap block,
//!                  or (OBJECT) one word: pointer to an object cell (`Box<Box<dyn StoreObject>>`)
//! ```
//!
//! An OBJECT record holds a collection (its kind, in the meta word, is an object kind; its value
//! length is 0) or, once deleted in place, a tombstone with a null cell pointer. The shape is
//! fixed at creation: bytes are never written into an OBJECT record, nor an object into a
//! bytes record (writers append a new record instead). The object cell follows the rules of a
//! value block: a record owns its cell iff the pointer word is non-zero and SEALED is clear; a
//! cell given up by a sealed or tombstoned record is dropped through crossbeam-epoch. The object
//! itself is mutated only under the record's writer lock and only while the record is in the
//! mutable region (readers of an object in the mutable or fuzzy region take that lock too);
//! below the safe read-only address nothing mutates it, so pinned readers share it lock-free.
//!
//! Keys and values longer than the store's inline limit (a quarter page) live out of line in
//! `Box<[u8]>` blocks, so a record always fits a page and values up to 512 MiB work.
//!
//! Ownership of heap blocks: a key block is immutable and belongs to its record until the
//! record's page leaves memory (or the store is dropped), because walkers of a chain compare
//! the keys of every record on it, superseded or not; on disk the key is in the object log. A value block is immutable too, but only the newest record of a key is ever read for its
//! value, so a record gives its value block up when it is sealed (superseded), tombstoned in
//! place, or has its block swapped in place; the block is freed through crossbeam-epoch once every
//! reader that might hold it has unpinned. A record owns its value block iff VALUE_HEAP is set,
//! the pointer word is non-zero and SEALED is clear. What a record still owns when its page is
//! unmapped is freed then (`Log::evict_pages`), its payload being in the object log.
//!
//! Words 0 and 2 and the key are written before the record is published (by the Release CAS of
//! an index entry) and never again, except INVALID, which is set only on records that were
//! never published. Everything else changes only under the seqlock's writer bit.

use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::ValueKind;
use crate::index::ADDRESS_MASK;
use crate::seqlock;
use crate::sync::Ordering;
use crate::sync::raw::AtomicU64;

mod heap;
mod lock;
#[cfg(all(test, not(loom)))]
mod tests;

use heap::heap_block;
pub use heap::{ObjectCell, free_block, object_mut, object_ref, retire_block, retire_object};
pub use lock::{Freed, RecordLock};

/// Bytes of the fixed record header.
pub const HEADER_BYTES: usize = 40;
const WORDS: usize = HEADER_BYTES / 8;
const _: () = assert!(HEADER_BYTES.is_multiple_of(8));

pub(crate) const DB_SHIFT: u32 = 48;
const FLAG_SHIFT: u32 = 56;
/// Set on every record header, so a zero first word marks the unused end of a page.
pub const F_VALID: u64 = 1 << FLAG_SHIFT;
/// The key lives in a heap block.
pub const F_KEY_HEAP: u64 = 2 << FLAG_SHIFT;
/// The value lives in a heap block.
pub const F_VALUE_HEAP: u64 = 4 << FLAG_SHIFT;
/// The record lost its publication race and is garbage.
pub const F_INVALID: u64 = 8 << FLAG_SHIFT;
/// The value part is one word: a pointer to an object cell.
pub const F_OBJECT: u64 = 16 << FLAG_SHIFT;
/// Any of the flags of a record that holds pointers.
pub const POINTERS: u64 = F_KEY_HEAP | F_VALUE_HEAP | F_OBJECT;
/// Only in a page image on disk: the pointer words of the record (key, value, object) hold
/// object-log addresses of its payload (see `tier::objlog`), never memory pointers.
pub const F_OLOG: u64 = 32 << FLAG_SHIFT;
/// Only on a private copy read back from disk: its pointer words point at buffers (or an
/// object cell) that the copy owns, so sealing it retires nothing.
pub const F_COPY: u64 = 64 << FLAG_SHIFT;

pub(crate) const LEN_MASK: u64 = 0xFFFF_FFFF;
const KIND_SHIFT: u32 = 32;
/// The record is a deletion marker.
pub const M_TOMBSTONE: u64 = 1 << 40;
/// A newer record of the key exists; writers must go back to the index.
pub const M_SEALED: u64 = 1 << 41;
/// Where the access-tracking bits sit in the meta word: an LRU clock (seconds) or an LFU
/// counter with its decay time, as Redis keeps in an object's `lru` field.
pub const ACCESS_SHIFT: u32 = 42;
/// Width of the access-tracking bits.
pub const ACCESS_BITS: u32 = 22;
/// Mask of the access-tracking bits (after shifting).
pub const ACCESS_MASK: u64 = (1 << ACCESS_BITS) - 1;
const _: () = assert!(ACCESS_SHIFT + ACCESS_BITS == 64);

/// The longest value (and key) a record can describe: lengths are 32-bit. Redis bounds both
/// by `proto-max-bulk-len`, 512 MiB by default.
pub const MAX_LEN: usize = u32::MAX as usize;

#[inline]
fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Bytes a record occupies in the log, from its info and sizes words (words 0 and 2), for
/// walkers over page images that have no `Rec` (the disk layer's checksum table). Words that are
/// not a record's give some size; such walkers bound it by what they hold.
pub fn stored_size(info: u64, sizes: u64) -> usize {
    Shape::from_parts(
        (sizes >> 32) as usize,
        info & F_KEY_HEAP != 0,
        info & F_VALUE_HEAP != 0,
        (sizes & LEN_MASK) as usize,
        info & F_OBJECT != 0,
    )
    .size
}

/// Where a record's key and value go and how big it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Key in a heap block.
    pub key_heap: bool,
    /// Value in a heap block.
    pub value_heap: bool,
    /// Inline value capacity in bytes (a multiple of 8).
    pub value_cap: usize,
    /// The value part is an object cell pointer.
    pub object: bool,
    /// Total record bytes (a multiple of 8).
    pub size: usize,
}

impl Shape {
    /// The shape of a new record. Inline values get capacity rounded up to 8 bytes (at least 8,
    /// so that small counters grow in place); tombstones get none.
    pub fn new(key_len: usize, value_len: usize, tombstone: bool, inline_limit: usize) -> Self {
        assert!(
            key_len <= MAX_LEN && value_len <= MAX_LEN,
            "key or value over 4 GiB"
        );
        let key_heap = pad8(key_len) > inline_limit;
        let value_heap = !tombstone && pad8(value_len) > inline_limit;
        let value_cap = if tombstone || value_heap {
            0
        } else {
            pad8(value_len).max(8)
        };
        Self::from_parts(key_len, key_heap, value_heap, value_cap, false)
    }

    /// The shape of a new object record: the value part is one cell pointer.
    pub fn object(key_len: usize, inline_limit: usize) -> Self {
        assert!(key_len <= MAX_LEN, "key over 4 GiB");
        Self::from_parts(key_len, pad8(key_len) > inline_limit, false, 0, true)
    }

    pub(crate) fn from_parts(
        key_len: usize,
        key_heap: bool,
        value_heap: bool,
        value_cap: usize,
        object: bool,
    ) -> Self {
        let key_part = if key_heap { 8 } else { pad8(key_len) };
        let value_part = if value_heap || object { 8 } else { value_cap };
        Self {
            key_heap,
            value_heap,
            value_cap,
            object,
            size: HEADER_BYTES + key_part + value_part,
        }
    }
}

/// A record in log memory, valid while the log lives (the lifetime `'a`).
#[derive(Debug, Clone, Copy)]
pub struct Rec<'a> {
    base: NonNull<u64>,
    address: u64,
    _log: PhantomData<&'a ()>,
}

impl<'a> Rec<'a> {
    /// The record at `ptr`.
    ///
    /// # Safety
    /// `ptr` is 8-aligned, points at a record (or space reserved for one) of at least
    /// `HEADER_BYTES` inside a log page that outlives `'a`, and the record's header words are
    /// only ever accessed atomically.
    pub unsafe fn at(ptr: NonNull<u8>, address: u64) -> Self {
        debug_assert!(ptr.as_ptr().addr().is_multiple_of(8));
        Self {
            base: ptr.cast(),
            address,
            _log: PhantomData,
        }
    }

    /// The record's logical address.
    #[inline]
    pub fn address(&self) -> u64 {
        self.address
    }

    #[inline]
    fn word(&self, i: usize) -> &'a AtomicU64 {
        // SAFETY: `Rec::at`'s contract: word `i` lies inside the record in a live page, is
        // 8-aligned, and is only accessed atomically.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(i)) }
    }

    /// The info word (prev, db, flags).
    #[inline]
    pub fn info(&self) -> u64 {
        self.word(0).load(Ordering::Acquire)
    }
    /// The previous record on the chain, 0 at the end.
    #[inline]
    pub fn prev(&self) -> u64 {
        self.info() & ADDRESS_MASK
    }
    /// The physical database.
    #[inline]
    pub fn pdb(&self) -> u8 {
        (self.info() >> DB_SHIFT) as u8
    }
    /// Key length in bytes.
    #[inline]
    pub fn key_len(&self) -> usize {
        (self.word(2).load(Ordering::Relaxed) >> 32) as usize
    }
    pub(crate) fn value_cap(&self) -> usize {
        (self.word(2).load(Ordering::Relaxed) & LEN_MASK) as usize
    }
    fn shape(&self) -> Shape {
        let info = self.info();
        Shape::from_parts(
            self.key_len(),
            info & F_KEY_HEAP != 0,
            info & F_VALUE_HEAP != 0,
            self.value_cap(),
            info & F_OBJECT != 0,
        )
    }
    /// Whether the value part is an object cell pointer (fixed at creation).
    #[inline]
    pub fn is_object(&self) -> bool {
        self.info() & F_OBJECT != 0
    }
    /// The object cell pointer word (only for OBJECT records).
    pub fn object_ptr(&self) -> &'a AtomicU64 {
        debug_assert!(self.is_object());
        self.word(self.value_word_index())
    }
    /// Whether the value lives in a heap block.
    #[inline]
    pub fn value_heap(&self) -> bool {
        self.info() & F_VALUE_HEAP != 0
    }
    /// The seqlock version word.
    #[inline]
    pub fn version(&self) -> &'a AtomicU64 {
        self.word(1)
    }
    /// The meta word (length, kind, tombstone, sealed).
    #[inline]
    pub fn meta(&self) -> u64 {
        self.word(3).load(Ordering::Relaxed)
    }
    /// The access-tracking bits (LRU clock or LFU counter).
    #[inline]
    pub fn access(&self) -> u32 {
        ((self.meta() >> ACCESS_SHIFT) & ACCESS_MASK) as u32
    }

    /// Sets the access-tracking bits to `f(old)` with one compare-and-swap of the meta word,
    /// nothing when they would not change. Readers do this without the record's lock: a
    /// concurrent writer's change of the meta word makes the swap fail, and only this access's
    /// tracking is lost, never the writer's change.
    #[inline]
    pub fn touch(&self, f: impl FnOnce(u32) -> u32) {
        let w = self.word(3);
        let meta = w.load(Ordering::Relaxed);
        let old = ((meta >> ACCESS_SHIFT) & ACCESS_MASK) as u32;
        let new = u64::from(f(old)) & ACCESS_MASK;
        if new != u64::from(old) {
            let swapped = (meta & !(ACCESS_MASK << ACCESS_SHIFT)) | new << ACCESS_SHIFT;
            let _ = w.compare_exchange(meta, swapped, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// The expiry.
    #[inline]
    pub fn expire_at(&self) -> u64 {
        self.word(4).load(Ordering::Relaxed)
    }

    /// The key bytes (immutable once published).
    pub fn key(&self) -> &'a [u8] {
        let len = self.key_len();
        // SAFETY: key bytes / the key pointer word were written before publication and are never
        // written again; the inline key lies inside the record; a key block lives until the
        // store drops (module docs), which outlives `'a`.
        unsafe {
            let at = self.base.as_ptr().add(WORDS).cast::<u8>();
            if self.info() & F_KEY_HEAP != 0 {
                let p = self.word(WORDS).load(Ordering::Relaxed) as *const u8;
                std::slice::from_raw_parts(p, len)
            } else {
                std::slice::from_raw_parts(at, len)
            }
        }
    }

    fn value_word_index(&self) -> usize {
        let key_part = if self.info() & F_KEY_HEAP != 0 {
            8
        } else {
            pad8(self.key_len())
        };
        WORDS + key_part / 8
    }

    /// The inline value words (empty for heap values).
    pub fn value_words(&self) -> &'a [AtomicU64] {
        let n = self.value_cap() / 8;
        // SAFETY: the value words lie inside the record, are 8-aligned and only accessed
        // atomically, except by `value_unsynchronized` under its contract.
        unsafe {
            let p = self.base.as_ptr().add(self.value_word_index());
            std::slice::from_raw_parts(p.cast::<AtomicU64>(), n)
        }
    }

    /// The heap value pointer word (only for VALUE_HEAP records).
    pub fn value_ptr(&self) -> &'a AtomicU64 {
        debug_assert!(self.value_heap());
        self.word(self.value_word_index())
    }

    /// The value bytes without the seqlock.
    ///
    /// # Safety
    /// No thread writes this record's value while the returned slice lives: either the caller
    /// holds the record's writer lock, or the record lies below the safe read-only address. And
    /// a heap value must still be owned by the record or be protected by the caller's pin.
    pub unsafe fn value_unsynchronized(&self, meta: u64) -> &'a [u8] {
        let len = (meta & LEN_MASK) as usize;
        if self.value_heap() {
            let p = self.value_ptr().load(Ordering::Relaxed) as *const u8;
            if p.is_null() {
                return &[];
            }
            // SAFETY: caller's contract: the block is alive and immutable, `len` long.
            unsafe { std::slice::from_raw_parts(p, len) }
        } else {
            let words = self.value_words();
            let len = len.min(words.len() * 8);
            // SAFETY: caller's contract: no concurrent writes, so the atomics' bytes can be
            // read as plain bytes; `len` is within the inline capacity.
            unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), len) }
        }
    }

    /// A seqlock-consistent `(meta, expire_at, heap value pointer)`, copying an inline value into
    /// `buf`. A heap value is returned as its pointer (read it while pinned).
    pub fn snapshot(&self, buf: &mut Vec<u8>) -> (u64, u64, u64) {
        let mut step = 0;
        loop {
            if let Some(v) = seqlock::read_begin(self.version()) {
                let meta = self.meta();
                let expire = self.expire_at();
                let ptr = if self.value_heap() {
                    self.value_ptr().load(Ordering::Relaxed)
                } else {
                    let words = self.value_words();
                    // A torn length is thrown away below; clamp so it cannot overrun meanwhile.
                    let len = ((meta & LEN_MASK) as usize).min(words.len() * 8);
                    buf.clear();
                    append_words(words, len, buf);
                    0
                };
                if seqlock::read_validate(self.version(), v) {
                    return (meta, expire, ptr);
                }
            }
            crate::sync::spin_wait(&mut step);
        }
    }

    /// Appends the first `len` bytes of the inline value words to `out` with relaxed atomic
    /// loads (no zero-fill first). Not validated: call between [`seqlock::read_begin`] and
    /// [`seqlock::read_validate`] and throw the bytes away if the validation fails. `len` is
    /// clamped to the inline capacity, so a torn length cannot overrun the record.
    #[inline]
    pub fn append_inline(&self, len: usize, out: &mut Vec<u8>) {
        let words = self.value_words();
        append_words(words, len.min(words.len() * 8), out);
    }

    /// Tries to take the writer lock.
    pub fn try_lock(&self) -> Option<RecordLock<'a>> {
        seqlock::try_lock(self.version()).map(|locked| RecordLock {
            rec: *self,
            locked,
            changed: false,
        })
    }

    /// Writes a new record at this (freshly allocated, unpublished) location. Returns bytes
    /// of heap blocks allocated.
    pub fn init(&self, init: &RecordInit<'_>, shape: Shape) -> u64 {
        let mut heap = 0;
        let mut flags = F_VALID;
        let key_at = WORDS;
        if shape.key_heap {
            flags |= F_KEY_HEAP;
            self.word(key_at)
                .store(heap_block(init.key), Ordering::Relaxed);
            heap += init.key.len() as u64;
        } else {
            // SAFETY: the record is unpublished and ours alone; the key area lies inside it.
            unsafe {
                let dst = self.base.as_ptr().add(key_at).cast::<u8>();
                std::ptr::copy_nonoverlapping(init.key.as_ptr(), dst, init.key.len());
            }
        }
        if shape.value_heap {
            flags |= F_VALUE_HEAP;
        }
        if shape.object {
            flags |= F_OBJECT;
        }
        let key_word = (init.key.len() as u64) << 32 | shape.value_cap as u64;
        self.word(2).store(key_word, Ordering::Relaxed);
        self.word(1).store(0, Ordering::Relaxed);
        self.word(4).store(init.expire_at, Ordering::Relaxed);
        let info = (init.prev & ADDRESS_MASK) | u64::from(init.pdb) << DB_SHIFT | flags;
        self.word(0).store(info, Ordering::Relaxed);
        debug_assert_eq!(self.shape(), shape);
        let meta = if init.tombstone {
            if shape.object {
                self.object_ptr().store(0, Ordering::Relaxed);
            }
            M_TOMBSTONE
        } else if shape.object {
            debug_assert!(init.object != 0 && init.kind.is_object());
            // The cell stays the caller's until the record is published (see `invalidate`).
            self.object_ptr().store(init.object, Ordering::Relaxed);
            (init.kind as u64) << KIND_SHIFT
        } else {
            if shape.value_heap {
                self.value_ptr()
                    .store(heap_block(init.value), Ordering::Relaxed);
                heap += init.value.len() as u64;
            } else {
                seqlock::copy_in(self.value_words(), init.value);
            }
            init.value.len() as u64 | (init.kind as u64) << KIND_SHIFT
        };
        self.word(3).store(meta, Ordering::Relaxed);
        heap
    }

    /// Marks an unpublished record as garbage and frees its heap blocks. Returns bytes freed.
    /// An object cell is *not* freed: it stays with the caller, who may publish it again in
    /// another record.
    pub fn invalidate(&self) -> u64 {
        if self.is_object() {
            self.object_ptr().store(0, Ordering::Relaxed);
        }
        let freed = self.free_blocks().heap;
        self.word(0).fetch_or(F_INVALID, Ordering::Relaxed);
        if self.info() & F_KEY_HEAP != 0 {
            self.word(WORDS).store(0, Ordering::Relaxed);
        }
        if self.value_heap() {
            self.value_ptr().store(0, Ordering::Relaxed);
        }
        freed
    }

    /// Frees the heap blocks and the object cell this record owns (for `invalidate`, evicted
    /// pages and the store's `Drop`). Returns heap-block bytes freed and what the object
    /// measured.
    pub fn free_blocks(&self) -> Freed {
        let info = self.info();
        let mut freed = Freed::default();
        if info & F_KEY_HEAP != 0 {
            let p = self.word(WORDS).load(Ordering::Relaxed);
            if p != 0 {
                // SAFETY: a key block is owned by its record until now (module docs); the
                // caller guarantees no other thread can reach the record.
                unsafe { free_block(p, self.key_len()) };
                freed.heap += self.key_len() as u64;
            }
        }
        let meta = self.meta();
        if info & F_OBJECT != 0 && meta & M_SEALED == 0 {
            let p = self.object_ptr().swap(0, Ordering::Relaxed);
            // SAFETY: an unsealed record with a non-zero cell pointer owns its cell (module
            // docs); the caller guarantees no other thread can reach the record.
            if let Some(cell) = unsafe { ObjectCell::from_raw(p) } {
                // SAFETY: the cell is ours (above) and alive until dropped at the end of this
                // block.
                freed.object = unsafe { object_ref(cell.as_raw()) }.memory_usage() as u64;
            }
        }
        if info & F_VALUE_HEAP != 0 && meta & M_SEALED == 0 {
            let len = (meta & LEN_MASK) as usize;
            let p = self.value_ptr().load(Ordering::Relaxed);
            if p != 0 {
                // SAFETY: an unsealed record with a non-zero pointer owns its block (module docs).
                unsafe { free_block(p, len) };
                freed.heap += len as u64;
            }
        }
        freed
    }

    /// Total bytes of this record in the log.
    pub fn size(&self) -> usize {
        self.shape().size
    }
}

/// Appends the first `len` bytes of `words` (at most `words.len() * 8`) to `out`, one relaxed
/// atomic load per word, written straight into `out`'s spare capacity: the seqlocked copy
/// without `resize`'s zero-fill.
#[inline]
pub fn append_words(words: &[AtomicU64], len: usize, out: &mut Vec<u8>) {
    assert!(len <= words.len() * 8, "copy past the value words");
    out.reserve(len);
    let full = len / 8;
    let tail = len % 8;
    let spare = out.spare_capacity_mut();
    // SAFETY: `reserve` made room for `len` bytes past `out.len()`, so `spare` holds at least
    // `len` bytes. `MaybeUninit<u8>` has the layout of `u8`, so writing the bytes through a
    // `*mut u8` to it initialises them; each word is copied from a local `[u8; 8]` (not the
    // record's memory, which is only read atomically), and writes `8 * i .. 8 * i + 8` (then
    // the `tail` bytes after the last full word) stay below `len`.
    unsafe {
        let dst = spare.as_mut_ptr().cast::<u8>();
        for (i, word) in words[..full].iter().enumerate() {
            let bytes = word.load(Ordering::Relaxed).to_ne_bytes();
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.add(8 * i), 8);
        }
        if tail != 0 {
            let bytes = words[full].load(Ordering::Relaxed).to_ne_bytes();
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.add(8 * full), tail);
        }
    }
    // SAFETY: the `len` bytes after the old length were initialised just above, within the
    // capacity `reserve` guaranteed.
    unsafe { out.set_len(out.len() + len) };
}

/// What a new record holds.
#[derive(Debug, Clone, Copy)]
pub struct RecordInit<'v> {
    /// Previous chain head.
    pub prev: u64,
    /// Physical database.
    pub pdb: u8,
    /// Key bytes.
    pub key: &'v [u8],
    /// Value bytes (ignored for tombstones).
    pub value: &'v [u8],
    /// Value kind.
    pub kind: ValueKind,
    /// Expiry.
    pub expire_at: u64,
    /// A deletion marker.
    pub tombstone: bool,
    /// An object cell pointer (from [`ObjectCell::as_raw`]) for an object record, else 0. The
    /// record owns the cell once published; the caller keeps it until then.
    pub object: u64,
}

/// Decodes a meta word.
#[derive(Debug, Clone, Copy)]
pub struct Meta(pub u64);

impl Meta {
    /// Value length.
    pub fn len(self) -> usize {
        (self.0 & LEN_MASK) as usize
    }
    /// Whether the length is zero.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
    /// Value kind.
    pub fn kind(self) -> ValueKind {
        ValueKind::from_raw((self.0 >> KIND_SHIFT) as u8)
    }
    /// Deletion marker.
    pub fn tombstone(self) -> bool {
        self.0 & M_TOMBSTONE != 0
    }
    /// Superseded.
    pub fn sealed(self) -> bool {
        self.0 & M_SEALED != 0
    }
}

#[cfg(all(test, not(loom)))]
mod append_tests {
    use super::*;

    #[test]
    fn append_words_copies_every_length_after_existing_bytes() {
        let src: Vec<u8> = (1..=40).collect();
        let words: Vec<AtomicU64> = src
            .chunks(8)
            .map(|c| AtomicU64::new(u64::from_ne_bytes(c.try_into().unwrap())))
            .collect();
        for len in 0..=src.len() {
            // Both with no spare capacity (reserve grows) and with plenty.
            for mut out in [b"ab".to_vec(), Vec::with_capacity(64)] {
                let before = out.clone();
                append_words(&words, len, &mut out);
                assert_eq!(out[..before.len()], before[..]);
                assert_eq!(out[before.len()..], src[..len]);
            }
        }
    }

    #[test]
    #[should_panic(expected = "copy past the value words")]
    fn append_words_refuses_to_overrun() {
        let words = [AtomicU64::new(0)];
        append_words(&words, 9, &mut Vec::new());
    }
}
