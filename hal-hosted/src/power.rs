//! Power and entropy: process exit and `getrandom`.
//!
//! This module owns no state (deterministic mode draws from `det`).

use kernel_core::hal::Power;
use rustix::io::Errno;
use rustix::rand::{GetRandomFlags, getrandom};

use crate::Hosted;

impl Power for Hosted {
    /// Hosted: `std::process::exit(code)`. Other CPU threads (and other
    /// machines in the process) end with it.
    fn shutdown(&self, code: u8) -> ! {
        std::process::exit(i32::from(code))
    }

    /// Hosted, deterministic: derived from the simulation seed (and how
    /// many seeds were drawn before), so that a run replays.
    fn entropy_seed(&self) -> u64 {
        if let Some(det) = &self.machine.det {
            return det.entropy();
        }
        let mut seed = [0u8; 8];
        let mut filled = 0;
        while filled < seed.len() {
            match getrandom(&mut seed[filled..], GetRandomFlags::empty()) {
                Ok(n) => filled += n,
                Err(Errno::INTR) => {}
                Err(_) => break,
            }
        }
        let mut value = u64::from_ne_bytes(seed);
        if filled < seed.len() {
            // No getrandom (a very old host): the clock and an address are
            // better than a constant.
            let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
            value ^= (now.tv_nsec as u64) ^ ((now.tv_sec as u64) << 32) ^ (&raw const seed as u64);
        }
        value
    }
}
