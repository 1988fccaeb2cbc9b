//! Copying records read back from disk to the tail (FASTER's `CopyReadsToTail`), so that a key
//! that is read again is served from memory.
//!
//! Which reads copy is [`CopyReads`]: every one, or (`Repeated`) only a read of a key that was
//! read from disk recently, which a [`Doorkeeper`] remembers. Copying every read makes uniform
//! reads of a dataset far larger than memory write back nearly every record they read, for
//! nothing (the copy is evicted before it is read again); the doorkeeper lets the keys read
//! once stay on disk and brings the keys read again back.
//!
//! After a read finds its key's live record below the head (a private copy a walk rebuilt,
//! see `disk_record`), the record is appended at the tail, with its value, kind, expiry and
//! access bits, and the key's index entry is CASed to it from the value it has now, provided
//! the entry still leads, through memory, to the very walk that found the record. Any change
//! since (a writer of the key, or of another key on the chain) fails the CAS, and the copy is
//! dropped: nothing is retried, the next read tries again. The copy is not a write: it takes
//! no commit number (so nothing goes to the AOF), and the key and expiry counts are unchanged.
//!
//! It never does I/O and never waits: the walk's result must still be in this thread's cache
//! of finished walks, and while the flusher is behind (writers would wait for it) nothing is
//! promoted. The memory budget applies as to any append: the copy may push older pages out.
//! String values over an eighth of the memory budget are not copied back. Bulk passes over
//! the keyspace (RDB save, AOF rewrite) read with promotion off
//! (`Session::without_copying_reads`).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use crossbeam_epoch::Guard;

use super::TierStats;
use super::disk_record::cached;
use crate::CopyReads;
use crate::record::{Meta, ObjectCell, Rec, RecordInit, object_ref};
use crate::store::Store;
use crate::sync::Ordering;

/// Values over this fraction of the memory budget are not copied back.
const MAX_SHARE: u64 = 8;

thread_local! {
    /// Set while this thread reads for a bulk pass over the keyspace (RDB save, AOF rewrite):
    /// copying every record it reads would push the hot set out of memory.
    static SUPPRESSED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with promotion off on this thread (restored afterwards, even if `f` unwinds).
pub(crate) fn without<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the previous setting.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SUPPRESSED.set(self.0);
        }
    }
    let _restore = Restore(SUPPRESSED.replace(true));
    f()
}

/// Copies `rec`, the live (unexpired) newest record of its key, read back from disk, to the
/// tail. `hash` is its key's hash; the caller has been pinned since before it loaded the index
/// entry that led to `rec`.
pub(crate) fn promote(s: &Store, g: &Guard, hash: u64, rec: Rec<'_>) {
    let Some(tier) = s.tier.as_ref() else { return };
    if s.copy_reads_to_tail == CopyReads::Never || SUPPRESSED.get() || s.flush_is_behind() {
        return;
    }
    if let Some(door) = &tier.doorkeeper
        && !door.admit(hash)
    {
        return;
    }
    let meta = Meta(rec.meta());
    if meta.tombstone() || meta.sealed() {
        return;
    }
    let (pdb, key) = (rec.pdb(), rec.key());
    let Some(mut entry) = s.index.find(hash) else {
        return;
    };
    // The entry must still lead to `rec`: no newer record of the key in memory, and the walk
    // from the chain's first address on disk is the finished one that found `rec` (a walk
    // not in the cache would be a read: give up rather than do it).
    let Some(from) = s.disk_start(entry.address(), pdb, key) else {
        return;
    };
    match cached(from, pdb, key) {
        Some(Some(found)) if found.address() == rec.address() => {}
        _ => return,
    }
    let mut cell = None;
    let object = if rec.is_object() {
        let ptr = rec.object_ptr().load(Ordering::Relaxed);
        if ptr == 0 {
            return;
        }
        // SAFETY: a copy read back from disk owns its object until this thread's cache of
        // finished walks is released (between commands, not before we return), and nothing
        // mutates it (writers below the read-only address clone it first).
        let original = unsafe { object_ref(ptr) };
        cell.insert(ObjectCell::new(original.clone_box())).as_raw()
    } else {
        0
    };
    let value: &[u8] = if object != 0 {
        &[]
    } else {
        // SAFETY: a private copy read back from disk: nobody writes it, and it owns its value
        // buffer until this thread's cache is released.
        unsafe { rec.value_unsynchronized(meta.0) }
    };
    // A value that is a large share of the memory budget would push much of the hot set out
    // for one key: it stays on disk. (An object's size is not known without measuring it.)
    let budget = s.log.memory_pages() << s.log.page_bits();
    if value.len() as u64 > budget / MAX_SHARE {
        return;
    }
    let new = s.append(
        g,
        &RecordInit {
            prev: entry.address(),
            pdb,
            key,
            value,
            kind: meta.kind(),
            expire_at: rec.expire_at(),
            tombstone: false,
            object,
        },
    );
    // Unpublished: plain stores. The record keeps its history, and this read is an access.
    let bits = rec.access();
    new.touch(|_| bits);
    s.access.touch(new);
    if entry.try_swap(new.address()) {
        // The published record owns the cell now.
        cell.map(ObjectCell::into_raw);
        s.count_bytes(new.size() as i64 - rec.size() as i64);
        TierStats::bump(&tier.stats.records_promoted);
    } else {
        s.discard(new);
    }
}

