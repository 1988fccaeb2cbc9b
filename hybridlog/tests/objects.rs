//! Collections as native objects in the log: `read_value`, `rmw_value`, `upsert_object`, and how
//! the byte API, expiry, flushing and dropping treat object records.

mod common;

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use common::{get, set, small};
use ferrite_hybridlog::{
    ObjectEntryMut, ObjectWrite, Session, Store, StoreObject, Value, ValueKind, ValueMut,
};

/// A list of counters whose elements are always `0, 1, 2, ...` (readers check that invariant)
/// and which counts its live instances.
struct Counters {
    items: Vec<u64>,
    live: Arc<AtomicI64>,
}

impl Counters {
    fn boxed(len: u64, live: &Arc<AtomicI64>) -> Box<dyn StoreObject> {
        live.fetch_add(1, Ordering::SeqCst);
        Box::new(Counters {
            items: (0..len).collect(),
            live: live.clone(),
        })
    }

    fn of(o: &dyn StoreObject) -> &Counters {
        o.as_any().downcast_ref().expect("a Counters object")
    }

    fn of_mut(o: &mut dyn StoreObject) -> &mut Counters {
        o.as_any_mut().downcast_mut().expect("a Counters object")
    }

    fn push(&mut self) -> usize {
        self.items.push(self.items.len() as u64);
        self.items.len()
    }

