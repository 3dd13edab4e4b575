//! Per-CPU wasm entry state: the context a trap unwinds to and what the
//! trap path recorded about the trap.
//!
//! Invariants:
//! - INV-ENTRY-1: `saved` holds `[pc, sp, fp]` of the innermost active
//!   entry into wasm on this CPU while `active` is true; only this CPU
//!   writes it (the entry routine and the code that restores it after a
//!   nested call).
//! - INV-ENTRY-2: the trap path writes `trap_kind`, `trap_pcs`,
//!   `trap_cut` and `trap_depth` only with `active` set, and clears `active` before
//!   redirecting, so a second fault before the entry code runs again is
//!   not taken for a wasm trap.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

/// Most wasm frames a trap backtrace records.
pub const MAX_TRAP_FRAMES: usize = 64;

/// One CPU's wasm entry and trap record.
pub struct CpuWasm {
    pub(crate) saved: [AtomicUsize; 3],
    pub(crate) active: AtomicBool,
    pub(crate) trap_kind: AtomicU32,
    pub(crate) trap_pcs: [AtomicUsize; MAX_TRAP_FRAMES],
    pub(crate) trap_depth: AtomicUsize,
    /// Whether the stack held more wasm frames than `trap_pcs` recorded.
    pub(crate) trap_cut: AtomicBool,
    /// The interrupt cell of the process this CPU runs (its timer
    /// interrupt polls it).
    pub(crate) running: super::interrupt::Running,
}

impl Default for CpuWasm {
    fn default() -> Self {
        Self {
            saved: [const { AtomicUsize::new(0) }; 3],
            active: AtomicBool::new(false),
            trap_kind: AtomicU32::new(0),
            trap_pcs: [const { AtomicUsize::new(0) }; MAX_TRAP_FRAMES],
            trap_depth: AtomicUsize::new(0),
            trap_cut: AtomicBool::new(false),
            running: super::interrupt::Running::default(),
        }
    }
}

impl CpuWasm {
    /// The saved `[pc, sp, fp]`.
    pub(crate) fn saved(&self) -> [usize; 3] {
        [0, 1, 2].map(|i| self.saved[i].load(Ordering::Relaxed))
    }

    /// Whether this CPU is inside wasm (an entry context is saved).
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Restore a saved `[pc, sp, fp]` (after a nested entry returned).
    pub(crate) fn restore(&self, v: [usize; 3], active: bool) {
        for (slot, x) in self.saved.iter().zip(v) {
            slot.store(x, Ordering::Relaxed);
        }
        self.active.store(active, Ordering::Release);
    }

    /// Whether the last trap's backtrace was cut at [`MAX_TRAP_FRAMES`].
    pub(crate) fn trap_cut(&self) -> bool {
        self.trap_cut.load(Ordering::Relaxed)
    }

    /// The pcs the trap path recorded, innermost first.
    pub(crate) fn trap_pcs(&self) -> impl Iterator<Item = usize> + '_ {
        let n = self.trap_depth.load(Ordering::Acquire).min(MAX_TRAP_FRAMES);
        self.trap_pcs[..n].iter().map(|p| p.load(Ordering::Relaxed))
    }
}