/// TinyLFU's doorkeeper: remembers the keys of the last disk reads, so that a key read from
/// disk again within that window is admitted (copied back to memory) and a key read once is not.
///
/// Two generations of a Bloom filter (three bits per key, 16 bits per key of the window, so
/// under 1% false positives each): a key is recorded in the current one, and looked up in
/// both; after `window` recorded keys the older generation is cleared and becomes the current
/// one. So a key read twice within `window` disk reads is always admitted, one read twice
/// within `2 * window` may be, and a false positive (a key read once, admitted) only costs one
/// copy that was not needed. The bits are relaxed atomics: races between threads (a key
/// recorded into the generation being cleared) only make the filter forget a key early.
pub(crate) struct Doorkeeper {
    generations: [Box<[AtomicU64]>; 2],
    /// Index of the generation keys are recorded in.
    current: AtomicUsize,
    /// Keys recorded in the current generation.
    recorded: AtomicU64,
    /// Keys a generation holds before the older one is cleared.
    window: u64,
}

impl Doorkeeper {
    /// Shortest and longest window, in disk reads.
    const MIN_WINDOW: u64 = 1 << 12;
    const MAX_WINDOW: u64 = 1 << 20;
    /// One key of window per this many bytes of the memory budget, so the window grows with
    /// the number of records memory holds; the two generations take 4 bytes per key of
    /// window, 0.1% of the budget.
    const BYTES_PER_KEY: usize = 4096;
    /// Filter bits per key of the window, and bits set per key.
    const BITS_PER_KEY: u64 = 16;
    const PROBES: u64 = 3;

    /// A doorkeeper for a store whose log may use `memory_size` bytes.
    pub(crate) fn new(memory_size: usize) -> Doorkeeper {
        let window = ((memory_size / Self::BYTES_PER_KEY) as u64)
            .clamp(Self::MIN_WINDOW, Self::MAX_WINDOW)
            .next_power_of_two();
        let words = (window * Self::BITS_PER_KEY / 64) as usize;
        let generation = || (0..words).map(|_| AtomicU64::new(0)).collect();
        Doorkeeper {
            generations: [generation(), generation()],
            current: AtomicUsize::new(0),
            recorded: AtomicU64::new(0),
            window,
        }
    }

