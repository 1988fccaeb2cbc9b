//! Records read back from the device, and walks of a key's chain below the head.
//!
//! A walk starts at the first address of a key's chain that is below the head and follows
//! `prev` record by record until it finds the key (in the same physical db) or the chain ends.
//! What it finds is a fact that never changes (records below the head are immutable), so it is
//! kept in a per-thread cache that `Store::find_record` consults: a command that parked for
//! asynchronous reads finds its records there when it runs again. The cache is emptied only at
//! command boundaries ([`release_resolved`]), when no `Rec` into it can be alive.
//!
//! A record that held pointers when its page was written (heap key or value, collection
//! object) has its payload in the object log (`F_OLOG`, see [`objlog`](super::objlog)): the walk
//! reads the blob as a second step (only for a record whose db and key length match, and whose
//! inline key matches if it has one), checks it, and rebuilds the record as a private copy
//! (`F_COPY`) whose pointer words point at buffers it owns, or at an object rebuilt by the
//! store's [`ObjectReader`](super::ObjectReader). So everything that reads records (reads,
//! read-copy-update, compaction) works on it as on a record in memory. Records with pointers but
//! without `F_OLOG` (relocated to the tail before their page left memory) are stepped over.

use std::cell::RefCell;
use std::ptr::NonNull;

use crate::disk::AlignedBuf;
use crate::index::ADDRESS_MASK;
use crate::log::BEGIN_ADDRESS;
use crate::record::{
    DB_SHIFT, F_COPY, F_INVALID, F_KEY_HEAP, F_OBJECT, F_OLOG, F_VALID, F_VALUE_HEAP, HEADER_BYTES,
    LEN_MASK, M_TOMBSTONE, ObjectCell, Rec, Shape,
};
use crate::store::Store;

use super::objlog::{BLOB_HEADER, BlobHeader, NO_BLOB};
use super::{DISK_ALIGN, MAX_READ, TierStats};

/// Entries the per-thread cache keeps across command boundaries before it is emptied.
const CACHE_LIMIT: usize = 1024;
/// Bytes (records' words and payloads) the per-thread cache keeps across command boundaries
/// before it is emptied (part of the documented per-thread constant of RSS beyond the memory
/// budget).
const CACHE_BYTES: usize = 4 << 20;

/// What a copy read back from disk owns: the buffers and the object its pointer words point at.
#[derive(Default)]
struct Payload {
    key: Option<Box<[u8]>>,
    value: Option<Box<[u8]>>,
    object: Option<ObjectCell>,
}

/// A record read back from the device: its words, 8-aligned, at its log address.
pub(crate) struct DiskRecord {
    address: u64,
    words: Box<[u64]>,
    /// What the pointer words point at, kept alive (and dropped) with the record.
    _payload: Payload,
    /// Bytes it holds, words and payload (for the cache's bound): an inline value can be a
    /// quarter of a log page, so counting payloads alone would let 1024 entries of big inline
    /// records through.
    bytes: usize,
}

/// What one walk found: the key's newest record below `from`, or nothing.
struct Resolved {
    from: u64,
    pdb: u8,
    key: Box<[u8]>,
    found: Option<DiskRecord>,
}

