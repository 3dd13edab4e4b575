//! One process: its shared record ([`Process`]), the link between its
//! fiber and the executor task that drives it, and that task ([`Driver`]).
//!
//! The driver's poll runs the fiber for one slice on the polling CPU:
//! it moves the process's wasm entry state onto the CPU (a fiber may have
//! been suspended inside wasm on another CPU), sets the quantum (interrupt
//! deadline and the CPU's one-shot timer), resumes the fiber, and on return
//! takes the entry state back and charges the elapsed time. A suspended
//! fiber has left a [`Request`]: `Yield` re-queues the task at the back
//! (round robin); `Wait` hands over a future the task polls until it is
//! ready, then the fiber is resumed.
//!
//! Invariants:
//! - INV-PROCESS-1: the fiber runs only inside `Driver::slice`, on the CPU
//!   polling the driver, and suspends back to it; so `suspender` is read
//!   (by host calls and the preemption hook, which run on the fiber) only
//!   while the fiber body runs, and points at the body's live `Suspender`.
//! - INV-PROCESS-2: a kill sets `kill` first, then lowers the store's
//!   deadline and wakes the driver; the driver registers its waker before
//!   re-reading `kill`; so a kill always reaches a running, queued or
//!   waiting process (the running code at its next check, a wait by its
//!   future being dropped and the host call returning `Killed`).
//! - INV-PROCESS-3: the exit status is published (and waiters woken) by
//!   the driver after the fiber, and with it the store, the handle table
//!   and the stack, have been dropped (INV-PROC-2).
//! - INV-PROCESS-4: one poll of the driver is one turn on the CPU, at most
//!   a quantum long however many slices it takes: a wait that completes
//!   at once resumes the fiber within the same turn (same interrupt
//!   deadline, same timer), and a turn that is over requeues the task
//!   before resuming again. So a process looping on calls that complete
//!   at once (`sleep(0)`, a ready channel) still gives up the CPU, and
//!   the timer that ends its quantum is not pushed back by each call.
//! - INV-PROCESS-6: killing a process kills its whole subtree at once,
//!   not level by level as each one ends: each killed process's kill flag
//!   is set before its children are taken, and a process adopting a child
//!   looks at its own flag after the child is in its list, so a child
//!   spawned by a process being killed is killed too. (A subtree that grows
//!   as fast as a level-by-level kill moves down it, a fork bomb, would
//!   otherwise outlive its root.)
//! - INV-PROCESS-5: a process leaves its scope's table exactly once: when
//!   its holders (the scope's claim for a process it spawned, the handles
//!   naming it) are all gone and its task has finished, whichever of those
//!   comes last; the driver marks the end after it has dropped the fiber
//!   and before it publishes the status.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use super::debug::DebugState;
use super::handles::KernelIrqs;
use super::{
    ExitStatus, Inner, KillReason, LoadError, Object, Pid, ProcTable, SpawnOptions, WaitFuture,
};
use crate::hal::{Interrupts, Platform};
use crate::kernel::CpuState;
use crate::mem::{Hold, Owner};
use crate::sched::fiber::{Fiber, KernelStack, Resume, SendFiber, Suspender};
use crate::sched::{SchedHal, WaitQueue};
use crate::wasm::interrupt::{HookAction, Interrupt};

/// What a suspended fiber asks its driver for.
pub(crate) enum Request<'a> {
    /// Run others first (quantum over, or `yield`).
    Yield,
    /// Poll this until it is ready, then resume.
    Wait(WaitFuture<'a>),
}

/// A row of the process table, for summaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    /// The process id.
    pub pid: Pid,
    /// The process whose `spawn` started it (`None`: the scope did).
    pub parent: Option<Pid>,
    /// Whether it is suspended in a waiting system call.
    pub waiting: bool,
    /// The name it was spawned with.
    pub name: String,
    /// CPU time it has used.
    pub cpu_time: Duration,
    /// Slices it has run (times it was switched in).
    pub slices: u64,
    /// The CPU it last ran on.
    pub last_cpu: usize,
    /// How it ended, or `Running`.
    pub status: ExitStatus,
    /// The trap that ended it, with its wasm backtrace, if one did.
    pub trap: Option<crate::wasm::vm::Trap>,
}

