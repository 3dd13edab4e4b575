//! Processes on a whole hosted machine: preemption of an endless loop,
//! kill and memory release, capability checks of the system interface,
//! fault isolation, and a process spawning a child. Every wait is bounded
//! by a generous timeout that fails the test instead of hanging it; no
//! test passes or fails on a timing threshold.

use std::sync::Arc;
use std::time::Duration;

use kernel_core::mem::Owner;
use kernel_core::proc::{self, ExitStatus, KillReason, Object, Pid, SpawnOptions};
use kernel_core::wasm::TrapKind;
use tests::machine::{
    HANG_GUARD, deterministic, emptied, machine, on_config, on_machine, run_alone, wait, wat,
    wat_data,
};

const SPIN: &str = r#"(module
  (memory 4)
  (func (export "_start")
    (local $a i32)
    ;; Touch all four pages so that the process holds frames.
    (loop $touch
      (i32.store (local.get $a) (i32.const 1))
      (local.set $a (i32.add (local.get $a) (i32.const 4096)))
      (br_if $touch (i32.lt_u (local.get $a) (i32.const 262144))))
    (loop $forever (br $forever))))"#;

const COUNTER: &str = r#"(module
  (func (export "_start") (result i32)
    (local $n i32)
    (loop $count
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $count (i32.lt_u (local.get $n) (i32.const 20000000))))
    (i32.const 0)))"#;

#[derive(Debug)]
struct Preemption {
    counter: Option<ExitStatus>,
    spin_slices: u64,
    spin_frames_while_running: u64,
    spin: Option<ExitStatus>,
    spin_frames_after: u64,
    free_before: u64,
    free_after: u64,
}

#[test]
fn an_endless_loop_is_preempted_and_killing_it_frees_its_memory() {
    let r = on_machine(1, |kernel, exec| {
        let free_before = kernel.frames().free_frames();
        let r = proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let spin = procs
                .spawn("spin", wat(SPIN), Vec::new(), procs.defaults())
                .expect("spawn spin");
            // One CPU: this sleep ends only once the loop has been
            // preempted (it started first: its memory is touched).
            procs.exec().sleep(Duration::from_millis(30)).await;
            let spin_frames_while_running = kernel.vm().owner_frames(Owner::Process(spin));
            let counter = procs
                .spawn("counter", wat(COUNTER), Vec::new(), procs.defaults())
                .expect("spawn counter");
            // And the counter finishes only if the loop keeps being
            // preempted.
            let counter_status = wait(&procs, counter).await;
            procs.kill(spin);
            let spin_status = wait(&procs, spin).await;
            let spin_slices = procs
                .info()
                .iter()
                .find(|p| p.pid == spin)
                .map_or(0, |p| p.slices);
            Preemption {
                counter: counter_status,
                spin_slices,
                spin_frames_while_running,
                spin: spin_status,
                spin_frames_after: kernel.vm().owner_frames(Owner::Process(spin)),
                free_before,
                free_after: 0,
            }
        })
        .expect("process scope");
        kernel.release_idle();
        Preemption {
            free_after: kernel.frames().free_frames(),
            ..r
        }
    });
    assert_eq!(r.counter, Some(ExitStatus::Exited(0)), "{r:?}");
    assert!(r.spin_slices >= 2, "the loop was never preempted: {r:?}");
    // Four touched wasm pages, plus its stack.
    assert!(r.spin_frames_while_running >= 64, "{r:?}");
    assert_eq!(
        r.spin,
        Some(ExitStatus::Killed(KillReason::Request)),
        "{r:?}"
    );
    assert_eq!(r.spin_frames_after, 0, "{r:?}");
    assert_eq!(r.free_after, r.free_before, "frames leaked: {r:?}");
}

/// Every shape of endless loop the translator emits a back edge for: a
/// `br`, a `br_if`, a `br_table`, an inner loop of an outer one, a branch
/// from inside an `if` and a `block`, a loop carrying a value, and a loop
/// whose body is a call (the callee's entry check, not the loop's). Each
/// has its check at the loop header (or function entry) where the timer's
/// `due` word is seen.
const LOOP_SHAPES: [(&str, &str); 9] = [
    ("br", "(loop $l (br $l))"),
    ("br_if", "(loop $l (br_if $l (i32.const 1)))"),
    (
        "br_table",
        "(loop $l (block $b (br_table $l $b $l (i32.const 0))))",
    ),
    ("nested", "(loop $o (loop $i (br $i)) (br $o))"),
    (
        "if_block",
        "(loop $l (block $b (if (i32.const 1) (then (br $l)) (else (br $b)))))",
    ),
    (
        "value",
        "(i32.const 0) (loop $l (param i32) (i32.add (i32.const 1)) (br $l)) (unreachable)",
    ),
    ("call", "(loop $l (call $leaf) (br $l))"),
    // No loop at all: a function that tail-calls itself, directly or
    // through the table, loops through its entry (translate INV-10).
    ("return_call", "(call $spin)"),
    ("return_call_indirect", "(call $spin_indirect)"),
];

