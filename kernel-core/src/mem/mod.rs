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
//! copy-on-write fault always finds its frame. Promises are of blocks of
//! an order (a 64 KiB wasm granule is one order-4 block), and the ledger
//! keeps them *placeable* (INV-MEM-3): the free blocks, split as the buddy
//! splits them, can serve every promised block at once, so fragmentation
//! cannot break a promise either. Processes cannot promise the kernel's
//! reserve (1/32 of RAM, at least 1 MiB). Committing more than can be
//! promised is an error where one can still be returned: `memory.grow`
//! returns -1.
//! Neither is taken by interrupt handlers. The fault path takes the space's
//! lock for reading and the frame allocator's lock, never while the
//! faulting code could hold them: kernel code never touches region memory
//! while holding a memory-manager lock (INV-VM-5).

mod frames;
mod gaps;
mod pool;
mod runs;
mod space;

pub use frames::{Buddy, FrameError, MAX_ORDER, order_for};
pub use gaps::{ASLR_SPAN, GapError, Gaps, Placement, Rng};
pub use pool::{KEEP_BYTES, PoolStats, Pooled, RegionPool};
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
    /// Injected refusals of processes' promises (simulation testing).
    refusals: crate::faults::Injector,
}

struct Pool {
    buddy: Buddy,
    /// Blocks of each order promised to committed pages that have no frame
    /// yet.
    promised: [u64; MAX_ORDER as usize + 1],
    /// Frames processes can never have promised to them.
    reserve: u64,
}

impl Pool {
    /// Frames promised, over all orders.
    fn promised_frames(&self) -> u64 {
        self.promised
            .iter()
            .zip(0u32..)
            .fold(0u64, |t, (&n, o)| t.saturating_add(n << o))
    }

    /// Frames neither allocated nor promised.
    fn unpromised(&self) -> u64 {
        self.buddy
            .free_frames()
            .saturating_sub(self.promised_frames())
    }

    /// INV-MEM-3: the free blocks can serve every promise at once. Largest
    /// order first, each order's promises take its free blocks and the
    /// halves of what is left above (a buddy block splits into two of the
    /// order below), which is exactly how allocations can place them.
    fn placeable(&self) -> bool {
        self.placeable_with(0, 0)
    }

