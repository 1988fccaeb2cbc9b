//! The hash table behind hashes, sets and sorted sets.
//!
//! Entries live densely in chunked storage ([`Dense`]: a uniformly random entry is one index
//! away, which SPOP/SRANDMEMBER/HRANDFIELD/ZRANDMEMBER need, and growing never copies the
//! entries) and are chained through `u32` links from a power-of-two bucket array (so SCAN can
//! use Redis's reverse-binary cursor, which survives resizes between calls). While the table is
//! small a removal keeps insertion order, so that a small hash replies in the order a Redis
//! listpack would.
//!
//! Resizing is incremental, as in Redis's `dict.c`, so that no single operation relinks the
//! whole table: every mutating operation does a bounded step of the resize in progress, sized
//! when the resize starts so that it always finishes before the next one can be due. Lookups
//! look wherever an entry can be meanwhile.
//!
//! - Growing allocates the new bucket array zeroed (a big one is fresh `calloc`'ed pages, not a
//!   fill) and moves entries out of the old array, bucket by bucket, as Redis does.
//! - Shrinking folds the array onto its first `small` buckets in place (bucket `b + k·small`
//!   merges into `b`) and then truncates it without giving the memory back: a shrink happens
//!   after many removals, when glibc's malloc has many small freed chunks to consolidate, and a
//!   large `malloc` or `free` then would stall for milliseconds. The memory is reused if the
//!   table grows again.

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

/// A resize in progress.
#[derive(Clone, Debug)]
enum Resize {
    Idle,
    /// Entries move from `old` into `table`; buckets of `old` below `drain_at` are empty.
    Grow {
        old: Vec<u32>,
        drain_at: usize,
    },
    /// `table` folds onto its first `small` buckets: bucket `i >= small` moves into bucket
    /// `i & (small - 1)`. Buckets in `small..cursor` are empty; bucket `cursor` may be part way.
    Shrink {
        small: usize,
        cursor: usize,
    },
}

/// A binary-safe map from byte strings to `V`.
#[derive(Clone, Debug)]
pub(crate) struct Dict<V> {
    entries: Dense<Entry<V>>,
    /// The table inserts go to: the new one while growing, the one being folded while shrinking.
    table: Vec<u32>,
    resize: Resize,
    /// Rehash work per mutating operation for the resize in progress.
    step: usize,
    /// The bytes of all the keys, kept as entries come and go so that memory estimates are O(1).
    key_bytes: usize,
    /// Test-only accounting of the rehash work done per operation.
    #[cfg(test)]
    stats: tests::Stats,
}

