//! Injected faults in deterministic mode (`Config::faults`): with each
//! kind at a high rate the kernel's self-tests and a WASI program doing
//! host-file I/O still run to completion; every kind is injected, counted
//! and replayed bit for bit from its seed, and another seed gives another
//! trace. At the device: an injected error is answered `FsError::Io`, a
//! late completion answers `Pending` until virtual time passes its due
//! time and then wakes its waker, and a CPU idling on one is not a
//! deadlock.

// Public so that helpers this binary does not use are not dead code.
pub mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Poll, Wake, Waker};
use std::time::Duration;

use hal_hosted::{Config, Event, FaultCounts, Faults, Hosted, TraceSummary, run_on_cpu};
use kernel_core::boot::BootInfo;
use kernel_core::fs::FsError;
use kernel_core::hal::{Clock, Cpus, HostFiles, HostOp, HostReply, Interrupts};
use kernel_core::proc::{self, ExitStatus, Mount, Program, SpawnOptions};

/// Longest a whole deterministic run may take before the test fails
/// instead of hanging.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// The high rate every kind is tried at: one occasion in five.
const HIGH: u16 = 200;

fn config(cpus: usize, seed: u64, faults: Faults) -> Config {
    Config {
        cpus,
        memory: 64 << 20,
        window: 4 << 30,
        deterministic: Some(seed),
        capture_console: true,
        faults,
    }
}

/// What one deterministic run produced.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    /// The kernel's status (self-tests) or the program's exit.
    status: Option<i32>,
    console: String,
    summary: TraceSummary,
    counts: FaultCounts,
}

/// Run `f` on a thread of its own so that a hang fails the test after
/// [`RUN_LIMIT`].
fn bounded<T: Send + 'static>(what: String, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(RUN_LIMIT)
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The kernel's self-tests on a fresh 2-CPU deterministic machine.
fn selftests(seed: u64, faults: Faults) -> Run {
    bounded(format!("self-tests, seed {seed}, {faults:?}"), move || {
        let hosted = Hosted::new(&config(2, seed, faults)).expect("machine");
        let info = BootInfo {
            cmdline: "test=self",
            ..BootInfo::default()
        };
        let status = hal_hosted::boot_on(&hosted, info).expect("boot");
        Run {
            status: Some(i32::from(status)),
            console: String::from_utf8_lossy(&hosted.captured_console().unwrap_or_default())
                .into_owned(),
            summary: hosted.trace_summary().expect("deterministic"),
            counts: hosted.faults_injected(),
        }
    })
}

fn assert_selftests_pass(run: &Run) {
    assert_eq!(
        run.status,
        Some(i32::from(kernel_core::exit::SUCCESS)),
        "{}",
        run.console
    );
    let last = run.console.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "{}", run.console);
}

/// One kind at [`HIGH`]: the self-tests pass, the kind was injected (and
/// no other), a replay is identical, another seed differs.
fn survives(faults: Faults, injected: fn(&FaultCounts) -> u64) {
    let a = selftests(11, faults);
    assert_selftests_pass(&a);
    assert!(injected(&a.counts) > 0, "nothing injected: {:?}", a.counts);
    let total = a.counts.host_io_errors
        + a.counts.slow_io
        + a.counts.spurious_irqs
        + a.counts.timer_skew
        + a.counts.cpu_stalls;
    assert_eq!(total, injected(&a.counts), "another kind: {:?}", a.counts);
    let b = selftests(11, faults);
    assert_eq!(a, b, "two runs with seed 11 differ");
    let c = selftests(12, faults);
    assert_selftests_pass(&c);
    assert_ne!(
        a.summary.digest, c.summary.digest,
        "seeds 11 and 12: one trace"
    );
}

#[test]
fn selftests_pass_with_spurious_ipis() {
    survives(
        Faults {
            spurious_irqs: HIGH,
            ..Faults::default()
        },
        |c| c.spurious_irqs,
    );
}

