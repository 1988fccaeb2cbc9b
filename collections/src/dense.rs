//! A dense, index-addressed vector stored in fixed-size chunks.
//!
//! A `Vec` that doubles copies every element at once, which stalls one insert for O(N) on a big
//! collection. Here only the first chunk grows by doubling (up to [`CHUNK`] elements, so a small
//! collection is one small allocation); every later chunk is allocated at full size and never
//! moves, so a push is O(1) apart from the outer table of chunk pointers (N / CHUNK pointers).

/// log2 of the chunk size. Small under test so that property tests cross many chunk boundaries.
const CHUNK_BITS: u32 = if cfg!(test) { 3 } else { 10 };
/// Elements per chunk.
pub(crate) const CHUNK: usize = 1 << CHUNK_BITS;
const CHUNK_MASK: usize = CHUNK - 1;

/// A dense vector in chunks: every chunk but the last holds exactly [`CHUNK`] elements.
#[derive(Debug)]
pub(crate) struct Dense<T> {
    chunks: Vec<Vec<T>>,
    /// The sum of the chunks' capacities, kept as they change so that memory estimates are
    /// O(1) (a collection is measured after every write).
    cap: usize,
}

impl<T> Default for Dense<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            cap: 0,
        }
    }
}

impl<T: Clone> Clone for Dense<T> {
    fn clone(&self) -> Self {
        // A cloned `Vec` has its own capacity (its length), so the sum is taken again.
        let chunks: Vec<Vec<T>> = self.chunks.clone();
        let cap = chunks.iter().map(Vec::capacity).sum();
        Self { chunks, cap }
    }
}

impl<T> Dense<T> {
    /// O(1): every chunk but the last is full.
    pub(crate) fn len(&self) -> usize {
        match self.chunks.last() {
            Some(last) => ((self.chunks.len() - 1) << CHUNK_BITS) + last.len(),
            None => 0,
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i >> CHUNK_BITS)?.get(i & CHUNK_MASK)
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.chunks
            .get_mut(i >> CHUNK_BITS)?
            .get_mut(i & CHUNK_MASK)
    }

    pub(crate) fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => {
                let before = last.capacity();
                last.push(value);
                self.cap += last.capacity() - before;
            }
            _ => {
                // The first chunk starts small and doubles (capacity stays a power of two, so it
                // tops out at exactly CHUNK); later ones are allocated whole and never move.
                let mut chunk = if self.chunks.is_empty() {
                    Vec::new()
                } else {
                    Vec::with_capacity(CHUNK)
                };
                chunk.push(value);
                self.cap += chunk.capacity();
                self.chunks.push(chunk);
            }
        }
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        let last = self.chunks.last_mut()?;
        let value = last.pop();
        debug_assert!(value.is_some(), "no empty chunk is kept");
        if last.is_empty() {
            self.cap -= last.capacity();
            self.chunks.pop();
        }
        value
    }

    /// Removes element `i` and moves the last element into its place (O(1)).
    pub(crate) fn swap_remove(&mut self, i: usize) -> T {
        assert!(
            i < self.len(),
            "swap_remove index {i} out of {}",
            self.len()
        );
        let last = self.pop().expect("not empty: i < len");
        match self.get_mut(i) {
            Some(slot) => std::mem::replace(slot, last),
            None => last,
        }
    }

    /// Swaps elements `a` and `b` (both must exist).
    pub(crate) fn swap(&mut self, a: usize, b: usize) {
        assert!(
            a < self.len() && b < self.len(),
            "swap {a} {b} out of {}",
            self.len()
        );
        let (ca, cb) = (a >> CHUNK_BITS, b >> CHUNK_BITS);
        if ca == cb {
            self.chunks[ca].swap(a & CHUNK_MASK, b & CHUNK_MASK);
            return;
        }
        let (lo, hi) = if ca < cb { (a, b) } else { (b, a) };
        let (head, tail) = self.chunks.split_at_mut(hi >> CHUNK_BITS);
        std::mem::swap(
            &mut head[lo >> CHUNK_BITS][lo & CHUNK_MASK],
            &mut tail[0][hi & CHUNK_MASK],
        );
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        (0..self.len()).map(|i| &self.chunks[i >> CHUNK_BITS][i & CHUNK_MASK])
    }

    /// Element slots allocated (for memory estimates), O(1).
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// [`capacity`](Self::capacity) counted from scratch (tests check the running sum).
    #[cfg(test)]
    pub(crate) fn capacity_slow(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pop_remove_across_chunks() {
        let mut d = Dense::default();
        let mut model = Vec::new();
        for i in 0..5 * CHUNK + 3 {
            d.push(i);
            model.push(i);
        }
        assert_eq!(d.swap_remove(1), model.swap_remove(1));
        d.swap(2, CHUNK + 1);
        model.swap(2, CHUNK + 1);
        d.swap(3, 4);
        model.swap(3, 4);
        assert_eq!(
            d.swap_remove(model.len() - 1),
            model.swap_remove(model.len() - 1)
        );
        assert_eq!(d.iter().copied().collect::<Vec<_>>(), model);
        // Chunks never grow past CHUNK, so no push copies more than CHUNK elements.
        assert!(d.chunks.iter().all(|c| c.capacity() == CHUNK));
        assert_eq!(d.iter().rev().len(), model.len());
        while let Some(v) = d.pop() {
            assert_eq!(Some(v), model.pop());
        }
        assert_eq!((d.len(), d.chunks.len(), d.capacity()), (0, 0, 0));
        assert!(d.get(0).is_none());
    }
}
