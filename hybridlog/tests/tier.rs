//! The disk tier: a log several times its memory budget, read back through the synchronous
//! fallback and through `locate` + `Fetch` (the asynchronous path a reactor drives), with
//! overwrites, deletes, expiry, big values, objects, SCAN and FLUSHALL.

mod common;

use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Dir, get, set, tiered_store};
use ferrite_hybridlog::disk::{DiskConfig, SegmentedFile};
use ferrite_hybridlog::tier::FetchStep;
use ferrite_hybridlog::{Session, Store, StoreConfig, ValueKind};

const PAGE_BITS: u32 = 16;
const BUDGET: usize = 512 << 10;

fn tiered(name: &str) -> (Arc<Store>, Dir) {
    tiered_with(name, 22)
}

fn tiered_with(name: &str, segment_bits: u32) -> (Arc<Store>, Dir) {
    tiered_store(&format!("tier-{name}"), config(), Some(segment_bits))
}

fn config() -> StoreConfig {
    StoreConfig {
        index_buckets: 1 << 12,
        page_bits: PAGE_BITS,
        memory_size: BUDGET,
        mutable_fraction: 0.5,
        databases: 16,
        ..StoreConfig::default()
    }
}

/// A store whose disk tier has no object log: records with pointers are relocated instead.
fn tiered_without_object_log(name: &str) -> (Arc<Store>, Dir) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tier-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let device = SegmentedFile::open(&DiskConfig {
        segment_bits: 22,
        ..DiskConfig::new(dir.join("hlog"))
    })
    .unwrap();
    let store = Store::with_device(config(), Box::new(device)).unwrap();
    (store, Dir(dir))
}

fn value(i: u64, round: u64) -> Vec<u8> {
    format!("value-{i}-{round}-")
        .into_bytes()
        .into_iter()
        .cycle()
        .take(150 + (i % 100) as usize)
        .collect()
}

/// Writes `n` keys, overwrites every third, deletes every seventh, expires every eleventh.
fn load(s: &mut Session, n: u64) -> HashMap<Vec<u8>, Vec<u8>> {
    let mut model = HashMap::new();
    for i in 0..n {
        let k = format!("key:{i}").into_bytes();
        set(s, 0, &k, &value(i, 0));
        model.insert(k, value(i, 0));
    }
    for i in (0..n).step_by(3) {
        let k = format!("key:{i}").into_bytes();
        set(s, 0, &k, &value(i, 1));
        model.insert(k, value(i, 1));
    }
    for i in (0..n).step_by(7) {
        let k = format!("key:{i}").into_bytes();
        assert!(s.delete(0, &k, 1), "key:{i} was live");
        model.remove(&k);
    }
    for i in (0..n).step_by(11) {
        let k = format!("key:{i}").into_bytes();
        // Expired at 1 ms after the epoch: gone for any reader now.
        s.upsert(0, &k, b"soon gone", ValueKind::String, 1);
        model.remove(&k);
    }
    model
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn ten_times_memory_reads_back_exactly() {
    let (store, _dir) = tiered("sync");
    let mut s = store.session();
    let n = 30_000;
    let model = load(&mut s, n);
    let stats = store.stats();
    assert!(stats.head_address > 4 * BUDGET as u64, "{stats:?}");
    let page = 1u64 << PAGE_BITS;
    assert!(
        store.stats().log_memory_bytes <= BUDGET as u64 + 4 * page,
        "log memory {} over the budget {BUDGET}",
        store.stats().log_memory_bytes
    );
    let t = now();
    for i in 0..n {
        let k = format!("key:{i}").into_bytes();
        assert_eq!(get(&mut s, 0, &k, t), model.get(&k).cloned(), "key:{i}");
        s.end_command();
    }
    let tier = store.tier_stats().unwrap();
    assert!(tier.pages_flushed.load(Ordering::Relaxed) > 50);
    assert!(tier.sync_reads.load(Ordering::Relaxed) > 1000);
    assert_eq!(tier.io_errors.load(Ordering::Relaxed), 0);
    // Every expired key was read above, which reaped it (lazy expiry), so the count is exact.
    assert_eq!(store.db_size(0) as usize, model.len());
}

/// 4 KiB-aligned scratch for reads from an O_DIRECT file.
#[repr(C, align(4096))]
#[derive(Clone, Copy)]
struct Block([u8; 4096]);

/// Performs a fetch's reads the way a reactor would, but inline.
fn drive(store: &Store, mut step: FetchStep, fetch: &mut ferrite_hybridlog::tier::Fetch) -> usize {
    let mut buf = vec![Block([0; 4096]); 32];
    let mut reads = 0;
    while let FetchStep::Read(r) = step {
        // SAFETY: test: the device's fd stays open while the store lives; ManuallyDrop keeps
        // this File from closing it.
        let file = ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(r.fd) });
        // SAFETY: the blocks are contiguous bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), buf.len() * 4096)
        };
        let n = file
            .read_at(&mut bytes[..r.len as usize], r.offset)
            .unwrap();
        step = fetch.complete(store, Ok(&bytes[..n]));
        reads += 1;
    }
    reads
}

