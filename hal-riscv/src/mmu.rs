//! The live page tables: one root shared by every hart, built at boot in
//! Sv48 when the hart has it, else Sv39 ([`enable`]), and the kernel window
//! whose 4 KiB leaves `Mmu::map`/`unmap`/`protect` edit through
//! [`crate::pagetable`]. The layout of both modes is `layout`'s.
//!
//! Built at boot, from tables in the image (there is no allocator yet):
//! the identity map of `0..4 GiB` (gigapages, read/write, never
//! executable) except the gigapage holding the image, which is split into
//! 2 MiB megapages and, for the blocks the image touches, 4 KiB pages with
//! the image's section permissions and unmapped stack guards
//! (`ImageLayout::page_perms`); and the physmap gigapages (under Sv48
//! through one level-2 table of their own, as is the identity map). The
//! window's tables come from the kernel's frames at run time.
//!
//! W^X holds everywhere: the image's text is read/execute, nothing else
//! in the identity map or the physmap is executable, and the window,
//! where the kernel maps code at run time, never maps a page both
//! writable and executable.
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
//!   (`physmap_base + pa`) after paging is on; `PhysmapTables` answers only
//!   for page-aligned RAM of the device tree below `PHYSMAP_SIZE`, which the
//!   physmap gigapages cover.
//! - INV-MMU-2: the tables in the image (root, identity, image and
//!   physmap tables) are written at boot before paging is on and any
//!   secondary starts, and never change afterwards; every later edit
//!   (window root entries and the tables below them) happens under
//!   [`PtLock`] with interrupts masked, and allocates nothing: table
//!   frames come from the caller's `TableFrames` (INV-HAL-2).
//! - INV-MMU-3: every hart runs with the one `satp` [`enable`] returned
//!   (the secondaries take it from their blocks), so every walk of the
//!   tree is in the mode it was built for (INV-PT-5).

use core::fmt;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};

use kernel_core::hal::{HalError, PAGE_SIZE, Perms, PhysRange, TableFrames, TlbFlush, VirtRange};

use crate::dt::MAX_RAM_RANGES;
use crate::fixed::FixedVec;
use crate::layout::{self, GIB, IDENTITY_LIMIT, ImageLayout, MIB, PHYSMAP_SIZE, VirtLayout};
use crate::pagetable::{self, ENTRIES, Mode, PageTable, Table, TableMemory};
use crate::{cpu, csr, sbi};

/// Pages flushed one `sfence.vma` at a time; larger flushes drop the TLB.
const FLUSH_PAGES_ONE_BY_ONE: usize = 32;

/// Level-0 tables in the image for the image's 4 KiB pages: each covers
/// 2 MiB, so images up to 64 MiB (less the part of the first 2 MiB block
/// below it) can be mapped.
pub const IMAGE_TABLES: usize = 32;

const MEGA: u64 = 2 * MIB;

/// One page table in the image (so it exists before any allocator).
#[repr(C, align(4096))]
struct StaticTable(Table);

impl StaticTable {
    const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; ENTRIES])
    }

    fn pa(&self) -> u64 {
        // The image runs identity mapped: the static's address is physical.
        core::ptr::from_ref(self) as u64
    }

    fn clear(&self) {
        for e in &self.0 {
            e.store(0, Ordering::Relaxed);
        }
    }
}

/// The root table.
static ROOT: StaticTable = StaticTable::new();
/// Sv48 only: the level-2 table of the identity map (root entry 0).
static IDENTITY_L2: StaticTable = StaticTable::new();
/// Sv48 only: the level-2 table of the physmap.
static PHYSMAP_L2: StaticTable = StaticTable::new();
/// The 2 MiB entries of the gigapage that holds the image.
static IMAGE_L1: StaticTable = StaticTable::new();
/// The 4 KiB entries of the 2 MiB blocks the image touches.
static IMAGE_L0: [StaticTable; IMAGE_TABLES] = [const { StaticTable::new() }; IMAGE_TABLES];

