//! The kernel's wait queues for `memory.atomic.wait32/64` and
//! `memory.atomic.notify`, keyed by the host address of the waited cell.
//!
//! A cell of a shared memory has one host address for as long as the
//! memory lives (its base never moves, vm INV-VM-1), whoever maps it, so
//! the address names the cell kernel-wide.
//!
//! Invariants:
//! - INV-FUTEX-1: a waiter is queued only under the table's lock, after
//!   its caller saw the cell hold the expected value under that lock; a
//!   `notify` takes the same lock, so a store and notify that follow the
//!   check always find the waiter (no lost wake-up).
//! - INV-FUTEX-2: a waiter leaves its queue exactly once: woken by
//!   `notify` (which counts it), or cancelled by its own caller after a
//!   timeout or a kill (which then reports the timeout or the kill).
//! - INV-FUTEX-3: waiters of one address are woken in the order they
//!   queued.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

/// One waiting caller.
#[derive(Default)]
pub struct Waiter {
    woken: AtomicBool,
    waker: spin::Mutex<Option<Waker>>,
}

impl Waiter {
    /// Whether a `notify` woke it.
    #[must_use]
    pub fn woken(&self) -> bool {
        self.woken.load(Ordering::Acquire)
    }

    /// A future that completes when a `notify` wakes it.
    #[must_use]
    pub fn wait(self: Arc<Self>) -> WaitFuture {
        WaitFuture(self)
    }
}

/// See [`Waiter::wait`].
pub struct WaitFuture(Arc<Waiter>);

impl Future for WaitFuture {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.woken() {
            return Poll::Ready(());
        }
        *self.0.waker.lock() = Some(cx.waker().clone());
        // A wake between the check and the store finds the waker now.
        if self.0.woken() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// The kernel's wait queues.
#[derive(Default)]
pub struct Futexes {
    queues: spin::Mutex<BTreeMap<usize, VecDeque<Arc<Waiter>>>>,
}

impl Futexes {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Queue a waiter on `addr` if `still()` (the cell holds the expected
    /// value) says so, under the lock (INV-FUTEX-1); `None` otherwise.
    pub fn enqueue(&self, addr: usize, still: impl FnOnce() -> bool) -> Option<Arc<Waiter>> {
        let mut q = self.queues.lock();
        if !still() {
            return None;
        }
        let w = Arc::new(Waiter::default());
        q.entry(addr).or_default().push_back(w.clone());
        Some(w)
    }

    /// Wake up to `count` waiters of `addr`, oldest first (INV-FUTEX-3);
    /// how many woke.
    pub fn notify(&self, addr: usize, count: u32) -> u32 {
        let mut woken = 0;
        let mut wakers = alloc::vec::Vec::new();
        {
            let mut q = self.queues.lock();
            if let Some(list) = q.get_mut(&addr) {
                while woken < count {
                    let Some(w) = list.pop_front() else { break };
                    w.woken.store(true, Ordering::Release);
                    if let Some(k) = w.waker.lock().take() {
                        wakers.push(k);
                    }
                    woken += 1;
                }
                if list.is_empty() {
                    q.remove(&addr);
                }
            }
        }
        // Woken outside the lock.
        for k in wakers {
            k.wake();
        }
        woken
    }

    /// Take `w` off `addr`'s queue after a timeout or a kill; `false` when
    /// a `notify` took it first, which then counts as its wake-up
    /// (INV-FUTEX-2).
    pub fn cancel(&self, addr: usize, w: &Arc<Waiter>) -> bool {
        let mut q = self.queues.lock();
        let Some(list) = q.get_mut(&addr) else {
            return false;
        };
        let Some(i) = list.iter().position(|x| Arc::ptr_eq(x, w)) else {
            return false;
        };
        list.remove(i);
        if list.is_empty() {
            q.remove(&addr);
        }
        true
    }

    /// Waiters queued now, over every address.
    #[must_use]
    pub fn len(&self) -> usize {
        self.queues.lock().values().map(VecDeque::len).sum()
    }

    /// Whether no waiter is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_wakes_in_order_and_counts_and_cancel_loses_to_notify() {
        let f = Futexes::new();
        assert!(f.enqueue(8, || false).is_none());
        let a = f.enqueue(8, || true).expect("queued");
        let b = f.enqueue(8, || true).expect("queued");
        let c = f.enqueue(16, || true).expect("queued");
        assert_eq!(f.len(), 3);
        assert_eq!(f.notify(8, 1), 1);
        assert!(a.woken() && !b.woken());
        // `a` was taken by the notify: cancelling it now reports that.
        assert!(!f.cancel(8, &a));
        assert!(f.cancel(8, &b));
        assert_eq!(f.notify(8, 5), 0);
        assert_eq!(f.notify(16, 0), 0);
        assert!(!c.woken());
        assert_eq!(f.notify(16, u32::MAX), 1);
        assert!(c.woken() && f.is_empty());
    }
}
