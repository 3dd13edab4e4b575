//! The scheduler: an async executor over the HAL's CPUs, with timers.
//!
//! An [`Executor`] is a value its owner keeps (no global state). Every CPU
//! that runs [`Executor::run_until`] (the boot CPU) or
//! [`Executor::run_worker`] (secondaries) is a *worker*. Each CPU has a run
//! queue; an injector queue takes work from threads that are not workers.
//! A wake queues the task on the waking CPU when it is a worker (locality),
//! else on the injector; an idle worker takes from its own queue, then the
//! injector, then steals from the other CPUs' queues.
//!
//! Timers ([`Handle::sleep`], [`Handle::timeout`]) live in one map sorted by
//! deadline. Every worker fires the expired ones on each turn of its loop
//! and, before it sleeps, arms its own one-shot HAL timer for the earliest.
//!
//! Invariants:
//! - INV-SCHED-1 (no lost wake-up): a worker goes idle by masking
//!   interrupts, setting its `idle` flag, then re-checking every queue, its
//!   main future's flag, the stop flag and the timers before
//!   `wait_for_interrupt`. A waker pushes, then reads the `idle` flags and
//!   sends an IPI to the target CPU (or one idle CPU for an injector or a
//!   stealable push). Both sides use `SeqCst`, so either the idler sees the
//!   work or the waker sees the flag; a pending IPI ends the wait
//!   ([`crate::hal::Cpus::wait_for_interrupt`]).
//! - INV-SCHED-2 (interrupt safety): every queue and the timer map are spin
//!   locks taken with interrupts masked through
//!   [`crate::hal::Interrupts::disable_irqs`]; nothing runs user code
//!   (polls, drops, wakes) while holding one. Interrupt handlers do not touch
//!   the executor: an interrupt only ends a CPU's wait. A wake may allocate
//!   (the queues grow), so it must not be called from trap context
//!   (INV-HAL-2): a handler rings a [`Doorbell`] instead, which every
//!   worker loop services on each turn and counts as work in its idle
//!   re-check.
//! - INV-SCHED-3 (lifetime): wakers and [`Handle`]s may outlive the
//!   executor. They reach the HAL only through [`Shared::hal`], which
//!   counts users and fails once the executor's drop has begun; the drop
//!   waits for the count to reach zero, then empties the queues and timers
//!   (breaking task/executor reference cycles). A wake after that abandons
//!   the task: its join handle yields [`JoinError::Cancelled`]. Tasks
//!   parked in a cycle of one another's wakers are leaked.
//! - INV-SCHED-4 (LIFO slot): a task woken by another task on a worker CPU
//!   (not a spawn, nor an expired timer, which queue at the back: timers
//!   in deadline order)
//!   goes to that CPU's LIFO slot and runs next there, so a ping-pong of
//!   wakes stays in cache and skips the queue; a task it displaces goes to
//!   the back of the queue (stealable, with the usual notify). The slot is
//!   part of the CPU's work for the idle re-check, is never stolen, and
//!   yields to the queue after [`LIFO_STREAK`] polls in a row. A task that
//!   wakes itself during its poll (a yield) goes to the back of the queue.
//! - INV-SCHED-5 (a yield on an empty queue): a task woken during its poll
//!   on a CPU whose queue and LIFO slot are empty is kept by that CPU's
//!   worker loop and run on its next turn, unless something was queued
//!   there meanwhile (then it goes to the back first): the order a push
//!   and a pop would give, without either. The loop's turn (step, bell,
//!   timers) still runs in between.

mod bell;
pub mod fiber;
pub mod sync;
mod task;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::task::Wake;
use core::fmt;
use core::future::{Future, poll_fn};
use core::ops::Deref;
use core::pin::{Pin, pin};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
use core::task::{Context, Poll, Waker};
use core::time::Duration;

pub use bell::{Doorbell, Wait as BellWait};
pub use sync::{
    IrqCtl, IrqMutex, IrqMutexGuard, Receiver, RecvError, SendError, Sender, TryRecvError,
    TrySendError, WaitFor, WaitQueue, channel,
};
pub use task::JoinHandle;
use task::{Runnable, Task};

