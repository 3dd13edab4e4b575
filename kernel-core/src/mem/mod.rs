//! Memory management: physical frames ([`frames`](Buddy)), placement in the
//! kernel's virtual window ([`Gaps`]), and the address space of regions,
//! backings, faults and accounting ([`Space`], used through [`Vm`]).
//!
//! Lock order (INV-MEM-1): the space's lock, then the frame allocator's.
//! Neither is taken by interrupt handlers. The fault path takes the space's
//! lock for reading and the frame allocator's lock, never while the
//! faulting code could hold them: kernel code never touches region memory
//! while holding a memory-manager lock (INV-VM-5).

mod frames;
mod gaps;
mod runs;
mod space;

pub use frames::{Buddy, FrameError, MAX_ORDER, order_for};
pub use gaps::{ASLR_SPAN, GapError, Gaps, Placement, Rng};
pub use runs::{FrameRuns, map_frames};
pub use space::{
    Account, Backing, Commit, FaultOutcome, Mapping, Owner, PageInfo, ProcessId, RegionSpec, Space,
    Vm, VmError, VmObject,
};

use crate::hal::{PAGE_SIZE, PhysAddr, PhysMemory, PhysRange, TableFrames};

/// The kernel's frame allocator: the buddy allocator behind a spin lock.
pub struct FrameAllocator {
    buddy: spin::Mutex<Buddy>,
}

impl FrameAllocator {
    /// An allocator owning every frame of `ranges`.
    pub fn new(ranges: &[PhysRange]) -> Self {
        Self {
            buddy: spin::Mutex::new(Buddy::new(ranges)),
        }
    }

    /// Allocate `2^order` contiguous, naturally aligned frames.
    ///
    /// # Errors
    /// See [`Buddy::alloc`].
    pub fn alloc(&self, order: u32) -> Result<PhysAddr, FrameError> {
        self.buddy.lock().alloc(order)
    }

    /// Return a block obtained from [`FrameAllocator::alloc`].
    ///
    /// # Errors
    /// See [`Buddy::free`].
    pub fn free(&self, pa: PhysAddr, order: u32) -> Result<(), FrameError> {
        self.buddy.lock().free(pa, order)
    }

    /// Frames free now.
    pub fn free_frames(&self) -> u64 {
        self.buddy.lock().free_frames()
    }

    /// Frames managed in all.
    pub fn total_frames(&self) -> u64 {
        self.buddy.lock().total_frames()
    }

    /// The largest order with a free block.
    pub fn largest_free_order(&self) -> Option<u32> {
        self.buddy.lock().largest_free_order()
    }
}

/// Zero `frames` frames starting at `pa` through the direct map.
///
/// Returns false when the range is not RAM of the memory map.
pub fn zero_frames(phys: &impl PhysMemory, pa: PhysAddr, frames: usize) -> bool {
    let Some(base) = phys.direct_map(pa) else {
        return false;
    };
    let len = frames * PAGE_SIZE;
    let end = PhysAddr(pa.0 + len as u64 - 1);
    if phys.direct_map(end).is_none() {
        return false;
    }
    // SAFETY: the direct map covers every byte of RAM for the kernel's whole
    // life (PhysMemory::direct_map), both ends of the range were checked, and
    // the frames are owned by the caller, so nothing else reads them now.
    unsafe { core::ptr::write_bytes(base, 0, len) };
    true
}

/// Page-table frames for the MMU, taken from the kernel's frame allocator
/// and zeroed through the direct map.
pub struct KernelTables<'a, P: PhysMemory> {
    frames: &'a FrameAllocator,
    phys: &'a P,
}

impl<'a, P: PhysMemory> KernelTables<'a, P> {
    /// Tables drawn from `frames`, zeroed through `phys`.
    pub const fn new(frames: &'a FrameAllocator, phys: &'a P) -> Self {
        Self { frames, phys }
    }
}

impl<P: PhysMemory> TableFrames for KernelTables<'_, P> {
    fn alloc_table(&self) -> Option<PhysAddr> {
        let pa = self.frames.alloc(0).ok()?;
        if zero_frames(self.phys, pa, 1) {
            Some(pa)
        } else {
            // Not reachable for frames of the memory map; give it back.
            let _ = self.frames.free(pa, 0);
            None
        }
    }

    fn free_table(&self, frame: PhysAddr) {
        // A frame that was not ours is refused by the allocator; dropping
        // that error is right, there is nothing else to return it to.
        let _ = self.frames.free(frame, 0);
    }
}
