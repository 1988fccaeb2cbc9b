//! Whole-index walks: SCAN, RANDOMKEY, the active expiry cycle and FLUSHDB/FLUSHALL.
//!
//! All of them visit index buckets and, for each chain, the newest record of every key on it (a
//! chain holds all keys sharing a (bucket, tag), newest records first, so the first record of a
//! key on the chain is its newest).
//!
//! They walk in SCAN's reverse-binary order and skip the groups of 64 buckets that the index's
//! occupancy bits say hold no live record (see [`index`](crate::index)), so their cost follows
//! the data rather than the index size: SCAN, KEYS, RANDOMKEY and FLUSHALL on a 1M-bucket index
//! holding three keys look at three groups. FLUSHDB/FLUSHALL clear the bits of the groups they
//! empty, and the active expiry cycle clears those of groups it finds empty (after DELs), under
//! the index's clear protocol.

use crossbeam_epoch::Guard;

use crate::ops::{self, Decision, is_expired};
use crate::record::{Meta, Rec};
use crate::session::Session;
use crate::store::Store;
use crate::tier::{self, OnDisk};
use crate::{Db, Entry, NO_EXPIRY};

/// Which keys `maxmemory` eviction may pick and how it ranks them (Redis's policies, but
/// `noeviction`, which evicts nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionPolicy {
    /// Least recently used, any key.
    AllKeysLru,
    /// Least frequently used, any key.
    AllKeysLfu,
    /// Any key at random.
    AllKeysRandom,
    /// Least recently used among keys with a TTL.
    VolatileLru,
    /// Least frequently used among keys with a TTL.
    VolatileLfu,
    /// Any key with a TTL, at random.
    VolatileRandom,
    /// The key with the nearest expiry.
    VolatileTtl,
}

impl EvictionPolicy {
    fn volatile(self) -> bool {
        matches!(
            self,
            Self::VolatileLru | Self::VolatileLfu | Self::VolatileRandom | Self::VolatileTtl
        )
    }
}

/// Random buckets RANDOMKEY samples before it falls back to a walk.
const RANDOM_PROBES: usize = 32;

/// Redis's reverse-binary cursor increment (`dictScan`): increments the reversed bucket bits,
/// so a cursor taken before the index doubles still covers every bucket exactly once after.
#[inline]
pub fn next_cursor(cursor: u64, mask: u64) -> u64 {
    let v = (cursor | !mask).reverse_bits().wrapping_add(1);
    v.reverse_bits()
}

/// Calls `f` with the newest record of every (db, key) on main bucket `bucket`'s chains; false
/// when the bucket has no entry at all. Below the log's head the chains go on on disk: with
/// `disk`, they are read (synchronously); without, the walk stops there and says so in
/// [`Visit::below_head`].
fn visit_bucket<'s>(
    s: &'s Store,
    bucket: usize,
    heads: &mut Vec<u64>,
    seen: &mut Vec<u64>,
    disk: bool,
    mut f: impl FnMut(Rec<'s>),
) -> Visit {
    heads.clear();
    s.index.for_each_entry(bucket, |e| heads.push(e.address()));
    let in_memory = s.log.head_address();
    let mut visit = Visit {
        any: !heads.is_empty(),
        below_head: false,
    };
    // A record already handed to `f` (memory, or disk and cached by address on this thread).
    let known = |a: u64| match a >= in_memory {
        true => Some(s.rec(a)),
        false => match tier::record_at(s, a) {
            OnDisk::Rec(r) => Some(r),
            _ => None,
        },
    };
    for &head in heads.iter() {
        seen.clear();
        let mut a = head;
        while a >= crate::log::BEGIN_ADDRESS {
            let r = if a >= in_memory {
                s.rec(a)
            } else if !disk {
                visit.below_head = true;
                break;
            } else {
                match tier::record_at(s, a) {
                    OnDisk::Rec(r) => r,
                    OnDisk::Skip { prev } => {
                        a = prev;
                        continue;
                    }
                    OnDisk::End => break,
                }
            };
            let dup = seen
                .iter()
                .any(|&o| known(o).is_some_and(|o| o.pdb() == r.pdb() && o.key() == r.key()));
            if !dup {
                seen.push(a);
                f(r);
            }
            a = r.prev();
        }
    }
    visit
}

