//! CPUs: identity, start-up, inter-processor interrupts, idling, and the
//! CPU-local block.

use super::{CpuLocal, HalError, IsaFeatures};

/// A logical CPU number: `0..cpu_count()`, with the boot CPU as 0.
pub type CpuId = usize;

/// The function a secondary CPU runs once started. When it returns, the CPU
/// parks for good (hosted: its thread ends; riscv: SBI `hart_stop`).
pub type CpuEntry = fn(arg: usize);

/// The CPUs of the machine.
pub trait Cpus {
    /// How many CPUs the kernel may use.
    ///
    /// - hosted: the configured count (one thread each).
    /// - riscv: the harts of the device tree's `/cpus` (capped at the
    ///   platform's maximum).
    fn cpu_count(&self) -> usize;

    /// The instruction-set extensions every CPU has, for the code
    /// generator (a process may run on any CPU).
    ///
    /// - hosted: on x86-64, what the host CPU reports (CPUID), unless the
    ///   machine's configuration pins the baseline; elsewhere the baseline.
    /// - riscv: the intersection of the device tree's ISA strings of the
    ///   harts in use.
    fn isa_features(&self) -> IsaFeatures {
        IsaFeatures::Baseline
    }

    /// The logical id of the calling CPU.
    ///
    /// - hosted: a thread-local set when the CPU thread starts.
    /// - riscv: read from the hart's HAL block (`tp`).
    fn current_cpu(&self) -> CpuId;

    /// Start secondary CPU `cpu` running `entry(arg)` with interrupts
    /// disabled, on a stack of its own.
    ///
    /// - hosted: spawns a thread with an alternate signal stack and a timer.
    /// - riscv: SBI HSM `hart_start` of the matching hart.
    ///
    /// # Errors
    /// [`HalError::OutOfRange`] for the boot CPU or an id past
    /// [`Cpus::cpu_count`], [`HalError::Busy`] when it already runs,
    /// [`HalError::NoMemory`] when no thread or stack can be had. The CPU is
    /// not running after an error.
    fn start_cpu(&self, cpu: CpuId, entry: CpuEntry, arg: usize) -> Result<(), HalError>;

    /// Raise an inter-processor interrupt on `cpu`; it arrives as
    /// [`super::Interrupt::Ipi`]. Raising it on a CPU that has one pending
    /// merges with it. Ids out of range are ignored.
    ///
    /// - hosted: a real-time signal sent with `pthread_kill`.
    /// - riscv: SBI IPI extension `send_ipi`.
    fn send_ipi(&self, cpu: CpuId);

    /// Wait until an interrupt is pending on this CPU. Returns at once when
    /// one already is. The interrupt mask is unchanged: with interrupts
    /// enabled the interrupt is delivered before this returns; with them
    /// disabled it stays pending until they are enabled again, so "disable,
    /// check for work, wait" loses no wake-up.
    ///
    /// - hosted: `sigsuspend` with the interrupt signals unblocked.
    /// - riscv: `wfi`.
    fn wait_for_interrupt(&self);

    /// Install the calling CPU's local block, or clear it with null. While a
    /// block is installed, faults and interrupts on this CPU are delivered
    /// through it; with none, faults are not handled (the platform reports
    /// them itself) and interrupts are dropped.
    ///
    /// - hosted: a thread-local pointer.
    /// - riscv: a field of the hart's HAL block.
    ///
    /// # Safety
    /// A non-null `block` stays valid until it is replaced or cleared on
    /// this same CPU.
    unsafe fn set_cpu_local(&self, block: *const CpuLocal);

    /// The calling CPU's local block, or null when none is installed.
    fn cpu_local(&self) -> *const CpuLocal;
}
