//! Whole-index walks: SCAN, RANDOMKEY, the active expiry cycle and FLUSHDB/FLUSHALL.
//!
//! All of them visit index buckets and, for each chain, the newest record of every key on it (a
//! chain holds all keys sharing a (bucket, tag), newest records first, so the first record of a
//! key on the chain is its newest).

use crossbeam_epoch::Guard;

use crate::ops::{self, Decision, is_expired};
use crate::record::{Meta, Rec};
use crate::session::Session;
use crate::store::Store;
use crate::{Db, Entry};

/// Random buckets RANDOMKEY samples before it falls back to a walk.
const RANDOM_PROBES: usize = 32;

/// Redis's reverse-binary cursor increment (`dictScan`): increments the reversed bucket bits,
/// so a cursor taken before the index doubles still covers every bucket exactly once after.
#[inline]
pub fn next_cursor(cursor: u64, mask: u64) -> u64 {
    let v = (cursor | !mask).reverse_bits().wrapping_add(1);
    v.reverse_bits()
}

/// Calls `f` with the newest record of every (db, key) on main bucket `bucket`'s chains.
fn visit_bucket<'s>(
    s: &'s Store,
    bucket: usize,
    heads: &mut Vec<u64>,
    seen: &mut Vec<u64>,
    mut f: impl FnMut(Rec<'s>),
) {
    heads.clear();
    s.index.for_each_entry(bucket, |e| heads.push(e.address()));
    for &head in heads.iter() {
        seen.clear();
        let mut a = head;
        while a >= crate::log::BEGIN_ADDRESS {
            let r = s.rec(a);
            let dup = seen.iter().any(|&o| {
                let o = s.rec(o);
                o.pdb() == r.pdb() && o.key() == r.key()
            });
            if !dup {
                seen.push(a);
                f(r);
            }
            a = r.prev();
        }
    }
}

/// A record's (meta, expire) under its seqlock, without copying the value.
fn state(r: Rec<'_>) -> (Meta, u64) {
    let mut step = 0;
    loop {
        if let Some(v) = crate::seqlock::read_begin(r.version()) {
            let (m, e) = (r.meta(), r.expire_at());
            if crate::seqlock::read_validate(r.version(), v) {
                return (Meta(m), e);
            }
        }
        crate::sync::spin_wait(&mut step);
    }
}

