//! Supervisor CSRs and the few privileged instructions the HAL uses, as
//! small inline functions (hand-written `asm!` rather than the `riscv`
//! crate: a dozen one-instruction wrappers are easier to audit here than a
//! dependency whose API moves between releases).
//!
//! Every function acts on the calling hart only. Reference: RISC-V
//! Privileged Architecture, chapter "Supervisor-Level ISA".
//!
//! INV-CSR-1: none of these functions touches memory; the ordering of
//! page-table stores against translation is given by `sfence.vma` itself
//! (which orders prior stores, privileged spec "Supervisor Memory-Management
//! Fence Instruction"), and against instruction fetch by `fence.i`.

use core::arch::asm;

/// `sstatus.SIE`: supervisor interrupts enabled.
pub const SSTATUS_SIE: usize = 1 << 1;
/// `sstatus.FS` = Initial (01): the FPU is usable.
pub const SSTATUS_FS_INITIAL: usize = 1 << 13;
/// `sstatus.VS` = Initial (01): the vector unit is usable.
pub const SSTATUS_VS_INITIAL: usize = 1 << 9;
/// `sie.SSIE` / `sip.SSIP`: supervisor software interrupt (IPIs).
pub const SIE_SSIE: usize = 1 << 1;
/// `sie.STIE`: supervisor timer interrupt.
pub const SIE_STIE: usize = 1 << 5;
/// `sie.SEIE`: supervisor external interrupt (the PLIC).
pub const SIE_SEIE: usize = 1 << 9;

/// Clear `sstatus.SIE` and return whether it was set.
#[inline(always)]
pub fn irq_save() -> bool {
    let old: usize;
    // SAFETY: masking interrupts on this hart has no memory effects (INV-CSR-1).
    unsafe { asm!("csrrci {0}, sstatus, 2", out(reg) old, options(nostack)) };
    old & SSTATUS_SIE != 0
}

/// Set `sstatus.SIE`; a pending enabled interrupt traps at once.
#[inline(always)]
pub fn irq_enable() {
    // SAFETY: unmasking interrupts has no memory effects; the trap vector is
    // installed before any caller can get here (boot order).
    unsafe { asm!("csrsi sstatus, 2", options(nostack)) };
}

/// Whether `sstatus.SIE` is set.
#[inline(always)]
pub fn irqs_enabled() -> bool {
    read_sstatus() & SSTATUS_SIE != 0
}

/// Read `sstatus`.
#[inline(always)]
pub fn read_sstatus() -> usize {
    let v: usize;
    // SAFETY: reading a CSR has no side effects.
    unsafe { asm!("csrr {0}, sstatus", out(reg) v, options(nomem, nostack)) };
    v
}

/// Set bits in `sstatus`.
#[inline(always)]
pub fn set_sstatus(bits: usize) {
    // SAFETY: callers set FS or VS (enable the FPU or the vector unit) or
    // SIE; none touches memory.
    unsafe { asm!("csrs sstatus, {0}", in(reg) bits, options(nostack)) };
}

/// Set bits in `sie` (enable interrupt sources).
#[inline(always)]
pub fn set_sie(bits: usize) {
    // SAFETY: enabling a source has no memory effects; delivery still needs SIE.
    unsafe { asm!("csrs sie, {0}", in(reg) bits, options(nomem, nostack)) };
}

/// Clear `sip.SSIP` (acknowledge an IPI).
#[inline(always)]
pub fn clear_ssip() {
    // SAFETY: clearing a pending bit has no memory effects.
    unsafe { asm!("csrc sip, {0}", in(reg) SIE_SSIE, options(nomem, nostack)) };
}

/// Write `stvec` (direct mode: the address must be 4-byte aligned).
#[inline(always)]
pub fn write_stvec(addr: usize) {
    // SAFETY: callers pass the trap vector, which is 4-byte aligned and
    // handles every trap.
    unsafe { asm!("csrw stvec, {0}", in(reg) addr, options(nomem, nostack)) };
}

/// Write `sscratch`.
#[inline(always)]
pub fn write_sscratch(v: usize) {
    // SAFETY: `sscratch` is only interpreted by the trap vector, which the
    // callers keep consistent (the trap module's INV-TRAP-1).
    unsafe { asm!("csrw sscratch, {0}", in(reg) v, options(nomem, nostack)) };
}

/// Read `scause`.
#[inline(always)]
pub fn read_scause() -> usize {
    let v: usize;
    // SAFETY: reading a CSR has no side effects.
    unsafe { asm!("csrr {0}, scause", out(reg) v, options(nomem, nostack)) };
    v
}

/// Read `stval`.
#[inline(always)]
pub fn read_stval() -> usize {
    let v: usize;
    // SAFETY: reading a CSR has no side effects.
    unsafe { asm!("csrr {0}, stval", out(reg) v, options(nomem, nostack)) };
    v
}

/// Read the `time` CSR (ticks of the timebase, shared by every hart).
#[inline(always)]
pub fn rdtime() -> u64 {
    let v: u64;
    // SAFETY: reading the time counter has no side effects; OpenSBI grants
    // S-mode access (mcounteren.TM) or emulates it.
    unsafe { asm!("rdtime {0}", out(reg) v, options(nomem, nostack)) };
    v
}

/// Switch this hart to the page tables selected by `satp` and drop every
/// cached translation.
///
/// # Safety
/// The new tables must map the code, stack and data this hart uses next
/// at the addresses it uses them (the identity map does).
#[inline(always)]
pub unsafe fn write_satp(satp: u64) {
    // SAFETY: the caller guarantees the new translation keeps this hart's
    // code and data where they are.
    unsafe { asm!("csrw satp, {0}", "sfence.vma", in(reg) satp, options(nostack)) };
}

/// Read `satp`.
#[inline(always)]
pub fn read_satp() -> u64 {
    let v: u64;
    // SAFETY: reading a CSR has no side effects.
    unsafe { asm!("csrr {0}, satp", out(reg) v, options(nomem, nostack)) };
    v
}

/// `sfence.vma` for one address: prior page-table stores become visible
/// to this hart's translation of `va`.
#[inline(always)]
pub fn sfence_vma(va: usize) {
    // SAFETY: a fence has no effect beyond ordering (INV-CSR-1).
    unsafe { asm!("sfence.vma {0}, zero", in(reg) va, options(nostack)) };
}

/// `sfence.vma` for every address.
#[inline(always)]
pub fn sfence_vma_all() {
    // SAFETY: a fence has no effect beyond ordering (INV-CSR-1).
    unsafe { asm!("sfence.vma", options(nostack)) };
}

/// `fence.i`: prior stores become visible to this hart's instruction fetch
/// (Zifencei).
#[inline(always)]
pub fn fence_i() {
    // SAFETY: a fence has no effect beyond ordering (INV-CSR-1).
    unsafe { asm!("fence.i", options(nostack)) };
}

/// `wfi`: wait until an interrupt is pending (whatever `sstatus.SIE` says).
#[inline(always)]
pub fn wfi() {
    // SAFETY: waiting has no memory effects.
    unsafe { asm!("wfi", options(nomem, nostack)) };
}