const NOT_KILLED: u8 = 0;

fn kill_code(r: KillReason) -> u8 {
    match r {
        KillReason::Request => 1,
        KillReason::Deadline => 2,
        KillReason::Shutdown => 3,
        KillReason::Parent => 4,
    }
}

fn kill_reason(code: u8) -> Option<KillReason> {
    match code {
        1 => Some(KillReason::Request),
        2 => Some(KillReason::Deadline),
        3 => Some(KillReason::Shutdown),
        4 => Some(KillReason::Parent),
        _ => None,
    }
}

/// Who keeps a process in its scope's table (INV-PROCESS-5).
#[derive(Clone, Copy, Debug)]
struct Holders {
    /// The scope, for a process it spawned, until [`super::Procs::reap`].
    scope: bool,
    /// Handles naming it ([`super::Claim`]s).
    handles: usize,
    /// Its task has finished.
    ended: bool,
}

impl Holders {
    fn reapable(self) -> bool {
        self.ended && !self.scope && self.handles == 0
    }
}

/// A process's shared record: the table, its driver, its fiber's host
/// calls and its waiters all hold it. Opaque outside the kernel except for
/// its id and status.
pub struct Process<'a> {
    pid: Pid,
    name: String,
    /// Its arguments and environment.
    program: super::Program,
    options: SpawnOptions,
    /// Whether the scope spawned it (else a process's `spawn` did).
    root: bool,
    /// The process whose `spawn` started it.
    parent: Option<Pid>,
    /// Suspended in a waiting host call ([`Process::block_on`]).
    waiting: AtomicBool,
    /// Ctrl-C on the console kills it (`tty`).
    foreground: AtomicBool,
    /// Its row of the debugger's process table (`debug`).
    debug: super::debug::DebugEntry,
    holders: spin::Mutex<Holders>,
    /// The table it is in, to leave when it is reaped.
    table: Weak<ProcTable<'a>>,
    /// When its deadline passes, on the clock.
    deadline_at: Option<Duration>,
    /// The processes it spawned, killed when it ends (INV-PROC-4).
    children: spin::Mutex<Vec<Weak<Process<'a>>>>,
    status: spin::Mutex<ExitStatus>,
    /// The trap that ended it, if one did.
    trap: spin::Mutex<Option<crate::wasm::vm::Trap>>,
    /// Tasks waiting for the status to leave `Running`.
    exited: WaitQueue<KernelIrqs<'a>>,
    cpu_ns: AtomicU64,
    slices: AtomicU64,
    last_cpu: AtomicUsize,
    kill: AtomicU8,
    /// The store's interrupt cell, once the store exists.
    interrupt: spin::Once<Arc<Interrupt<'a>>>,
    /// The epoch at which the current slice ends.
    slice_end: AtomicU64,
    /// The driver's waker while it polls a `Wait` (INV-PROCESS-2).
    driver: spin::Mutex<Option<Waker>>,
    /// The request the fiber left when it suspended.
    request: spin::Mutex<Option<Request<'a>>>,
    /// `&Suspender` of the running fiber body, as an address (0: none;
    /// INV-PROCESS-1).
    suspender: AtomicUsize,
    /// The platform, when it takes interrupts only at poll points
    /// ([`Interrupts::polled`]): every preemption check then polls it.
    polled: Option<&'a (dyn Interrupts + Sync)>,
}

