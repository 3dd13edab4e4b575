//! The trap vector: every exception and interrupt of every hart enters
//! here (`stvec`, direct mode), saves the whole register file, and is
//! delivered to the kernel through the hart's `CpuLocal`.
//!
//! Stacks: outside a trap, `sscratch` holds the top of the hart's trap
//! stack; inside one it holds 0. The vector swaps `sp` with `sscratch`; a
//! 0 means the trap hit the handler itself (a nested fault), which then
//! stays on the trap stack below the outer frame. A fault on a bad kernel
//! stack (a guard-page hit) is therefore still handled on a good one. A
//! nested trap that finds less than a frame's room above the trap stack's
//! own guard page (the handler overflowed it) is not saved at all: the
//! vector restarts at the top of the trap stack, reports the overflow and
//! stops the machine, rather than faulting on the guard for ever.
//!
//! Delivery: timer interrupt -> SBI `set_timer(u64::MAX)` then
//! `Interrupt::Timer`; software interrupt -> clear `sip.SSIP` then
//! `Interrupt::Ipi`; external interrupt -> claim at the PLIC; the UART's
//! receive interrupt is masked at the UART, completed, then
//! `Interrupt::Input`; any other source is completed and dropped.
//! Exceptions become a [`TrapFrame`]; the kernel's answer resumes (`sret`
//! to the same `sepc`), redirects (`sepc`, `sp`, `s0`, `a0`, `a1` replaced)
//! or stops the machine. Interrupts stay masked throughout (hardware
//! clears `sstatus.SIE` on entry; the saved `sstatus` is restored by
//! `sret`).
//!
//! Invariants:
//! - INV-TRAP-1: `sscratch` is the hart's trap-stack top whenever the hart
//!   is outside the trap handler, and 0 inside it; it is set before `stvec`
//!   points here.
//! - INV-TRAP-2: every general and floating-point register, `fcsr`,
//!   `sepc` and `sstatus` are restored as saved, except the ones a
//!   `Redirect` names; `tp` in particular is preserved (INV-CPU-1).
//! - INV-TRAP-3: the handler allocates nothing and takes no lock
//!   (INV-HAL-2); faults nested deeper than [`MAX_DEPTH`] stop the machine
//!   with a report instead of overflowing the trap stack.
//! - INV-TRAP-4: vector registers and CSRs are neither saved nor touched:
//!   the kernel is built without V (checked at compile time below), so
//!   the handler cannot change them, and no trap switches to another
//!   context (preemption happens at the epoch check, a call, where the
//!   psABI makes all vector state caller-saved). Interrupted vector code
//!   resumes with its registers, `vl`, `vtype` and `vstart` as they were.
//! - INV-TRAP-5: a frame is only ever saved at or above the hart's trap
//!   stack limit (the bottom of its trap stack plus one frame); a nested
//!   trap below it ends in the overflow report, so a trap-stack overflow
//!   cannot loop on its guard page.

use core::arch::global_asm;
use core::fmt::Write;
use core::mem::{offset_of, size_of};
use core::sync::atomic::Ordering;

use kernel_core::exit;
use kernel_core::hal::{Interrupt, TrapAction, TrapFrame};

use crate::cause::{self, INTERRUPT, IRQ_EXTERNAL, IRQ_SOFTWARE, IRQ_TIMER};
use crate::console::PanicWriter;
use crate::cpu::{self, HartBlock};
use crate::{csr, power, sbi};

/// Traps handled at once on one hart beyond which the machine stops (an
/// interrupt, a fault in its handler, a fault in the fault path).
pub const MAX_DEPTH: usize = 3;

// INV-TRAP-4: the handler must not use vector registers it does not save.
const _: () = assert!(
    !cfg!(target_feature = "v"),
    "the trap path saves no vector state; build the kernel without V"
);

/// The registers of the interrupted context, as the vector saved them.
#[repr(C)]
pub struct Regs {
    /// `x0..x31`; `x[0]` is unused, `x[2]` is the interrupted `sp`.
    pub x: [usize; 32],
    /// `f0..f31`.
    pub f: [u64; 32],
    /// `fcsr`.
    pub fcsr: usize,
    /// `sepc`: where `sret` continues.
    pub sepc: usize,
    /// `sstatus` at the trap.
    pub sstatus: usize,
    /// What `sscratch` gets on the way out (INV-TRAP-1): the trap-stack top
    /// for an outermost trap, 0 for a nested one.
    pub sscratch: usize,
}