#[test]
fn every_loop_shape_is_preempted_and_killed() {
    let r = on_machine(1, |kernel, exec| {
        proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let mut spinners = Vec::new();
            for (name, body) in LOOP_SHAPES {
                let text = format!(
                    "(module (global $g (mut i32) (i32.const 0))
                       (type $v (func))
                       (table funcref (elem $spin_indirect))
                       (func $leaf (global.set $g (i32.add (global.get $g) (i32.const 1))))
                       (func $spin (call $leaf) (return_call $spin))
                       (func $spin_indirect (return_call_indirect (type $v) (i32.const 0)))
                       (func (export \"_start\") {body}))"
                );
                let pid = procs
                    .spawn(name, wat(&text), Vec::new(), procs.defaults())
                    .expect("spawn spinner");
                spinners.push((name, pid));
            }
            // One CPU: this task runs again only when a spinner is
            // preempted; wait (bounded) until each has been twice.
            let slices_of = |pid: Pid| {
                procs
                    .info()
                    .iter()
                    .find(|p| p.pid == pid)
                    .map_or(0, |p| p.slices)
            };
            for _ in 0..4000 {
                if spinners.iter().all(|&(_, pid)| slices_of(pid) >= 2) {
                    break;
                }
                procs.exec().sleep(Duration::from_millis(5)).await;
            }
            // And the counter finishes only if they keep being preempted.
            let counter = procs
                .spawn("counter", wat(COUNTER), Vec::new(), procs.defaults())
                .expect("spawn counter");
            let counter_status = wait(&procs, counter).await;
            let mut rows = Vec::new();
            for &(name, pid) in &spinners {
                procs.kill(pid);
                let status = wait(&procs, pid).await;
                rows.push((name, slices_of(pid), status));
            }
            (counter_status, rows)
        })
        .expect("process scope")
    });
    let (counter, rows) = r;
    assert_eq!(counter, Some(ExitStatus::Exited(0)), "{rows:?}");
    for (name, slices, status) in rows {
        assert!(slices >= 2, "{name}: never preempted ({slices} slices)");
        assert_eq!(
            status,
            Some(ExitStatus::Killed(KillReason::Request)),
            "{name}"
        );
    }
}

/// Every call names its check number: the process exits with the number
/// of the first check that failed, or 0.
const CAPABILITIES: &str = r#"(module
  (import "vessel" "chan_create" (func $create (param i32) (result i32)))
  (import "vessel" "chan_send" (func $send (param i32 i32 i32) (result i32)))
  (import "vessel" "chan_recv" (func $recv (param i32 i32 i32) (result i32)))
  (import "vessel" "close" (func $close (param i32) (result i32)))
  (import "vessel" "write" (func $write (param i32 i32) (result i32)))
  (import "vessel" "wait" (func $wait (param i32) (result i32)))
  (import "vessel" "kill" (func $kill (param i32) (result i32)))
  (import "vessel" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (import "vessel" "sleep" (func $sleep (param i64) (result i32)))
  (import "vessel" "exit" (func $exit (param i32)))
  (memory 1)
  (func $expect (param $got i32) (param $want i32) (param $check i32)
    (if (i32.ne (local.get $got) (local.get $want))
      (then (call $exit (local.get $check)))))
  (func (export "_start") (result i32)
    ;; Forged handles: none was given or made yet.
    (call $expect (call $send (i32.const 7) (i32.const 0) (i32.const 4)) (i32.const -1) (i32.const 1))
    (call $expect (call $recv (i32.const -5) (i32.const 0) (i32.const 4)) (i32.const -1) (i32.const 2))
    (call $expect (call $close (i32.const 1000000)) (i32.const -1) (i32.const 3))
    (call $expect (call $wait (i32.const 0)) (i32.const -1) (i32.const 4))
    (call $expect (call $kill (i32.const 0)) (i32.const -1) (i32.const 5))
    ;; An out pointer past the end: a fault, and nothing made.
    (call $expect (call $create (i32.const 65532)) (i32.const -2) (i32.const 6))
    (call $expect (call $create (i32.const 16)) (i32.const 0) (i32.const 7))
    (call $expect (i32.load (i32.const 16)) (i32.const 0) (i32.const 8))
    (call $expect (i32.load (i32.const 20)) (i32.const 1) (i32.const 9))
    ;; Handles of the wrong kind.
    (call $expect (call $recv (i32.const 0) (i32.const 0) (i32.const 4)) (i32.const -1) (i32.const 10))
    (call $expect (call $send (i32.const 1) (i32.const 0) (i32.const 4)) (i32.const -1) (i32.const 11))
    (call $expect (call $wait (i32.const 1)) (i32.const -1) (i32.const 12))
    (call $expect (call $kill (i32.const 0)) (i32.const -1) (i32.const 13))
    ;; Pointers and lengths outside memory, or too long.
    (call $expect (call $send (i32.const 0) (i32.const 65535) (i32.const 2)) (i32.const -2) (i32.const 14))
    (call $expect (call $send (i32.const 0) (i32.const -1) (i32.const 1)) (i32.const -2) (i32.const 15))
    (call $expect (call $send (i32.const 0) (i32.const 0) (i32.const -1)) (i32.const -4) (i32.const 16))
    (call $expect (call $write (i32.const 65000) (i32.const 1000)) (i32.const -2) (i32.const 17))
    (call $expect (call $recv (i32.const 1) (i32.const 65530) (i32.const 100)) (i32.const -2) (i32.const 18))
    (call $expect (call $sleep (i64.const -1)) (i32.const -4) (i32.const 19))
    ;; A good round trip still works; a short buffer gets the first bytes
    ;; and the full length.
    (i32.store (i32.const 32) (i32.const 0x0102032a))
    (call $expect (call $send (i32.const 0) (i32.const 32) (i32.const 4)) (i32.const 0) (i32.const 20))
    (call $expect (call $recv (i32.const 1) (i32.const 40) (i32.const 2)) (i32.const 4) (i32.const 21))
    (call $expect (i32.load (i32.const 40)) (i32.const 0x032a) (i32.const 22))
    ;; Closing the only sender: the receiver sees the channel closed.
    (call $expect (call $close (i32.const 0)) (i32.const 0) (i32.const 23))
    (call $expect (call $recv (i32.const 1) (i32.const 40) (i32.const 4)) (i32.const -3) (i32.const 24))
    (call $expect (call $close (i32.const 0)) (i32.const -1) (i32.const 25))
    ;; spawn: a module outside memory, a forged handle in the list.
    (call $expect (call $spawn (i32.const 65000) (i32.const 1000) (i32.const 0) (i32.const 0)) (i32.const -2) (i32.const 26))
    (i32.store (i32.const 48) (i32.const 99))
    (call $expect (call $spawn (i32.const 0) (i32.const 8) (i32.const 48) (i32.const 1)) (i32.const -1) (i32.const 27))
    (i32.const 0)))"#;