impl<'a> Process<'a> {
    /// A record for `pid` (with its row of the debugger's table); without
    /// a `parent` the scope spawns it (and holds it until reaped), else its
    /// parent's first handle holds it ([`super::Claim::adopt`]).
    pub(crate) fn new(
        (pid, debug): (Pid, super::debug::DebugEntry),
        (name, program): (String, super::Program),
        options: SpawnOptions,
        deadline_at: Option<Duration>,
        irqs: &'a (dyn Interrupts + Sync),
        table: Weak<ProcTable<'a>>,
        parent: Option<Pid>,
    ) -> Self {
        let root = parent.is_none();
        Self {
            pid,
            name,
            program,
            options,
            root,
            parent,
            waiting: AtomicBool::new(false),
            foreground: AtomicBool::new(false),
            debug,
            holders: spin::Mutex::new(Holders {
                scope: root,
                handles: usize::from(!root),
                ended: false,
            }),
            table,
            deadline_at,
            children: spin::Mutex::new(Vec::new()),
            status: spin::Mutex::new(ExitStatus::Running),
            trap: spin::Mutex::new(None),
            exited: WaitQueue::new(KernelIrqs::new(irqs)),
            cpu_ns: AtomicU64::new(0),
            slices: AtomicU64::new(0),
            last_cpu: AtomicUsize::new(0),
            kill: AtomicU8::new(NOT_KILLED),
            interrupt: spin::Once::new(),
            slice_end: AtomicU64::new(u64::MAX),
            driver: spin::Mutex::new(None),
            request: spin::Mutex::new(None),
            suspender: AtomicUsize::new(0),
            polled: irqs.polled().then_some(irqs),
        }
    }

    /// The deadline the store's checks use in a slice ending at `end`:
    /// at once when killed, and at every check on a polled platform.
    fn check_deadline(&self, end: u64) -> u64 {
        if self.killed().is_some() || self.polled.is_some() {
            0
        } else {
            end
        }
    }