/// Why the boot-time tables cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// `link.ld`'s section symbols are out of order or unaligned.
    BadImageLayout,
    /// The image crosses a gigapage boundary or lies above the identity map.
    ImageNotInOneGigapage,
    /// The image touches more 2 MiB blocks than [`IMAGE_TABLES`].
    ImageTooBig {
        /// Level-0 tables the image needs.
        needs: usize,
    },
    /// The hart took neither Sv48 nor Sv39.
    NoPaging,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadImageLayout => write!(f, "the image's sections are not page aligned in order"),
            Self::ImageNotInOneGigapage => {
                write!(f, "the image is not inside one gigapage below 4 GiB")
            }
            Self::ImageTooBig { needs } => write!(
                f,
                "the image needs {needs} page tables for its 4 KiB pages, the image holds {IMAGE_TABLES}"
            ),
            Self::NoPaging => write!(f, "the hart takes neither Sv48 nor Sv39"),
        }
    }
}

/// RAM reachable through the physmap (INV-MMU-1).
pub struct PhysmapTables {
    ram: FixedVec<PhysRange, MAX_RAM_RANGES>,
    physmap_base: usize,
}

impl PhysmapTables {
    /// Page-table access over the device tree's RAM (clipped to the
    /// physmap), through the physmap at `physmap_base`.
    pub fn new(ram: FixedVec<PhysRange, MAX_RAM_RANGES>, physmap_base: usize) -> Self {
        Self { ram, physmap_base }
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
        Some(unsafe { &*((self.physmap_base + pa as usize) as *const Table) })
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
    virt: VirtLayout,
}

/// Paging as [`enable`] switched it on.
#[derive(Clone, Copy, Debug)]
pub struct Paging {
    /// The `satp` value every hart uses (INV-MMU-3).
    pub satp: u64,
    /// Where the physmap and the window lie.
    pub virt: VirtLayout,
}

/// Build the boot-time tables for `mode` (INV-MMU-2; paging off, boot hart
/// only) and return the `satp` value that selects them.
fn build(mode: Mode, ram: &[PhysRange], image: &ImageLayout) -> Result<u64, BuildError> {
    if !image.is_consistent() {
        return Err(BuildError::BadImageLayout);
    }
    let giga = layout::align_down(image.start, GIB);
    if image.end > IDENTITY_LIMIT || layout::align_down(image.end - 1, GIB) != giga {
        return Err(BuildError::ImageNotInOneGigapage);
    }
    let first = layout::align_down(image.start, MEGA);
    let last = layout::align_up(image.end, MEGA).unwrap_or(u64::MAX);
    let needs = ((last - first) / MEGA) as usize;
    if needs > IMAGE_TABLES {
        return Err(BuildError::ImageTooBig { needs });
    }
    for t in [&ROOT, &IDENTITY_L2, &PHYSMAP_L2, &IMAGE_L1]
        .into_iter()
        .chain(IMAGE_L0.iter())
    {
        t.clear();
    }
    let virt = VirtLayout::of(mode);
    let root = &ROOT.0;
    // The level-2 tables: the root itself under Sv39, tables of their own
    // under one root entry each under Sv48.
    let (identity, physmap) = match mode {
        Mode::Sv39 => (root, root),
        Mode::Sv48 => {
            root[0].store(pagetable::pointer(IDENTITY_L2.pa()), Ordering::Relaxed);
            let at = pagetable::vpn(virt.physmap_base, 3);
            root[at].store(pagetable::pointer(PHYSMAP_L2.pa()), Ordering::Relaxed);
            (&IDENTITY_L2.0, &PHYSMAP_L2.0)
        }
    };
    let rw = Perms::READ_WRITE;
    for g in 0..IDENTITY_LIMIT / GIB {
        let pa = g * GIB;
        let pte = if pa == giga {
            pagetable::pointer(IMAGE_L1.pa())
        } else {
            pagetable::huge_leaf(pa, rw)
        };
        identity[g as usize].store(pte, Ordering::Relaxed);
    }
    for (j, entry) in IMAGE_L1.0.iter().enumerate() {
        let block = giga + j as u64 * MEGA;
        if !(first..last).contains(&block) {
            entry.store(pagetable::huge_leaf(block, rw), Ordering::Relaxed);
            continue;
        }
        let table = &IMAGE_L0[((block - first) / MEGA) as usize];
        for (i, pte) in table.0.iter().enumerate() {
            let pa = block + (i * PAGE_SIZE) as u64;
            if let Some(perms) = image.page_perms(pa) {
                pte.store(pagetable::leaf(pa, perms), Ordering::Relaxed);
            }
        }
        entry.store(pagetable::pointer(table.pa()), Ordering::Relaxed);
    }
    for r in ram {
        let start = layout::align_down(r.start.0, GIB);
        let end = r.end().min(PHYSMAP_SIZE);
        let mut g = start;
        while g < end {
            let va = virt.physmap_base + g as usize;
            physmap[pagetable::vpn(va, 2)].store(pagetable::huge_leaf(g, rw), Ordering::Relaxed);
            g += GIB;
        }
    }
    Ok(mode.satp(ROOT.pa()))
}

/// Build the boot-time tables and switch paging on (boot hart only, paging
/// off, before any secondary starts): Sv48 when the hart takes it, else
/// Sv39. The probe is the switch itself: `satp` is WARL, so a write with
/// a mode the hart lacks leaves it unchanged (still Bare), and the tables
/// are rebuilt for Sv39. `ram` is the device tree's RAM, `image` the
/// linked sections.
///
/// # Errors
/// [`BuildError`] when the image cannot be mapped; paging is still off.
pub fn enable(ram: &[PhysRange], image: &ImageLayout) -> Result<Paging, BuildError> {
    for mode in [Mode::Sv48, Mode::Sv39] {
        let satp = build(mode, ram, image)?;
        // SAFETY: the tables identity-map 0..4 GiB, which holds this image
        // (its text executable, its data and stacks writable), the heap,
        // the device tree and the devices in use; paging is off, so a mode
        // the hart lacks leaves `satp` Bare and nothing changes.
        unsafe { csr::write_satp(satp) };
        if csr::read_satp() == satp {
            return Ok(Paging {
                satp,
                virt: VirtLayout::of(mode),
            });
        }
    }
    // Every RV64 hart with paging has Sv39; one without paging gets here.
    Err(BuildError::NoPaging)
}

fn root_pa() -> u64 {
    ROOT.pa()
}

fn check_range(window: VirtRange, va: usize, len: usize) -> Result<(), HalError> {
    if !va.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) {
        return Err(HalError::Misaligned);
    }
    let end = va.checked_add(len).ok_or(HalError::OutOfRange)?;
    if va < window.start || end > window.end() {
        return Err(HalError::OutOfRange);
    }
    Ok(())
}

