//! The physical frame allocator: a binary buddy allocator over the RAM the
//! HAL reports.
//!
//! Frames are handed out in power-of-two runs ("blocks") of 4 KiB frames,
//! from order 0 (one frame) to [`MAX_ORDER`] (1 GiB). A block of order `k`
//! starts at a physical frame number that is a multiple of `2^k`, so a block
//! is naturally aligned in physical memory (superpages and the hosted MMU's
//! one-mapping-per-run rely on it).
//!
//! Book-keeping lives outside the frames: one state byte and one link pair
//! per frame, allocated once at start-up. The metadata is zero-initialised, so
//! on hosted the untouched part costs no memory, and no operation allocates
//! on the heap afterwards: alloc and free are safe on the fault path
//! (INV-HAL-2).
//!
//! Invariants:
//! - INV-FRAME-1: every frame of the managed ranges is in exactly one of:
//!   one free block on the free list of its order, one allocated block, or
//!   (outside the ranges) neither, forever.
//! - INV-FRAME-2: a block's first frame records its order and whether it is
//!   free or allocated; every other frame's state is `INTERIOR`.
//! - INV-FRAME-3: no two free buddies of the same order coexist: freeing
//!   merges them at once, so freeing everything restores maximal blocks.
//! - INV-FRAME-4: `free_frames` equals the sum of the sizes of free blocks.

use alloc::vec::Vec;
use core::fmt;

use crate::hal::{PAGE_SIZE, PhysAddr, PhysRange};

/// The largest order handed out: `2^18` frames, 1 GiB.
pub const MAX_ORDER: u32 = 18;
const ORDERS: usize = MAX_ORDER as usize + 1;

/// State byte of a frame that starts no block.
const INTERIOR: u8 = 0;
/// Flag: the frame starts a free block (low bits: order).
const FREE_HEAD: u8 = 0x40;
/// Flag: the frame starts an allocated block (low bits: order).
const ALLOC_HEAD: u8 = 0x80;

