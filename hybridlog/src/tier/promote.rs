//! Copying records read back from disk to the tail (FASTER's `CopyReadsToTail`), so that a key
//! that is read again is served from memory.
//!
//! After a read finds its key's live record below the head (a private copy a walk rebuilt,
//! see `disk_record`), the record is appended at the tail, with its value, kind, expiry and
//! access bits, and the key's index entry is CASed to it from the value it has now, provided
//! the entry still leads, through memory, to the very walk that found the record. Any change
//! since (a writer of the key, or of another key on the chain) fails the CAS, and the copy is
//! dropped: nothing is retried, the next read tries again. The copy is not a write: it takes
//! no commit number (so nothing goes to the AOF), and the key and expiry counts are unchanged.
//!
//! It never does I/O and never waits: the walk's result must still be in this thread's cache
//! of finished walks, and while the flusher is behind (writers would wait for it) nothing is
//! promoted. The memory budget applies as to any append: the copy may push older pages out.
//! String values over an eighth of the memory budget are not copied back. Bulk passes over
//! the keyspace (RDB save, AOF rewrite) read with promotion off
//! (`Session::without_copying_reads`).

use std::cell::Cell;

use crossbeam_epoch::Guard;

use super::TierStats;
use super::disk_record::cached;
use crate::record::{Meta, ObjectCell, Rec, RecordInit, object_ref};
use crate::store::Store;
use crate::sync::Ordering;

/// Values over this fraction of the memory budget are not copied back.
const MAX_SHARE: u64 = 8;

thread_local! {
    /// Set while this thread reads for a bulk pass over the keyspace (RDB save, AOF rewrite):
    /// copying every record it reads would push the hot set out of memory.
    static SUPPRESSED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with promotion off on this thread (restored afterwards, even if `f` unwinds).
pub(crate) fn without<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the previous setting.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SUPPRESSED.set(self.0);
        }
    }
    let _restore = Restore(SUPPRESSED.replace(true));
    f()
}

/// Copies `rec`, the live (unexpired) newest record of its key, read back from disk, to the
/// tail. `hash` is its key's hash; the caller has been pinned since before it loaded the index
/// entry that led to `rec`.
pub(crate) fn promote(s: &Store, g: &Guard, hash: u64, rec: Rec<'_>) {
    let Some(tier) = s.tier.as_ref() else { return };
    if !s.copy_reads_to_tail || SUPPRESSED.get() || s.flush_is_behind() {
        return;
    }
    let meta = Meta(rec.meta());
    if meta.tombstone() || meta.sealed() {
        return;
    }
    let (pdb, key) = (rec.pdb(), rec.key());
    let Some(mut entry) = s.index.find(hash) else {
        return;
    };
    // The entry must still lead to `rec`: no newer record of the key in memory, and the walk
    // from the chain's first address on disk is the finished one that found `rec` (a walk
    // not in the cache would be a read: give up rather than do it).
    let Some(from) = s.disk_start(entry.address(), pdb, key) else {
        return;
    };
    match cached(from, pdb, key) {
        Some(Some(found)) if found.address() == rec.address() => {}
        _ => return,
    }
    let mut cell = None;
    let object = if rec.is_object() {
        let ptr = rec.object_ptr().load(Ordering::Relaxed);
        if ptr == 0 {
            return;
        }
        // SAFETY: a copy read back from disk owns its object until this thread's cache of
        // finished walks is released (between commands, not before we return), and nothing
        // mutates it (writers below the read-only address clone it first).
        let original = unsafe { object_ref(ptr) };
        cell.insert(ObjectCell::new(original.clone_box())).as_raw()
    } else {
        0
    };
    let value: &[u8] = if object != 0 {
        &[]
    } else {
        // SAFETY: a private copy read back from disk: nobody writes it, and it owns its value
        // buffer until this thread's cache is released.
        unsafe { rec.value_unsynchronized(meta.0) }
    };
    // A value that is a large share of the memory budget would push much of the hot set out
    // for one key: it stays on disk. (An object's size is not known without measuring it.)
    let budget = s.log.memory_pages() << s.log.page_bits();
    if value.len() as u64 > budget / MAX_SHARE {
        return;
    }
    let new = s.append(
        g,
        &RecordInit {
            prev: entry.address(),
            pdb,
            key,
            value,
            kind: meta.kind(),
            expire_at: rec.expire_at(),
            tombstone: false,
            object,
        },
    );
    // Unpublished: plain stores. The record keeps its history, and this read is an access.
    let bits = rec.access();
    new.touch(|_| bits);
    s.access.touch(new);
    if entry.try_swap(new.address()) {
        // The published record owns the cell now.
        cell.map(ObjectCell::into_raw);
        s.count_bytes(new.size() as i64 - rec.size() as i64);
        TierStats::bump(&tier.stats.records_promoted);
    } else {
        s.discard(new);
    }
}
