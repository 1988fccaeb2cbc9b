//! HybridLog store micro-benchmarks: GET hit, in-place SET, INCR-style rmw, on 1 and 2 threads.
//!
//! Two-thread runs use `iter_custom`: both threads do `iters` operations on their own keys
//! (or on one shared key for `rmw_shared`), and the wall time of the slower one is reported, so
//! the figure is per-thread latency under contention of the shared structures.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ferrite_hybridlog::{Session, Store, StoreConfig, ValueKind, Write};

const KEYS: u64 = 100_000;

fn store() -> Arc<Store> {
    let s = Store::new(StoreConfig {
        index_buckets: 1 << 16,
        page_bits: 22,
        memory_size: 1 << 30,
        mutable_fraction: 0.9,
        databases: 16,
    })
    .expect("config");
    let mut session = s.session();
    for i in 0..KEYS {
        session.upsert(0, &key(i), b"0123456789abcdef", ValueKind::String, 0);
    }
    s
}

/// Key `i`: `key:` and twelve decimal digits, formatted by hand so the benchmark measures the
/// store and not `format!`.
fn key(i: u64) -> [u8; 16] {
    let mut k = *b"key:000000000000";
    let mut n = i % KEYS;
    for d in k[4..].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    k
}

fn get(s: &mut Session, i: u64) {
    let hit = s.read(0, &key(i), 0, |e| e.value.len());
    black_box(hit.expect("hit"));
}

fn upsert(s: &mut Session, i: u64) {
    s.upsert(0, &key(i), b"fedcba9876543210", ValueKind::String, 0);
}

fn incr(s: &mut Session, k: &[u8]) {
    let n = s.rmw(0, k, 0, |old, out| {
        let n = old.map_or(0, |e| {
            u64::from_le_bytes(e.value[..8].try_into().unwrap_or([0; 8]))
        });
        out.extend_from_slice(&(n + 1).to_le_bytes());
        Write::Put {
            kind: ValueKind::String,
            expire_at: 0,
            result: n,
        }
    });
    black_box(n);
}

/// Runs `op(session, i)` `iters` times on each of `threads` threads; returns the slowest time.
fn threaded(store: &Arc<Store>, threads: u64, iters: u64, op: fn(&mut Session, u64)) -> Duration {
    let barrier = Arc::new(Barrier::new(threads as usize));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut s = store.session();
                let base = t * (KEYS / threads);
                barrier.wait();
                let start = Instant::now();
                for i in 0..iters {
                    op(&mut s, base + i.wrapping_mul(7919));
                }
                start.elapsed()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("bench thread"))
        .max()
        .unwrap_or_default()
}

/// One benchmarked store operation on key number `i`.
type Op = fn(&mut Session, u64);

fn benches(c: &mut Criterion) {
    let st = store();
    let ops: [(&str, Op); 4] = [
        ("get_hit", get),
        ("upsert_in_place", upsert),
        ("rmw_incr", |s, i| incr(s, &key(i))),
        ("rmw_incr_shared_key", |s, _| incr(s, b"shared-counter")),
    ];
    let mut g = c.benchmark_group("store");
    for (name, op) in ops {
        g.bench_function(format!("{name}/1"), |b| {
            let mut s = st.session();
            let mut i = 0u64;
            b.iter(|| {
                i = i.wrapping_add(7919);
                op(&mut s, i);
            });
        });
        g.bench_function(format!("{name}/2"), |b| {
            b.iter_custom(|iters| threaded(&st, 2, iters, op))
        });
    }
    g.finish();
}

criterion_group!(store_benches, benches);
criterion_main!(store_benches);
