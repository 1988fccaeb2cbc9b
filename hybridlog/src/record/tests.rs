//! Record layout and writer-side tests.

use std::ptr::NonNull;

use super::*;
use crate::record::heap::ObjectCell;
use crate::sync::Ordering;

/// An 8-aligned buffer standing in for a log page.
fn page() -> Vec<u64> {
    vec![0u64; 512]
}

fn rec_in(buf: &mut [u64]) -> Rec<'_> {
    // SAFETY: test: the buffer is 8-aligned, 4 KiB, and only accessed through `Rec`.
    unsafe { Rec::at(NonNull::new(buf.as_mut_ptr().cast()).unwrap(), 64) }
}

fn init(key: &[u8], value: &[u8], tombstone: bool) -> RecordInit<'static> {
    let key: &'static [u8] = Box::leak(key.to_vec().into_boxed_slice());
    let value: &'static [u8] = Box::leak(value.to_vec().into_boxed_slice());
    RecordInit {
        prev: 40,
        pdb: 7,
        key,
        value,
        kind: ValueKind::String,
        expire_at: 99,
        tombstone,
        object: 0,
    }
}

#[test]
fn shapes() {
    assert_eq!(Shape::new(0, 0, false, 1024).size, HEADER_BYTES + 8);
    assert_eq!(
        Shape::new(3, 9, false, 1024),
        Shape {
            key_heap: false,
            value_heap: false,
            value_cap: 16,
            object: false,
            size: HEADER_BYTES + 8 + 16
        }
    );
    assert_eq!(Shape::new(3, 9, true, 1024).value_cap, 0);
    let big = Shape::new(2000, 5000, false, 1024);
    assert!(big.key_heap && big.value_heap);
    assert_eq!(big.size, HEADER_BYTES + 16);
    // The largest inline record fits a page with room to spare.
    assert!(Shape::new(1024, 1024, false, 1024).size <= 4096);
}

#[test]
fn inline_record_round_trips() {
    let mut buf = page();
    let r = rec_in(&mut buf);
    let i = init(b"hello", b"world!", false);
    assert_eq!(r.init(&i, Shape::new(5, 6, false, 1024)), 0);
    assert_eq!(
        (r.prev(), r.pdb(), r.key(), r.expire_at()),
        (40, 7, &b"hello"[..], 99)
    );
    let mut out = Vec::new();
    let (meta, exp, ptr) = r.snapshot(&mut out);
    assert_eq!(
        (Meta(meta).len(), exp, ptr, &out[..]),
        (6, 99, 0, &b"world!"[..])
    );
    assert!(!Meta(meta).tombstone() && !Meta(meta).sealed());
    assert_eq!(r.size(), HEADER_BYTES + 8 + 8);
}

#[test]
fn locked_updates_and_tombstones() {
    let c = crossbeam_epoch::Collector::new();
    let h = c.register();
    let g = h.pin();
    let mut buf = page();
    let r = rec_in(&mut buf);
    r.init(
        &init(b"k", b"12345678", false),
        Shape::new(1, 8, false, 1024),
    );
    {
        let mut l = r.try_lock().unwrap();
        assert!(r.try_lock().is_none());
        assert!(l.fits(8, 1024) && !l.fits(9, 1024));
        assert_eq!(l.put(b"abc", ValueKind::String, 5, &g), 0);
        l.set_expiry(6);
    }
    let mut out = Vec::new();
    let (meta, exp, _) = r.snapshot(&mut out);
    assert_eq!(
        (&out[..], exp, r.version().load(Ordering::Relaxed)),
        (&b"abc"[..], 6, 2)
    );
    assert_eq!(Meta(meta).len(), 3);
    r.try_lock().unwrap().tombstone(&g);
    assert!(Meta(r.meta()).tombstone());
    r.try_lock().unwrap().seal(&g);
    assert!(Meta(r.meta()).sealed());
    // An unchanged unlock restores the version: readers need not retry.
    let before = r.version().load(Ordering::Relaxed);
    drop(r.try_lock().unwrap());
    assert_eq!(r.version().load(Ordering::Relaxed), before);
}

#[test]
fn heap_blocks_are_owned_swapped_and_freed() {
    let c = crossbeam_epoch::Collector::new();
    let h = c.register();
    let mut buf = page();
    let r = rec_in(&mut buf);
    let key = vec![b'k'; 3000];
    let value = vec![b'v'; 5000];
    let heap = r.init(
        &init(&key, &value, false),
        Shape::new(3000, 5000, false, 1024),
    );
    assert_eq!(heap, 8000);
    assert_eq!(r.key(), &key[..]);
    // SAFETY: test: single-threaded, the record owns its block.
    assert_eq!(unsafe { r.value_unsynchronized(r.meta()) }, &value[..]);
    {
        let g = h.pin();
        let mut l = r.try_lock().unwrap();
        assert!(l.fits(2000, 1024) && !l.fits(100, 1024));
        assert_eq!(l.put(&[b'w'; 2000], ValueKind::String, 0, &g), 2000 - 5000);
    }
    // SAFETY: as above.
    let now = unsafe { r.value_unsynchronized(r.meta()) };
    assert_eq!(now, &[b'w'; 2000][..]);
    assert_eq!(r.free_blocks().heap, 5000);
}

