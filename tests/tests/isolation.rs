//! Isolation: in one kernel, hostile processes try every way out of their
//! resources the isolation work closed (memory past RAM, tables on the
//! heap, a compilation bomb, an endless loop, unbounded recursion, wild
//! pointers, a flood of spawns with large modules) while a well-behaved
//! process computes a checksum. The checksum comes out right, each hostile
//! process ends with its own clean status, the kernel returns normally,
//! and every frame and promise is back afterwards.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use hal_hosted::Config;
use kernel_core::proc::{self, ExitStatus, KillReason, LoadError, Message, Object, SpawnOptions};
use kernel_core::wasm::TrapKind;
use tests::machine::{
    HANG_GUARD, deterministic, emptied, machine, on_config, run_alone, wait, wat, wat_data,
};

/// Iterations of the checksum loop.
const ROUNDS: u32 = 3_000_000;

/// The well-behaved process: `sum(i * i + 7) mod 2^32` for `i < ROUNDS`,
/// kept in memory across iterations, its low 31 bits as the exit code.
fn checksum_module() -> String {
    format!(
        r#"(module
  (memory 1)
  (func (export "_start") (result i32)
    (local $i i32)
    (loop $l
      (i32.store (i32.const 64)
        (i32.add (i32.load (i32.const 64))
          (i32.add (i32.mul (local.get $i) (local.get $i)) (i32.const 7))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const {ROUNDS}))))
    (i32.and (i32.load (i32.const 64)) (i32.const 0x7fffffff))))"#
    )
}

/// How a hostile process and the checksum beside it ended.
struct Beside {
    hostile: Option<ExitStatus>,
    checksum: Option<ExitStatus>,
    /// The hostile process's status when the checksum had ended.
    hostile_then: Option<ExitStatus>,
    /// CPU time of the checksum and of the hostile process when the
    /// checksum had ended, and the time from their spawn to then.
    times: (Duration, Duration, Duration),
}

/// Run `hostile` (with `deadline`) and the checksum side by side on a
/// machine built from `config`: wait for the checksum, note the hostile
/// process's status and both CPU times then, and wait for the hostile
/// process too (killing it first when `kill_after`).
fn beside_checksum(
    config: &Config,
    hostile: Arc<[u8]>,
    deadline: Option<Duration>,
    kill_after: bool,
) -> Beside {
    let checksum = wat(&checksum_module());
    let (beside, _) = on_config(config, |kernel, exec| {
        proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let defaults = procs.defaults();
            let start = procs.exec().now();
            // The checksum first: its stack and module are committed at
            // its spawn, before the hostile process can take the memory.
            let c = procs
                .spawn("checksum", checksum, Vec::new(), defaults)
                .expect("spawn");
            let h = procs
                .spawn(
                    "hostile",
                    hostile,
                    Vec::new(),
                    SpawnOptions {
                        deadline,
                        ..defaults
                    },
                )
                .expect("spawn");
            let checksum = wait(&procs, c).await;
            let elapsed = procs.exec().now().saturating_sub(start);
            let info = procs.info();
            let row = |pid| info.iter().find(|i| i.pid == pid);
            let hostile_then = row(h).map(|i| i.status);
            let cpu = |pid| row(pid).map_or(Duration::ZERO, |i| i.cpu_time);
            let times = (cpu(c), cpu(h), elapsed);
            if kill_after {
                procs.kill(h);
            }
            Beside {
                hostile: wait(&procs, h).await,
                checksum,
                hostile_then,
                times,
            }
        })
        .expect("scope")
    });
    beside
}

fn expected_checksum() -> i32 {
    let sum = (0..ROUNDS).fold(0u32, |s, i| {
        s.wrapping_add(i.wrapping_mul(i).wrapping_add(7))
    });
    i32::try_from(sum & 0x7fff_ffff).expect("31 bits")
}

