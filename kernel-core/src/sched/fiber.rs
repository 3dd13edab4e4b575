//! Fibers: stackful coroutines over [`crate::arch::switch`].
//!
//! A [`Fiber`] runs a closure on a stack of its own. [`Fiber::resume`] runs
//! it until the closure calls [`Suspender::suspend`] (→
//! [`Resume::Suspended`]) or returns (→ [`Resume::Finished`]); the next
//! `resume` continues after that `suspend`. A fiber may create and resume
//! other fibers (they nest: each `suspend` returns to whoever called that
//! fiber's `resume` last). Processes run wasm on a fiber so that a host call
//! can suspend anywhere; the simulation HAL runs each simulated CPU as one.
//!
//! The stack is the caller's: anything implementing [`FiberStack`], such as
//! a [`KernelStack`] (a region of the kernel window between guard pages,
//! resident from creation) or, hosted, a host mapping.
//!
//! # Moving between CPUs
//!
//! A [`Fiber`] is not `Send`: the closure's locals live on the fiber stack
//! and travel with it, and the compiler cannot check that none of them is
//! bound to a thread or CPU (a CPU-local reference, an `Rc`, a lock guard
//! that must be released where it was taken). [`SendFiber::new`] asserts,
//! unsafely, that the body holds none across a suspend; a `SendFiber` may
//! then be resumed from any thread or CPU. Each `resume` saves the resumer's
//! own stack pointer, so nothing is cached per thread.
//!
//! # Dropping a suspended fiber
//!
//! A fiber dropped before it finished is abandoned: the frames on its
//! stack never run again and their destructors never run (the closure's
//! captures and locals are leaked, as with [`core::mem::forget`]). Its stack
//! is leaked as well, not released: a value pinned on that stack may be
//! referenced from elsewhere (an intrusive wait list) on the promise of
//! `Pin` that its memory stays valid until it is dropped, which it never
//! is. [`Fiber::into_stack`] takes the stack back for reuse or release,
//! unsafely, when the caller knows no such value exists. A fiber that never
//! started drops its closure normally; a finished one releases its stack on
//! drop.
//!
//! # Panics in the body
//!
//! The body runs inside an `extern "C"` start function at the bottom of the
//! fiber stack: a panic cannot unwind across the switch frame below it,
//! and reaching that boundary aborts (hosted: the process; in the kernel,
//! the panic handler stops the machine).
//!
//! Invariants:
//! - INV-FIBER-1: a fiber's [`Control`] block is on the heap at a fixed
//!   address from [`Fiber::new`] until the fiber is dropped; the fiber
//!   stack refers to it only while the fiber runs or is parked in a
//!   `suspend`, both of which end before the drop (dropping needs the
//!   `Fiber`, which a running body cannot own).
//! - INV-FIBER-2: the fiber runs only inside `resume`, on the resumer's
//!   thread; `resume` stores the resumer's `sp` into the control block on
//!   every call, and `suspend` (or the finish) switches to the `sp` stored
//!   last. At most one side runs at a time, so the control block's cells
//!   are never accessed concurrently.
//! - INV-FIBER-3: once `finished` is set the fiber's context is never
//!   switched into again: `resume` returns [`Resume::Finished`] without
//!   switching.
//! - INV-FIBER-4: the stack's memory stays valid while the fiber can run
//!   or be parked; it is released (the [`FiberStack`] dropped) only when
//!   the fiber never started or has finished, or through the unsafe
//!   [`Fiber::into_stack`].

use alloc::boxed::Box;
use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::Range;
use core::ptr::NonNull;

use crate::arch::switch::{INIT_BYTES, init_stack, switch};
use crate::hal::{Mmu, PAGE_SIZE, Perms, PhysMemory};
use crate::mem::{Commit, Mapping, Owner, RegionSpec, Vm, VmError};

/// Memory a fiber runs on.
///
/// # Safety
/// [`FiberStack::bounds`] returns the same range every time it is called
/// on one value, moving the value does not move that memory, and the range
/// is readable and writable memory that nothing else uses from when the
/// value is made until it is dropped. The range holds at least
/// [`MIN_STACK`] bytes and its end is 16-byte aligned.
pub unsafe trait FiberStack: Send {
    /// The usable range: lowest usable address .. top (exclusive).
    fn bounds(&self) -> Range<usize>;
}

/// The smallest stack [`Fiber::new`] accepts.
pub const MIN_STACK: usize = 1024;

/// What [`Fiber::resume`] returned after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// The body called [`Suspender::suspend`]; `resume` continues it.
    Suspended,
    /// The body returned; `resume` does nothing any more.
    Finished,
}