    /// The filter bits of the key of `hash` (double hashing from the two halves).
    fn bits(&self, hash: u64) -> impl Iterator<Item = (usize, u64)> {
        let mask = self.window * Self::BITS_PER_KEY - 1;
        let (h1, h2) = (hash, hash.rotate_left(32) | 1);
        (0..Self::PROBES).map(move |i| {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) & mask;
            ((bit / 64) as usize, 1u64 << (bit % 64))
        })
    }

    fn contains(&self, generation: usize, hash: u64) -> bool {
        let words = &self.generations[generation];
        self.bits(hash)
            .all(|(word, bit)| words[word].load(Ordering::Relaxed) & bit != 0)
    }

    /// Whether the key of `hash` was read from disk within the window; remembers it when not.
    pub(crate) fn admit(&self, hash: u64) -> bool {
        let current = self.current.load(Ordering::Relaxed);
        if self.contains(current, hash) || self.contains(current ^ 1, hash) {
            return true;
        }
        let words = &self.generations[current];
        for (word, bit) in self.bits(hash) {
            words[word].fetch_or(bit, Ordering::Relaxed);
        }
        // Exactly one recorder sees the count reach the window, and turns the generations.
        if self.recorded.fetch_add(1, Ordering::Relaxed) + 1 == self.window {
            for word in self.generations[current ^ 1].iter() {
                word.store(0, Ordering::Relaxed);
            }
            self.current.store(current ^ 1, Ordering::Relaxed);
            self.recorded.store(0, Ordering::Relaxed);
        }
        false
    }

    /// Bytes the filter takes.
    pub(crate) fn memory_bytes(&self) -> usize {
        2 * self.generations[0].len() * std::mem::size_of::<AtomicU64>()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Doorkeeper;

    /// A well-mixed hash of key `k`, as the store's hasher gives.
    fn hash(k: u64) -> u64 {
        let mut x = k.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    #[test]
    fn a_key_is_admitted_on_its_second_read() {
        let d = Doorkeeper::new(0);
        assert_eq!(d.window, Doorkeeper::MIN_WINDOW);
        assert_eq!(d.memory_bytes() as u64, 4 * Doorkeeper::MIN_WINDOW);
        assert!(!d.admit(hash(1)));
        assert!(d.admit(hash(1)));
        assert!(d.admit(hash(1)));
    }

    #[test]
    fn a_key_read_twice_within_the_window_is_always_admitted() {
        let d = Doorkeeper::new(0);
        let w = d.window;
        // Half a window of keys, then half a window of others: the generations turn just
        // before the first keys are read again, which the older generation still holds.
        for k in 0..w / 2 {
            assert!(!d.admit(hash(k)), "key {k} admitted on its first read");
        }
        let mut false_positives = 0;
        for k in w..w + w / 2 {
            false_positives += u64::from(d.admit(hash(k)));
        }
        for k in 0..w / 2 {
            assert!(d.admit(hash(k)), "key {k} forgotten within the window");
        }
        assert!(
            false_positives < w / 50,
            "{false_positives} false positives"
        );
    }

    #[test]
    fn keys_older_than_two_windows_are_forgotten() {
        let d = Doorkeeper::new(0);
        let w = d.window;
        assert!(!d.admit(hash(u64::MAX)));
        // Two turns of the generations (false positives are not recorded: a little more).
        for k in 0..3 * w {
            d.admit(hash(k));
        }
        assert!(!d.admit(hash(u64::MAX)), "remembered after two windows");
    }

    #[test]
    fn the_window_follows_the_memory_budget() {
        assert_eq!(Doorkeeper::new(256 << 20).window, 1 << 16);
        assert_eq!(Doorkeeper::new(1 << 40).window, Doorkeeper::MAX_WINDOW);
        assert_eq!(Doorkeeper::new(5 << 20).window, Doorkeeper::MIN_WINDOW);
    }

    #[test]
    fn uniform_reads_of_many_keys_are_rarely_admitted() {
        // A 64k-read window, reads spread over 2^24 keys: a key read twice within it is rare.
        let d = Doorkeeper::new(256 << 20);
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        let mut admitted = 0;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            admitted += usize::from(d.admit(hash(x % (1 << 24))));
        }
        assert!(admitted < 200_000 / 50, "{admitted} admitted");
    }
}
