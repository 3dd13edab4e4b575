//! Interrupt-safe synchronization for kernel code and tasks: a spin mutex
//! that masks the local CPU's interrupts ([`IrqMutex`]), a queue of waiting
//! tasks ([`WaitQueue`]) and a bounded multi-producer multi-consumer channel
//! ([`channel()`]).
//!
//! This module owns the lock protocol; its `wait` part owns waiter
//! registration and its `channel` part the channel state. None of them uses
//! `unsafe` (denied here).
//!
//! Invariants:
//! - INV-SYNC-1 (masked while held): an [`IrqMutex`] masks the calling CPU's
//!   interrupts before it spins for the lock and restores the previous state
//!   only after the lock is released (the guard's fields drop in that order).
//!   So an interrupt handler on the holding CPU never runs while the lock is
//!   held (it cannot spin on it or delay the holder), and the guard, which
//!   is not `Send`, restores the mask on the CPU that saved it.
//! - INV-SYNC-2 (no user code under a lock): nothing wakes or drops a
//!   [`core::task::Waker`], nor drops a queued value, while holding an
//!   [`IrqMutex`] of this module: they are taken out under the lock and
//!   woken or dropped after it is released, as the executor does
//!   (INV-SCHED-2). Interrupt handlers never touch these structures (a wake
//!   may allocate).
//! - INV-SYNC-3: a [`IrqCtl`] that yields no interrupt control
//!   ([`IrqCtl::irqs`] returns `None`: the executor is gone) means no CPU
//!   of that executor can run a handler that touches the structure any
//!   more, so the lock is taken without masking.

#![deny(unsafe_code)]

mod channel;
mod wait;

#[cfg(test)]
mod tests;

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

pub use channel::{Receiver, RecvError, SendError, Sender, TryRecvError, TrySendError, channel};
pub use wait::{WaitFor, WaitQueue};

use super::{HalRef, Handle, SchedHal};
use crate::hal::Interrupts;

/// Access to the calling CPU's interrupt mask, as a lock needs it.
///
/// Implemented for a borrowed HAL part (`&'h H`, for structures that live
/// no longer than the HAL) and for an executor [`Handle`] (for structures
/// held by `'static` tasks: the HAL is reached through the executor's
/// counted reference, INV-SCHED-3).
pub trait IrqCtl {
    /// The HAL part that masks interrupts.
    type Irqs: Interrupts;
    /// A reference to it, held while interrupts are masked.
    type Ref<'a>: Deref<Target = Self::Irqs>
    where
        Self: 'a;

    /// The interrupt control, or `None` when nothing can interrupt a user of
    /// the structure any more (INV-SYNC-3).
    fn irqs(&self) -> Option<Self::Ref<'_>>;
}

impl<H: Interrupts> IrqCtl for &H {
    type Irqs = H;
    type Ref<'a>
        = &'a H
    where
        Self: 'a;

    fn irqs(&self) -> Option<&H> {
        Some(*self)
    }
}

impl<H: SchedHal> IrqCtl for Handle<H> {
    type Irqs = H;
    type Ref<'a>
        = HalRef<'a, H>
    where
        Self: 'a;

    fn irqs(&self) -> Option<HalRef<'_, H>> {
        self.shared.hal()
    }
}

/// A spin mutex that masks the local CPU's interrupts while held
/// (INV-SYNC-1).
pub struct IrqMutex<C, T> {
    ctl: C,
    data: spin::Mutex<T>,
}

/// Masked interrupts, restored on drop to the state saved when masking.
struct Masked<R: Deref<Target: Interrupts>> {
    irqs: Option<R>,
    was_enabled: bool,
    _not_send: PhantomData<*const ()>,
}

impl<R: Deref<Target: Interrupts>> Masked<R> {
    fn new(irqs: Option<R>) -> Self {
        let was_enabled = irqs.as_ref().is_some_and(|i| i.irq_save());
        Self {
            irqs,
            was_enabled,
            _not_send: PhantomData,
        }
    }
}

impl<R: Deref<Target: Interrupts>> Drop for Masked<R> {
    fn drop(&mut self) {
        if let Some(irqs) = &self.irqs {
            irqs.irq_restore(self.was_enabled);
        }
    }
}

/// The lock of an [`IrqMutex`]: access to the data with the CPU's
/// interrupts masked. Not `Send` (the mask belongs to the CPU that took the
/// lock); dropping it releases the lock, then restores the interrupt state.
#[must_use = "the lock is released as soon as the guard drops"]
pub struct IrqMutexGuard<'a, C: IrqCtl + 'a, T> {
    // Field order is drop order (INV-SYNC-1): unlock, then unmask.
    data: spin::MutexGuard<'a, T>,
    _masked: Masked<C::Ref<'a>>,
}

impl<C: IrqCtl, T> IrqMutex<C, T> {
    /// A mutex over `value` whose lock masks interrupts through `ctl`.
    pub const fn new(ctl: C, value: T) -> Self {
        Self {
            ctl,
            data: spin::Mutex::new(value),
        }
    }

    /// Mask interrupts on this CPU, then spin until the lock is free.
    ///
    /// Never call it from an interrupt handler, nor while holding the same
    /// lock (a spin lock does not recurse).
    pub fn lock(&self) -> IrqMutexGuard<'_, C, T> {
        let masked = Masked::new(self.ctl.irqs());
        IrqMutexGuard {
            data: self.data.lock(),
            _masked: masked,
        }
    }

    /// The lock if it is free now; interrupts are left as they were when it
    /// is not.
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, C, T>> {
        let masked = Masked::new(self.ctl.irqs());
        let data = self.data.try_lock()?;
        Some(IrqMutexGuard {
            data,
            _masked: masked,
        })
    }

    /// The data, through exclusive access (no lock needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// The data, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }

    /// The interrupt control this mutex masks through.
    pub const fn ctl(&self) -> &C {
        &self.ctl
    }
}

impl<C: IrqCtl, T> Deref for IrqMutexGuard<'_, C, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

impl<C: IrqCtl, T> DerefMut for IrqMutexGuard<'_, C, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.data
    }
}
