//! Unit tests on a one-CPU fake HAL with a virtual clock: waiting for an
//! interrupt jumps the clock to the armed timer, and waiting with nothing
//! armed is a lost wake-up (the test fails instead of hanging).

extern crate std;

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use super::*;
use crate::hal::{CpuEntry, CpuLocal, HalError};

/// The fake HAL, shared with the tests of [`super::sync`].
#[derive(Default)]
pub(super) struct Fake {
    now: AtomicU64,
    timer: AtomicU64,
    pub(super) irqs: AtomicBool,
}

impl Cpus for Fake {
    fn cpu_count(&self) -> usize {
        1
    }
    fn current_cpu(&self) -> CpuId {
        0
    }
    fn start_cpu(&self, _: CpuId, _: CpuEntry, _: usize) -> Result<(), HalError> {
        Err(HalError::Unsupported)
    }
    fn send_ipi(&self, _: CpuId) {}
    fn wait_for_interrupt(&self) {
        let t = self.timer.swap(0, Ordering::SeqCst);
        assert!(t != 0, "idle with no timer armed: a lost wake-up");
        self.now.fetch_max(t, Ordering::SeqCst);
    }
    unsafe fn set_cpu_local(&self, _: *const CpuLocal) {}
    fn cpu_local(&self) -> *const CpuLocal {
        core::ptr::null()
    }
}

impl Interrupts for Fake {
    fn irq_save(&self) -> bool {
        self.irqs.swap(false, Ordering::SeqCst)
    }
    fn irq_restore(&self, enabled: bool) {
        if enabled {
            self.irqs.store(true, Ordering::SeqCst);
        }
    }
    fn irqs_enabled(&self) -> bool {
        self.irqs.load(Ordering::SeqCst)
    }
}

impl Clock for Fake {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.now.load(Ordering::SeqCst))
    }
    fn set_timer(&self, deadline: Duration) {
        let ns = u64::try_from(deadline.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        self.timer.store(ns, Ordering::SeqCst);
    }
    fn cancel_timer(&self) {
        self.timer.store(0, Ordering::SeqCst);
    }
    fn wall_time(&self) -> Option<Duration> {
        None
    }
}

#[test]
fn spawn_join_and_yield_interleave_in_fifo_order() {
    let hal = Fake::default();
    let exec = Executor::new(&hal);
    let h = exec.handle();
    let log = Arc::new(spin::Mutex::new(Vec::new()));
    let out = exec.run_until(async {
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let log = log.clone();
                h.spawn(async move {
                    for round in 0..2 {
                        log.lock().push((round, i));
                        yield_now().await;
                    }
                    i * 10
                })
            })
            .collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await.expect("joined");
        }
        sum
    });
    assert_eq!(out, Ok(30));
    assert_eq!(
        *log.lock(),
        vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    );
}

#[test]
fn cancel_drops_a_parked_task_and_keeps_a_finished_output() {
    let hal = Fake::default();
    let exec = Executor::new(&hal);
    let h = exec.handle();
    let dropped = Arc::new(AtomicBool::new(false));
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let (parked, finished) = exec
        .run_until(async {
            let flag = Flag(dropped.clone());
            let h2 = h.clone();
            let parked = h.spawn(async move {
                let _flag = flag;
                h2.sleep(Duration::from_secs(3600)).await;
                1
            });
            let done = h.spawn(async { 2 });
            yield_now().await;
            yield_now().await;
            parked.cancel();
            done.cancel();
            (parked.await, done.await)
        })
        .expect("run");
    assert_eq!(parked, Err(JoinError::Cancelled));
    assert_eq!(finished, Ok(2));
    assert!(dropped.load(Ordering::SeqCst));
    // The hour-long timer went with the task: virtual time did not jump.
    assert!(hal.now() < Duration::from_secs(1));
}

#[test]
fn sleepers_wake_in_deadline_order_never_early() {
    let hal = Fake::default();
    let exec = Executor::new(&hal);
    let h = exec.handle();
    let log = Arc::new(spin::Mutex::new(Vec::new()));
    exec.run_until(async {
        let order = [5u64, 1, 4, 2, 3, 0];
        let tasks: Vec<_> = order
            .iter()
            .map(|&ms| {
                let (h2, log) = (h.clone(), log.clone());
                h.spawn(async move {
                    let d = Duration::from_millis(ms);
                    h2.sleep(d).await;
                    assert!(h2.now() >= d, "woke early");
                    log.lock().push(ms);
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("joined");
        }
    })
    .expect("run");
    assert_eq!(*log.lock(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(hal.now(), Duration::from_millis(5));
}

#[test]
fn timeout_expires_or_passes_the_output_through() {
    let hal = Fake::default();
    let exec = Executor::new(&hal);
    let h = exec.handle();
    let (slow, fast) = exec
        .run_until(async {
            let slow = h
                .timeout(Duration::from_millis(10), h.sleep(Duration::from_secs(1)))
                .await;
            let fast = h.timeout(Duration::from_millis(10), async { 7 }).await;
            (slow, fast)
        })
        .expect("run");
    assert_eq!(slow, Err(Elapsed));
    assert_eq!(fast, Ok(7));
    assert_eq!(hal.now(), Duration::from_millis(10));
}

#[test]
fn dropping_the_executor_cancels_queued_tasks() {
    let hal = Fake::default();
    let exec = Executor::new(&hal);
    let h = exec.handle();
    let never = h.spawn(async { 1 });
    drop(exec);
    let exec2 = Executor::new(&hal);
    assert_eq!(exec2.run_until(never), Ok(Err(JoinError::Cancelled)));
    // A handle outliving its executor spawns cancelled tasks.
    let late = h.spawn(async { 2 });
    assert_eq!(exec2.run_until(late), Ok(Err(JoinError::Cancelled)));
}

#[test]
fn a_second_worker_on_one_cpu_is_refused() {
    let hal = Fake::default();
    let exec = Executor::new(&hal);
    let inner = exec.run_until(async { exec.run_worker() });
    assert_eq!(inner, Ok(Err(SchedError::Busy(0))));
}
