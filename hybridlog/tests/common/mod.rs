//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use ferrite_hybridlog::{Session, Store, StoreConfig, ValueKind, Write};

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
