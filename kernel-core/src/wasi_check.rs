//! `test=wasi`: the Rust WASI programs the platform embeds
//! ([`crate::boot::BootInfo::wasi`], built from `tests/wasi-programs`)
//! run as processes, each checked against how it must end; one line per
//! program, then `N passed, M failed`.
//!
//! Only programs that check themselves are run: each ends with a status
//! that says whether what it did worked (a file round trip on the tmpfs,
//! 8 MiB written and read back, clocks and a sleep, random bytes), or one
//! that is the point (an exit code, a panic's trap, a file larger than the
//! tmpfs holds). What they print goes to the console.
//!
//! Then a crowd ([`crowd`]): [`CROWD`] processes alive at once, each
//! waiting for a gate process the check kills once every one of them has
//! run; then each exits 42. None can end before the last has started, so
//! all were alive together whatever the machine's speed; every one must
//! end as it must and leave no promise or account behind.
//!
//! `test=input` ([`read_line`]) runs `demo/readline.wat`, which reads one
//! line of console input and prints it, then says how many slices the
//! process ran: a reader woken by the input interrupt runs a handful, one
//! that looked every millisecond would run one per millisecond it waited.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use crate::boot::say;
use crate::exit;
use crate::hal::Platform;
use crate::kernel::Kernel;
use crate::proc::{self, ExitStatus, Program, SpawnOptions};
use crate::sched::{Executor, SchedHal};
use crate::wasm::TrapKind;

/// Each program run: its name, its arguments after its name, and how it
/// must end.
const CASES: [(&str, &[&str], ExitStatus); 8] = [
    ("hello", &[], ExitStatus::Exited(0)),
    ("exit7", &[], ExitStatus::Exited(7)),
    ("panic", &[], ExitStatus::Trapped(TrapKind::Unreachable)),
    ("clocks", &[], ExitStatus::Exited(0)),
    ("random", &[], ExitStatus::Exited(0)),
    ("files", &["/"], ExitStatus::Exited(0)),
    // 8 MiB written, read back and checked on the tmpfs.
    ("bigfile", &["/", "8"], ExitStatus::Exited(0)),
    // More than any tmpfs here holds: ENOSPC, reported by the program,
    // and the kernel goes on.
    ("bigfile", &["/", "200"], ExitStatus::Exited(1)),
];

/// Processes alive at once in the crowd check.
pub const CROWD: usize = 1000;
/// Each crowd process's fiber stack: the 256 KiB the kernel keeps for
/// host calls and 64 KiB for wasm (a default stack is 2 MiB; a thousand
/// of those would not fit the 512 MiB QEMU machine).
const CROWD_STACK: usize = 320 << 10;
/// Bounds every wait of the crowd check, so that a kernel bug shows as a
/// failed line rather than a hang.
const CROWD_GUARD: Duration = Duration::from_secs(600);

/// A module without memory (a riscv memory reserves 4 GiB of a window
/// of 64 GiB under Sv39) whose `_start` calls `vessel.<import>` with `arg` (of type
/// `arg_ty`), drops what it returns and returns 42.
fn memoryless(import: &[u8], arg_ty: u8, arg: &[u8]) -> Vec<u8> {
    let mut m = Vec::from(&b"\0asm\x01\0\0\0"[..]);
    // type 0: (arg_ty) -> i32; type 1: () -> i32
    m.extend_from_slice(&[1, 10, 2, 0x60, 1, arg_ty, 1, 0x7f, 0x60, 0, 1, 0x7f]);
    // import vessel.<import> : type 0
    let size = 1 + 1 + 6 + 1 + import.len() + 2;
    m.extend_from_slice(&[2, size as u8, 1, 6]);
    m.extend_from_slice(b"vessel");
    m.push(import.len() as u8);
    m.extend_from_slice(import);
    m.extend_from_slice(&[0, 0]);
    // one function of type 1, exported as _start
    m.extend_from_slice(&[3, 2, 1, 1]);
    m.extend_from_slice(&[7, 10, 1, 6]);
    m.extend_from_slice(b"_start");
    m.extend_from_slice(&[0, 1]);
    // body: <arg>; call 0; drop; i32.const 42; end
    let mut body = alloc::vec![0u8];
    body.extend_from_slice(arg);
    body.extend_from_slice(&[0x10, 0, 0x1a, 0x41, 42, 0x0b]);
    m.extend_from_slice(&[10, body.len() as u8 + 2, 1, body.len() as u8]);
    m.extend_from_slice(&body);
    m
}

