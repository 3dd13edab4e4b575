//! Wait queues: tasks park on a condition until another task notifies them.
//!
//! Owns the registered waiters of one [`WaitQueue`] (a FIFO of
//! `(id, waker)`, ids increasing) and the notifications handed to waiters
//! that have not seen them yet (`chosen`).
//!
//! Invariants:
//! - INV-WAIT-1 (no lost wake-up): a notifier changes the state its
//!   waiters test *before* it calls [`WaitQueue::notify_one`] or
//!   [`WaitQueue::notify_all`] (the caller's obligation). A waiter
//!   registers (under the queue lock, counting itself in `len`), issues a
//!   `SeqCst` fence, then tests its condition again before it returns
//!   `Pending`; a notifier issues a `SeqCst` fence after its state change,
//!   then reads `len` and takes the queue lock unless it is zero. Of the
//!   two fences, whichever comes first makes its side's write visible to
//!   the other side's read: either the waiter's re-test sees the change, or
//!   the notifier sees the registration and wakes a waiter. A waiter chosen
//!   by a notification tests the condition again on its next poll (after
//!   the wake), registering again if it still does not hold.
//! - INV-WAIT-2 (order): [`WaitQueue::notify_one`] wakes the waiter that
//!   registered first among those not yet notified.
//! - INV-WAIT-3 (hand-over): a wait future dropped after `notify_one` chose
//!   it, but before it saw the notification, passes the notification on to
//!   the next waiter. One that sees it (and returns `Ready` or registers
//!   again) has consumed it. A dropped future is never left registered.
//! - INV-WAIT-4: `len` equals `waiting.len()`; both change only under the
//!   lock.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicUsize, Ordering, fence};
use core::task::{Context, Poll, Waker};

use super::{IrqCtl, IrqMutex};

/// The waiters of a [`WaitQueue`].
#[derive(Default)]
struct Waiters {
    /// Registered and not yet notified, in registration (id) order.
    waiting: VecDeque<(u64, Waker)>,
    /// Ids chosen by `notify_one` whose future has not seen it yet.
    chosen: Vec<u64>,
    next_id: u64,
}

impl Waiters {
    /// Choose the first waiter (INV-WAIT-2); its waker, to wake unlocked.
    fn choose_one(&mut self, len: &AtomicUsize) -> Option<Waker> {
        let (id, waker) = self.waiting.pop_front()?;
        len.store(self.waiting.len(), Ordering::SeqCst);
        self.chosen.push(id);
        Some(waker)
    }
}

/// What a registered wait found on its next poll.
enum Seen {
    /// Still registered: no notification yet. Holds the replaced waker.
    Waiting(Option<Waker>),
    /// Notified (and no longer registered).
    Notified,
}

/// A queue of tasks waiting for a condition. See INV-WAIT-1 for the
/// notifier's obligation.
pub struct WaitQueue<C: IrqCtl> {
    inner: IrqMutex<C, Waiters>,
    /// Registered waiters not yet notified (INV-WAIT-4), read without the
    /// lock by notifiers.
    len: AtomicUsize,
}

impl<C: IrqCtl> WaitQueue<C> {
    /// An empty queue whose lock masks interrupts through `ctl`.
    pub fn new(ctl: C) -> Self {
        Self {
            inner: IrqMutex::new(
                ctl,
                Waiters {
                    waiting: VecDeque::new(),
                    chosen: Vec::new(),
                    next_id: 0,
                },
            ),
            len: AtomicUsize::new(0),
        }
    }

    /// Waiters registered and not yet notified.
    pub fn waiters(&self) -> usize {
        self.len.load(Ordering::SeqCst)
    }

    /// Wake the longest-waiting waiter not yet notified; whether there was
    /// one. Call it after changing the state waiters test (INV-WAIT-1).
    pub fn notify_one(&self) -> bool {
        fence(Ordering::SeqCst);
        if self.len.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let waker = self.inner.lock().choose_one(&self.len);
        // Woken outside the lock (INV-SYNC-2).
        match waker {
            Some(w) => {
                w.wake();
                true
            }
            None => false,
        }
    }

    /// Wake every registered waiter; how many there were. Call it after
    /// changing the state waiters test (INV-WAIT-1).
    pub fn notify_all(&self) -> usize {
        fence(Ordering::SeqCst);
        if self.len.load(Ordering::SeqCst) == 0 {
            return 0;
        }
        let all = {
            let mut w = self.inner.lock();
            self.len.store(0, Ordering::SeqCst);
            core::mem::take(&mut w.waiting)
        };
        let n = all.len();
        for (_, waker) in all {
            waker.wake();
        }
        n
    }

