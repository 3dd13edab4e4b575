//! Tasks: a spawned future, its state word, its waker and its join handle.
//!
//! A task lives in an `Arc<Task<F, H>>`; the reference count is the task
//! header's count. Run queues hold `Arc<dyn Runnable>`, wakers hold the same
//! `Arc` through a [`RawWaker`] whose data pointer is `Arc::into_raw`
//! (INV-TASK-1), and a [`JoinHandle`] holds one more. The waker a poll
//! lends its future borrows the runner's count instead of taking one; a
//! clone of it takes its own.
//!
//! The state word (`SCHEDULED | RUNNING | DONE | CANCELLED`):
//! - INV-TASK-2: a task is in at most one run queue, and only while
//!   `SCHEDULED` is set and `RUNNING` clear. A wake that finds `RUNNING` only
//!   sets `SCHEDULED`; the runner re-queues the task after its poll.
//! - INV-TASK-3: only the CPU that cleared `SCHEDULED` and set `RUNNING`
//!   polls the future, so polls never overlap.
//! - INV-TASK-4: `DONE` is set once, after the stage holds the output (or
//!   the future was given up); nothing is queued or polled after it. The
//!   join waker is taken under its lock after `DONE` is set and registered
//!   under that lock before `DONE` is read, so a joiner is never missed.
//! - Cancellation sets `CANCELLED` and wakes the task; the next run drops the
//!   future on an executor CPU instead of polling it.
//! - INV-TASK-5 (lifetime erasure): queues, wakers and join handles hold
//!   tasks as `'static` trait objects. A future that is not `'static` only
//!   enters a task through [`super::Handle::spawn_unchecked`], whose caller
//!   keeps everything the future borrows alive until the task is done (its
//!   future dropped) or the task itself is dropped.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::future::Future;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::pin::Pin;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::{JoinError, Place, SchedHal, Shared};
use crate::hal::CpuId;

const SCHEDULED: usize = 1;
const RUNNING: usize = 2;
const DONE: usize = 4;
const CANCELLED: usize = 8;

/// What a run queue holds: a task it can run or give up.
pub(crate) trait Runnable: Send + Sync {
    /// Poll the task once on worker `cpu` (the calling CPU), or drop its
    /// future when cancelled. Returns the task when it was woken during
    /// the poll (a yield, or a wake from elsewhere meanwhile): the worker
    /// must queue it again (INV-TASK-2, `Shared::requeue`).
    #[must_use = "a task woken during its poll must be queued again"]
    fn run(self: Arc<Self>, cpu: CpuId) -> Option<Arc<dyn Runnable>>;
    /// The executor is gone: finish the task as cancelled without polling.
    fn abandon(&self);
}

/// The typed side of a task, seen by its [`JoinHandle`].
trait Join<T>: Send + Sync {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>;
    fn cancel(self: Arc<Self>);
    fn is_finished(&self) -> bool;
}

enum Stage<F: Future> {
    Pending(Pin<Box<F>>),
    Done(F::Output),
    Taken,
}

pub(crate) struct Task<F: Future, H: SchedHal> {
    state: AtomicUsize,
    stage: spin::Mutex<Stage<F>>,
    join_waker: spin::Mutex<Option<Waker>>,
    shared: Arc<Shared<H>>,
}