/// What the crowd check saw.
struct Crowd {
    spawned: usize,
    live: usize,
    as_told: usize,
    spawn_ms: u64,
    clean: bool,
}

/// Spawn a gate (a process that sleeps until killed) and [`CROWD`]
/// processes waiting for it; once every one has run, count those alive,
/// kill the gate, and reap them all.
async fn crowd<P: Platform + SchedHal>(
    kernel: &Kernel<'_, P>,
    procs: &proc::Procs<'_, '_, P>,
) -> Crowd {
    let frames = kernel.frames();
    let before = (frames.promised_frames(), kernel.vm().account_count());
    let options = SpawnOptions {
        stack: CROWD_STACK,
        ..SpawnOptions::default()
    };
    // i64.const i64::MAX (signed LEB128) for the gate's sleep; i32.const 0
    // (handle 0, the gate) for the crowd's wait.
    let forever = [
        0x42, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00,
    ];
    let gate_module: Arc<[u8]> = memoryless(b"sleep", 0x7e, &forever).into();
    let member: Arc<[u8]> = memoryless(b"wait", 0x7f, &[0x41, 0]).into();
    let Ok(gate) = procs.spawn("gate", gate_module, Vec::new(), options) else {
        return Crowd {
            spawned: 0,
            live: 0,
            as_told: 0,
            spawn_ms: 0,
            clean: false,
        };
    };
    let clock = kernel.hal();
    let start = clock.now();
    let pids: Vec<_> = (0..CROWD)
        .map_while(|_| {
            let handles = procs.claim(gate).into_iter().collect();
            procs.spawn("crowd", member.clone(), handles, options).ok()
        })
        .collect();
    let spawn_ms = clock.now().saturating_sub(start).as_millis() as u64;
    let started = || {
        procs
            .info()
            .iter()
            .filter(|i| i.name == "crowd" && (i.slices > 0 || i.status != ExitStatus::Running))
            .count()
    };
    let waited = async {
        while started() < pids.len() {
            procs.exec().sleep(Duration::from_millis(5)).await;
        }
    };
    let _ = procs.exec().timeout(CROWD_GUARD, waited).await;
    let live = procs
        .info()
        .iter()
        .filter(|i| i.name == "crowd" && i.slices > 0 && i.status == ExitStatus::Running)
        .count();
    procs.kill(gate);
    let mut as_told = 0;
    for pid in &pids {
        let reaped = procs.exec().timeout(CROWD_GUARD, procs.reap(*pid)).await;
        if reaped.ok().flatten().map(|i| i.status) == Some(ExitStatus::Exited(42)) {
            as_told += 1;
        }
    }
    let _ = procs.exec().timeout(CROWD_GUARD, procs.reap(gate)).await;
    // The module leaves the cache with its last process; a fiber's stack
    // is freed a moment after its status is published.
    drop(member);
    kernel.modules().prune();
    let back = async {
        while (frames.promised_frames(), kernel.vm().account_count()) != before {
            procs.exec().sleep(Duration::from_millis(5)).await;
        }
    };
    let clean = procs
        .exec()
        .timeout(Duration::from_secs(5), back)
        .await
        .is_ok();
    Crowd {
        spawned: pids.len(),
        live,
        as_told,
        spawn_ms,
        clean,
    }
}

