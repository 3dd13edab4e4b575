//! Interrupt masking and delivery: a per-thread flag and pending bits.
//!
//! This module owns the protocol between the interrupt signal handler and
//! the code it interrupts, over the fields `irqs_enabled` and `pending` of
//! [`CpuThread`]. Masking is a flag, not a signal mask, so it costs no
//! system call; a signal that arrives while the flag is clear only sets a
//! pending bit (INV-THREAD-4), and unmasking delivers the pending bits.
//!
//! Invariants:
//! - INV-IRQ-1: the kernel's interrupt entry runs only with the flag clear,
//!   and each arrival is delivered at most once: pending bits are taken with
//!   one atomic `swap`.
//! - INV-IRQ-2: no arrival is lost: after [`enable_and_drain`] returns, the
//!   flag is set and every bit pending at that moment has been delivered
//!   (any signal that comes later finds the flag set and delivers itself).
//!
//! Deterministic mode (`det`) has no interrupt signals: it hands what
//! arrives for a CPU to [`arrive`], the same path a signal takes.
//!
//! - INV-IRQ-3: `irqs_enabled` and `pending` are read and written by their
//!   own thread only (the code and the signal handlers that interrupt it;
//!   deterministic mode runs every CPU on one thread). A thread sees its own
//!   accesses in program order, also from a handler, so masking and
//!   unmasking are plain loads and stores kept in order by compiler fences:
//!   no locked instruction, which every interrupt-masked lock of the kernel
//!   pays twice. Where a handler may run between a load and the store
//!   that follows, it leaves the flag as it found it, so the pair still
//!   acts as one swap.
//!
//! Other atomics here order against other CPUs and use `SeqCst`.

use core::sync::atomic::{Ordering, compiler_fence};

use kernel_core::hal::{Interrupt, Interrupts};

use crate::Hosted;
use crate::signals;
use crate::thread::{self, CpuThread, PENDING_INPUT, PENDING_IPI, PENDING_TIMER};

/// An interrupt signal (`bit` is its pending bit) arrived on this thread.
/// Called from the signal handler, with both interrupt signals blocked.
pub(crate) fn on_signal(t: &CpuThread, bit: u8) {
    let mut bits = bit;
    if bit == PENDING_IPI {
        let slot = t.slot.load(Ordering::Acquire);
        if !slot.is_null() {
            // SAFETY: INV-THREAD-2: the slot outlives the pointer.
            let slot = unsafe { &*slot };
            slot.ipi_arrived();
            // Console input rides on the IPI signal.
            if slot.take_input() {
                bits |= PENDING_INPUT;
            }
        }
    }
    arrive(t, bits);
}

/// The interrupts of `bits` arrived for the CPU of this thread: deliver
/// them now when its flag is set, else record them pending (INV-THREAD-4).
/// With no CPU-local block they are dropped (`Cpus::set_cpu_local`). The
/// signal path and the deterministic simulation (`det`) both end here.
pub(crate) fn arrive(t: &CpuThread, bits: u8) {
    if t.local().is_null() {
        return;
    }
    if !mask(t) {
        t.pending.fetch_or(bits, Ordering::SeqCst);
        return;
    }
    deliver(t, bits);
    enable_and_drain(t);
}

/// The simulation of this thread's machine, when it is deterministic.
pub(crate) fn det_of(t: &CpuThread) -> Option<&crate::det::Det> {
    let machine = t.machine.load(Ordering::Acquire);
    if machine.is_null() {
        return None;
    }
    // SAFETY: INV-THREAD-1: a set `machine` is kept alive by the
    // `CpuContext` on this thread while the pointer is set.
    unsafe { &*machine }.det.as_ref()
}

/// Hand the interrupts of `bits` to the kernel. The flag is clear.
fn deliver(t: &CpuThread, bits: u8) {
    let local = t.local();
    if local.is_null() {
        return;
    }
    // SAFETY: INV-THREAD-3: an installed block is valid on this thread.
    let local = unsafe { &*local };
    let det = det_of(t);
    let cpu = t.id.load(Ordering::SeqCst);
    for (bit, irq) in [
        (PENDING_TIMER, Interrupt::Timer),
        (PENDING_IPI, Interrupt::Ipi),
        (PENDING_INPUT, Interrupt::Input),
    ] {
        if bits & bit != 0 {
            if let Some(det) = det {
                det.record(crate::det::Event::Interrupt { cpu, irq });
            }
            local.deliver_interrupt(irq);
        }
    }
}

