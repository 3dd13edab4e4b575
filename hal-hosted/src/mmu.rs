//! The MMU: the kernel window and its host mappings.
//!
//! This module owns the kernel window: one `PROT_NONE`, `MAP_NORESERVE`
//! anonymous reservation made when the machine is built. A mapping is a
//! `mmap(MAP_FIXED | MAP_SHARED)` (executable: `MAP_PRIVATE`, INV-MMU-3) of
//! the memfd ([`crate::memory`]) over part
//! of it; an unmapping puts the reservation back.
//!
//! Invariants:
//! - INV-MMU-1: `base..base + len` is reserved for this machine from
//!   [`Window::new`] until `Drop`; every `mmap`/`mprotect` this module makes
//!   lies inside it (checked by [`Window::check`] first), so nothing outside
//!   the window is ever replaced.
//! - INV-MMU-2: `base` is aligned to [`WINDOW_ALIGN`] and `len` is a multiple
//!   of the page size.
//! - INV-MMU-3: an executable mapping is `MAP_PRIVATE` (every other one is
//!   `MAP_SHARED`): Linux lets a debugger write breakpoints (`ptrace`,
//!   `/proc/PID/mem`) into a read-only private mapping, copying the page,
//!   but never into a read-only shared one. The page is the memfd's until
//!   someone writes through the mapping, which W^X forbids the kernel while
//!   it is executable; kernel code is never made writable in place (code
//!   objects are unmapped, `wasm::code` INV-CODE-1), since a writable
//!   private mapping would no longer alias the frame.
//!
//! The host cannot tell a mapped page from a reserved one cheaply, so `map`
//! replaces whatever was there and `protect` does not report unmapped pages
//! (the trait documents both as hosted behaviour).

use core::ffi::c_void;

use kernel_core::hal::{
    HalError, Mmu, PAGE_SIZE, Perms, PhysAddr, TableFrames, TlbFlush, VirtRange,
};
use rustix::io::Errno;
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags, mmap, mmap_anonymous, mprotect, munmap};

use crate::{HostError, Hosted};

/// Alignment of the window's base: 1 GiB, so that the kernel may place
/// gigapage-aligned regions as it would on riscv (Sv39 gigapages).
pub const WINDOW_ALIGN: usize = 1 << 30;

/// The kernel's virtual window.
pub(crate) struct Window {
    base: usize,
    len: usize,
}

/// Where a deterministic machine asks the host to put its window (16 TiB,
/// far from the host's heap and libraries), so that the kernel's addresses,
/// and any output that shows them, repeat from run to run. Only a hint: a
/// second machine in the process, or a host that has something there, gets
/// the window elsewhere.
pub(crate) const DETERMINISTIC_WINDOW_HINT: usize = 1 << 44;

impl Window {
    /// Reserve `len` bytes (a validated multiple of the page size) aligned to
    /// [`WINDOW_ALIGN`], at `hint` when that range is free (never replacing
    /// a mapping), else where the host likes.
    pub(crate) fn new(len: usize, hint: Option<usize>) -> Result<Self, HostError> {
        let padded = len
            .checked_add(WINDOW_ALIGN)
            .ok_or(HostError::BadWindowSize { bytes: len })?;
        let addr = hint.map_or(core::ptr::null_mut(), |h| h as *mut c_void);
        let raw = reserve(addr, padded, false).map_err(HostError::ReserveWindow)? as usize;
        let base = raw.next_multiple_of(WINDOW_ALIGN);
        let head = base - raw;
        let tail = padded - head - len;
        // SAFETY: both trims lie inside the reservation just made, outside
        // `base..base + len`, and nothing else uses them.
        unsafe {
            if head > 0 {
                munmap(raw as *mut c_void, head).map_err(HostError::ReserveWindow)?;
            }
            if tail > 0 {
                munmap((base + len) as *mut c_void, tail).map_err(HostError::ReserveWindow)?;
            }
        }
        Ok(Self { base, len })
    }

    fn range(&self) -> VirtRange {
        VirtRange {
            start: self.base,
            len: self.len,
        }
    }

    /// Validate `va..va + len`: page aligned and inside the window.
    fn check(&self, va: usize, len: usize) -> Result<(), HalError> {
        if !va.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) {
            return Err(HalError::Misaligned);
        }
        let end = va.checked_add(len).ok_or(HalError::OutOfRange)?;
        if va < self.base || end > self.base + self.len {
            return Err(HalError::OutOfRange);
        }
        Ok(())
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: INV-MMU-1: the reservation and every mapping in it belong
        // to this machine, which is being destroyed.
        let result = unsafe { munmap(self.base as *mut c_void, self.len) };
        debug_assert!(
            result.is_ok(),
            "munmap of the kernel window failed: {result:?}"
        );
    }
}

