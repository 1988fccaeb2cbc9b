//! HybridLog store micro-benchmarks: GET hit, in-place SET, INCR-style rmw, on 1 and 2 threads;
//! and random GETs over 100k keys in a server-sized index (1M buckets), one by one and in
//! prefetched batches of 16 as a pipelining command layer would issue them; and GET into a
//! reply buffer with one copy (`read_append`) against two (`read` then a copy).
//!
//! Two-thread runs use `iter_custom`: both threads do `iters` operations on their own keys
//! (or on one shared key for `rmw_shared`), and the wall time of the slower one is reported, so
//! the figure is per-thread latency under contention of the shared structures.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferrite_hybridlog::{Session, Store, StoreConfig, ValueKind, Write};

const KEYS: u64 = 100_000;

fn store() -> Arc<Store> {
    sized_store(1 << 16)
}

fn sized_store(index_buckets: usize) -> Arc<Store> {
    let s = Store::new(StoreConfig {
        index_buckets,
        page_bits: 22,
        memory_size: 1 << 30,
        mutable_fraction: 0.9,
        databases: 16,
        ..StoreConfig::default()
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

/// Batch size of the random-GET benchmarks (redis-benchmark's `-P 16`).
const BATCH: usize = 16;

/// A random sequence of key numbers (SplitMix64), so lookups miss the caches as a server's do.
fn random_keys(n: usize) -> Vec<[u8; 16]> {
    let mut x = 0x1234_5678_u64;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            key(z ^ (z >> 31))
        })
        .collect()
}

/// `BATCH` random GETs per iteration over 100k keys in a 1M-bucket index, plain and with the
/// two prefetch stages first.
fn random_gets(c: &mut Criterion) {
    let st = sized_store(1 << 20);
    let keys = random_keys(1 << 20);
    let mut g = c.benchmark_group("store_random");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("get_random_100k/x16", |b| {
        let mut s = st.session();
        let mut batches = keys.chunks_exact(BATCH).cycle();
        b.iter(|| {
            for k in batches.next().expect("cycle") {
                black_box(s.read(0, k, 0, |e| e.value.len()).expect("hit"));
            }
        });
    });
    g.bench_function("get_random_100k_prefetch/x16", |b| {
        let mut s = st.session();
        let mut batches = keys.chunks_exact(BATCH).cycle();
        b.iter(|| {
            let batch = batches.next().expect("cycle");
            let mut hashes = [None; BATCH];
            for (h, k) in hashes.iter_mut().zip(batch) {
                *h = Some(s.prefetch(0, k));
            }
            for (h, k) in hashes.iter().zip(batch) {
                s.prefetch_record(0, k, h.expect("stage 1 ran"));
            }
            for k in batch {
                black_box(s.read(0, k, 0, |e| e.value.len()).expect("hit"));
            }
        });
    });
    g.finish();
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

/// GET of one 1 KiB (inline) and one 3-byte value into a reply buffer, the way the GET command
/// builds its reply: a snapshot copy then a second copy into the buffer (`read`), or one copy
/// straight from the record (`read_append`).
fn get_into_reply(c: &mut Criterion) {
    let st = store();
    let mut s = st.session();
    let mut g = c.benchmark_group("store_get_reply");
    for (name, len) in [("1k", 1024usize), ("3b", 3)] {
        let k = format!("reply:{name}");
        s.upsert(0, k.as_bytes(), &vec![b'v'; len], ValueKind::String, 0);
        let mut out = Vec::with_capacity(4096);
        g.bench_function(format!("read_then_copy/{name}"), |b| {
            b.iter(|| {
                out.clear();
                let hit = s.read(0, k.as_bytes(), 0, |e| {
                    out.extend_from_slice(b"$1024\r\n");
                    out.extend_from_slice(e.value);
                });
                black_box((hit, out.len()));
            })
        });
        g.bench_function(format!("read_append/{name}"), |b| {
            b.iter(|| {
                out.clear();
                let hit = s.read_append(0, k.as_bytes(), 0, &mut out, |out, _, _| {
                    out.extend_from_slice(b"$1024\r\n");
                    true
                });
                black_box((hit, out.len()));
            })
        });
    }
    g.finish();
}

criterion_group!(store_benches, benches, random_gets, get_into_reply);
criterion_main!(store_benches);
