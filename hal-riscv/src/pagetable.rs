//! Sv39 and Sv48 page tables: the PTE encoding and the walks behind
//! `Mmu::map`, `unmap` and `protect`, for three levels (Sv39) or four
//! (Sv48, chosen at boot when the hart has it), generic over how
//! page-table frames are reached ([`TableMemory`]: the physmap on the
//! machine, plain heap memory in the host unit tests).
//!
//! Reference: RISC-V Privileged Architecture, "Sv39: Page-Based 39-bit
//! Virtual-Memory System" and "Sv48: Page-Based 48-bit Virtual-Memory
//! System" (a PTE is `PPN[53:10] | RSW[9:8] | D A G U X W R V`; tables of
//! 512 entries; VPN[i] = va[20+9i:12+9i]; Sv48 adds a fourth level above
//! Sv39's three, with the same PTE format).
//!
//! Invariants:
//! - INV-PT-1: every PTE is read and written as one aligned 64-bit atomic,
//!   so a hardware walker on another hart sees the old or the new entry,
//!   never a mix. Nothing here fences: callers flush (`sfence.vma`).
//! - INV-PT-2: a leaf this module writes has A and D set (no A/D-update
//!   fault whether or not the hart implements Svadu) and G set (one address
//!   space for every hart), and never U.
//! - INV-PT-3: a mapping with no access ([`Perms::NONE`]) is stored with V
//!   clear and the software bit [`PTE_SW_NONE`] set, keeping its frame
//!   number: the hardware faults on it, and `protect`/`unmap`/`map` still
//!   see it as mapped.
//! - INV-PT-4: tables are only added, never freed or replaced: `unmap`
//!   clears leaves and keeps the tables for reuse, so a walker never reads
//!   a freed table.
//! - INV-PT-5: a [`PageTable`] walks exactly [`Mode::levels`] levels, the
//!   mode `satp` selects; the same tree is never walked in the other mode.

use core::sync::atomic::{AtomicU64, Ordering};

use kernel_core::hal::{HalError, PAGE_SIZE, Perms, TableFrames};

/// Entries per table.
pub const ENTRIES: usize = 512;
/// Valid.
pub const PTE_V: u64 = 1 << 0;
/// Readable.
pub const PTE_R: u64 = 1 << 1;
/// Writable.
pub const PTE_W: u64 = 1 << 2;
/// Executable.
pub const PTE_X: u64 = 1 << 3;
/// Global: present in every address space.
pub const PTE_G: u64 = 1 << 5;
/// Accessed.
pub const PTE_A: u64 = 1 << 6;
/// Dirty.
pub const PTE_D: u64 = 1 << 7;
/// Software bit (RSW, bit 8): a mapping with no access (INV-PT-3).
pub const PTE_SW_NONE: u64 = 1 << 8;
const PPN_SHIFT: u32 = 10;
const PPN_MASK: u64 = (1 << 44) - 1;

/// A translation mode: how many levels a walk takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Three levels, 39-bit virtual addresses (`satp.MODE` = 8).
    Sv39,
    /// Four levels, 48-bit virtual addresses (`satp.MODE` = 9).
    Sv48,
}

impl Mode {
    /// Levels of a walk (3 or 4); the root is level `levels() - 1`.
    pub const fn levels(self) -> usize {
        match self {
            Self::Sv39 => 3,
            Self::Sv48 => 4,
        }
    }

    /// The `satp.MODE` field value.
    pub const fn satp_mode(self) -> u64 {
        match self {
            Self::Sv39 => 8,
            Self::Sv48 => 9,
        }
    }

    /// The mode's name, as the privileged spec spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sv39 => "Sv39",
            Self::Sv48 => "Sv48",
        }
    }

    /// Whether `va` is canonical in this mode (the bits above the top
    /// translated bit copy it).
    pub const fn is_canonical(self, va: usize) -> bool {
        let top = (va as i64) >> (12 + 9 * self.levels() - 1);
        top == 0 || top == -1
    }

    /// The `satp` value that selects this mode with root table `root_pa`,
    /// ASID 0.
    pub const fn satp(self, root_pa: u64) -> u64 {
        self.satp_mode() << 60 | (root_pa >> 12)
    }
}

