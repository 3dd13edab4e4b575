//! The live Sv39 page tables: one root shared by every hart, built at boot
//! with gigapages (identity 0..4 GiB, the physmap), and the kernel window
//! whose 4 KiB leaves `Mmu::map`/`unmap`/`protect` edit through
//! [`crate::sv39`].
//!
//! W^X is not enforced for the image itself: it runs from an identity
//! gigapage that must be writable (data, stacks, heap) and executable
//! (text). The window, where the kernel maps code at run time, is W^X.
//!
//! Locking: edits take [`PtLock`] with interrupts masked. `map` runs on the
//! demand-fault path (trap context), so the lock must never be held by a
//! hart that can fault: while holding it the HAL touches only page-table
//! frames through the physmap, which is always mapped, and the caller's
//! stack. If a trap nevertheless re-enters on the hart that holds it (the
//! caller ran on a stack that itself needs demand paging), the inner call
//! fails with `HalError::Busy` instead of deadlocking.
//!
//! Invariants:
//! - INV-MMU-1: page-table frames are reached only through the physmap
//!   (`PHYSMAP_BASE + pa`) after paging is on; `PhysmapTables` answers only
//!   for page-aligned RAM of the device tree below `PHYSMAP_SIZE`, which the
//!   physmap gigapages cover.
//! - INV-MMU-2: the identity and physmap root entries are written at boot
//!   before paging is on and any secondary starts, and never change; every
//!   later edit (window root entries and the tables below them) happens
//!   under [`PtLock`] with interrupts masked, and allocates nothing: table
//!   frames come from the caller's `TableFrames` (INV-HAL-2).

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};

use kernel_core::hal::{HalError, PAGE_SIZE, Perms, PhysRange, TableFrames, TlbFlush, VirtRange};

use crate::dt::MAX_RAM_RANGES;
use crate::fixed::FixedVec;
use crate::layout::{
    self, GIB, IDENTITY_LIMIT, PHYSMAP_BASE, PHYSMAP_SIZE, WINDOW_BASE, WINDOW_SIZE,
};
use crate::sv39::{self, ENTRIES, PageTable, Table, TableMemory};
use crate::{cpu, csr, sbi};

/// Pages flushed one `sfence.vma` at a time; larger flushes drop the TLB.
const FLUSH_PAGES_ONE_BY_ONE: usize = 32;

/// The root table, in the image (so it exists before any allocator).
#[repr(C, align(4096))]
struct Root(Table);

static ROOT: Root = Root([const { AtomicU64::new(0) }; ENTRIES]);

/// RAM reachable through the physmap (INV-MMU-1).
pub struct PhysmapTables {
    ram: FixedVec<PhysRange, MAX_RAM_RANGES>,
}

impl PhysmapTables {
    /// Page-table access over the device tree's RAM (clipped to the physmap).
    pub fn new(ram: FixedVec<PhysRange, MAX_RAM_RANGES>) -> Self {
        Self { ram }
    }
}

// SAFETY: INV-MMU-1: the physmap maps all of `ram` read/write for the
// kernel's life once paging is on (which precedes every `Mmu` call), and
// page-table frames are owned by the page tables (the `TableFrames`
// contract), which access them only through these references.
unsafe impl TableMemory for PhysmapTables {
    fn table(&self, pa: u64) -> Option<&Table> {
        if !pa.is_multiple_of(PAGE_SIZE as u64)
            || pa >= PHYSMAP_SIZE
            || !layout::covers(&self.ram, pa, PAGE_SIZE as u64)
        {
            return None;
        }
        // SAFETY: see the impl's SAFETY comment; the frame is 4 KiB aligned.
        Some(unsafe { &*((PHYSMAP_BASE + pa as usize) as *const Table) })
    }
}

/// A spin lock that knows its holder, so a trap re-entering on the holding
/// hart fails instead of deadlocking.
struct PtLock {
    /// 0 when free, else the holder's logical CPU + 1.
    owner: AtomicUsize,
}

impl PtLock {
    fn lock(&self) -> Result<PtGuard<'_>, HalError> {
        let me = cpu::current().logical() + 1;
        loop {
            match self
                .owner
                .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Ok(PtGuard(self)),
                Err(holder) if holder == me => return Err(HalError::Busy),
                Err(_) => core::hint::spin_loop(),
            }
        }
    }
}

struct PtGuard<'a>(&'a PtLock);

impl Drop for PtGuard<'_> {
    fn drop(&mut self) {
        self.0.owner.store(0, Ordering::Release);
    }
}

/// The kernel's translation state.
pub struct KernelTables {
    tables: PhysmapTables,
    lock: PtLock,
}