/// Run every case whose program is among `programs` (`(name, module)`);
/// [`exit::SUCCESS`] when each ended as it must and none is missing.
pub fn run<P: Platform + SchedHal>(
    kernel: &Kernel<'_, P>,
    exec: &Executor<'_, P>,
    programs: &[(&str, &[u8])],
) -> u8 {
    let hal = kernel.hal();
    let outcome = proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
        let mut results = Vec::new();
        for (name, args, want) in CASES {
            let Some((_, module)) = programs.iter().find(|(n, _)| *n == name) else {
                results.push((name, None, want));
                continue;
            };
            let program = Program {
                args: core::iter::once(name)
                    .chain(args.iter().copied())
                    .map(|a| a.as_bytes().to_vec())
                    .collect(),
                env: Vec::new(),
                no_files: false,
                mounts: Vec::new(),
            };
            let module: Arc<[u8]> = Arc::from(*module);
            let got = match procs.spawn_program(name, module, Vec::new(), procs.defaults(), program)
            {
                Ok(pid) => procs.reap(pid).await.map(|i| i.status),
                Err(_) => None,
            };
            results.push((name, got, want));
        }
        (results, crowd(kernel, &procs).await)
    });
    let Ok((results, crowd)) = outcome else {
        say(hal, format_args!("test=wasi: no executor"));
        return exit::FAILED;
    };
    let (mut passed, mut failed) = (0, 0);
    for (name, got, want) in results {
        match got {
            Some(s) if s == want => {
                passed += 1;
                say(hal, format_args!("wasi {name} ... ok"));
            }
            Some(s) => {
                failed += 1;
                say(
                    hal,
                    format_args!("wasi {name} ... FAILED: {s}, want {want}"),
                );
            }
            None => {
                failed += 1;
                say(
                    hal,
                    format_args!("wasi {name} ... FAILED: not embedded or not started"),
                );
            }
        }
    }
    let Crowd {
        spawned,
        live,
        as_told,
        spawn_ms,
        clean,
    } = crowd;
    if spawned == CROWD && live == CROWD && as_told == CROWD && clean {
        passed += 1;
        say(
            hal,
            format_args!("processes {CROWD} at once ... ok (spawned in {spawn_ms} ms)"),
        );
    } else {
        failed += 1;
        say(
            hal,
            format_args!(
                "processes {CROWD} at once ... FAILED: {spawned} spawned in {spawn_ms} ms, {live} alive at once, {as_told} exited 42, promises and accounts back: {clean}"
            ),
        );
    }
    say(hal, format_args!("{passed} passed, {failed} failed"));
    if failed == 0 {
        exit::SUCCESS
    } else {
        exit::FAILED
    }
}

/// `demo/readline.wat`, assembled by the build script.
const READLINE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/readline.wasm"));

/// `test=input`: run the line reader; [`exit::SUCCESS`] when it read a line
/// and exited, after printing `input: read after N slices`.
pub fn read_line<P: Platform + SchedHal>(kernel: &Kernel<'_, P>, exec: &Executor<'_, P>) -> u8 {
    let hal = kernel.hal();
    let outcome = proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
        let program = Program {
            args: alloc::vec![b"readline".to_vec()],
            ..Program::default()
        };
        let pid = procs
            .spawn_program(
                "readline",
                Arc::from(READLINE),
                Vec::new(),
                procs.defaults(),
                program,
            )
            .ok()?;
        procs.reap(pid).await
    });
    match outcome {
        Ok(Some(info)) if info.status == ExitStatus::Exited(0) => {
            say(
                hal,
                format_args!("input: read after {} slices", info.slices),
            );
            exit::SUCCESS
        }
        Ok(Some(info)) => {
            say(
                hal,
                format_args!("input: the reader ended {:?}", info.status),
            );
            exit::FAILED
        }
        _ => {
            say(hal, format_args!("input: the reader did not start"));
            exit::FAILED
        }
    }
}
