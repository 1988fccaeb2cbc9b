//! Batch prefetching: hide the index's and the log's cache and TLB misses across a pipeline.
//!
//! A lookup costs two dependent misses: the key's bucket line, then its chain head record. A
//! pipelined batch of N commands can overlap them, as Garnet and Dragonfly do: call
//! [`Session::prefetch`] for every key of the batch (it only issues the bucket's line), then
//! [`Session::prefetch_record`] for every key (by then the bucket is, hopefully, cached: it
//! reads the entry and issues the record's lines), then execute the commands, whose lookups now
//! mostly hit the cache. Both stages are hints: they take no lock, need no epoch pin (they
//! dereference nothing but index atomics and the page table, which live as long as the store),
//! and are always safe to skip.

use crate::Db;
use crate::log::BEGIN_ADDRESS;
use crate::record::HEADER_BYTES;
use crate::session::Session;

/// Asks the CPU to bring the cache line holding `p` into all cache levels.
#[inline(always)]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is a hint: it never faults and has no architectural effect, for
        // any address (SSE is part of the x86_64 baseline).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A key's hash, handed from [`Session::prefetch`] to [`Session::prefetch_record`] and
/// [`Session::hint_key`] so that a batch hashes each key once. It remembers where the key's
/// bytes were, which is how the hint recognises them.
#[derive(Debug, Clone, Copy)]
pub struct KeyHash {
    pub(crate) hash: u64,
    pub(crate) addr: usize,
    pub(crate) len: usize,
}

impl Session {
    /// Stage 1: prefetches the index bucket `key` hashes to. `db` is unused (buckets are shared
    /// by all databases); it is there so the call reads like the command it precedes.
    /// Returns the key's hash for stage 2.
    #[inline]
    pub fn prefetch(&mut self, db: Db, key: &[u8]) -> KeyHash {
        let _ = db;
        let s = &*self.store;
        let hash = s.hasher.hash(key);
        prefetch_line(s.index.bucket_ptr(hash).cast());
        KeyHash {
            hash,
            addr: key.as_ptr().addr(),
            len: key.len(),
        }
    }

    /// Stage 2: reads `key`'s index entry (a cache hit after [`prefetch`](Self::prefetch)) and
    /// prefetches the lines of its chain head record that a lookup reads: the header, the key
    /// and the start of an inline value. Records of other keys sharing the tag are not followed.
    /// `hash` is what stage 1 returned for `key`.
    #[inline]
    pub fn prefetch_record(&mut self, db: Db, key: &[u8], hash: KeyHash) {
        let _ = db;
        let s = &*self.store;
        let Some(entry) = s.index.find(hash.hash) else {
            return;
        };
        let a = entry.address();
        // Below the head the record is on disk (tiering): nothing to prefetch in memory.
        if a < BEGIN_ADDRESS || a < s.log.head_address() {
            return;
        }
        // Not pinned: the page may be evicted meanwhile. Its address is only prefetched, which
        // never faults, but it must not be looked up as if it surely existed.
        let Some(p) = s.log.try_ptr(a) else {
            return;
        };
        let p = p.as_ptr().cast_const();
        prefetch_line(p);
        // Header, key, and the first value word: a second line when they cross one.
        if p.addr() % 64 + HEADER_BYTES + key.len() + 8 > 64 {
            prefetch_line(p.wrapping_add(64));
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;

    use crate::{Store, StoreConfig, ValueKind};

    fn small_store() -> Arc<Store> {
        Store::new(StoreConfig {
            index_buckets: 1 << 10,
            page_bits: 12,
            memory_size: 1 << 20,
            ..StoreConfig::default()
        })
        .expect("config")
    }

    #[test]
    fn prefetch_stages_are_harmless_hints() {
        let store = small_store();
        let mut s = store.session();
        // Absent keys, an empty index, long keys: nothing to fetch, nothing may break.
        let h = s.prefetch(0, b"missing");
        s.prefetch_record(0, b"missing", h);
        let long = vec![b'k'; 5000];
        for i in 0..200u32 {
            s.upsert(0, &i.to_le_bytes(), b"value", ValueKind::String, 0);
        }
        s.upsert(3, &long, b"v", ValueKind::String, 0);
        for i in 0..400u32 {
            let _ = s.prefetch(0, &i.to_le_bytes());
        }
        for i in 0..400u32 {
            let h = s.prefetch(0, &i.to_le_bytes());
            s.prefetch_record(0, &i.to_le_bytes(), h);
        }
        let h = s.prefetch(3, &long);
        s.prefetch_record(3, &long, h);
        for i in 0..200u32 {
            let v = s.read(0, &i.to_le_bytes(), 0, |e| e.value.to_vec());
            assert_eq!(v.as_deref(), Some(&b"value"[..]));
        }
        assert_eq!(s.read(3, &long, 0, |e| e.value.len()), Some(1));
    }

    #[test]
    fn a_key_hint_applies_only_to_the_bytes_it_was_computed_from() {
        let store = small_store();
        let mut s = store.session();
        let a = b"alpha".to_vec();
        let b = b"bravo".to_vec();
        s.upsert(0, &a, b"1", ValueKind::String, 0);
        s.upsert(0, &b, b"2", ValueKind::String, 0);
        // The hint for `a` is used for `a`, and ignored for other bytes of the same length.
        let h = s.prefetch(0, &a);
        s.hint_key(h);
        assert_eq!(s.read(0, &a, 0, |e| e.value.to_vec()), Some(b"1".to_vec()));
        assert_eq!(s.read(0, &b, 0, |e| e.value.to_vec()), Some(b"2".to_vec()));
        s.upsert(0, &a, b"3", ValueKind::String, 0);
        s.forget_key();
        assert_eq!(s.read(0, &a, 0, |e| e.value.to_vec()), Some(b"3".to_vec()));
        assert_eq!(s.hash_of(&a), store.hasher.hash(&a));
    }
}
