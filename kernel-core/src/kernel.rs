//! The kernel as a value: everything the kernel owns, reachable from each
//! CPU's local block. There is no global kernel state, so one process can run
//! several kernels side by side.
//!
//! Invariants:
//! - INV-KERNEL-1: a `Kernel` outlives every CPU-local block that points at
//!   it; `boot` clears and joins every CPU before dropping it.
//! - INV-KERNEL-2: `cpus[i]` is only written by CPU `i`, except for the
//!   `requests` mailbox, which any CPU may set.
//! - INV-KERNEL-3: a CPU counts itself in `executor_users` *before* it
//!   reads `executor`, and leaves the count after its last use; the boot
//!   CPU clears `executor`, then waits for the count to reach zero before
//!   dropping the executor (both `SeqCst`), so no CPU uses a dropped one.

use alloc::boxed::Box;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;

use crate::hal::{CpuId, HalError, Platform, VirtRange};
use crate::mem::{FrameAllocator, FrameError, Owner, Space, Vm, VmError};
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
    /// The address space refused (no room, bad range, limits).
    Vm(VmError),
    /// No frames.
    Frames(FrameError),
    /// The MMU refused.
    Hal(HalError),
}

impl fmt::Display for MemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vm(e) => e.fmt(f),
            Self::Frames(e) => e.fmt(f),
            Self::Hal(e) => write!(f, "MMU: {e}"),
        }
    }
}

impl core::error::Error for MemError {}

/// A running kernel on platform `P`.
pub struct Kernel<'h, P: Platform> {
    hal: &'h P,
    frames: FrameAllocator,
    space: Space,
    random: crate::random::Random,
    code: CodeRegistry,
    cpus: Box<[CpuState]>,
    stopping: AtomicBool,
    /// The executor secondary CPUs serve while a workload runs one: the
    /// address of an `Executor<'h, P>` (0: none; INV-KERNEL-3).
    pub(crate) executor: AtomicUsize,
    /// Bumped each time an executor is published.
    pub(crate) executor_gen: AtomicU64,
    /// CPUs that may be using `executor` (INV-KERNEL-3).
    pub(crate) executor_users: AtomicUsize,
    /// The preemption epoch: microseconds of the HAL clock as last seen by
    /// a timer interrupt on any CPU (monotonic; see `wasm::interrupt`).
    epoch: AtomicU64,
    /// Rung by [`crate::hal::Interrupt::Input`]: readers of the console
    /// wait on it (serviced by the executors' worker loops).
    input_bell: alloc::sync::Arc<crate::sched::Doorbell>,
    /// Compiled modules shared by the stores that load the same bytes.
    modules: crate::wasm::cache::ModuleCache,
    /// The host ISA's compiler, built once and shared by every store.
    compiler: spin::Once<crate::wasm::compile::Compiler>,
    /// Trampolines and host thunks shared by the stores that use them.
    stubs: crate::wasm::stubs::StubCache,
    futexes: crate::wasm::futex::Futexes,
    /// Regions of linear memories and tables kept for reuse.
    regions: crate::mem::RegionPool,
    /// Unique among the kernels of this program ([`Kernel::id`]).
    id: u64,
}

/// Most idle regions [`Kernel::regions`] keeps.
pub const POOLED_REGIONS: usize = 256;

/// The next [`Kernel::id`].
static NEXT_KERNEL_ID: AtomicU64 = AtomicU64::new(1);

impl<'h, P: Platform> Kernel<'h, P> {
    /// A kernel over `hal`: the frame allocator owns the HAL's memory map,
    /// the address space its kernel window, placing at random from the
    /// HAL's entropy seed.
    pub fn new(hal: &'h P) -> Self {
        let frames = FrameAllocator::new(hal.memory_map());
        // Idle regions keep at most a 64th of RAM committed.
        let pooled_frames = frames.total_frames() / 64;
        let kernel = Self {
            hal,
            frames,
            space: Space::new(hal.kernel_window(), hal.entropy_seed()),
            random: crate::random::Random::new(|| hal.entropy_seed()),
            code: CodeRegistry::new(),
            cpus: (0..hal.cpu_count()).map(|_| CpuState::default()).collect(),
            stopping: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            executor: AtomicUsize::new(0),
            executor_users: AtomicUsize::new(0),
            executor_gen: AtomicU64::new(0),
            input_bell: alloc::sync::Arc::new(crate::sched::Doorbell::new()),
            modules: crate::wasm::cache::ModuleCache::new(),
            compiler: spin::Once::new(),
            stubs: crate::wasm::stubs::StubCache::new(),
            futexes: crate::wasm::futex::Futexes::new(),
            // ... and a quarter of the window reserved.
            regions: crate::mem::RegionPool::new(
                POOLED_REGIONS,
                pooled_frames,
                hal.kernel_window().len / 4,
            ),
            id: NEXT_KERNEL_ID.fetch_add(1, Ordering::Relaxed),
        };
        // No overcommit: what the kernel commits (linear memories among
        // it) never exceeds RAM, so a commit that cannot be backed fails
        // when it is made (memory.grow returns -1) instead of at a later
        // demand fault.
        kernel
            .vm()
            .set_limit(Owner::Kernel, kernel.frames.total_frames());
        kernel
    }

