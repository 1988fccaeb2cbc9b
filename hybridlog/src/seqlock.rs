//! The per-record seqlock: how in-place writers and lock-free readers share a record's value.
//!
//! The version word is even when the record is quiescent and odd while a writer holds it. A
//! writer takes it with a CAS even → odd (which also excludes every other writer: in-place
//! updates, sealing for read-copy-update, tombstoning), stores the new contents, and releases it
//! by storing the next even number. A reader loads the version, copies the contents, and
//! accepts the copy only if the version was even and unchanged (Boehm, "Can seqlocks get along
//! with programming language memory models?", MSPC 2012: relaxed data accesses bracketed by an
//! acquire load, an acquire fence and a release fence).
//!
//! Every access to the protected words is atomic (`AtomicU64` loads and stores, relaxed), so a
//! racing copy is merely stale, never undefined behaviour; the version check throws it away.
//!
//! The protocol is generic over [`Word`] so that records in raw log memory (std atomics) and the
//! loom model ([`SeqLockCell`] over loom atomics) run the same code.

use crate::sync::{Ordering, fence};

/// A 64-bit atomic cell the seqlock protocol can run on.
pub trait Word {
    /// Atomic load.
    fn load(&self, order: Ordering) -> u64;
    /// Atomic store.
    fn store(&self, value: u64, order: Ordering);
    /// Atomic compare-and-exchange (strong).
    fn cas(&self, current: u64, new: u64, success: Ordering, failure: Ordering)
    -> Result<u64, u64>;
}

macro_rules! impl_word {
    ($t:ty) => {
        impl Word for $t {
            #[inline]
            fn load(&self, order: Ordering) -> u64 {
                <$t>::load(self, order)
            }
            #[inline]
            fn store(&self, value: u64, order: Ordering) {
                <$t>::store(self, value, order)
            }
            #[inline]
            fn cas(
                &self,
                current: u64,
                new: u64,
                success: Ordering,
                failure: Ordering,
            ) -> Result<u64, u64> {
                <$t>::compare_exchange(self, current, new, success, failure)
            }
        }
    };
}

impl_word!(std::sync::atomic::AtomicU64);
#[cfg(loom)]
impl_word!(loom::sync::atomic::AtomicU64);

/// Starts a read section: the version to validate against, or `None` while a writer is active.
#[inline]
pub fn read_begin<W: Word>(version: &W) -> Option<u64> {
    let v = version.load(Ordering::Acquire);
    (v & 1 == 0).then_some(v)
}

/// Ends a read section: true when nothing read since [`read_begin`] can have been torn.
#[inline]
pub fn read_validate<W: Word>(version: &W, begun: u64) -> bool {
    // Orders the relaxed data loads before the re-read of the version.
    fence(Ordering::Acquire);
    version.load(Ordering::Relaxed) == begun
}

/// Tries to take the writer side: on success returns the (odd) locked version.
#[inline]
pub fn try_lock<W: Word>(version: &W) -> Option<u64> {
    let v = version.load(Ordering::Relaxed);
    if v & 1 == 1 {
        return None;
    }
    version
        .cas(v, v + 1, Ordering::Acquire, Ordering::Relaxed)
        .ok()?;
    // Keeps the data stores that follow from becoming visible before the odd version: a reader
    // that sees one of them also sees the odd version on its validating load.
    fence(Ordering::Release);
    Some(v + 1)
}

/// Releases the writer side taken by [`try_lock`]. `changed` bumps the version so readers retry;
/// a writer that changed nothing restores the old even version and spares them the retry.
#[inline]
pub fn unlock<W: Word>(version: &W, locked: u64, changed: bool) {
    debug_assert!(locked & 1 == 1, "unlock of a seqlock that is not held");
    let next = if changed { locked + 1 } else { locked - 1 };
    version.store(next, Ordering::Release);
}

