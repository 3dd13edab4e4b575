//! Deterministic mode: the kernel's self-tests (timers and IPIs across
//! CPUs included) pass with every CPU on one thread; a seed replays a run
//! bit for bit (trace digest and console output); different seeds give
//! different interleavings; virtual timers, demand faults and deadlock
//! detection work on simulated CPUs.

// Public so that helpers this binary does not use are not dead code.
pub mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::{OnFault, TestKernel};
use hal_hosted::{Config, Event, Hosted, TraceSummary, run_on_cpu};
use kernel_core::boot::BootInfo;
use kernel_core::hal::{Clock, Cpus, Interrupts, Mmu, PAGE_SIZE, PhysAddr};

/// Longest a whole deterministic boot may take before the test fails
/// instead of hanging (it takes well under a second).
const RUN_LIMIT: Duration = Duration::from_secs(300);

fn config(cpus: usize, seed: u64) -> Config {
    Config {
        cpus,
        memory: 64 << 20,
        window: 4 << 30,
        deterministic: Some(seed),
        capture_console: true,
        faults: hal_hosted::Faults::default(),
    }
}

/// What one deterministic boot produced.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    status: u8,
    console: String,
    summary: TraceSummary,
}

/// Boot `cmdline` on a fresh deterministic machine, on a thread of its own
/// so that a hang fails the test after [`RUN_LIMIT`].
fn boot(cpus: usize, seed: u64, cmdline: &'static str) -> Run {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let hosted = Hosted::new(&config(cpus, seed)).expect("machine");
        let info = BootInfo {
            cmdline,
            ..BootInfo::default()
        };
        let status = hal_hosted::boot_on(&hosted, info).expect("boot");
        let console =
            String::from_utf8(hosted.captured_console().expect("captured")).expect("utf-8 console");
        let summary = hosted.trace_summary().expect("deterministic");
        let _ = tx.send(Run {
            status,
            console,
            summary,
        });
    });
    rx.recv_timeout(RUN_LIMIT)
        .unwrap_or_else(|e| panic!("deterministic boot ({cpus} CPUs, seed {seed}): {e}"))
}

/// Whether `line` is the banner `want`, followed by the ISA the host's CPU
/// reports when it is more than the baseline (` isa=x86-64-v2+...`).
fn banner_is(line: &str, want: &str) -> bool {
    line.strip_prefix(want)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(" isa=x86-64"))
}

fn assert_selftests_pass(run: &Run, cpus: usize) {
    assert_eq!(run.status, kernel_core::exit::SUCCESS, "{}", run.console);
    assert!(
        run.console
            .lines()
            .any(|l| banner_is(l, &format!("boot: hal=hosted cpus={cpus} memory=64MiB"))),
        "{}",
        run.console
    );
    let last = run.console.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "{}", run.console);
}

#[test]
fn selftests_pass_on_two_and_four_cpus() {
    for cpus in [2, 4] {
        let run = boot(cpus, 1, "test=self");
        assert_selftests_pass(&run, cpus);
        assert!(run.summary.events > 0);
        assert!(run.summary.virtual_time > Duration::ZERO);
    }
}

#[test]
fn same_seed_replays_bit_for_bit() {
    let a = boot(4, 42, "test=self");
    let b = boot(4, 42, "test=self");
    assert_selftests_pass(&a, 4);
    assert_eq!(a, b, "two runs with seed 42 differ");
}

#[test]
fn different_seeds_interleave_differently() {
    let runs: Vec<Run> = [1, 2, 3].map(|seed| boot(4, seed, "test=self")).into();
    for r in &runs {
        assert_selftests_pass(r, 4);
    }
    for (i, a) in runs.iter().enumerate() {
        for b in &runs[i + 1..] {
            assert_ne!(
                a.summary.digest, b.summary.digest,
                "seeds {} and {} gave one trace",
                a.summary.seed, b.summary.seed
            );
        }
    }
}

/// A small deterministic machine for `run_on_cpu` tests.
fn small_det(cpus: usize) -> Hosted {
    Hosted::new(&Config {
        capture_console: false,
        ..config(cpus, 7)
    })
    .expect("machine")
}

#[test]
fn virtual_timer_fires_after_an_idle_jump() {
    let hosted = small_det(1);
    assert!(hosted.is_deterministic() && hosted.polled());
    let kernel = TestKernel::new(&hosted, 0, OnFault::Fatal(90));
    let (deadline, woke_at) = run_on_cpu(&hosted, 0, || {
        let local = kernel.local();
        kernel.with_local(&local, || {
            hosted.irq_restore(true);
            let deadline = hosted.now() + Duration::from_secs(3600);
            hosted.set_timer(deadline);
            // Virtual time: an hour passes in one idle jump. Bounded: a
            // timer that never fires would be a deadlock, reported as a
            // panic of `run_on_cpu`.
            while kernel.timers.load(Ordering::SeqCst) == 0 {
                hosted.wait_for_interrupt();
            }
            let woke_at = hosted.now();
            assert!(hosted.irq_save());
            (deadline, woke_at)
        })
    });
    assert!(woke_at >= deadline, "timer fired early");
    assert_eq!(kernel.timers.load(Ordering::SeqCst), 1);
    assert!(!kernel.broken.load(Ordering::SeqCst));
    let events: Vec<Event> = hosted.trace_tail().iter().map(|e| e.event).collect();
    let jump = events.iter().position(|e| *e == Event::IdleJump);
    let fired = events
        .iter()
        .position(|e| *e == Event::TimerFired { cpu: 0 });
    assert!(
        jump.is_some() && fired > jump,
        "no idle jump before the timer: {events:?}"
    );
}

