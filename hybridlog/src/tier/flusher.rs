//! The flusher thread: writes each page to the device once it is immutable, so that the log can
//! move its head past it and free its memory.
//!
//! A page qualifies once it lies wholly below the safe read-only address: no in-place update can
//! touch it any more (only read-copy-update, which writes elsewhere, and the lock and seal words
//! of superseded records, which a disk reader never needs). Before writing a page the flusher
//! copies to the tail every live record of it that holds a pointer (heap key or value, object),
//! moving the object rather than cloning it; on disk such records are skipped by readers. The
//! page is copied out word by word with atomic loads (other threads may still flip seal and
//! lock bits) into an aligned buffer, which is written with one call.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use super::{DISK_ALIGN, TierStats, release_resolved};
use crate::disk::AlignedBuf;
use crate::log::BEGIN_ADDRESS;
use crate::record::{F_INVALID, F_KEY_HEAP, F_OBJECT, F_VALUE_HEAP, HEADER_BYTES, Meta};
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
    let mut page = log.flushed_until() >> bits;
    if page >= ready {
        return;
    }
    let handle = s.collector.register();
    let mut image = AlignedBuf::new(log.page_size() as usize, DISK_ALIGN);
    while page < ready {
        {
            let guard = handle.pin();
            relocate_pointer_records(s, &guard, page);
        }
        let Some(ptr) = log.page_ptr(page) else {
            debug_assert!(false, "an unflushed page is not in memory");
            return;
        };
        copy_page(&mut image, ptr);
        if let Err(err) = tier.device.write(page << bits, image.as_slice()) {
            TierStats::bump(&tier.stats.io_errors);
            log::error!("disk tier: writing log page {page} failed: {err}");
            // Retried on the next pass; until then the head cannot pass this page.
            return;
        }
        TierStats::bump(&tier.stats.pages_flushed);
        page += 1;
        log.set_flushed_until(page << bits);
        release_resolved();
    }
}

/// Copies to the tail the live records of `page` whose key, value or object lives on the heap.
fn relocate_pointer_records(s: &Store, guard: &crossbeam_epoch::Guard, page: u64) {
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
        let pointers = info & (F_KEY_HEAP | F_VALUE_HEAP | F_OBJECT) != 0;
        let meta = Meta(r.meta());
        if pointers
            && info & F_INVALID == 0
            && !meta.sealed()
            && !meta.tombstone()
            && crate::ops::relocate(s, guard, r)
        {
            let tier = s.tier.as_ref().expect("flushing implies a tier");
            TierStats::bump(&tier.stats.records_relocated);
        }
        let tier = s.tier.as_ref().expect("flushing implies a tier");
        tier.stats.records_flushed.fetch_add(1, Ordering::Relaxed);
        tier.stats
            .bytes_flushed
            .fetch_add(r.size() as u64, Ordering::Relaxed);
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