/// What a fiber's stack and the body share (INV-FIBER-1). Cells, because
/// both sides reach it through shared references, one at a time
/// (INV-FIBER-2).
struct Control<'a> {
    /// The `sp` of whoever called `resume` last.
    resumer_sp: Cell<usize>,
    /// The fiber's parked `sp` while it does not run.
    fiber_sp: Cell<usize>,
    /// The body returned (INV-FIBER-3).
    finished: Cell<bool>,
    /// The body, until the fiber starts.
    body: Cell<Option<Body<'a>>>,
}

type Body<'a> = Box<dyn FnOnce(&Suspender) + Send + 'a>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Fresh,
    Suspended,
    Finished,
}

/// A stackful coroutine running a closure on stack `S`; `'a` bounds what
/// the closure borrows.
pub struct Fiber<'a, S: FiberStack> {
    /// `ManuallyDrop` so that the drop can leak it (INV-FIBER-4).
    stack: ManuallyDrop<S>,
    /// From `Box::into_raw`; freed on drop (INV-FIBER-1).
    control: NonNull<Control<'a>>,
    state: State,
    _body: PhantomData<Body<'a>>,
}

/// Handed to a fiber's body: [`Suspender::suspend`] gives control back to
/// the resumer.
pub struct Suspender {
    control: NonNull<Control<'static>>,
}

impl Suspender {
    /// Switch back to whoever called [`Fiber::resume`] last; return when
    /// the fiber is resumed again (maybe from another thread or CPU, for a
    /// [`SendFiber`]).
    pub fn suspend(&self) {
        let c = self.control.as_ptr();
        // SAFETY: the control block lives while the fiber can run
        // (INV-FIBER-1), and a `Suspender` exists only inside the body.
        // `resumer_sp` was stored by the `resume` that runs us now
        // (INV-FIBER-2), which parked that context and waits for exactly
        // this switch; our stack stays valid while we are parked
        // (INV-FIBER-4).
        unsafe { switch((*c).fiber_sp.as_ptr(), (*c).resumer_sp.get()) }
    }
}

/// The bottom of every fiber stack: run the body, mark the fiber finished,
/// switch back for good.
unsafe extern "C" fn fiber_start(control: usize) -> ! {
    let control = control as *mut Control<'static>;
    // SAFETY: `Fiber::new` passed the address of its control block, which
    // lives while the fiber runs (INV-FIBER-1).
    let c = unsafe { &*control };
    if let Some(body) = c.body.take() {
        let suspender = Suspender {
            // SAFETY: `control` came from `Box::into_raw`, never null.
            control: unsafe { NonNull::new_unchecked(control) },
        };
        body(&suspender);
    }
    c.finished.set(true);
    // SAFETY: as in `Suspender::suspend`. After this switch the fiber is
    // never switched into again (INV-FIBER-3), so nothing returns here.
    unsafe { switch(c.fiber_sp.as_ptr(), c.resumer_sp.get()) };
    unreachable!("a finished fiber was resumed");
}

