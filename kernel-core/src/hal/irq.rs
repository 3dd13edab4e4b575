//! Local interrupt masking.

use core::marker::PhantomData;

/// Masking of interrupts (timer and IPI) on the calling CPU. Faults are
/// synchronous and never masked.
pub trait Interrupts {
    /// Mask interrupts on this CPU and return whether they were enabled.
    ///
    /// - hosted: clears a per-thread flag; a signal that arrives while it is
    ///   clear is recorded as pending and delivered on re-enable, so masking
    ///   costs no system call.
    /// - riscv: clears `sstatus.SIE` (`csrrc`).
    fn irq_save(&self) -> bool;

    /// Unmask interrupts on this CPU when `enabled` is true, delivering any
    /// that arrived while they were masked; do nothing when it is false.
    ///
    /// - hosted: sets the per-thread flag, then delivers pending signals.
    /// - riscv: sets `sstatus.SIE`; pending interrupts trap at once.
    fn irq_restore(&self, enabled: bool);

    /// Whether interrupts are enabled on this CPU.
    fn irqs_enabled(&self) -> bool;

    /// Whether interrupts reach this CPU only at [`Interrupts::poll`]
    /// points, so long-running kernel code must call it regularly.
    ///
    /// - hosted (threads) and riscv: `false`: interrupts are asynchronous.
    /// - hosted, deterministic simulation: `true`.
    fn polled(&self) -> bool {
        false
    }

    /// A point where long-running code lets interrupts in.
    ///
    /// - hosted (threads) and riscv: does nothing (interrupts arrive on
    ///   their own).
    /// - hosted, deterministic simulation: advances the virtual clock by
    ///   one step, delivers the interrupts that became due if they are
    ///   enabled, and may switch to another simulated CPU.
    fn poll(&self) {}

    /// Mask interrupts until the returned guard drops.
    fn disable_irqs(&self) -> IrqGuard<'_, Self>
    where
        Self: Sized,
    {
        IrqGuard {
            irqs: self,
            was_enabled: self.irq_save(),
            _not_send: PhantomData,
        }
    }
}

/// Proof that interrupts are masked on this CPU. Not `Send`: the mask is a
/// property of the CPU that made it. Dropping it restores the previous state.
#[must_use = "interrupts are re-enabled as soon as the guard drops"]
pub struct IrqGuard<'a, I: Interrupts> {
    irqs: &'a I,
    was_enabled: bool,
    _not_send: PhantomData<*const ()>,
}

impl<I: Interrupts> Drop for IrqGuard<'_, I> {
    fn drop(&mut self) {
        self.irqs.irq_restore(self.was_enabled);
    }
}