const PAGE: usize = PAGE_SIZE;

/// One page table.
pub type Table = [AtomicU64; ENTRIES];

/// Access to page-table frames by physical address.
///
/// # Safety
/// For every `pa` for which [`TableMemory::table`] returns `Some`, the
/// reference is to the 4 KiB frame at `pa`, valid for as long as `self`,
/// and that memory is accessed by software only through such references
/// (atomically, INV-PT-1).
pub unsafe trait TableMemory {
    /// The table in frame `pa`, or `None` when that frame cannot be reached
    /// (not RAM, not page aligned).
    fn table(&self, pa: u64) -> Option<&Table>;
}

/// VPN\[`level`\] of `va`.
pub const fn vpn(va: usize, level: usize) -> usize {
    (va >> (12 + 9 * level)) & (ENTRIES - 1)
}

/// Bytes one entry at `level` covers (4 KiB, 2 MiB, 1 GiB, 512 GiB).
pub const fn level_size(level: usize) -> usize {
    PAGE << (9 * level)
}

/// The physical address a PTE points at (leaf frame or next table).
pub const fn pte_pa(pte: u64) -> u64 {
    ((pte >> PPN_SHIFT) & PPN_MASK) << 12
}

/// Whether a valid PTE is a leaf (as opposed to a pointer to a table).
pub const fn is_leaf(pte: u64) -> bool {
    pte & (PTE_R | PTE_W | PTE_X) != 0
}

/// Whether a level-0 PTE holds a mapping, accessible or not (INV-PT-3).
pub const fn is_mapping(pte: u64) -> bool {
    (pte & PTE_V != 0 && is_leaf(pte)) || pte & PTE_SW_NONE != 0
}

/// The flag bits of a leaf with `perms` (INV-PT-2, INV-PT-3). The spec
/// reserves "writable but not readable", so write implies read.
pub const fn leaf_flags(perms: Perms) -> u64 {
    if !perms.read && !perms.write && !perms.execute {
        return PTE_SW_NONE;
    }
    let mut f = PTE_V | PTE_G | PTE_A | PTE_D;
    if perms.read || perms.write {
        f |= PTE_R;
    }
    if perms.write {
        f |= PTE_W;
    }
    if perms.execute {
        f |= PTE_X;
    }
    f
}

/// A leaf PTE mapping the frame at `pa` with `perms`.
pub const fn leaf(pa: u64, perms: Perms) -> u64 {
    ((pa >> 12) << PPN_SHIFT) | leaf_flags(perms)
}

/// The permissions of a leaf PTE.
#[cfg(test)]
pub const fn perms_of(pte: u64) -> Perms {
    if pte & PTE_V == 0 {
        return Perms::NONE;
    }
    Perms {
        read: pte & PTE_R != 0,
        write: pte & PTE_W != 0,
        execute: pte & PTE_X != 0,
    }
}

/// A huge leaf (a 1 GiB gigapage at level 2, a 2 MiB megapage at level 1)
/// at the suitably aligned `pa` with `perms`: the encoding is a 4 KiB
/// leaf's; the level the entry sits at gives its size.
pub const fn huge_leaf(pa: u64, perms: Perms) -> u64 {
    leaf(pa, perms)
}

/// A non-leaf PTE pointing at the table in frame `pa`.
pub const fn pointer(pa: u64) -> u64 {
    ((pa >> 12) << PPN_SHIFT) | PTE_V
}

/// Where a walk for one address ended.
enum Slot<'t> {
    /// The level-0 entry of the address.
    Leaf(&'t AtomicU64),
    /// No table at `level - 1`: the entry at `level` is not valid.
    Absent {
        /// The level whose entry is invalid (the root's down to 1).
        level: usize,
    },
}

