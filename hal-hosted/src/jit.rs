//! JIT code for debuggers and profilers: gdb's JIT interface and the perf
//! map (`kernel_core::hal::JitDebug` for [`Hosted`]).
//!
//! gdb's protocol: the process keeps a global `__jit_debug_descriptor` with a
//! doubly linked list of entries, each pointing at an in-memory object file
//! (built by `elf`, with `.debug_line` from `dwarf`). After changing the
//! list it sets `action_flag` and `relevant_entry` and calls
//! `__jit_debug_register_code`, on which gdb keeps a breakpoint; gdb then
//! reads the descriptor and loads or drops that object's symbols.
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
//! - INV-JIT-H-1: the descriptor and every entry are changed only while
//!   `ENTRIES` is locked, and `__jit_debug_register_code` is called under
//!   that lock, so gdb never sees a half-linked list and two machines never
//!   interleave their updates.
//! - INV-JIT-H-2: an entry and its object bytes are boxed and stay in
//!   `ENTRIES` (so at a fixed address) while linked in the descriptor's list;
//!   they are unlinked before they are freed.

use std::cell::UnsafeCell;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kernel_core::hal::{JitCode, JitDebug, JitSymbol, VirtRange};

use crate::Hosted;
use crate::{dwarf, elf};

/// `jit_actions_t`.
const JIT_NOACTION: u32 = 0;
const JIT_REGISTER_FN: u32 = 1;
const JIT_UNREGISTER_FN: u32 = 2;

/// `struct jit_code_entry`.
#[repr(C)]
struct CodeEntry {
    next: *mut CodeEntry,
    prev: *mut CodeEntry,
    symfile_addr: *const u8,
    symfile_size: u64,
}

/// `struct jit_descriptor`.
#[repr(C)]
struct Descriptor {
    version: u32,
    action_flag: u32,
    relevant_entry: *mut CodeEntry,
    first_entry: *mut CodeEntry,
}

/// The descriptor, with interior mutability so that it can be a plain
/// `static` that gdb finds by name.
#[repr(transparent)]
pub struct DescriptorCell(UnsafeCell<Descriptor>);

// SAFETY: every access goes through `ENTRIES`' lock (INV-JIT-H-1); gdb reads
// it only while the process is stopped.
unsafe impl Sync for DescriptorCell {}

/// gdb's JIT descriptor. The name and layout are the protocol's.
#[unsafe(no_mangle)]
pub static __jit_debug_descriptor: DescriptorCell = DescriptorCell(UnsafeCell::new(Descriptor {
    version: 1,
    action_flag: JIT_NOACTION,
    relevant_entry: std::ptr::null_mut(),
    first_entry: std::ptr::null_mut(),
}));

/// gdb keeps a breakpoint here and reads the descriptor when it is hit.
/// Never inlined, and its body is opaque to the optimiser, so every call
/// stays.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn __jit_debug_register_code() {
    std::hint::black_box(&__jit_debug_descriptor);
}

/// One registered object: the entry gdb links to and the bytes it points at.
struct Registered {
    entry: Box<CodeEntry>,
    _object: Box<[u8]>,
}

// SAFETY: the raw pointers in `entry` point into `ENTRIES`' own boxes and are
// only followed under its lock (INV-JIT-H-1).
unsafe impl Send for Registered {}

/// Registered objects by code start address (process-wide: addresses of
/// live code never collide, even across machines).
static ENTRIES: Mutex<BTreeMap<usize, Registered>> = Mutex::new(BTreeMap::new());

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

