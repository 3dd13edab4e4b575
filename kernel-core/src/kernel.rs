//! The kernel as a value: everything the kernel owns, reachable from each
//! CPU's local block. There is no global kernel state, so one process can run
//! several kernels side by side.
//!
//! Invariants:
//! - INV-KERNEL-1: a `Kernel` outlives every CPU-local block that points at
//!   it; `boot` clears and joins every CPU before dropping it.
//! - INV-KERNEL-2: `cpus[i]` is only written by CPU `i`, except for the
//!   `requests` mailbox, which any CPU may set.

use alloc::boxed::Box;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;

use crate::hal::{CpuId, HalError, PAGE_SIZE, Perms, Platform, VirtRange};
use crate::mem::{DemandError, DemandRegions, FrameAllocator, FrameError, Window, WindowError};
use crate::wasm::code::CodeRegistry;

/// Mailbox bit: arm this CPU's timer 1 ms from now.
pub(crate) const REQ_ARM_TIMER: u32 = 1;

/// Per-CPU state the kernel keeps (counters and a request mailbox).
#[derive(Default)]
pub struct CpuState {
    pub(crate) online: AtomicBool,
    pub(crate) timer_ticks: AtomicU64,
    pub(crate) ipis: AtomicU64,
    pub(crate) wakeups: AtomicU64,
    pub(crate) requests: AtomicU32,
    pub(crate) last_fault: AtomicUsize,
    pub(crate) local_id: AtomicUsize,
    pub(crate) wasm: crate::wasm::entry::CpuWasm,
}

impl CpuState {
    /// Timer interrupts taken on this CPU.
    pub fn timer_ticks(&self) -> u64 {
        self.timer_ticks.load(Ordering::Acquire)
    }

    /// IPIs taken on this CPU.
    pub fn ipis(&self) -> u64 {
        self.ipis.load(Ordering::Acquire)
    }

    /// Times this CPU woke from its idle wait.
    pub fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Acquire)
    }

    /// Whether the CPU runs the kernel now.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }
}

/// Why a kernel memory operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemError {
    /// No room in the kernel window.
    Window(WindowError),
    /// No frames.
    Frames(FrameError),
    /// The demand registry refused.
    Demand(DemandError),
    /// The MMU refused.
    Hal(HalError),
}

impl fmt::Display for MemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Window(e) => e.fmt(f),
            Self::Frames(e) => e.fmt(f),
            Self::Demand(e) => e.fmt(f),
            Self::Hal(e) => write!(f, "MMU: {e}"),
        }
    }
}

impl core::error::Error for MemError {}

/// A running kernel on platform `P`.
pub struct Kernel<'h, P: Platform> {
    hal: &'h P,
    frames: FrameAllocator,
    window: spin::Mutex<Window>,
    demand: DemandRegions,
    code: CodeRegistry,
    cpus: Box<[CpuState]>,
    stopping: AtomicBool,
}

impl<'h, P: Platform> Kernel<'h, P> {
    /// A kernel over `hal`: the frame allocator owns the HAL's memory map,
    /// the window allocator its kernel window.
    pub fn new(hal: &'h P) -> Self {
        Self {
            hal,
            frames: FrameAllocator::new(hal.memory_map()),
            window: spin::Mutex::new(Window::new(hal.kernel_window())),
            demand: DemandRegions::new(),
            code: CodeRegistry::new(),
            cpus: (0..hal.cpu_count()).map(|_| CpuState::default()).collect(),
            stopping: AtomicBool::new(false),
        }
    }