impl<F, H> Task<F, H>
where
    F: Future + Send,
    F::Output: Send + 'static,
    H: SchedHal,
{
    const VTABLE: RawWakerVTable = RawWakerVTable::new(
        Self::waker_clone,
        Self::waker_wake,
        Self::waker_wake_by_ref,
        Self::waker_drop,
    );

    /// A new task, already marked `SCHEDULED`: the caller queues it.
    pub(crate) fn new(future: F, shared: Arc<Shared<H>>) -> Arc<Self> {
        Arc::new(Self {
            state: AtomicUsize::new(SCHEDULED),
            stage: spin::Mutex::new(Stage::Pending(Box::pin(future))),
            join_waker: spin::Mutex::new(None),
            shared,
        })
    }

    /// The join handle of `task`.
    pub(crate) fn handle(task: &Arc<Self>) -> JoinHandle<F::Output> {
        let join: Arc<dyn Join<F::Output> + '_> = task.clone();
        // SAFETY: INV-TASK-5: the future outlives every use of the task.
        let join = unsafe {
            core::mem::transmute::<Arc<dyn Join<F::Output> + '_>, Arc<dyn Join<F::Output>>>(join)
        };
        JoinHandle {
            task: join,
            _out: PhantomData,
        }
    }

    /// `task` as a run-queue entry.
    pub(crate) fn erased(task: Arc<Self>) -> Arc<dyn Runnable> {
        let run: Arc<dyn Runnable + '_> = task;
        // SAFETY: INV-TASK-5: the future outlives every use of the task.
        unsafe { core::mem::transmute::<Arc<dyn Runnable + '_>, Arc<dyn Runnable>>(run) }
    }

    unsafe fn waker_clone(data: *const ()) -> RawWaker {
        // SAFETY: INV-TASK-1: `data` is a live `Arc<Self>` pointer; the new
        // waker owns the count added here.
        unsafe { Arc::increment_strong_count(data.cast::<Self>()) };
        RawWaker::new(data, &Self::VTABLE)
    }

    unsafe fn waker_wake(data: *const ()) {
        // SAFETY: INV-TASK-1: the waker owned this count and is consumed.
        let task = unsafe { Arc::from_raw(data.cast::<Self>()) };
        task.schedule();
    }

    unsafe fn waker_wake_by_ref(data: *const ()) {
        // SAFETY: INV-TASK-1: the waker keeps its count (ManuallyDrop).
        let task = ManuallyDrop::new(unsafe { Arc::from_raw(data.cast::<Self>()) });
        task.schedule();
    }

    unsafe fn waker_drop(data: *const ()) {
        // SAFETY: INV-TASK-1: the waker owned this count and is dropped.
        drop(unsafe { Arc::from_raw(data.cast::<Self>()) });
    }

    /// Set `SCHEDULED`; queue the task unless it is running (INV-TASK-2),
    /// already scheduled or done.
    fn schedule(self: &Arc<Self>) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & (DONE | SCHEDULED) != 0 {
                return;
            }
            match self.state.compare_exchange_weak(
                s,
                s | SCHEDULED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        if s & RUNNING == 0 {
            self.shared
                .push_current(Self::erased(self.clone()), Place::Lifo);
        }
    }

    /// Set `DONE` (clearing `RUNNING` and `SCHEDULED`) and wake the joiner.
    fn finish(&self, extra: usize) {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                Some((s | DONE | extra) & !(RUNNING | SCHEDULED))
            })
            .ok();
        let waker = self.join_waker.lock().take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<F, H> Runnable for Task<F, H>
where
    F: Future + Send,
    F::Output: Send + 'static,
    H: SchedHal,
{
    fn run(self: Arc<Self>, cpu: CpuId) -> Option<Arc<dyn Runnable>> {
        // SCHEDULED -> RUNNING (INV-TASK-3).
        let prev = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & DONE == 0).then_some((s & !SCHEDULED) | RUNNING)
            });
        let Ok(prev) = prev else { return None };
        if prev & CANCELLED != 0 {
            let old = core::mem::replace(&mut *self.stage.lock(), Stage::Taken);
            // Drop the future outside the stage lock: its drop may wake or
            // drop other tasks.
            drop(old);
            self.finish(0);
            return None;
        }
        // The poll borrows this run's count of the task for its waker
        // (INV-TASK-1): no count is taken or given back unless the future
        // clones the waker.
        let data = Arc::as_ptr(&self).cast::<()>();
        // SAFETY: `data` is the pointer of a live `Arc<Self>` (`self`,
        // held across the poll), which is what the VTABLE functions
        // expect; the waker is never dropped (ManuallyDrop) and only lent
        // as `&Waker`, so the count it does not own is never given back.
        let waker =
            ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(data, &Self::VTABLE)) });
        let mut cx = Context::from_waker(&waker);
        self.shared.clear_requeue_request(cpu);
        let mut stage = self.stage.lock();
        let Stage::Pending(fut) = &mut *stage else {
            drop(stage);
            self.finish(0);
            return None;
        };
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(out) => {
                let old = core::mem::replace(&mut *stage, Stage::Done(out));
                drop(stage);
                drop(old);
                self.finish(0);
                None
            }
            Poll::Pending => {
                drop(stage);
                let prev = self.state.fetch_and(!RUNNING, Ordering::AcqRel);
                // Woken (or cancelled) during the poll: INV-TASK-2.
                (prev & SCHEDULED != 0).then(|| Self::erased(self))
            }
        }
    }

    fn abandon(&self) {
        self.finish(CANCELLED);
    }
}

impl<F, H> Join<F::Output> for Task<F, H>
where
    F: Future + Send,
    F::Output: Send + 'static,
    H: SchedHal,
{
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, JoinError>> {
        if self.state.load(Ordering::Acquire) & DONE == 0 {
            *self.join_waker.lock() = Some(cx.waker().clone());
            // INV-TASK-4: re-check after registering.
            if self.state.load(Ordering::Acquire) & DONE == 0 {
                return Poll::Pending;
            }
        }
        let mut stage = self.stage.lock();
        match core::mem::replace(&mut *stage, Stage::Taken) {
            Stage::Done(out) => Poll::Ready(Ok(out)),
            Stage::Taken => Poll::Ready(Err(JoinError::Cancelled)),
            pending @ Stage::Pending(_) => {
                // Abandoned by a dead executor: the future stays until the
                // task is dropped.
                *stage = pending;
                Poll::Ready(Err(JoinError::Cancelled))
            }
        }
    }

    fn cancel(self: Arc<Self>) {
        let prev = self.state.fetch_or(CANCELLED, Ordering::AcqRel);
        if prev & DONE == 0 {
            // Queue it (unless queued or running) so that an executor CPU
            // drops the future.
            let prev = self.state.fetch_or(SCHEDULED, Ordering::AcqRel);
            if prev & (SCHEDULED | RUNNING | DONE) == 0 {
                let shared = self.shared.clone();
                shared.push_current(Self::erased(self), Place::Back);
            }
        }
    }

    fn is_finished(&self) -> bool {
        self.state.load(Ordering::Acquire) & DONE != 0
    }
}

/// An owned permission to await a spawned task's output.
///
/// Awaiting it yields `Ok(output)`, or `Err(`[`JoinError::Cancelled`]`)`
/// when the task was cancelled before it finished (a task that finished
/// first still yields its output). Dropping the handle detaches the task:
/// it keeps running and its output is dropped.
#[must_use = "dropping a JoinHandle detaches the task"]
pub struct JoinHandle<T> {
    task: Arc<dyn Join<T>>,
    _out: PhantomData<fn() -> T>,
}

impl<T> JoinHandle<T> {
    /// Ask the task to stop: its future is dropped on an executor CPU
    /// before its next poll (at once when it is idle). Returns immediately.
    pub fn cancel(&self) {
        self.task.clone().cancel();
    }

    /// Whether the task has finished (completed or cancelled).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.task.poll_join(cx)
    }
}

impl<T> core::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