/// `mmap(PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)`, at `addr`
/// with `MAP_FIXED` when `fixed`.
fn reserve(addr: *mut c_void, len: usize, fixed: bool) -> Result<*mut c_void, Errno> {
    let mut flags = MapFlags::PRIVATE | MapFlags::NORESERVE;
    if fixed {
        flags |= MapFlags::FIXED;
    }
    // SAFETY: without `fixed` the host picks a fresh address (taking `addr`
    // only as a hint, never replacing a mapping); with it, the
    // callers pass a range inside the window (INV-MMU-1), which no Rust
    // object lives in.
    unsafe { mmap_anonymous(addr, len, ProtFlags::empty(), flags) }
}

fn prot_flags(perms: Perms) -> ProtFlags {
    let mut prot = ProtFlags::empty();
    if perms.read {
        prot |= ProtFlags::READ;
    }
    if perms.write {
        prot |= ProtFlags::WRITE;
    }
    if perms.execute {
        prot |= ProtFlags::EXEC;
    }
    prot
}

fn mprotect_flags(perms: Perms) -> MprotectFlags {
    let mut prot = MprotectFlags::empty();
    if perms.read {
        prot |= MprotectFlags::READ;
    }
    if perms.write {
        prot |= MprotectFlags::WRITE;
    }
    if perms.execute {
        prot |= MprotectFlags::EXEC;
    }
    prot
}

/// The `HalError` for an `mmap`/`mprotect` failure: the host ran out of
/// mappings (`vm.max_map_count`) or memory.
fn host_error(_e: Errno) -> HalError {
    HalError::NoMemory
}

impl Mmu for Hosted {
    fn kernel_window(&self) -> VirtRange {
        self.machine.window.range()
    }

    /// Hosted: `len == 0` maps nothing and succeeds; `perms` that break W^X
    /// are refused with [`HalError::Unsupported`] (defence in depth: the
    /// safety contract already forbids them).
    unsafe fn map(
        &self,
        va: usize,
        pa: PhysAddr,
        len: usize,
        perms: Perms,
        _tables: &dyn TableFrames,
    ) -> Result<TlbFlush, HalError> {
        let window = &self.machine.window;
        window.check(va, len)?;
        if !pa.is_page_aligned() {
            return Err(HalError::Misaligned);
        }
        if !self.machine.phys.contains(pa, len) {
            return Err(HalError::OutOfRange);
        }
        if !perms.is_wx_safe() {
            return Err(HalError::Unsupported);
        }
        let flush = TlbFlush::new(VirtRange { start: va, len });
        if len == 0 {
            return Ok(flush);
        }
        // SAFETY: `va..va + len` lies inside the window (checked above,
        // INV-MMU-1) and the caller owns it; `pa..pa + len` lies inside the
        // memfd (checked above) and the caller owns those frames.
        let mapped = unsafe {
            mmap(
                va as *mut c_void,
                len,
                prot_flags(perms),
                // INV-MMU-3.
                if perms.execute {
                    MapFlags::PRIVATE | MapFlags::FIXED
                } else {
                    MapFlags::SHARED | MapFlags::FIXED
                },
                self.machine.phys.fd(),
                pa.0,
            )
        };
        match mapped {
            Ok(_) => Ok(flush),
            Err(e) => {
                // A failed MAP_FIXED may have removed the old reservation:
                // put it back so the range is unmapped and still reserved.
                let _ = reserve(va as *mut c_void, len, true);
                Err(host_error(e))
            }
        }
    }

    /// Hosted: also returns [`HalError::NoMemory`] when the host cannot split
    /// its mappings (`vm.max_map_count`); the range is unchanged then.
    unsafe fn unmap(&self, va: usize, len: usize) -> Result<TlbFlush, HalError> {
        self.machine.window.check(va, len)?;
        let flush = TlbFlush::new(VirtRange { start: va, len });
        if len == 0 {
            return Ok(flush);
        }
        reserve(va as *mut c_void, len, true).map_err(host_error)?;
        Ok(flush)
    }

    /// Hosted: also returns [`HalError::NoMemory`] when the host cannot split
    /// its mappings; [`HalError::Unsupported`] for perms that break W^X.
    unsafe fn protect(&self, va: usize, len: usize, perms: Perms) -> Result<TlbFlush, HalError> {
        self.machine.window.check(va, len)?;
        if !perms.is_wx_safe() {
            return Err(HalError::Unsupported);
        }
        let flush = TlbFlush::new(VirtRange { start: va, len });
        if len == 0 {
            return Ok(flush);
        }
        // SAFETY: the range lies inside the window (checked above,
        // INV-MMU-1) and the caller owns it and accepts the new permissions.
        unsafe { mprotect(va as *mut c_void, len, mprotect_flags(perms)) }.map_err(host_error)?;
        Ok(flush)
    }

    fn flush(&self, flush: TlbFlush) {
        // The host kernel keeps TLBs coherent across threads.
        let _ = flush;
    }

    fn sync_icache(&self, va: usize, len: usize) {
        crate::icache::sync(va, len);
    }
}
