//! Unit tests on the scheduler's one-CPU fake HAL: futures polled by hand
//! with counting wakers (exact wake-up accounting), tasks on the fake
//! executor (whose idle wait with no timer armed fails the test: a lost
//! wake-up cannot hang it), and a state-machine test of the channel against
//! a `VecDeque` model.

extern crate std;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec;
use alloc::vec::Vec;
use core::future::Future;
use core::num::NonZeroUsize;
use core::pin::{Pin, pin};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::task::{Context, Poll, Waker};

use proptest::prelude::*;

use super::super::tests::Fake;
use super::super::{Executor, Handle, yield_now};
use super::*;
use crate::hal::Interrupts;

/// A waker that counts its wakes.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Count {
    fn new() -> (Arc<Self>, Waker) {
        let c = Arc::new(Self::default());
        (c.clone(), Waker::from(c))
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn poll<F: Future + ?Sized>(f: Pin<&mut F>, w: &Waker) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(w))
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("non-zero capacity")
}

/// A token counter: `take` is the condition waiters wait for.
struct Tokens(AtomicUsize);

impl Tokens {
    fn take(&self) -> Option<()> {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| ())
    }

    fn add(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Yield until `n` waiters are registered on `q` (each yield of the main
/// future lets one task run); bounded so a bug fails instead of spinning.
async fn until_waiting<C: IrqCtl>(q: &WaitQueue<C>, n: usize) {
    for _ in 0..1000 {
        if q.waiters() == n {
            return;
        }
        yield_now().await;
    }
    panic!("expected {n} waiters, found {}", q.waiters());
}

#[test]
fn irq_mutex_masks_while_held_and_restores_the_previous_state() {
    let hal = Fake::default();
    hal.irqs.store(true, Ordering::SeqCst);
    let m = IrqMutex::new(&hal, 5);
    {
        let mut g = m.lock();
        assert!(!hal.irqs_enabled(), "masked while held");
        *g += 1;
        assert!(m.try_lock().is_none(), "held");
        assert!(!hal.irqs_enabled(), "a failed try_lock leaves the mask");
    }
    assert!(hal.irqs_enabled(), "restored on drop");
    // Taken with interrupts already masked, it leaves them masked.
    let outer = hal.disable_irqs();
    drop(m.lock());
    assert!(!hal.irqs_enabled());
    drop(outer);
    assert!(hal.irqs_enabled());
    assert_eq!(m.try_lock().map(|g| *g), Some(6));
    assert!(hal.irqs_enabled());
    assert_eq!(m.into_inner(), 6);
}

#[test]
fn irq_mutex_through_a_handle_masks_while_the_executor_lives() {
    let hal = Fake::default();
    hal.irqs.store(true, Ordering::SeqCst);
    let exec = Executor::new(&hal);
    let m = IrqMutex::new(exec.handle(), 0u32);
    {
        let _g = m.lock();
        assert!(!hal.irqs_enabled());
    }
    assert!(hal.irqs_enabled());
    drop(exec);
    // INV-SYNC-3: the executor is gone, the lock still works unmasked.
    *m.lock() += 1;
    assert!(hal.irqs_enabled());
    assert_eq!(m.into_inner(), 1);
}

#[test]
fn notify_one_wakes_waiters_in_registration_order() {
    let hal = Fake::default();
    let q = WaitQueue::new(&hal);
    let tokens = Tokens(AtomicUsize::new(0));
    let (counts, wakers): (Vec<_>, Vec<_>) = (0..3).map(|_| Count::new()).unzip();
    let mut waits: Vec<_> = (0..3).map(|_| q.wait_for(|| tokens.take())).collect();
    for (w, waker) in waits.iter_mut().zip(&wakers) {
        assert_eq!(poll(Pin::new(w), waker), Poll::Pending);
    }
    assert_eq!(q.waiters(), 3);
    tokens.add();
    assert!(q.notify_one());
    assert_eq!(
        counts.iter().map(|c| c.get()).collect::<Vec<_>>(),
        [1, 0, 0]
    );
    // A spurious poll of a waiter that was not notified stays pending.
    assert_eq!(poll(Pin::new(&mut waits[2]), &wakers[2]), Poll::Pending);
    assert_eq!(poll(Pin::new(&mut waits[0]), &wakers[0]), Poll::Ready(()));
    assert_eq!(q.waiters(), 2);
    // notify_all wakes the rest; each re-tests and only one gets the token.
    tokens.add();
    assert_eq!(q.notify_all(), 2);
    assert_eq!(
        counts.iter().map(|c| c.get()).collect::<Vec<_>>(),
        [1, 1, 1]
    );
    assert_eq!(poll(Pin::new(&mut waits[1]), &wakers[1]), Poll::Ready(()));
    assert_eq!(poll(Pin::new(&mut waits[2]), &wakers[2]), Poll::Pending);
    assert_eq!(q.waiters(), 1, "the loser registered again");
    drop(waits);
    assert_eq!(q.waiters(), 0, "a dropped wait is deregistered");
    assert!(!q.notify_one());
}

#[test]
fn tasks_woken_one_at_a_time_finish_in_waiting_order() {
    let hal = Fake::default();
    let exec = Executor::new(&hal);
    let h = exec.handle();
    let q = Arc::new(WaitQueue::new(h.clone()));
    let tokens = Arc::new(Tokens(AtomicUsize::new(0)));
    let log = Arc::new(spin::Mutex::new(Vec::new()));
    exec.run_until(async {
        let joins: Vec<_> = (0..4)
            .map(|i| {
                let (q, tokens, log) = (q.clone(), tokens.clone(), log.clone());
                h.spawn(async move {
                    q.wait_for(|| tokens.take()).await;
                    log.lock().push(i);
                })
            })
            .collect();
        until_waiting(&q, 4).await;
        for _ in 0..4 {
            tokens.add();
            q.notify_one();
            yield_now().await;
        }
        for j in joins {
            j.await.expect("joined");
        }
    })
    .expect("run");
    assert_eq!(*log.lock(), vec![0, 1, 2, 3]);
}

#[test]
fn a_dropped_chosen_waiter_passes_the_notification_on() {
    let hal = Fake::default();
    let q = WaitQueue::new(&hal);
    let tokens = Tokens(AtomicUsize::new(0));
    let (ca, wa) = Count::new();
    let (cb, wb) = Count::new();
    let (cc, wc) = Count::new();
    let mut a = q.wait_for(|| tokens.take());
    let mut b = q.wait_for(|| tokens.take());
    let mut c = q.wait_for(|| tokens.take());
    assert_eq!(poll(Pin::new(&mut a), &wa), Poll::Pending);
    assert_eq!(poll(Pin::new(&mut b), &wb), Poll::Pending);
    assert_eq!(poll(Pin::new(&mut c), &wc), Poll::Pending);
    tokens.add();
    q.notify_one();
    assert_eq!((ca.get(), cb.get()), (1, 0));
    drop(a);
    assert_eq!(cb.get(), 1, "the notification went on to the next waiter");
    assert_eq!(poll(Pin::new(&mut b), &wb), Poll::Ready(()));
    // An unchosen waiter dropped passes nothing on.
    drop(c);
    assert_eq!(cc.get(), 0);
    assert_eq!(q.waiters(), 0);
    // After notify_all, a drop passes nothing on either.
    let (cd, wd) = Count::new();
    let (ce, we) = Count::new();
    let mut d = q.wait_for(|| tokens.take());
    let mut e = q.wait_for(|| tokens.take());
    assert_eq!(poll(Pin::new(&mut d), &wd), Poll::Pending);
    assert_eq!(poll(Pin::new(&mut e), &we), Poll::Pending);
    q.notify_all();
    drop(d);
    assert_eq!((cd.get(), ce.get()), (1, 1));
}

#[test]
fn a_cancelled_waiting_task_passes_the_notification_on() {
    let hal = Fake::default();
    let exec = Executor::new(&hal);
    let h = exec.handle();
    let q = Arc::new(WaitQueue::new(h.clone()));
    let tokens = Arc::new(Tokens(AtomicUsize::new(0)));
    let out = exec.run_until(async {
        let spawn = |v: u32| {
            let (q, tokens) = (q.clone(), tokens.clone());
            h.spawn(async move {
                q.wait_for(|| tokens.take()).await;
                v
            })
        };
        let first = spawn(1);
        let second = spawn(2);
        until_waiting(&q, 2).await;
        tokens.add();
        q.notify_one();
        // The chosen task is cancelled before it runs: its future's drop
        // must wake the other one, or the fake HAL reports a lost wake-up.
        first.cancel();
        (first.await, second.await)
    });
    assert_eq!(out, Ok((Err(super::super::JoinError::Cancelled), Ok(2))));
}

#[test]
fn a_notify_racing_with_registration_is_not_lost() {
    let hal = Fake::default();
    let q = WaitQueue::new(&hal);
    let flag = AtomicBool::new(false);
    let calls = AtomicUsize::new(0);
    // The state changes and is notified between the first test and the
    // registration: nobody is registered yet, the re-test must see it.
    let mut w = q.wait_until(|| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let seen = flag.load(Ordering::SeqCst);
        if n == 0 {
            flag.store(true, Ordering::SeqCst);
            assert!(!q.notify_one(), "nobody registered yet");
        }
        seen
    });
    let (_, waker) = Count::new();
    assert_eq!(poll(Pin::new(&mut w), &waker), Poll::Ready(()));
    assert_eq!(q.waiters(), 0);
    drop(w);

    // Notified between registration and the re-test (the re-test reads a
    // stale value): the wake arrives and the next poll sees the change.
    let flag = AtomicBool::new(false);
    let calls = AtomicUsize::new(0);
    let mut w = q.wait_until(|| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let seen = flag.load(Ordering::SeqCst);
        if n == 1 {
            flag.store(true, Ordering::SeqCst);
            assert!(q.notify_one(), "registered before the re-test");
        }
        seen
    });
    let (count, waker) = Count::new();
    assert_eq!(poll(Pin::new(&mut w), &waker), Poll::Pending);
    assert_eq!(count.get(), 1);
    assert_eq!(poll(Pin::new(&mut w), &waker), Poll::Ready(()));
}

