//! Aligned buffers for direct I/O, and a fixed pool of them to register with io_uring.
//!
//! `O_DIRECT` needs the buffer address, the file offset and the length aligned to the device's
//! block; every buffer here is aligned to at least [`BUF_ALIGN`] (a memory page), which covers
//! every `stx_dio_mem_align` seen in practice (512 or 4096).

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

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

/// A fixed set of equal, aligned read buffers carved from one allocation, allocated once at
/// start-up. The reactor registers them with `register_buffers(&pool.iovecs())` and reads
/// into them with `ReadFixed { buf_index: lease.index() }`; the I/O thread pool `pread`s into
/// them. A buffer is used only through the [`Lease`] that took it out of the free list, and
/// goes back when the lease drops.
pub struct BufferPool {
    /// Never borrowed as a whole after construction: each buffer is reached through `base`.
    mem: AlignedBuf,
    base: NonNull<u8>,
    buf_bytes: usize,
    count: usize,
    free: Mutex<Vec<u32>>,
}

// SAFETY: the pool hands each buffer to at most one `Lease` at a time (the free list is under a
// mutex), and only a lease touches its buffer's bytes.
unsafe impl Send for BufferPool {}
// SAFETY: as above.
unsafe impl Sync for BufferPool {}

impl BufferPool {
    /// `count` buffers (at most `u16::MAX`, io_uring's limit) of `buf_bytes` each, rounded up to
    /// [`BUF_ALIGN`].
    pub fn new(count: usize, buf_bytes: usize) -> Arc<BufferPool> {
        assert!(
            (1..=u16::MAX as usize).contains(&count),
            "{count} buffers is outside 1..=65535"
        );
        let buf_bytes = buf_bytes.max(1).next_multiple_of(BUF_ALIGN);
        let mut mem = AlignedBuf::new(count * buf_bytes, BUF_ALIGN);
        let base = NonNull::new(mem.as_mut_ptr()).expect("allocation is non-null");
        // Hand out low indexes first (LIFO pop from the end).
        let free = (0..count as u32).rev().collect();
        Arc::new(BufferPool {
            mem,
            base,
            buf_bytes,
            count,
            free: Mutex::new(free),
        })
    }

    /// Bytes per buffer.
    pub fn buf_bytes(&self) -> usize {
        self.buf_bytes
    }

    /// Number of buffers.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Buffers not leased right now.
    pub fn available(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// One `iovec` per buffer, index `i` for buffer `i`, for `register_buffers`. The memory
    /// stays valid (and at the same address) as long as the pool lives.
    pub fn iovecs(&self) -> Vec<libc::iovec> {
        (0..self.count)
            .map(|i| libc::iovec {
                iov_base: self.buf_ptr(i).cast(),
                iov_len: self.buf_bytes,
            })
            .collect()
    }

    fn buf_ptr(&self, i: usize) -> *mut u8 {
        assert!(i < self.count);
        debug_assert!(self.mem.capacity() >= self.count * self.buf_bytes);
        // SAFETY: `i * buf_bytes + buf_bytes <= capacity`, inside the allocation.
        unsafe { self.base.as_ptr().add(i * self.buf_bytes) }
    }

    /// Takes a free buffer, or `None` when all are leased.
    pub fn acquire(self: &Arc<Self>) -> Option<Lease> {
        let index = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
        Some(Lease {
            pool: Arc::clone(self),
            index,
        })
    }
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool")
            .field("count", &self.count)
            .field("buf_bytes", &self.buf_bytes)
            .field("available", &self.available())
            .finish()
    }
}

/// Exclusive use of one pool buffer; it returns to the pool on drop. A lease handed to the
/// kernel (io_uring `ReadFixed`) must be kept alive until the operation's completion.
pub struct Lease {
    pool: Arc<BufferPool>,
    index: u32,
}

impl Lease {
    /// The buffer's index in the pool (the registered-buffer index for `ReadFixed`).
    pub fn index(&self) -> u16 {
        self.index as u16
    }

    /// The buffer.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: this lease is the buffer's only user (the pool's free list gives an index to
        // one lease at a time), the range lies inside the pool's allocation, and the bytes
        // were zero-initialised.
        unsafe {
            std::slice::from_raw_parts(self.pool.buf_ptr(self.index as usize), self.pool.buf_bytes)
        }
    }

    /// The buffer, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; `&mut self` makes this borrow exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.pool.buf_ptr(self.index as usize),
                self.pool.buf_bytes,
            )
        }
    }

    /// The buffer's address, for an io_uring read into it.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.pool.buf_ptr(self.index as usize)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut free = self.pool.free.lock().unwrap_or_else(|e| e.into_inner());
        debug_assert!(!free.contains(&self.index), "buffer returned twice");
        free.push(self.index);
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("index", &self.index).finish()
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

    #[test]
    fn pool_leases_are_exclusive_and_return() {
        let pool = BufferPool::new(3, 5000);
        assert_eq!(pool.buf_bytes(), 8192);
        let iov = pool.iovecs();
        assert_eq!(iov.len(), 3);
        let mut leases: Vec<Lease> = (0..3).map(|_| pool.acquire().unwrap()).collect();
        assert!(pool.acquire().is_none());
        assert_eq!(pool.available(), 0);
        for (i, l) in leases.iter_mut().enumerate() {
            assert_eq!(l.as_mut_ptr().cast(), iov[l.index() as usize].iov_base);
            assert!(l.as_slice().as_ptr().addr().is_multiple_of(BUF_ALIGN));
            l.as_mut_slice().fill(i as u8 + 1);
        }
        for (i, l) in leases.iter().enumerate() {
            assert!(
                l.as_slice().iter().all(|&x| x == i as u8 + 1),
                "buffers overlap"
            );
        }
        let idx = leases[1].index();
        drop(leases.remove(1));
        assert_eq!(pool.available(), 1);
        assert_eq!(pool.acquire().unwrap().index(), idx);
        assert!(format!("{pool:?}").contains("available"));
    }
}