/// Bytes of one saved [`Regs`] on the trap stack.
pub const FRAME: usize = size_of::<Regs>();
const _: () = assert!(
    FRAME.is_multiple_of(16),
    "the psABI keeps sp 16-byte aligned"
);

/// The address to put in `stvec`.
pub fn vector() -> usize {
    _vessel_trap_vector as *const () as usize
}

unsafe extern "C" {
    fn _vessel_trap_vector();
}

global_asm!(
    ".section .text",
    // global_asm! does not see the target's features: say that F and D
    // (part of riscv64gc) are there.
    ".option push",
    ".option arch, +f, +d",
    ".globl _vessel_trap_vector",
    ".balign 4",
    "_vessel_trap_vector:",
    // sp <-> sscratch: sp is now the trap-stack top, or 0 when nested.
    "    csrrw sp, sscratch, sp",
    "    bnez sp, 1f",
    // Nested: go back to the interrupted sp (already on the trap stack).
    "    csrrw sp, sscratch, sp",
    // Room for a frame (INV-TRAP-5)? t0 waits in sscratch meanwhile.
    "    csrw sscratch, t0",
    "    ld t0, {o_limit}(tp)",
    "    bltu sp, t0, 3f",
    "    csrrw t0, sscratch, zero",
    "    addi sp, sp, -{frame}",
    "    sd t0, 5*8(sp)",
    "    addi t0, sp, {frame}",
    "    sd t0, 2*8(sp)",
    "    sd zero, {o_scratch}(sp)",
    "    j 2f",
    // Outermost: sscratch holds the interrupted sp; leave 0 there.
    "1:  addi sp, sp, -{frame}",
    "    sd t0, 5*8(sp)",
    "    csrrw t0, sscratch, zero",
    "    sd t0, 2*8(sp)",
    "    addi t0, sp, {frame}",
    "    sd t0, {o_scratch}(sp)",
    "2:  sd x1, 1*8(sp)",
    "    sd x3, 3*8(sp)",
    "    sd x4, 4*8(sp)",
    "    .irp n, 6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    "    sd x\\n, \\n*8(sp)",
    "    .endr",
    "    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    "    fsd f\\n, {o_f}+\\n*8(sp)",
    "    .endr",
    "    frcsr t0",
    "    sd t0, {o_fcsr}(sp)",
    "    csrr t0, sepc",
    "    sd t0, {o_sepc}(sp)",
    "    csrr t0, sstatus",
    "    sd t0, {o_sstatus}(sp)",
    "    mv a0, sp",
    "    call {handler}",
    "    ld t0, {o_fcsr}(sp)",
    "    fscsr t0",
    "    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    "    fld f\\n, {o_f}+\\n*8(sp)",
    "    .endr",
    "    ld t0, {o_sepc}(sp)",
    "    csrw sepc, t0",
    "    ld t0, {o_sstatus}(sp)",
    "    csrw sstatus, t0",
    "    ld t0, {o_scratch}(sp)",
    "    csrw sscratch, t0",
    "    ld x1, 1*8(sp)",
    "    ld x3, 3*8(sp)",
    "    ld x4, 4*8(sp)",
    "    .irp n, 5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    "    ld x\\n, \\n*8(sp)",
    "    .endr",
    "    ld sp, 2*8(sp)",
    "    sret",
    // The trap stack overflowed: report from its top (the outer frames are
    // lost, nothing returns to them).
    "3:  ld sp, {o_top}(tp)",
    "    csrw sscratch, zero",
    "    csrr a0, scause",
    "    csrr a1, sepc",
    "    csrr a2, stval",
    "    call {overflow}",
    "4:  j 4b",
    ".option pop",
    frame = const FRAME,
    o_f = const offset_of!(Regs, f),
    o_fcsr = const offset_of!(Regs, fcsr),
    o_sepc = const offset_of!(Regs, sepc),
    o_sstatus = const offset_of!(Regs, sstatus),
    o_scratch = const offset_of!(Regs, sscratch),
    o_limit = const cpu::TRAP_STACK_LIMIT_OFFSET,
    o_top = const cpu::TRAP_STACK_TOP_OFFSET,
    handler = sym trap_handler,
    overflow = sym trap_stack_overflow,
);

