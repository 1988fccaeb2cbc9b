//! The multi-key gate: many sessions in a cheap shared section, one at a time exclusive.
//!
//! Each session owns one cache-padded `inside` flag. Entering stores it, issues a SeqCst fence and
//! then reads the global `exclusive` flag; taking the gate exclusively sets `exclusive`, fences,
//! and then waits for every other `inside` flag to clear. This is Dekker's pattern: with a SeqCst
//! fence between each side's store and its load, at least one side sees the other, so an
//! exclusive holder never runs while another session is inside, and the shared path costs a
//! store to a line the session owns plus a fence, with no shared read-modify-write.
//!
//! Exclusive holders exclude each other with a CAS on `exclusive` (writer against writer only).

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicBool, AtomicUsize, Ordering, fence, spin_wait};

/// The most sessions that can exist at once in a store.
pub const MAX_SESSIONS: usize = 1024;

#[derive(Debug)]
struct Slot {
    /// Whether a session owns this slot.
    used: AtomicBool,
    /// Whether the owning session is in its shared section.
    inside: AtomicBool,
}

/// The gate. Slots are registered once per session and identified by index.
#[derive(Debug)]
pub struct Gate {
    exclusive: CachePadded<AtomicBool>,
    /// One past the highest slot ever registered: the exclusive side scans only this far.
    high_water: CachePadded<AtomicUsize>,
    slots: Box<[CachePadded<Slot>]>,
}

impl Gate {
    /// A gate with room for `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a gate needs at least one slot");
        Self {
            exclusive: CachePadded::new(AtomicBool::new(false)),
            high_water: CachePadded::new(AtomicUsize::new(0)),
            slots: (0..capacity)
                .map(|_| {
                    CachePadded::new(Slot {
                        used: AtomicBool::new(false),
                        inside: AtomicBool::new(false),
                    })
                })
                .collect(),
        }
    }

    /// Claims a free slot, or `None` when all `capacity` are taken.
    pub fn register(&self) -> Option<usize> {
        let slot = self.slots.iter().position(|s| {
            s.used
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })?;
        self.high_water.fetch_max(slot + 1, Ordering::AcqRel);
        debug_assert!(!self.slots[slot].inside.load(Ordering::Relaxed));
        Some(slot)
    }

    /// Returns a slot; its session must be outside the shared section.
    pub fn deregister(&self, slot: usize) {
        debug_assert!(!self.slots[slot].inside.load(Ordering::Relaxed));
        self.slots[slot].used.store(false, Ordering::Release);
    }

    /// Enters the shared section, waiting while an exclusive holder runs.
    #[inline]
    pub fn enter(&self, slot: usize) {
        self.enter_unless(slot, || false);
    }

    /// Enters the shared section like [`enter`](Self::enter), but stops waiting for an
    /// exclusive holder as soon as `give_up` says so: returns whether it entered. Lets a thread
    /// serve its clients (BUSY replies) while a long exclusive holder (a script) runs.
    #[inline]
    pub fn enter_unless(&self, slot: usize, give_up: impl Fn() -> bool) -> bool {
        let inside = &self.slots[slot].inside;
        debug_assert!(!inside.load(Ordering::Relaxed), "enter while inside");
        let mut step = 0;
        loop {
            inside.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            // Acquire: an exclusive holder's writes happen-before our section.
            if !self.exclusive.load(Ordering::Acquire) {
                return true;
            }
            inside.store(false, Ordering::Release);
            while self.exclusive.load(Ordering::Acquire) {
                if give_up() {
                    return false;
                }
                spin_wait(&mut step);
            }
        }
    }

    /// Leaves the shared section.
    pub fn leave(&self, slot: usize) {
        debug_assert!(
            self.slots[slot].inside.load(Ordering::Relaxed),
            "leave while outside"
        );
        // Release: our section's writes happen-before the next exclusive holder.
        self.slots[slot].inside.store(false, Ordering::Release);
    }

    /// Takes the gate exclusively: returns once no session other than `me` is inside.
    pub fn lock_exclusive(&self, me: Option<usize>) {
        let mut step = 0;
        while self
            .exclusive
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spin_wait(&mut step);
        }
        fence(Ordering::SeqCst);
        // A session registering after this load starts outside and will see `exclusive` on
        // its first `enter`, so scanning to the high-water mark read now is enough.
        let n = self.high_water.load(Ordering::Acquire);
        for (i, s) in self.slots[..n].iter().enumerate() {
            if Some(i) == me {
                continue;
            }
            while s.inside.load(Ordering::Acquire) {
                spin_wait(&mut step);
            }
        }
    }

    /// Releases the gate taken by [`lock_exclusive`](Self::lock_exclusive).
    pub fn unlock_exclusive(&self) {
        debug_assert!(self.exclusive.load(Ordering::Relaxed));
        self.exclusive.store(false, Ordering::Release);
    }

    /// Whether an exclusive holder is running or waiting (a hint for long shared sections).
    pub fn exclusive_pending(&self) -> bool {
        self.exclusive.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn slots_are_reused_and_bounded() {
        let g = Gate::new(2);
        let a = g.register().unwrap();
        let b = g.register().unwrap();
        assert_ne!(a, b);
        assert!(g.register().is_none());
        g.deregister(a);
        assert_eq!(g.register(), Some(a));
    }

    #[test]
    fn exclusive_alone_and_with_self_inside_does_not_deadlock() {
        let g = Gate::new(4);
        let me = g.register().unwrap();
        g.lock_exclusive(Some(me));
        g.unlock_exclusive();
        g.enter(me);
        g.lock_exclusive(Some(me));
        g.unlock_exclusive();
        g.leave(me);
    }

    #[test]
    fn enter_unless_gives_up_only_while_an_exclusive_holder_runs() {
        let g = Gate::new(4);
        let (me, other) = (g.register().unwrap(), g.register().unwrap());
        assert!(g.enter_unless(me, || true), "a free gate is entered");
        g.leave(me);
        g.lock_exclusive(Some(other));
        assert!(!g.enter_unless(me, || true));
        g.unlock_exclusive();
        assert!(g.enter_unless(me, || false));
        g.leave(me);
    }

    #[test]
    fn exclusive_never_overlaps_shared() {
        let g = Arc::new(Gate::new(8));
        // Shared sections add 1 and then remove it; exclusive sees 0 and owns the counter.
        let inside = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..3)
            .map(|t| {
                let (g, inside) = (g.clone(), inside.clone());
                std::thread::spawn(move || {
                    let me = g.register().unwrap();
                    for i in 0..2_000 {
                        if (i + t) % 50 == 0 {
                            g.lock_exclusive(Some(me));
                            assert_eq!(inside.swap(1 << 32, Ordering::SeqCst), 0);
                            assert_eq!(inside.swap(0, Ordering::SeqCst), 1 << 32);
                            g.unlock_exclusive();
                        } else {
                            g.enter(me);
                            let seen = inside.fetch_add(1, Ordering::SeqCst);
                            assert!(seen < 1 << 32, "shared section overlapped exclusive");
                            inside.fetch_sub(1, Ordering::SeqCst);
                            g.leave(me);
                        }
                    }
                    g.deregister(me);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