#[test]
fn a_full_channel_holds_senders_back_until_a_value_is_taken() {
    let hal = Fake::default();
    let (tx, rx) = channel(&hal, cap(2));
    assert_eq!(tx.capacity(), cap(2));
    assert_eq!(tx.try_send(1), Ok(()));
    assert_eq!(tx.try_send(2), Ok(()));
    assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
    assert_eq!((tx.len(), rx.len()), (2, 2));
    let (count, waker) = Count::new();
    let mut send = pin!(tx.send(3));
    assert_eq!(poll(send.as_mut(), &waker), Poll::Pending);
    assert_eq!(count.get(), 0);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(count.get(), 1, "taking a value wakes a sender");
    assert_eq!(poll(send.as_mut(), &waker), Poll::Ready(Ok(())));
    assert_eq!(rx.len(), 2);
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert!(rx.is_empty());
}

#[test]
fn dropping_every_sender_lets_receivers_drain_then_see_closed() {
    let hal = Fake::default();
    let (tx, rx) = channel(&hal, cap(4));
    let tx2 = tx.clone();
    let rx2 = rx.clone();
    assert_eq!(tx.try_send(1), Ok(()));
    assert_eq!(tx2.try_send(2), Ok(()));
    drop(tx);
    assert!(!rx.is_closed(), "one sender is left");
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx2.try_recv(), Ok(1));
    let (_, waker) = Count::new();
    assert_eq!(poll(pin!(rx.recv()), &waker), Poll::Ready(Ok(2)));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(
        poll(pin!(rx2.recv()), &waker),
        Poll::Ready(Err(RecvError::Closed))
    );

    // A receiver waiting when the last sender goes is woken with Closed.
    let (tx, rx) = channel::<_, u8>(&hal, cap(1));
    let (count, waker) = Count::new();
    let mut recv = pin!(rx.recv());
    assert_eq!(poll(recv.as_mut(), &waker), Poll::Pending);
    drop(tx);
    assert_eq!(count.get(), 1);
    assert_eq!(
        poll(recv.as_mut(), &waker),
        Poll::Ready(Err(RecvError::Closed))
    );
}