impl<'a, S: FiberStack> Fiber<'a, S> {
    /// A fiber that will run `f` on `stack` from its first
    /// [`Fiber::resume`].
    ///
    /// # Panics
    /// When `stack` breaks its [`FiberStack`] contract by being smaller
    /// than [`MIN_STACK`] or empty.
    pub fn new(stack: S, f: impl FnOnce(&Suspender) + Send + 'a) -> Self {
        let bounds = stack.bounds();
        assert!(
            bounds.end.saturating_sub(bounds.start) >= MIN_STACK.max(INIT_BYTES),
            "fiber stack of {:#x}..{:#x} is too small",
            bounds.start,
            bounds.end
        );
        let control = Box::into_raw(Box::new(Control {
            resumer_sp: Cell::new(0),
            fiber_sp: Cell::new(0),
            finished: Cell::new(false),
            body: Cell::new(Some(Box::new(f) as Body<'a>)),
        }));
        // SAFETY: the stack's memory is ours and unused (the `FiberStack`
        // contract) and holds more than `INIT_BYTES`; the returned `sp` is
        // switched into once, by the first `resume`, while the stack lives
        // (INV-FIBER-4). `fiber_start` never returns.
        let sp = unsafe { init_stack(bounds.end, fiber_start, control as usize) };
        // SAFETY: just made by `Box::into_raw`, so valid and unaliased.
        unsafe { (*control).fiber_sp.set(sp) };
        Self {
            stack: ManuallyDrop::new(stack),
            // SAFETY: `Box::into_raw` never returns null.
            control: unsafe { NonNull::new_unchecked(control) },
            state: State::Fresh,
            _body: PhantomData,
        }
    }

    /// Run the fiber until its body suspends or returns. A finished fiber
    /// returns [`Resume::Finished`] at once, running nothing.
    pub fn resume(&mut self) -> Resume {
        if self.state == State::Finished {
            return Resume::Finished;
        }
        let c = self.control.as_ptr();
        // SAFETY: the control block is ours (INV-FIBER-1) and the fiber is
        // parked (fresh or suspended; `&mut self` proves no other resume
        // runs), so its `fiber_sp` is a context parked once and not yet
        // switched into, on a stack that is still valid (INV-FIBER-4). The
        // fiber switches back to the `sp` stored here exactly once per
        // switch into it (INV-FIBER-2), while this frame is still alive
        // since we wait for it.
        unsafe { switch((*c).resumer_sp.as_ptr(), (*c).fiber_sp.get()) };
        // SAFETY: the fiber is parked again; the block is ours.
        if unsafe { (*c).finished.get() } {
            self.state = State::Finished;
            Resume::Finished
        } else {
            self.state = State::Suspended;
            Resume::Suspended
        }
    }

    /// Whether the body has returned.
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// The stack's usable range (the process layer derives wasm's stack
    /// limit from it).
    pub fn stack_bounds(&self) -> Range<usize> {
        self.stack.bounds()
    }

    /// Give up the fiber and take its stack back, also from a suspended
    /// fiber (whose frames are abandoned, their destructors never run).
    ///
    /// # Safety
    /// When the fiber is suspended, no value on its stack is pinned and
    /// relied upon by something that outlives this call (for example a
    /// node linked into an intrusive wait list): its memory is reused or
    /// released without its destructor running.
    pub unsafe fn into_stack(self) -> S {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used again nor dropped, so the stack is
        // moved out once; the control block is freed by `free_control`.
        let stack = unsafe { ManuallyDrop::take(&mut this.stack) };
        this.free_control();
        stack
    }

    /// Free the control block (and a body that never started).
    fn free_control(&mut self) {
        // SAFETY: from `Box::into_raw` in `new`; the fiber is parked and
        // is never resumed again (the caller consumes the fiber), so
        // nothing refers to the block any more (INV-FIBER-1).
        drop(unsafe { Box::from_raw(self.control.as_ptr()) });
    }
}

impl<S: FiberStack> Drop for Fiber<'_, S> {
    fn drop(&mut self) {
        self.free_control();
        if self.state != State::Suspended {
            // SAFETY: dropped once, here; never used after.
            unsafe { ManuallyDrop::drop(&mut self.stack) };
        }
        // A suspended fiber's stack is leaked (INV-FIBER-4).
    }
}

impl<S: FiberStack> fmt::Debug for Fiber<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Fresh => "fresh",
            State::Suspended => "suspended",
            State::Finished => "finished",
        };
        let b = self.stack_bounds();
        write!(f, "Fiber({state}, stack {:#x}..{:#x})", b.start, b.end)
    }
}

/// A [`Fiber`] that may be resumed from any thread or CPU.
pub struct SendFiber<'a, S: FiberStack>(Fiber<'a, S>);

// SAFETY: the control block is reached only by the thread that holds the
// fiber (INV-FIBER-2), the stack and the body are `Send`, and
// `SendFiber::new`'s contract covers what the body creates on its stack.
unsafe impl<S: FiberStack> Send for SendFiber<'_, S> {}

impl<'a, S: FiberStack> SendFiber<'a, S> {
    /// Allow `fiber` to move between threads or CPUs.
    ///
    /// # Safety
    /// The body keeps no value that is bound to its thread or CPU (not
    /// `Send`: an `Rc`, a CPU-local reference, a guard of a lock that must
    /// be released where it was taken) alive across a
    /// [`Suspender::suspend`].
    pub unsafe fn new(fiber: Fiber<'a, S>) -> Self {
        Self(fiber)
    }

    /// See [`Fiber::resume`].
    pub fn resume(&mut self) -> Resume {
        self.0.resume()
    }

    /// See [`Fiber::is_finished`].
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// See [`Fiber::stack_bounds`].
    pub fn stack_bounds(&self) -> Range<usize> {
        self.0.stack_bounds()
    }

    /// The fiber, no longer movable between threads.
    pub fn into_inner(self) -> Fiber<'a, S> {
        self.0
    }
}

