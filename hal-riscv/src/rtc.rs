//! The wall clock: QEMU `virt`'s goldfish RTC, nanoseconds since the Unix
//! epoch in two 32-bit registers (reading `TIME_LOW` latches `TIME_HIGH`).
//!
//! INV-RTC-1: the base is written once at boot before other harts run, and
//! only read afterwards; reads of the two registers happen under one lock,
//! so two harts never interleave a latched pair.

use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;

/// `TIME_LOW`: the low 32 bits; reading it latches the high ones.
const TIME_LOW: usize = 0x00;
/// `TIME_HIGH`: the latched high 32 bits.
const TIME_HIGH: usize = 0x04;

static BASE: AtomicUsize = AtomicUsize::new(0);
static READ: spin::Mutex<()> = spin::Mutex::new(());

/// Use the goldfish RTC at physical address `addr`.
///
/// # Safety
/// `addr` must be a `google,goldfish-rtc` reachable at that address
/// (identity mapped), and no other hart may run yet (INV-RTC-1).
pub unsafe fn set_base(addr: u64) {
    BASE.store(addr as usize, Ordering::Release);
}

/// Nanoseconds since the Unix epoch, when there is an RTC.
pub fn wall_time() -> Option<Duration> {
    let base = BASE.load(Ordering::Acquire);
    if base == 0 {
        return None;
    }
    let _pair = READ.lock();
    // SAFETY: `set_base`'s contract: the RTC's registers, identity mapped;
    // the lock keeps the latched pair ours (INV-RTC-1).
    let (low, high) = unsafe {
        let low = core::ptr::read_volatile((base + TIME_LOW) as *const u32);
        let high = core::ptr::read_volatile((base + TIME_HIGH) as *const u32);
        (low, high)
    };
    Some(Duration::from_nanos(u64::from(high) << 32 | u64::from(low)))
}