#[test]
fn selftests_pass_with_timer_skew() {
    survives(
        Faults {
            timer_skew: HIGH,
            ..Faults::default()
        },
        |c| c.timer_skew,
    );
}

#[test]
fn late_timers_still_fire_and_sleeps_last_at_least_as_asked() {
    let faults = Faults {
        timer_skew: HIGH,
        ..Faults::default()
    };
    let plain = run_wasi(SLEEPER_PROGRAM, None, 6, Faults::default());
    assert_eq!(plain.status, Some(0), "{plain:?}");
    let a = run_wasi(SLEEPER_PROGRAM, None, 6, faults);
    assert_eq!(a.status, Some(0), "{a:?}");
    assert!(a.counts.timer_skew > 0, "{:?}", a.counts);
    assert!(
        a.summary.virtual_time > plain.summary.virtual_time,
        "{a:?} vs {plain:?}"
    );
    assert_eq!(a, run_wasi(SLEEPER_PROGRAM, None, 6, faults));
    let c = run_wasi(SLEEPER_PROGRAM, None, 7, faults);
    assert_eq!(c.status, Some(0), "{c:?}");
    assert_ne!(
        a.summary.digest, c.summary.digest,
        "seeds 6 and 7: one trace"
    );
}

#[test]
fn selftests_pass_with_cpu_stalls() {
    survives(
        Faults {
            cpu_stalls: HIGH,
            ..Faults::default()
        },
        |c| c.cpu_stalls,
    );
}

#[test]
fn no_faults_injects_nothing_and_replays() {
    let a = selftests(5, Faults::default());
    assert_selftests_pass(&a);
    assert_eq!(a.counts, FaultCounts::default());
    assert_eq!(a, selftests(5, Faults::default()));
}

/// `ROUNDS` rounds of: create and truncate `f`, write `hello\n`, close,
/// open it again, read it back, compare, close. A call answered `EIO` (29)
/// is counted and ends its round; any other error exits with the number
/// of the step that got it. Exits with 100 + the number of `EIO` answers
/// when every round that got none read back what it wrote, 9 when no round
/// did.
const ROUNDS_PROGRAM: &str = r#"
(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (global $eio (mut i32) (i32.const 0))
  (data (i32.const 200) "f")
  (data (i32.const 260) "hello\n")
  ;; 0: the call succeeded; 1: it got EIO (counted); else exit with `step`
  (func $check (param $e i32) (param $step i32) (result i32)
    (if (i32.eqz (local.get $e)) (then (return (i32.const 0))))
    (if (i32.eq (local.get $e) (i32.const 29))
      (then (global.set $eio (i32.add (global.get $eio) (i32.const 1))) (return (i32.const 1))))
    (call $proc_exit (local.get $step))
    (i32.const 1))
  (func $open (param $oflags i32) (result i32)
    (call $path_open (i32.const 3) (i32.const 1) (i32.const 200) (i32.const 1)
      (local.get $oflags) (i64.const 0x7fffffff) (i64.const 0x7fffffff) (i32.const 0) (i32.const 16)))
  (func (export "_start")
    (local $i i32) (local $fd i32) (local $ok i32)
    (loop $round
      (block $next
        ;; create and truncate, write, close
        (br_if $next (call $check (call $open (i32.const 9)) (i32.const 1)))
        (local.set $fd (i32.load (i32.const 16)))
        (i32.store (i32.const 0) (i32.const 260))
        (i32.store (i32.const 4) (i32.const 6))
        (if (call $check (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)) (i32.const 2))
          (then (drop (call $fd_close (local.get $fd))) (br $next)))
        (if (i32.ne (i32.load (i32.const 8)) (i32.const 6)) (then (call $proc_exit (i32.const 3))))
        (br_if $next (call $check (call $fd_close (local.get $fd)) (i32.const 4)))
        ;; open, read back, compare, close
        (br_if $next (call $check (call $open (i32.const 0)) (i32.const 5)))
        (local.set $fd (i32.load (i32.const 16)))
        (i64.store (i32.const 300) (i64.const 0))
        (i32.store (i32.const 0) (i32.const 300))
        (i32.store (i32.const 4) (i32.const 64))
        (if (call $check (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)) (i32.const 6))
          (then (drop (call $fd_close (local.get $fd))) (br $next)))
        (if (i32.ne (i32.load (i32.const 8)) (i32.const 6)) (then (call $proc_exit (i32.const 7))))
        (if (i64.ne (i64.load (i32.const 300)) (i64.load (i32.const 260))) (then (call $proc_exit (i32.const 8))))
        (br_if $next (call $check (call $fd_close (local.get $fd)) (i32.const 10)))
        (local.set $ok (i32.add (local.get $ok) (i32.const 1))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $round (i32.lt_u (local.get $i) (i32.const 40))))
    (if (i32.eqz (local.get $ok)) (then (call $proc_exit (i32.const 9))))
    (call $proc_exit (i32.add (i32.const 100) (global.get $eio))))
)
"#;

