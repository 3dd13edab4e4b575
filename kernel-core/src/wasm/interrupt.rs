//! Preemption of running wasm code: the store's interrupt cell and the
//! `Epoch` builtin.
//!
//! Every `VMContext` points at its store's [`Interrupt`] (VMContext
//! `interrupt` slot). JIT code compares the kernel's epoch (a `u64` the
//! cell points at, advanced by timer interrupts) with the cell's deadline
//! at every function entry and loop header (translate INV-10); when the
//! epoch has reached the deadline it calls [`Builtin::Epoch`], which runs
//! the store's hook. The hook decides: go on (after maybe suspending the
//! caller's fiber and moving the deadline) or interrupt the code, which
//! then traps with [`TrapKind::Interrupted`](super::TrapKind::Interrupted).
//!
//! Invariants:
//! - INV-INT-1: the cell lives as long as its store; its address and its
//!   epoch pointer never change while JIT code may read them, and the
//!   epoch it points at outlives the store (it is the kernel's).
//! - INV-INT-2: `deadline` is the only word written while code runs; any
//!   CPU may lower it (to `0` to make the next check call the hook), which
//!   is how a process on another CPU is stopped.
//! - INV-INT-3: the hook is set at most once, before any code of the store
//!   runs, and is never called re-entrantly from a signal (it runs in the
//!   builtin, in the wasm code's own context).
//!
//! [`Builtin::Epoch`]: super::builtins::Builtin::Epoch

use alloc::boxed::Box;
use core::sync::atomic::{AtomicU64, Ordering};

/// Byte offset of [`Interrupt`]'s deadline (JIT code reads it).
pub const DEADLINE_OFFSET: u32 = 0;
/// Byte offset of [`Interrupt`]'s epoch pointer (JIT code reads it).
pub const EPOCH_PTR_OFFSET: u32 = 8;

/// What the hook tells the interrupted code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookAction {
    /// Go on running.
    Continue,
    /// Stop: the code traps with `Interrupted`.
    Interrupt,
}

/// The hook a store runs when a check finds its deadline reached.
pub type Hook<'a> = dyn Fn(&Interrupt<'a>) -> HookAction + Send + Sync + 'a;

/// A store's preemption cell. `#[repr(C)]`: JIT code reads the first two
/// words at [`DEADLINE_OFFSET`] and [`EPOCH_PTR_OFFSET`].
#[repr(C)]
pub struct Interrupt<'a> {
    deadline: AtomicU64,
    epoch: *const AtomicU64,
    hook: spin::Once<Box<Hook<'a>>>,
}

// SAFETY: `epoch` points at an atomic that outlives the cell (INV-INT-1)
// and is only read through atomics; the other fields are Sync.
unsafe impl Sync for Interrupt<'_> {}
// SAFETY: as for Sync: nothing in the cell is tied to a CPU.
unsafe impl Send for Interrupt<'_> {}

impl<'a> Interrupt<'a> {
    /// A cell over `epoch` with no deadline (checks never fire).
    ///
    /// # Safety
    /// `epoch` outlives the cell (INV-INT-1).
    pub(crate) unsafe fn new(epoch: &AtomicU64) -> Self {
        Self {
            deadline: AtomicU64::new(u64::MAX),
            epoch,
            hook: spin::Once::new(),
        }
    }

    /// The epoch now.
    pub fn epoch(&self) -> u64 {
        // SAFETY: INV-INT-1.
        unsafe { &*self.epoch }.load(Ordering::Acquire)
    }

    /// The deadline checks compare the epoch with.
    pub fn deadline(&self) -> u64 {
        self.deadline.load(Ordering::Acquire)
    }

    /// Make checks call the hook once the epoch reaches `deadline`
    /// (`u64::MAX`: never; `0`: at the next check).
    pub fn set_deadline(&self, deadline: u64) {
        self.deadline.store(deadline, Ordering::Release);
    }

    /// Install the hook (INV-INT-3); a second call changes nothing and
    /// returns `false`.
    pub fn set_hook(&self, hook: Box<Hook<'a>>) -> bool {
        let mut fresh = false;
        self.hook.call_once(|| {
            fresh = true;
            hook
        });
        fresh
    }

    /// What the `Epoch` builtin does: run the hook, or without one push
    /// the deadline out of reach and go on.
    pub(crate) fn fire(&self) -> HookAction {
        match self.hook.get() {
            Some(hook) => hook(self),
            None => {
                self.set_deadline(u64::MAX);
                HookAction::Continue
            }
        }
    }
}
