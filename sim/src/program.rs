//! `sim run [--env K=V]... [--dir HOST[::GUEST]]... FILE [ARGS...]`: run a
//! program the way `wasmtime run` does, as a process of the kernel with the
//! `vessel` and WASI preview1 interfaces.
//!
//! The program gets `FILE` as `argv[0]`, then `ARGS`; exactly the given
//! environment; the in-memory root `/` and each `--dir` preopened (a host
//! directory mounted through hostfs at `GUEST`, by default at `HOST` as
//! written; a mount at `/` replaces the in-memory root); `sim`'s own
//! standard input, output and error. `sim` exits
//! with the program's exit code: `proc_exit(n)` gives `n` (its low 8
//! bits), returning from `_start` gives 0 (or the `i32` it returns), a
//! trap prints `trap: <kind>` and the wasm backtrace on standard error and
//! exits 134, as wasmtime does. A module that does not load is one line on
//! standard error and exit 2; a run still going at `--timeout` is killed,
//! `sim: timed out after <limit>` on standard error and exit 5. Names from
//! the module are escaped (`kernel_core::escape`).
//!
//! Compiled programs are kept in a cache directory across runs, as
//! `wasmtime run` does (`--cache DIR`, by default [`default_cache_dir`];
//! `--no-cache` turns it off): the kernel checks every entry before it
//! uses one and compiles again when an entry was written by another
//! build, for another module, or is damaged (`kernel_core::wasm::artifact`).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hal_hosted::{Config, HostError, Hosted};
use kernel_core::exit;
use kernel_core::proc::{self, ExitStatus, KillReason, Mount, ProcInfo, Program, SpawnOptions};
use sim::input;
use sim::timeout::Limit;

use crate::out;

/// The exit status of a program that trapped (128 + SIGABRT, as wasmtime).
pub const TRAPPED: u8 = 134;

/// Bytes of the program's stack (its wasm frames and the kernel's host
/// calls below them).
const STACK: usize = 8 << 20;

/// The compiled-module cache directory when none is given:
/// `$XDG_CACHE_HOME/vessel`, else `$HOME/.cache/vessel` (absolute paths
/// only, as the XDG specification asks); `None` when neither is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    let absolute = |v: OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    std::env::var_os("XDG_CACHE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".cache"))
        })
        .map(|d| d.join("vessel"))
}

/// Run `path` as a program with `args` after its name, environment `env`
/// (`KEY=VALUE` each), host directories `dirs` (`HOST[::GUEST]` each) and
/// compiled modules kept in `cache` on a machine shaped by `config`, killed
/// after `limit`. Returns `sim`'s exit status.
pub fn run(
    config: &Config,
    path: &Path,
    args: &[String],
    (env, dirs, cache): (&[String], &[OsString], Option<PathBuf>),
    limit: Option<Limit>,
) -> u8 {
    if let Some(bad) = env.iter().find(|e| !e.contains('=')) {
        out::error(format_args!(
            "--env {}: expected KEY=VALUE",
            kernel_core::escape::name(bad)
        ));
        return exit::USAGE;
    }
    let (hosts, mounts) = match mounts(dirs) {
        Ok(m) => m,
        Err(bad) => {
            out::error(format_args!(
                "--dir {}: expected HOST or HOST::GUEST, neither empty nor holding a NUL",
                kernel_core::escape::name(bad.as_encoded_bytes())
            ));
            return exit::USAGE;
        }
    };
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
        mounts,
    };
    let hosted = match Hosted::with_dirs(config, &hosts) {
        Ok(h) => h,
        Err(HostError::HostDir { index, errno }) => {
            let host = hosts
                .get(index)
                .map_or(&b""[..], |h| h.as_os_str().as_encoded_bytes());
            out::error(format_args!(
                "--dir {}: {errno}",
                kernel_core::escape::name(host)
            ));
            return exit::USAGE;
        }
        Err(e) => {
            out::error(format_args!("cannot start the machine: {e}"));
            return exit::USAGE;
        }
    };
    hosted.set_code_cache(cache);
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

/// The host directories and the mounts of `--dir HOST[::GUEST]` words, or
/// the first word that is not one.
fn mounts(dirs: &[OsString]) -> Result<(Vec<PathBuf>, Vec<Mount>), &OsString> {
    let mut hosts = Vec::new();
    let mut mounts = Vec::new();
    for (word, index) in dirs.iter().zip(0u32..) {
        let bytes = word.as_encoded_bytes();
        let (host, guest) = match bytes.windows(2).position(|w| w == b"::") {
            Some(i) => (&bytes[..i], &bytes[i + 2..]),
            None => (bytes, bytes),
        };
        if host.is_empty() || guest.is_empty() || guest.contains(&0) {
            return Err(word);
        }
        // SAFETY: `host` is a prefix of an `OsStr`'s encoded bytes ending
        // just before the ASCII `::` (or the whole of them), so it is
        // itself valid encoded bytes of an `OsStr`.
        let host = unsafe { OsStr::from_encoded_bytes_unchecked(host) };
        hosts.push(PathBuf::from(host));
        mounts.push(Mount {
            guest: guest.to_vec(),
            host: index,
        });
    }
    Ok((hosts, mounts))
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
