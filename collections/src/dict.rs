//! The hash table behind hashes, sets and sorted sets.
//!
//! Entries live densely in chunked storage ([`Dense`]: a uniformly random entry is one index
//! away, which SPOP/SRANDMEMBER/HRANDFIELD/ZRANDMEMBER need, and growing never copies the
//! entries) and are chained through `u32` links from a power-of-two bucket array (so SCAN can
//! use Redis's reverse-binary cursor, which survives resizes between calls). While the table is
//! small a removal keeps insertion order, so that a small hash replies in the order a Redis
//! listpack would.
//!
//! Resizing is incremental, as in Redis's `dict.c`: a resize allocates the new bucket array
//! (zeroed, so a big one costs a `calloc`, not a fill) and every later mutating operation
//! moves a bounded number of entries out of the old array. Lookups check both arrays meanwhile.
//! The per-operation budget is chosen when the resize starts so that it always finishes before
//! the next resize can be due: no single operation relinks the whole table.

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

use crate::dense::Dense;

/// Links are `index + 1`, so that a zeroed bucket array is an empty one.
const NIL: u32 = 0;
const MIN_BUCKETS: usize = 4;
/// Up to this many entries, removal shifts the tail down (O(n)) to keep insertion order.
const ORDER_KEEPING_LEN: usize = 256;
/// A table is shrunk when fewer than one bucket in this many is used (Redis's 10% fill).
const MIN_FILL_RECIPROCAL: usize = 10;
/// The least rehash work (entries moved plus empty buckets passed) per mutating operation.
const MIN_STEP: usize = 8;

fn hash_key(key: &[u8]) -> u64 {
    static SEED: OnceLock<RandomState> = OnceLock::new();
    SEED.get_or_init(RandomState::new).hash_one(key)
}

fn link(i: usize) -> u32 {
    debug_assert!(i < u32::MAX as usize);
    i as u32 + 1
}

#[derive(Clone, Debug)]
struct Entry<V> {
    key: Box<[u8]>,
    value: V,
    hash: u64,
    next: u32,
}

/// A binary-safe map from byte strings to `V`.
#[derive(Clone, Debug)]
pub(crate) struct Dict<V> {
    entries: Dense<Entry<V>>,
    /// The table inserts go to: the new one while a resize is in progress.
    table: Vec<u32>,
    /// The table being drained by a resize; empty otherwise.
    old: Vec<u32>,
    /// Buckets of `old` below this one are empty (already moved).
    drain_at: usize,
    /// Rehash work per mutating operation for the resize in progress.
    step: usize,
    /// Test-only accounting of the rehash work done per operation.
    #[cfg(test)]
    stats: tests::Stats,
}

impl<V> Default for Dict<V> {
    fn default() -> Self {
        Self {
            entries: Dense::default(),
            table: Vec::new(),
            old: Vec::new(),
            drain_at: 0,
            step: MIN_STEP,
            #[cfg(test)]
            stats: tests::Stats::default(),
        }
    }
}

fn bucket(hash: u64, buckets: usize) -> usize {
    debug_assert!(buckets.is_power_of_two());
    (hash as usize) & (buckets - 1)
}

/// Makes the link in the chain from `head` that equals `want` equal `to` instead. False when no
/// link in the chain is `want`.
fn replace_in_chain<V>(head: &mut u32, entries: &mut Dense<Entry<V>>, want: u32, to: u32) -> bool {
    if *head == want {
        *head = to;
        return true;
    }
    let mut at = *head;
    while let Some(e) = at.checked_sub(1).and_then(|i| entries.get_mut(i as usize)) {
        if e.next == want {
            e.next = to;
            return true;
        }
        at = e.next;
    }
    false
}

/// The next reverse-binary cursor after `v` for a table of mask `mask`: increments the bits
/// covered by the mask, from the most significant one down.
fn next_cursor(v: u64, mask: u64) -> u64 {
    (v | !mask).reverse_bits().wrapping_add(1).reverse_bits()
}

impl<V> Dict<V> {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn rehashing(&self) -> bool {
        !self.old.is_empty()
    }

    /// The dense index of `key`, if present.
    pub(crate) fn find(&self, key: &[u8]) -> Option<usize> {
        if self.len() == 0 {
            return None;
        }
        let hash = hash_key(key);
        if self.rehashing() {
            let b = bucket(hash, self.old.len());
            if b >= self.drain_at
                && let Some(i) = self.find_in_chain(self.old[b], hash, key)
            {
                return Some(i);
            }
        }
        self.find_in_chain(self.table[bucket(hash, self.table.len())], hash, key)
    }

