//! The init process: the boot image unpacked into the root tmpfs, init
//! started from it on the console, and its exit status the machine's.
//!
//! The boot image is a cpio newc archive ([`crate::fs::cpio`]) the
//! platform hands over (hosted: `sim boot --initrd FILE`). `init=PATH`
//! names the program (default [`DEFAULT_INIT`]); the command-line words
//! after `--` are its arguments after its name. Init's descriptors 0, 1
//! and 2 are the console, read through the line discipline
//! (`proc::tty`: echo, editing, Ctrl-C, Ctrl-D) while init runs, and `/`
//! is the tmpfs the image was unpacked into, shared with every process it
//! starts.
//!
//! Invariants:
//! - INV-INIT-1: the machine's exit status is init's: the low 8 bits of
//!   its exit code; [`exit::FAILED`] with one line on the console when it
//!   traps, is killed or cannot be loaded; [`exit::USAGE`] when the image
//!   cannot be unpacked or holds no program at `PATH`.
//! - INV-INIT-2: nothing the image or init controls is printed unescaped.
//! - INV-INIT-3: init and its descendants use at most half the RAM
//!   together (init's memory limit), and are at most one process per
//!   [`MEMORY_PER_PROCESS`] of that at once, at most
//!   [`MAX_SYSTEM_PROCESSES`]; a spawn past it fails (the `vessel` calls
//!   return "out of memory or past the process limit").

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;

use crate::boot::say;
use crate::escape;
use crate::exit;
use crate::fs::cpio;
use crate::fs::tmpfs::ROOT;
use crate::hal::Platform;
use crate::kernel::Kernel;
use crate::proc::{self, ExitStatus, Program, SpawnOptions};
use crate::sched::{Executor, SchedHal};

/// The program init is when the command line names none.
pub const DEFAULT_INIT: &str = "/bin/init";

/// Where a boot image keeps precompiled programs: one file per artifact
/// (`wasm::artifact`), named by its key in hex ([`precompiled_path`]).
/// A process's module is loaded from there when an entry for its bytes
/// and this kernel's compiler passes every check, else compiled.
pub const PRECOMPILED_DIR: &str = "/lib/code";

/// Most bytes of one precompiled entry read.
pub const MAX_PRECOMPILED: u64 = 64 << 20;

/// The path of the precompiled entry kept under `key`.
pub fn precompiled_path(key: &[u8; 32]) -> alloc::string::String {
    alloc::format!("{PRECOMPILED_DIR}/{}", crate::wasm::artifact::key_hex(key))
}

/// Unpack `image` into the root tmpfs, run `path` with `args` as init, and
/// return the machine's exit status (INV-INIT-1).
pub fn run<P: Platform + SchedHal>(
    kernel: &Kernel<'_, P>,
    exec: &Executor<'_, P>,
    image: &[u8],
    path: &str,
    args: &[&str],
) -> u8 {
    let hal = kernel.hal();
    let outcome = proc::run(kernel, exec, SpawnOptions::default(), |procs| async move {
        if image.is_empty() {
            say(hal, format_args!("init: no boot image was given"));
            return exit::USAGE;
        }
        let fs = procs.fs();
        let now = kernel.wall_ns();
        if let Err(e) = cpio::unpack(image, fs, ROOT, now) {
            say(hal, format_args!("init: boot image: {e}"));
            return exit::USAGE;
        }
        let relative = path.trim_start_matches('/');
        let module = fs
            .read_file(path.as_bytes(), crate::sys::MAX_MODULE as u64, now, |_| {
                Ok(())
            })
            .map(|(bytes, ())| bytes);
        let module = match module {
            Ok(m) => m,
            Err(e) => {
                say(
                    hal,
                    format_args!("init: {}: {e}", escape::name(path.as_bytes())),
                );
                return exit::USAGE;
            }
        };
        let program = Program {
            args: core::iter::once(path)
                .chain(args.iter().copied())
                .map(|a| a.as_bytes().to_vec())
                .collect(),
            ..Program::default()
        };
        procs.limit(process_limit(kernel));
        let name = relative.rsplit('/').next().unwrap_or(relative);
        let options = SpawnOptions {
            memory_limit: system_memory(kernel),
            ..procs.defaults()
        };
        let pid = match procs.spawn_program(name, Arc::from(module), Vec::new(), options, program) {
            Ok(pid) => pid,
            Err(e) => {
                say(hal, format_args!("init: cannot start: {e}"));
                return exit::FAILED;
            }
        };
        // The console's line discipline runs while init does (its input
        // may end first: init still runs to its end).
        let Some(info) = beside(procs.reap(pid), procs.console_pump()).await else {
            return exit::FAILED;
        };
        match info.status {
            ExitStatus::Exited(code) => code.to_le_bytes()[0],
            other => {
                say(hal, format_args!("init: {}", Ended(other)));
                exit::FAILED
            }
        }
    });
    outcome.unwrap_or_else(|e| {
        say(hal, format_args!("init: {e}"));
        exit::FAILED
    })
}

/// Memory per process the system's process limit allows: a small
/// program's fiber stack, touched linear memory and module.
const MEMORY_PER_PROCESS: u64 = 16 << 20;

/// The most processes the system runs at once, whatever its RAM.
pub const MAX_SYSTEM_PROCESSES: usize = 512;

/// Init's memory limit in frames, which its descendants' charges count
/// against too (`proc` INV-PROC-4): half the machine's RAM, the rest left
/// to the kernel (its heap, tmpfs, compiled code).
fn system_memory<P: Platform>(kernel: &Kernel<'_, P>) -> u64 {
    kernel.frames().total_frames() / 2
}

/// The most processes the system runs at once (INV-INIT-3): one per
/// [`MEMORY_PER_PROCESS`] of the system's memory, at least 16 and at most
/// [`MAX_SYSTEM_PROCESSES`], so that a fork bomb meets the limit, an
/// error its spawner can report, before it has used the memory the
/// processes already running need.
fn process_limit<P: Platform>(kernel: &Kernel<'_, P>) -> usize {
    let bytes = system_memory(kernel) * crate::hal::PAGE_SIZE as u64;
    usize::try_from(bytes / MEMORY_PER_PROCESS)
        .unwrap_or(usize::MAX)
        .clamp(16, MAX_SYSTEM_PROCESSES)
}

/// `main`'s output, polling `side` beside it until `side` ends.
async fn beside<T>(main: impl Future<Output = T>, side: impl Future<Output = ()>) -> T {
    let mut main = core::pin::pin!(main);
    let mut side = core::pin::pin!(side);
    let mut side_done = false;
    core::future::poll_fn(|cx| {
        if !side_done {
            side_done = side.as_mut().poll(cx).is_ready();
        }
        main.as_mut().poll(cx)
    })
    .await
}

/// How init ended, when it did not exit.
struct Ended(ExitStatus);

impl core::fmt::Display for Ended {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            ExitStatus::Trapped(kind) => write!(f, "trapped: {}", kind.message()),
            ExitStatus::Killed(reason) => write!(f, "killed: {reason}"),
            ExitStatus::Failed(e) => write!(f, "failed to load: {e}"),
            ExitStatus::Exited(code) => write!(f, "exited {code}"),
            ExitStatus::Running => f.write_str("still running"),
        }
    }
}
