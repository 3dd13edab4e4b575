//! Stopping the machine with an exit status (the plan is `stop`'s:
//! INV-STOP-1, a failure never ends as a pass), and the entropy seed.
//!
//! INV-POWER-1: the finisher address is written once at boot before other
//! harts run, and only read afterwards; [`shutdown`] works from any
//! context (trap, panic, before the platform exists).

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::stop::{self, Stop};
use crate::{console, csr, sbi};

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

/// Stop the machine with exit status `code`, by `stop::plan`.
pub fn shutdown(code: u8) -> ! {
    let _ = csr::irq_save();
    let finisher = FINISHER.load(Ordering::Acquire);
    for step in stop::plan(code, finisher != 0).into_iter().flatten() {
        match step {
            Stop::Finisher(value) => {
                // SAFETY: `set_finisher`'s contract: the finisher's
                // register.
                unsafe { core::ptr::write_volatile(finisher as *mut u32, value) };
            }
            Stop::Reset => {
                sbi::system_reset(sbi::RESET_SHUTDOWN, sbi::REASON_NONE);
                sbi::legacy_shutdown();
            }
            Stop::Halt => break,
        }
    }
    let mut line = kernel_core::fmtbuf::StackBuf::<96>::new();
    let _ = core::fmt::Write::write_fmt(
        &mut line,
        format_args!("shutdown: exit status {code} could not be reported; halting\n"),
    );
    console::panic_write(line.as_bytes());
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