/// The vector's way out when a nested trap finds the trap stack full
/// (INV-TRAP-5).
extern "C" fn trap_stack_overflow(scause: usize, sepc: usize, stval: usize) -> ! {
    let _ = writeln!(
        PanicWriter,
        "fault: trap stack overflow on cpu {}, last scause={scause:#x} pc={sepc:#x} addr={stval:#x}",
        cpu::current().logical(),
    );
    power::shutdown(exit::KERNEL_FAULT)
}

/// Counts this hart's trap nesting while a handler runs.
struct Depth(&'static HartBlock);

impl Drop for Depth {
    fn drop(&mut self) {
        self.0.trap_depth.fetch_sub(1, Ordering::Relaxed);
    }
}

extern "C" fn trap_handler(regs: &mut Regs) {
    let scause = csr::read_scause();
    let stval = csr::read_stval();
    let hart = cpu::current();
    let depth = hart.trap_depth.fetch_add(1, Ordering::Relaxed) + 1;
    let _depth = Depth(hart);
    if depth > MAX_DEPTH {
        let _ = writeln!(
            PanicWriter,
            "fault: {depth} nested traps on cpu {}, last scause={scause:#x} pc={:#x} addr={stval:#x}",
            hart.logical(),
            regs.sepc,
        );
        power::shutdown(exit::KERNEL_FAULT);
    }
    if scause & INTERRUPT != 0 {
        interrupt(hart, scause & !INTERRUPT);
    } else {
        exception(hart, regs, scause, stval);
    }
}

fn interrupt(hart: &HartBlock, code: usize) {
    let irq = match code {
        IRQ_TIMER => {
            sbi::set_timer(u64::MAX);
            Interrupt::Timer
        }
        IRQ_SOFTWARE => {
            csr::clear_ssip();
            Interrupt::Ipi
        }
        IRQ_EXTERNAL => {
            let source = crate::plic::claim();
            if source == 0 {
                return;
            }
            let input = source == crate::plic::source();
            if input {
                // INV-PLIC-2: quiet until a reader rearms it.
                crate::console::mask_input();
            }
            crate::plic::complete(source);
            if !input {
                return;
            }
            Interrupt::Input
        }
        _ => return,
    };
    let local = hart.cpu_local();
    if !local.is_null() {
        // SAFETY: `Cpus::set_cpu_local`'s contract keeps an installed block
        // valid until it is replaced on this hart, which cannot happen while
        // this hart is in its trap handler.
        unsafe { &*local }.deliver_interrupt(irq);
    }
}

fn exception(hart: &HartBlock, regs: &mut Regs, scause: usize, stval: usize) {
    let Some((kind, fault_addr)) = cause::classify(scause, stval) else {
        let _ = writeln!(
            PanicWriter,
            "fault: unexpected exception scause={scause:#x} pc={:#x} stval={stval:#x} on cpu {}",
            regs.sepc,
            hart.logical(),
        );
        power::shutdown(exit::KERNEL_FAULT);
    };
    let frame = TrapFrame {
        kind,
        pc: regs.sepc,
        sp: regs.x[2],
        fp: regs.x[8],
        fault_addr,
    };
    let local = hart.cpu_local();
    if local.is_null() {
        let _ = writeln!(
            PanicWriter,
            "fault: {} pc={:#x} addr={:#x} sp={:#x} on cpu {} (no kernel to handle it)",
            cause::describe(kind),
            frame.pc,
            fault_addr.unwrap_or(0),
            frame.sp,
            hart.logical(),
        );
        power::shutdown(exit::KERNEL_FAULT);
    }
    // SAFETY: as in `interrupt`: the installed block outlives this trap.
    match unsafe { &*local }.deliver_fault(&frame) {
        TrapAction::Resume => {}
        TrapAction::Redirect(ctx) => {
            regs.sepc = ctx.pc;
            regs.x[2] = ctx.sp;
            regs.x[8] = ctx.fp;
            regs.x[10] = ctx.args[0];
            regs.x[11] = ctx.args[1];
        }
        TrapAction::Fatal(code) => power::shutdown(code),
    }
}
