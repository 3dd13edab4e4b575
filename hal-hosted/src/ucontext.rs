//! Reading and rewriting the register state a signal interrupted.
//!
//! This module owns the only ISA-specific code of the crate: where pc, sp,
//! the frame pointer and the first two argument registers live in the
//! `ucontext_t` the host hands an `SA_SIGINFO` handler, and how a page fault
//! tells its access kind. What it writes is loaded by `rt_sigreturn` when the
//! handler returns.
//!
//! Invariant INV-UCTX-1: every function here is given the `ucontext` pointer
//! of the signal handler currently running on this thread, and runs before
//! that handler returns.

use core::ffi::c_void;

use kernel_core::hal::{Access, ResumeContext};

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("hal-hosted supports x86_64 and aarch64 Linux hosts only");

/// The registers of an interrupted context that a [`kernel_core::hal::TrapFrame`] needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Regs {
    pub(crate) pc: usize,
    pub(crate) sp: usize,
    pub(crate) fp: usize,
    /// The access kind of a page fault; meaningless for other signals.
    pub(crate) access: Access,
}

/// Read the interrupted registers.
///
/// # Safety
/// INV-UCTX-1: `uc` is the third argument of the running `SA_SIGINFO`
/// handler.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn read(uc: *const c_void) -> Regs {
    // SAFETY: INV-UCTX-1: the host passed a valid, aligned `ucontext_t`.
    let gregs = unsafe { &(*uc.cast::<libc::ucontext_t>()).uc_mcontext.gregs };
    // The page-fault error code (Intel SDM vol. 3A §4.7): bit 1 set for a
    // write, bit 4 set for an instruction fetch.
    let err = gregs[libc::REG_ERR as usize] as u64;
    let access = if err & (1 << 4) != 0 {
        Access::Execute
    } else if err & (1 << 1) != 0 {
        Access::Write
    } else {
        Access::Read
    };
    Regs {
        pc: gregs[libc::REG_RIP as usize] as usize,
        sp: gregs[libc::REG_RSP as usize] as usize,
        fp: gregs[libc::REG_RBP as usize] as usize,
        access,
    }
}

/// Rewrite the interrupted context so that the handler's return continues
/// at `ctx`: pc, sp, frame pointer (`rbp`) and `rdi`, `rsi`.
///
/// # Safety
/// INV-UCTX-1, and `ctx` is a context the kernel vouches for.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn redirect(uc: *mut c_void, ctx: &ResumeContext) {
    // SAFETY: INV-UCTX-1: the host passed a valid, aligned, writable
    // `ucontext_t` that it reloads on return.
    let gregs = unsafe { &mut (*uc.cast::<libc::ucontext_t>()).uc_mcontext.gregs };
    gregs[libc::REG_RIP as usize] = ctx.pc as i64;
    gregs[libc::REG_RSP as usize] = ctx.sp as i64;
    gregs[libc::REG_RBP as usize] = ctx.fp as i64;
    gregs[libc::REG_RDI as usize] = ctx.args[0] as i64;
    gregs[libc::REG_RSI as usize] = ctx.args[1] as i64;
}

/// Read the interrupted registers. aarch64 Linux reports the syndrome only
/// in an optional record of the signal frame, so the access is `Unknown`.
///
/// # Safety
/// INV-UCTX-1: `uc` is the third argument of the running `SA_SIGINFO`
/// handler.
#[cfg(target_arch = "aarch64")]
pub(crate) unsafe fn read(uc: *const c_void) -> Regs {
    // SAFETY: INV-UCTX-1: the host passed a valid, aligned `ucontext_t`.
    let mc = unsafe { &(*uc.cast::<libc::ucontext_t>()).uc_mcontext };
    Regs {
        pc: mc.pc as usize,
        sp: mc.sp as usize,
        fp: mc.regs[29] as usize,
        access: Access::Unknown,
    }
}

/// Rewrite the interrupted context so that the handler's return continues
/// at `ctx`: pc, sp, frame pointer (`x29`) and `x0`, `x1`.
///
/// # Safety
/// INV-UCTX-1, and `ctx` is a context the kernel vouches for.
#[cfg(target_arch = "aarch64")]
pub(crate) unsafe fn redirect(uc: *mut c_void, ctx: &ResumeContext) {
    // SAFETY: INV-UCTX-1: the host passed a valid, aligned, writable
    // `ucontext_t` that it reloads on return.
    let mc = unsafe { &mut (*uc.cast::<libc::ucontext_t>()).uc_mcontext };
    mc.pc = ctx.pc as u64;
    mc.sp = ctx.sp as u64;
    mc.regs[29] = ctx.fp as u64;
    mc.regs[0] = ctx.args[0] as u64;
    mc.regs[1] = ctx.args[1] as u64;
}