#[test]
fn forged_handles_and_wild_pointers_are_errors() {
    let defaults = SpawnOptions::default();
    let status = run_alone(&machine(2), defaults, "caps", wat(CAPABILITIES), defaults);
    assert_eq!(
        status,
        Some(ExitStatus::Exited(0)),
        "exit code = first failed check"
    );
}

/// System calls from a `(start)` function: `write` of 4 bytes and
/// `chan_create` into memory; `_start` returns 0 when both worked there
/// (they returned -2, no memory, before the start function saw any).
const START_CALLS: &str = r#"(module
  (import "vessel" "write" (func $write (param i32 i32) (result i32)))
  (import "vessel" "chan_create" (func $create (param i32) (result i32)))
  (memory 1)
  (data (i32.const 0x100) "ok!\n")
  (global $w (mut i32) (i32.const -100))
  (global $c (mut i32) (i32.const -100))
  (func $init
    (global.set $w (call $write (i32.const 0x100) (i32.const 4)))
    (global.set $c (call $create (i32.const 0x200))))
  (start $init)
  (func (export "_start") (result i32)
    (if (i32.ne (global.get $w) (i32.const 4)) (then (return (i32.const 1))))
    (if (i32.ne (global.get $c) (i32.const 0)) (then (return (i32.const 2))))
    ;; The two handles chan_create wrote: the first two of the table.
    (if (i32.ne (i32.load (i32.const 0x200)) (i32.const 0)) (then (return (i32.const 3))))
    (if (i32.ne (i32.load (i32.const 0x204)) (i32.const 1)) (then (return (i32.const 4))))
    (i32.const 0)))"#;

#[test]
fn a_start_function_has_the_memory_for_its_system_calls() {
    let defaults = SpawnOptions::default();
    let status = run_alone(&machine(1), defaults, "start", wat(START_CALLS), defaults);
    assert_eq!(
        status,
        Some(ExitStatus::Exited(0)),
        "exit code = first failed check"
    );
}

/// A reaped process leaves no account behind: 200 processes that exit,
/// one after another, leave the address space with the accounts it had.
#[test]
fn reaped_processes_leave_no_account_behind() {
    let (before, after, statuses) = on_machine(1, |kernel, exec| {
        proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let module = wat(r#"(module (func (export "_start") (result i32) (i32.const 3)))"#);
            let vm = procs.kernel().vm();
            let before = vm.account_count();
            let mut statuses = Vec::new();
            for _ in 0..200 {
                let pid = procs
                    .spawn("short", module.clone(), Vec::new(), procs.defaults())
                    .expect("spawn");
                statuses.push(procs.reap(pid).await.map(|i| i.status));
            }
            (before, vm.account_count(), statuses)
        })
        .expect("process scope")
    });
    assert!(
        statuses.iter().all(|s| *s == Some(ExitStatus::Exited(3))),
        "{statuses:?}"
    );
    assert_eq!(after, before, "accounts before and after 200 processes");
}

