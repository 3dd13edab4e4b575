//! Fault injection for simulation testing (`sim swarm`): failures the
//! kernel must survive, drawn from a seed so that a run replays, and a
//! deliberately planted bug that proves the swarm's checks can fail.
//!
//! An [`Injector`] answers "fail this one?" for one kind of fault at a
//! rate in per mille: the `n`-th question gets a splitmix64 draw of the
//! seed and `n`, so the same sequence of questions (a deterministic run)
//! gets the same answers. A rate of 0 (the default) never fails and
//! costs one atomic load.
//!
//! Invariant INV-FAULTS-1: an injected failure is one the code path
//! already handles as a real one (a frame promise refused exactly as when
//! RAM is short); injection never makes the kernel do what it could not
//! do without it.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// One kind of injected fault.
#[derive(Default)]
pub struct Injector {
    /// Per mille of questions answered "fail".
    rate: AtomicU32,
    seed: AtomicU64,
    /// Questions asked since [`Injector::set`].
    draws: AtomicU64,
    /// Failures injected since [`Injector::set`].
    injected: AtomicU64,
}

/// splitmix64's finaliser: every input bit reaches every output bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Injector {
    /// Fail `per_mille` of the questions from now on (at most 1,000),
    /// drawn from `seed`; the counts start again at zero.
    pub fn set(&self, seed: u64, per_mille: u16) {
        self.seed.store(seed, Ordering::SeqCst);
        self.draws.store(0, Ordering::SeqCst);
        self.injected.store(0, Ordering::SeqCst);
        self.rate
            .store(u32::from(per_mille.min(1000)), Ordering::SeqCst);
    }

    /// Whether this one fails.
    pub fn fail(&self) -> bool {
        let rate = self.rate.load(Ordering::Relaxed);
        if rate == 0 {
            return false;
        }
        let n = self.draws.fetch_add(1, Ordering::Relaxed);
        let fail = mix(self.seed.load(Ordering::Relaxed) ^ mix(n)) % 1000 < u64::from(rate);
        if fail {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        fail
    }

    /// Failures injected since [`Injector::set`].
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }
}

/// The planted bug: when switched on, a frame promise refused to a
/// process's commit leaks one frame on that error path
/// (`mem::space`). Off unless a test of the swarm's checks turns it on.
static PLANTED_LEAK: AtomicBool = AtomicBool::new(false);

/// Switch the planted bug on or off (for the whole process: every kernel
/// in it). Only the tests that prove the swarm catches it turn it on.
pub fn plant_leak(on: bool) {
    PLANTED_LEAK.store(on, Ordering::SeqCst);
}

/// Whether the planted bug is on.
pub fn leak_planted() -> bool {
    PLANTED_LEAK.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_kept_and_the_draws_replay() {
        let a = Injector::default();
        assert!(!(0..1000).any(|_| a.fail()), "rate 0 never fails");
        a.set(7, 250);
        let first: alloc::vec::Vec<bool> = (0..4000).map(|_| a.fail()).collect();
        let n = first.iter().filter(|&&f| f).count();
        assert!((800..1200).contains(&n), "{n} of 4000 at 250 per mille");
        assert_eq!(a.injected(), n as u64);
        a.set(7, 250);
        let again: alloc::vec::Vec<bool> = (0..4000).map(|_| a.fail()).collect();
        assert_eq!(first, again);
        a.set(8, 250);
        let other: alloc::vec::Vec<bool> = (0..4000).map(|_| a.fail()).collect();
        assert_ne!(first, other);
        a.set(1, 1000);
        assert!((0..100).all(|_| a.fail()));
    }
}
