//! Records read back from the device, and walks of a key's chain below the head.
//!
//! A walk starts at the first address of a key's chain that is below the head and follows
//! `prev` record by record until it finds the key (in the same physical db) or the chain ends.
//! What it finds is a fact that never changes (records below the head are immutable), so it is
//! kept in a per-thread cache that `Store::find_record` consults: a command that parked for
//! asynchronous reads finds its records there when it runs again. The cache is emptied only at
//! command boundaries ([`release_resolved`]), when no `Rec` into it can be alive.
//!
//! Records whose key or value lives in a heap block, and collection objects, cannot be read back
//! (their pointer words mean nothing on disk). The flusher copies every live one to the tail
//! before its page leaves memory, so one found on disk is never a key's newest record: a walk
//! steps over it.

use std::cell::RefCell;
use std::ptr::NonNull;

use crate::disk::AlignedBuf;
use crate::index::ADDRESS_MASK;
use crate::log::BEGIN_ADDRESS;
use crate::record::{
    DB_SHIFT, F_INVALID, F_KEY_HEAP, F_OBJECT, F_VALID, F_VALUE_HEAP, HEADER_BYTES, Rec, Shape,
};
use crate::store::Store;

use super::{DISK_ALIGN, MAX_READ, TierStats};

/// Entries the per-thread cache keeps across command boundaries before it is emptied.
const CACHE_LIMIT: usize = 1024;

/// A record read back from the device: its words, 8-aligned, at its log address.
pub(crate) struct DiskRecord {
    address: u64,
    words: Box<[u64]>,
}

/// What one walk found: the key's newest record below `from`, or nothing.
struct Resolved {
    from: u64,
    pdb: u8,
    key: Box<[u8]>,
    found: Option<DiskRecord>,
}

thread_local! {
    static RESOLVED: RefCell<Vec<Resolved>> = const { RefCell::new(Vec::new()) };
    /// Records read by address for whole-chain walks (SCAN, KEYS, FLUSHALL), whatever their key.
    static BY_ADDRESS: RefCell<Vec<DiskRecord>> = const { RefCell::new(Vec::new()) };
}

fn rec_of<'a>(d: &DiskRecord) -> Rec<'a> {
    let ptr = NonNull::from(&d.words[0]).cast::<u8>();
    // SAFETY: the words are a whole record, 8-aligned, in a boxed slice whose heap allocation
    // stays put until `release_resolved`, which callers run only between commands, when no
    // `Rec` from a store operation is alive. Its header words are only accessed atomically
    // (through `Rec`), like any record's.
    unsafe { Rec::at(ptr, d.address) }
}

/// Looks up a finished walk. `Some(None)`: the key is not below `from`.
fn cached<'a>(from: u64, pdb: u8, key: &[u8]) -> Option<Option<Rec<'a>>> {
    RESOLVED.with_borrow(|all| {
        let r = all
            .iter()
            .find(|r| r.from == from && r.pdb == pdb && *r.key == *key)?;
        Some(r.found.as_ref().map(rec_of))
    })
}

fn remember(from: u64, pdb: u8, key: &[u8], found: Option<DiskRecord>) {
    RESOLVED.with_borrow_mut(|all| {
        all.push(Resolved {
            from,
            pdb,
            key: key.into(),
            found,
        })
    });
}

/// Whether a walk from `from` for (`pdb`, `key`) has finished on this thread.
pub(crate) fn is_resolved(from: u64, pdb: u8, key: &[u8]) -> bool {
    RESOLVED.with_borrow(|all| {
        all.iter()
            .any(|r| r.from == from && r.pdb == pdb && *r.key == *key)
    })
}

/// Empties this thread's caches of records read back if they have grown. Call only between
/// commands.
pub(crate) fn release_resolved() {
    RESOLVED.with_borrow_mut(|all| {
        if all.len() > CACHE_LIMIT {
            all.clear();
        }
    });
    BY_ADDRESS.with_borrow_mut(|all| {
        if all.len() > CACHE_LIMIT {
            all.clear();
        }
    });
}

/// A record below the head, read by address.
pub(crate) enum OnDisk<'a> {
    /// A record a reader may use.
    Rec(Rec<'a>),
    /// A record that held pointers (its live version was copied to the tail before its page
    /// left memory): skip it, the chain goes on at `prev`.
    Skip { prev: u64 },
    /// Unreadable: the chain ends here (logged).
    End,
}

/// What a walk wants next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Read `len` bytes at device address `address` and feed them.
    Read { address: u64, len: usize },
    /// The walk is over (its result is in the cache).
    Done,
}

/// A walk of one key's chain below the head.
pub(crate) struct Walk {
    from: u64,
    pdb: u8,
    key: Vec<u8>,
    /// The record being read.
    at: u64,
    /// Bytes read so far, starting at device address `buf_start`.
    buf: Vec<u8>,
    buf_start: u64,
    /// Bytes of the current record once its header is known.
    need: usize,
    page_size: u64,
    /// Bytes the first read of a record covers past its start: the average record size, so
    /// that most records take one block-aligned read and few need a second.
    hint: usize,
    /// Take the first record whatever its key (into `taken`) instead of following the chain.
    keep_any: bool,
    taken: Option<DiskRecord>,
}