#[test]
fn invalidated_records_own_nothing() {
    let mut buf = page();
    let r = rec_in(&mut buf);
    r.init(
        &init(&[1; 2000], &[2; 2000], false),
        Shape::new(2000, 2000, false, 1024),
    );
    assert_eq!(r.invalidate(), 4000);
    assert!(r.info() & F_INVALID != 0);
    assert_eq!(r.free_blocks(), Freed::default());
}

/// A test object that counts its live instances.
struct Probe(std::sync::Arc<std::sync::atomic::AtomicI64>, u64);

impl Probe {
    fn boxed(live: &std::sync::Arc<std::sync::atomic::AtomicI64>, v: u64) -> ObjectCell {
        live.fetch_add(1, Ordering::SeqCst);
        ObjectCell::new(Box::new(Probe(live.clone(), v)))
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl crate::StoreObject for Probe {
    fn kind(&self) -> ValueKind {
        ValueKind::Set
    }
    fn clone_box(&self) -> Box<dyn crate::StoreObject> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::new(Probe(self.0.clone(), self.1))
    }
    fn serialize(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.1.to_le_bytes());
    }
    fn memory_usage(&self) -> usize {
        8
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

fn value_of(o: &dyn crate::StoreObject) -> u64 {
    o.as_any().downcast_ref::<Probe>().unwrap().1
}

#[test]
fn object_records_own_swap_and_retire_cells() {
    let live = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let c = crossbeam_epoch::Collector::new();
    let h = c.register();
    let mut buf = page();
    let r = rec_in(&mut buf);
    let mut cell = Probe::boxed(&live, 1);
    cell.get_mut()
        .as_any_mut()
        .downcast_mut::<Probe>()
        .unwrap()
        .1 = 5;
    let shape = Shape::object(3, 1024);
    assert_eq!(shape.size, HEADER_BYTES + 8 + 8);
    let init = RecordInit {
        kind: ValueKind::Set,
        object: cell.as_raw(),
        ..init(b"key", b"", false)
    };
    assert_eq!(r.init(&init, shape), 0);
    let _owned = cell.into_raw();
    assert!(r.is_object() && r.size() == shape.size);
    assert_eq!(Meta(r.meta()).kind(), ValueKind::Set);
    assert_eq!(Meta(r.meta()).len(), 0);
    {
        let mut l = r.try_lock().unwrap();
        assert!(!l.fits(0, 1024), "bytes never go into an object record");
        let p = r.object_ptr().load(Ordering::Relaxed);
        // SAFETY: test: we hold the lock and the record owns the cell.
        let o = unsafe { object_mut(p) };
        o.as_any_mut().downcast_mut::<Probe>().unwrap().1 += 1;
        // SAFETY: as above.
        assert_eq!(value_of(unsafe { object_ref(p) }), 6);
        let g = h.pin();
        // The old object's measure comes back, for the store's counters.
        let freed = l.put_object(Probe::boxed(&live, 9), ValueKind::Set, 7, &g);
        assert_eq!(freed, Freed { heap: 0, object: 8 });
    }
    // The old cell is retired, not yet necessarily freed; the new one is in place.
    let p = r.object_ptr().load(Ordering::Relaxed);
    // SAFETY: test: single-threaded, the record owns the cell.
    assert_eq!(value_of(unsafe { object_ref(p) }), 9);
    assert_eq!(r.expire_at(), 7);
    let freed = r.try_lock().unwrap().tombstone(&h.pin());
    assert_eq!(freed, Freed { heap: 0, object: 8 });
    assert_eq!(r.object_ptr().load(Ordering::Relaxed), 0);
    for _ in 0..200 {
        h.pin().flush();
    }
    assert_eq!(live.load(Ordering::SeqCst), 0, "retired cells are freed");
    assert_eq!(r.free_blocks(), Freed::default());
}

#[test]
fn invalidated_object_records_leave_the_cell_to_the_caller() {
    let live = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let mut buf = page();
    let r = rec_in(&mut buf);
    let cell = Probe::boxed(&live, 3);
    let init = RecordInit {
        kind: ValueKind::Set,
        object: cell.as_raw(),
        ..init(b"key", b"", false)
    };
    r.init(&init, Shape::object(3, 1024));
    r.invalidate();
    assert_eq!(live.load(Ordering::SeqCst), 1);
    drop(cell);
    assert_eq!(live.load(Ordering::SeqCst), 0);
    // A published record frees its cell when the store drops it; a sealed one does not.
    let mut buf = page();
    let r = rec_in(&mut buf);
    let cell = Probe::boxed(&live, 4);
    let init = RecordInit {
        object: cell.into_raw(),
        ..init
    };
    r.init(&init, Shape::object(3, 1024));
    assert_eq!(r.free_blocks(), Freed { heap: 0, object: 8 });
    assert_eq!(live.load(Ordering::SeqCst), 0);
    // SAFETY: test: a zero pointer is no cell.
    assert!(unsafe { ObjectCell::from_raw(0) }.is_none());
}