/// What [`visit_bucket`] saw.
struct Visit {
    /// The bucket had entries.
    any: bool,
    /// A chain went below the head and was not followed.
    below_head: bool,
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
    /// One SCAN step. Like Redis's, it stops after `count` keys or after `10 * count` non-empty
    /// buckets; empty buckets cost no budget, and groups without live records are skipped, so an
    /// empty database answers cursor 0 at once and a small one in one call.
    pub fn scan(
        &mut self,
        db: Db,
        cursor: u64,
        count: usize,
        now_ms: u64,
        mut f: impl FnMut(&[u8], Entry<'_>),
    ) -> u64 {
        let s = &*self.store;
        let pdb = s.pdb(db);
        // A key present since before this call is counted, so an empty count means no key.
        if s.physical_size(pdb) <= 0 {
            return 0;
        }
        let guard = self.handle.pin();
        let ix = &s.index;
        let (n, group_len) = (ix.bucket_count(), ix.group_len());
        let count = count.max(1);
        let budget = count.saturating_mul(10);
        let cap = budget.saturating_mul(group_len);
        let mut pos = ix.reverse((cursor & (n as u64 - 1)) as usize);
        let (mut reported, mut nonempty, mut examined, mut groups) = (0usize, 0usize, 0usize, 0);
        let mut group = usize::MAX;
        let (buf, work) = (&mut self.buf, &mut self.work);
        work.clear();
        let finished = loop {
            if pos / group_len != group {
                let Some(g) = ix.next_occupied_group(pos / group_len) else {
                    break true;
                };
                if g != pos / group_len {
                    pos = g * group_len;
                }
                group = g;
                groups += 1;
            }
            let bucket = ix.reverse(pos);
            let visit = visit_bucket(s, bucket, &mut self.heads, &mut self.seen, true, |r| {
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
            });
            nonempty += usize::from(visit.any);
            examined += 1;
            pos += 1;
            if pos == n {
                break true;
            }
            if reported >= count || nonempty >= budget || examined >= cap {
                break false;
            }
        };
        ix.count_visits(groups, examined as u64);
        let next = if finished { 0 } else { ix.reverse(pos) as u64 };
        reap(
            s,
            &guard,
            &mut self.work,
            &mut self.scratch,
            &mut self.commits,
            now_ms,
        );
        drop(guard);
        self.trim_buffers();
        next
    }

    /// A random live key, or `None` if `db` has none. Samples a few random buckets (in occupied
    /// groups), then walks the occupied groups from a random one, so a sparse database still
    /// answers after one pass over the occupancy bits at most.
    pub fn random_key(&mut self, db: Db, now_ms: u64, seed: u64) -> Option<Vec<u8>> {
        let s = &*self.store;
        let pdb = s.pdb(db);
        if s.physical_size(pdb) <= 0 {
            return None;
        }
        let guard = self.handle.pin();
        let ix = &s.index;
        let (n, groups) = (ix.bucket_count(), ix.group_count());
        let mut rng = seed;
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let (work, heads, seen) = (&mut self.work, &mut self.heads, &mut self.seen);
        work.clear();
        let mut visit = |b: usize, keys: &mut Vec<Vec<u8>>| {
            visit_bucket(s, b, heads, seen, true, |r| {
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
        };
        let (mut visited_groups, mut visited_buckets) = (0u64, 0u64);
        for _ in 0..RANDOM_PROBES {
            let b = splitmix(&mut rng) as usize & (n - 1);
            if ix.group_marked(ix.group_of(b)) {
                visited_buckets += 1;
                visit(b, &mut keys);
                if !keys.is_empty() {
                    break;
                }
            }
        }
        if keys.is_empty() {
            let start = splitmix(&mut rng) as usize % groups;
            for g in occupied_groups_from(ix, start) {
                visited_groups += 1;
                for b in ix.group_buckets(g) {
                    visited_buckets += 1;
                    visit(b, &mut keys);
                }
                if !keys.is_empty() {
                    break;
                }
            }
        }
        ix.count_visits(visited_groups, visited_buckets);
        reap(
            s,
            &guard,
            &mut self.work,
            &mut self.scratch,
            &mut self.commits,
            now_ms,
        );
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

    /// `maxmemory` eviction: samples about `samples` keys (of every database) from random
    /// buckets, as Redis's approximated LRU/LFU does, and deletes the best candidate under
    /// `policy` (an expired key first). Keys below the head are read synchronously to be
    /// sampled. False when no candidate was found.
    pub fn evict_one(
        &mut self,
        policy: EvictionPolicy,
        samples: usize,
        now_ms: u64,
        seed: u64,
    ) -> bool {
        let s = &*self.store;
        let guard = self.handle.pin();
        let ix = &s.index;
        let n = ix.bucket_count();
        let mut rng = seed;
        let (heads, seen) = (&mut self.heads, &mut self.seen);
        let mut best: Option<(u64, u8, Vec<u8>)> = None;
        let mut sampled = 0;
        let samples = samples.max(1);
        let mut sample = |b: usize, sampled: &mut usize, rng: &mut u64| {
            visit_bucket(s, b, heads, seen, true, |r| {
                let (meta, expire) = state(r);
                if meta.tombstone() || (policy.volatile() && expire == NO_EXPIRY) {
                    return;
                }
                *sampled += 1;
                let score = if is_expired(expire, now_ms) {
                    u64::MAX
                } else {
                    match policy {
                        EvictionPolicy::AllKeysLru
                        | EvictionPolicy::VolatileLru
                        | EvictionPolicy::AllKeysLfu
                        | EvictionPolicy::VolatileLfu => s.access.evictability(r.access()),
                        EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom => {
                            splitmix(rng) >> 1
                        }
                        EvictionPolicy::VolatileTtl => u64::MAX - 1 - expire,
                    }
                };
                if best.as_ref().is_none_or(|(top, ..)| score > *top) {
                    best = Some((score, r.pdb(), r.key().to_vec()));
                }
            });
        };
        // Random buckets first, as Redis samples its dict; empty groups are skipped for free
        // but empty buckets in occupied ones cost a probe.
        for _ in 0..samples * 64 {
            if sampled >= samples {
                break;
            }
            let b = splitmix(&mut rng) as usize & (n - 1);
            if ix.group_marked(ix.group_of(b)) {
                sample(b, &mut sampled, &mut rng);
            }
        }
        // A few keys in a large index can hide from random probes: walk the occupied groups
        // from a random one, so that a candidate is found whenever one exists.
        if sampled == 0 {
            let start = splitmix(&mut rng) as usize % ix.group_count();
            for g in occupied_groups_from(ix, start) {
                for b in ix.group_buckets(g) {
                    sample(b, &mut sampled, &mut rng);
                }
                if sampled >= samples {
                    break;
                }
            }
        }
        let Some((_, pdb, key)) = best else {
            return false;
        };
        let hash = s.hasher.hash(&key);
        let del = |_: Option<Entry<'_>>, _: &mut Vec<u8>| Decision::Delete;
        let taken = self.commits.len();
        let outcome = ops::write(
            s,
            &guard,
            pdb,
            &key,
            hash,
            now_ms,
            &mut self.scratch,
            &mut self.commits,
            None,
            del,
        );
        if outcome.old_live && s.key_events_on() {
            self.commits
                .push_event(crate::KeyEventKind::Evicted, pdb, &key);
        }
        // The AOF logs an eviction as the DEL it is (Redis propagates it so).
        if let Some(c) = self.commits[taken..].last_mut() {
            c.reaped = Some((pdb, key.into_boxed_slice()));
        }
        outcome.old_live || outcome.reaped
    }

    /// Removes every key.
    pub fn flush_all(&mut self) {
        self.flush(None);
    }

    /// Deletes every key of physical db `only` (or of all), group by group over the occupied
    /// groups, clearing the bits of the groups it empties. O(keys), like Redis's synchronous
    /// FLUSHDB; keys written concurrently may survive, as if written after (and stay visible:
    /// their writers mark their groups again).
    fn flush(&mut self, only: Option<u8>) {
        let s = &*self.store;
        let ix = &s.index;
        let (mut g, mut groups, mut buckets) = (0, 0u64, 0u64);
        while let Some(x) = ix.next_occupied_group(g) {
            let guard = self.handle.pin();
            let (work, heads, seen, scratch, commits) = (
                &mut self.work,
                &mut self.heads,
                &mut self.seen,
                &mut self.scratch,
                &mut self.commits,
            );
            ix.clear_group(x, || {
                work.clear();
                let mut keep = false;
                for b in ix.group_buckets(x) {
                    buckets += 1;
                    visit_bucket(s, b, heads, seen, true, |r| {
                        if state(r).0.tombstone() {
                        } else if only.is_none_or(|p| p == r.pdb()) {
                            work.push((r.pdb(), r.key().to_vec()));
                        } else {
                            keep = true;
                        }
                    });
                }
                for (pdb, key) in work.drain(..) {
                    let hash = s.hasher.hash(&key);
                    let del = |_: Option<Entry<'_>>, _: &mut Vec<u8>| Decision::Delete;
                    ops::write(s, &guard, pdb, &key, hash, 0, scratch, commits, None, del);
                }
                (keep, ())
            });
            groups += 1;
            g = x + 1;
        }
        ix.count_visits(groups, buckets);
        self.trim_buffers();
    }

    /// One step of the active expiry cycle over about `max_buckets` buckets of occupied groups
    /// (whole groups, at least one); returns keys reaped. A group found without live records
    /// (its keys expired or deleted) has its occupancy bit cleared. `expire_cursor` is a
    /// position in SCAN order.
    pub fn active_expire(&mut self, now_ms: u64, max_buckets: usize) -> u64 {
        let s = &*self.store;
        let guard = self.handle.pin();
        let ix = &s.index;
        let (groups, group_len) = (ix.group_count(), ix.group_len());
        let max_groups = max_buckets.div_ceil(group_len).clamp(1, groups);
        let mut g = (self.expire_cursor / group_len) % groups;
        let (mut passed, mut visited, mut reaped, mut buckets) = (0, 0, 0, 0u64);
        while passed < groups && visited < max_groups {
            let Some(x) = ix.next_occupied_group(g) else {
                passed += groups - g;
                g = 0;
                continue;
            };
            passed += x - g + 1;
            visited += 1;
            let (work, heads, seen) = (&mut self.work, &mut self.heads, &mut self.seen);
            work.clear();
            let mut live = 0usize;
            for b in ix.group_buckets(x) {
                buckets += 1;
                // The cycle does not read the disk: a chain that goes there counts as live, so
                // the group's occupancy bit stays set for SCAN and FLUSHALL.
                let visit = visit_bucket(s, b, heads, seen, false, |r| {
                    let (meta, expire) = state(r);
                    if meta.tombstone() {
                    } else if is_expired(expire, now_ms) {
                        work.push((r.pdb(), r.key().to_vec()));
                    } else {
                        live += 1;
                    }
                });
                live += usize::from(visit.below_head);
            }
            let expired = self.work.len() as u64;
            let n = reap(
                s,
                &guard,
                &mut self.work,
                &mut self.scratch,
                &mut self.commits,
                now_ms,
            );
            reaped += n;
            if live == 0 && n == expired {
                // Nothing live seen: clear the bit, then walk again for records that turned
                // live meanwhile (the index's clear protocol).
                let (heads, seen) = (&mut self.heads, &mut self.seen);
                ix.clear_group(x, || {
                    let mut any = false;
                    for b in ix.group_buckets(x) {
                        buckets += 1;
                        let visit = visit_bucket(s, b, heads, seen, false, |r| {
                            any |= !state(r).0.tombstone();
                        });
                        any |= visit.below_head;
                    }
                    (any, ())
                });
            }
            g = (x + 1) % groups;
        }
        ix.count_visits(visited as u64, buckets);
        self.expire_cursor = g * group_len;
        reaped
    }

    /// Groups and buckets that whole-index walks (SCAN, KEYS, RANDOMKEY, FLUSHDB/FLUSHALL,
    /// active expiry) have visited on this store so far: a measure of their cost.
    pub fn walk_visits(&self) -> (u64, u64) {
        self.store.index.visits()
    }
}

/// Deletes the collected keys if they are (still) expired; returns how many were reaped.
fn reap(
    s: &Store,
    guard: &Guard,
    work: &mut Vec<(u8, Vec<u8>)>,
    scratch: &mut Vec<u8>,
    commits: &mut crate::commit::Journal,
    now_ms: u64,
) -> u64 {
    let mut reaped = 0;
    for (pdb, key) in work.drain(..) {
        let hash = s.hasher.hash(&key);
        let keep = |_: Option<Entry<'_>>, _: &mut Vec<u8>| Decision::Keep;
        let outcome = ops::write(
            s, guard, pdb, &key, hash, now_ms, scratch, commits, None, keep,
        );
        reaped += u64::from(outcome.reaped);
    }
    reaped
}

/// SplitMix64: a tiny generator for RANDOMKEY's bucket choice.
/// The groups that may hold live records, from group `start` on, wrapping around once.
fn occupied_groups_from(
    ix: &crate::index::HashIndex,
    start: usize,
) -> impl Iterator<Item = usize> + '_ {
    let (mut g, mut wrapped) = (start, false);
    std::iter::from_fn(move || {
        loop {
            match ix.next_occupied_group(g) {
                Some(x) if !wrapped || x < start => {
                    g = x + 1;
                    return Some(x);
                }
                _ if wrapped || start == 0 => return None,
                _ => (g, wrapped) = (0, true),
            }
        }
    })
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
