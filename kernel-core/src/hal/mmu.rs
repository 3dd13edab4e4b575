//! The MMU: mappings in the kernel's virtual window, TLB and instruction-cache
//! maintenance.
//!
//! All mappings the kernel makes at run time live inside one window the
//! platform reserves ([`Mmu::kernel_window`]). The kernel decides where
//! (placement is policy, in `mem`); the HAL only edits translations.

use super::{Cpus, HalError, PhysAddr};

/// Access permissions of a mapping. The kernel enforces W^X: a mapping is
/// never writable and executable at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Perms {
    /// Loads allowed.
    pub read: bool,
    /// Stores allowed.
    pub write: bool,
    /// Instruction fetch allowed.
    pub execute: bool,
}

impl Perms {
    /// No access at all (a reserved or guard page).
    pub const NONE: Self = Self {
        read: false,
        write: false,
        execute: false,
    };
    /// Read only.
    pub const READ: Self = Self {
        read: true,
        write: false,
        execute: false,
    };
    /// Read and write.
    pub const READ_WRITE: Self = Self {
        read: true,
        write: true,
        execute: false,
    };
    /// Read and execute (published code).
    pub const READ_EXECUTE: Self = Self {
        read: true,
        write: false,
        execute: true,
    };

    /// Whether the permissions obey W^X.
    pub const fn is_wx_safe(self) -> bool {
        !(self.write && self.execute)
    }
}

/// A half-open range of kernel virtual addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtRange {
    /// First byte.
    pub start: usize,
    /// Length in bytes.
    pub len: usize,
}

impl VirtRange {
    /// One past the last byte.
    pub const fn end(&self) -> usize {
        self.start + self.len
    }

    /// Whether `addr` lies in the range.
    pub const fn contains(&self, addr: usize) -> bool {
        addr >= self.start && addr - self.start < self.len
    }
}

/// A pending TLB invalidation of a range. It must be handed to [`Mmu::flush`]
/// before the change is relied upon: other CPUs (and, on riscv, this one) see
/// the new translation only after that.
#[must_use = "a page-table change is visible only after Mmu::flush"]
#[derive(Debug, PartialEq, Eq)]
pub struct TlbFlush {
    range: VirtRange,
}

impl TlbFlush {
    /// A flush obligation for `range`. Only MMU implementations create these.
    pub const fn new(range: VirtRange) -> Self {
        Self { range }
    }

    /// The range whose translations changed.
    pub const fn range(&self) -> VirtRange {
        self.range
    }
}

/// Where an MMU implementation gets and returns the frames of its own
/// page tables. The kernel owns every frame, page tables included; the frame
/// allocator implements this.
///
/// Implementations must follow INV-HAL-2 (no heap allocation, no lock the
/// faulting code may hold), because [`Mmu::map`] runs on the demand-fault
/// path.
pub trait TableFrames {
    /// One zero-filled frame, or `None` when memory is exhausted.
    fn alloc_table(&self) -> Option<PhysAddr>;
    /// Give back a frame obtained from [`TableFrames::alloc_table`].
    fn free_table(&self, frame: PhysAddr);
}

/// Translation of the kernel's virtual window, shared by the machine's
/// CPUs (which the memory manager tells apart to check its lock rules).
pub trait Mmu: Cpus {
    /// The range in which the kernel may create mappings. It is reserved at
    /// boot and nothing else is ever placed in it.
    ///
    /// - hosted: a `PROT_NONE`, `MAP_NORESERVE` reservation made at boot.
    /// - riscv: a range of the upper half above the physmap: 64 TiB under
    ///   Sv48, 64 GiB when the hart only has Sv39.
    fn kernel_window(&self) -> VirtRange;

