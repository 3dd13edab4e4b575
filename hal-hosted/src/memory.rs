//! Physical memory: one memfd, mapped once as the direct map.
//!
//! This module owns the memfd that *is* the machine's RAM and its one shared
//! read-write mapping (the direct map). Physical address `pa` is byte `pa` of
//! the memfd; the kernel window ([`crate::mmu`]) maps the same file, so a
//! write through either alias is seen through the other.
//!
//! Invariants:
//! - INV-MEM-1: `base..base + size` is a `MAP_SHARED` read-write mapping of
//!   the whole memfd, made in [`PhysMem::new`] and unmapped only in `Drop`.
//! - INV-MEM-2: `size` is a multiple of the page size, and the memfd is
//!   exactly `size` bytes long (sparse: pages cost nothing until touched).

use core::ffi::c_void;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use kernel_core::hal::{PhysAddr, PhysMemory, PhysRange};
use rustix::fs::{FallocateFlags, MemfdFlags, fallocate, ftruncate, memfd_create};
use rustix::mm::{MapFlags, ProtFlags, mmap, munmap};

use crate::{HostError, Hosted};

/// The machine's RAM.
pub(crate) struct PhysMem {
    fd: OwnedFd,
    base: *mut u8,
    size: u64,
    map: [PhysRange; 1],
}

// SAFETY: `base` points to a shared mapping that lives as long as the value
// (INV-MEM-1); the value itself holds no thread-affine state, and the memory
// behind it is accessed only through raw pointers whose users synchronize.
unsafe impl Send for PhysMem {}
// SAFETY: as for `Send`: every method takes `&self` and only reads fields
// that never change after construction.
unsafe impl Sync for PhysMem {}

impl PhysMem {
    /// Create a sparse memfd of `size` bytes and map it shared.
    /// `size` is validated by the caller (a non-zero multiple of a page).
    pub(crate) fn new(size: u64) -> Result<Self, HostError> {
        let fd = memfd_create("vessel-phys", MemfdFlags::CLOEXEC).map_err(HostError::Memfd)?;
        ftruncate(&fd, size).map_err(HostError::Truncate)?;
        let len = usize::try_from(size).map_err(|_| HostError::BadMemorySize { bytes: size })?;
        // SAFETY: a fresh mapping at an address the host chooses aliases no
        // Rust object; the memfd is `size` bytes long (INV-MEM-2).
        let base = unsafe {
            mmap(
                core::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .map_err(HostError::DirectMap)?;
        Ok(Self {
            fd,
            base: base.cast(),
            size,
            map: [PhysRange {
                start: PhysAddr(0),
                len: size,
            }],
        })
    }

    /// The memfd, for the window's mappings.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Size of RAM in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Whether `pa..pa + len` lies inside RAM.
    pub(crate) fn contains(&self, pa: PhysAddr, len: usize) -> bool {
        (len as u64)
            .checked_add(pa.0)
            .is_some_and(|end| end <= self.size)
    }
}

impl Drop for PhysMem {
    fn drop(&mut self) {
        // SAFETY: INV-MEM-1: the mapping was made in `new` with this length
        // and is unmapped only here; the machine that owns it is being
        // destroyed, so no CPU thread uses it any more. The fd closes after.
        let result = unsafe { munmap(self.base.cast::<c_void>(), self.size as usize) };
        debug_assert!(
            result.is_ok(),
            "munmap of the direct map failed: {result:?}"
        );
    }
}

impl PhysMemory for Hosted {
    fn memory_map(&self) -> &[PhysRange] {
        &self.machine.phys.map
    }

    fn direct_map(&self, pa: PhysAddr) -> Option<*mut u8> {
        let phys = &self.machine.phys;
        if pa.0 < phys.size {
            // `pa < size` and the mapping is `size` bytes long (INV-MEM-1),
            // so the sum stays inside it; wrapping_add needs no unsafe.
            Some(phys.base.wrapping_add(pa.0 as usize))
        } else {
            None
        }
    }

    fn zero(&self, pa: PhysAddr, len: usize) -> bool {
        let phys = &self.machine.phys;
        let Some(end) = pa.0.checked_add(len as u64) else {
            return false;
        };
        if end > phys.size || (len > 0 && pa.0 >= phys.size) {
            return false;
        }
        if len >= PUNCH_AT_LEAST
            && fallocate(
                &phys.fd,
                FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
                pa.0,
                len as u64,
            )
            .is_ok()
        {
            return true;
        }
        // SAFETY: `[pa, pa + len)` lies inside the memfd (checked above),
        // which the direct map covers whole (INV-MEM-1); the caller owns
        // those bytes.
        unsafe { core::ptr::write_bytes(phys.base.add(pa.0 as usize), 0, len) };
        true
    }
}

/// Zeroing this many bytes or more punches a hole in the memfd instead of
/// writing them (`PhysMemory::zero`).
const PUNCH_AT_LEAST: usize = 64 << 10;
