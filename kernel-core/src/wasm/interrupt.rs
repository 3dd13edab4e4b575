//! Preemption of running wasm code: the store's interrupt cell and the
//! `Epoch` builtin.
//!
//! Every `VMContext` points at its store's [`Interrupt`] (VMContext
//! `interrupt` slot). The cell holds a deadline on the kernel's epoch (a
//! `u64` of microseconds the cell points at, advanced by timer interrupts)
//! and a `due` word that says whether the epoch has reached it. JIT code
//! tests only `due` (one load and a branch) at every loop header and at
//! the entry of every function that loops or calls (translate INV-10); when it is set the code calls
//! [`Builtin::Epoch`], which runs the store's hook. The hook decides: go
//! on (after maybe suspending the caller's fiber and moving the deadline)
//! or interrupt the code, which then traps with
//! [`TrapKind::Interrupted`](super::TrapKind::Interrupted).
//!
//! Invariants:
//! - INV-INT-1: the cell lives as long as its store; its address and its
//!   epoch pointer never change while JIT code may read them, and the
//!   epoch it points at outlives the store (it is the kernel's).
//! - INV-INT-2: `deadline` and `due` are the only words written while code
//!   runs; any CPU may lower the deadline (to `0` to make the next check
//!   call the hook), which is how a process on another CPU is stopped.
//! - INV-INT-3: the hook is set at most once, before any code of the store
//!   runs, and is never called re-entrantly from a signal (it runs in the
//!   builtin, in the wasm code's own context).
//! - INV-INT-4: `due` is never clear while `epoch >= deadline` holds and
//!   nothing is about to set it: whoever moves the deadline re-arms `due`
//!   (clear, then set if reached, all `SeqCst`, so of two racing re-arms
//!   the one that reads the final deadline stores last); the epoch only
//!   grows, and its growth is observed by the CPU that runs the cell (the
//!   timer interrupt polls the cell [`CpuWasm`] names as running, see
//!   [`Preempt::poll`]) and by every re-arm. A set `due` with a deadline
//!   not reached is harmless: the builtin re-arms and goes on.
//!
//! [`Builtin::Epoch`]: super::builtins::Builtin::Epoch
//! [`CpuWasm`]: super::entry::CpuWasm

use alloc::boxed::Box;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

/// Byte offset of [`Interrupt`]'s `due` word (JIT code reads it).
pub const DUE_OFFSET: u32 = 0;
/// Byte offset of [`Interrupt`]'s status word: the verdict of the last
/// `EpochSaving` call, non-zero to interrupt (JIT code reads it right
/// after the call, on the same CPU).
pub const STATUS_OFFSET: u32 = 24;

// JIT code finds `due` at DUE_OFFSET of the cell.
const _: () = assert!(
    core::mem::offset_of!(Interrupt<'static>, words) + core::mem::offset_of!(Preempt, due)
        == DUE_OFFSET as usize
);
const _: () = assert!(
    core::mem::offset_of!(Interrupt<'static>, words) + core::mem::offset_of!(Preempt, status)
        == STATUS_OFFSET as usize
);

/// The words of a cell the JIT code and the timer interrupt use: plain
/// data, so a CPU can name the cell it runs without its store's lifetime.
/// `#[repr(C)]`: `due` is at offset 0.
#[repr(C)]
pub struct Preempt {
    due: AtomicU64,
    deadline: AtomicU64,
    epoch: *const AtomicU64,
    status: AtomicU64,
}

// SAFETY: `epoch` points at an atomic that outlives the cell (INV-INT-1)
// and is only read through atomics; the other fields are atomics.
unsafe impl Sync for Preempt {}
// SAFETY: as for Sync: nothing in it is tied to a CPU.
unsafe impl Send for Preempt {}

impl Preempt {
    /// The epoch now.
    pub fn epoch(&self) -> u64 {
        // SAFETY: INV-INT-1.
        unsafe { &*self.epoch }.load(Ordering::SeqCst)
    }

    fn reached(&self) -> bool {
        self.epoch() >= self.deadline.load(Ordering::SeqCst)
    }

    /// Set `due` if the epoch has reached the deadline (the timer
    /// interrupt, on the CPU running the cell's code: INV-INT-4). Only
    /// ever sets it, so it allocates nothing, takes no lock and is safe in
    /// trap context.
    pub(crate) fn poll(&self) {
        if self.reached() {
            self.due.store(1, Ordering::SeqCst);
        }
    }

    /// Clear `due`, then set it again if the deadline is reached
    /// (INV-INT-4).
    fn rearm(&self) {
        self.due.store(0, Ordering::SeqCst);
        self.poll();
    }
}

/// The cell whose code a CPU is running, for that CPU's timer interrupt
/// (INV-INT-4). Only its own CPU touches it: the code that resumes a
/// process ([`Running::run`]) and that CPU's interrupt handler
/// ([`Running::poll`]).
pub struct Running(AtomicPtr<Preempt>);

impl Default for Running {
    fn default() -> Self {
        Self(AtomicPtr::new(core::ptr::null_mut()))
    }
}

impl Running {
    /// Run `f` with `cell` (or none) named as running on this CPU; the
    /// cell named before is named again when `f` returns or unwinds.
    pub(crate) fn run<R>(&self, cell: Option<&Preempt>, f: impl FnOnce() -> R) -> R {
        struct Restore<'r>(&'r AtomicPtr<Preempt>, *mut Preempt);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.store(self.1, Ordering::SeqCst);
            }
        }
        let p = cell.map_or(core::ptr::null_mut(), |c| core::ptr::from_ref(c).cast_mut());
        let prev = self.0.swap(p, Ordering::SeqCst);
        let _restore = Restore(&self.0, prev);
        f()
    }

    /// Name `cell` as running from inside [`Running::run`]'s `f`: for a
    /// cell that appears while the code runs (a process attaches its
    /// store's cell on its first slice).
    ///
    /// # Safety
    /// Called on this CPU from inside `run`'s `f`, and `cell` outlives
    /// that `run` call.
    pub(crate) unsafe fn attach(&self, cell: &Preempt) {
        self.0
            .store(core::ptr::from_ref(cell).cast_mut(), Ordering::SeqCst);
    }

    /// The timer interrupt: set the running cell's `due` if its deadline
    /// is reached. Trap context: no heap, no lock.
    pub(crate) fn poll(&self) {
        let p = self.0.load(Ordering::SeqCst);
        // SAFETY: a non-null pointer was stored by `run` (or `attach`
        // inside it) on this CPU and names a cell that lives until `run`
        // stores the previous value back; this runs on the same CPU,
        // between those two stores (an interrupt handler runs to
        // completion before the interrupted code goes on), so the cell is
        // alive.
        if let Some(cell) = unsafe { p.as_ref() } {
            cell.poll();
        }
    }
}

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

