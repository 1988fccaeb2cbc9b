//! A double-ended queue in fixed-size chunks: O(1) push and pop at both ends with no O(N) step,
//! and O(1) access by index.
//!
//! A `VecDeque` that doubles copies every element at once, which stalls one push for O(N) on a
//! big list. Here elements live in chunks of at most [`CHUNK`] elements (like the nodes of
//! Redis's quicklist); a push that finds its end chunk full starts a new chunk. Every chunk
//! strictly between the first and the last is full, so element `i` is found by arithmetic. The
//! first chunk starts small and grows by doubling, so a small list is one small allocation.

use std::collections::VecDeque;
use std::fmt;

/// log2 of the chunk size. Small under test so that property tests cross many chunk boundaries.
const CHUNK_BITS: u32 = if cfg!(test) { 2 } else { 10 };
/// Elements per chunk (16 KiB of boxed slices).
const CHUNK: usize = 1 << CHUNK_BITS;
const CHUNK_MASK: usize = CHUNK - 1;

/// The chunked deque. Invariants: an empty deque has no chunks; otherwise `first` and every
/// chunk of `rest` are non-empty, and every chunk of `rest` but the last is full.
pub(crate) struct Deque<T> {
    first: VecDeque<T>,
    rest: VecDeque<VecDeque<T>>,
    len: usize,
    /// The sum of the capacities of the chunks in `rest`, kept as they change so that memory
    /// estimates are O(1).
    rest_slots: usize,
}

impl<T> Default for Deque<T> {
    fn default() -> Self {
        Self {
            first: VecDeque::new(),
            rest: VecDeque::new(),
            len: 0,
            rest_slots: 0,
        }
    }
}

impl<T: Clone> Clone for Deque<T> {
    fn clone(&self) -> Self {
        // Cloned chunks have capacities of their own: the sum is taken again.
        let rest: VecDeque<VecDeque<T>> = self.rest.clone();
        let rest_slots = rest.iter().map(VecDeque::capacity).sum();
        Self {
            first: self.first.clone(),
            rest,
            len: self.len,
            rest_slots,
        }
    }
}

fn chunk_with<T>(value: T) -> VecDeque<T> {
    let mut chunk = VecDeque::with_capacity(CHUNK);
    chunk.push_back(value);
    chunk
}

