//! The record seqlock: in-place writers exclude each other, readers never accept a torn copy.
//!
//! Every participant runs on a spawned thread: with the reader on the model's main thread,
//! loom 0.7 explored a single execution of this model (and missed a deliberately broken
//! validation), while spawned readers get the full exploration.
#![cfg(loom)]

use ferrite_hybridlog::seqlock::SeqLockCell;
use loom::sync::Arc;
use loom::thread;

#[test]
fn reader_sees_whole_updates() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let cell = Arc::new(SeqLockCell::<2>::new());
        let writer = {
            let cell = cell.clone();
            thread::spawn(move || {
                cell.update(|[a, b]| [a + 1, b + 1]);
                cell.update(|[a, b]| [a + 1, b + 1]);
            })
        };
        let reader = {
            let cell = cell.clone();
            thread::spawn(move || {
                let [a, b] = cell.read();
                assert_eq!(a, b, "torn read");
                assert!(a <= 2);
            })
        };
        reader.join().unwrap();
        writer.join().unwrap();
        assert_eq!(cell.read(), [2, 2]);
    });
}

#[test]
fn writers_never_lose_updates() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let cell = Arc::new(SeqLockCell::<2>::new());
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let cell = cell.clone();
                thread::spawn(move || cell.update(|[a, b]| [a + 1, b + 10]))
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(cell.read(), [2, 20]);
    });
}
