//! Heap blocks for keys and values too long to keep inline in a record, and object cells.

use std::ptr::NonNull;

use crossbeam_epoch::Guard;

use crate::StoreObject;

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

/// An owned object cell: the heap cell an object record's pointer word points at. The pointer
/// is thin (a `Box` of the `Box<dyn StoreObject>` fat pointer), so it fits the record's word.
pub struct ObjectCell(NonNull<Box<dyn StoreObject>>);

// SAFETY: the cell owns its object, and `StoreObject: Send`.
unsafe impl Send for ObjectCell {}

impl std::fmt::Debug for ObjectCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ObjectCell").field(&self.0).finish()
    }
}

impl ObjectCell {
    /// Moves `object` into a new cell.
    pub fn new(object: Box<dyn StoreObject>) -> Self {
        Self(NonNull::from(Box::leak(Box::new(object))))
    }

    /// The cell's address, for a record's pointer word (the cell still owns the object).
    pub fn as_raw(&self) -> u64 {
        self.0.as_ptr() as u64
    }

    /// Gives ownership to a record that has just been published with [`as_raw`](Self::as_raw).
    pub fn into_raw(self) -> u64 {
        let p = self.as_raw();
        std::mem::forget(self);
        p
    }

    /// Takes back ownership of a cell from a pointer word; `None` for 0.
    ///
    /// # Safety
    /// `ptr` is 0 or came from [`into_raw`](Self::into_raw), and nothing else will use or free
    /// the cell afterwards.
    pub unsafe fn from_raw(ptr: u64) -> Option<Self> {
        NonNull::new(ptr as *mut Box<dyn StoreObject>).map(Self)
    }

    /// The object, mutably.
    pub fn get_mut(&mut self) -> &mut dyn StoreObject {
        // SAFETY: the cell owns the object and `&mut self` is exclusive.
        unsafe { &mut **self.0.as_ptr() }
    }
}

impl Drop for ObjectCell {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` in `new` and the cell owns it.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// The object in the cell at `ptr`, shared.
///
/// # Safety
/// `ptr` is a live cell's address (non-zero) that stays alive for `'a`, and nothing mutates the
/// object during `'a` (the caller holds the record's writer lock, or the record lies below the
/// safe read-only address).
pub unsafe fn object_ref<'a>(ptr: u64) -> &'a dyn StoreObject {
    debug_assert!(ptr != 0);
    // SAFETY: caller's contract.
    unsafe { &**(ptr as *const Box<dyn StoreObject>) }
}

/// The object in the cell at `ptr`, mutably.
///
/// # Safety
/// `ptr` is a live cell's address (non-zero), owned by a record whose writer lock the caller
/// holds for `'a`, in the mutable region (so no lock-free reader shares it).
pub unsafe fn object_mut<'a>(ptr: u64) -> &'a mut dyn StoreObject {
    debug_assert!(ptr != 0);
    // SAFETY: caller's contract.
    unsafe { &mut **(ptr as *mut Box<dyn StoreObject>) }
}

/// Drops an object cell once every thread pinned now has unpinned (readers that might still
/// see it are pinned, and `defer` waits for them).
pub fn retire_object(guard: &Guard, cell: Option<ObjectCell>) {
    if let Some(cell) = cell {
        guard.defer(move || drop(cell));
    }
}
