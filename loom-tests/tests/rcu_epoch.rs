//! Read-copy-update under epoch protection, the way the store replaces a record: the writer
//! builds a new record, publishes it by CASing the index entry, and frees the old one only after
//! a grace period in which every reader pinned before the swap has unpinned. Readers pin, load
//! the entry and read the record without any lock.
//!
//! crossbeam-epoch itself is not loom-modelled; the grace period here is its essence (a pinned
//! flag per reader, a SeqCst fence on each side). Record contents are a `loom::cell::UnsafeCell`,
//! so a free that overlapped a read would be reported by loom as a data race.
#![cfg(loom)]

use ferrite_hybridlog::index::HashIndex;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering, fence};
use loom::thread;

const TAG: u64 = 11 << 50;

struct World {
    index: HashIndex,
    /// Two record slots at "addresses" 64 and 128.
    records: [UnsafeCell<[u64; 2]>; 2],
    reader_pinned: AtomicBool,
}

fn slot(address: u64) -> usize {
    (address / 64 - 1) as usize
}

#[test]
fn readers_see_old_or_new_never_freed() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let w = Arc::new(World {
            index: HashIndex::new(1, 1),
            records: [UnsafeCell::new([1, 1]), UnsafeCell::new([0, 0])],
            reader_pinned: AtomicBool::new(false),
        });
        // The old record is published before the threads start.
        assert!(w.index.find_or_create(TAG).try_swap(64));

        let reader = {
            let w = w.clone();
            thread::spawn(move || {
                w.reader_pinned.store(true, Ordering::Relaxed);
                fence(Ordering::SeqCst);
                let a = w.index.find(TAG).unwrap().address();
                let v = w.records[slot(a)].with(|p| {
                    // SAFETY: (model) protected by the pin; loom checks it.
                    unsafe { *p }
                });
                w.reader_pinned.store(false, Ordering::Release);
                v
            })
        };

        // Writer: copy, publish, wait for the grace period, free.
        let writer = {
            let w = w.clone();
            thread::spawn(move || {
                let mut entry = w.index.find(TAG).unwrap();
                let old = entry.address();
                let copy = w.records[slot(old)].with(|p| {
                    // SAFETY: (model) the old slot is only freed by this thread, later.
                    unsafe { *p }
                });
                w.records[slot(128)].with_mut(|p| {
                    // SAFETY: (model) the new slot is unpublished, ours alone.
                    unsafe { *p = [copy[0] + 1, copy[1] + 1] }
                });
                assert!(entry.try_swap(128));
                fence(Ordering::SeqCst);
                while w.reader_pinned.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                w.records[slot(old)].with_mut(|p| {
                    // SAFETY: (model) after the grace period nobody still reads the old slot.
                    unsafe { *p = [u64::MAX, u64::MAX] }
                });
            })
        };
        writer.join().unwrap();
        let v = reader.join().unwrap();
        assert!(v == [1, 1] || v == [2, 2], "torn or freed read {v:?}");
    });
}