impl<T> Deque<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push_back(&mut self, value: T) {
        match self.rest.back_mut() {
            None if self.first.len() < CHUNK => self.first.push_back(value),
            Some(last) if last.len() < CHUNK => {
                let before = last.capacity();
                last.push_back(value);
                self.rest_slots += last.capacity() - before;
            }
            _ => {
                let chunk = chunk_with(value);
                self.rest_slots += chunk.capacity();
                self.rest.push_back(chunk);
            }
        }
        self.len += 1;
    }

    pub(crate) fn push_front(&mut self, value: T) {
        if self.first.len() < CHUNK {
            self.first.push_front(value);
        } else {
            // The full first chunk becomes a middle one.
            let full = std::mem::replace(&mut self.first, chunk_with(value));
            self.rest_slots += full.capacity();
            self.rest.push_front(full);
        }
        self.len += 1;
    }

    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let value = self.first.pop_front()?;
        if self.first.is_empty()
            && let Some(next) = self.rest.pop_front()
        {
            self.rest_slots -= next.capacity();
            self.first = next;
        }
        self.len -= 1;
        Some(value)
    }

    pub(crate) fn pop_back(&mut self) -> Option<T> {
        let value = match self.rest.back_mut() {
            Some(last) => {
                let value = last.pop_back();
                if last.is_empty() {
                    self.rest_slots -= last.capacity();
                    self.rest.pop_back();
                }
                value
            }
            None => self.first.pop_back(),
        }?;
        self.len -= 1;
        Some(value)
    }

    /// (chunk, offset) of element `i`, where chunk 0 is `first` and chunk `c + 1` is `rest[c]`.
    fn locate(&self, i: usize) -> (usize, usize) {
        match i.checked_sub(self.first.len()) {
            None => (0, i),
            Some(j) => ((j >> CHUNK_BITS) + 1, j & CHUNK_MASK),
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        match self.locate(i) {
            (0, at) => self.first.get(at),
            (c, at) => self.rest.get(c - 1)?.get(at),
        }
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        match self.locate(i) {
            (0, at) => self.first.get_mut(at),
            (c, at) => self.rest.get_mut(c - 1)?.get_mut(at),
        }
    }

    pub(crate) fn front(&self) -> Option<&T> {
        self.first.front()
    }

    pub(crate) fn back(&self) -> Option<&T> {
        self.rest.back().unwrap_or(&self.first).back()
    }

    /// Elements `start..end` (clamped to the length).
    pub(crate) fn range(
        &self,
        start: usize,
        end: usize,
    ) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        let end = end.min(self.len);
        (start.min(end)..end).map(|i| self.at(i))
    }

    /// Element `i < len`.
    fn at(&self, i: usize) -> &T {
        match self.locate(i) {
            (0, at) => &self.first[at],
            (c, at) => &self.rest[c - 1][at],
        }
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.range(0, self.len)
    }

    /// Inserts at index `i` (at most `len`), moving the elements on the nearer side: O(min(i,
    /// len - i)), as in Redis's quicklist the cost is a walk to the position.
    pub(crate) fn insert(&mut self, i: usize, value: T) {
        assert!(i <= self.len, "insert at {i} of {}", self.len);
        if i <= self.len / 2 {
            let moved: Vec<T> = (0..i).filter_map(|_| self.pop_front()).collect();
            self.push_front(value);
            for v in moved.into_iter().rev() {
                self.push_front(v);
            }
        } else {
            let moved: Vec<T> = (i..self.len).filter_map(|_| self.pop_back()).collect();
            self.push_back(value);
            for v in moved.into_iter().rev() {
                self.push_back(v);
            }
        }
    }

    /// Keeps the elements `keep` accepts, in order (O(N): rebuilds the chunks).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let old = std::mem::take(self);
        for v in old.into_items() {
            if keep(&v) {
                self.push_back(v);
            }
        }
    }

    /// Every element, front to back, by value.
    pub(crate) fn into_items(self) -> impl Iterator<Item = T> {
        self.first
            .into_iter()
            .chain(self.rest.into_iter().flatten())
    }

    /// Element slots allocated, and the bytes of the chunk table (for memory estimates), O(1).
    pub(crate) fn capacity(&self) -> (usize, usize) {
        let slots = self.first.capacity() + self.rest_slots;
        (slots, self.rest.capacity() * size_of::<VecDeque<T>>())
    }

    /// [`capacity`](Self::capacity) counted from scratch (tests check the running sum).
    #[cfg(test)]
    pub(crate) fn capacity_slow(&self) -> (usize, usize) {
        let slots = self.first.capacity() + self.rest.iter().map(VecDeque::capacity).sum::<usize>();
        (slots, self.rest.capacity() * size_of::<VecDeque<T>>())
    }
}

impl<T: PartialEq> PartialEq for Deque<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Eq> Eq for Deque<T> {}

