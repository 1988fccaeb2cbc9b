//! Multi-threaded tests: no lost updates, no torn reads, SCAN completeness, the gate.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{get, incr, set, small};
use ferrite_hybridlog::{Store, StoreConfig, ValueKind, Write};

fn run_threads(n: usize, f: impl Fn(usize) + Send + Sync + 'static) {
    let f = Arc::new(f);
    let ts: Vec<_> = (0..n)
        .map(|t| {
            let f = f.clone();
            std::thread::spawn(move || f(t))
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
}

#[test]
fn concurrent_increments_are_never_lost() {
    // Small pages and budget: counters drift below the read-only address while other threads
    // update them in place, so in-place, fuzzy-region and read-copy-update paths all race.
    let store = small(8);
    const THREADS: usize = 4;
    const PER_THREAD: usize = 6_000;
    const KEYS: usize = 5;
    let st = store.clone();
    run_threads(THREADS, move |t| {
        let mut s = st.session();
        for i in 0..PER_THREAD {
            let key = format!("counter{}", (i + t) % KEYS);
            incr(&mut s, 0, key.as_bytes(), 0);
            if i % 7 == 0 {
                // Churn other keys on the same chains so entry CASes fail now and then.
                set(&mut s, 0, format!("noise{t}:{i}").as_bytes(), b"n");
            }
        }
    });
    let mut s = store.session();
    let total: i64 = (0..KEYS)
        .map(|k| {
            let v = get(&mut s, 0, format!("counter{k}").as_bytes(), 0).unwrap();
            std::str::from_utf8(&v).unwrap().parse::<i64>().unwrap()
        })
        .sum();
    assert_eq!(total, (THREADS * PER_THREAD) as i64);
    assert!(store.stats().read_only_address > 64);
}

#[test]
fn concurrent_increments_of_heap_values() {
    // Values over the inline limit (1 KiB with 4 KiB pages) live in heap blocks: increments
    // swap blocks in place or copy records, and retire the old blocks through the epoch.
    let store = small(4);
    let st = store.clone();
    run_threads(3, move |_| {
        let mut s = st.session();
        for _ in 0..500 {
            s.rmw(0, b"wide", 0, |old, out| {
                let n = old.map_or(0, |e| u64::from_le_bytes(e.value[..8].try_into().unwrap()));
                out.extend_from_slice(&(n + 1).to_le_bytes());
                out.resize(2_000, (n % 251) as u8);
                Write::Put {
                    kind: ValueKind::String,
                    expire_at: 0,
                    result: (),
                }
            });
        }
    });
    let mut s = store.session();
    let v = get(&mut s, 0, b"wide", 0).unwrap();
    assert_eq!(u64::from_le_bytes(v[..8].try_into().unwrap()), 1_500);
}

#[test]
fn readers_never_see_torn_values() {
    for (page_bits, len) in [(22, 64usize), (12, 256), (12, 3_000)] {
        let store = Store::new(StoreConfig {
            index_buckets: 16,
            page_bits,
            memory_size: 1 << 14,
            mutable_fraction: 0.9,
            databases: 1,
            ..StoreConfig::default()
        })
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut s = store.session();
                for i in 0..10_000u32 {
                    let b = (i % 251) as u8;
                    // Vary the length so in-place writes change it and copies happen too.
                    let n = len - (i as usize % 8);
                    if i % 2 == 0 {
                        s.upsert(0, b"hot", &vec![b; n], ValueKind::String, 0);
                    } else {
                        s.rmw(0, b"hot", 0, |_, out| {
                            out.resize(n, b);
                            Write::Put {
                                kind: ValueKind::String,
                                expire_at: 0,
                                result: (),
                            }
                        });
                    }
                }
                stop.store(true, Ordering::Release);
            })
        };
        let reads = Arc::new(AtomicU64::new(0));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (store, stop, reads) = (store.clone(), stop.clone(), reads.clone());
                std::thread::spawn(move || {
                    let mut s = store.session();
                    while !stop.load(Ordering::Acquire) {
                        s.read(0, b"hot", 0, |e| {
                            let first = e.value[0];
                            assert!(e.value.iter().all(|&b| b == first), "torn read");
                            assert!(e.value.len() > len - 8 && e.value.len() <= len);
                        });
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        writer.join().unwrap();
        for r in readers {
            r.join().unwrap();
        }
        assert!(reads.load(Ordering::Relaxed) > 0);
    }
}

#[test]
fn scan_sees_every_key_present_throughout() {
    let store = small(256);
    let mut s = store.session();
    let stable: Vec<String> = (0..2_000).map(|i| format!("stable:{i}")).collect();
    for k in &stable {
        set(&mut s, 3, k.as_bytes(), b"v");
    }
    set(&mut s, 4, b"other-db", b"v");
    s.upsert(3, b"expired", b"v", ValueKind::String, 5);
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut s = store.session();
            let mut i = 0u64;
            while !stop.load(Ordering::Acquire) {
                let k = format!("churn:{}", i % 500);
                if i % 3 == 2 {
                    s.delete(3, k.as_bytes(), 0);
                } else {
                    set(&mut s, 3, k.as_bytes(), &i.to_le_bytes());
                }
                // Updates to stable keys (values change, keys stay live).
                set(&mut s, 3, format!("stable:{}", i % 2_000).as_bytes(), b"w");
                i += 1;
            }
        })
    };
    for _round in 0..3 {
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = s.scan(3, cursor, 20, 10, |k, e| {
                assert!(!e.value.is_empty());
                seen.insert(k.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        for k in &stable {
            assert!(seen.contains(k.as_bytes()), "{k} missed by SCAN");
        }
        assert!(!seen.contains(&b"other-db"[..]) && !seen.contains(&b"expired"[..]));
    }
    stop.store(true, Ordering::Release);
    churn.join().unwrap();
}

#[test]
fn scan_cursor_visits_every_bucket_once() {
    let mask = 63u64;
    let mut seen = vec![0; 64];
    let mut v = 0;
    loop {
        seen[(v & mask) as usize] += 1;
        v = ferrite_hybridlog::next_cursor(v, mask);
        if v == 0 {
            break;
        }
    }
    assert!(seen.iter().all(|&n| n == 1));
}

#[test]
fn exclusive_excludes_entered_sessions() {
    let store = small(16);
    let inside = Arc::new(AtomicU64::new(0));
    let st = store.clone();
    run_threads(3, move |t| {
        let mut s = st.session();
        for i in 0..1_000 {
            if (i + t) % 40 == 0 {
                s.exclusive(|s| {
                    assert_eq!(inside.load(Ordering::SeqCst), 0, "a session is inside");
                    // MSET-like: both keys change together.
                    set(s, 0, b"a", &i.to_le_bytes());
                    set(s, 0, b"b", &i.to_le_bytes());
                });
            } else {
                s.enter();
                inside.fetch_add(1, Ordering::SeqCst);
                let a = get(&mut s, 0, b"a", 0);
                let b = get(&mut s, 0, b"b", 0);
                assert_eq!(a, b, "multi-key write observed half done");
                inside.fetch_sub(1, Ordering::SeqCst);
                s.leave();
            }
        }
    });
}
