//! Heap blocks for keys and values too long to keep inline in a record.

use std::ptr::NonNull;

use crossbeam_epoch::Guard;

/// A value block on the heap, in transit to its deferred free.
struct HeapBlock(NonNull<u8>, usize);

// SAFETY: a heap block is plain bytes owned by whoever holds this handle.
unsafe impl Send for HeapBlock {}

impl Drop for HeapBlock {
    fn drop(&mut self) {
        let s = std::ptr::slice_from_raw_parts_mut(self.0.as_ptr(), self.1);
        // SAFETY: the block came from `heap_block` with this length and is owned by `self`.
        drop(unsafe { Box::from_raw(s) });
    }
}

/// Copies `bytes` into a new heap block and returns its address (for a pointer word).
pub(super) fn heap_block(bytes: &[u8]) -> u64 {
    debug_assert!(!bytes.is_empty());
    Box::into_raw(Box::<[u8]>::from(bytes)).cast::<u8>() as u64
}

/// Frees a heap block once every thread pinned now has unpinned.
pub fn retire_block(guard: &Guard, ptr: u64, len: usize) {
    if let Some(p) = NonNull::new(ptr as *mut u8) {
        let block = HeapBlock(p, len);
        guard.defer(move || drop(block));
    }
}

/// Frees a heap block that no other thread can reach.
///
/// # Safety
/// `ptr`/`len` describe a live block from `heap_block` that nothing else will touch or free.
pub unsafe fn free_block(ptr: u64, len: usize) {
    if let Some(p) = NonNull::new(ptr as *mut u8) {
        drop(HeapBlock(p, len));
    }
}