#[test]
fn locate_and_fetch_resolve_without_synchronous_reads() {
    let (store, _dir) = tiered("async");
    let mut s = store.session();
    let n = 20_000;
    let model = load(&mut s, n);
    let tier = store.tier_stats().unwrap();
    let t = now();
    let mut fetched = 0;
    for i in (0..n).step_by(13) {
        let k = format!("key:{i}").into_bytes();
        if let Some(mut fetch) = s.locate(0, &k) {
            let first = fetch.start(&store);
            fetched += drive(&store, first, &mut fetch);
            assert!(s.locate(0, &k).is_none(), "resolved after the fetch");
        }
        let sync_before = tier.sync_reads.load(Ordering::Relaxed);
        assert_eq!(get(&mut s, 0, &k, t), model.get(&k).cloned(), "key:{i}");
        assert_eq!(
            tier.sync_reads.load(Ordering::Relaxed),
            sync_before,
            "key:{i} read synchronously"
        );
        s.end_command();
    }
    assert!(fetched > 100, "only {fetched} reads: was anything on disk?");
}

#[test]
fn writes_to_keys_on_disk_see_their_old_values() {
    let (store, _dir) = tiered("rmw");
    let mut s = store.session();
    for i in 0..60_000u64 {
        set(
            &mut s,
            0,
            format!("n:{i}").as_bytes(),
            i.to_string().as_bytes(),
        );
    }
    assert!(store.stats().head_address > BUDGET as u64);
    for i in (0..60_000u64).step_by(97) {
        let k = format!("n:{i}");
        assert_eq!(common::incr(&mut s, 0, k.as_bytes(), 0), i as i64 + 1);
        s.end_command();
    }
    for i in (0..60_000u64).step_by(97) {
        let k = format!("n:{i}");
        assert_eq!(
            get(&mut s, 0, k.as_bytes(), 0),
            Some((i + 1).to_string().into_bytes())
        );
    }
}

#[test]
fn big_values_survive_eviction() {
    for with_object_log in [true, false] {
        big_values_survive_eviction_with(with_object_log);
    }
}

fn big_values_survive_eviction_with(with_object_log: bool) {
    let (store, _dir) = if with_object_log {
        tiered("big")
    } else {
        tiered_without_object_log("big-relocated")
    };
    let mut s = store.session();
    // Over a quarter page: heap blocks, which go to the object log (or, without one, are
    // copied forward).
    let big: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'a' + i; 40_000]).collect();
    for (i, v) in big.iter().enumerate() {
        set(&mut s, 2, format!("big:{i}").as_bytes(), v);
    }
    for i in 0..30_000u64 {
        set(&mut s, 0, format!("noise:{i}").as_bytes(), &value(i, 0));
    }
    assert!(store.stats().head_address > 8 * BUDGET as u64);
    let tier = store.tier_stats().unwrap();
    if with_object_log {
        assert!(tier.objects_written.load(Ordering::Relaxed) >= 5);
        assert_eq!(tier.records_relocated.load(Ordering::Relaxed), 0);
        assert!(store.evicted_payloads() >= 5);
    } else {
        assert!(tier.records_relocated.load(Ordering::Relaxed) >= 5);
    }
    for (i, v) in big.iter().enumerate() {
        assert_eq!(
            get(&mut s, 2, format!("big:{i}").as_bytes(), 0).as_ref(),
            Some(v)
        );
    }
}

#[test]
fn scan_and_flush_see_keys_on_disk() {
    let (store, _dir) = tiered("scan");
    let mut s = store.session();
    let model = load(&mut s, 10_000);
    let t = now();
    let mut seen = std::collections::HashSet::new();
    let mut cursor = 0;
    loop {
        cursor = s.scan(0, cursor, 100, t, |k, _| {
            seen.insert(k.to_vec());
        });
        s.end_command();
        if cursor == 0 {
            break;
        }
    }
    let live: std::collections::HashSet<_> = model.keys().cloned().collect();
    assert_eq!(seen, live);
    s.flush_all();
    s.end_command();
    assert_eq!(store.db_size(0), 0);
    assert_eq!(get(&mut s, 0, b"key:1", t), None);
}