impl Session {
    /// One SCAN step.
    pub fn scan(
        &mut self,
        db: Db,
        cursor: u64,
        count: usize,
        now_ms: u64,
        mut f: impl FnMut(&[u8], Entry<'_>),
    ) -> u64 {
        let s = &*self.store;
        let guard = self.handle.pin();
        let pdb = s.pdb(db);
        let mask = (s.index.bucket_count() - 1) as u64;
        let count = count.max(1);
        let (mut reported, mut visited, mut v) = (0usize, 0usize, cursor);
        let (buf, work) = (&mut self.buf, &mut self.work);
        work.clear();
        loop {
            visit_bucket(
                s,
                (v & mask) as usize,
                &mut self.heads,
                &mut self.seen,
                |r| {
                    if r.pdb() != pdb {
                        return;
                    }
                    let (meta, expire, ptr) = r.snapshot(buf);
                    let meta = Meta(meta);
                    if meta.tombstone() {
                        return;
                    }
                    if is_expired(expire, now_ms) {
                        work.push((pdb, r.key().to_vec()));
                        return;
                    }
                    let value = if r.value_heap() {
                        // SAFETY: as in `ops::read`: the block belonged to the key's newest record
                        // while we were pinned, so its retirement waits for our guard.
                        unsafe { std::slice::from_raw_parts(ptr as *const u8, meta.len()) }
                    } else {
                        &buf[..]
                    };
                    f(
                        r.key(),
                        Entry {
                            value,
                            expire_at: expire,
                            kind: meta.kind(),
                        },
                    );
                    reported += 1;
                },
            );
            visited += 1;
            v = next_cursor(v, mask);
            if v == 0 || reported >= count || visited >= count.saturating_mul(10) {
                break;
            }
        }
        reap(s, &guard, &mut self.work, &mut self.scratch, now_ms);
        drop(guard);
        self.trim_buffers();
        v
    }

    /// A random live key, or `None` if `db` has none. Samples a few random buckets, then walks
    /// the index from a random bucket, so a sparse database still answers in one pass at most.
    pub fn random_key(&mut self, db: Db, now_ms: u64, seed: u64) -> Option<Vec<u8>> {
        let s = &*self.store;
        let pdb = s.pdb(db);
        if s.physical_size(pdb) <= 0 {
            return None;
        }
        let guard = self.handle.pin();
        let n = s.index.bucket_count();
        let mut rng = seed;
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let start = splitmix(&mut rng) as usize;
        let probes = (0..RANDOM_PROBES).map(|_| splitmix(&mut rng) as usize);
        let walk = (0..n).map(|i| start.wrapping_add(i));
        let work = &mut self.work;
        work.clear();
        for b in probes.chain(walk) {
            visit_bucket(s, b & (n - 1), &mut self.heads, &mut self.seen, |r| {
                if r.pdb() != pdb {
                    return;
                }
                let (meta, expire) = state(r);
                if meta.tombstone() {
                } else if is_expired(expire, now_ms) {
                    work.push((pdb, r.key().to_vec()));
                } else {
                    keys.push(r.key().to_vec());
                }
            });
            if !keys.is_empty() {
                break;
            }
        }
        reap(s, &guard, &mut self.work, &mut self.scratch, now_ms);
        if keys.is_empty() {
            return None;
        }
        let i = splitmix(&mut rng) as usize % keys.len();
        Some(keys.swap_remove(i))
    }

    /// Removes every key of `db`.
    pub fn flush_db(&mut self, db: Db) {
        let pdb = self.store.pdb(db);
        if self.store.physical_size(pdb) != 0 {
            self.flush(Some(pdb));
        }
    }

    /// Removes every key.
    pub fn flush_all(&mut self) {
        self.flush(None);
    }

    /// Deletes every key of physical db `only` (or of all), bucket by bucket. O(keys), like
    /// Redis's synchronous FLUSHDB; keys written concurrently may survive, as if written after.
    fn flush(&mut self, only: Option<u8>) {
        let s = &*self.store;
        for b in 0..s.index.bucket_count() {
            let guard = self.handle.pin();
            let work = &mut self.work;
            work.clear();
            visit_bucket(s, b, &mut self.heads, &mut self.seen, |r| {
                if only.is_none_or(|p| p == r.pdb()) && !state(r).0.tombstone() {
                    work.push((r.pdb(), r.key().to_vec()));
                }
            });
            for (pdb, key) in self.work.drain(..) {
                let hash = s.hasher.hash(&key);
                let del = |_: Option<Entry<'_>>, _: &mut Vec<u8>| Decision::Delete;
                ops::write(s, &guard, pdb, &key, hash, 0, &mut self.scratch, None, del);
            }
        }
        self.trim_buffers();
    }

    /// One step of the active expiry cycle; returns keys reaped.
    pub fn active_expire(&mut self, now_ms: u64, max_buckets: usize) -> u64 {
        let s = &*self.store;
        let guard = self.handle.pin();
        let n = s.index.bucket_count();
        let work = &mut self.work;
        work.clear();
        for _ in 0..max_buckets.min(n) {
            let b = self.expire_cursor & (n - 1);
            self.expire_cursor = self.expire_cursor.wrapping_add(1);
            visit_bucket(s, b, &mut self.heads, &mut self.seen, |r| {
                let (meta, expire) = state(r);
                if !meta.tombstone() && is_expired(expire, now_ms) {
                    work.push((r.pdb(), r.key().to_vec()));
                }
            });
        }
        reap(s, &guard, &mut self.work, &mut self.scratch, now_ms)
    }
}

/// Deletes the collected keys if they are (still) expired; returns how many were reaped.
fn reap(
    s: &Store,
    guard: &Guard,
    work: &mut Vec<(u8, Vec<u8>)>,
    scratch: &mut Vec<u8>,
    now_ms: u64,
) -> u64 {
    let mut reaped = 0;
    for (pdb, key) in work.drain(..) {
        let hash = s.hasher.hash(&key);
        let keep = |_: Option<Entry<'_>>, _: &mut Vec<u8>| Decision::Keep;
        reaped +=
            u64::from(ops::write(s, guard, pdb, &key, hash, now_ms, scratch, None, keep).reaped);
    }
    reaped
}

/// SplitMix64: a tiny generator for RANDOMKEY's bucket choice.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