/// Sends one message, then traps while holding the channel.
const VICTIM: &str = r#"(module
  (import "vessel" "chan_send" (func $send (param i32 i32 i32) (result i32)))
  (memory 2)
  (func (export "_start")
    (i32.store (i32.const 70000) (i32.const 5))
    (drop (call $send (i32.const 0) (i32.const 70000) (i32.const 4)))
    unreachable))"#;

/// Receives the message, then expects the channel closed (-3): exit 0.
const PEER: &str = r#"(module
  (import "vessel" "chan_recv" (func $recv (param i32 i32 i32) (result i32)))
  (memory 1)
  (func (export "_start") (result i32)
    (if (i32.ne (call $recv (i32.const 0) (i32.const 0) (i32.const 4)) (i32.const 4))
      (then (return (i32.const 1))))
    (if (i32.ne (i32.load (i32.const 0)) (i32.const 5))
      (then (return (i32.const 2))))
    (if (i32.ne (call $recv (i32.const 0) (i32.const 0) (i32.const 4)) (i32.const -3))
      (then (return (i32.const 3))))
    (i32.const 0)))"#;

#[test]
fn a_trapping_process_releases_everything_and_its_peer_sees_the_channel_closed() {
    let (victim, peer, victim_frames) = on_machine(2, |kernel, exec| {
        proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let (tx, rx) = proc::new_channel(kernel.hal(), 4);
            let peer = procs
                .spawn(
                    "peer",
                    wat(PEER),
                    vec![Object::Receiver(rx)],
                    procs.defaults(),
                )
                .expect("spawn peer");
            let victim = procs
                .spawn(
                    "victim",
                    wat(VICTIM),
                    vec![Object::Sender(tx)],
                    procs.defaults(),
                )
                .expect("spawn victim");
            let v = wait(&procs, victim).await;
            let p = wait(&procs, peer).await;
            (v, p, kernel.vm().owner_frames(Owner::Process(victim)))
        })
        .expect("process scope")
    });
    assert_eq!(victim, Some(ExitStatus::Trapped(TrapKind::Unreachable)));
    assert_eq!(peer, Some(ExitStatus::Exited(0)), "exit code = failed step");
    assert_eq!(victim_frames, 0);
}

/// A child that sends "hi" on handle 0 and exits 7.
const CHILD: &str = r#"(module
  (import "vessel" "chan_send" (func $send (param i32 i32 i32) (result i32)))
  (import "vessel" "exit" (func $exit (param i32)))
  (memory 1)
  (data (i32.const 0) "hi")
  (func (export "_start")
    (drop (call $send (i32.const 0) (i32.const 0) (i32.const 2)))
    (call $exit (i32.const 7))))"#;

/// A parent that spawns the child (its bytes at 1024) with the send end of
/// a new channel, receives its message and waits for it.
fn parent(child: &[u8]) -> String {
    let bytes = wat_data(child);
    format!(
        r#"(module
  (import "vessel" "chan_create" (func $create (param i32) (result i32)))
  (import "vessel" "chan_recv" (func $recv (param i32 i32 i32) (result i32)))
  (import "vessel" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (import "vessel" "wait" (func $wait (param i32) (result i32)))
  (import "vessel" "detach" (func $detach (param i32) (result i32)))
  (memory 1)
  (data (i32.const 1024) "{bytes}")
  (func (export "_start") (result i32)
    (local $child i32)
    (if (call $create (i32.const 0)) (then (return (i32.const 1))))
    ;; Hand over the send end (its handle is at 0).
    (local.set $child (call $spawn (i32.const 1024) (i32.const {len}) (i32.const 0) (i32.const 1)))
    (if (i32.lt_s (local.get $child) (i32.const 0)) (then (return (i32.const 2))))
    (if (i32.ne (call $recv (i32.load (i32.const 4)) (i32.const 16) (i32.const 8)) (i32.const 2))
      (then (return (i32.const 3))))
    (if (i32.ne (i32.load16_u (i32.const 16)) (i32.const 0x6968))
      (then (return (i32.const 4))))
    (if (i32.ne (call $wait (local.get $child)) (i32.const 7))
      (then (return (i32.const 5))))
    (i32.const 0)))"#,
        len = child.len()
    )
}