/// Fill the root table (paging off, boot hart only, INV-MMU-2) and return
/// the `satp` value that selects it: identity gigapages for `0..4 GiB`
/// (MMIO below 2 GiB read/write, RAM above read/write/execute) and
/// read/write physmap gigapages covering every RAM range.
pub fn build_root(ram: &[PhysRange]) -> u64 {
    let root = &ROOT.0;
    let rw = Perms::READ_WRITE;
    let rwx = Perms {
        read: true,
        write: true,
        execute: true,
    };
    for g in 0..IDENTITY_LIMIT / GIB {
        let perms = if g < 2 { rw } else { rwx };
        root[g as usize].store(sv39::gigapage(g * GIB, perms), Ordering::Relaxed);
    }
    for r in ram {
        let start = layout::align_down(r.start.0, GIB);
        let end = r.end().min(PHYSMAP_SIZE);
        let mut g = start;
        while g < end {
            let va = PHYSMAP_BASE + g as usize;
            root[sv39::vpn(va, 2)].store(sv39::gigapage(g, rw), Ordering::Relaxed);
            g += GIB;
        }
    }
    sv39::satp(root_pa())
}

fn root_pa() -> u64 {
    // The image runs identity mapped: the static's address is physical.
    (&raw const ROOT) as u64
}

fn check_range(va: usize, len: usize) -> Result<(), HalError> {
    if !va.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) {
        return Err(HalError::Misaligned);
    }
    let window = VirtRange {
        start: WINDOW_BASE,
        len: WINDOW_SIZE,
    };
    let end = va.checked_add(len).ok_or(HalError::OutOfRange)?;
    if va < window.start || end > window.end() {
        return Err(HalError::OutOfRange);
    }
    Ok(())
}

impl KernelTables {
    /// The live tables; `ram` as for [`PhysmapTables::new`].
    pub fn new(ram: FixedVec<PhysRange, MAX_RAM_RANGES>) -> Self {
        Self {
            tables: PhysmapTables::new(ram),
            lock: PtLock {
                owner: AtomicUsize::new(0),
            },
        }
    }

    /// Run `f` on the page table under the lock with interrupts masked.
    fn edit<T>(
        &self,
        f: impl FnOnce(&PageTable<'_, PhysmapTables>) -> Result<T, HalError>,
    ) -> Result<T, HalError> {
        let was = csr::irq_save();
        let result = self
            .lock
            .lock()
            .and_then(|_guard| f(&PageTable::new(&self.tables, root_pa())));
        if was {
            csr::irq_enable();
        }
        result
    }

    /// `Mmu::map` after the memory-map check (which the platform does).
    pub fn map(
        &self,
        va: usize,
        pa: u64,
        len: usize,
        perms: Perms,
        frames: &dyn TableFrames,
    ) -> Result<TlbFlush, HalError> {
        check_range(va, len)?;
        if !pa.is_multiple_of(PAGE_SIZE as u64) {
            return Err(HalError::Misaligned);
        }
        self.edit(|pt| pt.map(va, pa, len, perms, frames))?;
        Ok(TlbFlush::new(VirtRange { start: va, len }))
    }

    /// `Mmu::unmap`.
    pub fn unmap(&self, va: usize, len: usize) -> Result<TlbFlush, HalError> {
        check_range(va, len)?;
        self.edit(|pt| pt.unmap(va, len))?;
        Ok(TlbFlush::new(VirtRange { start: va, len }))
    }

    /// `Mmu::protect`.
    pub fn protect(&self, va: usize, len: usize, perms: Perms) -> Result<TlbFlush, HalError> {
        check_range(va, len)?;
        self.edit(|pt| pt.protect(va, len, perms))?;
        Ok(TlbFlush::new(VirtRange { start: va, len }))
    }
}

/// `Mmu::flush`: `sfence.vma` here, then an SBI remote `sfence.vma` on every
/// other hart that may cache translations (INV-CPU-3).
pub fn flush(flush: TlbFlush) {
    let range = flush.range();
    if range.len == 0 {
        return;
    }
    let pages = range.len / PAGE_SIZE;
    if pages <= FLUSH_PAGES_ONE_BY_ONE {
        for i in 0..pages {
            csr::sfence_vma(range.start + i * PAGE_SIZE);
        }
    } else {
        csr::sfence_vma_all();
    }
    // The PTE stores must be visible before the remote harts fence.
    fence(Ordering::SeqCst);
    layout::for_each_hart_mask(cpu::other_started_harts(), |mask, base| {
        sbi::remote_sfence_vma(mask, base, range.start, range.len);
    });
}

/// `Mmu::sync_icache`: `fence.i` here and on every other started hart.
pub fn sync_icache() {
    fence(Ordering::SeqCst);
    csr::fence_i();
    layout::for_each_hart_mask(cpu::other_started_harts(), sbi::remote_fence_i);
}