#[test]
fn demand_fault_on_a_simulated_cpu() {
    let hosted = small_det(2);
    let va = hosted.kernel_window().start + 3 * PAGE_SIZE;
    let mut kernel = TestKernel::new(&hosted, 1, OnFault::MapFrame);
    kernel.frame = PhysAddr::of_frame(40);
    let kernel = kernel;
    let back = run_on_cpu(&hosted, 1, || {
        assert_eq!(hosted.current_cpu(), 1);
        let local = kernel.local();
        kernel.with_local(&local, || {
            // SAFETY: unmapped: the store faults, the test kernel maps a
            // frame there, and the store is retried.
            unsafe { (va as *mut u64).write_volatile(0x5eed) };
            // SAFETY: mapped now.
            unsafe { (va as *const u64).read_volatile() }
        })
    });
    assert_eq!(back, 0x5eed);
    assert_eq!(kernel.faults.load(Ordering::SeqCst), 1);
    assert!(!kernel.broken.load(Ordering::SeqCst));
}

#[test]
fn deadlock_is_reported_instead_of_hanging() {
    let hosted = small_det(1);
    let kernel = TestKernel::new(&hosted, 0, OnFault::Fatal(90));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_on_cpu(&hosted, 0, || {
            let local = kernel.local();
            kernel.with_local(&local, || {
                hosted.irq_restore(true);
                // No timer, no other CPU: nothing can ever wake this one.
                hosted.wait_for_interrupt();
            });
        });
    }));
    let payload = outcome.expect_err("a deadlocked run returned");
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(msg.contains("deadlock"), "{msg}");
    assert_eq!(
        hosted.trace_tail().last().map(|e| e.event),
        Some(Event::Deadlock)
    );
}

/// What CPU 0 and the secondary of `poll_interleaves_cpus` share.
struct Pair<'a> {
    hosted: &'a Hosted,
    rounds: AtomicU64,
    stop: AtomicBool,
    done: AtomicBool,
    wrong_cpu: AtomicBool,
}

/// The secondary: count rounds, polling, until told to stop.
fn spinner(arg: usize) {
    // SAFETY: CPU 0 passed its `Pair`, which it keeps alive until `done`.
    let p = unsafe { &*(arg as *const Pair<'_>) };
    p.hosted.irq_restore(true);
    while !p.stop.load(Ordering::SeqCst) {
        if p.hosted.current_cpu() != 1 {
            p.wrong_cpu.store(true, Ordering::SeqCst);
        }
        p.rounds.fetch_add(1, Ordering::SeqCst);
        p.hosted.poll();
    }
    let _ = p.hosted.irq_save();
    p.done.store(true, Ordering::SeqCst);
}

#[test]
fn poll_interleaves_cpus() {
    /// Polls CPU 0 makes at most per phase (each takes 1 µs of virtual time).
    const POLLS: usize = 1_000_000;
    let hosted = small_det(2);
    let pair = Pair {
        hosted: &hosted,
        rounds: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        done: AtomicBool::new(false),
        wrong_cpu: AtomicBool::new(false),
    };
    let (progressed, ended) = run_on_cpu(&hosted, 0, || {
        hosted
            .start_cpu(1, spinner, &raw const pair as usize)
            .expect("start CPU 1");
        hosted.irq_restore(true);
        let progressed = (0..POLLS).any(|_| {
            hosted.poll();
            if hosted.current_cpu() != 0 {
                pair.wrong_cpu.store(true, Ordering::SeqCst);
            }
            pair.rounds.load(Ordering::SeqCst) >= 100
        });
        pair.stop.store(true, Ordering::SeqCst);
        let ended = (0..POLLS).any(|_| {
            hosted.poll();
            pair.done.load(Ordering::SeqCst)
        });
        assert!(hosted.irq_save());
        (progressed, ended)
    });
    assert!(progressed, "CPU 1 did not run while CPU 0 polled");
    assert!(ended, "CPU 1 did not stop");
    assert!(
        !pair.wrong_cpu.load(Ordering::SeqCst),
        "current_cpu wrong after a switch"
    );
    let events: Vec<Event> = hosted.trace_tail().iter().map(|e| e.event).collect();
    for (from, to) in [(0, 1), (1, 0)] {
        assert!(
            events.contains(&Event::Switch { from, to }),
            "no switch {from} -> {to}: {events:?}"
        );
    }
    assert!(events.contains(&Event::End { cpu: 1 }));
}