use crate::hal::{Clock, CpuId, Cpus, Interrupts};

/// The parts of the HAL the scheduler uses.
pub trait SchedHal: Cpus + Interrupts + Clock + Sync + 'static {}
impl<T: Cpus + Interrupts + Clock + Sync + 'static> SchedHal for T {}

/// Why a scheduler operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// The CPU id is not a CPU of the machine.
    NoSuchCpu(CpuId),
    /// A worker loop already runs on this CPU.
    Busy(CpuId),
}

impl fmt::Display for SchedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchCpu(c) => write!(f, "CPU {c} does not exist"),
            Self::Busy(c) => write!(f, "CPU {c} already runs a worker"),
        }
    }
}

impl core::error::Error for SchedError {}

/// Why a [`JoinHandle`] yielded no output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// The task was cancelled (or its executor was dropped) before it
    /// finished.
    Cancelled,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task cancelled")
    }
}

impl core::error::Error for JoinError {}

/// [`Handle::timeout`] ran out before its future finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline elapsed")
    }
}

impl core::error::Error for Elapsed {}

type TaskRef = Arc<dyn Runnable>;

/// Where a push on a worker's own CPU puts the task.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Its LIFO slot: run next (a wake by another task).
    Lifo,
    /// The back of its queue (a task that woke itself: a yield).
    Back,
    /// The injector, whatever the CPU.
    Injector,
}

/// Run `f` on `lock`'s data with interrupts masked through `hal`
/// (INV-SCHED-2).
fn locked_on<H: SchedHal, T, R>(hal: &H, lock: &spin::Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
    let _irqs = hal.disable_irqs();
    f(&mut lock.lock())
}

/// A FIFO of runnable tasks with a lock-free length for idle checks.
struct Queue {
    items: spin::Mutex<VecDeque<TaskRef>>,
    len: AtomicUsize,
}

impl Queue {
    fn new() -> Self {
        Self {
            items: spin::Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
        }
    }

    fn is_empty(&self) -> bool {
        self.len.load(Ordering::SeqCst) == 0
    }
}

/// Polls in a row a CPU takes from its LIFO slot before it looks at its
/// queue again, so two tasks waking each other cannot starve the rest.
const LIFO_STREAK: u32 = 3;

/// One CPU's part of the executor.
struct Slot {
    queue: Queue,
    /// The task a wake on this CPU readied last: run next, ahead of the
    /// queue (INV-SCHED-4). Not stolen.
    lifo: spin::Mutex<Option<TaskRef>>,
    /// Whether `lifo` holds a task, for idle checks without the lock.
    lifo_set: AtomicBool,
    /// Polls in a row taken from `lifo` (its worker only).
    lifo_streak: AtomicU32,
    /// Set while this CPU's worker fires expired timers (its worker
    /// only): their wakes queue at the back, in deadline order, as no
    /// task woke them (INV-SCHED-4).
    firing: AtomicBool,
    /// Tasks this CPU's workers ran, for statistics (its worker only).
    polls: AtomicU64,
    /// Set while the CPU is in (or about to enter) its idle wait.
    idle: AtomicBool,
    /// Set while a worker loop runs on the CPU.
    worker: AtomicBool,
    /// Set by [`Handle::requeue_shared`] during a poll on this CPU: the
    /// polled task, if it woke itself, goes to the injector.
    to_injector: AtomicBool,
}

/// The timer map: `(deadline, id)` to the waker of the sleeping task.
#[derive(Default)]
struct Timers {
    map: BTreeMap<(Duration, u64), Waker>,
    next_id: u64,
}

impl Timers {
    /// The earliest deadline in nanoseconds, `u64::MAX` for none (a
    /// deadline past `u64` nanoseconds reads as `u64::MAX - 1`: early,
    /// which only costs a look at the map).
    fn earliest_nanos(&self) -> u64 {
        self.map.first_key_value().map_or(u64::MAX, |(k, _)| {
            u64::try_from(k.0.as_nanos()).map_or(u64::MAX - 1, |n| n.min(u64::MAX - 1))
        })
    }
}