fn register(code: &JitCode<'_>) {
    let base = code.range.start as u64;
    let symbols: Vec<elf::Symbol<'_>> = code
        .symbols
        .iter()
        .map(|s| elf::Symbol {
            name: s.name,
            offset: s.start as u64 - base,
            size: s.len as u64,
        })
        .collect();
    let debug = dwarf::sections(code);
    let object: Box<[u8]> = elf::build(base, code.range.len as u64, &symbols, &debug).into();
    let mut entry = Box::new(CodeEntry {
        next: std::ptr::null_mut(),
        prev: std::ptr::null_mut(),
        symfile_addr: object.as_ptr(),
        symfile_size: object.len() as u64,
    });
    let mut entries = ENTRIES.lock().unwrap_or_else(|e| e.into_inner());
    // Replacing an entry at the same start would leave it linked: retire it
    // first (only reachable if a platform skipped `code_retired`).
    if let Some(old) = entries.remove(&code.range.start) {
        unlink(old);
    }
    let desc = __jit_debug_descriptor.0.get();
    let entry_ptr: *mut CodeEntry = &raw mut *entry;
    // SAFETY: INV-JIT-H-1: we hold the lock; `first_entry` is null or an
    // entry boxed in `ENTRIES` (INV-JIT-H-2).
    unsafe {
        let first = (*desc).first_entry;
        entry.next = first;
        if !first.is_null() {
            (*first).prev = entry_ptr;
        }
        (*desc).first_entry = entry_ptr;
        (*desc).relevant_entry = entry_ptr;
        (*desc).action_flag = JIT_REGISTER_FN;
    }
    entries.insert(
        code.range.start,
        Registered {
            entry,
            _object: object,
        },
    );
    __jit_debug_register_code();
    drop(entries);
}

/// Unlink `old` from the descriptor's list and tell gdb. Caller holds
/// `ENTRIES`' lock (INV-JIT-H-1).
fn unlink(mut old: Registered) {
    let desc = __jit_debug_descriptor.0.get();
    let entry: *mut CodeEntry = &raw mut *old.entry;
    // SAFETY: INV-JIT-H-1/2: the lock is held by our caller, `entry` is
    // linked and its neighbours are live boxed entries.
    unsafe {
        let (next, prev) = ((*entry).next, (*entry).prev);
        if prev.is_null() {
            (*desc).first_entry = next;
        } else {
            (*prev).next = next;
        }
        if !next.is_null() {
            (*next).prev = prev;
        }
        (*desc).relevant_entry = entry;
        (*desc).action_flag = JIT_UNREGISTER_FN;
    }
    __jit_debug_register_code();
    // gdb has dropped the object: free it (INV-JIT-H-2).
    drop(old);
}

fn unregister(range: VirtRange) {
    let mut entries = ENTRIES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(old) = entries.remove(&range.start) {
        unlink(old);
    }
}

impl JitDebug for Hosted {
    fn jit_debug_enabled(&self) -> bool {
        true
    }

    fn code_published(&self, code: &JitCode<'_>) {
        register(code);
        write_perf_map(code);
    }

    fn code_retired(&self, range: VirtRange) {
        unregister(range);
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

    fn listed() -> Vec<usize> {
        let _entries = ENTRIES.lock().unwrap();
        let mut out = Vec::new();
        // SAFETY: the lock is held (INV-JIT-H-1).
        unsafe {
            let mut e = (*__jit_debug_descriptor.0.get()).first_entry;
            while !e.is_null() {
                out.push((*e).symfile_size as usize);
                e = (*e).next;
            }
        }
        out
    }

    #[test]
    fn register_and_unregister_keep_the_list_linked() {
        // Addresses far from anything real, so parallel tests that boot
        // machines never publish code there.
        let ranges: Vec<VirtRange> = (0..3)
            .map(|i| VirtRange {
                start: 0x7e00_0000_0000 + i * 0x1000,
                len: 0x1000,
            })
            .collect();
        let before = listed().len();
        for r in &ranges {
            let syms = [JitSymbol {
                name: "t!f",
                start: r.start,
                len: 16,
                lines: &[(0, 1), (4, 3)],
            }];
            register(&JitCode {
                range: *r,
                module: "t",
                symbols: &syms,
            });
        }
        assert!(listed().len() >= before + 3);
        unregister(ranges[1]);
        unregister(ranges[0]);
        unregister(ranges[2]);
        let flag = {
            let _g = ENTRIES.lock().unwrap();
            // SAFETY: read under the lock (INV-JIT-H-1).
            unsafe { (*__jit_debug_descriptor.0.get()).action_flag }
        };
        assert!(flag == JIT_UNREGISTER_FN || flag == JIT_REGISTER_FN);
        let keys: Vec<usize> = ENTRIES.lock().unwrap().keys().copied().collect();
        assert!(ranges.iter().all(|r| !keys.contains(&r.start)));
    }
}
