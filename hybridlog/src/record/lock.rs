//! The writer side of a record: in-place updates, tombstones and sealing, under the seqlock.

use crossbeam_epoch::Guard;

use super::{
    KIND_SHIFT, M_SEALED, M_TOMBSTONE, Meta, ObjectCell, Rec, heap_block, pad8, retire_block,
    retire_object,
};
use crate::ValueKind;
use crate::seqlock;
use crate::sync::Ordering;

/// What a record gave up: bytes of heap blocks, and the measure (`memory_usage`) of an object.
/// The store takes both off its counters and off the record's page (see `Store::release`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freed {
    /// Bytes of heap blocks (key or value).
    pub heap: u64,
    /// `StoreObject::memory_usage` of the object cell given up.
    pub object: u64,
}

/// The writer side of a record's seqlock; released on drop (also on unwind, so a panicking
/// callback cannot wedge the key).
#[derive(Debug)]
pub struct RecordLock<'a> {
    pub(super) rec: Rec<'a>,
    pub(super) locked: u64,
    pub(super) changed: bool,
}

impl<'a> RecordLock<'a> {
    /// The locked record.
    pub fn rec(&self) -> Rec<'a> {
        self.rec
    }

    /// Overwrites the value in place. The caller checked [`fits`](Self::fits). Returns the heap
    /// byte delta (new block minus retired block).
    pub fn put(&mut self, value: &[u8], kind: ValueKind, expire_at: u64, guard: &Guard) -> i64 {
        debug_assert!(!self.rec.is_object());
        debug_assert!(self.rec.value_heap() || value.len() <= self.rec.value_cap());
        self.changed = true;
        let r = self.rec;
        let mut delta = 0;
        if r.value_heap() {
            let old = r.value_ptr().swap(heap_block(value), Ordering::Relaxed);
            if old != 0 {
                let old_len = Meta(r.meta()).len();
                retire_block(guard, old, old_len);
                delta -= old_len as i64;
            }
            delta += value.len() as i64;
        } else {
            seqlock::copy_in(r.value_words(), value);
        }
        r.word(3).store(
            value.len() as u64 | (kind as u64) << KIND_SHIFT,
            Ordering::Relaxed,
        );
        r.word(4).store(expire_at, Ordering::Relaxed);
        delta
    }

    /// Whether a value of `len` bytes can be written in place (`inline_limit` decides whether a
    /// value is large enough to stay in a heap block).
    pub fn fits(&self, len: usize, inline_limit: usize) -> bool {
        if self.rec.is_object() {
            false
        } else if self.rec.value_heap() {
            pad8(len) > inline_limit
        } else {
            len <= self.rec.value_cap()
        }
    }

    /// Replaces the object of an OBJECT record in place (the record's shape holds a cell), retiring
    /// the old one. Returns what the old one measured.
    pub fn put_object(
        &mut self,
        cell: ObjectCell,
        kind: ValueKind,
        expire_at: u64,
        guard: &Guard,
    ) -> Freed {
        debug_assert!(self.rec.is_object() && kind.is_object());
        self.changed = true;
        let r = self.rec;
        let old = r.object_ptr().swap(cell.into_raw(), Ordering::Relaxed);
        // SAFETY: the unsealed record owned the old cell (0 after an in-place tombstone) and has
        // just given it up under its lock.
        let object = retire_measured(guard, unsafe { ObjectCell::from_raw(old) });
        r.word(3)
            .store((kind as u64) << KIND_SHIFT, Ordering::Relaxed);
        r.word(4).store(expire_at, Ordering::Relaxed);
        Freed { heap: 0, object }
    }

    /// Records that the object was mutated in place (readers of a snapshot retry).
    pub fn mark_changed(&mut self) {
        self.changed = true;
    }

    /// Changes only the expiry in place.
    pub fn set_expiry(&mut self, expire_at: u64) {
        self.changed = true;
        self.rec.word(4).store(expire_at, Ordering::Relaxed);
    }

    /// Turns the record into a tombstone in place, retiring a heap value or the object.
    /// Returns what was retired.
    pub fn tombstone(&mut self, guard: &Guard) -> Freed {
        self.changed = true;
        let r = self.rec;
        let mut freed = Freed::default();
        if r.is_object() {
            let old = r.object_ptr().swap(0, Ordering::Relaxed);
            // SAFETY: the unsealed record owned its cell and gives it up under its lock.
            freed.object = retire_measured(guard, unsafe { ObjectCell::from_raw(old) });
        }
        if r.value_heap() {
            let old = r.value_ptr().swap(0, Ordering::Relaxed);
            let len = Meta(r.meta()).len();
            if old != 0 {
                retire_block(guard, old, len);
                freed.heap = len as u64;
            }
        }
        r.word(3).store(M_TOMBSTONE, Ordering::Relaxed);
        r.word(4).store(0, Ordering::Relaxed);
        freed
    }

    /// Marks the record superseded after its object cell moved to the record that supersedes it
    /// (which owns it now): nothing is retired. (The caller takes the object's measure off this
    /// record's page, measured before the new record was published: after that, the new
    /// record's writers may change it.)
    pub fn seal_moved(&mut self) {
        self.changed = true;
        let r = self.rec;
        let meta = r.meta();
        debug_assert!(meta & M_SEALED == 0 && r.is_object());
        r.word(3).store(meta | M_SEALED, Ordering::Relaxed);
    }

    /// Marks the record superseded, retiring a heap value or the object. Returns what was
    /// retired (nothing for a private copy read back from disk).
    pub fn seal(&mut self, guard: &Guard) -> Freed {
        self.changed = true;
        let r = self.rec;
        let meta = r.meta();
        debug_assert!(meta & M_SEALED == 0);
        if r.info() & super::F_COPY != 0 {
            // A private copy read back from disk: its buffers belong to the copy itself.
            r.word(3).store(meta | M_SEALED, Ordering::Relaxed);
            return Freed::default();
        }
        let mut freed = Freed::default();
        if r.is_object() {
            // The pointer word stays: a pinned lock-free reader of a record below the safe
            // read-only address may still load it; the cell is dropped after such readers unpin.
            let p = r.object_ptr().load(Ordering::Relaxed);
            // SAFETY: the unsealed record owned its cell; sealing gives it up (module docs).
            freed.object = retire_measured(guard, unsafe { ObjectCell::from_raw(p) });
        }
        if r.value_heap() {
            let p = r.value_ptr().load(Ordering::Relaxed);
            if p != 0 {
                retire_block(guard, p, Meta(meta).len());
                freed.heap = Meta(meta).len() as u64;
            }
        }
        r.word(3).store(meta | M_SEALED, Ordering::Relaxed);
        freed
    }
}

/// Retires a cell given up under its record's lock, returning what its object measures (taken
/// now: nobody mutates a retired object).
fn retire_measured(guard: &Guard, cell: Option<ObjectCell>) -> u64 {
    let Some(cell) = cell else { return 0 };
    // SAFETY: we own the live cell; pinned lock-free readers may still share the object (below
    // the safe read-only address), so it is only read, through a shared reference, as they do.
    let bytes = unsafe { super::object_ref(cell.as_raw()) }.memory_usage() as u64;
    retire_object(guard, Some(cell));
    bytes
}

impl Drop for RecordLock<'_> {
    fn drop(&mut self) {
        seqlock::unlock(self.rec.version(), self.locked, self.changed);
    }
}