impl Walk {
    pub(crate) fn new(from: u64, pdb: u8, key: &[u8], page_size: u64, hint: usize) -> Walk {
        Walk {
            from,
            pdb,
            key: key.to_vec(),
            at: from,
            buf: Vec::new(),
            buf_start: 0,
            need: HEADER_BYTES,
            page_size,
            hint: hint.clamp(HEADER_BYTES, MAX_READ),
            keep_any: false,
            taken: None,
        }
    }

    /// The record address the walk is at.
    pub(crate) fn at(&self) -> u64 {
        self.at
    }

    /// The next read: from the end of what we have (or the aligned start of the record) to
    /// the aligned end of what the record needs, within its page and at most [`MAX_READ`].
    pub(crate) fn next_read(&self) -> Next {
        let align = DISK_ALIGN as u64;
        let start = if self.buf.is_empty() {
            self.at & !(align - 1)
        } else {
            self.buf_start + self.buf.len() as u64
        };
        let page_end = (self.at | (self.page_size - 1)) + 1;
        // The first read of a record covers what an average record needs: one aligned block
        // for most small records (a 4 KiB read is what the disk does fastest), a second read
        // only when the record is bigger or crosses a block boundary.
        let need = if self.buf.is_empty() {
            self.need.max(self.hint)
        } else {
            self.need
        };
        let want_end = (self.at + need as u64).next_multiple_of(align);
        let end = want_end.min(page_end).min(start + MAX_READ as u64);
        Next::Read {
            address: start,
            len: (end - start) as usize,
        }
    }

    /// Takes the bytes of the read [`Walk::next_read`] asked for. Corrupt or short data ends the
    /// walk as "not found" and is counted as an I/O error (and logged).
    pub(crate) fn feed(&mut self, bytes: &[u8], stats: &TierStats) -> Next {
        if self.buf.is_empty() {
            self.buf_start = self.at & !(DISK_ALIGN as u64 - 1);
        }
        if bytes.is_empty() {
            return self.corrupt("short read", stats);
        }
        self.buf.extend_from_slice(bytes);
        let offset = (self.at - self.buf_start) as usize;
        let have = self.buf.len() - offset;
        if have < HEADER_BYTES {
            self.need = HEADER_BYTES;
            return self.next_read();
        }
        let word = |i: usize| {
            let b = &self.buf[offset + 8 * i..offset + 8 * i + 8];
            u64::from_ne_bytes(b.try_into().expect("8 bytes"))
        };
        let info = word(0);
        if info & F_VALID == 0 || info & F_INVALID != 0 {
            return self.corrupt("no valid record header", stats);
        }
        let sizes = word(2);
        let key_len = (sizes >> 32) as usize;
        let shape = Shape::from_parts(
            key_len,
            info & F_KEY_HEAP != 0,
            info & F_VALUE_HEAP != 0,
            (sizes & 0xFFFF_FFFF) as usize,
            info & F_OBJECT != 0,
        );
        let room = self.page_size - (self.at & (self.page_size - 1));
        if shape.size as u64 > room || !shape.size.is_multiple_of(8) {
            return self.corrupt("record size beyond its page", stats);
        }
        if have < shape.size {
            self.need = shape.size;
            return self.next_read();
        }
        let prev = info & ADDRESS_MASK;
        let pdb = (info >> DB_SHIFT) as u8;
        let pointers = info & (F_KEY_HEAP | F_VALUE_HEAP | F_OBJECT) != 0;
        let key_at = offset + HEADER_BYTES;
        let record = |buf: &[u8], at| DiskRecord {
            address: at,
            words: buf[offset..offset + shape.size]
                .chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        };
        if self.keep_any {
            if prev >= self.at {
                return self.corrupt("chain does not go back", stats);
            }
            self.taken = Some(record(&self.buf, self.at));
            return Next::Done;
        }
        if !pointers
            && pdb == self.pdb
            && key_len == self.key.len()
            && self.buf[key_at..key_at + key_len] == *self.key
        {
            let found = record(&self.buf, self.at);
            remember(self.from, self.pdb, &self.key, Some(found));
            return Next::Done;
        }
        if prev < BEGIN_ADDRESS {
            remember(self.from, self.pdb, &self.key, None);
            return Next::Done;
        }
        if prev >= self.at {
            return self.corrupt("chain does not go back", stats);
        }
        self.at = prev;
        self.buf.clear();
        self.need = HEADER_BYTES;
        self.next_read()
    }

    /// Ends the walk: the key is not at or below where it stands (compaction deleted that part
    /// of the log after copying everything live above it).
    pub(crate) fn end(&mut self) -> Next {
        if !self.keep_any {
            remember(self.from, self.pdb, &self.key, None);
        }
        Next::Done
    }