/// Why an allocation or a free was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// No free block of the requested order or larger exists.
    OutOfFrames,
    /// The order is larger than [`MAX_ORDER`].
    OrderTooLarge(u32),
    /// The address is not the start of an allocated block of that order
    /// (a double free, a wild address, or the wrong order).
    NotAllocated(PhysAddr),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfFrames => f.write_str("out of physical frames"),
            Self::OrderTooLarge(o) => write!(f, "order {o} exceeds the maximum {MAX_ORDER}"),
            Self::NotAllocated(pa) => {
                write!(f, "{:#x} is not an allocated block of that order", pa.0)
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// The buddy allocator itself. Not synchronised: [`super::FrameAllocator`]
/// wraps it in a lock.
pub struct Buddy {
    /// Frame number of index 0.
    base: u64,
    state: Vec<u8>,
    /// Free-list links, as frame indices plus one (0 = none), so that zeroed
    /// memory is the "unlinked" state and the vectors come from zeroed
    /// (on hosted: untouched, free) pages.
    prev: Vec<u32>,
    next: Vec<u32>,
    /// Head of each order's free list, as index plus one (0 = empty).
    heads: [u32; ORDERS],
    /// Length of each order's free list.
    free_blocks: [u64; ORDERS],
    free_frames: u64,
    total_frames: u64,
}

impl Buddy {
    /// A buddy allocator owning every whole frame of `ranges`. Ranges may be
    /// unaligned, unsorted and may leave holes; partial frames at their ends
    /// are left out.
    pub fn new(ranges: &[PhysRange]) -> Self {
        let frame = PAGE_SIZE as u64;
        let spans = ranges.iter().filter_map(|r| {
            let first = r.start.0.div_ceil(frame);
            let end = r.end() / frame;
            (end > first).then_some((first, end))
        });
        let (lo, hi) = spans
            .clone()
            .fold((u64::MAX, 0), |(lo, hi), (s, e)| (lo.min(s), hi.max(e)));
        let mut buddy = Self {
            base: if lo == u64::MAX { 0 } else { lo },
            state: Vec::new(),
            prev: Vec::new(),
            next: Vec::new(),
            heads: [0; ORDERS],
            free_blocks: [0; ORDERS],
            free_frames: 0,
            total_frames: 0,
        };
        if lo == u64::MAX {
            return buddy;
        }
        // Index space is limited to u32 (16 TiB of RAM); clamp beyond that.
        let span = usize::try_from((hi - lo).min(u64::from(u32::MAX - 1))).unwrap_or(0);
        buddy.state = alloc::vec![INTERIOR; span];
        buddy.prev = alloc::vec![0; span];
        buddy.next = alloc::vec![0; span];
        let limit = lo + span as u64;
        for (start, end) in spans {
            let (start, end) = (start.max(lo), end.min(limit));
            let mut pfn = start;
            while pfn < end {
                // The largest block that is aligned at `pfn` and fits.
                let mut order = MAX_ORDER.min(pfn.trailing_zeros());
                while pfn + (1 << order) > end {
                    order -= 1;
                }
                buddy.total_frames += 1 << order;
                buddy.release(pfn, order);
                pfn += 1 << order;
            }
        }
        buddy
    }

    /// Frames currently free.
    pub const fn free_frames(&self) -> u64 {
        self.free_frames
    }

    /// Frames managed in all.
    pub const fn total_frames(&self) -> u64 {
        self.total_frames
    }

    /// Free blocks of exactly `2^order` frames (0 past [`MAX_ORDER`]).
    pub fn free_blocks(&self, order: u32) -> u64 {
        self.free_blocks.get(order as usize).copied().unwrap_or(0)
    }

    /// The largest order with a free block, if any frame is free.
    pub fn largest_free_order(&self) -> Option<u32> {
        (0..ORDERS)
            .rev()
            .find(|&o| self.heads[o] != 0)
            .map(|o| o as u32)
    }

    /// Allocate a block of `2^order` frames, naturally aligned. Lower
    /// addresses of a split block are handed out first, so a run of
    /// single-frame allocations from a fresh block is physically contiguous.
    ///
    /// # Errors
    /// [`FrameError::OrderTooLarge`] or [`FrameError::OutOfFrames`]; nothing
    /// changes then.
    pub fn alloc(&mut self, order: u32) -> Result<PhysAddr, FrameError> {
        if order > MAX_ORDER {
            return Err(FrameError::OrderTooLarge(order));
        }
        let found = (order as usize..ORDERS)
            .find(|&o| self.heads[o] != 0)
            .ok_or(FrameError::OutOfFrames)?;
        let idx = self.heads[found] - 1;
        self.unlink(idx, found as u32);
        // Split down, keeping the lower half and freeing the upper one.
        let mut have = found as u32;
        while have > order {
            have -= 1;
            self.push(idx + (1 << have), have);
        }
        self.state[idx as usize] = ALLOC_HEAD | order as u8;
        self.free_frames -= 1 << order;
        Ok(PhysAddr::of_frame(self.base + u64::from(idx)))
    }

    /// Return the block of `2^order` frames at `pa`, merging it with free
    /// buddies (INV-FRAME-3).
    ///
    /// # Errors
    /// [`FrameError::NotAllocated`] when `pa` does not start an allocated
    /// block of exactly this order; nothing changes then.
    pub fn free(&mut self, pa: PhysAddr, order: u32) -> Result<(), FrameError> {
        let idx = self.index_of(pa).ok_or(FrameError::NotAllocated(pa))?;
        if order > MAX_ORDER || self.state[idx as usize] != ALLOC_HEAD | order as u8 {
            return Err(FrameError::NotAllocated(pa));
        }
        self.state[idx as usize] = INTERIOR;
        self.release(self.base + u64::from(idx), order);
        Ok(())
    }

    /// Whether `pa` is the first frame of an allocated block.
    pub fn is_allocated(&self, pa: PhysAddr) -> bool {
        self.index_of(pa)
            .is_some_and(|i| self.state[i as usize] & ALLOC_HEAD != 0)
    }

    fn index_of(&self, pa: PhysAddr) -> Option<u32> {
        if !pa.is_page_aligned() {
            return None;
        }
        let idx = pa.frame().checked_sub(self.base)?;
        (idx < self.state.len() as u64).then_some(idx as u32)
    }

    /// Put the block at `pfn` on the free lists, merging with its buddies.
    fn release(&mut self, mut pfn: u64, mut order: u32) {
        self.free_frames += 1 << order;
        while order < MAX_ORDER {
            let buddy = pfn ^ (1 << order);
            let Some(bidx) = buddy.checked_sub(self.base) else {
                break;
            };
            if bidx >= self.state.len() as u64
                || self.state[bidx as usize] != FREE_HEAD | order as u8
            {
                break;
            }
            self.unlink(bidx as u32, order);
            self.state[bidx as usize] = INTERIOR;
            pfn = pfn.min(buddy);
            order += 1;
        }
        self.push((pfn - self.base) as u32, order);
    }

    fn push(&mut self, idx: u32, order: u32) {
        let o = order as usize;
        let old = self.heads[o];
        self.prev[idx as usize] = 0;
        self.next[idx as usize] = old;
        if old != 0 {
            self.prev[old as usize - 1] = idx + 1;
        }
        self.heads[o] = idx + 1;
        self.free_blocks[o] += 1;
        self.state[idx as usize] = FREE_HEAD | order as u8;
    }

    fn unlink(&mut self, idx: u32, order: u32) {
        let (prev, next) = (self.prev[idx as usize], self.next[idx as usize]);
        if prev == 0 {
            self.heads[order as usize] = next;
        } else {
            self.next[prev as usize - 1] = next;
        }
        if next != 0 {
            self.prev[next as usize - 1] = prev;
        }
        self.prev[idx as usize] = 0;
        self.next[idx as usize] = 0;
        self.free_blocks[order as usize] -= 1;
        self.state[idx as usize] = INTERIOR;
    }
}

/// The smallest order whose block holds `frames` frames.
pub const fn order_for(frames: u64) -> u32 {
    if frames <= 1 {
        0
    } else {
        64 - (frames - 1).leading_zeros()
    }
}

#[cfg(test)]
mod tests;
