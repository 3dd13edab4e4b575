//! Stopping the machine with an exit status, and the entropy seed.
//!
//! QEMU `virt` ends with a status only through its `sifive,test1`
//! finisher: `0x5555` exits 0, `(code << 16) | 0x3333` exits `code`. SBI
//! system reset (SRST) always ends QEMU with status 0, so it is only the
//! fallback when the device tree names no finisher.
//!
//! INV-POWER-1: the finisher address is written once at boot before other
//! harts run, and only read afterwards; [`shutdown`] works from any
//! context (trap, panic, before the platform exists).

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::{csr, sbi};

/// Finisher value for "pass": QEMU exits 0.
const FINISHER_PASS: u32 = 0x5555;
/// Finisher value for "fail"; the exit code goes in bits 31..16.
const FINISHER_FAIL: u32 = 0x3333;

static FINISHER: AtomicUsize = AtomicUsize::new(0);

/// Use the finisher at physical address `addr` from now on.
///
/// # Safety
/// `addr` must be a `sifive,test1` device reachable at that address
/// (identity mapped or paging off), and no other hart may run yet
/// (INV-POWER-1).
pub unsafe fn set_finisher(addr: u64) {
    FINISHER.store(addr as usize, Ordering::Release);
}

/// The finisher command for exit status `code`.
const fn finisher_value(code: u8) -> u32 {
    if code == 0 {
        FINISHER_PASS
    } else {
        (code as u32) << 16 | FINISHER_FAIL
    }
}

/// Stop the machine with exit status `code`.
pub fn shutdown(code: u8) -> ! {
    let _ = csr::irq_save();
    let finisher = FINISHER.load(Ordering::Acquire);
    if finisher != 0 {
        // SAFETY: `set_finisher`'s contract: the finisher's register.
        unsafe { core::ptr::write_volatile(finisher as *mut u32, finisher_value(code)) };
    }
    let reason = if code == 0 {
        sbi::REASON_NONE
    } else {
        sbi::REASON_SYSTEM_FAILURE
    };
    sbi::system_reset(sbi::RESET_SHUTDOWN, reason);
    sbi::legacy_shutdown();
    loop {
        csr::wfi();
    }
}

/// Fold the device tree's `rng-seed` and the `time` CSR into 64 bits
/// (splitmix64 steps: every input bit reaches every output bit).
pub fn entropy_seed(rng_seed: &[u8]) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let mut h = mix(csr::rdtime() ^ 0x9e37_79b9_7f4a_7c15);
    for chunk in rng_seed.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = mix(h ^ u64::from_le_bytes(word));
    }
    mix(h ^ csr::rdtime())
}