impl KernelTables {
    /// The live tables, laid out as `virt` (what [`enable`] chose); `ram`
    /// as for [`PhysmapTables::new`].
    pub fn new(ram: FixedVec<PhysRange, MAX_RAM_RANGES>, virt: VirtLayout) -> Self {
        Self {
            tables: PhysmapTables::new(ram, virt.physmap_base),
            lock: PtLock {
                owner: AtomicUsize::new(0),
            },
            virt,
        }
    }

    /// Where the physmap and the window lie.
    pub fn virt(&self) -> VirtLayout {
        self.virt
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
            .and_then(|_guard| f(&PageTable::new(&self.tables, root_pa(), self.virt.mode)));
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
        check_range(self.virt.window(), va, len)?;
        if !pa.is_multiple_of(PAGE_SIZE as u64) {
            return Err(HalError::Misaligned);
        }
        self.edit(|pt| pt.map(va, pa, len, perms, frames))?;
        Ok(TlbFlush::new(VirtRange { start: va, len }))
    }

    /// `Mmu::unmap`.
    pub fn unmap(&self, va: usize, len: usize) -> Result<TlbFlush, HalError> {
        check_range(self.virt.window(), va, len)?;
        self.edit(|pt| pt.unmap(va, len))?;
        Ok(TlbFlush::new(VirtRange { start: va, len }))
    }

    /// `Mmu::protect`.
    pub fn protect(&self, va: usize, len: usize, perms: Perms) -> Result<TlbFlush, HalError> {
        check_range(self.virt.window(), va, len)?;
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
