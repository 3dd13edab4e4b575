//! Signal handlers: faults become `TrapFrame`s, two real-time signals become
//! interrupts.
//!
//! This module owns the process's handlers for `SIGSEGV`, `SIGBUS`,
//! `SIGILL`, `SIGFPE`, `SIGTRAP`, [`TIMER_SIGNAL`] and [`IPI_SIGNAL`]. They
//! are installed once per process (the only process-global state of the
//! crate) and hold no state of their own: each dispatches through the
//! interrupted thread's [`crate::thread::CpuThread`], so any number of
//! machines share them.
//!
//! Invariants:
//! - INV-SIG-1: every handler is installed with `SA_SIGINFO | SA_ONSTACK`;
//!   CPU threads have an alternate stack, so a handler never runs on a
//!   (possibly overflowed or tiny) kernel or fiber stack of a CPU.
//! - INV-SIG-2: handlers are async-signal-safe: they allocate nothing, take
//!   no lock, and preserve `errno` for the interrupted code.
//! - INV-SIG-3: the interrupt handlers run with both interrupt signals
//!   blocked (their `sa_mask`), so they never nest in each other.
//! - INV-SIG-4: a fault is handed to the kernel with the CPU's interrupt
//!   flag cleared (as a riscv trap clears `sstatus.SIE`) and the flag is
//!   restored, delivering what became pending, before the handler returns.

use core::ffi::{c_int, c_void};
use core::mem::MaybeUninit;
use core::sync::atomic::Ordering;
use std::sync::OnceLock;

use kernel_core::hal::{TrapAction, TrapFrame, TrapKind};

use crate::thread::{self, PENDING_IPI, PENDING_TIMER};
use crate::{HostError, error, irq, ucontext};

/// The real-time signal that carries timer interrupts: `SIGRTMIN() + 2`
/// under glibc, whose `SIGRTMIN()` is 34 (32 and 33 are its own, for thread
/// cancellation and `setxid`); +0 and +1 are left to other libraries that
/// customarily take the first real-time signals. In gdb:
/// `handle SIG36 SIG37 nostop noprint pass`.
pub const TIMER_SIGNAL: c_int = 36;
/// The real-time signal that carries inter-processor interrupts:
/// `SIGRTMIN() + 3` under glibc. See [`TIMER_SIGNAL`].
pub const IPI_SIGNAL: c_int = 37;

/// The synchronous signals that are faults.
const FAULT_SIGNALS: [c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
];

static INSTALLED: OnceLock<Result<(), HostError>> = OnceLock::new();

/// Install every handler, once per process; later calls return the first
/// call's result.
pub(crate) fn install() -> Result<(), HostError> {
    *INSTALLED.get_or_init(install_all)
}

fn install_all() -> Result<(), HostError> {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if !(min..=max).contains(&TIMER_SIGNAL) || !(min..=max).contains(&IPI_SIGNAL) {
        return Err(HostError::SignalNumbers);
    }
    let empty = sigset(&[]);
    for sig in FAULT_SIGNALS {
        set_action(sig, fault_handler as *const () as usize, &empty, 0)?;
    }
    let irqs = interrupt_set();
    for sig in [TIMER_SIGNAL, IPI_SIGNAL] {
        set_action(
            sig,
            irq_handler as *const () as usize,
            &irqs,
            libc::SA_RESTART,
        )?;
    }
    Ok(())
}

fn set_action(
    sig: c_int,
    handler: usize,
    mask: &libc::sigset_t,
    extra_flags: c_int,
) -> Result<(), HostError> {
    // SAFETY: `sigaction` is a plain C struct for which all-zero is valid.
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_mask = *mask;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | extra_flags;
    // SAFETY: the handler has the `SA_SIGINFO` signature and obeys INV-SIG-2.
    if unsafe { libc::sigaction(sig, &action, core::ptr::null_mut()) } != 0 {
        return Err(HostError::Signals(error::last_errno()));
    }
    Ok(())
}

/// A signal set holding `signals`.
pub(crate) fn sigset(signals: &[c_int]) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `sigemptyset` initializes the set; `sigaddset` of a valid
    // signal number to an initialized set cannot fail. Both are
    // async-signal-safe.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for &sig in signals {
            libc::sigaddset(set.as_mut_ptr(), sig);
        }
        set.assume_init()
    }
}

/// The set of both interrupt signals.
pub(crate) fn interrupt_set() -> libc::sigset_t {
    sigset(&[TIMER_SIGNAL, IPI_SIGNAL])
}

/// Saves `errno` and puts it back on drop (INV-SIG-2).
struct ErrnoGuard(c_int);

impl ErrnoGuard {
    fn save() -> Self {
        // SAFETY: `__errno_location` returns this thread's errno slot.
        Self(unsafe { *libc::__errno_location() })
    }
}

impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        // SAFETY: as in `save`.
        unsafe { *libc::__errno_location() = self.0 };
    }
}

fn trap_kind(sig: c_int, access: kernel_core::hal::Access) -> TrapKind {
    match sig {
        libc::SIGSEGV => TrapKind::PageFault(access),
        libc::SIGBUS => TrapKind::BusError,
        libc::SIGILL => TrapKind::IllegalInstruction,
        libc::SIGFPE => TrapKind::Arithmetic,
        _ => TrapKind::Breakpoint,
    }
}

extern "C" fn fault_handler(sig: c_int, info: *mut libc::siginfo_t, uc: *mut c_void) {
    let _errno = ErrnoGuard::save();
    // SAFETY: INV-UCTX-1: `uc` is this handler's own context argument.
    let regs = unsafe { ucontext::read(uc) };
    // SAFETY: the host passes a valid `siginfo_t` to an `SA_SIGINFO`
    // handler; `si_addr` is defined for the fault signals.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    thread::with(|t| {
        let local = t.local();
        if local.is_null() {
            unhandled(sig, code, regs.pc, addr);
            return;
        }
        let fault_addr = matches!(sig, libc::SIGSEGV | libc::SIGBUS).then_some(addr);
        let frame = TrapFrame {
            kind: trap_kind(sig, regs.access),
            pc: regs.pc,
            sp: regs.sp,
            fp: regs.fp,
            fault_addr,
        };
        // INV-SIG-4.
        let was_enabled = t.irqs_enabled.swap(false, Ordering::SeqCst);
        // SAFETY: INV-THREAD-3: an installed block is valid on this thread.
        let action = unsafe { &*local }.deliver_fault(&frame);
        match action {
            TrapAction::Resume => {}
            // SAFETY: INV-UCTX-1; the kernel vouches for the context.
            TrapAction::Redirect(ctx) => unsafe { ucontext::redirect(uc, &ctx) },
            // SAFETY: `_exit` is async-signal-safe and ends the process
            // without running anything of this one (stdout is unbuffered).
            TrapAction::Fatal(status) => unsafe { libc::_exit(c_int::from(status)) },
        }
        if was_enabled {
            irq::enable_and_drain(t);
        }
    });
}

/// A fault on a thread with no CPU-local block: report it on one line,
/// restore the default action and let it happen.
fn unhandled(sig: c_int, code: c_int, pc: usize, addr: usize) {
    let mut line = Line::new();
    line.push(b"hal-hosted: unhandled ");
    line.push(signal_name(sig));
    line.push(b" at pc=");
    line.hex(pc);
    line.push(b" addr=");
    line.hex(addr);
    line.push(b" (no CPU-local block on this thread)\n");
    // SAFETY: `write` to fd 2 of a live buffer is async-signal-safe.
    unsafe { libc::write(2, line.buf.as_ptr().cast(), line.len) };
    // SAFETY: `sigaction` with `SIG_DFL` is async-signal-safe; the zeroed
    // struct is a valid empty mask with no flags.
    unsafe {
        let mut action: libc::sigaction = core::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &action, core::ptr::null_mut());
    }
    // A hardware fault re-executes on return and meets the default action.
    // A breakpoint has already advanced the pc and a signal sent by a
    // process (si_code <= 0) will not recur, so raise those again: the
    // signal is blocked until this handler returns, then acts.
    if sig == libc::SIGTRAP || code <= 0 {
        // SAFETY: `raise` is async-signal-safe.
        unsafe { libc::raise(sig) };
    }
}

fn signal_name(sig: c_int) -> &'static [u8] {
    match sig {
        libc::SIGSEGV => b"SIGSEGV",
        libc::SIGBUS => b"SIGBUS",
        libc::SIGILL => b"SIGILL",
        libc::SIGFPE => b"SIGFPE",
        libc::SIGTRAP => b"SIGTRAP",
        _ => b"signal",
    }
}

/// A fixed buffer for a report line: formatting without allocation.
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Self {
            buf: [0; 160],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
    }

    fn hex(&mut self, value: usize) {
        self.push(b"0x");
        let mut digits = [0u8; 16];
        for (i, d) in digits.iter_mut().enumerate() {
            let nibble = (value >> (60 - 4 * i)) & 0xf;
            *d = b"0123456789abcdef"[nibble];
        }
        self.push(&digits);
    }
}

extern "C" fn irq_handler(sig: c_int, _info: *mut libc::siginfo_t, _uc: *mut c_void) {
    let _errno = ErrnoGuard::save();
    let bit = if sig == TIMER_SIGNAL {
        PENDING_TIMER
    } else {
        PENDING_IPI
    };
    thread::with(|t| irq::on_signal(t, bit));
}
