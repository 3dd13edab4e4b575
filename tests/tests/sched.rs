//! The executor on a hosted multi-CPU machine: ping-pong across CPUs with
//! no lost wake-up (INV-SCHED-1, and INV-WAIT-1 for channels), join
//! results, cancellation, sleeps driven by the real per-CPU timers, and
//! channel close semantics across CPUs. Every wait is bounded by a timeout
//! that fails the test instead of hanging it; no test passes or fails on a
//! timing threshold.

use std::future::poll_fn;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use hal_hosted::{Config, Hosted};
use kernel_core::sched::{Executor, JoinError, RecvError, SendError, channel};

/// Run `main` on CPU 0 of a `cpus`-CPU machine with workers on the others.
fn on_machine<R: Send>(
    cpus: usize,
    main: impl FnOnce(&Executor<'_, Hosted>) -> R + Send,
) -> (R, u64) {
    let hosted = Hosted::new(&Config {
        cpus,
        memory: 16 << 20,
        window: 1 << 36,
        ..Config::default()
    })
    .expect("machine");
    let exec = Executor::new(&hosted);
    let out = std::thread::scope(|s| {
        let workers: Vec<_> = (1..cpus)
            .map(|cpu| {
                let (hosted, exec) = (&hosted, &exec);
                s.spawn(move || {
                    hal_hosted::run_on_cpu(hosted, cpu, || {
                        kernel_core::boot::with_kernel(hosted, |_| exec.run_worker())
                    })
                })
            })
            .collect();
        let out = hal_hosted::run_on_cpu(&hosted, 0, || {
            kernel_core::boot::with_kernel(&hosted, |_| main(&exec))
        });
        exec.shutdown();
        for w in workers {
            w.join().expect("worker").expect("worker loop");
        }
        out
    });
    let polls = exec.polls();
    (out, polls)
}

/// A one-bit mailbox: `post` sets it, `take` waits for it and clears it.
#[derive(Default)]
struct Bell {
    rung: AtomicBool,
    waiter: Mutex<Option<Waker>>,
}

impl Bell {
    fn post(&self) {
        self.rung.store(true, Ordering::SeqCst);
        let w = self.waiter.lock().expect("lock").take();
        if let Some(w) = w {
            w.wake();
        }
    }

    async fn take(&self) {
        poll_fn(|cx| {
            if self.rung.swap(false, Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waiter.lock().expect("lock") = Some(cx.waker().clone());
            if self.rung.swap(false, Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

const BOUND: Duration = Duration::from_secs(120);

fn ping_pong(cpus: usize, tasks: usize, rounds: usize) {
    let ((), polls) = on_machine(cpus, |executor| {
        let exec = executor.handle();
        let bound = exec.clone();
        let run = async move {
            let done = Arc::new(AtomicUsize::new(0));
            let mut joins = Vec::new();
            for pair in 0..tasks / 2 {
                let bells = [Arc::new(Bell::default()), Arc::new(Bell::default())];
                for side in 0..2 {
                    let (mine, theirs) = (bells[side].clone(), bells[1 - side].clone());
                    let done = done.clone();
                    // The two sides start on different CPUs.
                    let cpu = (2 * pair + side) % cpus;
                    let j = exec
                        .spawn_on(cpu, async move {
                            for _ in 0..rounds {
                                if side == 0 {
                                    theirs.post();
                                    mine.take().await;
                                } else {
                                    mine.take().await;
                                    theirs.post();
                                }
                            }
                            done.fetch_add(1, Ordering::SeqCst);
                            pair
                        })
                        .expect("spawn");
                    joins.push(j);
                }
            }
            for (i, j) in joins.into_iter().enumerate() {
                assert_eq!(j.await, Ok(i / 2));
            }
            done.load(Ordering::SeqCst)
        };
        let finished = executor.run_until(bound.timeout(BOUND, run));
        assert_eq!(
            finished,
            Ok(Ok(tasks)),
            "lost wake-up: not every task finished"
        );
    });
    assert!(polls >= (tasks * rounds) as u64);
}

#[test]
fn ten_thousand_tasks_ping_pong_across_four_cpus() {
    ping_pong(4, 10_000, 10);
}

#[test]
fn ping_pong_across_two_cpus() {
    ping_pong(2, 1_000, 50);
}

#[test]
fn join_results_and_cancellation_across_cpus() {
    let (out, _) = on_machine(4, |executor| {
        let h = executor.handle();
        executor.run_until(h.clone().timeout(BOUND, async move {
            // Results come back from whichever CPU ran the task.
            let joins: Vec<_> = (0..64u64)
                .map(|i| {
                    h.spawn_on(i as usize % 4, async move { i * i })
                        .expect("spawn")
                })
                .collect();
            let mut squares = Vec::new();
            for j in joins {
                squares.push(j.await.expect("joined"));
            }
            // A task parked forever is cancelled and its future dropped.
            let dropped = Arc::new(AtomicBool::new(false));
            struct OnDrop(Arc<AtomicBool>);
            impl Drop for OnDrop {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::SeqCst);
                }
            }
            let guard = OnDrop(dropped.clone());
            let bell = Arc::new(Bell::default());
            let b = bell.clone();
            let parked = h
                .spawn_on(3, async move {
                    let _guard = guard;
                    b.take().await;
                    1
                })
                .expect("spawn");
            let sleeper = {
                let h2 = h.clone();
                h.spawn_on(2, async move { h2.sleep(Duration::from_secs(3600)).await })
                    .expect("spawn")
            };
            parked.cancel();
            sleeper.cancel();
            (
                squares,
                parked.await,
                sleeper.await,
                dropped.load(Ordering::SeqCst),
            )
        }))
    });
    let (squares, parked, sleeper, dropped) = out.expect("run").expect("in time");
    assert_eq!(squares, (0..64u64).map(|i| i * i).collect::<Vec<_>>());
    assert_eq!(parked, Err(JoinError::Cancelled));
    assert_eq!(sleeper, Err(JoinError::Cancelled));
    assert!(dropped, "the cancelled future was dropped");
}

#[test]
fn sleeps_on_one_cpu_wake_in_deadline_order_and_never_early() {
    let (out, _) = on_machine(1, |executor| {
        let h = executor.handle();
        executor.run_until(h.clone().timeout(BOUND, async move {
            let log = Arc::new(Mutex::new(Vec::new()));
            let start = h.now();
            let joins: Vec<_> = [7u64, 2, 9, 0, 4, 1, 8, 3, 6, 5]
                .into_iter()
                .map(|ms| {
                    let (h2, log) = (h.clone(), log.clone());
                    h.spawn(async move {
                        let deadline = start + Duration::from_millis(ms * 3);
                        h2.sleep_until(deadline).await;
                        assert!(h2.now() >= deadline, "woke early");
                        log.lock().expect("lock").push(ms);
                    })
                })
                .collect();
            for j in joins {
                j.await.expect("joined");
            }
            Arc::try_unwrap(log)
                .expect("sole owner")
                .into_inner()
                .expect("lock")
        }))
    });
    assert_eq!(
        out.expect("run").expect("in time"),
        (0..10).collect::<Vec<u64>>()
    );
}

#[test]
fn sleepers_spread_over_cpus_all_wake() {
    let (out, _) = on_machine(4, |executor| {
        let h = executor.handle();
        executor.run_until(h.clone().timeout(BOUND, async move {
            let joins: Vec<_> = (0..200u64)
                .map(|i| {
                    let h2 = h.clone();
                    h.spawn_on(i as usize % 4, async move {
                        h2.sleep(Duration::from_micros(100 * (i % 17))).await;
                        i
                    })
                    .expect("spawn")
                })
                .collect();
            let mut sum = 0;
            for j in joins {
                sum += j.await.expect("joined");
            }
            sum
        }))
    });
    assert_eq!(
        out.expect("run").expect("in time"),
        (0..200u64).sum::<u64>()
    );
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("non-zero capacity")
}

/// `tasks / 2` pairs, each exchanging `rounds` requests and replies over two
/// capacity-1 channels, the two sides spawned on different CPUs.
fn channel_ping_pong(cpus: usize, tasks: usize, rounds: u64) {
    let (out, _) = on_machine(cpus, |executor| {
        let h = executor.handle();
        executor.run_until(h.clone().timeout(BOUND, async move {
            let mut asks = Vec::new();
            let mut answers = Vec::new();
            for pair in 0..tasks / 2 {
                let (to_b, from_a) = channel(h.clone(), cap(1));
                let (to_a, from_b) = channel(h.clone(), cap(1));
                let base = pair as u64 * rounds;
                let a = h
                    .spawn_on((2 * pair) % cpus, async move {
                        let mut sum = 0;
                        for i in 0..rounds {
                            to_b.send(base + i).await.expect("b listens");
                            sum += from_b.recv().await.expect("b answers");
                        }
                        drop(to_b);
                        // b sees the close, returns and drops its sender.
                        (sum, from_b.recv().await)
                    })
                    .expect("spawn");
                let b = h
                    .spawn_on((2 * pair + 1) % cpus, async move {
                        let mut n = 0;
                        while let Ok(v) = from_a.recv().await {
                            to_a.send(v + 1).await.expect("a listens");
                            n += 1;
                        }
                        n
                    })
                    .expect("spawn");
                asks.push(a);
                answers.push(b);
            }
            let mut results = Vec::new();
            for (a, b) in asks.into_iter().zip(answers) {
                results.push((a.await.expect("joined"), b.await.expect("joined")));
            }
            results
        }))
    });
    let results = out
        .expect("run")
        .expect("lost wake-up: not every task finished");
    assert_eq!(results.len(), tasks / 2);
    for (pair, ((sum, end), n)) in results.into_iter().enumerate() {
        let base = pair as u64 * rounds;
        assert_eq!(
            sum,
            (0..rounds).map(|i| base + i + 1).sum::<u64>(),
            "pair {pair}"
        );
        assert_eq!(end, Err(RecvError::Closed), "pair {pair}");
        assert_eq!(n, rounds, "pair {pair}");
    }
}

#[test]
fn ten_thousand_tasks_ping_pong_over_channels_across_four_cpus() {
    channel_ping_pong(4, 10_000, 10);
}

#[test]
fn channel_ping_pong_across_two_cpus() {
    channel_ping_pong(2, 200, 200);
}

#[test]
fn receivers_drain_then_see_closed_when_senders_drop_mid_stream() {
    const SENDERS: u64 = 6;
    const RECEIVERS: usize = 5;
    let (out, _) = on_machine(4, |executor| {
        let h = executor.handle();
        executor.run_until(h.clone().timeout(BOUND, async move {
            let (tx, rx) = channel(h.clone(), cap(3));
            let receivers: Vec<_> = (0..RECEIVERS)
                .map(|r| {
                    let rx = rx.clone();
                    h.spawn_on(r % 4, async move {
                        let mut got = Vec::new();
                        loop {
                            match rx.recv().await {
                                Ok(v) => got.push(v),
                                Err(RecvError::Closed) => return got,
                            }
                        }
                    })
                    .expect("spawn")
                })
                .collect();
            drop(rx);
            // Sender s sends 100 * s values and drops: the stream stops
            // while receivers wait; the last drop closes it.
            let senders: Vec<_> = (0..SENDERS)
                .map(|s| {
                    let tx = tx.clone();
                    h.spawn_on((s as usize + 1) % 4, async move {
                        for i in 0..100 * s {
                            tx.send(s * 1_000_000 + i).await.expect("receivers live");
                        }
                    })
                    .expect("spawn")
                })
                .collect();
            drop(tx);
            for s in senders {
                s.await.expect("joined");
            }
            let mut all = Vec::new();
            for r in receivers {
                all.extend(r.await.expect("joined"));
            }
            all
        }))
    });
    let mut all = out
        .expect("run")
        .expect("in time: every receiver saw Closed");
    all.sort_unstable();
    let mut expected: Vec<u64> = (0..SENDERS)
        .flat_map(|s| (0..100 * s).map(move |i| s * 1_000_000 + i))
        .collect();
    expected.sort_unstable();
    assert_eq!(all, expected, "every value received exactly once");
}

#[test]
fn senders_get_their_value_back_when_receivers_drop_mid_stream() {
    const CAPACITY: usize = 4;
    let (out, _) = on_machine(4, |executor| {
        let h = executor.handle();
        executor.run_until(h.clone().timeout(BOUND, async move {
            let (tx, rx) = channel(h.clone(), cap(CAPACITY));
            // Three receivers on three CPUs take 50 values each, then drop.
            let receivers: Vec<_> = (0..3)
                .map(|r| {
                    let rx = rx.clone();
                    h.spawn_on(r + 1, async move {
                        for _ in 0..50 {
                            rx.recv().await.expect("senders live");
                        }
                        50u64
                    })
                    .expect("spawn")
                })
                .collect();
            drop(rx);
            // Four senders send until the channel closes under them.
            let senders: Vec<_> = (0..4u64)
                .map(|s| {
                    let tx = tx.clone();
                    h.spawn_on(s as usize % 4, async move {
                        let mut sent = 0u64;
                        loop {
                            let v = (s << 32) | sent;
                            match tx.send(v).await {
                                Ok(()) => sent += 1,
                                Err(SendError::Closed(back)) => return (sent, back == v),
                            }
                        }
                    })
                    .expect("spawn")
                })
                .collect();
            drop(tx);
            let mut received = 0;
            for r in receivers {
                received += r.await.expect("joined");
            }
            let mut outcomes = Vec::new();
            for s in senders {
                outcomes.push(s.await.expect("joined"));
            }
            (received, outcomes)
        }))
    });
    let (received, outcomes) = out.expect("run").expect("in time: every sender saw Closed");
    assert_eq!(received, 150);
    assert!(
        outcomes.iter().all(|&(_, back)| back),
        "the failed value came back"
    );
    let sent: u64 = outcomes.iter().map(|&(n, _)| n).sum();
    // What was sent and never received was queued when the last receiver
    // dropped (and dropped with it): at most a channel's worth.
    assert!(
        (received..=received + CAPACITY as u64).contains(&sent),
        "sent {sent}, received {received}"
    );
}