    /// Map the physically contiguous run `pa..pa + len` at `va` with `perms`.
    ///
    /// Does not flush: the caller hands the returned [`TlbFlush`] to
    /// [`Mmu::flush`].
    ///
    /// - hosted: one `mmap(MAP_FIXED | MAP_SHARED)` of the memfd at offset
    ///   `pa`, so a contiguous run costs one host mapping.
    /// - riscv: writes Sv48 (or Sv39) leaf PTEs, taking intermediate tables from
    ///   `tables`.
    ///
    /// # Errors
    /// [`HalError::Misaligned`] when `va`, `pa` or `len` is not page aligned,
    /// [`HalError::OutOfRange`] when the range leaves the window or `pa` is not
    /// RAM, [`HalError::NoMemory`] when a page table or host mapping cannot be
    /// had. riscv returns [`HalError::AlreadyMapped`] when it meets a valid PTE
    /// (hosted cannot tell and replaces). On error nothing is mapped: pages
    /// mapped before the failure are unmapped again.
    ///
    /// # Safety
    /// The caller owns the frames `pa..pa + len` for as long as they stay
    /// mapped, the range `va..va + len` is unmapped and owned by the caller,
    /// and `perms` obeys W^X.
    unsafe fn map(
        &self,
        va: usize,
        pa: PhysAddr,
        len: usize,
        perms: Perms,
        tables: &dyn TableFrames,
    ) -> Result<TlbFlush, HalError>;

    /// Remove every translation in `va..va + len`. Pages that were not mapped
    /// are skipped. The range stays reserved: later accesses fault.
    ///
    /// Does not flush and does not free the frames that were mapped.
    ///
    /// - hosted: `mmap(MAP_FIXED, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
    ///   MAP_NORESERVE)` over the range, restoring the reservation.
    /// - riscv: clears leaf PTEs (page tables are kept for reuse).
    ///
    /// # Errors
    /// [`HalError::Misaligned`] or [`HalError::OutOfRange`]; the mapping is
    /// unchanged then. hosted may also return [`HalError::NoMemory`] when the
    /// host cannot split its mappings (its map count limit); part of the
    /// range may be unmapped then.
    ///
    /// # Safety
    /// Nothing may use the range after the flush; the caller owns it.
    unsafe fn unmap(&self, va: usize, len: usize) -> Result<TlbFlush, HalError>;

    /// Change the permissions of the mapped range `va..va + len`.
    ///
    /// Does not flush.
    ///
    /// - hosted: `mprotect`.
    /// - riscv: rewrites the permission bits of the leaf PTEs.
    ///
    /// # Errors
    /// [`HalError::Misaligned`], [`HalError::OutOfRange`], or (riscv)
    /// [`HalError::NotMapped`] when a page of the range has no translation;
    /// pages before it have already changed then. hosted cannot tell mapped
    /// from reserved pages (a reserved page given permissions becomes
    /// zero-filled anonymous memory), and returns [`HalError::NoMemory`] when
    /// the host cannot split its mappings.
    ///
    /// # Safety
    /// The caller owns the range, nothing relies on the old permissions
    /// after the flush, and `perms` obeys W^X.
    unsafe fn protect(&self, va: usize, len: usize, perms: Perms) -> Result<TlbFlush, HalError>;

    /// Make a page-table change visible on every CPU.
    ///
    /// - hosted: nothing to do (the host kernel keeps TLBs coherent).
    /// - riscv: `sfence.vma` over the range on this hart and an SBI remote
    ///   `sfence.vma` on every other started hart.
    fn flush(&self, flush: TlbFlush);

    /// Make instructions written to `va..va + len` (already mapped read +
    /// execute and flushed) visible to instruction fetch on every CPU.
    ///
    /// - hosted: nothing on x86_64 (coherent caches); `membarrier` with
    ///   `SYNC_CORE` on aarch64 hosts.
    /// - riscv: `fence.i` on this hart and an SBI remote `fence.i` on every
    ///   other started hart (Zifencei).
    fn sync_icache(&self, va: usize, len: usize);
}
