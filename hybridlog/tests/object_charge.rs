//! What collection objects cost is followed through every change: counted in the dataset
//! (`maxmemory`) and on their record's page (the memory budget) when a record gets one,
//! adjusted when it grows or shrinks in place, taken off when the record gives it up (sealed,
//! tombstoned, replaced, a lost race) or its page is evicted. After every workload the
//! running count equals the objects of the live in-memory records measured one by one.

mod common;

use std::sync::Arc;

use common::{Bag, Dir, bag, set, small, tiered_store};
use ferrite_hybridlog::{ObjectWrite, Session, Store, StoreConfig, Value, ValueMut};

/// Appends `n` numbers to the bag at `key` (creating it), in place where the record allows.
fn push(s: &mut Session, key: &[u8], n: u64) -> usize {
    s.rmw_value(0, key, 0, |e| match e {
        None => ObjectWrite::Put {
            object: Box::new(Bag((0..n).collect())),
            expire_at: 0,
            result: n as usize,
        },
        Some(e) => match e.value {
            ValueMut::Object(o) => {
                let b = &mut o.as_any_mut().downcast_mut::<Bag>().unwrap().0;
                let at = b.len() as u64;
                b.extend(at..at + n);
                ObjectWrite::Updated(b.len())
            }
            ValueMut::String(_) => panic!("a string"),
        },
    })
}

/// Removes every number from the bag at `key` and shrinks it in place, keeping the key.
fn shrink(s: &mut Session, key: &[u8]) {
    s.rmw_value(0, key, 0, |e| match e.map(|e| e.value) {
        Some(ValueMut::Object(o)) => {
            let b = &mut o.as_any_mut().downcast_mut::<Bag>().unwrap().0;
            b.truncate(1);
            b.shrink_to_fit();
            ObjectWrite::Updated(())
        }
        _ => panic!("no bag"),
    });
}

/// Empties the bag (in place) and deletes the key, as a command that pops the last element.
fn empty_and_delete(s: &mut Session, key: &[u8]) {
    s.rmw_value(0, key, 0, |e| match e.map(|e| e.value) {
        Some(ValueMut::Object(o)) => {
            let b = &mut o.as_any_mut().downcast_mut::<Bag>().unwrap().0;
            b.clear();
            ObjectWrite::Delete(())
        }
        _ => panic!("no bag"),
    });
}

/// What the bag at `key` measures in place (a copy read out would have its own capacity).
fn measure(s: &mut Session, key: &[u8]) -> u64 {
    s.read_value(0, key, 0, |e| match e.value {
        Value::Object(o) => o.memory_usage() as u64,
        Value::String(_) => panic!("a string"),
    })
    .unwrap()
}

/// The running count against a recount of the live objects in memory.
fn check(store: &Store) {
    // SAFETY: the tests call this with no other session writing.
    unsafe { store.check_object_bytes() }.unwrap();
}

fn settle_epoch(s: &mut Session) {
    for _ in 0..200 {
        s.collect_garbage();
    }
}

#[test]
fn in_place_changes_follow_the_dataset() {
    let store = small(64);
    let mut s = store.session();
    assert_eq!(store.object_memory_bytes(), 0);
    push(&mut s, b"a", 1);
    let one = store.object_memory_bytes();
    assert_eq!(one, 8, "a bag of one number measures 8 bytes");
    let tail = store.stats().tail_address;
    let dataset = store.dataset_bytes();
    push(&mut s, b"a", 999);
    assert_eq!(store.stats().tail_address, tail, "grown in place");
    let grown = measure(&mut s, b"a");
    assert!(grown >= 8000);
    assert_eq!(store.object_memory_bytes(), grown);
    assert_eq!(store.dataset_bytes(), dataset + grown - one);
    check(&store);
    // Shrinking in place gives it back.
    shrink(&mut s, b"a");
    assert_eq!(store.object_memory_bytes(), 8);
    // Replaced in place (PutObject on an object record in the mutable region).
    s.upsert_object(0, b"a", Box::new(Bag(vec![1; 100])), 0);
    assert_eq!(store.stats().tail_address, tail);
    assert_eq!(store.object_memory_bytes(), 800);
    check(&store);
    // Emptied in place, then deleted: taken off at the size it shrank to.
    push(&mut s, b"b", 500);
    empty_and_delete(&mut s, b"a");
    assert_eq!(store.object_memory_bytes(), 500 * 8);
    assert!(s.delete(0, b"b", 0));
    assert_eq!(store.object_memory_bytes(), 0);
    check(&store);
    // A string overwriting a bag gives the bag up too.
    push(&mut s, b"c", 10);
    set(&mut s, 0, b"c", b"now a string");
    assert_eq!(store.object_memory_bytes(), 0);
    check(&store);
}

