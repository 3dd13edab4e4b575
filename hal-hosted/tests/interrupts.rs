//! Interrupts through signals: per-CPU timers, masking with pending
//! delivery, IPIs waking a waiting CPU, IPI merging.

// Public so that helpers this binary does not use are not dead code.
pub mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{OnFault, TIMEOUT, TestKernel, small, watchdog};
use hal_hosted::run_on_cpu;
use kernel_core::hal::{Clock, Cpus, Interrupts};

#[test]
fn each_cpu_gets_its_own_timer_interrupt() {
    let hosted = small(2);
    std::thread::scope(|s| {
        for cpu in 0..2 {
            let hosted = &hosted;
            s.spawn(move || {
                run_on_cpu(hosted, cpu, || {
                    assert_eq!(hosted.current_cpu(), cpu);
                    assert!(!hosted.irqs_enabled(), "a CPU starts masked");
                    let kernel = TestKernel::new(hosted, cpu, OnFault::Fatal(90));
                    let local = kernel.local();
                    kernel.with_local(&local, || {
                        assert_eq!(hosted.cpu_local(), &raw const local);
                        hosted.irq_restore(true);
                        let deadline = hosted.now() + Duration::from_millis(1);
                        hosted.set_timer(deadline);
                        while kernel.timers.load(Ordering::SeqCst) == 0
                            && hosted.now() < deadline + TIMEOUT
                        {
                            hosted.wait_for_interrupt();
                        }
                        assert!(hosted.irq_save());
                        assert!(hosted.now() >= deadline, "timer fired early");
                    });
                    assert_eq!(kernel.timers.load(Ordering::SeqCst), 1, "CPU {cpu}");
                    assert_eq!(kernel.ipis.load(Ordering::SeqCst), 0);
                    assert!(
                        !kernel.broken.load(Ordering::SeqCst),
                        "interrupt on the wrong CPU or unmasked"
                    );
                });
            });
        }
    });
}

#[test]
fn masked_timer_stays_pending_until_restore() {
    let hosted = small(1);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| watchdog(&stop, &hosted, 0, TIMEOUT));
        run_on_cpu(&hosted, 0, || {
            let kernel = TestKernel::new(&hosted, 0, OnFault::Fatal(90));
            let local = kernel.local();
            kernel.with_local(&local, || {
                assert!(!hosted.irq_save(), "masked from the start");
                let deadline = hosted.now() + Duration::from_millis(1);
                hosted.set_timer(deadline);
                // Returns once the timer's interrupt is pending (it cannot be
                // delivered: masked). The watchdog's IPI bounds the wait.
                while hosted.now() < deadline {
                    hosted.wait_for_interrupt();
                }
                hosted.wait_for_interrupt();
                assert_eq!(
                    kernel.timers.load(Ordering::SeqCst),
                    0,
                    "delivered while masked"
                );
                hosted.irq_restore(false);
                assert_eq!(
                    kernel.timers.load(Ordering::SeqCst),
                    0,
                    "restore(false) delivered"
                );
                hosted.irq_restore(true);
                assert_eq!(
                    kernel.timers.load(Ordering::SeqCst),
                    1,
                    "restore(true) did not deliver"
                );
                assert!(hosted.irqs_enabled());
                // Nested save/restore: the inner restore keeps them masked.
                let guard = hosted.disable_irqs();
                assert!(!hosted.irqs_enabled());
                {
                    let inner = hosted.disable_irqs();
                    drop(inner);
                    assert!(!hosted.irqs_enabled());
                }
                drop(guard);
                assert!(hosted.irqs_enabled());
                assert!(hosted.irq_save());
            });
            assert!(!kernel.broken.load(Ordering::SeqCst));
        });
        stop.store(true, Ordering::SeqCst);
    });
}

#[test]
fn cancelled_timer_does_not_fire() {
    let hosted = small(1);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // The watchdog's IPI is the interrupt this test waits for.
        s.spawn(|| watchdog(&stop, &hosted, 0, Duration::from_millis(50)));
        run_on_cpu(&hosted, 0, || {
            let kernel = TestKernel::new(&hosted, 0, OnFault::Fatal(90));
            let local = kernel.local();
            kernel.with_local(&local, || {
                hosted.set_timer(hosted.now() + Duration::from_millis(20));
                hosted.cancel_timer();
                hosted.irq_restore(true);
                while kernel.ipis.load(Ordering::SeqCst) == 0 && hosted.now() < TIMEOUT * 2 {
                    hosted.wait_for_interrupt();
                }
                hosted.irq_save();
            });
            assert!(kernel.ipis.load(Ordering::SeqCst) >= 1);
            assert_eq!(
                kernel.timers.load(Ordering::SeqCst),
                0,
                "a cancelled timer fired"
            );
        });
        stop.store(true, Ordering::SeqCst);
    });
}