#[test]
fn concurrent_writers_of_keys_on_disk_lose_no_update() {
    let (store, _dir) = tiered("incr");
    let mut s = store.session();
    const COUNTERS: u64 = 200;
    for i in 0..COUNTERS {
        set(&mut s, 0, format!("c:{i}").as_bytes(), b"0");
    }
    for i in 0..20_000u64 {
        set(&mut s, 0, format!("noise:{i}").as_bytes(), &value(i, 0));
    }
    assert!(store.stats().head_address > 4 * BUDGET as u64);
    const THREADS: u64 = 4;
    const ROUNDS: u64 = 3;
    std::thread::scope(|sc| {
        for _ in 0..THREADS {
            let store = Arc::clone(&store);
            sc.spawn(move || {
                let mut s = store.session();
                for _ in 0..ROUNDS {
                    for i in 0..COUNTERS {
                        common::incr(&mut s, 0, format!("c:{i}").as_bytes(), 0);
                        s.end_command();
                    }
                }
            });
        }
    });
    for i in 0..COUNTERS {
        assert_eq!(
            get(&mut s, 0, format!("c:{i}").as_bytes(), 0),
            Some((THREADS * ROUNDS).to_string().into_bytes()),
            "c:{i}"
        );
    }
}

#[test]
fn compaction_keeps_disk_use_near_the_live_data() {
    // 256 KiB segments: compaction's unit.
    let (store, _dir) = tiered_with("compact", 18);
    let mut s = store.session();
    const KEYS: u64 = 2000;
    let mut model = HashMap::new();
    // Written once: still live when compaction reaches their segment, so it must move them.
    for i in 0..300u64 {
        let k = format!("static:{i}").into_bytes();
        set(&mut s, 0, &k, &value(i, 99));
        model.insert(k, value(i, 99));
    }
    for round in 0..40u64 {
        for i in 0..KEYS {
            let k = format!("k:{i}").into_bytes();
            let v = value(i, round);
            if i % 10 == 0 {
                // Short-lived keys: expired by the time compaction meets them.
                s.upsert(0, &k, &v, ValueKind::String, 1);
                model.remove(&k);
            } else {
                set(&mut s, 0, &k, &v);
                model.insert(k, v);
            }
        }
        s.end_command();
    }
    // Let the flusher finish its passes.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let st = store.stats();
    let tier = store.tier_stats().unwrap();
    let live: u64 = model
        .iter()
        .map(|(k, v)| (40 + k.len() + v.len()) as u64)
        .sum();
    let on_disk = st.flushed_until - st.begin_address;
    eprintln!(
        "live {live} B, on disk {on_disk} B, begin {}, compactions {}, forwarded {}",
        st.begin_address,
        tier.compactions.load(Ordering::Relaxed),
        tier.records_compacted.load(Ordering::Relaxed)
    );
    assert!(tier.compactions.load(Ordering::Relaxed) > 5);
    assert!(tier.records_compacted.load(Ordering::Relaxed) >= 300);
    assert!(
        on_disk <= 2 * live + 4 * (1 << 18),
        "{on_disk} B on disk for {live} B live"
    );
    let t = now();
    let lost: Vec<String> = model
        .iter()
        .filter(|(k, v)| {
            let got = get(&mut s, 0, k, t);
            s.end_command();
            got.as_ref() != Some(v)
        })
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert!(
        lost.is_empty(),
        "{} keys lost or wrong: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    for i in (0..KEYS).step_by(10) {
        assert_eq!(get(&mut s, 0, format!("k:{i}").as_bytes(), t), None);
    }
    assert_eq!(
        store.db_size(0) as usize,
        model.len(),
        "expired keys were reaped"
    );
    assert_eq!(tier.io_errors.load(Ordering::Relaxed), 0);
}

#[test]
fn live_keys_stay_readable_while_compaction_moves_them() {
    // Compaction copies a live record to the tail, then cuts the old chain by moving the begin
    // address. A reader that read the index before the copy and walks after the cut must start
    // over from the index, not report the key absent.
    let (store, _dir) = tiered_with("compact-readers", 18);
    let statics: Vec<(Vec<u8>, Vec<u8>)> = (0..200u64)
        .map(|i| (format!("static:{i}").into_bytes(), value(i, 7)))
        .collect();
    {
        let mut s = store.session();
        for (k, v) in &statics {
            set(&mut s, 0, k, v);
        }
        s.end_command();
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (store, stop, statics) = (store.clone(), stop.clone(), statics.clone());
        std::thread::spawn(move || {
            let mut s = store.session();
            let (mut reads, mut misses) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                for (k, v) in &statics {
                    let got = get(&mut s, 0, k, now());
                    s.end_command();
                    reads += 1;
                    if got.as_ref() != Some(v) {
                        misses.push(String::from_utf8_lossy(k).into_owned());
                    }
                }
            }
            (reads, misses)
        })
    };
    let mut s = store.session();
    for round in 0..25u64 {
        for i in 0..2000u64 {
            set(&mut s, 0, format!("k:{i}").as_bytes(), &value(i, round));
        }
        s.end_command();
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (reads, misses) = reader.join().expect("reader");
    let tier = store.tier_stats().unwrap();
    let compactions = tier.compactions.load(Ordering::Relaxed);
    eprintln!("{reads} reads during {compactions} compactions");
    assert!(compactions > 2, "the test needs compactions to race with");
    assert!(
        misses.is_empty(),
        "{} reads missed: {:?}",
        misses.len(),
        &misses[..misses.len().min(10)]
    );
}