    fn find_in_chain(&self, mut at: u32, hash: u64, key: &[u8]) -> Option<usize> {
        while at != NIL {
            let i = at as usize - 1;
            let e = self.entries.get(i)?;
            if e.hash == hash && *e.key == *key {
                return Some(i);
            }
            at = e.next;
        }
        None
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        self.find(key)
            .and_then(|i| self.entries.get(i))
            .map(|e| &e.value)
    }

    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let i = self.find(key)?;
        self.entries.get_mut(i).map(|e| &mut e.value)
    }

    /// The entry at dense index `i`.
    pub(crate) fn at(&self, i: usize) -> Option<(&[u8], &V)> {
        self.entries.get(i).map(|e| (&*e.key, &e.value))
    }

    /// Inserts or replaces; returns the previous value.
    pub(crate) fn insert(&mut self, key: Box<[u8]>, value: V) -> Option<V> {
        self.rehash_step();
        if let Some(e) = self.find(&key).and_then(|i| self.entries.get_mut(i)) {
            return Some(std::mem::replace(&mut e.value, value));
        }
        assert!(
            self.len() < u32::MAX as usize - 1,
            "dict index space exhausted"
        );
        if self.len() >= self.table.len() {
            #[cfg(test)]
            self.stats.note_due(self.rehashing());
            if !self.rehashing() {
                self.start_resize((self.table.len() * 2).max(MIN_BUCKETS));
            }
        }
        let hash = hash_key(&key);
        let b = bucket(hash, self.table.len());
        let at = link(self.len());
        self.entries.push(Entry {
            key,
            value,
            hash,
            next: self.table[b],
        });
        self.table[b] = at;
        None
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<(Box<[u8]>, V)> {
        let i = self.find(key)?;
        Some(self.remove_at(i))
    }

    /// Removes the entry at dense index `i` (which must exist).
    pub(crate) fn remove_at(&mut self, i: usize) -> (Box<[u8]>, V) {
        assert!(i < self.len(), "remove_at {i} of {}", self.len());
        // Rehash work only moves links, never entries: `i` stays valid.
        self.rehash_step();
        let next = self.entries.get(i).map_or(NIL, |e| e.next);
        self.replace_link(i, next);
        let last = self.len() - 1;
        let removed = if self.len() <= ORDER_KEEPING_LEN {
            // Bubble the unlinked entry to the end, keeping every link pointing at its entry.
            for k in i + 1..=last {
                self.replace_link(k, link(k - 1));
                self.entries.swap(k - 1, k);
            }
            self.entries.pop().expect("i < len")
        } else {
            if i != last {
                self.replace_link(last, link(i));
            }
            self.entries.swap_remove(i)
        };
        let len = self.len();
        if self.table.len() > MIN_BUCKETS && len * MIN_FILL_RECIPROCAL < self.table.len() {
            #[cfg(test)]
            self.stats.note_due(self.rehashing());
            if !self.rehashing() {
                self.start_resize((2 * len).next_power_of_two().max(MIN_BUCKETS));
            }
        }
        (removed.key, removed.value)
    }

    /// Makes the link that points at entry `x` point at `to` instead (`x` is being unlinked,
    /// or is about to move to `to - 1`).
    fn replace_link(&mut self, x: usize, to: u32) {
        let Some(hash) = self.entries.get(x).map(|e| e.hash) else {
            debug_assert!(false, "no entry {x}");
            return;
        };
        let want = link(x);
        if self.rehashing() {
            let b = bucket(hash, self.old.len());
            if b >= self.drain_at && replace_in_chain(&mut self.old[b], &mut self.entries, want, to)
            {
                return;
            }
        }
        let b = bucket(hash, self.table.len());
        let found = replace_in_chain(&mut self.table[b], &mut self.entries, want, to);
        debug_assert!(found, "entry {x} not in its chain");
    }

    /// Starts moving every entry into a fresh table of `size` buckets.
    fn start_resize(&mut self, size: usize) {
        debug_assert!(!self.rehashing() && size.is_power_of_two());
        let len = self.len();
        // `vec![0; n]` is a zeroed allocation: a large table is calloc'ed pages, not a fill.
        self.old = std::mem::replace(&mut self.table, vec![NIL; size]);
        self.drain_at = 0;
        // The work is one unit per old bucket passed and per entry moved. It must be done within
        // the fewest length-changing operations after which another resize could be due
        // (inserts until the table is full, removals until it is under 10% full), and each such
        // operation does one step, so a resize never waits for the previous one.
        let work = self.old.len() + len;
        let grow_in = size.saturating_sub(len);
        let shrink_in = if size > MIN_BUCKETS {
            len.saturating_sub((size - 1) / MIN_FILL_RECIPROCAL)
        } else {
            usize::MAX
        };
        self.step = work.div_ceil(grow_in.min(shrink_in).max(1)).max(MIN_STEP);
        self.rehash_step();
    }

    /// Moves up to `self.step` units of work (entries moved, empty buckets passed) from the old
    /// table into the current one.
    fn rehash_step(&mut self) {
        if !self.rehashing() {
            return;
        }
        let mut budget = self.step;
        while budget > 0 && self.drain_at < self.old.len() {
            budget -= 1;
            let head = self.old[self.drain_at];
            let Some(e) = head
                .checked_sub(1)
                .and_then(|i| self.entries.get_mut(i as usize))
            else {
                self.drain_at += 1;
                continue;
            };
            self.old[self.drain_at] = e.next;
            let b = bucket(e.hash, self.table.len());
            e.next = self.table[b];
            self.table[b] = head;
        }
        #[cfg(test)]
        self.stats.note_step(self.step - budget);
        if self.drain_at == self.old.len() {
            self.old = Vec::new();
            self.drain_at = 0;
        }
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], &V)> + ExactSizeIterator {
        self.entries.iter().map(|e| (&*e.key, &e.value))
    }

    /// Redis's `dictScan` loop: visits whole buckets from `cursor` until at least `count`
    /// entries were visited or 10×`count` buckets were looked at, and returns the next cursor
    /// (0 when the scan is complete). Every entry present for the whole scan is visited at least
    /// once, even if the table is resized between calls or is being resized.
    pub(crate) fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut visit: impl FnMut(&'a [u8], &'a V),
    ) -> u64 {
        if self.table.is_empty() {
            return 0;
        }
        // While resizing, Redis visits the cursor's bucket in the smaller table and then every
        // bucket of the larger table that it expands to (the cursor's low bits, all values of
        // the extra high bits): together they hold everything that hashed to that bucket.
        let (small, large) = match (self.rehashing(), self.old.len() < self.table.len()) {
            (false, _) => (&self.table, None),
            (true, true) => (&self.old, Some(&self.table)),
            (true, false) => (&self.table, Some(&self.old)),
        };
        let m0 = (small.len() - 1) as u64;
        let count = count.max(1);
        let mut budget = count.saturating_mul(10);
        let mut visited = 0usize;
        let mut v = cursor;
        loop {
            visited += self.visit_chain(small[(v & m0) as usize], &mut visit);
            match large {
                None => v = next_cursor(v, m0),
                Some(large) => {
                    let m1 = (large.len() - 1) as u64;
                    loop {
                        visited += self.visit_chain(large[(v & m1) as usize], &mut visit);
                        v = next_cursor(v, m1);
                        if v & (m0 ^ m1) == 0 {
                            break;
                        }
                    }
                }
            }
            budget -= 1;
            if v == 0 || visited >= count || budget == 0 {
                return v;
            }
        }
    }

    fn visit_chain<'a>(&'a self, mut at: u32, visit: &mut impl FnMut(&'a [u8], &'a V)) -> usize {
        let mut n = 0;
        while let Some(e) = at.checked_sub(1).and_then(|i| self.entries.get(i as usize)) {
            visit(&e.key, &e.value);
            n += 1;
            at = e.next;
        }
        n
    }

    /// Bytes held, estimated: the entry and bucket arrays and the keys (not what `V` owns).
    pub(crate) fn memory_usage(&self) -> usize {
        self.entries.capacity() * size_of::<Entry<V>>()
            + (self.table.capacity() + self.old.capacity()) * size_of::<u32>()
            + self.entries.iter().map(|e| e.key.len()).sum::<usize>()
    }
}

#[cfg(test)]
#[path = "dict_tests.rs"]
mod tests;
