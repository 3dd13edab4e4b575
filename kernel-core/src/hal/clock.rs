//! The monotonic clock and the per-CPU one-shot timer.

use core::time::Duration;

/// Time and timer interrupts.
pub trait Clock {
    /// Time since boot, monotonic, the same on every CPU.
    ///
    /// - hosted: `clock_gettime(CLOCK_MONOTONIC)` minus the boot instant.
    /// - riscv: the `time` CSR scaled by the device tree's
    ///   `timebase-frequency`.
    fn now(&self) -> Duration;

    /// Arm this CPU's one-shot timer: a [`super::Interrupt::Timer`] arrives
    /// on this CPU once [`Clock::now`] reaches `deadline` (at once when it is
    /// already past). Replaces any earlier deadline of this CPU.
    ///
    /// - hosted: `timer_settime` (absolute) of the thread's POSIX timer,
    ///   which signals that thread only.
    /// - riscv: SBI `set_timer`.
    fn set_timer(&self, deadline: Duration);

    /// Disarm this CPU's timer. A timer interrupt already pending may still
    /// be delivered.
    ///
    /// - hosted: `timer_settime` with a zero value.
    /// - riscv: SBI `set_timer(u64::MAX)`.
    fn cancel_timer(&self);

    /// Wall-clock time since the Unix epoch, when the platform has a
    /// real-time clock.
    ///
    /// - hosted: `clock_gettime(CLOCK_REALTIME)`; in deterministic mode a
    ///   fixed epoch plus [`Clock::now`], so that replays see the same time.
    /// - riscv: the goldfish RTC the device tree names (QEMU `virt` has
    ///   one), `None` without it.
    fn wall_time(&self) -> Option<Duration>;
}