#[test]
fn a_process_spawns_a_child_and_talks_to_it() {
    let child = wat(CHILD);
    let (parent_status, count) = on_machine(2, |kernel, exec| {
        proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let pid = procs
                .spawn("parent", wat(&parent(&child)), Vec::new(), procs.defaults())
                .expect("spawn");
            let status = wait(&procs, pid).await;
            (status, procs.info().len())
        })
        .expect("process scope")
    });
    assert_eq!(
        parent_status,
        Some(ExitStatus::Exited(0)),
        "exit code = failed step"
    );
    // The child was reaped when its parent's handle went with the parent;
    // the parent stays until the scope reaps it.
    assert_eq!(count, 1, "the parent alone");
}

#[test]
fn a_module_that_does_not_load_fails_with_its_reason() {
    let (bad, unknown) = on_machine(1, |kernel, exec| {
        proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let bad = procs
                .spawn(
                    "bad",
                    Arc::from(&b"\0asm\x01\0\0\0\x05"[..]),
                    Vec::new(),
                    procs.defaults(),
                )
                .expect("spawn");
            let unknown = procs
                .spawn(
                    "unknown",
                    wat(r#"(module (import "vessel" "nope" (func)) (func (export "_start")))"#),
                    Vec::new(),
                    procs.defaults(),
                )
                .expect("spawn");
            (wait(&procs, bad).await, wait(&procs, unknown).await)
        })
        .expect("process scope")
    });
    assert!(
        matches!(bad, Some(ExitStatus::Failed(proc::LoadError::Module(at))) if at > 0),
        "{bad:?}"
    );
    assert_eq!(unknown, Some(ExitStatus::Failed(proc::LoadError::Link)));
}

/// A deterministic machine with `cpus` CPUs and `seed`.
/// Loops forever (CPU-bound, no system call).
const BUSY: &str = r#"(module (func (export "_start") (loop (br 0))))"#;

#[test]
fn four_busy_processes_on_two_cpus_share_them_fairly() {
    // Deterministic, so the shares cannot flake: virtual time only moves
    // as the simulated CPUs run.
    let (shares, _) = on_config(&deterministic(2, 1), |kernel, exec| {
        proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let pids: Vec<Pid> = (0..4)
                .map(|i| {
                    procs
                        .spawn(&format!("busy{i}"), wat(BUSY), Vec::new(), procs.defaults())
                        .expect("spawn")
                })
                .collect();
            procs.exec().sleep(Duration::from_secs(2)).await;
            let info = procs.info();
            for pid in &pids {
                procs.kill(*pid);
            }
            info.iter().map(|p| p.cpu_time).collect::<Vec<_>>()
        })
        .expect("process scope")
    });
    let total: Duration = shares.iter().sum();
    assert!(
        total >= Duration::from_secs(3),
        "2 CPUs for 2 s of virtual time: {shares:?}"
    );
    for t in &shares {
        let share = t.as_secs_f64() / total.as_secs_f64();
        assert!(
            (0.20..=0.30).contains(&share),
            "a share of {share:.3} (cpu times {shares:?})"
        );
    }
}

/// One run of a scenario with channels, preemption, a trap and a kill on
/// a deterministic machine: each process's row and the machine's trace.
fn replay(
    seed: u64,
) -> (
    Vec<(String, Duration, u64, ExitStatus)>,
    hal_hosted::TraceSummary,
) {
    let (rows, trace) = on_config(&deterministic(3, seed), |kernel, exec| {
        proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let (tx, rx) = proc::new_channel(kernel.hal(), 4);
            let mut pids = vec![
                procs
                    .spawn(
                        "peer",
                        wat(PEER),
                        vec![Object::Receiver(rx)],
                        procs.defaults(),
                    )
                    .expect("spawn"),
                procs
                    .spawn(
                        "victim",
                        wat(VICTIM),
                        vec![Object::Sender(tx)],
                        procs.defaults(),
                    )
                    .expect("spawn"),
                procs
                    .spawn("counter", wat(COUNTER), Vec::new(), procs.defaults())
                    .expect("spawn"),
            ];
            let spin = SpawnOptions {
                deadline: Some(Duration::from_millis(50)),
                ..procs.defaults()
            };
            pids.push(
                procs
                    .spawn("busy", wat(BUSY), Vec::new(), spin)
                    .expect("spawn"),
            );
            for pid in pids {
                let _ = wait(&procs, pid).await;
            }
            procs
                .info()
                .into_iter()
                .map(|p| (p.name, p.cpu_time, p.slices, p.status))
                .collect::<Vec<_>>()
        })
        .expect("process scope")
    });
    (rows, trace.expect("a deterministic machine keeps a trace"))
}

#[test]
fn one_seed_replays_the_same_events_and_another_seed_does_not() {
    let (rows, trace) = replay(7);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| r.3 != ExitStatus::Running), "{rows:?}");
    let (rows_again, trace_again) = replay(7);
    assert_eq!(rows, rows_again, "same seed, same processes and CPU times");
    assert_eq!(trace, trace_again, "same seed, same event trace");
    let (_, other) = replay(8);
    assert_ne!(
        trace.digest, other.digest,
        "another seed interleaves differently"
    );
}