/// Clear this thread's flag; whether it was set (INV-IRQ-3). A handler
/// that runs between the load and the store finds the flag set, delivers
/// itself and leaves it set, so the interrupt came before the mask.
fn mask(t: &CpuThread) -> bool {
    compiler_fence(Ordering::SeqCst);
    let was = t.irqs_enabled.load(Ordering::Relaxed);
    t.irqs_enabled.store(false, Ordering::Relaxed);
    compiler_fence(Ordering::SeqCst);
    was
}

/// Set the flag, delivering (with the flag clear) whatever is pending, until
/// the flag is set with nothing pending (INV-IRQ-2). The store comes before
/// the load in program order, which is all a handler on this thread can
/// observe (INV-IRQ-3): a signal after the store delivers itself, one
/// before it left its bit for the load.
pub(crate) fn enable_and_drain(t: &CpuThread) {
    loop {
        compiler_fence(Ordering::SeqCst);
        t.irqs_enabled.store(true, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        if t.pending.load(Ordering::Relaxed) == 0 {
            return;
        }
        // Something arrived while masked. Mask again before taking it; a
        // signal between the load and this store delivered itself (and what
        // was pending) and left the flag set, which is harmless here.
        t.irqs_enabled.store(false, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        let bits = t.pending.swap(0, Ordering::SeqCst);
        deliver(t, bits);
    }
}

/// Wait until an interrupt is pending or delivered on this thread: block
/// both interrupt signals, check the pending bits, and `sigsuspend` with
/// the signals unblocked when nothing is pending, so that an arrival between
/// the check and the wait is not lost.
pub(crate) fn wait(t: &CpuThread) {
    let interrupts = signals::interrupt_set();
    let mut old = signals::sigset(&[]);
    // SAFETY: both pointers are valid sigsets; blocking signals is always
    // allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &interrupts, &mut old) };
    if t.pending.load(Ordering::SeqCst) == 0 {
        let mut during = old;
        // SAFETY: `during` is an initialized set; removing members cannot fail.
        unsafe {
            libc::sigdelset(&mut during, signals::TIMER_SIGNAL);
            libc::sigdelset(&mut during, signals::IPI_SIGNAL);
        }
        // SAFETY: `during` is a valid set; `sigsuspend` returns (EINTR) once
        // a handler has run.
        unsafe { libc::sigsuspend(&during) };
    }
    // SAFETY: `old` is the mask read above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut()) };
}

impl Interrupts for Hosted {
    fn irq_save(&self) -> bool {
        thread::with(mask)
    }

    /// Hosted, deterministic: first collects what arrived for this CPU
    /// (IPIs, its timer if due), then unmasks as with threads.
    fn irq_restore(&self, enabled: bool) {
        if enabled {
            thread::with(|t| {
                if let Some(det) = &self.machine.det
                    && t.is_cpu_of(self.machine_ptr())
                {
                    det.collect(t);
                }
                enable_and_drain(t);
            });
        }
    }

    fn irqs_enabled(&self) -> bool {
        thread::with(|t| t.irqs_enabled.load(Ordering::SeqCst))
    }

    /// Hosted: `true` in deterministic mode ([`crate::Config::deterministic`]).
    fn polled(&self) -> bool {
        self.machine.det.is_some()
    }

    /// Hosted, deterministic: advances virtual time by
    /// [`crate::det::POLL_STEP`], delivers what became due when interrupts
    /// are enabled and, with them enabled, may switch to another CPU
    /// (seeded). With threads: nothing.
    fn poll(&self) {
        if let Some(det) = &self.machine.det {
            thread::with(|t| {
                if t.is_cpu_of(self.machine_ptr()) {
                    det.on_poll(t);
                } else {
                    det.tick(crate::det::POLL_STEP);
                }
            });
        }
    }
}
