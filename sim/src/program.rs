//! `sim run [--env K=V]... FILE [ARGS...]`: run a program the way
//! `wasmtime run` does, as a process of the kernel with the `vessel` and
//! WASI preview1 interfaces.
//!
//! The program gets `FILE` as `argv[0]`, then `ARGS`; exactly the given
//! environment; `sim`'s own standard input, output and error. `sim` exits
//! with the program's exit code: `proc_exit(n)` gives `n` (its low 8
//! bits), returning from `_start` gives 0 (or the `i32` it returns), a
//! trap prints `trap: <kind>` and the wasm backtrace on standard error and
//! exits 134, as wasmtime does. A module that does not load is one line on
//! standard error and exit 2; a run still going at `--timeout` is killed,
//! `sim: timed out after <limit>` on standard error and exit 5. Names from
//! the module are escaped (`kernel_core::escape`).

use std::path::Path;
use std::sync::Arc;

use hal_hosted::{Config, Hosted};
use kernel_core::exit;
use kernel_core::proc::{self, ExitStatus, KillReason, ProcInfo, Program, SpawnOptions};
use sim::input;
use sim::timeout::Limit;

use crate::out;

/// The exit status of a program that trapped (128 + SIGABRT, as wasmtime).
pub const TRAPPED: u8 = 134;

/// Bytes of the program's stack (its wasm frames and the kernel's host
/// calls below them).
const STACK: usize = 8 << 20;

/// Run `path` as a program with `args` after its name and environment
/// `env` (`KEY=VALUE` each) on a machine shaped by `config`, killed after
/// `limit`. Returns `sim`'s exit status.
pub fn run(
    config: &Config,
    path: &Path,
    args: &[String],
    env: &[String],
    limit: Option<Limit>,
) -> u8 {
    if let Some(bad) = env.iter().find(|e| !e.contains('=')) {
        out::error(format_args!(
            "--env {}: expected KEY=VALUE",
            kernel_core::escape::name(bad)
        ));
        return exit::USAGE;
    }
    let bytes = match input::module(path) {
        Ok(b) => b,
        Err(e) => {
            out::error(format_args!("{e}"));
            return exit::USAGE;
        }
    };
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("program")
        .to_owned();
    let program = Program {
        args: std::iter::once(path.as_os_str().as_encoded_bytes().to_vec())
            .chain(args.iter().map(|a| a.as_bytes().to_vec()))
            .collect(),
        env: env.iter().map(|e| e.as_bytes().to_vec()).collect(),
        no_files: false,
    };
    let hosted = match Hosted::new(config) {
        Ok(h) => h,
        Err(e) => {
            out::error(format_args!("cannot start the machine: {e}"));
            return exit::USAGE;
        }
    };
    let module: Arc<[u8]> = bytes.into();
    let options = SpawnOptions {
        deadline: limit.map(|l| l.duration()),
        // The program may use the whole machine; the kernel keeps its
        // reserve all the same.
        memory_limit: config.memory / 4096,
        stack: STACK,
        ..SpawnOptions::default()
    };
    let ended = std::sync::Mutex::new(None);
    let booted = hal_hosted::boot_quiet_into(&hosted, |kernel| {
        let info = kernel_core::boot::with_executor(kernel, |exec| {
            proc::run(kernel, exec, options, |procs| async move {
                let pid = procs
                    .spawn_program(&name, module, Vec::new(), options, program)
                    .ok()?;
                procs.reap(pid).await
            })
        });
        *ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(info);
        exit::SUCCESS
    });
    if let Err(e) = booted {
        out::error(format_args!("cannot start the machine: {e}"));
        return exit::USAGE;
    }
    if let Some(e) = hosted.console_error() {
        return out::lost(&e);
    }
    let ended = ended
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match ended {
        Some(Ok(Some(info))) => status(&info, limit),
        Some(Ok(None)) => {
            out::error(format_args!("the program could not be started"));
            exit::USAGE
        }
        Some(Err(e)) => {
            out::error(format_args!("cannot run the program: {e}"));
            exit::USAGE
        }
        None => {
            out::error(format_args!("the kernel stopped before the program ended"));
            exit::FAILED
        }
    }
}

/// `sim`'s exit status for a program that ended as `info` says.
fn status(info: &ProcInfo, limit: Option<Limit>) -> u8 {
    match info.status {
        // The low 8 bits, as a Unix exit status.
        ExitStatus::Exited(code) => code.to_le_bytes()[0],
        ExitStatus::Trapped(kind) => {
            match &info.trap {
                Some(trap) => out::error_raw(format_args!("trap: {trap}")),
                None => out::error_raw(format_args!("trap: {}", kind.message())),
            }
            TRAPPED
        }
        ExitStatus::Killed(KillReason::Deadline) => {
            match limit {
                Some(limit) => out::error(format_args!("timed out after {limit}")),
                None => out::error(format_args!("timed out")),
            }
            exit::TIMEOUT
        }
        ExitStatus::Killed(reason) => {
            out::error(format_args!("killed: {reason}"));
            TRAPPED
        }
        ExitStatus::Failed(e) => {
            out::error(format_args!("{e}"));
            exit::USAGE
        }
        ExitStatus::Running => exit::FAILED,
    }
}
