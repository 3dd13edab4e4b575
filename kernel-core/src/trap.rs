//! The one entry for every fault and interrupt the HAL delivers.
//!
//! Faults go to the memory manager first (demand paging); what it cannot
//! resolve is a kernel bug, reported on the panic console with CPU, kind,
//! pc, address and stack pointer, and answered with
//! [`TrapAction::Fatal`]`(`[`exit::KERNEL_FAULT`]`)`.
//!
//! Everything here runs in trap context (INV-HAL-2): no heap, no lock the
//! interrupted code may hold, no panic.

use core::fmt::Write;
use core::sync::atomic::Ordering;

use crate::exit;
use crate::fmtbuf::StackBuf;
use crate::hal::{Console, Interrupt, Platform, TrapAction, TrapFrame, TrapKind};
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
        Interrupt::Timer => &cpu.timer_ticks,
        Interrupt::Ipi => &cpu.ipis,
    };
    counter.fetch_add(1, Ordering::AcqRel);
}

/// Decide what a fault means.
pub fn on_fault<P: Platform>(kernel: &Kernel<'_, P>, frame: &TrapFrame) -> TrapAction {
    let hal = kernel.hal();
    let cpu_id = hal.current_cpu();
    let why = match (frame.kind, frame.fault_addr, kernel.cpu(cpu_id)) {
        (TrapKind::PageFault(access), Some(addr), Some(cpu)) => {
            match kernel
                .demand()
                .resolve(hal, kernel.frames(), addr, access, &cpu.last_fault)
            {
                FaultOutcome::Resolved => return TrapAction::Resume,
                FaultOutcome::NotOurs => "no mapping",
                FaultOutcome::Violation => "access not allowed by the region",
                FaultOutcome::OutOfMemory => "out of memory resolving a demand fault",
            }
        }
        _ => "not a resolvable fault",
    };
    report(hal, cpu_id, frame, why);
    TrapAction::Fatal(exit::KERNEL_FAULT)
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