#[test]
fn read_copy_update_moves_the_count_to_the_copy() {
    let store = small(256);
    let mut s = store.session();
    let keys: Vec<Vec<u8>> = (0..40).map(|i| format!("bag{i}").into_bytes()).collect();
    for (round, k) in (0..6).flat_map(|r| keys.iter().map(move |k| (r, k))) {
        push(&mut s, k, 1 + round * 7);
        if round % 2 == 1 {
            // Noise moves the read-only address over the bags: the next push copies them.
            for i in 0..50 {
                set(
                    &mut s,
                    1,
                    format!("noise{round}-{i}-{k:?}").as_bytes(),
                    &[b'x'; 100],
                );
            }
        }
    }
    settle_epoch(&mut s);
    let want: u64 = keys.iter().map(|k| measure(&mut s, k)).sum();
    assert_eq!(store.object_memory_bytes(), want);
    check(&store);
    for k in &keys {
        assert!(s.delete(0, k, 0));
    }
    assert_eq!(store.object_memory_bytes(), 0);
    check(&store);
}

#[test]
fn concurrent_growth_is_counted_exactly() {
    let store = small(256);
    std::thread::scope(|sc| {
        for t in 0..4 {
            let store = Arc::clone(&store);
            sc.spawn(move || {
                let mut s = store.session();
                for i in 0..3000u64 {
                    // Shared keys (racing writers, some inserts lost) and private ones.
                    let key = if i % 3 == 0 {
                        format!("shared{}", i % 17)
                    } else {
                        format!("t{t}-{}", i % 29)
                    };
                    match i % 11 {
                        0 => {
                            s.delete(0, key.as_bytes(), 0);
                        }
                        1 => s.upsert_object(0, key.as_bytes(), Box::new(Bag(vec![t; 9])), 0),
                        _ => {
                            push(&mut s, key.as_bytes(), 1 + i % 5);
                        }
                    }
                }
            });
        }
    });
    let mut s = store.session();
    settle_epoch(&mut s);
    check(&store);
}

const BUDGET: u64 = 1 << 20;

fn tiered(name: &str) -> (Arc<Store>, Dir) {
    let cfg = StoreConfig {
        index_buckets: 1 << 10,
        page_bits: 14,
        memory_size: BUDGET as usize,
        mutable_fraction: 0.5,
        databases: 16,
        ..StoreConfig::default()
    };
    let (store, dir) = tiered_store(&format!("objcharge-{name}"), cfg, None);
    store.set_object_reader(Bag::read);
    (store, dir)
}

/// Bags grown in place, round robin, to ten times the budget: what the log holds in memory
/// stays near the budget (the growth is charged to the bags' pages, which close, turn
/// read-only, are flushed and evicted), and every bag reads back whole.
#[test]
fn growth_in_place_stays_within_the_memory_budget() {
    let (store, _dir) = tiered("growth");
    let mut s = store.session();
    const BAGS: u64 = 100;
    const ROUNDS: u64 = 20;
    // 100 bags x 20 rounds x 640 numbers x 8 bytes: 10 MiB of numbers for a 1 MiB budget.
    const STEP: u64 = 640;
    let mut peak = 0;
    for _ in 0..ROUNDS {
        for b in 0..BAGS {
            push(&mut s, format!("bag{b}").as_bytes(), STEP);
            peak = peak.max(store.stats().log_memory_bytes);
        }
    }
    let total = BAGS * ROUNDS * STEP * 8;
    eprintln!(
        "log memory peaked at {peak} bytes for {total} bytes of bags (budget {BUDGET}), \
         {} payloads evicted",
        store.evicted_payloads()
    );
    assert!(store.evicted_payloads() > BAGS, "the bags left memory");
    // The budget, plus the page being filled and what one bag can add to it before the page
    // closes (a bag's capacity doubles): well under the 10 MiB written.
    assert!(peak < 3 * BUDGET, "log memory peaked at {peak}");
    // Once the flusher and the epoch have caught up, the count is exact here too.
    for _ in 0..20 {
        s.collect_garbage();
        store.flush_ready_pages();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    check(&store);
    for b in 0..BAGS {
        let got = bag(&mut s, 0, format!("bag{b}").as_bytes(), 0).unwrap();
        assert_eq!(got.len() as u64, ROUNDS * STEP);
        assert!(got.iter().enumerate().all(|(i, &v)| v == i as u64));
    }
}
