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
//! `test=input` ([`read_line`]) runs `demo/readline.wat`, which reads one
//! line of console input and prints it, then says how many slices the
//! process ran: a reader woken by the input interrupt runs a handful, one
//! that looked every millisecond would run one per millisecond it waited.

use alloc::sync::Arc;
use alloc::vec::Vec;

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
        results
    });
    let Ok(results) = outcome else {
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