impl<T: fmt::Debug> fmt::Debug for Deque<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_invariants<T>(d: &Deque<T>) {
        let chunks = d.first.len() + d.rest.iter().map(VecDeque::len).sum::<usize>();
        assert_eq!(chunks, d.len);
        assert_eq!(d.capacity(), d.capacity_slow(), "running capacity");
        assert!(d.first.len() <= CHUNK);
        assert_eq!(
            d.first.is_empty(),
            d.is_empty(),
            "first empty iff deque empty"
        );
        // No chunk ever grows past CHUNK elements (8: the allocator's least capacity for
        // bytes), so no push copies more than that.
        assert!(d.first.capacity() <= CHUNK.max(8));
        let n = d.rest.len();
        for (c, chunk) in d.rest.iter().enumerate() {
            assert!(chunk.capacity() <= CHUNK.max(8));
            assert!(!chunk.is_empty() && chunk.len() <= CHUNK);
            assert!(
                c + 1 == n || chunk.len() == CHUNK,
                "middle chunk {c} not full"
            );
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push(bool, u8),
        Pop(bool),
        PushMany(bool, u16),
        PopMany(bool, u16),
        Set(u16, u8),
        Insert(u16, u8),
        Retain(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<bool>(), any::<u8>()).prop_map(|(f, v)| Op::Push(f, v)),
            4 => any::<bool>().prop_map(Op::Pop),
            1 => (any::<bool>(), 0..200u16).prop_map(|(f, n)| Op::PushMany(f, n)),
            1 => (any::<bool>(), 0..200u16).prop_map(|(f, n)| Op::PopMany(f, n)),
            2 => (any::<u16>(), any::<u8>()).prop_map(|(i, v)| Op::Set(i, v)),
            2 => (any::<u16>(), any::<u8>()).prop_map(|(i, v)| Op::Insert(i, v)),
            1 => (2..8u8).prop_map(Op::Retain),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Deque against `VecDeque`, with the chunk invariants checked after every operation.
        #[test]
        fn matches_vecdeque(ops in prop::collection::vec(op(), 1..150)) {
            let mut d = Deque::default();
            let mut m = VecDeque::new();
            for op in ops {
                match op {
                    Op::Push(front, v) => {
                        if front { d.push_front(v); m.push_front(v) } else { d.push_back(v); m.push_back(v) }
                    }
                    Op::Pop(front) => {
                        let (a, b) = if front { (d.pop_front(), m.pop_front()) } else { (d.pop_back(), m.pop_back()) };
                        prop_assert_eq!(a, b);
                    }
                    Op::PushMany(front, n) => {
                        for v in 0..n {
                            let v = v as u8;
                            if front { d.push_front(v); m.push_front(v) } else { d.push_back(v); m.push_back(v) }
                        }
                    }
                    Op::PopMany(front, n) => {
                        for _ in 0..n {
                            let (a, b) = if front { (d.pop_front(), m.pop_front()) } else { (d.pop_back(), m.pop_back()) };
                            prop_assert_eq!(a, b);
                        }
                    }
                    Op::Set(i, v) => {
                        let i = usize::from(i) % (m.len() + 1);
                        prop_assert_eq!(d.get_mut(i).map(|s| { *s = v; }), m.get_mut(i).map(|s| { *s = v; }));
                    }
                    Op::Insert(i, v) => {
                        let i = usize::from(i) % (m.len() + 1);
                        d.insert(i, v);
                        m.insert(i, v);
                    }
                    Op::Retain(k) => {
                        d.retain(|v| v % k != 0);
                        m.retain(|v| v % k != 0);
                    }
                }
                check_invariants(&d);
                prop_assert_eq!(d.len(), m.len());
                prop_assert_eq!(d.front(), m.front());
                prop_assert_eq!(d.back(), m.back());
            }
            prop_assert!(d.iter().eq(m.iter()));
            prop_assert!(d.iter().rev().eq(m.iter().rev()));
            for i in 0..=m.len() {
                prop_assert_eq!(d.get(i), m.get(i));
            }
            let (a, b) = (m.len() / 3, m.len() / 2 + 5);
            prop_assert!(d.range(a, b).eq(m.range(a..b.min(m.len()))));
            prop_assert_eq!(d.range(a, b).len(), b.min(m.len()) - a);
            prop_assert!(d.clone().into_items().eq(m.iter().copied()));
            check_invariants(&d.clone());
        }
    }

    #[test]
    fn small_deque_is_one_chunk() {
        let mut d = Deque::default();
        for v in 0..CHUNK {
            d.push_front(v);
        }
        assert!(d.rest.is_empty() && d.rest.capacity() == 0);
        d.push_back(0);
        assert_eq!(d.rest.len(), 1);
        assert_eq!(d, d.clone());
    }
}