/// A fresh, empty host directory for test `name`.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vessel-hal-faults-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// 30 sleeps of 1 ms through `poll_oneoff` (a timer armed each), each
/// checked to have lasted at least 1 ms on the monotonic clock. Exits 0,
/// or with the number of the step that failed.
const SLEEPER_PROGRAM: &str = r#"
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $i i32) (local $t0 i64)
    (loop $again
      (if (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 16)) (then (call $proc_exit (i32.const 1))))
      (local.set $t0 (i64.load (i32.const 16)))
      ;; one relative clock subscription of 1 ms (userdata 77)
      (i64.store (i32.const 200) (i64.const 77))
      (i32.store8 (i32.const 208) (i32.const 0))
      (i32.store (i32.const 216) (i32.const 1))
      (i64.store (i32.const 224) (i64.const 1000000))
      (i64.store (i32.const 232) (i64.const 1000))
      (i32.store16 (i32.const 240) (i32.const 0))
      (if (call $poll_oneoff (i32.const 200) (i32.const 300) (i32.const 1) (i32.const 340))
        (then (call $proc_exit (i32.const 2))))
      (if (i64.ne (i64.load (i32.const 300)) (i64.const 77)) (then (call $proc_exit (i32.const 3))))
      (if (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 16)) (then (call $proc_exit (i32.const 4))))
      (if (i64.lt_u (i64.sub (i64.load (i32.const 16)) (local.get $t0)) (i64.const 1000000))
        (then (call $proc_exit (i32.const 5))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 30))))
    (call $proc_exit (i32.const 0)))
)
"#;

/// [`ROUNDS_PROGRAM`] as a process with `dir` mounted at `/`, on a fresh
/// 2-CPU deterministic machine.
fn rounds(dir: &Path, seed: u64, faults: Faults) -> Run {
    run_wasi(ROUNDS_PROGRAM, Some(dir), seed, faults)
}

