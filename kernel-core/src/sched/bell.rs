//! A doorbell: how an interrupt handler wakes tasks without waking them
//! itself. A handler may not wake a task (a wake may allocate: INV-SCHED-2,
//! INV-HAL-2), so it only [`Doorbell::ring`]s, a store to one atomic; the
//! executor's worker loop, in task context, sees the ring on its next turn
//! (the interrupt has ended the CPU's wait) and wakes every waiter
//! ([`Doorbell::service`]). A waiter's future ([`Doorbell::wait`]) ends at
//! the first ring after it began waiting, or at one it finds already rung.
//!
//! Invariants:
//! - INV-BELL-1: a ring is never lost: it stays set until a waiter takes
//!   it, and a waiter registers its waker before it looks at the ring a
//!   second time, so a ring between the two looks either is seen by the
//!   waiter or finds its waker registered.
//! - INV-BELL-2: a waiter that goes away (its future dropped: the process
//!   was killed) takes its waker out, so nothing is kept for it.

use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};

/// A ring from interrupt context and the tasks waiting for it.
#[derive(Default)]
pub struct Doorbell {
    rung: AtomicBool,
    /// Some waker is registered (read by the idle check without the lock).
    waiting: AtomicBool,
    /// The waiters' wakers, by waiter id. Never locked in interrupt
    /// context.
    wakers: spin::Mutex<Vec<(u64, Waker)>>,
    next_id: AtomicU64,
}

impl Doorbell {
    /// A bell not rung, with no waiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ring: safe in interrupt context (one atomic store, no lock).
    pub fn ring(&self) {
        self.rung.store(true, Ordering::SeqCst);
    }

    /// Whether a ring waits for [`Doorbell::service`] to wake someone.
    pub fn needs_service(&self) -> bool {
        self.rung.load(Ordering::SeqCst) && self.waiting.load(Ordering::SeqCst)
    }

    /// Task context: when rung, wake every waiter (each takes the ring or
    /// finds it taken and waits again).
    pub fn service(&self) {
        if !self.needs_service() {
            return;
        }
        let wakers = {
            let mut w = self.wakers.lock();
            self.waiting.store(false, Ordering::SeqCst);
            core::mem::take(&mut *w)
        };
        for (_, w) in wakers {
            w.wake();
        }
    }

    /// A future that ends at the next ring (or one already pending).
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            bell: self,
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn forget(&self, id: u64) {
        let mut w = self.wakers.lock();
        w.retain(|(i, _)| *i != id);
        if w.is_empty() {
            self.waiting.store(false, Ordering::SeqCst);
        }
    }
}

/// [`Doorbell::wait`]'s future.
pub struct Wait<'a> {
    bell: &'a Doorbell,
    id: u64,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let bell = self.bell;
        if bell.rung.swap(false, Ordering::SeqCst) {
            bell.forget(self.id);
            return Poll::Ready(());
        }
        {
            let mut w = bell.wakers.lock();
            match w.iter_mut().find(|(i, _)| *i == self.id) {
                Some((_, waker)) => waker.clone_from(cx.waker()),
                None => w.push((self.id, cx.waker().clone())),
            }
            bell.waiting.store(true, Ordering::SeqCst);
        }
        // INV-BELL-1: look again now that the waker is in.
        if bell.rung.swap(false, Ordering::SeqCst) {
            bell.forget(self.id);
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        // INV-BELL-2.
        self.bell.forget(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use alloc::task::Wake;
    use core::sync::atomic::AtomicUsize;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(w: &mut Wait<'_>, waker: &Waker) -> Poll<()> {
        Pin::new(w).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_ring_before_the_wait_is_kept_and_taken_once() {
        let bell = Doorbell::new();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        bell.ring();
        assert_eq!(poll(&mut bell.wait(), &waker), Poll::Ready(()));
        assert_eq!(poll(&mut bell.wait(), &waker), Poll::Pending);
    }

    #[test]
    fn service_wakes_every_waiter_after_a_ring_and_not_before() {
        let bell = Doorbell::new();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let (mut a, mut b) = (bell.wait(), bell.wait());
        assert_eq!(poll(&mut a, &waker), Poll::Pending);
        assert_eq!(poll(&mut b, &waker), Poll::Pending);
        bell.service();
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert!(!bell.needs_service());
        bell.ring();
        assert!(bell.needs_service());
        bell.service();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        // One of them takes the ring; the other waits again.
        assert_eq!(poll(&mut a, &waker), Poll::Ready(()));
        assert_eq!(poll(&mut b, &waker), Poll::Pending);
    }

    #[test]
    fn a_dropped_waiter_leaves_nothing_behind() {
        let bell = Doorbell::new();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        for _ in 0..100 {
            let mut w = bell.wait();
            assert_eq!(poll(&mut w, &waker), Poll::Pending);
        }
        assert!(bell.wakers.lock().is_empty());
        assert!(!bell.waiting.load(Ordering::SeqCst));
        assert_eq!(Arc::strong_count(&count), 2);
    }
}