#[derive(Default)]
struct Cache {
    resolved: Vec<Resolved>,
    /// Records read by address for whole-chain walks (SCAN, KEYS, FLUSHALL), whatever their key.
    by_address: Vec<DiskRecord>,
    bytes: usize,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

fn rec_of<'a>(d: &DiskRecord) -> Rec<'a> {
    let ptr = NonNull::from(&d.words[0]).cast::<u8>();
    // SAFETY: the words are a whole record, 8-aligned, in a boxed slice whose heap allocation
    // stays put until `release_resolved`, which callers run only between commands, when no
    // `Rec` from a store operation is alive; so do the payload buffers and the object its
    // pointer words point at (owned by the same `DiskRecord`). Its header words are only
    // accessed atomically (through `Rec`), like any record's.
    unsafe { Rec::at(ptr, d.address) }
}

/// Looks up a finished walk. `Some(None)`: the key is not below `from`.
pub(crate) fn cached<'a>(from: u64, pdb: u8, key: &[u8]) -> Option<Option<Rec<'a>>> {
    CACHE.with_borrow(|c| {
        let r = c
            .resolved
            .iter()
            .find(|r| r.from == from && r.pdb == pdb && *r.key == *key)?;
        Some(r.found.as_ref().map(rec_of))
    })
}

fn remember(from: u64, pdb: u8, key: &[u8], found: Option<DiskRecord>) {
    CACHE.with_borrow_mut(|c| {
        c.bytes += key.len() + found.as_ref().map_or(0, |d| d.bytes);
        c.resolved.push(Resolved {
            from,
            pdb,
            key: key.into(),
            found,
        })
    });
}

/// Whether a walk from `from` for (`pdb`, `key`) has finished on this thread.
pub(crate) fn is_resolved(from: u64, pdb: u8, key: &[u8]) -> bool {
    CACHE.with_borrow(|c| {
        c.resolved
            .iter()
            .any(|r| r.from == from && r.pdb == pdb && *r.key == *key)
    })
}

/// Empties this thread's caches of records read back if they have grown. Call only between
/// commands.
pub(crate) fn release_resolved() {
    CACHE.with_borrow_mut(|c| {
        if c.resolved.len() + c.by_address.len() > CACHE_LIMIT || c.bytes > CACHE_BYTES {
            *c = Cache::default();
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

/// Which file a read goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DiskFile {
    /// The log's device (record headers).
    Log,
    /// The object log (payloads).
    Objects,
}

/// What a walk wants next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Read `len` bytes at address `address` of `file` and feed them.
    Read {
        file: DiskFile,
        address: u64,
        len: usize,
    },
    /// The walk is over (its result is in the cache).
    Done,
}

/// The store's object reader, if the command layer registered one.
pub(crate) type Reader = Option<super::ObjectReader>;

/// A record whose payload is being read from the object log.
struct Pending {
    words: Box<[u64]>,
    /// Object-log address of the blob.
    blob: u64,
    buf: Vec<u8>,
    buf_start: u64,
    /// Bytes of the blob wanted.
    need: usize,
    /// What the record says the whole blob takes (the header must agree).
    expected: usize,
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
    /// Object-log reads stay within one of its segments.
    object_segment: u64,
    /// Bytes the first read of a record covers past its start: the average record size, so
    /// that most records take one block-aligned read and few need a second.
    hint: usize,
    /// Take the first record whatever its key (into `taken`) instead of following the chain.
    keep_any: bool,
    taken: Option<DiskRecord>,
    pending: Option<Pending>,
    /// The walk ended on an unreadable or corrupt block: the key's value is unknown.
    failed: bool,
}

impl Walk {
    pub(crate) fn new(s: &Store, from: u64, pdb: u8, key: &[u8]) -> Walk {
        let object_segment = s
            .tier
            .as_ref()
            .and_then(|t| t.objects.as_ref())
            .map_or(1 << 30, |o| o.device.segment_bytes());
        Walk::with(
            from,
            pdb,
            key,
            s.log.page_size(),
            s.average_record_size(),
            object_segment,
        )
    }

    fn with(
        from: u64,
        pdb: u8,
        key: &[u8],
        page_size: u64,
        hint: usize,
        object_segment: u64,
    ) -> Walk {
        Walk {
            from,
            pdb,
            key: key.to_vec(),
            at: from,
            buf: Vec::new(),
            buf_start: 0,
            need: HEADER_BYTES,
            page_size,
            object_segment,
            hint: hint.clamp(HEADER_BYTES, MAX_READ),
            keep_any: false,
            taken: None,
            pending: None,
            failed: false,
        }
    }

    /// The record address the walk is at.
    pub(crate) fn at(&self) -> u64 {
        self.at
    }

    /// The next read: from the end of what we have (or the aligned start of the record) to
    /// the aligned end of what the record needs, within its page and at most [`MAX_READ`];
    /// for a payload, the same within the object log's segment.
    pub(crate) fn next_read(&self) -> Next {
        let align = DISK_ALIGN as u64;
        if let Some(p) = &self.pending {
            let start = if p.buf.is_empty() {
                p.blob & !(align - 1)
            } else {
                p.buf_start + p.buf.len() as u64
            };
            let segment_end = (start | (self.object_segment - 1)) + 1;
            let want_end = (p.blob + p.need as u64).next_multiple_of(align);
            let end = want_end.min(segment_end).min(start + MAX_READ as u64);
            return Next::Read {
                file: DiskFile::Objects,
                address: start,
                len: (end - start) as usize,
            };
        }
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
            file: DiskFile::Log,
            address: start,
            len: (end - start) as usize,
        }
    }

    /// Takes the bytes of the read [`Walk::next_read`] asked for. Corrupt or short data ends the
    /// walk as "not found" and is counted as an I/O error (and logged).
    pub(crate) fn feed(&mut self, bytes: &[u8], stats: &TierStats, reader: Reader) -> Next {
        if self.pending.is_some() {
            return self.feed_blob(bytes, stats, reader);
        }
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
        let meta = word(3);
        let key_len = (sizes >> 32) as usize;
        let key_heap = info & F_KEY_HEAP != 0;
        let shape = Shape::from_parts(
            key_len,
            key_heap,
            info & F_VALUE_HEAP != 0,
            (sizes & LEN_MASK) as usize,
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
        let olog = info & F_OLOG != 0;
        let key_at = offset + HEADER_BYTES;
        let words: Box<[u64]> = self.buf[offset..offset + shape.size]
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
            .collect();
        if self.keep_any {
            if prev >= self.at {
                return self.corrupt("chain does not go back", stats);
            }
            if !olog {
                self.taken = Some(plain(self.at, words));
                return Next::Done;
            }
        }
        let candidate = self.keep_any
            || (pdb == self.pdb
                && key_len == self.key.len()
                && (key_heap || self.buf[key_at..key_at + key_len] == *self.key));
        if candidate && olog {
            let value_word = if info & (F_VALUE_HEAP | F_OBJECT) != 0 {
                words[value_word_index(info, key_len)]
            } else {
                NO_BLOB // A tombstone with a heap key has no value word.
            };
            let blob = if key_heap { words[5] } else { value_word };
            if blob == NO_BLOB {
                if meta & M_TOMBSTONE == 0 && !self.keep_any {
                    return self.corrupt("a live record without its payload", stats);
                }
                // A tombstone, or (for a walk by address) a superseded record: no payload.
                return match materialize(reader, self.at, words, None) {
                    Ok(d) => self.finish(d),
                    Err(what) => self.corrupt(what, stats),
                };
            }
            let expected = if key_heap { key_len } else { 0 }
                + if value_word == NO_BLOB {
                    0
                } else {
                    (meta & LEN_MASK) as usize
                };
            self.pending = Some(Pending {
                words,
                blob,
                buf: Vec::new(),
                buf_start: 0,
                need: BLOB_HEADER + expected,
                expected: BLOB_HEADER + expected,
            });
            return self.next_read();
        }
        if candidate && !pointers {
            let found = plain(self.at, words);
            return self.finish(found);
        }
        self.step_back(prev, stats)
    }

    /// Goes on at `prev`, or ends the walk at the end of the chain.
    fn step_back(&mut self, prev: u64, stats: &TierStats) -> Next {
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
        self.pending = None;
        self.next_read()
    }

    /// The walk found `d`: cache it (or hand it to `record_at`).
    fn finish(&mut self, d: DiskRecord) -> Next {
        if self.keep_any {
            self.taken = Some(d);
        } else {
            remember(self.from, self.pdb, &self.key, Some(d));
        }
        Next::Done
    }

    /// Takes bytes of the pending record's blob.
    fn feed_blob(&mut self, bytes: &[u8], stats: &TierStats, reader: Reader) -> Next {
        let p = self.pending.as_mut().expect("a payload is pending");
        if p.buf.is_empty() {
            p.buf_start = p.blob & !(DISK_ALIGN as u64 - 1);
        }
        if bytes.is_empty() {
            return self.corrupt("short read in the object log", stats);
        }
        p.buf.extend_from_slice(bytes);
        let offset = (p.blob - p.buf_start) as usize;
        let have = p.buf.len().saturating_sub(offset);
        if have < BLOB_HEADER {
            p.need = p.need.max(BLOB_HEADER);
            return self.next_read();
        }
        let header = BlobHeader::parse(&p.buf[offset..offset + BLOB_HEADER]);
        if header.total() != p.expected {
            // Checked before reading on: a damaged length must not send the walk reading
            // gigabytes.
            return self.corrupt("object-log blob of the wrong length", stats);
        }
        if header.total() > have {
            p.need = header.total();
            return self.next_read();
        }
        let blob = &p.buf[offset..offset + header.total()];
        let info = p.words[0];
        let key_len = (p.words[2] >> 32) as usize;
        let key_heap = info & F_KEY_HEAP != 0;
        let header = match super::objlog::check(blob, self.at) {
            Ok(h) => h,
            Err(what) => return self.corrupt(what, stats),
        };
        if header.key_len != if key_heap { key_len } else { 0 } {
            return self.corrupt("object-log blob has the wrong key length", stats);
        }
        let key = &blob[BLOB_HEADER..BLOB_HEADER + header.key_len];
        if key_heap && !self.keep_any && *key != *self.key {
            let prev = info & ADDRESS_MASK;
            return self.step_back(prev, stats);
        }
        let value = &blob[BLOB_HEADER + header.key_len..];
        let words = std::mem::take(&mut p.words);
        match materialize(reader, self.at, words, Some((key, value))) {
            Ok(d) => {
                self.pending = None;
                self.finish(d)
            }
            Err(what) => self.corrupt(what, stats),
        }
    }

    /// Ends the walk: the key is not at or below where it stands (compaction deleted that part
    /// of the log after copying everything live above it).
    pub(crate) fn end(&mut self) -> Next {
        if !self.keep_any {
            remember(self.from, self.pdb, &self.key, None);
        }
        self.pending = None;
        Next::Done
    }

    /// Whether the walk ended on an unreadable or corrupt block rather than on an answer.
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    pub(crate) fn corrupt(&mut self, what: &str, stats: &TierStats) -> Next {
        TierStats::bump(&stats.io_errors);
        self.failed = true;
        log::error!(
            "disk tier: {what} at log address {}; treating the key as missing",
            self.at
        );
        self.end()
    }
}

/// A record without pointers, as read.
fn plain(address: u64, words: Box<[u64]>) -> DiskRecord {
    DiskRecord {
        address,
        bytes: words.len() * 8,
        words,
        _payload: Payload::default(),
    }
}

/// Index of the value (or object) word of a record with these info and key length.
fn value_word_index(info: u64, key_len: usize) -> usize {
    let key_words = if info & F_KEY_HEAP != 0 {
        1
    } else {
        key_len.div_ceil(8)
    };
    HEADER_BYTES / 8 + key_words
}

/// Rebuilds a record whose payload came from the object log as a private copy: its pointer
/// words point at buffers (or an object) the copy owns. `payload` is the blob's key and value
/// bytes (`None`: the record has no blob).
fn materialize(
    reader: Reader,
    address: u64,
    mut words: Box<[u64]>,
    payload: Option<(&[u8], &[u8])>,
) -> Result<DiskRecord, &'static str> {
    let info = words[0];
    let key_len = (words[2] >> 32) as usize;
    let vi = value_word_index(info, key_len);
    let mut owned = Payload::default();
    let (key, value) = payload.unwrap_or((&[], &[]));
    // What the payload holds in memory: a rebuilt collection measures its native structure,
    // often several times its serialized bytes (the cache's byte bound is about memory).
    let mut payload_bytes = key.len() + value.len();
    if info & F_KEY_HEAP != 0 {
        if key.len() != key_len {
            return Err("object-log blob without the record's key");
        }
        let k: Box<[u8]> = key.into();
        words[5] = k.as_ptr() as u64;
        owned.key = Some(k);
    }
    let has_value =
        info & (F_VALUE_HEAP | F_OBJECT) != 0 && words[vi] != NO_BLOB && payload.is_some();
    if info & F_OBJECT != 0 {
        // An object record's value length is 0 in memory (the image carried the serialized
        // length as a read hint).
        words[3] &= !LEN_MASK;
        words[vi] = 0;
        if has_value {
            let kind = crate::ValueKind::from_raw((words[3] >> 32) as u8);
            let reader = reader.ok_or("an object on disk and no object reader registered")?;
            let object = reader(kind, value).map_err(|e| {
                log::error!("disk tier: cannot rebuild the object at {address}: {e}");
                "object-log blob does not deserialize"
            })?;
            if object.kind() != kind {
                return Err("object-log blob holds another kind of object");
            }
            payload_bytes = key.len() + object.memory_usage();
            let cell = ObjectCell::new(object);
            words[vi] = cell.as_raw();
            owned.object = Some(cell);
        }
    } else if info & F_VALUE_HEAP != 0 {
        words[vi] = 0;
        if has_value {
            if value.len() != (words[3] & LEN_MASK) as usize || value.is_empty() {
                return Err("object-log blob has the wrong value length");
            }
            let v: Box<[u8]> = value.into();
            words[vi] = v.as_ptr() as u64;
            owned.value = Some(v);
        }
    }
    words[0] = (info & !F_OLOG) | F_COPY;
    Ok(DiskRecord {
        address,
        bytes: words.len() * 8 + payload_bytes,
        words,
        _payload: owned,
    })
}

/// Reads the record at `address` (below the head) synchronously, whatever its key, for walks
/// over whole chains. Cached by address on this thread.
pub(crate) fn record_at<'a>(s: &'a Store, address: u64) -> OnDisk<'a> {
    if address < s.log.begin_address() {
        return OnDisk::End;
    }
    let hit = CACHE.with_borrow(|c| {
        c.by_address
            .iter()
            .find(|d| d.address == address)
            .map(rec_of)
    });
    let rec = match hit {
        Some(r) => r,
        None => {
            let Some(tier) = s.tier.as_ref() else {
                return OnDisk::End;
            };
            TierStats::bump(&tier.stats.sync_reads);
            // A walk for a key no record has: it reads the record at `address` and stops there.
            let mut walk = Walk::new(s, address, 0, &[]);
            walk.keep_any = true;
            read_sync(s, &mut walk);
            match walk.taken.take() {
                Some(d) => {
                    let r = rec_of(&d);
                    CACHE.with_borrow_mut(|c| {
                        c.bytes += d.bytes;
                        c.by_address.push(d)
                    });
                    r
                }
                None => return OnDisk::End,
            }
        }
    };
    let info = rec.info();
    if info & (F_KEY_HEAP | F_VALUE_HEAP | F_OBJECT) != 0 && info & F_COPY == 0 {
        OnDisk::Skip { prev: rec.prev() }
    } else {
        OnDisk::Rec(rec)
    }
}