/// The program of WAT `text` as a process (with `dir`, if any, mounted at
/// `/`) on a fresh 2-CPU deterministic machine; its exit code.
fn run_wasi(text: &str, dir: Option<&Path>, seed: u64, faults: Faults) -> Run {
    let module: Arc<[u8]> = wat::parse_str(text).expect("wat").into();
    let dirs: Vec<PathBuf> = dir.iter().map(|d| d.to_path_buf()).collect();
    bounded(format!("program, seed {seed}, {faults:?}"), move || {
        // A process needs room: the machine the kernel's process tests use.
        let config = Config {
            memory: 256 << 20,
            window: 1 << 40,
            ..config(2, seed, faults)
        };
        let hosted = Hosted::with_dirs(&config, &dirs).expect("machine");
        let with_dir = !dirs.is_empty();
        let status = Mutex::new(None);
        let code = hal_hosted::boot_quiet_into(&hosted, |kernel| {
            let s = kernel_core::boot::with_executor(kernel, |exec| {
                proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
                    let program = Program {
                        args: vec![b"prog".to_vec()],
                        mounts: if with_dir {
                            vec![Mount {
                                guest: b"/".to_vec(),
                                host: 0,
                            }]
                        } else {
                            Vec::new()
                        },
                        ..Program::default()
                    };
                    let pid = procs
                        .spawn_program("prog", module, Vec::new(), procs.defaults(), program)
                        .expect("spawn");
                    procs.wait(pid).await
                })
                .expect("process scope")
            });
            *status.lock().expect("status") = s;
            0
        })
        .expect("boot");
        assert_eq!(code, 0);
        let exit = match status.into_inner().expect("status") {
            Some(ExitStatus::Exited(code)) => Some(code),
            other => panic!("the program did not exit: {other:?}"),
        };
        Run {
            status: exit,
            console: String::from_utf8_lossy(&hosted.captured_errors().unwrap_or_default())
                .into_owned(),
            summary: hosted.trace_summary().expect("deterministic"),
            counts: hosted.faults_injected(),
        }
    })
}

/// [`rounds`] in a fresh directory of its own, removed afterwards.
fn rounds_in_scratch(name: &str, seed: u64, faults: Faults) -> Run {
    let dir = scratch(name);
    let run = rounds(&dir, seed, faults);
    std::fs::remove_dir_all(&dir).expect("clean up");
    run
}

#[test]
fn host_io_errors_reach_the_program_as_eio() {
    let faults = Faults {
        host_io_errors: HIGH,
        ..Faults::default()
    };
    let a = rounds_in_scratch("errors-a", 3, faults);
    assert!(a.counts.host_io_errors > 0, "{:?}", a.counts);
    assert_eq!(
        FaultCounts {
            host_io_errors: 0,
            ..a.counts
        },
        FaultCounts::default()
    );
    // Every injected error reached the program as EIO (and nothing else
    // failed): the exit is 100 + the errors it saw.
    let seen = a.status.and_then(|s| s.checked_sub(100));
    assert!(seen.is_some_and(|n| n > 0), "{a:?}");
    assert_eq!(
        seen.and_then(|n| u64::try_from(n).ok()),
        Some(a.counts.host_io_errors),
        "{a:?}"
    );
    let b = rounds_in_scratch("errors-b", 3, faults);
    assert_eq!(a, b, "two runs with seed 3 differ");
    let c = rounds_in_scratch("errors-c", 4, faults);
    assert_ne!(
        a.summary.digest, c.summary.digest,
        "seeds 3 and 4: one trace"
    );
}

#[test]
fn slow_io_completes_late_and_the_program_finishes() {
    let faults = Faults {
        slow_io: HIGH,
        ..Faults::default()
    };
    let plain = rounds_in_scratch("slow-plain", 3, Faults::default());
    assert_eq!(plain.status, Some(100), "{plain:?}");
    let a = rounds_in_scratch("slow-a", 3, faults);
    // No errors: every round read back what it wrote.
    assert_eq!(a.status, Some(100), "{a:?}");
    assert!(a.counts.slow_io > 0, "{:?}", a.counts);
    assert_eq!(
        FaultCounts {
            slow_io: 0,
            ..a.counts
        },
        FaultCounts::default()
    );
    // The waits took virtual time: at least 1 ms per late completion.
    assert!(
        a.summary.virtual_time >= plain.summary.virtual_time,
        "{a:?} vs {plain:?}"
    );
    let b = rounds_in_scratch("slow-b", 3, faults);
    assert_eq!(a, b, "two runs with seed 3 differ");
    let c = rounds_in_scratch("slow-c", 4, faults);
    assert_eq!(c.status, Some(100), "{c:?}");
    assert_ne!(
        a.summary.digest, c.summary.digest,
        "seeds 3 and 4: one trace"
    );
}

