//! `Session::read_append`: GET's one-copy read straight into an output buffer.

mod common;

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{get, set, small};
use ferrite_hybridlog::{Session, Store, StoreConfig, StoreObject, ValueKind, Write};

/// GET's use of the API: `$len\r\n` then the value for strings, nothing for other kinds.
fn get_into(s: &mut Session, db: u8, key: &[u8], now: u64, out: &mut Vec<u8>) -> Option<ValueKind> {
    s.read_append(db, key, now, out, |out, kind, len| {
        if kind == ValueKind::String {
            out.extend_from_slice(format!("${len}\r\n").as_bytes());
            true
        } else {
            false
        }
    })
}

fn bulk(value: &[u8]) -> Vec<u8> {
    let mut v = format!("${}\r\n", value.len()).into_bytes();
    v.extend_from_slice(value);
    v
}

/// Fills the log with noise in db 1 until the read-only address passes the current tail, and
/// lets the safe read-only address follow.
fn age_out(store: &Arc<Store>, s: &mut Session) {
    let tail = store.stats().tail_address;
    let mut i = 0u64;
    while store.stats().read_only_address <= tail {
        set(s, 1, format!("noise{i}").as_bytes(), &[b'x'; 100]);
        i += 1;
    }
    for _ in 0..100 {
        s.collect_garbage();
    }
}

#[test]
fn appends_header_and_value_after_existing_bytes() {
    let store = small(64);
    let mut s = store.session();
    // Inline values of every length around a word boundary, and a heap value.
    let lens = (0..=40).chain([1000, 5000, 70_000]);
    for len in lens {
        let value: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        set(&mut s, 0, b"k", &value);
        let mut out = b"prefix".to_vec();
        assert_eq!(
            get_into(&mut s, 0, b"k", 0, &mut out),
            Some(ValueKind::String)
        );
        let mut want = b"prefix".to_vec();
        want.extend_from_slice(&bulk(&value));
        assert_eq!(out, want, "len {len}");
        assert_eq!(get(&mut s, 0, b"k", 0).as_deref(), Some(&value[..]));
    }
}

#[test]
fn absent_tombstoned_and_expired_write_nothing() {
    let store = small(64);
    let mut s = store.session();
    let mut out = b"x".to_vec();
    let mut calls = 0;
    let mut count = |_: &mut Vec<u8>, _: ValueKind, _: usize| {
        calls += 1;
        true
    };
    assert_eq!(s.read_append(0, b"none", 0, &mut out, &mut count), None);
    set(&mut s, 0, b"gone", b"v");
    assert!(s.delete(0, b"gone", 0));
    assert_eq!(s.read_append(0, b"gone", 0, &mut out, &mut count), None);
    // Expired: absent, and lazily deleted as `read` does.
    s.upsert(0, b"ttl", b"value", ValueKind::String, 1_000);
    assert_eq!(store.db_size(0), 1);
    assert_eq!(
        get_into(&mut s, 0, b"ttl", 999, &mut out),
        Some(ValueKind::String)
    );
    out.truncate(1);
    assert_eq!(s.read_append(0, b"ttl", 1_000, &mut out, &mut count), None);
    assert_eq!(store.db_size(0), 0);
    assert_eq!(store.stats().expired_keys, 1);
    assert_eq!(out, b"x");
    assert_eq!(calls, 0);
}

#[test]
fn unwanted_value_rolls_the_header_back() {
    let store = small(64);
    let mut s = store.session();
    for value in [&b"short"[..], &[b'h'; 5000][..]] {
        set(&mut s, 0, b"k", value);
        let mut out = b"keep".to_vec();
        let got = s.read_append(0, b"k", 0, &mut out, |out, kind, len| {
            assert_eq!((kind, len), (ValueKind::String, value.len()));
            out.extend_from_slice(b"$header that must go\r\n");
            false
        });
        assert_eq!(got, Some(ValueKind::String));
        assert_eq!(out, b"keep");
    }
}

/// A minimal list object.
struct Obj;

impl StoreObject for Obj {
    fn kind(&self) -> ValueKind {
        ValueKind::List
    }
    fn clone_box(&self) -> Box<dyn StoreObject> {
        Box::new(Obj)
    }
    fn serialize(&self, _: &mut Vec<u8>) {}
    fn memory_usage(&self) -> usize {
        0
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[test]
fn objects_return_their_kind_and_write_nothing() {
    let store = small(64);
    let mut s = store.session();
    s.upsert_object(0, b"list", Box::new(Obj), 0);
    for round in 0..2 {
        let mut out = b"x".to_vec();
        assert_eq!(
            get_into(&mut s, 0, b"list", 0, &mut out),
            Some(ValueKind::List),
            "round {round}"
        );
        assert_eq!(out, b"x");
        // Then again below the safe read-only address.
        age_out(&store, &mut s);
    }
}

#[test]
fn read_only_records_are_read_directly() {
    let store = small(64);
    let mut s = store.session();
    set(&mut s, 0, b"inline", b"0123456789abc");
    set(&mut s, 0, b"heap", &[b'z'; 3000]);
    s.upsert(0, b"ttl", b"v", ValueKind::String, 5_000);
    age_out(&store, &mut s);
    let mut out = Vec::new();
    assert_eq!(
        get_into(&mut s, 0, b"inline", 0, &mut out),
        Some(ValueKind::String)
    );
    assert_eq!(
        get_into(&mut s, 0, b"heap", 0, &mut out),
        Some(ValueKind::String)
    );
    let mut want = bulk(b"0123456789abc");
    want.extend_from_slice(&bulk(&[b'z'; 3000]));
    assert_eq!(out, want);
    assert_eq!(get_into(&mut s, 0, b"ttl", 6_000, &mut out), None);
    assert_eq!(out, want);
    assert_eq!(store.db_size(0), 2);
}

/// In-place writers change length and bytes of one key while readers append it over and over
/// to one buffer: every appended copy is whole (one byte value, a length the header announced),
/// so a torn attempt was always rolled back, header included.
#[test]
fn torn_reads_are_rolled_back_and_retried() {
    for (page_bits, len) in [(22, 64usize), (12, 256), (12, 1024), (12, 3_000)] {
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
                for i in 0..20_000u32 {
                    let b = (i % 251) as u8;
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
                    let mut out = Vec::new();
                    while !stop.load(Ordering::Acquire) {
                        out.clear();
                        for _ in 0..8 {
                            let mark = out.len();
                            let mut headers = 0;
                            let got = s.read_append(0, b"hot", 0, &mut out, |out, _, n| {
                                headers += 1;
                                out.extend_from_slice(&(n as u32).to_le_bytes());
                                true
                            });
                            if got.is_none() {
                                assert_eq!(out.len(), mark);
                                continue;
                            }
                            assert!(headers >= 1);
                            let n = u32::from_le_bytes(out[mark..mark + 4].try_into().unwrap());
                            let value = &out[mark + 4..];
                            assert_eq!(value.len(), n as usize, "stale header kept");
                            assert!(value.len() > len - 8 && value.len() <= len);
                            let first = value[0];
                            assert!(value.iter().all(|&b| b == first), "torn read");
                        }
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