/// Grows past the machine's RAM: `memory.grow` must return -1 (exit 7);
/// had it been granted, the fill would fault the kernel.
const GROW_PAST_RAM: &str = r#"(module
  (memory 0)
  (func (export "_start") (result i32)
    (if (i32.lt_s (memory.grow (i32.const 4096)) (i32.const 0))
      (then (return (i32.const 7))))
    (memory.fill (i32.const 0) (i32.const 1) (i32.const 0x10000000))
    (i32.const 0)))"#;

/// Ten tables of 10M elements: 800 MB that must not come from the heap.
fn big_tables() -> String {
    let mut m = String::from("(module\n");
    for _ in 0..10 {
        m.push_str(" (table 10000000 funcref)\n");
    }
    m.push_str(" (func (export \"_start\")))");
    m
}

/// 100,000 loops in one function: a gigabyte of compiler memory.
fn compile_bomb() -> String {
    let mut m = String::from("(module (func (export \"_start\")");
    for _ in 0..100_000 {
        m.push_str(" loop end");
    }
    m.push_str("))");
    m
}

const ENDLESS: &str = r#"(module (func (export "_start") (loop $l (br $l))))"#;

const RECURSE: &str = r#"(module
  (func $f (param i64) (result i64) (call $f (i64.add (local.get 0) (i64.const 1))))
  (func (export "_start") (drop (call $f (i64.const 0)))))"#;

/// System calls with wild pointers, lengths and handles: each must be an
/// error code (negative), never a fault; exits 0 when every one was.
const WILD: &str = r#"(module
  (import "vessel" "chan_send" (func $send (param i32 i32 i32) (result i32)))
  (import "vessel" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (import "vessel" "wait" (func $wait (param i32) (result i32)))
  (memory 1)
  (func $bad (param i32) (result i32) (i32.ge_s (local.get 0) (i32.const 0)))
  (func (export "_start") (result i32)
    (if (call $bad (call $send (i32.const 0) (i32.const -16) (i32.const 64))) (then (return (i32.const 1))))
    (if (call $bad (call $send (i32.const 99) (i32.const 0) (i32.const 4))) (then (return (i32.const 2))))
    (if (call $bad (call $spawn (i32.const 65000) (i32.const 4096) (i32.const 0) (i32.const 0))) (then (return (i32.const 3))))
    (if (call $bad (call $spawn (i32.const 0) (i32.const 0x7fffffff) (i32.const 0) (i32.const 0))) (then (return (i32.const 4))))
    (if (call $bad (call $wait (i32.const 12345))) (then (return (i32.const 5))))
    (i32.const 0)))"#;

/// A child module padded with a custom section to `size` bytes.
fn padded_child(size: usize) -> Vec<u8> {
    let mut m = wat(r#"(module (func (export "_start")))"#).to_vec();
    let name = b"pad";
    // Custom section: id 0, LEB128 size, name length, name, payload.
    let payload = size.saturating_sub(m.len() + 8);
    let body = 1 + name.len() + payload;
    m.push(0);
    let mut n = body;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            m.push(byte);
            break;
        }
        m.push(byte | 0x80);
    }
    m.push(name.len() as u8);
    m.extend_from_slice(name);
    m.resize(m.len() + payload, 0);
    m
}

/// Spawns `count` children of `child`'s bytes without waiting; exits with
/// the number of spawns refused (each refusal is an error code).
fn spawn_flood(child: &[u8], count: u32) -> String {
    flood_then(child, count, "(local.get $refused)")
}

/// Spawns `count` children of `child`'s bytes without waiting, sends the
/// number of spawns refused (a little-endian `i32`) on its handle 0, then
/// waits for ever on a channel of its own.
fn flood_then_idle(child: &[u8], count: u32) -> String {
    flood_then(
        child,
        count,
        "(i32.store (i32.const 0) (local.get $refused)) \
         (drop (call $send (i32.const 0) (i32.const 0) (i32.const 4))) \
         (drop (call $create (i32.const 8))) \
         (loop $idle (drop (call $recv (i32.load (i32.const 12)) (i32.const 16) (i32.const 4))) \
           (br $idle)) \
         (unreachable)",
    )
}