#[test]
fn every_kind_at_once_and_the_program_still_finishes() {
    let faults = Faults {
        host_io_errors: 100,
        slow_io: HIGH,
        spurious_irqs: HIGH,
        timer_skew: HIGH,
        cpu_stalls: 50,
    };
    let a = rounds_in_scratch("all-a", 9, faults);
    assert!(a.status.is_some_and(|s| s >= 100), "{a:?}");
    let c = a.counts;
    assert!(
        c.host_io_errors > 0 && c.slow_io > 0 && c.spurious_irqs > 0 && c.cpu_stalls > 0,
        "{c:?}"
    );
    let b = rounds_in_scratch("all-b", 9, faults);
    assert_eq!(a, b, "two runs with seed 9 differ");
}

// ---- the device alone, through `HostFiles` on a simulated CPU ----

/// A waker that counts its wakes and, when given a machine, sends CPU 0
/// an IPI (as the kernel's waker does for an idle CPU).
struct Bell {
    rung: AtomicUsize,
    machine: Option<&'static Hosted>,
}

impl Wake for Bell {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.rung.fetch_add(1, Ordering::SeqCst);
        if let Some(h) = self.machine {
            h.send_ipi(0);
        }
    }
}

/// A 1-CPU deterministic machine with `dir` as host directory 0.
fn device(dir: &Path, seed: u64, faults: Faults) -> Hosted {
    Hosted::with_dirs(
        &Config {
            capture_console: false,
            ..config(1, seed, faults)
        },
        &[dir.to_path_buf()],
    )
    .expect("machine")
}