    /// The platform.
    pub const fn hal(&self) -> &'h P {
        self.hal
    }

    /// The module cache: compiled modules shared while any store holds
    /// them.
    pub fn modules(&self) -> &crate::wasm::cache::ModuleCache {
        &self.modules
    }

    /// Regions of linear memories and tables kept for reuse
    /// ([`crate::mem::RegionPool`]).
    pub const fn regions(&self) -> &crate::mem::RegionPool {
        &self.regions
    }

    /// Wall-clock time in ns since the epoch, for file timestamps (0
    /// without a wall clock, saturating far in the future).
    pub fn wall_ns(&self) -> u64 {
        self.hal
            .wall_time()
            .map_or(0, |t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Release what the kernel keeps only to go faster: the idle regions
    /// of [`Kernel::regions`] (their frames, promises and window space).
    /// Checks that compare free frames or regions with a baseline call it
    /// first; nothing in use is touched. Returns the regions released.
    pub fn release_idle(&self) -> usize {
        self.regions.trim(self.vm())
    }

    /// The wait queues of `memory.atomic.wait` (`wasm::futex`).
    pub fn futexes(&self) -> &crate::wasm::futex::Futexes {
        &self.futexes
    }

    /// Trampolines and host thunks shared while any store holds them.
    pub fn stubs(&self) -> &crate::wasm::stubs::StubCache {
        &self.stubs
    }

    /// A number no other kernel of this program has: code linked in one
    /// kernel is never shared with another (code INV-CODE-5).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The compiler for the host ISA with the extensions every CPU has
    /// ([`crate::hal::Cpus::isa_features`]), built by the first store that asks
    /// and shared by every store after it (a Cranelift ISA is costly to
    /// build and immutable once built).
    ///
    /// # Errors
    /// [`crate::wasm::module::CompileError::Isa`] when the host ISA is not
    /// supported.
    pub fn host_compiler(
        &self,
    ) -> Result<crate::wasm::compile::Compiler, crate::wasm::module::CompileError> {
        if let Some(c) = self.compiler.get() {
            return Ok(c.clone());
        }
        let built = crate::wasm::compile::Compiler::host_with(self.hal().isa_features())?;
        Ok(self.compiler.call_once(|| built).clone())
    }

    /// The doorbell console input rings ([`crate::hal::Interrupt::Input`]).
    pub fn input_bell(&self) -> &alloc::sync::Arc<crate::sched::Doorbell> {
        &self.input_bell
    }

    /// The kernel's random bytes for guests.
    pub const fn random(&self) -> &crate::random::Random {
        &self.random
    }

    /// The frame allocator.
    pub const fn frames(&self) -> &FrameAllocator {
        &self.frames
    }

    /// The kernel's address space: regions, backings, faults, accounting.
    pub const fn vm(&self) -> Vm<'_, P> {
        Vm::new(self.hal, &self.frames, &self.space)
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

    /// The preemption epoch word JIT code compares with its deadline.
    pub(crate) fn epoch_word(&self) -> &AtomicU64 {
        &self.epoch
    }

    /// The preemption epoch now (microseconds of the HAL clock).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Advance the epoch to the clock's time (timer interrupts do this;
    /// so does the scheduler when it switches a process in).
    pub fn advance_epoch(&self) -> u64 {
        let now = u64::try_from(self.hal.now().as_micros()).unwrap_or(u64::MAX);
        self.epoch.fetch_max(now, Ordering::AcqRel).max(now)
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
    /// the reservation lives. Returns the usable range. The caller maps it
    /// through the HAL itself; `mem` treats it as unmanaged
    /// ([`Vm::reserve_raw`]).
    ///
    /// # Errors
    /// [`MemError::Vm`].
    pub fn reserve(&self, len: usize, guard: usize) -> Result<VirtRange, MemError> {
        self.vm().reserve_raw(len, guard).map_err(MemError::Vm)
    }

    /// Give back a range from [`Kernel::reserve`] (its guard is known).
    /// The caller has unmapped it.
    ///
    /// # Errors
    /// [`MemError::Vm`] when it was not reserved.
    pub fn release(&self, range: VirtRange, guard: usize) -> Result<(), MemError> {
        let _ = guard;
        self.vm()
            .release(range.start)
            .map(|_| ())
            .map_err(MemError::Vm)
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