/// The state wakers, handles and tasks share with the executor.
pub(crate) struct Shared<H> {
    /// The HAL; valid while `alive` (INV-SCHED-3).
    hal: *const H,
    alive: AtomicBool,
    users: AtomicUsize,
    stopping: AtomicBool,
    slots: Box<[Slot]>,
    injector: Queue,
    timers: spin::Mutex<Timers>,
    /// `timers`' earliest deadline ([`Timers::earliest_nanos`]), written
    /// under its lock after every change, so a worker turn with no timer
    /// due reads neither the lock nor the clock.
    next_timer: AtomicU64,
    /// Rung by an interrupt handler, serviced on every turn of every
    /// worker loop ([`bell`]).
    bell: Option<Arc<Doorbell>>,
}

// SAFETY: `hal` points to an `H: Sync`, used from any CPU only while the
// executor that borrowed it lives (INV-SCHED-3); every other field is Sync.
unsafe impl<H: Sync> Sync for Shared<H> {}
// SAFETY: as for Sync; nothing in `Shared` is tied to a CPU.
unsafe impl<H: Sync> Send for Shared<H> {}

/// A counted use of an executor's HAL (INV-SCHED-3): the executor's drop
/// waits until it is gone. Obtained through [`IrqCtl`] on a [`Handle`].
pub struct HalRef<'a, H> {
    shared: &'a Shared<H>,
}

impl<H> Deref for HalRef<'_, H> {
    type Target = H;

    fn deref(&self) -> &H {
        // SAFETY: INV-SCHED-3: `users` counts this reference and the
        // executor's drop waits for it, so the borrowed HAL is still live.
        unsafe { &*self.shared.hal }
    }
}