/// What a [`spawner`] does once its child runs: return the child's exit
/// code, wait for the child and then loop for ever, or return 0 at once.
const RETURN_CHILDS_CODE: &str = "(call $wait (local.get $child))";
const WAIT_THEN_LOOP: &str =
    "(drop (call $wait (local.get $child))) (loop $l (br $l)) (i32.const 0)";
const LEAVE: &str = "(i32.const 0)";

/// A parent that spawns `child` (its bytes at 1024), giving it a copy of
/// its handle 0 when `pass`, then does `tail`.
fn spawner(child: &[u8], pass: bool, tail: &str) -> String {
    let bytes = wat_data(child);
    let len = child.len();
    let n = i32::from(pass);
    format!(
        r#"(module
  (import "vessel" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (import "vessel" "wait" (func $wait (param i32) (result i32)))
  (import "vessel" "detach" (func $detach (param i32) (result i32)))
  (memory 1)
  (data (i32.const 1024) "{bytes}")
  (func (export "_start") (result i32)
    (local $child i32)
    (local.set $child (call $spawn (i32.const 1024) (i32.const {len}) (i32.const 0) (i32.const {n})))
    (if (i32.lt_s (local.get $child) (i32.const 0)) (then (return (i32.const 100))))
    {tail}))"#
    )
}

/// Grows its memory by 32 MiB: exits 1 when refused, 0 when granted.
const GROWER: &str = r#"(module
  (memory 0)
  (func (export "_start") (result i32)
    (if (result i32) (i32.lt_s (memory.grow (i32.const 512)) (i32.const 0))
      (then (i32.const 1)) (else (i32.const 0)))))"#;

/// Loops for ever.
const FOREVER: &str = r#"(module (func (export "_start") (loop $l (br $l))))"#;

/// A child's limits are at most its parent's (INV-PROC-4): a parent held
/// to 4 MiB spawns a child that cannot grow 32 MiB, though the scope's
/// default would allow it; a parent with the default limit spawns one that
/// can.
#[test]
fn a_child_gets_no_more_memory_than_its_parent() {
    let child = wat(GROWER);
    // Small stacks: the child's counts against the parent too (INV-VM-8).
    let small_stacks = SpawnOptions {
        stack: 512 << 10,
        ..SpawnOptions::default()
    };
    let small = SpawnOptions {
        memory_limit: 1024,
        ..small_stacks
    };
    let parent = || wat(&spawner(&child, false, RETURN_CHILDS_CODE));
    let small = run_alone(&machine(2), small_stacks, "small", parent(), small);
    let large = run_alone(&machine(2), small_stacks, "large", parent(), small_stacks);
    assert_eq!(
        small,
        Some(ExitStatus::Exited(1)),
        "the child's grow was granted"
    );
    assert_eq!(
        large,
        Some(ExitStatus::Exited(0)),
        "the child's grow was refused"
    );
}

/// Children do not outlive their parents (INV-PROC-4): a parent that
/// spawns an endless child and returns takes the child with it, and so
/// does a parent killed by its deadline while it waits for its child. Each
/// child holds a copy of a channel's sender the test gave its parent: the
/// channel closes when the child has ended and let go of its handles.
#[test]
fn children_end_with_their_parent() {
    let child = wat(FOREVER);
    let (statuses, counts, accounts) = on_machine(2, |kernel, exec| {
        proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let before = kernel.vm().account_count();
            let mut out = Vec::new();
            for (name, tail, deadline) in [
                ("leaver", LEAVE, None),
                ("waiter", WAIT_THEN_LOOP, Some(Duration::from_millis(200))),
            ] {
                let options = SpawnOptions {
                    deadline,
                    ..procs.defaults()
                };
                let (tx, rx) = proc::new_channel(kernel.hal(), 1);
                let module = wat(&spawner(&child, true, tail));
                let parent = procs
                    .spawn(name, module, vec![Object::Sender(tx)], options)
                    .expect("spawn");
                let p = procs.reap(parent).await.map(|i| i.status);
                let closed = procs.exec().timeout(HANG_GUARD, rx.recv()).await;
                out.push((p, matches!(closed, Ok(Err(_)))));
            }
            // A parent reaped before its child keeps its account until the
            // child's goes (INV-VM-8); then both are gone, and so are their
            // records.
            let left = emptied(&procs).await;
            (out, left, (before, kernel.vm().account_count()))
        })
        .expect("process scope")
    });
    assert_eq!(statuses[0], (Some(ExitStatus::Exited(0)), true));
    assert_eq!(
        statuses[1],
        (Some(ExitStatus::Killed(KillReason::Deadline)), true)
    );
    assert_eq!(counts, 0, "records left in the table");
    assert_eq!(accounts.1, accounts.0, "accounts before and after");
}

