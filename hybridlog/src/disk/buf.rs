//! Aligned buffers for direct I/O, and a fixed pool of them to register with io_uring.
//!
//! `O_DIRECT` needs the buffer address, the file offset and the length aligned to the device's
//! block; every buffer here is aligned to at least [`BUF_ALIGN`] (a memory page), which covers
//! every `stx_dio_mem_align` seen in practice (512 or 4096).

use std::alloc::Layout;
use std::ptr::NonNull;

/// Alignment of every buffer's address (and the granule of its capacity).
pub const BUF_ALIGN: usize = 4096;

/// A zeroed, fixed-capacity heap buffer whose address is aligned to `align` (at least
/// [`BUF_ALIGN`]).
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: an `AlignedBuf` owns its allocation like a `Box<[u8]>`; `&self` only hands out shared
// slices and `&mut self` exclusive ones.
unsafe impl Send for AlignedBuf {}
// SAFETY: as above.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of at least `capacity` bytes (rounded up to `align`), aligned to
    /// `align`, a power of two (raised to [`BUF_ALIGN`]).
    pub fn new(capacity: usize, align: usize) -> AlignedBuf {
        assert!(
            align.is_power_of_two(),
            "alignment {align} is not a power of two"
        );
        let align = align.max(BUF_ALIGN);
        let size = capacity.max(1).next_multiple_of(align);
        let layout = Layout::from_size_align(size, align).expect("buffer layout");
        // SAFETY: `layout` has a non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, layout }
    }

    /// Bytes of capacity (a multiple of [`AlignedBuf::align`]).
    pub fn capacity(&self) -> usize {
        self.layout.size()
    }

    /// The address alignment.
    pub fn align(&self) -> usize {
        self.layout.align()
    }

    /// Grows the buffer to at least `capacity` bytes. The contents are not kept.
    pub fn ensure_capacity(&mut self, capacity: usize) {
        if capacity > self.capacity() {
            *self = AlignedBuf::new(capacity, self.align());
        }
    }

    /// The whole buffer.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is a live allocation of `layout.size()` initialised (zeroed) bytes,
        // borrowed shared for the lifetime of `&self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }

    /// The whole buffer, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }

    /// The buffer's address, for a kernel that writes into it (io_uring). Writes through it
    /// must stay within the capacity and not overlap a live borrow of the buffer.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with exactly this layout, and dropped once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("capacity", &self.capacity())
            .field("align", &self.align())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn aligned_buf_is_aligned_zeroed_and_grows() {
        let mut b = AlignedBuf::new(100, 512);
        assert_eq!((b.capacity(), b.align()), (4096, 4096));
        assert!(b.as_slice().as_ptr().addr().is_multiple_of(4096));
        assert!(b.as_slice().iter().all(|&x| x == 0));
        b.as_mut_slice()[4095] = 7;
        b.ensure_capacity(3 * 4096 + 1);
        assert_eq!(b.capacity(), 4 * 4096);
        assert!(b.as_mut_ptr().addr().is_multiple_of(4096));
        let big = AlignedBuf::new(1, 1 << 16);
        assert!(big.as_slice().as_ptr().addr().is_multiple_of(1 << 16));
    }
}
