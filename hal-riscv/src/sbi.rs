//! SBI calls into OpenSBI (RISC-V Supervisor Binary Interface spec v2.0).
//!
//! Hand-written `ecall`s rather than the `sbi-rt` crate: the HAL needs nine
//! calls, each is three lines, and keeping them here makes it obvious that
//! none allocates or locks (they run in trap context).
//!
//! Calling convention (spec chapter 3): `a7` = extension id, `a6` =
//! function id, arguments in `a0..a5`; the result comes back as
//! `(error in a0, value in a1)` and every other register is preserved.
//! Legacy extensions (chapter 5) return only `a0`.
//!
//! INV-SBI-1: every wrapper is callable from trap context: OpenSBI's
//! handlers run in M-mode and take no lock the S-mode code can hold.

use core::arch::asm;

const EXT_TIME: usize = 0x5449_4d45;
const EXT_IPI: usize = 0x73_5049;
const EXT_RFENCE: usize = 0x5246_4e43;
const EXT_HSM: usize = 0x48_534d;
const EXT_SRST: usize = 0x5352_5354;
const LEGACY_CONSOLE_PUTCHAR: usize = 0x01;
const LEGACY_SHUTDOWN: usize = 0x08;

/// `SBI_ERR_INVALID_PARAM`.
pub const ERR_INVALID_PARAM: isize = -3;
/// `SBI_ERR_ALREADY_AVAILABLE` (HSM: the hart is already started).
pub const ERR_ALREADY_AVAILABLE: isize = -6;
/// `SBI_ERR_ALREADY_STARTED`.
pub const ERR_ALREADY_STARTED: isize = -7;

/// `SBI_SRST_RESET_TYPE_SHUTDOWN`.
pub const RESET_SHUTDOWN: usize = 0;
/// `SBI_SRST_RESET_REASON_NONE`.
pub const REASON_NONE: usize = 0;

/// The error code of an SBI call (0 = success).
pub type SbiError = isize;

#[inline(always)]
fn call(
    eid: usize,
    fid: usize,
    a0: usize,
    a1: usize,
    a2: usize,
    a3: usize,
) -> Result<usize, SbiError> {
    let error: isize;
    let value: usize;
    // SAFETY: an SBI call per the spec's convention; OpenSBI preserves every
    // register but a0/a1, and the functions used here touch no S-mode
    // memory (hart_start's effects are covered by its own `unsafe`).
    unsafe {
        asm!(
            "ecall",
            inlateout("a0") a0 => error,
            inlateout("a1") a1 => value,
            in("a2") a2,
            in("a3") a3,
            in("a6") fid,
            in("a7") eid,
            options(nostack),
        );
    }
    if error == 0 { Ok(value) } else { Err(error) }
}

/// TIME `set_timer`: a timer interrupt once `time >= stime`; also clears a
/// pending one. `u64::MAX` disarms.
pub fn set_timer(stime: u64) {
    let _ = call(EXT_TIME, 0, stime as usize, 0, 0, 0);
}

/// IPI `send_ipi` to the harts `hart_mask_base + i` for each set bit `i`.
pub fn send_ipi(hart_mask: u64, hart_mask_base: u64) {
    let _ = call(
        EXT_IPI,
        0,
        hart_mask as usize,
        hart_mask_base as usize,
        0,
        0,
    );
}

/// RFENCE `remote_fence_i`.
pub fn remote_fence_i(hart_mask: u64, hart_mask_base: u64) {
    let _ = call(
        EXT_RFENCE,
        0,
        hart_mask as usize,
        hart_mask_base as usize,
        0,
        0,
    );
}

/// RFENCE `remote_sfence_vma` of `start..start + size` (`size` =
/// `usize::MAX` flushes everything).
pub fn remote_sfence_vma(hart_mask: u64, hart_mask_base: u64, start: usize, size: usize) {
    let _ = call(
        EXT_RFENCE,
        1,
        hart_mask as usize,
        hart_mask_base as usize,
        start,
        size,
    );
}

/// HSM `hart_start`: start `hartid` in S-mode at physical `start_addr` with
/// `a0 = hartid`, `a1 = opaque`, paging off and interrupts masked.
///
/// # Errors
/// The SBI error code, e.g. [`ERR_ALREADY_AVAILABLE`].
///
/// # Safety
/// `start_addr` must be code that expects exactly that state, and `opaque`
/// whatever that code reads from it.
pub unsafe fn hart_start(hartid: u64, start_addr: usize, opaque: usize) -> Result<(), SbiError> {
    call(EXT_HSM, 0, hartid as usize, start_addr, opaque, 0).map(|_| ())
}

/// HSM `hart_stop`: stop the calling hart. Returns only on failure.
pub fn hart_stop() -> SbiError {
    call(EXT_HSM, 1, 0, 0, 0, 0).err().unwrap_or(0)
}

/// SRST `system_reset`. Returns only on failure.
pub fn system_reset(kind: usize, reason: usize) {
    let _ = call(EXT_SRST, 0, kind, reason, 0, 0);
}

/// Legacy `console_putchar`, the console before the UART is known.
pub fn console_putchar(byte: u8) {
    // SAFETY: legacy SBI call (spec chapter 5): a0 in, a0 out; other
    // registers preserved (a1 marked clobbered to be safe).
    unsafe {
        asm!(
            "ecall",
            inlateout("a0") byte as usize => _,
            lateout("a1") _,
            in("a7") LEGACY_CONSOLE_PUTCHAR,
            options(nostack),
        );
    }
}

/// Legacy `shutdown`, the last resort. Returns only on failure.
pub fn legacy_shutdown() {
    // SAFETY: legacy SBI call with no arguments; see `console_putchar`.
    unsafe {
        asm!("ecall", lateout("a0") _, lateout("a1") _, in("a7") LEGACY_SHUTDOWN, options(nostack));
    }
}