/// How a `memory.atomic.wait` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEnd {
    /// A `notify` woke it (or may have: the caller asks the waiter).
    Woken,
    /// Its timeout passed.
    TimedOut,
    /// Its process was killed meanwhile.
    Killed,
}

/// How a store's code waits in `memory.atomic.wait`: block until `woken`
/// completes or `timeout` passes (`None`: no limit). A process installs
/// one that suspends its fiber, so other processes run meanwhile; without
/// one the CPU polls the waiter and the clock.
pub type WaitHook<'a> = dyn Fn(crate::wasm::futex::WaitFuture, Option<core::time::Duration>) -> WaitEnd
    + Send
    + Sync
    + 'a;

/// A store's preemption cell. `#[repr(C)]`: JIT code reads `due` at
/// [`DUE_OFFSET`].
#[repr(C)]
pub struct Interrupt<'a> {
    words: Preempt,
    hook: spin::Once<Box<Hook<'a>>>,
    wait: spin::Once<Box<WaitHook<'a>>>,
}

impl<'a> Interrupt<'a> {
    /// A cell over `epoch` with no deadline (checks never fire).
    ///
    /// # Safety
    /// `epoch` outlives the cell (INV-INT-1).
    pub(crate) unsafe fn new(epoch: &AtomicU64) -> Self {
        Self {
            words: Preempt {
                due: AtomicU64::new(0),
                deadline: AtomicU64::new(u64::MAX),
                epoch,
                status: AtomicU64::new(0),
            },
            hook: spin::Once::new(),
            wait: spin::Once::new(),
        }
    }

    /// Install the wait hook ([`WaitHook`]); a second call changes
    /// nothing and returns `false`.
    pub fn set_wait_hook(&self, hook: Box<WaitHook<'a>>) -> bool {
        let mut fresh = false;
        self.wait.call_once(|| {
            fresh = true;
            hook
        });
        fresh
    }

    /// The wait hook, if one is installed.
    pub(crate) fn wait_hook(&self) -> Option<&WaitHook<'a>> {
        self.wait.get().map(|b| &**b)
    }

    /// The words the JIT code and the timer interrupt use.
    pub(crate) fn words(&self) -> &Preempt {
        &self.words
    }

    /// The epoch now.
    pub fn epoch(&self) -> u64 {
        self.words.epoch()
    }

    /// The deadline checks compare the epoch with.
    pub fn deadline(&self) -> u64 {
        self.words.deadline.load(Ordering::SeqCst)
    }

    /// Whether the next check calls the hook.
    pub fn is_due(&self) -> bool {
        self.words.due.load(Ordering::SeqCst) != 0
    }

    /// Make checks call the hook once the epoch reaches `deadline`
    /// (`u64::MAX`: never; `0`: at the next check).
    pub fn set_deadline(&self, deadline: u64) {
        self.words.deadline.store(deadline, Ordering::SeqCst);
        self.words.rearm();
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

    /// What the `Epoch` builtin does when a check finds `due` set: re-arm
    /// it; if the deadline has not been reached after all, go on;
    /// otherwise [`Interrupt::fire`], and re-arm again for the deadline
    /// the hook left (INV-INT-4).
    pub(crate) fn check(&self) -> HookAction {
        self.words.rearm();
        if !self.is_due() {
            return HookAction::Continue;
        }
        let action = self.fire();
        self.words.rearm();
        action
    }

    /// [`Interrupt::check`] for the `EpochSaving` builtin: its verdict
    /// goes to the status word the caller reads.
    pub(crate) fn check_to_status(&self) {
        let interrupt = self.check() == HookAction::Interrupt;
        self.words
            .status
            .store(u64::from(interrupt), Ordering::Relaxed);
    }

    /// Run the hook, or without one push the deadline out of reach and go
    /// on.
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
