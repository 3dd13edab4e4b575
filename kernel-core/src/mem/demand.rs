//! Demand-paged regions of the kernel window: reserved up front, backed by
//! a zeroed frame on first touch.
//!
//! Each region keeps one slot per page recording the frame mapped there.
//! A fault inside a region claims the slot, allocates and zeroes a frame,
//! maps it and publishes it; the faulting instruction is then retried.
//!
//! Invariants:
//! - INV-DEMAND-1: a slot is `EMPTY` (page never touched, not mapped),
//!   `BUSY` (one CPU is mapping it now) or `frame + 1` (mapped to that frame,
//!   which the region owns).
//! - INV-DEMAND-2: only the CPU that moved a slot from `EMPTY` to `BUSY` maps
//!   the page; others that fault on it meanwhile wait for the slot to leave
//!   `BUSY`, then retry.
//! - INV-DEMAND-3: removing a region unmaps its whole range and frees every
//!   frame in its slots; the caller guarantees nothing touches the range
//!   from then on.
//! - INV-DEMAND-4: the fault path allocates nothing on the heap and takes
//!   only the registry's read lock and the frame allocator's lock.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::{FrameAllocator, KernelTables, zero_frames};
use crate::hal::{Access, HalError, Mmu, PAGE_SIZE, Perms, PhysAddr, PhysMemory, VirtRange};

const EMPTY: u64 = 0;
const BUSY: u64 = u64::MAX;

/// Why a region operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemandError {
    /// The range is empty, unaligned, or overlaps an existing region.
    BadRange,
    /// Writable and executable at once (W^X).
    WriteExecute,
    /// No region starts at this address.
    NoSuchRegion,
    /// Unmapping the region failed in the MMU.
    Hal(HalError),
}

impl fmt::Display for DemandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRange => f.write_str("bad or overlapping demand region"),
            Self::WriteExecute => f.write_str("a region may not be writable and executable"),
            Self::NoSuchRegion => f.write_str("no demand region there"),
            Self::Hal(e) => write!(f, "MMU: {e}"),
        }
    }
}

impl core::error::Error for DemandError {}

/// What the fault path made of a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// The address lies in no demand region.
    NotOurs,
    /// A frame is mapped now (or was mapped by another CPU): retry.
    Resolved,
    /// The access is not allowed by the region (a write to a read-only
    /// region, a fetch from a non-executable one), or it faulted again on a
    /// page that is present.
    Violation,
    /// No frame or page table could be had.
    OutOfMemory,
}

/// One region and its page slots.
pub struct DemandRegion {
    range: VirtRange,
    perms: Perms,
    slots: Box<[AtomicU64]>,
}

impl DemandRegion {
    /// The demand-paged range.
    pub const fn range(&self) -> VirtRange {
        self.range
    }

    /// Pages that have a frame now.
    pub fn resident_pages(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !matches!(s.load(Ordering::Acquire), EMPTY | BUSY))
            .count()
    }
}

/// The registry of demand regions, consulted by the fault path.
#[derive(Default)]
pub struct DemandRegions {
    regions: spin::RwLock<Vec<DemandRegion>>,
}

impl DemandRegions {
    /// An empty registry.
    pub const fn new() -> Self {
        Self {
            regions: spin::RwLock::new(Vec::new()),
        }
    }

    /// Register `range` (page aligned, reserved by the caller in the window,
    /// not mapped) as demand-paged with `perms`.
    ///
    /// # Errors
    /// [`DemandError::BadRange`] or [`DemandError::WriteExecute`]; nothing is
    /// registered then.
    pub fn insert(&self, range: VirtRange, perms: Perms) -> Result<(), DemandError> {
        if !perms.is_wx_safe() {
            return Err(DemandError::WriteExecute);
        }
        if range.len == 0
            || !range.start.is_multiple_of(PAGE_SIZE)
            || !range.len.is_multiple_of(PAGE_SIZE)
        {
            return Err(DemandError::BadRange);
        }
        let slots = (0..range.len / PAGE_SIZE)
            .map(|_| AtomicU64::new(EMPTY))
            .collect();
        let mut regions = self.regions.write();
        let at = regions.partition_point(|r| r.range.start < range.start);
        let overlaps_prev = at > 0 && regions[at - 1].range.end() > range.start;
        let overlaps_next = regions.get(at).is_some_and(|r| r.range.start < range.end());
        if overlaps_prev || overlaps_next {
            return Err(DemandError::BadRange);
        }
        regions.insert(
            at,
            DemandRegion {
                range,
                perms,
                slots,
            },
        );
        Ok(())
    }