impl<V> Default for Dict<V> {
    fn default() -> Self {
        Self {
            entries: Dense::default(),
            table: Vec::new(),
            resize: Resize::Idle,
            step: MIN_STEP,
            key_bytes: 0,
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

/// A bucket an entry may be in.
#[derive(Clone, Copy)]
enum Slot {
    /// Of the old table, while growing.
    Old(usize),
    /// Of `table`.
    Table(usize),
}

impl<V> Dict<V> {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn resizing(&self) -> bool {
        !matches!(self.resize, Resize::Idle)
    }

    /// The table's size once the resize in progress is done.
    fn size(&self) -> usize {
        match self.resize {
            Resize::Shrink { small, .. } => small,
            _ => self.table.len(),
        }
    }

    /// Where an entry with `hash` may be (at most two buckets while a resize is in progress).
    fn slots(&self, hash: u64) -> [Option<Slot>; 2] {
        let big = bucket(hash, self.table.len());
        match &self.resize {
            Resize::Idle => [Some(Slot::Table(big)), None],
            Resize::Grow { old, drain_at } => {
                let b = bucket(hash, old.len());
                [
                    (b >= *drain_at).then_some(Slot::Old(b)),
                    Some(Slot::Table(big)),
                ]
            }
            Resize::Shrink { small, .. } if big < *small => [Some(Slot::Table(big)), None],
            Resize::Shrink { small, cursor } => [
                (big >= *cursor).then_some(Slot::Table(big)),
                (big <= *cursor).then_some(Slot::Table(big & (small - 1))),
            ],
        }
    }

    /// The bucket of `table` a new entry with `hash` goes to.
    fn home(&self, hash: u64) -> usize {
        let big = bucket(hash, self.table.len());
        match self.resize {
            Resize::Shrink { small, cursor } if big >= small && big < cursor => big & (small - 1),
            _ => big,
        }
    }

    fn head(&self, slot: Slot) -> u32 {
        match (slot, &self.resize) {
            (Slot::Table(b), _) => self.table[b],
            (Slot::Old(b), Resize::Grow { old, .. }) => old[b],
            (Slot::Old(_), _) => NIL,
        }
    }

    /// The dense index of `key`, if present.
    pub(crate) fn find(&self, key: &[u8]) -> Option<usize> {
        if self.len() == 0 {
            return None;
        }
        self.find_hashed(key, hash_key(key))
    }

    fn find_hashed(&self, key: &[u8], hash: u64) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        self.slots(hash)
            .into_iter()
            .flatten()
            .find_map(|slot| self.find_in_chain(self.head(slot), hash, key))
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
        let hash = hash_key(&key);
        if let Some(e) = self
            .find_hashed(&key, hash)
            .and_then(|i| self.entries.get_mut(i))
        {
            return Some(std::mem::replace(&mut e.value, value));
        }
        assert!(
            self.len() < u32::MAX as usize - 1,
            "dict index space exhausted"
        );
        if self.len() >= self.size() {
            #[cfg(test)]
            self.stats.note_due(self.resizing());
            if !self.resizing() {
                self.start_resize((self.size() * 2).max(MIN_BUCKETS));
            }
        }
        let b = self.home(hash);
        let at = link(self.len());
        self.key_bytes += key.len();
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
        self.key_bytes -= removed.key.len();
        let len = self.len();
        if self.size() > MIN_BUCKETS && len * MIN_FILL_RECIPROCAL < self.size() {
            #[cfg(test)]
            self.stats.note_due(self.resizing());
            if !self.resizing() {
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
        for slot in self.slots(hash).into_iter().flatten() {
            let head = match (slot, &mut self.resize) {
                (Slot::Table(b), _) => &mut self.table[b],
                (Slot::Old(b), Resize::Grow { old, .. }) => &mut old[b],
                (Slot::Old(_), _) => continue,
            };
            if replace_in_chain(head, &mut self.entries, want, to) {
                return;
            }
        }
        debug_assert!(false, "entry {x} not in its chain");
    }

    /// Starts resizing the table to `size` buckets.
    fn start_resize(&mut self, size: usize) {
        debug_assert!(!self.resizing() && size.is_power_of_two());
        let len = self.len();
        let current = self.table.len();
        if size > current {
            // `vec![0; n]` is a zeroed allocation: a large table is calloc'ed pages, not a fill.
            let old = std::mem::replace(&mut self.table, vec![NIL; size]);
            if !old.is_empty() {
                self.resize = Resize::Grow { old, drain_at: 0 };
            }
        } else {
            self.resize = Resize::Shrink {
                small: size,
                cursor: size,
            };
        }
        // The work is one unit per bucket passed and per entry moved. It must be done within
        // the fewest length-changing operations after which another resize could be due
        // (inserts until the table is full, removals until it is under 10% full), and each such
        // operation does one step, so a resize never waits for the previous one.
        let work = current + len;
        let grow_in = size.saturating_sub(len);
        let shrink_in = if size > MIN_BUCKETS {
            len.saturating_sub((size - 1) / MIN_FILL_RECIPROCAL)
        } else {
            usize::MAX
        };
        self.step = work.div_ceil(grow_in.min(shrink_in).max(1)).max(MIN_STEP);
        self.rehash_step();
    }

    /// Does up to `self.step` units of the resize in progress (entries moved, empty buckets
    /// passed).
    fn rehash_step(&mut self) {
        let mut budget = self.step;
        let done = match &mut self.resize {
            Resize::Idle => return,
            Resize::Grow { old, drain_at } => {
                while budget > 0 && *drain_at < old.len() {
                    budget -= 1;
                    let head = old[*drain_at];
                    let Some(e) = head
                        .checked_sub(1)
                        .and_then(|i| self.entries.get_mut(i as usize))
                    else {
                        *drain_at += 1;
                        continue;
                    };
                    old[*drain_at] = e.next;
                    let b = bucket(e.hash, self.table.len());
                    e.next = self.table[b];
                    self.table[b] = head;
                }
                *drain_at == old.len()
            }
            Resize::Shrink { small, cursor } => {
                while budget > 0 && *cursor < self.table.len() {
                    budget -= 1;
                    let head = self.table[*cursor];
                    let Some(e) = head
                        .checked_sub(1)
                        .and_then(|i| self.entries.get_mut(i as usize))
                    else {
                        *cursor += 1;
                        continue;
                    };
                    self.table[*cursor] = e.next;
                    let b = *cursor & (*small - 1);
                    e.next = self.table[b];
                    self.table[b] = head;
                }
                let done = *cursor == self.table.len();
                if done {
                    // Keeps the capacity: see the module comment.
                    self.table.truncate(*small);
                }
                done
            }
        };
        #[cfg(test)]
        self.stats.note_step(self.step - budget);
        if done {
            self.resize = Resize::Idle;
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
        // the extra high bits): together they hold everything that hashed to that bucket. A
        // shrink folds one array onto its own prefix, so there the expansion with no high bit
        // set is the small bucket itself and is not visited twice.
        let table = &self.table[..];
        let (small, large, folding) = match &self.resize {
            Resize::Idle => (table, None, false),
            Resize::Grow { old, .. } => (&old[..], Some(table), false),
            Resize::Shrink { small, .. } => (&table[..*small], Some(table), true),
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
                    debug_assert!(m1 > m0);
                    loop {
                        if !(folding && v & (m0 ^ m1) == 0) {
                            visited += self.visit_chain(large[(v & m1) as usize], &mut visit);
                        }
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

    fn old_capacity(&self) -> usize {
        match &self.resize {
            Resize::Grow { old, .. } => old.capacity(),
            _ => 0,
        }
    }

    /// Bytes held, estimated: the entry and bucket arrays and the keys (not what `V` owns).
    /// O(1): every figure is a capacity or a running sum.
    pub(crate) fn memory_usage(&self) -> usize {
        self.entries.capacity() * size_of::<Entry<V>>()
            + (self.table.capacity() + self.old_capacity()) * size_of::<u32>()
            + self.key_bytes
    }

    /// [`memory_usage`](Self::memory_usage) counted from scratch (tests check the running sums
    /// against it).
    #[cfg(test)]
    pub(crate) fn memory_usage_slow(&self) -> usize {
        self.entries.capacity_slow() * size_of::<Entry<V>>()
            + (self.table.capacity() + self.old_capacity()) * size_of::<u32>()
            + self.entries.iter().map(|e| e.key.len()).sum::<usize>()
    }
}

#[cfg(test)]
#[path = "dict_tests.rs"]
mod tests;