impl<H> Drop for HalRef<'_, H> {
    fn drop(&mut self) {
        self.shared.users.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<H: SchedHal> Shared<H> {
    fn hal(&self) -> Option<HalRef<'_, H>> {
        self.users.fetch_add(1, Ordering::SeqCst);
        if self.alive.load(Ordering::SeqCst) {
            Some(HalRef { shared: self })
        } else {
            self.users.fetch_sub(1, Ordering::SeqCst);
            None
        }
    }

    /// Run `f` on `lock`'s data with interrupts masked (INV-SCHED-2); after
    /// the executor is gone nothing can interrupt, so it just locks.
    fn locked<T, R>(&self, lock: &spin::Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
        match self.hal() {
            Some(hal) => locked_on(&*hal, lock, f),
            None => f(&mut lock.lock()),
        }
    }

    /// Queue `task` at the back of `queue`; `hal` is a use the caller
    /// holds (a counted one, or the worker loop's own borrow).
    fn push(&self, hal: &H, queue: &Queue, task: TaskRef) {
        locked_on(hal, &queue.items, |q| {
            q.push_back(task);
            queue.len.fetch_add(1, Ordering::SeqCst);
        });
    }

    fn pop(&self, hal: &H, queue: &Queue) -> Option<TaskRef> {
        if queue.is_empty() {
            return None;
        }
        locked_on(hal, &queue.items, |q| {
            let t = q.pop_front();
            if t.is_some() {
                queue.len.fetch_sub(1, Ordering::SeqCst);
            }
            t
        })
    }

    /// Put `task` in `slot`'s LIFO slot; the task it held before, if any.
    fn put_lifo(&self, hal: &H, slot: &Slot, task: TaskRef) -> Option<TaskRef> {
        locked_on(hal, &slot.lifo, |l| {
            let old = l.replace(task);
            // Release: every caller issues `notify`'s SeqCst fence next,
            // which orders this store before its `idle` load (INV-SCHED-1).
            slot.lifo_set.store(true, Ordering::Release);
            old
        })
    }

    fn take_lifo(&self, hal: &H, slot: &Slot) -> Option<TaskRef> {
        if !slot.lifo_set.load(Ordering::SeqCst) {
            return None;
        }
        locked_on(hal, &slot.lifo, |l| {
            // Only this CPU's worker clears it: a stale `true` seen by an
            // idle re-check costs one more turn.
            slot.lifo_set.store(false, Ordering::Relaxed);
            l.take()
        })
    }

    /// Queue `task` on the calling CPU when it is a worker (at `place`:
    /// its LIFO slot for a wake, the back of its queue for a spawn), else
    /// on the injector, and wake a CPU to run it (INV-SCHED-1).
    pub(crate) fn push_current(&self, task: TaskRef, place: Place) {
        let Some(hal) = self.hal() else {
            task.abandon();
            return;
        };
        let cpu = hal.current_cpu();
        self.push_here(&hal, task, cpu, place);
    }

    /// Re-queue a task woken during its poll on worker `cpu` (`hal` the
    /// worker loop's own): on the injector when the poll asked for it
    /// ([`Handle::requeue_shared`]); else at the back of the CPU's queue,
    /// or, when nothing else waits there, handed back for the worker's
    /// next turn, which is where the push and the pop would have put it
    /// (INV-SCHED-5).
    fn requeue(&self, hal: &H, task: TaskRef, cpu: CpuId) -> Option<TaskRef> {
        let slot = &self.slots[cpu];
        if slot.to_injector.swap(false, Ordering::Relaxed) {
            self.push_here(hal, task, cpu, Place::Injector);
            return None;
        }
        if slot.queue.is_empty() && !slot.lifo_set.load(Ordering::SeqCst) {
            return Some(task);
        }
        self.push_here(hal, task, cpu, Place::Back);
        None
    }

    /// Clear `cpu`'s request to re-queue on the injector (each poll starts
    /// without one).
    pub(crate) fn clear_requeue_request(&self, cpu: CpuId) {
        if let Some(slot) = self.slots.get(cpu) {
            slot.to_injector.store(false, Ordering::Relaxed);
        }
    }

    /// Queue `task` on `cpu` (the caller's CPU) when it is a worker and the
    /// injector was not asked for (in its LIFO slot or at the back of its
    /// queue, as `place` says), else on the injector.
    fn push_here(&self, hal: &H, task: TaskRef, cpu: CpuId, place: Place) {
        match self.slots.get(cpu) {
            Some(slot) if slot.worker.load(Ordering::SeqCst) && place != Place::Injector => {
                if place == Place::Lifo && !slot.firing.load(Ordering::Relaxed) {
                    // INV-SCHED-4: the CPU runs it next; only a task it
                    // displaces may go to another CPU.
                    match self.put_lifo(hal, slot, task) {
                        Some(old) => self.push(hal, &slot.queue, old),
                        None => {
                            self.notify_only(hal, cpu);
                            return;
                        }
                    }
                } else {
                    self.push(hal, &slot.queue, task);
                }
                self.notify(hal, Some(cpu));
            }
            _ => {
                self.push(hal, &self.injector, task);
                self.notify(hal, None);
            }
        }
    }

    /// INV-SCHED-1 for a push only `cpu` can take (its LIFO slot): IPI it
    /// when it is idle.
    fn notify_only(&self, hal: &H, cpu: CpuId) {
        fence(Ordering::SeqCst);
        if self.slots[cpu].idle.load(Ordering::SeqCst) {
            hal.send_ipi(cpu);
        }
    }

    /// Queue `task` on `cpu` and wake that CPU (or one that may steal it).
    fn push_on(&self, cpu: CpuId, task: TaskRef) {
        let Some(hal) = self.hal() else {
            task.abandon();
            return;
        };
        if let Some(slot) = self.slots.get(cpu) {
            self.push(&hal, &slot.queue, task);
            self.notify(&hal, Some(cpu));
        }
    }

    /// INV-SCHED-1, the waker's side: after a push, IPI `target` when it is
    /// idle; otherwise one idle CPU, which will steal.
    fn notify(&self, hal: &H, target: Option<CpuId>) {
        fence(Ordering::SeqCst);
        if let Some(t) = target
            && self.slots[t].idle.load(Ordering::SeqCst)
        {
            hal.send_ipi(t);
            return;
        }
        let n = self.slots.len();
        let me = hal.current_cpu();
        for i in 1..=n {
            let c = (me + i) % n;
            if Some(c) != target && self.slots[c].idle.load(Ordering::SeqCst) {
                hal.send_ipi(c);
                return;
            }
        }
    }

    /// A task for `cpu` (the worker loop's CPU; `hal` its own borrow): its
    /// LIFO slot (at most [`LIFO_STREAK`] times in a row; then that task
    /// goes to the back of the queue), its own queue, the injector, then a
    /// steal.
    fn find(&self, hal: &H, cpu: CpuId) -> Option<TaskRef> {
        let slot = &self.slots[cpu];
        if let Some(t) = self.take_lifo(hal, slot) {
            let streak = slot.lifo_streak.load(Ordering::Relaxed);
            if streak < LIFO_STREAK {
                slot.lifo_streak.store(streak + 1, Ordering::Relaxed);
                return Some(t);
            }
            self.push(hal, &slot.queue, t);
        }
        slot.lifo_streak.store(0, Ordering::Relaxed);
        if let Some(t) = self.pop(hal, &slot.queue) {
            return Some(t);
        }
        if let Some(t) = self.pop(hal, &self.injector) {
            return Some(t);
        }
        let n = self.slots.len();
        (1..n).find_map(|i| self.pop(hal, &self.slots[(cpu + i) % n].queue))
    }

    fn has_work(&self) -> bool {
        !self.injector.is_empty()
            || self
                .slots
                .iter()
                .any(|s| !s.queue.is_empty() || s.lifo_set.load(Ordering::SeqCst))
    }

    /// Change the timer map under its lock, keeping `next_timer` true.
    fn with_timers<R>(&self, f: impl FnOnce(&mut Timers) -> R) -> R {
        self.locked(&self.timers, |t| {
            let r = f(t);
            self.next_timer.store(t.earliest_nanos(), Ordering::SeqCst);
            r
        })
    }

    /// Wake every timer whose deadline has come (the worker loop, with its
    /// own `hal`); return the earliest deadline left. With no timer, or
    /// none due, it takes no lock.
    fn fire_timers(&self, hal: &H) -> Option<Duration> {
        let next = self.next_timer.load(Ordering::SeqCst);
        if next == u64::MAX {
            return None;
        }
        let now = hal.now();
        if Duration::from_nanos(next) > now {
            return Some(Duration::from_nanos(next));
        }
        let slot = self.slots.get(hal.current_cpu());
        if let Some(s) = slot {
            s.firing.store(true, Ordering::Relaxed);
        }
        loop {
            let fired = locked_on(hal, &self.timers, |t| {
                let w = match t.map.first_key_value() {
                    Some((&(deadline, _), _)) if deadline <= now => {
                        t.map.pop_first().map(|(_, w)| w)
                    }
                    _ => None,
                };
                self.next_timer.store(t.earliest_nanos(), Ordering::SeqCst);
                w
            });
            match fired {
                // Woken outside the lock (INV-SCHED-2).
                Some(w) => w.wake(),
                None => break,
            }
        }
        if let Some(s) = slot {
            s.firing.store(false, Ordering::Relaxed);
        }
        locked_on(hal, &self.timers, |t| {
            t.map.first_key_value().map(|(k, _)| k.0)
        })
    }

    fn now(&self) -> Duration {
        self.hal().map_or(Duration::MAX, |h| h.now())
    }
}

