//! JIT code for debuggers and profilers: gdb's JIT interface and the perf
//! map (`kernel_core::hal::JitDebug` for [`Hosted`]).
//!
//! gdb: every code object is published through `kernel_core::gdb_jit`
//! (the descriptor, the list and the object files live there, shared with
//! the riscv kernel), without a budget: a hosted process has the host's
//! memory.
//!
//! The perf map (`/tmp/perf-<pid>.map`, one `START SIZE NAME` line per
//! function, hexadecimal) is written only after [`enable_perf_map`]; perf
//! reads it when it reports, so lines are never removed. The file is made
//! anew, mode 0600, never through a link: a file or link already at that
//! path (anyone may create names in `/tmp`) is someone else's and is left
//! alone ([`PerfMapError::Exists`]). Names come from modules and are
//! escaped (`kernel_core::escape`), so each symbol is one line.
//!
//! Both are process-wide (one descriptor, one pid) and shared by every
//! machine in the process.
//!
//! Invariants:
//! - INV-JIT-H-1: every published code object goes to gdb (the budget is
//!   unlimited), so a skip can only be the heap's (`gdb_jit::Skip`).
//! - INV-JIT-H-2: perf map lines are appended under `PERF_MAP`'s lock, one
//!   object's lines in one write, so machines never interleave them.

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kernel_core::gdb_jit;
use kernel_core::hal::{JitCode, JitDebug, JitSymbol, VirtRange};

use crate::Hosted;

/// The perf map, once [`enable_perf_map`] opened it.
static PERF_MAP: Mutex<Option<File>> = Mutex::new(None);

/// Why the perf map could not be opened.
#[derive(Debug)]
pub enum PerfMapError {
    /// Something (a file, a symbolic link) is already at the path: not
    /// ours, so not written through.
    Exists(PathBuf),
    /// The file could not be created.
    Create(PathBuf, std::io::Error),
}

impl fmt::Display for PerfMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exists(p) => write!(
                f,
                "{} already exists and is not ours (a stale map or a planted link): remove it first",
                p.display()
            ),
            Self::Create(p, e) => write!(f, "cannot create {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for PerfMapError {}

/// Start writing `/tmp/perf-<pid>.map` for every code object published
/// from now on, in every machine of the process (module doc).
///
/// # Errors
/// [`PerfMapError::Exists`] when anything is at that path already;
/// [`PerfMapError::Create`] when the file cannot be created.
pub fn enable_perf_map() -> Result<(), PerfMapError> {
    let path = std::env::temp_dir().join(format!("perf-{}.map", std::process::id()));
    let file = create_perf_map(&path)?;
    *PERF_MAP.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
    Ok(())
}

/// Create `path` for writing: a new file (`O_CREAT | O_EXCL`), not
/// through a symbolic link (`O_NOFOLLOW`), readable by its owner only.
fn create_perf_map(path: &Path) -> Result<File, PerfMapError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EEXIST | libc::ELOOP) => PerfMapError::Exists(path.to_owned()),
            _ => PerfMapError::Create(path.to_owned(), e),
        })
}

/// The perf map lines of `symbols`: `START SIZE NAME`, hexadecimal, the
/// name escaped so that it stays on its line.
fn perf_map_lines(symbols: &[JitSymbol<'_>]) -> String {
    let mut text = String::new();
    for s in symbols {
        let _ = writeln!(
            text,
            "{:x} {:x} {}",
            s.start,
            s.len,
            kernel_core::escape::name(s.name)
        );
    }
    text
}

fn write_perf_map(code: &JitCode<'_>) {
    let mut guard = PERF_MAP.lock().unwrap_or_else(|e| e.into_inner());
    let Some(file) = guard.as_mut() else {
        return;
    };
    let text = perf_map_lines(code.symbols);
    // A profiler aid: a failed write costs symbols, not correctness.
    let _ = file.write_all(text.as_bytes());
}

impl JitDebug for Hosted {
    fn jit_debug_enabled(&self) -> bool {
        true
    }

    fn code_published(&self, code: &JitCode<'_>) {
        // A skip is counted and logged by `gdb_jit`; the code runs anyway.
        let _ = gdb_jit::publish(code, usize::MAX);
        write_perf_map(code);
    }

    fn code_retired(&self, range: VirtRange) {
        gdb_jit::retire(range);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fresh directory of this test's own.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vessel-perf-map-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn perf_map_is_new_and_private() {
        let dir = scratch("new");
        let path = dir.join("perf-1.map");
        let mut f = create_perf_map(&path).expect("create");
        f.write_all(b"0 1 x\n").expect("write");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A second open finds it there: not ours to overwrite.
        assert!(matches!(
            create_perf_map(&path),
            Err(PerfMapError::Exists(_))
        ));
        assert_eq!(std::fs::read(&path).expect("read"), b"0 1 x\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn perf_map_refuses_a_planted_link_and_leaves_its_target() {
        let dir = scratch("link");
        let target = dir.join("precious");
        std::fs::write(&target, b"keep me").expect("target");
        let path = dir.join("perf-2.map");
        std::os::unix::fs::symlink(&target, &path).expect("plant link");
        let e = create_perf_map(&path).expect_err("a link is refused");
        assert!(matches!(e, PerfMapError::Exists(_)), "{e}");
        assert!(e.to_string().contains("not ours"), "{e}");
        assert_eq!(std::fs::read(&target).expect("read"), b"keep me");
        // A dangling link is refused as well, and nothing is created.
        let gone = dir.join("absent");
        let dangling = dir.join("perf-3.map");
        std::os::unix::fs::symlink(&gone, &dangling).expect("plant link");
        assert!(matches!(
            create_perf_map(&dangling),
            Err(PerfMapError::Exists(_))
        ));
        assert!(!gone.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn perf_map_names_stay_on_their_line() {
        let syms = [
            JitSymbol {
                name: "m!evil\n1000 10 forged\u{1b}[2J\u{202e}",
                start: 0x1000,
                len: 0x20,
                lines: &[],
            },
            JitSymbol {
                name: "m!ok",
                start: 0x1020,
                len: 0x10,
                lines: &[],
            },
        ];
        let text = perf_map_lines(&syms);
        assert_eq!(
            text,
            "1000 20 m!evil\\x0a1000 10 forged\\x1b[2J\\u{202e}\n1020 10 m!ok\n"
        );
    }
}