impl<S: FiberStack> fmt::Debug for SendFiber<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The granule (log2 pages) of a [`KernelStack`] whose length allows it.
const STACK_GRANULE: u32 = 4;
/// The largest granule of a fiber stack: 512 KiB blocks.
const STACK_GRANULE_MAX: u32 = 7;

/// Why a [`KernelStack`] could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackError {
    /// The size, rounded up to pages, is below [`MIN_STACK`] or overflows.
    BadSize(usize),
    /// The address space refused (no room, the owner's limit, no memory).
    Vm(VmError),
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSize(n) => write!(f, "bad fiber stack size {n:#x}"),
            Self::Vm(e) => write!(f, "fiber stack: {e}"),
        }
    }
}

impl core::error::Error for StackError {}

/// A fiber stack in the kernel window: a region with an unmapped guard page
/// below and above, committed read + write and resident from creation,
/// charged to its owner (INV-VM-7) and released, frames and all, on drop.
///
/// INV-STACK-1: kernel code never takes a demand fault on its own stack.
/// Kernel code runs on these stacks while it holds locks (the address
/// space's write lock, the heap's), and the fault path takes the address
/// space's read lock (INV-VM-5): a stack page filled on first touch would
/// deadlock a CPU against itself inside `Vm::commit`, or against a CPU
/// that holds the write lock and waits for the heap lock a faulting CPU
/// holds. The commitment is the whole stack either way (INV-MEM-2), so
/// residency costs no accounting, only zeroing the stack once.
pub struct KernelStack<'k, H: Mmu + PhysMemory> {
    region: Mapping<'k, H>,
}

impl<'k, H: Mmu + PhysMemory> KernelStack<'k, H> {
    /// A stack of `len` bytes (rounded up to pages) charged to `owner`.
    ///
    /// # Errors
    /// [`StackError::BadSize`], or [`StackError::Vm`] when the window has
    /// no room or the owner's limit (for the kernel: RAM) cannot take the
    /// commitment; nothing is left reserved then.
    pub fn new(vm: Vm<'k, H>, len: usize, owner: Owner) -> Result<Self, StackError> {
        let pages = len.checked_next_multiple_of(PAGE_SIZE);
        let len = match pages {
            Some(n) if n >= MIN_STACK => n,
            _ => return Err(StackError::BadSize(len)),
        };
        // The largest granule up to 512 KiB that divides the length: a
        // 2 MiB stack is 4 blocks and 4 MMU calls (4 host mappings), not
        // 512; a 512 KiB stack is one.
        let granule = (STACK_GRANULE..=STACK_GRANULE_MAX)
            .rev()
            .find(|g| len % (PAGE_SIZE << g) == 0)
            .unwrap_or(0);
        let spec = RegionSpec {
            owner,
            granule,
            ..RegionSpec::new(len)
        };
        let region = Mapping::reserve(vm, &spec).map_err(StackError::Vm)?;
        region
            .commit(0, len, Perms::READ_WRITE, Commit::Eager)
            .map_err(StackError::Vm)?;
        Ok(Self { region })
    }

    /// Granules with a frame now (all of them: INV-STACK-1).
    pub fn resident(&self) -> usize {
        self.region.resident()
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.region.range().len
    }

    /// Whether it has no bytes (never: at least `MIN_STACK`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Charge it to `owner` from now on, to hand it to another fiber
    /// (a pool of stacks). Its contents stay: neither kernel code nor wasm
    /// code reads stack memory it has not written (Rust's and Cranelift's
    /// guarantees), and wasm cannot address its stack at all.
    ///
    /// # Errors
    /// [`StackError::Vm`] when `owner` cannot take the charge; nothing
    /// changed then.
    pub fn reassign(&self, owner: Owner) -> Result<(), StackError> {
        self.region.reassign(owner).map_err(StackError::Vm)
    }
}

// SAFETY: the region is reserved for this value alone until it is dropped
// (INV-VM-1), committed read + write over its whole usable range, which
// is page-aligned (so its end is 16-byte aligned) and at least `MIN_STACK`
// bytes; the range does not depend on where the value is.
unsafe impl<H: Mmu + PhysMemory + Sync> FiberStack for KernelStack<'_, H> {
    fn bounds(&self) -> Range<usize> {
        let r = self.region.range();
        r.start..r.start + r.len
    }
}

impl<H: Mmu + PhysMemory> fmt::Debug for KernelStack<'_, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.region.range();
        write!(f, "KernelStack({:#x}, {:#x} bytes)", r.start, r.len)
    }
}

#[cfg(test)]
mod tests;
