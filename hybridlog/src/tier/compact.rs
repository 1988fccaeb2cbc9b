//! Compaction: keeps the on-disk log within about twice the live data.
//!
//! The oldest segment of the log is read page by page; each record in it that is still its
//! key's newest version and live is copied to the tail (published with a CAS of the key's index
//! entry from the value it had when the record was found to be newest, so a concurrent writer
//! of the key wins and the copy is dropped); tombstones and superseded records are dropped. An
//! expired record is copied too: reaping it here would be a write the AOF must log from a
//! thread that has no session, so it is left for lazy or active expiry, which keep DBSIZE exact. Then the log's begin address moves past the
//! segment, which makes every chain end there, and the segment files are deleted. Readers
//! holding the segment open (an asynchronous read in flight) finish on the unlinked file.
//!
//! A record whose payload is in the object log (`F_OLOG`) is forwarded from its copy read back
//! through the ordinary chain walk (which reads the blob and rebuilds the object), and once
//! the log's begin address has moved, the object log is truncated below the first blob of the
//! page at the new begin address (blobs are appended in log order).
//!
//! It runs on the flusher thread, between flushes of one page each, when the on-disk log
//! (`flushed_until - begin`) exceeds twice the estimated live data (keys x the average record
//! size the flusher has seen), and only over a segment wholly below the head.

use crossbeam_epoch::Guard;

use super::DISK_ALIGN;
use super::TierStats;
use super::flusher::flush_ready_pages;
use crate::disk::AlignedBuf;
use crate::log::BEGIN_ADDRESS;
use crate::record::{
    F_INVALID, F_KEY_HEAP, F_OBJECT, F_OLOG, F_VALUE_HEAP, HEADER_BYTES, Meta, ObjectCell, Rec,
    RecordInit, Shape, object_ref,
};
use crate::store::Store;
use crate::sync::Ordering;

/// Compacts the oldest segment if the on-disk log is over twice the live data.
pub(crate) fn compact_if_due(s: &Store) {
    let Some(tier) = s.tier.as_ref() else { return };
    let seg = tier.device.segment_bytes();
    let begin = s.log.begin_address();
    let start = begin - begin % seg;
    let end = start + seg;
    if end > s.log.head_address() || end > s.log.flushed_until() {
        return;
    }
    let on_disk = s.log.flushed_until() - begin;
    let records = tier.stats.records_flushed.load(Ordering::Relaxed).max(1);
    let average = tier.stats.bytes_flushed.load(Ordering::Relaxed) / records;
    let live = s.total_keys() * average.max(HEADER_BYTES as u64);
    if on_disk <= 2 * live.max(seg) {
        return;
    }
    let handle = s.collector.register();
    let page_size = s.log.page_size();
    let mut buf = AlignedBuf::new(page_size as usize, DISK_ALIGN);
    let mut page = begin.max(start) & !(page_size - 1);
    while page < end {
        match tier
            .device
            .read(page, &mut buf.as_mut_slice()[..page_size as usize])
        {
            // The flusher writes a page's used prefix: a page that ends its segment file reads
            // short, and its unused end is zeros.
            Ok(n) if n > 0 && tier.device.check(page, &buf.as_slice()[..n]) => {
                buf.as_mut_slice()[n..page_size as usize].fill(0)
            }
            Ok(_) | Err(_) => {
                TierStats::bump(&tier.stats.io_errors);
                log::error!("disk tier: compaction cannot read the page at {page}; stopping");
                return;
            }
        }
        {
            let guard = handle.pin();
            compact_page(s, &guard, &buf, page);
        }
        super::release_resolved();
        page += page_size;
        // Keep flushing meanwhile: writers wait for the flusher, not for compaction.
        flush_ready_pages(s);
    }
    s.log.set_begin(end);
    if let Err(err) = tier.device.truncate_until(end) {
        TierStats::bump(&tier.stats.io_errors);
        log::error!("disk tier: deleting the log below {end} failed: {err}");
    }
    if let Some(objects) = &tier.objects
        && let Err(err) = objects.truncate_below(end)
    {
        TierStats::bump(&tier.stats.io_errors);
        log::error!("disk tier: deleting the object log below log address {end} failed: {err}");
    }
    TierStats::bump(&tier.stats.compactions);
    log::info!(
        "disk tier: compacted the log below {end} ({} MiB on disk, ~{} MiB live)",
        (s.log.flushed_until() - end) >> 20,
        live >> 20
    );
}

