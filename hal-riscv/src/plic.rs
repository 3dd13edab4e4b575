//! The platform-level interrupt controller (`riscv,plic0`), for one source:
//! the console UART's receive interrupt, routed to the boot hart's
//! supervisor context. The register layout is the PLIC specification's:
//! a 32-bit priority per source from the base, the enable bits of context
//! `c` at `0x2000 + 0x80 * c`, and its threshold and claim/complete
//! registers at `0x20_0000 + 0x1000 * c`.
//!
//! Invariants:
//! - INV-PLIC-1: [`init`] runs once at boot before other harts run; the
//!   base, source and context are only read afterwards.
//! - INV-PLIC-2: every claimed source is completed, so the PLIC delivers
//!   it again; the handler masks the UART's receive interrupt at the UART
//!   before it completes, so a byte left unread raises nothing until a
//!   reader rearms it (`console::arm_input`).

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

const ENABLE: usize = 0x2000;
const ENABLE_STRIDE: usize = 0x80;
const CONTEXT: usize = 0x20_0000;
const CONTEXT_STRIDE: usize = 0x1000;
const CLAIM: usize = 4;

static BASE: AtomicUsize = AtomicUsize::new(0);
static SOURCE: AtomicU32 = AtomicU32::new(0);
static CONTEXT_ID: AtomicUsize = AtomicUsize::new(0);

fn reg(offset: usize) -> *mut u32 {
    (BASE.load(Ordering::Acquire) + offset) as *mut u32
}

/// Route `source` to supervisor context `context` at priority 1, with the
/// context's threshold at 0 (every source with a priority passes).
///
/// # Safety
/// `base` must be the PLIC's registers, identity mapped; `context` one of
/// its contexts; no other hart may run yet (INV-PLIC-1).
pub unsafe fn init(base: u64, source: u32, context: u32) {
    let (Ok(source_idx), Ok(ctx)) = (usize::try_from(source), usize::try_from(context)) else {
        return;
    };
    BASE.store(base as usize, Ordering::Release);
    SOURCE.store(source, Ordering::Release);
    CONTEXT_ID.store(ctx, Ordering::Release);
    let enable = ENABLE + ENABLE_STRIDE * ctx + 4 * (source_idx / 32);
    // SAFETY: the caller's contract: the PLIC's registers at these
    // offsets, identity mapped, ours alone at boot.
    unsafe {
        reg(4 * source_idx).write_volatile(1);
        let bits = reg(enable).read_volatile();
        reg(enable).write_volatile(bits | 1 << (source % 32));
        reg(CONTEXT + CONTEXT_STRIDE * ctx).write_volatile(0);
    }
}

/// Whether [`init`] routed a source.
pub fn enabled() -> bool {
    BASE.load(Ordering::Acquire) != 0
}

/// The source routed by [`init`].
pub fn source() -> u32 {
    SOURCE.load(Ordering::Acquire)
}

/// Claim the highest-priority pending source of the context (0: none).
pub fn claim() -> u32 {
    if !enabled() {
        return 0;
    }
    let ctx = CONTEXT_ID.load(Ordering::Acquire);
    // SAFETY: INV-PLIC-1: the claim register of an initialised context.
    unsafe { reg(CONTEXT + CONTEXT_STRIDE * ctx + CLAIM).read_volatile() }
}

/// Complete `source`, claimed by [`claim`] (INV-PLIC-2).
pub fn complete(source: u32) {
    if !enabled() {
        return;
    }
    let ctx = CONTEXT_ID.load(Ordering::Acquire);
    // SAFETY: INV-PLIC-1: the complete register of an initialised context.
    unsafe { reg(CONTEXT + CONTEXT_STRIDE * ctx + CLAIM).write_volatile(source) }
}