#[test]
fn an_injected_error_is_answered_io_and_carries_nothing_out() {
    let dir = scratch("device-errors");
    let hosted = device(
        &dir,
        1,
        Faults {
            host_io_errors: 1000,
            ..Faults::default()
        },
    );
    let bell = Arc::new(Bell {
        rung: AtomicUsize::new(0),
        machine: None,
    });
    let waker = Waker::from(Arc::clone(&bell));
    let root = hosted.host_root(0).expect("root");
    let outcome = run_on_cpu(&hosted, 0, || {
        let op = HostOp::Mkdir {
            dir: root,
            path: b"made".to_vec(),
        };
        let ticket = hosted.host_submit(op).expect("submit");
        hosted.host_poll(ticket, &waker)
    });
    assert!(
        matches!(outcome, Poll::Ready(Err(FsError::Io))),
        "{outcome:?}"
    );
    assert!(
        !dir.join("made").exists(),
        "the failed request was carried out"
    );
    assert_eq!(hosted.faults_injected().host_io_errors, 1);
    assert_eq!(bell.rung.load(Ordering::SeqCst), 0);
    assert!(
        hosted
            .trace_tail()
            .iter()
            .any(|e| matches!(e.event, Event::IoError { .. }))
    );
    hosted.host_close(root);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_late_completion_is_pending_until_its_due_time_then_wakes() {
    let dir = scratch("device-slow");
    let hosted = device(
        &dir,
        2,
        Faults {
            slow_io: 1000,
            ..Faults::default()
        },
    );
    let bell = Arc::new(Bell {
        rung: AtomicUsize::new(0),
        machine: None,
    });
    let waker = Waker::from(Arc::clone(&bell));
    let root = hosted.host_root(0).expect("root");
    let (submitted, first, woke_at, second) = run_on_cpu(&hosted, 0, || {
        hosted.irq_restore(true);
        let op = HostOp::Mkdir {
            dir: root,
            path: b"made".to_vec(),
        };
        let submitted = hosted.now();
        let ticket = hosted.host_submit(op).expect("submit");
        let first = hosted.host_poll(ticket, &waker);
        // Polls advance virtual time and give the loop its turns, which
        // release the completion once it is due. Bounded: 1 µs each, the
        // longest delay is 10 ms.
        let woke = (0..1_000_000).any(|_| {
            hosted.poll();
            bell.rung.load(Ordering::SeqCst) > 0
        });
        let woke_at = woke.then(|| hosted.now());
        let second = hosted.host_poll(ticket, &waker);
        assert!(hosted.irq_save());
        (submitted, first, woke_at, second)
    });
    assert!(first.is_pending(), "{first:?}");
    // Carried out at submit, delivered late.
    assert!(dir.join("made").is_dir());
    let woke_at = woke_at.expect("the waker was never woken");
    let late = woke_at.saturating_sub(submitted);
    assert!(
        late >= Duration::from_millis(1) && late <= Duration::from_millis(11),
        "woken {late:?} after submit"
    );
    assert!(
        matches!(second, Poll::Ready(Ok(HostReply::Done))),
        "{second:?}"
    );
    assert_eq!(bell.rung.load(Ordering::SeqCst), 1);
    assert_eq!(hosted.faults_injected().slow_io, 1);
    let events: Vec<Event> = hosted.trace_tail().iter().map(|e| e.event).collect();
    let slow = events
        .iter()
        .position(|e| matches!(e, Event::SlowIo { .. }));
    let done = events
        .iter()
        .position(|e| matches!(e, Event::IoCompleted { .. }));
    assert!(slow.is_some() && done > slow, "{events:?}");
    hosted.host_close(root);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn an_idle_cpu_waiting_on_a_late_completion_is_no_deadlock() {
    let dir = scratch("device-idle");
    // The bell's IPI needs the machine for the life of the waker: leaked,
    // one small machine for this test.
    let hosted: &'static Hosted = Box::leak(Box::new(device(
        &dir,
        3,
        Faults {
            slow_io: 1000,
            ..Faults::default()
        },
    )));
    let bell = Arc::new(Bell {
        rung: AtomicUsize::new(0),
        machine: Some(hosted),
    });
    let waker = Waker::from(Arc::clone(&bell));
    let root = hosted.host_root(0).expect("root");
    let stopped = AtomicBool::new(false);
    let reply = run_on_cpu(hosted, 0, || {
        hosted.irq_restore(true);
        let op = HostOp::Mkdir {
            dir: root,
            path: b"made".to_vec(),
        };
        let ticket = hosted.host_submit(op).expect("submit");
        let mut reply = hosted.host_poll(ticket, &waker);
        // No timer, no other CPU: only the late completion can end the
        // idle, and a deadlock would panic `run_on_cpu`. Bounded by the
        // deadlock detection, and by this count.
        for _ in 0..16 {
            if reply.is_ready() {
                break;
            }
            hosted.wait_for_interrupt();
            reply = hosted.host_poll(ticket, &waker);
        }
        stopped.store(true, Ordering::SeqCst);
        assert!(hosted.irq_save());
        reply
    });
    assert!(stopped.load(Ordering::SeqCst));
    assert!(
        matches!(reply, Poll::Ready(Ok(HostReply::Done))),
        "{reply:?}"
    );
    assert_eq!(bell.rung.load(Ordering::SeqCst), 1);
    let events: Vec<Event> = hosted.trace_tail().iter().map(|e| e.event).collect();
    assert!(events.contains(&Event::IdleJump), "{events:?}");
    assert!(!events.contains(&Event::Deadlock), "{events:?}");
    hosted.host_close(root);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn faults_are_ignored_with_threads() {
    let hosted = Hosted::new(&Config {
        cpus: 1,
        memory: 64 << 20,
        window: 4 << 30,
        faults: Faults {
            host_io_errors: 1000,
            slow_io: 1000,
            spurious_irqs: 1000,
            timer_skew: 1000,
            cpu_stalls: 1000,
        },
        ..Config::default()
    })
    .expect("machine");
    run_on_cpu(&hosted, 0, || {
        hosted.set_timer(hosted.now() + Duration::from_secs(3600));
        hosted.cancel_timer();
    });
    assert_eq!(hosted.faults_injected(), FaultCounts::default());
    assert_eq!(hosted.trace_summary(), None);
}