/// Forwards the live newest records of the page read into `buf` (log address `page`).
fn compact_page(s: &Store, g: &Guard, buf: &AlignedBuf, page: u64) {
    let page_size = s.log.page_size();
    let mut offset = if page == 0 { BEGIN_ADDRESS } else { 0 };
    while offset + HEADER_BYTES as u64 <= page_size {
        // SAFETY: `offset` is 8-aligned and inside the buffer, which holds a whole page read
        // from the device and outlives `rec`; nothing else touches the buffer meanwhile.
        let rec = unsafe {
            let base = std::ptr::NonNull::from(&buf.as_slice()[0]);
            Rec::at(base.add(offset as usize), page + offset)
        };
        let info = rec.info();
        if info == 0 {
            return; // The unused end of the page.
        }
        let shape = Shape::from_parts(
            rec.key_len(),
            info & F_KEY_HEAP != 0,
            info & F_VALUE_HEAP != 0,
            rec.value_cap(),
            info & F_OBJECT != 0,
        );
        if shape.size == 0 || offset + shape.size as u64 > page_size {
            log::error!(
                "disk tier: compaction found a bad record at {}",
                page + offset
            );
            return;
        }
        let pointers = info & (F_KEY_HEAP | F_VALUE_HEAP | F_OBJECT) != 0;
        if info & F_INVALID == 0 {
            if !pointers {
                forward(s, g, rec);
            } else if info & F_OLOG != 0 {
                forward_external(s, g, rec);
            }
        }
        offset += shape.size as u64;
    }
}

/// Copies `rec` (read back from disk) to the tail if it is still its key's newest record and
/// not a tombstone.
fn forward(s: &Store, g: &Guard, rec: Rec<'_>) {
    let (pdb, key) = (rec.pdb(), rec.key());
    let hash = s.hasher.hash(key);
    let meta = Meta(rec.meta());
    if meta.tombstone() {
        return; // The key is absent either way once the chain ends here.
    }
    let expire_at = rec.expire_at();
    loop {
        let Some(mut entry) = s.index.find(hash) else {
            return;
        };
        match s.find_record(entry.address(), pdb, key) {
            Some(newest) if newest.address() == rec.address() => {}
            _ => return,
        }
        // SAFETY: the record is a private copy in our buffer; nobody writes it.
        let value = unsafe { rec.value_unsynchronized(meta.0) };
        let new = s.append(
            g,
            &RecordInit {
                prev: entry.address(),
                pdb,
                key,
                value,
                kind: meta.kind(),
                expire_at,
                tombstone: false,
                object: 0,
            },
        );
        if entry.try_swap(new.address()) {
            let tier = s.tier.as_ref().expect("compacting implies a tier");
            TierStats::bump(&tier.stats.records_compacted);
            return;
        }
        s.discard(new);
    }
}

/// Copies `rec` (read back from disk, its payload in the object log) to the tail if it is
/// still its key's newest record and live: the chain walk that checks this reads the payload
/// back and rebuilds the record, which is what is copied.
fn forward_external(s: &Store, g: &Guard, rec: Rec<'_>) {
    let meta = Meta(rec.meta());
    if meta.tombstone() || meta.sealed() {
        return; // Absent once the chain ends here, or superseded by a newer record.
    }
    let pdb = rec.pdb();
    // A heap key is in the blob too: read the record back whole.
    let key: Vec<u8> = if rec.info() & F_KEY_HEAP != 0 {
        match super::record_at(s, rec.address()) {
            super::OnDisk::Rec(copy) => copy.key().to_vec(),
            _ => return, // Unreadable (logged and counted).
        }
    } else {
        rec.key().to_vec()
    };
    let hash = s.hasher.hash(&key);
    loop {
        let Some(mut entry) = s.index.find(hash) else {
            return;
        };
        let newest = match s.find_record(entry.address(), pdb, &key) {
            Some(newest) if newest.address() == rec.address() => newest,
            _ => return,
        };
        let meta = Meta(newest.meta());
        let mut cell = None;
        let init = if newest.is_object() {
            let ptr = newest.object_ptr().load(Ordering::Relaxed);
            if ptr == 0 {
                return;
            }
            // SAFETY: the copy read back owns its object until the thread's cache is released
            // (after this page), and nobody mutates it.
            let object = unsafe { object_ref(ptr) }.clone_box();
            let c = cell.insert(ObjectCell::new(object));
            RecordInit {
                prev: entry.address(),
                pdb,
                key: &key,
                value: &[],
                kind: meta.kind(),
                expire_at: newest.expire_at(),
                tombstone: false,
                object: c.as_raw(),
            }
        } else {
            RecordInit {
                prev: entry.address(),
                pdb,
                key: &key,
                // SAFETY: a private copy read back from disk: nobody writes it, and it owns
                // its value buffer until the thread's cache is released.
                value: unsafe { newest.value_unsynchronized(meta.0) },
                kind: meta.kind(),
                expire_at: newest.expire_at(),
                tombstone: false,
                object: 0,
            }
        };
        let new = s.append(g, &init);
        if entry.try_swap(new.address()) {
            // The published record owns the cell now.
            cell.map(ObjectCell::into_raw);
            let tier = s.tier.as_ref().expect("compacting implies a tier");
            TierStats::bump(&tier.stats.records_compacted);
            return;
        }
        s.discard(new);
    }
}
