//! The per-thread CPU state that signal handlers read.
//!
//! This module owns one thread-local [`CpuThread`] per host thread. It is
//! constant-initialized and has no destructor, so reading it is a plain TLS
//! access: async-signal-safe, allocation-free, never failing. Every field is
//! an atomic because a signal handler on the same thread may interrupt any
//! access to it.
//!
//! In deterministic mode one host thread is every CPU of its machine in
//! turn: the simulation's loop loads a CPU's `id`, `cpu_local`,
//! `irqs_enabled` and `pending` here before running it and saves them when
//! it yields (INV-DET-3 in `det`), so the handlers find the running CPU.
//!
//! Invariants:
//! - INV-THREAD-1: `machine` is null, or points to the [`Machine`] of which
//!   this thread is CPU `id`; a [`crate::context::CpuContext`] on this thread
//!   holds an `Arc` to that machine for as long as the pointer is set.
//! - INV-THREAD-2: `slot` is null, or points to this CPU's slot in that
//!   machine's CPU table (kept alive by the same `Arc`).
//! - INV-THREAD-3: `cpu_local` is null, or a block the kernel installed with
//!   `Cpus::set_cpu_local`, valid until replaced on this thread (that
//!   method's safety contract).
//! - INV-THREAD-4: a bit of `pending` is set only while `irqs_enabled` is
//!   false; whoever sets `irqs_enabled` to true delivers them first
//!   ([`crate::irq::enable_and_drain`]).
//! - INV-THREAD-5: every access looks the thread-local up afresh. Kernel
//!   code runs on fibers that may suspend on one CPU thread and resume on
//!   another inside one function, while compilers treat a thread-local's
//!   address as constant within a function: an address computed before the
//!   suspend would name the old thread's CPU.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering, compiler_fence};

use kernel_core::hal::CpuLocal;

use crate::Machine;
use crate::cpu::CpuSlot;

/// Pending-interrupt bit of the timer.
pub(crate) const PENDING_TIMER: u8 = 1 << 0;
/// Pending-interrupt bit of the IPI.
pub(crate) const PENDING_IPI: u8 = 1 << 1;
/// Pending-interrupt bit of console input (carried by the IPI signal).
pub(crate) const PENDING_INPUT: u8 = 1 << 2;

/// One host thread's view of the CPU it is (if any).
pub(crate) struct CpuThread {
    /// INV-THREAD-1.
    pub(crate) machine: AtomicPtr<Machine>,
    /// Logical CPU id; meaningful only while `machine` is set.
    pub(crate) id: AtomicUsize,
    /// INV-THREAD-2.
    pub(crate) slot: AtomicPtr<CpuSlot>,
    /// INV-THREAD-3.
    pub(crate) cpu_local: AtomicPtr<CpuLocal>,
    /// Whether interrupts are unmasked on this CPU.
    pub(crate) irqs_enabled: AtomicBool,
    /// INV-THREAD-4: [`PENDING_TIMER`] | [`PENDING_IPI`] |
    /// [`PENDING_INPUT`].
    pub(crate) pending: AtomicU8,
    /// This CPU's POSIX timer (`timer_t`); meaningful only while `machine`
    /// is set (glibc's first timer is id 0, a null `timer_t`, so null does
    /// not mean "none").
    pub(crate) timer: AtomicPtr<c_void>,
}

impl CpuThread {
    const fn new() -> Self {
        Self {
            machine: AtomicPtr::new(ptr::null_mut()),
            id: AtomicUsize::new(0),
            slot: AtomicPtr::new(ptr::null_mut()),
            cpu_local: AtomicPtr::new(ptr::null_mut()),
            irqs_enabled: AtomicBool::new(false),
            pending: AtomicU8::new(0),
            timer: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Whether this thread is a CPU of `machine`.
    pub(crate) fn is_cpu_of(&self, machine: *const Machine) -> bool {
        ptr::eq(self.machine.load(Ordering::Relaxed), machine)
    }

    /// The installed CPU-local block, or null.
    pub(crate) fn local(&self) -> *const CpuLocal {
        self.cpu_local.load(Ordering::Acquire)
    }
}

thread_local! {
    static CPU: CpuThread = const { CpuThread::new() };
}

/// The calling thread's CPU state. Never inlined, and with a compiler
/// fence inside, so that the compiler cannot reuse one call's thread-local
/// address for a later call (INV-THREAD-5).
#[inline(never)]
fn current() -> *const CpuThread {
    compiler_fence(Ordering::SeqCst);
    CPU.with(ptr::from_ref)
}

/// Run `f` with the calling thread's CPU state. Async-signal-safe.
pub(crate) fn with<R>(f: impl FnOnce(&CpuThread) -> R) -> R {
    // SAFETY: the thread-local is const-initialized and has no destructor,
    // so it lives as long as this thread, which runs `f`.
    f(unsafe { &*current() })
}