/// Copies `out.len()` bytes out of `words` with relaxed atomic loads.
#[inline]
pub fn copy_out<W: Word>(words: &[W], out: &mut [u8]) {
    debug_assert!(out.len() <= words.len() * 8);
    let full = out.len() / 8;
    // Whole words through fixed-size copies (a register move each); only the tail has a length
    // known at run time. A variable-length copy per word was a libc memmove call per 8 bytes.
    let mut chunks = out.chunks_exact_mut(8);
    for (chunk, word) in (&mut chunks).zip(words) {
        let chunk: &mut [u8; 8] = chunk.try_into().expect("chunks_exact_mut yields 8 bytes");
        *chunk = word.load(Ordering::Relaxed).to_ne_bytes();
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let bytes = words[full].load(Ordering::Relaxed).to_ne_bytes();
        tail.copy_from_slice(&bytes[..tail.len()]);
    }
}

/// Copies `src` into `words` with relaxed atomic stores, zero-padding the last word.
#[inline]
pub fn copy_in<W: Word>(words: &[W], src: &[u8]) {
    debug_assert!(src.len() <= words.len() * 8);
    // As in `copy_out`: fixed-size copies for whole words, a variable one only for the tail.
    let mut chunks = src.chunks_exact(8);
    for (chunk, word) in (&mut chunks).zip(words) {
        let bytes: [u8; 8] = chunk.try_into().expect("chunks_exact yields 8 bytes");
        word.store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut bytes = [0u8; 8];
        bytes[..tail.len()].copy_from_slice(tail);
        words[src.len() / 8].store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
    }
}

/// A value cell of `N` words guarded by the seqlock: the record protocol on its own, so loom can
/// check it with small sizes.
#[derive(Debug)]
pub struct SeqLockCell<const N: usize> {
    version: crate::sync::AtomicU64,
    words: [crate::sync::AtomicU64; N],
}

impl<const N: usize> Default for SeqLockCell<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> SeqLockCell<N> {
    /// A zeroed cell.
    pub fn new() -> Self {
        Self {
            version: crate::sync::AtomicU64::new(0),
            words: std::array::from_fn(|_| crate::sync::AtomicU64::new(0)),
        }
    }

    /// A consistent copy of the cell, retrying while writers interfere.
    pub fn read(&self) -> [u64; N] {
        let mut step = 0;
        loop {
            if let Some(v) = read_begin(&self.version) {
                let out = std::array::from_fn(|i| self.words[i].load(Ordering::Relaxed));
                if read_validate(&self.version, v) {
                    return out;
                }
            }
            crate::sync::spin_wait(&mut step);
        }
    }

    /// Replaces the contents with `f(old)` under the writer lock (a read-modify-write).
    pub fn update(&self, f: impl FnOnce([u64; N]) -> [u64; N]) {
        let mut step = 0;
        let locked = loop {
            if let Some(l) = try_lock(&self.version) {
                break l;
            }
            crate::sync::spin_wait(&mut step);
        };
        let old = std::array::from_fn(|i| self.words[i].load(Ordering::Relaxed));
        for (w, v) in self.words.iter().zip(f(old)) {
            w.store(v, Ordering::Relaxed);
        }
        unlock(&self.version, locked, true);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn copy_round_trips_every_length() {
        let words: Vec<AtomicU64> = (0..4).map(|_| AtomicU64::new(u64::MAX)).collect();
        for len in 0..=32 {
            let src: Vec<u8> = (0..len as u8).collect();
            copy_in(&words, &src);
            let mut out = vec![0u8; len];
            copy_out(&words, &mut out);
            assert_eq!(out, src);
        }
    }

    #[test]
    fn lock_excludes_and_unlock_restores_or_bumps() {
        let v = AtomicU64::new(0);
        let l = try_lock(&v).unwrap();
        assert!(try_lock(&v).is_none());
        assert!(read_begin(&v).is_none());
        unlock(&v, l, false);
        assert_eq!(read_begin(&v), Some(0));
        let l = try_lock(&v).unwrap();
        unlock(&v, l, true);
        assert_eq!(read_begin(&v), Some(2));
        assert!(!read_validate(&v, 0));
    }

    #[test]
    fn cell_updates_are_never_torn() {
        let cell = std::sync::Arc::new(SeqLockCell::<4>::new());
        let writer = {
            let cell = cell.clone();
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    cell.update(|old| [old[0] + 1; 4]);
                }
            })
        };
        let mut last = 0;
        while last < 20_000 {
            let seen = cell.read();
            assert!(seen.iter().all(|&w| w == seen[0]), "torn read {seen:?}");
            assert!(seen[0] >= last);
            last = seen[0];
        }
        writer.join().unwrap();
    }
}