    /// The process id.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Its row for summaries.
    pub(crate) fn info(&self) -> ProcInfo {
        ProcInfo {
            pid: self.pid,
            parent: self.parent,
            waiting: self.waiting.load(Ordering::Relaxed),
            name: self.name.clone(),
            cpu_time: Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed)),
            slices: self.slices.load(Ordering::Relaxed),
            last_cpu: self.last_cpu.load(Ordering::Relaxed),
            status: *self.status.lock(),
            trap: self.trap.lock().clone(),
        }
    }

    /// Record the trap that ends it (its status says the kind).
    pub(crate) fn set_trap(&self, trap: &crate::wasm::vm::Trap) {
        *self.trap.lock() = Some(trap.clone());
    }

    /// The process whose `spawn` started it.
    pub(crate) fn parent(&self) -> Option<Pid> {
        self.parent
    }

    /// Mark it as the console's foreground: Ctrl-C kills it.
    pub(crate) fn set_foreground(&self) {
        self.foreground.store(true, Ordering::Relaxed);
    }

    /// Whether Ctrl-C on the console kills it.
    pub(crate) fn is_foreground(&self) -> bool {
        self.foreground.load(Ordering::Relaxed)
    }

    /// The name it was spawned with.
    pub(crate) fn name(&self) -> String {
        self.name.clone()
    }

    /// Its arguments and environment.
    pub(crate) fn program(&self) -> &super::Program {
        &self.program
    }

    /// CPU time it has used so far.
    pub(crate) fn cpu_time(&self) -> Duration {
        Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed))
    }

    /// Its options.
    pub(crate) fn options(&self) -> SpawnOptions {
        self.options
    }

    /// Why it was killed, if it was.
    pub(crate) fn killed(&self) -> Option<KillReason> {
        kill_reason(self.kill.load(Ordering::SeqCst))
    }

    /// The options a child it spawns at `now` gets from `defaults`: no more
    /// memory than its own limit, and no deadline later than its own
    /// (INV-PROC-4).
    pub(crate) fn child_options(&self, defaults: SpawnOptions, now: Duration) -> SpawnOptions {
        let inherited = self.deadline_at.map(|at| at.saturating_sub(now));
        let deadline = match (defaults.deadline, inherited) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        SpawnOptions {
            memory_limit: defaults.memory_limit.min(self.options.memory_limit),
            deadline,
            ..defaults
        }
    }

    /// Record `child` as spawned by it; a child adopted once it has been
    /// killed is killed too (INV-PROCESS-6).
    pub(crate) fn adopt(&self, child: &Arc<Process<'a>>) {
        self.children.lock().push(Arc::downgrade(child));
        if self.killed().is_some() {
            self.kill_children();
        }
    }

    /// Stop counting `child` as its child: it is no longer killed when
    /// this process ends, nor counted against [`super::MAX_CHILDREN`].
    /// False when it is not a child of this process (or already
    /// detached).
    pub(crate) fn detach(&self, child: &Process<'a>) -> bool {
        let mut children = self.children.lock();
        let before = children.len();
        children.retain(|c| !core::ptr::eq(c.as_ptr(), child));
        children.len() != before
    }

    /// Whether the scope spawned it (and so reaps it).
    pub(crate) fn reaped_by_scope(&self) -> bool {
        self.root
    }

    /// Change the holders and take it out of its table when that makes it
    /// reapable (INV-PROCESS-5).
    fn update_holders(&self, change: impl FnOnce(&mut Holders)) {
        let reap = {
            let mut h = self.holders.lock();
            let before = h.reapable();
            change(&mut h);
            !before && h.reapable()
        };
        if reap && let Some(table) = self.table.upgrade() {
            let record = table.lock().remove(self.pid);
            drop(record);
        }
    }

    /// One more handle names it.
    pub(crate) fn hold(&self) {
        self.update_holders(|h| h.handles += 1);
    }

    /// A handle naming it is gone.
    pub(crate) fn let_go(&self) {
        self.update_holders(|h| h.handles = h.handles.saturating_sub(1));
    }

    /// The scope lets go of it ([`super::Procs::reap`]).
    pub(crate) fn let_go_by_scope(&self) {
        self.update_holders(|h| h.scope = false);
    }

    /// Its task has finished.
    fn ended(&self) {
        self.update_holders(|h| h.ended = true);
    }

    /// Its children still running (those that ended are forgotten).
    pub(crate) fn live_children(&self) -> usize {
        let mut children = self.children.lock();
        children.retain(|c| {
            c.upgrade()
                .is_some_and(|c| c.status() == ExitStatus::Running)
        });
        children.len()
    }

    /// Its children, taken out of its list.
    fn take_children(&self) -> Vec<Arc<Process<'a>>> {
        let children = core::mem::take(&mut *self.children.lock());
        children.iter().filter_map(Weak::upgrade).collect()
    }

    /// Kill every child still running, and theirs (INV-PROC-4).
    fn kill_children(&self) {
        kill_all(self.take_children());
    }

    /// Kill it (INV-PROCESS-2), and at once every descendant it has
    /// (INV-PROCESS-6); the first reason sticks.
    pub(crate) fn kill(&self, reason: KillReason) {
        self.kill_one(reason);
        self.kill_children();
    }

    /// Kill it alone.
    fn kill_one(&self, reason: KillReason) {
        let _ = self.kill.compare_exchange(
            NOT_KILLED,
            kill_code(reason),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        if let Some(cell) = self.interrupt.get() {
            cell.set_deadline(0);
        }
        let waker = self.driver.lock().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Wait until it has ended; its status.
    pub(crate) fn wait(&self) -> impl Future<Output = ExitStatus> + Send + '_ {
        self.exited.wait_for(|| {
            let status = *self.status.lock();
            (status != ExitStatus::Running).then_some(status)
        })
    }

    /// The status, without waiting.
    pub fn status(&self) -> ExitStatus {
        *self.status.lock()
    }

    fn publish(&self, status: ExitStatus) {
        self.debug.set_state(DebugState::Ended);
        *self.status.lock() = status;
        self.exited.notify_all();
    }

    /// Install the store's interrupt cell, at the current slice's deadline
    /// (or at once when already killed), and name it as running on `cpu`,
    /// the CPU whose slice runs this code on the process's fiber.
    pub(crate) fn attach_interrupt(&self, cell: &Arc<Interrupt<'a>>, cpu: Option<&CpuState>) {
        let cell = self.interrupt.call_once(|| cell.clone());
        cell.set_deadline(self.check_deadline(self.slice_end.load(Ordering::SeqCst)));
        if let Some(cpu) = cpu {
            // SAFETY: this runs on the process's fiber, so inside `slice`'s
            // `Running::run` on `cpu`; the cell is held by `self.interrupt`
            // for the process's life, and `slice` holds the process.
            unsafe { cpu.wasm.running.attach(cell.words()) };
        }
    }

    /// Suspend the calling fiber with `request` (INV-PROCESS-1). Only host
    /// calls and the preemption hook of this process call it, on its fiber.
    pub(crate) fn suspend(&self, request: Request<'a>) {
        *self.request.lock() = Some(request);
        let s = self.suspender.load(Ordering::Acquire);
        if s == 0 {
            // Not on the fiber: nothing to suspend (never happens through
            // the system interface).
            *self.request.lock() = None;
            return;
        }
        // SAFETY: INV-PROCESS-1: `s` is the address of the running body's
        // `Suspender`, and this code runs on that body's fiber.
        let suspender = unsafe { &*(s as *const Suspender) };
        suspender.suspend();
    }

    /// Run `fut` to completion from the fiber, suspending it meanwhile.
    /// `None` when the process was killed before the future finished.
    pub(crate) fn block_on<T: Send + 'a>(
        &self,
        fut: impl Future<Output = T> + Send + 'a,
    ) -> Option<T> {
        if self.killed().is_some() {
            return None;
        }
        let slot: Arc<spin::Mutex<Option<T>>> = Arc::new(spin::Mutex::new(None));
        let out = slot.clone();
        self.waiting.store(true, Ordering::Relaxed);
        self.debug.set_state(DebugState::Waiting);
        self.suspend(Request::Wait(Box::pin(async move {
            let v = fut.await;
            *out.lock() = Some(v);
        })));
        self.waiting.store(false, Ordering::Relaxed);
        self.debug.set_state(DebugState::Runnable);
        slot.lock().take()
    }

    /// The preemption hook of this process's store.
    fn on_check(&self, cell: &Interrupt<'a>) -> HookAction {
        if let Some(irqs) = self.polled {
            irqs.poll();
        }
        if self.killed().is_some() {
            return HookAction::Interrupt;
        }
        if cell.epoch() >= self.slice_end.load(Ordering::SeqCst) {
            self.suspend(Request::Yield);
        }
        if self.killed().is_some() {
            HookAction::Interrupt
        } else {
            HookAction::Continue
        }
    }

    /// The same check between long steps of a host call's work: yield if
    /// the quantum is over; whether the process has been killed.
    pub(crate) fn preemption_point(&self) -> bool {
        match self.interrupt.get() {
            Some(cell) => self.on_check(cell) == HookAction::Interrupt,
            None => self.killed().is_some(),
        }
    }

    /// The hook to install in the process's store. It holds the process
    /// weakly: the process holds the store's cell, which holds the hook.
    pub(crate) fn hook(self: &Arc<Self>) -> Box<crate::wasm::interrupt::Hook<'a>> {
        let me = Arc::downgrade(self);
        Box::new(move |cell| match me.upgrade() {
            Some(p) => p.on_check(cell),
            None => HookAction::Interrupt,
        })
    }
}

