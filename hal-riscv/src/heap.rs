//! The global allocator: talc over one region of RAM right after the image
//! (placed by `layout::place_heap`, removed from the kernel's memory map).
//!
//! talc rather than `linked_list_allocator`: Cranelift allocates and frees
//! many small objects, and talc's binned free lists keep that near
//! constant time where a single first-fit list degrades.
//!
//! INV-HEAP-1: the lock is a plain spin lock taken with interrupts as they
//! are; that is sound only because trap-context code never allocates
//! (INV-HAL-2), so no handler can spin on a lock its own hart holds.

use talc::TalcLock;
use talc::source::Manual;

#[global_allocator]
static HEAP: TalcLock<spin::Mutex<()>, Manual> = TalcLock::new(Manual);

/// Hand `size` bytes at `base` to the allocator. Returns false when talc
/// cannot use the region (too small).
///
/// # Safety
/// The region is RAM mapped read/write at `base`, used by nothing else for
/// the rest of the kernel's life, and `init` is called once.
pub unsafe fn init(base: *mut u8, size: usize) -> bool {
    // SAFETY: the caller hands over exclusive, mapped memory.
    unsafe { HEAP.lock().claim(base, size).is_some() }
}
