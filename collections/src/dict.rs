//! The hash table behind hashes, sets and sorted sets.
//!
//! Entries live densely in a `Vec` (so a uniformly random entry is one index away, which
//! SPOP/SRANDMEMBER/HRANDFIELD/ZRANDMEMBER need) and are chained through `u32` links from a
//! power-of-two bucket array (so SCAN can use Redis's reverse-binary cursor, which survives
//! resizes between calls). While the table is small a removal keeps insertion order, so that a
//! small hash replies in the order a Redis listpack would.

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

const NIL: u32 = u32::MAX;
const MIN_BUCKETS: usize = 4;
/// Up to this many entries, removal shifts the tail down (O(n)) to keep insertion order.
const ORDER_KEEPING_LEN: usize = 256;

fn hash_key(key: &[u8]) -> u64 {
    static SEED: OnceLock<RandomState> = OnceLock::new();
    SEED.get_or_init(RandomState::new).hash_one(key)
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
    entries: Vec<Entry<V>>,
    buckets: Vec<u32>,
}

impl<V> Default for Dict<V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            buckets: Vec::new(),
        }
    }
}

impl<V> Dict<V> {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn bucket_of(&self, hash: u64) -> usize {
        (hash as usize) & (self.buckets.len() - 1)
    }

    /// The dense index of `key`, if present.
    pub(crate) fn find(&self, key: &[u8]) -> Option<usize> {
        if self.buckets.is_empty() {
            return None;
        }
        let hash = hash_key(key);
        let mut at = self.buckets[self.bucket_of(hash)];
        while at != NIL {
            let e = &self.entries[at as usize];
            if e.hash == hash && *e.key == *key {
                return Some(at as usize);
            }
            at = e.next;
        }
        None
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        self.find(key).map(|i| &self.entries[i].value)
    }

    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.find(key).map(|i| &mut self.entries[i].value)
    }

    /// The entry at dense index `i`.
    pub(crate) fn at(&self, i: usize) -> Option<(&[u8], &V)> {
        self.entries.get(i).map(|e| (&*e.key, &e.value))
    }

    /// Inserts or replaces; returns the previous value.
    pub(crate) fn insert(&mut self, key: Box<[u8]>, value: V) -> Option<V> {
        if let Some(i) = self.find(&key) {
            return Some(std::mem::replace(&mut self.entries[i].value, value));
        }
        debug_assert!(self.entries.len() < NIL as usize - 1);
        if self.entries.len() >= self.buckets.len() {
            self.rehash((self.buckets.len() * 2).max(MIN_BUCKETS));
        }
        let hash = hash_key(&key);
        let b = self.bucket_of(hash);
        let at = self.entries.len() as u32;
        self.entries.push(Entry {
            key,
            value,
            hash,
            next: self.buckets[b],
        });
        self.buckets[b] = at;
        None
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<(Box<[u8]>, V)> {
        let i = self.find(key)?;
        Some(self.remove_at(i))
    }

    /// Removes the entry at dense index `i` (which must exist).
    pub(crate) fn remove_at(&mut self, i: usize) -> (Box<[u8]>, V) {
        self.unlink(i);
        let last = self.entries.len() - 1;
        let removed = if self.entries.len() <= ORDER_KEEPING_LEN {
            let e = self.entries.remove(i);
            if i != last {
                self.relink_all();
            }
            e
        } else {
            if i != last {
                self.repoint(last as u32, i as u32);
            }
            self.entries.swap_remove(i)
        };
        let len = self.entries.len();
        if self.buckets.len() > MIN_BUCKETS && len * 10 < self.buckets.len() {
            self.shrink(len.next_power_of_two().max(MIN_BUCKETS));
        }
        (removed.key, removed.value)
    }

    /// Takes entry `i` out of its bucket chain.
    fn unlink(&mut self, i: usize) {
        let b = self.bucket_of(self.entries[i].hash);
        let next = self.entries[i].next;
        if self.buckets[b] == i as u32 {
            self.buckets[b] = next;
            return;
        }
        let mut at = self.buckets[b];
        while at != NIL {
            let e = &mut self.entries[at as usize];
            if e.next == i as u32 {
                e.next = next;
                return;
            }
            at = e.next;
        }
        debug_assert!(false, "entry {i} not in its chain");
    }

    /// Makes the link that points at `from` point at `to` (the entry is about to move).
    fn repoint(&mut self, from: u32, to: u32) {
        let b = self.bucket_of(self.entries[from as usize].hash);
        if self.buckets[b] == from {
            self.buckets[b] = to;
            return;
        }
        let mut at = self.buckets[b];
        while at != NIL {
            let e = &mut self.entries[at as usize];
            if e.next == from {
                e.next = to;
                return;
            }
            at = e.next;
        }
        debug_assert!(false, "entry {from} not in its chain");
    }

    fn rehash(&mut self, buckets: usize) {
        debug_assert!(buckets.is_power_of_two());
        self.buckets = vec![NIL; buckets];
        self.relink_all();
    }

    /// Shrinks the bucket array without giving its memory back: freeing a large block in the
    /// middle of a command can stall for many milliseconds in glibc's malloc (it consolidates
    /// every small chunk freed so far). The memory is reused if the table grows again.
    fn shrink(&mut self, buckets: usize) {
        debug_assert!(buckets.is_power_of_two() && buckets <= self.buckets.len());
        self.buckets.truncate(buckets);
        self.relink_all();
    }

    fn relink_all(&mut self) {
        self.buckets.fill(NIL);
        let mask = self.buckets.len().wrapping_sub(1);
        for (i, e) in self.entries.iter_mut().enumerate() {
            let b = (e.hash as usize) & mask;
            e.next = self.buckets[b];
            self.buckets[b] = i as u32;
        }
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], &V)> + ExactSizeIterator {
        self.entries.iter().map(|e| (&*e.key, &e.value))
    }

    /// Redis's `dictScan` loop: visits whole buckets from `cursor` until at least `count`
    /// entries were visited or 10×`count` buckets were looked at, and returns the next cursor
    /// (0 when the scan is complete). Every entry present for the whole scan is visited at least
    /// once, even if the table is resized between calls.
    pub(crate) fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut visit: impl FnMut(&'a [u8], &'a V),
    ) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        let count = count.max(1);
        let mut budget = count.saturating_mul(10);
        let mut visited = 0usize;
        let mut v = cursor;
        loop {
            let mut at = self.buckets[(v & mask) as usize];
            while at != NIL {
                let e = &self.entries[at as usize];
                visit(&e.key, &e.value);
                visited += 1;
                at = e.next;
            }
            v |= !mask;
            v = v.reverse_bits().wrapping_add(1).reverse_bits();
            budget -= 1;
            if v == 0 || visited >= count || budget == 0 {
                return v;
            }
        }
    }

    /// Bytes held, estimated: the entry and bucket arrays and the keys (not what `V` owns).
    pub(crate) fn memory_usage(&self) -> usize {
        self.entries.capacity() * size_of::<Entry<V>>()
            + self.buckets.capacity() * size_of::<u32>()
            + self.entries.iter().map(|e| e.key.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn key(i: usize) -> Box<[u8]> {
        i.to_string().into_bytes().into_boxed_slice()
    }

    #[test]
    fn insert_find_remove_both_regimes() {
        let mut d = Dict::default();
        for i in 0..2000 {
            assert!(d.insert(key(i), i).is_none());
        }
        assert_eq!(d.insert(key(5), 55), Some(5));
        for i in (0..2000).step_by(3) {
            assert_eq!(
                d.remove(&key(i)).map(|(_, v)| v),
                Some(if i == 5 { 55 } else { i })
            );
        }
        for i in 0..2000 {
            assert_eq!(d.get(&key(i)).is_some(), i % 3 != 0, "{i}");
        }
        while d.len() > 0 {
            let (k, _) = d.remove_at(d.len() / 2);
            assert!(d.get(&k).is_none());
        }
        assert!(d.buckets.len() <= MIN_BUCKETS);
    }

    #[test]
    fn small_removal_keeps_order() {
        let mut d = Dict::default();
        for i in 0..10 {
            d.insert(key(i), ());
        }
        d.remove(&key(3));
        let order: Vec<_> = d.iter().map(|(k, _)| k.to_vec()).collect();
        let want: Vec<_> = (0..10)
            .filter(|&i| i != 3)
            .map(|i| key(i).to_vec())
            .collect();
        assert_eq!(order, want);
    }

    #[test]
    fn scan_survives_resizes() {
        let mut d = Dict::default();
        for i in 0..1000 {
            d.insert(key(i), ());
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = d.scan(cursor, 10, |k, _| {
                seen.insert(k.to_vec());
            });
            round += 1;
            // Grow then shrink mid-scan; keys 0..500 stay throughout.
            if round == 5 {
                for i in 1000..5000 {
                    d.insert(key(i), ());
                }
            }
            if round == 20 {
                for i in 500..5000 {
                    d.remove(&key(i));
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..500 {
            assert!(seen.contains(&*key(i)), "missed {i}");
        }
    }
}