/// Spawns `count` children of `child`'s bytes without waiting, then does
/// `tail` (with the number of spawns refused in `$refused`).
fn flood_then(child: &[u8], count: u32, tail: &str) -> String {
    let bytes = wat_data(child);
    let pages = (child.len() + 1024).div_ceil(65536);
    format!(
        r#"(module
  (import "vessel" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (import "vessel" "chan_create" (func $create (param i32) (result i32)))
  (import "vessel" "chan_send" (func $send (param i32 i32 i32) (result i32)))
  (import "vessel" "chan_recv" (func $recv (param i32 i32 i32) (result i32)))
  (memory {pages})
  (data (i32.const 1024) "{bytes}")
  (func (export "_start") (result i32)
    (local $i i32) (local $refused i32)
    (loop $l
      (if (i32.lt_s (call $spawn (i32.const 1024) (i32.const {len}) (i32.const 0) (i32.const 0)) (i32.const 0))
        (then (local.set $refused (i32.add (local.get $refused) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const {count}))))
    {tail}))"#,
        len = child.len()
    )
}

#[derive(Debug)]
struct Outcome {
    checksum: Option<ExitStatus>,
    grow: Option<ExitStatus>,
    tables: Option<ExitStatus>,
    bomb: Option<ExitStatus>,
    endless: Option<ExitStatus>,
    recurse: Option<ExitStatus>,
    wild: Option<ExitStatus>,
    flood: Option<ExitStatus>,
    free_before: u64,
    free_after: u64,
    promised_after: u64,
}

#[test]
fn hostile_processes_cannot_disturb_a_checksum_or_the_kernel() {
    let config = Config {
        cpus: 2,
        memory: 128 << 20,
        window: sim::WINDOW,
        ..Config::default()
    };
    let (checksum, grow, tables, bomb) = (
        wat(&checksum_module()),
        wat(GROW_PAST_RAM),
        wat(&big_tables()),
        wat(&compile_bomb()),
    );
    let (endless, recurse, wild) = (wat(ENDLESS), wat(RECURSE), wat(WILD));
    let flood = wat(&spawn_flood(&padded_child(2 << 20), 96));
    let (r, _) = on_config(&config, |kernel, exec| {
        let free_before = kernel.frames().free_frames();
        let r = proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let spawn = |name: &str, module: &std::sync::Arc<[u8]>, options: SpawnOptions| {
                procs
                    .spawn(name, module.clone(), Vec::new(), options)
                    .expect("spawn")
            };
            let defaults = procs.defaults();
            let deadline = SpawnOptions {
                deadline: Some(Duration::from_millis(300)),
                ..defaults
            };
            let small_bomb = SpawnOptions {
                memory_limit: (32 << 20) / 4096,
                ..defaults
            };
            let pids = [
                spawn("checksum", &checksum, defaults),
                spawn("grow", &grow, defaults),
                spawn("tables", &tables, defaults),
                // Held to 32 MiB: while it compiles it holds up to its
                // limit, and the processes spawned after it need their
                // stacks at their spawn.
                spawn("bomb", &bomb, small_bomb),
                spawn("endless", &endless, deadline),
                spawn("recurse", &recurse, defaults),
                spawn("wild", &wild, defaults),
                spawn("flood", &flood, defaults),
            ];
            let mut out = Vec::new();
            for pid in pids {
                out.push(wait(&procs, pid).await);
            }
            out
        });
        let r = r.expect("scope");
        kernel.release_idle();
        let f = kernel.frames();
        (r, free_before, f.free_frames(), f.promised_frames())
    });
    let (statuses, free_before, free_after, promised_after) = r;
    let [checksum, grow, tables, bomb, endless, recurse, wild, flood] =
        <[Option<ExitStatus>; 8]>::try_from(statuses).expect("eight statuses");
    let o = Outcome {
        checksum,
        grow,
        tables,
        bomb,
        endless,
        recurse,
        wild,
        flood,
        free_before,
        free_after,
        promised_after,
    };
    assert_eq!(
        o.checksum,
        Some(ExitStatus::Exited(expected_checksum())),
        "{o:#?}"
    );
    assert_eq!(o.grow, Some(ExitStatus::Exited(7)), "{o:#?}");
    assert_eq!(
        o.tables,
        Some(ExitStatus::Failed(LoadError::OutOfMemory)),
        "{o:#?}"
    );
    assert!(
        matches!(
            o.bomb,
            Some(ExitStatus::Failed(
                LoadError::OutOfMemory | LoadError::TooLarge
            ))
        ),
        "{o:#?}"
    );
    assert_eq!(
        o.endless,
        Some(ExitStatus::Killed(KillReason::Deadline)),
        "{o:#?}"
    );
    assert_eq!(
        o.recurse,
        Some(ExitStatus::Trapped(TrapKind::StackOverflow)),
        "{o:#?}"
    );
    assert_eq!(o.wild, Some(ExitStatus::Exited(0)), "{o:#?}");
    // 96 children of 2 MiB each would hold 192 MiB of module bytes on a
    // 128 MiB machine if none finished: some spawns may be refused, each
    // with an error code, and the flood ends normally.
    assert!(
        matches!(o.flood, Some(ExitStatus::Exited(n)) if (0..=96).contains(&n)),
        "{o:#?}"
    );
    assert_eq!(o.free_after, o.free_before, "frames leaked: {o:#?}");
    assert_eq!(o.promised_after, 0, "promises leaked: {o:#?}");
}