    /// The platform.
    pub const fn hal(&self) -> &'h P {
        self.hal
    }

    /// The frame allocator.
    pub const fn frames(&self) -> &FrameAllocator {
        &self.frames
    }

    /// The demand-paged regions.
    pub const fn demand(&self) -> &DemandRegions {
        &self.demand
    }

    /// The registry of executable wasm code objects.
    pub const fn code(&self) -> &CodeRegistry {
        &self.code
    }

    /// Per-CPU state, indexed by CPU id.
    pub fn cpus(&self) -> &[CpuState] {
        &self.cpus
    }

    /// The state of `cpu`.
    pub fn cpu(&self, cpu: CpuId) -> Option<&CpuState> {
        self.cpus.get(cpu)
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub(crate) fn begin_stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Reserve `len` bytes (page multiple) of the kernel window, with
    /// `guard` unmapped bytes on each side that are never handed out while
    /// the reservation lives. Returns the usable range.
    ///
    /// # Errors
    /// [`MemError::Window`].
    pub fn reserve(&self, len: usize, guard: usize) -> Result<VirtRange, MemError> {
        let total = len
            .checked_add(
                guard
                    .checked_mul(2)
                    .ok_or(MemError::Window(WindowError::BadRequest))?,
            )
            .ok_or(MemError::Window(WindowError::BadRequest))?;
        let outer = self
            .window
            .lock()
            .alloc(total, PAGE_SIZE)
            .map_err(MemError::Window)?;
        Ok(VirtRange {
            start: outer.start + guard,
            len,
        })
    }

    /// Give back a range from [`Kernel::reserve`] with the same `guard`.
    /// The caller has unmapped it.
    ///
    /// # Errors
    /// [`MemError::Window`] when it was not reserved.
    pub fn release(&self, range: VirtRange, guard: usize) -> Result<(), MemError> {
        let outer = VirtRange {
            start: range.start - guard,
            len: range.len + 2 * guard,
        };
        self.window.lock().free(outer).map_err(MemError::Window)
    }

    /// A demand-paged region of `pages` pages with `perms`, between two
    /// guard pages. Frames arrive on first touch and return when the region
    /// drops.
    ///
    /// # Errors
    /// [`MemError::Window`] when the window is full, [`MemError::Demand`]
    /// for zero pages or W+X permissions.
    pub fn demand_region(
        &self,
        pages: usize,
        perms: Perms,
    ) -> Result<DemandMapping<'_, 'h, P>, MemError> {
        let len = pages
            .checked_mul(PAGE_SIZE)
            .ok_or(MemError::Window(WindowError::BadRequest))?;
        let range = self.reserve(len, PAGE_SIZE)?;
        if let Err(e) = self.demand.insert(range, perms) {
            // The range was reserved just above and nothing is mapped in it.
            let _ = self.release(range, PAGE_SIZE);
            return Err(MemError::Demand(e));
        }
        Ok(DemandMapping {
            kernel: self,
            range,
        })
    }

    /// Wait, spinning, until `done` holds or `timeout` passes; returns
    /// whether it held.
    pub fn wait_until(&self, timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
        let end = self.hal.now() + timeout;
        loop {
            if done() {
                return true;
            }
            if self.hal.now() >= end {
                return done();
            }
            core::hint::spin_loop();
        }
    }
}

/// A demand-paged region owned by the caller; dropping it unmaps the range,
/// frees its frames and releases the window space.
pub struct DemandMapping<'k, 'h, P: Platform> {
    kernel: &'k Kernel<'h, P>,
    range: VirtRange,
}

impl<P: Platform> DemandMapping<'_, '_, P> {
    /// The usable range (the guard pages lie just outside it).
    pub const fn range(&self) -> VirtRange {
        self.range
    }

    /// Pages with a frame now.
    pub fn resident_pages(&self) -> usize {
        self.kernel
            .demand
            .with_region(self.range.start, |r| r.resident_pages())
            .unwrap_or(0)
    }

    /// Unmap the region now and return how many frames were freed.
    ///
    /// # Errors
    /// [`MemError::Demand`] when the MMU refuses the unmap; the region stays
    /// then and is retried when dropped.
    pub fn unmap(self) -> Result<usize, MemError> {
        let freed = self.teardown()?;
        core::mem::forget(self);
        Ok(freed)
    }

    fn teardown(&self) -> Result<usize, MemError> {
        let k = self.kernel;
        let freed = k
            .demand
            .remove(k.hal, &k.frames, self.range.start)
            .map_err(MemError::Demand)?;
        k.release(self.range, PAGE_SIZE)?;
        Ok(freed)
    }
}

impl<P: Platform> Drop for DemandMapping<'_, '_, P> {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::error!(start = self.range.start, error = %e, "demand region teardown failed");
        }
    }
}