/// The executor. Borrowing the HAL for `'h`, it must be dropped before it;
/// everything it hands out ([`Handle`], wakers, join handles) may outlive it
/// (INV-SCHED-3).
pub struct Executor<'h, H: SchedHal> {
    hal: &'h H,
    shared: Arc<Shared<H>>,
}

impl<'h, H: SchedHal> Executor<'h, H> {
    /// An executor with one run queue per CPU of `hal`.
    pub fn new(hal: &'h H) -> Self {
        Self::build(hal, None)
    }

    /// [`Executor::new`], whose worker loops also service `bell`: the
    /// waiters of a ring from an interrupt handler are woken on the next
    /// turn of the loop the interrupt ended the wait of.
    pub fn with_doorbell(hal: &'h H, bell: Arc<Doorbell>) -> Self {
        Self::build(hal, Some(bell))
    }

    fn build(hal: &'h H, bell: Option<Arc<Doorbell>>) -> Self {
        let slots = (0..hal.cpu_count())
            .map(|_| Slot {
                queue: Queue::new(),
                idle: AtomicBool::new(false),
                worker: AtomicBool::new(false),
                to_injector: AtomicBool::new(false),
                lifo: spin::Mutex::new(None),
                lifo_set: AtomicBool::new(false),
                lifo_streak: AtomicU32::new(0),
                firing: AtomicBool::new(false),
                polls: AtomicU64::new(0),
            })
            .collect();
        Self {
            hal,
            shared: Arc::new(Shared {
                hal,
                alive: AtomicBool::new(true),
                users: AtomicUsize::new(0),
                stopping: AtomicBool::new(false),
                slots,
                injector: Queue::new(),
                timers: spin::Mutex::new(Timers::default()),
                next_timer: AtomicU64::new(u64::MAX),
                bell,
            }),
        }
    }