    /// [`Pool::placeable`] with `extra` more blocks of `order` promised.
    fn placeable_with(&self, order: u32, extra: u64) -> bool {
        let mut spare: u64 = 0;
        for o in (0..=MAX_ORDER).rev() {
            let have = spare
                .saturating_mul(2)
                .saturating_add(self.buddy.free_blocks(o));
            let mut need = self.promised[o as usize];
            if o == order {
                need = need.saturating_add(extra);
            }
            if have < need {
                return false;
            }
            spare = have - need;
        }
        true
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
                promised: [0; MAX_ORDER as usize + 1],
                reserve,
            }),
            refusals: crate::faults::Injector::default(),
        }
    }

    /// Refuse `per_mille` of the promises made to processes from now on,
    /// drawn from `seed`, as if RAM were short (simulation testing; 0
    /// turns it off). INV-FAULTS-1: every caller handles a refusal.
    pub fn inject_refusals(&self, seed: u64, per_mille: u16) {
        self.refusals.set(seed, per_mille);
    }

    /// Promises refused by [`FrameAllocator::inject_refusals`] so far.
    pub fn refusals_injected(&self) -> u64 {
        self.refusals.injected()
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
        let pa = pool.buddy.alloc(order)?;
        if !pool.placeable() {
            // Splitting that block would strand a promise (INV-MEM-3).
            pool.buddy.free(pa, order)?;
            return Err(FrameError::OutOfFrames);
        }
        Ok(pa)
    }

    /// Promise `count` blocks of `2^order` frames to committed pages of
    /// `owner` that have no frame yet. A process's promise must leave the
    /// kernel's reserve unpromised; the kernel's may use it.
    ///
    /// # Errors
    /// [`FrameError::OutOfFrames`] when the frames are not there or the
    /// free blocks could not serve the promise (INV-MEM-3);
    /// [`FrameError::OrderTooLarge`]. Nothing was promised then.
    pub fn promise(&self, count: u64, order: u32, owner: Owner) -> Result<(), FrameError> {
        if order > MAX_ORDER {
            return Err(FrameError::OrderTooLarge(order));
        }
        if matches!(owner, Owner::Process(_)) && self.refusals.fail() {
            return Err(FrameError::OutOfFrames);
        }
        let mut pool = self.pool.lock();
        let floor = match owner {
            Owner::Kernel => 0,
            Owner::Process(_) => pool.reserve,
        };
        let frames = count
            .checked_shl(order)
            .filter(|f| f >> order == count)
            .ok_or(FrameError::OutOfFrames)?;
        let needed = frames.checked_add(floor).ok_or(FrameError::OutOfFrames)?;
        if pool.unpromised() < needed {
            return Err(FrameError::OutOfFrames);
        }
        if !pool.placeable_with(order, count) {
            return Err(FrameError::OutOfFrames);
        }
        pool.promised[order as usize] += count;
        Ok(())
    }

    /// Withdraw a promise of `count` blocks of `2^order` frames (committed
    /// pages without a frame were decommitted or released).
    pub fn unpromise(&self, count: u64, order: u32) {
        let mut pool = self.pool.lock();
        if let Some(p) = pool.promised.get_mut(order as usize) {
            *p = p.saturating_sub(count);
        }
    }

    /// Allocate `2^order` frames against a promise, which shrinks by as
    /// much. Trap-context safe (INV-HAL-2): the fault path fills committed
    /// pages with it.
    ///
    /// # Errors
    /// See [`Buddy::alloc`]; with INV-MEM-3 kept, a promised block is
    /// always there (the buddy takes the smallest free block that fits,
    /// which keeps the other promises placeable).
    pub fn alloc_promised(&self, order: u32) -> Result<PhysAddr, FrameError> {
        let mut pool = self.pool.lock();
        let pa = pool.buddy.alloc(order)?;
        if let Some(p) = pool.promised.get_mut(order as usize) {
            *p = p.saturating_sub(1);
        }
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
        pool.promised[order as usize] += 1;
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
        self.pool.lock().promised_frames()
    }

    /// How many more blocks of `2^order` frames could be promised (or
    /// taken) now with every promise still placeable (INV-MEM-3), the
    /// reserve and the unpromised count aside: 0 means the free frames are
    /// too fragmented for one more such block.
    pub fn placeable_blocks(&self, order: u32) -> u64 {
        if order > MAX_ORDER {
            return 0;
        }
        let pool = self.pool.lock();
        let (mut lo, mut hi) = (0u64, pool.buddy.free_frames() >> order);
        // The largest k in [lo, hi] with k more blocks placeable.
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if pool.placeable_with(order, mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
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

/// Zero `frames` frames starting at `pa` ([`PhysMemory::zero`]).
///
/// Returns false when the range is not RAM of the memory map.
pub fn zero_frames(phys: &impl PhysMemory, pa: PhysAddr, frames: usize) -> bool {
    phys.zero(pa, frames * PAGE_SIZE)
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

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use proptest::prelude::*;

    use super::{FrameAllocator, FrameError, Owner};
    use crate::hal::{PhysAddr, PhysRange};

    fn allocator(frames: u64) -> FrameAllocator {
        FrameAllocator::new(&[PhysRange {
            start: PhysAddr::of_frame(1 << 20),
            len: frames * 4096,
        }])
    }

    /// INV-MEM-3: frames that are free but scattered cannot be promised as
    /// a block; once a block is promised, no allocation may split it away.
    #[test]
    fn promises_survive_fragmentation() {
        let f = allocator(64);
        let singles: Vec<PhysAddr> = (0..64).map(|_| f.alloc(0).expect("frame")).collect();
        for pa in singles.iter().step_by(2) {
            f.free(*pa, 0).expect("free");
        }
        // 32 free frames, no two adjacent: no 16-frame block.
        assert_eq!(f.free_frames(), 32);
        assert_eq!(f.promise(1, 4, Owner::Kernel), Err(FrameError::OutOfFrames));
        assert_eq!(f.promise(32, 0, Owner::Kernel), Ok(()));
        f.unpromise(32, 0);

        // Join frames 0..16 back into one block: now one 16-frame block
        // and 24 scattered frames are free. Promise the block; a 2-frame
        // allocation must not split it, though 24 frames are unpromised.
        for pa in singles.iter().take(16).skip(1).step_by(2) {
            f.free(*pa, 0).expect("free");
        }
        assert_eq!(f.free_frames(), 40);
        f.promise(1, 4, Owner::Kernel).expect("the joined block");
        assert_eq!(f.alloc(1), Err(FrameError::OutOfFrames));
        f.alloc(0).expect("a scattered frame is still free to take");
        f.alloc_promised(4).expect("the promised block");
        assert_eq!(f.promised_frames(), 0);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Alloc(u32),
        Free(usize),
        Promise(u64, u32),
        Fill(u32),
        Unpromise(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u32..6).prop_map(Op::Alloc),
            any::<usize>().prop_map(Op::Free),
            (1u64..6, 0u32..6).prop_map(|(n, o)| Op::Promise(n, o)),
            (0u32..6).prop_map(Op::Fill),
            (0u32..6).prop_map(Op::Unpromise),
        ]
    }

    proptest! {
        /// Against a model of held blocks and promises: a promise once
        /// made is always fillable (INV-MEM-3), the ledger adds up
        /// (INV-MEM-2), and every promise can be filled at the end.
        #[test]
        fn every_promise_can_be_filled(frames in 16u64..300, ops in proptest::collection::vec(op(), 1..200)) {
            let f = allocator(frames);
            let total = f.free_frames();
            let mut held: Vec<(PhysAddr, u32)> = Vec::new();
            let mut promised = [0u64; 6];
            for op in ops {
                match op {
                    Op::Alloc(o) => {
                        if let Ok(pa) = f.alloc(o) {
                            held.push((pa, o));
                        }
                    }
                    Op::Free(i) => {
                        if !held.is_empty() {
                            let (pa, o) = held.swap_remove(i % held.len());
                            prop_assert_eq!(f.free(pa, o), Ok(()));
                        }
                    }
                    Op::Promise(n, o) => {
                        if f.promise(n, o, Owner::Kernel).is_ok() {
                            promised[o as usize] += n;
                        }
                    }
                    Op::Fill(o) => {
                        let r = f.alloc_promised(o);
                        if promised[o as usize] > 0 {
                            let pa = r.expect("a promised block is always there");
                            promised[o as usize] -= 1;
                            held.push((pa, o));
                        } else if let Ok(pa) = r {
                            // Not promised: give it straight back.
                            prop_assert_eq!(f.free(pa, o), Ok(()));
                        }
                    }
                    Op::Unpromise(o) => {
                        if promised[o as usize] > 0 {
                            f.unpromise(1, o);
                            promised[o as usize] -= 1;
                        }
                    }
                }
                let held_frames: u64 = held.iter().map(|&(_, o)| 1u64 << o).sum();
                let promised_frames: u64 = promised.iter().zip(0..).map(|(&n, o)| n << o).sum();
                prop_assert_eq!(f.free_frames(), total - held_frames);
                prop_assert_eq!(f.promised_frames(), promised_frames);
                prop_assert!(promised_frames <= f.free_frames());
            }
            for (o, n) in promised.iter().enumerate() {
                for _ in 0..*n {
                    prop_assert!(f.alloc_promised(o as u32).is_ok(), "order {o}");
                }
            }
        }
    }
}
