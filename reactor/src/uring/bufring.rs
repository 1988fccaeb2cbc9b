//! The provided buffer ring multishot receives pick buffers from: allocated once per thread,
//! registered with the ring, and refilled one buffer at a time as soon as a completion's bytes
//! have been copied into the connection's input.
//!
//! The ring of descriptors (`BufRingEntry`, 16 bytes each) and the buffers are plain heap
//! allocations that the kernel reads (descriptors) and writes (buffers). The kernel owns a
//! buffer from the moment its descriptor is published (tail moved past it) until a completion
//! names it; we read it then and hand it straight back.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

/// Buffers per thread.
pub(crate) const BUF_COUNT: u16 = 512;
/// Size of one buffer: a multishot receive completion carries at most this many bytes.
pub(crate) const BUF_SIZE: u32 = 16 * 1024;
/// Buffer group id (one group per ring).
pub(crate) const BGID: u16 = 0;

const _: () = assert!(BUF_COUNT.is_power_of_two(), "the ring index is masked");
const _: () = assert!(
    BUF_COUNT as u32 <= 32768,
    "kernel limit on buffer ring entries"
);
const _: () = assert!(std::mem::size_of::<BufRingEntry>() == 16);
const _: () = assert!(
    BUF_SIZE as usize * BUF_COUNT as usize <= 64 << 20,
    "keep it modest"
);

/// Page alignment the kernel requires of the descriptor ring.
const RING_ALIGN: usize = 4096;

pub(crate) struct BufRing {
    ring: NonNull<BufRingEntry>,
    ring_layout: Layout,
    data: NonNull<u8>,
    data_layout: Layout,
    /// Descriptors written so far (wrapping); the kernel sees them once `publish` stores it.
    tail: u16,
}

impl BufRing {
    pub(crate) fn new() -> std::io::Result<BufRing> {
        let oom = || std::io::Error::from(std::io::ErrorKind::OutOfMemory);
        let ring_layout =
            Layout::from_size_align(BUF_COUNT as usize * size_of::<BufRingEntry>(), RING_ALIGN)
                .map_err(|_| oom())?;
        let data_layout = Layout::from_size_align(BUF_COUNT as usize * BUF_SIZE as usize, 64)
            .map_err(|_| oom())?;
        // SAFETY: both layouts have a non-zero size (asserted by the constants above).
        let ring: NonNull<BufRingEntry> =
            NonNull::new(unsafe { alloc_zeroed(ring_layout) }.cast()).ok_or_else(oom)?;
        // SAFETY: as above. Zeroed so that large allocations come from fresh (lazily mapped)
        // pages rather than being touched up front.
        let data = match NonNull::new(unsafe { alloc_zeroed(data_layout) }) {
            Some(data) => data,
            None => {
                // SAFETY: `ring` was allocated above with `ring_layout` and is not shared yet.
                unsafe { dealloc(ring.as_ptr().cast(), ring_layout) };
                return Err(oom());
            }
        };
        let mut bufs = BufRing {
            ring,
            ring_layout,
            data,
            data_layout,
            tail: 0,
        };
        for bid in 0..BUF_COUNT {
            bufs.recycle(bid);
        }
        bufs.publish();
        Ok(bufs)
    }

    /// Registers the ring as buffer group [`BGID`].
    pub(crate) fn register(&self, submitter: &io_uring::Submitter<'_>) -> std::io::Result<()> {
        // SAFETY: the descriptor ring is page aligned, holds BUF_COUNT entries and lives until
        // `self` is dropped, which the loop does only after the io_uring itself is dropped.
        unsafe {
            submitter.register_buf_ring_with_flags(self.ring.as_ptr() as u64, BUF_COUNT, BGID, 0)
        }
    }

    /// The bytes a completion delivered into buffer `bid`.
    pub(crate) fn get(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < BUF_COUNT, "kernel named an unknown buffer");
        assert!(
            len <= BUF_SIZE as usize,
            "completion longer than its buffer"
        );
        // SAFETY: bid < BUF_COUNT and len <= BUF_SIZE keep the slice inside the allocation. The
        // completion for `bid` passed the buffer back to us: the kernel no longer writes it
        // until `recycle(bid)` + `publish`, and the slice does not outlive this borrow of self.
        unsafe {
            std::slice::from_raw_parts(
                self.data.as_ptr().add(bid as usize * BUF_SIZE as usize),
                len,
            )
        }
    }

    /// Hands buffer `bid` back (visible to the kernel at the next `publish`).
    pub(crate) fn recycle(&mut self, bid: u16) {
        assert!(bid < BUF_COUNT);
        let index = (self.tail & (BUF_COUNT - 1)) as usize;
        // SAFETY: index < BUF_COUNT is inside the ring. The kernel only reads descriptors
        // between its head and the published tail; this one is at or past our tail, which the
        // kernel has not been shown yet, and since every bid is either with the kernel or with
        // us (exactly once), at most BUF_COUNT descriptors are ever outstanding, so the slot is
        // not one the kernel still has to read.
        let entry = unsafe { &mut *self.ring.as_ptr().add(index) };
        // SAFETY: as in `get`, the offset stays inside the data allocation.
        let addr = unsafe { self.data.as_ptr().add(bid as usize * BUF_SIZE as usize) };
        entry.set_addr(addr as u64);
        entry.set_len(BUF_SIZE);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes recycled buffers visible to the kernel (one release store per batch).
    pub(crate) fn publish(&mut self) {
        // SAFETY: the ring base is valid and initialised; `tail` returns the address of the
        // first entry's `resv` field, which the kernel reads as the ring's tail.
        let tail = unsafe { BufRingEntry::tail(self.ring.as_ptr()) };
        // SAFETY: the field is a 2-byte aligned u16 inside our allocation, written only here
        // (the kernel reads it), so viewing it as an AtomicU16 for a release store is sound.
        let tail = unsafe { AtomicU16::from_ptr(tail.cast_mut()) };
        // Release: the descriptors written by `recycle` are visible before the new tail.
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: both were allocated in `new` with these layouts. The loop drops the ring (and
        // so the kernel's registration) before this, or leaks `self` if operations were still
        // outstanding.
        unsafe {
            dealloc(self.ring.as_ptr().cast(), self.ring_layout);
            dealloc(self.data.as_ptr(), self.data_layout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_descriptor_and_wraps() {
        let mut bufs = BufRing::new().unwrap();
        assert_eq!(bufs.tail, BUF_COUNT);
        // SAFETY: reading back descriptors of a ring no kernel knows about.
        let first = unsafe { &*bufs.ring.as_ptr() };
        assert_eq!(first.bid(), 0);
        assert_eq!(first.len(), BUF_SIZE);
        assert_eq!(first.addr(), bufs.data.as_ptr() as u64);
        bufs.recycle(7);
        bufs.publish();
        // SAFETY: as above; the tail is the first entry's `resv`.
        let tail = unsafe { *BufRingEntry::tail(bufs.ring.as_ptr()) };
        assert_eq!(tail, BUF_COUNT.wrapping_add(1));
        // The 513th descriptor wrapped onto slot 0.
        // SAFETY: as above.
        let wrapped = unsafe { &*bufs.ring.as_ptr() };
        assert_eq!(wrapped.bid(), 7);
        assert_eq!(bufs.get(7, 3).len(), 3);
    }
}
