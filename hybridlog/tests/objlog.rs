//! The object log: heap keys, heap values and collection objects leave memory with their page
//! (their payloads go to the object log) and come back, through the synchronous fallback and
//! the asynchronous `Fetch`, superseded or deleted, rewritten from disk, compacted, and checked.

mod common;

use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Bag, Dir, get, set, tiered_store};
use ferrite_hybridlog::tier::{Fetch, FetchStep};
use ferrite_hybridlog::{ObjectWrite, Session, Store, StoreConfig, ValueKind, ValueMut};

const PAGE_BITS: u32 = 16;
/// Over a quarter page: values and keys this long live in heap blocks.
const BIG: usize = 20_000;
const BUDGET: usize = 512 << 10;

fn tiered(name: &str, segment_bits: u32) -> (Arc<Store>, Dir) {
    let cfg = StoreConfig {
        index_buckets: 1 << 12,
        page_bits: PAGE_BITS,
        memory_size: BUDGET,
        mutable_fraction: 0.5,
        databases: 16,
        ..StoreConfig::default()
    };
    let (store, dir) = tiered_store(&format!("objlog-{name}"), cfg, Some(segment_bits));
    store.set_object_reader(Bag::read);
    (store, dir)
}

fn big(i: u64, round: u64) -> Vec<u8> {
    let mut v = format!("big-{i}-{round}-").into_bytes();
    v.resize(BIG + (i % 50) as usize, b'a' + (i % 26) as u8);
    v
}

fn big_key(i: u64) -> Vec<u8> {
    let mut k = format!("bigkey:{i}:").into_bytes();
    k.resize(17_000, b'k');
    k
}

/// Pushes everything written so far below the head.
fn noise(s: &mut Session, n: u64) {
    for i in 0..n {
        set(s, 9, format!("noise:{i}").as_bytes(), &[b'n'; 200]);
    }
}

/// Lets the safe read-only address, the flusher and the head catch up with the tail, so that
/// no record is evicted between a `locate` and the read after it.
fn settle(store: &Store, s: &mut Session) {
    for _ in 0..20 {
        s.collect_garbage();
        store.flush_ready_pages();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Performs a fetch's reads the way a reactor would, but inline.
fn drive(store: &Store, fetch: &mut Fetch) -> usize {
    let mut buf = vec![0u8; 256 << 10];
    let off = buf.as_ptr().align_offset(4096);
    let mut reads = 0;
    let mut step = fetch.start(store);
    while let FetchStep::Read(r) = step {
        // SAFETY: test: the device's fd stays open while the fetch holds its file; ManuallyDrop
        // keeps this File from closing it.
        let file = ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(r.fd) });
        let bytes = &mut buf[off..off + r.len as usize];
        let n = file.read_at(bytes, r.offset).unwrap();
        step = fetch.complete(store, Ok(&bytes[..n]));
        reads += 1;
    }
    reads
}

fn io_errors(store: &Store) -> u64 {
    store
        .tier_stats()
        .unwrap()
        .io_errors
        .load(Ordering::Relaxed)
}

#[test]
fn big_values_and_keys_leave_memory_and_come_back() {
    // Segments big enough that compaction (whose reads count as synchronous) stays out.
    let (store, _dir) = tiered("strings", 26);
    let mut s = store.session();
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    const N: u64 = 400;
    for i in 0..N {
        let k = format!("k:{i}").into_bytes();
        set(&mut s, 0, &k, &big(i, 0));
        model.insert(k, big(i, 0));
        if i % 4 == 0 {
            set(&mut s, 0, &big_key(i), format!("small-{i}").as_bytes());
            model.insert(big_key(i), format!("small-{i}").into_bytes());
        }
    }
    noise(&mut s, 16_000);
    // Superseded on disk: big over big, small over big, big over small; deleted heap keys.
    for i in 0..N {
        let k = format!("k:{i}").into_bytes();
        match i % 5 {
            0 => {
                set(&mut s, 0, &k, &big(i, 1));
                model.insert(k, big(i, 1));
            }
            1 => {
                set(&mut s, 0, &k, b"small now");
                model.insert(k, b"small now".to_vec());
            }
            2 => {
                assert!(s.delete(0, &k, 0));
                model.remove(&k);
            }
            _ => {}
        }
        if i % 8 == 0 {
            assert!(s.delete(0, &big_key(i), 0));
            model.remove(&big_key(i));
        }
        s.end_command();
    }
    noise(&mut s, 16_000);
    let data: usize = model.values().map(Vec::len).sum();
    let st = store.stats();
    assert!(st.head_address > 8 * BUDGET as u64, "{st:?}");
    // Memory holds the budget (and the pages the flusher may trail by), not the data.
    let slack = 8 << PAGE_BITS;
    assert!(
        st.log_memory_bytes <= (BUDGET + slack) as u64 && data > 6 * BUDGET,
        "{} bytes of log memory for {data} bytes of data",
        st.log_memory_bytes
    );
    let tier = store.tier_stats().unwrap();
    assert!(tier.objects_written.load(Ordering::Relaxed) >= N);
    assert_eq!(tier.records_relocated.load(Ordering::Relaxed), 0);
    assert!(store.evicted_payloads() >= N);
    // Asynchronously: every key resolves through fetches, then reads with no synchronous read
    // (once the head has settled: the flusher moves it after its last pages).
    settle(&store, &mut s);
    let mut fetched = 0;
    for (k, v) in &model {
        if let Some(mut fetch) = s.locate(0, k) {
            fetched += drive(&store, &mut fetch);
        }
        let sync = tier.sync_reads.load(Ordering::Relaxed);
        assert_eq!(get(&mut s, 0, k, 0).as_ref(), Some(v));
        assert_eq!(tier.sync_reads.load(Ordering::Relaxed), sync);
        s.end_command();
    }
    assert!(fetched > model.len(), "{fetched} reads: payloads take two");
    // Synchronously, in another order, and the deleted ones.
    for i in (0..N).rev() {
        let k = format!("k:{i}").into_bytes();
        assert_eq!(get(&mut s, 0, &k, 0), model.get(&k).cloned(), "k:{i}");
        assert_eq!(
            get(&mut s, 0, &big_key(i), 0),
            model.get(&big_key(i)).cloned()
        );
        s.end_command();
    }
    // SCAN reads keys on disk, heap keys included.
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = s.scan(0, cursor, 50, 0, |k, e| {
            assert_eq!(model.get(k).map(Vec::as_slice), Some(e.value));
            seen.push(k.to_vec());
        });
        s.end_command();
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), model.len());
    assert_eq!(io_errors(&store), 0);
}

