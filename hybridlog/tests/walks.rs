//! Whole-index walks cost what the data costs: SCAN, KEYS, RANDOMKEY, FLUSHALL/FLUSHDB and the
//! active expiry cycle skip the index's empty groups, without ever missing a live key.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{set, small};
use ferrite_hybridlog::{Session, Store, StoreConfig, ValueKind};

/// The server's default index: 1M buckets, 16384 groups.
fn big() -> Arc<Store> {
    Store::new(StoreConfig::default()).unwrap()
}

/// One full SCAN iteration; returns the keys and the number of calls it took.
fn scan_all(s: &mut Session, db: u8, count: usize) -> (BTreeSet<Vec<u8>>, usize) {
    let (mut keys, mut calls, mut cursor) = (BTreeSet::new(), 0, 0);
    loop {
        calls += 1;
        cursor = s.scan(db, cursor, count, 0, |k, _| {
            keys.insert(k.to_vec());
        });
        if cursor == 0 {
            return (keys, calls);
        }
    }
}

fn groups_visited(s: &Session) -> u64 {
    s.walk_visits().0
}

#[test]
fn sparse_big_index_walks_visit_few_groups() {
    let store = big();
    let mut s = store.session();
    // Empty: one call, no group visited.
    assert_eq!(s.scan(0, 0, 10, 0, |_, _| panic!("no keys")), 0);
    s.flush_all();
    assert_eq!(s.walk_visits(), (0, 0));

    for k in [&b"a"[..], b"b", b"c"] {
        set(&mut s, 0, k, b"v");
    }
    let want: BTreeSet<Vec<u8>> = [b"a", b"b", b"c"].iter().map(|k| k.to_vec()).collect();

    // SCAN with the default COUNT: all three in one call, as Redis answers a small db.
    let before = groups_visited(&s);
    let (keys, calls) = scan_all(&mut s, 0, 10);
    assert_eq!((keys, calls), (want.clone(), 1));
    assert!(groups_visited(&s) - before <= 3);

    // KEYS walks with COUNT 1024 (the commands crate's step).
    let before = s.walk_visits();
    assert_eq!(scan_all(&mut s, 0, 1024), (want.clone(), 1));
    let after = s.walk_visits();
    assert!(after.0 - before.0 <= 3);
    assert!(after.1 - before.1 <= 3 * 64, "{before:?} -> {after:?}");

    // SCAN from a cursor in the middle of the index still ends at once.
    let before = groups_visited(&s);
    s.scan(0, 0x5_5555, 10, 0, |_, _| {});
    assert!(groups_visited(&s) - before <= 3);

    // RANDOMKEY: one of them, after at most three groups (plus a few probes).
    for seed in 0..20 {
        let before = groups_visited(&s);
        let k = s.random_key(0, 0, seed).unwrap();
        assert!(want.contains(&k));
        assert!(groups_visited(&s) - before <= 3);
    }
    // Other databases are empty: answered without a walk.
    let before = s.walk_visits();
    assert_eq!(s.random_key(1, 0, 7), None);
    assert_eq!(s.scan(1, 0, 10, 0, |_, _| panic!("db 1 is empty")), 0);
    assert_eq!(s.walk_visits(), before);

    // FLUSHALL: the three groups, then nothing is left marked.
    let before = groups_visited(&s);
    s.flush_all();
    assert!(groups_visited(&s) - before <= 3);
    assert_eq!(store.db_size(0), 0);
    let before = s.walk_visits();
    s.flush_all();
    assert_eq!(s.walk_visits(), before, "flush cleared the occupancy bits");
    assert_eq!(scan_all(&mut s, 0, 10).0, BTreeSet::new());

    // Active expiry walks only occupied groups: none now, one after a write.
    let before = s.walk_visits();
    assert_eq!(s.active_expire(0, 1024), 0);
    assert_eq!(s.walk_visits(), before);
    s.upsert(0, b"ttl", b"v", ValueKind::String, 5);
    let before = groups_visited(&s);
    assert_eq!(s.active_expire(10, 1024), 1);
    assert_eq!(groups_visited(&s) - before, 1);
    assert_eq!(store.db_size(0), 0);
    // The reaped group is now clear too.
    let before = s.walk_visits();
    s.active_expire(10, 1 << 20);
    s.flush_all();
    assert_eq!(s.walk_visits(), before);
}