    fn corrupt(&mut self, what: &str, stats: &TierStats) -> Next {
        TierStats::bump(&stats.io_errors);
        log::error!(
            "disk tier: {what} at log address {}; treating the key as missing",
            self.at
        );
        if !self.keep_any {
            remember(self.from, self.pdb, &self.key, None);
        }
        Next::Done
    }
}

/// Reads the record at `address` (below the head) synchronously, whatever its key, for walks
/// over whole chains. Cached by address on this thread.
pub(crate) fn record_at<'a>(s: &'a Store, address: u64) -> OnDisk<'a> {
    if address < s.log.begin_address() {
        return OnDisk::End;
    }
    let hit = BY_ADDRESS.with_borrow(|all| all.iter().find(|d| d.address == address).map(rec_of));
    let rec = match hit {
        Some(r) => r,
        None => {
            let Some(tier) = s.tier.as_ref() else {
                return OnDisk::End;
            };
            TierStats::bump(&tier.stats.sync_reads);
            // A walk for a key no record has: it reads the record at `address` and stops there.
            let mut walk = Walk::new(address, 0, &[], s.log.page_size(), s.average_record_size());
            walk.keep_any = true;
            read_sync(s, &mut walk);
            match walk.taken.take() {
                Some(d) => {
                    let r = rec_of(&d);
                    BY_ADDRESS.with_borrow_mut(|all| all.push(d));
                    r
                }
                None => return OnDisk::End,
            }
        }
    };
    if rec.info() & (F_KEY_HEAP | F_VALUE_HEAP | F_OBJECT) != 0 {
        OnDisk::Skip { prev: rec.prev() }
    } else {
        OnDisk::Rec(rec)
    }
}

/// Drives `walk` to its end with synchronous device reads.
fn read_sync(s: &Store, walk: &mut Walk) {
    let Some(tier) = s.tier.as_ref() else { return };
    SCRATCH.with_borrow_mut(|scratch| {
        let scratch = scratch.get_or_insert_with(|| AlignedBuf::new(MAX_READ, DISK_ALIGN));
        let mut next = walk.next_read();
        while let Next::Read { address, len } = next {
            // The record's address, not the aligned read's: the first record of the log
            // starts after its first block does.
            if walk.at() < s.log.begin_address() {
                next = walk.end();
                continue;
            }
            let buf = &mut scratch.as_mut_slice()[..len];
            next = match tier.device.read(address, buf) {
                Ok(n) => walk.feed(&buf[..n], &tier.stats),
                Err(err) => {
                    log::error!("disk tier: read at {address} failed: {err}");
                    walk.feed(&[], &tier.stats)
                }
            };
        }
    });
}

thread_local! {
    static SCRATCH: RefCell<Option<AlignedBuf>> = const { RefCell::new(None) };
}

/// The newest record of (`pdb`, `key`) at or below `from` (an address below the head), from
/// this thread's cache or, failing that, by reading the device synchronously.
pub(crate) fn find_on_disk<'a>(s: &'a Store, from: u64, pdb: u8, key: &[u8]) -> Option<Rec<'a>> {
    if from < s.log.begin_address() {
        return None;
    }
    if let Some(found) = cached(from, pdb, key) {
        return found;
    }
    let tier = s.tier.as_ref()?;
    TierStats::bump(&tier.stats.sync_reads);
    let mut walk = Walk::new(from, pdb, key, s.log.page_size(), s.average_record_size());
    read_sync(s, &mut walk);
    cached(from, pdb, key).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_reads_aligned_windows_within_the_page() {
        let w = Walk::new(4096 * 3 + 64, 0, b"k", 1 << 16, 1000);
        assert_eq!(
            w.next_read(),
            Next::Read {
                address: 4096 * 3,
                len: 4096
            },
            "an average record fits the block it starts in"
        );
        let crossing = Walk::new(4096 * 3 + 3500, 0, b"k", 1 << 16, 1000);
        assert_eq!(
            crossing.next_read(),
            Next::Read {
                address: 4096 * 3,
                len: 2 * 4096
            }
        );
        let near_end = Walk::new((1 << 16) - 48, 0, b"k", 1 << 16, 1000);
        assert_eq!(
            near_end.next_read(),
            Next::Read {
                address: (1 << 16) - 4096,
                len: 4096
            }
        );
    }

    #[test]
    fn garbage_ends_a_walk_as_not_found() {
        let stats = TierStats::default();
        for bytes in [vec![0u8; 4096], vec![0xFF; 4096], vec![]] {
            let from = 4096 * 7 + 8;
            let mut w = Walk::new(from, 1, b"key", 1 << 20, 1000);
            let mut next = w.next_read();
            let mut rounds = 0;
            while let Next::Read { .. } = next {
                next = w.feed(&bytes, &stats);
                rounds += 1;
                assert!(rounds < 100, "a garbage walk must end");
            }
            assert!(cached(from, 1, b"key").is_some_and(|f| f.is_none()));
            RESOLVED.with_borrow_mut(Vec::clear);
        }
        assert!(stats.io_errors.load(std::sync::atomic::Ordering::Relaxed) >= 3);
    }
}