/// `memory.grow` at every depth of a deep recursion: the builtin takes
/// the address space's write lock, and the kernel code under it runs on
/// the process's stack at every depth; a stack page it were the first to
/// touch would fault into a path that needs that lock too and hang the CPU
/// (INV-STACK-1).
const GROW_AT_EVERY_DEPTH: &str = r#"(module
  (memory 1)
  (func $f (param $d i32) (result i32)
    (drop (memory.grow (i32.const 1)))
    (if (result i32) (local.get $d)
      (then (i32.add (call $f (i32.sub (local.get $d) (i32.const 1))) (i32.const 1)))
      (else (i32.const 0))))
  (func (export "_start") (result i32)
    (i32.and (call $f (i32.const 12000)) (i32.const 0x7f))))"#;

#[test]
fn growing_memory_at_every_stack_depth_never_hangs() {
    // Room for the checksum's memory beside a process at its limit.
    let config = Config {
        cpus: 2,
        memory: 512 << 20,
        ..Config::default()
    };
    let r = beside_checksum(&config, wat(GROW_AT_EVERY_DEPTH), None, false);
    // 12,000 levels return 12,000 (& 0x7f = 0x60); the grows past the
    // limit are -1, dropped.
    assert_eq!(r.hostile, Some(ExitStatus::Exited(12_000 & 0x7f)));
    assert_eq!(r.checksum, Some(ExitStatus::Exited(expected_checksum())));
}

/// A loop of `sleep(0)`: each call completes at once.
const SLEEP_ZERO_LOOP: &str = r#"(module
  (import "vessel" "sleep" (func $sleep (param i64) (result i32)))
  (func (export "_start") (loop $l (drop (call $sleep (i64.const 0))) (br $l))))"#;

/// A loop of `yield`.
const YIELD_LOOP: &str = r#"(module
  (import "vessel" "yield" (func $yield))
  (func (export "_start") (loop $l (call $yield) (br $l))))"#;

/// A loop of send and receive on the process's own channel: each call
/// completes at once (the channel has room, then a message).
const OWN_CHANNEL_LOOP: &str = r#"(module
  (import "vessel" "chan_create" (func $create (param i32) (result i32)))
  (import "vessel" "chan_send" (func $send (param i32 i32 i32) (result i32)))
  (import "vessel" "chan_recv" (func $recv (param i32 i32 i32) (result i32)))
  (memory 1)
  (func (export "_start")
    (drop (call $create (i32.const 0)))
    (loop $l
      (drop (call $send (i32.load (i32.const 0)) (i32.const 16) (i32.const 4)))
      (drop (call $recv (i32.load (i32.const 4)) (i32.const 32) (i32.const 4)))
      (br $l))))"#;

