//! The object log: where the payloads of pointer records go when their page is written to disk
//! (Garnet's object log).
//!
//! A record whose key or value lives in a heap block, or whose value is a collection object,
//! holds a pointer, which means nothing on disk. When the flusher writes such a record's page,
//! it appends the record's payload (the heap key bytes, then the heap value bytes or the object
//! serialized with [`StoreObject::serialize`](crate::StoreObject::serialize)) to a second
//! append-only device as one *blob*, and in the page image (never in the in-memory page, which
//! readers may still use) sets [`F_OLOG`](crate::record::F_OLOG) and replaces the pointer words
//! by the blob's object-log address ([`NO_BLOB`] for a value that has none: a tombstone, or a
//! superseded record whose value block was retired). Readers below the head read the blob back,
//! check it, and rebuild a private copy of the record whose pointer words point at buffers (or
//! a deserialized object) the copy owns (`F_COPY`).
//!
//! A blob:
//!
//! ```text
//! 0..4    CRC32C of bytes 4..end
//! 4..8    key bytes (u32 LE): the record's key length if its key is a heap block, else 0
//! 8..12   value bytes (u32 LE): 0 when the record has no value payload
//! 12..16  the value kind (u8), then three zero bytes
//! 16..24  the record's log address (u64 LE): a blob read for the wrong record fails
//! 24..    key bytes, then value bytes
//! ```
//!
//! Blobs of one log page are written in one batch starting at a block-aligned address (the
//! batch is padded to the block), in page order, so object-log addresses grow with log
//! addresses: compaction, having moved the log's begin address past a segment, deletes the
//! object log below the first blob of the page at the segment's end ([`ObjectLog::marks`]).
//! The writer stages blobs in a fixed 1 MiB buffer, so a 512 MiB value does not need a second
//! copy in memory to be written.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{DISK_ALIGN, Device};
use crate::disk::AlignedBuf;

/// Bytes of a blob's header.
pub(crate) const BLOB_HEADER: usize = 24;
/// A pointer word of a disk record whose part has no blob.
pub(crate) const NO_BLOB: u64 = u64::MAX;
/// The largest payload a blob holds (lengths are 32-bit). A collection that serializes to more
/// stays in memory: the flusher relocates its record to the tail instead.
pub(crate) const MAX_PAYLOAD: usize = u32::MAX as usize - BLOB_HEADER;
/// The writer's staging buffer.
const STAGE: usize = 1 << 20;

/// Rebuilds a collection from its serialized form (registered by the command layer, which
/// knows the concrete types).
pub type ObjectReader = fn(crate::ValueKind, &[u8]) -> Result<Box<dyn crate::StoreObject>, String>;

/// The object log: its device, the flusher's writer and the truncation marks.
pub(crate) struct ObjectLog {
    pub(crate) device: Box<dyn Device>,
    pub(crate) writer: Mutex<Writer>,
    /// Log address of a segment start → object-log address of the first blob of the page
    /// there: everything below it belongs to records below the segment.
    pub(crate) marks: Mutex<BTreeMap<u64, u64>>,
}

impl ObjectLog {
    pub(crate) fn new(device: Box<dyn Device>) -> ObjectLog {
        ObjectLog {
            device,
            writer: Mutex::new(Writer::default()),
            marks: Mutex::new(BTreeMap::new()),
        }
    }

    /// Remembers where the blobs of the page at `page_address` begin, if it starts a segment.
    pub(crate) fn mark(&self, page_address: u64, segment_bytes: u64, at: u64) {
        if page_address.is_multiple_of(segment_bytes) {
            let mut m = self.marks.lock().unwrap_or_else(|e| e.into_inner());
            m.insert(page_address, at);
        }
    }

    /// Deletes the blobs of records below log address `end` (a segment start compaction moved
    /// the begin address to).
    pub(crate) fn truncate_below(&self, end: u64) -> std::io::Result<()> {
        let at = {
            let mut m = self.marks.lock().unwrap_or_else(|e| e.into_inner());
            let at = m.get(&end).copied();
            *m = m.split_off(&end);
            at
        };
        match at {
            Some(at) => self.device.truncate_until(at),
            None => Ok(()),
        }
    }

    /// Bytes the object log holds on disk (its tail minus what truncation deleted).
    pub(crate) fn tail(&self) -> u64 {
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).tail
    }
}

/// Appends blobs through an aligned staging buffer.
#[derive(Default)]
pub(crate) struct Writer {
    /// Object-log address of the staging buffer's first byte (block-aligned).
    tail: u64,
    stage: Option<AlignedBuf>,
    used: usize,
}

impl Writer {
    /// Where the next batch starts (block-aligned: the previous batch was finished).
    pub(crate) fn batch_start(&self) -> u64 {
        debug_assert_eq!(self.used, 0);
        self.tail
    }

    /// Forgets a failed batch: the next one starts at `at` again.
    pub(crate) fn rewind(&mut self, at: u64) {
        self.tail = at;
        self.used = 0;
    }

    /// Appends one blob for the record at `address` and returns its object-log address.
    pub(crate) fn append(
        &mut self,
        dev: &dyn Device,
        address: u64,
        kind: u8,
        key: &[u8],
        value: &[u8],
    ) -> std::io::Result<u64> {
        let at = self.tail + self.used as u64;
        let mut header = [0u8; BLOB_HEADER];
        header[4..8].copy_from_slice(&(key.len() as u32).to_le_bytes());
        header[8..12].copy_from_slice(&(value.len() as u32).to_le_bytes());
        header[12] = kind;
        header[16..24].copy_from_slice(&address.to_le_bytes());
        let crc = crc32c::crc32c(&header[4..]);
        let crc = crc32c::crc32c_append(crc, key);
        let crc = crc32c::crc32c_append(crc, value);
        header[..4].copy_from_slice(&crc.to_le_bytes());
        for part in [&header[..], key, value] {
            self.put(dev, part)?;
        }
        Ok(at)
    }