/// Drives `walk` to its end with synchronous device reads.
fn read_sync(s: &Store, walk: &mut Walk) {
    let Some(tier) = s.tier.as_ref() else { return };
    let reader = s.object_reader();
    SCRATCH.with_borrow_mut(|scratch| {
        let scratch = scratch.get_or_insert_with(|| AlignedBuf::new(MAX_READ, DISK_ALIGN));
        let mut next = walk.next_read();
        while let Next::Read { file, address, len } = next {
            // The record's address, not the aligned read's: the first record of the log
            // starts after its first block does.
            if walk.at() < s.log.begin_address() {
                next = walk.end();
                continue;
            }
            let device = match file {
                DiskFile::Log => Some(&*tier.device),
                DiskFile::Objects => tier.objects.as_ref().map(|o| &*o.device),
            };
            let buf = &mut scratch.as_mut_slice()[..len];
            let read = match device {
                Some(d) => d.read(address, buf),
                None => Err(std::io::Error::other("the store has no object log")),
            };
            next = match read {
                // Compaction deleted the file under us: the chain ends here, as above.
                Ok(0) | Err(_) if walk.at() < s.log.begin_address() => walk.end(),
                Ok(n) if file == DiskFile::Log && !tier.device.check(address, &buf[..n]) => {
                    if walk.at() < s.log.begin_address() {
                        // Compaction deleted the segment meanwhile (its sums went with it).
                        walk.end()
                    } else {
                        walk.corrupt("a block that fails its checksum", &tier.stats)
                    }
                }
                Ok(n) => walk.feed(&buf[..n], &tier.stats, reader),
                Err(err) => {
                    log::error!("disk tier: read at {address} ({file:?}) failed: {err}");
                    walk.feed(&[], &tier.stats, reader)
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
    let mut walk = Walk::new(s, from, pdb, key);
    read_sync(s, &mut walk);
    cached(from, pdb, key).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_reads_aligned_windows_within_the_page() {
        let w = Walk::with(4096 * 3 + 64, 0, b"k", 1 << 16, 1000, 1 << 30);
        assert_eq!(
            w.next_read(),
            Next::Read {
                file: DiskFile::Log,
                address: 4096 * 3,
                len: 4096
            },
            "an average record fits the block it starts in"
        );
        let crossing = Walk::with(4096 * 3 + 3500, 0, b"k", 1 << 16, 1000, 1 << 30);
        assert_eq!(
            crossing.next_read(),
            Next::Read {
                file: DiskFile::Log,
                address: 4096 * 3,
                len: 2 * 4096
            }
        );
        let near_end = Walk::with((1 << 16) - 48, 0, b"k", 1 << 16, 1000, 1 << 30);
        assert_eq!(
            near_end.next_read(),
            Next::Read {
                file: DiskFile::Log,
                address: (1 << 16) - 4096,
                len: 4096
            }
        );
    }

    #[test]
    fn big_inline_records_count_against_the_cache_bound() {
        CACHE.with_borrow_mut(|c| *c = Cache::default());
        // Five records of 1 MiB of words each (an inline value of a quarter of a 4 MiB page):
        // far fewer entries than the count limit, more bytes than the byte limit.
        for i in 0..5u64 {
            let words = vec![0u64; (1 << 20) / 8].into_boxed_slice();
            remember(64 + i * 8, 0, b"k", Some(plain(64 + i * 8, words)));
        }
        release_resolved();
        assert!(cached(64, 0, b"k").is_none(), "the cache was emptied");
        // A few small ones stay across command boundaries.
        for i in 0..5u64 {
            remember(
                64 + i * 8,
                0,
                b"k",
                Some(plain(64 + i * 8, vec![0u64; 8].into())),
            );
        }
        release_resolved();
        assert!(cached(64, 0, b"k").is_some());
        CACHE.with_borrow_mut(|c| *c = Cache::default());
    }

    /// A collection whose native form is 100 times its serialized bytes.
    struct Bloated(usize);

    impl crate::StoreObject for Bloated {
        fn kind(&self) -> crate::ValueKind {
            crate::ValueKind::Hash
        }
        fn clone_box(&self) -> Box<dyn crate::StoreObject> {
            Box::new(Bloated(self.0))
        }
        fn serialize(&self, out: &mut Vec<u8>) {
            out.extend(std::iter::repeat_n(0, self.0 / 100));
        }
        fn memory_usage(&self) -> usize {
            self.0
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
        fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
            self
        }
    }

    fn read_bloated(
        _: crate::ValueKind,
        bytes: &[u8],
    ) -> Result<Box<dyn crate::StoreObject>, String> {
        Ok(Box::new(Bloated(bytes.len() * 100)))
    }

    #[test]
    fn a_rebuilt_collection_counts_its_memory_not_its_serialized_bytes() {
        // Header, one word of inline key ("k"), the object word.
        let mut words = vec![0u64; HEADER_BYTES / 8 + 2].into_boxed_slice();
        words[0] = F_VALID | F_OBJECT | F_OLOG;
        words[2] = 1 << 32;
        words[3] = (crate::ValueKind::Hash as u64) << 32;
        words[HEADER_BYTES / 8 + 1] = 4096; // an object-log address (not NO_BLOB)
        let serialized = vec![7u8; 1000];
        let d =
            materialize(Some(read_bloated), 64, words, Some((&[], &serialized))).expect("rebuilds");
        assert!(
            d.bytes >= 100_000,
            "{} bytes counted for a 100 kB collection",
            d.bytes
        );
        assert_eq!(rec_of(&d).info() & F_COPY, F_COPY);
    }

    #[test]
    fn garbage_ends_a_walk_as_not_found() {
        let stats = TierStats::default();
        for bytes in [vec![0u8; 4096], vec![0xFF; 4096], vec![]] {
            let from = 4096 * 7 + 8;
            let mut w = Walk::with(from, 1, b"key", 1 << 20, 1000, 1 << 30);
            let mut next = w.next_read();
            let mut rounds = 0;
            while let Next::Read { .. } = next {
                next = w.feed(&bytes, &stats, None);
                rounds += 1;
                assert!(rounds < 100, "a garbage walk must end");
            }
            assert!(cached(from, 1, b"key").is_some_and(|f| f.is_none()));
            CACHE.with_borrow_mut(|c| *c = Cache::default());
        }
        assert!(stats.io_errors.load(std::sync::atomic::Ordering::Relaxed) >= 3);
    }
}
