//! The flusher thread: writes each page to the device once it is immutable, so that the log can
//! move its head past it and free its memory.
//!
//! A page qualifies once it lies wholly below the safe read-only address: no in-place update can
//! touch it any more (only read-copy-update, which writes elsewhere, and the lock and seal words
//! of superseded records, which a disk reader never needs). The page is copied out word by word
//! with atomic loads (other threads may still flip seal and lock bits) into an aligned buffer.
//! Then each record of the image that holds pointers gets its payload (heap key bytes, heap
//! value bytes, the object serialized) appended to the object log, and its pointer words in
//! the image replaced by the payload's object-log address (see [`objlog`](super::objlog)); the
//! image is written with one call. The heap blocks and objects stay in memory, owned by their
//! records, until the page is unmapped (`Log::evict_pages` frees them).
//!
//! Records are still *relocated* (copied to the tail, the object moved rather than cloned,
//! and never leaving memory) in three cases: the store has no object log; it has one but no
//! object reader was registered (then only records holding objects); or a collection serializes
//! to more than [`MAX_PAYLOAD`] bytes (4 GiB), which a blob cannot describe.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use crossbeam_epoch::Guard;

use super::objlog::{BLOB_HEADER, MAX_PAYLOAD, NO_BLOB, Writer};
use super::{DISK_ALIGN, Device, TierStats, release_resolved};
use crate::disk::AlignedBuf;
use crate::log::BEGIN_ADDRESS;
use crate::record::{
    F_INVALID, F_KEY_HEAP, F_OBJECT, F_OLOG, F_VALUE_HEAP, HEADER_BYTES, LEN_MASK, M_SEALED, Meta,
    POINTERS, Rec, object_ref,
};
use crate::store::Store;

/// How often the flusher looks for new immutable pages when nobody nudges it (writers that
/// find it behind nudge it at once).
const POLL: Duration = Duration::from_millis(10);