/// A detached child outlives its parent: it runs on after the parent has
/// ended and been reaped, until it is killed; `detach` of a handle that
/// is not the caller's child is -4.
#[test]
fn a_detached_child_outlives_its_parent() {
    let child = wat(FOREVER);
    let tail = "(if (call $detach (local.get $child)) (then (return (i32.const 1)))) \
                (if (i32.ne (call $detach (local.get $child)) (i32.const -4)) \
                  (then (return (i32.const 2)))) \
                (if (i32.ne (call $detach (i32.const 0)) (i32.const -1)) \
                  (then (return (i32.const 3)))) \
                (i32.const 0)";
    let (parent, alive, closed, count) = on_machine(2, |kernel, exec| {
        proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let (tx, rx) = proc::new_channel(kernel.hal(), 1);
            let module = wat(&spawner(&child, true, tail));
            let parent = procs
                .spawn(
                    "detacher",
                    module,
                    vec![Object::Sender(tx)],
                    procs.defaults(),
                )
                .expect("spawn");
            let p = procs.reap(parent).await.map(|i| i.status);
            // Long enough for a child killed with its parent to be gone.
            procs.exec().sleep(Duration::from_millis(100)).await;
            let alive: Vec<_> = procs
                .info()
                .into_iter()
                .map(|i| (i.name, i.status))
                .collect();
            for info in procs.info() {
                procs.kill(info.pid);
                wait(&procs, info.pid).await;
            }
            let closed = procs.exec().timeout(HANG_GUARD, rx.recv()).await;
            (p, alive, matches!(closed, Ok(Err(_))), procs.count())
        })
        .expect("process scope")
    });
    assert_eq!(parent, Some(ExitStatus::Exited(0)));
    assert_eq!(alive, [("detacher".to_owned(), ExitStatus::Running)]);
    assert!(
        closed,
        "the child's handles were dropped when it was killed"
    );
    assert_eq!(count, 0, "the killed child was reaped");
}

/// Spawns [`FOREVER`] children (its bytes at 1024) until `spawn` fails;
/// returns how many it started, or 200 if none failed.
fn breeder(child: &[u8]) -> String {
    let bytes = wat_data(child);
    let len = child.len();
    format!(
        r#"(module
  (import "vessel" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 1024) "{bytes}")
  (func (export "_start") (result i32)
    (local $n i32)
    (loop $more
      (if (i32.lt_s (call $spawn (i32.const 1024) (i32.const {len}) (i32.const 0) (i32.const 0))
                    (i32.const 0))
        (then (return (local.get $n))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $n) (i32.const 200))))
    (local.get $n)))"#
    )
}

/// A process has at most `MAX_CHILDREN` live children, and a scope's
/// table at most its limit of processes (running, or ended and not
/// reaped): past them, `spawn` is -5 and `Procs::spawn` is `TooMany`;
/// reaped processes make room again, under new pids.
#[test]
fn spawning_stops_at_the_process_limits() {
    let small = SpawnOptions {
        stack: 512 << 10,
        ..SpawnOptions::default()
    };
    let (children, refused, full, again) = on_machine(2, |kernel, exec| {
        proc::run(kernel, exec, small, |procs| async move {
            let defaults = procs.defaults();
            let b = procs
                .spawn(
                    "breeder",
                    wat(&breeder(&wat(FOREVER))),
                    Vec::new(),
                    defaults,
                )
                .expect("spawn");
            let children = procs.reap(b).await.map(|i| i.status);
            // Its children end with it (INV-PROC-4) and leave the table
            // once ended: wait for that.
            assert_eq!(emptied(&procs).await, 0, "children left in the table");
            procs.limit(5);
            let mut pids = Vec::new();
            let mut refused = None;
            for _ in 0..6 {
                match procs.spawn("forever", wat(FOREVER), Vec::new(), defaults) {
                    Ok(pid) => pids.push(pid),
                    Err(e) => refused = Some((pids.len(), e)),
                }
            }
            // Ended processes hold their place until reaped.
            for &pid in &pids {
                procs.kill(pid);
                wait(&procs, pid).await;
            }
            let full = procs.spawn("forever", wat(FOREVER), Vec::new(), defaults);
            for &pid in &pids {
                procs.reap(pid).await;
            }
            let again = procs
                .spawn("forever", wat(FOREVER), Vec::new(), defaults)
                .map(|pid| (procs.kill(pid), pids.contains(&pid)));
            (children, refused, full, again)
        })
        .expect("process scope")
    });
    assert_eq!(
        children,
        Some(ExitStatus::Exited(
            i32::try_from(proc::MAX_CHILDREN).expect("small")
        ))
    );
    assert_eq!(refused, Some((5, proc::SpawnError::TooMany)));
    assert_eq!(full, Err(proc::SpawnError::TooMany));
    // A new process in a reaped slot gets a pid no earlier one had.
    assert_eq!(again, Ok((true, false)));
}