    /// Run `f` on the region starting at `start`.
    pub fn with_region<R>(&self, start: usize, f: impl FnOnce(&DemandRegion) -> R) -> Option<R> {
        let regions = self.regions.read();
        let at = regions
            .binary_search_by_key(&start, |r| r.range.start)
            .ok()?;
        Some(f(&regions[at]))
    }

    /// Resolve a fault at `addr` with access `access` on a CPU whose last
    /// resolved fault address is kept in `last_fault`. Obeys INV-DEMAND-4.
    pub fn resolve<H: Mmu + PhysMemory>(
        &self,
        hal: &H,
        frames: &FrameAllocator,
        addr: usize,
        access: Access,
        last_fault: &AtomicUsize,
    ) -> FaultOutcome {
        let regions = self.regions.read();
        let at = regions.partition_point(|r| r.range.start <= addr);
        let Some(region) = at.checked_sub(1).map(|i| &regions[i]) else {
            return FaultOutcome::NotOurs;
        };
        if !region.range.contains(addr) {
            return FaultOutcome::NotOurs;
        }
        let allowed = match access {
            Access::Read => region.perms.read,
            Access::Write => region.perms.write,
            Access::Execute => region.perms.execute,
            Access::Unknown => true,
        };
        if !allowed {
            return FaultOutcome::Violation;
        }
        let page = addr & !(PAGE_SIZE - 1);
        let slot = &region.slots[(page - region.range.start) / PAGE_SIZE];
        match slot.compare_exchange(EMPTY, BUSY, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => {}
            Err(BUSY) => {
                // INV-DEMAND-2: another CPU maps it; wait, then retry.
                while slot.load(Ordering::Acquire) == BUSY {
                    core::hint::spin_loop();
                }
                return FaultOutcome::Resolved;
            }
            Err(_) => {
                // Present already. Once may be a race with the CPU that
                // mapped it; twice in a row at the same page is a real
                // protection fault that retrying would never fix.
                return if last_fault.swap(page, Ordering::Relaxed) == page {
                    FaultOutcome::Violation
                } else {
                    FaultOutcome::Resolved
                };
            }
        }
        let outcome = map_zeroed_page(hal, frames, page, region.perms);
        match outcome {
            Ok(pa) => {
                slot.store(pa.frame() + 1, Ordering::Release);
                last_fault.store(page, Ordering::Relaxed);
                FaultOutcome::Resolved
            }
            Err(()) => {
                slot.store(EMPTY, Ordering::Release);
                FaultOutcome::OutOfMemory
            }
        }
    }

    /// Unregister the region starting at `start`, unmap it and free its
    /// frames (INV-DEMAND-3). Returns the number of frames freed.
    ///
    /// # Errors
    /// [`DemandError::NoSuchRegion`]; or [`DemandError::Hal`] when the MMU
    /// refuses the unmap, in which case the region stays registered and
    /// nothing is freed.
    pub fn remove<H: Mmu + PhysMemory>(
        &self,
        hal: &H,
        frames: &FrameAllocator,
        start: usize,
    ) -> Result<usize, DemandError> {
        let mut regions = self.regions.write();
        let at = regions
            .binary_search_by_key(&start, |r| r.range.start)
            .map_err(|_| DemandError::NoSuchRegion)?;
        let range = regions[at].range;
        // SAFETY: the region owns its range (reserved by its creator) and
        // the caller guarantees nothing uses it any more (INV-DEMAND-3).
        let flush = unsafe { hal.unmap(range.start, range.len) }.map_err(DemandError::Hal)?;
        hal.flush(flush);
        let region = regions.remove(at);
        drop(regions);
        let mut freed = 0;
        for slot in region.slots.iter() {
            let v = slot.load(Ordering::Acquire);
            if v != EMPTY && v != BUSY && frames.free(PhysAddr::of_frame(v - 1), 0).is_ok() {
                freed += 1;
            }
        }
        Ok(freed)
    }
}

/// Allocate a frame, zero it and map it at `page`.
fn map_zeroed_page<H: Mmu + PhysMemory>(
    hal: &H,
    frames: &FrameAllocator,
    page: usize,
    perms: Perms,
) -> Result<PhysAddr, ()> {
    let pa = frames.alloc(0).map_err(|_| ())?;
    let tables = KernelTables::new(frames, hal);
    // SAFETY: the frame was just allocated, so this region owns it; the page
    // lies in the region's reserved range and its slot is BUSY, so no other
    // CPU maps it (INV-DEMAND-2); perms passed the W^X check at insert.
    let mapped =
        zero_frames(hal, pa, 1).then(|| unsafe { hal.map(page, pa, PAGE_SIZE, perms, &tables) });
    match mapped {
        Some(Ok(flush)) => {
            hal.flush(flush);
            Ok(pa)
        }
        _ => {
            let _ = frames.free(pa, 0);
            Err(())
        }
    }
}