#[test]
fn writes_to_big_values_on_disk_copy_them_to_the_tail() {
    let (store, _dir) = tiered("rmw", 22);
    let mut s = store.session();
    for i in 0..50 {
        set(&mut s, 0, format!("k:{i}").as_bytes(), &big(i, 0));
    }
    noise(&mut s, 16_000);
    for i in 0..50u64 {
        let k = format!("k:{i}");
        // APPEND, as the command does it: read-modify-write of the bytes.
        let len = s.rmw(0, k.as_bytes(), 0, |old, out| {
            out.extend_from_slice(old.expect("live").value);
            out.extend_from_slice(b"+tail");
            ferrite_hybridlog::Write::Put {
                kind: ValueKind::String,
                expire_at: 0,
                result: out.len(),
            }
        });
        assert_eq!(len, big(i, 0).len() + 5);
        s.end_command();
    }
    noise(&mut s, 16_000);
    for i in 0..50u64 {
        let mut want = big(i, 0);
        want.extend_from_slice(b"+tail");
        assert_eq!(get(&mut s, 0, format!("k:{i}").as_bytes(), 0), Some(want));
        s.end_command();
    }
    assert_eq!(io_errors(&store), 0);
}

/// Object-log segment files in `dir`.
fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("hlog.") && !name.ends_with(".sum")
        })
        .count()
}

