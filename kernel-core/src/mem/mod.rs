//! Memory management: physical frames ([`frames`](Buddy)), placement in the
//! kernel's virtual window ([`Gaps`]), and the address space of regions,
//! backings, faults and accounting ([`Space`], used through [`Vm`]).
//!
//! Lock order (INV-MEM-1): the space's lock, then the frame allocator's.
//!
//! Commitment (INV-MEM-2): frames are granted when memory is committed, not
//! when it is first touched. A committed page either has its frame or holds
//! a promise of one in the frame allocator's ledger, and
//! `free = promised + unpromised` at every step: allocations that were not
//! promised come out of the unpromised part only, so a demand or
//! copy-on-write fault always finds its frame (short of fragmentation: the
//! ledger counts frames, the fault needs a block of the region's granule).
//! Processes cannot promise the kernel's reserve (1/32 of RAM, at least
//! 1 MiB). Committing more than can be promised is an error where one can
//! still be returned: `memory.grow` returns -1.
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
    Account, Backing, Commit, FaultOutcome, Hold, Mapping, Owner, PageInfo, ProcessId, RegionSpec,
    Space, Vm, VmError, VmObject,
};

use crate::hal::{PAGE_SIZE, PhysAddr, PhysMemory, PhysRange, TableFrames};

/// The kernel's frame allocator: the buddy allocator behind a spin lock,
/// with the machine-wide commitment ledger (INV-MEM-2).
///
/// Frames are *promised* when a page is committed without a frame yet (a
/// demand-paged or copy-on-write page): the promise takes frames out of
/// what anyone else may allocate, so the fault that later fills the page
/// finds its frame ([`FrameAllocator::alloc_promised`]). Processes may
/// promise only down to the kernel's reserve; the kernel's own allocations
/// (page tables, code, its stacks) may use the reserve.
pub struct FrameAllocator {
    pool: spin::Mutex<Pool>,
}

struct Pool {
    buddy: Buddy,
    /// Frames promised to committed pages that have no frame yet.
    promised: u64,
    /// Frames processes can never have promised to them.
    reserve: u64,
}

impl Pool {
    /// Frames neither allocated nor promised.
    fn unpromised(&self) -> u64 {
        self.buddy.free_frames().saturating_sub(self.promised)
    }
}

/// Frames of `total` kept back for the kernel: 1/32 of RAM, at least
/// 1 MiB, at most half of it.
fn kernel_reserve(total: u64) -> u64 {
    (total / 32).max(256).min(total / 2)
}

impl FrameAllocator {
    /// An allocator owning every frame of `ranges`.
    pub fn new(ranges: &[PhysRange]) -> Self {
        let buddy = Buddy::new(ranges);
        let reserve = kernel_reserve(buddy.total_frames());
        Self {
            pool: spin::Mutex::new(Pool {
                buddy,
                promised: 0,
                reserve,
            }),
        }
    }

    /// Allocate `2^order` contiguous, naturally aligned frames that were not
    /// promised: the kernel's own allocations, and a process's frames that
    /// are allocated as soon as they are committed.
    ///
    /// # Errors
    /// See [`Buddy::alloc`]; [`FrameError::OutOfFrames`] also when the free
    /// frames are all promised (INV-MEM-2).
    pub fn alloc(&self, order: u32) -> Result<PhysAddr, FrameError> {
        let mut pool = self.pool.lock();
        let n = 1u64
            .checked_shl(order)
            .ok_or(FrameError::OrderTooLarge(order))?;
        if pool.unpromised() < n {
            return Err(FrameError::OutOfFrames);
        }
        pool.buddy.alloc(order)
    }

    /// Promise `frames` frames to committed pages of `owner` that have no
    /// frame yet. A process's promise must leave the kernel's reserve
    /// unpromised; the kernel's may use it.
    ///
    /// # Errors
    /// [`FrameError::OutOfFrames`]: nothing was promised.
    pub fn promise(&self, frames: u64, owner: Owner) -> Result<(), FrameError> {
        let mut pool = self.pool.lock();
        let floor = match owner {
            Owner::Kernel => 0,
            Owner::Process(_) => pool.reserve,
        };
        let needed = frames.checked_add(floor).ok_or(FrameError::OutOfFrames)?;
        if pool.unpromised() < needed {
            return Err(FrameError::OutOfFrames);
        }
        pool.promised += frames;
        Ok(())
    }

    /// Withdraw a promise of `frames` frames (a committed page without a
    /// frame was decommitted or released).
    pub fn unpromise(&self, frames: u64) {
        let mut pool = self.pool.lock();
        pool.promised = pool.promised.saturating_sub(frames);
    }

    /// Allocate `2^order` frames against a promise, which shrinks by as
    /// much. Trap-context safe (INV-HAL-2): the fault path fills committed
    /// pages with it.
    ///
    /// # Errors
    /// See [`Buddy::alloc`]: with the promise kept, only fragmentation (no
    /// free block of the order although enough frames are free) fails.
    pub fn alloc_promised(&self, order: u32) -> Result<PhysAddr, FrameError> {
        let mut pool = self.pool.lock();
        let pa = pool.buddy.alloc(order)?;
        pool.promised = pool.promised.saturating_sub(1 << order);
        Ok(pa)
    }

    /// Return a block obtained from [`FrameAllocator::alloc_promised`] and
    /// renew its promise (the page it was for still has no frame).
    ///
    /// # Errors
    /// See [`Buddy::free`]; the promise is renewed only when the block was
    /// freed.
    pub fn free_promised(&self, pa: PhysAddr, order: u32) -> Result<(), FrameError> {
        let mut pool = self.pool.lock();
        pool.buddy.free(pa, order)?;
        pool.promised += 1 << order;
        Ok(())
    }

    /// Return a block obtained from [`FrameAllocator::alloc`] or
    /// [`FrameAllocator::alloc_promised`].
    ///
    /// # Errors
    /// See [`Buddy::free`].
    pub fn free(&self, pa: PhysAddr, order: u32) -> Result<(), FrameError> {
        self.pool.lock().buddy.free(pa, order)
    }

    /// Frames free now (promised or not).
    pub fn free_frames(&self) -> u64 {
        self.pool.lock().buddy.free_frames()
    }

    /// Frames promised to committed pages that have no frame yet.
    pub fn promised_frames(&self) -> u64 {
        self.pool.lock().promised
    }

    /// Frames processes can never have promised to them.
    pub fn reserved_frames(&self) -> u64 {
        self.pool.lock().reserve
    }

    /// Frames managed in all.
    pub fn total_frames(&self) -> u64 {
        self.pool.lock().buddy.total_frames()
    }

    /// The largest order with a free block.
    pub fn largest_free_order(&self) -> Option<u32> {
        self.pool.lock().buddy.largest_free_order()
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