    /// A handle for spawning and timers, usable from any CPU and by tasks.
    pub fn handle(&self) -> Handle<H> {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// Task polls run so far on every CPU.
    pub fn polls(&self) -> u64 {
        self.shared
            .slots
            .iter()
            .map(|s| s.polls.load(Ordering::Relaxed))
            .sum()
    }

    /// Make every [`Executor::run_worker`] loop return (at its next turn)
    /// and wake every CPU.
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for cpu in 0..self.shared.slots.len() {
            self.hal.send_ipi(cpu);
        }
    }

    /// Drive `fut` to completion on the calling CPU, running tasks while it
    /// waits; the CPU is a worker until it returns.
    ///
    /// # Errors
    /// [`SchedError::NoSuchCpu`] when the caller is not a CPU of the HAL,
    /// [`SchedError::Busy`] when a worker already runs on it.
    pub fn run_until<F: Future>(&self, fut: F) -> Result<F::Output, SchedError> {
        let cpu = self.hal.current_cpu();
        let signal = Arc::new(MainSignal {
            woken: AtomicBool::new(true),
            cpu,
            shared: self.shared.clone(),
        });
        let waker = Waker::from(signal.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(fut);
        let mut out = None;
        self.run_loop(
            cpu,
            &mut || {
                if signal.woken.swap(false, Ordering::SeqCst)
                    && let Poll::Ready(v) = fut.as_mut().poll(&mut cx)
                {
                    out = Some(v);
                    return true;
                }
                false
            },
            &|| signal.woken.load(Ordering::SeqCst),
        )?;
        // `out` is set: the loop only ends when the step returned true.
        out.ok_or(SchedError::Busy(cpu))
    }

    /// Run tasks on the calling CPU until [`Executor::shutdown`].
    ///
    /// # Errors
    /// As [`Executor::run_until`].
    pub fn run_worker(&self) -> Result<(), SchedError> {
        let cpu = self.hal.current_cpu();
        let stopping = || self.shared.stopping.load(Ordering::SeqCst);
        self.run_loop(cpu, &mut || stopping(), &stopping)
    }

    /// The worker loop: `step` (true: leave), a timer round, one task, or an
    /// idle wait when there is nothing (INV-SCHED-1); `ready` tells the idle
    /// re-check that `step` has something to do.
    fn run_loop(
        &self,
        cpu: CpuId,
        step: &mut dyn FnMut() -> bool,
        ready: &dyn Fn() -> bool,
    ) -> Result<(), SchedError> {
        let shared = &*self.shared;
        let slot = shared.slots.get(cpu).ok_or(SchedError::NoSuchCpu(cpu))?;
        if slot.worker.swap(true, Ordering::SeqCst) {
            return Err(SchedError::Busy(cpu));
        }
        let hal = self.hal;
        let mut again: Option<TaskRef> = None;
        // A polled platform (deterministic hosted mode) delivers interrupts
        // and switches CPUs only when asked: every turn asks once, even
        // when no clock read or lock happens in it.
        let polled = hal.polled();
        loop {
            if polled {
                hal.poll();
            }
            if step() {
                break;
            }
            if let Some(bell) = &shared.bell {
                bell.service();
            }
            let next = shared.fire_timers(hal);
            // A task handed back by `requeue` runs now unless something was
            // queued meanwhile: then it goes behind that (INV-SCHED-5).
            let task = match again.take() {
                Some(t) if slot.queue.is_empty() && !slot.lifo_set.load(Ordering::SeqCst) => {
                    Some(t)
                }
                Some(t) => {
                    shared.push_here(hal, t, cpu, Place::Back);
                    shared.find(hal, cpu)
                }
                None => shared.find(hal, cpu),
            };
            if let Some(task) = task {
                // Written by this worker only: a load and a store, no
                // locked add on every poll.
                let polls = slot.polls.load(Ordering::Relaxed);
                slot.polls.store(polls.wrapping_add(1), Ordering::Relaxed);
                if let Some(woken) = task.run(cpu) {
                    again = shared.requeue(hal, woken, cpu);
                }
                continue;
            }
            let irqs = hal.disable_irqs();
            slot.idle.store(true, Ordering::SeqCst);
            let due = next.is_some_and(|d| d <= hal.now());
            let rung = shared.bell.as_ref().is_some_and(|b| b.needs_service());
            if ready() || shared.has_work() || due || rung {
                slot.idle.store(false, Ordering::SeqCst);
                continue;
            }
            if let Some(deadline) = next {
                hal.set_timer(deadline);
            }
            hal.wait_for_interrupt();
            slot.idle.store(false, Ordering::SeqCst);
            drop(irqs);
        }
        // A task kept for the next turn is queued like any other.
        if let Some(t) = again {
            shared.push_here(hal, t, cpu, Place::Back);
        }
        slot.worker.store(false, Ordering::SeqCst);
        Ok(())
    }
}

impl<H: SchedHal> Drop for Executor<'_, H> {
    fn drop(&mut self) {
        let shared = &*self.shared;
        shared.alive.store(false, Ordering::SeqCst);
        while shared.users.load(Ordering::SeqCst) != 0 {
            core::hint::spin_loop();
        }
        // INV-SCHED-3: no HAL use is in flight and none can start; empty
        // everything, dropping tasks outside the locks.
        let queues =
            core::iter::once(&shared.injector).chain(shared.slots.iter().map(|s| &s.queue));
        for queue in queues {
            let items = core::mem::take(&mut *queue.items.lock());
            queue.len.store(0, Ordering::SeqCst);
            for task in &items {
                task.abandon();
            }
            drop(items);
        }
        for slot in &shared.slots {
            let task = slot.lifo.lock().take();
            slot.lifo_set.store(false, Ordering::SeqCst);
            if let Some(task) = task {
                task.abandon();
            }
        }
        let timers = core::mem::take(&mut shared.timers.lock().map);
        shared.next_timer.store(u64::MAX, Ordering::SeqCst);
        drop(timers);
    }
}