#[test]
fn compaction_forwards_payloads_and_truncates_the_object_log() {
    // 256 KiB segments: compaction's unit, in both logs.
    let (store, dir) = tiered("compact", 18);
    let mut s = store.session();
    const KEYS: u64 = 60;
    let mut model = HashMap::new();
    // Written once: still live when compaction reaches them, so it must forward them.
    for i in 0..20u64 {
        let k = format!("static:{i}").into_bytes();
        set(&mut s, 0, &k, &big(i, 99));
        model.insert(k, big(i, 99));
        let bag = Bag((0..i + 1).collect());
        s.upsert_object(1, format!("bag:{i}").as_bytes(), Box::new(bag), 0);
    }
    for round in 0..30u64 {
        for i in 0..KEYS {
            let k = format!("k:{i}").into_bytes();
            set(&mut s, 0, &k, &big(i, round));
            model.insert(k, big(i, round));
        }
        // More than the mutable region each round: the next round's writes append.
        noise(&mut s, 3000);
        s.end_command();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let tier = store.tier_stats().unwrap();
    let st = store.stats();
    eprintln!(
        "{st:?} {} compactions, {} forwarded, object log files {}, begin {}",
        tier.compactions.load(Ordering::Relaxed),
        tier.records_compacted.load(Ordering::Relaxed),
        segment_files(&dir.0.join("objects")),
        st.begin_address
    );
    assert!(tier.compactions.load(Ordering::Relaxed) > 3);
    assert!(tier.records_compacted.load(Ordering::Relaxed) >= 40);
    let written = store.object_log_tail().unwrap();
    let live: usize = model.values().map(Vec::len).sum();
    let files = segment_files(&dir.0.join("objects")) as u64;
    assert!(
        files * (1 << 18) <= 3 * live as u64 + (4 << 18) && written > files * (1 << 18),
        "{files} object-log segments for {live} live bytes ({written} written)"
    );
    for (k, v) in &model {
        assert_eq!(get(&mut s, 0, k, 0).as_ref(), Some(v));
        s.end_command();
    }
    for i in 0..20u64 {
        let want: Vec<u64> = (0..i + 1).collect();
        assert_eq!(bag(&mut s, 1, &format!("bag:{i}")), Some(want), "bag:{i}");
        s.end_command();
    }
    assert_eq!(io_errors(&store), 0);
}

#[test]
fn a_corrupt_object_log_block_is_an_error_not_garbage() {
    // A flipped bit in the value (caught by the CRC), and a damaged length in the header
    // (caught before the walk reads on).
    // Each on its own thread: a thread's cache of walks is per thread, not per store.
    for (name, offset, flip) in [("corrupt-value", 1000, 0x40), ("corrupt-length", 10, 0x10)] {
        std::thread::spawn(move || corrupt_one(name, offset, flip))
            .join()
            .unwrap();
    }
}

fn corrupt_one(name: &str, offset: u64, flip: u8) {
    let (store, dir) = tiered(name, 22);
    let mut s = store.session();
    set(&mut s, 0, b"victim", &big(1, 0));
    noise(&mut s, 16_000);
    assert!(store.stats().head_address > 4 * BUDGET as u64);
    // The victim's blob is the first one in the object log.
    let path = dir.0.join("objects").join("hlog.0");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut byte = [0u8];
    file.read_at(&mut byte, offset).unwrap();
    file.write_at(&[byte[0] ^ flip], offset).unwrap();
    file.sync_all().unwrap();
    assert_eq!(get(&mut s, 0, b"victim", 0), None, "{name}");
    assert!(io_errors(&store) >= 1, "{name}");
}

fn bag(s: &mut Session, db: u8, key: &str) -> Option<Vec<u64>> {
    common::bag(s, db, key.as_bytes(), 0)
}

/// Appends `n` to the bag at `key` (creating it), as a collection command would.
fn push(s: &mut Session, db: u8, key: &str, n: u64) {
    s.rmw_value(db, key.as_bytes(), 0, |e| match e {
        None => ObjectWrite::Put {
            object: Box::new(Bag(vec![n])),
            expire_at: 0,
            result: (),
        },
        Some(e) => match e.value {
            ValueMut::Object(o) => {
                o.as_any_mut().downcast_mut::<Bag>().unwrap().0.push(n);
                ObjectWrite::Updated(())
            }
            ValueMut::String(_) => panic!("{key} is a string"),
        },
    })
}

#[test]
fn collections_leave_memory_and_come_back() {
    let (store, _dir) = tiered("objects", 26);
    let mut s = store.session();
    const N: u64 = 3000;
    let mut model: HashMap<String, Vec<u64>> = HashMap::new();
    for i in 0..N {
        let key = format!("bag:{i}");
        // Some big enough to take more than a block of the object log.
        let items: Vec<u64> = (0..(i % 40) * if i % 100 == 0 { 200 } else { 1 } + 1).collect();
        s.upsert_object(0, key.as_bytes(), Box::new(Bag(items.clone())), 0);
        model.insert(key, items);
    }
    noise(&mut s, 16_000);
    let st = store.stats();
    assert!(st.head_address > 4 * BUDGET as u64, "{st:?}");
    let tier = store.tier_stats().unwrap();
    assert_eq!(tier.records_relocated.load(Ordering::Relaxed), 0);
    assert!(tier.objects_written.load(Ordering::Relaxed) >= N);
    assert!(store.evicted_payloads() >= N / 2);
    // Modified on disk: read-copy-update of the rebuilt object; some deleted.
    for i in (0..N).step_by(3) {
        let key = format!("bag:{i}");
        if let Some(mut fetch) = s.locate(0, key.as_bytes()) {
            drive(&store, &mut fetch);
        }
        if i % 9 == 0 {
            assert!(s.delete(0, key.as_bytes(), 0));
            model.remove(&key);
        } else {
            push(&mut s, 0, &key, 1_000_000 + i);
            model.get_mut(&key).unwrap().push(1_000_000 + i);
        }
        s.end_command();
    }
    noise(&mut s, 16_000);
    settle(&store, &mut s);
    for i in 0..N {
        let key = format!("bag:{i}");
        if let Some(mut fetch) = s.locate(0, key.as_bytes()) {
            drive(&store, &mut fetch);
        }
        let sync = tier.sync_reads.load(Ordering::Relaxed);
        assert_eq!(bag(&mut s, 0, &key), model.get(&key).cloned(), "{key}");
        assert_eq!(tier.sync_reads.load(Ordering::Relaxed), sync, "{key}");
        s.end_command();
    }
    // Still there after the rewritten ones left memory again, and typed right.
    assert_eq!(store.db_size(0) as usize, model.len());
    let (kind, _) = s.kind_and_expiry(0, b"bag:1", 0).unwrap();
    assert_eq!(kind, ValueKind::Hash);
    assert_eq!(io_errors(&store), 0);
}