/// A page-table tree rooted at one table, edited through `M`.
///
/// Methods take `&self` and do no locking: the caller serialises edits
/// (the HAL holds its page-table lock).
pub struct PageTable<'m, M: TableMemory> {
    mem: &'m M,
    root: u64,
    mode: Mode,
}

impl<'m, M: TableMemory> PageTable<'m, M> {
    /// The tree whose root table is the frame at `root`, walked in `mode`
    /// (INV-PT-5).
    pub const fn new(mem: &'m M, root: u64, mode: Mode) -> Self {
        Self { mem, root, mode }
    }

    fn table(&self, pa: u64) -> Result<&'m Table, HalError> {
        self.mem.table(pa).ok_or(HalError::OutOfRange)
    }

    /// Walk to the level-0 entry of `va` without creating tables.
    fn find(&self, va: usize) -> Result<Slot<'m>, HalError> {
        let mut table = self.table(self.root)?;
        for level in (1..self.mode.levels()).rev() {
            let pte = table[vpn(va, level)].load(Ordering::Relaxed);
            if pte & PTE_V == 0 {
                return Ok(Slot::Absent { level });
            }
            if is_leaf(pte) {
                // A huge page: not something this module splits.
                return Err(HalError::Unsupported);
            }
            table = self.table(pte_pa(pte))?;
        }
        Ok(Slot::Leaf(&table[vpn(va, 0)]))
    }

    /// Walk to the level-0 entry of `va`, adding missing tables from
    /// `frames` (INV-PT-4: added tables stay).
    fn find_or_create(
        &self,
        va: usize,
        frames: &dyn TableFrames,
    ) -> Result<&'m AtomicU64, HalError> {
        let mut table = self.table(self.root)?;
        for level in (1..self.mode.levels()).rev() {
            let entry = &table[vpn(va, level)];
            let pte = entry.load(Ordering::Relaxed);
            let next = if pte & PTE_V == 0 {
                let frame = frames.alloc_table().ok_or(HalError::NoMemory)?;
                let Some(new) = self.mem.table(frame.0) else {
                    frames.free_table(frame);
                    return Err(HalError::NoMemory);
                };
                // The allocator promises zeroed frames; a stale entry here
                // would be a wild mapping, so make sure.
                for e in new {
                    e.store(0, Ordering::Relaxed);
                }
                entry.store(pointer(frame.0), Ordering::Relaxed);
                new
            } else if is_leaf(pte) {
                return Err(HalError::Unsupported);
            } else {
                self.table(pte_pa(pte))?
            };
            table = next;
        }
        Ok(&table[vpn(va, 0)])
    }

    /// Map `len / 4096` pages from `va` to the frames from `pa` with
    /// `perms`. Arguments must be page aligned (the caller checks).
    ///
    /// # Errors
    /// [`HalError::AlreadyMapped`] at a page that holds a mapping,
    /// [`HalError::NoMemory`] when a table frame cannot be had. Either way
    /// the pages this call mapped are cleared again (tables it added stay).
    pub fn map(
        &self,
        va: usize,
        pa: u64,
        len: usize,
        perms: Perms,
        frames: &dyn TableFrames,
    ) -> Result<(), HalError> {
        let pages = len / PAGE;
        for i in 0..pages {
            let at = va + i * PAGE;
            let result = self.find_or_create(at, frames).and_then(|slot| {
                if is_mapping(slot.load(Ordering::Relaxed)) {
                    Err(HalError::AlreadyMapped)
                } else {
                    slot.store(leaf(pa + (i * PAGE) as u64, perms), Ordering::Relaxed);
                    Ok(())
                }
            });
            if let Err(e) = result {
                self.clear(va, i);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Clear the first `pages` leaves from `va` (a rollback of `map`).
    fn clear(&self, va: usize, pages: usize) {
        for i in 0..pages {
            if let Ok(Slot::Leaf(slot)) = self.find(va + i * PAGE) {
                slot.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Clear every leaf in `va..va + len`, skipping holes a whole table at
    /// a time.
    ///
    /// # Errors
    /// [`HalError::Unsupported`] at a huge page (none exist in the kernel
    /// window); leaves before it are cleared.
    pub fn unmap(&self, va: usize, len: usize) -> Result<(), HalError> {
        let end = va.saturating_add(len);
        let mut at = va;
        while at < end {
            match self.find(at)? {
                Slot::Leaf(slot) => {
                    slot.store(0, Ordering::Relaxed);
                    at = at.saturating_add(PAGE);
                }
                Slot::Absent { level } => {
                    let size = level_size(level);
                    at = (at & !(size - 1)).saturating_add(size);
                }
            }
        }
        Ok(())
    }

    /// Rewrite the permissions of every page in `va..va + len`, keeping
    /// the frames.
    ///
    /// # Errors
    /// [`HalError::NotMapped`] at the first page without a mapping; pages
    /// before it have changed.
    pub fn protect(&self, va: usize, len: usize, perms: Perms) -> Result<(), HalError> {
        for i in 0..len / PAGE {
            match self.find(va + i * PAGE)? {
                Slot::Leaf(slot) if is_mapping(slot.load(Ordering::Relaxed)) => {
                    let old = slot.load(Ordering::Relaxed);
                    slot.store(leaf(pte_pa(old), perms), Ordering::Relaxed);
                }
                _ => return Err(HalError::NotMapped),
            }
        }
        Ok(())
    }

    /// The frame and permissions `va`'s page is mapped to, if any.
    #[cfg(test)]
    pub fn translate(&self, va: usize) -> Option<(u64, Perms)> {
        match self.find(va).ok()? {
            Slot::Leaf(slot) => {
                let pte = slot.load(Ordering::Relaxed);
                is_mapping(pte).then(|| (pte_pa(pte), perms_of(pte)))
            }
            Slot::Absent { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{SV39_WINDOW_BASE, SV39_WINDOW_SIZE, SV48_WINDOW_BASE, SV48_WINDOW_SIZE};
    use core::cell::Cell;
    use kernel_core::hal::PhysAddr;
    use std::boxed::Box;
    use std::vec::Vec;

    /// Fake physical memory: `frames` page tables at `BASE + i * 4096`,
    /// frame 0 the root; a bump allocator with a limit and a free count.
    struct Mem {
        frames: Vec<Box<Table>>,
        next: Cell<usize>,
        limit: Cell<usize>,
        freed: Cell<usize>,
    }

    const BASE: u64 = 0x8000_0000;

    impl Mem {
        fn new(frames: usize) -> Self {
            let frames = (0..frames)
                .map(|_| Box::new([const { AtomicU64::new(0) }; ENTRIES]))
                .collect();
            Self {
                frames,
                next: Cell::new(1),
                limit: Cell::new(usize::MAX),
                freed: Cell::new(0),
            }
        }
        fn used(&self) -> usize {
            self.next.get() - 1
        }
        fn pt(&self) -> PageTable<'_, Self> {
            PageTable::new(self, BASE, Mode::Sv39)
        }
        fn pt48(&self) -> PageTable<'_, Self> {
            PageTable::new(self, BASE, Mode::Sv48)
        }
    }

    // SAFETY: frames are boxed and never moved or dropped while `self` lives.
    unsafe impl TableMemory for Mem {
        fn table(&self, pa: u64) -> Option<&Table> {
            if !pa.is_multiple_of(PAGE as u64) || pa < BASE {
                return None;
            }
            self.frames
                .get(((pa - BASE) / PAGE as u64) as usize)
                .map(|b| &**b)
        }
    }

    impl TableFrames for Mem {
        fn alloc_table(&self) -> Option<PhysAddr> {
            let n = self.next.get();
            if n >= self.frames.len() || self.used() >= self.limit.get() {
                return None;
            }
            self.next.set(n + 1);
            Some(PhysAddr(BASE + (n * PAGE) as u64))
        }
        fn free_table(&self, _frame: PhysAddr) {
            self.freed.set(self.freed.get() + 1);
        }
    }

    const W: usize = SV39_WINDOW_BASE;
    const W48: usize = SV48_WINDOW_BASE;
    const PA: u64 = 0x9000_0000;

    #[test]
    fn pte_encoding_follows_the_spec_inv_pt_2() {
        let rw = leaf(0x8765_4000, Perms::READ_WRITE);
        assert_eq!(rw & 0x3ff, PTE_V | PTE_R | PTE_W | PTE_G | PTE_A | PTE_D);
        assert_eq!(rw >> 10, 0x8765_4000 >> 12);
        assert_eq!(pte_pa(rw), 0x8765_4000);
        let rx = leaf(0x1000, Perms::READ_EXECUTE);
        assert_eq!(rx & 0xff, PTE_V | PTE_R | PTE_X | PTE_G | PTE_A | PTE_D);
        assert_eq!(rx & 1 << 4, 0, "never U");
        // W without R is reserved: write implies read.
        let w = leaf(
            0,
            Perms {
                read: false,
                write: true,
                execute: false,
            },
        );
        assert_eq!(w & (PTE_R | PTE_W), PTE_R | PTE_W);
        assert_eq!(perms_of(rw), Perms::READ_WRITE);
        assert_eq!(pointer(0x8000_1000), (0x8000_1000 >> 12) << 10 | PTE_V);
        assert!(!is_leaf(pointer(0x8000_1000)));
    }

    #[test]
    fn no_access_pages_are_invalid_but_mapped_inv_pt_3() {
        let none = leaf(0xabc0_0000, Perms::NONE);
        assert_eq!(none & PTE_V, 0);
        assert!(is_mapping(none));
        assert_eq!(pte_pa(none), 0xabc0_0000);
        assert_eq!(perms_of(none), Perms::NONE);
        assert!(!is_mapping(0));
    }

    #[test]
    fn address_arithmetic() {
        assert_eq!(vpn(W, 2), 320);
        assert_eq!(vpn(crate::layout::SV39_PHYSMAP_BASE, 2), 256);
        assert_eq!(vpn(0x8020_0000, 2), 2);
        assert_eq!(vpn(0x8020_0000, 1), 1);
        assert_eq!(vpn(0x8020_3000, 0), 3);
        let sv39 = Mode::Sv39;
        assert!(sv39.is_canonical(W) && sv39.is_canonical(0x3f_ffff_ffff));
        assert!(sv39.is_canonical(usize::MAX));
        assert!(!sv39.is_canonical(0x40_0000_0000) && !sv39.is_canonical(0xffff_ff00_0000_0000));
        assert!(sv39.is_canonical(W + SV39_WINDOW_SIZE - 1));
        let sv48 = Mode::Sv48;
        assert!(sv48.is_canonical(0xffff_ff00_0000_0000) && sv48.is_canonical(0x7fff_ffff_ffff));
        assert!(!sv48.is_canonical(0x8000_0000_0000) && !sv48.is_canonical(0xfff0_0000_0000_0000));
        assert_eq!(vpn(W48, 3), 320);
        assert_eq!(vpn(crate::layout::SV48_PHYSMAP_BASE, 3), 256);
        assert_eq!(sv39.satp(0x8020_5000), 8 << 60 | 0x80205);
        assert_eq!(sv48.satp(0x8020_5000), 9 << 60 | 0x80205);
        assert_eq!((sv39.levels(), sv48.levels()), (3, 4));
        assert_eq!((sv39.name(), sv48.name()), ("Sv39", "Sv48"));
        assert_eq!(level_size(1), 2 << 20);
        assert_eq!(level_size(3), 512 << 30);
        assert_eq!(huge_leaf(0x8000_0000, Perms::READ_WRITE) >> 10, 0x80000);
    }

    #[test]
    fn map_then_translate() {
        let mem = Mem::new(8);
        let pt = mem.pt();
        pt.map(W + 0x5000, PA, 3 * PAGE, Perms::READ_WRITE, &mem)
            .unwrap();
        assert_eq!(mem.used(), 2, "one level-1 and one level-0 table");
        for i in 0..3 {
            assert_eq!(
                pt.translate(W + 0x5000 + i * PAGE),
                Some((PA + (i * PAGE) as u64, Perms::READ_WRITE))
            );
        }
        assert_eq!(pt.translate(W + 0x4000), None);
        assert_eq!(pt.translate(W + 0x8000), None);
        // The root entry points at the level-1 table.
        let root = mem.table(BASE).unwrap();
        assert_eq!(
            pte_pa(root[320].load(Ordering::Relaxed)),
            BASE + PAGE as u64
        );
    }

    #[test]
    fn map_across_a_2mib_boundary_adds_a_table() {
        let mem = Mem::new(8);
        let pt = mem.pt();
        let va = W + (2 << 20) - PAGE;
        pt.map(va, PA, 2 * PAGE, Perms::READ_EXECUTE, &mem).unwrap();
        assert_eq!(mem.used(), 3);
        assert_eq!(
            pt.translate(va + PAGE),
            Some((PA + PAGE as u64, Perms::READ_EXECUTE))
        );
    }

    #[test]
    fn already_mapped_rolls_back_this_call_only() {
        let mem = Mem::new(8);
        let pt = mem.pt();
        pt.map(W + 0x2000, PA, PAGE, Perms::READ, &mem).unwrap();
        let err = pt.map(W, 0xa000_0000, 4 * PAGE, Perms::READ_WRITE, &mem);
        assert_eq!(err, Err(HalError::AlreadyMapped));
        assert_eq!(pt.translate(W), None);
        assert_eq!(pt.translate(W + PAGE), None);
        assert_eq!(pt.translate(W + 0x2000), Some((PA, Perms::READ)));
        // A no-access mapping counts as mapped too.
        pt.map(W + 0x9000, PA, PAGE, Perms::NONE, &mem).unwrap();
        assert_eq!(
            pt.map(W + 0x9000, PA, PAGE, Perms::READ, &mem),
            Err(HalError::AlreadyMapped)
        );
    }

    #[test]
    fn out_of_tables_rolls_back() {
        let mem = Mem::new(8);
        mem.limit.set(2);
        let pt = mem.pt();
        let va = W + (2 << 20) - 2 * PAGE;
        assert_eq!(
            pt.map(va, PA, 4 * PAGE, Perms::READ_WRITE, &mem),
            Err(HalError::NoMemory)
        );
        assert_eq!(pt.translate(va), None);
        assert_eq!(pt.translate(va + PAGE), None);
    }

    #[test]
    fn unreachable_table_frame_is_returned() {
        struct Bad<'a>(&'a Mem);
        impl TableFrames for Bad<'_> {
            fn alloc_table(&self) -> Option<PhysAddr> {
                Some(PhysAddr(0x1000))
            }
            fn free_table(&self, frame: PhysAddr) {
                self.0.free_table(frame);
            }
        }
        let mem = Mem::new(2);
        assert_eq!(
            mem.pt().map(W, PA, PAGE, Perms::READ, &Bad(&mem)),
            Err(HalError::NoMemory)
        );
        assert_eq!(mem.freed.get(), 1);
    }

    #[test]
    fn unmap_clears_and_skips_holes_quickly() {
        let mem = Mem::new(8);
        let pt = mem.pt();
        pt.map(W + 0x1000, PA, 2 * PAGE, Perms::READ_WRITE, &mem)
            .unwrap();
        pt.map(W + (5 << 30), PA, PAGE, Perms::READ_WRITE, &mem)
            .unwrap();
        // The whole 64 GiB window: must skip absent tables, not walk 16M pages.
        pt.unmap(W, SV39_WINDOW_SIZE).unwrap();
        assert_eq!(pt.translate(W + 0x1000), None);
        assert_eq!(pt.translate(W + 0x2000), None);
        assert_eq!(pt.translate(W + (5 << 30)), None);
        // Tables stay (INV-PT-4) and are reused.
        let used = mem.used();
        pt.map(W + 0x1000, PA, PAGE, Perms::READ, &mem).unwrap();
        assert_eq!(mem.used(), used);
    }

    #[test]
    fn protect_keeps_frames_and_reports_holes() {
        let mem = Mem::new(8);
        let pt = mem.pt();
        pt.map(W, PA, 2 * PAGE, Perms::READ_WRITE, &mem).unwrap();
        pt.protect(W, 2 * PAGE, Perms::NONE).unwrap();
        assert_eq!(
            pt.translate(W + PAGE),
            Some((PA + PAGE as u64, Perms::NONE))
        );
        pt.protect(W, 2 * PAGE, Perms::READ_EXECUTE).unwrap();
        assert_eq!(pt.translate(W), Some((PA, Perms::READ_EXECUTE)));
        // A hole after the first page: the first page has changed already.
        assert_eq!(
            pt.protect(W, 3 * PAGE, Perms::READ),
            Err(HalError::NotMapped)
        );
        assert_eq!(pt.translate(W), Some((PA, Perms::READ)));
        // No table at all.
        assert_eq!(
            pt.protect(W + (9 << 30), PAGE, Perms::READ),
            Err(HalError::NotMapped)
        );
    }

    #[test]
    fn huge_pages_are_not_split() {
        let mem = Mem::new(4);
        let root = mem.table(BASE).unwrap();
        root[320].store(huge_leaf(0x8000_0000, Perms::READ_WRITE), Ordering::Relaxed);
        let pt = mem.pt();
        assert_eq!(
            pt.map(W, PA, PAGE, Perms::READ, &mem),
            Err(HalError::Unsupported)
        );
        assert_eq!(pt.unmap(W, PAGE), Err(HalError::Unsupported));
        assert_eq!(pt.translate(W), None);
    }

    #[test]
    fn sv48_walks_four_levels() {
        let mem = Mem::new(16);
        let pt = mem.pt48();
        let far = W48 + (3 << 40) + 0x7000;
        pt.map(far, PA, 2 * PAGE, Perms::READ_WRITE, &mem).unwrap();
        assert_eq!(mem.used(), 3, "one level-2, one level-1, one level-0 table");
        assert_eq!(
            pt.translate(far + PAGE),
            Some((PA + PAGE as u64, Perms::READ_WRITE))
        );
        assert_eq!(pt.translate(far - PAGE), None);
        let root = mem.table(BASE).unwrap();
        assert_eq!(
            pte_pa(root[vpn(far, 3)].load(Ordering::Relaxed)),
            BASE + PAGE as u64
        );
        // Another root entry: three more tables.
        pt.map(W48, PA, PAGE, Perms::READ, &mem).unwrap();
        assert_eq!(mem.used(), 6);
        // The whole 64 TiB window, skipping absent tables at every level.
        pt.unmap(W48, SV48_WINDOW_SIZE).unwrap();
        assert_eq!(pt.translate(far), None);
        assert_eq!(pt.translate(W48), None);
        pt.protect(far, PAGE, Perms::READ).unwrap_err();
        // A huge leaf at level 3 or 2 is not split.
        root[vpn(W48, 3) + 1].store(huge_leaf(0, Perms::READ_WRITE), Ordering::Relaxed);
        assert_eq!(
            pt.map(W48 + (512 << 30), PA, PAGE, Perms::READ, &mem),
            Err(HalError::Unsupported)
        );
    }
}
