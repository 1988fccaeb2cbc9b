//! The multi-key gate: an exclusive holder never runs while another session is inside its shared
//! section. The protected data is a `loom::cell::UnsafeCell`, so any overlap is a data race that
//! loom reports.
#![cfg(loom)]

use ferrite_hybridlog::gate::Gate;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

struct World {
    gate: Gate,
    /// Two words an exclusive holder updates together (like MSET's keys).
    data: UnsafeCell<[u64; 2]>,
}

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b
}

#[test]
fn exclusive_excludes_shared() {
    builder().check(|| {
        let w = Arc::new(World {
            gate: Gate::new(2),
            data: UnsafeCell::new([0, 0]),
        });
        let shared = {
            let w = w.clone();
            thread::spawn(move || {
                let me = w.gate.register().unwrap();
                w.gate.enter(me);
                let [a, b] = w.data.with(|p| {
                    // SAFETY: (model) inside the shared section; loom checks exclusion.
                    unsafe { *p }
                });
                w.gate.leave(me);
                w.gate.deregister(me);
                assert_eq!(a, b, "saw half of an exclusive update");
            })
        };
        let exclusive = {
            let w = w.clone();
            thread::spawn(move || {
                let me = w.gate.register().unwrap();
                w.gate.lock_exclusive(Some(me));
                w.data.with_mut(|p| {
                    // SAFETY: (model) exclusive; loom checks exclusion.
                    unsafe { *p = [1, 1] }
                });
                w.gate.unlock_exclusive();
                w.gate.deregister(me);
            })
        };
        shared.join().unwrap();
        exclusive.join().unwrap();
    });
}

#[test]
fn exclusive_holders_exclude_each_other() {
    builder().check(|| {
        let w = Arc::new(World {
            gate: Gate::new(2),
            data: UnsafeCell::new([0, 0]),
        });
        let holders: Vec<_> = (0..2)
            .map(|_| {
                let w = w.clone();
                thread::spawn(move || {
                    w.gate.lock_exclusive(None);
                    w.data.with_mut(|p| {
                        // SAFETY: (model) exclusive; loom checks exclusion.
                        unsafe { (*p)[0] += 1 }
                    });
                    w.gate.unlock_exclusive();
                })
            })
            .collect();
        for h in holders {
            h.join().unwrap();
        }
        assert_eq!(
            w.data.with(|p| {
                // SAFETY: (model) both threads are done.
                unsafe { (*p)[0] }
            }),
            2
        );
    });
}

/// A session that may give up waiting (a thread answering BUSY while a script runs) reads the
/// data only when it entered, and then never during an exclusive update.
#[test]
fn enter_unless_enters_only_when_exclusion_holds() {
    builder().check(|| {
        let w = Arc::new(World {
            gate: Gate::new(2),
            data: UnsafeCell::new([0, 0]),
        });
        let busy = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let shared = {
            let (w, busy) = (w.clone(), busy.clone());
            thread::spawn(move || {
                let me = w.gate.register().unwrap();
                let entered = w
                    .gate
                    .enter_unless(me, || busy.load(loom::sync::atomic::Ordering::Relaxed));
                if entered {
                    let [a, b] = w.data.with(|p| {
                        // SAFETY: (model) inside the shared section; loom checks exclusion.
                        unsafe { *p }
                    });
                    w.gate.leave(me);
                    assert_eq!(a, b, "saw half of an exclusive update");
                }
                w.gate.deregister(me);
            })
        };
        let exclusive = {
            let (w, busy) = (w.clone(), busy.clone());
            thread::spawn(move || {
                let me = w.gate.register().unwrap();
                w.gate.lock_exclusive(Some(me));
                busy.store(true, loom::sync::atomic::Ordering::Relaxed);
                w.data.with_mut(|p| {
                    // SAFETY: (model) exclusive; loom checks exclusion.
                    unsafe { *p = [1, 1] }
                });
                busy.store(false, loom::sync::atomic::Ordering::Relaxed);
                w.gate.unlock_exclusive();
                w.gate.deregister(me);
            })
        };
        shared.join().unwrap();
        exclusive.join().unwrap();
    });
}