/// The waker of [`Executor::run_until`]'s future: a flag and an IPI.
struct MainSignal<H> {
    woken: AtomicBool,
    cpu: CpuId,
    shared: Arc<Shared<H>>,
}

impl<H: SchedHal> Wake for MainSignal<H> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if let Some(hal) = self.shared.hal()
            && self
                .shared
                .slots
                .get(self.cpu)
                .is_some_and(|s| s.idle.load(Ordering::SeqCst))
        {
            hal.send_ipi(self.cpu);
        }
    }
}

/// A cloneable link to an [`Executor`]: spawn tasks and make timers.
pub struct Handle<H> {
    shared: Arc<Shared<H>>,
}

impl<H> Clone for Handle<H> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<H: SchedHal> Handle<H> {
    /// Spawn `fut` on the calling CPU's queue (the injector when the caller
    /// is not a worker). When the executor is gone the task is cancelled.
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = Task::new(fut, self.shared.clone());
        let handle = Task::handle(&task);
        self.shared.push_current(task, Place::Back);
        handle
    }

    /// Spawn a future that borrows from its caller: like
    /// [`Handle::spawn`] without the `'static` bound.
    ///
    /// # Safety
    /// Everything `fut` borrows stays alive until the task has finished
    /// (its join handle yields, which happens after the future is dropped)
    /// or every reference to the task is gone. In practice: the caller
    /// awaits the join handle of every such task before the borrowed data
    /// goes away, and does not cancel one (a cancelled task's future is
    /// dropped later, on an executor CPU) nor drop the executor first
    /// (INV-TASK-5).
    pub unsafe fn spawn_unchecked<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send,
        F::Output: Send + 'static,
    {
        let task = Task::new(fut, self.shared.clone());
        let handle = Task::handle(&task);
        self.shared.push_current(Task::erased(task), Place::Back);
        handle
    }

    /// Spawn `fut` on `cpu`'s queue and wake that CPU. Other CPUs may steal
    /// it.
    ///
    /// # Errors
    /// [`SchedError::NoSuchCpu`]; nothing is spawned then.
    pub fn spawn_on<F>(&self, cpu: CpuId, fut: F) -> Result<JoinHandle<F::Output>, SchedError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if cpu >= self.shared.slots.len() {
            return Err(SchedError::NoSuchCpu(cpu));
        }
        let task = Task::new(fut, self.shared.clone());
        let handle = Task::handle(&task);
        self.shared.push_on(cpu, task);
        Ok(handle)
    }

    /// Ask that the task being polled on this CPU, if it wakes itself
    /// before its poll returns, be queued on the injector (which every CPU
    /// takes from) instead of this CPU's queue. A task that used up a time
    /// slice does this, so that tasks sharing CPUs take turns across all
    /// of them rather than queueing behind whoever was on their CPU.
    pub fn requeue_shared(&self) {
        if let Some(hal) = self.shared.hal()
            && let Some(slot) = self.shared.slots.get(hal.current_cpu())
        {
            slot.to_injector.store(true, Ordering::Relaxed);
        }
    }

    /// The CPU running the caller (`None` once the executor is gone).
    pub fn current_cpu(&self) -> Option<CpuId> {
        self.shared.hal().map(|h| h.current_cpu())
    }

    /// The HAL's monotonic time (`Duration::MAX` once the executor is
    /// gone).
    pub fn now(&self) -> Duration {
        self.shared.now()
    }

    /// A future that finishes once [`Handle::now`] reaches `deadline`.
    pub fn sleep_until(&self, deadline: Duration) -> Sleep<H> {
        Sleep {
            shared: self.shared.clone(),
            deadline,
            key: None,
        }
    }

    /// A future that finishes `duration` from now.
    pub fn sleep(&self, duration: Duration) -> Sleep<H> {
        self.sleep_until(self.now().saturating_add(duration))
    }

    /// Run `fut` for at most `duration`: its output, or [`Elapsed`] (the
    /// future is dropped then).
    pub async fn timeout<F: Future>(
        &self,
        duration: Duration,
        fut: F,
    ) -> Result<F::Output, Elapsed> {
        let mut fut = pin!(fut);
        let mut sleep = self.sleep(duration);
        poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            match Pin::new(&mut sleep).poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

/// The future of [`Handle::sleep`]. Dropping it removes its timer.
pub struct Sleep<H: SchedHal> {
    shared: Arc<Shared<H>>,
    deadline: Duration,
    key: Option<u64>,
}

impl<H: SchedHal> Future for Sleep<H> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.shared.now() >= this.deadline {
            this.cancel();
            return Poll::Ready(());
        }
        let deadline = this.deadline;
        let waker = cx.waker().clone();
        let key = this.key;
        let old = this.shared.with_timers(|t| {
            let id = key.unwrap_or_else(|| {
                t.next_id += 1;
                t.next_id
            });
            (id, t.map.insert((deadline, id), waker))
        });
        this.key = Some(old.0);
        // The replaced waker drops outside the lock (INV-SCHED-2).
        drop(old.1);
        Poll::Pending
    }
}

impl<H: SchedHal> Sleep<H> {
    fn cancel(&mut self) {
        if let Some(id) = self.key.take() {
            let deadline = self.deadline;
            let old = self.shared.with_timers(|t| t.map.remove(&(deadline, id)));
            drop(old);
        }
    }
}

impl<H: SchedHal> Drop for Sleep<H> {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Yield once: the task goes to the back of its CPU's queue.
pub fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

#[cfg(test)]
mod tests;
