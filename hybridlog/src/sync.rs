//! The one file that decides which atomics the crate uses.
//!
//! Protocol cores that loom model-checks (the index's [`Bucket`](crate::index::Bucket) protocol,
//! the [`Gate`](crate::gate::Gate), the [`SeqLockCell`](crate::seqlock::SeqLockCell)) use the
//! types re-exported at the top of this module: loom's under `--cfg loom`, std's otherwise.
//!
//! [`raw`] is different on purpose: it names the atomics that are overlaid on raw log-page memory
//! (record headers and value words) with `AtomicU64::from_ptr`. loom cannot model an atomic that
//! lives inside a byte buffer it did not create, so those stay std atomics in every build; the
//! protocol they run (the seqlock) is generic over [`Word`](crate::seqlock::Word) and is
//! model-checked through `SeqLockCell` instead.

#[cfg(loom)]
pub use loom::sync::Mutex;
#[cfg(loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};

#[cfg(not(loom))]
pub use std::sync::Mutex;
#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};

/// Atomics overlaid on raw log memory; always std (see the module docs).
pub mod raw {
    pub use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU8, AtomicU64};
}

/// One step of a wait loop. Under loom it yields so the model checker schedules the thread
/// being waited for; natively it is a pause instruction, and every 64th step an OS yield so
/// that a waiter on an oversubscribed machine lets the holder run.
#[inline]
pub fn spin_wait(step: &mut u32) {
    *step = step.wrapping_add(1);
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    {
        if (*step).is_multiple_of(64) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}