    fn put(&mut self, dev: &dyn Device, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let stage = self
                .stage
                .get_or_insert_with(|| AlignedBuf::new(STAGE, DISK_ALIGN));
            let n = bytes.len().min(STAGE - self.used);
            stage.as_mut_slice()[self.used..self.used + n].copy_from_slice(&bytes[..n]);
            self.used += n;
            bytes = &bytes[n..];
            if self.used == STAGE {
                dev.write(self.tail, &stage.as_slice()[..STAGE])?;
                self.tail += STAGE as u64;
                self.used = 0;
            }
        }
        Ok(())
    }

    /// Writes what is staged, padded to the block, so that every blob appended so far is on
    /// the device.
    pub(crate) fn finish(&mut self, dev: &dyn Device) -> std::io::Result<()> {
        if self.used == 0 {
            return Ok(());
        }
        let stage = self.stage.as_mut().expect("bytes are staged");
        let len = self.used.next_multiple_of(DISK_ALIGN);
        stage.as_mut_slice()[self.used..len].fill(0);
        dev.write(self.tail, &stage.as_slice()[..len])?;
        self.tail += len as u64;
        self.used = 0;
        Ok(())
    }
}

/// A blob's header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobHeader {
    pub(crate) key_len: usize,
    pub(crate) value_len: usize,
    pub(crate) kind: u8,
    pub(crate) address: u64,
}

impl BlobHeader {
    pub(crate) fn parse(b: &[u8]) -> BlobHeader {
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        BlobHeader {
            key_len: u32_at(4) as usize,
            value_len: u32_at(8) as usize,
            kind: b[12],
            address: u64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
        }
    }

    /// Bytes of the whole blob.
    pub(crate) fn total(&self) -> usize {
        BLOB_HEADER + self.key_len + self.value_len
    }
}

/// Checks a whole blob (`bytes` is exactly [`BlobHeader::total`] long) read for the record at
/// `address`.
pub(crate) fn check(bytes: &[u8], address: u64) -> Result<BlobHeader, &'static str> {
    let h = BlobHeader::parse(bytes);
    debug_assert_eq!(bytes.len(), h.total());
    let crc = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    if crc32c::crc32c(&bytes[4..]) != crc {
        return Err("object-log blob fails its checksum");
    }
    if h.address != address {
        return Err("object-log blob belongs to another record");
    }
    Ok(h)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    /// A device in memory.
    #[derive(Default)]
    struct Mem(StdMutex<Vec<u8>>);

    impl Device for Mem {
        fn write(&self, address: u64, bytes: &[u8]) -> std::io::Result<()> {
            assert!(address.is_multiple_of(DISK_ALIGN as u64));
            assert!(bytes.len().is_multiple_of(DISK_ALIGN));
            let mut m = self.0.lock().unwrap();
            let end = address as usize + bytes.len();
            if m.len() < end {
                m.resize(end, 0);
            }
            m[address as usize..end].copy_from_slice(bytes);
            Ok(())
        }
        fn read(&self, address: u64, buf: &mut [u8]) -> std::io::Result<usize> {
            let m = self.0.lock().unwrap();
            let start = (address as usize).min(m.len());
            let n = buf.len().min(m.len() - start);
            buf[..n].copy_from_slice(&m[start..start + n]);
            Ok(n)
        }
        fn locate(&self, _: u64) -> std::io::Result<(i32, u64, super::super::KeepOpen)> {
            unimplemented!("not used")
        }
        fn truncate_until(&self, _: u64) -> std::io::Result<()> {
            Ok(())
        }
        fn segment_bytes(&self) -> u64 {
            1 << 30
        }
    }

    #[test]
    fn blobs_round_trip_across_the_stage_and_batches() {
        let dev = Mem::default();
        let mut w = Writer::default();
        let big = vec![7u8; STAGE + 1000];
        let a = w.append(&dev, 4096, 0, b"", b"hello").unwrap();
        let b = w.append(&dev, 8192, 2, b"long key", &big).unwrap();
        w.finish(&dev).unwrap();
        let c0 = w.batch_start();
        assert!(c0.is_multiple_of(DISK_ALIGN as u64));
        let c = w.append(&dev, 9000, 0, b"k", b"v").unwrap();
        assert_eq!(c, c0);
        w.finish(&dev).unwrap();
        let m = dev.0.lock().unwrap();
        for (at, address, key, value) in [
            (a, 4096, &b""[..], &b"hello"[..]),
            (b, 8192, b"long key", &big),
            (c, 9000, b"k", b"v"),
        ] {
            let at = at as usize;
            let h = BlobHeader::parse(&m[at..at + BLOB_HEADER]);
            let blob = &m[at..at + h.total()];
            assert_eq!(check(blob, address).unwrap(), h);
            assert_eq!(&blob[BLOB_HEADER..BLOB_HEADER + h.key_len], key);
            assert_eq!(&blob[BLOB_HEADER + h.key_len..], value);
            assert!(check(blob, address + 8).is_err(), "wrong record");
            let mut bad = blob.to_vec();
            *bad.last_mut().unwrap() ^= 1;
            assert!(check(&bad, address).is_err(), "flipped bit");
        }
    }
}
