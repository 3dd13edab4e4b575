//! The process table as a debugger sees it: [`VESSEL_PROCESS_TABLE`], one
//! fixed, unmangled array of slots that gdb reads from memory
//! (`vessel-procs` in `scripts/vessel-gdb.py`), on hosted and through
//! QEMU's gdb stub alike, without calling into the kernel.
//!
//! This is the kernel's one piece of global state besides gdb's own JIT
//! descriptor, and for the same reason: a debugger attached to a stopped
//! machine needs a symbol to start from. It is written, never read, by
//! the kernel; every kernel of a process (tests run several) shares it,
//! each row carrying its kernel's id.
//!
//! Invariants:
//! - INV-DEBUG-1: a slot with a nonzero `pid` belongs to one live process
//!   record (claimed by a compare-and-swap from 0, given back when the
//!   record is dropped); a process that finds no free slot is not listed,
//!   and nothing else changes for it.
//! - INV-DEBUG-2: the layout is `repr(C)` and versioned: a header of two
//!   `u32` (version, slot count) and then [`DEBUG_SLOTS`] slots of 64
//!   bytes (kernel id `u64`; pid, parent, state, CPU `u32`; CPU time ns
//!   `u64`; name, 32 bytes NUL-padded). The script checks the version.

use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

/// Slots of the table: processes listed at once, across kernels.
pub const DEBUG_SLOTS: usize = 1024;

/// The layout's version (INV-DEBUG-2).
const VERSION: u32 = 1;

/// What a listed process is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum DebugState {
    /// Running or ready to run.
    Runnable = 0,
    /// In a waiting system call.
    Waiting = 1,
    /// Ended, not yet reaped.
    Ended = 2,
}

/// One process, as the debugger reads it.
#[derive(Debug)]
#[repr(C)]
pub struct DebugSlot {
    kernel: AtomicU64,
    pid: AtomicU32,
    parent: AtomicU32,
    state: AtomicU32,
    cpu: AtomicU32,
    cpu_ns: AtomicU64,
    name: [AtomicU8; 32],
}

impl DebugSlot {
    const fn new() -> Self {
        Self {
            kernel: AtomicU64::new(0),
            pid: AtomicU32::new(0),
            parent: AtomicU32::new(0),
            state: AtomicU32::new(0),
            cpu: AtomicU32::new(u32::MAX),
            cpu_ns: AtomicU64::new(0),
            name: [const { AtomicU8::new(0) }; 32],
        }
    }
}

/// The table gdb reads (INV-DEBUG-2).
#[derive(Debug)]
#[repr(C)]
pub struct DebugTable {
    version: u32,
    slots: u32,
    entries: [DebugSlot; DEBUG_SLOTS],
}

/// The process table a debugger reads: see the module docs.
#[unsafe(no_mangle)]
#[used]
pub static VESSEL_PROCESS_TABLE: DebugTable = DebugTable {
    version: VERSION,
    slots: DEBUG_SLOTS as u32,
    entries: [const { DebugSlot::new() }; DEBUG_SLOTS],
};

/// A process's slot, given back when dropped (INV-DEBUG-1).
#[derive(Debug)]
pub(crate) struct DebugEntry {
    slot: Option<&'static DebugSlot>,
}

impl DebugEntry {
    /// Claim a slot for process `pid` of kernel `kernel`, named `name`,
    /// started by `parent` (0: none); unlisted when every slot is taken.
    pub(crate) fn claim(kernel: u64, pid: u32, parent: u32, name: &str) -> Self {
        let slot = VESSEL_PROCESS_TABLE.entries.iter().find(|s| {
            s.pid
                .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        if let Some(s) = slot {
            s.kernel.store(kernel, Ordering::Relaxed);
            s.parent.store(parent, Ordering::Relaxed);
            s.state
                .store(DebugState::Runnable as u32, Ordering::Relaxed);
            s.cpu.store(u32::MAX, Ordering::Relaxed);
            s.cpu_ns.store(0, Ordering::Relaxed);
            let bytes = name.as_bytes();
            for (i, b) in s.name.iter().enumerate() {
                b.store(bytes.get(i).copied().unwrap_or(0), Ordering::Relaxed);
            }
        }
        Self { slot }
    }

    /// Record what the process is doing.
    pub(crate) fn set_state(&self, state: DebugState) {
        if let Some(s) = self.slot {
            s.state.store(state as u32, Ordering::Relaxed);
        }
    }

    /// Record the CPU it runs on and the CPU time it has used.
    pub(crate) fn set_cpu(&self, cpu: usize, cpu_ns: u64) {
        if let Some(s) = self.slot {
            s.cpu
                .store(u32::try_from(cpu).unwrap_or(u32::MAX), Ordering::Relaxed);
            s.cpu_ns.store(cpu_ns, Ordering::Relaxed);
        }
    }
}

impl Drop for DebugEntry {
    fn drop(&mut self) {
        if let Some(s) = self.slot.take() {
            s.pid.store(0, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn a_slot_is_claimed_filled_and_given_back() {
        let e = DebugEntry::claim(77, 4242, 1, "a-rather-long-process-name-beyond-32-bytes");
        let slot = e.slot.expect("a free slot");
        assert_eq!(slot.pid.load(Ordering::Relaxed), 4242);
        assert_eq!(slot.kernel.load(Ordering::Relaxed), 77);
        let name: Vec<u8> = slot
            .name
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(&name[..], &b"a-rather-long-process-name-beyon"[..]);
        e.set_state(DebugState::Waiting);
        assert_eq!(slot.state.load(Ordering::Relaxed), 1);
        drop(e);
        assert_eq!(slot.pid.load(Ordering::Relaxed), 0);
        assert_eq!(core::mem::size_of::<DebugSlot>(), 64);
    }
}