thread_local! {
    static IS_FLUSHER: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is a flusher (which must never wait for itself).
pub(crate) fn on_flusher_thread() -> bool {
    IS_FLUSHER.get()
}

#[derive(Default)]
struct Signal {
    stop: AtomicBool,
    lock: Mutex<bool>,
    cv: Condvar,
}

/// The running flusher; dropping it stops the thread.
pub(crate) struct Flusher {
    signal: Arc<Signal>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    /// Starts the flusher of `store`. It holds the store only while it works.
    pub(crate) fn start(store: &Arc<Store>) -> std::io::Result<Flusher> {
        let signal = Arc::new(Signal::default());
        let weak = Arc::downgrade(store);
        let s = Arc::clone(&signal);
        let thread = std::thread::Builder::new()
            .name("ferrite-flush".into())
            .spawn(move || run(&weak, &s))?;
        Ok(Flusher {
            signal,
            thread: Some(thread),
        })
    }

    /// Asks for a pass now (a page became immutable, or a writer waits).
    pub(crate) fn nudge(&self) {
        *self.signal.lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.signal.cv.notify_one();
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.signal.stop.store(true, Ordering::Release);
        self.nudge();
        if let Some(t) = self.thread.take() {
            // The last reference to the store may be the flusher's own: it cannot join itself.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

fn run(weak: &Weak<Store>, signal: &Signal) {
    IS_FLUSHER.set(true);
    while !signal.stop.load(Ordering::Acquire) {
        {
            let Some(store) = weak.upgrade() else { return };
            flush_ready_pages(&store);
            super::compact_if_due(&store);
            store.log.trim_if_due();
        }
        let mut nudged = signal.lock.lock().unwrap_or_else(|e| e.into_inner());
        if !*nudged {
            nudged = signal
                .cv
                .wait_timeout(nudged, POLL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *nudged = false;
    }
}

/// Writes every page that is wholly below the safe read-only address and not yet on disk.
pub(crate) fn flush_ready_pages(s: &Store) {
    let Some(tier) = s.tier.as_ref() else { return };
    let log = &s.log;
    let bits = log.page_bits();
    let ready = log.safe_read_only_address() >> bits;
    if log.flushed_until() >> bits >= ready {
        return;
    }
    // One flusher at a time (tests call this beside the thread): the object log has one tail.
    let mut writer = tier
        .objects
        .as_ref()
        .map(|o| o.writer.lock().unwrap_or_else(|e| e.into_inner()));
    let mut page = log.flushed_until() >> bits;
    let handle = s.collector.register();
    let mut image = AlignedBuf::new(log.page_size() as usize, DISK_ALIGN);
    let mut scratch = Vec::new();
    let objects_out = s.object_reader().is_some();
    while page < ready {
        let guard = handle.pin();
        match writer {
            None => relocate_pointer_records(s, &guard, page, POINTERS),
            Some(_) if !objects_out => relocate_pointer_records(s, &guard, page, F_OBJECT),
            Some(_) => {}
        }
        let Some(ptr) = log.page_ptr(page) else {
            debug_assert!(false, "an unflushed page is not in memory");
            return;
        };
        copy_page(&mut image, ptr);
        if let (Some(w), Some(o)) = (writer.as_deref_mut(), tier.objects.as_ref()) {
            let start = w.batch_start();
            o.mark(page << bits, tier.device.segment_bytes(), start);
            let out = Out {
                writer: w,
                device: &*o.device,
                stats: &tier.stats,
            };
            if let Err(err) = externalize(s, &guard, &mut image, page, out, &mut scratch) {
                w.rewind(start);
                TierStats::bump(&tier.stats.io_errors);
                tier.health
                    .failed(format_args!("the object log for page {page}"), &err);
                return;
            }
        }
        drop(guard);
        let used = count_records(s, &image, page);
        // Only the used prefix: a tail page closed early because its records hold much on the
        // heap (`Log::charge`) is mostly empty.
        let len = used.next_multiple_of(DISK_ALIGN).max(DISK_ALIGN);
        if let Err(err) = tier.device.write(page << bits, &image.as_slice()[..len]) {
            TierStats::bump(&tier.stats.io_errors);
            tier.health.failed(format_args!("log page {page}"), &err);
            // Retried on the next pass; until then the head cannot pass this page.
            return;
        }
        tier.health.succeeded();
        TierStats::bump(&tier.stats.pages_flushed);
        page += 1;
        log.set_flushed_until(page << bits);
        // Writers may be waiting for memory, not for a new page: let the head follow now.
        log.advance_head(&handle.pin());
        release_resolved();
        if scratch.capacity() > 1 << 20 {
            scratch = Vec::new();
        }
    }
}

/// The records of a page image (log address `page`): `(offset, record)`.
fn image_records(
    image: &AlignedBuf,
    page: u64,
    page_size: u64,
) -> impl Iterator<Item = (usize, Rec<'_>)> {
    let mut offset = if page == 0 { BEGIN_ADDRESS } else { 0 };
    let base = std::ptr::NonNull::from(&image.as_slice()[0]);
    std::iter::from_fn(move || {
        if offset + HEADER_BYTES as u64 > page_size {
            return None;
        }
        // SAFETY: `offset` is 8-aligned and a header fits before the end of the image, which
        // outlives the records handed out; nobody else touches the image meanwhile.
        let r = unsafe { Rec::at(base.add(offset as usize), page * page_size + offset) };
        if r.info() == 0 {
            return None; // The unused end of the page.
        }
        let at = offset as usize;
        offset += r.size() as u64;
        Some((at, r))
    })
}

/// Counts the image's records for the average record size (compaction, read windows), and
/// returns the bytes of the page they use.
fn count_records(s: &Store, image: &AlignedBuf, page: u64) -> usize {
    let tier = s.tier.as_ref().expect("flushing implies a tier");
    let (mut n, mut bytes, mut used) = (0, 0, 0);
    for (offset, r) in image_records(image, page, s.log.page_size()) {
        n += 1;
        bytes += r.size() as u64;
        used = offset + r.size();
    }
    tier.stats.records_flushed.fetch_add(n, Ordering::Relaxed);
    tier.stats.bytes_flushed.fetch_add(bytes, Ordering::Relaxed);
    used
}

/// Where externalized payloads go.
struct Out<'a> {
    writer: &'a mut Writer,
    device: &'a dyn Device,
    stats: &'a TierStats,
}

/// Appends the payloads of the image's pointer records to the object log and rewrites their
/// pointer words in the image (not in memory) to object-log addresses. `guard` is the pin
/// under which the image was copied: a value block or object the image shows as owned (not
/// sealed, not deleted) is retired, if its record is superseded meanwhile, only after it.
fn externalize(
    s: &Store,
    guard: &Guard,
    image: &mut AlignedBuf,
    page: u64,
    out: Out<'_>,
    scratch: &mut Vec<u8>,
) -> std::io::Result<()> {
    let page_size = s.log.page_size();
    let mut patches: Vec<(usize, usize, u64)> = Vec::new();
    for (offset, r) in image_records(image, page, page_size) {
        let info = r.info();
        if info & POINTERS == 0 || info & F_INVALID != 0 {
            continue;
        }
        let meta = Meta(r.meta());
        let key_len = r.key_len();
        let key_word = HEADER_BYTES / 8;
        let value_word = key_word
            + if info & F_KEY_HEAP != 0 {
                1
            } else {
                key_len.div_ceil(8)
            };
        let word = |i: usize| {
            let b = &image.as_slice()[offset + 8 * i..offset + 8 * i + 8];
            u64::from_ne_bytes(b.try_into().expect("8 bytes"))
        };
        let key: &[u8] = if info & F_KEY_HEAP != 0 {
            // SAFETY: a key block belongs to its record until the page is unmapped, which
            // cannot happen before this flush (the head never passes an unflushed page).
            unsafe { std::slice::from_raw_parts(word(key_word) as *const u8, key_len) }
        } else {
            &[]
        };
        let owned = info & (F_VALUE_HEAP | F_OBJECT) != 0
            && !meta.sealed()
            && !meta.tombstone()
            && word(value_word) != 0;
        let mut value: Option<&[u8]> = None;
        if owned && info & F_VALUE_HEAP != 0 {
            // SAFETY: the image, copied while pinned, shows the record owning its block, so a
            // retirement (on a later seal) waits for `guard`; heap blocks are immutable.
            value = Some(unsafe {
                std::slice::from_raw_parts(word(value_word) as *const u8, meta.len())
            });
        } else if owned && info & F_OBJECT != 0 {
            scratch.clear();
            // SAFETY: as for a value block: the cell is alive while we are pinned, and below
            // the safe read-only address nothing mutates the object.
            unsafe { object_ref(word(value_word)) }.serialize(scratch);
            if scratch.len() > MAX_PAYLOAD {
                // Too big for a blob: this record stays in memory (module docs). Its image
                // says it is superseded, which it is once the copy is published.
                let rec = s.rec(page * page_size + offset as u64);
                if crate::ops::relocate(s, guard, rec) {
                    TierStats::bump(&out.stats.records_relocated);
                }
                patches.push((offset, 3, r.meta() | M_SEALED));
            } else {
                value = Some(&scratch[..]);
            }
        }
        let blob = if key.is_empty() && value.is_none() {
            None
        } else {
            let v = value.unwrap_or(&[]);
            let at = out
                .writer
                .append(out.device, r.address(), meta.kind() as u8, key, v)?;
            TierStats::bump(&out.stats.objects_written);
            out.stats.object_bytes_written.fetch_add(
                (BLOB_HEADER + key.len() + v.len()) as u64,
                Ordering::Relaxed,
            );
            Some(at)
        };
        patches.push((offset, 0, info | F_OLOG));
        if info & F_KEY_HEAP != 0 {
            patches.push((offset, key_word, blob.unwrap_or(NO_BLOB)));
        }
        if info & (F_VALUE_HEAP | F_OBJECT) != 0 {
            let at = if value.is_some() { blob } else { None };
            patches.push((offset, value_word, at.unwrap_or(NO_BLOB)));
            if info & F_OBJECT != 0
                && let Some(v) = value
            {
                // The serialized length, as a hint for readers' first read of the blob.
                let meta = (r.meta() & !LEN_MASK) | v.len() as u64;
                patches.push((offset, 3, meta));
            }
        }
    }
    out.writer.finish(out.device)?;
    let bytes = image.as_mut_slice();
    for (offset, i, w) in patches {
        bytes[offset + 8 * i..offset + 8 * i + 8].copy_from_slice(&w.to_ne_bytes());
    }
    Ok(())
}

/// Copies to the tail the live records of `page` that have any of the `flags` (pointers that
/// cannot go to disk).
fn relocate_pointer_records(s: &Store, guard: &Guard, page: u64, flags: u64) {
    let log = &s.log;
    let start = (page << log.page_bits()).max(BEGIN_ADDRESS);
    let end = (page + 1) << log.page_bits();
    let mut a = start;
    while a + HEADER_BYTES as u64 <= end {
        let r = s.rec(a);
        let info = r.info();
        if info == 0 {
            break; // The unused end of the page.
        }
        let meta = Meta(r.meta());
        if info & flags != 0
            && info & F_INVALID == 0
            && !meta.sealed()
            && !meta.tombstone()
            && crate::ops::relocate(s, guard, r)
        {
            let tier = s.tier.as_ref().expect("flushing implies a tier");
            TierStats::bump(&tier.stats.records_relocated);
        }
        a += r.size() as u64;
    }
}

/// Copies the log page at `page` into `image` (a page's worth) with relaxed atomic loads: its
/// seal and lock words may change meanwhile.
fn copy_page(image: &mut AlignedBuf, page: std::ptr::NonNull<u8>) {
    let dst = image.as_mut_slice();
    let src = page.cast::<u64>().as_ptr();
    for (i, chunk) in dst.chunks_exact_mut(8).enumerate() {
        // SAFETY: `page` is a mapped log page at least as long as `image` (it cannot be
        // unmapped: the head never passes an unflushed page), 8-aligned, whose words are only
        // accessed atomically by other threads.
        let w =
            unsafe { crate::sync::raw::AtomicU64::from_ptr(src.add(i)) }.load(Ordering::Relaxed);
        chunk.copy_from_slice(&w.to_ne_bytes());
    }
}