/// On one CPU, a process whose calls all complete at once still gives up
/// the CPU when its quantum is over (INV-PROCESS-4): the checksum beside
/// it finishes right while it is still running, and its deadline then
/// kills it. Both starved everything else on the CPU: each call began a
/// fresh quantum and pushed back the timer that ends it, so neither the
/// checksum nor the deadline ran until the loop was preempted by chance.
#[test]
fn calls_that_complete_at_once_cannot_keep_the_cpu() {
    let config = Config {
        cpus: 1,
        ..Config::default()
    };
    for hostile in [SLEEP_ZERO_LOOP, OWN_CHANNEL_LOOP] {
        let r = beside_checksum(&config, wat(hostile), Some(Duration::from_secs(2)), false);
        assert_eq!(r.checksum, Some(ExitStatus::Exited(expected_checksum())));
        assert_eq!(
            r.hostile_then,
            Some(ExitStatus::Running),
            "the loop ended first"
        );
        assert_eq!(r.hostile, Some(ExitStatus::Killed(KillReason::Deadline)));
    }
}

/// Spawns a child that exits at once, and closes its handle, at every
/// depth of a recursion `DEPTH` deep; returns the depth reached (& 0x7f).
/// `spawn` takes the address space's write lock at every depth, the way
/// `memory.grow` does in [`GROW_AT_EVERY_DEPTH`] (INV-STACK-1).
fn spawn_at_every_depth() -> String {
    let child = wat(r#"(module (func (export "_start")))"#);
    format!(
        r#"(module
  (import "vessel" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (import "vessel" "close" (func $close (param i32) (result i32)))
  (memory 1)
  (data (i32.const 1024) "{bytes}")
  (func $f (param $d i32) (result i32)
    (local $h i32)
    (local.set $h (call $spawn (i32.const 1024) (i32.const {len}) (i32.const 0) (i32.const 0)))
    (if (i32.ge_s (local.get $h) (i32.const 0)) (then (drop (call $close (local.get $h)))))
    (if (result i32) (local.get $d)
      (then (i32.add (call $f (i32.sub (local.get $d) (i32.const 1))) (i32.const 1)))
      (else (i32.const 0))))
  (func (export "_start") (result i32)
    (i32.and (call $f (i32.const {DEPTH})) (i32.const 0x7f))))"#,
        bytes = wat_data(&child),
        len = child.len(),
    )
}

/// Recursion depth of [`spawn_at_every_depth`].
const DEPTH: i32 = 1500;

#[test]
fn spawning_at_every_stack_depth_never_hangs() {
    let r = beside_checksum(&machine(2), wat(&spawn_at_every_depth()), None, false);
    assert_eq!(r.hostile, Some(ExitStatus::Exited(DEPTH & 0x7f)));
    assert_eq!(r.checksum, Some(ExitStatus::Exited(expected_checksum())));
}

/// Whether a hostile process ended as it should.
type EndsAs<'a> = dyn Fn(ExitStatus) -> bool + 'a;

/// In deterministic mode, the checksum beside each hostile process of the
/// scheduler's reproductions gets at least a fair share of its one CPU:
/// half the time from their spawn to its end, less at most two quanta.
/// The time of every turn is charged to the process that had it, system
/// calls and compilation included, so the two CPU times add up to that
/// time within two quanta. Each hostile process ends as it should (killed
/// when the checksum is done, if it still runs).
#[test]
fn every_hostile_process_leaves_a_fair_share() {
    let quantum = SpawnOptions::default().quantum;
    let killed = |s: ExitStatus| s == ExitStatus::Killed(KillReason::Request);
    let exited = |code: i32| move |s: ExitStatus| s == ExitStatus::Exited(code);
    let cases: [(&str, String, &EndsAs<'_>); 7] = [
        ("sleep(0) loop", SLEEP_ZERO_LOOP.into(), &killed),
        ("own channel loop", OWN_CHANNEL_LOOP.into(), &killed),
        ("yield loop", YIELD_LOOP.into(), &killed),
        (
            "grow at every depth",
            GROW_AT_EVERY_DEPTH.into(),
            &exited(12_000 & 0x7f),
        ),
        (
            "spawn at every depth",
            spawn_at_every_depth(),
            &exited(DEPTH & 0x7f),
        ),
        ("slow to compile", slow_to_compile(), &|s| {
            killed(s) || s == ExitStatus::Exited(0)
        }),
        (
            "escaping children",
            spawn_flood(&wat(ENDLESS), 100),
            &|s| matches!(s, ExitStatus::Exited(n) if (0..=100).contains(&n)),
        ),
    ];
    for (seed, (name, hostile, ended)) in (1..).zip(cases) {
        // Room for the checksum beside a process at its memory limit.
        let config = Config {
            memory: 1 << 30,
            ..deterministic(1, seed)
        };
        let r = beside_checksum(&config, wat(&hostile), None, true);
        assert_eq!(
            r.checksum,
            Some(ExitStatus::Exited(expected_checksum())),
            "{name}"
        );
        assert!(r.hostile.is_some_and(ended), "{name}: {:?}", r.hostile);
        let (checksum, other, elapsed) = r.times;
        let times =
            format!("{name}: checksum {checksum:?}, hostile {other:?}, elapsed {elapsed:?}");
        assert!(checksum + 2 * quantum >= elapsed / 2, "{times}");
        assert!(checksum + other + 2 * quantum >= elapsed, "{times}");
    }
}

/// A module that takes a while to compile (400 functions of 600
/// operators each) and exits 0 at once when it runs.
fn slow_to_compile() -> String {
    let mut m = String::from("(module\n");
    for _ in 0..400 {
        m.push_str(" (func (param i32) (result i32) (local.get 0)");
        for k in 0..300 {
            let _ = write!(m, " (i32.const {k}) (i32.add)");
        }
        m.push_str(")\n");
    }
    m.push_str(" (func (export \"_start\") (result i32) (i32.const 0)))");
    m
}

/// Compilation is preemptible work of its process: a compile of seconds
/// held its CPU, so on one CPU nothing else ran, its deadline (a task on
/// the same CPU) fired only when it was done, and the process then ran to
/// `Exited(0)`. Now the deadline ends it while it compiles, before it runs
/// a single instruction, and the checksum beside it finishes right.
#[test]
fn compilation_shares_the_cpu_and_obeys_its_deadline() {
    let config = Config {
        cpus: 1,
        ..Config::default()
    };
    let r = beside_checksum(
        &config,
        wat(&slow_to_compile()),
        Some(Duration::from_millis(100)),
        false,
    );
    assert_eq!(r.hostile, Some(ExitStatus::Killed(KillReason::Deadline)));
    assert_eq!(r.checksum, Some(ExitStatus::Exited(expected_checksum())));
}

/// Fills channels nobody reads with 64 KiB messages, 16 to a channel (a
/// full channel would block), until a send or a new channel is refused;
/// returns how many messages it sent.
const PARKED_MESSAGES: &str = r#"(module
  (import "vessel" "chan_create" (func $create (param i32) (result i32)))
  (import "vessel" "chan_send" (func $send (param i32 i32 i32) (result i32)))
  (memory 2)
  (func (export "_start") (result i32)
    (local $n i32) (local $i i32)
    (loop $chan
      (if (call $create (i32.const 0)) (then (return (local.get $n))))
      (local.set $i (i32.const 0))
      (loop $msg
        (if (i32.lt_s (call $send (i32.load (i32.const 0)) (i32.const 1024) (i32.const 65536))
                      (i32.const 0))
          (then (return (local.get $n))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $msg (i32.lt_u (local.get $i) (i32.const 16))))
      (br $chan))
    (unreachable)))"#;

/// Messages parked in channels are charged to their sender until they are
/// received (INV-HANDLES-2): under an 8 MiB limit a process parks fewer
/// than 128 messages of 64 KiB; before, it parked them until its handle
/// table was full (511 channels of 16: half a gigabyte of kernel heap).
#[test]
fn parked_messages_count_against_their_sender() {
    let config = Config {
        cpus: 2,
        memory: 256 << 20,
        ..Config::default()
    };
    let parker = wat(PARKED_MESSAGES);
    let small = SpawnOptions {
        stack: 512 << 10,
        memory_limit: 2048,
        ..SpawnOptions::default()
    };
    let r = run_alone(&config, SpawnOptions::default(), "parker", parker, small);
    let Some(ExitStatus::Exited(n)) = r else {
        panic!("{r:?}");
    };
    assert!((1..128).contains(&n), "{n} messages of 64 KiB under 8 MiB");
}

/// A self-replicating process: it receives its own module's bytes on its
/// handle 0, then spawns copies of itself, each given a new channel on
/// which it sends them the bytes, until `spawn` or `chan_create` fails;
/// then it waits for ever on a channel of its own.
const REPLICATOR: &str = r#"(module
  (import "vessel" "chan_create" (func $create (param i32) (result i32)))
  (import "vessel" "chan_send" (func $send (param i32 i32 i32) (result i32)))
  (import "vessel" "chan_recv" (func $recv (param i32 i32 i32) (result i32)))
  (import "vessel" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (import "vessel" "close" (func $close (param i32) (result i32)))
  (memory 1)
  (func (export "_start")
    (local $len i32) (local $tx i32) (local $rx i32)
    (local.set $len (call $recv (i32.const 0) (i32.const 1024) (i32.const 60000)))
    (drop (call $close (i32.const 0)))
    (block $full
      (loop $more
        (br_if $full (call $create (i32.const 0)))
        (local.set $tx (i32.load (i32.const 0)))
        (local.set $rx (i32.load (i32.const 4)))
        (i32.store (i32.const 8) (local.get $rx))
        (if (i32.lt_s (call $spawn (i32.const 1024) (local.get $len) (i32.const 8) (i32.const 1))
                      (i32.const 0))
          (then
            (drop (call $close (local.get $tx)))
            (drop (call $close (local.get $rx)))
            (br $full)))
        (drop (call $send (local.get $tx) (i32.const 1024) (local.get $len)))
        (drop (call $close (local.get $tx)))
        (drop (call $close (local.get $rx)))
        (br $more)))
    (drop (call $create (i32.const 16)))
    (loop $idle
      (drop (call $recv (i32.load (i32.const 20)) (i32.const 32) (i32.const 4)))
      (br $idle))))"#;

/// Waits for ever on a channel of its own (taking no CPU).
const IDLE: &str = r#"(module
  (import "vessel" "chan_create" (func $create (param i32) (result i32)))
  (import "vessel" "chan_recv" (func $recv (param i32 i32 i32) (result i32)))
  (memory 1)
  (func (export "_start")
    (drop (call $create (i32.const 0)))
    (loop $idle
      (drop (call $recv (i32.load (i32.const 4)) (i32.const 32) (i32.const 4)))
      (br $idle))))"#;

/// What the spawn bombs left.
#[derive(Debug)]
struct Bombs {
    checksum: Option<ExitStatus>,
    /// Processes in the table when the checksum had ended.
    tree: usize,
    replicator: Option<ExitStatus>,
    /// Spawns the loop had refused of its 100,000.
    refused: Option<i32>,
    /// The loop's children running once it was done.
    children: usize,
    looped: Option<ExitStatus>,
    /// Processes left in the table once both bombs were reaped.
    left: usize,
    frames: (u64, u64),
    promised: u64,
    accounts: (usize, usize),
}

/// Spawns a loop of 100,000 tries.
const FLOOD: u32 = 100_000;

/// Spawn bombs end at the limits, with errors: a replicating tree stops
/// at its root's memory limit (every descendant counts against it,
/// INV-PROC-4) or the process limits, and a loop of 100,000 spawns holds
/// at most `MAX_CHILDREN` children at once and is refused the rest. A
/// checksum beside them finishes right; killing the roots ends both trees,
/// and once they are reaped every frame, promise, account and table slot
/// is back.
#[test]
fn spawn_bombs_end_at_the_limits_and_killing_the_root_frees_everything() {
    let config = Config {
        cpus: 2,
        memory: 512 << 20,
        window: sim::WINDOW,
        ..Config::default()
    };
    let replicator = wat(REPLICATOR);
    let flood = wat(&flood_then_idle(&wat(IDLE), FLOOD));
    let checksum = wat(&checksum_module());
    let (r, _) = on_config(&config, |kernel, exec| {
        let free_before = kernel.frames().free_frames();
        let accounts_before = kernel.vm().account_count();
        let r = proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
            let defaults = SpawnOptions {
                stack: 512 << 10,
                memory_limit: (128 << 20) / 4096,
                ..procs.defaults()
            };
            let (tx, rx) = proc::new_channel(kernel.hal(), 1);
            let root = procs
                .spawn(
                    "replicator",
                    replicator.clone(),
                    vec![Object::Receiver(rx)],
                    defaults,
                )
                .expect("spawn");
            let sent = tx.send(Message::new(replicator.to_vec())).await;
            assert!(sent.is_ok(), "the root takes its bytes");
            let (report, refused) = proc::new_channel(kernel.hal(), 1);
            let looped = procs
                .spawn("flood", flood, vec![Object::Sender(report)], defaults)
                .expect("spawn");
            let c = procs
                .spawn("checksum", checksum, Vec::new(), defaults)
                .expect("spawn");
            let checksum = wait(&procs, c).await;
            let tree = procs.count();
            let refused = match procs.exec().timeout(HANG_GUARD, refused.recv()).await {
                Ok(Ok(m)) => m.into_bytes().try_into().ok().map(i32::from_le_bytes),
                _ => None,
            };
            let children = procs
                .info()
                .iter()
                .filter(|i| i.name == "flood" && i.pid != looped)
                .filter(|i| i.status == ExitStatus::Running)
                .count();
            procs.kill(root);
            procs.kill(looped);
            let replicator = wait(&procs, root).await;
            let looped_status = wait(&procs, looped).await;
            for pid in [root, looped, c] {
                procs.reap(pid).await;
            }
            // The trees' processes leave the table as they end.
            let left = emptied(&procs).await;
            Bombs {
                checksum,
                tree,
                replicator,
                refused,
                children,
                looped: looped_status,
                left,
                frames: (0, 0),
                promised: 0,
                accounts: (0, 0),
            }
        });
        kernel.release_idle();
        let f = kernel.frames();
        Bombs {
            frames: (free_before, f.free_frames()),
            promised: f.promised_frames(),
            accounts: (accounts_before, kernel.vm().account_count()),
            ..r.expect("scope")
        }
    });
    assert_eq!(
        r.checksum,
        Some(ExitStatus::Exited(expected_checksum())),
        "{r:#?}"
    );
    assert!((3..=proc::MAX_PROCESSES).contains(&r.tree), "{r:#?}");
    assert_eq!(
        r.replicator,
        Some(ExitStatus::Killed(KillReason::Request)),
        "{r:#?}"
    );
    assert_eq!(
        r.looped,
        Some(ExitStatus::Killed(KillReason::Request)),
        "{r:#?}"
    );
    // Refusals come from the child limit and from its memory limit (its
    // children's stacks and compilations count against it); children that
    // fail to compile make room for more. Whatever the mix, it got some
    // children, never more than the limit at once, and errors for the rest.
    let spawned = r.refused.map(|n| i64::from(FLOOD) - i64::from(n));
    assert!(spawned.is_some_and(|n| n >= 1), "{r:#?}");
    assert!((1..=proc::MAX_CHILDREN).contains(&r.children), "{r:#?}");
    assert_eq!(r.left, 0, "{r:#?}");
    assert_eq!(r.frames.1, r.frames.0, "frames leaked: {r:#?}");
    assert_eq!(r.promised, 0, "promises leaked: {r:#?}");
    assert_eq!(r.accounts.1, r.accounts.0, "accounts leaked: {r:#?}");
}