    /// Wait until `cond` returns true. `cond` runs on every poll that may
    /// find it true, without the queue's lock held.
    pub fn wait_until<F: FnMut() -> bool>(
        &self,
        mut cond: F,
    ) -> WaitFor<'_, C, impl FnMut() -> Option<()>> {
        self.wait_for(move || cond().then_some(()))
    }

    /// Wait until `f` returns `Some`, and yield its value. `f` may act (take
    /// a value from a buffer, say): it runs without the queue's lock held,
    /// on every poll that may find the condition true.
    pub fn wait_for<R, F: FnMut() -> Option<R>>(&self, f: F) -> WaitFor<'_, C, F> {
        WaitFor {
            queue: self,
            cond: f,
            id: None,
        }
    }

    fn register(&self, waker: Waker) -> u64 {
        let mut w = self.inner.lock();
        let id = w.next_id;
        w.next_id += 1;
        w.waiting.push_back((id, waker));
        self.len.store(w.waiting.len(), Ordering::SeqCst);
        id
    }

    /// Whether waiter `id` was notified; when not, make `waker` its waker.
    fn poll_waiter(&self, id: u64, waker: &Waker) -> Seen {
        let mut w = self.inner.lock();
        if let Ok(i) = w.waiting.binary_search_by_key(&id, |e| e.0) {
            let slot = &mut w.waiting[i].1;
            if slot.will_wake(waker) {
                return Seen::Waiting(None);
            }
            // The old waker drops after the lock (INV-SYNC-2).
            return Seen::Waiting(Some(core::mem::replace(slot, waker.clone())));
        }
        if let Some(i) = w.chosen.iter().position(|&c| c == id) {
            w.chosen.swap_remove(i);
        }
        Seen::Notified
    }

    /// Remove waiter `id`. When `notify_one` had chosen it and `pass_on`
    /// is set, choose the next waiter instead (INV-WAIT-3).
    fn deregister(&self, id: u64, pass_on: bool) {
        let (removed, next) = {
            let mut w = self.inner.lock();
            if let Ok(i) = w.waiting.binary_search_by_key(&id, |e| e.0) {
                let removed = w.waiting.remove(i);
                self.len.store(w.waiting.len(), Ordering::SeqCst);
                (removed, None)
            } else if let Some(i) = w.chosen.iter().position(|&c| c == id) {
                w.chosen.swap_remove(i);
                let next = if pass_on {
                    w.choose_one(&self.len)
                } else {
                    None
                };
                (None, next)
            } else {
                // Notified by `notify_all`: every waiter had it.
                (None, None)
            }
        };
        drop(removed);
        if let Some(waker) = next {
            waker.wake();
        }
    }
}

/// The future of [`WaitQueue::wait_for`] and [`WaitQueue::wait_until`].
/// Dropping it removes its registration (INV-WAIT-3).
#[must_use = "futures do nothing unless polled"]
pub struct WaitFor<'a, C: IrqCtl, F> {
    queue: &'a WaitQueue<C>,
    cond: F,
    /// The registration, while there is one.
    id: Option<u64>,
}

// Nothing is pinned structurally: `cond` is only called through `&mut`.
impl<C: IrqCtl, F> Unpin for WaitFor<'_, C, F> {}

impl<C: IrqCtl, R, F: FnMut() -> Option<R>> Future for WaitFor<'_, C, F> {
    type Output = R;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let this = self.get_mut();
        if let Some(id) = this.id {
            match this.queue.poll_waiter(id, cx.waker()) {
                Seen::Waiting(old) => {
                    drop(old);
                    return Poll::Pending;
                }
                Seen::Notified => this.id = None,
            }
        }
        if let Some(r) = (this.cond)() {
            return Poll::Ready(r);
        }
        // INV-WAIT-1: register, fence, test again.
        let id = this.queue.register(cx.waker().clone());
        this.id = Some(id);
        fence(Ordering::SeqCst);
        if let Some(r) = (this.cond)() {
            this.id = None;
            // A notification that raced with the re-test is consumed by it.
            this.queue.deregister(id, false);
            return Poll::Ready(r);
        }
        Poll::Pending
    }
}

impl<C: IrqCtl, F> Drop for WaitFor<'_, C, F> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.queue.deregister(id, true);
        }
    }
}