/// A value that records its drop.
#[derive(Debug)]
struct Tracked(u32, Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_every_receiver_fails_senders_and_drops_what_is_queued() {
    let hal = Fake::default();
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = channel(&hal, cap(1));
    let tx2 = tx.clone();
    assert!(tx.try_send(Tracked(1, drops.clone())).is_ok());
    let (count, waker) = Count::new();
    let mut send = pin!(tx2.send(Tracked(2, drops.clone())));
    assert!(poll(send.as_mut(), &waker).is_pending());
    let rx2 = rx.clone();
    drop(rx);
    assert!(!tx.is_closed(), "one receiver is left");
    assert_eq!(count.get(), 0);
    drop(rx2);
    assert!(tx.is_closed());
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the queued value was dropped"
    );
    assert_eq!(tx.len(), 0);
    assert_eq!(count.get(), 1, "the waiting sender was woken");
    match poll(send.as_mut(), &waker) {
        Poll::Ready(Err(SendError::Closed(v))) => assert_eq!(v.0, 2),
        other => panic!("expected the value back, got {other:?}"),
    }
    match tx.try_send(Tracked(3, drops.clone())) {
        Err(TrySendError::Closed(v)) => assert_eq!(v.0, 3),
        other => panic!("expected the value back, got {other:?}"),
    }
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn close_from_either_end_stops_sends_and_keeps_the_queue() {
    let hal = Fake::default();
    for from_receiver in [false, true] {
        let (tx, rx) = channel(&hal, cap(3));
        assert_eq!(tx.try_send(1), Ok(()));
        let (count, waker) = Count::new();
        let rx2 = rx.clone();
        let mut recv = pin!(rx2.recv());
        assert_eq!(poll(recv.as_mut(), &waker), Poll::Ready(Ok(1)));
        let mut recv = pin!(rx2.recv());
        assert_eq!(poll(recv.as_mut(), &waker), Poll::Pending);
        assert_eq!(tx.try_send(2), Ok(()));
        assert_eq!(count.get(), 1);
        assert_eq!(poll(recv.as_mut(), &waker), Poll::Ready(Ok(2)));
        assert_eq!(tx.try_send(3), Ok(()));
        if from_receiver {
            rx.close();
        } else {
            tx.close();
        }
        assert!(tx.is_closed() && rx.is_closed());
        assert_eq!(tx.try_send(4), Err(TrySendError::Closed(4)));
        assert_eq!(
            poll(pin!(tx.send(5)), &waker),
            Poll::Ready(Err(SendError::Closed(5)))
        );
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    }
}

#[test]
fn a_dropped_chosen_receive_passes_the_value_on() {
    let hal = Fake::default();
    let (tx, rx) = channel(&hal, cap(1));
    let rx2 = rx.clone();
    let (ca, wa) = Count::new();
    let (cb, wb) = Count::new();
    let mut a = Box::pin(rx.recv());
    let mut b = pin!(rx2.recv());
    assert_eq!(poll(a.as_mut(), &wa), Poll::Pending);
    assert_eq!(poll(b.as_mut(), &wb), Poll::Pending);
    assert_eq!(tx.try_send(7), Ok(()));
    assert_eq!((ca.get(), cb.get()), (1, 0));
    drop(a);
    assert_eq!(cb.get(), 1);
    assert_eq!(poll(b.as_mut(), &wb), Poll::Ready(Ok(7)));
}

#[test]
fn tasks_ping_pong_over_capacity_one_channels() {
    let hal = Fake::default();
    let exec = Executor::new(&hal);
    let h: Handle<Fake> = exec.handle();
    let out = exec.run_until(async {
        let (to_b, from_a) = channel(h.clone(), cap(1));
        let (to_a, from_b) = channel(h.clone(), cap(1));
        let b = h.spawn(async move {
            let mut n = 0u64;
            while let Ok(v) = from_a.recv().await {
                n += 1;
                to_a.send(v + 1).await.expect("a listens");
            }
            n
        });
        let mut sum = 0u64;
        for i in 0..100u64 {
            to_b.send(2 * i).await.expect("b listens");
            sum += from_b.recv().await.expect("b answers");
        }
        drop(to_b);
        // b saw the close and dropped its sender: a sees Closed.
        let n = b.await.expect("joined");
        (sum, n, from_b.recv().await)
    });
    let expected: u64 = (0..100u64).map(|i| 2 * i + 1).sum();
    assert_eq!(out, Ok((expected, 100, Err(RecvError::Closed))));
}

/// An operation of the channel state-machine test; indexes pick a live end
/// modulo the number alive.
#[derive(Clone, Debug)]
enum Op {
    TrySend(usize, u8),
    TryRecv(usize),
    /// Poll a `send` future once, then drop it.
    PollSend(usize, u8),
    /// Poll a `recv` future once, then drop it.
    PollRecv(usize),
    CloneSender(usize),
    DropSender(usize),
    CloneReceiver(usize),
    DropReceiver(usize),
    CloseSender(usize),
    CloseReceiver(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Op::TrySend(i, v)),
        4 => any::<usize>().prop_map(Op::TryRecv),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Op::PollSend(i, v)),
        2 => any::<usize>().prop_map(Op::PollRecv),
        1 => any::<usize>().prop_map(Op::CloneSender),
        1 => any::<usize>().prop_map(Op::DropSender),
        1 => any::<usize>().prop_map(Op::CloneReceiver),
        1 => any::<usize>().prop_map(Op::DropReceiver),
        1 => any::<usize>().prop_map(Op::CloseSender),
        1 => any::<usize>().prop_map(Op::CloseReceiver),
    ]
}

