//! Telling debuggers and profilers about JIT code.
//!
//! The code registry (`wasm::code`) reports every code object it publishes
//! and every one it retires through [`JitDebug`], with a symbol per function
//! (the naming policy is the kernel's: `<module>!<name>`). The platform
//! decides what to do with it:
//! - hosted: registers an in-memory ELF object with gdb through its JIT
//!   interface ([`crate::gdb_jit`]) and, when asked, appends the symbols to
//!   the `perf` map `/tmp/perf-<pid>.map`.
//! - riscv: with the command-line word `debug=jit`, the same JIT interface,
//!   within a share of the heap: gdb-multiarch attached to QEMU's stub
//!   reads the objects from kernel memory. Without it, nothing (JIT code
//!   shows as bare addresses in gdb, which the kernel's trap backtraces
//!   resolve instead).
//!
//! Invariants:
//! - INV-JIT-1: `code_published` is called after a code object is mapped
//!   executable and registered; `code_retired` with the same range before
//!   it is unmapped. Every published range is retired exactly once.
//! - INV-JIT-2: neither method is called from trap context; both may
//!   allocate and take locks.

use super::VirtRange;

/// One function of a published code object.
#[derive(Clone, Copy, Debug)]
pub struct JitSymbol<'a> {
    /// Symbol name, e.g. `calc!inner` or `calc!func[3]`.
    pub name: &'a str,
    /// Absolute address of its first instruction.
    pub start: usize,
    /// Length of its code in bytes.
    pub len: usize,
    /// `(code offset in the function, wasm byte offset in the module)`,
    /// sorted by code offset; empty when unknown (trampolines).
    pub lines: &'a [(u32, u32)],
}

/// A code object as the platform sees it.
#[derive(Clone, Copy, Debug)]
pub struct JitCode<'a> {
    /// The executable range.
    pub range: VirtRange,
    /// The name of the module (or store) the code came from.
    pub module: &'a str,
    /// Its functions, sorted by address.
    pub symbols: &'a [JitSymbol<'a>],
}

/// Where JIT code is announced. Every method has a no-op default.
pub trait JitDebug {
    /// Whether anything listens: when `false` the kernel does not build
    /// symbol names at all.
    ///
    /// - hosted: `true`.
    /// - riscv: whether the command line has `debug=jit`.
    fn jit_debug_enabled(&self) -> bool {
        false
    }

    /// `code` has just become executable (INV-JIT-1).
    ///
    /// - hosted: builds an ELF object with `.symtab` and `.debug_line` for
    ///   it and registers it with gdb; writes perf map lines when enabled.
    /// - riscv: the same object and registration, unless the live objects
    ///   would pass the heap share or the heap cannot hold it (skipped and
    ///   counted: the code is unaffected).
    fn code_published(&self, code: &JitCode<'_>) {
        let _ = code;
    }

    /// The code object at `range` is about to be unmapped (INV-JIT-1).
    ///
    /// - hosted and riscv: unregisters its ELF object from gdb, if it was
    ///   registered, and frees it.
    fn code_retired(&self, range: VirtRange) {
        let _ = range;
    }
}
