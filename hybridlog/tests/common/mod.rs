//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use ferrite_hybridlog::disk::{DiskConfig, SegmentedFile};
use ferrite_hybridlog::{Session, Store, StoreConfig, StoreObject, Value, ValueKind, Write};

/// A test's data directory, removed when dropped.
pub struct Dir(pub PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store with a disk tier: its log and object log are segmented files (of `segment_bits`,
/// or the default size) in a fresh directory `<name>-<pid>` under the build directory (/tmp
/// may be a tmpfs without O_DIRECT).
pub fn tiered_store(name: &str, cfg: StoreConfig, segment_bits: Option<u32>) -> (Arc<Store>, Dir) {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let open = |sub: &str| {
        let base = DiskConfig::new(dir.join(sub));
        let cfg = match segment_bits {
            Some(segment_bits) => DiskConfig {
                segment_bits,
                ..base
            },
            None => base,
        };
        SegmentedFile::open(&cfg).unwrap()
    };
    let store =
        Store::with_devices(cfg, Box::new(open("hlog")), Box::new(open("objects"))).unwrap();
    (store, Dir(dir))
}

/// A small store: 4 KiB pages, a 64 KiB budget of which half is mutable, so tests cross pages
/// and the read-only boundary quickly.
pub fn small(buckets: usize) -> Arc<Store> {
    Store::new(StoreConfig {
        index_buckets: buckets,
        page_bits: 12,
        memory_size: 1 << 16,
        mutable_fraction: 0.5,
        databases: 16,
        ..StoreConfig::default()
    })
    .unwrap()
}

/// GET: the value of `key`, if live at `now`.
pub fn get(s: &mut Session, db: u8, key: &[u8], now: u64) -> Option<Vec<u8>> {
    s.read(db, key, now, |e| e.value.to_vec())
}

/// SET without expiry.
pub fn set(s: &mut Session, db: u8, key: &[u8], value: &[u8]) {
    s.upsert(db, key, value, ValueKind::String, 0);
}

/// INCR: parses the old value as a decimal integer and stores old + 1; returns the new value.
pub fn incr(s: &mut Session, db: u8, key: &[u8], now: u64) -> i64 {
    s.rmw(db, key, now, |old, out| {
        assert!(out.is_empty(), "scratch must arrive empty");
        let n: i64 = old.map_or(0, |e| {
            std::str::from_utf8(e.value).unwrap().parse().unwrap()
        }) + 1;
        out.extend_from_slice(n.to_string().as_bytes());
        Write::Put {
            kind: ValueKind::String,
            expire_at: old.map_or(0, |e| e.expire_at),
            result: n,
        }
    })
}

/// A collection for the tests: a list of numbers, stored as a hash (any object kind will do).
#[derive(Clone, Debug, PartialEq)]
pub struct Bag(pub Vec<u64>);

impl Bag {
    /// The store's object reader for bags.
    pub fn read(kind: ValueKind, bytes: &[u8]) -> Result<Box<dyn StoreObject>, String> {
        if kind != ValueKind::Hash || !bytes.len().is_multiple_of(8) {
            return Err(format!("not a bag: {kind:?}, {} bytes", bytes.len()));
        }
        let items = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        Ok(Box::new(Bag(items)))
    }
}

impl StoreObject for Bag {
    fn kind(&self) -> ValueKind {
        ValueKind::Hash
    }
    fn clone_box(&self) -> Box<dyn StoreObject> {
        Box::new(self.clone())
    }
    fn serialize(&self, out: &mut Vec<u8>) {
        for v in &self.0 {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    fn memory_usage(&self) -> usize {
        self.0.capacity() * 8
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The numbers in the bag at `key`, read at `now` (Unix ms).
pub fn bag(s: &mut Session, db: u8, key: &[u8], now: u64) -> Option<Vec<u64>> {
    s.read_value(db, key, now, |e| match e.value {
        Value::Object(o) => o.as_any().downcast_ref::<Bag>().unwrap().0.clone(),
        Value::String(_) => panic!("{} is a string", String::from_utf8_lossy(key)),
    })
}
