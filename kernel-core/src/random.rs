//! The kernel's random bytes for guests (WASI `random_get`): a ChaCha20
//! generator (the `chacha20` crate) seeded once from the platform's
//! entropy ([`crate::hal::Power::entropy_seed`]).
//!
//! Invariant INV-RANDOM-1: bytes handed out are never handed out again
//! (one generator, under a lock, advanced by every request); a
//! deterministic machine seeds it from its simulation seed, so a replay
//! sees the same bytes.

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// A seeded generator shared by every CPU.
pub struct Random {
    rng: spin::Mutex<ChaCha20Rng>,
}

impl Random {
    /// A generator whose 256-bit seed is four draws of `entropy`.
    pub fn new(mut entropy: impl FnMut() -> u64) -> Self {
        let mut seed = [0u8; 32];
        for chunk in seed.chunks_exact_mut(8) {
            chunk.copy_from_slice(&entropy().to_le_bytes());
        }
        Self {
            rng: spin::Mutex::new(ChaCha20Rng::from_seed(seed)),
        }
    }

    /// Fill `buf` with random bytes.
    pub fn fill(&self, buf: &mut [u8]) {
        self.rng.lock().fill_bytes(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_and_one_seed_repeats() {
        let a = Random::new(|| 7);
        let (mut x, mut y) = ([0u8; 64], [0u8; 64]);
        a.fill(&mut x);
        a.fill(&mut y);
        assert_ne!(x, y, "two draws of one generator");
        let b = Random::new(|| 7);
        let mut z = [0u8; 64];
        b.fill(&mut z);
        assert_eq!(x, z, "the same seed gives the same bytes");
        assert_ne!(x, [0u8; 64]);
    }
}