#[test]
fn keys_come_back_after_a_flush() {
    // Mutable-region tombstones revived in place, and read-only ones copied, both re-mark.
    for memory in [1 << 24, 1 << 13] {
        let store = Store::new(StoreConfig {
            index_buckets: 1 << 14,
            page_bits: 12,
            memory_size: memory,
            mutable_fraction: 0.5,
            databases: 4,
            ..StoreConfig::default()
        })
        .unwrap();
        let mut s = store.session();
        let keys: Vec<Vec<u8>> = (0..300u32).map(|i| format!("k{i}").into_bytes()).collect();
        for round in 0..3 {
            for k in &keys {
                set(&mut s, 0, k, b"v");
                set(&mut s, 1, k, b"w");
            }
            let all: BTreeSet<Vec<u8>> = keys.iter().cloned().collect();
            assert_eq!(scan_all(&mut s, 0, 10).0, all, "round {round}");
            // FLUSHDB of db 1 leaves db 0's keys where SCAN finds them.
            s.flush_db(1);
            assert_eq!(store.db_size(1), 0);
            assert_eq!(scan_all(&mut s, 0, 7).0, all, "round {round}");
            assert_eq!(scan_all(&mut s, 1, 7).0, BTreeSet::new());
            s.flush_all();
            assert_eq!(scan_all(&mut s, 0, 10).0, BTreeSet::new());
            // Delete-everything then active expiry: the groups are cleared as well.
            for k in &keys {
                set(&mut s, 2, k, b"x");
            }
            for k in &keys {
                assert!(s.delete(2, k, 0));
            }
            for _ in 0..4 {
                s.active_expire(0, 1 << 14);
            }
            let before = s.walk_visits();
            s.flush_all();
            assert_eq!(
                s.walk_visits(),
                before,
                "active expiry cleared the emptied groups"
            );
        }
    }
}

#[test]
fn scan_with_small_counts_covers_everything() {
    let store = small(1 << 10);
    let mut s = store.session();
    let keys: BTreeSet<Vec<u8>> = (0..500u32).map(|i| i.to_le_bytes().to_vec()).collect();
    for k in &keys {
        set(&mut s, 0, k, b"v");
    }
    for count in [1, 3, 10, 100] {
        let (got, calls) = scan_all(&mut s, 0, count);
        assert_eq!(got, keys);
        assert!(
            calls >= 500 / count.max(1) / 10,
            "count {count}: {calls} calls"
        );
    }
}

/// Keys present throughout are returned by every SCAN iteration and stay flushable while other
/// sessions flush another database, sweep with active expiry, and delete and revive keys.
#[test]
fn concurrent_clears_never_hide_a_live_key() {
    let store = small(1 << 12);
    let mut s = store.session();
    let stable: BTreeSet<Vec<u8>> = (0..200u32).map(|i| format!("s{i}").into_bytes()).collect();
    for k in &stable {
        set(&mut s, 0, k, b"v");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|t| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut s = store.session();
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    match t {
                        0 => {
                            for j in 0..50 {
                                set(
                                    &mut s,
                                    1,
                                    format!("x{}", (i * 50 + j) % 400).as_bytes(),
                                    b"w",
                                );
                            }
                            s.flush_db(1);
                        }
                        1 => {
                            s.active_expire(0, 256);
                        }
                        _ => {
                            let k = format!("s{}", 200 + i % 100).into_bytes();
                            set(&mut s, 0, &k, b"t");
                            s.delete(0, &k, 0);
                        }
                    }
                    i = i.wrapping_add(1);
                }
            })
        })
        .collect();
    for _ in 0..200 {
        let (got, _) = scan_all(&mut s, 0, 5);
        let missing: Vec<_> = stable.difference(&got).collect();
        assert!(missing.is_empty(), "SCAN missed {missing:?}");
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    // Whatever the races left live is still reachable by FLUSHALL.
    s.flush_all();
    for db in 0..3 {
        assert_eq!(store.db_size(db), 0, "db {db}");
        assert_eq!(scan_all(&mut s, db, 10).0, BTreeSet::new());
    }
}
