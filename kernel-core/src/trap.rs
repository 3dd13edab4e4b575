//! The one entry for every fault and interrupt the HAL delivers.
//!
//! Faults go to the memory manager first (demand paging, copy-on-write);
//! what it cannot resolve goes to the wasm trap path; the rest is a kernel
//! bug, reported on the panic console with CPU, kind,
//! pc, address and stack pointer, and answered with
//! [`TrapAction::Fatal`]`(`[`exit::KERNEL_FAULT`]`)`.
//!
//! Everything here runs in trap context (INV-HAL-2): no heap, no lock the
//! interrupted code may hold, no panic.

use core::fmt::Write;
use core::sync::atomic::Ordering;

use crate::exit;
use crate::fmtbuf::StackBuf;
use crate::hal::{Console, Interrupt, Platform, ResumeContext, TrapAction, TrapFrame, TrapKind};
use crate::kernel::Kernel;
use crate::mem::FaultOutcome;

/// Fault entry installed in every CPU-local block.
///
/// # Safety
/// `data` points to a live `Kernel<P>` (INV-LOCAL-1).
pub(crate) unsafe fn fault_entry<P: Platform>(data: *const (), frame: &TrapFrame) -> TrapAction {
    // SAFETY: the caller's contract.
    let kernel = unsafe { &*data.cast::<Kernel<'_, P>>() };
    on_fault(kernel, frame)
}

/// Interrupt entry installed in every CPU-local block.
///
/// # Safety
/// `data` points to a live `Kernel<P>` (INV-LOCAL-1).
pub(crate) unsafe fn interrupt_entry<P: Platform>(data: *const (), irq: Interrupt) {
    // SAFETY: the caller's contract.
    let kernel = unsafe { &*data.cast::<Kernel<'_, P>>() };
    let Some(cpu) = kernel.cpu(kernel.hal().current_cpu()) else {
        return;
    };
    let counter = match irq {
        Interrupt::Timer => {
            // The wasm this CPU runs sees its deadline at its next check.
            kernel.advance_epoch();
            cpu.wasm.running.poll();
            &cpu.timer_ticks
        }
        Interrupt::Ipi => &cpu.ipis,
        Interrupt::Input => {
            // Waiting readers are woken by the worker loops (a handler
            // wakes no task: INV-SCHED-2).
            kernel.input_bell().ring();
            &cpu.ipis
        }
    };
    counter.fetch_add(1, Ordering::AcqRel);
}

/// Decide what a fault means: `mem` first (demand paging, copy-on-write);
/// what it does not resolve (guard, hole, protection violation) goes to the
/// wasm trap path, and what that does not claim is a kernel bug.
pub fn on_fault<P: Platform>(kernel: &Kernel<'_, P>, frame: &TrapFrame) -> TrapAction {
    let hal = kernel.hal();
    let cpu_id = hal.current_cpu();
    let outcome = match (frame.kind, frame.fault_addr, kernel.cpu(cpu_id)) {
        (TrapKind::PageFault(access), Some(addr), Some(cpu)) => {
            kernel.vm().resolve(addr, access, &cpu.last_fault)
        }
        _ => FaultOutcome::NotOurs,
    };
    if outcome == FaultOutcome::Resolved {
        return TrapAction::Resume;
    }
    // A fault under the address-space lock is the kernel's bug wherever
    // it happened.
    if outcome != FaultOutcome::LockHeld
        && let Some(action) = wasm_trap(kernel, cpu_id, frame, outcome)
    {
        return action;
    }
    let why = match frame.kind {
        TrapKind::PageFault(_) => outcome.why(),
        _ => "not a resolvable fault",
    };
    report(hal, cpu_id, frame, why);
    TrapAction::Fatal(exit::KERNEL_FAULT)
}

/// If the fault is a wasm trap (a trap site of a registered code object,
/// hit while this CPU is inside wasm), record its kind and backtrace in the
/// CPU's wasm state and redirect to the saved entry context. A memory
/// access that `mem` could not give a frame ([`FaultOutcome::OutOfMemory`])
/// traps as [`TrapKind::OutOfMemory`](crate::wasm::TrapKind::OutOfMemory),
/// whatever the site's own kind: the access was in bounds.
///
/// Trap-context safe (INV-HAL-2): reads atomics, walks frame pointers only
/// between the faulting `sp` and the entry `sp`, looks code up with
/// `try_read` (INV-CODE-3).
fn wasm_trap<P: Platform>(
    kernel: &Kernel<'_, P>,
    cpu_id: usize,
    frame: &TrapFrame,
    outcome: FaultOutcome,
) -> Option<TrapAction> {
    let cpu = kernel.cpu(cpu_id)?;
    let w = &cpu.wasm;
    if !w.active.load(Ordering::Acquire) {
        return None;
    }
    let mut kind = kernel.code().trap_at(frame.pc)?;
    if outcome == FaultOutcome::OutOfMemory {
        kind = crate::wasm::TrapKind::OutOfMemory;
    }
    let [pc, sp, fp] = w.saved();
    let code = crate::wasm::vm::trap_code(kind);
    w.trap_kind.store(code, Ordering::Relaxed);
    let mut depth = 0;
    w.trap_pcs[0].store(frame.pc, Ordering::Relaxed);
    depth += 1;
    let word = core::mem::size_of::<usize>();
    let mut cur = frame.fp;
    let mut cut = false;
    loop {
        if cur < frame.sp || cur >= sp || !cur.is_multiple_of(word) {
            break;
        }
        // SAFETY: `cur` lies word-aligned between the faulting sp and the
        // entry sp (the stack of the wasm call, mapped and live, INV-ARCH-1).
        let (next, ret) = unsafe { crate::arch::frame_link(cur) };
        if !kernel.code().contains(ret) {
            break;
        }
        // One more wasm frame than the record holds: say it was cut.
        if depth == crate::wasm::entry::MAX_TRAP_FRAMES {
            cut = true;
            break;
        }
        w.trap_pcs[depth].store(ret - 1, Ordering::Relaxed);
        depth += 1;
        if next <= cur {
            break;
        }
        cur = next;
    }
    w.trap_cut.store(cut, Ordering::Relaxed);
    w.trap_depth.store(depth, Ordering::Release);
    w.active.store(false, Ordering::Release);
    Some(TrapAction::Redirect(ResumeContext {
        pc,
        sp,
        fp,
        args: [0, 0],
    }))
}

/// Print the one-line report of an unresolvable fault.
fn report(console: &impl Console, cpu: usize, frame: &TrapFrame, why: &str) {
    let mut line = StackBuf::<256>::new();
    let _ = write!(
        line,
        "kernel fault: {:?} on cpu {cpu} at pc={:#x}",
        frame.kind, frame.pc
    );
    match frame.fault_addr {
        Some(addr) => {
            let _ = write!(line, " addr={addr:#x}");
        }
        None => {
            let _ = write!(line, " addr=none");
        }
    }
    let _ = writeln!(line, " sp={:#x} ({why})", frame.sp);
    console.panic_write(line.as_bytes());
}