/// Grows its memory by 10 MiB: exits 1 when refused, 0 when granted.
const GROW_10M: &str = r#"(module
  (memory 0)
  (func (export "_start") (result i32)
    (if (result i32) (i32.lt_s (memory.grow (i32.const 160)) (i32.const 0))
      (then (i32.const 1)) (else (i32.const 0)))))"#;

/// A parent that grows its own memory by `pages`, then spawns `child` and
/// returns the child's exit code.
fn greedy_parent(child: &[u8], pages: u32) -> String {
    let bytes = wat_data(child);
    let len = child.len();
    format!(
        r#"(module
  (import "vessel" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (import "vessel" "wait" (func $wait (param i32) (result i32)))
  (import "vessel" "detach" (func $detach (param i32) (result i32)))
  (memory 1)
  (data (i32.const 1024) "{bytes}")
  (func (export "_start") (result i32)
    (local $child i32)
    (if (i32.lt_s (memory.grow (i32.const {pages})) (i32.const 0)) (then (return (i32.const 100))))
    (local.set $child (call $spawn (i32.const 1024) (i32.const {len}) (i32.const 0) (i32.const 0)))
    (if (i32.lt_s (local.get $child) (i32.const 0)) (then (return (i32.const 101))))
    (call $wait (local.get $child))))"#
    )
}

/// A child's memory counts against its parent's limit (INV-VM-8): under a
/// 16 MiB parent, a child may grow 10 MiB while the parent holds little,
/// and may not once the parent holds 10 MiB itself, though the child's own
/// limit would allow it either way.
#[test]
fn a_childs_memory_counts_against_its_parent() {
    let child = wat(GROW_10M);
    let small_stacks = SpawnOptions {
        stack: 512 << 10,
        ..SpawnOptions::default()
    };
    let limited = SpawnOptions {
        memory_limit: 4096,
        ..small_stacks
    };
    let run = |pages| {
        let parent = wat(&greedy_parent(&child, pages));
        run_alone(&machine(2), small_stacks, "parent", parent, limited)
    };
    let (lean, greedy) = (run(0), run(160));
    assert_eq!(
        lean,
        Some(ExitStatus::Exited(0)),
        "the child's grow was refused"
    );
    assert_eq!(
        greedy,
        Some(ExitStatus::Exited(1)),
        "the child's grow was granted"
    );
}

/// `memory.atomic.wait32` with no timeout, on a cell that holds the
/// expected value: its process sleeps on the kernel's wait queue (it does
/// not spin: a counter on the same single CPU runs to its end while the
/// waiter takes no more time slices), a killed waiter ends and leaves no
/// waiter queued; with a timeout, the wait ends timed out (status 2).
const WAITER: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory 1 1 shared)
  (func (export "_start")
    (call $exit (memory.atomic.wait32 (i32.const 64) (i32.const 0) (i64.const -1)))))"#;

const TIMED_WAITER: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory 1 1 shared)
  (func (export "_start")
    (call $exit (memory.atomic.wait32 (i32.const 64) (i32.const 0) (i64.const 30000000)))))"#;

#[test]
fn a_waiting_process_sleeps_until_killed_or_its_timeout() {
    let r = on_machine(1, |kernel, exec| {
        proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let waiter = procs
                .spawn("waiter", wat(WAITER), Vec::new(), procs.defaults())
                .expect("spawn waiter");
            procs.exec().sleep(Duration::from_millis(10)).await;
            let queued = kernel.futexes().len();
            let counter = procs
                .spawn("counter", wat(COUNTER), Vec::new(), procs.defaults())
                .expect("spawn counter");
            let counter_status = wait(&procs, counter).await;
            let slices = procs
                .info()
                .iter()
                .find(|p| p.pid == waiter)
                .map_or(u64::MAX, |p| p.slices);
            procs.kill(waiter);
            let waiter_status = wait(&procs, waiter).await;
            let timed = procs
                .spawn("timed", wat(TIMED_WAITER), Vec::new(), procs.defaults())
                .expect("spawn timed");
            let timed_status = wait(&procs, timed).await;
            (
                queued,
                counter_status,
                slices,
                waiter_status,
                timed_status,
                kernel.futexes().len(),
            )
        })
        .expect("process scope")
    });
    let (queued, counter, slices, waiter, timed, left) = r;
    assert_eq!(queued, 1);
    assert_eq!(counter, Some(ExitStatus::Exited(0)));
    assert!(slices <= 2, "the waiter took {slices} slices");
    assert_eq!(waiter, Some(ExitStatus::Killed(KillReason::Request)));
    assert_eq!(timed, Some(ExitStatus::Exited(2)));
    assert_eq!(left, 0);
}