/// Kill `procs` and all their descendants, without recursion (a chain of
/// descendants may be as long as the process table).
fn kill_all(mut procs: Vec<Arc<Process<'_>>>) {
    while let Some(p) = procs.pop() {
        p.kill_one(KillReason::Parent);
        procs.extend(p.take_children());
    }
}

/// A process's module bytes and the charge that pays for them (dropped
/// with them).
pub(crate) type Module<'k> = (Arc<[u8]>, Hold<'k>);

/// What a process's fiber is made of: its module, its stack and the
/// handles it starts with.
type Start<'k, 'h, P> = (
    Module<'k>,
    KernelStack<'k, P>,
    (Vec<Object<'k>>, super::Stdio<'k, 'h, P>),
);

/// The executor task of one process.
pub(crate) struct Driver<'k, 'h, P: Platform + SchedHal> {
    scope: Arc<Inner<'k, 'h, P>>,
    proc: Arc<Process<'k>>,
    fiber: Option<SendFiber<'k, KernelStack<'k, P>>>,
    /// What the fiber is made of, in the first poll.
    start: Option<Start<'k, 'h, P>>,
    pending: Option<WaitFuture<'k>>,
    /// The fiber's wasm entry state while it is off-CPU.
    wasm: ([usize; 3], bool),
    /// Its status, set by the body, published after the fiber is dropped.
    outcome: Arc<spin::Mutex<Option<ExitStatus>>>,
    /// When the CPU turn of the current poll ends (clock time, epoch):
    /// set by its first slice, kept across waits that complete at once
    /// (INV-PROCESS-4).
    turn: Option<(Duration, u64)>,
}

impl<'k, 'h, P: Platform + SchedHal> Driver<'k, 'h, P> {
    pub(crate) fn new(
        scope: Arc<Inner<'k, 'h, P>>,
        proc: Arc<Process<'k>>,
        module: Module<'k>,
        stack: KernelStack<'k, P>,
        given: (Vec<Object<'k>>, super::Stdio<'k, 'h, P>),
    ) -> Self {
        Self {
            scope,
            proc,
            fiber: None,
            start: Some((module, stack, given)),
            pending: None,
            turn: None,
            wasm: ([0; 3], false),
            outcome: Arc::new(spin::Mutex::new(None)),
        }
    }

    /// Make the fiber (once).
    fn make_fiber(&mut self) {
        let Some(((module, hold), stack, given)) = self.start.take() else {
            return;
        };
        let (scope, proc, outcome) = (self.scope.clone(), self.proc.clone(), self.outcome.clone());
        let fiber = Fiber::new(stack, move |s: &Suspender| {
            proc.suspender
                .store(core::ptr::from_ref(s) as usize, Ordering::Release);
            let status = super::load::run_process(&scope, &proc, &module, given);
            drop((module, hold));
            proc.suspender.store(0, Ordering::Release);
            *outcome.lock() = Some(status);
        });
        // SAFETY: the body holds nothing bound to a CPU across a suspend:
        // host calls and the hook take and release their locks before
        // suspending, and the wasm entry state a suspended fiber leaves on
        // its CPU moves with it (`slice`).
        self.fiber = Some(unsafe { SendFiber::new(fiber) });
    }

    /// Run the fiber for one slice on this CPU.
    fn slice(&mut self) -> Resume {
        let Some(fiber) = self.fiber.as_mut() else {
            return Resume::Finished;
        };
        let kernel = self.scope.kernel;
        let hal = kernel.hal();
        let cpu_id = hal.current_cpu();
        let Some(cpu) = kernel.cpu(cpu_id) else {
            return Resume::Suspended;
        };
        let quantum = self.proc.options.quantum;
        kernel.advance_epoch();
        // The deadline is the timer's instant in the epoch's units, so the
        // epoch the timer interrupt advances to has reached it when the
        // interrupt polls this CPU's cell (interrupt INV-INT-4).
        let (turn_end, end) = *self.turn.get_or_insert_with(|| {
            let turn_end = hal.now().saturating_add(quantum);
            let end = u64::try_from(turn_end.as_micros()).unwrap_or(u64::MAX);
            (turn_end, end)
        });
        self.proc.slice_end.store(end, Ordering::SeqCst);
        if let Some(cell) = self.proc.interrupt.get() {
            cell.set_deadline(self.proc.check_deadline(end));
        }
        let outer = (cpu.wasm.saved(), cpu.wasm.is_active());
        cpu.wasm.restore(self.wasm.0, self.wasm.1);
        hal.set_timer(turn_end);
        self.proc.last_cpu.store(cpu_id, Ordering::Relaxed);
        self.proc.slices.fetch_add(1, Ordering::Relaxed);
        // The timer interrupt polls the cell this CPU runs (interrupt
        // INV-INT-4); a first slice attaches it once loaded.
        let cell = self.proc.interrupt.get().map(|c| c.words());
        let r = cpu.wasm.running.run(cell, || fiber.resume());
        self.wasm = (cpu.wasm.saved(), cpu.wasm.is_active());
        cpu.wasm.restore(outer.0, outer.1);
        r
    }

    fn finish(&mut self) -> Poll<()> {
        // INV-PROCESS-3: drop the fiber (and everything the body left)
        // before publishing; a finished fiber's stack goes back to the
        // scope's pool, charged to the kernel (INV-PROC-6).
        if let Some(fiber) = self.fiber.take().map(SendFiber::into_inner) {
            if fiber.is_finished() {
                // SAFETY: the fiber has finished: nothing of it is left on
                // its stack.
                let stack = unsafe { fiber.into_stack() };
                self.scope.recycle_stack(stack);
            } else {
                drop(fiber);
            }
        }
        self.pending = None;
        self.start = None;
        // Nothing is charged to the process any more: its account goes.
        self.scope.kernel.vm().forget(Owner::Process(self.proc.pid));
        self.proc.kill_children();
        // Out of the table now unless someone still holds it
        // (INV-PROCESS-5).
        self.proc.ended();
        let status = self
            .outcome
            .lock()
            .take()
            // The body always leaves one; a fiber that ended without it
            // never got as far as instantiating.
            .unwrap_or(ExitStatus::Failed(LoadError::Instantiate));
        self.proc.publish(status);
        Poll::Ready(())
    }
}

impl<P: Platform + SchedHal> Future for Driver<'_, '_, P> {
    type Output = ();

    /// One turn, charged to the process whole: its slices and the polls of
    /// its waits between them (a system call's work is the caller's CPU
    /// time, however soon it completes).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let hal = this.scope.kernel.hal();
        let start = hal.now();
        let r = this.turn(cx);
        let spent = hal.now().saturating_sub(start);
        let spent = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
        let total = this.proc.cpu_ns.fetch_add(spent, Ordering::Relaxed);
        this.proc.debug.set_cpu(
            this.proc.last_cpu.load(Ordering::Relaxed),
            total.saturating_add(spent),
        );
        r
    }
}

impl<P: Platform + SchedHal> Driver<'_, '_, P> {
    /// One turn on the CPU (INV-PROCESS-4).
    fn turn(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let this = self;
        this.turn = None;
        if this.fiber.is_none() {
            this.make_fiber();
            if this.fiber.is_none() {
                return this.finish();
            }
        }
        loop {
            if this.proc.killed().is_some() {
                // The wait's host call sees its result missing: Killed.
                this.pending = None;
            }
            if let Some(p) = this.pending.as_mut() {
                *this.proc.driver.lock() = Some(cx.waker().clone());
                if this.proc.killed().is_some() {
                    continue;
                }
                match p.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => this.pending = None,
                }
                // Completed at once: resume in this turn if any is left.
                let hal = this.scope.kernel.hal();
                if this.turn.is_some_and(|(end, _)| hal.now() >= end) {
                    this.scope.exec.requeue_shared();
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            match this.slice() {
                Resume::Finished => return this.finish(),
                Resume::Suspended => {
                    let request = this.proc.request.lock().take();
                    match request {
                        Some(Request::Wait(f)) => this.pending = Some(f),
                        Some(Request::Yield) | None => {
                            // Take turns with every process on every CPU.
                            this.scope.exec.requeue_shared();
                            cx.waker().wake_by_ref();
                            return Poll::Pending;
                        }
                    }
                }
            }
        }
    }
}
