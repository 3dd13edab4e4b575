//! Host stacks: CPU fibers in deterministic mode and alternate signal
//! stacks.
//!
//! This module owns [`HostStack`]: an anonymous private host mapping with
//! one inaccessible guard page below the usable range, the stack a CPU
//! fiber runs on in deterministic mode ([`crate::det`]) and each CPU
//! thread's signal stack ([`crate::context`]). Pages are committed
//! by the host when touched (`MAP_NORESERVE`), so a 16 MiB stack costs what
//! it uses.
//!
//! Invariant INV-STACK-1: `base..base + len` is a mapping this value made
//! and alone uses from [`HostStack::new`] until `Drop` unmaps it; its
//! lowest page is `PROT_NONE` and the rest is read + write.

use core::ffi::c_void;
use core::ops::Range;
use core::ptr;

use kernel_core::hal::PAGE_SIZE;
use kernel_core::sched::fiber::FiberStack;
use rustix::io::Errno;
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags, mmap_anonymous, mprotect, munmap};

/// A host mapping used as a fiber stack, with a guard page below it.
pub(crate) struct HostStack {
    base: *mut c_void,
    len: usize,
}

// SAFETY: the value only owns a mapping (INV-STACK-1); nothing about it is
// bound to the thread that made it.
unsafe impl Send for HostStack {}

impl HostStack {
    /// A stack with `size` usable bytes (rounded up to pages).
    ///
    /// # Errors
    /// The host's error when it cannot map or protect the memory; nothing
    /// stays mapped then.
    pub(crate) fn new(size: usize) -> Result<Self, Errno> {
        let len = size.next_multiple_of(PAGE_SIZE) + PAGE_SIZE;
        // SAFETY: a fresh private mapping at an address the host picks.
        let base = unsafe {
            mmap_anonymous(
                ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        }?;
        // SAFETY: the lowest page of the mapping just made: an overflow
        // faults on it instead of writing below the stack.
        if let Err(e) = unsafe { mprotect(base, PAGE_SIZE, MprotectFlags::empty()) } {
            // SAFETY: the mapping was made above and is not in use.
            let _ = unsafe { munmap(base, len) };
            return Err(e);
        }
        Ok(Self { base, len })
    }
}

impl Drop for HostStack {
    fn drop(&mut self) {
        // SAFETY: INV-STACK-1: the mapping is ours; the fiber contract
        // (INV-FIBER-4) drops a stack only when nothing runs on it.
        let _ = unsafe { munmap(self.base, self.len) };
    }
}

// SAFETY: INV-STACK-1: the range is read + write memory owned by this value
// alone until it drops and does not move with it; it is page aligned (so
// its end is 16-byte aligned) and at least one page, above `MIN_STACK`.
unsafe impl FiberStack for HostStack {
    fn bounds(&self) -> Range<usize> {
        let start = self.base as usize + PAGE_SIZE;
        start..self.base as usize + self.len
    }
}
