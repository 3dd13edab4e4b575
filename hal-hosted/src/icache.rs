//! Instruction-cache maintenance after code is written.
//!
//! This module owns nothing but the procedure. On x86_64 instruction fetch
//! is coherent with data writes (Intel SDM vol. 3A §8.1.3, cross-modifying
//! code: the writer's stores and a serializing event on the executing CPU
//! suffice, and a new mapping or a signal return is one), so there is nothing
//! to do. On aarch64 the writer cleans the data cache to the point of
//! unification and invalidates the instruction cache by address (both
//! broadcast to the inner-shareable domain), then every other thread of the
//! process must execute a context synchronization event: that is
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)` (Arm ARM B2.2.5,
//! "Concurrent modification and execution of instructions").
//!
//! Invariant INV-ICACHE-1: on aarch64, [`register`] has succeeded before any
//! [`sync`] (the machine calls it at construction).

use crate::HostError;

/// Register the process for the core-serializing membarrier (aarch64 only).
pub(crate) fn register() -> Result<(), HostError> {
    #[cfg(target_arch = "aarch64")]
    {
        use rustix::thread::{MembarrierCommand, membarrier};
        membarrier(MembarrierCommand::RegisterPrivateExpeditedSyncCore)
            .map_err(HostError::Membarrier)?;
    }
    Ok(())
}

/// Make instructions written to `va..va + len` visible to instruction fetch
/// on every thread of the process.
pub(crate) fn sync(va: usize, len: usize) {
    #[cfg(target_arch = "aarch64")]
    {
        if len == 0 {
            return;
        }
        let ctr: u64;
        // SAFETY: reading CTR_EL0 is allowed at EL0 on Linux (SCTLR_EL1.UCT).
        unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
        // CTR_EL0.DminLine (bits 19:16) and IminLine (bits 3:0): log2 of
        // the smallest line size in words.
        let dline = 4usize << ((ctr >> 16) & 0xf);
        let iline = 4usize << (ctr & 0xf);
        let end = va.saturating_add(len);
        let mut addr = va & !(dline - 1);
        while addr < end {
            // SAFETY: cleaning a cache line by VA changes no architectural
            // state; the range is mapped and readable (the caller published
            // it read + execute), and Linux allows DC CVAU at EL0
            // (SCTLR_EL1.UCI).
            unsafe { core::arch::asm!("dc cvau, {}", in(reg) addr, options(nostack)) };
            addr += dline;
        }
        // SAFETY: a barrier has no operands.
        unsafe { core::arch::asm!("dsb ish", options(nostack)) };
        let mut addr = va & !(iline - 1);
        while addr < end {
            // SAFETY: as for DC CVAU; IC IVAU at EL0 is allowed by UCI too.
            unsafe { core::arch::asm!("ic ivau, {}", in(reg) addr, options(nostack)) };
            addr += iline;
        }
        // SAFETY: barriers have no operands.
        unsafe { core::arch::asm!("dsb ish", "isb", options(nostack)) };
        // INV-ICACHE-1: registered at construction, so this cannot fail
        // with EPERM; other errors cannot happen for a valid command.
        let _ =
            rustix::thread::membarrier(rustix::thread::MembarrierCommand::PrivateExpeditedSyncCore);
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        let _ = (va, len);
    }
}