#[test]
fn past_deadline_fires_at_once_and_rearming_replaces() {
    let hosted = small(1);
    run_on_cpu(&hosted, 0, || {
        let kernel = TestKernel::new(&hosted, 0, OnFault::Fatal(90));
        let local = kernel.local();
        kernel.with_local(&local, || {
            // A deadline far away, replaced by one already past.
            hosted.set_timer(hosted.now() + Duration::from_secs(3600));
            hosted.set_timer(Duration::ZERO);
            hosted.irq_restore(true);
            while kernel.timers.load(Ordering::SeqCst) == 0 && hosted.now() < TIMEOUT * 2 {
                hosted.wait_for_interrupt();
            }
            hosted.irq_save();
        });
        assert_eq!(kernel.timers.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn ipi_wakes_a_waiting_cpu() {
    let hosted = small(2);
    let ready = AtomicBool::new(false);
    let sent = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            run_on_cpu(&hosted, 1, || {
                assert!(common::until(|| ready.load(Ordering::SeqCst)));
                // Give the waiter time to block; correctness does not
                // depend on it (wait_for_interrupt loses no wake-up).
                std::thread::sleep(Duration::from_millis(10));
                sent.store(true, Ordering::SeqCst);
                hosted.send_ipi(0);
            });
        });
        let watchdog_stop = &stop;
        let watched = &hosted;
        s.spawn(move || watchdog(watchdog_stop, watched, 0, TIMEOUT));
        run_on_cpu(&hosted, 0, || {
            let kernel = TestKernel::new(&hosted, 0, OnFault::Fatal(90));
            let local = kernel.local();
            kernel.with_local(&local, || {
                assert!(!hosted.irqs_enabled());
                ready.store(true, Ordering::SeqCst);
                while !sent.load(Ordering::SeqCst) {
                    hosted.wait_for_interrupt();
                }
                // The IPI may still be on its way: this returns once pending.
                hosted.wait_for_interrupt();
                assert_eq!(
                    kernel.ipis.load(Ordering::SeqCst),
                    0,
                    "delivered while masked"
                );
                hosted.irq_restore(true);
                hosted.irq_save();
            });
            assert_eq!(kernel.ipis.load(Ordering::SeqCst), 1);
            assert_eq!(kernel.timers.load(Ordering::SeqCst), 0);
            assert!(!kernel.broken.load(Ordering::SeqCst));
        });
        stop.store(true, Ordering::SeqCst);
    });
}

#[test]
fn ipis_merge_while_masked_and_none_is_lost_when_enabled() {
    let hosted = small(2);
    let phase = AtomicUsize::new(0);
    let acked = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    const ROUNDS: usize = 200;
    std::thread::scope(|s| {
        s.spawn(|| watchdog(&stop, &hosted, 0, TIMEOUT * 3));
        s.spawn(|| {
            run_on_cpu(&hosted, 1, || {
                assert!(common::until(|| phase.load(Ordering::SeqCst) == 1));
                for _ in 0..1000 {
                    hosted.send_ipi(0);
                }
                phase.store(2, Ordering::SeqCst);
                // Enabled phase: one IPI at a time, each must arrive.
                assert!(common::until(|| phase.load(Ordering::SeqCst) == 3));
                for round in 1..=ROUNDS {
                    hosted.send_ipi(0);
                    assert!(
                        common::until(|| acked.load(Ordering::SeqCst) >= round),
                        "IPI {round} lost"
                    );
                }
                // Out of range ids are ignored.
                hosted.send_ipi(2);
                hosted.send_ipi(usize::MAX);
                phase.store(4, Ordering::SeqCst);
                hosted.send_ipi(0); // wake CPU 0 to see phase 4
            });
        });
        run_on_cpu(&hosted, 0, || {
            let kernel = TestKernel::new(&hosted, 0, OnFault::Fatal(90));
            let local = kernel.local();
            kernel.with_local(&local, || {
                phase.store(1, Ordering::SeqCst);
                assert!(common::until(|| phase.load(Ordering::SeqCst) == 2));
                hosted.wait_for_interrupt(); // pending already: returns at once
                hosted.irq_restore(true);
                let merged = kernel.ipis.load(Ordering::SeqCst);
                assert!((1..=1000).contains(&merged), "{merged} IPIs delivered");
                phase.store(3, Ordering::SeqCst);
                let mut seen = merged;
                while phase.load(Ordering::SeqCst) != 4 {
                    hosted.wait_for_interrupt();
                    let now = kernel.ipis.load(Ordering::SeqCst);
                    if now > seen {
                        acked.fetch_add(now - seen, Ordering::SeqCst);
                        seen = now;
                    }
                    if hosted.now() > TIMEOUT * 6 {
                        break;
                    }
                }
                hosted.irq_save();
            });
            assert!(!kernel.broken.load(Ordering::SeqCst));
        });
        stop.store(true, Ordering::SeqCst);
    });
    assert_eq!(phase.load(Ordering::SeqCst), 4);
}