/// The reference model of one channel.
struct Model {
    buf: VecDeque<u8>,
    capacity: usize,
    closed: bool,
}

impl Model {
    fn try_send(&mut self, v: u8) -> Result<(), TrySendError<u8>> {
        if self.closed {
            Err(TrySendError::Closed(v))
        } else if self.buf.len() >= self.capacity {
            Err(TrySendError::Full(v))
        } else {
            self.buf.push_back(v);
            Ok(())
        }
    }

    fn try_recv(&mut self) -> Result<u8, TryRecvError> {
        match self.buf.pop_front() {
            Some(v) => Ok(v),
            None if self.closed => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn channel_matches_a_vecdeque_model(
        capacity in 1usize..5,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let hal = Fake::default();
        hal.irqs.store(true, Ordering::SeqCst);
        let (tx, rx) = channel(&hal, cap(capacity));
        let mut senders = vec![tx];
        let mut receivers = vec![rx];
        let mut model = Model { buf: VecDeque::new(), capacity, closed: false };
        let (_, waker) = Count::new();
        for op in ops {
            let ns = senders.len();
            let nr = receivers.len();
            match op {
                Op::TrySend(i, v) if ns > 0 => {
                    prop_assert_eq!(senders[i % ns].try_send(v), model.try_send(v));
                }
                Op::TryRecv(i) if nr > 0 => {
                    prop_assert_eq!(receivers[i % nr].try_recv(), model.try_recv());
                }
                Op::PollSend(i, v) if ns > 0 => {
                    let got = poll(pin!(senders[i % ns].send(v)), &waker);
                    let want = match model.try_send(v) {
                        Ok(()) => Poll::Ready(Ok(())),
                        Err(TrySendError::Closed(v)) => Poll::Ready(Err(SendError::Closed(v))),
                        Err(TrySendError::Full(_)) => Poll::Pending,
                    };
                    prop_assert_eq!(got, want);
                }
                Op::PollRecv(i) if nr > 0 => {
                    let got = poll(pin!(receivers[i % nr].recv()), &waker);
                    let want = match model.try_recv() {
                        Ok(v) => Poll::Ready(Ok(v)),
                        Err(TryRecvError::Closed) => Poll::Ready(Err(RecvError::Closed)),
                        Err(TryRecvError::Empty) => Poll::Pending,
                    };
                    prop_assert_eq!(got, want);
                }
                Op::CloneSender(i) if ns > 0 => senders.push(senders[i % ns].clone()),
                Op::CloneReceiver(i) if nr > 0 => receivers.push(receivers[i % nr].clone()),
                Op::DropSender(i) if ns > 0 => {
                    senders.swap_remove(i % ns);
                    model.closed |= senders.is_empty();
                }
                Op::DropReceiver(i) if nr > 0 => {
                    receivers.swap_remove(i % nr);
                    if receivers.is_empty() {
                        model.closed = true;
                        model.buf.clear();
                    }
                }
                Op::CloseSender(i) if ns > 0 => {
                    senders[i % ns].close();
                    model.closed = true;
                }
                Op::CloseReceiver(i) if nr > 0 => {
                    receivers[i % nr].close();
                    model.closed = true;
                }
                _ => {}
            }
            for s in &senders {
                prop_assert_eq!(s.len(), model.buf.len());
                prop_assert_eq!(s.is_closed(), model.closed);
                prop_assert_eq!(s.waiters(), (0, 0), "a dropped future left a waiter");
            }
            for r in &receivers {
                prop_assert_eq!(r.len(), model.buf.len());
                prop_assert_eq!(r.is_closed(), model.closed);
            }
        }
        prop_assert!(hal.irqs_enabled(), "every lock restored the interrupt state");
    }
}