    fn check(&self) -> usize {
        for (i, &v) in self.items.iter().enumerate() {
            assert_eq!(v, i as u64, "inconsistent object");
        }
        self.items.len()
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl StoreObject for Counters {
    fn kind(&self) -> ValueKind {
        ValueKind::List
    }
    fn clone_box(&self) -> Box<dyn StoreObject> {
        self.live.fetch_add(1, Ordering::SeqCst);
        Box::new(Counters {
            items: self.items.clone(),
            live: self.live.clone(),
        })
    }
    fn serialize(&self, out: &mut Vec<u8>) {
        for v in &self.items {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    fn memory_usage(&self) -> usize {
        self.items.capacity() * 8
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// RPUSH of the next counter: creates the object when absent; returns the new length.
fn push(s: &mut Session, db: u8, key: &[u8], live: &Arc<AtomicI64>) -> usize {
    s.rmw_value(db, key, 0, |e: Option<ObjectEntryMut<'_>>| match e {
        None => ObjectWrite::Put {
            object: Counters::boxed(1, live),
            expire_at: 0,
            result: 1,
        },
        Some(ObjectEntryMut {
            value: ValueMut::Object(o),
            ..
        }) => ObjectWrite::Updated(Counters::of_mut(o).push()),
        Some(_) => panic!("not an object"),
    })
}

/// LLEN, checking the object's invariant; `None` when absent.
fn len(s: &mut Session, db: u8, key: &[u8], now: u64) -> Option<usize> {
    s.read_value(db, key, now, |e| match e.value {
        Value::Object(o) => {
            assert_eq!(e.kind, ValueKind::List);
            Counters::of(o).check()
        }
        Value::String(_) => panic!("not an object"),
    })
}

/// Lets the epoch run deferred frees until `live` objects remain.
fn settle(s: &mut Session, live: &AtomicI64, want: i64) {
    for _ in 0..10_000 {
        if live.load(Ordering::SeqCst) == want {
            return;
        }
        s.collect_garbage();
        std::thread::yield_now();
    }
    assert_eq!(live.load(Ordering::SeqCst), want, "objects not freed");
}

/// Fills the log with string noise until the read-only address passes `tail` as it was.
fn age_out(store: &Arc<Store>, s: &mut Session) {
    let tail = store.stats().tail_address;
    let mut i = 0u64;
    while store.stats().read_only_address <= tail {
        set(s, 1, format!("noise{i}").as_bytes(), &[b'x'; 100]);
        i += 1;
    }
    // Let the safe read-only address follow.
    for _ in 0..100 {
        s.collect_garbage();
    }
}

#[test]
fn create_mutate_read_delete() {
    let store = small(64);
    let live = Arc::new(AtomicI64::new(0));
    let mut s = store.session();
    assert_eq!(len(&mut s, 0, b"l", 0), None);
    assert_eq!(push(&mut s, 0, b"l", &live), 1);
    assert_eq!(push(&mut s, 0, b"l", &live), 2);
    assert_eq!(push(&mut s, 0, b"l", &live), 3);
    assert_eq!(len(&mut s, 0, b"l", 0), Some(3));
    assert_eq!(store.db_size(0), 1);
    assert!(s.exists(0, b"l", 0));
    // The byte API sees the kind and no bytes.
    let seen = s.read(0, b"l", 0, |e| (e.kind, e.value.len()));
    assert_eq!(seen, Some((ValueKind::List, 0)));
    // Keep leaves it alone; the kind is visible to rmw.
    let k = s.rmw(0, b"l", 0, |e, _| {
        ferrite_hybridlog::Write::Keep(e.map(|e| (e.kind, e.value.len())))
    });
    assert_eq!(k, Some((ValueKind::List, 0)));
    assert!(s.delete(0, b"l", 0));
    assert!(!s.delete(0, b"l", 0));
    assert_eq!(len(&mut s, 0, b"l", 0), None);
    assert!(!s.exists(0, b"l", 0));
    assert_eq!(store.db_size(0), 0);
    settle(&mut s, &live, 0);
    // Delete through rmw_value (a collection that became empty) and re-create.
    push(&mut s, 0, b"l", &live);
    let r = s.rmw_value(0, b"l", 0, |e| {
        assert!(e.is_some());
        ObjectWrite::Delete(7)
    });
    assert_eq!(r, 7);
    assert_eq!(len(&mut s, 0, b"l", 0), None);
    assert_eq!(push(&mut s, 0, b"l", &live), 1);
    settle(&mut s, &live, 1);
    // Strings through read_value and rmw_value.
    set(&mut s, 0, b"str", b"abc");
    let v = s.read_value(0, b"str", 0, |e| match e.value {
        Value::String(b) => (e.kind, b.to_vec()),
        Value::Object(_) => panic!("a string"),
    });
    assert_eq!(v, Some((ValueKind::String, b"abc".to_vec())));
    let v = s.rmw_value(0, b"str", 0, |e| match e.unwrap().value {
        ValueMut::String(b) => ObjectWrite::Keep(b.to_vec()),
        ValueMut::Object(_) => panic!("a string"),
    });
    assert_eq!(v, b"abc");
    // An `Updated` on a string changes nothing.
    s.rmw_value(0, b"str", 0, |_| ObjectWrite::Updated(()));
    assert_eq!(get(&mut s, 0, b"str", 0).unwrap(), b"abc");
    // Put replaces a string with an object.
    s.rmw_value(0, b"str", 0, |_| ObjectWrite::Put {
        object: Counters::boxed(4, &live),
        expire_at: 0,
        result: (),
    });
    assert_eq!(len(&mut s, 0, b"str", 0), Some(4));
    assert_eq!(store.db_size(0), 2);
}

#[test]
fn mutable_region_updates_in_place() {
    let store = small(64);
    let live = Arc::new(AtomicI64::new(0));
    let mut s = store.session();
    push(&mut s, 0, b"l", &live);
    let tail = store.stats().tail_address;
    for i in 2..=100 {
        assert_eq!(push(&mut s, 0, b"l", &live), i);
    }
    assert_eq!(
        store.stats().tail_address,
        tail,
        "in-place updates append nothing"
    );
    // Replacing the object of an object record in the mutable region is in place too.
    s.upsert_object(0, b"l", Counters::boxed(5, &live), 0);
    assert_eq!(store.stats().tail_address, tail);
    assert_eq!(len(&mut s, 0, b"l", 0), Some(5));
    settle(&mut s, &live, 1);
}

#[test]
fn read_only_objects_are_copied_on_update() {
    let store = small(64);
    let live = Arc::new(AtomicI64::new(0));
    let mut s = store.session();
    for _ in 0..10 {
        push(&mut s, 0, b"l", &live);
    }
    age_out(&store, &mut s);
    // Reads below the safe read-only address are lock-free and see the object.
    assert_eq!(len(&mut s, 0, b"l", 0), Some(10));
    let tail = store.stats().tail_address;
    assert_eq!(push(&mut s, 0, b"l", &live), 11);
    assert!(
        store.stats().tail_address > tail,
        "read-copy-update appends"
    );
    // The old copy is retired; the new one is in the mutable region and updates in place.
    settle(&mut s, &live, 1);
    let tail = store.stats().tail_address;
    assert_eq!(push(&mut s, 0, b"l", &live), 12);
    assert_eq!(store.stats().tail_address, tail);
    // A Keep below the read-only address drops its copy and publishes nothing.
    age_out(&store, &mut s);
    let tail = store.stats().tail_address;
    let n = s.rmw_value(0, b"l", 0, |e| match e.unwrap().value {
        ValueMut::Object(o) => ObjectWrite::Keep(Counters::of_mut(o).check()),
        ValueMut::String(_) => panic!(),
    });
    assert_eq!(n, 12);
    assert_eq!(store.stats().tail_address, tail);
    settle(&mut s, &live, 1);
    // A TTL change below the read-only address copies the object too.
    s.rmw(0, b"l", 0, |_, _| ferrite_hybridlog::Write::SetExpiry {
        expire_at: 1_000,
        result: (),
    });
    assert_eq!(len(&mut s, 0, b"l", 0), Some(12));
    assert_eq!(s.read(0, b"l", 0, |e| e.expire_at), Some(1_000));
    assert_eq!(store.db_expires(0), 1);
    settle(&mut s, &live, 1);
    // And a delete below the read-only address writes a tombstone and retires the object.
    age_out(&store, &mut s);
    assert!(s.delete(0, b"l", 0));
    assert_eq!(len(&mut s, 0, b"l", 0), None);
    settle(&mut s, &live, 0);
    assert_eq!(store.db_size(0), 0);
}

#[test]
fn concurrent_pushes_are_never_lost() {
    let store = small(8);
    let live = Arc::new(AtomicI64::new(0));
    const THREADS: usize = 4;
    const PER_THREAD: usize = 3_000;
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, done) = (store.clone(), done.clone());
            std::thread::spawn(move || {
                let mut s = store.session();
                let mut last = 0;
                let mut reads = 0u64;
                while !done.load(Ordering::SeqCst) {
                    // `len` checks the object's invariant under the record lock.
                    if let Some(n) = len(&mut s, 0, b"shared", 0) {
                        assert!(n >= last, "length went backwards");
                        last = n;
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, live) = (store.clone(), live.clone());
            std::thread::spawn(move || {
                let mut s = store.session();
                for i in 0..PER_THREAD {
                    push(&mut s, 0, b"shared", &live);
                    if i % 3 == 0 {
                        // Noise on the same chains, and log growth so the object keeps
                        // crossing the read-only boundary (in-place, fuzzy and RCU paths).
                        set(&mut s, 0, format!("n{t}:{i}").as_bytes(), &[b'v'; 200]);
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let mut s = store.session();
    assert_eq!(len(&mut s, 0, b"shared", 0), Some(THREADS * PER_THREAD));
    assert!(store.stats().read_only_address > 64);
    settle(&mut s, &live, 1);
}

#[test]
fn objects_are_freed_after_delete_overwrite_and_flush() {
    let store = small(64);
    let live = Arc::new(AtomicI64::new(0));
    let mut s = store.session();
    for k in 0..20 {
        push(&mut s, 0, format!("k{k}").as_bytes(), &live);
    }
    push(&mut s, 3, b"other-db", &live);
    assert_eq!(live.load(Ordering::SeqCst), 21);
    // Delete.
    assert!(s.delete(0, b"k0", 0));
    settle(&mut s, &live, 20);
    // SET over a list key overwrites it (as Redis does).
    set(&mut s, 0, b"k1", b"now a string");
    assert_eq!(get(&mut s, 0, b"k1", 0).unwrap(), b"now a string");
    assert_eq!(s.read(0, b"k1", 0, |e| e.kind), Some(ValueKind::String));
    settle(&mut s, &live, 19);
    // upsert_object over an object and over a string.
    s.upsert_object(0, b"k2", Counters::boxed(3, &live), 0);
    s.upsert_object(0, b"k1", Counters::boxed(2, &live), 0);
    assert_eq!(len(&mut s, 0, b"k1", 0), Some(2));
    assert_eq!(len(&mut s, 0, b"k2", 0), Some(3));
    settle(&mut s, &live, 20);
    assert_eq!(store.db_size(0), 19);
    // Objects move with SWAPDB.
    s.swap_db(0, 5);
    assert_eq!(len(&mut s, 5, b"k2", 0), Some(3));
    assert_eq!(len(&mut s, 0, b"k2", 0), None);
    s.swap_db(0, 5);
    // FLUSHDB frees the objects of one db only.
    s.flush_db(0);
    assert_eq!(store.db_size(0), 0);
    settle(&mut s, &live, 1);
    assert_eq!(len(&mut s, 3, b"other-db", 0), Some(1));
    s.flush_all();
    settle(&mut s, &live, 0);
}

#[test]
fn objects_expire_lazily_and_actively() {
    let store = small(64);
    let live = Arc::new(AtomicI64::new(0));
    let mut s = store.session();
    let put = |s: &mut Session, key: &[u8], at: u64| {
        s.rmw_value(0, key, 0, |_| ObjectWrite::Put {
            object: Counters::boxed(2, &live),
            expire_at: at,
            result: (),
        })
    };
    put(&mut s, b"a", 100);
    put(&mut s, b"b", 100);
    put(&mut s, b"c", 0);
    assert_eq!(store.db_expires(0), 2);
    // EXPIRE through rmw_value keeps the object.
    s.rmw_value(0, b"c", 0, |e| ObjectWrite::SetExpiry {
        expire_at: 300,
        result: assert_eq!(e.unwrap().expire_at, 0),
    });
    assert_eq!(len(&mut s, 0, b"a", 99), Some(2));
    assert_eq!(len(&mut s, 0, b"a", 100), None, "lazy expiry on read_value");
    assert!(!s.exists(0, b"b", 100), "lazy expiry on exists");
    assert_eq!(store.db_size(0), 1);
    assert_eq!(store.stats().expired_keys, 2);
    settle(&mut s, &live, 1);
    // An expired object is not handed to rmw_value.
    let seen = s.rmw_value(0, b"c", 300, |e| ObjectWrite::Keep(e.is_some()));
    assert!(!seen);
    assert_eq!(store.db_size(0), 0);
    settle(&mut s, &live, 0);
    put(&mut s, b"d", 50);
    let mut reaped = 0;
    for _ in 0..64 {
        reaped += s.active_expire(1_000, 64);
    }
    assert_eq!(reaped, 1, "active expiry");
    settle(&mut s, &live, 0);
}

#[test]
fn scan_random_key_and_counts_see_object_kinds() {
    let store = small(16);
    let live = Arc::new(AtomicI64::new(0));
    let mut s = store.session();
    push(&mut s, 0, b"list", &live);
    set(&mut s, 0, b"str", b"x");
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = s.scan(0, cursor, 10, 0, |k, e| {
            seen.push((k.to_vec(), e.kind, e.value.len()))
        });
        if cursor == 0 {
            break;
        }
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            (b"list".to_vec(), ValueKind::List, 0),
            (b"str".to_vec(), ValueKind::String, 1)
        ]
    );
    s.delete(0, b"str", 0);
    assert_eq!(s.random_key(0, 0, 42).as_deref(), Some(&b"list"[..]));
}

#[test]
fn dropping_the_store_frees_every_object() {
    let live = Arc::new(AtomicI64::new(0));
    {
        let store = small(64);
        let mut s = store.session();
        for k in 0..50 {
            for _ in 0..3 {
                push(&mut s, 0, format!("k{k}").as_bytes(), &live);
            }
        }
        // Some superseded copies (retired, maybe not freed yet) and some live ones.
        age_out(&store, &mut s);
        for k in 0..25 {
            push(&mut s, 0, format!("k{k}").as_bytes(), &live);
        }
        s.delete(0, b"k30", 0);
        assert!(live.load(Ordering::SeqCst) >= 49);
    }
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

#[test]
fn blind_object_writes_race_on_insert() {
    let store = small(1);
    let live = Arc::new(AtomicI64::new(0));
    let ts: Vec<_> = (0..4)
        .map(|_| {
            let (store, live) = (store.clone(), live.clone());
            std::thread::spawn(move || {
                let mut s = store.session();
                for i in 0..500 {
                    let key = format!("k{}", i % 50);
                    s.upsert_object(0, key.as_bytes(), Counters::boxed(i % 7, &live), 0);
                }
            })
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
    let mut s = store.session();
    assert_eq!(store.db_size(0), 50);
    for k in 0..50 {
        assert!(len(&mut s, 0, format!("k{k}").as_bytes(), 0).is_some());
    }
    settle(&mut s, &live, 50);
}
